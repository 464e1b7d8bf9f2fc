package coap

import (
	"bytes"
	"context"
	"sync/atomic"
	"testing"
	"time"
)

// observedDevice accepts observations of /3/0/9 and hands each observe
// request to the test, which then sends notifications with Notify. Plain
// GETs return body, as the follow-up GETs of a block-wise notification need.
type observedDevice struct {
	requests chan *Request
	cancels  chan *Request
	body     func() []byte
}

func (d *observedDevice) ServeCoAP(_ context.Context, r *Request) Response {
	if r.Path != "/3/0/9" {
		return Reply(NotFound)
	}
	resp := Response{Code: Content, ContentFormat: 0, Payload: d.body()}
	switch r.Observe {
	case ObserveRegister:
		resp.Observed, resp.ObserveSeq = true, 1
		d.requests <- r
	case ObserveDeregister:
		d.cancels <- r
	}
	return resp
}

func TestObserveNotifyAndCancel(t *testing.T) {
	s := startParkingServer(t)
	big := bytes.Repeat([]byte("0123456789abcdef"), 200) // 3,200 bytes: four 1 KB blocks
	var current atomic.Pointer[[]byte]                   // read by the device's handler
	first42 := []byte("42")
	current.Store(&first42)
	dev := &observedDevice{requests: make(chan *Request, 1), cancels: make(chan *Request, 1),
		body: func() []byte { return *current.Load() }}
	c, err := dialPSK(t, s.DTLSAddr(), "dev-1", testKeys["dev-1"], func(c *ClientConfig) { c.Handler = dev })
	if err != nil {
		t.Fatal(err)
	}
	get(t, c, "/hello")
	sess := onlySession(t, s, "dev-1")

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	notes := make(chan Response, 4)
	obs, first, err := sess.Observe(ctx, NewRequest(GET, "/3/0/9"), func(r Response) { notes <- r })
	if err != nil || obs == nil {
		t.Fatalf("observe: %v %v", obs, err)
	}
	if first.Code != Content || !first.Observed || string(first.Payload) != "42" {
		t.Fatalf("first response %+v", first)
	}
	req := <-dev.requests

	if err := c.Notify(ctx, req, 2, Response{Code: Content, ContentFormat: 0, Payload: []byte("41")}); err != nil {
		t.Fatal(err)
	}
	if n := <-notes; string(n.Payload) != "41" || n.ObserveSeq != 2 {
		t.Fatalf("notification %+v", n)
	}
	current.Store(&big)
	if err := c.Notify(ctx, req, 3, Response{Code: Content, ContentFormat: 0, Payload: big}); err != nil {
		t.Fatal(err)
	}
	if n := <-notes; !bytes.Equal(n.Payload, big) {
		t.Fatalf("block-wise notification: %d bytes, want %d", len(n.Payload), len(big))
	}

	// An observed session stays up past ParkAfter: parking would drop the
	// observation and the next notification would be reset.
	time.Sleep(4 * s.cfg.ParkAfter)
	if sess.Parked() {
		t.Fatal("session with a live observation was parked")
	}

	if err := obs.Cancel(ctx); err != nil {
		t.Fatal(err)
	}
	if r := <-dev.cancels; !bytes.Equal(r.Token, req.Token) {
		t.Fatalf("cancel token %x, observe token %x", r.Token, req.Token)
	}
	select {
	case <-obs.Ended():
	default:
		t.Fatal("cancelled observation not ended")
	}
	waitParked(t, s, sess) // free to park once nothing is observed
}

func TestObserveRefused(t *testing.T) {
	s := startServer(t, nil)
	dev := &observedDevice{requests: make(chan *Request, 1), body: func() []byte { return nil }}
	c, err := dialPSK(t, s.DTLSAddr(), "dev-1", testKeys["dev-1"], func(c *ClientConfig) { c.Handler = dev })
	if err != nil {
		t.Fatal(err)
	}
	get(t, c, "/hello")
	sess := onlySession(t, s, "dev-1")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	obs, first, err := sess.Observe(ctx, NewRequest(GET, "/4/0/0"), func(Response) { t.Error("notified") })
	if err != nil || obs != nil || first.Code != NotFound {
		t.Fatalf("observe of a missing resource: obs %v, first %v, err %v", obs, first.Code, err)
	}
	if n := sess.observing.Load(); n != 0 {
		t.Fatalf("%d observations counted after a refusal", n)
	}
}

func TestObserveEndsWithSession(t *testing.T) {
	s := startServer(t, nil)
	dev := &observedDevice{requests: make(chan *Request, 1), body: func() []byte { return []byte("1") }}
	c, err := dialPSK(t, s.DTLSAddr(), "dev-1", testKeys["dev-1"], func(c *ClientConfig) { c.Handler = dev })
	if err != nil {
		t.Fatal(err)
	}
	get(t, c, "/hello")
	sess := onlySession(t, s, "dev-1")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	obs, _, err := sess.Observe(ctx, NewRequest(GET, "/3/0/9"), func(Response) {})
	if err != nil || obs == nil {
		t.Fatal(obs, err)
	}
	_ = sess.Close()
	select {
	case <-obs.Ended():
	case <-ctx.Done():
		t.Fatal("observation outlived its session")
	}
}
