package link

import (
	"math"
	"testing"
	"time"
)

var t0 = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

func newTestPipe(tb testing.TB, p Params, seed uint64) *Pipe {
	tb.Helper()
	pp, err := NewPipe(p, seed)
	if err != nil {
		tb.Fatal(err)
	}
	return pp
}

func newTestLink(tb testing.TB, prof Profile, seed uint64) *Link {
	tb.Helper()
	if prof.Name == "" {
		prof.Name = "test"
	}
	l, err := NewLink(prof, seed)
	if err != nil {
		tb.Fatal(err)
	}
	return l
}

// within fails unless got is within tol of want.
func within(tb testing.TB, what string, got, want, tol float64) {
	tb.Helper()
	if math.Abs(got-want) > tol {
		tb.Errorf("%s = %.6g, want %.6g ± %.3g", what, got, want, tol)
	} else {
		tb.Logf("%s = %.6g, want %.6g ± %.3g", what, got, want, tol)
	}
}

// checkCounts verifies that offered = delivered + dropped, in packets and
// bytes.
func checkCounts(tb testing.TB, s DirStats) {
	tb.Helper()
	if sum := s.Delivered.Plus(s.Dropped()); sum != s.Offered {
		tb.Errorf("offered %+v != delivered %+v + dropped %+v", s.Offered, s.Delivered, s.Dropped())
	}
}

func TestPipeThroughputBackToBack(t *testing.T) {
	const n, size = 5000, 500
	for _, rate := range []int64{300, 20_000, 300_000, 10_000_000} {
		t.Run(formatRate(rate), func(t *testing.T) {
			p := newTestPipe(t, Params{Rate: rate}, 1)
			var last time.Time
			for i := range n {
				at, ok := p.Send(t0, size)
				if !ok {
					t.Fatalf("packet %d dropped", i)
				}
				last = at
			}
			bits := float64(n * (size + IPv4Overhead) * 8)
			got := bits / last.Sub(t0).Seconds()
			within(t, "throughput bit/s", got, float64(rate), 0.02*float64(rate))
			s := p.Stats()
			if s.AirBytes != n*(size+IPv4Overhead) {
				t.Errorf("air bytes %d, want %d", s.AirBytes, n*(size+IPv4Overhead))
			}
			if s.AirTime != last.Sub(t0) {
				t.Errorf("air time %v, want %v", s.AirTime, last.Sub(t0))
			}
		})
	}
}

// Offered at twice the rate through a bounded queue, the link delivers at
// its rate and drops the rest.
func TestPipeThroughputOverloaded(t *testing.T) {
	const n, size, rate = 10_000, 972, 80_000 // 1000 IP bytes = 100 ms on the air
	p := newTestPipe(t, Params{Rate: rate, Delay: time.Second, QueueBytes: 16 << 10}, 1)
	var first, last time.Time
	var delivered int
	for i := range n {
		at, ok := p.Send(t0.Add(time.Duration(i)*50*time.Millisecond), size)
		if !ok {
			continue
		}
		if first.IsZero() {
			first = at
		}
		last = at
		delivered++
	}
	// The link is busy from the first delivery to the last, so the span
	// holds delivered-1 packets' air time.
	got := float64((delivered-1)*(size+IPv4Overhead)*8) / last.Sub(first).Seconds()
	within(t, "throughput bit/s", got, rate, 0.02*rate)
	s := p.Stats()
	within(t, "delivered fraction", float64(delivered)/n, 0.5, 0.02)
	if s.Queue.Packets != int64(n-delivered) {
		t.Errorf("queue drops %d, want %d", s.Queue.Packets, n-delivered)
	}
	checkCounts(t, s.withoutAir())
}

func (s DirStats) withoutAir() DirStats { s.AirBytes, s.AirTime = 0, 0; return s }

func TestPipeQueueDropTail(t *testing.T) {
	// 8000 bit/s: a 972-byte payload is 1000 IP bytes and 1 s on the air.
	p := newTestPipe(t, Params{Rate: 8000, QueueBytes: 10_000}, 1)
	accepted := 0
	for range 20 {
		if _, ok := p.Send(t0, 972); ok {
			accepted++
		}
	}
	// The first finds the link idle; nine more bring the backlog to
	// 10,000 bytes.
	if accepted != 10 {
		t.Errorf("accepted %d at t0, want 10", accepted)
	}
	// 2.5 s later 7,500 bytes wait: two more fit.
	accepted = 0
	for range 5 {
		if _, ok := p.Send(t0.Add(2500*time.Millisecond), 972); ok {
			accepted++
		}
	}
	if accepted != 2 {
		t.Errorf("accepted %d at t0+2.5s, want 2", accepted)
	}
	s := p.Stats()
	if s.Queue.Packets != 13 || s.Delivered.Packets != 12 {
		t.Errorf("queue drops %d delivered %d, want 13 and 12", s.Queue.Packets, s.Delivered.Packets)
	}
	// Queue drops never reached the air.
	if s.AirBytes != 12*1000 {
		t.Errorf("air bytes %d, want 12000", s.AirBytes)
	}
	// A packet larger than the queue still passes an idle link.
	big := newTestPipe(t, Params{Rate: 8000, QueueBytes: 100}, 1)
	if _, ok := big.Send(t0, 972); !ok {
		t.Error("idle link refused a packet larger than its queue")
	}
}

func TestPipeDelay(t *testing.T) {
	const n, size = 5000, 500
	const delay, jitter = 100 * time.Millisecond, 20 * time.Millisecond
	prm := Params{Rate: 100_000, Delay: delay, Jitter: jitter}
	ser := serialization(size+IPv4Overhead, prm.Rate)

	t.Run("spaced", func(t *testing.T) {
		// Packets 200 ms apart never queue and never catch up with each
		// other: the delay is exactly serialization + uniform jitter.
		p := newTestPipe(t, prm, 7)
		var sum float64
		lo, hi := time.Duration(math.MaxInt64), time.Duration(0)
		for i := range n {
			now := t0.Add(time.Duration(i) * 200 * time.Millisecond)
			at, ok := p.Send(now, size)
			if !ok {
				t.Fatal("dropped")
			}
			d := at.Sub(now) - ser
			lo, hi = min(lo, d), max(hi, d)
			sum += float64(d)
		}
		mean := sum / n
		sigma := float64(jitter) / math.Sqrt(3) / math.Sqrt(n)
		within(t, "mean delay ns", mean, float64(delay), 4*sigma)
		if lo < delay-jitter || hi > delay+jitter {
			t.Errorf("delay range [%v, %v] outside [%v, %v]", lo, hi, delay-jitter, delay+jitter)
		}
		// The jitter covers its range: both ends are approached.
		if lo > delay-jitter*9/10 || hi < delay+jitter*9/10 {
			t.Errorf("delay range [%v, %v] does not span the jitter", lo, hi)
		}
	})

	t.Run("no reordering", func(t *testing.T) {
		// 1 ms apart, jitter would reorder; holding back keeps FIFO and
		// stays inside the jitter range.
		p := newTestPipe(t, Params{Delay: delay, Jitter: jitter}, 7)
		var prev time.Time
		held := 0
		for i := range n {
			now := t0.Add(time.Duration(i) * time.Millisecond)
			at, _ := p.Send(now, size)
			if at.Before(prev) {
				t.Fatalf("packet %d delivered at %v before the previous one at %v", i, at, prev)
			}
			if at.Equal(prev) {
				held++
			}
			if d := at.Sub(now); d < delay-jitter || d > delay+jitter {
				t.Fatalf("packet %d delay %v outside [%v, %v]", i, d, delay-jitter, delay+jitter)
			}
			prev = at
		}
		if held == 0 {
			t.Error("no packet was held back: the test does not exercise ordering")
		}
	})

	t.Run("reorder allowed", func(t *testing.T) {
		p := newTestPipe(t, Params{Delay: delay, Jitter: jitter, Reorder: true}, 7)
		var prev time.Time
		inversions := 0
		for i := range n {
			now := t0.Add(time.Duration(i) * time.Millisecond)
			at, _ := p.Send(now, size)
			if at.Before(prev) {
				inversions++
			}
			if d := at.Sub(now); d < delay-jitter || d > delay+jitter {
				t.Fatalf("packet %d delay %v outside [%v, %v]", i, d, delay-jitter, delay+jitter)
			}
			prev = at
		}
		if inversions == 0 {
			t.Error("Reorder set but no packet was reordered")
		}
	})

	t.Run("no jitter", func(t *testing.T) {
		p := newTestPipe(t, Params{Rate: 100_000, Delay: delay}, 7)
		at, _ := p.Send(t0, size)
		if want := t0.Add(ser + delay); !at.Equal(want) {
			t.Errorf("delivered at %v, want %v", at, want)
		}
	})
}

func TestPipeRandomLoss(t *testing.T) {
	const n = 20_000
	for _, loss := range []float64{0.001, 0.01, 0.05, 0.3} {
		t.Run(formatFraction(loss), func(t *testing.T) {
			p := newTestPipe(t, Params{Loss: loss}, 3)
			lost := 0
			for i := range n {
				if _, ok := p.Send(t0.Add(time.Duration(i)*time.Millisecond), 100); !ok {
					lost++
				}
			}
			sigma := math.Sqrt(n * loss * (1 - loss))
			within(t, "lost packets", float64(lost), n*loss, 4*sigma)
			s := p.Stats()
			if s.Loss.Packets != int64(lost) || s.Dropped().Packets != int64(lost) {
				t.Errorf("loss counter %d, dropped %d, want %d", s.Loss.Packets, s.Dropped().Packets, lost)
			}
			// Lost packets went on the air.
			if s.AirBytes != n*128 {
				t.Errorf("air bytes %d, want %d", s.AirBytes, n*128)
			}
			checkCounts(t, s)
		})
	}
}

func TestPipeGilbertElliott(t *testing.T) {
	const n = 20_000
	g := GilbertElliott{PGoodBad: 0.01, PBadGood: 0.2, LossBad: 1}
	p := newTestPipe(t, Params{Burst: g}, 5)
	lost := make([]bool, n)
	for i := range n {
		_, ok := p.Send(t0.Add(time.Duration(i)*time.Millisecond), 100)
		lost[i] = !ok
	}

	// Average loss: the stationary probability of the bad state. Losses
	// are correlated, so the variance of the mean is that of a two-state
	// Markov chain: pi(1-pi)/n * (1+lambda)/(1-lambda), lambda = 1-p-r.
	pi := g.StationaryLoss()
	lambda := 1 - g.PGoodBad - g.PBadGood
	sigma := math.Sqrt(pi * (1 - pi) / n * (1 + lambda) / (1 - lambda))
	count, runs, afterLoss, lossAfterLoss := 0, 0, 0, 0
	for i, l := range lost {
		if !l {
			continue
		}
		count++
		if i == 0 || !lost[i-1] {
			runs++
		}
		if i+1 < n {
			afterLoss++
			if lost[i+1] {
				lossAfterLoss++
			}
		}
	}
	within(t, "loss fraction", float64(count)/n, pi, 4*sigma)

	// Bursts: run lengths are geometric with mean 1/r and variance
	// (1-r)/r^2.
	r := g.PBadGood
	meanRun := float64(count) / float64(runs)
	runSigma := math.Sqrt((1-r)/(r*r)) / math.Sqrt(float64(runs))
	within(t, "mean burst length", meanRun, g.MeanBurst(), 4*runSigma)

	// A loss is followed by another with probability 1-r, far above the
	// average loss: losses come in bursts.
	cond := float64(lossAfterLoss) / float64(afterLoss)
	within(t, "P(loss | previous lost)", cond, 1-r, 4*math.Sqrt(r*(1-r)/float64(afterLoss)))

	s := p.Stats()
	if s.Burst.Packets != int64(count) || s.Loss.Packets != 0 {
		t.Errorf("burst counter %d loss counter %d, want %d and 0", s.Burst.Packets, s.Loss.Packets, count)
	}
	checkCounts(t, s)
}

func TestPipeMTU(t *testing.T) {
	p := newTestPipe(t, Params{MTU: 680}, 1)
	var want DirStats
	for size := 600; size <= 700; size++ {
		_, ok := p.Send(t0, size)
		if over := size+IPv4Overhead > 680; ok == over {
			t.Errorf("size %d (IP %d): delivered %v with MTU 680", size, size+IPv4Overhead, ok)
		}
		if size > 652 {
			want.MTU.add(int64(size))
		} else {
			want.Delivered.add(int64(size))
			want.AirBytes += int64(size + IPv4Overhead)
		}
		want.Offered.add(int64(size))
	}
	if got := p.Stats(); got != want {
		t.Errorf("stats %+v, want %+v", got, want)
	}
}

func TestLinkOutage(t *testing.T) {
	l := newTestLink(t, Profile{Up: Params{Rate: 1_000_000}, Down: Params{Rate: 1_000_000}}, 1)
	from, until := t0.Add(time.Second), t0.Add(2*time.Second)
	l.Outage(from, until)
	l.Outage(t0.Add(1500*time.Millisecond), t0.Add(1800*time.Millisecond)) // inside the first
	l.Outage(t0.Add(5*time.Second), t0.Add(4*time.Second))                 // empty: ignored
	var dropped int64
	for i := range 300 {
		now := t0.Add(time.Duration(i) * 10 * time.Millisecond)
		in := !now.Before(from) && now.Before(until)
		for _, p := range []*Pipe{l.Up(), l.Down()} {
			if _, ok := p.Send(now, 100); ok == in {
				t.Errorf("%v: delivered %v, in outage %v", now.Sub(t0), ok, in)
			}
		}
		if in {
			dropped++
		}
	}
	s := l.Stats()
	for _, d := range []DirStats{s.Up, s.Down} {
		if d.Outage.Packets != dropped || d.Dropped().Packets != dropped {
			t.Errorf("outage drops %d (all drops %d), want %d", d.Outage.Packets, d.Dropped().Packets, dropped)
		}
		if d.AirBytes != (300-dropped)*128 {
			t.Errorf("air bytes %d, want %d", d.AirBytes, (300-dropped)*128)
		}
		checkCounts(t, d)
	}
}

func TestLinkEndOutages(t *testing.T) {
	l := newTestLink(t, Profile{}, 1)
	l.Outage(t0, t0.Add(time.Hour))
	l.Outage(t0.Add(2*time.Hour), t0.Add(3*time.Hour))
	if _, ok := l.Up().Send(t0.Add(time.Minute), 10); ok {
		t.Fatal("packet passed an outage")
	}
	l.EndOutages(t0.Add(2 * time.Minute))
	for _, at := range []time.Duration{2 * time.Minute, 150 * time.Minute} {
		if _, ok := l.Down().Send(t0.Add(at), 10); !ok {
			t.Errorf("packet at %v dropped after EndOutages", at)
		}
	}
}

// Counters add up with every cause of drop at work.
func TestPipeCountersAddUp(t *testing.T) {
	prm := Params{
		Rate: 20_000, Delay: 750 * time.Millisecond, Jitter: 100 * time.Millisecond,
		Loss: 0.02, Burst: GilbertElliott{PGoodBad: 0.02, PBadGood: 0.3, LossBad: 0.8},
		MTU: 680, QueueBytes: 4000,
	}
	l := newTestLink(t, Profile{Up: prm, Down: prm}, 11)
	l.Outage(t0.Add(10*time.Second), t0.Add(20*time.Second))
	var air [2]int64
	for i := range 10_000 {
		now := t0.Add(time.Duration(i) * 30 * time.Millisecond)
		for d, p := range []*Pipe{l.Up(), l.Down()} {
			size := 40 + (i*37+d*11)%700
			before := p.Stats()
			_, ok := p.Send(now, size)
			after := p.Stats()
			onAir := ok || after.Loss != before.Loss || after.Burst != before.Burst
			if onAir {
				air[d] += int64(size + IPv4Overhead)
			}
		}
	}
	s := l.Stats()
	for d, ds := range []DirStats{s.Up, s.Down} {
		checkCounts(t, ds)
		if ds.AirBytes != air[d] {
			t.Errorf("direction %d: air bytes %d, want %d", d, ds.AirBytes, air[d])
		}
		for name, c := range map[string]Count{"loss": ds.Loss, "burst": ds.Burst, "mtu": ds.MTU, "queue": ds.Queue, "outage": ds.Outage} {
			if c.Packets == 0 {
				t.Errorf("direction %d: no %s drops: the test does not exercise them", d, name)
			}
		}
	}
}

func TestPipeDeterministic(t *testing.T) {
	prm := Params{Rate: 20_000, Delay: time.Second, Jitter: 500 * time.Millisecond, Loss: 0.1,
		Burst: GilbertElliott{PGoodBad: 0.05, PBadGood: 0.3, LossBad: 1}}
	run := func(seed uint64) []time.Time {
		p := newTestPipe(t, prm, seed)
		out := make([]time.Time, 1000)
		for i := range out {
			out[i], _ = p.Send(t0.Add(time.Duration(i)*100*time.Millisecond), 100)
		}
		return out
	}
	a, b, c := run(42), run(42), run(43)
	same := func(x, y []time.Time) bool {
		for i := range x {
			if !x[i].Equal(y[i]) {
				return false
			}
		}
		return true
	}
	if !same(a, b) {
		t.Error("same seed, different results")
	}
	if same(a, c) {
		t.Error("different seeds, same results")
	}
}

func TestLinkDirectionsIndependent(t *testing.T) {
	prm := Params{Loss: 0.5}
	l := newTestLink(t, Profile{Up: prm, Down: prm}, 9)
	differ := 0
	for i := range 200 {
		now := t0.Add(time.Duration(i) * time.Millisecond)
		_, up := l.Up().Send(now, 10)
		_, down := l.Down().Send(now, 10)
		if up != down {
			differ++
		}
	}
	if differ == 0 {
		t.Error("up and down lose the same packets: they share a random stream")
	}
}

// Send times that go backwards are moved up to the latest one.
func TestPipeClampsTime(t *testing.T) {
	p := newTestPipe(t, Params{Delay: time.Second}, 1)
	p.Send(t0.Add(time.Minute), 10)
	at, _ := p.Send(t0, 10)
	if want := t0.Add(time.Minute + time.Second); !at.Equal(want) {
		t.Errorf("delivered at %v, want %v", at, want)
	}
}

func TestRadioConnected(t *testing.T) {
	// 8000 bit/s: a 72-byte payload is 100 IP bytes and 100 ms on the air.
	prm := Params{Rate: 8000}
	sec := func(f float64) time.Time { return t0.Add(time.Duration(f * float64(time.Second))) }

	t.Run("rrc tail", func(t *testing.T) {
		l := newTestLink(t, Profile{Up: prm, Down: prm, RRCInactivity: 10 * time.Second}, 1)
		l.Up().Send(sec(0), 72)    // [0, 10.1]
		l.Up().Send(sec(5), 72)    // [5, 15.1]
		l.Down().Send(sec(12), 72) // [12, 22.1]
		l.Up().Send(sec(30), 72)   // [30, 40.1]
		want := 22100*time.Millisecond + 10100*time.Millisecond
		if got := l.Connected(); got != want {
			t.Errorf("connected %v, want %v", got, want)
		}
		if got := l.Stats().Connected; got != want {
			t.Errorf("stats connected %v, want %v", got, want)
		}
	})

	t.Run("busy time only", func(t *testing.T) {
		l := newTestLink(t, Profile{Up: prm, Down: prm}, 1)
		l.Up().Send(sec(0), 72)      // [0, 0.1]
		l.Up().Send(sec(0), 72)      // queued: [0.1, 0.2]
		l.Up().Send(sec(0), 72)      // [0.2, 0.3]
		l.Down().Send(sec(0.05), 72) // [0.05, 0.15], inside
		l.Down().Send(sec(0.25), 72) // [0.25, 0.35]
		l.Up().Send(sec(1), 72)      // [1, 1.1]
		l.Down().Send(sec(1.1), 72)  // [1.1, 1.2], touching
		want := 350*time.Millisecond + 200*time.Millisecond
		if got := l.Connected(); got != want {
			t.Errorf("connected %v, want %v", got, want)
		}
	})

	t.Run("lost on air counts, dropped before does not", func(t *testing.T) {
		lossy := Params{Rate: 8000, Loss: 1, MTU: 100}
		l := newTestLink(t, Profile{Up: lossy, Down: prm, RRCInactivity: time.Second}, 1)
		l.Outage(sec(10), sec(11))
		l.Up().Send(sec(0), 72)   // lost on the air: [0, 1.1]
		l.Up().Send(sec(5), 73)   // over the MTU: nothing
		l.Down().Send(sec(10), 5) // outage: nothing
		if got, want := l.Connected(), 1100*time.Millisecond; got != want {
			t.Errorf("connected %v, want %v", got, want)
		}
	})

	t.Run("none", func(t *testing.T) {
		l := newTestLink(t, Profile{RRCInactivity: time.Second}, 1)
		if got := l.Connected(); got != 0 {
			t.Errorf("connected %v before any packet", got)
		}
	})
}

func BenchmarkPipeSend(b *testing.B) {
	prof, _ := Lookup("catm1")
	prof.Down.Jitter = 20 * time.Millisecond
	prof.Down.Burst = GilbertElliott{PGoodBad: 0.01, PBadGood: 0.25, LossBad: 1}
	l := newTestLink(b, prof, 1)
	p := l.Down()
	b.ReportAllocs()
	now := t0
	for b.Loop() {
		now = now.Add(40 * time.Millisecond)
		p.Send(now, 1100)
	}
}
