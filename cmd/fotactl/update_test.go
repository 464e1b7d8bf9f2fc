package main

import (
	"context"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fotahub/fota/api"
	"github.com/fotahub/fota/delivery/manifest"
	"github.com/fotahub/fota/delivery/update"
	"github.com/fotahub/fota/lwm2m"
)

// fakeUpdates is an api.Updates. A device with a script walks through it,
// one step per Status call (the event stream polls every 500 ms), and
// stays on the last step.
type fakeUpdates struct {
	mu       sync.Mutex
	updates  map[string]update.Update
	scripts  map[string][]update.Update
	requests []update.Request
}

func (f *fakeUpdates) Start(_ context.Context, ep string, req update.Request) (update.Update, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, req)
	if ep != "dev-1" {
		return update.Update{}, &lwm2m.OpError{Op: "read", Endpoint: ep, Path: "/3/0/3", Err: lwm2m.ErrNotRegistered}
	}
	if u, ok := f.updates[ep]; ok && !u.Phase.Finished() {
		return update.Update{}, update.ErrBusy
	}
	now := time.Now()
	u := update.Update{Endpoint: ep, Image: req.Image, Class: req.Class, Full: req.Full, Push: req.Push, Phase: update.Preparing,
		Started: now, Changed: now, Deadline: now.Add(24 * time.Hour)}
	f.updates[ep] = u
	return u, nil
}

func (f *fakeUpdates) Status(ep string) (update.Update, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if s := f.scripts[ep]; len(s) > 0 {
		if len(s) > 1 {
			f.scripts[ep] = s[1:]
		}
		return s[0], true
	}
	u, ok := f.updates[ep]
	return u, ok
}

func (f *fakeUpdates) Cancel(_ context.Context, ep string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	u, ok := f.updates[ep]
	switch {
	case !ok:
		return update.ErrNoUpdate
	case u.Phase.Finished():
		return update.ErrNotRunning
	}
	u.Phase, u.Error, u.Changed = update.Cancelled, "cancelled", time.Now()
	f.updates[ep] = u
	return nil
}

func (f *fakeUpdates) set(ep string, u update.Update) {
	f.mu.Lock()
	defer f.mu.Unlock()
	u.Endpoint = ep
	f.updates[ep] = u
}

func (f *fakeUpdates) script(ep string, steps ...update.Update) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range steps {
		steps[i].Endpoint = ep
	}
	f.scripts[ep] = steps
}

type updateEnv struct {
	*env
	updates *fakeUpdates
	history *fakeHistory
}

func newUpdateEnv(t *testing.T) *updateEnv {
	t.Helper()
	e := &env{t: t, devices: &memDevices{devices: map[string]lwm2m.Device{}}, regs: memRegs{}}
	updates := &fakeUpdates{updates: map[string]update.Update{}, scripts: map[string][]update.Update{}}
	history := &fakeHistory{m: map[string][]update.Update{}}
	srv, err := api.New(api.Config{Devices: e.devices, Registrations: e.regs, Transport: noStats{},
		Updates: updates, History: history, Token: testToken})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	t.Cleanup(srv.StopStreams)
	e.url = ts.URL
	return &updateEnv{e, updates, history}
}

// downloading is an update 83 s old, 5555 of 12345 bytes served.
func downloading() update.Update {
	started := time.Now().Add(-83 * time.Second)
	return update.Update{Image: "2.0.0", Target: manifest.Digest{0xaa}, Version: "2.0.0", Package: manifest.Digest{0xbb},
		Format: manifest.FormatDelta, Size: 12345, BytesServed: 5555, Phase: update.Downloading,
		Started: started, Changed: started.Add(time.Minute), Deadline: testNow.Add(24 * time.Hour)}
}

func TestUpdateStartCommand(t *testing.T) {
	e := newUpdateEnv(t)
	r := e.run("update", "dev-1", "--image", "2.0.0").ok(t)
	want := "updating dev-1 to 2.0.0 (pull, delta when smaller): preparing; follow it with: fotactl update status dev-1 --watch\n"
	if r.stdout != want {
		t.Errorf("stdout %q\nwant   %q", r.stdout, want)
	}
	if req := e.updates.requests[0]; req != (update.Request{Image: "2.0.0"}) {
		t.Errorf("request %+v", req)
	}

	// Busy, and an unregistered device.
	r = e.run("update", "dev-1", "--image", "2.0.0")
	if r.code != exitFailure || !strings.Contains(r.stderr, "update dev-1: an update is already running for this device (HTTP 409)") {
		t.Errorf("busy: exit %d, stderr %q", r.code, r.stderr)
	}
	r = e.run("update", "start", "dev-2", "--image", "2.0.0")
	if r.code != exitFailure || !strings.Contains(r.stderr, "device not registered (HTTP 404)") {
		t.Errorf("unregistered: exit %d, stderr %q", r.code, r.stderr)
	}

	// --full --push --json; an endpoint named like a verb needs "start".
	e.updates.set("dev-1", update.Update{Phase: update.Done})
	r = e.run("update", "--image", "1.9.0", "--full", "--push", "--json", "dev-1").ok(t)
	var v api.UpdateView
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil || v.Method != "push" || !v.Full || v.Phase != "preparing" || v.Image != "1.9.0" {
		t.Errorf("--json: %v\n%s", err, r.stdout)
	}
	if req := e.updates.requests[len(e.updates.requests)-1]; req != (update.Request{Image: "1.9.0", Full: true, Push: true}) {
		t.Errorf("request %+v", req)
	}

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"update", "dev-1"}, "--image is required"},
		{[]string{"update", "--image", "2.0.0"}, "missing ENDPOINT"},
		{[]string{"update", "dev-1", "dev-2", "--image", "2.0.0"}, `unexpected argument "dev-2"`},
		{[]string{"update", "status"}, "usage: fotactl update status ENDPOINT [--watch] [--json]"},
		{[]string{"update", "cancel", "a", "b"}, `unexpected argument "b"`},
	} {
		r := e.run(c.args...)
		if r.code != exitUsage || !strings.Contains(r.stderr, c.want) {
			t.Errorf("%v: exit %d, stderr %q", c.args, r.code, r.stderr)
		}
	}
	if r := e.run("update", "-h").ok(t); !strings.Contains(r.stdout, "--image VERSION or DIGEST") || !strings.Contains(r.stdout, "--push") {
		t.Errorf("help:\n%s", r.stdout)
	}
	if r := runCLI(t, nil, "help").ok(t); !strings.Contains(r.stdout, "update status ENDPOINT [--watch]") {
		t.Errorf("main help lacks update:\n%s", r.stdout)
	}
}

func TestUpdateStatusCommand(t *testing.T) {
	e := newUpdateEnv(t)
	r := e.run("update", "status", "dev-1")
	if r.code != exitFailure || !strings.Contains(r.stderr, "no update of dev-1") || !strings.Contains(r.stderr, "HTTP 404") {
		t.Errorf("no update: exit %d, stderr %q", r.code, r.stderr)
	}

	u := downloading()
	e.updates.set("dev-1", u)
	r = e.run("update", "status", "dev-1").ok(t)
	// 45.0 % of 30 cells is 13; the rate since the start (5555 bytes in
	// 83 s) leaves about 102 s for the other 6790 bytes.
	for _, want := range []string{
		"Endpoint:     dev-1\n",
		"Image:        2.0.0, sha256 aa00000000000000000000000000000000000000000000000000000000000000\n",
		"Method:       pull: the device downloads the package from fotad\n",
		"Package:      delta, 12345 bytes, id bb00",
		"Phase:        downloading\n",
		"Progress:     [#############.................] 45.0 %  5555 of 12345 bytes\n",
		"Last result:  0 (initial)\n",
		"Started:      ",
		"Deadline:     2025-03-02T12:00:00Z\n",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("status lacks %q:\n%s", want, r.stdout)
		}
	}
	if !regexp.MustCompile(`Time so far:  1m2[3-6]s\nTime left:    about 1m[34][0-9]s \(download\)\n`).MatchString(r.stdout) {
		t.Errorf("no time left:\n%s", r.stdout)
	}

	r = e.run("update", "status", "dev-1", "--json").ok(t)
	var v api.UpdateView
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil || v.BytesServed != 5555 || v.Progress != 0.45 || v.Format != "delta" {
		t.Errorf("--json: %v\n%s", err, r.stdout)
	}

	// A failed update: its result and error, and exit 1.
	u.Phase, u.Result, u.Error, u.FellBack, u.Push = update.Failed, 5, "device reported update result 5 (integrity check failure)", true, true
	e.updates.set("dev-1", u)
	r = e.run("update", "status", "dev-1")
	if r.code != exitFailure || !strings.Contains(r.stderr, "update of dev-1 failed: device reported update result 5") {
		t.Errorf("failed: exit %d, stderr %q", r.code, r.stderr)
	}
	for _, want := range []string{"Phase:        failed\n", "Last result:  5 (integrity check failure)\n",
		"Error:        device reported", "Method:       push:", "fell back to the full image", "Ended:        "} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("failed status lacks %q:\n%s", want, r.stdout)
		}
	}
	if strings.Contains(r.stdout, "Time left") {
		t.Errorf("time left of a failed update:\n%s", r.stdout)
	}
}

func TestUpdateCancelCommand(t *testing.T) {
	e := newUpdateEnv(t)
	r := e.run("update", "cancel", "dev-1")
	if r.code != exitFailure || !strings.Contains(r.stderr, "cancel update of dev-1: no update of dev-1") {
		t.Errorf("no update: exit %d, stderr %q", r.code, r.stderr)
	}
	e.updates.set("dev-1", downloading())
	r = e.run("update", "cancel", "dev-1").ok(t)
	if r.stdout != "update of dev-1 cancelled\n" {
		t.Errorf("stdout %q", r.stdout)
	}
	r = e.run("update", "cancel", "dev-1")
	if r.code != exitFailure || !strings.Contains(r.stderr, "has finished: cancelled (HTTP 409)") {
		t.Errorf("again: exit %d, stderr %q", r.code, r.stderr)
	}

	e.updates.set("dev-1", downloading())
	r = e.run("update", "stop", "dev-1", "--json").ok(t)
	var v api.UpdateView
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil || v.Phase != "cancelled" {
		t.Errorf("--json: %v\n%s", err, r.stdout)
	}
}

// runAsync runs fotactl in the background with a context the test can
// cancel (Ctrl-C).
func (e *updateEnv) runAsync(args ...string) (stdout, stderr *syncBuffer, interrupt func(), code <-chan int) {
	stdout, stderr = &syncBuffer{}, &syncBuffer{}
	c := newCLI(stdout, stderr, strings.NewReader(""), func(string) string { return "" })
	c.now = func() time.Time { return testNow }
	ctx, cancel := context.WithCancel(e.t.Context())
	c.ctx = ctx
	done := make(chan int, 1)
	go func() { done <- c.run(append([]string{"--server", e.url, "--token", testToken}, args...)) }()
	return stdout, stderr, cancel, done
}

func waitExit(t *testing.T, code <-chan int) int {
	t.Helper()
	select {
	case c := <-code:
		return c
	case <-time.After(10 * time.Second):
		t.Fatal("fotactl did not exit")
		return 0
	}
}

func TestUpdateWatchCommand(t *testing.T) {
	e := newUpdateEnv(t)
	u := downloading()
	prep := u
	prep.Phase, prep.Size, prep.BytesServed, prep.Package, prep.Format = update.Preparing, 0, 0, manifest.Digest{}, 0
	half := u
	half.BytesServed = 6173
	done := u
	done.Phase, done.BytesServed, done.Result, done.Changed = update.Done, 12345, 1, u.Started.Add(2*time.Minute)
	e.updates.script("dev-1", prep, half, done)

	stdout, stderr, _, code := e.runAsync("update", "status", "dev-1", "--watch")
	if c := waitExit(t, code); c != exitOK {
		t.Fatalf("exit %d; stderr %s", c, stderr.String())
	}
	stamp := testNow.Local().Format("15:04:05")
	lines := strings.Split(strings.TrimSuffix(stdout.String(), "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("output:\n%s", stdout.String())
	}
	for i, re := range []string{
		`^` + stamp + `  preparing    1m2[3-9]s$`,
		`^` + stamp + `  downloading  \[##########\.{10}\]  50\.0 %  6\.0 KiB/12\.1 KiB  1m2[3-9]s, ~1m[23][0-9]s left$`,
		`^` + stamp + `  done         \[#{20}\] 100\.0 %  12\.1 KiB/12\.1 KiB  2m00s  result 1 \(success\)$`,
	} {
		if !regexp.MustCompile(re).MatchString(lines[i]) {
			t.Errorf("line %d %q\ndoes not match %s", i, lines[i], re)
		}
	}
	if !strings.Contains(stderr.String(), "Following the update of dev-1") {
		t.Errorf("stderr %q", stderr.String())
	}

	// --json: the events' JSON, one per line; a failed update exits 1.
	failed := u
	failed.Phase, failed.Result, failed.Error = update.Failed, 2, "device reported update result 2 (not enough flash)"
	e.updates.script("dev-1", u, u, failed)
	stdout, stderr, _, code = e.runAsync("update", "status", "dev-1", "--watch", "--json")
	if c := waitExit(t, code); c != exitFailure || !strings.Contains(stderr.String(), "update of dev-1 failed: device reported update result 2") {
		t.Errorf("failed watch: exit %d, stderr %q", c, stderr.String())
	}
	lines = strings.Split(strings.TrimSuffix(stdout.String(), "\n"), "\n")
	var first, last api.UpdateView
	if len(lines) != 2 || json.Unmarshal([]byte(lines[0]), &first) != nil || json.Unmarshal([]byte(lines[1]), &last) != nil ||
		first.Phase != "downloading" || last.Phase != "failed" || last.ResultText != "not enough flash" {
		t.Errorf("--json output:\n%s", stdout.String())
	}

	// Ctrl-C ends the watch, not the update.
	e.updates.script("dev-1", u)
	stdout, _, interrupt, code := e.runAsync("update", "status", "dev-1", "--watch")
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(stdout.String(), "\n") && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	interrupt()
	if c := waitExit(t, code); c != exitOK {
		t.Errorf("exit %d after Ctrl-C", c)
	}
	if !strings.Contains(stdout.String(), "downloading") {
		t.Errorf("output %q", stdout.String())
	}

	// No update to watch.
	r := e.run("update", "status", "dev-9", "--watch")
	if r.code != exitFailure || !strings.Contains(r.stderr, "no update of dev-9") {
		t.Errorf("no update: exit %d, stderr %q", r.code, r.stderr)
	}
}

func TestUpdateWatchRedraws(t *testing.T) {
	defer func(f func(*cli) bool) { outputIsTerminal = f }(outputIsTerminal)
	outputIsTerminal = func(*cli) bool { return true }
	e := newUpdateEnv(t)
	u := downloading()
	more := u
	more.BytesServed = 9000
	done := u
	done.Phase, done.BytesServed, done.Result, done.Changed = update.Done, 12345, 1, u.Started.Add(2*time.Minute)
	e.updates.script("dev-1", u, more, done)
	stdout, stderr, _, code := e.runAsync("update", "status", "dev-1", "--watch")
	if c := waitExit(t, code); c != exitOK {
		t.Fatalf("exit %d; stderr %s", c, stderr.String())
	}
	// The downloading line is drawn twice in place; the done line starts
	// a line of its own, and the output ends with a newline.
	out := stdout.String()
	parts := strings.Split(out, "\r\x1b[K")
	if len(parts) != 4 || parts[0] != "" || !strings.Contains(parts[1], "45.0 %") ||
		strings.Contains(parts[1], "\n") || !strings.Contains(parts[2], "72.9 %") || !strings.HasSuffix(parts[2], "\n") ||
		!strings.Contains(parts[3], "done") || !strings.HasSuffix(parts[3], "\n") || strings.Count(out, "\n") != 2 {
		t.Errorf("output %q", out)
	}
}

func TestReadEvents(t *testing.T) {
	in := ": comment\n\nevent: update\ndata: {\"a\":1}\n\n" +
		"id: 7\r\ndata: line1\r\ndata:line2\r\n\r\n" +
		"event: other\ndata\n\n" +
		"event: update\ndata: {\"a\":2}\n\n" +
		"event: update\ndata: unterminated"
	type ev struct{ name, data string }
	var got []ev
	err := readEvents(strings.NewReader(in), func(name string, data []byte) error {
		got = append(got, ev{name, string(data)})
		return nil
	})
	want := []ev{{"update", `{"a":1}`}, {"message", "line1\nline2"}, {"other", ""}, {"update", `{"a":2}`}}
	if err != nil || len(got) != len(want) {
		t.Fatalf("events %q, err %v", got, err)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("event %d: %q, want %q", i, got[i], want[i])
		}
	}
	stop := errors.New("stop")
	n := 0
	if err := readEvents(strings.NewReader(in), func(string, []byte) error { n++; return stop }); err != stop || n != 1 {
		t.Errorf("stop: %v after %d", err, n)
	}
}

func TestUpdateHelpers(t *testing.T) {
	for _, c := range []struct {
		p    float64
		want string
	}{{0, "[..........]"}, {0.05, "[..........]"}, {0.45, "[####......]"}, {1, "[##########]"}, {1.5, "[##########]"}, {-1, "[..........]"}} {
		if got := progressBar(c.p, 10); got != c.want {
			t.Errorf("progressBar(%v) = %s, want %s", c.p, got, c.want)
		}
	}
	for s, want := range map[int64]string{-3: "0s", 0: "0s", 59: "59s", 60: "1m00s", 83: "1m23s", 3599: "59m59s", 3600: "1h00m", 7620: "2h07m"} {
		if got := shortDuration(s); got != want {
			t.Errorf("shortDuration(%d) = %s, want %s", s, got, want)
		}
	}
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 12345: "12.1 KiB", 3 << 20: "3.0 MiB"} {
		if got := sizeText(n); got != want {
			t.Errorf("sizeText(%d) = %s, want %s", n, got, want)
		}
	}
}

func TestUpdateStartWithClass(t *testing.T) {
	e := newUpdateEnv(t)
	r := e.run("update", "dev-1", "--image", "2.1.0", "--class", "nrf91-tracker").ok(t)
	want := "updating dev-1 to 2.1.0 of class nrf91-tracker (pull, delta when smaller): preparing; follow it with: fotactl update status dev-1 --watch\n"
	if r.stdout != want {
		t.Errorf("stdout %q\nwant   %q", r.stdout, want)
	}
	if req := e.updates.requests[0]; req != (update.Request{Image: "2.1.0", Class: "nrf91-tracker"}) {
		t.Errorf("request %+v", req)
	}
}

// fakeHistory is an api.UpdateHistory: each endpoint's earlier updates,
// newest first.
type fakeHistory struct {
	mu sync.Mutex
	m  map[string][]update.Update
}

func (h *fakeHistory) UpdateHistory(_ context.Context, ep string) ([]update.Update, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]update.Update(nil), h.m[ep]...), nil
}

func (h *fakeHistory) set(ep string, us ...update.Update) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for i := range us {
		us[i].Endpoint = ep
	}
	h.m[ep] = us
}

func TestUpdateHistoryCommand(t *testing.T) {
	e := newUpdateEnv(t)
	r := e.run("update", "history", "dev-1").ok(t)
	if want := "No updates of dev-1. Start one with 'fotactl update dev-1 --image VERSION'.\n"; r.stdout != want {
		t.Errorf("no updates: %q", r.stdout)
	}

	cur := downloading()
	cur.Started = time.Date(2025, 3, 1, 11, 58, 37, 0, time.FixedZone("CET", 3600)) // printed in UTC
	e.updates.set("dev-1", cur)
	failed := update.Update{Image: "1.9.0", Version: "1.9.0", Package: manifest.Digest{0xcc}, Format: manifest.FormatFull,
		Push: true, Size: 3 << 20, BytesServed: 1 << 20, Phase: update.Failed, Result: 5, Retries: 2,
		Error:   "device reported update result 5 (integrity check failure)",
		Started: time.Date(2025, 2, 20, 9, 0, 0, 0, time.UTC), Changed: time.Date(2025, 2, 20, 9, 30, 0, 0, time.UTC)}
	raw := update.Update{Image: "1.8.0", Version: "1.8.0", Package: manifest.Digest{0xdd}, Raw: true, Size: 800,
		BytesServed: 800, Phase: update.Done, Result: 1,
		Started: time.Date(2025, 1, 5, 8, 0, 0, 0, time.UTC), Changed: time.Date(2025, 1, 5, 8, 10, 0, 0, time.UTC)}
	asked := update.Update{Image: "1.7.0", Phase: update.Cancelled, Error: "cancelled",
		Started: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), Changed: time.Date(2025, 1, 1, 0, 1, 0, 0, time.UTC)}
	e.history.set("dev-1", failed, raw, asked)

	r = e.run("update", "history", "dev-1").ok(t)
	want := "" +
		"STARTED (UTC)        VERSION  METHOD  PAYLOAD  SIZE      PHASE        RESULT                   RETRIES  ERROR\n" +
		"2025-03-01 10:58:37  2.0.0    pull    delta    12.1 KiB  downloading  initial                  0        -\n" +
		"2025-02-20 09:00:00  1.9.0    push    full     3.0 MiB   failed       integrity check failure  2        device reported update result 5 (integrity check failure)\n" +
		"2025-01-05 08:00:00  1.8.0    pull    raw      800 B     done         success                  0        -\n" +
		"2025-01-01 00:00:00  1.7.0    pull    -        -         cancelled    initial                  0        cancelled\n"
	if r.stdout != want {
		t.Errorf("stdout:\n%s\nwant:\n%s", r.stdout, want)
	}

	// --json is the API's list; the current update first.
	r = e.run("update", "history", "--json", "dev-1").ok(t)
	var list api.UpdateList
	if err := json.Unmarshal([]byte(r.stdout), &list); err != nil || len(list.Updates) != 4 ||
		list.Updates[0].Phase != "downloading" || list.Updates[1].ResultText != "integrity check failure" || !list.Updates[2].Raw {
		t.Errorf("--json: %v\n%s", err, r.stdout)
	}
	r = e.run("update", "history", "dev-2", "--json").ok(t)
	if err := json.Unmarshal([]byte(r.stdout), &list); err != nil || list.Updates == nil || len(list.Updates) != 0 {
		t.Errorf("--json without updates: %v\n%s", err, r.stdout)
	}

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"update", "history"}, "usage: fotactl update history ENDPOINT [--json]"},
		{[]string{"update", "history", "a", "b"}, `unexpected argument "b"`},
	} {
		r := e.run(c.args...)
		if r.code != exitUsage || !strings.Contains(r.stderr, c.want) {
			t.Errorf("%v: exit %d, stderr %q", c.args, r.code, r.stderr)
		}
	}
	if r := runCLI(t, nil, "help").ok(t); !strings.Contains(r.stdout, "update history ENDPOINT [--json]") {
		t.Errorf("main help lacks update history:\n%s", r.stdout)
	}
}
