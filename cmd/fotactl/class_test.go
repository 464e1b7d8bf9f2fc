package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/fotahub/fota/api"
)

func TestClassCommands(t *testing.T) {
	e, _ := newFirmwareEnv(t)

	r := e.run("class", "list").ok(t)
	if !strings.Contains(r.stdout, "No classes") {
		t.Errorf("empty list: %q", r.stdout)
	}

	r = e.run("class", "add", "nrf-a", "--profile", "raw", "--method", "push", "--block-size", "512", "--scheme", "coaps",
		"--deadline", "36h", "--success", "version, result").ok(t)
	want := "class nrf-a declared: raw, no deltas, method push, block size 512, scheme coaps, deadline 36h, success result,version"
	if strings.TrimSpace(r.stdout) != want {
		t.Errorf("add printed %q\nwant %q", r.stdout, want)
	}
	r = e.run("class", "add", "nrf-a", "--profile", "raw")
	if r.code != exitFailure || !strings.Contains(r.stderr, "already declared") || !strings.Contains(r.stderr, "HTTP 409") {
		t.Errorf("add of a declared class: exit %d, stderr %q", r.code, r.stderr)
	}
	r = e.run("class", "add", "nrf-a", "--profile", "raw", "--deadline", "2d", "--replace").ok(t)
	if !strings.Contains(r.stdout, "class nrf-a replaced: raw, no deltas, method auto, block size link, scheme auto, deadline 48h") {
		t.Errorf("replace printed %q", r.stdout)
	}
	r = e.run("class", "add", "sensor-a", "--delta", "--replace", "--json").ok(t)
	var v api.ClassView
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil || v.Name != "sensor-a" || v.Profile != "native" || !v.Delta ||
		!v.Declared || !reflect.DeepEqual(v.Success, []string{"result", "version"}) {
		t.Fatalf("add --replace --json of a new class: %v\n%s", err, r.stdout)
	}
	r = e.run("class", "add", "bad", "--method", "poll")
	if r.code != exitFailure || !strings.Contains(r.stderr, `method "poll" is not auto, pull or push`) || !strings.Contains(r.stderr, "HTTP 400") {
		t.Errorf("bad method: exit %d, stderr %q", r.code, r.stderr)
	}
	r = e.run("class", "add", "bad", "--profile", "raw", "--delta")
	if r.code != exitFailure || !strings.Contains(r.stderr, "no delta applier") {
		t.Errorf("raw with deltas: exit %d, stderr %q", r.code, r.stderr)
	}

	// An image of an undeclared class lists its class as default.
	e.run("image", "add", corpus+"v1.bin", "--version", "1.0.0", "--class", "gateway").ok(t)
	r = e.run("class", "list").ok(t)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 4 {
		t.Fatalf("list:\n%s", r.stdout)
	}
	wantCells := [][]string{
		{"NAME", "PROFILE", "DELTA", "METHOD", "BLOCK SIZE", "SCHEME", "DEADLINE", "SUCCESS", "SOURCE"},
		{"gateway", "native", "yes", "auto", "link", "auto", "default", "result,version", "default"},
		{"nrf-a", "raw", "no", "auto", "link", "auto", "48h", "result,version", "declared"},
		{"sensor-a", "native", "yes", "auto", "link", "auto", "default", "result,version", "declared"},
	}
	for i, cells := range wantCells {
		if got := strings.Fields(strings.ReplaceAll(lines[i], "BLOCK SIZE", "BLOCK_SIZE")); !reflect.DeepEqual(got,
			strings.Fields(strings.ReplaceAll(strings.Join(cells, " "), "BLOCK SIZE", "BLOCK_SIZE"))) {
			t.Errorf("list line %d: %q, want cells %q", i, lines[i], cells)
		}
	}
	if col := strings.Index(lines[0], "SOURCE"); strings.Index(lines[2], "declared") != col {
		t.Errorf("table not aligned:\n%s", r.stdout)
	}
	r = e.run("class", "list", "--json").ok(t)
	var list api.ClassList
	if err := json.Unmarshal([]byte(r.stdout), &list); err != nil || len(list.Classes) != 3 || list.Classes[0].Declared {
		t.Fatalf("list --json: %v\n%s", err, r.stdout)
	}

	r = e.run("class", "show", "nrf-a").ok(t)
	for _, s := range []string{"Name:", "nrf-a", "Profile:", "raw (the file as uploaded)", "Delta:", "no", "Block size:", "link",
		"Deadline:", "48h", "Success:", "result,version", "Declared:", "2025-03-01T11:59:00Z (1m ago)"} {
		if !strings.Contains(r.stdout, s) {
			t.Errorf("show lacks %q:\n%s", s, r.stdout)
		}
	}
	r = e.run("class", "show", "gateway").ok(t)
	for _, s := range []string{"native (fotad's signed packages)", "Delta:", "yes", "Deadline:", "default", "no: the default profile"} {
		if !strings.Contains(r.stdout, s) {
			t.Errorf("show of an undeclared class lacks %q:\n%s", s, r.stdout)
		}
	}
	r = e.run("class", "show", "nrf-a", "--json").ok(t)
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil || v.Deadline != "48h" || v.Profile != "raw" {
		t.Fatalf("show --json: %v\n%s", err, r.stdout)
	}

	// Raw images, and classes holding images.
	fw := filepath.Join(t.TempDir(), "zephyr.signed.bin")
	if err := os.WriteFile(fw, []byte("MCUboot-signed image"), 0o600); err != nil {
		t.Fatal(err)
	}
	r = e.run("image", "add", fw, "--version", "2.0.0", "--class", "nrf-a").ok(t)
	if !strings.Contains(r.stdout, "image 2.0.0 (class nrf-a, raw) added") {
		t.Errorf("raw image add printed %q", r.stdout)
	}
	r = e.run("class", "rm", "nrf-a")
	if r.code != exitFailure || !strings.Contains(r.stderr, "remove them first") || !strings.Contains(r.stderr, "HTTP 409") {
		t.Errorf("rm of a class with images: exit %d, stderr %q", r.code, r.stderr)
	}
	r = e.run("class", "add", "nrf-a", "--replace")
	if r.code != exitFailure || !strings.Contains(r.stderr, "HTTP 409") {
		t.Errorf("native replace of a class with raw images: exit %d, stderr %q", r.code, r.stderr)
	}
	r = e.run("image", "list").ok(t)
	if !strings.Contains(r.stdout, "FORMAT") || !strings.Contains(r.stdout, "raw") {
		t.Errorf("image list:\n%s", r.stdout)
	}
	r = e.run("image", "show", "2.0.0").ok(t)
	if !strings.Contains(r.stdout, "raw (delivered as uploaded)") {
		t.Errorf("image show:\n%s", r.stdout)
	}
	e.run("image", "rm", digestOf(t, fw)).ok(t)
	r = e.run("class", "rm", "nrf-a").ok(t)
	if strings.TrimSpace(r.stdout) != "class nrf-a removed" {
		t.Errorf("rm printed %q", r.stdout)
	}
	r = e.run("class", "rm", "nrf-a")
	if r.code != exitFailure || !strings.Contains(r.stderr, "HTTP 404") {
		t.Errorf("rm twice: exit %d, stderr %q", r.code, r.stderr)
	}

	// --format raw declares a class nobody declared raw.
	r = e.run("image", "add", fw, "--version", "1.0.0", "--class", "stm", "--format", "raw").ok(t)
	if !strings.Contains(r.stdout, "(class stm, raw) added") {
		t.Errorf("add --format raw printed %q", r.stdout)
	}
	r = e.run("class", "show", "stm").ok(t)
	if !strings.Contains(r.stdout, "raw (the file as uploaded)") || strings.Contains(r.stdout, "default profile") {
		t.Errorf("class of a raw upload:\n%s", r.stdout)
	}
	r = e.run("image", "add", corpus+"v2.bin", "--version", "1.0.1", "--class", "stm", "--format", "native")
	if r.code != exitFailure || !strings.Contains(r.stderr, `class "stm" takes raw images`) {
		t.Errorf("native image for a raw class: exit %d, stderr %q", r.code, r.stderr)
	}
}

func TestClassUsageErrors(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"class"}, "missing verb: add, list, show or rm"},
		{[]string{"class", "paint"}, "try add, list, show or rm"},
		{[]string{"class", "add"}, "missing NAME"},
		{[]string{"class", "add", "a", "b"}, `unexpected argument "b"`},
		{[]string{"class", "add", "a", "--deadline", "soon"}, "want 90s, 10m, 2h or 7d"},
		{[]string{"class", "add", "a", "--block-size", "big"}, "invalid value"},
		{[]string{"class", "show"}, "missing NAME"},
		{[]string{"class", "rm"}, "usage: fotactl class rm NAME"},
		{[]string{"class", "list", "extra"}, `unexpected argument "extra"`},
	} {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			r := runCLI(t, map[string]string{tokenEnv: testToken}, tt.args...)
			if r.code != exitUsage || !strings.Contains(r.stderr, tt.want) {
				t.Errorf("exit %d, stderr %q; want %d with %q", r.code, r.stderr, exitUsage, tt.want)
			}
		})
	}

	r := runCLI(t, nil, "class", "add", "-h").ok(t)
	for _, s := range []string{"usage: fotactl class add NAME", "--profile PROFILE", "--delta", "--block-size N", "--deadline D",
		"--success CHECKS", "--replace"} {
		if !strings.Contains(r.stdout, s) {
			t.Errorf("class add -h lacks %q:\n%s", s, r.stdout)
		}
	}
	r = runCLI(t, nil, "help").ok(t)
	for _, s := range []string{"class add NAME", "class list", "class show NAME", "class rm NAME", "--format native|raw"} {
		if !strings.Contains(r.stdout, s) {
			t.Errorf("help lacks %q", s)
		}
	}
}
