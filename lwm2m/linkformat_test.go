package lwm2m

import (
	"errors"
	"reflect"
	"runtime"
	"strings"
	"testing"
)

// attrs builds attributes from key, value pairs.
func attrs(kv ...string) []LinkAttr {
	out := make([]LinkAttr, 0, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		out = append(out, LinkAttr{Key: kv[i], Value: kv[i+1]})
	}
	return out
}

// validLinkCases are documents ParseLinks must accept, with what it must
// read; the fuzz target starts from them too.
var validLinkCases = []struct {
	name string
	in   string
	want []Link
}{
	{
		name: "lwm2m 1.0 register example",
		in:   `</>;rt="oma.lwm2m";ct=11543,</1/101>,</1/102>,</2/0>,</2/1>,</2/2>,</3/0>,</4/0>,</5>`,
		want: []Link{
			{Path: "/", Attrs: attrs("rt", "oma.lwm2m", "ct", "11543")},
			{Path: "/1/101"}, {Path: "/1/102"}, {Path: "/2/0"}, {Path: "/2/1"}, {Path: "/2/2"},
			{Path: "/3/0"}, {Path: "/4/0"}, {Path: "/5"},
		},
	},
	{
		name: "lwm2m 1.1 object versions",
		in:   `</1>;ver=1.1,</1/0>,</3/0>;ver=1.1,</5>;ver=1.0`,
		want: []Link{
			{Path: "/1", Attrs: attrs("ver", "1.1")}, {Path: "/1/0"},
			{Path: "/3/0", Attrs: attrs("ver", "1.1")}, {Path: "/5", Attrs: attrs("ver", "1.0")},
		},
	},
	{
		name: "lwm2m 1.2 content format list",
		in:   `</>;rt="oma.lwm2m";ct="60 110 112 11542 11543",</3/0>`,
		want: []Link{{Path: "/", Attrs: attrs("rt", "oma.lwm2m", "ct", "60 110 112 11542 11543")}, {Path: "/3/0"}},
	},
	{
		name: "alternate root path",
		in:   `</lwm2m>;rt="oma.lwm2m",</lwm2m/1/0>,</lwm2m/3/0>`,
		want: []Link{{Path: "/lwm2m", Attrs: attrs("rt", "oma.lwm2m")}, {Path: "/lwm2m/1/0"}, {Path: "/lwm2m/3/0"}},
	},
	{
		name: "rfc6690 5 if",
		in:   `</sensors/temp>;if="sensor",</sensors/light>;if="sensor"`,
		want: []Link{{Path: "/sensors/temp", Attrs: attrs("if", "sensor")}, {Path: "/sensors/light", Attrs: attrs("if", "sensor")}},
	},
	{
		name: "rfc6690 5 anchor and rel",
		in: `</sensors>;ct=40;title="Sensor Index",</sensors/temp>;rt="temperature-c";if="sensor",` +
			`<http://www.example.com/sensors/t123>;anchor="/sensors/temp";rel="describedby",` +
			`</t>;anchor="/sensors/temp";rel="alternate"`,
		want: []Link{
			{Path: "/sensors", Attrs: attrs("ct", "40", "title", "Sensor Index")},
			{Path: "/sensors/temp", Attrs: attrs("rt", "temperature-c", "if", "sensor")},
			{Path: "http://www.example.com/sensors/t123", Attrs: attrs("anchor", "/sensors/temp", "rel", "describedby")},
			{Path: "/t", Attrs: attrs("anchor", "/sensors/temp", "rel", "alternate")},
		},
	},
	{
		name: "rfc6690 5 sz",
		in:   `</firmware/v2.1>;rt="firmware";sz=262144`,
		want: []Link{{Path: "/firmware/v2.1", Attrs: attrs("rt", "firmware", "sz", "262144")}},
	},
	{
		name: "comma and semicolon inside quotes",
		in:   `</a>;title="x, y; z",</b>;rt="one;two,three"`,
		want: []Link{{Path: "/a", Attrs: attrs("title", "x, y; z")}, {Path: "/b", Attrs: attrs("rt", "one;two,three")}},
	},
	{
		name: "escapes in quotes",
		in:   `</a>;title="say \"hi\" \\o/ \x"`,
		want: []Link{{Path: "/a", Attrs: attrs("title", `say "hi" \o/ x`)}},
	},
	{
		name: "empty quoted value",
		in:   `</a>;title=""`,
		want: []Link{{Path: "/a", Attrs: attrs("title", "")}},
	},
	{
		name: "bare attributes",
		in:   `</a>;obs;b=1;ext`,
		want: []Link{{Path: "/a", Attrs: attrs("obs", "", "b", "1", "ext", "")}},
	},
	{
		name: "whitespace around separators",
		in:   " \t</1/0> ;ver = 1.1 ,\r\n\t</3/0>; rt = \"x y\" \n",
		want: []Link{{Path: "/1/0", Attrs: attrs("ver", "1.1")}, {Path: "/3/0", Attrs: attrs("rt", "x y")}},
	},
	{
		name: "ext-value name",
		in:   `</a>;title*=UTF-8'de'n%c3%a4chstes%20Kapitel`,
		want: []Link{{Path: "/a", Attrs: attrs("title*", "UTF-8'de'n%c3%a4chstes%20Kapitel")}},
	},
	{
		name: "percent-encoded target",
		in:   `</a%20b/c,d;e=f>`,
		want: []Link{{Path: "/a%20b/c,d;e=f"}},
	},
	{
		name: "utf-8 in quotes",
		in:   `</a>;title="Température ✓"`,
		want: []Link{{Path: "/a", Attrs: attrs("title", "Température ✓")}},
	},
	{name: "empty document", in: "", want: nil},
	{name: "only whitespace", in: " \r\n\t", want: nil},
}

func TestParseLinks(t *testing.T) {
	for _, tc := range validLinkCases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseLinks([]byte(tc.in))
			if err != nil {
				t.Fatalf("ParseLinks(%q): %v", tc.in, err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("ParseLinks(%q)\n got %#v\nwant %#v", tc.in, got, tc.want)
			}
		})
	}
}

func TestParseLinksErrors(t *testing.T) {
	tests := []struct {
		name, in, reason string
		offset           int
	}{
		{"missing angle brackets", `/1/0`, "must start with '<'", 0},
		{"missing closing bracket", `</1/0`, "missing '>'", 0},
		{"missing closing bracket before next link", `</1/0,</3/0>`, "missing '>'", 6},
		{"empty target", `<>`, "empty link target", 1},
		{"space in target", `</a b>`, "invalid character ' '", 3},
		{"bad percent escape", `</a%zz>`, "invalid character '%'", 3},
		{"unterminated quote", `</a>;title="x, y`, "unterminated quoted string", 11},
		{"unterminated escape", `</a>;title="x\`, "unterminated quoted string", 11},
		{"escaped control character", "</a>;t=\"\\\x01\"", "bad escape", 8},
		{"control character in quotes", "</a>;t=\"a\nb\"", "control character", 9},
		{"empty attribute", `</a>;`, "expected a name", 5},
		{"attribute without name", `</a>;=x`, "expected a name", 5},
		{"double semicolon", `</a>;;b`, "expected a name", 5},
		{"missing value", `</a>;t=`, "missing value", 7},
		{"missing value before next", `</a>;t=;u`, "missing value", 7},
		{"quote after token", `</a>;t=x"y"`, "unexpected '\"'", 8},
		{"token after quote", `</a>;t="x"y`, "unexpected 'y'", 10},
		{"trailing comma", `</a>,`, "trailing ','", 5},
		{"double comma", `</a>,,</b>`, "must start with '<'", 5},
		{"garbage after link", `</a> x`, "expected ','", 5},
		{"two links without comma", `</a></b>`, "expected ','", 4},
		{"invalid utf-8", "</a>;t=\"\xff\"", "invalid UTF-8", 8},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			links, err := ParseLinks([]byte(tc.in))
			if err == nil {
				t.Fatalf("ParseLinks(%q) = %v, want error", tc.in, links)
			}
			var lerr *LinkFormatError
			if !errors.As(err, &lerr) {
				t.Fatalf("error %v is not a *LinkFormatError", err)
			}
			if !strings.Contains(lerr.Reason, tc.reason) || lerr.Offset != tc.offset {
				t.Errorf("ParseLinks(%q) error %q at %d, want %q at %d", tc.in, lerr.Reason, lerr.Offset, tc.reason, tc.offset)
			}
		})
	}
}

// TestParseLinksAllocationBounded holds ParseLinks to memory linear in its
// input. The first case is a regression: each escaped quoted value once
// reserved a buffer the size of the rest of the document, which made a
// 100 KB document of escaped values allocate hundreds of megabytes.
func TestParseLinksAllocationBounded(t *testing.T) {
	tests := []struct{ name, unit string }{
		{"many escaped values", `</1/0>;a=b;c="d\"e",`},
		{"many short links", `</a>,`},
		{"many bare attributes", `</a>;b;c;d;e;f;g;h,`},
		{"many quoted values", `</a>;t="x y";u="z",`},
	}
	const size = 100 << 10
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := []byte(strings.Repeat(tc.unit, size/len(tc.unit)) + "</end>")
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			if _, err := ParseLinks(in); err != nil {
				t.Fatal(err)
			}
			runtime.ReadMemStats(&after)
			// A Link is 40 bytes for at least 4 input bytes, a LinkAttr 32
			// for at least 2; slice doubling at most doubles that.
			if got, limit := after.TotalAlloc-before.TotalAlloc, uint64(64*len(in)); got > limit {
				t.Fatalf("parsing %d bytes allocated %d bytes, limit %d", len(in), got, limit)
			}
		})
	}
}

func TestFormatLinks(t *testing.T) {
	tests := []struct {
		name  string
		links []Link
		want  string
	}{
		{
			name: "lwm2m register",
			links: []Link{
				{Path: "/", Attrs: attrs("rt", "oma.lwm2m", "ct", "11543")},
				{Path: "/1/0"}, {Path: "/3/0", Attrs: attrs("ver", "1.1")}, {Path: "/5", Attrs: attrs("ver", "1.0")},
			},
			want: `</>;rt="oma.lwm2m";ct=11543,</1/0>,</3/0>;ver=1.1,</5>;ver=1.0`,
		},
		{
			name:  "quotes when needed",
			links: []Link{{Path: "/a", Attrs: attrs("ct", "60 110", "x", "a,b", "y", `q"\`)}},
			want:  `</a>;ct="60 110";x="a,b";y="q\"\\"`,
		},
		{
			name:  "bare attribute",
			links: []Link{{Path: "/a", Attrs: attrs("obs", "")}},
			want:  `</a>;obs`,
		},
		{name: "no links", links: nil, want: ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := FormatLinks(tc.links)
			if err != nil {
				t.Fatalf("FormatLinks: %v", err)
			}
			if string(got) != tc.want {
				t.Errorf("FormatLinks = %s, want %s", got, tc.want)
			}
		})
	}
}

func TestFormatLinksErrors(t *testing.T) {
	tests := []struct {
		name  string
		links []Link
	}{
		{"empty target", []Link{{Path: ""}}},
		{"space in target", []Link{{Path: "/a b"}}},
		{"bracket in target", []Link{{Path: "/a>"}}},
		{"empty attribute name", []Link{{Path: "/a", Attrs: attrs("", "x")}}},
		{"bad attribute name", []Link{{Path: "/a", Attrs: attrs("a=b", "x")}}},
		{"control character in value", []Link{{Path: "/a", Attrs: attrs("t", "a\nb")}}},
		{"invalid utf-8 in value", []Link{{Path: "/a", Attrs: attrs("t", "\xff")}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if b, err := FormatLinks(tc.links); err == nil {
				t.Errorf("FormatLinks(%#v) = %q, want error", tc.links, b)
			}
		})
	}
}

func TestLinksRoundTrip(t *testing.T) {
	for _, tc := range validLinkCases {
		t.Run(tc.name, func(t *testing.T) {
			checkRoundTrip(t, []byte(tc.in))
		})
	}
}

// checkRoundTrip asserts parse(format(parse(in))) == parse(in) for an
// input that parses.
func checkRoundTrip(t testing.TB, in []byte) {
	t.Helper()
	links, err := ParseLinks(in)
	if err != nil {
		return
	}
	out, err := FormatLinks(links)
	if err != nil {
		t.Fatalf("FormatLinks of parsed %q: %v", in, err)
	}
	again, err := ParseLinks(out)
	if err != nil {
		t.Fatalf("ParseLinks(FormatLinks(%q) = %q): %v", in, out, err)
	}
	if !reflect.DeepEqual(again, links) {
		t.Fatalf("round trip of %q through %q\n got %#v\nwant %#v", in, out, again, links)
	}
}

func FuzzParseLinks(f *testing.F) {
	for _, tc := range validLinkCases {
		f.Add([]byte(tc.in))
	}
	for _, s := range []string{`</a`, `<>`, `</a>;t="`, `</a>;=`, `</a>,`, "</a>;t=\"\\\x80\""} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		links, err := ParseLinks(in)
		if err != nil {
			return
		}
		// Each link costs at least "<x>" and each attribute ";k": what is
		// allocated is bounded by the input.
		n := 0
		for _, l := range links {
			n += 3 + 2*len(l.Attrs)
		}
		if n > len(in) {
			t.Fatalf("%d links with %d structure bytes from %d input bytes", len(links), n, len(in))
		}
		checkRoundTrip(t, in)
	})
}
