package delta

// Tests of the C applier (c/fdelta.c) through its host driver c/fdapply.c:
// it must rebuild every corpus image in any chunking, with its state saved
// and restored, refuse every hostile patch without crashing, reading
// outside the old image or writing past the declared new size, and agree
// with the Go applier on every patch. The driver is built with the host cc
// (with AddressSanitizer and UBSan when the compiler has them, so any
// out-of-bounds access fails the test); without cc the test is skipped,
// except under CI, where it fails.

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// cApplier is a built fdapply.
type cApplier struct {
	bin string
	dir string // scratch for image and patch files
	n   int    // batches run, for unique directory names
	mu  sync.Mutex
}

var cApplierFlags = []string{"-std=c99", "-Wall", "-Wextra", "-Werror", "-O2"}

// buildCApplier compiles fdapply into a temporary directory; sanitize adds
// ASan and UBSan if the compiler supports them (reported by the bool).
func buildCApplier(t *testing.T, sanitize bool) (*cApplier, bool) {
	t.Helper()
	cc, err := exec.LookPath("cc")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("CI: no C compiler for the C applier: %v", err)
		}
		t.Skipf("no C compiler: %v", err)
	}
	dir := t.TempDir()
	flags := append([]string(nil), cApplierFlags...)
	if sanitize {
		san := []string{"-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-g"}
		probe := filepath.Join(dir, "probe.c")
		if err := os.WriteFile(probe, []byte("int main(void) { return 0; }\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(cc, append(san, "-o", filepath.Join(dir, "probe"), probe)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Logf("cc has no ASan/UBSan, testing without: %v\n%s", err, out)
			sanitize = false
		} else if out, err := exec.Command(filepath.Join(dir, "probe")).CombinedOutput(); err != nil {
			t.Logf("ASan/UBSan binaries do not run here, testing without: %v\n%s", err, out)
			sanitize = false
		} else {
			flags = append(flags, san...)
		}
	}
	bin := filepath.Join(dir, "fdapply")
	args := append(flags, "-o", bin)
	for _, f := range []string{"fdapply.c", "fdelta.c", "sha256.c"} {
		args = append(args, filepath.Join("c", f))
	}
	if out, err := exec.Command(cc, args...).CombinedOutput(); err != nil {
		t.Fatalf("cc %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return &cApplier{bin: bin, dir: dir}, sanitize
}

// cJob is one fdapply run: apply patch to old in chunks of chunk bytes,
// saving and restoring the state every `every` chunks (0: never).
type cJob struct {
	name         string
	old, patch   []byte
	chunk, every int
}

// cResult is what one fdapply run did.
type cResult struct {
	err string // "" on success, else the applier's error name (FD_E_...)
	out []byte // the new image file
}

// runAll runs the jobs with `fdapply -b`, one process per CPU. The error
// is for what must never happen, whatever the patch: a crash, a sanitizer
// report, a broken driver contract (a read outside the old image, a write
// past new_size, offsets that disagree after a restore).
func (c *cApplier) runAll(jobs []cJob) ([]cResult, error) {
	c.mu.Lock()
	c.n++
	dir := filepath.Join(c.dir, fmt.Sprint(c.n))
	c.mu.Unlock()
	if err := os.Mkdir(dir, 0o700); err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	files := map[[32]byte]string{}
	file := func(b []byte) (string, error) {
		h := sha256.Sum256(b)
		if f, ok := files[h]; ok {
			return f, nil
		}
		f := filepath.Join(dir, fmt.Sprintf("in%d", len(files)))
		files[h] = f
		return f, os.WriteFile(f, b, 0o600)
	}
	lines := make([]string, len(jobs))
	outs := make([]string, len(jobs))
	for i, j := range jobs {
		o, err := file(j.old)
		if err != nil {
			return nil, err
		}
		p, err := file(j.patch)
		if err != nil {
			return nil, err
		}
		outs[i] = filepath.Join(dir, fmt.Sprintf("out%d", i))
		lines[i] = fmt.Sprintf("%s %s %s %d %d\n", o, p, outs[i], j.chunk, j.every)
	}

	results := make([]cResult, len(jobs))
	workers := min(runtime.GOMAXPROCS(0), len(jobs))
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var idx []int
			var in strings.Builder
			for i := w; i < len(jobs); i += workers {
				idx = append(idx, i)
				in.WriteString(lines[i])
			}
			cmd := exec.Command(c.bin, "-b")
			cmd.Env = append(os.Environ(),
				"ASAN_OPTIONS=abort_on_error=1:detect_leaks=0",
				"UBSAN_OPTIONS=halt_on_error=1:abort_on_error=1:print_stacktrace=1")
			cmd.Stdin = strings.NewReader(in.String())
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			runErr := cmd.Run()
			got := strings.Split(strings.TrimSuffix(stdout.String(), "\n"), "\n")
			if stdout.Len() == 0 {
				got = nil
			}
			if runErr != nil || len(got) != len(idx) {
				if len(got) < len(idx) {
					j := jobs[idx[len(got)]]
					errs[w] = fmt.Errorf("fdapply -b: %v in %q (chunk %d, save every %d); its stderr ends:\n%s",
						runErr, j.name, j.chunk, j.every, tail(stderr.String(), 3000))
				} else {
					errs[w] = fmt.Errorf("fdapply -b: %v, %d results for %d jobs", runErr, len(got), len(idx))
				}
				return
			}
			for k, i := range idx {
				switch r := got[k]; {
				case r == "OK":
				case strings.HasPrefix(r, "ERR FD_E_"):
					results[i].err = strings.TrimPrefix(r, "ERR ")
				default:
					errs[w] = fmt.Errorf("fdapply -b: %q for %q", r, jobs[i].name)
					return
				}
				out, err := os.ReadFile(outs[i])
				if err != nil {
					errs[w] = err
					return
				}
				results[i].out = out
			}
		}()
	}
	wg.Wait()
	return results, errors.Join(errs...)
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// goErrName maps a Go applier error to the C applier's error names.
func goErrName(err error) string {
	for _, e := range []struct {
		err  error
		name string
	}{
		{ErrNotPatch, "FD_E_NOT_PATCH"}, {ErrVersion, "FD_E_VERSION"}, {ErrHeader, "FD_E_HEADER"},
		{ErrRAM, "FD_E_RAM"}, {ErrOldImage, "FD_E_OLD"}, {ErrCorrupt, "FD_E_CORRUPT"},
		{ErrTrailingData, "FD_E_TRAILING"}, {ErrIncomplete, "FD_E_INCOMPLETE"}, {ErrNewImage, "FD_E_NEW_DIGEST"},
	} {
		if errors.Is(err, e.err) {
			return e.name
		}
	}
	return "unknown: " + err.Error()
}

// goApply is fdapply's loop with the Go applier: feed chunks until the
// first error, then Close.
func goApply(old, patch []byte, chunk int) ([]byte, error) {
	var out bytes.Buffer
	a := NewApplier(bytes.NewReader(old), int64(len(old)), &out, 0)
	for off := 0; off < len(patch); off += chunk {
		if _, err := a.Write(patch[off:min(off+chunk, len(patch))]); err != nil {
			return out.Bytes(), err
		}
	}
	return out.Bytes(), a.Close()
}

func TestCApplier(t *testing.T) {
	plain, _ := buildCApplier(t, false)
	san, sanitized := buildCApplier(t, true)
	t.Logf("sanitizers: %v", sanitized)

	t.Run("RoundTrip", func(t *testing.T) { testCApplierRoundTrip(t, plain, san) })
	t.Run("WrongOldImage", func(t *testing.T) { testCApplierWrongOld(t, san) })
	t.Run("Hostile", func(t *testing.T) { testCApplierHostile(t, san) })
}

// testCApplierRoundTrip rebuilds every corpus pair, plain and with the
// Thumb transform, in chunks of 1-1024 bytes, with and without saving and
// restoring the state.
func testCApplierRoundTrip(t *testing.T, plain, san *cApplier) {
	pairs := append(syntheticPairs(t), firmwarePairs(t)...)
	type run struct{ chunk, every int }
	runs := []run{{1, 0}, {7, 0}, {64, 0}, {512, 0}, {1024, 0}, {1, 97}, {7, 3}, {64, 1}, {1024, 1}}
	var jobs []cJob
	var want [][]byte
	for _, p := range pairs {
		for _, thumb := range []bool{false, true} {
			patch, err := CreateWith(p.old, p.new, Options{Thumb: thumb})
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range runs {
				jobs = append(jobs, cJob{fmt.Sprintf("%s thumb=%v", p.name, thumb), p.old, patch, r.chunk, r.every})
				want = append(want, p.new)
			}
		}
	}
	for _, c := range []*cApplier{plain, san} {
		res, err := c.runAll(jobs)
		if err != nil {
			t.Fatal(err)
		}
		for i, j := range jobs {
			where := fmt.Sprintf("%s, chunk %d, save every %d", j.name, j.chunk, j.every)
			if res[i].err != "" {
				t.Errorf("%s: %s", where, res[i].err)
			} else if !bytes.Equal(res[i].out, want[i]) {
				t.Errorf("%s: wrong %d-byte image", where, len(res[i].out))
			}
		}
	}
}

// testCApplierWrongOld checks that a wrong old image is refused before
// any byte of the new image is written.
func testCApplierWrongOld(t *testing.T, c *cApplier) {
	p := syntheticPairs(t)[5]
	patch := create(t, p)
	flipped := bytes.Clone(p.old)
	flipped[len(flipped)/2] ^= 1
	var jobs []cJob
	var want []string
	for _, tc := range []struct {
		name string
		old  []byte
		want string
	}{
		{"one bit differs", flipped, "FD_E_OLD_DIGEST"},
		{"one byte short", p.old[:len(p.old)-1], "FD_E_OLD_SIZE"},
		{"empty", nil, "FD_E_OLD_SIZE"},
	} {
		for _, chunk := range []int{1, 92, 93, 1024} {
			jobs = append(jobs, cJob{tc.name, tc.old, patch, chunk, 0})
			want = append(want, tc.want)
		}
	}
	res, err := c.runAll(jobs)
	if err != nil {
		t.Fatal(err)
	}
	for i, j := range jobs {
		if res[i].err != want[i] {
			t.Errorf("%s, chunk %d: got %q, want %s", j.name, j.chunk, res[i].err, want[i])
		}
		if len(res[i].out) != 0 {
			t.Errorf("%s, chunk %d: %d bytes written before the old image was refused", j.name, j.chunk, len(res[i].out))
		}
	}
}

// hostile is a patch to refuse (or, for a few, to accept as Go does).
type hostile struct {
	name       string
	old, patch []byte
	wantOK     bool // a valid patch, however odd
}

// rawHeader edits a copy of the patch's header bytes and re-signs it.
func rawHeader(patch []byte, f func(b []byte)) []byte {
	b := bytes.Clone(patch)
	f(b[:HeaderSize])
	binary.LittleEndian.PutUint32(b[88:], crc32.ChecksumIEEE(b[:88]))
	return b
}

// withBody puts body behind a valid header for old and new (new only
// gives the size and digest).
func withBody(old []byte, newSize uint32, newHash [32]byte, flags uint8, body []byte) []byte {
	h := Header{Flags: flags, OldSize: uint32(len(old)), NewSize: newSize, BodySize: uint32(len(body)),
		RAMBound: RAMBound, OldHash: sha256.Sum256(old), NewHash: newHash}
	return append(h.Marshal(), body...)
}

// craftBody codes a stream by hand with the generator's coder.
func craftBody(f func(e *rcEncoder, m *models, c *context)) []byte {
	e, m := newEncoder(), newModels()
	var c context
	f(e, m, &c)
	return e.finish()
}

// codeLen codes a bit length n (0-63) with an integer model's tree, as
// rcEncoder.uint does, without the value's bits.
func codeLen(e *rcEncoder, im *intModel, n int) {
	m := uint32(1)
	for i := 5; i >= 0; i-- {
		b := uint32(n>>uint(i)) & 1
		e.bit(&im[m], b)
		m = m<<1 | b
	}
}

func hostilePatches(t *testing.T) []hostile {
	rng := rand.New(rand.NewPCG(11, 12))
	var hs []hostile
	add := func(name string, old, patch []byte) { hs = append(hs, hostile{name: name, old: old, patch: patch}) }
	valid := func() { hs[len(hs)-1].wantOK = true }

	fuzzOld := bytes.Repeat([]byte("firmware-v1 "), 300)
	fuzzNew := append(bytes.Clone(fuzzOld[:1000]), []byte("patched code here")...)
	fuzzNew = append(fuzzNew, fuzzOld[1100:]...)
	syn := syntheticPairs(t)
	bases := []struct {
		name     string
		old, new []byte
		thumb    bool
	}{
		{"fuzz seed", fuzzOld, fuzzNew, false},
		{"scattered", syn[5].old, syn[5].new, false},
		{"one byte", syn[7].old, syn[7].new, false},
		{"empty old", syn[1].old, syn[1].new[:300], false},
		{"splice thumb", syn[6].old, syn[6].new, true},
	}
	for _, fw := range firmwarePairs(t)[:2] {
		bases = append(bases, struct {
			name     string
			old, new []byte
			thumb    bool
		}{fw.name, fw.old, fw.new, true})
	}

	for _, b := range bases {
		patch, err := CreateWith(b.old, b.new, Options{Thumb: b.thumb})
		if err != nil {
			t.Fatal(err)
		}
		body := len(patch) - HeaderSize
		add(b.name+" valid", b.old, patch)
		valid()
		// Bit flips all over the body, and every bit of its first and last bytes.
		for i := 0; i < 40; i++ {
			pos := HeaderSize + i*body/40
			q := bytes.Clone(patch)
			q[pos] ^= 1 << (i % 8)
			add(fmt.Sprintf("%s flip body %d", b.name, pos-HeaderSize), b.old, q)
		}
		for _, pos := range []int{0, 1, 2, 3, body - 2, body - 1} {
			if pos < 0 || pos >= body {
				continue
			}
			for bit := 0; bit < 8; bit++ {
				q := bytes.Clone(patch)
				q[HeaderSize+pos] ^= 1 << bit
				add(fmt.Sprintf("%s flip body %d bit %d", b.name, pos, bit), b.old, q)
			}
		}
		// Header bytes, with and without a valid CRC.
		for _, pos := range []int{0, 6, 7, 12, 16, 20, 56, 88} {
			q := bytes.Clone(patch)
			q[pos] ^= 0x10
			add(fmt.Sprintf("%s flip header %d", b.name, pos), b.old, q)
		}
		// Truncations, header unchanged.
		for _, n := range []int{0, 6, 91, 92, 95, HeaderSize + body/2, len(patch) - 5, len(patch) - 1} {
			if n >= 0 && n < len(patch) {
				add(fmt.Sprintf("%s truncated to %d", b.name, n), b.old, patch[:n])
			}
		}
		// Truncations and extensions of the body with body_size to match:
		// the decoder reads zeros past the end (at most 4).
		for k := 1; k <= 6 && k <= body; k++ {
			add(fmt.Sprintf("%s body short by %d", b.name, k), b.old,
				withHeader(patch[:len(patch)-k], func(h *Header) { h.BodySize -= uint32(k) }))
		}
		for _, k := range []int{1, 4, 200} {
			q := append(bytes.Clone(patch), make([]byte, k)...)
			add(fmt.Sprintf("%s body longer by %d", b.name, k), b.old,
				withHeader(q, func(h *Header) { h.BodySize += uint32(k) }))
		}
		add(b.name+" trailing byte", b.old, append(bytes.Clone(patch), 0))
		add(b.name+" trailing 100", b.old, append(bytes.Clone(patch), make([]byte, 100)...))
		// Hostile header fields, correctly signed.
		ns := uint32(len(b.new))
		for _, v := range []uint32{0, 1, ns - 1, ns + 1, 2 * ns, 1 << 20, 0xFFFFFFFF} {
			add(fmt.Sprintf("%s new_size %d", b.name, v), b.old, withHeader(patch, func(h *Header) { h.NewSize = v }))
		}
		for _, v := range []uint32{0, 3, 4, uint32(body) - 1, uint32(body) + 1, 0xFFFFFFFF} {
			add(fmt.Sprintf("%s body_size %d", b.name, v), b.old, withHeader(patch, func(h *Header) { h.BodySize = v }))
		}
		for _, v := range []uint32{0, RAMBound - 1, RAMBound + 1, 0xFFFFFFFF} {
			add(fmt.Sprintf("%s ram_bound %d", b.name, v), b.old, withHeader(patch, func(h *Header) { h.RAMBound = v }))
		}
		add(b.name+" old_size+1", b.old, withHeader(patch, func(h *Header) { h.OldSize++ }))
		add(b.name+" old hash", b.old, withHeader(patch, func(h *Header) { h.OldHash[0] ^= 1 }))
		add(b.name+" new hash", b.old, withHeader(patch, func(h *Header) { h.NewHash[31] ^= 1 }))
		for _, v := range []byte{0, 2} {
			add(fmt.Sprintf("%s version %d", b.name, v), b.old, rawHeader(patch, func(h []byte) { h[6] = v }))
		}
		for _, v := range []byte{FlagThumb, 2, 0x80} {
			add(fmt.Sprintf("%s flags %#x", b.name, v), b.old, rawHeader(patch, func(h []byte) { h[7] ^= v }))
		}
		add(b.name+" magic", b.old, rawHeader(patch, func(h []byte) { h[5] = 'B' }))
	}

	// Random bodies behind valid headers, as FuzzApply makes them.
	for i := 0; i < 300; i++ {
		n := rng.IntN(700)
		body := make([]byte, n)
		switch i % 4 {
		case 0, 1:
			for j := range body {
				body[j] = byte(rng.Uint32())
			}
		case 2:
			for j := range body {
				body[j] = 0xFF
			}
		case 3: // zeros: long runs of bit 0
		}
		newSize := rng.Uint32N(1 << 20)
		if i%3 == 0 {
			newSize = rng.Uint32N(5000)
		}
		add(fmt.Sprintf("random body %d (%d bytes, new %d)", i, n, newSize), fuzzOld,
			withBody(fuzzOld, newSize, [32]byte{}, uint8(i%2), body))
	}

	// Streams coded by hand, for each check of docs §2.3.
	old := bytes.Repeat([]byte{0x10, 0x20, 0x30, 0x40}, 16)
	crafted := func(name string, newSize int, newHash [32]byte, f func(e *rcEncoder, m *models, c *context)) {
		add("crafted "+name, old, withBody(old, uint32(newSize), newHash, 0, craftBody(f)))
	}
	none := [32]byte{}
	crafted("seek before the old image", 4, none, func(e *rcEncoder, m *models, c *context) { e.op(m, op{Seek: -1, Diff: 4}) })
	crafted("diff past the old image", 20, none, func(e *rcEncoder, m *models, c *context) { e.op(m, op{Seek: 50, Diff: 20}) })
	crafted("seek far past the old image", 1, none, func(e *rcEncoder, m *models, c *context) { e.op(m, op{Seek: 1 << 32, Extra: 1}) })
	crafted("extra past the new image", 4, none, func(e *rcEncoder, m *models, c *context) { e.op(m, op{Extra: 5}) })
	crafted("huge extra", 4, none, func(e *rcEncoder, m *models, c *context) { e.op(m, op{Extra: 1<<40 - 1}) })
	crafted("empty operation", 4, none, func(e *rcEncoder, m *models, c *context) { e.op(m, op{}) })
	for _, n := range []int{40, 41, 63} {
		crafted(fmt.Sprintf("seek of %d bits", n), 4, none, func(e *rcEncoder, m *models, c *context) {
			e.bit(&m.seekSign, 0)
			codeLen(e, &m.seekLen, n)
			if n <= maxIntBits {
				e.direct(0, n-1)
			}
			e.uint(&m.diffLen, 4)
			e.uint(&m.extraLen, 0)
		})
	}
	// docs §1 step 4: an empty new image has an empty body.
	add("empty new image with a body", old, withBody(old, 0, sha256.Sum256(nil), 0, []byte{1, 2, 3, 4, 5}))
	// A valid oddity both appliers must accept: a negative zero seek. And
	// a diff byte coded as 1 + 255, which both must refuse (docs §2.3).
	crafted("negative zero seek", 4, sha256.Sum256(old[:4]), func(e *rcEncoder, m *models, c *context) {
		e.bit(&m.seekSign, 1)
		e.uint(&m.seekLen, 0)
		e.uint(&m.diffLen, 4)
		e.uint(&m.extraLen, 0)
		for i := 0; i < 4; i++ {
			e.diffByte(m, c, 0, old[i])
		}
	})
	valid()
	crafted("diff byte 1+255", 4, sha256.Sum256(old[:4]), func(e *rcEncoder, m *models, c *context) {
		e.op(m, op{Diff: 4})
		e.bit(&m.zero[c.zeroRun], 1)
		e.tree(&m.diff[c.pos&3], 255)
		c.diffDone(0, old[0])
		for i := 1; i < 4; i++ {
			e.diffByte(m, c, 0, old[i])
		}
	})
	return hs
}

// testCApplierHostile runs every hostile patch through both appliers in
// two chunkings (one with state save/restore): the C applier must not
// crash, must write no more than new_size bytes (nothing at all when it
// refuses the header), and must agree with the Go applier.
func testCApplierHostile(t *testing.T, c *cApplier) {
	hs := hostilePatches(t)
	chunks := []int{1, 7, 64, 333, 1024}
	var jobs []cJob
	var from []hostile
	for i, h := range hs {
		jobs = append(jobs, cJob{h.name, h.old, h.patch, chunks[i%len(chunks)], 0},
			cJob{h.name, h.old, h.patch, 1 + i%13, 1 + i%5})
		from = append(from, h, h)
	}
	res, err := c.runAll(jobs)
	if err != nil {
		t.Fatal(err)
	}
	results := map[string]int{}
	for i, j := range jobs {
		h, r := from[i], res[i]
		results[r.err]++
		where := fmt.Sprintf("%s (chunk %d, save every %d)", j.name, j.chunk, j.every)
		if h.wantOK && r.err != "" {
			t.Errorf("%s: refused (%s), want accepted", where, r.err)
		}
		var newSize uint32
		if len(h.patch) >= 16 {
			newSize = binary.LittleEndian.Uint32(h.patch[12:])
		}
		if uint64(len(r.out)) > uint64(newSize) {
			t.Errorf("%s: wrote %d bytes, header declares %d", where, len(r.out), newSize)
		}
		switch r.err {
		case "FD_E_NOT_PATCH", "FD_E_VERSION", "FD_E_HEADER", "FD_E_RAM", "FD_E_OLD_SIZE", "FD_E_OLD_DIGEST":
			if len(r.out) != 0 {
				t.Errorf("%s: %s after writing %d bytes", where, r.err, len(r.out))
			}
		}

		goOut, goErr := goApply(h.old, h.patch, j.chunk)
		cName, goName := r.err, ""
		if goErr != nil {
			goName = goErrName(goErr)
		}
		if cName == "FD_E_OLD_SIZE" || cName == "FD_E_OLD_DIGEST" {
			cName = "FD_E_OLD"
		}
		if cName != goName {
			t.Errorf("%s: C applier %q, Go applier %q (%v)", where, r.err, goName, goErr)
		} else if goErr == nil && !bytes.Equal(r.out, goOut) {
			t.Errorf("%s: both accept, images differ", where)
		}
	}
	t.Logf("%d hostile patches, %d runs: %v", len(hs), len(jobs), results)
}
