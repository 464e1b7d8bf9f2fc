package coap

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"

	piondtls "github.com/pion/dtls/v3"
	udpClient "github.com/plgd-dev/go-coap/v3/udp/client"
)

// ErrSessionClosed is returned by Session.Do once the session has ended.
var ErrSessionClosed = errors.New("coap session closed")

// Session is one peer's CoAP conversation: a DTLS session, or for plain
// CoAP the peer's address. A device may hold several sessions at once (some
// clients download firmware over a second DTLS session).
//
// An idle DTLS session is parked: its keys and sequence numbers are kept
// and everything else (pion's and go-coap's goroutines and buffers) is
// released. The next record from the peer, or the next Do, resumes it
// without a handshake; the peer never notices. See park.go.
type Session struct {
	id       uint64
	identity Identity
	secure   bool
	opened   time.Time
	srv      *Server

	last        atomic.Int64 // unix nanoseconds of the last activity
	idleTimeout atomic.Int64 // nanoseconds
	inflight    atomic.Int32 // server-initiated requests in progress
	observing   atomic.Int32 // live observations: the session must not park

	mu     sync.Mutex
	cc     *udpClient.Conn // nil while parked
	pc     *peerConn       // DTLS: the packet conn records arrive on
	state  *piondtls.State // while parked
	waking chan struct{}   // closed when a resume completes or fails
	closed bool
	// ctx ends when the session closes; observations hang on it.
	ctx    context.Context
	cancel context.CancelFunc
}

// ID is unique among the sessions of one server process.
func (s *Session) ID() uint64 { return s.id }

// Identity is what the peer proved when the session was opened.
func (s *Session) Identity() Identity { return s.identity }

// Secure reports whether the session is protected by DTLS.
func (s *Session) Secure() bool { return s.secure }

// RemoteAddr is the peer's current address. With a DTLS Connection ID it
// follows the peer across NAT rebinding.
func (s *Session) RemoteAddr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cc != nil {
		return s.cc.RemoteAddr()
	}
	if s.pc != nil {
		return s.pc.lastAddr()
	}
	return nil
}

// SetIdleTimeout sets how long the session may stay silent before it is
// closed. The registration layer ties it to the registration lifetime.
func (s *Session) SetIdleTimeout(d time.Duration) { s.idleTimeout.Store(int64(d)); s.touch() }

// Close ends the session.
func (s *Session) Close() error {
	s.mu.Lock()
	cc := s.cc
	s.mu.Unlock()
	if cc != nil {
		return cc.Close()
	}
	s.end()
	return nil
}

// Done is closed when the session has ended.
func (s *Session) Done() <-chan struct{} { return s.ctx.Done() }

// Parked reports whether the session is parked.
func (s *Session) Parked() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state != nil
}

func (s *Session) touch()                { s.last.Store(time.Now().UnixNano()) }
func (s *Session) lastActive() time.Time { return time.Unix(0, s.last.Load()) }
func (s *Session) idle() time.Duration   { return time.Duration(s.idleTimeout.Load()) }

// Do sends a request to the peer over this session and waits for the
// response or ctx. It is how the server reads, writes and executes on a
// device. A parked session is resumed first.
func (s *Session) Do(ctx context.Context, req Request) (Response, error) {
	s.inflight.Add(1)
	defer s.inflight.Add(-1)
	s.touch()
	cc, err := s.conn(ctx)
	if err != nil {
		return Response{}, err
	}
	resp, err := do(ctx, cc, req)
	s.touch()
	if err == nil {
		s.srv.stats.out.Add(1)
		s.srv.stats.in.Add(1)
	}
	return resp, err
}

// conn returns the live go-coap connection, resuming a parked session.
func (s *Session) conn(ctx context.Context) (*udpClient.Conn, error) {
	for {
		s.mu.Lock()
		switch {
		case s.closed:
			s.mu.Unlock()
			return nil, ErrSessionClosed
		case s.cc != nil:
			cc := s.cc
			s.mu.Unlock()
			return cc, nil
		}
		waking := s.wakeLocked()
		s.mu.Unlock()
		select {
		case <-waking:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// end marks the session over: it leaves the server's table and Done closes.
func (s *Session) end() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	if s.state != nil {
		s.srv.parked.Add(-1)
		s.state = nil
	}
	pc := s.pc
	waking := s.waking
	s.waking = nil
	s.mu.Unlock()
	if waking != nil {
		close(waking)
	}
	if pc != nil && pc.parkedSession() == s {
		_ = pc.Close()
	}
	s.srv.sessions.remove(s)
	s.cancel()
}
