package link

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"testing"
	"time"
)

// hangGuard bounds every wait in these tests so that a bug fails instead of
// hanging; no assertion depends on it.
const hangGuard = 10 * time.Second

// echoServer echoes UDP datagrams on loopback and remembers the address of
// the last sender.
type echoServer struct {
	conn *net.UDPConn
	mu   sync.Mutex
	last netip.AddrPort
	seen map[netip.AddrPort]bool
}

func startEcho(tb testing.TB) *echoServer {
	tb.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		tb.Fatal(err)
	}
	e := &echoServer{conn: conn, seen: make(map[netip.AddrPort]bool)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 65536)
		for {
			n, from, err := conn.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			e.mu.Lock()
			e.last = from
			e.seen[from] = true
			e.mu.Unlock()
			_, _ = conn.WriteToUDPAddrPort(buf[:n], from)
		}
	}()
	tb.Cleanup(func() {
		_ = conn.Close()
		<-done
	})
	return e
}

func (e *echoServer) addr() *net.UDPAddr { return e.conn.LocalAddr().(*net.UDPAddr) }

func (e *echoServer) lastSender() netip.AddrPort {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.last
}

func newTestRelay(tb testing.TB, server *net.UDPAddr, prof Profile) *Relay {
	tb.Helper()
	if prof.Name == "" {
		prof.Name = "test"
	}
	r, err := NewRelay(server, prof, 1)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = r.Close() })
	return r
}

// dialDevice returns a device socket connected to the relay.
func dialDevice(tb testing.TB, r *Relay) *net.UDPConn {
	tb.Helper()
	c, err := net.DialUDP("udp", nil, r.Addr())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = c.Close() })
	return c
}

// ping sends payload and waits for the echo.
func ping(tb testing.TB, dev *net.UDPConn, payload []byte) {
	tb.Helper()
	if _, err := dev.Write(payload); err != nil {
		tb.Fatal(err)
	}
	buf := make([]byte, 2048)
	_ = dev.SetReadDeadline(time.Now().Add(hangGuard))
	n, err := dev.Read(buf)
	if err != nil {
		tb.Fatalf("no echo: %v", err)
	}
	if !bytes.Equal(buf[:n], payload) {
		tb.Fatalf("echo %x, want %x", buf[:n], payload)
	}
}

// eventually polls cond until it holds or the hang guard runs out.
func eventually(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(hangGuard)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("%s: not reached within %v", what, hangGuard)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// lan is a fast link with delay and jitter but no loss.
func lan() Profile {
	d := Params{Rate: 10_000_000, Delay: 20 * time.Millisecond, Jitter: 5 * time.Millisecond, QueueBytes: DefaultQueueBytes}
	return Profile{Name: "lan", Up: d, Down: d}
}

func TestRelayEcho(t *testing.T) {
	echo := startEcho(t)
	r := newTestRelay(t, echo.addr(), lan())
	dev := dialDevice(t, r)

	// The round trip cannot beat the configured delays.
	start := time.Now()
	ping(t, dev, []byte("hello"))
	if rtt, min := time.Since(start), 2*(20-5)*time.Millisecond; rtt < min {
		t.Errorf("round trip %v, shorter than the link allows (%v)", rtt, min)
	}

	// A stream of packets comes back intact and in order. At most 16 are
	// outstanding so that no socket buffer overflows on a loaded machine.
	const n, window = 300, 16
	msg := func(i int) []byte {
		m := make([]byte, 64+i)
		binary.BigEndian.PutUint32(m, uint32(i))
		for j := 4; j < len(m); j++ {
			m[j] = byte(i + j)
		}
		return m
	}
	buf := make([]byte, 2048)
	sent := 0
	for i := range n {
		for ; sent < n && sent < i+window; sent++ {
			if _, err := dev.Write(msg(sent)); err != nil {
				t.Fatal(err)
			}
		}
		_ = dev.SetReadDeadline(time.Now().Add(hangGuard))
		m, err := dev.Read(buf)
		if err != nil {
			t.Fatalf("packet %d: %v (stats %+v)", i, err, r.Stats())
		}
		if !bytes.Equal(buf[:m], msg(i)) {
			t.Fatalf("packet %d: got %d bytes, sequence %d", i, m, binary.BigEndian.Uint32(buf))
		}
	}

	s := r.Stats()
	for name, d := range map[string]DirStats{"up": s.Up, "down": s.Down} {
		if d.Offered.Packets != n+1 || d.Delivered.Packets != n+1 || d.Dropped().Packets != 0 {
			t.Errorf("%s: %+v, want %d offered and delivered", name, d, n+1)
		}
		wantBytes := int64(5 + n*64 + n*(n-1)/2)
		if d.Delivered.Bytes != wantBytes || d.AirBytes != wantBytes+(n+1)*IPv4Overhead {
			t.Errorf("%s: delivered %d bytes, %d on air; want %d and %d",
				name, d.Delivered.Bytes, d.AirBytes, wantBytes, wantBytes+(n+1)*IPv4Overhead)
		}
	}
	if s.Connected <= 0 {
		t.Errorf("connected %v", s.Connected)
	}
	if got := echo.lastSender(); got != r.OutsideAddr().AddrPort() {
		t.Errorf("server saw %v, relay outside address %v", got, r.OutsideAddr())
	}
}

func TestRelayRebind(t *testing.T) {
	echo := startEcho(t)
	r := newTestRelay(t, echo.addr(), lan())
	dev := dialDevice(t, r)

	ping(t, dev, []byte("before"))
	before := echo.lastSender()
	if before != r.OutsideAddr().AddrPort() {
		t.Fatalf("server saw %v, relay outside address %v", before, r.OutsideAddr())
	}
	for i := range 3 {
		if err := r.Rebind(); err != nil {
			t.Fatal(err)
		}
		ping(t, dev, []byte{'a', byte(i)})
		after := echo.lastSender()
		if after == before {
			t.Fatalf("rebind %d: server still sees %v", i, after)
		}
		if after != r.OutsideAddr().AddrPort() {
			t.Errorf("rebind %d: server saw %v, relay outside address %v", i, after, r.OutsideAddr())
		}
		before = after
	}
	echo.mu.Lock()
	defer echo.mu.Unlock()
	if len(echo.seen) != 4 {
		t.Errorf("server saw %d addresses, want 4", len(echo.seen))
	}
}

func TestRelayOutage(t *testing.T) {
	echo := startEcho(t)
	r := newTestRelay(t, echo.addr(), lan())
	dev := dialDevice(t, r)
	ping(t, dev, []byte("up"))

	// During an outage nothing passes.
	r.Outage(time.Hour)
	for range 5 {
		if _, err := dev.Write([]byte("lost")); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "5 outage drops", func() bool { return r.Stats().Up.Outage.Packets == 5 })
	if s := r.Stats(); s.Up.Delivered.Packets != 1 || s.Down.Offered.Packets != 1 {
		t.Errorf("during the outage: up %+v down %+v", s.Up, s.Down)
	}

	// Ended, traffic flows again.
	r.EndOutage()
	ping(t, dev, []byte("back"))

	// A short outage ends by itself.
	r.Outage(50 * time.Millisecond)
	buf := make([]byte, 64)
	eventually(t, "recovery after a short outage", func() bool {
		_, _ = dev.Write([]byte("again"))
		_ = dev.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		n, err := dev.Read(buf)
		return err == nil && string(buf[:n]) == "again"
	})
}

func TestRelayMTU(t *testing.T) {
	echo := startEcho(t)
	prof := lan()
	prof.Up.MTU = 680
	r := newTestRelay(t, echo.addr(), prof)
	dev := dialDevice(t, r)
	for _, size := range []int{653, 5000} {
		if _, err := dev.Write(make([]byte, size)); err != nil {
			t.Fatal(err)
		}
	}
	ping(t, dev, make([]byte, 652))
	s := r.Stats()
	if s.Up.MTU.Packets != 2 || s.Up.Delivered.Packets != 1 {
		t.Errorf("up: %+v, want 2 MTU drops and 1 delivery", s.Up)
	}
}

// Only the server reaches the device through the relay.
func TestRelayIgnoresStrangers(t *testing.T) {
	server, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	stranger, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer stranger.Close()
	r := newTestRelay(t, server.LocalAddr().(*net.UDPAddr), Profile{})
	dev := dialDevice(t, r)

	if _, err := dev.Write([]byte("register")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	_ = server.SetReadDeadline(time.Now().Add(hangGuard))
	n, from, err := server.ReadFromUDP(buf)
	if err != nil || string(buf[:n]) != "register" {
		t.Fatalf("server read %q, %v", buf[:n], err)
	}
	if _, err := stranger.WriteToUDP([]byte("spam"), from); err != nil {
		t.Fatal(err)
	}
	if _, err := server.WriteToUDP([]byte("reply"), from); err != nil {
		t.Fatal(err)
	}
	_ = dev.SetReadDeadline(time.Now().Add(hangGuard))
	if n, err = dev.Read(buf); err != nil || string(buf[:n]) != "reply" {
		t.Fatalf("device read %q, %v; want the server's reply", buf[:n], err)
	}
	if s := r.Stats(); s.Down.Offered.Packets != 1 {
		t.Errorf("down offered %d, want 1", s.Down.Offered.Packets)
	}
}

// A server address as a server listening on all interfaces reports it is
// reached on loopback.
func TestRelayUnspecifiedServer(t *testing.T) {
	echo := startEcho(t)
	r := newTestRelay(t, &net.UDPAddr{IP: net.IPv6unspecified, Port: echo.addr().Port}, lan())
	if got := r.Server().String(); got != echo.addr().String() {
		t.Errorf("server %s, want %s", got, echo.addr())
	}
	ping(t, dialDevice(t, r), []byte("hi"))
}

func TestNewRelayErrors(t *testing.T) {
	if _, err := NewRelay(nil, lan(), 1); err == nil {
		t.Error("nil server accepted")
	}
	if _, err := NewRelay(&net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}, lan(), 1); err == nil {
		t.Error("port 0 accepted")
	}
	bad := lan()
	bad.Up.Loss = 2
	_, err := NewRelay(&net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9}, bad, 1)
	if err == nil {
		t.Error("invalid profile accepted")
	}
}

func TestRelayCloseStopsGoroutines(t *testing.T) {
	echo := startEcho(t)
	base := runtime.NumGoroutine()
	var relays []*Relay
	for range 20 {
		r, err := NewRelay(echo.addr(), lan(), 1)
		if err != nil {
			t.Fatal(err)
		}
		relays = append(relays, r)
		dev := dialDevice(t, r)
		ping(t, dev, []byte("x"))
		// Leave packets in flight in both directions.
		_, _ = dev.Write([]byte("in flight"))
		if err := r.Rebind(); err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range relays {
		if err := r.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
		if err := r.Close(); err != nil {
			t.Errorf("second close: %v", err)
		}
		if err := r.Rebind(); !errors.Is(err, ErrClosed) {
			t.Errorf("rebind after close: %v, want ErrClosed", err)
		}
	}
	eventually(t, "goroutines back to the baseline", func() bool { return runtime.NumGoroutine() <= base })
}

func TestFlightOrder(t *testing.T) {
	var f flight
	times := []int{5, 1, 4, 1, 3, 9, 2, 1}
	for i, at := range times {
		f.push(t0.Add(time.Duration(at)*time.Second), []byte{byte(i)})
	}
	if !f.next().Equal(t0.Add(time.Second)) {
		t.Errorf("next %v", f.next())
	}
	var got []byte
	f.deliver(t0.Add(4*time.Second), func(b []byte) { got = append(got, b[0]) })
	// Due by 4 s, by time and then by arrival: the three at 1 s in push
	// order.
	if want := []byte{1, 3, 7, 6, 4, 2}; !bytes.Equal(got, want) {
		t.Errorf("delivered %v, want %v", got, want)
	}
	f.deliver(t0.Add(time.Hour), func(b []byte) { got = append(got, b[0]) })
	if len(got) != len(times) || !f.next().IsZero() {
		t.Errorf("delivered %v, next %v", got, f.next())
	}
}

// BenchmarkRelay measures a round trip through a relay with a perfect
// link (two relay forwards and an echo) and, pipelined, the cost per
// packet forwarded.
func BenchmarkRelay(b *testing.B) {
	echo := startEcho(b)
	r := newTestRelay(b, echo.addr(), Profile{})
	dev := dialDevice(b, r)
	msg := make([]byte, 1100)
	buf := make([]byte, 2048)

	b.Run("round trip", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := dev.Write(msg); err != nil {
				b.Fatal(err)
			}
			_ = dev.SetReadDeadline(time.Now().Add(hangGuard))
			if _, err := dev.Read(buf); err != nil {
				b.Fatal(err)
			}
		}
	})

	b.Run("pipelined 16", func(b *testing.B) {
		b.ReportAllocs()
		const window = 16
		sent, got := 0, 0
		for b.Loop() {
			for sent-got < window {
				if _, err := dev.Write(msg); err != nil {
					b.Fatal(err)
				}
				sent++
			}
			_ = dev.SetReadDeadline(time.Now().Add(hangGuard))
			if _, err := dev.Read(buf); err != nil {
				b.Fatal(err)
			}
			got++
		}
		// Drain what is still in flight so the next run starts clean.
		for ; got < sent; got++ {
			_ = dev.SetReadDeadline(time.Now().Add(hangGuard))
			if _, err := dev.Read(buf); err != nil {
				b.Fatal(err)
			}
		}
	})

	b.Run("pipelined 32 catm1 delays", func(b *testing.B) {
		prof, _ := Lookup("catm1")
		for _, d := range []*Params{&prof.Up, &prof.Down} {
			d.Rate, d.Loss = 0, 0 // keep the delay, drop the rate limit and loss
		}
		r := newTestRelay(b, echo.addr(), prof)
		dev := dialDevice(b, r)
		b.ReportAllocs()
		const window = 32
		sent, got := 0, 0
		for b.Loop() {
			for sent-got < window {
				if _, err := dev.Write(msg); err != nil {
					b.Fatal(err)
				}
				sent++
			}
			_ = dev.SetReadDeadline(time.Now().Add(hangGuard))
			if _, err := dev.Read(buf); err != nil {
				b.Fatal(err)
			}
			got++
		}
		for ; got < sent; got++ {
			_ = dev.SetReadDeadline(time.Now().Add(hangGuard))
			if _, err := dev.Read(buf); err != nil {
				b.Fatal(err)
			}
		}
	})
}
