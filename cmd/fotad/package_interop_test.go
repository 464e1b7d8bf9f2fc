package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fotahub/fota/coap"
	"github.com/fotahub/fota/delivery/update"
	"github.com/fotahub/fota/lwm2m/model"
)

// TestInteropPackageURI has Debian's libcoap client (coap-client-openssl)
// download, over DTLS PSK, the Package URI fotad writes to a device's
// /5/0/1 when it starts an update by pull: the whole package with 512- and
// 1024-byte blocks, a resume from block N, and a single block. What
// libcoap writes must be byte for byte the package fotad made, full and
// delta. The device (a Go client holding its registration session) only
// answers fotad's reads and the write of the Package URI; libcoap, with
// the device's PSK identity and key, opens sessions of its own next to it,
// and the registration session must still serve operations afterwards.
// Another provisioned identity is refused the path with 4.04.
//
// libcoap 4.3.1 answers `-b NUM,SIZE` with NUM > 0 by fetching block NUM
// alone, not the rest of the body from NUM (see coap/blob_interop_test.go),
// so a resume is one run per block.
func TestInteropPackageURI(t *testing.T) {
	bin := libcoapClient(t, "coap-client-openssl")
	for _, c := range []struct {
		name   string
		full   bool
		format string
	}{{"full", true, "full"}, {"delta", false, "delta"}} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			testPackageURI(t, bin, c.full, c.format)
		})
	}
}

func testPackageURI(t *testing.T, bin string, full bool, format string) {
	s := startServer(t, nil)
	for _, im := range []struct{ name, version string }{{"v1", "1.0.0"}, {"v2", "2.0.0"}} {
		if code, body := s.raw("POST", "/api/v1/images?version="+im.version+"&class=sensor-a", readCorpus(t, im.name), ""); code != http.StatusCreated {
			t.Fatalf("add image %s: HTTP %d %s", im.version, code, body)
		}
	}
	const ep, identity, key = "pkg-dev", "pkg-dev-id", "pkg-dev-key"
	s.provision(ep, identity, key)
	s.provision("pkg-other", "pkg-other-id", "pkg-other-key")

	dev := &fwDevice{uris: make(chan string, 4)}
	conn, err := coap.DialDTLS(context.Background(), s.coapsAddr(), coap.ClientConfig{
		PSKIdentity: identity, PSKKey: []byte(key), ConnectionID: true,
		Handler: dev, HandshakeTimeout: 3 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	d := &device{t: t, conn: conn}
	mustCode(t, "register", d.register("ep="+ep+"&lt=300&lwm2m=1.1&b=U", "</5/0>,</3/0>"), coap.Created)

	uri := startPullUpdate(t, s, dev, ep, map[string]any{"image": "2.0.0", "full": full})
	u, _ := s.d.updates.Status(ep)
	if u.Phase != update.Downloading || u.Push || u.Format.String() != format || u.Path == "" {
		t.Fatalf("update after the Package URI was written: %+v", u)
	}
	if want := "coaps://" + s.coapsAddr() + u.Path; uri != want {
		t.Fatalf("Package URI %q, want %q", uri, want)
	}
	if !strings.HasPrefix(u.Path, "/"+coap.BlobPathSegment+"/") {
		t.Fatalf("published path %q", u.Path)
	}

	// The package fotad made, from the firmware service and from the API.
	pkg, err := s.d.firmware.PackageData(context.Background(), u.Package)
	if err != nil {
		t.Fatal(err)
	}
	if sha256.Sum256(pkg) != u.Package || int64(len(pkg)) != u.Size {
		t.Fatalf("package %s: %d bytes with SHA-256 %x, update says %d bytes", u.Package, len(pkg), sha256.Sum256(pkg), u.Size)
	}
	if code, body := s.raw("GET", "/api/v1/packages/"+u.Package.String()+"?download=1", nil, ""); code != http.StatusOK || !bytes.Equal(body, pkg) {
		t.Fatalf("package through the API: HTTP %d, %d bytes, want the %d of the firmware service", code, len(body), len(pkg))
	}
	t.Logf("%s package: %d bytes", format, len(pkg))

	get := func(id, k string) func(args ...string) ([]byte, string) {
		return packageGet(t, bin, "-u", id, "-k", k)
	}
	owner := get(identity, key)
	etag := fmt.Sprintf("ETag:0x%x", u.Package[:8])
	served := func() int64 { u, _ := s.d.updates.Status(ep); return u.BytesServed }

	// fetch has libcoap download with -b block and checks that it received
	// blocks [from, to) of size, each with 2.05 and the package's ETag, and
	// that fotad counted their bytes as served for the update.
	fetch := func(t *testing.T, block string, from, to, size int) []byte {
		t.Helper()
		before := served()
		got, out := owner("-b", block, uri)
		want := pkg[from*size : min(to*size, len(pkg))]
		if !bytes.Equal(got, want) {
			t.Fatalf("-b %s: libcoap wrote %d bytes, want the %d of blocks %d-%d of %d:\n%s",
				block, len(got), len(want), from, to-1, size, pkgTail(out))
		}
		codes := pkgCodes(out)
		if len(codes) != to-from || slices.ContainsFunc(codes, func(c string) bool { return c != "2.05" }) {
			t.Fatalf("-b %s: libcoap saw %d responses %v, want %d times 2.05:\n%s", block, len(codes), codes, to-from, pkgTail(out))
		}
		for _, pdu := range pkgPDU.FindAllString(out, -1) {
			if !strings.Contains(pdu, etag) {
				t.Fatalf("-b %s: response without the package's %s: %s", block, etag, pdu)
			}
		}
		if from == 0 && !strings.Contains(out, fmt.Sprintf("Size2:%d", len(pkg))) {
			t.Fatalf("-b %s: no Size2:%d in the first block:\n%s", block, len(pkg), pkgTail(out))
		}
		// OnBlock runs before each block is sent: the count is complete
		// once libcoap has the last block.
		if n := served() - before; n != int64(len(want)) {
			t.Fatalf("-b %s: fotad counted %d bytes served, libcoap received %d", block, n, len(want))
		}
		return got
	}
	blocks := func(size int) int { return (len(pkg) + size - 1) / size }

	t.Run("512-byte blocks", func(t *testing.T) { fetch(t, "512", 0, blocks(512), 512) })
	t.Run("1024-byte blocks", func(t *testing.T) { fetch(t, "1024", 0, blocks(1024), 1024) })
	t.Run("single block", func(t *testing.T) {
		n := blocks(512) / 2
		fetch(t, fmt.Sprintf("%d,512", n), n, n+1, 512)
	})
	t.Run("resume at block N", func(t *testing.T) {
		// Blocks 0..N-1 of a -b 512 download, then the rest block by block
		// from N with -b N,SIZE: what the runs wrote, put together, is the
		// package. SIZE is 1024 unless the package (a delta) is so small
		// that a smaller size is needed for a resume of several blocks.
		size := 1024
		for size > 64 && blocks(size) < 6 {
			size /= 2
		}
		n := blocks(size) / 2
		got := fetch(t, "512", 0, blocks(512), 512)[:n*size]
		for num := n; num < blocks(size); num++ {
			got = append(got, fetch(t, fmt.Sprintf("%d,%d", num, size), num, num+1, size)...)
		}
		if !bytes.Equal(got, pkg) {
			t.Fatal("resumed download differs from the package")
		}
		t.Logf("resumed at block %d of %d bytes, %d runs", n, size, blocks(size)-n)
	})
	t.Run("another identity", func(t *testing.T) {
		before := served()
		got, out := get("pkg-other-id", "pkg-other-key")("-b", "512", uri)
		if codes := pkgCodes(out); len(got) != 0 || !slices.Equal(codes, []string{"4.04"}) {
			t.Fatalf("another identity got %d bytes, responses %v:\n%s", len(got), codes, pkgTail(out))
		}
		if n := served() - before; n != 0 {
			t.Fatalf("%d bytes counted as served to another identity", n)
		}
	})

	// The device's own session, open all along, still carries operations
	// both ways, and the update still waits for the device.
	var read struct {
		Code   string
		Values []struct {
			Path  string
			Value string
		}
	}
	if code := s.api("POST", "/api/v1/devices/"+ep+"/ops", map[string]any{"op": "read", "path": "/3/0/3"}, &read); code != http.StatusOK ||
		read.Code != "2.05" || len(read.Values) != 1 || read.Values[0].Value != "1.0.0" {
		t.Fatalf("read /3/0/3 through the API after the downloads: HTTP %d %+v", code, read)
	}
	mustCode(t, "registration update after the downloads", d.update("lt=300"), coap.Changed)
	if reg, ok := s.d.registry.Lookup(ep); !ok || reg.Identity.String() != "psk:"+identity {
		t.Fatalf("registration after the downloads: %+v %v", reg, ok)
	}
	if u, _ := s.d.updates.Status(ep); u.Phase != update.Downloading || u.Path == "" {
		t.Fatalf("update after the downloads: %+v", u)
	}
	if n := len(dev.uris); n != 0 {
		t.Fatalf("%d more Package URIs written", n)
	}
}

// startPullUpdate starts the update through the API and returns the
// Package URI fotad writes to the device.
func startPullUpdate(t *testing.T, s *testServer, dev *fwDevice, ep string, body map[string]any) string {
	t.Helper()
	if code := s.api("POST", "/api/v1/devices/"+ep+"/update", body, nil); code != http.StatusAccepted {
		t.Fatalf("start update: HTTP %d", code)
	}
	select {
	case uri := <-dev.uris:
		return uri
	case <-time.After(15 * time.Second):
		u, _ := s.d.updates.Status(ep)
		t.Fatalf("no Package URI written to /5/0/1; update %+v", u)
	}
	return ""
}

// fwDevice answers what fotad asks a device that takes an update by pull:
// its firmware version, Object 5 (idle, pull only, CoAPS) and the write
// of the Package URI, which it hands over on uris.
type fwDevice struct {
	uris chan string
	mu   sync.Mutex
	seq  uint32
}

func (f *fwDevice) ServeCoAP(_ context.Context, r *coap.Request) coap.Response {
	switch {
	case r.Method == coap.GET && r.Path == "/3/0/3":
		return coap.Response{Code: coap.Content, ContentFormat: model.ContentFormatText, Payload: []byte("1.0.0")}
	case r.Method == coap.GET && r.Path == "/5/0":
		cf := r.Accept
		if cf == coap.NoFormat {
			cf = model.ContentFormatTLV
		}
		body, err := model.Encode(cf, model.ObjectInstancePath(5, 0), &model.ObjectInstance{ID: 0, Resources: map[uint16]model.Resource{
			3: model.SingleResource(3, model.IntegerValue(0)),                              // state: idle
			5: model.SingleResource(5, model.IntegerValue(0)),                              // update result: initial
			8: model.MultipleResource(8, map[uint16]model.Value{0: model.IntegerValue(1)}), // protocols: CoAPS
			9: model.SingleResource(9, model.IntegerValue(0)),                              // delivery: pull only
		}})
		if err != nil {
			return coap.Reply(coap.NotAcceptable)
		}
		resp := coap.Response{Code: coap.Content, ContentFormat: cf, Payload: body}
		if r.Observe == coap.ObserveRegister {
			f.mu.Lock()
			f.seq++
			resp.Observed, resp.ObserveSeq = true, f.seq
			f.mu.Unlock()
		}
		return resp
	case r.Method == coap.PUT && r.Path == "/5/0/1":
		if r.ContentFormat != model.ContentFormatText && r.ContentFormat != coap.NoFormat {
			return coap.Reply(coap.UnsupportedFormat)
		}
		select {
		case f.uris <- string(r.Payload):
		default:
		}
		return coap.Reply(coap.Changed)
	}
	return coap.Reply(coap.NotFound)
}

// packageGet returns a function that runs libcoap's client with args and
// more (the last of them the URI) to GET into a file, within 60 s, and
// returns the file's content and the client's debug output.
func packageGet(t *testing.T, bin string, args ...string) func(more ...string) ([]byte, string) {
	return func(more ...string) ([]byte, string) {
		t.Helper()
		file := filepath.Join(t.TempDir(), "download")
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		full := slices.Concat([]string{"-v", "7", "-B", "30", "-o", file}, args, more)
		cmd := exec.CommandContext(ctx, bin, full...)
		cmd.WaitDelay = time.Second
		b, err := cmd.CombinedOutput()
		if ctx.Err() != nil || err != nil {
			t.Fatalf("%s %s: %v (%v):\n%s", bin, strings.Join(full, " "), err, ctx.Err(), pkgTail(string(b)))
		}
		got, err := os.ReadFile(file)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		return got, string(b)
	}
}

// A response PDU in libcoap's debug output: "v:1 t:ACK c:2.05 i:1a2b ...";
// requests show their method ("c:GET") and do not match.
var pkgPDU = regexp.MustCompile(`(?m)^v:1 t:\w+ c:(\d\.\d\d) i:(\w+) .*$`)

// pkgCodes lists the codes of the responses libcoap received, one per
// Message ID: after a block-wise transfer libcoap shows the reassembled
// body as one more PDU with the last block's Message ID.
func pkgCodes(out string) []string {
	var codes []string
	seen := make(map[string]bool)
	for _, m := range pkgPDU.FindAllStringSubmatch(out, -1) {
		if !seen[m[2]] {
			seen[m[2]] = true
			codes = append(codes, m[1])
		}
	}
	return codes
}

func pkgTail(s string) string {
	if len(s) > 4000 {
		return "..." + s[len(s)-4000:]
	}
	return s
}
