package delta

// BenchmarkPatchSizes prints one table comparing this format with the
// peers on every corpus pair, all tools in the same run:
//
//	go test ./delivery/delta -run '^$' -bench PatchSizes -benchtime 1x
//
// Peers (Debian packages bsdiff, xdelta3, zstd) are skipped when missing.

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
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
	cmd := exec.Command(path, args(o, n, out)...)
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
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		rss = ru.Maxrss
	}
	return int(st.Size()), el, rss
}

func BenchmarkPatchSizes(b *testing.B) {
	pairs := append(firmwarePairs(b), syntheticPairs(b)[4:7]...)
	dir := b.TempDir()
	var tab bytes.Buffer
	w := tabwriter.NewWriter(&tab, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "pair\tnew B\tours\tours %\tours+thumb\tpelion\tbsdiff\tbsdiff %\tours/bsdiff\txdelta3 -9\tzstd -19\tours ms\tbsdiff ms\tours alloc MB\tbsdiff maxRSS MB\tRAM bound\t")
	for _, p := range pairs {
		var ms runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&ms)
		before := ms.TotalAlloc
		start := time.Now()
		patch, err := Create(p.old, p.new)
		el := time.Since(start)
		if err != nil {
			b.Fatal(err)
		}
		runtime.ReadMemStats(&ms)
		alloc := ms.TotalAlloc - before
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
		fmt.Fprintf(w, "%s\t%d\t%d\t%s\t%d\t%d\t%d\t%s\t%.2f\t%d\t%d\t%.1f\t%.1f\t%.1f\t%.1f\t%d\t\n",
			strings.ReplaceAll(p.name, " ", "_"), len(p.new), len(patch), pct(len(patch)), len(thumb), len(pel), bs, pct(bs),
			float64(len(patch))/float64(max(1, bs)), xd, zs,
			el.Seconds()*1000, bt.Seconds()*1000, float64(alloc)/(1<<20), float64(brss)/1024, RAMBound)
	}
	w.Flush()
	b.Logf("\n%s", tab.String())
	fmt.Print(tab.String())
}
