package link

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"
)

// ErrClosed is returned by Relay methods called after Close.
var ErrClosed = errors.New("relay closed")

// DefaultIdleTimeout is how long a relay keeps a flow's NAT mapping without
// a datagram either way before it forgets it (see Relay.SetIdleTimeout).
// It is in the range of carrier NAT UDP timeouts, and bounds what a
// long-running fleet holds for device sockets that went away without a
// word, as a client's finished download socket does.
const DefaultIdleTimeout = 5 * time.Minute

// Relay is a UDP relay for one device in front of a real server, applying
// a Link in real time. The device sends to Addr; the relay forwards to the
// server and back like a carrier NAT: each device socket (a flow, told
// apart by its source address) gets its own outside socket, its mapping,
// when its first datagram gets through the link, and what the server sends
// to that outside socket goes back to that device socket. A client that
// opens a second socket, as Zephyr's and Anjay's do for a firmware
// download, thus appears to the server at a second address while its
// registration stays where it was. Only datagrams from the server's
// address are taken in on an outside socket, as a port-restricted NAT
// does. Rebind moves every mapping to a new port; a flow without a
// datagram either way for the idle timeout is forgotten, and its device
// socket gets a new mapping when it sends again.
//
// The flows share the one Link: one radio, so rate, queue, loss and
// outages apply to the sum of their traffic.
//
// A relay runs one goroutine for the up direction and one per flow for the
// down direction. Each reads its socket with a deadline at the next
// delivery due, so packets in flight wait in a heap and cost no goroutine
// or timer of their own. A relay with one flow and a built-in profile
// holds about 20 KB, and an idle relay does not grow. Datagrams the kernel
// drops because a socket buffer is full (a sender far faster than the
// relay is scheduled) never reach the Link and are not counted.
type Relay struct {
	link   *Link
	server netip.AddrPort
	inside *net.UDPConn

	mu     sync.Mutex
	flows  []*flow // oldest first; a device has a handful of sockets at most
	idle   time.Duration
	closed bool

	wg sync.WaitGroup
}

// flow is one device socket and its NAT mapping. Its fields are guarded by
// the relay's mu.
type flow struct {
	device netip.AddrPort // the device socket's address
	out    *net.UDPConn   // the outside socket, replaced by Rebind
	last   time.Time      // the latest datagram either way
	gone   bool           // reaped or closed: its down loop ends
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
	r := &Relay{link: l, server: dst, inside: in, idle: DefaultIdleTimeout}
	r.wg.Add(1)
	go r.upLoop()
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

// OutsideAddr is the device's address as the server sees it now: that of
// its oldest live flow, normally the registration socket. It is nil while
// no flow has a mapping (before the first datagram gets through, after
// Close, or once every flow was idle too long).
func (r *Relay) OutsideAddr() *net.UDPAddr {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.flows) == 0 {
		return nil
	}
	return r.flows[0].out.LocalAddr().(*net.UDPAddr)
}

// OutsideAddrs are the addresses of every live flow as the server sees
// them, oldest first.
func (r *Relay) OutsideAddrs() []*net.UDPAddr {
	r.mu.Lock()
	defer r.mu.Unlock()
	addrs := make([]*net.UDPAddr, len(r.flows))
	for i, fl := range r.flows {
		addrs[i] = fl.out.LocalAddr().(*net.UDPAddr)
	}
	return addrs
}

// SetIdleTimeout sets how long a flow lives without a datagram either way,
// the carrier NAT's mapping timeout; d <= 0 restores DefaultIdleTimeout.
// A flow waiting with the old value takes the new one up at its next
// datagram or check, so set it before traffic starts for it to hold
// exactly. A flow with packets in flight is never idle.
func (r *Relay) SetIdleTimeout(d time.Duration) {
	if d <= 0 {
		d = DefaultIdleTimeout
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.idle = d
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

// Rebind emulates a NAT rebinding, the carrier NAT forgetting all its
// mappings: every flow's outside socket is replaced by one on a new port,
// so the server sees each device socket at a new address. What the server
// sends to an old address from then on is lost; packets already in flight
// are not. Either every flow moves or, on an error, none does.
func (r *Relay) Rebind() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return fmt.Errorf("rebind: %w", ErrClosed)
	}
	fresh := make([]*net.UDPConn, len(r.flows))
	for i := range fresh {
		out, err := r.listenOutside()
		if err != nil {
			r.mu.Unlock()
			for _, c := range fresh[:i] {
				_ = c.Close()
			}
			return fmt.Errorf("rebind: %w", err)
		}
		fresh[i] = out
	}
	for i, fl := range r.flows {
		fl.out, fresh[i] = fresh[i], fl.out
	}
	r.mu.Unlock()
	// Closing wakes each down loop, which then reads from its new socket.
	for _, old := range fresh {
		_ = old.Close()
	}
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
	errs := []error{r.inside.Close()}
	for _, fl := range r.flows {
		fl.gone = true
		// Closing wakes its down loop, which then sees gone and ends.
		errs = append(errs, fl.out.Close())
	}
	r.flows = nil
	r.mu.Unlock()
	err := errors.Join(errs...)
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
// due packets out of their flow's outside socket.
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
			if at, ok := r.link.up.Send(time.Now(), n); ok {
				f.push(at, from, buf[:n])
			}
		case errors.Is(err, net.ErrClosed):
			return
		}
		f.deliver(time.Now(), r.sendUp)
	}
}

// sendUp writes a packet from device out of its flow's outside socket,
// mapping the device socket first if it has no flow: the mapping is made
// by the first datagram that reaches the NAT, so one lost on the air makes
// none. A write that races with Rebind may find the old socket closed;
// the packet is then lost, as it would be at a NAT losing its mapping.
func (r *Relay) sendUp(device netip.AddrPort, b []byte) {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return
	}
	i := slices.IndexFunc(r.flows, func(fl *flow) bool { return fl.device == device })
	var fl *flow
	if i >= 0 {
		fl = r.flows[i]
	} else {
		out, err := r.listenOutside()
		if err != nil {
			// No port for a mapping: the NAT drops the packet.
			r.mu.Unlock()
			return
		}
		fl = &flow{device: device, out: out}
		r.flows = append(r.flows, fl)
		// Added under mu, which Close takes before it waits, and while
		// upLoop itself keeps the count above zero.
		r.wg.Add(1)
		go r.downLoop(fl)
	}
	fl.last = time.Now()
	out := fl.out
	r.mu.Unlock()
	_, _ = out.WriteToUDPAddrPort(b, r.server)
}

// downLoop carries server to device for one flow: it reads the flow's
// current outside socket, following Rebind, and writes due packets to the
// device socket from the inside socket. Nothing in flight and nothing
// either way for the idle timeout, it forgets the flow and ends.
func (r *Relay) downLoop(fl *flow) {
	defer r.wg.Done()
	var f flight
	buf := make([]byte, readBufSize(r.link.prof.Down.MTU))
	var conn *net.UDPConn
	var deadline time.Time
	var idleCheck time.Time // when to look whether the flow is idle
	for {
		now := time.Now()
		r.mu.Lock()
		cur, gone, idleAt := fl.out, fl.gone, fl.last.Add(r.idle)
		if !gone && f.empty() && !now.Before(idleAt) {
			r.forget(fl)
			gone = true
		}
		r.mu.Unlock()
		if gone {
			return
		}
		if cur != conn {
			conn, deadline = cur, time.Time{}
		}
		next := f.next()
		if next.IsZero() {
			// Armed once and kept while traffic moves idleAt on, so that
			// busy flows do not reset the deadline on every datagram; a
			// shorter timeout moves it closer at once.
			if !idleCheck.After(now) || idleAt.Before(idleCheck) {
				idleCheck = idleAt
			}
			next = idleCheck
		}
		if !next.Equal(deadline) {
			_ = conn.SetReadDeadline(next)
			deadline = next
		}
		n, from, err := conn.ReadFromUDPAddrPort(buf)
		if err == nil && from.Addr().Unmap() == r.server.Addr() && from.Port() == r.server.Port() {
			now := time.Now()
			r.mu.Lock()
			fl.last = now
			r.mu.Unlock()
			if at, ok := r.link.down.Send(now, n); ok {
				f.push(at, fl.device, buf[:n])
			}
		}
		// On net.ErrClosed the socket was closed by Rebind, Close or an
		// idle timeout; the next turn tells which.
		f.deliver(time.Now(), r.sendDown)
	}
}

// forget removes an idle flow and closes its outside socket. Callers hold
// mu.
func (r *Relay) forget(fl *flow) {
	fl.gone = true
	r.flows = slices.DeleteFunc(r.flows, func(o *flow) bool { return o == fl })
	_ = fl.out.Close()
}

func (r *Relay) sendDown(device netip.AddrPort, b []byte) {
	_, _ = r.inside.WriteToUDPAddrPort(b, device)
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
	to   netip.AddrPort // the device socket it comes from (up) or goes to (down)
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

// empty reports whether nothing is in flight.
func (f *flight) empty() bool { return len(f.heap) == 0 }

// push copies b, a packet of the flow of device socket to, into the heap,
// due at at.
func (f *flight) push(at time.Time, to netip.AddrPort, b []byte) {
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
	f.heap = append(f.heap, inFlight{at: at, seq: f.seq, to: to, data: data})
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
func (f *flight) deliver(now time.Time, send func(to netip.AddrPort, b []byte)) {
	for len(f.heap) > 0 && !f.heap[0].at.After(now) {
		to, data := f.heap[0].to, f.heap[0].data
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
		send(to, data)
		if len(f.free) < maxFree {
			f.free = append(f.free, data)
		}
	}
}
