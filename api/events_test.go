package api

import (
	"bufio"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/rs/zerolog"
)

func TestJournalKeepsInfoAndAbove(t *testing.T) {
	j := NewJournal(3)
	log := zerolog.New(zerolog.MultiLevelWriter(j)).Level(zerolog.DebugLevel).With().Timestamp().Logger()
	log.Debug().Str("endpoint", "a").Msg("block served")
	log.Info().Str("endpoint", "a").Str("phase", "downloading").Int("result", 0).Msg("update changed")
	log.Warn().Str("campaign", "c1").Msg("campaign paused")
	log.Error().Str("endpoint", "b").Msg("update failed")
	evs, _ := j.since(-1, "", 10)
	if len(evs) != 3 {
		t.Fatalf("%d events, want 3 (no debug): %+v", len(evs), evs)
	}
	ev := evs[0]
	if ev.Seq != 0 || ev.Level != "info" || ev.Message != "update changed" || ev.Endpoint != "a" ||
		ev.Fields["phase"] != "downloading" || ev.Fields["result"] != float64(0) || ev.Time.IsZero() {
		t.Errorf("first event %+v", ev)
	}
	if _, ok := ev.Fields["time"]; ok {
		t.Error("the log's timestamp is kept as a field")
	}
	if evs[1].Campaign != "c1" || evs[1].Level != "warn" {
		t.Errorf("second event %+v", evs[1])
	}

	// The ring keeps the newest 3.
	log.Info().Str("endpoint", "a").Msg("registered")
	evs, _ = j.since(-1, "", 10)
	if len(evs) != 3 || evs[0].Seq != 1 || evs[2].Seq != 3 || evs[2].Message != "registered" {
		t.Fatalf("after wrapping: %+v", evs)
	}
	// Filtered by device, after a sequence number, bounded.
	evs, _ = j.since(-1, "a", 10)
	if len(evs) != 1 || evs[0].Seq != 3 {
		t.Errorf("device a: %+v", evs)
	}
	if evs, _ = j.since(2, "", 10); len(evs) != 1 || evs[0].Seq != 3 {
		t.Errorf("after 2: %+v", evs)
	}
	if evs, _ = j.since(-1, "", 2); len(evs) != 2 || evs[1].Seq != 3 {
		t.Errorf("limit 2: %+v", evs)
	}
	// A line that is not JSON is kept as it is.
	_, _ = j.Write([]byte("not json"))
	if evs, _ = j.since(3, "", 10); len(evs) != 1 || evs[0].Message != "not json" {
		t.Errorf("plain line: %+v", evs)
	}
}

func TestEventStream(t *testing.T) {
	f := newFixture(t)
	f.mustStatus(f.do("GET", "/api/v1/events", ""), http.StatusServiceUnavailable)
	j := NewJournal(0)
	f.srv.events = j
	log := zerolog.New(j)
	log.Info().Str("endpoint", "dev-1").Msg("registered")
	log.Info().Str("endpoint", "dev-2").Msg("registered")
	ts := httptest.NewServer(f.handler)
	t.Cleanup(ts.Close)

	resp, rd := openEvents(t, t.Context(), ts.URL+"/api/v1/events?endpoint=dev-2")
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("status %d, header %v", resp.StatusCode, resp.Header)
	}
	next := func() Event {
		t.Helper()
		sse, ok := readEvent(t, rd)
		if !ok || sse.name != "log" {
			t.Fatalf("event %+v", sse)
		}
		var ev Event
		if err := json.Unmarshal([]byte(sse.data), &ev); err != nil || strconv.FormatUint(ev.Seq, 10) != sse.id {
			t.Fatalf("event %q (id %s): %v", sse.data, sse.id, err)
		}
		return ev
	}
	// The past event of dev-2, then a live one; dev-1's are left out.
	if ev := next(); ev.Seq != 1 || ev.Endpoint != "dev-2" {
		t.Fatalf("replayed %+v", ev)
	}
	log.Info().Str("endpoint", "dev-1").Msg("update changed")
	log.Info().Str("endpoint", "dev-2").Str("phase", "done").Msg("update changed")
	if ev := next(); ev.Seq != 3 || ev.Fields["phase"] != "done" {
		t.Fatalf("live %+v", ev)
	}

	// A browser reconnecting sends the last id: it gets what followed.
	req, _ := http.NewRequestWithContext(t.Context(), "GET", ts.URL+"/api/v1/events", nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	req.Header.Set("Last-Event-ID", "2")
	resp2, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp2.Body.Close()
	rd = bufio.NewReader(resp2.Body)
	if ev := next(); ev.Seq != 3 {
		t.Fatalf("after Last-Event-ID 2: %+v", ev)
	}

	bad := httptest.NewRequest("GET", "/api/v1/events", nil)
	bad.Header.Set("Authorization", "Bearer "+testToken)
	bad.Header.Set("Last-Event-ID", "x")
	rec := httptest.NewRecorder()
	f.handler.ServeHTTP(rec, bad)
	if rec.Code != http.StatusBadRequest {
		t.Errorf("Last-Event-ID x: status %d", rec.Code)
	}
}
