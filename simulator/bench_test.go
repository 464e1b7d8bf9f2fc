package simulator_test

import (
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/fotahub/fota/delivery/manifest"
	"github.com/fotahub/fota/lwm2m"
	"github.com/fotahub/fota/lwm2m/model"
	"github.com/fotahub/fota/simulator"
)

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkFleetDownload has N simulated devices download a 100 KB signed
// image at once over DTLS in 1 KB blocks, each block verified and written
// to flash as it arrives. Server and devices share this process, so the
// CPU reported per device includes the server's share:
//
//	go test -run '^$' -bench FleetDownload -benchtime 1x ./simulator/
func BenchmarkFleetDownload(b *testing.B) {
	for _, n := range []int{100, 500} {
		b.Run(fmt.Sprintf("devices=%d", n), func(b *testing.B) { benchDownload(b, n) })
	}
}

func benchDownload(b *testing.B, n int) {
	image := make([]byte, 100<<10)
	_, _ = rand.Read(image)
	next := make([]byte, len(image))
	_, _ = rand.Read(next)
	p, err := manifest.Build(manifest.Manifest{Sequence: 2, Version: "2.0.0", Class: "sensor-a", Format: manifest.FormatFull,
		ImageDigest: sha256.Sum256(next), ImageSize: uint64(len(next))}, next, signer)
	if err != nil {
		b.Fatal(err)
	}
	s := startServer(b, lwm2m.OperatorConfig{})
	devs := make([]*simulator.Device, n)
	for i := range devs {
		devs[i] = s.device(b, fmt.Sprintf("dl-%04d", i), image, func(c *simulator.Config) {
			c.TrustKey, c.BlockSize = &signer.PublicKey, 1024
		})
	}
	b.ResetTimer()
	for range b.N {
		cpu0, t0 := cpuTime(), time.Now()
		errs := make(chan error, n)
		for i := range devs {
			go func() {
				r := model.SingleResource(1, model.StringValue(s.publish(b, fmt.Sprintf("dl-%04d", i), p)))
				_, err := s.ops.Do(ctxT(b), fmt.Sprintf("dl-%04d", i), lwm2m.Op{Kind: lwm2m.OpWrite, Path: model.ResourcePath(5, 0, 1), Node: &r})
				errs <- err
			}()
		}
		for range devs {
			if err := <-errs; err != nil {
				b.Fatal(err)
			}
		}
		for _, d := range devs {
			waitFor(b, "downloaded", func() bool { return d.Status().State == simulator.StateDownloaded })
		}
		cpu, wall := cpuTime()-cpu0, time.Since(t0)
		b.ReportMetric(float64(cpu.Milliseconds())/float64(n), "cpu-ms/device")
		b.ReportMetric(float64(n*len(p))/wall.Seconds()/1e6, "MB/s")
		b.ReportMetric(wall.Seconds(), "s/fleet")
		for i := range devs {
			// Back to Idle for the next round.
			write(b, s, fmt.Sprintf("dl-%04d", i), model.ResourcePath(5, 0, 1), model.StringValue(""))
		}
	}
}
