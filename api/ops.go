package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/fotahub/fota/coap"
	"github.com/fotahub/fota/lwm2m"
	"github.com/fotahub/fota/lwm2m/model"
)

// Operations sends LwM2M operations to registered devices and keeps the
// queue of those waiting for a sleeping device. [OperatorOperations] makes
// one of an *lwm2m.Operator.
type Operations interface {
	// Do sends op and waits for the result (unused by the API, which
	// submits and waits so that a timed-out request leaves a ticket).
	Do(ctx context.Context, ep string, op lwm2m.Op) (lwm2m.Result, error)
	// Submit queues op and returns its ticket at once.
	Submit(ep string, op lwm2m.Op, expires time.Time) (lwm2m.TicketStatus, error)
	// Ticket returns a ticket's status; an error wrapping lwm2m.ErrNotFound
	// for an unknown (or long finished) ticket.
	Ticket(id string) (lwm2m.TicketStatus, error)
	// Wait waits for a ticket to finish until ctx ends, then returns its
	// status, finished or not.
	Wait(ctx context.Context, id string) (lwm2m.TicketStatus, error)
	// Cancel withdraws a queued ticket; false if it is unknown or was
	// already sent.
	Cancel(id string) bool
	// Queue lists the endpoint's queued tickets, oldest first.
	Queue(ep string) []lwm2m.TicketStatus
	// Observe sets up an observation and returns it with the current value.
	Observe(ctx context.Context, ep string, op lwm2m.Op) (Watch, lwm2m.Result, error)
	// Sends subscribes to the values the endpoint pushes with Send.
	Sends(ep string) (<-chan lwm2m.Notification, func())
}

// Watch is an observation: its notifications, and Cancel to end it (which
// closes the channel).
type Watch interface {
	Notifications() <-chan lwm2m.Notification
	Cancel(ctx context.Context) error
}

// OperatorOperations adapts an *lwm2m.Operator to Operations; nil gives
// nil, which leaves the operation routes disabled.
func OperatorOperations(o *lwm2m.Operator) Operations {
	if o == nil {
		return nil
	}
	return operatorOps{o}
}

type operatorOps struct{ *lwm2m.Operator }

func (o operatorOps) Observe(ctx context.Context, ep string, op lwm2m.Op) (Watch, lwm2m.Result, error) {
	w, res, err := o.Operator.Observe(ctx, ep, op)
	if err != nil || w == nil {
		return nil, res, err
	}
	return operatorWatch{w}, res, nil
}

// operatorWatch gives *lwm2m.Watch the Notifications method.
type operatorWatch struct{ *lwm2m.Watch }

func (w operatorWatch) Notifications() <-chan lwm2m.Notification { return w.C }

// Limits and defaults of operation requests.
const (
	// DefaultOpWait is how long a synchronous operation request waits for
	// its result before answering 202 with the ticket.
	DefaultOpWait = 60 * time.Second
	// MaxOpWait is the longest wait a request may ask for.
	MaxOpWait = 10 * time.Minute
	// watchCancelTimeout bounds telling the device an observation ended.
	watchCancelTimeout = 5 * time.Second
)

// TicketView is the JSON shape of a submitted operation. State is queued,
// sending, done or failed; Result is set when done, Error (with the
// device's CoAP code, if it answered with one) when failed.
type TicketView struct {
	ID       string      `json:"id"`
	Endpoint string      `json:"endpoint"`
	Op       string      `json:"op"`
	Path     string      `json:"path,omitempty"`
	Paths    []string    `json:"paths,omitempty"`
	State    string      `json:"state"`
	Created  time.Time   `json:"created"`
	Expires  time.Time   `json:"expires"`
	Finished *time.Time  `json:"finished,omitempty"`
	Result   *ResultView `json:"result,omitempty"`
	Error    string      `json:"error,omitempty"`
	CoAPCode string      `json:"coap_code,omitempty"`
}

// TicketBody is the body of 202 answers and of GET /api/v1/tickets/{id}.
type TicketBody struct {
	Ticket TicketView `json:"ticket"`
}

// TicketList is the body of GET /api/v1/devices/{endpoint}/queue.
type TicketList struct {
	Tickets []TicketView `json:"tickets"`
}

// OpErrorBody is the body of an operation's error answer. CoAPCode is the
// code the device answered with ("4.04"), when the error is the device's.
type OpErrorBody struct {
	Error    string `json:"error"`
	CoAPCode string `json:"coap_code,omitempty"`
}

func newTicketView(st lwm2m.TicketStatus) TicketView {
	v := TicketView{
		ID: st.ID, Endpoint: st.Endpoint, Op: st.Op.Kind.String(), State: string(st.State),
		Created: st.Created.UTC(), Expires: st.Expires.UTC(), Finished: timePtr(st.Finished),
	}
	if len(st.Op.Paths) > 0 {
		for _, p := range st.Op.Paths {
			v.Paths = append(v.Paths, p.String())
		}
	} else {
		v.Path = st.Op.Path.String()
	}
	switch {
	case st.Err != nil:
		v.Error, v.CoAPCode = st.Err.Error(), coapCode(st.Err)
	case st.State == lwm2m.TicketDone:
		r := newResultView(st.Result)
		v.Result = &r
	}
	return v
}

// coapCode is the device's CoAP error code in err, "" if none.
func coapCode(err error) string {
	var ce lwm2m.CodeError
	if errors.As(err, &ce) {
		return coap.Code(ce).String()
	}
	return ""
}

// opStatus maps an operation's error to an HTTP status.
//
//	404 the device is not registered
//	429 its queue is full
//	400 the request cannot be encoded (bad value, path or content format)
//	409 the operation was withdrawn (DELETE /api/v1/tickets/{id})
//	502 the device answered with a CoAP error code (the code is in the
//	    body's coap_code), or with something fotad cannot read, or the
//	    session to it failed
//	504 the device did not answer in time, or the operation expired in
//	    the queue before the device woke up
func opStatus(err error) int {
	var ce lwm2m.CodeError
	switch {
	case errors.Is(err, lwm2m.ErrNotRegistered):
		return http.StatusNotFound
	case errors.Is(err, lwm2m.ErrQueueFull):
		return http.StatusTooManyRequests
	case errors.As(err, &ce), errors.Is(err, lwm2m.ErrUnexpectedResponse):
		return http.StatusBadGateway
	case errors.Is(err, lwm2m.ErrExpired), errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return http.StatusGatewayTimeout
	case errors.Is(err, lwm2m.ErrCancelled):
		return http.StatusConflict
	case errors.Is(err, model.ErrInvalidPath), errors.Is(err, model.ErrMalformedValue),
		errors.Is(err, model.ErrNodeMismatch), errors.Is(err, model.ErrUnsupportedFormat):
		return http.StatusBadRequest
	}
	return http.StatusBadGateway
}

// operations answers 503 and reports false when operations are off.
func (s *Server) operations(w http.ResponseWriter) (Operations, bool) {
	if s.ops == nil {
		writeError(w, http.StatusServiceUnavailable, "operations not enabled")
		return nil, false
	}
	return s.ops, true
}

// opFailed answers with the status and JSON error of an operation's err.
func (s *Server) opFailed(w http.ResponseWriter, r *http.Request, err error) {
	s.writeOpError(w, r, opStatus(err), err)
}

// submitFailed answers for an error of Submit: the operation was not
// queued, so anything but the registration and the queue is the request's
// fault.
func (s *Server) submitFailed(w http.ResponseWriter, r *http.Request, err error) {
	var oe *lwm2m.OpError
	switch {
	case errors.Is(err, lwm2m.ErrNotRegistered), errors.Is(err, lwm2m.ErrQueueFull):
		s.opFailed(w, r, err)
	case errors.As(err, &oe):
		s.writeOpError(w, r, http.StatusBadRequest, err)
	default:
		s.internalError(w, r, err)
	}
}

func (s *Server) writeOpError(w http.ResponseWriter, r *http.Request, status int, err error) {
	if status >= 500 {
		s.log.Info().Err(err).Str("method", r.Method).Str("path", r.URL.Path).Int("status", status).
			Msg("device operation failed")
	}
	writeJSON(w, status, OpErrorBody{Error: err.Error(), CoAPCode: coapCode(err)})
}

// longRequest lifts the connection's write deadline for a request that
// may outlive it (an http.Server WriteTimeout would cut a stream or a long
// wait; the read deadline is already lifted once the request is read) and
// returns a context that also ends when StopStreams is called.
func (s *Server) longRequest(w http.ResponseWriter, r *http.Request) (context.Context, context.CancelFunc) {
	_ = http.NewResponseController(w).SetWriteDeadline(time.Time{}) // not every ResponseWriter supports it
	ctx, cancel := context.WithCancel(r.Context())
	stop := context.AfterFunc(s.stopCtx, cancel)
	return ctx, func() { stop(); cancel() }
}

// StopStreams ends the observe and send streams and the waits of
// operation requests in flight (which then answer 202 with their ticket),
// and refuses new streams with 503. http.Server.Shutdown waits for every
// handler to return, and these would not on their own: register it with
// http.Server.RegisterOnShutdown.
func (s *Server) StopStreams() { s.stopStreams() }

func (s *Server) postOp(w http.ResponseWriter, r *http.Request) {
	ops, ok := s.operations(w)
	if !ok {
		return
	}
	ep := r.PathValue("endpoint")
	var req OpRequest
	if !decodeBody(w, r, &req, "an operation object", opRequestFields) {
		return
	}
	op, msg := req.op()
	if msg == "" {
		var wait time.Duration
		var expires time.Time
		if wait, expires, msg = req.timing(s.now()); msg == "" {
			s.runOp(w, r, ops, ep, op, req.Async, wait, expires)
			return
		}
	}
	writeError(w, http.StatusBadRequest, msg)
}

func (s *Server) runOp(w http.ResponseWriter, r *http.Request, ops Operations, ep string, op lwm2m.Op,
	async bool, wait time.Duration, expires time.Time) {
	st, err := ops.Submit(ep, op, expires)
	if err != nil {
		s.submitFailed(w, r, err)
		return
	}
	if !async && wait > 0 {
		ctx, cancel := s.longRequest(w, r)
		ctx, cancelWait := context.WithTimeout(ctx, wait)
		st, err = ops.Wait(ctx, st.ID)
		cancelWait()
		cancel()
		if err != nil {
			s.internalError(w, r, err) // the ticket vanished while we held its id
			return
		}
	}
	switch {
	case async || (st.State != lwm2m.TicketDone && st.State != lwm2m.TicketFailed):
		s.writeTicket(w, http.StatusAccepted, st)
	case st.Err != nil:
		s.opFailed(w, r, st.Err)
	default:
		writeJSON(w, http.StatusOK, newResultView(st.Result))
	}
}

func (s *Server) writeTicket(w http.ResponseWriter, status int, st lwm2m.TicketStatus) {
	if status == http.StatusAccepted {
		w.Header().Set("Location", "/api/v1/tickets/"+url.PathEscape(st.ID))
	}
	writeJSON(w, status, TicketBody{Ticket: newTicketView(st)})
}

func (s *Server) getTicket(w http.ResponseWriter, r *http.Request) {
	ops, ok := s.operations(w)
	if !ok {
		return
	}
	id := r.PathValue("id")
	wait, msg := parseWait(r.URL.Query().Get("wait"), 0)
	if msg != "" {
		writeError(w, http.StatusBadRequest, msg)
		return
	}
	var st lwm2m.TicketStatus
	var err error
	if wait > 0 {
		ctx, cancel := s.longRequest(w, r)
		ctx, cancelWait := context.WithTimeout(ctx, wait)
		st, err = ops.Wait(ctx, id)
		cancelWait()
		cancel()
	} else {
		st, err = ops.Ticket(id)
	}
	switch {
	case err == nil:
		s.writeTicket(w, http.StatusOK, st)
	case errors.Is(err, lwm2m.ErrNotFound):
		writeError(w, http.StatusNotFound, fmt.Sprintf("ticket %q not found: unknown, or finished long ago", id))
	default:
		s.internalError(w, r, err)
	}
}

func (s *Server) deleteTicket(w http.ResponseWriter, r *http.Request) {
	ops, ok := s.operations(w)
	if !ok {
		return
	}
	id := r.PathValue("id")
	if ops.Cancel(id) {
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusNoContent)
		return
	}
	st, err := ops.Ticket(id)
	switch {
	case err == nil:
		writeError(w, http.StatusConflict, fmt.Sprintf(
			"ticket %s is %s: only a queued operation can be withdrawn", id, st.State))
	case errors.Is(err, lwm2m.ErrNotFound):
		writeError(w, http.StatusNotFound, fmt.Sprintf("ticket %q not found: unknown, or finished long ago", id))
	default:
		s.internalError(w, r, err)
	}
}

func (s *Server) listQueue(w http.ResponseWriter, r *http.Request) {
	ops, ok := s.operations(w)
	if !ok {
		return
	}
	q := ops.Queue(r.PathValue("endpoint"))
	list := TicketList{Tickets: make([]TicketView, 0, len(q))}
	for _, st := range q {
		list.Tickets = append(list.Tickets, newTicketView(st))
	}
	writeJSON(w, http.StatusOK, list)
}

// observe streams an observation as NDJSON: the current value, then one
// line per notification, until the client goes away or StopStreams.
func (s *Server) observe(w http.ResponseWriter, r *http.Request) {
	ops, ok := s.operations(w)
	if !ok {
		return
	}
	ep := r.PathValue("endpoint")
	op, msg := observeOp(r.URL.Query())
	if msg != "" {
		writeError(w, http.StatusBadRequest, msg)
		return
	}
	if s.stopCtx.Err() != nil {
		writeError(w, http.StatusServiceUnavailable, "server shutting down")
		return
	}
	ctx, cancel := s.longRequest(w, r)
	defer cancel()
	watch, res, err := ops.Observe(ctx, ep, op)
	switch {
	case err == nil:
	case r.Context().Err() != nil:
		return // the client left while the device slept
	case s.stopCtx.Err() != nil:
		writeError(w, http.StatusServiceUnavailable, "server shutting down")
		return
	default:
		s.opFailed(w, r, err)
		return
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), watchCancelTimeout)
		defer cancel()
		if err := watch.Cancel(cctx); err != nil {
			s.log.Debug().Err(err).Str("endpoint", ep).Msg("observation cancel")
		}
	}()
	path := "/"
	if op.Kind == lwm2m.OpObserve {
		path = op.Path.String()
	}
	st := newStream(w)
	first := NotificationView{Endpoint: ep, Path: path, Received: s.now().UTC(), Initial: true,
		Values: newValueViews(res.Values)}
	if st.send(first) != nil {
		return
	}
	st.pump(ctx, watch.Notifications())
}

// sends streams the values the device pushes with Send as NDJSON.
func (s *Server) sends(w http.ResponseWriter, r *http.Request) {
	ops, ok := s.operations(w)
	if !ok {
		return
	}
	if s.stopCtx.Err() != nil {
		writeError(w, http.StatusServiceUnavailable, "server shutting down")
		return
	}
	ctx, cancel := s.longRequest(w, r)
	defer cancel()
	c, stop := ops.Sends(r.PathValue("endpoint"))
	defer stop()
	st := newStream(w)
	if st.flush() != nil {
		return
	}
	st.pump(ctx, c)
}

// stream writes NDJSON lines, each flushed at once.
type stream struct {
	w  http.ResponseWriter
	rc *http.ResponseController
}

func newStream(w http.ResponseWriter) *stream {
	h := w.Header()
	h.Set("Content-Type", "application/x-ndjson")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	return &stream{w: w, rc: http.NewResponseController(w)}
}

func (st *stream) send(v NotificationView) error {
	if v.Values == nil {
		v.Values = []ValueView{}
	}
	b, err := marshalNoEscape(v)
	if err != nil {
		return err
	}
	if _, err := st.w.Write(append(b, '\n')); err != nil {
		return err
	}
	return st.flush()
}

func (st *stream) flush() error {
	if err := st.rc.Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return err
	}
	return nil
}

// pump writes the notifications of c until ctx ends, c is closed or the
// client cannot be written to.
func (st *stream) pump(ctx context.Context, c <-chan lwm2m.Notification) {
	for {
		select {
		case <-ctx.Done():
			return
		case n, ok := <-c:
			if !ok {
				return
			}
			if st.send(notificationView(n)) != nil {
				return
			}
		}
	}
}

func notificationView(n lwm2m.Notification) NotificationView {
	return NotificationView{Endpoint: n.Endpoint, Path: n.Path.String(), Received: n.Received.UTC(),
		Reestablished: n.Reestablished, Values: newValueViews(n.Values)}
}
