package api

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// TokenFile is the name of the API token file in fotad's data directory.
const TokenFile = "api-token"

// LoadOrCreateToken returns the API token kept in <dataDir>/api-token and
// the file's path. When the file is missing it creates the directory (0700)
// and the file (0600) holding 32 random bytes in hex, and reports created.
//
// An existing file is used as it is, so an operator may put a token of
// their own there (at least MinTokenLength characters, one line), or a
// symbolic link to a mounted secret. It must be a regular file that neither
// group nor others can access: a token file
// with looser permissions is refused rather than fixed, since the token
// may already have leaked and should be replaced.
//
// Creation is atomic: the token is written to a temporary file and linked
// into place, so concurrent callers and crashes never leave a partial file,
// and a file that appears meanwhile wins.
func LoadOrCreateToken(dataDir string) (token, path string, created bool, err error) {
	path = filepath.Join(dataDir, TokenFile)
	token, err = readToken(path)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return token, path, false, err
	}

	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return "", path, false, fmt.Errorf("create api token: %w", err)
	}
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", path, false, fmt.Errorf("create api token: %w", err)
	}
	token = hex.EncodeToString(raw[:])

	tmp, err := os.CreateTemp(dataDir, "."+TokenFile+"-*")
	if err != nil {
		return "", path, false, fmt.Errorf("create api token: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return "", path, false, fmt.Errorf("create api token: %w", err)
	}
	if _, err := tmp.WriteString(token + "\n"); err != nil {
		tmp.Close()
		return "", path, false, fmt.Errorf("create api token: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return "", path, false, fmt.Errorf("create api token: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return "", path, false, fmt.Errorf("create api token: %w", err)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			// Another process created it first: use theirs.
			token, err = readToken(path)
			return token, path, false, err
		}
		return "", path, false, fmt.Errorf("create api token: %w", err)
	}
	syncDir(dataDir)
	return token, path, true, nil
}

func readToken(path string) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("read api token: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return "", fmt.Errorf("read api token: %s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 && runtime.GOOS != "windows" {
		return "", fmt.Errorf("read api token: %s has mode %04o, open to group or others; "+
			"replace the token (delete the file to have a new one made) or chmod 600 it", path, perm)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read api token: %w", err)
	}
	token := strings.TrimSpace(string(b))
	switch {
	case len(token) < MinTokenLength:
		return "", fmt.Errorf("read api token: %s holds fewer than %d characters", path, MinTokenLength)
	case strings.ContainsAny(token, " \t\r\n"):
		return "", fmt.Errorf("read api token: %s must hold the token on one line", path)
	}
	return token, nil
}

// syncDir makes a new directory entry durable; failure only risks
// recreating the token after a crash, so it is not reported.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
}
