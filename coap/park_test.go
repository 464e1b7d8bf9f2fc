package coap

import (
	"context"
	"testing"
	"time"

	"github.com/fotahub/fota/coap/coaptest"
)

// startParkingServer parks sessions after 200 ms (below what Validate
// allows, to keep the test short).
func startParkingServer(t *testing.T) *Server {
	t.Helper()
	return startServerWith(t, nil, func(s *Server) { s.cfg.ParkAfter = 200 * time.Millisecond })
}

func onlySession(t *testing.T, s *Server, identity string) *Session {
	t.Helper()
	sessions := sessionsByIdentity(s, identity)
	if len(sessions) != 1 {
		t.Fatalf("%d sessions for %s, want 1", len(sessions), identity)
	}
	return sessions[0]
}

func waitParked(t *testing.T, s *Server, sess *Session) {
	t.Helper()
	waitFor(t, func() bool { return sess.Parked() })
	if s.Stats().Parked < 1 {
		t.Fatal("parked session not counted")
	}
}

var echoDevice = HandlerFunc(func(_ context.Context, r *Request) Response {
	return Response{Code: Content, ContentFormat: 0, Payload: []byte("device:" + r.Path)}
})

func TestParkedSessionResumesOnDeviceTraffic(t *testing.T) {
	s := startParkingServer(t)
	c, err := dialPSK(t, s.DTLSAddr(), "dev-1", testKeys["dev-1"], nil)
	if err != nil {
		t.Fatal(err)
	}
	get(t, c, "/first")
	sess := onlySession(t, s, "dev-1")
	// Several park and resume cycles: sequence numbers and replay windows
	// must carry over, or the peer's records would be dropped.
	for i := 0; i < 4; i++ {
		waitParked(t, s, sess)
		if got := string(get(t, c, "/again").Payload); got != "psk:dev-1" {
			t.Fatalf("cycle %d: %q", i, got)
		}
		if sess.Parked() {
			t.Fatalf("cycle %d: still parked after a request", i)
		}
		if again := onlySession(t, s, "dev-1"); again != sess {
			t.Fatalf("cycle %d: a new session replaced the parked one", i)
		}
	}
	if hs := s.Stats().Handshakes[HandshakeOK]; hs != 1 {
		t.Fatalf("%d handshakes, want 1: resuming must not handshake", hs)
	}
}

func TestParkedSessionResumesForServerRequest(t *testing.T) {
	s := startParkingServer(t)
	c, err := dialPSK(t, s.DTLSAddr(), "dev-1", testKeys["dev-1"], func(c *ClientConfig) { c.Handler = echoDevice })
	if err != nil {
		t.Fatal(err)
	}
	get(t, c, "/first")
	sess := onlySession(t, s, "dev-1")
	for i := 0; i < 3; i++ {
		waitParked(t, s, sess)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		resp, err := sess.Do(ctx, NewRequest(GET, "/3/0/3"))
		cancel()
		if err != nil || string(resp.Payload) != "device:/3/0/3" {
			t.Fatalf("cycle %d: server request to a parked session: %v %q", i, err, resp.Payload)
		}
	}
	get(t, c, "/device-still-talks")
}

func TestParkedSessionFollowsNATRebinding(t *testing.T) {
	s := startParkingServer(t)
	r := coaptest.NewRelay(t, s.DTLSAddr())
	c, err := dialPSK(t, r.Addr(), "dev-1", testKeys["dev-1"], func(c *ClientConfig) { c.Handler = echoDevice })
	if err != nil {
		t.Fatal(err)
	}
	get(t, c, "/first")
	sess := onlySession(t, s, "dev-1")
	waitParked(t, s, sess)
	r.Rebind(t)
	get(t, c, "/after-rebinding")
	if got := sess.RemoteAddr().String(); got != r.OutsideAddr() {
		t.Fatalf("session at %s, want %s", got, r.OutsideAddr())
	}
	waitParked(t, s, sess)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := sess.Do(ctx, NewRequest(GET, "/3/0/3")); err != nil {
		t.Fatalf("server request after rebinding while parked: %v", err)
	}
}

func TestParkedSessionEndsWhenDeviceReboots(t *testing.T) {
	s := startParkingServer(t)
	d := bootDevice(t, s, "127.0.0.1:0")
	get(t, d.c, "/first")
	old := onlySession(t, s, "dev-1")
	waitParked(t, s, old)
	get(t, d.reboot().c, "/after-reboot")
	select {
	case <-old.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the parked session of the rebooted device did not end")
	}
	if s.Stats().Parked != 0 {
		t.Fatalf("parked count %d after the parked session ended", s.Stats().Parked)
	}
}

func TestParkedSessionExpires(t *testing.T) {
	s := startParkingServer(t)
	c, err := dialPSK(t, s.DTLSAddr(), "dev-1", testKeys["dev-1"], nil)
	if err != nil {
		t.Fatal(err)
	}
	get(t, c, "/first")
	sess := onlySession(t, s, "dev-1")
	waitParked(t, s, sess)
	sess.SetIdleTimeout(300 * time.Millisecond)
	select {
	case <-sess.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("parked session outlived its idle timeout")
	}
	if st := s.Stats(); st.Sessions != 0 || st.Parked != 0 {
		t.Fatalf("after expiry: %d sessions, %d parked", st.Sessions, st.Parked)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if _, err := sess.Do(ctx, NewRequest(GET, "/x")); err != ErrSessionClosed {
		t.Fatalf("Do on an ended session: %v, want ErrSessionClosed", err)
	}
}
