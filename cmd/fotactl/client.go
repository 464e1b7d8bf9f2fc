package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/fotahub/fota/api"
)

// tokenEnv is the environment variable holding the API token.
const tokenEnv = "FOTA_TOKEN"

// resolveToken finds the API token: --token, then $FOTA_TOKEN, then the
// token file in the data directory.
func (c *cli) resolveToken() (string, error) {
	if t := strings.TrimSpace(c.global.token); t != "" {
		return t, nil
	}
	if t := strings.TrimSpace(c.getenv(tokenEnv)); t != "" {
		return t, nil
	}
	path := filepath.Join(c.global.data, api.TokenFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("no API token: pass --token, set %s, or point --data at fotad's data directory (%s does not exist)",
			tokenEnv, path)
	}
	if err != nil {
		return "", fmt.Errorf("read API token: %w", err)
	}
	t := strings.TrimSpace(string(b))
	if t == "" {
		return "", fmt.Errorf("read API token: %s is empty", path)
	}
	return t, nil
}

// apiClient calls the fotad API.
type apiClient struct {
	base  *url.URL
	token string
	http  *http.Client
}

func (c *cli) client() (*apiClient, error) {
	base, err := url.Parse(strings.TrimRight(c.global.server, "/"))
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, usageErrorf("fotactl", "--server %q is not an http:// or https:// URL", c.global.server)
	}
	if c.global.timeout <= 0 {
		return nil, usageErrorf("fotactl", "--timeout must be positive")
	}
	token, err := c.resolveToken()
	if err != nil {
		return nil, err
	}
	return &apiClient{
		base:  base,
		token: token,
		http:  &http.Client{Timeout: c.global.timeout, Transport: c.transport},
	}, nil
}

// httpError is an error answer of the API.
type httpError struct {
	status int
	msg    string
}

func (e *httpError) Error() string {
	msg := fmt.Sprintf("%s (HTTP %d)", e.msg, e.status)
	if e.status == http.StatusUnauthorized {
		msg += "; check --token, $" + tokenEnv + " or --data"
	}
	return msg
}

// do sends a request with a JSON body (when body is not nil) and returns
// the response body of a 2xx answer; other answers become an *httpError
// carrying the server's message.
func (a *apiClient) do(method, path string, body any) ([]byte, error) {
	var rd io.Reader
	contentType := ""
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd, contentType = bytes.NewReader(b), "application/json"
	}
	_, b, err := a.send(method, path, rd, contentType)
	return b, err
}

// send sends a request with a raw body (nil for none) of the content type
// and returns the status and body of a 2xx answer; other answers become an
// *httpError carrying the server's message.
func (a *apiClient) send(method, path string, body io.Reader, contentType string) (int, []byte, error) {
	req, err := http.NewRequest(method, strings.TrimRight(a.base.String(), "/")+path, body)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+a.token)
	req.Header.Set("Accept", "application/json")
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := a.http.Do(req)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return 0, nil, fmt.Errorf("%s %s: %w (is fotad running there? see --server)", method, a.base.Redacted(), err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return 0, nil, fmt.Errorf("%s %s: read response: %w", method, path, err)
	}
	if resp.StatusCode/100 == 2 {
		return resp.StatusCode, b, nil
	}
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(b, &e) != nil || e.Error == "" {
		e.Error = "server answered " + resp.Status
	}
	return 0, nil, &httpError{status: resp.StatusCode, msg: e.Error}
}

// getJSON fetches path and decodes it into v, returning the raw body too.
func (a *apiClient) getJSON(path string, v any) ([]byte, error) {
	b, err := a.do(http.MethodGet, path, nil)
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return nil, fmt.Errorf("GET %s: decode response: %w", path, err)
	}
	return b, nil
}

func devicePath(endpoint string) string { return "/api/v1/devices/" + url.PathEscape(endpoint) }

// printJSON writes an API body indented.
func (c *cli) printJSON(body []byte) error {
	var buf bytes.Buffer
	if err := json.Indent(&buf, bytes.TrimSpace(body), "", "  "); err != nil {
		return fmt.Errorf("server sent invalid JSON: %w", err)
	}
	buf.WriteByte('\n')
	_, err := c.stdout.Write(buf.Bytes())
	return err
}

// fetch GETs path into v for a list or show command. With asJSON it
// prints the API's JSON instead and reports printed, so the caller is
// done; what names the request in an error ("list images").
func (c *cli) fetch(path string, v any, asJSON bool, what string) (printed bool, err error) {
	client, err := c.client()
	if err != nil {
		return false, err
	}
	body, err := client.getJSON(path, v)
	if err != nil {
		return false, fmt.Errorf("%s: %w", what, err)
	}
	if asJSON {
		return true, c.printJSON(body)
	}
	return false, nil
}
