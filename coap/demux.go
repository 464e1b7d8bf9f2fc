package coap

import (
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/transport/v5/deadline"
)

// demux splits one UDP socket into a packet conn per DTLS peer for pion.
//
// pion's own listener cannot be used as is for two reasons that matter on
// cellular networks:
//   - A device that reboots and reconnects from the same address and port
//     sends a fresh ClientHello that pion routes to the dead session and
//     ignores (RFC 6347 §4.2.8 is not implemented). demux gives such a
//     ClientHello a new conn and lets the new session take over the
//     address once its handshake succeeds; if the handshake fails, the old
//     session keeps the address, so a forged ClientHello cannot evict it.
//   - Connection IDs are assigned here (constant length) so that records
//     from a new NAT mapping reach their session without parsing the
//     server's own handshake messages.
type demux struct {
	pc     udpSocket
	cidLen int

	mu     sync.Mutex
	byAddr map[netip.AddrPort]*peerConn
	byCID  map[string]*peerConn
	closed bool

	accept chan *peerConn
	done   chan struct{}
	wg     sync.WaitGroup

	datagramsIn, datagramsOut atomic.Uint64
}

// errDemuxClosed is returned by accept after close.
var errDemuxClosed = errors.New("dtls listener closed")

// acceptBacklog bounds handshakes waiting to start; ClientHellos beyond it
// are dropped and the peer retransmits.
const acceptBacklog = 1024

// udpSocket is the part of *net.UDPConn the demultiplexer uses: reads and
// writes keyed by netip.AddrPort, which cost no allocation per datagram.
type udpSocket interface {
	ReadFromUDPAddrPort(b []byte) (int, netip.AddrPort, error)
	WriteToUDPAddrPort(b []byte, addr netip.AddrPort) (int, error)
	Close() error
	LocalAddr() net.Addr
}

func newDemux(pc udpSocket, cidLen int) *demux {
	d := &demux{
		pc:     pc,
		cidLen: cidLen,
		byAddr: make(map[netip.AddrPort]*peerConn),
		byCID:  make(map[string]*peerConn),
		accept: make(chan *peerConn, acceptBacklog),
		done:   make(chan struct{}),
	}
	d.wg.Add(1)
	go d.readLoop()
	return d
}

func (d *demux) readLoop() {
	defer d.wg.Done()
	buf := make([]byte, 64*1024)
	for {
		n, addr, err := d.pc.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		d.datagramsIn.Add(1)
		// A dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d.
		d.route(buf[:n], netip.AddrPortFrom(addr.Addr().Unmap(), addr.Port()))
	}
}

// route hands one datagram to its conn, creating a conn for a ClientHello.
func (d *demux) route(b []byte, addr netip.AddrPort) {
	if len(b) < recordHeaderLen {
		return
	}
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return
	}
	c := d.lookup(b, addr)
	if c != nil && c.parked.Load() != nil && !isClientHello(b) {
		d.mu.Unlock()
		c.deliver(b, addr)
		if sess := c.parked.Load(); sess != nil {
			sess.kick()
		}
		return
	}
	switch {
	case c == nil || (c.established && isClientHello(b)):
		if !isClientHello(b) {
			d.mu.Unlock()
			return
		}
		normalizeHelloVersion(b)
		if c = d.newConn(addr, c); c == nil {
			d.mu.Unlock()
			return
		}
	case c.prev != nil && b[0] == contentApplicationData:
		// Until the new handshake at this address succeeds, protected
		// data still belongs to the session it would replace.
		c = c.prev
	}
	d.mu.Unlock()
	c.deliver(b, addr)
}

// lookup finds the conn for a datagram: by Connection ID first, so that a
// session follows its peer to a new address, then by address.
func (d *demux) lookup(b []byte, addr netip.AddrPort) *peerConn {
	if cid, ok := recordCID(b, d.cidLen); ok {
		if c := d.byCID[string(cid)]; c != nil {
			if c.addrKey != addr {
				d.move(c, addr)
			}
			return c
		}
		return nil
	}
	return d.byAddr[addr]
}

// move re-keys a conn whose peer now sends from another address. Called
// with d.mu held.
func (d *demux) move(c *peerConn, key netip.AddrPort) {
	if d.byAddr[c.addrKey] == c {
		delete(d.byAddr, c.addrKey)
	}
	c.addrKey = key
	if _, taken := d.byAddr[key]; !taken {
		d.byAddr[key] = c
	}
}

// newConn creates the conn for a new handshake from addr, replacing prev
// (the established session at that address) only once it succeeds. Called
// with d.mu held; nil when the backlog is full.
func (d *demux) newConn(addr netip.AddrPort, prev *peerConn) *peerConn {
	c := &peerConn{
		d:        d,
		raddr:    net.UDPAddrFromAddrPort(addr),
		addrKey:  addr,
		prev:     prev,
		queue:    make(chan packet, queueLen),
		closed:   make(chan struct{}),
		deadline: deadline.New(),
	}
	if d.cidLen > 0 {
		c.cid = d.freshCID()
		d.byCID[string(c.cid)] = c
	}
	select {
	case d.accept <- c:
	default:
		if c.cid != nil {
			delete(d.byCID, string(c.cid))
		}
		return nil
	}
	d.byAddr[c.addrKey] = c
	return c
}

// freshCID returns a random Connection ID not in use. Called with d.mu held.
func (d *demux) freshCID() []byte {
	cid := make([]byte, d.cidLen)
	for {
		_, _ = rand.Read(cid)
		if _, used := d.byCID[string(cid)]; !used {
			return cid
		}
	}
}

// handshakeDone marks c established: a later ClientHello from its
// address is a new session (the peer rebooted). If c replaces a session at
// the same address, that session is over and is closed.
func (d *demux) handshakeDone(c *peerConn) {
	d.mu.Lock()
	c.established = true
	prev := c.prev
	c.prev = nil
	if prev != nil && prev.addrKey != c.addrKey {
		prev = nil // it followed its peer elsewhere with its Connection ID
	}
	d.mu.Unlock()
	if prev != nil {
		_ = prev.Close()
	}
}

// detach replaces old in the routing tables by a conn that holds records
// for sess while it is parked; old's writes are dropped from now on. It
// returns nil if old is already closed.
func (d *demux) detach(old *peerConn, sess *Session) *peerConn {
	d.mu.Lock()
	defer d.mu.Unlock()
	if old.isClosed() {
		return nil
	}
	n := &peerConn{
		d:           d,
		raddr:       old.lastAddr(),
		cid:         old.cid,
		addrKey:     old.addrKey,
		established: true,
		queue:       make(chan packet, cap(old.queue)),
		closed:      make(chan struct{}),
		deadline:    deadline.New(),
	}
	n.last.Store(old.last.Load())
	n.parked.Store(sess)
	if n.cid != nil && d.byCID[string(n.cid)] == old {
		d.byCID[string(n.cid)] = n
	}
	if d.byAddr[n.addrKey] == old {
		d.byAddr[n.addrKey] = n
	}
	old.detached.Store(true)
	return n
}

// release forgets a closed conn. If it was a replacement that never
// finished its handshake, the session it would have replaced gets its
// address back.
func (d *demux) release(c *peerConn) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if c.cid != nil && d.byCID[string(c.cid)] == c {
		delete(d.byCID, string(c.cid))
	}
	if d.byAddr[c.addrKey] == c {
		delete(d.byAddr, c.addrKey)
		if p := c.prev; p != nil && !p.isClosed() {
			d.byAddr[c.addrKey] = p
		}
	}
}

func (d *demux) acceptConn() (*peerConn, error) {
	select {
	case c := <-d.accept:
		return c, nil
	case <-d.done:
		return nil, errDemuxClosed
	}
}

// close stops reading and closes the socket. Conns already handed out are
// closed by their owners.
func (d *demux) close() error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil
	}
	d.closed = true
	close(d.done)
	d.mu.Unlock()
	err := d.pc.Close()
	d.wg.Wait()
	for {
		select {
		case c := <-d.accept:
			_ = c.Close()
		default:
			return err
		}
	}
}

// queueLen bounds the records waiting for one peer's DTLS connection. A
// device has at most one flight or one CoAP exchange in the air (NSTART=1);
// beyond this its records are dropped and retransmitted, as on a link.
const queueLen = 8

type packet struct {
	buf  *[]byte
	n    int
	addr *net.UDPAddr
}

// packetPool recycles the copies of datagrams waiting in a conn's queue;
// a datagram larger than poolBufSize gets a buffer of its own.
const poolBufSize = 2048

var packetPool = sync.Pool{New: func() any { b := make([]byte, poolBufSize); return &b }}

func newPacket(b []byte, addr *net.UDPAddr) packet {
	var buf *[]byte
	if len(b) <= poolBufSize {
		buf = packetPool.Get().(*[]byte)
	} else {
		big := make([]byte, len(b))
		buf = &big
	}
	return packet{buf: buf, n: copy(*buf, b), addr: addr}
}

func (p packet) free() {
	if cap(*p.buf) == poolBufSize {
		packetPool.Put(p.buf)
	}
}

// peerConn is the net.PacketConn pion reads one peer's records from.
type peerConn struct {
	d     *demux
	raddr net.Addr
	cid   []byte
	// Guarded by d.mu:
	addrKey     netip.AddrPort
	prev        *peerConn // the session this one replaces once its handshake succeeds
	established bool

	detached atomic.Bool                 // replaced by a parked conn: writes are dropped
	parked   atomic.Pointer[Session]     // the parked session this conn holds records for
	last     atomic.Pointer[net.UDPAddr] // where the peer last sent from

	queue     chan packet
	closed    chan struct{}
	closeOnce sync.Once
	deadline  *deadline.Deadline
}

// connectionID is the CID this server asks the peer to send (pion's
// generator option).
func (c *peerConn) connectionID() []byte { return c.cid }

func (c *peerConn) deliver(b []byte, addr netip.AddrPort) {
	ua := c.last.Load()
	if ua == nil || ua.AddrPort() != addr {
		ua = net.UDPAddrFromAddrPort(addr)
		c.last.Store(ua)
	}
	p := newPacket(b, ua)
	select {
	case c.queue <- p:
	default: // full: drop, as a congested link would; DTLS and CoAP retransmit
		p.free()
	}
}

// lastAddr is where the peer last sent from.
func (c *peerConn) lastAddr() net.Addr {
	if a := c.last.Load(); a != nil {
		return a
	}
	return c.raddr
}

// parkedSession is the parked session this conn holds records for, if any.
func (c *peerConn) parkedSession() *Session { return c.parked.Load() }

func (c *peerConn) isClosed() bool {
	select {
	case <-c.closed:
		return true
	default:
		return false
	}
}

// ReadFrom implements net.PacketConn.
func (c *peerConn) ReadFrom(b []byte) (int, net.Addr, error) {
	select {
	case p := <-c.queue:
		n := copy(b, (*p.buf)[:p.n])
		p.free()
		return n, p.addr, nil
	case <-c.closed:
		return 0, nil, net.ErrClosed
	case <-c.deadline.Done():
		return 0, nil, errTimeout
	}
}

// WriteTo implements net.PacketConn.
func (c *peerConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	if c.isClosed() {
		return 0, net.ErrClosed
	}
	if c.detached.Load() {
		return len(b), nil
	}
	c.d.datagramsOut.Add(1)
	ua, ok := addr.(*net.UDPAddr)
	if !ok {
		return 0, fmt.Errorf("write to %v: not a UDP address", addr)
	}
	return c.d.pc.WriteToUDPAddrPort(b, ua.AddrPort())
}

// Close implements net.PacketConn.
func (c *peerConn) Close() error {
	first := false
	c.closeOnce.Do(func() {
		first = true
		close(c.closed)
		c.d.release(c)
	})
	if sess := c.parked.Load(); first && sess != nil {
		sess.end() // a rebooted peer's new session replaced it
	}
	return nil
}

func (c *peerConn) LocalAddr() net.Addr               { return c.d.pc.LocalAddr() }
func (c *peerConn) SetDeadline(t time.Time) error     { c.deadline.Set(t); return nil }
func (c *peerConn) SetReadDeadline(t time.Time) error { c.deadline.Set(t); return nil }
func (c *peerConn) SetWriteDeadline(time.Time) error  { return nil }

// errTimeout is a net.Error for expired read deadlines.
var errTimeout net.Error = timeoutError{}

type timeoutError struct{}

func (timeoutError) Error() string   { return "i/o timeout" }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }
