package coap

import (
	"bytes"
	"context"
	"net"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/message/pool"
	"github.com/plgd-dev/go-coap/v3/net/responsewriter"
	udpClient "github.com/plgd-dev/go-coap/v3/udp/client"
)

type sessionKey struct{}

// sessionOf returns the Session bound to a go-coap connection.
func sessionOf(cc *udpClient.Conn) *Session {
	s, _ := cc.Context().Value(sessionKey{}).(*Session)
	return s
}

// newSession binds a new go-coap connection to a Session with the identity
// its peer proved, or to the parked Session it resumes.
func (s *Server) newSession(cc *udpClient.Conn, secure bool) {
	id := Identity{Mode: NoSec}
	var pc *peerConn
	if sc, ok := cc.NetConn().(*secureConn); ok {
		if sc.resumed != nil {
			cc.SetContextValue(sessionKey{}, sc.resumed)
			s.closeHook(sc.resumed, cc)
			s.attach(sc.resumed, cc)
			return
		}
		id, pc = sc.identity, sc.pc
	}
	sess := &Session{
		id: s.nextID.Add(1), identity: id, secure: secure, opened: time.Now(), srv: s,
		cc: cc, pc: pc,
	}
	sess.ctx, sess.cancel = context.WithCancel(context.Background())
	sess.idleTimeout.Store(int64(s.cfg.IdleTimeout))
	sess.touch()
	cc.SetContextValue(sessionKey{}, sess)
	s.sessions.add(sess)
	s.closeHook(sess, cc)
	s.log.Debug().Uint64("session", sess.id).Str("identity", id.Name).Str("mode", id.Mode.String()).
		Str("remote", addrString(cc.RemoteAddr())).Msg("session opened")
}

// closeHook ends sess when cc closes, unless cc was closed to park it.
func (s *Server) closeHook(sess *Session, cc *udpClient.Conn) {
	cc.AddOnClose(func() {
		sess.mu.Lock()
		mine := sess.cc == cc
		sess.mu.Unlock()
		if !mine {
			return
		}
		sess.end()
		s.log.Debug().Uint64("session", sess.id).Str("identity", sess.identity.Name).
			Str("remote", addrString(cc.RemoteAddr())).Msg("session closed")
	})
}

// handle adapts go-coap's handler to Handler.
func (s *Server) handle(w *responsewriter.ResponseWriter[*udpClient.Conn], m *pool.Message) {
	s.stats.in.Add(1)
	sess := sessionOf(w.Conn())
	if sess == nil {
		return
	}
	sess.touch()
	defer func() {
		// A bug in one handler must not take the server and every other
		// device's session down with it.
		if p := recover(); p != nil {
			s.log.Error().Interface("panic", p).Str("identity", sess.identity.Name).
				Str("path", pathOf(m)).Msg("handler panicked")
			writeResponse(w, Reply(InternalServerError))
		}
	}()
	req, err := newRequest(m, sess, w.Conn().RemoteAddr())
	if err != nil {
		writeResponse(w, Reply(BadRequest))
		return
	}
	resp := s.cfg.Handler.ServeCoAP(m.Context(), req)
	if writeResponse(w, resp) {
		s.stats.out.Add(1)
	}
	if then := resp.Then; then != nil {
		if !responsewriter.AfterWrite(m.Context(), func() { go then() }) {
			go then()
		}
	}
}

// writeResponse sets resp as the answer to w's request.
func writeResponse(w *responsewriter.ResponseWriter[*udpClient.Conn], resp Response) bool {
	opts := make(message.Options, 0, len(resp.LocationPath))
	for _, seg := range resp.LocationPath {
		opts = append(opts, message.Option{ID: message.LocationPath, Value: []byte(seg)})
	}
	if resp.Observed {
		opts = appendUint32Option(opts, message.Observe, resp.ObserveSeq)
	}
	for _, b := range []struct {
		id  message.OptionID
		val Block
	}{{message.Block1, resp.Block1}, {message.Block2, resp.Block2}} {
		if v, err := b.val.encode(); b.val.Present() && err == nil {
			opts = appendUint32Option(opts, b.id, v)
		}
	}
	if len(resp.ETag) > 0 {
		opts = append(opts, message.Option{ID: message.ETag, Value: resp.ETag})
	}
	if resp.Size2 > 0 {
		opts = appendUint32Option(opts, message.Size2, uint32(min(resp.Size2, 1<<32-1)))
	}
	var body *bytes.Reader
	if resp.Payload != nil || resp.ContentFormat != NoFormat {
		body = bytes.NewReader(resp.Payload)
	}
	cf := message.MediaType(0)
	if resp.ContentFormat != NoFormat {
		cf = message.MediaType(resp.ContentFormat)
	}
	var err error
	if body != nil {
		err = w.SetResponse(codes.Code(resp.Code), cf, body, opts...)
	} else {
		err = w.SetResponse(codes.Code(resp.Code), cf, nil, opts...)
	}
	return err == nil
}

func appendUint32Option(opts message.Options, id message.OptionID, v uint32) message.Options {
	buf := make([]byte, 4)
	n, _ := message.EncodeUint32(buf, v)
	return append(opts, message.Option{ID: id, Value: buf[:n]})
}

// newRequest converts a go-coap message into a Request.
func newRequest(m *pool.Message, sess *Session, remote net.Addr) (*Request, error) {
	path, err := m.Options().Path()
	if err != nil && err != message.ErrOptionNotFound {
		return nil, err
	}
	if path == "" {
		path = "/"
	}
	req := &Request{
		Method:        Code(m.Code()),
		Path:          path,
		ContentFormat: NoFormat,
		Accept:        NoFormat,
		Token:         bytes.Clone(m.Token()),
		RemoteAddr:    remote,
		Session:       sess,
	}
	if req.Block1, err = blockOption(m, message.Block1); err != nil {
		return nil, err
	}
	if req.Block2, err = blockOption(m, message.Block2); err != nil {
		return nil, err
	}
	if size, err := m.GetOptionUint32(message.Size1); err == nil {
		req.Size1 = int64(size)
	}
	req.AskSize2 = m.HasOption(message.Size2)
	switch obs, err := m.Observe(); {
	case err != nil:
	case obs == 0:
		req.Observe = ObserveRegister
	case obs == 1:
		req.Observe = ObserveDeregister
	}
	if sess != nil {
		req.Identity = sess.identity
	}
	if q, err := m.Options().Queries(); err == nil {
		req.Query = q
	}
	if cf, err := m.ContentFormat(); err == nil {
		req.ContentFormat = int(cf)
	}
	if a, err := m.Accept(); err == nil {
		req.Accept = int(a)
	}
	if m.Body() != nil {
		if req.Payload, err = m.ReadBody(); err != nil {
			return nil, err
		}
	}
	return req, nil
}

func pathOf(m *pool.Message) string {
	p, _ := m.Options().Path()
	return p
}
