package lwm2m

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/fotahub/fota/coap"
)

const objectList = `</>;rt="oma.lwm2m";ct=11543,</1/0>,</3/0>,</5/0>`

// rdRequest builds a request with the query given as "a=1&b" and a
// link-format payload.
func rdRequest(method coap.Code, path, query, payload string) *coap.Request {
	req := &coap.Request{
		Method:        method,
		Path:          path,
		ContentFormat: ContentFormatLinkFormat,
		Accept:        coap.NoFormat,
		Payload:       []byte(payload),
	}
	if query != "" {
		req.Query = strings.Split(query, "&")
	}
	if payload == "" {
		req.ContentFormat = coap.NoFormat
	}
	return req
}

func TestParseRegister(t *testing.T) {
	objects, _ := ParseLinks([]byte(objectList))
	tests := []struct {
		name    string
		query   string
		payload string
		noCF    bool
		want    RegisterRequest
	}{
		{
			name: "1.0 defaults", query: "ep=dev1", payload: objectList,
			want: RegisterRequest{Endpoint: "dev1", Version: "1.0", Lifetime: DefaultLifetime, Binding: "U", RootPath: "/", Objects: objects},
		},
		{
			name: "1.0 queue binding and sms", query: "ep=dev1&lt=300&lwm2m=1.0&b=UQS&sms=+4915112345678", payload: objectList,
			want: RegisterRequest{Endpoint: "dev1", Version: "1.0", Lifetime: 300 * time.Second, Binding: "UQS", Queue: true,
				SMSNumber: "+4915112345678", RootPath: "/", Objects: objects},
		},
		{
			name: "1.0 ignores Q parameter", query: "ep=dev1&b=U&Q", payload: objectList,
			want: RegisterRequest{Endpoint: "dev1", Version: "1.0", Lifetime: DefaultLifetime, Binding: "U", RootPath: "/", Objects: objects},
		},
		{
			name: "1.1 queue flag", query: "ep=dev1&lt=60&lwm2m=1.1&b=UT&Q", payload: objectList,
			want: RegisterRequest{Endpoint: "dev1", Version: "1.1", Lifetime: time.Minute, Binding: "UT", Queue: true, RootPath: "/", Objects: objects},
		},
		{
			name: "1.1 legacy queue binding", query: "ep=dev1&lwm2m=1.1&b=UQ", payload: objectList,
			want: RegisterRequest{Endpoint: "dev1", Version: "1.1", Lifetime: DefaultLifetime, Binding: "UQ", Queue: true, RootPath: "/", Objects: objects},
		},
		{
			name: "1.1 without endpoint", query: "lwm2m=1.1", payload: objectList,
			want: RegisterRequest{Version: "1.1", Lifetime: DefaultLifetime, Binding: "U", RootPath: "/", Objects: objects},
		},
		{
			name: "1.2 mqtt and http", query: "ep=dev1&lwm2m=1.2&b=MHU", payload: objectList,
			want: RegisterRequest{Endpoint: "dev1", Version: "1.2", Lifetime: DefaultLifetime, Binding: "MHU", RootPath: "/", Objects: objects},
		},
		{
			name: "unknown parameters ignored", query: "ep=dev1&foo=bar&apn&lwm2m=1.1&x=", payload: objectList,
			want: RegisterRequest{Endpoint: "dev1", Version: "1.1", Lifetime: DefaultLifetime, Binding: "U", RootPath: "/", Objects: objects},
		},
		{
			name: "largest lifetime", query: "ep=dev1&lt=4294967295", payload: objectList,
			want: RegisterRequest{Endpoint: "dev1", Version: "1.0", Lifetime: 4294967295 * time.Second, Binding: "U", RootPath: "/", Objects: objects},
		},
		{
			name: "no content format", query: "ep=dev1", payload: "</3/0>", noCF: true,
			want: RegisterRequest{Endpoint: "dev1", Version: "1.0", Lifetime: DefaultLifetime, Binding: "U", RootPath: "/", Objects: []Link{{Path: "/3/0"}}},
		},
		{
			name: "alternate root path", query: "ep=dev1", payload: `</lwm2m>;rt="oma.lwm2m",</lwm2m/3/0>,</other/x>`,
			want: RegisterRequest{Endpoint: "dev1", Version: "1.0", Lifetime: DefaultLifetime, Binding: "U", RootPath: "/lwm2m",
				Objects: []Link{{Path: "/lwm2m", Attrs: attrs("rt", "oma.lwm2m")}, {Path: "/lwm2m/3/0"}, {Path: "/other/x"}}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := rdRequest(coap.POST, "/rd", tc.query, tc.payload)
			if tc.noCF {
				req.ContentFormat = coap.NoFormat
			}
			got, err := ParseRegister(req)
			if err != nil {
				t.Fatalf("ParseRegister(%q): %v", tc.query, err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("ParseRegister(%q)\n got %+v\nwant %+v", tc.query, got, tc.want)
			}
		})
	}
}

// badRegisterCases are Register requests the parser must refuse, with
// the code it must answer.
var badRegisterCases = []struct {
	name    string
	query   string
	payload string
	cf      int
	want    coap.Code
}{
	{"1.0 without endpoint", "lt=60", objectList, 40, coap.BadRequest},
	{"1.0 without endpoint explicit version", "lwm2m=1.0&b=U", objectList, 40, coap.BadRequest},
	{"empty endpoint", "ep=", objectList, 40, coap.BadRequest},
	{"endpoint without value", "ep&lwm2m=1.1", objectList, 40, coap.BadRequest},
	{"endpoint with control character", "ep=a\x00b", objectList, 40, coap.BadRequest},
	{"endpoint too long", "ep=" + strings.Repeat("e", MaxEndpointLength+1), objectList, 40, coap.BadRequest},
	{"endpoint given twice", "ep=a&ep=b", objectList, 40, coap.BadRequest},
	{"lifetime not a number", "ep=a&lt=abc", objectList, 40, coap.BadRequest},
	{"lifetime zero", "ep=a&lt=0", objectList, 40, coap.BadRequest},
	{"lifetime negative", "ep=a&lt=-5", objectList, 40, coap.BadRequest},
	{"lifetime with sign", "ep=a&lt=+5", objectList, 40, coap.BadRequest},
	{"lifetime too large", "ep=a&lt=4294967296", objectList, 40, coap.BadRequest},
	{"lifetime empty", "ep=a&lt=", objectList, 40, coap.BadRequest},
	{"lifetime fraction", "ep=a&lt=1.5", objectList, 40, coap.BadRequest},
	{"version 1.3", "ep=a&lwm2m=1.3", objectList, 40, coap.PreconditionFailed},
	{"version 2.0", "ep=a&lwm2m=2.0", objectList, 40, coap.PreconditionFailed},
	{"version checked first", "lwm2m=1.3&b=XYZ&lt=abc", "garbage", 0, coap.PreconditionFailed},
	{"version malformed word", "ep=a&lwm2m=abc", objectList, 40, coap.BadRequest},
	{"version without minor", "ep=a&lwm2m=1", objectList, 40, coap.BadRequest},
	{"version three parts", "ep=a&lwm2m=1.0.1", objectList, 40, coap.BadRequest},
	{"version leading zero", "ep=a&lwm2m=01.0", objectList, 40, coap.BadRequest},
	{"version empty", "ep=a&lwm2m=", objectList, 40, coap.BadRequest},
	{"binding unknown letter", "ep=a&b=X", objectList, 40, coap.BadRequest},
	{"binding empty", "ep=a&b=", objectList, 40, coap.BadRequest},
	{"binding lowercase", "ep=a&b=u", objectList, 40, coap.BadRequest},
	{"binding 1.0 order", "ep=a&b=QU", objectList, 40, coap.BadRequest},
	{"binding tcp in 1.0", "ep=a&b=T", objectList, 40, coap.BadRequest},
	{"binding mqtt in 1.1", "ep=a&lwm2m=1.1&b=UM", objectList, 40, coap.BadRequest},
	{"binding repeated letter", "ep=a&lwm2m=1.1&b=UU", objectList, 40, coap.BadRequest},
	{"binding queue only", "ep=a&lwm2m=1.1&b=Q", objectList, 40, coap.BadRequest},
	{"binding repeated queue", "ep=a&lwm2m=1.2&b=UQQ", objectList, 40, coap.BadRequest},
	{"queue flag with value", "ep=a&lwm2m=1.1&Q=1", objectList, 40, coap.BadRequest},
	{"sms with control character", "ep=a&sms=1\n2", objectList, 40, coap.BadRequest},
	{"content format lwm2m json", "ep=a", objectList, 11543, coap.BadRequest},
	{"content format text", "ep=a", objectList, 0, coap.BadRequest},
	{"empty payload", "ep=a", "", coap.NoFormat, coap.BadRequest},
	{"whitespace payload", "ep=a", "  ", 40, coap.BadRequest},
	{"malformed link-format", "ep=a", "</1/0", 40, coap.BadRequest},
	{"not link-format", "ep=a", `{"objects":[3]}`, 40, coap.BadRequest},
	{"resource in object list", "ep=a", "</3/0/1>", 40, coap.BadRequest},
	{"non-numeric object", "ep=a", "</abc>", 40, coap.BadRequest},
	{"object id out of range", "ep=a", "</70000/0>", 40, coap.BadRequest},
	{"numeric root path", "ep=a", `</3>;rt="oma.lwm2m",</3/0>`, 40, coap.BadRequest},
	{"root path with trailing slash", "ep=a", `</lwm2m/>;rt="oma.lwm2m",</lwm2m/3/0>`, 40, coap.BadRequest},
	{"payload too large", "ep=a", "</3/0>," + strings.Repeat("</3/0>,", MaxRegisterPayload/7) + "</3/0>", 40, coap.RequestEntityTooLarge},
}

func TestParseRegisterErrors(t *testing.T) {
	for _, tc := range badRegisterCases {
		t.Run(tc.name, func(t *testing.T) {
			req := rdRequest(coap.POST, "/rd", tc.query, tc.payload)
			req.ContentFormat = tc.cf
			got, err := ParseRegister(req)
			if err == nil {
				t.Fatalf("ParseRegister(%q) = %+v, want %s", tc.query, got, tc.want)
			}
			var re *RequestError
			if !errors.As(err, &re) {
				t.Fatalf("error %v is not a *RequestError", err)
			}
			if re.Code != tc.want {
				t.Errorf("ParseRegister(%q): %v, want code %s", tc.query, err, tc.want)
			}
		})
	}
}

func TestParseUpdate(t *testing.T) {
	tests := []struct {
		name    string
		version string
		query   string
		payload string
		want    UpdateRequest
	}{
		{name: "empty update", version: "1.0", want: UpdateRequest{}},
		{name: "lifetime", version: "1.0", query: "lt=120", want: UpdateRequest{Lifetime: 2 * time.Minute}},
		{name: "binding 1.0", version: "1.0", query: "b=UQ", want: UpdateRequest{Binding: "UQ"}},
		{name: "binding 1.1 with queue flag", version: "1.1", query: "b=T&Q", want: UpdateRequest{Binding: "T", QueueParam: true}},
		{name: "sms cleared", version: "1.1", query: "sms=", want: UpdateRequest{SMSSet: true}},
		{name: "unknown and register-only parameters ignored", version: "1.2", query: "ep=other&lwm2m=1.0&z=1", want: UpdateRequest{}},
		{
			name: "new object list", version: "1.1", payload: `</lwm2m>;rt="oma.lwm2m",</lwm2m/3/0>`,
			want: UpdateRequest{Objects: []Link{{Path: "/lwm2m", Attrs: attrs("rt", "oma.lwm2m")}, {Path: "/lwm2m/3/0"}}, RootPath: "/lwm2m"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseUpdate(rdRequest(coap.POST, "/rd/x", tc.query, tc.payload), tc.version)
			if err != nil {
				t.Fatalf("ParseUpdate(%q): %v", tc.query, err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("ParseUpdate(%q)\n got %+v\nwant %+v", tc.query, got, tc.want)
			}
		})
	}
}

func TestParseUpdateErrors(t *testing.T) {
	tests := []struct {
		name    string
		version string
		query   string
		payload string
		cf      int
	}{
		{"lifetime zero", "1.0", "lt=0", "", coap.NoFormat},
		{"lifetime not a number", "1.1", "lt=abc", "", coap.NoFormat},
		{"binding of another version", "1.0", "b=T", "", coap.NoFormat},
		{"binding mqtt in 1.1", "1.1", "b=M", "", coap.NoFormat},
		{"queue flag with value", "1.1", "Q=yes", "", coap.NoFormat},
		{"wrong content format", "1.1", "", "</3/0>", 11542},
		{"wrong content format without payload", "1.1", "", "", 0},
		{"malformed object list", "1.1", "", "</3/0", 40},
		{"invalid object path", "1.1", "", "</3/0/0/0/0>", 40},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := rdRequest(coap.POST, "/rd/x", tc.query, tc.payload)
			req.ContentFormat = tc.cf
			if got, err := ParseUpdate(req, tc.version); CodeOf(err) != coap.BadRequest {
				t.Errorf("ParseUpdate(%q) = %+v, %v; want 4.00", tc.query, got, err)
			}
		})
	}
}

func TestUpdateQueueMode(t *testing.T) {
	tests := []struct {
		name        string
		version     string
		binding     string
		queue       bool
		query       string
		wantBinding string
		wantQueue   bool
	}{
		{name: "1.0 binding gains Q", version: "1.0", binding: "U", query: "b=UQ", wantBinding: "UQ", wantQueue: true},
		{name: "1.0 binding loses Q", version: "1.0", binding: "UQ", queue: true, query: "b=U", wantBinding: "U"},
		{name: "1.0 no binding keeps queue", version: "1.0", binding: "UQ", queue: true, query: "lt=5", wantBinding: "UQ", wantQueue: true},
		{name: "1.1 flag sets queue", version: "1.1", binding: "U", query: "Q", wantBinding: "U", wantQueue: true},
		{name: "1.1 new binding keeps flag queue", version: "1.1", binding: "U", queue: true, query: "b=UT", wantBinding: "UT", wantQueue: true},
		{name: "1.1 legacy binding loses Q", version: "1.1", binding: "UQ", queue: true, query: "b=U", wantBinding: "U"},
		{name: "1.1 legacy binding gains Q", version: "1.1", binding: "U", query: "b=UQ", wantBinding: "UQ", wantQueue: true},
		{name: "1.2 nothing said keeps queue", version: "1.2", binding: "U", queue: true, query: "", wantBinding: "U", wantQueue: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u, err := ParseUpdate(rdRequest(coap.POST, "/rd/x", tc.query, ""), tc.version)
			if err != nil {
				t.Fatalf("ParseUpdate(%q): %v", tc.query, err)
			}
			got := u.Apply(Registration{Version: tc.version, Binding: tc.binding, Queue: tc.queue})
			if got.Binding != tc.wantBinding || got.Queue != tc.wantQueue {
				t.Errorf("after %q: binding %q queue %v, want %q %v", tc.query, got.Binding, got.Queue, tc.wantBinding, tc.wantQueue)
			}
		})
	}
}

func FuzzRegisterRequest(f *testing.F) {
	f.Add("ep=dev1&lt=60&lwm2m=1.1&b=UQ&Q", []byte(objectList), 40)
	f.Add("ep=dev1&lwm2m=1.2&b=MHUTSN&sms=123", []byte(`</lwm2m>;rt="oma.lwm2m",</lwm2m/3/0>`), -1)
	f.Add("lwm2m=1.1", []byte("</3/0>"), 40)
	for _, tc := range badRegisterCases {
		f.Add(tc.query, []byte(tc.payload), tc.cf)
	}
	f.Fuzz(func(t *testing.T, query string, payload []byte, cf int) {
		req := &coap.Request{Method: coap.POST, Path: "/rd", Query: strings.Split(query, "&"), ContentFormat: cf, Payload: payload}
		if r, err := ParseRegister(req); err == nil {
			checkRegisterInvariants(t, r)
		} else if c := CodeOf(err); c != coap.BadRequest && c != coap.PreconditionFailed && c != coap.RequestEntityTooLarge {
			t.Fatalf("ParseRegister(%q): code %s", query, c)
		}
		for _, v := range []string{Version10, Version11, Version12} {
			if u, err := ParseUpdate(req, v); err == nil {
				reg := u.Apply(Registration{Version: v, Binding: "U", Lifetime: time.Minute})
				if reg.Lifetime <= 0 || reg.Binding == "" {
					t.Fatalf("update %q made %+v", query, reg)
				}
			}
		}
	})
}

// checkRegisterInvariants holds for every Register the parser accepts.
func checkRegisterInvariants(t testing.TB, r RegisterRequest) {
	t.Helper()
	switch {
	case r.Version != Version10 && r.Version != Version11 && r.Version != Version12:
		t.Fatalf("version %q accepted", r.Version)
	case r.Version == Version10 && r.Endpoint == "":
		t.Fatalf("1.0 register without endpoint accepted")
	case r.Lifetime <= 0:
		t.Fatalf("lifetime %v accepted", r.Lifetime)
	case len(r.Objects) == 0:
		t.Fatalf("empty object list accepted")
	case !strings.HasPrefix(r.RootPath, "/"):
		t.Fatalf("root path %q accepted", r.RootPath)
	}
	if _, err := parseBinding(r.Binding, r.Version); err != nil {
		t.Fatalf("binding %q accepted: %v", r.Binding, err)
	}
	if r.Endpoint != "" && checkEndpoint(r.Endpoint) != nil {
		t.Fatalf("endpoint %q accepted", r.Endpoint)
	}
}
