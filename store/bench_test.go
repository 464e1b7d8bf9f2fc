package store

import (
	"context"
	"fmt"
	"strconv"
	"sync/atomic"
	"testing"
)

// BenchmarkPutRegistrationParallel measures registration writes from many
// goroutines at once, as when a fleet re-registers after a server restart.
// Each sub-benchmark runs parallelism×GOMAXPROCS writers against a file
// with fsync on; regs/commit shows how many writes shared each commit.
//
//	go test ./store -run '^$' -bench PutRegistration -benchtime 2000x
func BenchmarkPutRegistrationParallel(b *testing.B) {
	for _, p := range []int{1, 16, 64} {
		b.Run(fmt.Sprintf("parallelism=%d", p), func(b *testing.B) {
			benchPutRegistration(b, Options{}, p)
		})
	}
}

// BenchmarkPutRegistrationSerial is the baseline: one writer, so every
// write waits out MaxBatchDelay alone and pays a commit of its own.
func BenchmarkPutRegistrationSerial(b *testing.B) {
	db := openTestDB(b, Options{})
	ctx := context.Background()
	r := testRegistration("x")
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		r.ID = strconv.Itoa(i)
		if err := db.PutRegistration(ctx, r); err != nil {
			b.Fatal(err)
		}
	}
}

func benchPutRegistration(b *testing.B, opts Options, parallelism int) {
	db := openTestDB(b, opts)
	ctx := context.Background()
	var seq atomic.Int64
	before := commits(b, db)
	b.SetParallelism(parallelism)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		r := testRegistration("x")
		for pb.Next() {
			r.ID = strconv.FormatInt(seq.Add(1), 10)
			if err := db.PutRegistration(ctx, r); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	if n := commits(b, db) - before; n > 0 {
		b.ReportMetric(float64(b.N)/float64(n), "regs/commit")
	}
}
