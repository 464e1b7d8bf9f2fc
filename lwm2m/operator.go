package lwm2m

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/fotahub/fota/coap"
)

// Operator sends operations to registered clients. It is the one place
// that queues: every operation waits in its endpoint's queue, in order,
// until the client is reachable, and is then sent, one at a time. A
// client is reachable while it has a live session and, in queue mode
// (LwM2M Core §6.5), for AwakeTime after it last spoke: a registration
// Update, a Send, any request. An operation that is still queued when its
// expiry passes fails with ErrExpired.
//
// Operator is also the CoAP handler of the server: it answers Send
// (POST /dp) itself and passes the registration interface to the Registry,
// noting on the way that the client is awake.
type Operator struct {
	reg *Registry
	cfg OperatorConfig
	log zerolog.Logger

	mu        sync.Mutex
	devices   map[string]*device // by endpoint
	bySession map[*coap.Session]string
	tickets   map[string]*Ticket
	sends     map[*sendSub]struct{}
}

// OperatorConfig configures an Operator.
type OperatorConfig struct {
	// SendTimeout bounds one operation once it is sent: CoAP's
	// MAX_TRANSMIT_WAIT (93 s) by default, the longest a confirmable
	// request and its retransmissions take to be answered.
	SendTimeout time.Duration
	// AwakeTime is how long a queue-mode client listens after it spoke;
	// MAX_TRANSMIT_WAIT (93 s) by default, as LwM2M Core §6.5 suggests.
	AwakeTime time.Duration
	// QueueExpiry is the expiry of a submitted operation that names none:
	// 24 hours by default.
	QueueExpiry time.Duration
	// MaxQueued bounds the operations waiting for one endpoint (64).
	MaxQueued int
	// TicketRetention is how long a finished ticket can still be looked
	// up (1 hour).
	TicketRetention time.Duration
	// Registered, when set, hears of every Register (update false) and
	// Update after the Operator has noted it; it runs on the registry's
	// notification goroutine and must not block for long.
	Registered func(reg Registration, update bool)
	Logger     zerolog.Logger
}

func (c *OperatorConfig) defaults() {
	if c.SendTimeout <= 0 {
		c.SendTimeout = DefaultIdleGrace
	}
	if c.AwakeTime <= 0 {
		c.AwakeTime = DefaultIdleGrace
	}
	if c.QueueExpiry <= 0 {
		c.QueueExpiry = 24 * time.Hour
	}
	if c.MaxQueued <= 0 {
		c.MaxQueued = 64
	}
	if c.TicketRetention <= 0 {
		c.TicketRetention = time.Hour
	}
}

// device is what the Operator knows of one endpoint.
type device struct {
	ep         string
	session    *coap.Session
	queueMode  bool
	awakeUntil time.Time
	queue      []*Ticket
	sending    bool // a drain goroutine owns the queue head
	watches    map[string]*Watch
}

// NewOperator returns an Operator for the clients of reg and makes itself
// reg's RegistrationObserver. Serve it as the CoAP handler in place of reg.
func NewOperator(reg *Registry, cfg OperatorConfig) *Operator {
	cfg.defaults()
	o := &Operator{
		reg: reg, cfg: cfg,
		log:       cfg.Logger.With().Str("component", "lwm2m-ops").Logger(),
		devices:   map[string]*device{},
		bySession: map[*coap.Session]string{},
		tickets:   map[string]*Ticket{},
		sends:     map[*sendSub]struct{}{},
	}
	reg.observer = o
	return o
}

// TicketState is where a submitted operation is.
type TicketState string

// Ticket states.
const (
	TicketQueued  TicketState = "queued"
	TicketSending TicketState = "sending"
	TicketDone    TicketState = "done"
	TicketFailed  TicketState = "failed"
)

// Ticket is a submitted operation: the caller waits on it, or keeps its
// ID and comes back for the result.
type Ticket struct {
	ID       string
	Endpoint string
	Op       Op
	Created  time.Time
	Expires  time.Time

	ctx   context.Context // the submitter's; bounds the send
	timer *time.Timer
	watch *Watch // set for the observe that (re-)establishes a Watch
	done  chan struct{}
	// kept: a ticket of Submit stays for TicketRetention once finished,
	// to be looked up; one of Do or Observe goes at once, its caller has
	// the result (a firmware update makes dozens).
	kept bool

	// Guarded by Operator.mu until done is closed, then immutable.
	state    TicketState
	finished time.Time
	result   Result
	err      error
}

// TicketStatus is a snapshot of a ticket.
type TicketStatus struct {
	ID       string
	Endpoint string
	Op       Op
	State    TicketState
	Created  time.Time
	Expires  time.Time
	Finished time.Time
	Result   Result
	Err      error
}

// Do sends op to the endpoint and waits for the result. If the client is
// asleep, op waits in its queue until the client wakes up or ctx ends;
// then op is withdrawn, unless it was already sent.
func (o *Operator) Do(ctx context.Context, ep string, op Op) (Result, error) {
	// ctx bounds the wait: when it ends first, the operation is withdrawn.
	expires := time.Now().Add(o.cfg.QueueExpiry)
	t, err := o.submit(ctx, ep, op, expires, nil, false)
	if err != nil {
		return Result{}, err
	}
	return o.wait(ctx, t)
}

// Submit queues op for the endpoint and returns its ticket at once. A
// zero expires means QueueExpiry from now.
func (o *Operator) Submit(ep string, op Op, expires time.Time) (TicketStatus, error) {
	if expires.IsZero() {
		expires = time.Now().Add(o.cfg.QueueExpiry)
	}
	t, err := o.submit(context.Background(), ep, op, expires, nil, true)
	if err != nil {
		return TicketStatus{}, err
	}
	return o.status(t), nil
}

// Wait waits for the ticket's result until ctx ends; the ticket stays
// queued when ctx ends first.
func (o *Operator) Wait(ctx context.Context, id string) (TicketStatus, error) {
	o.mu.Lock()
	t, ok := o.tickets[id]
	o.mu.Unlock()
	if !ok {
		return TicketStatus{}, fmt.Errorf("ticket %s: %w", id, ErrNotFound)
	}
	select {
	case <-t.done:
	case <-ctx.Done():
	}
	return o.status(t), nil
}

// Ticket returns the ticket's current status.
func (o *Operator) Ticket(id string) (TicketStatus, error) {
	o.mu.Lock()
	t, ok := o.tickets[id]
	o.mu.Unlock()
	if !ok {
		return TicketStatus{}, fmt.Errorf("ticket %s: %w", id, ErrNotFound)
	}
	return o.status(t), nil
}

// Cancel withdraws a queued ticket. A ticket already sent cannot be
// called back: Cancel then reports false.
func (o *Operator) Cancel(id string) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	t, ok := o.tickets[id]
	if !ok || t.state != TicketQueued {
		return false
	}
	o.finishLocked(t, Result{}, o.opError(t, ErrCancelled))
	return true
}

// Queue lists the endpoint's waiting operations, oldest first.
func (o *Operator) Queue(ep string) []TicketStatus {
	o.mu.Lock()
	d := o.devices[ep]
	var ts []*Ticket
	if d != nil {
		ts = append(ts, d.queue...)
	}
	o.mu.Unlock()
	out := make([]TicketStatus, len(ts))
	for i, t := range ts {
		out[i] = o.status(t)
	}
	return out
}

func (o *Operator) status(t *Ticket) TicketStatus {
	o.mu.Lock()
	defer o.mu.Unlock()
	return TicketStatus{ID: t.ID, Endpoint: t.Endpoint, Op: t.Op, State: t.state, Created: t.Created,
		Expires: t.Expires, Finished: t.finished, Result: t.result, Err: t.err}
}

func (o *Operator) wait(ctx context.Context, t *Ticket) (Result, error) {
	select {
	case <-t.done:
	case <-ctx.Done():
		o.mu.Lock()
		if t.state == TicketQueued {
			o.finishLocked(t, Result{}, o.opError(t, ctx.Err()))
		}
		o.mu.Unlock()
		<-t.done // a sent operation ends within ctx: the send uses it
	}
	return t.result, t.err
}

func (o *Operator) submit(ctx context.Context, ep string, op Op, expires time.Time, w *Watch, kept bool) (*Ticket, error) {
	err := op.validate()
	if err == nil && w == nil && (op.Kind == OpObserve || op.Kind == OpObserveComposite) {
		err = errors.New("observations are made with Operator.Observe")
	}
	if err != nil {
		return nil, &OpError{Op: op.Kind.String(), Endpoint: ep, Path: op.target(), Err: err}
	}
	reg, ok := o.reg.Lookup(ep)
	if !ok {
		return nil, &OpError{Op: op.Kind.String(), Endpoint: ep, Path: op.target(), Err: ErrNotRegistered}
	}
	if reg.Version == "1.0" && (op.Kind == OpReadComposite || op.Kind == OpObserveComposite) {
		return nil, &OpError{Op: op.Kind.String(), Endpoint: ep, Path: op.target(),
			Err: errors.New("composite operations need LwM2M 1.1 or later; the device registered with 1.0")}
	}
	t := o.newTicket(ctx, ep, op, expires, w)
	t.kept = kept
	o.mu.Lock()
	defer o.mu.Unlock()
	d := o.deviceLocked(ep)
	if d.session == nil {
		// The first operation after a restart: the registry knows the
		// session if the client spoke since.
		d.session, d.queueMode = o.reg.Session(ep), reg.Queue
		if d.session != nil {
			o.bySession[d.session] = ep
		}
	}
	if len(d.queue) >= o.cfg.MaxQueued {
		return nil, &OpError{Op: op.Kind.String(), Endpoint: ep, Path: op.target(), Err: ErrQueueFull}
	}
	o.enqueueLocked(d, t)
	return t, nil
}

func (o *Operator) newTicket(ctx context.Context, ep string, op Op, expires time.Time, w *Watch) *Ticket {
	return &Ticket{ID: newTicketID(), Endpoint: ep, Op: op, Created: time.Now(), Expires: expires,
		ctx: ctx, watch: w, done: make(chan struct{}), state: TicketQueued}
}

// enqueueLocked queues t, observes first (they restore what the client
// lost), and starts sending if d is reachable.
func (o *Operator) enqueueLocked(d *device, t *Ticket) {
	o.tickets[t.ID] = t
	if t.watch != nil {
		d.queue = append([]*Ticket{t}, d.queue...)
	} else {
		d.queue = append(d.queue, t)
	}
	t.timer = time.AfterFunc(time.Until(t.Expires), func() { o.expire(t) })
	now := time.Now()
	o.log.Debug().Str("endpoint", d.ep).Str("op", t.Op.Kind.String()).Str("path", t.Op.target()).
		Str("ticket", t.ID).Bool("reachable", d.reachable(now)).Msg("operation queued")
	o.kickLocked(d, now)
}

func (o *Operator) deviceLocked(ep string) *device {
	d, ok := o.devices[ep]
	if !ok {
		d = &device{ep: ep, watches: map[string]*Watch{}}
		o.devices[ep] = d
	}
	return d
}

// reachable reports whether operations can be sent to d now.
func (d *device) reachable(now time.Time) bool {
	if d.session == nil {
		return false
	}
	select {
	case <-d.session.Done():
		return false
	default:
	}
	return !d.queueMode || now.Before(d.awakeUntil)
}

// kickLocked starts draining d's queue if d is reachable and nobody is.
func (o *Operator) kickLocked(d *device, now time.Time) {
	if d.sending || len(d.queue) == 0 || !d.reachable(now) {
		return
	}
	d.sending = true
	go o.drain(d)
}

// drain sends d's queued operations in order while d stays reachable.
func (o *Operator) drain(d *device) {
	for {
		o.mu.Lock()
		now := time.Now()
		if len(d.queue) == 0 || !d.reachable(now) {
			d.sending = false
			o.mu.Unlock()
			return
		}
		t := d.queue[0]
		d.queue = d.queue[1:]
		t.state = TicketSending
		sess := d.session
		o.mu.Unlock()

		res, err := o.send(t, sess)
		o.mu.Lock()
		o.finishLocked(t, res, err)
		o.mu.Unlock()
	}
}

// send performs one operation over sess.
func (o *Operator) send(t *Ticket, sess *coap.Session) (Result, error) {
	reg, ok := o.reg.Lookup(t.Endpoint)
	if !ok {
		return Result{}, o.opError(t, ErrNotRegistered)
	}
	req, err := t.Op.request(&reg)
	if err != nil {
		return Result{}, o.opError(t, err)
	}
	ctx, cancel := context.WithTimeout(t.ctx, o.cfg.SendTimeout)
	defer cancel()
	start := time.Now()
	var res Result
	if t.watch != nil {
		res, err = o.observe(ctx, t, sess, req)
	} else {
		var resp coap.Response
		if resp, err = sess.Do(ctx, req); err == nil {
			res, err = t.Op.result(t.Endpoint, resp)
		} else {
			err = o.opError(t, err)
		}
	}
	ev := o.log.Debug()
	if err != nil {
		ev = o.log.Info().Err(err)
	}
	ev.Str("endpoint", t.Endpoint).Str("op", t.Op.Kind.String()).Str("path", t.Op.target()).
		Str("ticket", t.ID).Dur("took", time.Since(start)).Msg("operation finished")
	return res, err
}

func (o *Operator) opError(t *Ticket, err error) error {
	var oe *OpError
	if errors.As(err, &oe) {
		return err
	}
	return &OpError{Op: t.Op.Kind.String(), Endpoint: t.Endpoint, Path: t.Op.target(), Err: err}
}

// finishLocked records a ticket's outcome, once.
func (o *Operator) finishLocked(t *Ticket, res Result, err error) {
	if t.state == TicketDone || t.state == TicketFailed {
		return
	}
	if d := o.devices[t.Endpoint]; d != nil {
		for i, q := range d.queue {
			if q == t {
				d.queue = append(d.queue[:i:i], d.queue[i+1:]...)
				break
			}
		}
	}
	t.timer.Stop()
	t.state, t.result, t.err, t.finished = TicketDone, res, err, time.Now()
	if err != nil {
		t.state = TicketFailed
	}
	close(t.done)
	if !t.kept {
		delete(o.tickets, t.ID)
		return
	}
	time.AfterFunc(o.cfg.TicketRetention, func() {
		o.mu.Lock()
		delete(o.tickets, t.ID)
		o.mu.Unlock()
	})
}

// expire fails a ticket whose expiry passed while it was queued.
func (o *Operator) expire(t *Ticket) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if t.state == TicketQueued {
		o.log.Info().Str("endpoint", t.Endpoint).Str("op", t.Op.Kind.String()).Str("path", t.Op.target()).
			Str("ticket", t.ID).Msg("queued operation expired: the device did not wake up")
		o.finishLocked(t, Result{}, o.opError(t, ErrExpired))
	}
}

// Registered implements RegistrationObserver: the client spoke on s.
func (o *Operator) Registered(reg Registration, s *coap.Session, update bool) {
	o.noteRegistered(reg, s, update)
	if o.cfg.Registered != nil {
		o.cfg.Registered(reg, update)
	}
}

func (o *Operator) noteRegistered(reg Registration, s *coap.Session, update bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	d := o.deviceLocked(reg.Endpoint)
	d.queueMode = reg.Queue
	moved := s != nil && s != d.session
	if s != nil {
		if d.session != nil && d.session != s && o.bySession[d.session] == reg.Endpoint {
			delete(o.bySession, d.session)
		}
		d.session = s
		o.bySession[s] = reg.Endpoint
	}
	now := time.Now()
	d.awakeUntil = now.Add(o.cfg.AwakeTime)
	o.reobserveLocked(d, !update || moved)
	o.kickLocked(d, now)
}

// Reachable reports whether an operation sent now would go out at once:
// the device has a session and, in queue mode, is awake.
func (o *Operator) Reachable(ep string) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	d := o.devices[ep]
	return d != nil && d.reachable(time.Now())
}

// Deregistered implements RegistrationObserver. Queued operations stay:
// they may still reach the client if it registers again before they expire.
func (o *Operator) Deregistered(reg Registration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	d := o.devices[reg.Endpoint]
	if d == nil {
		return
	}
	d.awakeUntil = time.Time{}
	for _, w := range d.watches {
		w.lost()
	}
	if len(d.queue) == 0 && len(d.watches) == 0 && !d.sending {
		delete(o.devices, reg.Endpoint)
		if d.session != nil {
			delete(o.bySession, d.session)
		}
	}
}

// ServeCoAP answers Send (POST /dp) and passes everything else to the
// Registry. Any request shows that its client is awake.
func (o *Operator) ServeCoAP(ctx context.Context, req *coap.Request) coap.Response {
	if req.Path == "/dp" {
		return o.serveSend(req)
	}
	resp := o.reg.ServeCoAP(ctx, req)
	if resp.Then == nil && req.Session != nil {
		resp.Then = func() { o.heard(req.Session) }
	}
	return resp
}

// heard notes that the client of s spoke outside the registration
// interface, which wakes a queue-mode client up as an Update does.
func (o *Operator) heard(s *coap.Session) {
	o.mu.Lock()
	defer o.mu.Unlock()
	ep, ok := o.bySession[s]
	if !ok {
		return
	}
	d := o.devices[ep]
	now := time.Now()
	d.awakeUntil = now.Add(o.cfg.AwakeTime)
	o.kickLocked(d, now)
}

func newTicketID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
