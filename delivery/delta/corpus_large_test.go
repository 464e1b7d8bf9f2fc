package delta

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// largeFirmwarePair is the ~380 KB corpus pair v5 -> v6 (testdata/firmware):
// one new printf and a version bump in an image of the size Arm Pelion's
// delta-update measurements used.
func largeFirmwarePair(t testing.TB) pair {
	t.Helper()
	var imgs [2][]byte
	for i, name := range []string{"v5.bin", "v6.bin"} {
		b, err := os.ReadFile(filepath.Join("testdata", "firmware", name))
		if err != nil {
			t.Skipf("firmware corpus not built: %v", err)
		}
		imgs[i] = b
	}
	return pair{"v5-v6 one printf, 380 KB", imgs[0], imgs[1]}
}

// TestLargeFirmwareRoundTrip creates and applies the v5 -> v6 patch in every
// format and logs the sizes (go test -v -run LargeFirmware ./delivery/delta).
func TestLargeFirmwareRoundTrip(t *testing.T) {
	if testing.Short() {
		t.Skip("380 KB images: skipped with -short")
	}
	p := largeFirmwarePair(t)
	for _, thumb := range []bool{false, true} {
		start := time.Now()
		patch, err := CreateWith(p.old, p.new, Options{Thumb: thumb})
		if err != nil {
			t.Fatal(err)
		}
		el := time.Since(start)
		got, err := applyChunked(p.old, patch, 4096)
		if err != nil || !bytes.Equal(got, p.new) {
			t.Fatalf("thumb %v: apply: %v", thumb, err)
		}
		t.Logf("%s: thumb %v: %d of %d bytes (%.3f %%), created in %v", p.name, thumb, len(patch), len(p.new),
			100*float64(len(patch))/float64(len(p.new)), el.Round(time.Millisecond))
	}
	pel, err := CreatePelion(p.old, p.new, 0)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ApplyPelion(p.old, pel)
	if err != nil || !bytes.Equal(got, p.new) {
		t.Fatalf("pelion: apply: %v", err)
	}
	t.Logf("%s: pelion format: %d bytes", p.name, len(pel))
}

// BenchmarkLargeFirmwarePatchSizes compares v5 -> v6 with the peer tools
// that are installed (-1: missing):
//
//	go test ./delivery/delta -run '^$' -bench LargeFirmwarePatchSizes -benchtime 1x
func BenchmarkLargeFirmwarePatchSizes(b *testing.B) {
	p := largeFirmwarePair(b)
	dir := b.TempDir()
	patch, err := Create(p.old, p.new)
	if err != nil {
		b.Fatal(err)
	}
	thumb, err := CreateWith(p.old, p.new, Options{Thumb: true})
	if err != nil {
		b.Fatal(err)
	}
	pel, err := CreatePelion(p.old, p.new, 0)
	if err != nil {
		b.Fatal(err)
	}
	bs, _, _ := peer(b, dir, "bsdiff", func(o, n, out string) []string { return []string{o, n, out} }, p.old, p.new)
	xd, _, _ := peer(b, dir, "xdelta3", func(o, n, out string) []string { return []string{"-9", "-A", "-e", "-f", "-s", o, n, out} }, p.old, p.new)
	zs, _, _ := peer(b, dir, "zstd", func(o, n, out string) []string {
		return []string{"-q", "-19", "--single-thread", "-f", "--patch-from=" + o, n, "-o", out}
	}, p.old, p.new)
	b.Logf("%s: new %d B; ours %d, ours+thumb %d, pelion %d, bsdiff %d, xdelta3 -9 -A %d, zstd -19 %d",
		p.name, len(p.new), len(patch), len(thumb), len(pel), bs, xd, zs)
}
