package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fotahub/fota/api"
	"github.com/fotahub/fota/coap"
	"github.com/fotahub/fota/lwm2m"
	"github.com/fotahub/fota/lwm2m/model"
)

// fakeOps is an api.Operations whose device answers with answer.
type fakeOps struct {
	mu        sync.Mutex
	seq       int
	tickets   map[string]*lwm2m.TicketStatus
	submitted []lwm2m.TicketStatus
	// answer finishes an operation at once (done) or leaves it queued.
	answer func(op lwm2m.Op) (res lwm2m.Result, err error, done bool)

	observed   []lwm2m.Op
	observeErr error
	observeRes lwm2m.Result
	watch      *fakeWatch
}

func (f *fakeOps) Do(ctx context.Context, ep string, op lwm2m.Op) (lwm2m.Result, error) {
	panic("the API does not use Do")
}

func (f *fakeOps) Submit(ep string, op lwm2m.Op, expires time.Time) (lwm2m.TicketStatus, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if ep != "dev-1" {
		return lwm2m.TicketStatus{}, &lwm2m.OpError{Op: op.Kind.String(), Endpoint: ep, Path: op.Path.String(), Err: lwm2m.ErrNotRegistered}
	}
	f.seq++
	if expires.IsZero() {
		expires = testNow.Add(24 * time.Hour)
	}
	st := &lwm2m.TicketStatus{ID: fmt.Sprintf("t%d", f.seq), Endpoint: ep, Op: op, State: lwm2m.TicketQueued,
		Created: testNow.Add(-time.Minute), Expires: expires}
	if f.answer != nil {
		if res, err, done := f.answer(op); done {
			finish(st, res, err)
		}
	}
	f.tickets[st.ID] = st
	f.submitted = append(f.submitted, *st)
	return *st, nil
}

func finish(st *lwm2m.TicketStatus, res lwm2m.Result, err error) {
	st.State, st.Result, st.Err, st.Finished = lwm2m.TicketDone, res, err, testNow
	if err != nil {
		st.State = lwm2m.TicketFailed
	}
}

func (f *fakeOps) last() lwm2m.TicketStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.submitted[len(f.submitted)-1]
}

func (f *fakeOps) Ticket(id string) (lwm2m.TicketStatus, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	st, ok := f.tickets[id]
	if !ok {
		return lwm2m.TicketStatus{}, fmt.Errorf("ticket %s: %w", id, lwm2m.ErrNotFound)
	}
	return *st, nil
}

func (f *fakeOps) Wait(ctx context.Context, id string) (lwm2m.TicketStatus, error) {
	st, err := f.Ticket(id)
	if err != nil || st.State == lwm2m.TicketDone || st.State == lwm2m.TicketFailed {
		return st, err
	}
	<-ctx.Done()
	return f.Ticket(id)
}

func (f *fakeOps) Cancel(id string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	st, ok := f.tickets[id]
	if !ok || st.State != lwm2m.TicketQueued {
		return false
	}
	finish(st, lwm2m.Result{}, &lwm2m.OpError{Op: st.Op.Kind.String(), Endpoint: st.Endpoint, Path: st.Op.Path.String(), Err: lwm2m.ErrCancelled})
	return true
}

func (f *fakeOps) Queue(ep string) []lwm2m.TicketStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []lwm2m.TicketStatus
	for _, st := range f.submitted {
		if cur := f.tickets[st.ID]; cur.Endpoint == ep && cur.State == lwm2m.TicketQueued {
			out = append(out, *cur)
		}
	}
	return out
}

func (f *fakeOps) Observe(ctx context.Context, ep string, op lwm2m.Op) (api.Watch, lwm2m.Result, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.observed = append(f.observed, op)
	if f.observeErr != nil {
		return nil, lwm2m.Result{}, f.observeErr
	}
	return f.watch, f.observeRes, nil
}

func (f *fakeOps) Sends(string) (<-chan lwm2m.Notification, func()) {
	return make(chan lwm2m.Notification), func() {}
}

type fakeWatch struct {
	c         chan lwm2m.Notification
	once      sync.Once
	cancelled chan struct{}
}

func (w *fakeWatch) Notifications() <-chan lwm2m.Notification { return w.c }
func (w *fakeWatch) Cancel(context.Context) error {
	w.once.Do(func() { close(w.cancelled) })
	return nil
}

type opsEnv struct {
	*env
	ops *fakeOps
}

func newOpsEnv(t *testing.T) *opsEnv {
	t.Helper()
	e := &env{t: t, devices: &memDevices{devices: map[string]lwm2m.Device{}}, regs: memRegs{}}
	ops := &fakeOps{tickets: map[string]*lwm2m.TicketStatus{}}
	srv, err := api.New(api.Config{Devices: e.devices, Registrations: e.regs, Transport: noStats{},
		Operations: ops, Token: testToken})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	t.Cleanup(srv.StopStreams)
	e.url = ts.URL
	return &opsEnv{e, ops}
}

// answer makes every operation finish at once.
func (e *opsEnv) answer(res lwm2m.Result, err error) {
	e.ops.mu.Lock()
	defer e.ops.mu.Unlock()
	e.ops.answer = func(lwm2m.Op) (lwm2m.Result, error, bool) { return res, err, true }
}

func path(t *testing.T, s string) model.Path {
	t.Helper()
	p, err := model.ParsePath(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func deviceValues(t *testing.T) []model.PathValue {
	return []model.PathValue{
		{Path: path(t, "/3/0/0"), Value: model.StringValue("Open Mobile Alliance")},
		{Path: path(t, "/3/0/1"), Value: model.StringValue("Lightweight M2M Client")},
		{Path: path(t, "/3/0/9"), Value: model.IntegerValue(math.MaxInt64)},
		{Path: path(t, "/3/0/13"), Value: model.TimeValue(time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC))},
		{Path: path(t, "/3/0/15"), Value: model.StringValue("")},
		{Path: path(t, "/3/0/7777"), Value: model.OpaqueValue([]byte{0xca, 0xfe})},
	}
}

func TestReadCommand(t *testing.T) {
	e := newOpsEnv(t)
	e.answer(lwm2m.Result{Code: coap.Content, Format: model.ContentFormatTLV, Values: deviceValues(t)}, nil)

	r := e.run("read", "dev-1", "/3/0").ok(t)
	if st := e.ops.last(); st.Op.Kind != lwm2m.OpRead || st.Op.Path.String() != "/3/0" || st.Endpoint != "dev-1" {
		t.Fatalf("submitted %+v", st)
	}
	lines := strings.Split(strings.TrimRight(r.stdout, "\n"), "\n")
	want := [][]string{
		{"PATH", "NAME", "VALUE"},
		{"/3/0/0", "Manufacturer", "Open Mobile Alliance"},
		{"/3/0/1", "Model Number", "Lightweight M2M Client"},
		{"/3/0/9", "Battery Level", "9223372036854775807"},
		{"/3/0/13", "Current Time", "2025-03-01T10:00:00Z"},
		{"/3/0/15", "Timezone", `""`},
		{"/3/0/7777", "-", "0xcafe"},
	}
	if len(lines) != len(want) {
		t.Fatalf("output:\n%s", r.stdout)
	}
	nameCol, valueCol := strings.Index(lines[0], "NAME"), strings.Index(lines[0], "VALUE")
	for i, cells := range want {
		if !strings.HasPrefix(lines[i], cells[0]) || strings.Index(lines[i], cells[1]) != nameCol ||
			lines[i][valueCol:] != cells[2] {
			t.Errorf("line %q, want %q aligned", lines[i], cells)
		}
	}

	// --json passes the API's JSON through.
	r = e.run("read", "dev-1", "/3/0", "--json").ok(t)
	var res api.ResultView
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil || res.Code != "2.05" || len(res.Values) != 6 {
		t.Fatalf("--json: %v\n%s", err, r.stdout)
	}
	if !strings.Contains(r.stdout, `"value": 9223372036854775807`) || !strings.Contains(r.stdout, `"format": "application/vnd.oma.lwm2m+tlv"`) {
		t.Errorf("--json output:\n%s", r.stdout)
	}

	// Several paths make a composite read.
	e.run("read", "dev-1", "/3/0/0", "/1/0/1", "--format", "112").ok(t)
	if op := e.ops.last().Op; op.Kind != lwm2m.OpReadComposite || len(op.Paths) != 2 || op.Format != 112 {
		t.Errorf("composite op %+v", op)
	}
}

func TestWriteCommands(t *testing.T) {
	e := newOpsEnv(t)
	e.answer(lwm2m.Result{Code: coap.Changed, Format: coap.NoFormat}, nil)

	r := e.run("write", "dev-1", "/1/0/1", "300").ok(t)
	if got := strings.TrimSpace(r.stdout); got != "wrote /1/0/1 on dev-1 (2.04 Changed)" {
		t.Errorf("output %q", got)
	}
	op := e.ops.last().Op
	if n, ok := op.Node.(*model.Resource); op.Kind != lwm2m.OpWrite || !ok || !n.Value.Equal(model.UnsignedValue(300)) {
		t.Fatalf("op %+v node %#v", op, op.Node)
	}

	e.run("write", "dev-1", "/3303/0/5700", "-4.5", "--type", "float").ok(t)
	if n := e.ops.last().Op.Node.(*model.Resource); !n.Value.Equal(model.FloatValue(-4.5)) {
		t.Errorf("negative float written as %v", n.Value)
	}
	e.run("write", "dev-1", "/3303/0/5750", "--", "-x-").ok(t)
	if n := e.ops.last().Op.Node.(*model.Resource); !n.Value.Equal(model.StringValue("-x-")) {
		t.Errorf("dashed string written as %v", n.Value)
	}

	e.run("write", "dev-1", "/1/0", "1=300", "7=UQ", "--partial").ok(t)
	op = e.ops.last().Op
	oi, ok := op.Node.(*model.ObjectInstance)
	if !ok || !op.Partial || len(oi.Resources) != 2 || !oi.Resources[7].Value.Equal(model.StringValue("UQ")) {
		t.Fatalf("partial write %+v %#v", op, op.Node)
	}

	r = e.run("exec", "dev-1", "/3/0/4").ok(t)
	if got := strings.TrimSpace(r.stdout); got != "executed /3/0/4 on dev-1 (2.04 Changed)" {
		t.Errorf("exec output %q", got)
	}
	e.run("exec", "dev-1", "/5/0/2", "0='v',1").ok(t)
	if op := e.ops.last().Op; op.Kind != lwm2m.OpExecute || op.Args != "0='v',1" {
		t.Errorf("exec op %+v", op)
	}

	r = e.run("attrs", "dev-1", "/3/0/9", "pmin=10", "pmax=60").ok(t)
	if got := strings.TrimSpace(r.stdout); got != "set pmax=60 pmin=10 on /3/0/9 of dev-1 (2.04 Changed)" {
		t.Errorf("attrs output %q", got)
	}
	if op := e.ops.last().Op; op.Kind != lwm2m.OpWriteAttributes || fmt.Sprint(op.Attributes) != "[{pmax 60} {pmin 10}]" {
		t.Errorf("attrs op %+v", op)
	}

	e.answer(lwm2m.Result{Code: coap.Created, Format: coap.NoFormat, Location: "/1/1"}, nil)
	r = e.run("create", "dev-1", "/1", "0=2", "1=86400", "7=U").ok(t)
	if got := strings.TrimSpace(r.stdout); got != "created /1/1 on dev-1 (2.01 Created)" {
		t.Errorf("create output %q", got)
	}
	if oi := e.ops.last().Op.Node.(*model.ObjectInstance); len(oi.Resources) != 3 || !oi.Resources[1].Value.Equal(model.UnsignedValue(86400)) {
		t.Errorf("created %#v", oi)
	}

	e.answer(lwm2m.Result{Code: coap.Deleted, Format: coap.NoFormat}, nil)
	r = e.run("delete", "dev-1", "/1/1").ok(t)
	if got := strings.TrimSpace(r.stdout); got != "deleted /1/1 on dev-1 (2.02 Deleted)" {
		t.Errorf("delete output %q", got)
	}

	e.answer(lwm2m.Result{Code: coap.Content, Format: lwm2m.ContentFormatLink, Links: []lwm2m.Link{
		{Path: "/3/0", Attrs: []lwm2m.LinkAttr{{Key: "pmin", Value: "10"}}},
		{Path: "/3/0/6", Attrs: []lwm2m.LinkAttr{{Key: "dim", Value: "2"}}},
	}}, nil)
	r = e.run("discover", "dev-1").ok(t)
	if op := e.ops.last().Op; op.Kind != lwm2m.OpDiscover || !op.Path.IsRoot() {
		t.Errorf("discover op %+v", op)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "</3/0>;pmin=10") || !strings.HasSuffix(lines[0], "Device") ||
		!strings.HasPrefix(lines[1], "</3/0/6>;dim=2") || !strings.HasSuffix(lines[1], "Available Power Sources") {
		t.Errorf("discover output:\n%s", r.stdout)
	}
}

func TestOpErrors(t *testing.T) {
	e := newOpsEnv(t)
	e.answer(lwm2m.Result{}, &lwm2m.OpError{Op: "read", Endpoint: "dev-1", Path: "/3/0/99", Err: lwm2m.ErrTargetNotFound})
	r := e.run("read", "dev-1", "/3/0/99")
	if r.code != exitFailure || !strings.Contains(r.stderr, "read /3/0/99 on dev-1: 4.04 Not Found (HTTP 502)") {
		t.Errorf("device error: exit %d, stderr %q", r.code, r.stderr)
	}
	if strings.Count(r.stderr, "on dev-1") != 1 {
		t.Errorf("stderr repeats itself: %q", r.stderr)
	}

	r = e.run("read", "dev-9", "/3/0")
	if r.code != exitFailure || !strings.Contains(r.stderr, "device not registered") || !strings.Contains(r.stderr, "HTTP 404") {
		t.Errorf("unregistered: exit %d, stderr %q", r.code, r.stderr)
	}

	r = e.run("write", "dev-1", "/1/0/1", "many")
	if r.code != exitFailure || !strings.Contains(r.stderr, "write /1/0/1 on dev-1:") || !strings.Contains(r.stderr, "unsigned integer") ||
		!strings.Contains(r.stderr, "HTTP 400") {
		t.Errorf("bad value: exit %d, stderr %q", r.code, r.stderr)
	}

	for _, args := range [][]string{
		{"read", "dev-1"},
		{"write", "dev-1", "/1/0/1"},
		{"write", "dev-1", "/1/x", "1"},
		{"write", "dev-1", "/1/0", "300"},
		{"attrs", "dev-1", "/3/0/9", "pmin"},
		{"create", "dev-1", "/1", "=2"},
		{"delete", "dev-1", "/1/1", "/1/2"},
		{"exec", "dev-1"},
		{"observe", "dev-1"},
		{"ticket"},
		{"queue"},
		{"read", "dev-1", "/3/0", "--wait", "soon"},
	} {
		r := e.run(args...)
		if r.code != exitUsage {
			t.Errorf("%v: exit %d, stderr %q", args, r.code, r.stderr)
		}
	}
	e.ops.mu.Lock()
	n := len(e.ops.submitted)
	e.ops.mu.Unlock()
	if n != 1 { // the device error; the API refused the bad value before submitting it
		t.Errorf("%d operations submitted", n)
	}
}

func TestQueuedOperation(t *testing.T) {
	e := newOpsEnv(t) // no answer: the device sleeps

	start := time.Now()
	r := e.run("read", "dev-1", "/3/0", "--wait", "100ms").ok(t)
	if d := time.Since(start); d < 100*time.Millisecond {
		t.Errorf("returned after %v", d)
	}
	if !strings.Contains(r.stdout, "dev-1 did not answer within 100ms") || !strings.Contains(r.stdout, "queued as ticket t1") ||
		!strings.Contains(r.stdout, "fotactl ticket t1 --wait") {
		t.Errorf("output:\n%s", r.stdout)
	}

	r = e.run("write", "dev-1", "/1/0/1", "300", "--async", "--expires", "2099-01-01T00:00:00Z").ok(t)
	if !strings.Contains(r.stdout, "write /1/0/1 on dev-1 queued as ticket t2 (expires 2099-01-01T00:00:00Z)") {
		t.Errorf("async output:\n%s", r.stdout)
	}

	r = e.run("queue", "dev-1").ok(t)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "TICKET") || !strings.HasPrefix(lines[1], "t1") ||
		!strings.Contains(lines[1], "read") || !strings.Contains(lines[1], "1m ago") || !strings.HasPrefix(lines[2], "t2") {
		t.Errorf("queue output:\n%s", r.stdout)
	}
	if r := e.run("queue", "dev-2").ok(t); !strings.Contains(r.stdout, "No operations queued for dev-2") {
		t.Errorf("empty queue output %q", r.stdout)
	}

	r = e.run("ticket", "t1").ok(t)
	for _, want := range []string{"Ticket:", "t1", "State:", "queued", "Operation:", "read /3/0", "fotactl ticket t1"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("ticket output lacks %q:\n%s", want, r.stdout)
		}
	}

	// The device wakes up.
	e.ops.mu.Lock()
	finish(e.ops.tickets["t1"], lwm2m.Result{Code: coap.Content, Format: model.ContentFormatTLV, Values: deviceValues(t)[:1]}, nil)
	finish(e.ops.tickets["t2"], lwm2m.Result{}, &lwm2m.OpError{Op: "write", Endpoint: "dev-1", Path: "/1/0/1", Err: lwm2m.ErrMethodNotAllowed})
	e.ops.mu.Unlock()

	r = e.run("ticket", "t1", "--wait", "1s").ok(t)
	if !strings.Contains(r.stdout, "done") || !strings.Contains(r.stdout, "2.05 Content") ||
		!strings.Contains(r.stdout, "/3/0/0  Manufacturer  Open Mobile Alliance") {
		t.Errorf("finished ticket:\n%s", r.stdout)
	}
	r = e.run("ticket", "t1", "--json").ok(t)
	var tb api.TicketBody
	if err := json.Unmarshal([]byte(r.stdout), &tb); err != nil || tb.Ticket.Result == nil || tb.Ticket.State != "done" {
		t.Errorf("--json: %v\n%s", err, r.stdout)
	}
	r = e.run("ticket", "t2")
	if r.code != exitFailure || !strings.Contains(r.stderr, "4.05 Method Not Allowed") || !strings.Contains(r.stdout, "failed") {
		t.Errorf("failed ticket: exit %d\nstdout %s\nstderr %s", r.code, r.stdout, r.stderr)
	}
	r = e.run("ticket", "t9")
	if r.code != exitFailure || !strings.Contains(r.stderr, "not found") || !strings.Contains(r.stderr, "HTTP 404") {
		t.Errorf("unknown ticket: exit %d, stderr %q", r.code, r.stderr)
	}

	// Withdrawing.
	e.run("delete", "dev-1", "/1/1", "--async").ok(t)
	r = e.run("ticket", "t3", "--cancel").ok(t)
	if strings.TrimSpace(r.stdout) != "ticket t3 withdrawn" {
		t.Errorf("cancel output %q", r.stdout)
	}
	r = e.run("ticket", "t3", "--cancel")
	if r.code != exitFailure || !strings.Contains(r.stderr, "only a queued operation") || !strings.Contains(r.stderr, "HTTP 409") {
		t.Errorf("second cancel: exit %d, stderr %q", r.code, r.stderr)
	}
}

// syncBuffer is an io.Writer read while the command runs.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func TestObserveCommand(t *testing.T) {
	e := newOpsEnv(t)
	w := &fakeWatch{c: make(chan lwm2m.Notification, 4), cancelled: make(chan struct{})}
	e.ops.watch = w
	e.ops.observeRes = lwm2m.Result{Code: coap.Content, Values: []model.PathValue{{Path: path(t, "/3/0/9"), Value: model.IntegerValue(87)}}}

	run := func(args ...string) (stdout *syncBuffer, stderr *bytes.Buffer, cancel func(), code <-chan int) {
		stdout = &syncBuffer{}
		var errOut syncBuffer
		c := newCLI(stdout, &errOut, strings.NewReader(""), func(string) string { return "" })
		c.now = func() time.Time { return testNow }
		ctx, cancelCtx := context.WithCancel(t.Context())
		c.ctx = ctx
		done := make(chan int, 1)
		go func() { done <- c.run(append([]string{"--server", e.url, "--token", testToken}, args...)) }()
		return stdout, nil, cancelCtx, done
	}
	waitFor := func(b *syncBuffer, lines int) string {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for strings.Count(b.String(), "\n") < lines {
			if time.Now().After(deadline) {
				t.Fatalf("output so far:\n%s", b.String())
			}
			time.Sleep(5 * time.Millisecond)
		}
		return b.String()
	}

	stdout, _, cancel, code := run("observe", "dev-1", "/3/0/9")
	waitFor(stdout, 1)
	w.c <- lwm2m.Notification{Endpoint: "dev-1", Path: path(t, "/3/0/9"), Received: testNow,
		Values: []model.PathValue{{Path: path(t, "/3/0/9"), Value: model.IntegerValue(86)}}}
	w.c <- lwm2m.Notification{Endpoint: "dev-1", Path: path(t, "/3/0/9"), Received: testNow, Reestablished: true,
		Values: []model.PathValue{{Path: path(t, "/3/0/9"), Value: model.IntegerValue(85)}}}
	out := waitFor(stdout, 3)
	stamp := testNow.Local().Format("2006-01-02 15:04:05")
	want := stamp + "  /3/0/9  Battery Level  87\n" +
		stamp + "  /3/0/9  Battery Level  86\n" +
		stamp + "  /3/0/9  Battery Level  85  (observation re-established)\n"
	if out != want {
		t.Errorf("output:\n%s\nwant:\n%s", out, want)
	}
	cancel() // Ctrl-C
	select {
	case c := <-code:
		if c != exitOK {
			t.Errorf("exit %d after interrupt", c)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("observe did not stop")
	}
	select {
	case <-w.cancelled:
	case <-time.After(5 * time.Second):
		t.Fatal("the observation was not cancelled on the server")
	}
	if op := e.ops.observedOps()[0]; op.Kind != lwm2m.OpObserve || op.Path.String() != "/3/0/9" {
		t.Errorf("observed %+v", op)
	}

	// --json prints the NDJSON lines; several paths observe together.
	w2 := &fakeWatch{c: make(chan lwm2m.Notification, 4), cancelled: make(chan struct{})}
	e.ops.mu.Lock()
	e.ops.watch = w2
	e.ops.observeRes = lwm2m.Result{Code: coap.Content, Values: []model.PathValue{
		{Path: path(t, "/3/0/9"), Value: model.IntegerValue(87)},
		{Path: path(t, "/3/0/15"), Value: model.StringValue("Europe/Berlin time")}}}
	e.ops.mu.Unlock()
	stdout, _, cancel, code = run("observe", "dev-1", "/3/0/9", "/3/0/15", "--json")
	line := waitFor(stdout, 1)
	var n api.NotificationView
	if err := json.Unmarshal([]byte(line), &n); err != nil || !n.Initial || len(n.Values) != 2 || strings.Count(line, "\n") != 1 {
		t.Errorf("--json line %q: %v", line, err)
	}
	cancel()
	if c := <-code; c != exitOK {
		t.Errorf("exit %d", c)
	}
	if op := e.ops.observedOps()[1]; op.Kind != lwm2m.OpObserveComposite || len(op.Paths) != 2 {
		t.Errorf("observed %+v", op)
	}
	if got := (&cli{now: func() time.Time { return testNow }}).notificationLine(api.NotificationView{Values: []api.ValueView{
		{Path: "/3/0/9", Type: "integer", Value: json.RawMessage("87")},
		{Path: "/3/0/15", Type: "string", Value: json.RawMessage(`"Europe/Berlin time"`)}}}); got != stamp+"  /3/0/9=87 /3/0/15=\"Europe/Berlin time\"" {
		t.Errorf("composite line %q", got)
	}

	// An observation the device refuses.
	e.ops.mu.Lock()
	e.ops.observeErr = &lwm2m.OpError{Op: "observe", Endpoint: "dev-1", Path: "/3/0/4", Err: lwm2m.ErrMethodNotAllowed}
	e.ops.mu.Unlock()
	r := e.run("observe", "dev-1", "/3/0/4")
	if r.code != exitFailure || !strings.Contains(r.stderr, "4.05 Method Not Allowed (HTTP 502)") {
		t.Errorf("refused observe: exit %d, stderr %q", r.code, r.stderr)
	}
}

func TestNegativeValues(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"dev-1 /1/0/2 -5", "dev-1 /1/0/2 -- -5"},
		{"dev-1 /1/0/2 -4.5 --type float", "dev-1 /1/0/2 --type float -- -4.5"},
		{"dev-1 /1/0/2 -.5", "dev-1 /1/0/2 -- -.5"},
		{"--wait -1s dev-1 /1/0/2 1", "--wait -1s dev-1 /1/0/2 1"},
		{"--format -1 dev-1 /1/0/2 -1", "--format -1 dev-1 /1/0/2 -- -1"},
		{"dev-1 /1/0/2 -7 -- x", "dev-1 /1/0/2 -- -7 x"},
		{"dev-1 /1/0/2 -- -x-", "dev-1 /1/0/2 -- -x-"},
		{"dev-1 /1/0/2 -NaN", "dev-1 /1/0/2 -NaN"},
	} {
		if got := strings.Join(negativeValues(strings.Fields(tt.in)), " "); got != tt.want {
			t.Errorf("negativeValues(%s) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

func (f *fakeOps) observedOps() []lwm2m.Op {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]lwm2m.Op(nil), f.observed...)
}
