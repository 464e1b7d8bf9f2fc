package coap

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestInteropLibcoapBlob downloads a published blob with Debian's libcoap
// example clients (OpenSSL and GnuTLS builds) over DTLS PSK at two block
// sizes, and resumes a download block by block. libcoap 4.3.1 answers
// `-b NUM,SIZE` with NUM > 0 by fetching block NUM alone (random access;
// it does the same against libcoap's own server), not the rest of the body
// from NUM, so a resume is one run per block. libcoap sends a new token for
// every block. It exits 0 even when the download fails, so the file it
// writes is compared with the blob.
func TestInteropLibcoapBlob(t *testing.T) {
	for _, client := range []string{"coap-client-openssl", "coap-client-gnutls"} {
		t.Run(client, func(t *testing.T) {
			bin := libcoapBinary(t, client)
			t.Parallel()
			testLibcoapBlob(t, bin)
		})
	}
}

func testLibcoapBlob(t *testing.T, bin string) {
	s := blobServer(t, nil)
	image := testImage(100_003)
	var p progress
	path, err := s.Publish(dev1, BytesBlob(image), PublishOptions{OnBlock: p.add})
	if err != nil {
		t.Fatal(err)
	}
	uri := "coaps://" + s.DTLSAddr().String() + path
	get := libcoapGet(t, bin, "-u", "dev-1", "-k", string(testKeys["dev-1"]))
	etag := fmt.Sprintf("ETag:0x%x", BytesBlob(image).ETag())

	// fetch runs libcoap with -b block and checks it received blocks
	// [from, to) of size, all 2.05, each reported once as progress.
	fetch := func(t *testing.T, block string, from, to, size int) []byte {
		t.Helper()
		before := len(p.get())
		got, out := get("-b", block, uri)
		want := image[from*size : min(to*size, len(image))]
		if !bytes.Equal(got, want) {
			t.Fatalf("-b %s: libcoap wrote %d bytes, want the %d of blocks %d-%d of %d:\n%s",
				block, len(got), len(want), from, to-1, size, tail(out))
		}
		for _, pdu := range libcoapPDU.FindAllString(out, -1) {
			if !strings.Contains(pdu, etag) || !strings.Contains(pdu, "application/octet-stream") {
				t.Fatalf("-b %s: response without the ETag and Content-Format: %s", block, pdu)
			}
		}
		if from == 0 && !strings.Contains(out, fmt.Sprintf("Size2:%d", len(image))) {
			t.Fatalf("-b %s: no Size2 in the first block", block)
		}
		codes := libcoapCodes(out)
		if len(codes) != to-from || slices.ContainsFunc(codes, func(c string) bool { return c != "2.05" }) {
			t.Fatalf("-b %s: libcoap saw %d responses %v, want %d times 2.05", block, len(codes), codes, to-from)
		}
		ev := p.get()[before:]
		last := to*size >= len(image)
		if len(ev) != to-from || int(ev[0].Num) != from || ev[0].Size != size || ev[len(ev)-1].Last != last {
			t.Fatalf("-b %s: %d progress reports (first %+v), want %d from block %d", block, len(ev), ev[0], to-from, from)
		}
		return got
	}

	t.Run("512-byte blocks", func(t *testing.T) { fetch(t, "512", 0, 196, 512) })
	t.Run("1024-byte blocks", func(t *testing.T) { fetch(t, "1024", 0, 98, 1024) })
	t.Run("single block", func(t *testing.T) { fetch(t, "37,512", 37, 38, 512) })
	t.Run("resume at block 90", func(t *testing.T) {
		var got []byte
		for num := 90; num < 98; num++ {
			got = append(got, fetch(t, fmt.Sprintf("%d,1024", num), num, num+1, 1024)...)
		}
		if !bytes.Equal(got, image[90*1024:]) {
			t.Fatal("resumed download differs")
		}
	})
	t.Run("another identity", func(t *testing.T) {
		got, out := libcoapGet(t, bin, "-u", "dev-2", "-k", string(testKeys["dev-2"]))("-b", "512", uri)
		if codes := libcoapCodes(out); len(got) != 0 || !slices.Equal(codes, []string{"4.04"}) {
			t.Fatalf("dev-2 got %d bytes, responses %v", len(got), codes)
		}
	})
}

// libcoapGet returns a function that runs bin with args and more (the
// last of them the URI) to GET into a file, and returns the file's content
// and the client's debug output.
func libcoapGet(t *testing.T, bin string, args ...string) func(more ...string) ([]byte, string) {
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
			t.Fatalf("%s %s: %v:\n%s", bin, strings.Join(full, " "), err, tail(string(b)))
		}
		got, err := os.ReadFile(file)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		return got, string(b)
	}
}

// A response PDU in libcoap's debug output: "v:1 t:ACK c:2.05 i:1a2b ...".
var libcoapPDU = regexp.MustCompile(`(?m)^v:1 t:\w+ c:(\d\.\d\d) i:(\w+) .*$`)

// libcoapCodes lists the codes of the responses libcoap received, one per
// Message ID: after a block-wise transfer libcoap shows the reassembled
// body as one more PDU with the last block's Message ID.
func libcoapCodes(out string) []string {
	var codes []string
	seen := make(map[string]bool)
	for _, m := range libcoapPDU.FindAllStringSubmatch(out, -1) {
		if !seen[m[2]] {
			seen[m[2]] = true
			codes = append(codes, m[1])
		}
	}
	return codes
}

func tail(s string) string {
	if len(s) > 4000 {
		return fmt.Sprintf("...%s", s[len(s)-4000:])
	}
	return s
}

// libcoapBinary returns the path of a libcoap example client. Outside CI a
// missing client skips the test; in CI it fails (cmd/fotad's interop tests
// do the same).
func libcoapBinary(t *testing.T, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	if ci := os.Getenv("CI"); ci != "" && ci != "false" && ci != "0" {
		t.Fatalf("%s not found, and CI must run the interop tests: install Debian's libcoap3-bin", name)
	}
	t.Skipf("%s not found: apt-get install libcoap3-bin to run the interop tests with libcoap", name)
	return ""
}
