package lwm2m

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/fotahub/fota/coap"
	"github.com/fotahub/fota/lwm2m/model"
)

// Notification is one observed change, or one Send from a client.
type Notification struct {
	Endpoint string
	// Watch is the ID of the observation; empty for a Send.
	Watch string
	// Path is the observed path; the root for composite observations and
	// Sends.
	Path model.Path
	// Node is the new value at Path (single-path observations only).
	Node   model.Node
	Values []model.PathValue
	// Received is when the server received it.
	Received time.Time
	// Reestablished marks the first value after the observation was set
	// up again on a new registration or DTLS session.
	Reestablished bool
}

// Watch is an observation the Operator keeps on a client's behalf. It
// outlives sessions and registrations: when the client registers again or
// speaks on a new DTLS session, the observation is sent again, and values
// keep arriving on C. Only Cancel ends it.
type Watch struct {
	ID       string
	Endpoint string
	Op       Op
	// C receives notifications. It is buffered; when the reader falls
	// behind, the oldest notifications are dropped (Dropped counts them).
	C <-chan Notification

	c  chan Notification
	o  *Operator
	mu sync.Mutex
	// cur is the client-side observation, nil while the client is away.
	cur         *coap.Observation
	pending     bool // an observe for it is queued or in flight
	established bool // it was set up at least once
	dropped     int
	ended       chan struct{}
}

// watchBuffer is the capacity of Watch.C. Small: a watch is kept per
// running firmware update, and a reader that falls behind loses the oldest
// values, not the latest.
const watchBuffer = 8

// Observe sets up an observation of op.Path (OpObserve) or op.Paths
// (OpObserveComposite) and returns it with the current value. For a
// sleeping client it waits, like Do, until the client wakes up or ctx ends.
func (o *Operator) Observe(ctx context.Context, ep string, op Op) (*Watch, Result, error) {
	c := make(chan Notification, watchBuffer)
	w := &Watch{ID: newTicketID(), Endpoint: ep, Op: op, C: c, c: c, o: o, pending: true, ended: make(chan struct{})}
	// ctx bounds the wait: when it ends first, the operation is withdrawn.
	expires := time.Now().Add(o.cfg.QueueExpiry)
	if err := op.validate(); err != nil || (op.Kind != OpObserve && op.Kind != OpObserveComposite) {
		if err == nil {
			err = fmt.Errorf("%s is not an observation", op.Kind)
		}
		return nil, Result{}, &OpError{Op: op.Kind.String(), Endpoint: ep, Path: op.target(), Err: err}
	}
	if _, ok := o.reg.Lookup(ep); !ok {
		return nil, Result{}, &OpError{Op: op.Kind.String(), Endpoint: ep, Path: op.target(), Err: ErrNotRegistered}
	}
	// Listed before it is sent, so that a re-registration meanwhile finds
	// it (pending: it is not sent twice).
	o.mu.Lock()
	o.deviceLocked(ep).watches[w.ID] = w
	o.mu.Unlock()
	t, err := o.submit(ctx, ep, op, expires, w, false)
	if err == nil {
		var res Result
		if res, err = o.wait(ctx, t); err == nil {
			return w, res, nil
		}
	}
	o.mu.Lock()
	delete(o.deviceLocked(ep).watches, w.ID)
	o.mu.Unlock()
	return nil, Result{}, err
}

// Watches lists the endpoint's observations.
func (o *Operator) Watches(ep string) []*Watch {
	o.mu.Lock()
	defer o.mu.Unlock()
	var ws []*Watch
	if d := o.devices[ep]; d != nil {
		for _, w := range d.watches {
			ws = append(ws, w)
		}
	}
	return ws
}

// Cancel ends the observation: the client is told if it is reachable,
// and C is closed.
func (w *Watch) Cancel(ctx context.Context) error {
	o := w.o
	o.mu.Lock()
	if d := o.devices[w.Endpoint]; d != nil {
		delete(d.watches, w.ID)
	}
	o.mu.Unlock()
	w.mu.Lock()
	cur := w.cur
	w.cur = nil
	select {
	case <-w.ended:
		w.mu.Unlock()
		return nil
	default:
		close(w.ended)
	}
	w.mu.Unlock()
	var err error
	if cur != nil {
		err = cur.Cancel(ctx)
	}
	close(w.c) // after cur.Cancel: no notification can follow
	return err
}

// Dropped is the number of notifications lost because C was full.
func (w *Watch) Dropped() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.dropped
}

// Active reports whether the observation is established on the client
// now (it is not while the client is away and it waits to be redone).
func (w *Watch) Active() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.cur != nil
}

// deliver puts n on C, dropping the oldest notification when C is full.
func (w *Watch) deliver(n Notification) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.deliverLocked(n)
}

func (w *Watch) deliverLocked(n Notification) {
	select {
	case <-w.ended:
		return
	default:
	}
	for {
		select {
		case w.c <- n:
			return
		default:
		}
		select {
		case <-w.c:
			w.dropped++
		default:
		}
	}
}

// lost forgets the client-side observation; it is redone when the client
// is back.
func (w *Watch) lost() {
	w.mu.Lock()
	w.cur = nil
	w.mu.Unlock()
}

// errObserveRefused: the client answered 2.05 without Observe, so it
// does not observe that target.
var errObserveRefused = errors.New("client does not support observing it")

// observe sends the observe request of t and binds the observation to
// t.watch, whose notifications then flow to its channel.
func (o *Operator) observe(ctx context.Context, t *Ticket, sess *coap.Session, req coap.Request) (Result, error) {
	w := t.watch
	obs, first, err := sess.Observe(ctx, req, func(resp coap.Response) {
		res, err := t.Op.result(t.Endpoint, resp)
		if err != nil {
			o.log.Info().Err(err).Str("endpoint", t.Endpoint).Str("watch", w.ID).Msg("bad notification dropped")
			return
		}
		w.deliver(w.notification(res, false))
	})
	if err == nil && obs == nil && first.Code.IsSuccess() {
		err = errObserveRefused
	}
	var res Result
	if err == nil {
		res, err = t.Op.result(t.Endpoint, first)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.pending = false
	if err != nil {
		return res, o.opError(t, err)
	}
	old := w.cur
	w.cur = obs
	again := w.established
	w.established = true
	select {
	case <-w.ended: // cancelled meanwhile
		w.cur = nil
		go func() { _ = obs.Cancel(context.Background()) }()
		return res, nil
	default:
	}
	if old != nil && old != obs {
		go func() { _ = old.Cancel(ctx) }()
	}
	obs.AfterEnd(func() {
		w.mu.Lock()
		if w.cur == obs {
			w.cur = nil
		}
		w.mu.Unlock()
	})
	if again {
		w.deliverLocked(w.notification(res, true))
	}
	return res, nil
}

func (w *Watch) notification(res Result, again bool) Notification {
	n := Notification{Endpoint: w.Endpoint, Watch: w.ID, Node: res.Node, Values: res.Values,
		Received: time.Now(), Reestablished: again}
	if w.Op.Kind == OpObserve {
		n.Path = w.Op.Path
	}
	return n
}

// reobserveLocked queues the observe of every watch of d that is not
// established, or of all of them when the client registered anew or
// moved to a new session (its old observations died with the old one).
func (o *Operator) reobserveLocked(d *device, all bool) {
	for _, w := range d.watches {
		w.mu.Lock()
		redo := !w.pending && (all || w.cur == nil)
		if redo {
			w.pending = true
		}
		w.mu.Unlock()
		if redo {
			t := o.newTicket(context.Background(), d.ep, w.Op, time.Now().Add(o.cfg.QueueExpiry), w)
			o.enqueueLocked(d, t)
		}
	}
}
