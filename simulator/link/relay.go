package link

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"
)

// ErrClosed is returned by Relay methods called after Close.
var ErrClosed = errors.New("relay closed")

// Relay is a UDP relay for one device in front of a real server, applying
// a Link in real time. The device sends to Addr; the relay forwards to the
// server from its own outside socket (a NAT mapping, moved by Rebind) and
// forwards what the server sends back to that socket to the device's last
// address. Only datagrams from the server's address are taken in on the
// outside socket, as a port-restricted NAT does.
//
// A relay runs two goroutines, one per direction. Each reads its socket
// with a deadline at the next delivery due, so packets in flight wait in a
// heap and cost no goroutine or timer of their own. An idle relay with a
// built-in profile holds about 20 KB. Datagrams the kernel drops because a
// socket buffer is full (a sender far faster than the relay is scheduled)
// never reach the Link and are not counted.
type Relay struct {
	link   *Link
	server netip.AddrPort
	inside *net.UDPConn

	mu      sync.Mutex
	outside *net.UDPConn
	device  netip.AddrPort
	closed  bool

	wg sync.WaitGroup
}

// NewRelay starts a relay to server listening on 127.0.0.1:0. An
// unspecified server address ("[::]:5684", as a server listening on ":5684"
// reports) is reached on 127.0.0.1. The pipes draw from seed.
func NewRelay(server *net.UDPAddr, prof Profile, seed uint64) (*Relay, error) {
	if server == nil {
		return nil, fmt.Errorf("new relay: no server address")
	}
	dst := server.AddrPort()
	addr := dst.Addr().Unmap()
	if !addr.IsValid() || addr.IsUnspecified() {
		addr = netip.AddrFrom4([4]byte{127, 0, 0, 1})
	}
	dst = netip.AddrPortFrom(addr, dst.Port())
	if dst.Port() == 0 {
		return nil, fmt.Errorf("new relay to %s: no port", server)
	}
	l, err := NewLink(prof, seed)
	if err != nil {
		return nil, fmt.Errorf("new relay to %s: %w", dst, err)
	}
	in, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, fmt.Errorf("new relay to %s: %w", dst, err)
	}
	r := &Relay{link: l, server: dst, inside: in}
	if r.outside, err = r.listenOutside(); err != nil {
		_ = in.Close()
		return nil, fmt.Errorf("new relay to %s: %w", dst, err)
	}
	r.wg.Add(2)
	go r.upLoop()
	go r.downLoop()
	return r, nil
}

// listenOutside opens an outside socket on the loopback of the server's
// address family.
func (r *Relay) listenOutside() (*net.UDPConn, error) {
	ip := net.IPv4(127, 0, 0, 1)
	if !r.server.Addr().Is4() {
		ip = net.IPv6loopback
	}
	return net.ListenUDP("udp", &net.UDPAddr{IP: ip})
}

// Addr is where the device sends.
func (r *Relay) Addr() *net.UDPAddr { return r.inside.LocalAddr().(*net.UDPAddr) }

// Server is the address the relay forwards to.
func (r *Relay) Server() *net.UDPAddr { return net.UDPAddrFromAddrPort(r.server) }

// OutsideAddr is the device's address as the server sees it now.
func (r *Relay) OutsideAddr() *net.UDPAddr {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.outside.LocalAddr().(*net.UDPAddr)
}

// Link is the relay's link, for outages at set times or its profile.
func (r *Relay) Link() *Link { return r.link }

// Stats returns a snapshot of the link's counters. Its Connected time
// includes the RRC tail of the last packet, which may lie ahead.
func (r *Relay) Stats() Stats { return r.link.Stats() }

// Outage drops every packet sent in either direction for d from now.
func (r *Relay) Outage(d time.Duration) {
	now := time.Now()
	r.link.Outage(now, now.Add(d))
}

// EndOutage ends every outage now.
func (r *Relay) EndOutage() { r.link.EndOutages(time.Now()) }

// Rebind emulates a NAT rebinding: the outside socket is replaced by one
// on a new port, so the server sees the device at a new address. What the
// server sends to the old address from then on is lost; packets already in
// flight are not.
func (r *Relay) Rebind() error {
	out, err := r.listenOutside()
	if err != nil {
		return fmt.Errorf("rebind: %w", err)
	}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		_ = out.Close()
		return fmt.Errorf("rebind: %w", ErrClosed)
	}
	old := r.outside
	r.outside = out
	r.mu.Unlock()
	// Closing wakes the down loop, which then reads from the new socket.
	_ = old.Close()
	return nil
}

// Close stops the relay and waits for its goroutines; packets in flight
// are discarded. It is safe to call more than once.
func (r *Relay) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	out := r.outside
	r.mu.Unlock()
	err := errors.Join(r.inside.Close(), out.Close())
	r.wg.Wait()
	if err != nil {
		return fmt.Errorf("close relay: %w", err)
	}
	return nil
}

// readBufSize is the read buffer for a direction: room for a datagram
// just over the MTU (so that oversize ones are seen and dropped), at least
// 2 KiB, and 64 KiB without an MTU. A datagram longer than the buffer is
// counted at the buffer's length. Keeping buffers small keeps thousands of
// relays cheap.
func readBufSize(mtu int) int {
	if mtu == 0 {
		return 64 << 10
	}
	return max(2048, mtu-IPv4Overhead+1)
}

// upLoop carries device to server: it reads the inside socket and writes
// due packets out of the current outside socket.
func (r *Relay) upLoop() {
	defer r.wg.Done()
	var f flight
	buf := make([]byte, readBufSize(r.link.prof.Up.MTU))
	var deadline time.Time
	for {
		if next := f.next(); !next.Equal(deadline) {
			// A zero deadline means none: the read then ends on Close.
			_ = r.inside.SetReadDeadline(next)
			deadline = next
		}
		n, from, err := r.inside.ReadFromUDPAddrPort(buf)
		switch {
		case err == nil:
			r.mu.Lock()
			r.device = from
			r.mu.Unlock()
			if at, ok := r.link.up.Send(time.Now(), n); ok {
				f.push(at, buf[:n])
			}
		case errors.Is(err, net.ErrClosed):
			return
		}
		f.deliver(time.Now(), r.sendUp)
	}
}

// sendUp writes from the current outside socket. A write that races with
// Rebind may find the old socket closed; the packet is then lost, as it
// would be at a NAT losing its mapping.
func (r *Relay) sendUp(b []byte) {
	r.mu.Lock()
	out := r.outside
	r.mu.Unlock()
	_, _ = out.WriteToUDPAddrPort(b, r.server)
}

// downLoop carries server to device: it reads the current outside socket,
// following Rebind, and writes due packets to the device from the inside
// socket.
func (r *Relay) downLoop() {
	defer r.wg.Done()
	var f flight
	buf := make([]byte, readBufSize(r.link.prof.Down.MTU))
	var conn *net.UDPConn
	var deadline time.Time
	for {
		r.mu.Lock()
		cur, closed := r.outside, r.closed
		r.mu.Unlock()
		if closed {
			return
		}
		if cur != conn {
			conn, deadline = cur, time.Time{}
		}
		if next := f.next(); !next.Equal(deadline) {
			_ = conn.SetReadDeadline(next)
			deadline = next
		}
		n, from, err := conn.ReadFromUDPAddrPort(buf)
		if err == nil && from.Addr().Unmap() == r.server.Addr() && from.Port() == r.server.Port() {
			if at, ok := r.link.down.Send(time.Now(), n); ok {
				f.push(at, buf[:n])
			}
		}
		// On net.ErrClosed the socket was closed by Rebind or Close; the
		// next turn tells which.
		f.deliver(time.Now(), r.sendDown)
	}
}

func (r *Relay) sendDown(b []byte) {
	r.mu.Lock()
	dev := r.device
	r.mu.Unlock()
	if dev.IsValid() {
		_, _ = r.inside.WriteToUDPAddrPort(b, dev)
	}
}

// flight holds the packets of one direction that are on their way, in a
// min-heap by delivery time and then by arrival, and recycles their
// buffers. It belongs to one goroutine.
type flight struct {
	heap []inFlight
	seq  uint64
	free [][]byte
}

type inFlight struct {
	at   time.Time
	seq  uint64
	data []byte
}

const maxFree = 64

func (f *flight) less(i, j int) bool {
	a, b := &f.heap[i], &f.heap[j]
	if a.at.Equal(b.at) {
		return a.seq < b.seq
	}
	return a.at.Before(b.at)
}

// next is the time the first packet is due, or zero if none is in flight.
func (f *flight) next() time.Time {
	if len(f.heap) == 0 {
		return time.Time{}
	}
	return f.heap[0].at
}

// push copies b into the heap, due at at.
func (f *flight) push(at time.Time, b []byte) {
	var data []byte
	if n := len(f.free); n > 0 && cap(f.free[n-1]) >= len(b) {
		data = f.free[n-1][:len(b)]
		f.free[n-1] = nil
		f.free = f.free[:n-1]
	} else {
		data = make([]byte, len(b), max(len(b), 1536))
	}
	copy(data, b)
	f.seq++
	f.heap = append(f.heap, inFlight{at: at, seq: f.seq, data: data})
	for i := len(f.heap) - 1; i > 0; {
		parent := (i - 1) / 2
		if !f.less(i, parent) {
			break
		}
		f.heap[i], f.heap[parent] = f.heap[parent], f.heap[i]
		i = parent
	}
}

// deliver sends every packet due by now, in order.
func (f *flight) deliver(now time.Time, send func([]byte)) {
	for len(f.heap) > 0 && !f.heap[0].at.After(now) {
		data := f.heap[0].data
		last := len(f.heap) - 1
		f.heap[0] = f.heap[last]
		f.heap[last] = inFlight{}
		f.heap = f.heap[:last]
		for i := 0; ; {
			small, l, r := i, 2*i+1, 2*i+2
			if l < len(f.heap) && f.less(l, small) {
				small = l
			}
			if r < len(f.heap) && f.less(r, small) {
				small = r
			}
			if small == i {
				break
			}
			f.heap[i], f.heap[small] = f.heap[small], f.heap[i]
			i = small
		}
		send(data)
		if len(f.free) < maxFree {
			f.free = append(f.free, data)
		}
	}
}
