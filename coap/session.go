package coap

import (
	"context"
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
	secure   bool
	opened   time.Time

	last        atomic.Int64 // unix nanoseconds of the last activity
	idleTimeout atomic.Int64 // nanoseconds
}

// ID is unique among the sessions of one server process.
func (s *Session) ID() uint64 { return s.id }

// Identity is what the peer proved when the session was opened.
func (s *Session) Identity() Identity { return s.identity }

// Secure reports whether the session is protected by DTLS.
func (s *Session) Secure() bool { return s.secure }

// RemoteAddr is the peer's current address. With a DTLS Connection ID it
// follows the peer across NAT rebinding.
func (s *Session) RemoteAddr() net.Addr { return s.cc.RemoteAddr() }

// SetIdleTimeout sets how long the session may stay silent before it is
// closed. The registration layer ties it to the registration lifetime.
func (s *Session) SetIdleTimeout(d time.Duration) { s.idleTimeout.Store(int64(d)); s.touch() }

// Close ends the session.
func (s *Session) Close() error { return s.cc.Close() }

// Done is closed when the session has ended.
func (s *Session) Done() <-chan struct{} { return s.cc.Done() }

func (s *Session) touch()                { s.last.Store(time.Now().UnixNano()) }
func (s *Session) lastActive() time.Time { return time.Unix(0, s.last.Load()) }
func (s *Session) idle() time.Duration   { return time.Duration(s.idleTimeout.Load()) }

// Do sends a request to the peer over this session and waits for the
// response or ctx. It is how the server reads, writes and executes on a
// device.
func (s *Session) Do(ctx context.Context, req Request) (Response, error) {
	s.touch()
	resp, err := do(ctx, s.cc, req)
	s.touch()
	return resp, err
}
