package api

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/pprof"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"

	"github.com/fotahub/fota/coap"
	"github.com/fotahub/fota/lwm2m"
)

// Registrations is the live registration table the API reads.
type Registrations interface {
	// Registrations returns every live registration.
	Registrations() []lwm2m.Registration
	// Lookup returns the registration of the endpoint, if it is registered.
	Lookup(endpoint string) (lwm2m.Registration, bool)
	// Count returns the number of live registrations.
	Count() int
}

// TransportStats gives the transport's counters for /metrics.
type TransportStats interface {
	Stats() coap.Stats
}

// MinTokenLength is the shortest API token New accepts.
const MinTokenLength = 16

// Config wires a Server to the rest of fotad. Every field is required
// except Operations, Images, Packages, Classes, Updates, History, Campaigns,
// Inventory and Logger; the zero Logger discards everything.
type Config struct {
	Devices       lwm2m.DeviceStore
	Registrations Registrations
	Transport     TransportStats
	// Operations sends LwM2M operations to devices, for the operation,
	// ticket, queue, observe and send routes; see OperatorOperations.
	// When nil those routes answer 503 "operations not enabled".
	Operations Operations
	// Images keeps firmware images, for the /api/v1/images routes; when nil
	// they answer 503 "firmware images not enabled".
	Images Images
	// Packages makes signed packages, for /api/v1/packages and
	// /api/v1/signing-key; when nil they answer 503 "firmware packages not
	// enabled". A *firmware.Service is both Images and Packages.
	Packages Packages
	// Classes declares device classes, for the /api/v1/classes routes;
	// when nil they answer 503 "device classes not enabled". A
	// *firmware.Service is one.
	Classes Classes
	// Updates runs firmware updates of devices, for the
	// /api/v1/devices/{endpoint}/update routes; when nil they answer 503
	// "firmware updates not enabled". A *update.Driver is one.
	Updates Updates
	// History keeps devices' earlier updates, for GET
	// /api/v1/devices/{endpoint}/updates (with Updates); when nil that
	// route lists only the current or last update. A *store.DB is one.
	History UpdateHistory
	// Campaigns runs update campaigns, for the /api/v1/campaigns routes
	// and the fota_campaign_* metrics; when nil the routes answer 503
	// "campaigns not enabled". A *campaign.Manager is one.
	Campaigns Campaigns
	// Inventory knows the firmware version each device last reported;
	// when set, device views carry it as firmware_version. An
	// *lwm2m.Inventory is one.
	Inventory Inventory
	// Events is the journal GET /api/v1/events streams; when nil it
	// answers 503 "event journal not enabled".
	Events *Journal
	// Token is the bearer token clients must send, at least MinTokenLength
	// characters; see LoadOrCreateToken.
	Token string
	// Logger receives one debug line per request and an error line for each
	// request that fails with a 5xx status.
	Logger zerolog.Logger
}

// Validate reports the first missing or bad field.
func (c *Config) Validate() error {
	switch {
	case c.Devices == nil:
		return errors.New("api: config: Devices is nil")
	case c.Registrations == nil:
		return errors.New("api: config: Registrations is nil")
	case c.Transport == nil:
		return errors.New("api: config: Transport is nil")
	case len(c.Token) < MinTokenLength:
		return fmt.Errorf("api: config: Token must be at least %d characters", MinTokenLength)
	case strings.TrimSpace(c.Token) != c.Token:
		return errors.New("api: config: Token has leading or trailing white space")
	}
	return nil
}

// Server serves the management API. It is safe for concurrent use.
type Server struct {
	devices   lwm2m.DeviceStore
	regs      Registrations
	tokenHash [sha256.Size]byte
	log       zerolog.Logger
	handler   http.Handler
	now       func() time.Time
	ops       Operations // nil: operations disabled
	images    Images     // nil: image routes disabled
	packages  Packages   // nil: package routes disabled
	classes   Classes    // nil: class routes disabled
	updates   Updates    // nil: update routes disabled
	campaigns Campaigns  // nil: campaign routes disabled
	inventory Inventory  // nil: no firmware versions in device views
	events    *Journal   // nil: no event stream

	// history reads earlier updates; nil: the update list holds only
	// the current one.
	history UpdateHistory

	// sessions are the web console's signed-in browsers.
	sessions sessions

	// updatePoll is how often update event streams read the status,
	// campaignPoll how often campaign event streams read the progress.
	updatePoll   time.Duration
	campaignPoll time.Duration
	rates        downloadRates

	// stopCtx ends streams and operation waits; see StopStreams.
	stopCtx     context.Context
	stopStreams context.CancelFunc

	// writeMu serializes device writes so that a create's existence check
	// and its PutDevice are atomic with respect to other API requests.
	writeMu sync.Mutex
	// classMu makes a class create's or replace's check of the declared
	// class and its PutClass atomic with respect to other API requests.
	classMu sync.Mutex
}

// New returns a Server for cfg, or an error naming the bad field.
func New(cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Server{
		devices:   cfg.Devices,
		regs:      cfg.Registrations,
		tokenHash: sha256.Sum256([]byte(cfg.Token)),
		log:       cfg.Logger.With().Str("component", "api").Logger(),
		now:       time.Now,
		ops:       cfg.Operations,
		images:    cfg.Images,
		packages:  cfg.Packages,
		classes:   cfg.Classes,
		updates:   cfg.Updates,
		history:   cfg.History,
		campaigns: cfg.Campaigns,
		inventory: cfg.Inventory,
		events:    cfg.Events,

		updatePoll:   updatePollInterval,
		campaignPoll: campaignPollInterval,
	}
	s.stopCtx, s.stopStreams = context.WithCancel(context.Background())

	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		newCollector(cfg.Registrations, cfg.Transport),
	)
	if cfg.Campaigns != nil {
		reg.MustRegister(newCampaignCollector(cfg.Campaigns, func() time.Time { return s.now() }))
	}

	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog:      promLogger{s.log},
		ErrorHandling: promhttp.ContinueOnError,
	}))
	mux.HandleFunc("POST /api/v1/devices", s.createDevice)
	mux.HandleFunc("GET /api/v1/devices", s.listDevices)
	mux.HandleFunc("GET /api/v1/devices/{endpoint}", s.showDevice)
	mux.HandleFunc("PUT /api/v1/devices/{endpoint}", s.replaceDevice)
	mux.HandleFunc("DELETE /api/v1/devices/{endpoint}", s.deleteDevice)
	mux.HandleFunc("GET /api/v1/registrations", s.listRegistrations)
	// Device operations (ops.go).
	mux.HandleFunc("POST /api/v1/devices/{endpoint}/ops", s.postOp)
	mux.HandleFunc("GET /api/v1/devices/{endpoint}/queue", s.listQueue)
	mux.HandleFunc("GET /api/v1/devices/{endpoint}/observe", s.observe)
	mux.HandleFunc("GET /api/v1/devices/{endpoint}/send", s.sends)
	mux.HandleFunc("GET /api/v1/tickets/{id}", s.getTicket)
	mux.HandleFunc("DELETE /api/v1/tickets/{id}", s.deleteTicket)
	// Firmware images and packages (firmware.go).
	mux.HandleFunc("POST /api/v1/images", s.addImage)
	mux.HandleFunc("GET /api/v1/images", s.listImages)
	mux.HandleFunc("GET /api/v1/images/{ref}", s.showImage)
	mux.HandleFunc("DELETE /api/v1/images/{digest}", s.removeImage)
	mux.HandleFunc("GET /api/v1/signing-key", s.signingKey)
	mux.HandleFunc("POST /api/v1/packages", s.makePackage)
	mux.HandleFunc("GET /api/v1/packages/{id}", s.showPackage)
	// Device classes (classes.go).
	mux.HandleFunc("POST /api/v1/classes", s.createClass)
	mux.HandleFunc("GET /api/v1/classes", s.listClasses)
	mux.HandleFunc("GET /api/v1/classes/{name}", s.showClass)
	mux.HandleFunc("PUT /api/v1/classes/{name}", s.replaceClass)
	mux.HandleFunc("DELETE /api/v1/classes/{name}", s.removeClass)
	// Firmware updates of devices (updates.go).
	mux.HandleFunc("POST /api/v1/devices/{endpoint}/update", s.startUpdate)
	mux.HandleFunc("GET /api/v1/devices/{endpoint}/update", s.showUpdate)
	mux.HandleFunc("DELETE /api/v1/devices/{endpoint}/update", s.cancelUpdate)
	mux.HandleFunc("GET /api/v1/devices/{endpoint}/update/events", s.updateEvents)
	mux.HandleFunc("GET /api/v1/devices/{endpoint}/updates", s.listUpdates)
	// Update campaigns (campaigns.go).
	mux.HandleFunc("POST /api/v1/campaigns/plan", s.planCampaign)
	mux.HandleFunc("POST /api/v1/campaigns", s.createCampaign)
	mux.HandleFunc("GET /api/v1/campaigns", s.listCampaigns)
	mux.HandleFunc("GET /api/v1/campaigns/{id}", s.showCampaign)
	mux.HandleFunc("POST /api/v1/campaigns/{id}/start", s.campaignAction(Campaigns.Start))
	mux.HandleFunc("POST /api/v1/campaigns/{id}/pause", s.campaignAction(Campaigns.Pause))
	mux.HandleFunc("POST /api/v1/campaigns/{id}/resume", s.campaignAction(Campaigns.Resume))
	mux.HandleFunc("POST /api/v1/campaigns/{id}/cancel", s.campaignAction(Campaigns.Cancel))
	mux.HandleFunc("GET /api/v1/campaigns/{id}/events", s.campaignEvents)

	mux.HandleFunc("GET /api/v1/events", s.streamEvents)
	mux.HandleFunc("GET /api/v1/images/{digest}/deltas", s.imageDeltas)
	// Profiles for operators chasing memory or CPU in the field; behind the
	// token like everything but /healthz.
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)

	s.routeConsole(mux)
	s.handler = s.logRequests(securityHeaders(s.authenticate(jsonFallback(mux))))
	return s, nil
}

// Handler returns the HTTP handler of the API.
func (s *Server) Handler() http.Handler { return s.handler }

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// authenticate requires the bearer token, or a console session, on every
// path but /healthz and the console's public ones (see consolePublic). A
// request with a session cookie that changes something must carry the
// session's CSRF token and come from fotad's own pages.
func (s *Server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if consolePublic(r) {
			next.ServeHTTP(w, r)
			return
		}
		header := r.Header.Get("Authorization")
		if header == "" {
			if sess, ok := s.sessions.lookup(r, s.now()); ok {
				if !safeMethod(r.Method) && (!sess.validCSRF(r) || !sameOrigin(r)) {
					writeError(w, http.StatusForbidden, "missing or wrong CSRF token (send the session's "+csrfHeader+" header)")
					return
				}
				next.ServeHTTP(w, r)
				return
			}
		}
		token, ok := bearerToken(header)
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="fotad"`)
			writeError(w, http.StatusUnauthorized, "missing bearer token: send \"Authorization: Bearer TOKEN\"")
			return
		}
		if !s.validToken(token) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="fotad", error="invalid_token"`)
			writeError(w, http.StatusUnauthorized, "invalid bearer token")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// validToken compares digests, which keeps the comparison constant-time
// in the token's length as well as its content.
func (s *Server) validToken(token string) bool {
	got := sha256.Sum256([]byte(token))
	return subtle.ConstantTimeCompare(got[:], s.tokenHash[:]) == 1
}

// bearerToken extracts the token of an "Authorization: Bearer TOKEN"
// header. The scheme is case-insensitive (RFC 9110, section 11.1).
func bearerToken(header string) (string, bool) {
	scheme, token, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}

// logRequests logs each request at debug level: method, path, status and
// duration. It never logs headers, the query string or bodies.
func (s *Server) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.Error().Str("method", r.Method).Str("path", r.URL.Path).
					Str("panic", fmt.Sprint(v)).Msg("api handler panicked")
				if sw.status == 0 {
					writeError(sw, http.StatusInternalServerError, "internal error")
				}
			}
			if sw.status == 0 {
				sw.status = http.StatusOK
			}
			s.log.Debug().
				Str("method", r.Method).
				Str("path", r.URL.Path).
				Int("status", sw.status).
				Dur("duration", time.Since(start)).
				Str("remote", r.RemoteAddr).
				Msg("api request")
		}()
		next.ServeHTTP(sw, r)
	})
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// jsonFallback turns the ServeMux's plain-text 404 and 405 replies into
// JSON errors, keeping their status and Allow header.
func jsonFallback(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h, pattern := mux.Handler(r)
		if pattern != "" {
			mux.ServeHTTP(w, r)
			return
		}
		h.ServeHTTP(&errorRewriter{ResponseWriter: w}, r)
	})
}

// errorRewriter replaces whatever body a handler writes with a JSON error
// carrying the status text.
type errorRewriter struct {
	http.ResponseWriter
	wrote bool
}

func (w *errorRewriter) WriteHeader(code int) {
	if w.wrote {
		return
	}
	w.wrote = true
	w.Header().Del("X-Content-Type-Options")
	msg := strings.ToLower(http.StatusText(code))
	if code == http.StatusMethodNotAllowed {
		if allow := w.Header().Get("Allow"); allow != "" {
			msg += "; allowed: " + allow
		}
	}
	writeError(w.ResponseWriter, code, msg)
}

func (w *errorRewriter) Write(b []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	return len(b), nil
}

// errorBody is the JSON shape of every error response.
type errorBody struct {
	Error string `json:"error"`
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, errorBody{Error: msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false) // link-format objects hold '<' and '>'
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		// Only our own view types reach here; they always marshal.
		status = http.StatusInternalServerError
		b.Reset()
		b.WriteString(`{"error":"internal error"}` + "\n")
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(b.Bytes())
}

// promLogger sends promhttp's errors to the API logger.
type promLogger struct{ log zerolog.Logger }

func (l promLogger) Println(v ...any) {
	l.log.Error().Msg(strings.TrimSuffix(fmt.Sprintln(v...), "\n"))
}
