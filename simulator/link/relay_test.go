package link

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"slices"
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

// listenServer is a bare server socket on loopback, for tests that send
// from the server on their own.
func listenServer(tb testing.TB) *net.UDPConn {
	tb.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = c.Close() })
	return c
}

// serverRead reads one datagram at the server and returns it and whom it
// came from.
func serverRead(tb testing.TB, server *net.UDPConn) (string, netip.AddrPort) {
	tb.Helper()
	buf := make([]byte, 2048)
	_ = server.SetReadDeadline(time.Now().Add(hangGuard))
	n, from, err := server.ReadFromUDPAddrPort(buf)
	if err != nil {
		tb.Fatalf("server read: %v", err)
	}
	return string(buf[:n]), from
}

// deviceRead reads one datagram at a device within d.
func deviceRead(dev *net.UDPConn, d time.Duration) (string, error) {
	buf := make([]byte, 2048)
	_ = dev.SetReadDeadline(time.Now().Add(d))
	n, err := dev.Read(buf)
	return string(buf[:n]), err
}

// outside returns the relay's outside addresses as AddrPorts.
func outside(r *Relay) []netip.AddrPort {
	var a []netip.AddrPort
	for _, u := range r.OutsideAddrs() {
		a = append(a, u.AddrPort())
	}
	return a
}

// Two sockets of one device, as a Zephyr or Anjay client opens for a
// download next to its registration, are two NAT mappings: the server
// sees two addresses, and each socket gets only what is sent to its own.
func TestRelayFlows(t *testing.T) {
	server := listenServer(t)
	r := newTestRelay(t, server.LocalAddr().(*net.UDPAddr), lan())
	if r.OutsideAddr() != nil || len(r.OutsideAddrs()) != 0 {
		t.Fatalf("mappings %v before any traffic", r.OutsideAddrs())
	}
	reg, dl := dialDevice(t, r), dialDevice(t, r)

	if _, err := reg.Write([]byte("register")); err != nil {
		t.Fatal(err)
	}
	if msg, from := serverRead(t, server); msg != "register" {
		t.Fatalf("server read %q", msg)
	} else if got := r.OutsideAddr().AddrPort(); got != from {
		t.Fatalf("server saw %v, relay outside address %v", from, got)
	}
	if _, err := dl.Write([]byte("download")); err != nil {
		t.Fatal(err)
	}
	_, dlFrom := serverRead(t, server)
	addrs := outside(r)
	if len(addrs) != 2 || addrs[0] == addrs[1] || addrs[1] != dlFrom {
		t.Fatalf("outside addresses %v, want two distinct, the second %v", addrs, dlFrom)
	}
	if r.OutsideAddr().AddrPort() != addrs[0] {
		t.Errorf("OutsideAddr %v, want the oldest flow's %v", r.OutsideAddr(), addrs[0])
	}

	// Interleaved replies reach their own socket only, in order.
	const n = 20
	for i := range n {
		for j, to := range addrs {
			msg := fmt.Sprintf("flow %d reply %d", j, i)
			if _, err := server.WriteToUDPAddrPort([]byte(msg), to); err != nil {
				t.Fatal(err)
			}
		}
	}
	for j, dev := range []*net.UDPConn{reg, dl} {
		for i := range n {
			got, err := deviceRead(dev, hangGuard)
			if want := fmt.Sprintf("flow %d reply %d", j, i); err != nil || got != want {
				t.Fatalf("device socket %d read %q, %v; want %q", j, got, err, want)
			}
		}
		if got, err := deviceRead(dev, 100*time.Millisecond); err == nil {
			t.Errorf("device socket %d got an extra %q", j, got)
		}
	}

	// Up traffic keeps to its mapping.
	for j, dev := range []*net.UDPConn{reg, dl} {
		if _, err := dev.Write([]byte("again")); err != nil {
			t.Fatal(err)
		}
		if _, from := serverRead(t, server); from != addrs[j] {
			t.Errorf("device socket %d seen at %v, want %v", j, from, addrs[j])
		}
	}
	// The link is shared: its counters hold both flows.
	if s := r.Stats(); s.Up.Delivered.Packets != 4 || s.Down.Delivered.Packets != 2*n {
		t.Errorf("up %+v down %+v, want 4 and %d delivered", s.Up.Delivered, s.Down.Delivered, 2*n)
	}
}

// pingErr is ping for goroutines other than the test's.
func pingErr(dev *net.UDPConn, payload []byte) error {
	if _, err := dev.Write(payload); err != nil {
		return err
	}
	got, err := deviceRead(dev, hangGuard)
	if err != nil {
		return fmt.Errorf("no echo of %q: %w", payload, err)
	}
	if got != string(payload) {
		return fmt.Errorf("echo %q, want %q", got, payload)
	}
	return nil
}

// Flows running at once through one relay keep apart; with -race this
// also checks that they share the link safely.
func TestRelayConcurrentFlows(t *testing.T) {
	echo := startEcho(t)
	r := newTestRelay(t, echo.addr(), lan())
	const socks, n = 3, 40
	errs := make(chan error, socks)
	for j := range socks {
		dev := dialDevice(t, r)
		go func() {
			for i := range n {
				if err := pingErr(dev, fmt.Appendf(nil, "socket %d ping %d", j, i)); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range socks {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if addrs := outside(r); len(addrs) != socks {
		t.Errorf("outside addresses %v, want %d", addrs, socks)
	}
	echo.mu.Lock()
	defer echo.mu.Unlock()
	if len(echo.seen) != socks {
		t.Errorf("server saw %d addresses, want %d", len(echo.seen), socks)
	}
}

// An outage is the radio's: it drops every flow, both ways. A socket
// whose only datagram was lost gets no mapping.
func TestRelayOutageDropsAllFlows(t *testing.T) {
	server := listenServer(t)
	r := newTestRelay(t, server.LocalAddr().(*net.UDPAddr), lan())
	devs := []*net.UDPConn{dialDevice(t, r), dialDevice(t, r)}
	for _, dev := range devs {
		if _, err := dev.Write([]byte("hello")); err != nil {
			t.Fatal(err)
		}
		serverRead(t, server)
	}
	addrs := outside(r)

	r.Outage(time.Hour)
	late := dialDevice(t, r)
	for _, dev := range append(devs, late) {
		if _, err := dev.Write([]byte("lost")); err != nil {
			t.Fatal(err)
		}
	}
	for _, to := range addrs {
		if _, err := server.WriteToUDPAddrPort([]byte("lost"), to); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "outage drops", func() bool {
		s := r.Stats()
		return s.Up.Outage.Packets == 3 && s.Down.Outage.Packets == 2
	})
	if s := r.Stats(); s.Up.Delivered.Packets != 2 || s.Down.Delivered.Packets != 0 {
		t.Errorf("during the outage: up %+v down %+v", s.Up, s.Down)
	}
	if got := outside(r); len(got) != 2 {
		t.Errorf("outside addresses %v, want only the two that got through", got)
	}

	r.EndOutage()
	for j, dev := range devs {
		if _, err := server.WriteToUDPAddrPort([]byte("back"), addrs[j]); err != nil {
			t.Fatal(err)
		}
		if got, err := deviceRead(dev, hangGuard); err != nil || got != "back" {
			t.Errorf("device socket %d after the outage: %q, %v", j, got, err)
		}
	}
}

// Rebind moves every mapping: each socket appears at a new address, and
// what the server sends to an old one is lost.
func TestRelayRebindMovesAllFlows(t *testing.T) {
	echo := startEcho(t)
	r := newTestRelay(t, echo.addr(), lan())
	devs := []*net.UDPConn{dialDevice(t, r), dialDevice(t, r)}
	for _, dev := range devs {
		ping(t, dev, []byte("before"))
	}
	before := outside(r)
	if err := r.Rebind(); err != nil {
		t.Fatal(err)
	}
	after := outside(r)
	if len(after) != 2 {
		t.Fatalf("after rebind: outside addresses %v", after)
	}
	for j := range after {
		if slices.Contains(before, after[j]) {
			t.Errorf("flow %d still at %v (before %v)", j, after[j], before)
		}
	}
	for j, dev := range devs {
		ping(t, dev, []byte{'a', byte(j)})
		if got := echo.lastSender(); got != after[j] {
			t.Errorf("device socket %d seen at %v, want %v", j, got, after[j])
		}
	}

	// The old ports are closed: what the server still sends there is lost
	// before the link.
	for _, old := range before {
		_, _ = echo.conn.WriteToUDPAddrPort([]byte("late"), old)
	}
	for j, dev := range devs {
		if got, err := deviceRead(dev, 100*time.Millisecond); err == nil {
			t.Errorf("device socket %d got %q sent to its old address", j, got)
		}
	}
	if s := r.Stats(); s.Down.Offered.Packets != 4 {
		t.Errorf("down offered %d, want the 4 echoes", s.Down.Offered.Packets)
	}
}

// A flow without a datagram either way for the idle timeout is forgotten,
// its socket and goroutine released; a busy one stays. A forgotten socket
// that speaks again gets a fresh mapping.
func TestRelayIdleFlowsReaped(t *testing.T) {
	echo := startEcho(t)
	r := newTestRelay(t, echo.addr(), lan())
	// Long enough that a loaded machine keeps the busy flow under it.
	const idle = 300 * time.Millisecond
	r.SetIdleTimeout(idle)
	base := runtime.NumGoroutine()
	busy, quiet := dialDevice(t, r), dialDevice(t, r)
	ping(t, busy, []byte("busy"))
	ping(t, quiet, []byte("quiet"))
	addrs := outside(r)
	if len(addrs) != 2 {
		t.Fatalf("outside addresses %v", addrs)
	}

	// Keep one flow busy well past the timeout: only the quiet one goes.
	for end := time.Now().Add(4 * idle); time.Now().Before(end); {
		ping(t, busy, []byte("still here"))
		time.Sleep(idle / 6)
	}
	eventually(t, "the quiet flow reaped", func() bool { return len(r.OutsideAddrs()) == 1 })
	if got := outside(r); got[0] != addrs[0] || r.OutsideAddr().AddrPort() != addrs[0] {
		t.Errorf("outside addresses %v, want the busy flow's %v", got, addrs[0])
	}

	// Then all go, with their goroutines.
	eventually(t, "every flow reaped", func() bool { return r.OutsideAddr() == nil })
	eventually(t, "down loops gone", func() bool { return runtime.NumGoroutine() <= base })

	// Speaking again maps the socket anew.
	ping(t, quiet, []byte("back"))
	if got := outside(r); len(got) != 1 || got[0] != echo.lastSender() {
		t.Errorf("outside addresses %v, server saw %v", got, echo.lastSender())
	}
}

func TestSetIdleTimeoutDefault(t *testing.T) {
	r := newTestRelay(t, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9}, lan())
	r.SetIdleTimeout(time.Second)
	r.SetIdleTimeout(0)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.idle != DefaultIdleTimeout {
		t.Errorf("idle timeout %v after SetIdleTimeout(0), want %v", r.idle, DefaultIdleTimeout)
	}
}

func TestFlightOrder(t *testing.T) {
	var f flight
	times := []int{5, 1, 4, 1, 3, 9, 2, 1}
	for i, at := range times {
		to := netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), uint16(1000+i))
		f.push(t0.Add(time.Duration(at)*time.Second), to, []byte{byte(i)})
	}
	if !f.next().Equal(t0.Add(time.Second)) {
		t.Errorf("next %v", f.next())
	}
	var got []byte
	collect := func(to netip.AddrPort, b []byte) {
		if int(to.Port()) != 1000+int(b[0]) {
			t.Errorf("packet %d delivered to %v", b[0], to)
		}
		got = append(got, b[0])
	}
	f.deliver(t0.Add(4*time.Second), collect)
	// Due by 4 s, by time and then by arrival: the three at 1 s in push
	// order.
	if want := []byte{1, 3, 7, 6, 4, 2}; !bytes.Equal(got, want) {
		t.Errorf("delivered %v, want %v", got, want)
	}
	f.deliver(t0.Add(time.Hour), collect)
	if len(got) != len(times) || !f.next().IsZero() || !f.empty() {
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
