package api

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
)

func TestLoadOrCreateToken(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	tok, path, created, err := LoadOrCreateToken(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !created || path != filepath.Join(dir, TokenFile) {
		t.Fatalf("created %v path %s", created, path)
	}
	if len(tok) != 64 || strings.Trim(tok, "0123456789abcdef") != "" {
		t.Fatalf("token %q is not 32 bytes of hex", tok)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600 {
		t.Errorf("token file mode %04o, want 0600", fi.Mode().Perm())
	}
	if di, _ := os.Stat(dir); runtime.GOOS != "windows" && di.Mode().Perm() != 0o700 {
		t.Errorf("data dir mode %04o, want 0700", di.Mode().Perm())
	}

	tok2, path2, created2, err := LoadOrCreateToken(dir)
	if err != nil {
		t.Fatal(err)
	}
	if created2 || tok2 != tok || path2 != path {
		t.Fatalf("second call: token changed %v, created %v, path %s", tok2 != tok, created2, path2)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("data dir holds %d entries, want only the token file", len(entries))
	}
}

func TestLoadOrCreateTokenConcurrent(t *testing.T) {
	dir := t.TempDir()
	const n = 8
	tokens := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tok, _, _, err := LoadOrCreateToken(dir)
			if err != nil {
				t.Error(err)
			}
			tokens[i] = tok
		}()
	}
	wg.Wait()
	for _, tok := range tokens[1:] {
		if tok != tokens[0] {
			t.Fatalf("concurrent callers got different tokens")
		}
	}
}

func TestLoadTokenExisting(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no Unix permissions")
	}
	tests := []struct {
		name    string
		content string
		mode    os.FileMode
		want    string // token, or "" for an error
		errHas  string
	}{
		{"operator token", "my-own-token-of-some-length\n", 0o600, "my-own-token-of-some-length", ""},
		{"owner read only", "my-own-token-of-some-length", 0o400, "my-own-token-of-some-length", ""},
		{"group readable", "my-own-token-of-some-length\n", 0o640, "", "chmod 600"},
		{"world readable", "my-own-token-of-some-length\n", 0o644, "", "0644"},
		{"too short", "short\n", 0o600, "", "fewer than"},
		{"empty", "", 0o600, "", "fewer than"},
		{"two lines", "my-own-token-of-some-length\nsecond-line-here\n", 0o600, "", "one line"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, TokenFile)
			if err := os.WriteFile(path, []byte(tt.content), tt.mode); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, tt.mode); err != nil { // umask may have narrowed it
				t.Fatal(err)
			}
			tok, _, created, err := LoadOrCreateToken(dir)
			if tt.want != "" {
				if err != nil || tok != tt.want || created {
					t.Fatalf("got %q, created %v, err %v", tok, created, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.errHas) {
				t.Fatalf("err %v, want it to contain %q", err, tt.errHas)
			}
			if b, _ := os.ReadFile(path); string(b) != tt.content {
				t.Error("the bad token file was modified")
			}
		})
	}
}

func TestLoadTokenNotAFile(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, TokenFile), 0o700); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := LoadOrCreateToken(dir); err == nil || !strings.Contains(err.Error(), "regular file") {
		t.Fatalf("err %v", err)
	}
}
