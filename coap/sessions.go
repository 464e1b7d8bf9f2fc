package coap

import (
	"sync"
	"time"
)

// sessionTable holds the open sessions, for the tick and for shutdown.
type sessionTable struct {
	mu   sync.Mutex
	byID map[uint64]*Session
}

func (t *sessionTable) init() { t.byID = make(map[uint64]*Session) }

func (t *sessionTable) add(s *Session) { t.mu.Lock(); t.byID[s.id] = s; t.mu.Unlock() }

func (t *sessionTable) remove(s *Session) { t.mu.Lock(); delete(t.byID, s.id); t.mu.Unlock() }

func (t *sessionTable) len() int { t.mu.Lock(); defer t.mu.Unlock(); return len(t.byID) }

// snapshot appends the open sessions to buf[:0], so a caller can reuse buf.
func (t *sessionTable) snapshot(buf []*Session) []*Session {
	t.mu.Lock()
	defer t.mu.Unlock()
	buf = buf[:0]
	for _, s := range t.byID {
		buf = append(buf, s)
	}
	return buf
}

// tickLoop drives retransmissions, block-wise and cache expiry and idle
// timeouts. Sessions active within hotWindow are checked every tick, the
// rest every ColdTicks ticks: at 100,000 idle devices that keeps the tick
// cheap while a lost confirmable message is still retried on time.
func (s *Server) tickLoop() {
	t := time.NewTicker(s.cfg.Tick)
	defer t.Stop()
	var buf []*Session
	for n := 1; ; n++ {
		select {
		case <-s.ctx.Done():
			return
		case now := <-t.C:
			buf = s.sessions.snapshot(buf)
			s.checkSessions(buf, now, n%s.cfg.ColdTicks == 0)
			clear(buf)
		}
	}
}

func (s *Server) checkSessions(sessions []*Session, now time.Time, cold bool) {
	for _, sess := range sessions {
		idle := now.Sub(sess.lastActive())
		if idle > sess.idle() {
			s.log.Debug().Uint64("session", sess.id).Str("identity", sess.identity.Name).
				Dur("idle", idle).Msg("closing idle session")
			_ = sess.Close()
			continue
		}
		sess.mu.Lock()
		cc := sess.cc
		sess.mu.Unlock()
		if cc == nil || !sess.secure {
			continue // parked, or plain CoAP whose expirations go-coap runs
		}
		if cold || idle < hotWindow {
			cc.CheckExpirations(now)
			if sc, ok := cc.NetConn().(*secureConn); ok {
				sc.retransmit(now)
			}
		}
		if s.cfg.ParkAfter > 0 && idle > s.cfg.ParkAfter {
			s.park(sess)
		}
	}
}
