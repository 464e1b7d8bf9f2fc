package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fotahub/fota/coap"
	"github.com/fotahub/fota/lwm2m"
	"github.com/fotahub/fota/store"
)

// childEnv makes the test binary run fotad's main instead of the tests, so
// that a test can start a whole fotad as a process of its own (and kill it)
// without compiling it a second time.
const childEnv = "FOTAD_TEST_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestCrashKeepsAcknowledgedRegistrations kills fotad with SIGKILL in the
// middle of a burst of registrations: every registration it answered 2.01
// must be in the store afterwards, and the store must open and load.
// Registrations in flight at the kill may or may not be stored.
func TestCrashKeepsAcknowledgedRegistrations(t *testing.T) {
	const (
		clients   = 64
		ackTarget = 400 // acknowledgements before the kill
	)
	dir := t.TempDir()
	p := startProcess(t, dir)

	var (
		acked   atomic.Int64
		failed  atomic.Int64
		reached = make(chan struct{})
		acks    = make([][]string, clients)
		wg      sync.WaitGroup
	)
	ctx, cancel := context.WithCancel(context.Background())
	defer func() { cancel(); wg.Wait() }()
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var conn *coap.ClientConn
			defer func() {
				if conn != nil {
					_ = conn.Close()
				}
			}()
			for i := 0; ctx.Err() == nil; i++ {
				if conn == nil {
					var err error
					if conn, err = coap.DialUDP(ctx, p.coap, coap.ClientConfig{}); err != nil {
						t.Errorf("client %d: %v", c, err)
						return
					}
				}
				ep := fmt.Sprintf("crash-%02d-%05d", c, i)
				// A short deadline per request: once fotad is dead the
				// burst must stop promptly, not wait out retransmissions.
				rctx, rcancel := context.WithTimeout(ctx, 3*time.Second)
				resp, err := conn.Do(rctx, registerRequest(ep, 3600))
				rcancel()
				switch {
				case err != nil:
					// Not acknowledged: it may or may not be stored.
					failed.Add(1)
					_ = conn.Close()
					conn = nil
				case resp.Code == coap.Created:
					acks[c] = append(acks[c], ep)
					if acked.Add(1) == ackTarget {
						close(reached)
					}
				default:
					t.Errorf("register %s: %v before the kill", ep, resp.Code)
				}
			}
		}()
	}

	start := time.Now()
	select {
	case <-reached:
	case <-p.exited:
		t.Fatalf("fotad exited during the burst (%v) after %d acknowledgements", p.waitErr, acked.Load())
	case <-time.After(2 * time.Minute):
		t.Fatalf("only %d of %d registrations acknowledged within 2 minutes (%d failed)", acked.Load(), ackTarget, failed.Load())
	}
	if err := p.cmd.Process.Kill(); err != nil {
		t.Fatalf("kill fotad: %v", err)
	}
	<-p.exited
	cancel()
	wg.Wait()
	var want []string
	for _, a := range acks {
		want = append(want, a...)
	}
	t.Logf("killed fotad after %d acknowledged registrations in %v (%d requests unanswered); %v",
		len(want), time.Since(start).Round(time.Millisecond), failed.Load(), p.waitErr)
	var ee *exec.ExitError
	if !errors.As(p.waitErr, &ee) || ee.ProcessState.Success() {
		t.Fatalf("fotad did not die from the kill: %v", p.waitErr)
	}

	// The store opens after the crash and holds every acknowledged
	// registration.
	db, err := store.Open(filepath.Join(dir, dbFile), store.Options{LockTimeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("open the store after the crash: %v", err)
	}
	regs, err := db.Registrations(context.Background())
	if err != nil {
		t.Fatalf("list registrations after the crash: %v", err)
	}
	if _, err := db.Devices(context.Background()); err != nil {
		t.Fatalf("list devices after the crash: %v", err)
	}
	if err := db.Close(); err != nil {
		t.Fatalf("close the store: %v", err)
	}
	stored := map[string]lwm2m.Registration{}
	for _, r := range regs {
		if prev, dup := stored[r.Endpoint]; dup {
			t.Errorf("endpoint %s stored twice: %s and %s", r.Endpoint, prev.ID, r.ID)
		}
		stored[r.Endpoint] = r
	}
	var missing []string
	for _, ep := range want {
		if _, ok := stored[ep]; !ok {
			missing = append(missing, ep)
		}
	}
	if len(missing) > 0 {
		t.Fatalf("%d of %d acknowledged registrations lost in the crash, e.g. %v", len(missing), len(want), missing[:min(len(missing), 10)])
	}
	t.Logf("store holds %d registrations: %d acknowledged, %d in flight at the kill", len(stored), len(want), len(stored)-len(want))

	// fotad starts again on the same data and serves the registrations.
	cfg := defaultFileConfig()
	cfg.DataDir = dir
	cfg.API.Listen = "127.0.0.1:0"
	cfg.CoAP.CoAPSListen = "127.0.0.1:0"
	cfg.CoAP.CoAPListen = "127.0.0.1:0"
	cfg.OpenRegistration = true
	s := &testServer{t: t, cfg: cfg}
	s.start()
	t.Cleanup(s.stop)
	if n := s.d.registry.Count(); n != len(stored) {
		t.Errorf("registry loaded %d registrations, the store holds %d", n, len(stored))
	}
	for _, ep := range want {
		if reg, ok := s.d.registry.Lookup(ep); !ok || reg.ID != stored[ep].ID {
			t.Fatalf("registry after restart: %s is %+v (ok=%v), want id %s", ep, reg, ok, stored[ep].ID)
		}
	}
	d := dialPlain(t, s.coapAddr())
	mustCode(t, "register after the crash", d.register("ep=after-crash&lt=60", objects), coap.Created)
}

// registerRequest is a Register of ep over plain CoAP.
func registerRequest(ep string, lifetime int) coap.Request {
	req := coap.NewRequest(coap.POST, "/rd")
	req.Query = []string{"ep=" + ep, fmt.Sprintf("lt=%d", lifetime), "lwm2m=1.1", "b=U"}
	req.ContentFormat, req.Payload = 40, []byte(objects)
	return req
}

// process is fotad running as a child process (the test binary re-executed
// with childEnv set).
type process struct {
	cmd     *exec.Cmd
	coap    string
	log     string // path of its stdout and stderr
	exited  chan struct{}
	waitErr error // set before exited is closed
}

// startProcess starts fotad on dir with plain CoAP, open registration and
// ports chosen here, and returns once it answers CoAP. A port taken
// between choosing and binding is retried with new ones.
func startProcess(t *testing.T, dir string) *process {
	t.Helper()
	return startProcessWith(t, dir, processOptions{})
}

// processOptions changes how startProcessWith starts fotad.
type processOptions struct {
	// Config is a YAML configuration file (--config); the flags
	// startProcess passes override it.
	Config string
	// CoAP, CoAPS and API are fixed listen addresses, so that fotad can
	// be started again on the same ports after a kill; empty ones are
	// chosen at each attempt. With any fixed, a port taken is not retried.
	CoAP, CoAPS, API string
}

// startProcessWith is startProcess with options.
func startProcessWith(t *testing.T, dir string, opts processOptions) *process {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	fixed := opts.CoAP != "" || opts.CoAPS != "" || opts.API != ""
	for attempt := 1; ; attempt++ {
		p, err := tryStartProcess(t, exe, dir, attempt, opts)
		if err == nil {
			return p
		}
		if attempt == 3 || fixed || !bytes.Contains(p.output(t), []byte("address already in use")) {
			t.Fatalf("start fotad: %v\n%s", err, p.output(t))
		}
		t.Logf("start fotad (attempt %d): %v; retrying on other ports", attempt, err)
	}
}

func tryStartProcess(t *testing.T, exe, dir string, attempt int, opts processOptions) (*process, error) {
	p := &process{coap: opts.CoAP, exited: make(chan struct{})}
	if p.coap == "" {
		p.coap = freeUDPAddr(t)
	}
	coaps := opts.CoAPS
	for coaps == "" || coaps == p.coap {
		coaps = freeUDPAddr(t)
	}
	apiAddr := opts.API
	if apiAddr == "" {
		apiAddr = "127.0.0.1:0"
	}
	p.log = filepath.Join(t.TempDir(), fmt.Sprintf("fotad-%d.log", attempt))
	out, err := os.Create(p.log)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close() // the child holds its own descriptor
	args := []string{"--coap", p.coap, "--coaps", coaps, "--api", apiAddr,
		"--open-registration", "--data", dir, "--log-level", "info"}
	if opts.Config != "" {
		args = append(args, "--config", opts.Config)
	}
	p.cmd = exec.Command(exe, args...)
	p.cmd.Env = append(os.Environ(), childEnv+"=1")
	p.cmd.Stdout, p.cmd.Stderr = out, out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.waitErr = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
		if b := p.output(t); bytes.Contains(b, []byte("DATA RACE")) || bytes.Contains(b, []byte("panic:")) {
			t.Errorf("fotad child process:\n%s", b)
		} else if t.Failed() {
			t.Logf("fotad child process output (last lines):\n%s", tail(b, 40))
		}
	})

	deadline := time.Now().Add(30 * time.Second)
	for !p.answers() {
		select {
		case <-p.exited:
			return p, fmt.Errorf("fotad exited before answering: %v", p.waitErr)
		default:
		}
		if time.Now().After(deadline) {
			return p, errors.New("fotad did not answer CoAP within 30 s")
		}
	}
	return p, nil
}

// answers reports whether fotad answers a CoAP request within a short
// deadline (any response code will do).
func (p *process) answers() bool {
	conn, err := coap.DialUDP(context.Background(), p.coap, coap.ClientConfig{})
	if err != nil {
		return false
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err = conn.Do(ctx, coap.NewRequest(coap.GET, "/rd"))
	if err != nil {
		// A refused port fails at once: pace the polling.
		<-ctx.Done()
	}
	return err == nil
}

func (p *process) output(t testing.TB) []byte {
	b, err := os.ReadFile(p.log)
	if err != nil {
		t.Errorf("read fotad output: %v", err)
	}
	return b
}

// tail is the last n lines of b.
func tail(b []byte, n int) []byte {
	lines := bytes.SplitAfter(b, []byte("\n"))
	return bytes.Join(lines[max(0, len(lines)-n):], nil)
}
