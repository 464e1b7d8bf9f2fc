package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// Journal keeps the recent events of fotad for GET /api/v1/events and the
// console's event page. The events are fotad's own log lines at info level
// and above: what happened to which device (registrations, updates and
// their phases, campaign steps, operations refused). fotad's logger writes
// to a Journal beside its output, so the console shows what the log says,
// and a log line never carries a secret.
//
// It is a zerolog.LevelWriter and safe for concurrent use.
type Journal struct {
	mu     sync.Mutex
	ring   []Event // the last len(ring) events, oldest at next%len
	next   uint64  // the sequence number of the next event
	notify chan struct{}
	now    func() time.Time
}

// Event is one line of the journal.
type Event struct {
	Seq      uint64         `json:"seq"`
	Time     time.Time      `json:"time"`
	Level    string         `json:"level"`
	Message  string         `json:"message"`
	Endpoint string         `json:"endpoint,omitempty"`
	Campaign string         `json:"campaign,omitempty"`
	Fields   map[string]any `json:"fields,omitempty"`
}

// DefaultJournalSize is how many events NewJournal keeps by default.
const DefaultJournalSize = 2000

// replayEvents is how many past events a new stream starts with.
const replayEvents = 200

// NewJournal returns a journal keeping the last size events (default
// DefaultJournalSize).
func NewJournal(size int) *Journal {
	if size <= 0 {
		size = DefaultJournalSize
	}
	return &Journal{ring: make([]Event, 0, size), notify: make(chan struct{}), now: time.Now}
}

// Write records one JSON log line; its level comes from its "level" field.
func (j *Journal) Write(p []byte) (int, error) {
	j.add(p)
	return len(p), nil
}

// WriteLevel records one JSON log line at info level or above.
func (j *Journal) WriteLevel(l zerolog.Level, p []byte) (int, error) {
	if l >= zerolog.InfoLevel && l != zerolog.NoLevel && l != zerolog.Disabled {
		j.add(p)
	}
	return len(p), nil
}

// add parses a zerolog JSON line; a line that is not JSON is kept as the
// message.
func (j *Journal) add(p []byte) {
	var fields map[string]any
	ev := Event{Level: "info"}
	if err := json.Unmarshal(p, &fields); err != nil {
		ev.Message = string(p)
	}
	take := func(key string) string {
		v, ok := fields[key]
		if !ok {
			return ""
		}
		delete(fields, key)
		if s, ok := v.(string); ok {
			return s
		}
		return fmt.Sprint(v)
	}
	if fields != nil {
		ev.Message = take(zerolog.MessageFieldName)
		if l := take(zerolog.LevelFieldName); l != "" {
			ev.Level = l
		}
		take(zerolog.TimestampFieldName) // the journal's clock is finer
		ev.Endpoint, ev.Campaign = take("endpoint"), take("campaign")
		if len(fields) > 0 {
			ev.Fields = fields
		}
	}
	j.mu.Lock()
	ev.Seq, ev.Time = j.next, j.now().UTC()
	if len(j.ring) < cap(j.ring) {
		j.ring = append(j.ring, ev)
	} else {
		j.ring[j.next%uint64(cap(j.ring))] = ev
	}
	j.next++
	close(j.notify)
	j.notify = make(chan struct{})
	j.mu.Unlock()
}

// since returns the kept events after seq (all kept ones for seq < 0)
// that match the endpoint (any for ""), oldest first, at most limit of
// them (the newest), and a channel closed when the next event arrives.
func (j *Journal) since(seq int64, endpoint string, limit int) ([]Event, <-chan struct{}) {
	j.mu.Lock()
	defer j.mu.Unlock()
	n := uint64(len(j.ring))
	var out []Event
	for i := j.next - n; i < j.next; i++ {
		ev := j.ring[i%uint64(cap(j.ring))]
		if int64(ev.Seq) > seq && (endpoint == "" || ev.Endpoint == endpoint) {
			out = append(out, ev)
		}
	}
	if len(out) > limit {
		out = out[len(out)-limit:]
	}
	return out, j.notify
}

// streamEvents serves GET /api/v1/events?endpoint=EP as Server-Sent
// Events named "log", each with its sequence number as id: the last
// replayEvents kept events (or those after Last-Event-ID, when the browser
// reconnects), then each new one as it happens.
func (s *Server) streamEvents(w http.ResponseWriter, r *http.Request) {
	if s.events == nil {
		writeError(w, http.StatusServiceUnavailable, "event journal not enabled")
		return
	}
	endpoint := r.URL.Query().Get("endpoint")
	last := int64(-1)
	if id := r.Header.Get("Last-Event-ID"); id != "" {
		n, err := strconv.ParseInt(id, 10, 64)
		if err != nil || n < 0 {
			writeError(w, http.StatusBadRequest, "Last-Event-ID must be an event's sequence number")
			return
		}
		last = n
	}
	if s.stopCtx.Err() != nil {
		writeError(w, http.StatusServiceUnavailable, "server shutting down")
		return
	}
	ctx, cancel := s.longRequest(w, r)
	defer cancel()
	st := startSSE(w)
	keepAlive := time.NewTicker(updateKeepAlive)
	defer keepAlive.Stop()
	for {
		evs, more := s.events.since(last, endpoint, replayEvents)
		for _, ev := range evs {
			if err := st.event("log", strconv.FormatUint(ev.Seq, 10), ev); err != nil {
				return
			}
			last = int64(ev.Seq)
		}
		select {
		case <-more:
		case <-keepAlive.C:
			if err := st.comment("keep-alive"); err != nil {
				return
			}
		case <-ctx.Done():
			return
		}
	}
}
