package model

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// lwm2mSameValues reports whether a and b hold the same values in the same
// order; times are compared as instants.
func lwm2mSameValues(a, b []PathValue) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Path != b[i].Path || !a[i].Value.Equal(b[i].Value) || !a[i].Time.Equal(b[i].Time) {
			return false
		}
	}
	return true
}

func lwm2mFormatValues(vals []PathValue) string {
	var b strings.Builder
	for _, pv := range vals {
		fmt.Fprintf(&b, "\n\t%s = %s %q", pv.Path, pv.Value.Type(), pv.Value.String())
		if !pv.Time.IsZero() {
			fmt.Fprintf(&b, " @%d", pv.Time.Unix())
		}
	}
	return b.String()
}

// lwm2mSpecDeviceValues are the values of the Device object instance of the
// OMA TS examples (the Read of /3/0), in path order.
func lwm2mSpecDeviceValues(t testing.TB) []PathValue {
	device := wantSpecDevice()
	vals, err := Flatten(ObjectInstancePath(3, 0), &device)
	if err != nil {
		t.Fatal(err)
	}
	return vals
}

// The Read of /3/0 in the LwM2M 1.0 TS JSON examples (§6.4.4, single object
// instance), written compactly as EncodeLwM2MJSON writes it.
const lwjSpecDevice = `{"bn":"/3/0/","e":[` +
	`{"n":"0","sv":"Open Mobile Alliance"},` +
	`{"n":"1","sv":"Lightweight M2M Client"},` +
	`{"n":"2","sv":"345000123"},` +
	`{"n":"3","sv":"1.0"},` +
	`{"n":"6/0","v":1},` +
	`{"n":"6/1","v":5},` +
	`{"n":"7/0","v":3800},` +
	`{"n":"7/1","v":5000},` +
	`{"n":"8/0","v":125},` +
	`{"n":"8/1","v":900},` +
	`{"n":"9","v":100},` +
	`{"n":"10","v":15},` +
	`{"n":"11/0","v":0},` +
	`{"n":"13","v":1367491215},` +
	`{"n":"14","sv":"+02:00"},` +
	`{"n":"16","sv":"U"}]}`

// The same Read as the TS lays it out, one entry a line.
const lwjSpecDeviceIndented = `{"bn":"/3/0/",
 "e":[
   {"n":"0","sv":"Open Mobile Alliance"},
   {"n":"1","sv":"Lightweight M2M Client"},
   {"n":"2","sv":"345000123"},
   {"n":"3","sv":"1.0"},
   {"n":"6/0","v":1},
   {"n":"6/1","v":5},
   {"n":"7/0","v":3800},
   {"n":"7/1","v":5000},
   {"n":"8/0","v":125},
   {"n":"8/1","v":900},
   {"n":"9","v":100},
   {"n":"10","v":15},
   {"n":"11/0","v":0},
   {"n":"13","v":1367491215},
   {"n":"14","sv":"+02:00"},
   {"n":"16","sv":"U"}]
}`

// A Read of /2 with two Access Control instances, the data of the TS TLV
// example for multiple object instances in LwM2M JSON. Object 2 is not in
// the built-in model, so the numbers are inferred to be integers.
const lwjSpecACL = `{"bn":"/2/","e":[
 {"n":"0/0","v":1},{"n":"0/1","v":0},{"n":"0/2/127","v":7},{"n":"0/3","v":127},
 {"n":"2/0","v":3},{"n":"2/1","v":0},{"n":"2/2/127","v":7},{"n":"2/2/310","v":1},{"n":"2/3","v":127}]}`

// A Read of the multiple resource /3/0/7 (Power Source Voltage).
const lwjSpecMultipleResource = `{"bn":"/3/0/7/","e":[{"n":"0","v":3800},{"n":"1","v":5000}]}`

// A notification with history: one resource at three times, each bt + t
// (the TS 1.0 timestamp example, as Leshan's tests carry it).
const lwjSpecHistory = `{"bn":"/1024/0/1","e":[
 {"v":22.9,"t":-30},
 {"v":22.4,"t":-5},
 {"v":24.1,"t":-50}],
 "bt":25462634}`

func TestDecodeLwM2MJSONSpecExamples(t *testing.T) {
	device := lwm2mSpecDeviceValues(t)
	ints := func(path string, vs ...int64) []PathValue { // consecutive paths are given whole
		var out []PathValue
		for i, p := range strings.Fields(path) {
			pp, err := ParsePath(p)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, PathValue{Path: pp, Value: IntegerValue(vs[i])})
		}
		return out
	}
	at := func(sec int64) time.Time { return time.Unix(sec, 0).UTC() }
	p1024 := ResourcePath(1024, 0, 1)
	tests := []struct {
		name string
		base Path
		in   string
		want []PathValue
	}{
		{"device /3/0", ObjectInstancePath(3, 0), lwjSpecDevice, device},
		{"device /3/0 indented", ObjectInstancePath(3, 0), lwjSpecDeviceIndented, device},
		{"device read from /3", ObjectPath(3), lwjSpecDevice, device},
		{"access control /2, two instances", ObjectPath(2), lwjSpecACL, ints(
			"/2/0/0 /2/0/1 /2/0/2/127 /2/0/3 /2/2/0 /2/2/1 /2/2/2/127 /2/2/2/310 /2/2/3",
			1, 0, 7, 127, 3, 0, 7, 1, 127)},
		{"multiple resource /3/0/7", ResourcePath(3, 0, 7), lwjSpecMultipleResource, []PathValue{
			{Path: ResourceInstancePath(3, 0, 7, 0), Value: IntegerValue(3800)},
			{Path: ResourceInstancePath(3, 0, 7, 1), Value: IntegerValue(5000)},
		}},
		{"history of one resource", p1024, lwjSpecHistory, []PathValue{
			{Path: p1024, Value: FloatValue(22.9), Time: at(25462634 - 30)},
			{Path: p1024, Value: FloatValue(22.4), Time: at(25462634 - 5)},
			{Path: p1024, Value: FloatValue(24.1), Time: at(25462634 - 50)},
		}},
		{"empty", ObjectInstancePath(3, 0), `{"e":[]}`, []PathValue{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeLwM2MJSON(tt.base, []byte(tt.in))
			if err != nil {
				t.Fatalf("DecodeLwM2MJSON: %v", err)
			}
			if !lwm2mSameValues(got, tt.want) {
				t.Errorf("DecodeLwM2MJSON =%s\nwant%s", lwm2mFormatValues(got), lwm2mFormatValues(tt.want))
			}
		})
	}
}

func TestEncodeLwM2MJSONSpecExamples(t *testing.T) {
	got, err := EncodeLwM2MJSON(lwm2mSpecDeviceValues(t))
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != lwjSpecDevice {
		t.Errorf("EncodeLwM2MJSON =\n%s\nwant\n%s", got, lwjSpecDevice)
	}
	vals, err := DecodeLwM2MJSON(ObjectPath(2), []byte(lwjSpecMultipleResource))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := EncodeLwM2MJSON(vals); err != nil || string(got) != lwjSpecMultipleResource {
		t.Errorf("EncodeLwM2MJSON = %s, %v; want %s", got, err, lwjSpecMultipleResource)
	}
}

func TestDecodeLwM2MJSONNames(t *testing.T) {
	r9 := ResourcePath(3, 0, 9)
	one := func(p Path) []PathValue { return []PathValue{{Path: p, Value: IntegerValue(100)}} }
	tests := []struct {
		name string
		base Path
		in   string
		want []PathValue
	}{
		{"no bn: relative to the request path", ObjectInstancePath(3, 0), `{"e":[{"n":"9","v":100}]}`, one(r9)},
		{"no bn: relative to an object", ObjectPath(3), `{"e":[{"n":"0/9","v":100}]}`, one(r9)},
		{"no bn: relative to the root", RootPath(), `{"e":[{"n":"3/0/9","v":100}]}`, one(r9)},
		{"no bn: resource instance below a resource", ResourcePath(3, 0, 6), `{"e":[{"n":"1","v":5}]}`,
			[]PathValue{{Path: ResourceInstancePath(3, 0, 6, 1), Value: IntegerValue(5)}}},
		{"no bn, no n: the request path", r9, `{"e":[{"v":100}]}`, one(r9)},
		{"no bn: absolute name", ObjectPath(5), `{"e":[{"n":"/3/0/9","v":100}]}`, one(r9)},
		{"bn is the resource, no n", ObjectPath(5), `{"bn":"/3/0/9","e":[{"v":100}]}`, one(r9)},
		{"bn without leading slash", ObjectPath(5), `{"bn":"3/0/","e":[{"n":"9","v":100}]}`, one(r9)},
		{"bn root", ObjectPath(5), `{"bn":"/","e":[{"n":"3/0/9","v":100}]}`, one(r9)},
		{"bn empty", ObjectPath(5), `{"bn":"","e":[{"n":"/3/0/9","v":100}]}`, one(r9)},
		{"bn and n concatenate as in SenML", ObjectPath(5), `{"bn":"/3/0/1","e":[{"n":"1/0","v":0}]}`,
			[]PathValue{{Path: ResourceInstancePath(3, 0, 11, 0), Value: IntegerValue(0)}}},
		{"bn overrides the request path", ObjectPath(5), `{"bn":"/3/0/","e":[{"n":"9","v":100}]}`, one(r9)},
		{"unknown members are skipped", ObjectInstancePath(3, 0),
			`{"ver":1,"x":{"y":[1,{"z":null}]},"e":[{"n":"9","v":100,"u":"%","w":[true]}]}`, one(r9)},
		{"bt alone times every entry", ObjectInstancePath(3, 0), `{"bt":1000,"e":[{"n":"9","v":100}]}`,
			[]PathValue{{Path: r9, Value: IntegerValue(100), Time: time.Unix(1000, 0)}}},
		{"t alone is absolute", ObjectInstancePath(3, 0), `{"e":[{"n":"9","v":100,"t":1000.75}]}`,
			[]PathValue{{Path: r9, Value: IntegerValue(100), Time: time.Unix(1000, 0)}}},
		{"a member given twice counts once, the last", ObjectInstancePath(3, 0),
			`{"bn":"/5/0/","bn":"/3/0/","e":[{"n":"10","n":"9","v":1,"v":100}]}`, one(r9)},
		{"values come back in path order", ObjectInstancePath(3, 0),
			`{"e":[{"n":"10","v":15},{"n":"9","v":100}]}`, []PathValue{
				{Path: r9, Value: IntegerValue(100)}, {Path: ResourcePath(3, 0, 10), Value: IntegerValue(15)}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeLwM2MJSON(tt.base, []byte(tt.in))
			if err != nil {
				t.Fatalf("DecodeLwM2MJSON: %v", err)
			}
			if !lwm2mSameValues(got, tt.want) {
				t.Errorf("DecodeLwM2MJSON =%s\nwant%s", lwm2mFormatValues(got), lwm2mFormatValues(tt.want))
			}
		})
	}
}

func TestDecodeLwM2MJSONTypes(t *testing.T) {
	tests := []struct {
		path  string
		entry string
		want  Value
	}{
		// Types from the built-in model.
		{"/3/0/9", `"v":100`, IntegerValue(100)},
		{"/3/0/9", `"v":1e2`, IntegerValue(100)},
		{"/3/0/9", `"v":100.0`, IntegerValue(100)},
		{"/3/0/9", `"v":-9223372036854775808`, IntegerValue(math.MinInt64)},
		{"/3/0/13", `"v":1367491215`, TimeValue(time.Unix(1367491215, 0))},
		{"/3/0/13", `"v":1.3674912E9`, TimeValue(time.Unix(1367491200, 0))},
		{"/3/0/13", `"v":-1.5`, TimeValue(time.Unix(-2, 0))},
		{"/5/0/3", `"v":2`, IntegerValue(2)},
		{"/1/0/1", `"v":86400`, UnsignedValue(86400)},
		{"/1/0/1", `"v":18446744073709551615`, UnsignedValue(math.MaxUint64)},
		{"/1/0/1", `"v":1.8446744073709550e19`, UnsignedValue(18446744073709549568)},
		{"/1/0/6", `"bv":true`, BoolValue(true)},
		{"/1/0/10", `"ov":"11:0"`, ObjectLinkValue(ObjectLink{11, 0})},
		{"/1/0/10", `"sv":"65535:65535"`, ObjectLinkValue(ObjectLink{65535, 65535})},
		{"/3/0/0", `"sv":"Open Mobile Alliance"`, StringValue("Open Mobile Alliance")},
		{"/3/0/0", `"sv":"\u00e9\"\\\n"`, StringValue("é\"\\\n")},
		{"/5/0/0", `"sv":"AQID"`, OpaqueValue([]byte{1, 2, 3})},
		{"/5/0/0", `"sv":"AQI="`, OpaqueValue([]byte{1, 2})},
		{"/5/0/0", `"sv":"AQI"`, OpaqueValue([]byte{1, 2})},
		{"/5/0/0", `"sv":""`, OpaqueValue(nil)},
		// Types from the wire.
		{"/3303/0/5700", `"v":5`, IntegerValue(5)},
		{"/3303/0/5700", `"v":-5`, IntegerValue(-5)},
		{"/3303/0/5700", `"v":9223372036854775808`, UnsignedValue(1 << 63)},
		{"/3303/0/5700", `"v":18446744073709551616`, FloatValue(1 << 64)},
		{"/3303/0/5700", `"v":-9223372036854775809`, FloatValue(-(1 << 63))},
		{"/3303/0/5700", `"v":21.5`, FloatValue(21.5)},
		{"/3303/0/5700", `"v":1e2`, FloatValue(100)},
		{"/3303/0/5700", `"v":-0.0`, FloatValue(math.Copysign(0, -1))},
		{"/3303/0/5700", `"v":-0`, IntegerValue(0)},
		{"/3303/0/5701", `"sv":"Cel"`, StringValue("Cel")},
		{"/3303/0/5701", `"sv":"AQID"`, StringValue("AQID")},
		{"/3303/0/5850", `"bv":false`, BoolValue(false)},
		{"/3303/0/5850/3", `"ov":"3:0"`, ObjectLinkValue(ObjectLink{3, 0})},
		{"/3/0/4", `"v":1`, IntegerValue(1)}, // executable: the model gives no type
	}
	for _, tt := range tests {
		t.Run(tt.path+" "+tt.entry, func(t *testing.T) {
			in := `{"bn":"` + tt.path + `","e":[{` + tt.entry + `}]}`
			got, err := DecodeLwM2MJSON(RootPath(), []byte(in))
			if err != nil {
				t.Fatalf("DecodeLwM2MJSON(%s): %v", in, err)
			}
			if len(got) != 1 || got[0].Path.String() != tt.path || !got[0].Value.Equal(tt.want) {
				t.Errorf("DecodeLwM2MJSON(%s) =%s\nwant %s %q", in, lwm2mFormatValues(got), tt.want.Type(), tt.want)
			}
		})
	}
}

// lwm2mRoundTripValues holds a value of every type at a resource whose
// built-in type it has, and floats (which no built-in resource is) at
// unknown resources.
func lwm2mRoundTripValues() []PathValue {
	return []PathValue{
		{Path: ResourcePath(1, 0, 1), Value: UnsignedValue(0)},
		{Path: ResourcePath(1, 0, 6), Value: BoolValue(true)},
		{Path: ResourcePath(1, 0, 10), Value: ObjectLinkValue(ObjectLink{65535, 65535})},
		{Path: ResourcePath(1, 0, 15), Value: BoolValue(false)},
		{Path: ResourcePath(1, 1, 1), Value: UnsignedValue(math.MaxUint64)},
		{Path: ResourcePath(1, 1, 10), Value: ObjectLinkValue(ObjectLink{0, 0})},
		{Path: ResourcePath(3, 0, 0), Value: StringValue("Open \"Mobile\" \\ Alliance\n\t\x01 é ☃ \U0001F600")},
		{Path: ResourcePath(3, 0, 1), Value: StringValue("")},
		{Path: ResourceInstancePath(3, 0, 7, 0), Value: IntegerValue(math.MinInt64)},
		{Path: ResourceInstancePath(3, 0, 7, 1), Value: IntegerValue(math.MaxInt64)},
		{Path: ResourceInstancePath(3, 0, 7, 2), Value: IntegerValue(-1)},
		{Path: ResourceInstancePath(3, 0, 7, 65535), Value: IntegerValue(0)},
		{Path: ResourcePath(3, 0, 13), Value: TimeValue(time.Unix(1367491215, 0))},
		{Path: ResourcePath(3, 1, 13), Value: TimeValue(time.Unix(-1, 0))},
		{Path: ResourcePath(3, 2, 13), Value: Value{typ: TypeTime, num: 1 << 63}},
		{Path: ResourcePath(5, 0, 0), Value: OpaqueValue(nil)},
		{Path: ResourcePath(5, 1, 0), Value: OpaqueValue([]byte{0, 1, 2, 0xfe, 0xff})},
		{Path: ResourcePath(3303, 0, 5700), Value: FloatValue(21.5)},
		{Path: ResourcePath(3303, 1, 5700), Value: FloatValue(0.1)},
		{Path: ResourcePath(3303, 2, 5700), Value: FloatValue(25)},
		{Path: ResourcePath(3303, 3, 5700), Value: FloatValue(math.Copysign(0, -1))},
		{Path: ResourcePath(3303, 4, 5700), Value: FloatValue(math.MaxFloat64)},
		{Path: ResourcePath(3303, 5, 5700), Value: FloatValue(math.SmallestNonzeroFloat64)},
		{Path: ResourcePath(3303, 6, 5700), Value: FloatValue(-1e21)},
		{Path: ResourcePath(3303, 7, 5700), Value: FloatValue(1 << 70)},
		{Path: ResourcePath(65535, 65535, 65535), Value: StringValue("max ids")},
	}
}

func TestLwM2MJSONRoundTrip(t *testing.T) {
	vals := lwm2mRoundTripValues()
	enc, err := EncodeLwM2MJSON(vals)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeLwM2MJSON(RootPath(), enc)
	if err != nil {
		t.Fatalf("DecodeLwM2MJSON(%s): %v", enc, err)
	}
	if !lwm2mSameValues(got, vals) {
		t.Errorf("round trip of %s gave%s\nwant%s", enc, lwm2mFormatValues(got), lwm2mFormatValues(vals))
	}
	t.Run("with times", func(t *testing.T) {
		vals := []PathValue{
			{Path: ResourcePath(3303, 0, 5700), Value: FloatValue(22.4), Time: time.Unix(25462629, 0).UTC()},
			{Path: ResourcePath(3303, 0, 5700), Value: FloatValue(22.9), Time: time.Unix(25462604, 0).UTC()},
			{Path: ResourcePath(3303, 0, 5701), Value: StringValue("Cel")},
			{Path: ResourcePath(3303, 0, 5702), Value: IntegerValue(1), Time: time.Unix(-5, 0).UTC()},
			{Path: ResourcePath(3303, 0, 5703), Value: IntegerValue(2), Time: time.Unix(0, 0).UTC()},
		}
		enc, err := EncodeLwM2MJSON(vals)
		if err != nil {
			t.Fatal(err)
		}
		want := `{"bn":"/3303/0/","e":[{"n":"5700","v":22.4,"t":25462629},{"n":"5700","v":22.9,"t":25462604},` +
			`{"n":"5701","sv":"Cel"},{"n":"5702","v":1,"t":-5},{"n":"5703","v":2,"t":0}]}`
		if string(enc) != want {
			t.Errorf("EncodeLwM2MJSON =\n%s\nwant\n%s", enc, want)
		}
		got, err := DecodeLwM2MJSON(RootPath(), enc)
		if err != nil || !lwm2mSameValues(got, vals) {
			t.Errorf("round trip gave%s, %v\nwant%s", lwm2mFormatValues(got), err, lwm2mFormatValues(vals))
		}
	})
	t.Run("unknown resources", func(t *testing.T) {
		// Without a model type, the wire decides: some types change.
		p := ResourcePath(1024, 0, 1)
		tests := []struct{ in, want Value }{
			{UnsignedValue(7), IntegerValue(7)},
			{UnsignedValue(math.MaxInt64 + 1), UnsignedValue(math.MaxInt64 + 1)},
			{TimeValue(time.Unix(1367491215, 0)), IntegerValue(1367491215)},
			{OpaqueValue([]byte{1, 2, 3}), StringValue("AQID")},
			{ObjectLinkValue(ObjectLink{3, 0}), ObjectLinkValue(ObjectLink{3, 0})},
			{FloatValue(3), FloatValue(3)},
			{IntegerValue(3), IntegerValue(3)},
			{BoolValue(true), BoolValue(true)},
			{StringValue("x"), StringValue("x")},
		}
		for _, tt := range tests {
			enc, err := EncodeLwM2MJSON([]PathValue{{Path: p, Value: tt.in}})
			if err != nil {
				t.Fatal(err)
			}
			got, err := DecodeLwM2MJSON(RootPath(), enc)
			if err != nil || len(got) != 1 || !got[0].Value.Equal(tt.want) {
				t.Errorf("%s %v: %s decoded to%s, %v; want %s %v", tt.in.Type(), tt.in, enc,
					lwm2mFormatValues(got), err, tt.want.Type(), tt.want)
			}
		}
	})
}

func TestEncodeLwM2MJSON(t *testing.T) {
	tests := []struct {
		name string
		vals []PathValue
		want string
	}{
		{"nothing", nil, `{"e":[]}`},
		{"one resource", []PathValue{{Path: ResourcePath(5, 0, 3), Value: IntegerValue(2)}},
			`{"bn":"/5/0/","e":[{"n":"3","v":2}]}`},
		{"one resource instance", []PathValue{{Path: ResourceInstancePath(3, 0, 6, 1), Value: IntegerValue(5)}},
			`{"bn":"/3/0/6/","e":[{"n":"1","v":5}]}`},
		{"resource and resource instance", []PathValue{
			{Path: ResourceInstancePath(3, 0, 6, 1), Value: IntegerValue(5)},
			{Path: ResourcePath(3, 0, 9), Value: IntegerValue(100)},
		}, `{"bn":"/3/0/","e":[{"n":"6/1","v":5},{"n":"9","v":100}]}`},
		{"two instances", []PathValue{
			{Path: ResourcePath(1, 1, 1), Value: UnsignedValue(60)},
			{Path: ResourcePath(1, 0, 1), Value: UnsignedValue(86400)},
		}, `{"bn":"/1/","e":[{"n":"0/1","v":86400},{"n":"1/1","v":60}]}`},
		{"two objects", []PathValue{
			{Path: ResourcePath(5, 0, 3), Value: IntegerValue(2)},
			{Path: ResourcePath(3, 0, 9), Value: IntegerValue(100)},
		}, `{"bn":"/","e":[{"n":"3/0/9","v":100},{"n":"5/0/3","v":2}]}`},
		{"exact integers", []PathValue{
			{Path: ResourcePath(1, 0, 1), Value: UnsignedValue(math.MaxUint64)},
			{Path: ResourcePath(3, 0, 9), Value: IntegerValue(math.MinInt64)},
			{Path: ResourcePath(3, 0, 10), Value: IntegerValue(math.MaxInt64)},
		}, `{"bn":"/","e":[{"n":"1/0/1","v":18446744073709551615},{"n":"3/0/9","v":-9223372036854775808},` +
			`{"n":"3/0/10","v":9223372036854775807}]}`},
		{"floats keep a point or exponent", []PathValue{
			{Path: ResourcePath(3303, 0, 5700), Value: FloatValue(25)},
			{Path: ResourcePath(3303, 0, 5701), Value: FloatValue(0.1)},
			{Path: ResourcePath(3303, 0, 5702), Value: FloatValue(1e21)},
			{Path: ResourcePath(3303, 0, 5703), Value: FloatValue(math.Copysign(0, -1))},
			{Path: ResourcePath(3303, 0, 5704), Value: FloatValue(1e-7)},
		}, `{"bn":"/3303/0/","e":[{"n":"5700","v":25.0},{"n":"5701","v":0.1},{"n":"5702","v":1e+21},` +
			`{"n":"5703","v":-0.0},{"n":"5704","v":1e-07}]}`},
		{"other types", []PathValue{
			{Path: ResourcePath(1, 0, 6), Value: BoolValue(false)},
			{Path: ResourcePath(1, 0, 10), Value: ObjectLinkValue(ObjectLink{11, 0})},
			{Path: ResourcePath(1, 0, 12), Value: TimeValue(time.Unix(1367491215, 0))},
			{Path: ResourcePath(5, 0, 0), Value: OpaqueValue([]byte{1, 2})},
			{Path: ResourcePath(5, 0, 1), Value: StringValue("a\"b\\c\x00\x1f\u2028")},
		}, `{"bn":"/","e":[{"n":"1/0/6","bv":false},{"n":"1/0/10","ov":"11:0"},{"n":"1/0/12","v":1367491215},` +
			`{"n":"5/0/0","sv":"AQI="},{"n":"5/0/1","sv":"a\"b\\c\u0000\u001f` + "\u2028" + `"}]}`},
		{"sub-second times are dropped", []PathValue{
			{Path: ResourcePath(3, 0, 9), Value: IntegerValue(1), Time: time.Unix(10, 999999999)},
		}, `{"bn":"/3/0/","e":[{"n":"9","v":1,"t":10}]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := EncodeLwM2MJSON(tt.vals)
			if err != nil {
				t.Fatalf("EncodeLwM2MJSON: %v", err)
			}
			if string(got) != tt.want {
				t.Errorf("EncodeLwM2MJSON =\n%s\nwant\n%s", got, tt.want)
			}
			if _, err := DecodeLwM2MJSON(RootPath(), got); err != nil {
				t.Errorf("DecodeLwM2MJSON of the encoding: %v", err)
			}
		})
	}
}

func TestEncodeLwM2MJSONRejects(t *testing.T) {
	r := ResourcePath(3303, 0, 5700)
	tests := []struct {
		name string
		vals []PathValue
	}{
		{"NaN", []PathValue{{Path: r, Value: FloatValue(math.NaN())}}},
		{"+Inf", []PathValue{{Path: r, Value: FloatValue(math.Inf(1))}}},
		{"-Inf", []PathValue{{Path: r, Value: FloatValue(math.Inf(-1))}}},
		{"no type", []PathValue{{Path: r}}},
		{"invalid UTF-8", []PathValue{{Path: r, Value: StringValue("\xff")}}},
		{"object instance path", []PathValue{{Path: ObjectInstancePath(3, 0), Value: IntegerValue(1)}}},
		{"root path", []PathValue{{Path: RootPath(), Value: IntegerValue(1)}}},
		{"same path twice", []PathValue{{Path: r, Value: IntegerValue(1)}, {Path: r, Value: IntegerValue(2)}}},
		{"same path and time twice", []PathValue{
			{Path: r, Value: IntegerValue(1), Time: time.Unix(5, 0)},
			{Path: r, Value: IntegerValue(2), Time: time.Unix(6, 0)},
			{Path: r, Value: IntegerValue(3), Time: time.Unix(5, 0).UTC()},
		}},
		{"resource and its instance", []PathValue{
			{Path: ResourcePath(3, 0, 6), Value: IntegerValue(1)},
			{Path: ResourceInstancePath(3, 0, 6, 0), Value: IntegerValue(1)},
		}},
		{"same path in the same second", []PathValue{
			{Path: r, Value: IntegerValue(1), Time: time.Unix(5, 0)},
			{Path: r, Value: IntegerValue(2), Time: time.Unix(5, 500)},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if b, err := EncodeLwM2MJSON(tt.vals); !errors.Is(err, ErrMalformedLwM2MJSON) {
				t.Errorf("EncodeLwM2MJSON = %s, %v; want ErrMalformedLwM2MJSON", b, err)
			}
		})
	}
}

func TestDecodeLwM2MJSONRejects(t *testing.T) {
	tests := []struct {
		name string
		in   string
	}{
		{"empty", ``},
		{"not json", `{"e":[`},
		{"truncated entry", `{"e":[{"n":"9","v":1`},
		{"array", `[{"n":"9","v":1}]`},
		{"string", `"e"`},
		{"no e", `{"bn":"/3/0/"}`},
		{"e is an object", `{"e":{"n":"9","v":1}}`},
		{"e is null", `{"e":null}`},
		{"null", `null`},
		{"bt is null", `{"bt":null,"e":[]}`},
		{"t is null", `{"e":[{"n":"9","v":1,"t":null}]}`},
		{"v is true", `{"e":[{"n":"9","v":true}]}`},
		{"v is an object", `{"e":[{"n":"9","v":{}}]}`},
		{"bv and ov", `{"e":[{"n":"9","bv":true,"ov":"1:1"}]}`},
		{"sv is null", `{"e":[{"n":"0","sv":null}]}`},
		{"entry is a number", `{"e":[1]}`},
		{"entry without value", `{"e":[{"n":"9"}]}`},
		{"entry with two values", `{"e":[{"n":"9","v":1,"sv":"1"}]}`},
		{"data after the object", `{"e":[]} {}`},
		{"garbage after the object", `{"e":[]}x`},
		{"invalid UTF-8", "{\"e\":[{\"n\":\"0\",\"sv\":\"\xff\"}]}"},
		{"bn is a number", `{"bn":3,"e":[]}`},
		{"bt is a string", `{"bt":"1","e":[]}`},
		{"n is a number", `{"e":[{"n":9,"v":1}]}`},
		{"t is a string", `{"e":[{"n":"9","v":1,"t":"1"}]}`},
		{"v is a string", `{"e":[{"n":"9","v":"1"}]}`},
		{"v is null", `{"e":[{"n":"9","v":null}]}`},
		{"sv is a number", `{"e":[{"n":"0","sv":1}]}`},
		{"bv is a string", `{"e":[{"n":"9","bv":"true"}]}`},
		{"ov is a number", `{"e":[{"n":"9","ov":3}]}`},
		{"name is not a path", `{"e":[{"n":"x","v":1}]}`},
		{"name with a leading zero", `{"e":[{"n":"09","v":1}]}`},
		{"name with a trailing slash", `{"bn":"/3/0/9/","e":[{"v":1}]}`},
		{"id out of range", `{"e":[{"n":"65536","v":1}]}`},
		{"long base name", `{"bn":"/3/0/` + strings.Repeat("0", 30) + `","e":[{"n":"9","v":1}]}`},
		{"long name", `{"e":[{"n":"` + strings.Repeat("9/", 20) + `","v":1}]}`},
		{"object instance path", `{"bn":"/3/","e":[{"n":"0","v":1}]}`},
		{"path too long", `{"e":[{"n":"6/0/1","v":1}]}`},
		{"no name and base is an instance", `{"e":[{"v":1}]}`},
		{"string for an integer", `{"e":[{"n":"9","sv":"100"}]}`},
		{"number for a string", `{"e":[{"n":"0","v":1}]}`},
		{"boolean for an integer", `{"e":[{"n":"9","bv":true}]}`},
		{"object link for an integer", `{"e":[{"n":"9","ov":"3:0"}]}`},
		{"object link for a string", `{"e":[{"n":"0","ov":"3:0"}]}`},
		{"fraction for an integer", `{"e":[{"n":"9","v":1.5}]}`},
		{"integer above int64", `{"e":[{"n":"9","v":9223372036854775808}]}`},
		{"integer below int64", `{"e":[{"n":"9","v":-9223372036854775809}]}`},
		{"time below int64", `{"e":[{"n":"13","v":-9223372036854775809}]}`},
		{"unsigned above uint64, float", `{"bn":"/1/0/","e":[{"n":"1","v":18446744073709551617}]}`},
		{"integer far above int64", `{"e":[{"n":"9","v":1e19}]}`},
		{"time above int64", `{"e":[{"n":"13","v":9223372036854775808}]}`},
		{"number beyond float", `{"e":[{"n":"9","v":1e400}]}`},
		{"float beyond float", `{"bn":"/3303/0/","e":[{"n":"5700","v":-1e999}]}`},
		{"bad opaque", `{"bn":"/5/0/","e":[{"n":"0","sv":"*"}]}`},
		{"bad object link", `{"bn":"/1/0/","e":[{"n":"10","ov":"1:65536"}]}`},
		{"object link without colon", `{"bn":"/1/0/","e":[{"n":"10","ov":"1"}]}`},
		{"negative unsigned", `{"bn":"/1/0/","e":[{"n":"1","v":-1}]}`},
		{"fraction for unsigned", `{"bn":"/1/0/","e":[{"n":"1","v":0.5}]}`},
		{"unsigned above uint64", `{"bn":"/1/0/","e":[{"n":"1","v":18446744073709551616}]}`},
		{"number for a boolean", `{"bn":"/1/0/","e":[{"n":"6","v":1}]}`},
		{"string for a boolean", `{"bn":"/1/0/","e":[{"n":"6","sv":"true"}]}`},
		{"same path twice", `{"e":[{"n":"9","v":1},{"n":"9","v":2}]}`},
		{"same path twice, once absolute", `{"e":[{"n":"9","v":1},{"n":"/3/0/9","v":2}]}`},
		{"same path at the same time", `{"bt":5,"e":[{"n":"9","v":1,"t":1},{"n":"9","v":2,"t":1.5}]}`},
		{"same path, both with bt only", `{"bt":5,"e":[{"n":"9","v":1},{"n":"9","v":2}]}`},
		{"resource and its instance", `{"e":[{"n":"6","v":1},{"n":"6/0","v":1}]}`},
		{"bt + t overflows", `{"bt":9223372036854775807,"e":[{"n":"9","v":1,"t":1}]}`},
		{"bt + t underflows", `{"bt":-9223372036854775808,"e":[{"n":"9","v":1,"t":-1}]}`},
		{"t beyond int64", `{"e":[{"n":"9","v":1,"t":1e19}]}`},
		{"deep nesting", strings.Repeat(`{"x":`, 10000) + strings.Repeat("}", 10000)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeLwM2MJSON(ObjectInstancePath(3, 0), []byte(tt.in))
			if err == nil {
				t.Fatalf("DecodeLwM2MJSON = %s, want error", lwm2mFormatValues(got))
			}
			if !errors.Is(err, ErrMalformedLwM2MJSON) {
				t.Errorf("error %v does not wrap ErrMalformedLwM2MJSON", err)
			}
		})
	}
	t.Run("unknown member nested deep is skipped", func(t *testing.T) {
		in := `{"x":` + strings.Repeat("[", 1000) + strings.Repeat("]", 1000) + `,"e":[]}`
		if _, err := DecodeLwM2MJSON(RootPath(), []byte(in)); err != nil {
			t.Error(err)
		}
	})
}

// A payload of many small entries must not cost much more memory than the
// values it decodes to.
func TestDecodeLwM2MJSONAllocation(t *testing.T) {
	const n = 65535
	in := []byte(`{"bn":"/1024/0/1/","e":[`)
	for i := range n {
		if i > 0 {
			in = append(in, ',')
		}
		in = append(in, `{"n":"`...)
		in = strconv.AppendInt(in, int64(i), 10)
		in = append(in, `","v":0}`...)
	}
	in = append(in, "]}"...)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	vals, err := DecodeLwM2MJSON(RootPath(), in)
	runtime.ReadMemStats(&after)
	if err != nil || len(vals) != n {
		t.Fatalf("decoded %d values, %v", len(vals), err)
	}
	t.Logf("decoding %d bytes allocated %d", len(in), after.TotalAlloc-before.TotalAlloc)
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 40*uint64(len(in)) {
		t.Errorf("decoding %d bytes allocated %d", len(in), alloc)
	}
}

// A long base name must not be copied for every entry.
func TestDecodeLwM2MJSONLongBaseName(t *testing.T) {
	in := `{"bn":"` + strings.Repeat("/", 1<<20) + `","e":[` + strings.Repeat(`{"v":1},`, 1<<16) + `{"v":1}]}`
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := DecodeLwM2MJSON(RootPath(), []byte(in))
	runtime.ReadMemStats(&after)
	if !errors.Is(err, ErrMalformedLwM2MJSON) {
		t.Errorf("error = %v", err)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 40*uint64(len(in)) {
		t.Errorf("decoding %d bytes allocated %d", len(in), alloc)
	}
}

// lwjFuzzBases are the request paths FuzzDecodeLwM2MJSON resolves names
// against.
var lwjFuzzBases = []Path{
	RootPath(), ObjectPath(3), ObjectInstancePath(3, 0), ResourcePath(3, 0, 6), ResourcePath(3, 0, 13),
	ObjectInstancePath(1, 0), ObjectInstancePath(5, 0), ResourcePath(1024, 0, 1), ObjectPath(2),
}

func FuzzDecodeLwM2MJSON(f *testing.F) {
	for _, s := range []string{lwjSpecDevice, lwjSpecDeviceIndented, lwjSpecACL, lwjSpecMultipleResource,
		lwjSpecHistory, `{"e":[]}`, `{"e":[{"n":"9","v":100}]}`, `{"e":[{"v":1.5}]}`,
		`{"bn":"/1/0/","e":[{"n":"1","v":86400},{"n":"6","bv":true},{"n":"10","ov":"11:0"}]}`,
		`{"bn":"/5/0/","e":[{"n":"0","sv":"AQID"},{"n":"1","sv":"coap://a/b"}]}`,
		`{"bn":"/","bt":100,"e":[{"n":"3303/0/5700","v":-1e-7,"t":-5}]}`} {
		for i := range lwjFuzzBases {
			f.Add(byte(i), []byte(s))
		}
	}
	f.Fuzz(func(t *testing.T, bi byte, data []byte) {
		base := lwjFuzzBases[int(bi)%len(lwjFuzzBases)]
		vals, err := DecodeLwM2MJSON(base, data)
		if err != nil {
			if !errors.Is(err, ErrMalformedLwM2MJSON) {
				t.Fatalf("error %v does not wrap ErrMalformedLwM2MJSON", err)
			}
			return
		}
		enc, err := EncodeLwM2MJSON(vals)
		if err != nil {
			t.Fatalf("re-encode of%s: %v", lwm2mFormatValues(vals), err)
		}
		if len(enc) > 4*len(data)+64 {
			t.Fatalf("%d input bytes re-encoded to %d", len(data), len(enc))
		}
		again, err := DecodeLwM2MJSON(base, enc)
		if err != nil {
			t.Fatalf("decode of re-encoding %s: %v", enc, err)
		}
		if !lwm2mSameValues(vals, again) {
			t.Fatalf("round trip differs:%s\n%s", lwm2mFormatValues(vals), lwm2mFormatValues(again))
		}
		enc2, err := EncodeLwM2MJSON(again)
		if err != nil || string(enc) != string(enc2) {
			t.Fatalf("encoding is not stable: %s vs %s (%v)", enc, enc2, err)
		}
	})
}
