package model

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"
)

// The Read of /3/0 of the OMA TS examples in LwM2M CBOR, as EncodeLwM2MCBOR
// writes it:
//
//	{[3, 0]: {0: "Open Mobile Alliance", 1: "Lightweight M2M Client",
//	  2: "345000123", 3: "1.0", 6: {0: 1, 1: 5}, 7: {0: 3800, 1: 5000},
//	  8: {0: 125, 1: 900}, 9: 100, 10: 15, [11, 0]: 0, 13: 1(1367491215),
//	  14: "+02:00", 16: "U"}}
const lwcSpecDevice = `A1 82 03 00 AD
00 74 4F 70 65 6E 20 4D 6F 62 69 6C 65 20 41 6C 6C 69 61 6E 63 65
01 76 4C 69 67 68 74 77 65 69 67 68 74 20 4D 32 4D 20 43 6C 69 65 6E 74
02 69 33 34 35 30 30 30 31 32 33
03 63 31 2E 30
06 A2 00 01 01 05
07 A2 00 19 0E D8 01 19 13 88
08 A2 00 18 7D 01 19 03 84
09 18 64
0A 0F
82 0B 00 00
0D C1 1A 51 82 42 8F
0E 66 2B 30 32 3A 30 30
10 61 55`

// The same values fully nested, one map level per id, with indefinite
// lengths, as a streaming client (Anjay) writes them:
//
//	{_ 3: {_ 0: {_ 0: "Open Mobile Alliance", ..., 6: {_ 0: 1, 1: 5}, ...,
//	  11: {_ 0: 0}, 13: 1(1367491215), ...}}}
const lwcSpecDeviceStreamed = `BF 03 BF 00 BF
00 74 4F 70 65 6E 20 4D 6F 62 69 6C 65 20 41 6C 6C 69 61 6E 63 65
01 76 4C 69 67 68 74 77 65 69 67 68 74 20 4D 32 4D 20 43 6C 69 65 6E 74
02 69 33 34 35 30 30 30 31 32 33
03 63 31 2E 30
06 BF 00 01 01 05 FF
07 BF 00 19 0E D8 01 19 13 88 FF
08 BF 00 18 7D 01 19 03 84 FF
09 18 64
0A 0F
0B BF 00 00 FF
0D C1 1A 51 82 42 8F
0E 66 2B 30 32 3A 30 30
10 61 55
FF FF FF`

// The payload of Anjay Lite's all-data-types notification test (unknown
// Object 8, so the object link "17:18" stays a string):
//
//	{_ 8: {_ 8: {_ 0: 25, 1: 100, 2: 1(3), 3: "X"*50, 4: h'44'*50,
//	  5: false, 6: "17:18", 7: 1.1}}}
var lwcAnjayAllTypes = "BF 08 BF 08 BF 00 18 19 01 18 64 02 C1 03 03 78 32" + strings.Repeat(" 58", 50) +
	" 04 58 32" + strings.Repeat(" 44", 50) + " 05 F4 06 65 31 37 3A 31 38 07 FB 3F F1 99 99 99 99 99 9A FF FF FF"

func TestDecodeLwM2MCBORExamples(t *testing.T) {
	device := lwm2mSpecDeviceValues(t)
	r := func(rid uint16, v Value) PathValue { return PathValue{Path: ResourcePath(13, 26, rid), Value: v} }
	ri := func(rid, riid uint16, v Value) PathValue {
		return PathValue{Path: ResourceInstancePath(13, 26, rid, riid), Value: v}
	}
	two := []PathValue{r(1, IntegerValue(42)), r(2, IntegerValue(21))}
	bytes16 := unhex(t, "00112233445566778899AABBCCDDEEFF")
	tests := []struct {
		name string
		in   string
		want []PathValue
	}{
		{"device /3/0", lwcSpecDevice, device},
		{"device /3/0 streamed", lwcSpecDeviceStreamed, device},
		// Anjay's LwM2M CBOR decoder tests (tests/core/io/lwm2m_cbor_in.c).
		{"{[13, 26, 1]: 42}", `A1 83 0D 18 1A 01 18 2A`, []PathValue{r(1, IntegerValue(42))}},
		{"{[13, 26, 1]: true}", `A1 83 0D 18 1A 01 F5`, []PathValue{r(1, BoolValue(true))}},
		{"{_ [_ 13, 26, 1]: 42}", `BF 9F 0D 18 1A 01 FF 18 2A FF`, []PathValue{r(1, IntegerValue(42))}},
		{"{13: {26: {1: 42}}}", `A1 0D A1 18 1A A1 01 18 2A`, []PathValue{r(1, IntegerValue(42))}},
		{"{[13]: {[26]: {[1]: 42}}}", `A1 81 0D A1 81 18 1A A1 81 01 18 2A`, []PathValue{r(1, IntegerValue(42))}},
		{"{_ [_ 13]: {_ [_ 26]: {_ [_ 1]: 42}}}", `BF 9F 0D FF BF 9F 18 1A FF BF 9F 01 FF 18 2A FF FF FF`,
			[]PathValue{r(1, IntegerValue(42))}},
		{"{[13]: {[26]: {[1]: {[2]: 4([-1, 45])}}}}", `A1 81 0D A1 81 18 1A A1 81 01 A1 81 02 C4 82 20 18 2D`,
			[]PathValue{ri(1, 2, FloatValue(4.5))}},
		{"{[13, 26]: {1: 42, 2: 21}}", `A1 82 0D 18 1A A2 01 18 2A 02 15`, two},
		{"{[13, 26, 1]: 42, [13, 26, 2]: 21}", `A2 83 0D 18 1A 01 18 2A 83 0D 18 1A 02 15`, two},
		{"{[13, 26]: {1: 42}, [13, 26, 2]: 21}", `A2 82 0D 18 1A A1 01 18 2A 83 0D 18 1A 02 15`, two},
		{"{[13, 26, 1]: 42, [13, 26]: {[2]: 21}}", `A2 83 0D 18 1A 01 18 2A 82 0D 18 1A A1 81 02 15`, two},
		{"bytes", `A1 83 0D 18 1A 01 50 00 11 22 33 44 55 66 77 88 99 AA BB CC DD EE FF`,
			[]PathValue{r(1, OpaqueValue(bytes16))}},
		{"indefinite bytes", `A1 83 0D 18 1A 01 5F 48 00 11 22 33 44 55 66 77 48 88 99 AA BB CC DD EE FF FF`,
			[]PathValue{r(1, OpaqueValue(bytes16))}},
		{"string", `A1 83 0D 18 1A 01 70 63 2D 2D 63 6F 73 73 69 65 7A 65 70 73 75 6C 6F`,
			[]PathValue{r(1, StringValue("c--cossiezepsulo"))}},
		{"indefinite string", `A1 83 0D 18 1A 01 7F 62 63 2D 61 2D FF`, []PathValue{r(1, StringValue("c--"))}},
		{"resource instance and int", `A1 83 0D 18 1A 01 A2 02 05 03 06`,
			[]PathValue{ri(1, 2, IntegerValue(5)), ri(1, 3, IntegerValue(6))}},
		{"all types", `A1 82 0D 18 1A A7 01 01 02 20 03 F9 41 00 04 64 74 65 73 74 05 44 11 22 33 44 06 65 31 32 3A 33 34 07 01`,
			[]PathValue{r(1, IntegerValue(1)), r(2, IntegerValue(-1)), r(3, FloatValue(2.5)), r(4, StringValue("test")),
				r(5, OpaqueValue([]byte{0x11, 0x22, 0x33, 0x44})), r(6, StringValue("12:34")), r(7, IntegerValue(1))}},
		{"composite {13: {26: {1: 1}}, 14: {27: {2: 2}}}", `A2 0D A1 18 1A A1 01 01 0E A1 18 1B A1 02 02`,
			[]PathValue{r(1, IntegerValue(1)), {Path: ResourcePath(14, 27, 2), Value: IntegerValue(2)}}},
		{"Anjay Lite all types", lwcAnjayAllTypes, []PathValue{
			{Path: ResourcePath(8, 8, 0), Value: IntegerValue(25)},
			{Path: ResourcePath(8, 8, 1), Value: IntegerValue(100)},
			{Path: ResourcePath(8, 8, 2), Value: TimeValue(time.Unix(3, 0))},
			{Path: ResourcePath(8, 8, 3), Value: StringValue(strings.Repeat("X", 50))},
			{Path: ResourcePath(8, 8, 4), Value: OpaqueValue(bytes.Repeat([]byte{'D'}, 50))},
			{Path: ResourcePath(8, 8, 5), Value: BoolValue(false)},
			{Path: ResourcePath(8, 8, 6), Value: StringValue("17:18")},
			{Path: ResourcePath(8, 8, 7), Value: FloatValue(1.1)},
		}},
		{"empty", `A0`, nil},
		{"empty, indefinite", `BF FF`, nil},
		{"empty maps below", `A2 03 A0 05 A1 00 A0`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeLwM2MCBOR(unhex(t, tt.in))
			if err != nil {
				t.Fatalf("DecodeLwM2MCBOR: %v", err)
			}
			if !lwm2mSameValues(got, tt.want) {
				t.Errorf("DecodeLwM2MCBOR =%s\nwant%s", lwm2mFormatValues(got), lwm2mFormatValues(tt.want))
			}
		})
	}
}

func TestDecodeLwM2MCBORTypes(t *testing.T) {
	tests := []struct {
		path string
		item string // the value of {[path]: item}
		want Value
	}{
		// Types from the built-in model.
		{"/3/0/9", `18 64`, IntegerValue(100)},
		{"/3/0/9", `F9 56 40`, IntegerValue(100)},
		{"/3/0/9", `3B 7F FF FF FF FF FF FF FF`, IntegerValue(math.MinInt64)},
		{"/3/0/9", `C4 82 01 0A`, IntegerValue(100)}, // 4([1, 10])
		{"/3/0/13", `C1 1A 51 82 42 8F`, TimeValue(time.Unix(1367491215, 0))},
		{"/3/0/13", `1A 51 82 42 8F`, TimeValue(time.Unix(1367491215, 0))},
		{"/3/0/13", `C1 FB 41 D4 60 90 A3 E0 00 00`, TimeValue(time.Unix(1367491215, 0))}, // 1(1367491215.5)
		{"/3/0/13", `C1 20`, TimeValue(time.Unix(-1, 0))},
		{"/3/0/13", `C0 74 32 30 31 33 2D 30 35 2D 30 32 54 31 30 3A 34 30 3A 31 35 5A`, // 0("2013-05-02T10:40:15Z")
			TimeValue(time.Unix(1367491215, 0))},
		{"/5/0/3", `02`, IntegerValue(2)},
		{"/1/0/1", `1A 00 01 51 80`, UnsignedValue(86400)},
		{"/1/0/1", `1B FF FF FF FF FF FF FF FF`, UnsignedValue(math.MaxUint64)},
		{"/1/0/6", `F5`, BoolValue(true)},
		{"/1/0/10", `64 31 31 3A 30`, ObjectLinkValue(ObjectLink{11, 0})},
		{"/3/0/0", `63 31 2E 30`, StringValue("1.0")},
		{"/5/0/0", `43 01 02 03`, OpaqueValue([]byte{1, 2, 3})},
		{"/5/0/0", `40`, OpaqueValue(nil)},
		{"/5/0/0", `5F FF`, OpaqueValue(nil)},
		// Types from the wire.
		{"/3303/0/5700", `05`, IntegerValue(5)},
		{"/3303/0/5700", `24`, IntegerValue(-5)},
		{"/3303/0/5700", `1B 80 00 00 00 00 00 00 00`, UnsignedValue(1 << 63)},
		{"/3303/0/5700", `3B 80 00 00 00 00 00 00 00`, FloatValue(-(1 << 63))}, // -2^63-1, rounded
		{"/3303/0/5700", `3B FF FF FF FF FF FF FF FF`, FloatValue(-(1 << 64))},
		{"/3303/0/5700", `F9 41 00`, FloatValue(2.5)},
		{"/3303/0/5700", `FA 41 AC 00 00`, FloatValue(21.5)},
		{"/3303/0/5700", `FB 3F B9 99 99 99 99 99 9A`, FloatValue(0.1)},
		{"/3303/0/5700", `F9 7C 00`, FloatValue(math.Inf(1))},
		{"/3303/0/5700", `C4 82 20 18 2D`, FloatValue(4.5)},
		{"/3303/0/5701", `63 43 65 6C`, StringValue("Cel")},
		{"/3303/0/5701", `42 01 02`, OpaqueValue([]byte{1, 2})},
		{"/3303/0/5850", `F4`, BoolValue(false)},
		{"/3303/0/5850/3", `63 33 3A 30`, StringValue("3:0")},
		{"/3303/0/5518", `C1 1A 51 82 42 8F`, TimeValue(time.Unix(1367491215, 0))},
		{"/3303/0/5518", `C0 74 32 30 31 33 2D 30 35 2D 30 32 54 31 30 3A 34 30 3A 31 35 5A`,
			TimeValue(time.Unix(1367491215, 0))},
	}
	for _, tt := range tests {
		t.Run(tt.path+" "+tt.item, func(t *testing.T) {
			in := lwcOneValue(t, tt.path, unhex(t, tt.item))
			got, err := DecodeLwM2MCBOR(in)
			if err != nil {
				t.Fatalf("DecodeLwM2MCBOR(% X): %v", in, err)
			}
			if len(got) != 1 || got[0].Path.String() != tt.path || !got[0].Value.Equal(tt.want) {
				t.Errorf("DecodeLwM2MCBOR(% X) =%s\nwant %s %q", in, lwm2mFormatValues(got), tt.want.Type(), tt.want)
			}
		})
	}
	t.Run("NaN", func(t *testing.T) {
		got, err := DecodeLwM2MCBOR(lwcOneValue(t, "/3303/0/5700", unhex(t, `F9 7E 00`)))
		if f, _ := got[0].Value.AsFloat(); err != nil || !math.IsNaN(f) {
			t.Errorf("got%s, %v", lwm2mFormatValues(got), err)
		}
	})
}

// lwcOneValue is {[ids of path]: item}.
func lwcOneValue(t testing.TB, path string, item []byte) []byte {
	p, err := ParsePath(path)
	if err != nil {
		t.Fatal(err)
	}
	b := []byte{0xa1, 0x80 | p.n}
	for _, id := range p.ids[:p.n] {
		b = lwcAppendHead(b, 0, uint64(id))
	}
	return append(b, item...)
}

func TestEncodeLwM2MCBOR(t *testing.T) {
	r := func(o, i, rid uint16, v Value) PathValue { return PathValue{Path: ResourcePath(o, i, rid), Value: v} }
	tests := []struct {
		name string
		vals []PathValue
		want string
	}{
		{"device /3/0", lwm2mSpecDeviceValues(t), lwcSpecDevice},
		{"nothing", nil, `A0`},
		{"one resource: {[5, 0, 3]: 2}", []PathValue{r(5, 0, 3, IntegerValue(2))}, `A1 83 05 00 03 02`},
		{"one resource instance: {[3, 0, 6, 1]: 5}",
			[]PathValue{{Path: ResourceInstancePath(3, 0, 6, 1), Value: IntegerValue(5)}}, `A1 84 03 00 06 01 05`},
		{"two resources: {[3, 0]: {9: 100, 10: 15}}", []PathValue{r(3, 0, 10, IntegerValue(15)), r(3, 0, 9, IntegerValue(100))},
			`A1 82 03 00 A2 09 18 64 0A 0F`},
		{"two instances: {1: {[0, 1]: 86400, [1, 1]: 60}}",
			[]PathValue{r(1, 1, 1, UnsignedValue(60)), r(1, 0, 1, UnsignedValue(86400))},
			`A1 01 A2 82 00 01 1A 00 01 51 80 82 01 01 18 3C`},
		{"two objects: {[3, 0, 9]: 100, [5, 0, 3]: 2}", []PathValue{r(5, 0, 3, IntegerValue(2)), r(3, 0, 9, IntegerValue(100))},
			`A2 83 03 00 09 18 64 83 05 00 03 02`},
		{"resource instances: {[3, 0, 6]: {0: 1, 1: 5}}", []PathValue{
			{Path: ResourceInstancePath(3, 0, 6, 1), Value: IntegerValue(5)},
			{Path: ResourceInstancePath(3, 0, 6, 0), Value: IntegerValue(1)},
		}, `A1 83 03 00 06 A2 00 01 01 05`},
		{"large ids: {[3303, 0, 5700]: 21.5}", []PathValue{r(3303, 0, 5700, FloatValue(21.5))},
			`A1 83 19 0C E7 00 19 16 44 F9 4D 60`},
		{"integers", []PathValue{
			r(3, 0, 7, IntegerValue(math.MinInt64)), r(3, 0, 8, IntegerValue(-1)), r(3, 0, 9, IntegerValue(24)),
			r(3, 0, 10, IntegerValue(math.MaxInt64)),
		}, `A1 82 03 00 A4 07 3B 7F FF FF FF FF FF FF FF 08 20 09 18 18 0A 1B 7F FF FF FF FF FF FF FF`},
		{"unsigned max", []PathValue{r(1, 0, 1, UnsignedValue(math.MaxUint64))}, `A1 83 01 00 01 1B FF FF FF FF FF FF FF FF`},
		{"floats", []PathValue{
			r(3303, 0, 0, FloatValue(1.5)), r(3303, 0, 1, FloatValue(0.1)), r(3303, 0, 2, FloatValue(100000.5)),
			r(3303, 0, 3, FloatValue(math.Copysign(0, -1))), r(3303, 0, 4, FloatValue(math.Inf(-1))),
			r(3303, 0, 5, Value{typ: TypeFloat, num: 0x7ff8000000000001}), r(3303, 0, 6, FloatValue(0x1p-24)),
			r(3303, 0, 7, FloatValue(65504)), r(3303, 0, 8, FloatValue(65520)),
		}, `A1 82 19 0C E7 00 A9 00 F9 3E 00 01 FB 3F B9 99 99 99 99 99 9A 02 FA 47 C3 50 40 03 F9 80 00 04 F9 FC 00
			05 FB 7F F8 00 00 00 00 00 01 06 F9 00 01 07 F9 7B FF 08 FA 47 7F F0 00`},
		{"other types", []PathValue{
			r(1, 0, 6, BoolValue(true)), r(1, 0, 10, ObjectLinkValue(ObjectLink{11, 0})),
			r(1, 0, 12, TimeValue(time.Unix(-1, 0))), r(5, 0, 0, OpaqueValue(nil)), r(5, 0, 1, StringValue("é")),
		}, `A2 82 01 00 A3 06 F5 0A 64 31 31 3A 30 0C C1 20 82 05 00 A2 00 40 01 62 C3 A9`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := EncodeLwM2MCBOR(tt.vals)
			if err != nil {
				t.Fatalf("EncodeLwM2MCBOR: %v", err)
			}
			if want := unhex(t, tt.want); !bytes.Equal(got, want) {
				t.Errorf("EncodeLwM2MCBOR =\n% X\nwant\n% X", got, want)
			}
			if err := lwcDecMode.Wellformed(got); err != nil {
				t.Errorf("encoding is not well-formed cbor: %v", err)
			}
			back, err := DecodeLwM2MCBOR(got)
			if err != nil {
				t.Fatalf("DecodeLwM2MCBOR of the encoding: %v", err)
			}
			want := append([]PathValue(nil), tt.vals...)
			SortValues(want)
			if !lwm2mSameValues(back, want) {
				t.Errorf("round trip gave%s\nwant%s", lwm2mFormatValues(back), lwm2mFormatValues(want))
			}
		})
	}
}

func TestLwM2MCBORRoundTrip(t *testing.T) {
	vals := lwm2mRoundTripValues()
	vals = append(vals,
		PathValue{Path: ResourcePath(3303, 8, 5700), Value: FloatValue(math.NaN())},
		PathValue{Path: ResourcePath(3303, 9, 5700), Value: FloatValue(math.Inf(1))},
		PathValue{Path: ResourcePath(3303, 10, 5700), Value: FloatValue(-math.MaxFloat32)},
	)
	SortValues(vals)
	enc, err := EncodeLwM2MCBOR(vals)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeLwM2MCBOR(enc)
	if err != nil {
		t.Fatalf("DecodeLwM2MCBOR(% X): %v", enc, err)
	}
	if !lwm2mSameValues(got, vals) {
		t.Errorf("round trip of % X gave%s\nwant%s", enc, lwm2mFormatValues(got), lwm2mFormatValues(vals))
	}
	t.Run("unknown resources", func(t *testing.T) {
		// Without a model type, the wire decides: some types change.
		p := ResourcePath(1024, 0, 1)
		tests := []struct{ in, want Value }{
			{UnsignedValue(7), IntegerValue(7)},
			{UnsignedValue(math.MaxInt64 + 1), UnsignedValue(math.MaxInt64 + 1)},
			{ObjectLinkValue(ObjectLink{3, 0}), StringValue("3:0")},
			{TimeValue(time.Unix(1367491215, 0)), TimeValue(time.Unix(1367491215, 0))},
			{OpaqueValue([]byte{1, 2, 3}), OpaqueValue([]byte{1, 2, 3})},
			{FloatValue(3), FloatValue(3)},
			{IntegerValue(3), IntegerValue(3)},
			{BoolValue(true), BoolValue(true)},
			{StringValue("x"), StringValue("x")},
		}
		for _, tt := range tests {
			enc, err := EncodeLwM2MCBOR([]PathValue{{Path: p, Value: tt.in}})
			if err != nil {
				t.Fatal(err)
			}
			got, err := DecodeLwM2MCBOR(enc)
			if err != nil || len(got) != 1 || !got[0].Value.Equal(tt.want) {
				t.Errorf("%s %v: % X decoded to%s, %v; want %s %v", tt.in.Type(), tt.in, enc,
					lwm2mFormatValues(got), err, tt.want.Type(), tt.want)
			}
		}
	})
	t.Run("order does not matter", func(t *testing.T) {
		shuffled := append([]PathValue(nil), vals...)
		rand.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		again, err := EncodeLwM2MCBOR(shuffled)
		if err != nil || !bytes.Equal(again, enc) {
			t.Errorf("shuffled values encode to % X, %v", again, err)
		}
	})
}

// Every half precision value (but NaNs) must come out of the encoder as
// exactly that half, the shortest form; floats that need more must not.
func TestLwM2MCBORFloatWidths(t *testing.T) {
	for h := range 1 << 16 {
		item := binary.BigEndian.AppendUint16([]byte{0xf9}, uint16(h))
		var f float64
		if err := cbor.Unmarshal(item, &f); err != nil {
			t.Fatal(err)
		}
		if math.IsNaN(f) {
			continue
		}
		if got := lwcAppendFloat(nil, math.Float64bits(f)); !bytes.Equal(got, item) {
			t.Fatalf("%v encodes to % X, want % X", f, got, item)
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 100000 {
		var f float64
		switch rng.IntN(3) {
		case 0:
			f = float64(math.Float32frombits(rng.Uint32()))
		case 1:
			f = math.Float64frombits(rng.Uint64())
		default:
			f = float64(rng.IntN(1<<20)-1<<19) / float64(uint64(1)<<rng.IntN(40))
		}
		enc := lwcAppendFloat(nil, math.Float64bits(f))
		var back float64
		if err := cbor.Unmarshal(enc, &back); err != nil {
			t.Fatal(err)
		}
		switch {
		case math.IsNaN(f):
			if len(enc) != 9 || math.Float64bits(back) != math.Float64bits(f) {
				t.Fatalf("NaN %x encodes to % X", math.Float64bits(f), enc)
			}
		case math.Float64bits(back) != math.Float64bits(f):
			t.Fatalf("%v encodes to % X, which is %v", f, enc, back)
		case len(enc) == 9 && float64(float32(f)) == f, len(enc) == 5 && func() bool { _, ok := lwcHalf(float32(f)); return ok }():
			t.Fatalf("%v encodes to % X, not the shortest", f, enc)
		}
	}
}

func TestEncodeLwM2MCBORRejects(t *testing.T) {
	r := ResourcePath(3303, 0, 5700)
	tests := []struct {
		name string
		vals []PathValue
	}{
		{"no type", []PathValue{{Path: r}}},
		{"invalid UTF-8", []PathValue{{Path: r, Value: StringValue("\xff")}}},
		{"timestamp", []PathValue{{Path: r, Value: IntegerValue(1), Time: time.Unix(5, 0)}}},
		{"object instance path", []PathValue{{Path: ObjectInstancePath(3, 0), Value: IntegerValue(1)}}},
		{"object path", []PathValue{{Path: ObjectPath(3), Value: IntegerValue(1)}}},
		{"root path", []PathValue{{Path: RootPath(), Value: IntegerValue(1)}}},
		{"same path twice", []PathValue{{Path: r, Value: IntegerValue(1)}, {Path: r, Value: IntegerValue(1)}}},
		{"resource and its instance", []PathValue{
			{Path: ResourceInstancePath(3, 0, 6, 0), Value: IntegerValue(1)},
			{Path: ResourcePath(3, 0, 6), Value: IntegerValue(1)},
		}},
		{"no type among others", []PathValue{{Path: r, Value: IntegerValue(1)}, {Path: ResourcePath(3303, 0, 5701)}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if b, err := EncodeLwM2MCBOR(tt.vals); !errors.Is(err, ErrMalformedLwM2MCBOR) {
				t.Errorf("EncodeLwM2MCBOR = % X, %v; want ErrMalformedLwM2MCBOR", b, err)
			}
		})
	}
}

func TestDecodeLwM2MCBORRejects(t *testing.T) {
	tests := []struct {
		name string
		in   string
	}{
		{"empty", ``},
		{"an integer", `00`},
		{"an array", `84 01 02 03 04`},
		{"null", `F6`},
		{"tagged map", `D9 D9 F7 A1 83 03 00 09 01`},
		{"truncated map", `A1 82 0D 18 1A A1`},
		{"missing break", `BF 83 03 00 09 01`},
		{"data after the map", `A1 83 03 00 09 01 00`},
		// Paths, after Anjay's failure tests.
		{"id above 65535", `A1 82 0D 18 1A A1 1A 00 01 00 00 05`},
		{"id above 65535 in an array", `A1 83 0D 18 1A 1A 00 01 00 00 05`},
		{"five ids in a key", `A1 85 0D 18 1A 03 04 05 05`},
		{"five ids across keys", `A1 83 0D 18 1A 01 A2 02 05 82 03 04 05`},
		{"five levels of maps", `A1 0D A1 18 1A A1 01 A1 02 A1 03 04`},
		{"empty array key", `A2 0D A1 80 18 1A A1 80 01 18 2A`},
		{"float in a key", `A1 83 0D FB 3F D0 A3 D7 0A 3D 70 A4 01 18 2A`},
		{"float key", `A1 FB 3F C0 A3 D7 0A 3D 70 A4 A1 82 18 1A 01 18 2A`},
		{"text key", `A1 0D A1 62 32 36 A1 01 18 2A`},
		{"negative key", `A1 20 A1 00 A1 00 01`},
		{"tagged key", `A1 C1 03 A1 00 A1 00 01`},
		{"key array of arrays", `A1 82 81 03 00 A1 00 01`},
		{"array value", `A1 0D A1 18 1A 81 A1 01 18 2A`},
		{"value at object level", `A1 03 05`},
		{"value at instance level", `A1 82 03 00 05`},
		{"map below a resource instance", `A1 84 03 00 06 00 A1 00 01`},
		{"duplicate key", `A2 03 A1 00 A1 09 01 03 A1 00 A1 0A 01`},
		{"duplicate key, 3 and [3]", `A2 03 A1 00 A1 09 01 81 03 A1 00 A1 0A 01`},
		{"same path from two keys", `A2 82 03 00 A1 09 01 83 03 00 09 02`},
		{"resource and its instance", `A2 83 03 00 06 01 84 03 00 06 00 01`},
		// Values.
		{"null value", `A1 83 0D 18 1A 01 F6`},
		{"undefined value", `A1 83 0D 18 1A 01 F7`},
		{"simple value", `A1 83 0D 18 1A 01 F0`},
		{"invalid UTF-8", `A1 83 0D 18 1A 01 61 FF`},
		{"unknown tag", `A1 83 0D 18 1A 01 D8 63 01`},
		{"bignum", `A1 83 0D 18 1A 01 C2 41 01`},
		{"tag 1 around text", `A1 83 0D 18 1A 01 C1 61 31`},
		{"tag 1 around tag 1", `A1 83 0D 18 1A 01 C1 C1 01`},
		{"tag 0 around a number", `A1 83 0D 18 1A 01 C0 01`},
		{"tag 0 not RFC 3339", `A1 83 0D 18 1A 01 C0 63 61 62 63`},
		{"tag 4 with three items", `A1 83 0D 18 1A 01 C4 83 01 02 03`},
		{"tag 4 around a float", `A1 83 0D 18 1A 01 C4 82 01 F9 3C 00`},
		{"tag 4 out of range", `A1 83 0D 18 1A 01 C4 82 19 FF FF 01`},
		{"tag 1 NaN", `A1 83 0D 18 1A 01 C1 F9 7E 00`},
		{"tag 1 beyond int64", `A1 83 0D 18 1A 01 C1 FB 43 E0 00 00 00 00 00 00`},
		// Values that cannot take the model's type.
		{"string for an integer", `A1 83 03 00 09 63 31 30 30`},
		{"float fraction for an integer", `A1 83 03 00 09 F9 3E 00`},
		{"integer above int64", `A1 83 03 00 09 1B 80 00 00 00 00 00 00 00`},
		{"integer below int64", `A1 83 03 00 09 3B 80 00 00 00 00 00 00 00`},
		{"tag 1 for an integer", `A1 83 03 00 09 C1 01`},
		{"number for a string", `A1 83 03 00 00 01`},
		{"bytes for a string", `A1 83 03 00 00 41 31`},
		{"string for opaque", `A1 83 05 00 00 61 31`},
		{"number for a boolean", `A1 83 01 00 06 01`},
		{"string for a boolean", `A1 83 01 00 06 64 74 72 75 65`},
		{"negative unsigned", `A1 83 01 00 01 20`},
		{"fraction for unsigned", `A1 83 01 00 01 F9 3E 00`},
		{"bad object link", `A1 83 01 00 0A 63 31 3A 78`},
		{"number for an object link", `A1 83 01 00 0A 01`},
		{"boolean for a time", `A1 83 03 00 0D F5`},
		{"time above int64", `A1 83 03 00 0D C1 1B 80 00 00 00 00 00 00 00`},
		// Limits.
		{"nested too deep", strings.Repeat("A1 00 ", 9) + "00"},
		{"key of 17 ids", `A1 91` + strings.Repeat(" 00", 17) + ` 00`},
		{"byte string longer than the payload", `A1 83 03 00 09 5B 00 00 00 FF FF FF FF FF 00`},
		{"map longer than the payload", `BB 00 00 00 FF FF FF FF FF 00`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeLwM2MCBOR(unhex(t, tt.in))
			if err == nil {
				t.Fatalf("DecodeLwM2MCBOR = %s, want error", lwm2mFormatValues(got))
			}
			if !errors.Is(err, ErrMalformedLwM2MCBOR) {
				t.Errorf("error %v does not wrap ErrMalformedLwM2MCBOR", err)
			}
		})
	}
}

func TestDecodeLwM2MCBORDoesNotAliasInput(t *testing.T) {
	in := unhex(t, `A1 83 05 00 00 43 01 02 03`)
	vals, err := DecodeLwM2MCBOR(in)
	if err != nil {
		t.Fatal(err)
	}
	for i := range in {
		in[i] = 0xff
	}
	if b, _ := vals[0].Value.AsOpaque(); !bytes.Equal(b, []byte{1, 2, 3}) {
		t.Errorf("decoded opaque changed with the input: % X", b)
	}
}

// A payload of many small values must not cost much more memory than the
// values it decodes to, nor one that announces more than it has.
func TestDecodeLwM2MCBORAllocation(t *testing.T) {
	// {[1024, 0, 1]: {0: 0, 1: 0, ..., 65534: 0}}: about 3 bytes a value.
	const n = 65535
	in := []byte{0xa1, 0x83, 0x19, 0x04, 0x00, 0x00, 0x01}
	in = lwcAppendHead(in, 5, n)
	for i := range n {
		in = lwcAppendHead(in, 0, uint64(i))
		in = append(in, 0)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	vals, err := DecodeLwM2MCBOR(in)
	runtime.ReadMemStats(&after)
	if err != nil || len(vals) != n {
		t.Fatalf("decoded %d values, %v", len(vals), err)
	}
	// The result alone is 96 bytes a value, 24 times the input here; the
	// whole decoding allocates about twice that.
	t.Logf("decoding %d bytes allocated %d", len(in), after.TotalAlloc-before.TotalAlloc)
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 80*uint64(len(in)) {
		t.Errorf("decoding %d bytes allocated %d", len(in), alloc)
	}
}

func FuzzDecodeLwM2MCBOR(f *testing.F) {
	for _, s := range []string{lwcSpecDevice, lwcSpecDeviceStreamed, lwcAnjayAllTypes,
		`A1 83 0D 18 1A 01 18 2A`, `BF 9F 0D FF BF 9F 18 1A FF BF 9F 01 FF 18 2A FF FF FF`,
		`A1 81 0D A1 81 18 1A A1 81 01 A1 81 02 C4 82 20 18 2D`,
		`A2 82 0D 18 1A A1 01 18 2A 83 0D 18 1A 02 15`,
		`A1 83 0D 18 1A 01 5F 48 00 11 22 33 44 55 66 77 48 88 99 AA BB CC DD EE FF FF`,
		`A1 82 0D 18 1A A7 01 01 02 20 03 F9 41 00 04 64 74 65 73 74 05 44 11 22 33 44 06 65 31 32 3A 33 34 07 01`,
		`A2 0D A1 18 1A A1 01 01 0E A1 18 1B A1 02 02`,
		`A2 82 01 00 A3 06 F5 0A 64 31 31 3A 30 0C C1 20 82 05 00 A2 00 40 01 62 C3 A9`,
		`A1 82 03 00 A3 0D C0 74 32 30 31 33 2D 30 35 2D 30 32 54 31 30 3A 34 30 3A 31 35 5A 09 F9 56 40 07 A1 00 C4 82 01 0A`,
		`A1 82 19 0C E7 00 A3 00 FB 7F F8 00 00 00 00 00 01 01 F9 7E 00 02 3B FF FF FF FF FF FF FF FF`,
		`A0`} {
		f.Add(unhex(f, s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		vals, err := DecodeLwM2MCBOR(data)
		if err != nil {
			if !errors.Is(err, ErrMalformedLwM2MCBOR) {
				t.Fatalf("error %v does not wrap ErrMalformedLwM2MCBOR", err)
			}
			return
		}
		enc, err := EncodeLwM2MCBOR(vals)
		if err != nil {
			t.Fatalf("re-encode of%s: %v", lwm2mFormatValues(vals), err)
		}
		if len(enc) > 3*len(data)+16 {
			t.Fatalf("%d input bytes re-encoded to %d", len(data), len(enc))
		}
		again, err := DecodeLwM2MCBOR(enc)
		if err != nil {
			t.Fatalf("decode of re-encoding % X: %v", enc, err)
		}
		if !lwm2mSameValues(vals, again) {
			t.Fatalf("round trip differs:%s\n%s", lwm2mFormatValues(vals), lwm2mFormatValues(again))
		}
		enc2, err := EncodeLwM2MCBOR(again)
		if err != nil || !bytes.Equal(enc, enc2) {
			t.Fatalf("encoding is not stable: % X vs % X (%v)", enc, enc2, err)
		}
	})
}
