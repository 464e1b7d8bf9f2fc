package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/rs/zerolog"

	"github.com/fotahub/fota/api"
	"github.com/fotahub/fota/simulator"
	"github.com/fotahub/fota/simulator/link"
)

// browser drives Debian's chromium, headless, through the DevTools
// protocol: the web console as a person uses it.
type browser struct {
	t    *testing.T
	ctx  context.Context
	base string // fotad's admin URL
	dir  string // where screenshots go
}

// chromiumPath finds the browser; under CI its absence fails the test
// (.ci/run installs it), elsewhere it skips.
func chromiumPath(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if ci := os.Getenv("CI"); ci != "" && ci != "false" && ci != "0" {
		t.Fatal("chromium not found: apt-get install chromium")
	}
	t.Skip("chromium not found (apt-get install chromium)")
	return ""
}

// screenshotDir is $FOTA_SCREENSHOT_DIR, or .ci/out/screenshots at the
// repository's root, which .ci/run lists at the end of a run.
func screenshotDir(t *testing.T) string {
	dir := os.Getenv("FOTA_SCREENSHOT_DIR")
	if dir == "" {
		dir = filepath.Join("..", "..", ".ci", "out", "screenshots")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("screenshots: %v", err)
	}
	return dir
}

func newBrowser(t *testing.T, base string) *browser {
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.NoSandbox, // CI runs as root
		chromedp.WindowSize(1280, 900),
		chromedp.Flag("disable-dev-shm-usage", true),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx, chromedp.WithErrorf(t.Logf))
	t.Cleanup(func() { cancel(); cancelAlloc() })
	// The first run starts the browser, whose life is this context's: no
	// timeout on it.
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return &browser{t: t, ctx: ctx, base: base, dir: screenshotDir(t)}
}

// do runs steps, failing the test after 30 s.
func (b *browser) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.shot("failed-" + what)
		b.t.Fatalf("%s: %v", what, err)
	}
}

// evalJS evaluates a JavaScript expression in the page, awaiting a
// promise, and returns its value.
func evalJS[T any](b *browser, what, js string) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js, chromedp.EvalAwaitPromise))
	if err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
	return v
}

// text is the textContent of the first element matching sel, "" when none.
func (b *browser) text(sel string) string {
	b.t.Helper()
	return evalJS[string](b, "read "+sel, fmt.Sprintf(`(document.querySelector(%q)||{}).textContent||""`, sel))
}

// waitText waits until the textContent of sel satisfies ok.
func (b *browser) waitText(what, sel string, within time.Duration, ok func(string) bool) string {
	b.t.Helper()
	deadline := time.Now().Add(within)
	for {
		s := b.text(sel)
		if ok(s) {
			return s
		}
		if time.Now().After(deadline) {
			b.shot("timeout-" + what)
			b.t.Fatalf("%s: not within %v; %s reads %q; error banner %q", what, within, sel, s, b.text("#error"))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// shot saves a full-page PNG screenshot as name.png.
func (b *browser) shot(name string) {
	name = strings.Map(func(r rune) rune {
		if r == '/' || r == '#' || r == ' ' {
			return '-'
		}
		return r
	}, name)
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Logf("screenshot %s: %v", name, err)
		return
	}
	path := filepath.Join(b.dir, name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Errorf("screenshot %s: %v", name, err)
		return
	}
	b.t.Logf("screenshot %s", path)
}

// open opens a console route (a hash such as "#/fleet") and waits for sel.
func (b *browser) open(route, sel string) {
	b.t.Helper()
	b.do("open "+route, chromedp.Navigate(b.base+"/console/"+route), visible(sel))
}

// Steps on the element the CSS selector finds first, once it is visible.
func visible(sel string) chromedp.Action[chromedp.Void] {
	return chromedp.WaitVisible(chromedp.CSS(sel))
}

// present waits for the element without asking it to be visible (an
// option of a closed select is not).
func present(sel string) chromedp.Action[chromedp.Void] {
	return chromedp.WaitReady(chromedp.CSS(sel))
}

func click(sel string) chromedp.Action[chromedp.Void] {
	return chromedp.Click(chromedp.CSS(sel), chromedp.NodeVisible)
}

func typeIn(sel, text string) chromedp.Action[chromedp.Void] {
	return chromedp.SendKeys(chromedp.CSS(sel), text, chromedp.NodeVisible)
}

// setValue sets a form field's value as a person's input would, firing
// input and change.
func setValue(sel, value string) chromedp.Action[chromedp.Void] {
	js := fmt.Sprintf(`(() => {
		const el = document.querySelector(%q);
		if (!el) return false;
		el.value = %q;
		el.dispatchEvent(new Event("input", {bubbles: true}));
		el.dispatchEvent(new Event("change", {bubbles: true}));
		return el.value === %q; })()`, sel, value, value)
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		ok, err := chromedp.Evaluate[bool](js)(ctx, t)
		if err == nil && !ok {
			err = fmt.Errorf("could not set %s to %q", sel, value)
		}
		return chromedp.Void{}, err
	}
}

// TestConsoleInBrowser drives the web console in headless chromium against
// fotad and simulated devices on loopback, as a field engineer would:
// a wrong token is refused; signing in (with the keyboard) leads to the
// fleet, which lists the registered devices; a change sent without the
// session's CSRF token is refused; an update started from a device page
// shows its progress bar move to success; a campaign planned, created and
// started from the campaigns page completes its waves; the images page
// uploads an image and shows the delta sizes from the version the fleet
// runs; the event page shows what happened to a device. Every page is
// saved as a screenshot (see screenshotDir), at laptop size and the fleet
// also at tablet size.
func TestConsoleInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("browser")
	}
	v1, v2 := readCorpus(t, "v1"), readCorpus(t, "v2")
	s := startServer(t, func(c *fileConfig) {
		c.Campaigns.Tick = 250 * time.Millisecond
		c.Delivery.RetryBackoff = time.Second
		c.Delivery.PollInterval = 5 * time.Second
	})
	dmAddImages(t, s, "meter", map[string][]byte{"1.0.0": v1, "2.0.0": v2})
	logger := zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)
	devs := map[string]*simulator.Device{}
	for i, prof := range []string{"catm1", "wifi", "wifi", "wifi"} {
		ep := fmt.Sprintf("console-%d", i)
		dmProvision(t, s, ep)
		p, _ := link.Lookup(prof)
		p.Up.Loss, p.Down.Loss = 0, 0
		relay := dmRelay(t, s.coapsAddr(), p, uint64(i))
		devs[ep] = dmStartDevice(t, simulator.Config{Endpoint: ep, PSKIdentity: ep, PSKKey: []byte(ep + "-key"),
			Server: relay.Addr().String(), Firmware: v1, FirmwareVersion: "1.0.0", Sequence: 1, Class: "meter",
			TrustKey: s.d.firmware.PublicKey(), BlockSize: 512, BootTime: 100 * time.Millisecond,
			Lifetime: 60 * time.Second, Logger: logger})
	}
	waitWithin(t, "every device registered, its version read", time.Minute, func() bool {
		for ep := range devs {
			if v, ok := s.d.inventory.Installed(ep); !ok || v != "1.0.0" {
				return false
			}
		}
		return true
	})

	b := newBrowser(t, s.apiURL())
	t.Run("wrong token refused", func(t *testing.T) {
		b.t = t
		b.open("#/fleet", "#signin-token")
		b.do("type a wrong token", typeIn("#signin-token", strings.Repeat("0", 64)),
			click("#signin-submit"))
		msg := b.waitText("the refusal shown", "#signin-error", 10*time.Second, func(s string) bool { return s != "" })
		t.Logf("refusal: %q", msg)
		b.shot("signin-refused")
		if n := evalJS[int](b, "fleet rows", `document.querySelectorAll("#fleet-table tbody tr").length`); n != 0 {
			t.Fatalf("the fleet shows %d rows after a wrong token", n)
		}
	})
	t.Run("sign in and see the fleet", func(t *testing.T) {
		b.t = t
		b.do("sign in with the keyboard", setValue("#signin-token", ""),
			typeIn("#signin-token", s.d.token+kb.Enter),
			visible(`#fleet-table tr[data-endpoint="console-3"]`))
		for ep := range devs {
			row := b.text(fmt.Sprintf(`#fleet-table tr[data-endpoint=%q]`, ep))
			if !strings.Contains(row, "1.0.0") {
				t.Errorf("fleet row of %s: %q, want its version 1.0.0", ep, row)
			}
		}
		if chart := b.text("#version-chart"); !strings.Contains(chart, "1.0.0") || !strings.Contains(chart, "4 devices") {
			t.Errorf("version chart %q: want 1.0.0 on 4 devices", chart)
		}
		res, err := chromedp.Call(b.ctx, network.GetCookies, network.GetCookiesParams{})
		if err != nil {
			t.Fatalf("read cookies: %v", err)
		}
		cookies := res.Cookies
		if len(cookies) != 1 || !cookies[0].HTTPOnly || cookies[0].SameSite != network.CookieSameSiteStrict {
			t.Fatalf("cookies %+v: want one HttpOnly SameSite=Strict session cookie", cookies)
		}
		if c := evalJS[string](b, "document.cookie", `document.cookie`); c != "" {
			t.Errorf("scripts can read the cookie: %q", c)
		}
		b.shot("fleet")
		b.do("tablet size", chromedp.EmulateViewport(768, 1024))
		b.shot("fleet-tablet")
		b.do("laptop size", chromedp.EmulateViewport(1280, 900))
	})
	t.Run("change without CSRF refused", func(t *testing.T) {
		b.t = t
		body := `JSON.stringify({endpoint: "csrf-probe", psk_identity: "csrf-probe", psk_key: "0011"})`
		without := evalJS[int](b, "POST without the CSRF token", `fetch("/api/v1/devices", {method: "POST", body: `+body+`,
			headers: {"Content-Type": "application/json"}}).then(r => r.status)`)
		if without != http.StatusForbidden {
			t.Fatalf("a change without the CSRF token: HTTP %d, want 403", without)
		}
		if code := dmAPI(t, s, "GET", "/api/v1/devices/csrf-probe", nil, nil); code != http.StatusNotFound {
			t.Fatalf("the refused device exists: HTTP %d", code)
		}
		// The same request with the session's token goes through: it was
		// the token that was missing.
		with := evalJS[int](b, "POST with the CSRF token", `fetch("/console/session").then(r => r.json()).then(s =>
			fetch("/api/v1/devices", {method: "POST", body: `+body+`,
				headers: {"Content-Type": "application/json", "X-CSRF-Token": s.csrf}})).then(r => r.status)`)
		if with != http.StatusCreated {
			t.Fatalf("the same change with the CSRF token: HTTP %d", with)
		}
		dmAPI(t, s, "DELETE", "/api/v1/devices/csrf-probe", nil, nil)
	})
	t.Run("device resources from the device page", func(t *testing.T) {
		b.t = t
		b.open("#/device/console-0", `.instance[data-path="/3/0"] button`)
		b.do("read /3/0", click(`.instance[data-path="/3/0"] button`), visible(`tr[data-path="/3/0/13"]`))
		if row := b.text(`tr[data-path="/3/0/1"]`); !strings.Contains(row, "fotasim") {
			t.Errorf("/3/0/1 reads %q, want the model fotasim", row)
		}
		// /3/0/1 Model Number is read-only (R): no Write, no Execute.
		// Model Number (/3/0/1) is R: no Write, no Execute. Reboot (/3/0/4)
		// is E: only Execute, and no value.
		controls := func(path string) string {
			return evalJS[string](b, "controls of "+path, fmt.Sprintf(`[...document.querySelectorAll('tr[data-path=%q] td.actions button')]`+
				`.map((e) => e.textContent.trim()).join(",")`, path))
		}
		if got := controls("/3/0/1"); got != "Observe" {
			t.Errorf("read-only /3/0/1 offers %q, want only Observe", got)
		}
		if got := controls("/3/0/4"); got != "Execute" {
			t.Errorf("executable /3/0/4 offers %q, want only Execute", got)
		}
		b.do("write /3/0/13", typeIn(`tr[data-path="/3/0/13"] input`, "1700000000"+kb.Enter))
		b.waitText("the write answered", `tr[data-path="/3/0/13"] td.status`, 20*time.Second,
			func(s string) bool { return strings.Contains(s, "written") })
		b.do("observe /3/0/9", click(`tr[data-path="/3/0/9"] button.observe`))
		b.waitText("the observation running", `tr[data-path="/3/0/9"] td.status`, 20*time.Second,
			func(s string) bool { return strings.Contains(s, "observing") || strings.Contains(s, "updated") })
		b.shot("device-resources")
		b.do("stop observing", click(`tr[data-path="/3/0/9"] button.observe`))
		b.waitText("the observation stopped", `tr[data-path="/3/0/9"] td.status`, 20*time.Second,
			func(s string) bool { return strings.Contains(s, "stopped") })
	})
	t.Run("update from the device page", func(t *testing.T) {
		b.t = t
		b.open("#/device/console-0", "#update-start")
		b.do("choose 2.0.0, full image", present(`#update-image option[value="2.0.0"]`),
			setValue("#update-image", "2.0.0"),
			click("#update-full"), click("#update-start"))
		seen := map[float64]bool{}
		shotMid := false
		deadline := time.Now().Add(3 * time.Minute)
		for {
			st := evalJS[struct {
				Phase    string  `json:"phase"`
				Progress float64 `json:"progress"`
				Detail   string  `json:"detail"`
			}](b, "progress", `({phase: document.getElementById("update-phase").textContent,
				progress: document.getElementById("update-progress").value,
				detail: (document.getElementById("update-detail")||{}).textContent||""})`)
			seen[st.Progress] = true
			if st.Phase == "downloading" && st.Progress > 0.2 && !shotMid {
				b.shot("device-downloading")
				t.Logf("downloading: %s", st.Detail)
				shotMid = true
			}
			if st.Phase == "done" {
				if st.Progress != 1 {
					t.Fatalf("done with the bar at %v", st.Progress)
				}
				break
			}
			if st.Phase == "failed" || time.Now().After(deadline) {
				b.shot("device-update-stuck")
				t.Fatalf("update %s at %v: %s; banner %q", st.Phase, st.Progress, st.Detail, b.text("#error"))
			}
			time.Sleep(100 * time.Millisecond)
		}
		mid := 0
		for p := range seen {
			if p > 0 && p < 1 {
				mid++
			}
		}
		if mid == 0 {
			t.Errorf("the bar never showed a download under way: %v", seen)
		}
		if v := devs["console-0"].Status().Version; v != "2.0.0" {
			t.Fatalf("console-0 runs %s", v)
		}
		hist := b.waitText("the history lists the update", "#update-history", 10*time.Second,
			func(s string) bool { return strings.Contains(s, "2.0.0") && strings.Contains(s, "success") })
		t.Logf("history: %q", hist)
		b.shot("device")
	})
	t.Run("campaign from the campaigns page", func(t *testing.T) {
		b.t = t
		b.open("#/campaigns", "#campaign-form")
		b.do("fill the campaign", typeIn("#campaign-name", "console rollout"),
			present(`#campaign-image option[value="2.0.0"]`),
			setValue("#campaign-image", "2.0.0"),
			setValue("#campaign-waves", "1"),
			setValue("#campaign-soak", "1"),
			setValue("#campaign-max-concurrent", "2"),
			click("#campaign-plan"))
		plan := b.waitText("the plan shown", "#campaign-plan-result", 30*time.Second,
			func(s string) bool { return strings.Contains(s, "console-3") })
		if !strings.Contains(plan, "console-0") || !strings.Contains(plan, "delta") {
			t.Errorf("plan %q: want console-0 (skipped: on 2.0.0) and deltas for the others", plan)
		}
		b.shot("campaign-plan")
		b.do("create", click("#campaign-create"), visible("#campaign-start"))
		b.waitText("created, not started", "#campaign-state", 10*time.Second, func(s string) bool { return s == "created" })
		b.do("start", click("#campaign-start"))
		b.waitText("campaign done", "#campaign-state", 3*time.Minute, func(s string) bool { return s == "done" })
		var waves []float64
		b.waitText("every wave's bar full", "#campaign-waves-list", 10*time.Second, func(string) bool {
			waves = evalJS[[]float64](b, "wave bars", `[...document.querySelectorAll("#campaign-waves-list progress.wave-progress")].map(p => p.value / p.max)`)
			for _, w := range waves {
				if w != 1 {
					return false
				}
			}
			return len(waves) >= 2
		})
		for _, ep := range []string{"console-1", "console-2", "console-3"} {
			if v := devs[ep].Status().Version; v != "2.0.0" {
				t.Errorf("%s runs %s after the campaign", ep, v)
			}
		}
		b.shot("campaign")
		b.open("#/fleet", `#fleet-table tr[data-endpoint="console-3"]`)
		b.waitText("the fleet on 2.0.0", "#version-chart", 20*time.Second,
			func(s string) bool {
				return strings.Contains(s, "2.0.0") && strings.Contains(s, "4 devices") && !strings.Contains(s, "1.0.0")
			})
		b.shot("fleet-after-campaign")
	})
	t.Run("images: upload, delta sizes", func(t *testing.T) {
		b.t = t
		v3 := append([]byte(nil), v2...)
		v3 = append(v3, "a later build"...)
		file := filepath.Join(t.TempDir(), "meter-3.0.0.bin")
		if err := os.WriteFile(file, v3, 0o644); err != nil {
			t.Fatal(err)
		}
		b.open("#/images", "#image-form")
		b.do("upload 3.0.0", chromedp.SetUploadFiles(chromedp.CSS("#image-file"), []string{file}),
			typeIn("#image-version", "3.0.0"),
			typeIn("#image-class", "meter"),
			click("#image-upload"))
		b.waitText("3.0.0 listed", "#image-table", 20*time.Second, func(s string) bool { return strings.Contains(s, "3.0.0") })
		var d api.DeltaList
		if code := dmAPI(t, s, "GET", "/api/v1/images/3.0.0/deltas", nil, &d); code != http.StatusOK {
			t.Fatalf("deltas: HTTP %d", code)
		}
		if len(d.Deltas) != 1 || d.Deltas[0].FromVersion != "2.0.0" || d.Deltas[0].Devices != 4 ||
			d.Deltas[0].DeltaSize <= 0 || d.Deltas[0].DeltaSize >= d.FullSize {
			t.Fatalf("deltas to 3.0.0: %+v", d)
		}
		evalJS[bool](b, "ask for the delta sizes of 3.0.0", `(() => {
			const row = [...document.querySelectorAll("#image-table tr")].find(r => r.textContent.includes("3.0.0"));
			const btn = row && [...row.querySelectorAll("button")].find(x => /delta/i.test(x.textContent));
			if (btn) btn.click();
			return !!btn; })()`)
		want := fmt.Sprint(d.Deltas[0].DeltaSize)
		b.waitText("the delta from 2.0.0 shown", "#image-table", 30*time.Second, func(s string) bool {
			return strings.Contains(strings.ReplaceAll(s, ",", ""), want)
		})
		b.shot("images")
	})
	t.Run("events of a device", func(t *testing.T) {
		b.t = t
		b.open("#/events", "#events-list")
		b.do("filter console-0", typeIn("#events-endpoint", "console-0"+kb.Enter))
		b.waitText("console-0's update events", "#events-list", 20*time.Second, func(s string) bool {
			return strings.Contains(s, "console-0") && !strings.Contains(s, "console-1")
		})
		b.shot("events")
	})
	t.Run("sign out", func(t *testing.T) {
		b.t = t
		b.open("#/fleet", "#signout")
		b.do("sign out", click("#signout"), visible("#signin-token"))
		status := evalJS[int](b, "API after sign-out", `fetch("/api/v1/devices").then(r => r.status)`)
		if status != http.StatusUnauthorized {
			t.Fatalf("the API after sign-out: HTTP %d", status)
		}
	})
}
