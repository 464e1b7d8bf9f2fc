package api

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// browser is a console user: the cookie fotad set and the CSRF token it
// gave, sent the way the console's pages send them.
type browser struct {
	f      *fixture
	cookie *http.Cookie
	csrf   string
	origin string // the Origin header of changes; "" sends none
}

func (b *browser) do(method, path, body string, csrf string) response {
	b.f.t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if b.cookie != nil {
		req.AddCookie(b.cookie)
	}
	if csrf != "" {
		req.Header.Set(csrfHeader, csrf)
	}
	if b.origin != "" {
		req.Header.Set("Origin", b.origin)
	}
	rec := httptest.NewRecorder()
	b.f.handler.ServeHTTP(rec, req)
	return response{rec.Code, rec.Header(), rec.Body.Bytes()}
}

// signIn posts the token and keeps the session the answer sets.
func (b *browser) signIn(token string) response {
	b.f.t.Helper()
	r := b.do("POST", "/console/session", `{"token":"`+token+`"}`, "")
	if r.status == http.StatusOK {
		cookies := (&http.Response{Header: r.header}).Cookies()
		if len(cookies) != 1 {
			b.f.t.Fatalf("sign-in set %d cookies", len(cookies))
		}
		b.cookie = cookies[0]
		b.csrf = decode[SessionView](b.f.t, r.body).CSRF
	}
	return r
}

func TestConsoleAssetsArePublicWithPolicy(t *testing.T) {
	f := newFixture(t)
	for _, p := range []string{"/console/", "/console/app.js", "/console/app.css"} {
		r := f.doAuth("GET", p, "", "")
		f.mustStatus(r, http.StatusOK)
		if csp := r.header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || !strings.Contains(csp, "frame-ancestors 'none'") {
			t.Errorf("%s: Content-Security-Policy %q", p, csp)
		}
		if r.header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: no nosniff", p)
		}
	}
	r := f.doAuth("GET", "/console/", "", "")
	if !strings.Contains(string(r.body), `src="app.js"`) || strings.Contains(string(r.body), "<script>") {
		t.Errorf("index.html must load app.js and have no inline script:\n%s", r.body)
	}
	r = f.doAuth("GET", "/", "", "")
	f.mustStatus(r, http.StatusFound)
	if loc := r.header.Get("Location"); loc != "/console/" {
		t.Errorf("/ redirects to %q", loc)
	}
}

func TestConsoleSignIn(t *testing.T) {
	f := newFixture(t)
	b := &browser{f: f}

	t.Run("wrong token refused, no cookie", func(t *testing.T) {
		r := b.signIn(strings.Repeat("x", len(testToken)))
		f.mustStatus(r, http.StatusUnauthorized)
		if r.header.Get("Set-Cookie") != "" {
			t.Errorf("a wrong token got a cookie: %s", r.header.Get("Set-Cookie"))
		}
		f.mustStatus(b.do("GET", "/console/session", "", ""), http.StatusUnauthorized)
		f.mustStatus(b.do("GET", "/api/v1/devices", "", ""), http.StatusUnauthorized)
	})
	t.Run("sign-in from another site refused", func(t *testing.T) {
		evil := &browser{f: f, origin: "http://evil.example"}
		f.mustStatus(evil.signIn(testToken), http.StatusForbidden)
	})

	r := b.signIn(testToken)
	f.mustStatus(r, http.StatusOK)
	c := b.cookie
	if !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/" || c.MaxAge <= 0 {
		t.Errorf("cookie %+v: want HttpOnly, SameSite=Strict, Path=/ and a lifetime", c)
	}
	if strings.Contains(c.Value, testToken) || len(c.Value) < 32 || len(b.csrf) < 32 {
		t.Errorf("cookie %q and CSRF %q: want random values unrelated to the token", c.Value, b.csrf)
	}
	if strings.Contains(f.logs.String(), testToken) || strings.Contains(f.logs.String(), c.Value) {
		t.Error("the token or the session reached the log")
	}

	t.Run("session reads", func(t *testing.T) {
		f.mustStatus(b.do("GET", "/api/v1/devices", "", ""), http.StatusOK)
		s := decode[SessionView](t, b.do("GET", "/console/session", "", "").body)
		if s.CSRF != b.csrf || !s.Expires.Equal(testNow.Add(sessionLifetime)) {
			t.Errorf("session %+v", s)
		}
	})
	body := `{"endpoint":"ep1","psk_identity":"id1","psk_key":"00112233"}`
	t.Run("change without CSRF refused", func(t *testing.T) {
		r := b.do("POST", "/api/v1/devices", body, "")
		f.mustStatus(r, http.StatusForbidden)
		if !strings.Contains(r.errorMessage(t), "CSRF") {
			t.Errorf("error %q does not name CSRF", r.errorMessage(t))
		}
		f.mustStatus(b.do("POST", "/api/v1/devices", body, strings.Repeat("0", len(b.csrf))), http.StatusForbidden)
		if _, err := f.devices.Device(t.Context(), "ep1"); err == nil {
			t.Fatal("the refused change was made")
		}
	})
	t.Run("change from another site refused", func(t *testing.T) {
		evil := &browser{f: f, cookie: b.cookie, origin: "http://evil.example"}
		f.mustStatus(evil.do("POST", "/api/v1/devices", body, b.csrf), http.StatusForbidden)
	})
	t.Run("change with CSRF", func(t *testing.T) {
		same := &browser{f: f, cookie: b.cookie, origin: "http://example.com"} // httptest's Host
		f.mustStatus(same.do("POST", "/api/v1/devices", body, b.csrf), http.StatusCreated)
	})
	t.Run("bearer token needs no CSRF", func(t *testing.T) {
		f.mustStatus(f.do("DELETE", "/api/v1/devices/ep1", ""), http.StatusNoContent)
	})
	t.Run("sign-out needs CSRF and ends the session", func(t *testing.T) {
		f.mustStatus(b.do("DELETE", "/console/session", "", ""), http.StatusForbidden)
		r := b.do("DELETE", "/console/session", "", b.csrf)
		f.mustStatus(r, http.StatusNoContent)
		if !strings.Contains(r.header.Get("Set-Cookie"), "Max-Age=0") {
			t.Errorf("sign-out Set-Cookie %q does not clear the cookie", r.header.Get("Set-Cookie"))
		}
		f.mustStatus(b.do("GET", "/api/v1/devices", "", ""), http.StatusUnauthorized)
	})
}

func TestConsoleSessionExpires(t *testing.T) {
	f := newFixture(t)
	b := &browser{f: f}
	f.mustStatus(b.signIn(testToken), http.StatusOK)
	f.srv.now = func() time.Time { return testNow.Add(sessionLifetime) }
	f.mustStatus(b.do("GET", "/api/v1/devices", "", ""), http.StatusUnauthorized)
	f.mustStatus(b.do("GET", "/console/session", "", ""), http.StatusUnauthorized)
}

func TestConsoleSessionsBounded(t *testing.T) {
	var ss sessions
	first, _ := ss.create(testNow)
	for range maxSessions + 10 {
		ss.create(testNow.Add(time.Second))
	}
	if n := len(ss.byID); n > maxSessions {
		t.Fatalf("%d sessions kept, at most %d", n, maxSessions)
	}
	req := httptest.NewRequest("GET", "/", nil)
	req.AddCookie(&http.Cookie{Name: sessionCookie, Value: first})
	if _, ok := ss.lookup(req, testNow.Add(time.Second)); ok {
		t.Error("the oldest session survived eviction")
	}
}
