package delta

// BenchmarkPatchSizes prints one table comparing this format with the
// peers on every corpus pair, all tools in the same run:
//
//	go test ./delivery/delta -run '^$' -bench PatchSizes -benchtime 1x
//
// Peers (Debian packages bsdiff, xdelta3, zstd) are skipped when missing;
// peak memory needs GNU time (package time).

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"text/tabwriter"
	"time"
)

// peer runs an external differ and returns its patch size, wall time and
// peak RSS (KB), or -1 when the tool is missing.
func peer(b *testing.B, dir, name string, args func(old, new, out string) []string, old, new []byte) (int, time.Duration, int64) {
	b.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		return -1, 0, 0
	}
	o, n, out := filepath.Join(dir, "old"), filepath.Join(dir, "new"), filepath.Join(dir, "patch")
	_ = os.WriteFile(o, old, 0o600)
	_ = os.WriteFile(n, new, 0o600)
	_ = os.Remove(out)
	// GNU time reports the tool's own peak RSS; measured from this
	// process, a child's maxrss starts at the test binary's.
	argv := args(o, n, out)
	rssFile := filepath.Join(dir, "rss")
	timeBin, timeErr := exec.LookPath("/usr/bin/time")
	if timeErr == nil {
		argv = append([]string{"-f", "%M", "-o", rssFile, path}, argv...)
		path = timeBin
	}
	cmd := exec.Command(path, argv...)
	start := time.Now()
	if msg, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("%s: %v\n%s", name, err, msg)
	}
	el := time.Since(start)
	st, err := os.Stat(out)
	if err != nil {
		b.Fatal(err)
	}
	var rss int64
	if timeErr == nil {
		kb, _ := os.ReadFile(rssFile)
		rss, _ = strconv.ParseInt(strings.TrimSpace(string(kb)), 10, 64)
	}
	return int(st.Size()), el, rss
}

// fotactl builds fotactl, whose "delta create" runs the generator in a
// process of its own, so that its time and peak memory compare with
// bsdiff's on equal terms.
func fotactl(b *testing.B, dir string) string {
	b.Helper()
	bin := filepath.Join(dir, "fotactl")
	if out, err := exec.Command("go", "build", "-o", bin, "../../cmd/fotactl").CombinedOutput(); err != nil {
		b.Fatalf("go build fotactl: %v\n%s", err, out)
	}
	return bin
}

func BenchmarkPatchSizes(b *testing.B) {
	pairs := append(firmwarePairs(b), syntheticPairs(b)[4:7]...)
	pairs = append(pairs, largePair())
	dir := b.TempDir()
	ours := fotactl(b, dir)
	var tab bytes.Buffer
	w := tabwriter.NewWriter(&tab, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "pair\tnew B\tours\tours %\tours+thumb\tpelion\tbsdiff\tbsdiff %\tours/bsdiff\txdelta3 -9\tzstd -19\tours Create ms\tours process ms\tbsdiff process ms\tours maxRSS MB\tbsdiff maxRSS MB\tRAM bound\t")
	for _, p := range pairs {
		start := time.Now()
		patch, err := Create(p.old, p.new)
		inproc := time.Since(start)
		if err != nil {
			b.Fatal(err)
		}
		size, el, rss := peer(b, dir, ours, func(o, n, out string) []string {
			return []string{"delta", "create", "--old", o, "--new", n, "--out", out}
		}, p.old, p.new)
		if size != len(patch) {
			b.Fatalf("fotactl wrote %d bytes, Create %d", size, len(patch))
		}
		thumb, err := CreateWith(p.old, p.new, Options{Thumb: true})
		if err != nil {
			b.Fatal(err)
		}
		pel, err := CreatePelion(p.old, p.new, 0)
		if err != nil {
			b.Fatal(err)
		}
		bs, bt, brss := peer(b, dir, "bsdiff", func(o, n, out string) []string { return []string{o, n, out} }, p.old, p.new)
		xd, _, _ := peer(b, dir, "xdelta3", func(o, n, out string) []string { return []string{"-9", "-e", "-f", "-s", o, n, out} }, p.old, p.new)
		zs, _, _ := peer(b, dir, "zstd", func(o, n, out string) []string {
			return []string{"-q", "-19", "-f", "--patch-from=" + o, n, "-o", out}
		}, p.old, p.new)
		pct := func(n int) string { return fmt.Sprintf("%.2f", 100*float64(n)/float64(max(1, len(p.new)))) }
		fmt.Fprintf(w, "%s\t%d\t%d\t%s\t%d\t%d\t%d\t%s\t%.2f\t%d\t%d\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t%d\t\n",
			strings.ReplaceAll(p.name, " ", "_"), len(p.new), len(patch), pct(len(patch)), len(thumb), len(pel), bs, pct(bs),
			float64(len(patch))/float64(max(1, bs)), xd, zs,
			inproc.Seconds()*1000, el.Seconds()*1000, bt.Seconds()*1000, float64(rss)/1024, float64(brss)/1024, RAMBound)
	}
	w.Flush()
	b.Logf("\n%s", tab.String())
	fmt.Print(tab.String())
}

// largePair is a 2 MB firmware-like pair: the size of the largest images
// the format targets, where generation time is the algorithm's, not the
// process start-up's.
func largePair() pair {
	rng := rand.New(rand.NewPCG(7, 8))
	old := make([]byte, 2<<20)
	for i := range old {
		old[i] = byte(i%4096) ^ byte(rng.IntN(4))
	}
	return pair{"2 MB synthetic", old, splice(rng, mutate(rng, old, 500), 50)}
}
