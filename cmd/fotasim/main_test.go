package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fotahub/fota/simulator"
	"github.com/fotahub/fota/simulator/link"
	"github.com/fotahub/fota/simulator/rawimage"
)

func TestBlockSizeFitsMTU(t *testing.T) {
	for name, want := range map[string]int{"wifi": 1024, "catm1": 1024, "nbiot": 1024, "nbiot-ce2": 512} {
		p, _ := link.Lookup(name)
		if got := blockSize(p); got != want {
			t.Errorf("%s: block %d, want %d (links.md)", name, got, want)
		}
	}
	if got := blockSize(link.Profile{Down: link.Params{MTU: 576}}); got != 256 {
		t.Errorf("MTU 576: block %d, want 256", got)
	}
}

func TestServerAddr(t *testing.T) {
	if a, secure, err := serverAddr("coaps://127.0.0.1"); err != nil || !secure || a.Port != 5684 {
		t.Errorf("coaps default port: %v %v %v", a, secure, err)
	}
	for _, bad := range []string{"http://127.0.0.1:80", "coaps://192.0.2.1:5684", "127.0.0.1:5684"} {
		if _, _, err := serverAddr(bad); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}

func TestFleetConfig(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "fleet.yaml")
	if err := os.WriteFile(file, []byte("count: 3\nfirmware: fw.bin\nlinks: {nbiot: 1}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := loadFleetConfig(file)
	if err != nil || c.Count != 3 || c.Links["nbiot"] != 1 || c.Ramp != 50 {
		t.Fatalf("%+v %v", c, err)
	}
	if _, err := loadFleetConfig("../../configs/fleet.yaml"); err != nil {
		t.Fatalf("the example config: %v", err)
	}
	_ = os.WriteFile(file, []byte("count: 3\nfirmware: fw.bin\nbogus: 1\n"), 0o600)
	if _, err := loadFleetConfig(file); err == nil {
		t.Fatal("unknown key accepted")
	}
}

func TestLinksCommand(t *testing.T) {
	var out, errb bytes.Buffer
	if err := run(context.Background(), []string{"links"}, &out, &errb); err != nil {
		t.Fatal(err)
	}
	for _, n := range link.Names() {
		if !strings.Contains(out.String(), n) {
			t.Errorf("profile %s missing:\n%s", n, out.String())
		}
	}
}

func TestFleetConfigClient(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "fleet.yaml")
	_ = os.WriteFile(file, []byte("count: 3\nfirmware: fw.bin\nclient: zephyr\n"), 0o600)
	if c, err := loadFleetConfig(file); err != nil || c.Client != "zephyr" {
		t.Fatalf("%+v %v", c, err)
	}
	_ = os.WriteFile(file, []byte("count: 3\nfirmware: fw.bin\nclient: contiki\n"), 0o600)
	if _, err := loadFleetConfig(file); err == nil {
		t.Fatal("unknown client accepted")
	}
}

// TestRawDevice: a zephyr device reads its version from its MCUboot
// image, and its download sessions go through its relay.
func TestRawDevice(t *testing.T) {
	image := rawimage.MCUboot([]byte(strings.Repeat("body ", 100)), rawimage.MCUbootVersion{Major: 1, Minor: 4})
	f := deviceFlags{endpoint: "z-1", identity: "z-1", keyHex: "6b6579", server: "coaps://127.0.0.1:5684",
		linkName: "wifi", client: "zephyr", version: "9.9.9", lwm2m: "1.1", logLevel: "warn", protocols: "0,1"}
	d, relay, err := buildDevice(f, image, 1, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer relay.Close()
	if st := d.Status(); st.Client != simulator.ClientZephyr || st.Version != "1.4.0" {
		t.Fatalf("status %+v: want zephyr running 1.4.0", st)
	}
	f.client = "riot"
	if _, _, err := buildDevice(f, image, 1, io.Discard); err == nil {
		t.Fatal("unknown client accepted")
	}
}

func TestDownloadVia(t *testing.T) {
	server := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5684}
	relay := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}
	via := downloadVia("coaps://localhost:5684", server, relay)
	if via["127.0.0.1:5684"] != "127.0.0.1:40000" || via["localhost:5684"] != "127.0.0.1:40000" {
		t.Fatalf("%v", via)
	}
}
