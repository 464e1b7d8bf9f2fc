package coap

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/message/pool"
	"github.com/plgd-dev/go-coap/v3/net/client"
)

// Observation is an observation (RFC 7641) the server holds on a peer's
// resource. It lives as long as its session: a session with observations
// is never parked, because parking drops go-coap's observation state and
// the peer's next notification would be answered with a reset.
type Observation struct {
	sess *Session
	req  Request
	obs  client.Observation
	once sync.Once
	// ctx ends with the observation; stop detaches it from the session's.
	ctx    context.Context
	cancel context.CancelFunc
	stop   func() bool
}

// Observe sends req with Observe 0 (a GET, or a FETCH for composite
// observations) and returns the first response. When the peer accepted the
// observation (first.Observed), notify is called with every later
// notification, in order, on the session's receive goroutine, and the
// Observation is live until Cancel, a final notification without Observe,
// or the end of the session. A response that is not 2.05 or 2.03 is
// returned as first with a nil Observation and no error.
func (s *Session) Observe(ctx context.Context, req Request, notify func(Response)) (*Observation, Response, error) {
	s.inflight.Add(1)
	defer s.inflight.Add(-1)
	s.touch()
	cc, err := s.conn(ctx)
	if err != nil {
		return nil, Response{}, err
	}
	req.Observe = ObserveRegister
	m, err := newMessage(ctx, cc, req)
	if err != nil {
		return nil, Response{}, err
	}
	defer cc.ReleaseMessage(m)
	o := &Observation{sess: s, req: req}
	o.ctx, o.cancel = context.WithCancel(context.Background())
	// The observation dies with the session, without a goroutine per
	// observation: thousands may be live.
	o.stop = context.AfterFunc(s.ctx, o.end)
	o.req.Token = append([]byte(nil), m.Token()...)
	first := make(chan Response, 1)
	var gotFirst bool
	s.observing.Add(1) // before the request: the session must not park under it
	obs, err := cc.DoObserve(m, func(n *pool.Message) {
		resp, rerr := newResponse(n)
		if !gotFirst {
			gotFirst = true
			first <- resp
			return
		}
		s.touch()
		if rerr == nil {
			s.srv.stats.in.Add(1)
			notify(resp)
		}
		if !resp.Observed {
			o.end()
		}
	})
	if err != nil && !strings.Contains(err.Error(), "unexpected return code") {
		o.end()
		return nil, Response{}, fmt.Errorf("coap observe %s: %w", req.Path, err)
	}
	s.srv.stats.out.Add(1)
	var resp Response
	select {
	case resp = <-first:
	case <-ctx.Done():
		o.end()
		if obs != nil {
			_ = obs.Cancel(ctx)
		}
		return nil, Response{}, fmt.Errorf("coap observe %s: %w", req.Path, ctx.Err())
	}
	s.srv.stats.in.Add(1)
	if err != nil || !resp.Observed || obs.Canceled() {
		o.end()
		return nil, resp, nil
	}
	o.obs = obs
	return o, resp, nil
}

// Ended is closed when the observation is over: cancelled, finished by the
// peer, or dead with its session.
func (o *Observation) Ended() <-chan struct{} { return o.ctx.Done() }

// AfterEnd calls f in its own goroutine once the observation is over, like
// context.AfterFunc; stop detaches f.
func (o *Observation) AfterEnd(f func()) (stop func() bool) { return context.AfterFunc(o.ctx, f) }

// Token is the observation's token.
func (o *Observation) Token() []byte { return o.req.Token }

// end marks the observation over, once, and lets the session park again.
func (o *Observation) end() {
	o.once.Do(func() {
		o.sess.observing.Add(-1)
		if o.stop != nil {
			o.stop()
		}
		o.cancel()
	})
}

// Cancel ends the observation and tells the peer (RFC 7641 §3.6): a
// request like the one that started it, with Observe 1 and the same token.
// go-coap cancels with a GET only, so a FETCH observation is cancelled by
// hand; the peer's answer goes to this request, not to the observation.
func (o *Observation) Cancel(ctx context.Context) error {
	select {
	case <-o.ctx.Done():
		return nil
	default:
	}
	defer o.end()
	if o.req.Method == GET {
		if err := o.obs.Cancel(ctx); err != nil {
			return fmt.Errorf("coap cancel observation %s: %w", o.req.Path, err)
		}
		return nil
	}
	req := o.req
	req.Observe = ObserveDeregister
	_, err := o.sess.Do(ctx, req)
	gone, cancel := context.WithCancel(ctx)
	cancel()
	_ = o.obs.Cancel(gone) // forget it locally; the request above told the peer
	if err != nil {
		return fmt.Errorf("coap cancel observation %s: %w", o.req.Path, err)
	}
	return nil
}

// ErrNoObservation is returned by Notify for a request that did not
// register an observation.
var ErrNoObservation = errors.New("coap: request has no observe token")

// Notify sends a notification (RFC 7641 §4.2) for the observation that
// req registered: resp with Observe seq and req's token, confirmable so
// that the peer acknowledges it or the observation is dropped. A payload
// larger than the block size is sent block-wise; the observer fetches the
// rest with GETs. It returns once the peer acknowledged it or ctx ends.
func (c *ClientConn) Notify(ctx context.Context, req *Request, seq uint32, resp Response) error {
	if len(req.Token) == 0 {
		return ErrNoObservation
	}
	m := c.cc.AcquireMessage(ctx)
	defer c.cc.ReleaseMessage(m)
	m.SetToken(message.Token(req.Token))
	m.SetCode(codes.Code(resp.Code))
	m.SetObserve(seq)
	m.SetType(message.Confirmable)
	if resp.Payload != nil || resp.ContentFormat != NoFormat {
		cf := max(resp.ContentFormat, 0)
		m.SetContentFormat(message.MediaType(cf))
		m.SetBody(bytes.NewReader(resp.Payload))
	}
	if err := c.cc.WriteMessage(m); err != nil {
		return fmt.Errorf("coap notify %s: %w", req.Path, err)
	}
	return nil
}
