package model

import (
	"bytes"
	"encoding/hex"
	"errors"
	"math"
	"strings"
	"testing"
	"time"
)

func unhex(tb testing.TB, s string) []byte {
	tb.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		tb.Fatalf("bad hex in test: %v", err)
	}
	return b
}

// The Read of /3/0 from the OMA LwM2M TS (TLV examples: Device object,
// single instance), as a list of resource TLVs.
const specDeviceResources = `
C8 00 14 4F 70 65 6E 20 4D 6F 62 69 6C 65 20 41 6C 6C 69 61 6E 63 65
C8 01 16 4C 69 67 68 74 77 65 69 67 68 74 20 4D 32 4D 20 43 6C 69 65 6E 74
C8 02 09 33 34 35 30 30 30 31 32 33
C3 03 31 2E 30
86 06 41 00 01 41 01 05
88 07 08 42 00 0E D8 42 01 13 88
87 08 41 00 7D 42 01 03 84
C1 09 64
C1 0A 0F
83 0B 41 00 00
C4 0D 51 82 42 8F
C6 0E 2B 30 32 3A 30 30
C1 10 55`

// The same instance wrapped in one object instance TLV (length 0x79).
const specDeviceInstance = `08 00 79` + specDeviceResources

// A Read of /1 with one Server object instance (OMA TS TLV example C).
const specServer = `08 00 0F C1 00 01 C4 01 00 01 51 80 C1 06 01 C1 07 55`

// A Read of /2 with two Access Control instances (OMA TS TLV example B);
// Object 2 is not in the built-in model, so its values stay opaque.
const specACL = `08 00 0E C1 00 01 C1 01 00 83 02 41 7F 07 C1 03 7F
08 02 12 C1 00 03 C1 01 00 87 02 41 7F 07 61 01 36 01 C1 03 7F`

func wantSpecDevice() ObjectInstance {
	return ObjectInstance{ID: 0, Resources: map[uint16]Resource{
		0:  SingleResource(0, StringValue("Open Mobile Alliance")),
		1:  SingleResource(1, StringValue("Lightweight M2M Client")),
		2:  SingleResource(2, StringValue("345000123")),
		3:  SingleResource(3, StringValue("1.0")),
		6:  MultipleResource(6, map[uint16]Value{0: IntegerValue(1), 1: IntegerValue(5)}),
		7:  MultipleResource(7, map[uint16]Value{0: IntegerValue(3800), 1: IntegerValue(5000)}),
		8:  MultipleResource(8, map[uint16]Value{0: IntegerValue(125), 1: IntegerValue(900)}),
		9:  SingleResource(9, IntegerValue(100)),
		10: SingleResource(10, IntegerValue(15)),
		11: MultipleResource(11, map[uint16]Value{0: IntegerValue(0)}),
		13: SingleResource(13, TimeValue(time.Unix(1367491215, 0))),
		14: SingleResource(14, StringValue("+02:00")),
		16: SingleResource(16, StringValue("U")),
	}}
}

func TestDecodeTLVSpecExamples(t *testing.T) {
	device := wantSpecDevice()
	tests := []struct {
		name string
		path Path
		in   string
		want Node
	}{
		{"device /3/0 as resources", ObjectInstancePath(3, 0), specDeviceResources, &device},
		{"device /3/0 wrapped in its instance", ObjectInstancePath(3, 0), specDeviceInstance, &device},
		{"device /3 as object", ObjectPath(3), specDeviceInstance,
			&Object{ID: 3, Instances: map[uint16]ObjectInstance{0: device}}},
		{"device /3 without instance tlv", ObjectPath(3), specDeviceResources,
			&Object{ID: 3, Instances: map[uint16]ObjectInstance{0: device}}},
		{"server /1", ObjectPath(1), specServer, &Object{ID: 1, Instances: map[uint16]ObjectInstance{
			0: {ID: 0, Resources: map[uint16]Resource{
				0: SingleResource(0, IntegerValue(1)),
				1: SingleResource(1, UnsignedValue(86400)),
				6: SingleResource(6, BoolValue(true)),
				7: SingleResource(7, StringValue("U")),
			}},
		}}},
		{"unknown object /2 stays opaque", ObjectPath(2), specACL, &Object{ID: 2, Instances: map[uint16]ObjectInstance{
			0: {ID: 0, Resources: map[uint16]Resource{
				0: SingleResource(0, OpaqueValue([]byte{1})),
				1: SingleResource(1, OpaqueValue([]byte{0})),
				2: MultipleResource(2, map[uint16]Value{127: OpaqueValue([]byte{7})}),
				3: SingleResource(3, OpaqueValue([]byte{127})),
			}},
			2: {ID: 2, Resources: map[uint16]Resource{
				0: SingleResource(0, OpaqueValue([]byte{3})),
				1: SingleResource(1, OpaqueValue([]byte{0})),
				2: MultipleResource(2, map[uint16]Value{127: OpaqueValue([]byte{7}), 310: OpaqueValue([]byte{1})}),
				3: SingleResource(3, OpaqueValue([]byte{127})),
			}},
		}}},
		{"power sources as a multiple resource", ResourcePath(3, 0, 6), `86 06 41 00 01 41 01 05`,
			&Resource{ID: 6, Multiple: true, Instances: map[uint16]Value{0: IntegerValue(1), 1: IntegerValue(5)}}},
		{"power sources as bare instances", ResourcePath(3, 0, 6), `41 00 01 41 01 05`,
			&Resource{ID: 6, Multiple: true, Instances: map[uint16]Value{0: IntegerValue(1), 1: IntegerValue(5)}}},
		{"one power source", ResourceInstancePath(3, 0, 6, 1), `41 01 05`,
			&ResourceInstance{ID: 1, Value: IntegerValue(5)}},
		{"firmware state", ResourcePath(5, 0, 3), `C1 03 02`, &Resource{ID: 3, Value: IntegerValue(2)}},
		{"16-bit resource id", ResourcePath(3303, 0, 5700), `E4 16 44 41 C8 00 00`,
			&Resource{ID: 5700, Value: OpaqueValue([]byte{0x41, 0xC8, 0, 0})}},
		{"empty instance", ObjectInstancePath(3, 0), ``, &ObjectInstance{ID: 0, Resources: map[uint16]Resource{}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeTLV(tt.path, unhex(t, tt.in))
			if err != nil {
				t.Fatalf("DecodeTLV: %v", err)
			}
			if !nodesEqual(got, tt.want) {
				t.Errorf("DecodeTLV =\n%#v\nwant\n%#v", got, tt.want)
			}
		})
	}
}

func TestEncodeTLVSpecExamples(t *testing.T) {
	device := wantSpecDevice()
	tests := []struct {
		name string
		path Path
		node Node
		want string
	}{
		{"device instance for write on /3/0", ObjectInstancePath(3, 0), &device, specDeviceResources},
		{"device instance for create on /3", ObjectPath(3), &device, specDeviceInstance},
		{"device object", ObjectPath(3), &Object{ID: 3, Instances: map[uint16]ObjectInstance{0: device}}, specDeviceInstance},
		{"server object", ObjectPath(1), &Object{ID: 1, Instances: map[uint16]ObjectInstance{
			0: {ID: 0, Resources: map[uint16]Resource{
				0: SingleResource(0, IntegerValue(1)),
				1: SingleResource(1, UnsignedValue(86400)),
				6: SingleResource(6, BoolValue(true)),
				7: SingleResource(7, StringValue("U")),
			}},
		}}, specServer},
		{"package uri", ResourcePath(5, 0, 1), &Resource{ID: 1, Value: StringValue("coap://a/b")},
			`C8 01 0A 63 6F 61 70 3A 2F 2F 61 2F 62`},
		{"empty package resets", ResourcePath(5, 0, 0), &Resource{ID: 0, Value: OpaqueValue(nil)}, `C0 00`},
		{"negative integer", ResourcePath(4, 0, 2), &Resource{ID: 2, Value: IntegerValue(-93)}, `C1 02 A3`},
		{"integer 2 bytes", ResourcePath(3, 0, 7), &Resource{ID: 7, Value: IntegerValue(-129)}, `C2 07 FF 7F`},
		{"integer 8 bytes", ResourcePath(3, 0, 10), &Resource{ID: 10, Value: IntegerValue(math.MinInt64)},
			`C8 0A 08 80 00 00 00 00 00 00 00`},
		{"unsigned 4 bytes", ResourcePath(5, 0, 13), &Resource{ID: 13, Value: UnsignedValue(1 << 31)}, `C4 0D 80 00 00 00`},
		{"object link", ResourcePath(1, 0, 10), &Resource{ID: 10, Value: ObjectLinkValue(ObjectLink{11, 0})}, `C4 0A 00 0B 00 00`},
		{"resource instance", ResourceInstancePath(3, 0, 11, 300), &ResourceInstance{ID: 300, Value: IntegerValue(0)}, `61 01 2C 00`},
		{"empty multiple resource", ResourcePath(3, 0, 11), MultipleResource(11, nil).ptr(), `80 0B`},
		{"large opaque uses a 2-byte length", ResourcePath(5, 0, 0), &Resource{ID: 0, Value: OpaqueValue(make([]byte, 300))},
			`D0 00 01 2C` + strings.Repeat("00", 300)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := EncodeTLV(tt.path, tt.node)
			if err != nil {
				t.Fatalf("EncodeTLV: %v", err)
			}
			if want := unhex(t, tt.want); !bytes.Equal(got, want) {
				t.Errorf("EncodeTLV =\n% X\nwant\n% X", got, want)
			}
			back, err := DecodeTLV(tt.path, got)
			if err != nil {
				t.Fatalf("DecodeTLV of the encoding: %v", err)
			}
			want := tt.node
			if oi, ok := want.(*ObjectInstance); ok && tt.path.Level() == LevelObject {
				want = &Object{ID: 3, Instances: map[uint16]ObjectInstance{oi.ID: *oi}}
			}
			if !nodesEqual(back, want) {
				t.Errorf("round trip gave %#v", back)
			}
		})
	}
}

func (r Resource) ptr() *Resource { return &r }

// No built-in resource is a float, so floats (and the other types) are also
// checked at the value level, both ways.
func TestTLVValues(t *testing.T) {
	tests := []struct {
		name string
		v    Value
		wire string
	}{
		{"float fits 4 bytes", FloatValue(25), `41 C8 00 00`},
		{"float needs 8 bytes", FloatValue(0.1), `3F B9 99 99 99 99 99 9A`},
		{"negative zero", FloatValue(math.Copysign(0, -1)), `80 00 00 00`},
		{"infinity", FloatValue(math.Inf(1)), `7F 80 00 00`},
		{"NaN", FloatValue(math.NaN()), `7F F8 00 00 00 00 00 01`},
		{"integer -1", IntegerValue(-1), `FF`},
		{"integer 128", IntegerValue(128), `00 80`},
		{"integer max int32", IntegerValue(math.MaxInt32), `7F FF FF FF`},
		{"integer max int32+1", IntegerValue(math.MaxInt32 + 1), `00 00 00 00 80 00 00 00`},
		{"unsigned 255", UnsignedValue(255), `FF`},
		{"unsigned 256", UnsignedValue(256), `01 00`},
		{"unsigned max", UnsignedValue(math.MaxUint64), `FF FF FF FF FF FF FF FF`},
		{"boolean false", BoolValue(false), `00`},
		{"time", TimeValue(time.Unix(1367491215, 0)), `51 82 42 8F`},
		{"time before 1970", TimeValue(time.Unix(-1, 0)), `FF`},
		{"object link", ObjectLinkValue(ObjectLink{65535, 65535}), `FF FF FF FF`},
		{"string", StringValue("1.0"), `31 2E 30`},
		{"opaque", OpaqueValue([]byte{0, 1}), `00 01`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := encodeValue(tt.v)
			if err != nil {
				t.Fatal(err)
			}
			want := unhex(t, tt.wire)
			if tt.name != "NaN" && !bytes.Equal(got, want) {
				t.Errorf("encode = % X, want % X", got, want)
			}
			back, err := decodeTypedValue(tt.v.Type(), got)
			if err != nil {
				t.Fatal(err)
			}
			if !back.Equal(tt.v) {
				t.Errorf("decode = %v, want %v", back, tt.v)
			}
		})
	}
	t.Run("4-byte float widens", func(t *testing.T) {
		v, err := decodeTypedValue(TypeFloat, unhex(t, `41 C8 00 00`))
		if f, _ := v.AsFloat(); err != nil || f != 25 {
			t.Errorf("got %v, %v", v, err)
		}
	})
	t.Run("bad float length", func(t *testing.T) {
		if _, err := decodeTypedValue(TypeFloat, []byte{1, 2, 3}); !errors.Is(err, ErrMalformedTLV) {
			t.Errorf("error = %v", err)
		}
	})
}

func TestDecodeTLVRejects(t *testing.T) {
	tests := []struct {
		name string
		path Path
		in   string
	}{
		{"truncated 16-bit id", ObjectInstancePath(3, 0), `E1 16`},
		{"truncated length field", ObjectInstancePath(3, 0), `D8 00 01`},
		{"missing identifier", ObjectInstancePath(3, 0), `C1`},
		{"length beyond buffer", ObjectInstancePath(3, 0), `C8 00 14 4F 70 65 6E`},
		{"3-bit length beyond buffer", ResourcePath(3, 0, 9), `C2 09 01`},
		{"24-bit length beyond buffer", ResourcePath(5, 0, 0), `D8 00 FF FF FF 00`},
		{"child length beyond parent", ResourcePath(3, 0, 6), `86 06 42 00 01 41 01 05`},
		{"object instance inside object instance", ObjectPath(3), `03 00 01 00 00`},
		{"resource value inside multiple resource", ResourcePath(3, 0, 6), `83 06 C1 00 01`},
		{"resource instance inside object instance", ObjectPath(3), `03 00 41 00 01`},
		{"resource instance directly in instance", ObjectInstancePath(3, 0), `41 00 01`},
		{"resources beside object instances", ObjectPath(3), `00 00 C1 09 64`},
		{"object instance beside resources", ObjectPath(3), `C1 09 64 00 00`},
		{"boolean 2", ResourcePath(1, 0, 6), `C1 06 02`},
		{"boolean two bytes", ResourcePath(1, 0, 6), `C2 06 00 01`},
		{"boolean empty", ResourcePath(1, 0, 6), `C0 06`},
		{"integer of 3 bytes", ResourcePath(3, 0, 9), `C3 09 00 00 64`},
		{"integer empty", ResourcePath(3, 0, 9), `C0 09`},
		{"unsigned of 5 bytes", ResourcePath(5, 0, 13), `C5 0D 00 00 00 00 01`},
		{"time of 3 bytes", ResourcePath(3, 0, 13), `C3 0D 51 82 42`},
		{"object link of 2 bytes", ResourcePath(1, 0, 10), `C2 0A 00 0B`},
		{"duplicate resource", ObjectInstancePath(3, 0), `C1 09 64 C1 09 63`},
		{"duplicate object instance", ObjectPath(3), `00 00 00 00`},
		{"duplicate resource instance", ResourcePath(3, 0, 6), `86 06 41 00 01 41 00 05`},
		{"wrong instance id", ObjectInstancePath(3, 0), `08 01 03 C1 09 64`},
		{"wrong resource id", ResourcePath(3, 0, 9), `C1 0A 64`},
		{"two resources for one", ResourcePath(3, 0, 9), `C1 09 64 C1 09 64`},
		{"empty resource payload", ResourcePath(3, 0, 9), ``},
		{"wrong resource instance id", ResourceInstancePath(3, 0, 6, 1), `41 00 01`},
		{"object instance for resource instance", ResourceInstancePath(3, 0, 6, 1), `00 01`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := DecodeTLV(tt.path, unhex(t, tt.in))
			if err == nil {
				t.Fatalf("DecodeTLV = %#v, want error", n)
			}
			if !errors.Is(err, ErrMalformedTLV) {
				t.Errorf("error %v does not wrap ErrMalformedTLV", err)
			}
		})
	}
}

func TestTLVNodeMismatch(t *testing.T) {
	res := &Resource{ID: 3, Value: IntegerValue(1)}
	tests := []struct {
		name string
		path Path
		node Node
	}{
		{"root", RootPath(), &Object{ID: 3}},
		{"resource at instance level", ObjectInstancePath(5, 0), res},
		{"resource id differs", ResourcePath(5, 0, 5), res},
		{"object id differs", ObjectPath(5), &Object{ID: 3}},
		{"instance at resource level", ResourcePath(5, 0, 3), &ObjectInstance{ID: 0}},
		{"typed nil", ObjectPath(5), (*Object)(nil)},
		{"nil", ObjectPath(5), nil},
		{"executable has no value", ResourcePath(5, 0, 2), &Resource{ID: 2}},
		{"map key differs from id", ObjectInstancePath(5, 0), &ObjectInstance{ID: 0, Resources: map[uint16]Resource{1: *res}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if b, err := EncodeTLV(tt.path, tt.node); !errors.Is(err, ErrNodeMismatch) {
				t.Errorf("EncodeTLV = % X, %v; want ErrNodeMismatch", b, err)
			}
		})
	}
	t.Run("decode at root", func(t *testing.T) {
		if _, err := DecodeTLV(RootPath(), nil); !errors.Is(err, ErrNodeMismatch) {
			t.Errorf("DecodeTLV(/) error = %v", err)
		}
	})
}

func TestDecodeTLVDoesNotAliasInput(t *testing.T) {
	in := unhex(t, `C3 00 01 02 03`)
	n, err := DecodeTLV(ResourcePath(5, 0, 0), in)
	if err != nil {
		t.Fatal(err)
	}
	in[3] = 0xFF
	b, _ := n.(*Resource).Value.AsOpaque()
	if !bytes.Equal(b, []byte{1, 2, 3}) {
		t.Errorf("decoded opaque changed with the input: % X", b)
	}
}

func nodesEqual(a, b Node) bool {
	switch a := a.(type) {
	case *Object:
		b, ok := b.(*Object)
		return ok && a.Equal(*b)
	case *ObjectInstance:
		b, ok := b.(*ObjectInstance)
		return ok && a.Equal(*b)
	case *Resource:
		b, ok := b.(*Resource)
		return ok && a.Equal(*b)
	case *ResourceInstance:
		b, ok := b.(*ResourceInstance)
		return ok && a.Equal(*b)
	}
	return false
}

// fuzzPaths are the paths FuzzDecodeTLV reads payloads for: every level, known
// objects with every value type, and an unknown object.
var fuzzPaths = []Path{
	ObjectPath(3), ObjectInstancePath(3, 0), ResourcePath(3, 0, 6), ResourceInstancePath(3, 0, 6, 1),
	ObjectPath(1), ObjectInstancePath(1, 0), ResourcePath(1, 0, 6), ResourcePath(1, 0, 10),
	ObjectInstancePath(5, 0), ResourcePath(5, 0, 13), ResourcePath(3, 0, 13),
	ObjectPath(2), ObjectInstancePath(3303, 0), ResourcePath(3303, 0, 5700), RootPath(),
}

func FuzzDecodeTLV(f *testing.F) {
	for _, s := range []string{specDeviceResources, specDeviceInstance, specServer, specACL,
		`86 06 41 00 01 41 01 05`, `41 00 01 41 01 05`, `C1 06 01`, `C4 0A 00 0B 00 00`, `E4 16 44 41 C8 00 00`} {
		for i := range fuzzPaths {
			f.Add(byte(i), unhex(f, s))
		}
	}
	f.Fuzz(func(t *testing.T, pi byte, data []byte) {
		p := fuzzPaths[int(pi)%len(fuzzPaths)]
		n, err := DecodeTLV(p, data)
		if err != nil {
			return
		}
		enc, err := EncodeTLV(p, n)
		if err != nil {
			t.Fatalf("%s: re-encode of %#v: %v", p, n, err)
		}
		if len(enc) > 2*len(data)+8 {
			t.Fatalf("%s: %d input bytes re-encoded to %d", p, len(data), len(enc))
		}
		again, err := DecodeTLV(p, enc)
		if err != nil {
			t.Fatalf("%s: decode of re-encoding % X: %v", p, enc, err)
		}
		if !nodesEqual(n, again) {
			t.Fatalf("%s: round trip differs:\n%#v\n%#v", p, n, again)
		}
		enc2, err := EncodeTLV(p, again)
		if err != nil || !bytes.Equal(enc, enc2) {
			t.Fatalf("%s: encoding is not stable: % X vs % X (%v)", p, enc, enc2, err)
		}
	})
}
