package api

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/fotahub/fota/coap"
	"github.com/fotahub/fota/delivery/firmware"
	"github.com/fotahub/fota/delivery/manifest"
	"github.com/fotahub/fota/delivery/update"
	"github.com/fotahub/fota/lwm2m"
	"github.com/fotahub/fota/store"
)

// The update driver is what fotad gives the API.
var _ Updates = (*update.Driver)(nil)

// testClock is a clock the test moves while handlers read it.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type updatesFixture struct {
	*fixture
	updates *fakeUpdates
	clock   *testClock
}

func newUpdatesFixture(t testing.TB) *updatesFixture {
	t.Helper()
	f := &fixture{t: t, devices: newMemDevices(), regs: memRegs{}, logs: &syncBuffer{}}
	clock := &testClock{t: testNow}
	updates := newFakeUpdates(clock.Now)
	srv, err := New(Config{
		Devices:       f.devices,
		Registrations: f.regs,
		Transport:     statsFunc(func() coap.Stats { return coap.Stats{} }),
		Updates:       updates,
		Token:         testToken,
		Logger:        zerolog.New(f.logs).Level(zerolog.DebugLevel),
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	srv.now = clock.Now
	srv.updatePoll = 5 * time.Millisecond
	f.srv, f.handler = srv, srv.Handler()
	return &updatesFixture{f, updates, clock}
}

var updateRoutes = []struct{ method, path, body string }{
	{"POST", "/api/v1/devices/dev-1/update", `{"image":"2.0.0"}`},
	{"GET", "/api/v1/devices/dev-1/update", ""},
	{"DELETE", "/api/v1/devices/dev-1/update", ""},
	{"GET", "/api/v1/devices/dev-1/update/events", ""},
	{"GET", "/api/v1/devices/dev-1/updates", ""},
}

func TestUpdatesDisabled(t *testing.T) {
	f := newFixture(t)
	for _, c := range updateRoutes {
		r := f.do(c.method, c.path, c.body)
		f.mustStatus(r, http.StatusServiceUnavailable)
		if msg := r.errorMessage(t); msg != "firmware updates not enabled" {
			t.Errorf("%s %s: %q", c.method, c.path, msg)
		}
	}
}

func TestUpdatesNeedToken(t *testing.T) {
	f := newUpdatesFixture(t)
	for _, c := range updateRoutes {
		f.mustStatus(f.doAuth(c.method, c.path, c.body, ""), http.StatusUnauthorized)
		f.mustStatus(f.doAuth(c.method, c.path, c.body, "Bearer wrong-token-wrong-token"), http.StatusUnauthorized)
	}
	if len(f.updates.requests) != 0 {
		t.Fatal("an update was started without a token")
	}
}

func TestStartUpdate(t *testing.T) {
	f := newUpdatesFixture(t)
	r := f.do("POST", "/api/v1/devices/dev%201/update", `{"image":" 2.0.0 ","full":true}`)
	f.mustStatus(r, http.StatusAccepted)
	if loc := r.header.Get("Location"); loc != "/api/v1/devices/dev%201/update" {
		t.Errorf("Location %q", loc)
	}
	if req := f.updates.lastRequest(); req != (update.Request{Image: "2.0.0", Full: true}) {
		t.Errorf("request %+v", req)
	}
	v := decode[UpdateView](t, r.body)
	want := UpdateView{Endpoint: "dev 1", Image: "2.0.0", Method: "pull", Full: true, Phase: "preparing",
		ResultText: "initial", Started: testNow, Changed: testNow, Deadline: testNow.Add(24 * time.Hour)}
	if v.ETAS != nil || fmt.Sprint(v) != fmt.Sprint(want) {
		t.Errorf("view %+v\nwant %+v", v, want)
	}
	// Unknown parts are absent, not empty.
	for _, key := range []string{`"target"`, `"package"`, `"format"`, `"version"`, `"error"`, `"eta_s"`} {
		if strings.Contains(string(r.body), key) {
			t.Errorf("%s in %s", key, r.body)
		}
	}

	// One update per device at a time.
	r = f.do("POST", "/api/v1/devices/dev%201/update", `{"image":"2.0.0"}`)
	f.mustStatus(r, http.StatusConflict)
	if msg := r.errorMessage(t); msg != update.ErrBusy.Error() {
		t.Errorf("busy: %q", msg)
	}

	r = f.do("POST", "/api/v1/devices/dev-2/update", `{"image":"`+strings.Repeat("ab", 32)+`","push":true}`)
	f.mustStatus(r, http.StatusAccepted)
	if v := decode[UpdateView](t, r.body); v.Method != "push" || v.Full {
		t.Errorf("push view %+v", v)
	}
	if req := f.updates.lastRequest(); !req.Push || req.Full {
		t.Errorf("push request %+v", req)
	}
}

func TestStartUpdateBadRequests(t *testing.T) {
	f := newUpdatesFixture(t)
	for _, c := range []struct{ body, want string }{
		{"", "empty request body"},
		{`{"image":"2.0.0"`, "malformed JSON"},
		{`[1]`, "must be a JSON object"},
		{`{"image":2}`, `field "image" must be a JSON string`},
		{`{"image":"2.0.0","klass":"x"}`, "known fields are image, full, push, class"},
		{`{"full":true}`, "give the target image"},
		{`{"image":"  "}`, "give the target image"},
		{`{"image":"2.0.0"} {}`, "unexpected data"},
	} {
		r := f.do("POST", "/api/v1/devices/dev-1/update", c.body)
		f.mustStatus(r, http.StatusBadRequest)
		if msg := r.errorMessage(t); !strings.Contains(msg, c.want) {
			t.Errorf("body %q: %q, want %q", c.body, msg, c.want)
		}
	}
	if len(f.updates.requests) != 0 {
		t.Errorf("Start called for bad requests: %+v", f.updates.requests)
	}
}

func TestStartUpdateErrors(t *testing.T) {
	for _, c := range []struct {
		err    error
		status int
		want   string
	}{
		{update.ErrBusy, 409, "already running"},
		{fmt.Errorf("start update of dev-1: %w", &lwm2m.OpError{Op: "read", Endpoint: "dev-1", Path: "/3/0/3", Err: lwm2m.ErrNotRegistered}), 404, "device not registered"},
		{fmt.Errorf("image 9.9.9: %w", firmware.ErrNotFound), 404, "image 9.9.9: not found"},
		{fmt.Errorf("version 2.0.0: %w", firmware.ErrAmbiguous), 400, "ambiguous"},
		{fmt.Errorf("2.0.0: %w", firmware.ErrNotNewer), 409, "not newer"},
		{fmt.Errorf("2.0.0: %w", firmware.ErrClassMismatch), 409, "class mismatch"},
		{errors.New("bolt: disk on fire at /var/lib/fota"), 500, "internal error"},
	} {
		f := newUpdatesFixture(t)
		f.updates.startErr = c.err
		r := f.do("POST", "/api/v1/devices/dev-1/update", `{"image":"2.0.0"}`)
		f.mustStatus(r, c.status)
		if msg := r.errorMessage(t); !strings.Contains(msg, c.want) {
			t.Errorf("%v: %q, want %q", c.err, msg, c.want)
		}
		logged := strings.Contains(f.logs.String(), "disk on fire")
		if logged != (c.status == 500) {
			t.Errorf("%v: logged %v; logs %s", c.err, logged, f.logs.String())
		}
	}
}

func TestShowUpdate(t *testing.T) {
	f := newUpdatesFixture(t)
	r := f.do("GET", "/api/v1/devices/dev-1/update", "")
	f.mustStatus(r, http.StatusNotFound)
	if msg := r.errorMessage(t); !strings.Contains(msg, "no update of dev-1") {
		t.Errorf("message %q", msg)
	}

	target, pkg := manifest.Digest{0xaa, 1}, manifest.Digest{0xbb, 2}
	f.updates.set("dev-1", func(u *update.Update) {
		*u = update.Update{Endpoint: "dev-1", Image: "2.0.0", Target: target, Version: "2.0.0", FellBack: true, Full: true,
			Package: pkg, Format: manifest.FormatDelta, Size: 1000, BytesServed: 250, Phase: update.Downloading,
			Result: 5, Path: "/fw/abc", Started: testNow.Add(-50 * time.Second), Changed: testNow.Add(-time.Second),
			Deadline: testNow.Add(time.Hour)}
	})
	r = f.do("GET", "/api/v1/devices/dev-1/update", "")
	f.mustStatus(r, http.StatusOK)
	var raw map[string]any
	if err := json.Unmarshal(r.body, &raw); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"endpoint": "dev-1", "image": "2.0.0", "target": target.String(), "version": "2.0.0", "method": "pull",
		"full": true, "format": "delta", "package": pkg.String(), "size": 1000.0, "bytes_served": 250.0,
		"progress": 0.25, "phase": "downloading", "result": 5.0, "result_text": "integrity check failure",
		"fell_back": true, "started": "2025-03-01T11:59:10Z", "changed": "2025-03-01T11:59:59Z",
		"deadline": "2025-03-01T13:00:00Z", "elapsed_s": 50.0,
		// First look at this download: the rate since the start, 5 B/s,
		// leaves 750 bytes for 150 s.
		"eta_s": 150.0,
	}
	if fmt.Sprint(raw) != fmt.Sprint(want) {
		t.Errorf("JSON %s\nwant %v", r.body, want)
	}

	// Ten seconds and 100 bytes later the rate since the first look
	// counts: 10 B/s, 650 bytes left.
	f.clock.add(10 * time.Second)
	f.updates.set("dev-1", func(u *update.Update) { u.BytesServed = 350 })
	if v := decode[UpdateView](t, f.do("GET", "/api/v1/devices/dev-1/update", "").body); v.ETAS == nil || *v.ETAS != 65 ||
		v.ElapsedS != 60 || v.Progress != 0.35 {
		t.Errorf("later view %+v (eta %v)", v, v.ETAS)
	}
	// More bytes than the size (blocks served twice): capped.
	f.updates.set("dev-1", func(u *update.Update) { u.BytesServed = 1200 })
	if v := decode[UpdateView](t, f.do("GET", "/api/v1/devices/dev-1/update", "").body); v.Progress != 1 || v.ETAS == nil || *v.ETAS != 0 {
		t.Errorf("overserved view %+v", v)
	}
	// A fallback to the full image starts a new download: its rate starts
	// anew, from the start of the update.
	f.updates.set("dev-1", func(u *update.Update) { u.Package, u.Size, u.BytesServed = manifest.Digest{0xcc}, 3000, 600 })
	if v := decode[UpdateView](t, f.do("GET", "/api/v1/devices/dev-1/update", "").body); v.ETAS == nil || *v.ETAS != 240 {
		t.Errorf("fallback eta %v", v.ETAS)
	}

	// Once the device has the package, progress is 1 and there is no ETA.
	f.updates.set("dev-1", func(u *update.Update) { u.Phase, u.BytesServed, u.Result = update.Updating, 10, 0 })
	r = f.do("GET", "/api/v1/devices/dev-1/update", "")
	if v := decode[UpdateView](t, r.body); v.Progress != 1 || v.ETAS != nil || v.ResultText != "initial" {
		t.Errorf("updating view %s", r.body)
	}
	// A finished update's elapsed time is the time it took.
	f.updates.set("dev-1", func(u *update.Update) {
		u.Phase, u.Result, u.Changed, u.Push = update.Done, 1, testNow.Add(-10*time.Second), true
	})
	f.clock.add(time.Hour)
	if v := decode[UpdateView](t, f.do("GET", "/api/v1/devices/dev-1/update", "").body); v.ElapsedS != 40 ||
		v.ResultText != "success" || v.Method != "push" || v.Progress != 1 {
		t.Errorf("done view %+v", v)
	}
	if len(f.srv.rates.samples) != 0 {
		t.Errorf("download samples kept after the download: %v", f.srv.rates.samples)
	}
	// Before a package is chosen there is no size: no progress, no ETA.
	f.updates.set("dev-1", func(u *update.Update) {
		*u = update.Update{Endpoint: "dev-1", Image: "2.0.0", Phase: update.Downloading, BytesServed: 10, Started: testNow}
	})
	if v := decode[UpdateView](t, f.do("GET", "/api/v1/devices/dev-1/update", "").body); v.Progress != 0 || v.ETAS != nil {
		t.Errorf("sizeless view %+v", v)
	}
}

func TestUpdateResultText(t *testing.T) {
	want := []string{"initial", "success", "not enough flash", "out of RAM", "connection lost",
		"integrity check failure", "unsupported package type", "invalid URI", "update failed",
		"unsupported protocol", "cancelled", "deferred"}
	for i, w := range want {
		if got := UpdateResultText(i); got != w {
			t.Errorf("result %d: %q, want %q", i, got, w)
		}
	}
	if got := UpdateResultText(12); got != "unknown" {
		t.Errorf("result 12: %q", got)
	}
	if got := UpdateResultText(-1); got != "unknown" {
		t.Errorf("result -1: %q", got)
	}
}

func TestCancelUpdate(t *testing.T) {
	f := newUpdatesFixture(t)
	r := f.do("DELETE", "/api/v1/devices/dev-1/update", "")
	f.mustStatus(r, http.StatusNotFound)
	if msg := r.errorMessage(t); !strings.Contains(msg, "no update of dev-1") {
		t.Errorf("message %q", msg)
	}

	f.mustStatus(f.do("POST", "/api/v1/devices/dev-1/update", `{"image":"2.0.0"}`), http.StatusAccepted)
	r = f.do("DELETE", "/api/v1/devices/dev-1/update", "")
	f.mustStatus(r, http.StatusNoContent)
	if len(r.body) != 0 {
		t.Errorf("body %q", r.body)
	}
	if u, _ := f.updates.Status("dev-1"); u.Phase != update.Cancelled {
		t.Errorf("phase %s", u.Phase)
	}
	r = f.do("DELETE", "/api/v1/devices/dev-1/update", "")
	f.mustStatus(r, http.StatusConflict)
	if msg := r.errorMessage(t); msg != "the update of dev-1 has finished: cancelled" {
		t.Errorf("message %q", msg)
	}

	// The driver cancels, but telling the device fails.
	for _, c := range []struct {
		err    error
		status int
		want   string
	}{
		{&lwm2m.OpError{Op: "write", Endpoint: "dev-1", Path: "/5/0/1", Err: lwm2m.ErrNotRegistered}, 204, ""},
		{&lwm2m.OpError{Op: "write", Endpoint: "dev-1", Path: "/5/0/1", Err: lwm2m.ErrMethodNotAllowed}, 502,
			"update of dev-1 cancelled, but the device was not reset"},
		{&lwm2m.OpError{Op: "write", Endpoint: "dev-1", Path: "/5/0/1", Err: context.DeadlineExceeded}, 504, "not reset"},
		{errors.New("store gone"), 500, "internal error"},
	} {
		f.updates.set("dev-1", func(u *update.Update) { u.Phase = update.Downloading })
		f.updates.mu.Lock()
		f.updates.cancelErr = c.err
		f.updates.mu.Unlock()
		r := f.do("DELETE", "/api/v1/devices/dev-1/update", "")
		f.mustStatus(r, c.status)
		if c.want != "" {
			if msg := r.errorMessage(t); !strings.Contains(msg, c.want) {
				t.Errorf("%v: %q", c.err, msg)
			}
		}
	}
}

// sseEvent is one Server-Sent Event.
type sseEvent struct {
	name string
	id   string
	view UpdateView
	data string
}

// readEvent reads the next event, skipping comments; ok is false at the
// end of the stream.
func readEvent(t *testing.T, rd *bufio.Reader) (sseEvent, bool) {
	t.Helper()
	var ev sseEvent
	var data []string
	for {
		line, err := rd.ReadString('\n')
		if err == io.EOF && line == "" {
			if ev.name != "" || len(data) > 0 {
				t.Fatalf("stream ended inside an event")
			}
			return ev, false
		}
		if err != nil {
			t.Fatalf("read stream: %v", err)
		}
		line = strings.TrimSuffix(line, "\n")
		switch {
		case line == "":
			if ev.name == "" && len(data) == 0 {
				continue // after a comment
			}
			ev.data = strings.Join(data, "\n")
			if err := json.Unmarshal([]byte(ev.data), &ev.view); err != nil {
				t.Fatalf("event data %q: %v", ev.data, err)
			}
			return ev, true
		case strings.HasPrefix(line, ":"):
		case strings.HasPrefix(line, "event: "):
			ev.name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			data = append(data, strings.TrimPrefix(line, "data: "))
		case strings.HasPrefix(line, "id: "):
			ev.id = strings.TrimPrefix(line, "id: ")
		default:
			t.Fatalf("unexpected line %q", line)
		}
	}
}

// eventServer serves the fixture over HTTP; handled receives the path of
// each request whose handler has returned.
func eventServer(t *testing.T, f *updatesFixture) (*httptest.Server, <-chan string) {
	handled := make(chan string, 16)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.handler.ServeHTTP(w, r)
		handled <- r.URL.Path
	}))
	t.Cleanup(ts.Close)
	return ts, handled
}

func openEvents(t *testing.T, ctx context.Context, url string) (*http.Response, *bufio.Reader) {
	t.Helper()
	resp, _ := openStream(t, ctx, url)
	return resp, bufio.NewReader(resp.Body)
}

func waitHandled(t *testing.T, handled <-chan string, path string) {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case p := <-handled:
			if p == path {
				return
			}
		case <-timeout:
			t.Fatalf("the handler of %s did not return", path)
		}
	}
}

func TestUpdateEvents(t *testing.T) {
	f := newUpdatesFixture(t)
	ts, handled := eventServer(t, f)
	const path = "/api/v1/devices/dev-1/update/events"

	// No update: a JSON 404, not a stream.
	r := f.do("GET", path, "")
	f.mustStatus(r, http.StatusNotFound)
	if r.header.Get("Content-Type") != "application/json" {
		t.Errorf("Content-Type %q", r.header.Get("Content-Type"))
	}

	f.mustStatus(f.do("POST", "/api/v1/devices/dev-1/update", `{"image":"2.0.0"}`), http.StatusAccepted)
	resp, rd := openEvents(t, t.Context(), ts.URL+path)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" ||
		resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("status %d, header %v", resp.StatusCode, resp.Header)
	}
	ev, ok := readEvent(t, rd)
	if !ok || ev.name != "update" || ev.view.Phase != "preparing" || ev.view.Endpoint != "dev-1" || strings.Contains(ev.data, "\n") {
		t.Fatalf("first event %+v", ev)
	}

	// The clock moving (elapsed_s) is no change; the next event is the
	// next change of the update.
	f.clock.add(5 * time.Second)
	time.Sleep(50 * time.Millisecond) // ten polls
	pkg := manifest.Digest{1}
	f.updates.set("dev-1", func(u *update.Update) {
		u.Phase, u.Package, u.Format, u.Size, u.Version = update.Downloading, pkg, manifest.FormatFull, 4096, "2.0.0"
	})
	ev, _ = readEvent(t, rd)
	if ev.view.Phase != "downloading" || ev.view.Package != pkg.String() || ev.view.BytesServed != 0 || ev.view.ElapsedS != 5 {
		t.Fatalf("second event %+v", ev.view)
	}
	for _, n := range []int64{1024, 2048} {
		f.updates.set("dev-1", func(u *update.Update) { u.BytesServed = n })
		if ev, _ = readEvent(t, rd); ev.view.BytesServed != n || ev.view.Progress != float64(n)/4096 {
			t.Fatalf("progress event %+v", ev.view)
		}
	}
	f.updates.set("dev-1", func(u *update.Update) { u.Phase, u.BytesServed = update.Updating, 4096 })
	if ev, _ = readEvent(t, rd); ev.view.Phase != "updating" {
		t.Fatalf("updating event %+v", ev.view)
	}
	// A finished phase is the last event.
	f.updates.set("dev-1", func(u *update.Update) { u.Phase, u.Result = update.Done, 1 })
	if ev, _ = readEvent(t, rd); ev.view.Phase != "done" || ev.view.ResultText != "success" {
		t.Fatalf("last event %+v", ev.view)
	}
	if ev, ok := readEvent(t, rd); ok {
		t.Fatalf("event after the end: %+v", ev)
	}
	waitHandled(t, handled, path)

	// A finished update: one event, and the end.
	_, rd = openEvents(t, t.Context(), ts.URL+path)
	if ev, ok := readEvent(t, rd); !ok || ev.view.Phase != "done" {
		t.Fatalf("event of a finished update %+v", ev)
	}
	if _, ok := readEvent(t, rd); ok {
		t.Fatal("a finished update's stream went on")
	}
}

func TestUpdateEventsClientGone(t *testing.T) {
	f := newUpdatesFixture(t)
	ts, handled := eventServer(t, f)
	const path = "/api/v1/devices/dev-1/update/events"
	f.mustStatus(f.do("POST", "/api/v1/devices/dev-1/update", `{"image":"2.0.0"}`), http.StatusAccepted)
	ctx, cancel := context.WithCancel(t.Context())
	resp, rd := openEvents(t, ctx, ts.URL+path)
	if ev, ok := readEvent(t, rd); !ok || ev.view.Phase != "preparing" {
		t.Fatalf("first event %+v", ev)
	}
	cancel()
	resp.Body.Close()
	waitHandled(t, handled, path)
}

func TestUpdateEventsStopStreams(t *testing.T) {
	f := newUpdatesFixture(t)
	ts, handled := eventServer(t, f)
	const path = "/api/v1/devices/dev-1/update/events"
	f.mustStatus(f.do("POST", "/api/v1/devices/dev-1/update", `{"image":"2.0.0"}`), http.StatusAccepted)
	_, rd := openEvents(t, t.Context(), ts.URL+path)
	readEvent(t, rd)
	f.srv.StopStreams()
	if _, ok := readEvent(t, rd); ok {
		t.Fatal("event after StopStreams")
	}
	waitHandled(t, handled, path)
	r := f.do("GET", path, "")
	f.mustStatus(r, http.StatusServiceUnavailable)
	if msg := r.errorMessage(t); msg != "server shutting down" {
		t.Errorf("message %q", msg)
	}
	// The other routes still answer.
	f.mustStatus(f.do("GET", "/api/v1/devices/dev-1/update", ""), http.StatusOK)
}

func TestStartUpdateTakesTheDeviceClass(t *testing.T) {
	f := newUpdatesFixture(t)
	if err := f.devices.PutDevice(context.Background(), lwm2m.Device{Endpoint: "dev-1", Class: "nrf9160"}); err != nil {
		t.Fatal(err)
	}
	f.mustStatus(f.do("POST", "/api/v1/devices/dev-1/update", `{"image":"2.0.0"}`), http.StatusAccepted)
	if req := f.updates.lastRequest(); req.Class != "nrf9160" {
		t.Errorf("request class %q, want the device's nrf9160", req.Class)
	}
	f.mustStatus(f.do("POST", "/api/v1/devices/dev-2/update", `{"image":"2.0.0","class":"anjay-gw"}`), http.StatusAccepted)
	if req := f.updates.lastRequest(); req.Class != "anjay-gw" {
		t.Errorf("request class %q, want the one given", req.Class)
	}
}

// The store is what fotad gives the API for the update history.
var _ UpdateHistory = (*store.DB)(nil)

// fakeHistory is an UpdateHistory: the earlier updates of each endpoint,
// newest first, or err.
type fakeHistory struct {
	mu  sync.Mutex
	m   map[string][]update.Update
	err error
	eps []string // the endpoints asked for, in order
}

func (h *fakeHistory) UpdateHistory(_ context.Context, ep string) ([]update.Update, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.eps = append(h.eps, ep)
	if h.err != nil {
		return nil, h.err
	}
	return append([]update.Update(nil), h.m[ep]...), nil
}

// newHistoryFixture is newUpdatesFixture with Config.History set.
func newHistoryFixture(t *testing.T) (*updatesFixture, *fakeHistory) {
	t.Helper()
	f := newUpdatesFixture(t)
	h := &fakeHistory{m: map[string][]update.Update{}}
	srv, err := New(Config{
		Devices:       f.devices,
		Registrations: f.regs,
		Transport:     statsFunc(func() coap.Stats { return coap.Stats{} }),
		Updates:       f.updates,
		History:       h,
		Token:         testToken,
		Logger:        zerolog.New(f.logs).Level(zerolog.DebugLevel),
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	srv.now = f.clock.Now
	f.srv, f.handler = srv, srv.Handler()
	return f, h
}

func TestListUpdates(t *testing.T) {
	f, h := newHistoryFixture(t)
	// No update at all: an empty list, not null.
	r := f.do("GET", "/api/v1/devices/dev-1/updates", "")
	f.mustStatus(r, http.StatusOK)
	if raw := decode[map[string]json.RawMessage](t, r.body); string(raw["updates"]) != "[]" || len(raw) != 1 {
		t.Errorf("no updates: %s", r.body)
	}

	// Earlier updates only (the driver lost the current one): listed.
	first := update.Update{Endpoint: "dev-1", Image: "1.0.0", Version: "1.0.0", Package: manifest.Digest{1},
		Format: manifest.FormatFull, Size: 800, BytesServed: 800, Phase: update.Done, Result: 1,
		Started: testNow.Add(-48 * time.Hour), Changed: testNow.Add(-47 * time.Hour), Deadline: testNow}
	second := update.Update{Endpoint: "dev-1", Image: "2.0.0", Version: "2.0.0", Package: manifest.Digest{2},
		Format: manifest.FormatDelta, Size: 300, BytesServed: 120, Phase: update.Failed, Result: 5, Retries: 2,
		Error:   "device reported update result 5 (integrity check failure)",
		Started: testNow.Add(-24 * time.Hour), Changed: testNow.Add(-23 * time.Hour), Deadline: testNow}
	h.m["dev-1"] = []update.Update{second, first}
	list := decode[UpdateList](t, f.do("GET", "/api/v1/devices/dev-1/updates", "").body)
	if len(list.Updates) != 2 || list.Updates[0].Image != "2.0.0" || list.Updates[1].Image != "1.0.0" {
		t.Fatalf("history only: %+v", list)
	}

	// The current update first, then the earlier ones newest first; all
	// in the UpdateView of GET .../update.
	f.updates.set("dev-1", func(u *update.Update) {
		*u = update.Update{Endpoint: "dev-1", Image: "2.0.1", Version: "2.0.1", Package: manifest.Digest{3},
			Format: manifest.FormatDelta, Size: 1000, BytesServed: 250, Phase: update.Downloading,
			Started: testNow.Add(-50 * time.Second), Changed: testNow.Add(-time.Second), Deadline: testNow.Add(time.Hour)}
	})
	r = f.do("GET", "/api/v1/devices/dev-1/updates", "")
	f.mustStatus(r, http.StatusOK)
	list = decode[UpdateList](t, r.body)
	if len(list.Updates) != 3 {
		t.Fatalf("list %s", r.body)
	}
	cur, prev, oldest := list.Updates[0], list.Updates[1], list.Updates[2]
	if cur.Image != "2.0.1" || cur.Phase != "downloading" || cur.Progress != 0.25 || cur.ETAS == nil || *cur.ETAS != 150 {
		t.Errorf("current %+v", cur)
	}
	if prev.Image != "2.0.0" || prev.Phase != "failed" || prev.ResultText != "integrity check failure" || prev.Retries != 2 ||
		prev.Format != "delta" || prev.ElapsedS != 3600 || prev.ETAS != nil || !prev.Started.Equal(second.Started) {
		t.Errorf("earlier %+v", prev)
	}
	if oldest.Image != "1.0.0" || oldest.Phase != "done" || oldest.Progress != 1 || oldest.ResultText != "success" {
		t.Errorf("oldest %+v", oldest)
	}
	// Listing earlier, finished updates does not disturb the current
	// download's rate: ten seconds and 100 bytes later it is 10 B/s, as
	// for GET .../update (TestShowUpdate).
	f.clock.add(10 * time.Second)
	f.updates.set("dev-1", func(u *update.Update) { u.BytesServed = 350 })
	list = decode[UpdateList](t, f.do("GET", "/api/v1/devices/dev-1/updates", "").body)
	if v := list.Updates[0]; v.ETAS == nil || *v.ETAS != 65 {
		t.Errorf("current after 10 s: %+v (eta %v)", v, v.ETAS)
	}

	// An update replaced between reading the current one and the history
	// is in both: listed once.
	cur0, _ := f.updates.Status("dev-1")
	h.m["dev-1"] = []update.Update{cur0, second, first}
	if list := decode[UpdateList](t, f.do("GET", "/api/v1/devices/dev-1/updates", "").body); len(list.Updates) != 3 {
		t.Errorf("replaced meanwhile: %d updates", len(list.Updates))
	}

	// The endpoint is the path's, unescaped.
	h.eps = nil
	f.mustStatus(f.do("GET", "/api/v1/devices/dev%201/updates", ""), http.StatusOK)
	if len(h.eps) != 1 || h.eps[0] != "dev 1" {
		t.Errorf("history asked for %q", h.eps)
	}

	// A failing store: 500, logged, the error not shown.
	h.err = errors.New("disk on fire")
	r = f.do("GET", "/api/v1/devices/dev-1/updates", "")
	f.mustStatus(r, http.StatusInternalServerError)
	if msg := r.errorMessage(t); msg != "internal error" {
		t.Errorf("message %q", msg)
	}
	if !strings.Contains(f.logs.String(), "disk on fire") {
		t.Errorf("store error not logged:\n%s", f.logs.String())
	}
}

// TestListUpdatesWithoutHistory: without Config.History the list holds
// the current or last update only.
func TestListUpdatesWithoutHistory(t *testing.T) {
	f := newUpdatesFixture(t)
	r := f.do("GET", "/api/v1/devices/dev-1/updates", "")
	f.mustStatus(r, http.StatusOK)
	if raw := decode[map[string]json.RawMessage](t, r.body); string(raw["updates"]) != "[]" {
		t.Errorf("no updates: %s", r.body)
	}
	f.updates.set("dev-1", func(u *update.Update) {
		u.Image, u.Phase, u.Result, u.Started, u.Changed = "2.0.0", update.Done, 1, testNow.Add(-time.Hour), testNow
	})
	list := decode[UpdateList](t, f.do("GET", "/api/v1/devices/dev-1/updates", "").body)
	if len(list.Updates) != 1 || list.Updates[0].Image != "2.0.0" || list.Updates[0].ResultText != "success" {
		t.Errorf("list %+v", list)
	}
}
