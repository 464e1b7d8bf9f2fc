package api

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/fotahub/fota/coap"
	"github.com/fotahub/fota/lwm2m"
	"github.com/fotahub/fota/lwm2m/model"
)

type opsFixture struct {
	*fixture
	ops *fakeOps
}

func newOpsFixture(t testing.TB) *opsFixture {
	t.Helper()
	f := &fixture{t: t, devices: newMemDevices(), regs: memRegs{}, logs: &syncBuffer{}}
	ops := newFakeOps()
	srv, err := New(Config{
		Devices:       f.devices,
		Registrations: f.regs,
		Transport:     statsFunc(func() coap.Stats { return coap.Stats{} }),
		Operations:    ops,
		Token:         testToken,
		Logger:        zerolog.New(f.logs).Level(zerolog.DebugLevel),
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	srv.now = func() time.Time { return testNow }
	f.srv, f.handler = srv, srv.Handler()
	return &opsFixture{f, ops}
}

// answer makes every operation finish at once with res or err.
func (f *opsFixture) answer(res lwm2m.Result, err error) {
	f.ops.mu.Lock()
	defer f.ops.mu.Unlock()
	f.ops.outcome = func(string, lwm2m.Op) (lwm2m.Result, error, bool) { return res, err, true }
}

func mustPath(t testing.TB, s string) model.Path {
	t.Helper()
	p, err := model.ParsePath(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func pv(t testing.TB, path string, v model.Value) model.PathValue {
	return model.PathValue{Path: mustPath(t, path), Value: v}
}

func opErr(op string, err error) error {
	return &lwm2m.OpError{Op: op, Endpoint: "dev-1", Path: "/3/0/9", Err: err}
}

func TestOpsDisabled(t *testing.T) {
	f := newFixture(t)
	for _, c := range []struct{ method, path, body string }{
		{"POST", "/api/v1/devices/dev-1/ops", `{"op":"read","path":"/3/0"}`},
		{"GET", "/api/v1/devices/dev-1/queue", ""},
		{"GET", "/api/v1/devices/dev-1/observe?path=/3/0/9", ""},
		{"GET", "/api/v1/devices/dev-1/send", ""},
		{"GET", "/api/v1/tickets/t1", ""},
		{"DELETE", "/api/v1/tickets/t1", ""},
	} {
		r := f.do(c.method, c.path, c.body)
		f.mustStatus(r, http.StatusServiceUnavailable)
		if msg := r.errorMessage(t); msg != "operations not enabled" {
			t.Errorf("%s %s: %q", c.method, c.path, msg)
		}
	}
}

func TestOpsNeedToken(t *testing.T) {
	f := newOpsFixture(t)
	for _, c := range []struct{ method, path string }{
		{"POST", "/api/v1/devices/dev-1/ops"},
		{"GET", "/api/v1/devices/dev-1/queue"},
		{"GET", "/api/v1/devices/dev-1/observe?path=/3/0/9"},
		{"GET", "/api/v1/devices/dev-1/send"},
		{"GET", "/api/v1/tickets/t1"},
		{"DELETE", "/api/v1/tickets/t1"},
	} {
		f.mustStatus(f.doAuth(c.method, c.path, `{"op":"read","path":"/3/0"}`, ""), http.StatusUnauthorized)
	}
	if len(f.ops.order) != 0 {
		t.Fatal("an operation was submitted without a token")
	}
}

func TestReadResultJSON(t *testing.T) {
	f := newOpsFixture(t)
	sampled := time.Date(2025, 3, 1, 11, 0, 0, 0, time.UTC)
	vals := []model.PathValue{
		pv(t, "/3/0/0", model.StringValue("Open Mobile Alliance <OMA>")),
		pv(t, "/3/0/9", model.IntegerValue(math.MaxInt64)),
		pv(t, "/3/0/10", model.IntegerValue(math.MinInt64)),
		pv(t, "/3/0/13", model.TimeValue(time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC))),
		pv(t, "/1/0/1", model.UnsignedValue(math.MaxUint64)),
		pv(t, "/1/0/6", model.BoolValue(true)),
		pv(t, "/1/0/10", model.ObjectLinkValue(model.ObjectLink{ObjectID: 11, InstanceID: 0})),
		pv(t, "/5/0/0", model.OpaqueValue([]byte{0, 1, 2, 0xff})),
		pv(t, "/3303/0/5700", model.FloatValue(21.5)),
		pv(t, "/3303/0/5601", model.FloatValue(math.NaN())),
		pv(t, "/3303/0/5602", model.FloatValue(math.Inf(1))),
		pv(t, "/3303/0/5603", model.FloatValue(math.Inf(-1))),
		pv(t, "/3303/0/5604", model.FloatValue(6.02214076e23)),
	}
	vals[1].Time = sampled
	f.answer(lwm2m.Result{Code: coap.Content, Format: model.ContentFormatTLV, Values: vals}, nil)

	r := f.do("POST", "/api/v1/devices/dev-1/ops", `{"op":"read","path":"/3/0"}`)
	f.mustStatus(r, http.StatusOK)
	if op := f.ops.last().Op; op.Kind != lwm2m.OpRead || op.Path.String() != "/3/0" {
		t.Fatalf("submitted %+v", op)
	}
	body := string(r.body)
	for _, want := range []string{
		`"code": "2.05"`,
		`"format": "application/vnd.oma.lwm2m+tlv"`,
		`"content_format": 11542`,
		`"value": 9223372036854775807`,
		`"value": -9223372036854775808`,
		`"value": 18446744073709551615`,
		`"value": "Open Mobile Alliance <OMA>"`,
		`"value": "2025-03-01T10:00:00Z"`,
		`"value": true`,
		`"value": "11:0"`,
		`"value": "AAEC/w=="`,
		`"value": 21.5`,
		`"value": "NaN"`,
		`"value": "+Inf"`,
		`"value": "-Inf"`,
		`"value": 6.02214076e+23`,
		`"time": "2025-03-01T11:00:00Z"`,
		`"links": []`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("body lacks %s", want)
		}
	}
	res := decode[ResultView](t, r.body)
	want := []struct{ path, name, ops, typ string }{
		{"/3/0/0", "Manufacturer", "R", "string"},
		{"/3/0/9", "Battery Level", "R", "integer"},
		{"/3/0/10", "Memory Free", "R", "integer"},
		{"/3/0/13", "Current Time", "RW", "time"},
		{"/1/0/1", "Lifetime", "RW", "unsigned integer"},
		{"/1/0/6", "Notification Storing When Disabled or Offline", "RW", "boolean"},
		{"/1/0/10", "APN Link", "RW", "objlnk"},
		{"/5/0/0", "Package", "W", "opaque"},
		{"/3303/0/5700", "", "", "float"},
	}
	for i, w := range want {
		v := res.Values[i]
		if v.Path != w.path || v.Name != w.name || v.Operations != w.ops || v.Type != w.typ {
			t.Errorf("value %d: %+v, want %+v", i, v, w)
		}
	}
	if res.Values[0].Time != nil || res.Values[1].Time == nil || !res.Values[1].Time.Equal(sampled) {
		t.Errorf("times: %v %v", res.Values[0].Time, res.Values[1].Time)
	}
	// The exact integers survive a decoder that keeps numbers as text.
	dec := json.NewDecoder(strings.NewReader(body))
	dec.UseNumber()
	var raw struct {
		Values []struct{ Value any }
	}
	if err := dec.Decode(&raw); err != nil {
		t.Fatal(err)
	}
	if n := raw.Values[1].Value.(json.Number); n.String() != "9223372036854775807" {
		t.Errorf("max int64 became %s", n)
	}
}

func TestDiscoverAndCreateResultJSON(t *testing.T) {
	f := newOpsFixture(t)
	f.answer(lwm2m.Result{Code: coap.Content, Format: lwm2m.ContentFormatLink, Links: []lwm2m.Link{
		{Path: "/3/0", Attrs: []lwm2m.LinkAttr{{Key: "pmin", Value: "10"}, {Key: "obs"}}},
		{Path: "/3/0/9", Attrs: []lwm2m.LinkAttr{{Key: "dim", Value: "1"}}},
		{Path: "/9999/0"},
	}}, nil)
	r := f.do("POST", "/api/v1/devices/dev-1/ops", `{"op":"discover"}`)
	f.mustStatus(r, http.StatusOK)
	if op := f.ops.last().Op; op.Kind != lwm2m.OpDiscover || !op.Path.IsRoot() {
		t.Fatalf("submitted %+v", op)
	}
	res := decode[ResultView](t, r.body)
	if res.Format != "application/link-format" || len(res.Links) != 3 || res.Values == nil || len(res.Values) != 0 {
		t.Fatalf("result %s", r.body)
	}
	l := res.Links
	if l[0].Path != "/3/0" || l[0].Name != "Device" || l[0].Attributes["pmin"] != "10" || l[0].Attributes["obs"] != "" ||
		l[1].Name != "Battery Level" || l[2].Name != "" || l[2].Attributes != nil {
		t.Errorf("links %+v", l)
	}

	f.answer(lwm2m.Result{Code: coap.Created, Format: coap.NoFormat, Location: "/1/1"}, nil)
	r = f.do("POST", "/api/v1/devices/dev-1/ops", `{"op":"create","path":"/1","values":[{"path":"0","value":"2"}]}`)
	f.mustStatus(r, http.StatusOK)
	raw := decode[map[string]any](t, r.body)
	if raw["code"] != "2.01" || raw["location"] != "/1/1" {
		t.Errorf("create result %s", r.body)
	}
	if _, ok := raw["format"]; ok {
		t.Errorf("format without a payload: %s", r.body)
	}
}

// TestOpRequests checks the operation each body builds.
func TestOpRequests(t *testing.T) {
	inst := func(id uint16, rs ...model.Resource) *model.ObjectInstance {
		oi := &model.ObjectInstance{ID: id, Resources: map[uint16]model.Resource{}}
		for _, r := range rs {
			oi.Resources[r.ID] = r
		}
		return oi
	}
	res := func(r model.Resource) *model.Resource { return &r }
	tests := []struct {
		name string
		body string
		want lwm2m.Op
	}{
		{"read", `{"op":"read","path":"/3/0/0"}`,
			lwm2m.Op{Kind: lwm2m.OpRead, Path: mustPath(t, "/3/0/0")}},
		{"read with format", `{"op":"read","path":"/3/0","format":112}`,
			lwm2m.Op{Kind: lwm2m.OpRead, Path: mustPath(t, "/3/0"), Format: 112}},
		{"read of paths is composite", `{"op":"read","paths":["/3/0/0","/1/0/1"]}`,
			lwm2m.Op{Kind: lwm2m.OpReadComposite, Paths: []model.Path{mustPath(t, "/3/0/0"), mustPath(t, "/1/0/1")}}},
		{"read-composite", `{"op":"read-composite","paths":["/3/0"]}`,
			lwm2m.Op{Kind: lwm2m.OpReadComposite, Paths: []model.Path{mustPath(t, "/3/0")}}},
		{"discover a path", `{"op":"discover","path":"/3"}`,
			lwm2m.Op{Kind: lwm2m.OpDiscover, Path: mustPath(t, "/3")}},
		{"write a typed resource", `{"op":"write","path":"/1/0/1","value":"300"}`,
			lwm2m.Op{Kind: lwm2m.OpWrite, Path: mustPath(t, "/1/0/1"),
				Node: res(model.SingleResource(1, model.UnsignedValue(300)))}},
		{"write a JSON number", `{"op":"write","path":"/1/0/1","value":300}`,
			lwm2m.Op{Kind: lwm2m.OpWrite, Path: mustPath(t, "/1/0/1"),
				Node: res(model.SingleResource(1, model.UnsignedValue(300)))}},
		{"write the same type as the model", `{"op":"write","path":"/1/0/6","value":true,"type":"bool"}`,
			lwm2m.Op{Kind: lwm2m.OpWrite, Path: mustPath(t, "/1/0/6"),
				Node: res(model.SingleResource(6, model.BoolValue(true)))}},
		{"write an unknown resource as a string", `{"op":"write","path":"/3303/0/5750","value":"kitchen"}`,
			lwm2m.Op{Kind: lwm2m.OpWrite, Path: mustPath(t, "/3303/0/5750"),
				Node: res(model.SingleResource(5750, model.StringValue("kitchen")))}},
		{"write an unknown resource with a type", `{"op":"write","path":"/3303/0/5603","value":"-40.5","type":"float"}`,
			lwm2m.Op{Kind: lwm2m.OpWrite, Path: mustPath(t, "/3303/0/5603"),
				Node: res(model.SingleResource(5603, model.FloatValue(-40.5)))}},
		{"write a resource instance", `{"op":"write","path":"/1/0/24/1","value":"11:1"}`,
			lwm2m.Op{Kind: lwm2m.OpWrite, Path: mustPath(t, "/1/0/24/1"),
				Node: &model.ResourceInstance{ID: 1, Value: model.ObjectLinkValue(model.ObjectLink{ObjectID: 11, InstanceID: 1})}}},
		{"partial write of an instance", `{"op":"write","path":"/1/0","partial":true,"values":[` +
			`{"path":"/1/0/1","value":"300"},{"path":"3","value":"60"},{"path":"/1/0/7","value":"UQ"}]}`,
			lwm2m.Op{Kind: lwm2m.OpWrite, Path: mustPath(t, "/1/0"), Partial: true, Node: inst(0,
				model.SingleResource(1, model.UnsignedValue(300)),
				model.SingleResource(3, model.IntegerValue(60)),
				model.SingleResource(7, model.StringValue("UQ")))}},
		{"write a multiple resource", `{"op":"write","path":"/1/0/25","values":[{"path":"0","value":"1.1"},{"path":"/1/0/25/1","value":"1.2"}]}`,
			lwm2m.Op{Kind: lwm2m.OpWrite, Path: mustPath(t, "/1/0/25"), Node: res(model.MultipleResource(25,
				map[uint16]model.Value{0: model.StringValue("1.1"), 1: model.StringValue("1.2")}))}},
		{"values with their own and a default type", `{"op":"write","path":"/3303/0","type":"integer","values":[` +
			`{"path":"5700","value":"21.5","type":"float"},{"path":"5601","value":"7"}]}`,
			lwm2m.Op{Kind: lwm2m.OpWrite, Path: mustPath(t, "/3303/0"), Node: inst(0,
				model.SingleResource(5700, model.FloatValue(21.5)),
				model.SingleResource(5601, model.IntegerValue(7)))}},
		{"create on an object", `{"op":"create","path":"/1","type":"integer","values":[{"path":"0","value":"2"},{"path":"1","value":"86400"}]}`,
			lwm2m.Op{Kind: lwm2m.OpCreate, Path: mustPath(t, "/1"), Node: inst(0,
				model.SingleResource(0, model.IntegerValue(2)),
				model.SingleResource(1, model.UnsignedValue(86400)))}},
		{"create an instance", `{"op":"create","path":"/1/5","values":[{"path":"/1/5/0","value":"5"}]}`,
			lwm2m.Op{Kind: lwm2m.OpCreate, Path: mustPath(t, "/1/5"), Node: inst(5,
				model.SingleResource(0, model.IntegerValue(5)))}},
		{"write-attributes", `{"op":"write-attributes","path":"/3/0/9","attributes":{"pmax":"60","pmin":10,"gt":""}}`,
			lwm2m.Op{Kind: lwm2m.OpWriteAttributes, Path: mustPath(t, "/3/0/9"), Attributes: []lwm2m.LinkAttr{
				{Key: "gt", Value: ""}, {Key: "pmax", Value: "60"}, {Key: "pmin", Value: "10"}}}},
		{"execute", `{"op":"execute","path":"/5/0/2","args":"0='v',1"}`,
			lwm2m.Op{Kind: lwm2m.OpExecute, Path: mustPath(t, "/5/0/2"), Args: "0='v',1"}},
		{"delete", `{"op":"delete","path":"/1/1"}`,
			lwm2m.Op{Kind: lwm2m.OpDelete, Path: mustPath(t, "/1/1")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newOpsFixture(t)
			f.answer(lwm2m.Result{Code: coap.Changed, Format: coap.NoFormat}, nil)
			f.mustStatus(f.do("POST", "/api/v1/devices/dev-1/ops", tt.body), http.StatusOK)
			st := f.ops.last()
			if st.Endpoint != "dev-1" {
				t.Errorf("endpoint %q", st.Endpoint)
			}
			got := st.Op
			if got.Kind != tt.want.Kind || got.Path != tt.want.Path || got.Partial != tt.want.Partial ||
				got.Args != tt.want.Args || got.Format != tt.want.Format ||
				fmt.Sprint(got.Paths) != fmt.Sprint(tt.want.Paths) ||
				fmt.Sprint(got.Attributes) != fmt.Sprint(tt.want.Attributes) {
				t.Fatalf("op %+v\nwant %+v", got, tt.want)
			}
			if !nodesEqual(got.Node, tt.want.Node) {
				t.Fatalf("node %#v\nwant %#v", got.Node, tt.want.Node)
			}
		})
	}
}

func nodesEqual(a, b model.Node) bool {
	switch a := a.(type) {
	case nil:
		return b == nil
	case *model.ObjectInstance:
		b, ok := b.(*model.ObjectInstance)
		return ok && a.Equal(*b)
	case *model.Resource:
		b, ok := b.(*model.Resource)
		return ok && a.Equal(*b)
	case *model.ResourceInstance:
		b, ok := b.(*model.ResourceInstance)
		return ok && a.Equal(*b)
	}
	return false
}

func TestOpBadRequests(t *testing.T) {
	tests := []struct {
		name, body string
		status     int
		want       string
	}{
		{"empty body", ``, 400, "empty request body"},
		{"malformed", `{"op":`, 400, "malformed JSON"},
		{"unknown field", `{"op":"read","path":"/3/0","pth":"x"}`, 400, `unknown field "pth"`},
		{"no op", `{"path":"/3/0"}`, 400, "op is required"},
		{"unknown op", `{"op":"frob","path":"/3/0"}`, 400, `unknown op "frob"`},
		{"observe", `{"op":"observe","path":"/3/0"}`, 400, "own route"},
		{"no path", `{"op":"read"}`, 400, "path is required"},
		{"bad path", `{"op":"read","path":"/3/x"}`, 400, "invalid lwm2m path"},
		{"bad composite path", `{"op":"read-composite","paths":["/3/0","3"]}`, 400, "invalid lwm2m path"},
		{"composite without paths", `{"op":"read-composite"}`, 400, "needs paths"},
		{"paths on write", `{"op":"write","paths":["/3/0"]}`, 400, "only for read-composite"},
		{"value on read", `{"op":"read","path":"/3/0","value":"1"}`, 400, "takes no value"},
		{"type without value", `{"op":"delete","path":"/1/1","type":"string"}`, 400, "type given without value"},
		{"partial on create", `{"op":"create","path":"/1","partial":true,"values":[{"path":"0","value":"1"}]}`, 400, "partial is only for write"},
		{"attributes on read", `{"op":"read","path":"/3/0","attributes":{"pmin":"1"}}`, 400, "only for write-attributes"},
		{"args on read", `{"op":"read","path":"/3/0","args":"0"}`, 400, "only for execute"},
		{"format out of range", `{"op":"read","path":"/3/0","format":70000}`, 400, "from 0 to 65535"},
		{"write without value", `{"op":"write","path":"/1/0/1"}`, 400, "needs value or values"},
		{"write value and values", `{"op":"write","path":"/1/0/1","value":"1","values":[{"path":"/1/0/1","value":"2"}]}`, 400, "not both"},
		{"write value to an instance", `{"op":"write","path":"/1/0","value":"1"}`, 400, "give values"},
		{"write to an object", `{"op":"write","path":"/1","values":[{"path":"/1/0/1","value":"2"}]}`, 400, "instance, resource or resource instance path"},
		{"bad value for the type", `{"op":"write","path":"/1/0/1","value":"-5"}`, 400, "unsigned integer"},
		{"type contradicts the model", `{"op":"write","path":"/1/0/1","value":"5","type":"string"}`, 400, "which the object model types unsigned integer"},
		{"unknown type", `{"op":"write","path":"/3303/0/5700","value":"5","type":"decimal"}`, 400, `unknown type "decimal"`},
		{"value is an object", `{"op":"write","path":"/1/0/1","value":{"x":1}}`, 400, "must be a JSON string, number or boolean"},
		{"executable resource", `{"op":"write","path":"/3/0/4","value":"1"}`, 400, "executable"},
		{"multiple resource as one value", `{"op":"write","path":"/3/0/6","value":"1"}`, 400, "multiple-instance resource"},
		{"instance of a single resource", `{"op":"write","path":"/1/0/1/0","value":"1"}`, 400, "single-instance resource"},
		{"value outside the path", `{"op":"write","path":"/1/0","values":[{"path":"/1/1/1","value":"2"}]}`, 400, "not below /1/0"},
		{"value without a path", `{"op":"write","path":"/1/0","values":[{"value":"2"}]}`, 400, "needs a path"},
		{"value missing", `{"op":"write","path":"/1/0","values":[{"path":"1"}]}`, 400, "value for 1 is missing"},
		{"two values for one resource", `{"op":"write","path":"/1/0","values":[{"path":"1","value":"2"},{"path":"/1/0/1","value":"3"}]}`, 400, "two values"},
		{"create with absolute instance paths on an object", `{"op":"create","path":"/1","values":[{"path":"/1/4/0","value":"2"}]}`, 400, "relative to the new instance"},
		{"create with value", `{"op":"create","path":"/1","value":"2"}`, 400, "takes values, not value"},
		{"create on a resource", `{"op":"create","path":"/1/0/1","values":[{"path":"0","value":"2"}]}`, 400, "object or new instance path"},
		{"write-attributes without attributes", `{"op":"write-attributes","path":"/3/0/9"}`, 400, "needs attributes"},
		{"attribute is an array", `{"op":"write-attributes","path":"/3/0/9","attributes":{"pmin":[1]}}`, 400, `attribute "pmin" must be`},
		{"bad wait", `{"op":"read","path":"/3/0","wait":"soon"}`, 400, "not a duration"},
		{"negative wait", `{"op":"read","path":"/3/0","wait":"-1s"}`, 400, "negative"},
		{"wait too long", `{"op":"read","path":"/3/0","wait":"11m"}`, 400, "maximum of 10m0s"},
		{"bad expires", `{"op":"read","path":"/3/0","expires":"tomorrow"}`, 400, "neither RFC 3339 nor a duration"},
		{"past expires", `{"op":"read","path":"/3/0","expires":"2020-01-01T00:00:00Z"}`, 400, "not in the future"},
		{"body too large", `{"op":"write","path":"/3303/0/5750","value":"` + strings.Repeat("x", maxBodyBytes) + `"}`, 413, "larger than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newOpsFixture(t)
			r := f.do("POST", "/api/v1/devices/dev-1/ops", tt.body)
			f.mustStatus(r, tt.status)
			if msg := r.errorMessage(t); !strings.Contains(msg, tt.want) {
				t.Errorf("message %q, want it to contain %q", msg, tt.want)
			}
			if len(f.ops.order) != 0 {
				t.Errorf("operation submitted: %+v", f.ops.last())
			}
		})
	}
}

func TestOpErrorStatus(t *testing.T) {
	tests := []struct {
		name      string
		submitErr error // Submit's error
		err       error // the finished operation's
		status    int
		coapCode  string
		want      string
	}{
		{"not registered", opErr("read", lwm2m.ErrNotRegistered), nil, 404, "", "device not registered"},
		{"queue full", opErr("read", lwm2m.ErrQueueFull), nil, 429, "", "queue full"},
		{"rejected before sending", opErr("read", errors.New("read needs an object, instance or resource path")), nil, 400, "", "needs an object"},
		{"not found on the device", nil, opErr("read", lwm2m.ErrTargetNotFound), 502, "4.04", "4.04 Not Found"},
		{"method not allowed", nil, opErr("read", lwm2m.ErrMethodNotAllowed), 502, "4.05", "4.05 Method Not Allowed"},
		{"device internal error", nil, opErr("read", lwm2m.ErrDeviceInternal), 502, "5.00", "5.00"},
		{"diagnostic kept", nil, &lwm2m.OpError{Op: "write", Endpoint: "dev-1", Path: "/1/0/1",
			Diagnostic: "lifetime too short", Err: lwm2m.ErrBadRequest}, 502, "4.00", "lifetime too short"},
		{"unreadable answer", nil, opErr("read", fmt.Errorf("%w: truncated tlv", lwm2m.ErrUnexpectedResponse)), 502, "", "unexpected response"},
		{"session closed", nil, opErr("read", coap.ErrSessionClosed), 502, "", "session closed"},
		{"no answer in time", nil, opErr("read", context.DeadlineExceeded), 504, "", "deadline exceeded"},
		{"expired in the queue", nil, opErr("read", lwm2m.ErrExpired), 504, "", "expired"},
		{"withdrawn", nil, opErr("read", lwm2m.ErrCancelled), 409, "", "cancelled"},
		{"cannot encode", nil, opErr("write", fmt.Errorf("encode: %w", model.ErrUnsupportedFormat)), 400, "", "unsupported content format"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newOpsFixture(t)
			f.ops.submitErr = tt.submitErr
			f.answer(lwm2m.Result{}, tt.err)
			r := f.do("POST", "/api/v1/devices/dev-1/ops", `{"op":"read","path":"/3/0/9"}`)
			f.mustStatus(r, tt.status)
			body := decode[OpErrorBody](t, r.body)
			if body.CoAPCode != tt.coapCode || !strings.Contains(body.Error, tt.want) {
				t.Errorf("body %s, want coap_code %q and %q", r.body, tt.coapCode, tt.want)
			}
			if tt.coapCode == "" && strings.Contains(string(r.body), "coap_code") {
				t.Errorf("coap_code without a device code: %s", r.body)
			}
		})
	}

	t.Run("unexpected submit error is internal", func(t *testing.T) {
		f := newOpsFixture(t)
		f.ops.submitErr = errors.New("operator exploded at 0xdeadbeef")
		r := f.do("POST", "/api/v1/devices/dev-1/ops", `{"op":"read","path":"/3/0/9"}`)
		f.mustStatus(r, http.StatusInternalServerError)
		if msg := r.errorMessage(t); msg != "internal error" {
			t.Errorf("message %q", msg)
		}
	})
	t.Run("device errors are logged", func(t *testing.T) {
		f := newOpsFixture(t)
		f.answer(lwm2m.Result{}, opErr("read", lwm2m.ErrTargetNotFound))
		f.do("POST", "/api/v1/devices/dev-1/ops", `{"op":"read","path":"/3/0/9"}`)
		if logs := f.logs.String(); !strings.Contains(logs, "device operation failed") || !strings.Contains(logs, "4.04") {
			t.Errorf("logs %s", logs)
		}
	})
}

func TestAsyncTicketFlow(t *testing.T) {
	f := newOpsFixture(t)
	r := f.do("POST", "/api/v1/devices/dev-1/ops", `{"op":"read","path":"/3/0","async":true,"expires":"2h"}`)
	f.mustStatus(r, http.StatusAccepted)
	tk := decode[TicketBody](t, r.body).Ticket
	if tk.ID == "" || tk.Endpoint != "dev-1" || tk.Op != "read" || tk.Path != "/3/0" || tk.State != "queued" ||
		!tk.Created.Equal(testNow) || !tk.Expires.Equal(testNow.Add(2*time.Hour)) || tk.Finished != nil ||
		tk.Result != nil || tk.Error != "" {
		t.Fatalf("ticket %s", r.body)
	}
	if loc := r.header.Get("Location"); loc != "/api/v1/tickets/"+tk.ID {
		t.Errorf("Location %q", loc)
	}

	r = f.do("GET", "/api/v1/devices/dev-1/queue", "")
	f.mustStatus(r, http.StatusOK)
	if q := decode[TicketList](t, r.body); len(q.Tickets) != 1 || q.Tickets[0].ID != tk.ID {
		t.Fatalf("queue %s", r.body)
	}
	if r := f.do("GET", "/api/v1/devices/dev-2/queue", ""); !strings.Contains(string(r.body), `"tickets": []`) {
		t.Errorf("empty queue %s", r.body)
	}

	r = f.do("GET", "/api/v1/tickets/"+tk.ID, "")
	f.mustStatus(r, http.StatusOK)
	if got := decode[TicketBody](t, r.body).Ticket; got.State != "queued" {
		t.Fatalf("ticket %s", r.body)
	}

	// The device wakes up while a client waits on the ticket.
	go func() {
		time.Sleep(20 * time.Millisecond)
		f.ops.finish(tk.ID, lwm2m.Result{Code: coap.Content, Format: model.ContentFormatTLV,
			Values: []model.PathValue{pv(t, "/3/0/0", model.StringValue("OMA"))}}, nil)
	}()
	r = f.do("GET", "/api/v1/tickets/"+tk.ID+"?wait=5s", "")
	f.mustStatus(r, http.StatusOK)
	got := decode[TicketBody](t, r.body).Ticket
	if got.State != "done" || got.Result == nil || got.Result.Code != "2.05" || len(got.Result.Values) != 1 ||
		got.Result.Values[0].Name != "Manufacturer" || got.Finished == nil {
		t.Fatalf("finished ticket %s", r.body)
	}

	r = f.do("DELETE", "/api/v1/tickets/"+tk.ID, "")
	f.mustStatus(r, http.StatusConflict)
	if msg := r.errorMessage(t); !strings.Contains(msg, "is done") {
		t.Errorf("409 message %q", msg)
	}
	f.mustStatus(f.do("DELETE", "/api/v1/tickets/nope", ""), http.StatusNotFound)
	f.mustStatus(f.do("GET", "/api/v1/tickets/nope", ""), http.StatusNotFound)
	f.mustStatus(f.do("GET", "/api/v1/tickets/"+tk.ID+"?wait=forever", ""), http.StatusBadRequest)

	// Withdrawing a queued operation.
	r = f.do("POST", "/api/v1/devices/dev-1/ops", `{"op":"execute","path":"/3/0/4","async":true}`)
	f.mustStatus(r, http.StatusAccepted)
	id := decode[TicketBody](t, r.body).Ticket.ID
	f.mustStatus(f.do("DELETE", "/api/v1/tickets/"+id, ""), http.StatusNoContent)
	r = f.do("GET", "/api/v1/tickets/"+id, "")
	if got := decode[TicketBody](t, r.body).Ticket; got.State != "failed" || !strings.Contains(got.Error, "cancelled") {
		t.Errorf("withdrawn ticket %s", r.body)
	}

	// A failed ticket carries the device's code.
	r = f.do("POST", "/api/v1/devices/dev-1/ops", `{"op":"read","path":"/3/0/9","async":true}`)
	id = decode[TicketBody](t, r.body).Ticket.ID
	f.ops.finish(id, lwm2m.Result{}, opErr("read", lwm2m.ErrTargetNotFound))
	r = f.do("GET", "/api/v1/tickets/"+id, "")
	if got := decode[TicketBody](t, r.body).Ticket; got.State != "failed" || got.CoAPCode != "4.04" || got.Result != nil {
		t.Errorf("failed ticket %s", r.body)
	}
}

func TestSyncOpTimesOutIntoTicket(t *testing.T) {
	f := newOpsFixture(t)
	start := time.Now()
	r := f.do("POST", "/api/v1/devices/dev-1/ops", `{"op":"write","path":"/1/0/1","value":"300","wait":"50ms"}`)
	f.mustStatus(r, http.StatusAccepted)
	if d := time.Since(start); d < 50*time.Millisecond || d > 5*time.Second {
		t.Errorf("answered after %v", d)
	}
	tk := decode[TicketBody](t, r.body).Ticket
	if tk.State != "queued" || tk.Op != "write" {
		t.Fatalf("ticket %s", r.body)
	}
	// The operation is still queued for the device.
	if st, _ := f.ops.Ticket(tk.ID); st.State != lwm2m.TicketQueued {
		t.Errorf("state %s", st.State)
	}
	f.ops.finish(tk.ID, lwm2m.Result{Code: coap.Changed, Format: coap.NoFormat}, nil)
	r = f.do("GET", "/api/v1/tickets/"+tk.ID, "")
	if got := decode[TicketBody](t, r.body).Ticket; got.State != "done" || got.Result.Code != "2.04" {
		t.Errorf("ticket %s", r.body)
	}

	// The default wait is a minute; expires unset leaves the operator's default.
	g := newOpsFixture(t)
	g.answer(lwm2m.Result{Code: coap.Changed}, nil)
	g.mustStatus(g.do("POST", "/api/v1/devices/dev-1/ops", `{"op":"delete","path":"/1/1"}`), http.StatusOK)
	if st := g.ops.last(); !st.Expires.Equal(testNow.Add(24 * time.Hour)) {
		t.Errorf("expires %v", st.Expires)
	}
}

// streamServer serves f's handler over HTTP, for the NDJSON streams.
func streamServer(t *testing.T, f *opsFixture) *httptest.Server {
	ts := httptest.NewServer(f.handler)
	t.Cleanup(ts.Close)
	return ts
}

func openStream(t *testing.T, ctx context.Context, url string) (*http.Response, *bufio.Scanner) {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp, bufio.NewScanner(resp.Body)
}

func readLine(t *testing.T, sc *bufio.Scanner) NotificationView {
	t.Helper()
	if !sc.Scan() {
		t.Fatalf("stream ended: %v", sc.Err())
	}
	var n NotificationView
	if err := json.Unmarshal(sc.Bytes(), &n); err != nil {
		t.Fatalf("line %q: %v", sc.Text(), err)
	}
	return n
}

func waitClosed(t *testing.T, c <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-c:
	case <-time.After(5 * time.Second):
		t.Fatalf("%s did not happen", what)
	}
}

func TestObserveStream(t *testing.T) {
	f := newOpsFixture(t)
	ts := streamServer(t, f)
	w := newFakeWatch()
	f.ops.watches <- w
	f.ops.observeRes = lwm2m.Result{Code: coap.Content, Format: model.ContentFormatTLV,
		Values: []model.PathValue{pv(t, "/3/0/9", model.IntegerValue(87))}}

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	resp, sc := openStream(t, ctx, ts.URL+"/api/v1/devices/dev-1/observe?path=/3/0/9")
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/x-ndjson" {
		t.Fatalf("status %d, Content-Type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	first := readLine(t, sc)
	if !first.Initial || first.Endpoint != "dev-1" || first.Path != "/3/0/9" || len(first.Values) != 1 ||
		string(first.Values[0].Value) != "87" || first.Values[0].Name != "Battery Level" {
		t.Fatalf("first line %+v", first)
	}
	if op := f.ops.observedOps()[0]; op.Kind != lwm2m.OpObserve || op.Path.String() != "/3/0/9" {
		t.Fatalf("observed %+v", op)
	}

	received := testNow.Add(time.Minute)
	w.c <- lwm2m.Notification{Endpoint: "dev-1", Watch: "w1", Path: mustPath(t, "/3/0/9"), Received: received,
		Values: []model.PathValue{pv(t, "/3/0/9", model.IntegerValue(86))}}
	second := readLine(t, sc)
	if second.Initial || !second.Received.Equal(received) || string(second.Values[0].Value) != "86" {
		t.Fatalf("second line %+v", second)
	}
	w.c <- lwm2m.Notification{Endpoint: "dev-1", Path: mustPath(t, "/3/0/9"), Received: received, Reestablished: true,
		Values: []model.PathValue{pv(t, "/3/0/9", model.IntegerValue(85))}}
	if third := readLine(t, sc); !third.Reestablished {
		t.Fatalf("third line %+v", third)
	}

	// The client goes away: the observation is cancelled.
	cancel()
	resp.Body.Close()
	waitClosed(t, w.cancelled, "Watch.Cancel")
}

func TestObserveCompositeAndErrors(t *testing.T) {
	f := newOpsFixture(t)
	ts := streamServer(t, f)
	w := newFakeWatch()
	f.ops.watches <- w
	f.ops.observeRes = lwm2m.Result{Code: coap.Content, Values: []model.PathValue{
		pv(t, "/3/0/9", model.IntegerValue(87)), pv(t, "/1/0/1", model.UnsignedValue(300))}}
	resp, sc := openStream(t, t.Context(), ts.URL+"/api/v1/devices/dev-1/observe?path=/3/0/9&path=/1/0/1&format=112")
	first := readLine(t, sc)
	if first.Path != "/" || len(first.Values) != 2 {
		t.Fatalf("first line %+v", first)
	}
	op := f.ops.observedOps()[0]
	if op.Kind != lwm2m.OpObserveComposite || len(op.Paths) != 2 || op.Paths[1].String() != "/1/0/1" || op.Format != 112 {
		t.Fatalf("observed %+v", op)
	}
	close(w.c) // the watch ends on its own: so does the stream
	if sc.Scan() {
		t.Fatalf("line after the watch ended: %s", sc.Text())
	}
	resp.Body.Close()
	waitClosed(t, w.cancelled, "Watch.Cancel")

	for _, c := range []struct {
		query  string
		err    error
		status int
		code   string
	}{
		{"", nil, 400, ""},
		{"?path=/", nil, 400, ""},
		{"?path=/3/x", nil, 400, ""},
		{"?path=/3/0/9&format=x", nil, 400, ""},
		{"?path=/3/0/9", opErr("observe", lwm2m.ErrNotRegistered), 404, ""},
		{"?path=/3/0/9", opErr("observe", lwm2m.ErrMethodNotAllowed), 502, "4.05"},
		{"?path=/3/0/9", opErr("observe", lwm2m.ErrQueueFull), 429, ""},
	} {
		f.ops.mu.Lock()
		f.ops.observeErr = c.err
		f.ops.mu.Unlock()
		r := f.do("GET", "/api/v1/devices/dev-1/observe"+c.query, "")
		f.mustStatus(r, c.status)
		if body := decode[OpErrorBody](t, r.body); body.CoAPCode != c.code || body.Error == "" {
			t.Errorf("%s: body %s", c.query, r.body)
		}
	}
}

func TestSendStream(t *testing.T) {
	f := newOpsFixture(t)
	ts := streamServer(t, f)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	resp, sc := openStream(t, ctx, ts.URL+"/api/v1/devices/dev-1/send")
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/x-ndjson" {
		t.Fatalf("status %d, Content-Type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	sampled := testNow.Add(-time.Hour)
	for i := range 2 {
		v := pv(t, "/3303/0/5700", model.FloatValue(20.5+float64(i)))
		v.Time = sampled
		f.ops.sends <- lwm2m.Notification{Endpoint: "dev-1", Received: testNow, Values: []model.PathValue{v}}
		n := readLine(t, sc)
		if n.Path != "/" || n.Endpoint != "dev-1" || len(n.Values) != 1 || n.Values[0].Time == nil ||
			!n.Values[0].Time.Equal(sampled) || string(n.Values[0].Value) != fmt.Sprint(20.5+float64(i)) {
			t.Fatalf("line %d: %s", i, sc.Text())
		}
	}
	cancel()
	resp.Body.Close()
	select {
	case ep := <-f.ops.stopped:
		if ep != "dev-1" {
			t.Errorf("stopped %q", ep)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("subscription not stopped")
	}
}

func TestStopStreams(t *testing.T) {
	f := newOpsFixture(t)
	ts := streamServer(t, f)
	w := newFakeWatch()
	f.ops.watches <- w
	f.ops.observeRes = lwm2m.Result{Code: coap.Content, Values: []model.PathValue{pv(t, "/3/0/9", model.IntegerValue(1))}}
	_, obs := openStream(t, t.Context(), ts.URL+"/api/v1/devices/dev-1/observe?path=/3/0/9")
	readLine(t, obs)
	_, snd := openStream(t, t.Context(), ts.URL+"/api/v1/devices/dev-1/send")

	// A synchronous operation waiting for a sleeping device.
	waited := make(chan response, 1)
	go func() {
		waited <- f.do("POST", "/api/v1/devices/dev-1/ops", `{"op":"read","path":"/3/0","wait":"5m"}`)
	}()
	for f.ops.last().ID == "" {
		time.Sleep(time.Millisecond)
	}

	f.srv.StopStreams()
	if obs.Scan() || snd.Scan() {
		t.Fatal("a stream went on after StopStreams")
	}
	waitClosed(t, w.cancelled, "Watch.Cancel")
	select {
	case r := <-waited:
		f.mustStatus(r, http.StatusAccepted)
	case <-time.After(5 * time.Second):
		t.Fatal("the waiting operation did not answer")
	}
	r := f.do("GET", "/api/v1/devices/dev-1/observe?path=/3/0/9", "")
	f.mustStatus(r, http.StatusServiceUnavailable)
	f.mustStatus(f.do("GET", "/api/v1/devices/dev-1/send", ""), http.StatusServiceUnavailable)
}

// TestLongRequestsOutliveServerTimeouts: http.Server's ReadTimeout and
// WriteTimeout must not end a stream or a long wait.
func TestLongRequestsOutliveServerTimeouts(t *testing.T) {
	f := newOpsFixture(t)
	ts := httptest.NewUnstartedServer(f.handler)
	ts.Config.ReadTimeout = 100 * time.Millisecond
	ts.Config.WriteTimeout = 100 * time.Millisecond
	ts.Start()
	t.Cleanup(ts.Close)
	_, sc := openStream(t, t.Context(), ts.URL+"/api/v1/devices/dev-1/send")

	req, _ := http.NewRequest("POST", ts.URL+"/api/v1/devices/dev-1/ops", strings.NewReader(`{"op":"read","path":"/3/0/9","wait":"5s"}`))
	req.Header.Set("Authorization", "Bearer "+testToken)
	answered := make(chan int, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			answered <- 0
			return
		}
		resp.Body.Close()
		answered <- resp.StatusCode
	}()
	time.Sleep(300 * time.Millisecond)
	f.ops.sends <- lwm2m.Notification{Endpoint: "dev-1", Received: testNow,
		Values: []model.PathValue{pv(t, "/3/0/9", model.IntegerValue(5))}}
	if n := readLine(t, sc); string(n.Values[0].Value) != "5" {
		t.Fatalf("line %+v", n)
	}
	f.ops.finish(f.ops.last().ID, lwm2m.Result{Code: coap.Content, Values: []model.PathValue{pv(t, "/3/0/9", model.IntegerValue(5))}}, nil)
	if status := <-answered; status != http.StatusOK {
		t.Fatalf("the waiting operation got %d", status)
	}
}

// TestOperatorOperations runs the routes against a real Operator without
// registered devices.
func TestOperatorOperations(t *testing.T) {
	if OperatorOperations(nil) != nil {
		t.Fatal("OperatorOperations(nil) is not nil")
	}
	op := lwm2m.NewOperator(lwm2m.NewRegistry(lwm2m.RegistryConfig{}), lwm2m.OperatorConfig{})
	srv, err := New(Config{
		Devices: newMemDevices(), Registrations: memRegs{}, Token: testToken,
		Transport:  statsFunc(func() coap.Stats { return coap.Stats{} }),
		Operations: OperatorOperations(op),
	})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, srv: srv, handler: srv.Handler()}
	r := f.do("POST", "/api/v1/devices/dev-1/ops", `{"op":"read","path":"/3/0"}`)
	f.mustStatus(r, http.StatusNotFound)
	if msg := r.errorMessage(t); !strings.Contains(msg, "device not registered") {
		t.Errorf("message %q", msg)
	}
	f.mustStatus(f.do("GET", "/api/v1/devices/dev-1/observe?path=/3/0/9", ""), http.StatusNotFound)
	f.mustStatus(f.do("GET", "/api/v1/tickets/0011223344556677", ""), http.StatusNotFound)
	f.mustStatus(f.do("DELETE", "/api/v1/tickets/0011223344556677", ""), http.StatusNotFound)
	if r := f.do("GET", "/api/v1/devices/dev-1/queue", ""); !strings.Contains(string(r.body), `"tickets": []`) {
		t.Errorf("queue %s", r.body)
	}
}

func TestParseTypeName(t *testing.T) {
	for s, want := range map[string]model.Type{
		"string": model.TypeString, "Integer": model.TypeInteger, "unsigned integer": model.TypeUnsignedInteger,
		"uint": model.TypeUnsignedInteger, "FLOAT": model.TypeFloat, "bool": model.TypeBoolean,
		"opaque": model.TypeOpaque, "time": model.TypeTime, "objlnk": model.TypeObjectLink,
	} {
		if got, ok := ParseTypeName(s); !ok || got != want {
			t.Errorf("ParseTypeName(%q) = %v, %v", s, got, ok)
		}
	}
	// Every model type name reads back.
	for ty := model.TypeString; ty <= model.TypeObjectLink; ty++ {
		if got, ok := ParseTypeName(ty.String()); !ok || got != ty {
			t.Errorf("ParseTypeName(%q) = %v, %v", ty, got, ok)
		}
	}
	if _, ok := ParseTypeName("decimal"); ok {
		t.Error("decimal accepted")
	}
}
