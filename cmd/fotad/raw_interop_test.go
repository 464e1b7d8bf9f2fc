package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fotahub/fota/coap"
	"github.com/fotahub/fota/delivery/firmware"
	"github.com/fotahub/fota/delivery/update"
)

// TestInteropRawPackageURI has Debian's libcoap client (coap-client-openssl)
// download a raw image's Package URI over DTLS PSK, as a third-party
// device's separate download session does, with 16-, 256- and 1024-byte
// blocks, while the device's registration session (same PSK identity,
// another port) stays up: every run is byte for byte the uploaded file,
// its first block carries Size2, every block the same ETag (the image's
// digest), and afterwards the registration is the same one and its
// session still carries operations both ways.
func TestInteropRawPackageURI(t *testing.T) {
	bin := libcoapClient(t, "coap-client-openssl")
	s := startServer(t, nil)
	ctx := context.Background()
	rnd := rand.New(rand.NewPCG(9, 9))
	// An MCUboot-like image: a header, then code-like bytes.
	img := make([]byte, 9000+rnd.IntN(1000))
	for i := range img {
		img[i] = byte(rnd.IntN(64))
	}
	copy(img, []byte{0x3d, 0xb8, 0xf3, 0x96})
	for i, data := range [][]byte{bytes.Repeat([]byte{0x3d}, 4096), img} {
		if _, _, err := s.d.firmware.AddImage(ctx, data, fmt.Sprintf("%d.0.0", i+1), "nrf-mcuboot", firmware.ProfileRaw); err != nil {
			t.Fatal(err)
		}
	}

	const ep, identity, key = "raw-dev", "raw-dev-id", "raw-dev-key"
	s.provision(ep, identity, key)
	dev := &fwDevice{uris: make(chan string, 4)}
	conn, err := coap.DialDTLS(ctx, s.coapsAddr(), coap.ClientConfig{
		PSKIdentity: identity, PSKKey: []byte(key), ConnectionID: true, Handler: dev, HandshakeTimeout: 3 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	d := &device{t: t, conn: conn}
	mustCode(t, "register", d.register("ep="+ep+"&lt=300&lwm2m=1.1&b=U", "</5/0>,</3/0>"), coap.Created)
	reg, _ := s.d.registry.Lookup(ep)

	uri := startPullUpdate(t, s, dev, ep, map[string]any{"image": "2.0.0"})
	u, _ := s.d.updates.Status(ep)
	if !u.Raw || u.Package != sha256.Sum256(img) || u.Size != int64(len(img)) || u.Class != "nrf-mcuboot" {
		t.Fatalf("update of a raw class: %+v, want the raw image %x of %d bytes", u, sha256.Sum256(img), len(img))
	}

	owner := packageGet(t, bin, "-u", identity, "-k", key)
	etag := fmt.Sprintf("ETag:0x%x", u.Package[:8])
	for _, size := range []int{16, 256, 1024} {
		t.Run(fmt.Sprintf("%d-byte blocks", size), func(t *testing.T) {
			got, out := owner("-b", fmt.Sprint(size), uri)
			if !bytes.Equal(got, img) {
				t.Fatalf("-b %d: libcoap wrote %d bytes, want the %d of the uploaded image:\n%s", size, len(got), len(img), pkgTail(out))
			}
			codes := pkgCodes(out)
			if want := (len(img) + size - 1) / size; len(codes) != want {
				t.Fatalf("-b %d: %d responses, want %d blocks", size, len(codes), want)
			}
			for _, c := range codes {
				if c != "2.05" {
					t.Fatalf("-b %d: response %s:\n%s", size, c, pkgTail(out))
				}
			}
			for _, pdu := range pkgPDU.FindAllString(out, -1) {
				if !strings.Contains(pdu, etag) {
					t.Fatalf("-b %d: response without the image's %s: %s", size, etag, pdu)
				}
			}
			if !strings.Contains(out, fmt.Sprintf("Size2:%d", len(img))) {
				t.Fatalf("-b %d: no Size2:%d in the first block:\n%s", size, len(img), pkgTail(out))
			}
		})
	}

	// The registration is the same one, on its own session, which still
	// carries operations both ways.
	if got, ok := s.d.registry.Lookup(ep); !ok || got.ID != reg.ID || s.d.registry.Count() != 1 {
		t.Fatalf("registration after the downloads: %+v (was %s), %d registrations", got, reg.ID, s.d.registry.Count())
	}
	var read struct {
		Code   string
		Values []struct{ Path, Value string }
	}
	if code := s.api("POST", "/api/v1/devices/"+ep+"/ops", map[string]any{"op": "read", "path": "/3/0/3"}, &read); code != http.StatusOK ||
		read.Code != "2.05" || len(read.Values) != 1 || read.Values[0].Value != "1.0.0" {
		t.Fatalf("read /3/0/3 after the downloads: HTTP %d %+v", code, read)
	}
	mustCode(t, "registration update after the downloads", d.update("lt=300"), coap.Changed)
	if u, _ := s.d.updates.Status(ep); u.Phase != update.Downloading {
		t.Fatalf("update after the downloads: %+v", u)
	}
}
