package coap

import (
	"net"
	"sync/atomic"
	"time"

	udpClient "github.com/plgd-dev/go-coap/v3/udp/client"
)

// Session is one peer's CoAP conversation: a DTLS session, or for plain
// CoAP the peer's address. A device may hold several sessions at once (some
// clients download firmware over a second DTLS session).
type Session struct {
	id       uint64
	identity Identity
	cc       *udpClient.Conn
	idle     *idleMonitor
	opened   time.Time
}

// ID is unique among the sessions of one server process.
func (s *Session) ID() uint64 { return s.id }

// Identity is what the peer proved when the session was opened.
func (s *Session) Identity() Identity { return s.identity }

// Secure reports whether the session is protected by DTLS.
func (s *Session) Secure() bool { return s.identity.Mode != NoSec }

// RemoteAddr is the peer's current address. With a DTLS Connection ID it
// follows the peer across NAT rebinding.
func (s *Session) RemoteAddr() net.Addr { return s.cc.RemoteAddr() }

// SetIdleTimeout sets how long the session may stay silent before it is
// closed. The registration layer ties it to the registration lifetime.
func (s *Session) SetIdleTimeout(d time.Duration) { s.idle.setTimeout(d) }

// Close ends the session.
func (s *Session) Close() error { return s.cc.Close() }

// Done is closed when the session has ended.
func (s *Session) Done() <-chan struct{} { return s.cc.Done() }

// idleMonitor closes a session that has been silent longer than its
// timeout. Unlike go-coap's monitor its timeout can change after the
// session opened, and it never closes a session with a confirmable
// message still in flight.
type idleMonitor struct {
	last    atomic.Int64 // unix nanoseconds of the last activity
	timeout atomic.Int64 // nanoseconds
}

func newIdleMonitor(timeout time.Duration) *idleMonitor {
	m := &idleMonitor{}
	m.timeout.Store(int64(timeout))
	m.Notify()
	return m
}

func (m *idleMonitor) setTimeout(d time.Duration) { m.timeout.Store(int64(d)); m.Notify() }

// Notify records activity.
func (m *idleMonitor) Notify() { m.last.Store(time.Now().UnixNano()) }

// CheckInactivity closes cc when it has been idle too long.
func (m *idleMonitor) CheckInactivity(now time.Time, cc *udpClient.Conn) {
	if now.UnixNano()-m.last.Load() < m.timeout.Load() {
		return
	}
	if cc.Session() != nil && cc.Context().Err() == nil {
		_ = cc.Close()
	}
}
