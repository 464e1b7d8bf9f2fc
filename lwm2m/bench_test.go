package lwm2m_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fotahub/fota/lwm2m"
	"github.com/fotahub/fota/lwm2m/model"
)

// benchFleet is one server with 1,000 registered DTLS devices, built once
// for every run of the benchmark (go test runs it with growing b.N).
var benchFleet struct {
	once sync.Once
	srv  *server
	eps  []string
}

const fleetSize = 1000

// BenchmarkReadDevice1000 reads /3/0 over DTLS from 1,000 registered
// devices, round robin, with 1 and with 64 reads in flight (a device takes
// one operation at a time, as CoAP's NSTART=1 asks). The devices run in
// the same process and share its two cores with the server. It reports
// reads per second and the latency distribution:
//
//	go test -run '^$' -bench ReadDevice1000 -benchtime 20000x ./lwm2m/
func BenchmarkReadDevice1000(b *testing.B) {
	for _, inflight := range []int{1, 64} {
		b.Run(fmt.Sprintf("inflight=%d", inflight), func(b *testing.B) { benchRead(b, inflight) })
	}
}

func benchRead(b *testing.B, inflight int) {
	benchFleet.once.Do(func() {
		tb := &fleetTB{TB: b}
		benchFleet.srv = startServer(tb, lwm2m.OperatorConfig{})
		for i := range fleetSize {
			ep := fmt.Sprintf("bench-%04d", i)
			benchFleet.srv.device(tb, ep, nil)
			benchFleet.eps = append(benchFleet.eps, ep)
		}
	})
	s, eps := benchFleet.srv, benchFleet.eps
	lat := make([]time.Duration, b.N)
	var next atomic.Int64
	var failed atomic.Int64
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for range inflight {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(b.N) {
					return
				}
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				t0 := time.Now()
				_, err := s.ops.Do(ctx, eps[i%fleetSize], lwm2m.Op{Kind: lwm2m.OpRead, Path: model.ObjectInstancePath(3, 0)})
				lat[i] = time.Since(t0)
				cancel()
				if err != nil {
					failed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if n := failed.Load(); n > 0 {
		b.Fatalf("%d of %d reads failed", n, b.N)
	}
	slices.Sort(lat)
	q := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000 }
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "reads/s")
	b.ReportMetric(q(0.50), "p50-ms")
	b.ReportMetric(q(0.90), "p90-ms")
	b.ReportMetric(q(0.99), "p99-ms")
	b.ReportMetric(q(1), "max-ms")
}

// fleetTB keeps the fleet alive across benchmark runs: cleanups
// registered while building it never run (the process ends first).
type fleetTB struct{ testing.TB }

func (fleetTB) Cleanup(func()) {}
