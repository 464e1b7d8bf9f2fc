package api

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/fotahub/fota/delivery/firmware"
	"github.com/fotahub/fota/delivery/manifest"
	"github.com/fotahub/fota/delivery/update"
	"github.com/fotahub/fota/lwm2m"
)

// Updates runs firmware updates of devices through Object 5, one per
// device at a time. *update.Driver is one.
type Updates interface {
	// Start begins updating the endpoint; update.ErrBusy while one runs.
	Start(ctx context.Context, ep string, req update.Request) (update.Update, error)
	// Status returns the endpoint's current or last update.
	Status(ep string) (update.Update, bool)
	// Cancel stops the endpoint's update: update.ErrNoUpdate when it has
	// none, update.ErrNotRunning when it has finished.
	Cancel(ctx context.Context, ep string) error
}

// UpdateHistory reads the earlier updates of a device. *store.DB is one.
type UpdateHistory interface {
	// UpdateHistory returns the endpoint's earlier updates, newest
	// first, without its current or last one (Updates.Status).
	UpdateHistory(ctx context.Context, ep string) ([]update.Update, error)
}

// Timing of the update routes.
const (
	// updatePollInterval is how often the event stream reads the update's
	// status; see updateEvents.
	updatePollInterval = 500 * time.Millisecond
	// updateKeepAlive is how long the event stream may stay silent before
	// it sends an SSE comment, so that proxies keep the connection and a
	// vanished client is noticed.
	updateKeepAlive = 15 * time.Second
	// cancelWait bounds telling the device that its update is cancelled
	// (a sleeping device gets the reset when it wakes up, if it does so
	// in time).
	cancelWait = DefaultOpWait
	// rateWindow is the least time between two samples of a download for
	// the rate they give to count (see downloadRates).
	rateWindow = time.Second
)

// UpdateRequest is the body of POST /api/v1/devices/{endpoint}/update.
type UpdateRequest struct {
	// Image is the target image: its version or its digest.
	Image string `json:"image"`
	// Full asks for the full image even when a delta would be smaller.
	Full bool `json:"full,omitempty"`
	// Push writes the package to /5/0/0 (CoAP Block1) instead of giving
	// the device a Package URI to pull it from.
	Push bool `json:"push,omitempty"`
	// Class names the image's device class, for a version several classes
	// have; empty: the device's class (fotactl device add --class), if
	// it has one.
	Class string `json:"class,omitempty"`
}

const updateRequestFields = "image, full, push, class"

// UpdateView is the JSON shape of a device's update.
//
// Target and Package are hex SHA-256 digests, and Version, Format, Target
// and Package are absent until the update is past preparing. Method is
// "pull" (Package URI, the device fetches the package with Block2) or
// "push" (fotad writes /5/0/0 with Block1). Progress is BytesServed/Size,
// at most 1, and 1 once the device has the package (downloaded, updating,
// done). Result is the last Update Result (/5/0/5) the device reported,
// ResultText its name. ElapsedS is the seconds since the update started
// (until it finished, for a finished one); ETAS estimates the seconds the
// download still takes, from the rate bytes are served at, and is only
// present while downloading once a rate is known.
type UpdateView struct {
	Endpoint string `json:"endpoint"`
	Image    string `json:"image"`
	Target   string `json:"target,omitempty"`
	Version  string `json:"version,omitempty"`
	Class    string `json:"class,omitempty"`
	Method   string `json:"method"`
	Full     bool   `json:"full"`
	Format   string `json:"format,omitempty"`
	// Raw is set when the package is a raw image, sent as uploaded.
	Raw         bool   `json:"raw,omitempty"`
	Package     string `json:"package,omitempty"`
	Size        int64  `json:"size"`
	BytesServed int64  `json:"bytes_served"`
	// BlockSize is the Block2 size of the download (pull; 0 for push):
	// the cap for the device's link, or the smaller size it asks for;
	// Blocks the package's blocks at that size, BlocksServed those sent.
	BlockSize    int       `json:"block_size,omitempty"`
	Blocks       int64     `json:"blocks,omitempty"`
	BlocksServed int64     `json:"blocks_served,omitempty"`
	Retries      int       `json:"retries,omitempty"`
	Progress     float64   `json:"progress"`
	Phase        string    `json:"phase"`
	Result       int       `json:"result"`
	ResultText   string    `json:"result_text"`
	FellBack     bool      `json:"fell_back"`
	Error        string    `json:"error,omitempty"`
	Started      time.Time `json:"started"`
	Changed      time.Time `json:"changed"`
	Deadline     time.Time `json:"deadline"`
	ElapsedS     int64     `json:"elapsed_s"`
	ETAS         *int64    `json:"eta_s,omitempty"`
}

// UpdateList is the body of GET /api/v1/devices/{endpoint}/updates: the
// device's current or last update first, then the earlier ones, newest
// first; empty, not null, for a device without updates.
type UpdateList struct {
	Updates []UpdateView `json:"updates"`
}

// UpdateResultText names an Object 5 Update Result: 0 "initial", 1
// "success", 2 "not enough flash" ... 11 "deferred"; "unknown" for others.
func UpdateResultText(result int) string { return update.ResultText(result) }

// updateView is the view of u, the endpoint's current update, at the
// server's now.
func (s *Server) updateView(u update.Update) UpdateView { return s.updateViewAt(u, s.now(), true) }

// updateViewAt is the view of u at now; with eta, the download's time
// left, which samples the endpoint's current download (s.rates): only for
// the current update, never for an earlier one.
func (s *Server) updateViewAt(u update.Update, now time.Time, eta bool) UpdateView {
	v := UpdateView{
		Endpoint: u.Endpoint, Image: u.Image, Version: u.Version, Class: u.Class, Raw: u.Raw, Method: "pull", Full: u.Full,
		Size: u.Size, BytesServed: u.BytesServed, Phase: string(u.Phase),
		Result: u.Result, ResultText: UpdateResultText(u.Result), FellBack: u.FellBack, Error: u.Error,
		Started: u.Started.UTC(), Changed: u.Changed.UTC(), Deadline: u.Deadline.UTC(),
	}
	if u.Push {
		v.Method = "push"
	}
	if b := int64(u.BlockSize); b > 0 && !u.Push {
		v.BlockSize, v.Blocks = u.BlockSize, (u.Size+b-1)/b
		v.BlocksServed = min(v.Blocks, (u.BytesServed+b-1)/b)
	}
	v.Retries = u.Retries
	if u.Target != (manifest.Digest{}) {
		v.Target = u.Target.String()
	}
	if u.Package != (manifest.Digest{}) {
		v.Package = u.Package.String()
	}
	if u.Format != 0 {
		v.Format = u.Format.String()
	}
	switch {
	case u.Phase == update.Downloaded || u.Phase == update.Updating || u.Phase == update.Done:
		v.Progress = 1
	case u.Size > 0:
		v.Progress = math.Min(1, math.Round(float64(u.BytesServed)/float64(u.Size)*1e4)/1e4)
	}
	end := now
	if u.Phase.Finished() {
		end = u.Changed
	}
	if !u.Started.IsZero() && end.After(u.Started) {
		v.ElapsedS = int64(end.Sub(u.Started).Round(time.Second) / time.Second)
	}
	if eta {
		v.ETAS = s.rates.eta(u, now)
	}
	return v
}

// downloadRates estimates how long downloads still take. The Update has
// no time at which its download began, and the rate since Started would
// count the preparation (which, for a sleeping device, can be hours), so
// the API remembers, per endpoint, when it first saw the current download
// and how many bytes had been served then. Until a second look at least
// rateWindow later shows progress, the rate since Started stands in.
type downloadRates struct {
	mu      sync.Mutex
	samples map[string]rateSample
}

type rateSample struct {
	started time.Time       // which update (Update.Started)
	pkg     manifest.Digest // which package (a fallback makes another)
	at      time.Time
	bytes   int64
}

// eta returns the seconds u's download still takes, nil when unknown or
// not downloading.
func (d *downloadRates) eta(u update.Update, now time.Time) *int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	if u.Phase != update.Downloading {
		delete(d.samples, u.Endpoint) // nothing to estimate any more
		return nil
	}
	if d.samples == nil {
		d.samples = map[string]rateSample{}
	}
	s, ok := d.samples[u.Endpoint]
	if !ok || !s.started.Equal(u.Started) || s.pkg != u.Package || u.BytesServed < s.bytes {
		s = rateSample{started: u.Started, pkg: u.Package, at: now, bytes: u.BytesServed}
		d.samples[u.Endpoint] = s
	}
	if u.Size <= 0 {
		return nil
	}
	left := u.Size - u.BytesServed
	if left <= 0 {
		var zero int64
		return &zero
	}
	var rate float64 // bytes per second
	switch span := now.Sub(s.at); {
	case span >= rateWindow && u.BytesServed > s.bytes:
		rate = float64(u.BytesServed-s.bytes) / span.Seconds()
	case u.BytesServed > 0 && now.Sub(u.Started) >= rateWindow:
		rate = float64(u.BytesServed) / now.Sub(u.Started).Seconds()
	default:
		return nil
	}
	eta := int64(math.Ceil(float64(left) / rate))
	return &eta
}

// updatesOn answers 503 and reports false when updates are off.
func (s *Server) updatesOn(w http.ResponseWriter) (Updates, bool) {
	if s.updates == nil {
		writeError(w, http.StatusServiceUnavailable, "firmware updates not enabled")
		return nil, false
	}
	return s.updates, true
}

func updatePath(ep string) string { return "/api/v1/devices/" + url.PathEscape(ep) + "/update" }

// startUpdate answers POST /api/v1/devices/{endpoint}/update.
func (s *Server) startUpdate(w http.ResponseWriter, r *http.Request) {
	updates, ok := s.updatesOn(w)
	if !ok {
		return
	}
	ep := r.PathValue("endpoint")
	var req UpdateRequest
	if !decodeBody(w, r, &req, `an update request, {"image":"VERSION or DIGEST"}`, updateRequestFields) {
		return
	}
	req.Image = strings.TrimSpace(req.Image)
	if req.Image == "" {
		writeError(w, http.StatusBadRequest, `give the target image: {"image":"VERSION or DIGEST"}`)
		return
	}
	if req.Class == "" {
		if dev, err := s.devices.Device(r.Context(), ep); err == nil {
			req.Class = dev.Class
		}
	}
	u, err := updates.Start(r.Context(), ep, update.Request{Image: req.Image, Class: req.Class, Full: req.Full, Push: req.Push})
	if err != nil {
		s.updateFailed(w, r, err)
		return
	}
	w.Header().Set("Location", updatePath(ep))
	writeJSON(w, http.StatusAccepted, s.updateView(u))
}

// updateFailed answers for an error of Start:
//
//	409 an update of the device is running, or the image is for another
//	    device class or not newer than the installed one
//	404 the device is not registered, or there is no such image
//	400 a version several classes have, or an invalid reference
//	500 anything else (logged)
func (s *Server) updateFailed(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, update.ErrBusy), errors.Is(err, firmware.ErrClassMismatch), errors.Is(err, firmware.ErrNotNewer):
		writeError(w, http.StatusConflict, err.Error())
	case errors.Is(err, lwm2m.ErrNotRegistered), errors.Is(err, firmware.ErrNotFound):
		writeError(w, http.StatusNotFound, err.Error())
	case errors.Is(err, firmware.ErrAmbiguous), errors.Is(err, firmware.ErrInvalid):
		writeError(w, http.StatusBadRequest, err.Error())
	default:
		s.internalError(w, r, err)
	}
}

func noUpdate(w http.ResponseWriter, ep string) {
	writeError(w, http.StatusNotFound, fmt.Sprintf("no update of %s: start one with POST %s", ep, updatePath(ep)))
}

// showUpdate answers GET /api/v1/devices/{endpoint}/update.
func (s *Server) showUpdate(w http.ResponseWriter, r *http.Request) {
	updates, ok := s.updatesOn(w)
	if !ok {
		return
	}
	ep := r.PathValue("endpoint")
	u, ok := updates.Status(ep)
	if !ok {
		noUpdate(w, ep)
		return
	}
	writeJSON(w, http.StatusOK, s.updateView(u))
}

// listUpdates answers GET /api/v1/devices/{endpoint}/updates with an
// UpdateList: the current or last update (Updates.Status), then the
// earlier ones from Config.History (none without it). An update replaced
// between the two reads would show in both: it is listed once.
func (s *Server) listUpdates(w http.ResponseWriter, r *http.Request) {
	updates, ok := s.updatesOn(w)
	if !ok {
		return
	}
	ep := r.PathValue("endpoint")
	list := UpdateList{Updates: []UpdateView{}}
	cur, hasCur := updates.Status(ep)
	if hasCur {
		list.Updates = append(list.Updates, s.updateView(cur))
	}
	if s.history != nil {
		earlier, err := s.history.UpdateHistory(r.Context(), ep)
		if err != nil {
			s.internalError(w, r, err)
			return
		}
		now := s.now()
		for _, u := range earlier {
			if hasCur && u.Started.Equal(cur.Started) {
				continue
			}
			list.Updates = append(list.Updates, s.updateViewAt(u, now, false))
		}
	}
	writeJSON(w, http.StatusOK, list)
}

// cancelUpdate answers DELETE /api/v1/devices/{endpoint}/update: 204
// once the update is cancelled and the device told so (or, not being
// registered, has nothing to be told); 404 without an update, 409 when it
// has finished. When the update is cancelled but the device could not be
// reset, the answer is the operation's error status (502, 504) with a
// message that says so.
func (s *Server) cancelUpdate(w http.ResponseWriter, r *http.Request) {
	updates, ok := s.updatesOn(w)
	if !ok {
		return
	}
	ep := r.PathValue("endpoint")
	ctx, cancel := s.longRequest(w, r)
	defer cancel()
	ctx, cancelWait := context.WithTimeout(ctx, cancelWait)
	err := updates.Cancel(ctx, ep)
	cancelWait()
	var oe *lwm2m.OpError
	var ce lwm2m.CodeError
	switch {
	case err == nil:
	case errors.Is(err, update.ErrNoUpdate):
		noUpdate(w, ep)
		return
	case errors.Is(err, update.ErrNotRunning):
		msg := fmt.Sprintf("the update of %s has finished", ep)
		if u, ok := updates.Status(ep); ok {
			msg = fmt.Sprintf("the update of %s has finished: %s", ep, u.Phase)
		}
		writeError(w, http.StatusConflict, msg)
		return
	case errors.Is(err, lwm2m.ErrNotRegistered):
		s.log.Info().Err(err).Str("endpoint", ep).Msg("update cancelled; the device is not registered to be reset")
	case errors.As(err, &oe), errors.As(err, &ce), errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		s.writeOpError(w, r, opStatus(err), fmt.Errorf("update of %s cancelled, but the device was not reset: %w", ep, err))
		return
	default:
		s.internalError(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNoContent)
}

// updateEvents streams GET /api/v1/devices/{endpoint}/update/events as
// Server-Sent Events: an "update" event whose data is the UpdateView, at
// once and then whenever the update changes, until an event with a
// finished phase has been sent, the client goes away, or StopStreams.
//
// The Updates interface has no subscription, so the handler polls Status
// every updatePollInterval and sends what differs from the last event
// (elapsed_s and eta_s, which move with the clock, do not count as a
// change). Half a second is quick enough for a person watching and cheap:
// Status is a map lookup under a mutex.
func (s *Server) updateEvents(w http.ResponseWriter, r *http.Request) {
	updates, ok := s.updatesOn(w)
	if !ok {
		return
	}
	if s.stopCtx.Err() != nil {
		writeError(w, http.StatusServiceUnavailable, "server shutting down")
		return
	}
	ep := r.PathValue("endpoint")
	u, ok := updates.Status(ep)
	if !ok {
		noUpdate(w, ep)
		return
	}
	s.pollStream(w, r, "update", s.updatePoll, func(first bool) (any, any, bool, bool) {
		if !first {
			if u, ok = updates.Status(ep); !ok {
				return nil, nil, false, false // the update is gone
			}
		}
		v := s.updateView(u)
		key := v
		key.ElapsedS, key.ETAS = 0, nil
		return v, key, u.Phase.Finished(), true
	})
}

// pollStream answers a request with Server-Sent Events named name: it
// calls next every poll and sends the value it returns whenever key (the
// value without what moves with the clock) changed, numbered from 1 as the
// events' ids, until next reports the value finished (after sending it) or
// gone, the client goes away or StopStreams. A reconnecting browser (it
// sends Last-Event-ID) that finds the value finished gets 204: the end of
// the stream. After updateKeepAlive without an event it sends a comment,
// so that proxies keep the connection.
func (s *Server) pollStream(w http.ResponseWriter, r *http.Request, name string, poll time.Duration,
	next func(first bool) (v, key any, finished, ok bool)) {
	ctx, cancel := s.longRequest(w, r)
	defer cancel()

	v, key, finished, ok := next(true)
	if ok && finished && r.Header.Get("Last-Event-ID") != "" {
		// A browser's EventSource reconnecting after the stream ended: it
		// has seen the end. 204 tells it to stop reconnecting (it would
		// otherwise fetch the same end every 3 s, for ever).
		w.WriteHeader(http.StatusNoContent)
		return
	}
	st := startSSE(w)

	tick := time.NewTicker(poll)
	defer tick.Stop()
	var last []byte
	lastWrite := time.Now()
	for seq := 1; ; {
		if !ok {
			return
		}
		b, err := marshalNoEscape(key)
		if err != nil {
			return
		}
		if !bytes.Equal(b, last) {
			last = b
			if st.event(name, strconv.Itoa(seq), v) != nil {
				return
			}
			seq++
			lastWrite = time.Now()
		}
		if finished {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if time.Since(lastWrite) >= updateKeepAlive {
			if st.comment("keep-alive") != nil {
				return
			}
			lastWrite = time.Now()
		}
		v, key, finished, ok = next(false)
	}
}

// startSSE answers 200 with the headers of a Server-Sent Events stream.
func startSSE(w http.ResponseWriter) *stream {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	w.WriteHeader(http.StatusOK)
	return &stream{w: w, rc: http.NewResponseController(w)}
}

// event writes one Server-Sent Event whose data is v as one line of JSON,
// with its id when id is not empty (a reconnecting browser sends the last
// one back as Last-Event-ID).
func (st *stream) event(name, id string, v any) error {
	b, err := marshalNoEscape(v)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	buf.WriteString("event: " + name + "\n")
	if id != "" {
		buf.WriteString("id: " + id + "\n")
	}
	buf.WriteString("data: ")
	buf.Write(b)
	buf.WriteString("\n\n")
	if _, err := st.w.Write(buf.Bytes()); err != nil {
		return err
	}
	return st.flush()
}

// comment writes an SSE comment line, which clients ignore.
func (st *stream) comment(text string) error {
	if _, err := st.w.Write([]byte(": " + text + "\n\n")); err != nil {
		return err
	}
	return st.flush()
}
