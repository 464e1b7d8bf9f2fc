package main

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/fotahub/fota/delivery/update"
	"github.com/fotahub/fota/simulator"
)

// TestUpdateThroughFotad updates a simulated device from 1.0.0 to 2.0.0
// with fotad's own pieces: images added through the API, a delta package,
// the Package URI served by the CoAPS listener, the Object 5 driver; the
// update record is in the store.
func TestUpdateThroughFotad(t *testing.T) {
	s := startServer(t, nil)
	v1 := []byte(strings.Repeat("firmware build one ", 3000))
	v2 := bytes.Replace(v1, []byte("one "), []byte("two "), 30)
	for _, im := range []struct {
		b []byte
		v string
	}{{v1, "1.0.0"}, {v2, "2.0.0"}} {
		req, _ := http.NewRequest("POST", s.apiURL()+"/api/v1/images?version="+im.v+"&class=meter", bytes.NewReader(im.b))
		req.Header.Set("Authorization", "Bearer "+s.d.token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != http.StatusCreated {
			t.Fatalf("add image %s: %v %v", im.v, resp.StatusCode, err)
		}
		resp.Body.Close()
	}
	s.provision("meter-1", "meter-1", "meter-1-key")
	dev, err := simulator.New(simulator.Config{Endpoint: "meter-1", PSKIdentity: "meter-1", PSKKey: []byte("meter-1-key"),
		Server: s.coapsAddr(), Firmware: v1, FirmwareVersion: "1.0.0", Sequence: 1, Class: "meter",
		TrustKey: s.d.firmware.PublicKey(), BlockSize: 256, BootTime: 50 * time.Millisecond,
		Logger: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- dev.Run(ctx) }()
	defer func() { cancel(); <-done }()
	waitFor(t, "registered", func() bool { return dev.Status().Registered })

	if _, err := s.d.updates.Start(context.Background(), "meter-1", update.Request{Image: "2.0.0"}); err != nil {
		t.Fatal(err)
	}
	waitWithin(t, "update finished", 60*time.Second, func() bool {
		u, _ := s.d.updates.Status("meter-1")
		return u.Phase.Finished()
	})
	u, _ := s.d.updates.Status("meter-1")
	if u.Phase != update.Done || u.Format.String() != "delta" || u.BytesServed < u.Size {
		t.Fatalf("update %+v", u)
	}
	if running, info := dev.Flash().Running(); !bytes.Equal(running, v2) || info.Version != "2.0.0" {
		t.Fatalf("device runs %s", info.Version)
	}
	stored, err := s.d.db.Updates(context.Background())
	if err != nil || len(stored) != 1 || stored[0].Phase != update.Done {
		t.Fatalf("stored %+v %v", stored, err)
	}
	if s.d.coap.Published() != 0 {
		t.Fatal("package still published after the update")
	}
}
