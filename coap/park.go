package coap

import (
	"context"
	"time"

	piondtls "github.com/pion/dtls/v3"
	udpClient "github.com/plgd-dev/go-coap/v3/udp/client"
)

// Parking. An open DTLS session costs five goroutines and about 45 KB in
// pion and go-coap, most of it buffers held while waiting for a record that
// may not come for hours: cellular devices sleep between exchanges. A
// session idle for ParkAfter keeps only its pion State (keys, sequence
// numbers, Connection IDs, a few hundred bytes) and its routing entry. When
// a record arrives for it, or the server sends it a request, it is resumed
// from that State with no handshake and no message on the air.
//
// Order matters for nonce safety: routing moves to the parked conn first,
// then the old connection is closed (its writes go nowhere), and only then
// is the State taken, so that it holds every sequence number the old
// connection ever used.

// park parks sess if it is an idle DTLS session with nothing in flight.
func (s *Server) park(sess *Session) {
	sess.mu.Lock()
	if sess.closed || sess.cc == nil || sess.pc == nil || sess.inflight.Load() > 0 ||
		sess.observing.Load() > 0 {
		sess.mu.Unlock()
		return
	}
	cc, old := sess.cc, sess.pc
	sc, ok := cc.NetConn().(*secureConn)
	if !ok {
		sess.mu.Unlock()
		return
	}
	pc := s.dtlsLn.demux.detach(old, sess)
	if pc == nil {
		sess.mu.Unlock()
		return
	}
	sess.cc, sess.pc = nil, pc
	sess.mu.Unlock()

	_ = cc.Close()      // the close hook sees sess.cc != cc and keeps the session
	_ = sc.Conn.Close() // its close_notify is dropped: old is detached
	state, ok := sc.Conn.ConnectionState()

	sess.mu.Lock()
	if !ok || sess.closed {
		sess.mu.Unlock()
		sess.end()
		return
	}
	sess.state = &state
	wake := sess.waking != nil || len(pc.queue) > 0
	sess.mu.Unlock()
	s.parked.Add(1)
	s.log.Trace().Uint64("session", sess.id).Str("identity", sess.identity.Name).Msg("session parked")
	if wake {
		go s.resume(sess)
	}
}

// wakeLocked starts resuming a parked session, once, and returns the
// channel closed when it is done. Called with s.mu held.
func (s *Session) wakeLocked() chan struct{} {
	if s.waking != nil {
		return s.waking
	}
	s.waking = make(chan struct{})
	if s.state != nil {
		go s.srv.resume(s)
	}
	// Otherwise parking is under way; park resumes when it finishes.
	return s.waking
}

// kick is called when a record arrives for a parked session.
func (s *Session) kick() {
	s.mu.Lock()
	if !s.closed && s.cc == nil {
		s.wakeLocked()
	}
	s.mu.Unlock()
}

// resume rebuilds a parked session's DTLS connection from its State and
// hands it to go-coap as if it had just been accepted.
func (s *Server) resume(sess *Session) {
	sess.mu.Lock()
	state, pc := sess.state, sess.pc
	sess.mu.Unlock()
	if state == nil || pc == nil {
		return
	}
	conn, err := piondtls.ResumeWithOptions(state, pc, pc.lastAddr(), s.dtlsLn.resumeOptions()...)
	if err == nil {
		ctx, cancel := context.WithTimeout(s.ctx, 5*time.Second)
		err = conn.HandshakeContext(ctx)
		cancel()
	}
	if err != nil {
		s.log.Warn().Err(err).Uint64("session", sess.id).Str("identity", sess.identity.Name).
			Msg("cannot resume parked session")
		sess.end()
		return
	}
	pc.parked.Store(nil)
	select {
	case s.dtlsLn.ready <- &secureConn{Conn: conn, identity: sess.identity, resumed: sess}:
	case <-s.ctx.Done():
		_ = conn.Close()
	}
}

// attach binds a resumed connection to its session.
func (s *Server) attach(sess *Session, cc *udpClient.Conn) {
	sess.mu.Lock()
	if sess.state != nil {
		s.parked.Add(-1)
	}
	sess.cc, sess.state = cc, nil
	waking := sess.waking
	sess.waking = nil
	sess.mu.Unlock()
	if waking != nil {
		close(waking)
	}
	s.log.Trace().Uint64("session", sess.id).Str("identity", sess.identity.Name).Msg("session resumed")
}

// resumeOptions are the pion options a resumed connection needs: its
// keys and Connection IDs come from the State.
func (l *dtlsListener) resumeOptions() []piondtls.Option {
	return []piondtls.Option{
		piondtls.WithFlightInterval(l.cfg.FlightInterval),
		piondtls.WithMTU(l.cfg.HandshakeMTU),
		piondtls.WithLoggerFactory(pionLogger{l.log, nil}),
	}
}
