package api

import (
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/fotahub/fota/delivery/firmware"
)

func TestClassesDisabled(t *testing.T) {
	f := newFixture(t)
	for _, c := range []struct{ method, path, body string }{
		{"GET", "/api/v1/classes", ""},
		{"POST", "/api/v1/classes", `{"name":"c"}`},
		{"GET", "/api/v1/classes/c", ""},
		{"PUT", "/api/v1/classes/c", `{}`},
		{"DELETE", "/api/v1/classes/c", ""},
	} {
		r := f.do(c.method, c.path, c.body)
		f.mustStatus(r, http.StatusServiceUnavailable)
		if msg := r.errorMessage(t); msg != "device classes not enabled" {
			t.Errorf("%s %s: %q", c.method, c.path, msg)
		}
		f.mustStatus(f.doAuth(c.method, c.path, c.body, ""), http.StatusUnauthorized)
	}
}

func TestClassRoutes(t *testing.T) {
	f := newFirmwareFixture(t)

	r := f.do("GET", "/api/v1/classes", "")
	f.mustStatus(r, http.StatusOK)
	if list := decode[ClassList](t, r.body); list.Classes == nil || len(list.Classes) != 0 {
		t.Errorf("empty list: %s", r.body)
	}

	// Create, then the same again.
	body := `{"name":"nrf-a","profile":"raw","method":"push","block_size":512,"scheme":"coaps","deadline":"36h",
		"success":["version","result","version"]}`
	r = f.do("POST", "/api/v1/classes", body)
	f.mustStatus(r, http.StatusCreated)
	want := ClassView{Name: "nrf-a", Profile: "raw", Method: "push", BlockSize: 512, Scheme: "coaps", Deadline: "36h",
		Success: []string{"result", "version"}, Declared: true, Changed: testNow}
	if got := decode[ClassView](t, r.body); !reflect.DeepEqual(got, want) {
		t.Errorf("created %+v\nwant %+v", got, want)
	}
	if loc := r.header.Get("Location"); loc != "/api/v1/classes/nrf-a" {
		t.Errorf("Location %q", loc)
	}
	raw := decode[map[string]any](t, r.body)
	for _, k := range []string{"name", "profile", "delta", "method", "block_size", "scheme", "deadline", "success", "declared", "changed"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("class JSON lacks %q: %s", k, r.body)
		}
	}
	r = f.do("POST", "/api/v1/classes", `{"name":"nrf-a"}`)
	f.mustStatus(r, http.StatusConflict)
	if msg := r.errorMessage(t); !strings.Contains(msg, "already declared") || !strings.Contains(msg, "PUT /api/v1/classes/nrf-a") {
		t.Errorf("second create: %q", msg)
	}
	r = f.do("GET", "/api/v1/classes/nrf-a", "")
	f.mustStatus(r, http.StatusOK)
	if got := decode[ClassView](t, r.body); !reflect.DeepEqual(got, want) {
		t.Errorf("GET %+v\nwant %+v", got, want)
	}

	// The view round-trips through PUT, declared and changed included.
	r = f.do("PUT", "/api/v1/classes/nrf-a", string(r.body))
	f.mustStatus(r, http.StatusOK)
	if got := decode[ClassView](t, r.body); !reflect.DeepEqual(got, want) || r.header.Get("Location") != "" {
		t.Errorf("PUT of the view %+v\nwant %+v", got, want)
	}
	// Replacing defaults the fields left out.
	r = f.do("PUT", "/api/v1/classes/nrf-a", `{"delta":true,"deadline":"90m"}`)
	f.mustStatus(r, http.StatusOK)
	want = ClassView{Name: "nrf-a", Profile: "native", Delta: true, Method: "auto", Scheme: "auto", Deadline: "1h30m",
		Success: []string{"result", "version"}, Declared: true, Changed: testNow}
	if got := decode[ClassView](t, r.body); !reflect.DeepEqual(got, want) {
		t.Errorf("replaced %+v\nwant %+v", got, want)
	}
	r = f.do("PUT", "/api/v1/classes/gw%2Fb", `{"name":"gw/b","success":["package"]}`)
	f.mustStatus(r, http.StatusCreated)
	if v := decode[ClassView](t, r.body); v.Name != "gw/b" || !reflect.DeepEqual(v.Success, []string{"package"}) ||
		r.header.Get("Location") != "/api/v1/classes/gw%2Fb" {
		t.Errorf("PUT of a new class: %s, Location %q", r.body, r.header.Get("Location"))
	}

	// A class nobody declared has the default profile.
	r = f.do("GET", "/api/v1/classes/sensor-a", "")
	f.mustStatus(r, http.StatusOK)
	def := ClassView{Name: "sensor-a", Profile: "native", Delta: true, Method: "auto", Scheme: "auto",
		Success: []string{"result", "version"}}
	if got := decode[ClassView](t, r.body); !reflect.DeepEqual(got, def) {
		t.Errorf("undeclared %+v\nwant %+v", got, def)
	}
	if _, ok := decode[map[string]any](t, r.body)["changed"]; ok {
		t.Errorf("an undeclared class has a change time: %s", r.body)
	}

	// The list has the declared classes and those of stored images.
	f.mustStatus(f.upload(readCorpus(t, "v1"), "1.0.0", "sensor-a"), http.StatusCreated)
	r = f.do("GET", "/api/v1/classes", "")
	f.mustStatus(r, http.StatusOK)
	list := decode[ClassList](t, r.body)
	var names []string
	for _, c := range list.Classes {
		names = append(names, c.Name)
	}
	if !reflect.DeepEqual(names, []string{"gw/b", "nrf-a", "sensor-a"}) || !list.Classes[1].Declared || list.Classes[2].Declared {
		t.Errorf("list: %s", r.body)
	}

	// A class holding images keeps its profile and stays declared.
	f.mustStatus(f.do("PUT", "/api/v1/classes/sensor-a", `{"block_size":256}`), http.StatusCreated)
	r = f.do("PUT", "/api/v1/classes/sensor-a", `{"profile":"raw"}`)
	f.mustStatus(r, http.StatusConflict)
	if msg := r.errorMessage(t); !strings.Contains(msg, "remove it first") {
		t.Errorf("profile change with images: %q", msg)
	}
	r = f.do("DELETE", "/api/v1/classes/sensor-a", "")
	f.mustStatus(r, http.StatusConflict)
	if msg := r.errorMessage(t); !strings.Contains(msg, "holds 1 images") {
		t.Errorf("delete with images: %q", msg)
	}

	f.mustStatus(f.do("DELETE", "/api/v1/classes/nrf-a", ""), http.StatusNoContent)
	r = f.do("DELETE", "/api/v1/classes/nrf-a", "")
	f.mustStatus(r, http.StatusNotFound)
	if msg := r.errorMessage(t); !strings.Contains(msg, "nrf-a") || !strings.Contains(msg, "not found") {
		t.Errorf("delete twice: %q", msg)
	}
	f.mustStatus(f.do("DELETE", "/api/v1/classes/never-declared", ""), http.StatusNotFound)
	r = f.do("GET", "/api/v1/classes/nrf-a", "")
	f.mustStatus(r, http.StatusOK)
	if decode[ClassView](t, r.body).Declared {
		t.Errorf("removed class still declared: %s", r.body)
	}
	if !strings.Contains(f.logs.String(), `"message":"class declared"`) || !strings.Contains(f.logs.String(), `"message":"class removed"`) {
		t.Errorf("no log lines for class changes:\n%s", f.logs.String())
	}
}

func TestClassValidation(t *testing.T) {
	f := newFirmwareFixture(t)
	for _, c := range []struct {
		method, path, body string
		want               string
	}{
		{"POST", "/api/v1/classes", `{"name":"c","profile":"vendor"}`, `profile "vendor" is not native or raw`},
		{"POST", "/api/v1/classes", `{"name":"c","profile":"raw","delta":true}`, "no delta applier"},
		{"POST", "/api/v1/classes", `{"name":"c","method":"poll"}`, `method "poll" is not auto, pull or push`},
		{"POST", "/api/v1/classes", `{"name":"c","block_size":100}`, "block size 100 is not a power of two from 16 to 1024"},
		{"POST", "/api/v1/classes", `{"name":"c","block_size":2048}`, "block size 2048"},
		{"POST", "/api/v1/classes", `{"name":"c","scheme":"http"}`, `scheme "http" is not auto, coaps or coap`},
		{"POST", "/api/v1/classes", `{"name":"c","deadline":"soon"}`, `"deadline" "soon" is not a duration such as 36h`},
		{"POST", "/api/v1/classes", `{"name":"c","deadline":"-1h"}`, "negative deadline"},
		{"POST", "/api/v1/classes", `{"name":"c","success":["ok"]}`, `success check "ok" is not one of result, version, package`},
		{"POST", "/api/v1/classes", `{"profile":"raw"}`, `"name" is required`},
		{"POST", "/api/v1/classes", `{"name":"a\u0001"}`, "control character"},
		{"POST", "/api/v1/classes", `{"name":"c","blocksize":512}`, `unknown field "blocksize"; known fields are name, profile`},
		{"POST", "/api/v1/classes", `{"name":"c","block_size":"512"}`, `field "block_size" must be a JSON int`},
		{"POST", "/api/v1/classes", ``, "empty request body"},
		{"PUT", "/api/v1/classes/c", `{"name":"d"}`, `name "d" in the body does not match "c" in the path`},
		{"PUT", "/api/v1/classes/c", `{"method":"poll"}`, `class "c": method "poll"`},
		{"PUT", "/api/v1/classes/c%01", `{}`, "control character"},
		{"GET", "/api/v1/classes/c%01", "", "control character"},
		{"DELETE", "/api/v1/classes/c%01", "", "control character"},
	} {
		r := f.do(c.method, c.path, c.body)
		if r.status != http.StatusBadRequest || !strings.Contains(r.errorMessage(t), c.want) {
			t.Errorf("%s %s %s: %d %s, want 400 with %q", c.method, c.path, c.body, r.status, r.body, c.want)
		}
	}
	r := f.do("GET", "/api/v1/classes", "")
	if list := decode[ClassList](t, r.body); len(list.Classes) != 0 {
		t.Errorf("refused classes were stored: %s", r.body)
	}
}

func TestImageFormat(t *testing.T) {
	f := newFirmwareFixture(t)
	v1, v2 := readCorpus(t, "v1"), readCorpus(t, "v2")
	upload := func(data []byte, query string) response {
		return f.raw("POST", "/api/v1/images?"+query, data, int64(len(data)), nil)
	}

	// format=raw declares a class nobody declared raw.
	r := upload([]byte("mcuboot image 1"), "version=1.0.0&class=nrf&format=raw")
	f.mustStatus(r, http.StatusCreated)
	if img := decode[ImageView](t, r.body); img.Format != "raw" {
		t.Errorf("raw upload: %s", r.body)
	}
	if !strings.Contains(f.logs.String(), `"format":"raw"`) {
		t.Errorf("image log line lacks the format:\n%s", f.logs.String())
	}
	r = f.do("GET", "/api/v1/classes/nrf", "")
	f.mustStatus(r, http.StatusOK)
	if c := decode[ClassView](t, r.body); !c.Declared || c.Profile != "raw" || c.Delta {
		t.Errorf("class after a raw upload: %s", r.body)
	}
	// The class's profile counts without format=.
	r = upload([]byte("mcuboot image 2"), "version=1.0.1&class=nrf")
	f.mustStatus(r, http.StatusCreated)
	if img := decode[ImageView](t, r.body); img.Format != "raw" {
		t.Errorf("upload to a raw class: %s", r.body)
	}
	r = upload([]byte("mcuboot image 3"), "version=1.0.2&class=nrf&format=native")
	f.mustStatus(r, http.StatusBadRequest)
	if msg := r.errorMessage(t); !strings.Contains(msg, `class "nrf" takes raw images`) {
		t.Errorf("native upload to a raw class: %q", msg)
	}

	r = upload(v1, "version=1.0.0&class=sensor-a&format=native")
	f.mustStatus(r, http.StatusCreated)
	if img := decode[ImageView](t, r.body); img.Format != "native" {
		t.Errorf("native upload: %s", r.body)
	}
	// A class holding native images cannot turn raw by an upload.
	f.mustStatus(upload(v2, "version=1.0.1&class=sensor-a&format=raw"), http.StatusConflict)

	r = upload(v2, "version=2&class=c&format=vendor")
	f.mustStatus(r, http.StatusBadRequest)
	if msg := r.errorMessage(t); !strings.Contains(msg, `format "vendor" is not native`) || !strings.Contains(msg, "raw") {
		t.Errorf("bad format: %q", msg)
	}

	r = f.do("GET", "/api/v1/images", "")
	f.mustStatus(r, http.StatusOK)
	formats := map[string]string{}
	for _, img := range decode[ImageList](t, r.body).Images {
		formats[img.Class+"/"+img.Version] = img.Format
	}
	if want := map[string]string{"nrf/1.0.0": "raw", "nrf/1.0.1": "raw", "sensor-a/1.0.0": "native"}; !reflect.DeepEqual(formats, want) {
		t.Errorf("formats %v, want %v", formats, want)
	}
	r = f.do("GET", "/api/v1/images/1.0.0?class=nrf", "")
	f.mustStatus(r, http.StatusOK)
	if decode[ImageView](t, r.body).Format != "raw" {
		t.Errorf("show raw image: %s", r.body)
	}
}

func TestFormatDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		36 * time.Hour:                     "36h",
		90 * time.Minute:                   "1h30m",
		45 * time.Second:                   "45s",
		10 * time.Minute:                   "10m",
		time.Hour + 30*time.Second:         "1h0m30s",
		1500 * time.Millisecond:            "1.5s",
		2*time.Hour + 500*time.Millisecond: "2h0m0.5s",
	} {
		if got := formatDuration(d); got != want {
			t.Errorf("formatDuration(%v) = %q, want %q", d, got, want)
		}
		if back, err := time.ParseDuration(formatDuration(d)); err != nil || back != d {
			t.Errorf("%q does not parse back to %v", formatDuration(d), d)
		}
	}
}

var _ Classes = (*firmware.Service)(nil)
