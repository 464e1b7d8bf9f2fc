package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const corpus = "../../delivery/delta/testdata/firmware/"

func TestDeltaCreateAndApply(t *testing.T) {
	dir := t.TempDir()
	old, new := corpus+"v2.bin", corpus+"v3.bin"
	want, err := os.ReadFile(new)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, format string }{
		{"native", "native"}, {"native thumb", "native"}, {"pelion", "pelion"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			patch := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-")+".patch")
			args := []string{"delta", "create", "--old", old, "--new", new, "--out", patch, "--format", tc.format}
			if strings.Contains(tc.name, "thumb") {
				args = append(args, "--thumb")
			}
			r := runCLI(t, nil, args...).ok(t)
			if !strings.Contains(r.stdout, "% of the 19452-byte new image") || !strings.Contains(r.stdout, "RAM bound") {
				t.Fatalf("create printed %q", r.stdout)
			}
			out := filepath.Join(dir, tc.name+".bin")
			runCLI(t, nil, "delta", "apply", "--old", old, "--patch", patch, "--out", out).ok(t)
			got, err := os.ReadFile(out)
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("rebuilt image differs (%v)", err)
			}
		})
	}
}

func TestDeltaApplyRefusesWrongImages(t *testing.T) {
	dir := t.TempDir()
	patch, out := filepath.Join(dir, "p"), filepath.Join(dir, "out.bin")
	runCLI(t, nil, "delta", "create", "--old", corpus+"v1.bin", "--new", corpus+"v2.bin", "--out", patch).ok(t)
	if r := runCLI(t, nil, "delta", "apply", "--old", corpus+"v3.bin", "--patch", patch, "--out", out); r.code == exitOK {
		t.Fatal("applied a patch to the wrong old image")
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Fatal("a failed apply left an output file")
	}
	pel := filepath.Join(dir, "pel")
	runCLI(t, nil, "delta", "create", "--old", corpus+"v1.bin", "--new", corpus+"v2.bin", "--out", pel, "--format", "pelion").ok(t)
	if r := runCLI(t, nil, "delta", "apply", "--old", corpus+"v1.bin", "--patch", pel, "--out", out,
		"--new-sha256", strings.Repeat("00", 32)); r.code == exitOK {
		t.Fatal("accepted a Pelion rebuild with the wrong digest")
	}
	if r := runCLI(t, nil, "delta", "create", "--old", corpus+"v1.bin", "--new", corpus+"v2.bin", "--out", pel, "--format", "zip"); r.code != exitUsage {
		t.Fatalf("unknown format: exit %d", r.code)
	}
}
