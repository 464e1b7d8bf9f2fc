package main

// Benchmarks of fotad as a separate process, so that its memory can be read
// from /proc without the clients' memory in it. Run them with:
//
//	go test ./cmd/fotad -run '^$' -bench . -benchtime 1x   (idle memory)
//	go test ./cmd/fotad -run '^$' -bench RegisterDTLS -benchtime 5000x
//
// Clients and server share this machine's cores: the rates are what one
// machine does with both sides on it.

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fotahub/fota/coap"
	"github.com/fotahub/fota/lwm2m"
	"github.com/fotahub/fota/store"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// fotadBinary builds fotad once per test process.
func fotadBinary(b testing.TB) string {
	b.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "fotad-bench")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "fotad")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		b.Fatal(buildErr)
	}
	return binPath
}

// childServer is fotad running as its own process.
type childServer struct {
	cmd   *exec.Cmd
	coaps string
	api   string
	token string
}

func benchPSK(i int) (ep, id, key string) {
	return fmt.Sprintf("bench-%05d", i), fmt.Sprintf("id-%05d", i), fmt.Sprintf("key-%05d", i)
}

// startChild provisions n PSK devices straight into a new store and starts
// fotad on it.
func startChild(b testing.TB, n int) *childServer {
	b.Helper()
	dir := b.TempDir()
	db, err := store.Open(filepath.Join(dir, dbFile), store.Options{NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; i < n; i++ {
		ep, id, key := benchPSK(i)
		if err := db.PutDevice(context.Background(), lwm2m.Device{Endpoint: ep, PSKIdentity: id, PSKKey: []byte(key)}); err != nil {
			b.Fatal(err)
		}
	}
	if err := db.Close(); err != nil {
		b.Fatal(err)
	}
	// Park idle sessions as early as the server allows, so that the idle
	// benchmark need not wait the default minute.
	conf := filepath.Join(dir, "fotad.yaml")
	if err := os.WriteFile(conf, []byte("coap:\n  park_after: 45s\n"), 0o600); err != nil {
		b.Fatal(err)
	}
	c := &childServer{coaps: freeUDPAddr(b), api: freeTCPAddr(b)}
	c.cmd = exec.Command(fotadBinary(b), "--config", conf, "--data", dir, "--coaps", c.coaps, "--api", c.api, "--log-level", "warn")
	c.cmd.Stderr = os.Stderr
	if err := c.cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		_ = c.cmd.Process.Signal(os.Interrupt)
		_ = c.cmd.Wait()
	})
	waitFor(b, "fotad to serve its API", func() bool {
		resp, err := http.Get("http://" + c.api + "/healthz")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil && resp.StatusCode == 200
	})
	tok, err := os.ReadFile(filepath.Join(dir, "api-token"))
	if err != nil {
		b.Fatal(err)
	}
	c.token = strings.TrimSpace(string(tok))
	return c
}

func freeTCPAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// rss is the child's resident memory in bytes.
func (c *childServer) rss(b testing.TB) int64 {
	b.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", c.cmd.Process.Pid))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	b.Fatal("no VmRSS")
	return 0
}

// metric reads one unlabelled sample from the child's /metrics.
func (c *childServer) metric(b testing.TB, name string) float64 {
	b.Helper()
	for _, line := range strings.Split(string(c.get(b, "/metrics")), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	b.Fatalf("metric %s not found", name)
	return 0
}

// get fetches an admin API path from the child with its token.
func (c *childServer) get(b testing.TB, path string) []byte {
	b.Helper()
	req, _ := http.NewRequest("GET", "http://"+c.api+path, nil)
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		b.Fatalf("GET %s: HTTP %d %v", path, resp.StatusCode, err)
	}
	return body
}

// report measures the child at rest: the runtime collects at least every
// two minutes and the scavenger returns freed pages, so two collections
// (through pprof's gc=1) and a pause stand in for that wait.
func (c *childServer) report(b *testing.B, phase string, n int, baseRSS int64, baseG float64) {
	b.Helper()
	c.collect(b)
	time.Sleep(3 * time.Second)
	c.collect(b)
	// The background scavenger returns pages freed by the collection at
	// its own pace: wait until resident memory stops falling (at most 90 s).
	rss := c.rss(b)
	for deadline := time.Now().Add(90 * time.Second); time.Now().Before(deadline); {
		time.Sleep(5 * time.Second)
		now := c.rss(b)
		if now > rss-rss/100 {
			rss = min(rss, now)
			break
		}
		rss = now
	}
	g := c.metric(b, "go_goroutines")
	b.ReportMetric(float64(rss-baseRSS)/float64(n), phase+"-rss-B/device")
	b.ReportMetric(c.metric(b, "go_memstats_heap_inuse_bytes")/float64(n), phase+"-heap-B/device")
	b.ReportMetric(c.metric(b, "go_memstats_stack_inuse_bytes")/float64(n), phase+"-stack-B/device")
	b.ReportMetric((g-baseG)/float64(n), phase+"-goroutines/device")
	b.ReportMetric(float64(rss)/(1<<20), phase+"-rss-MiB")
}

// collect makes the child run a garbage collection.
func (c *childServer) collect(b testing.TB) {
	b.Helper()
	c.get(b, "/debug/pprof/heap?gc=1")
}

// saveProfile writes a pprof profile of the child to path.
func (c *childServer) saveProfile(b testing.TB, name, path string) {
	b.Helper()
	if err := os.WriteFile(path, c.get(b, "/debug/pprof/"+name), 0o644); err != nil {
		b.Fatal(err)
	}
}

// registerPSK opens a DTLS session as device i and registers.
func registerPSK(addr string, i int) (*coap.ClientConn, error) {
	ep, id, key := benchPSK(i)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := coap.DialDTLS(ctx, addr, coap.ClientConfig{PSKIdentity: id, PSKKey: []byte(key), ConnectionID: true})
	if err != nil {
		return nil, err
	}
	req := coap.NewRequest(coap.POST, "/rd")
	req.Query = []string{"ep=" + ep, "lt=3600", "lwm2m=1.1", "b=U"}
	req.ContentFormat, req.Payload = 40, []byte(objects)
	resp, err := c.Do(ctx, req)
	if err == nil && resp.Code != coap.Created {
		err = fmt.Errorf("register %s: %v", ep, resp.Code)
	}
	if err != nil {
		_ = c.Close()
		return nil, err
	}
	return c, nil
}

// BenchmarkRegisterDTLS measures new registrations per second: each one is
// a full DTLS PSK handshake, a Register and a close, with 1, 100 and 1000
// devices doing it at once.
func BenchmarkRegisterDTLS(b *testing.B) {
	const devices = 1000
	srv := startChild(b, devices)
	for _, clients := range []int{1, 100, 1000} {
		b.Run(fmt.Sprintf("clients=%d", clients), func(b *testing.B) {
			var next, failed atomic.Int64
			var wg sync.WaitGroup
			b.ResetTimer()
			for w := 0; w < clients; w++ {
				wg.Add(1)
				go func(w int) {
					defer wg.Done()
					for next.Add(1) <= int64(b.N) {
						c, err := registerPSK(srv.coaps, w%devices)
						if err != nil {
							failed.Add(1)
							continue
						}
						_ = c.Close()
					}
				}(w)
			}
			wg.Wait()
			b.StopTimer()
			if f := failed.Load(); f > 0 {
				b.Fatalf("%d of %d registrations failed", f, b.N)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "regs/s")
		})
	}
}

// BenchmarkIdleDevices registers N devices over DTLS PSK, leaves their
// sessions idle and reports the server's resident memory and goroutines
// per device.
func BenchmarkIdleDevices(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("devices=%d", n), func(b *testing.B) {
			srv := startChild(b, n)
			time.Sleep(time.Second)
			baseRSS, baseG := srv.rss(b), srv.metric(b, "go_goroutines")
			conns := make([]*coap.ClientConn, n)
			var wg sync.WaitGroup
			var failed atomic.Int64
			sem := make(chan struct{}, 200)
			for i := 0; i < n; i++ {
				wg.Add(1)
				sem <- struct{}{}
				go func(i int) {
					defer wg.Done()
					defer func() { <-sem }()
					c, err := registerPSK(srv.coaps, i)
					if err != nil {
						failed.Add(1)
						return
					}
					conns[i] = c
				}(i)
			}
			wg.Wait()
			b.Cleanup(func() {
				for _, c := range conns {
					if c != nil {
						_ = c.Close()
					}
				}
			})
			if f := failed.Load(); f > 0 {
				b.Fatalf("%d of %d registrations failed", f, n)
			}
			if got := srv.metric(b, "fota_registrations"); int(got) != n {
				b.Fatalf("server holds %v registrations, want %d", got, n)
			}
			// Devices that have just spoken hold live DTLS sessions; after
			// park_after (45 s here) idle ones are parked. Measure both.
			srv.report(b, "live", n, baseRSS, baseG)
			waitWithin(b, "idle sessions to be parked", 2*time.Minute, func() bool {
				return int(srv.metric(b, "fota_coap_sessions_parked")) == n
			})
			srv.report(b, "parked", n, baseRSS, baseG)
			if dir := os.Getenv("FOTA_BENCH_PROFILE"); dir != "" {
				srv.saveProfile(b, "heap", filepath.Join(dir, fmt.Sprintf("heap-%d.pb.gz", n)))
				srv.saveProfile(b, "goroutine?debug=1", filepath.Join(dir, fmt.Sprintf("goroutines-%d.txt", n)))
			}
			runtime.KeepAlive(conns)
		})
	}
}
