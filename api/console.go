package api

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/hex"
	"io/fs"
	"net/http"
	"net/url"
	"sync"
	"time"
)

// The web console: static assets in api/console, embedded in the binary
// and served at /console/ without authentication (they hold no data);
// everything they show comes from /api/v1 behind the token or a console
// session.
//
// A person signs in once with the admin token (POST /console/session) and
// gets a session cookie: random, HttpOnly (scripts cannot read it),
// SameSite=Strict (other sites' pages cannot send it) and Secure when the
// listener speaks TLS. With the cookie comes a CSRF token, which the
// console sends as X-CSRF-Token on every request that changes something;
// a cookie-authenticated change without it is refused with 403, as is one
// whose Origin is another site. Sessions live in memory: a restart of fotad
// signs everybody out.

//go:embed console
var consoleFiles embed.FS

const (
	// sessionCookie names the console's session cookie.
	sessionCookie = "fota_session"
	// csrfHeader carries the session's CSRF token on changes.
	csrfHeader = "X-CSRF-Token"
	// sessionLifetime is how long a sign-in lasts.
	sessionLifetime = 12 * time.Hour
	// maxSessions bounds the sessions kept; signing in beyond it ends the
	// oldest, so a script signing in in a loop cannot grow memory.
	maxSessions = 1024
)

// contentSecurityPolicy lets pages run only the console's own scripts and
// styles, talk only to fotad, and never be framed.
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// sessions are the console's signed-in browsers, by the SHA-256 of their
// cookie, so the map holds no usable cookie value.
type sessions struct {
	mu   sync.Mutex
	byID map[[sha256.Size]byte]*session
}

type session struct {
	csrf    string
	expires time.Time
}

// SessionView is the body of GET and POST /console/session.
type SessionView struct {
	CSRF    string    `json:"csrf"`
	Expires time.Time `json:"expires"`
}

// signInRequest is the body of POST /console/session.
type signInRequest struct {
	Token string `json:"token"`
}

func randomHex() string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		// crypto/rand does not fail on Linux; a console without sessions
		// is better than one with guessable ones.
		panic("api: crypto/rand: " + err.Error())
	}
	return hex.EncodeToString(b[:])
}

// create starts a session and returns its cookie value.
func (ss *sessions) create(now time.Time) (string, session) {
	id := randomHex()
	sess := &session{csrf: randomHex(), expires: now.Add(sessionLifetime)}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.byID == nil {
		ss.byID = map[[sha256.Size]byte]*session{}
	}
	if len(ss.byID) >= maxSessions {
		ss.evict(now)
	}
	ss.byID[sha256.Sum256([]byte(id))] = sess
	return id, *sess
}

// evict drops the expired sessions, and the oldest if none had expired.
func (ss *sessions) evict(now time.Time) {
	var oldest [sha256.Size]byte
	var oldestExp time.Time
	for k, s := range ss.byID {
		if !now.Before(s.expires) {
			delete(ss.byID, k)
			continue
		}
		if oldestExp.IsZero() || s.expires.Before(oldestExp) {
			oldest, oldestExp = k, s.expires
		}
	}
	if len(ss.byID) >= maxSessions {
		delete(ss.byID, oldest)
	}
}

// lookup returns the live session of the request's cookie.
func (ss *sessions) lookup(r *http.Request, now time.Time) (session, bool) {
	c, err := r.Cookie(sessionCookie)
	if err != nil || c.Value == "" {
		return session{}, false
	}
	key := sha256.Sum256([]byte(c.Value))
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s, ok := ss.byID[key]
	if !ok {
		return session{}, false
	}
	if !now.Before(s.expires) {
		delete(ss.byID, key)
		return session{}, false
	}
	return *s, true
}

// end forgets the request's session.
func (ss *sessions) end(r *http.Request) {
	if c, err := r.Cookie(sessionCookie); err == nil {
		ss.mu.Lock()
		delete(ss.byID, sha256.Sum256([]byte(c.Value)))
		ss.mu.Unlock()
	}
}

// validCSRF reports whether the request carries the session's CSRF token.
func (s session) validCSRF(r *http.Request) bool {
	got := r.Header.Get(csrfHeader)
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(s.csrf)) == 1
}

// sameOrigin reports whether a browser request comes from fotad's own
// pages: its Origin, when the browser sends one, names this host.
// Browsers send Origin on every cross-site POST, PUT and DELETE.
func sameOrigin(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	return err == nil && u.Host == r.Host
}

// safeMethod reports whether the method only reads (RFC 9110, 9.2.1).
func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// consolePublic reports whether the request may be served without a
// token or session: the console's assets, and signing in.
func consolePublic(r *http.Request) bool {
	p := r.URL.Path
	switch {
	case p == "/" || p == "/healthz":
		return true
	case p == "/console/session":
		return r.Method != http.MethodDelete
	case len(p) >= len("/console/") && p[:len("/console/")] == "/console/":
		return safeMethod(r.Method)
	}
	return false
}

func (s *Server) routeConsole(mux *http.ServeMux) {
	assets, err := fs.Sub(consoleFiles, "console")
	if err != nil {
		panic("api: embedded console: " + err.Error()) // the embed pattern names it
	}
	files := http.StripPrefix("/console/", http.FileServerFS(assets))
	mux.Handle("GET /console/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Revalidate each time: a new fotad may bring new assets.
		w.Header().Set("Cache-Control", "no-cache")
		files.ServeHTTP(w, r)
	}))
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/console/", http.StatusFound)
	})
	mux.HandleFunc("GET /console/session", s.showSession)
	mux.HandleFunc("POST /console/session", s.signIn)
	mux.HandleFunc("DELETE /console/session", s.signOut)
}

func (s *Server) showSession(w http.ResponseWriter, r *http.Request) {
	sess, ok := s.sessions.lookup(r, s.now())
	if !ok {
		writeError(w, http.StatusUnauthorized, "not signed in")
		return
	}
	writeJSON(w, http.StatusOK, SessionView{CSRF: sess.csrf, Expires: sess.expires.UTC()})
}

// signIn trades the admin token for a session cookie.
func (s *Server) signIn(w http.ResponseWriter, r *http.Request) {
	if !sameOrigin(r) {
		writeError(w, http.StatusForbidden, "sign-in from another site refused")
		return
	}
	var req signInRequest
	if !decodeBody(w, r, &req, "a sign-in request", "token") {
		return
	}
	if !s.validToken(req.Token) {
		s.log.Warn().Str("remote", r.RemoteAddr).Msg("console sign-in with a wrong token")
		writeError(w, http.StatusUnauthorized, "wrong token: use the admin token from fotad's data directory (api-token)")
		return
	}
	id, sess := s.sessions.create(s.now())
	http.SetCookie(w, &http.Cookie{
		Name: sessionCookie, Value: id, Path: "/",
		MaxAge: int(sessionLifetime / time.Second), HttpOnly: true,
		Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode,
	})
	s.log.Info().Str("remote", r.RemoteAddr).Msg("console sign-in")
	writeJSON(w, http.StatusOK, SessionView{CSRF: sess.csrf, Expires: sess.expires.UTC()})
}

// signOut ends the session; authenticate has checked its CSRF token.
func (s *Server) signOut(w http.ResponseWriter, r *http.Request) {
	s.sessions.end(r)
	http.SetCookie(w, &http.Cookie{
		Name: sessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true,
		Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode,
	})
	w.WriteHeader(http.StatusNoContent)
}

// securityHeaders are sent with every response: the console's pages get
// their policy, and API replies opened in a browser are never run or
// framed.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		next.ServeHTTP(w, r)
	})
}
