package model

import (
	"bytes"
	"errors"
	"math"
	"strings"
	"testing"
	"time"
)

// Paths of the built-in model with each value type, and one it does not know.
var (
	spManufacturer = ResourcePath(3, 0, 0)  // string
	spBattery      = ResourcePath(3, 0, 9)  // integer
	spCurrentTime  = ResourcePath(3, 0, 13) // time
	spLifetime     = ResourcePath(1, 0, 1)  // unsigned integer
	spStoring      = ResourcePath(1, 0, 6)  // boolean
	spAPNLink      = ResourcePath(1, 0, 10) // objlnk
	spPackage      = ResourcePath(5, 0, 0)  // opaque
	spPackageURI   = ResourcePath(5, 0, 1)  // string
	spVoltage1     = ResourceInstancePath(3, 0, 7, 1)
	spUnknown      = ResourcePath(3303, 0, 5700) // not in the model
)

func TestDecodeTextSpecExamples(t *testing.T) {
	tests := []struct {
		name string
		path Path
		in   string
		want Value
	}{
		// Core TS §7.4.1: Read /3/0/0 answered in plain text.
		{"manufacturer", spManufacturer, "Open Mobile Alliance", StringValue("Open Mobile Alliance")},
		// Core TS Table C.2 examples, one per type.
		{"integer -750", spBattery, "-750", IntegerValue(-750)},
		{"unsigned 18", spLifetime, "18", UnsignedValue(18)},
		{"boolean 0", spStoring, "0", BoolValue(false)},
		{"boolean 1", spStoring, "1", BoolValue(true)},
		{"opaque as base64", spPackage, "AQIDBAU=", OpaqueValue([]byte{1, 2, 3, 4, 5})},
		{"time 1476186613", spCurrentTime, "1476186613", TimeValue(time.Date(2016, 10, 11, 11, 50, 13, 0, time.UTC))},
		{"object link", spAPNLink, "11:0", ObjectLinkValue(ObjectLink{11, 0})},
		{"null object link", spAPNLink, "65535:65535", ObjectLinkValue(ObjectLink{65535, 65535})},
		// The built-in model decides the type.
		{"battery level", spBattery, "100", IntegerValue(100)},
		{"lifetime", spLifetime, "86400", UnsignedValue(86400)},
		{"current time", spCurrentTime, "1367491215", TimeValue(time.Unix(1367491215, 0))},
		{"time before 1970", spCurrentTime, "-1", TimeValue(time.Unix(-1, 0))},
		{"package URI", spPackageURI, "coap://fw.example.com/v2.bin", StringValue("coap://fw.example.com/v2.bin")},
		{"empty package URI", spPackageURI, "", StringValue("")},
		{"empty package", spPackage, "", OpaqueValue(nil)},
		{"resource instance", spVoltage1, "3800", IntegerValue(3800)},
		{"integer with plus sign", spBattery, "+5", IntegerValue(5)},
		{"integer min", spBattery, "-9223372036854775808", IntegerValue(math.MinInt64)},
		{"unsigned max", spLifetime, "18446744073709551615", UnsignedValue(math.MaxUint64)},
		{"unknown resource is a string", spUnknown, "21.5", StringValue("21.5")},
		{"unknown resource keeps spaces", spUnknown, " x \n", StringValue(" x \n")},
		{"utf-8 string", spManufacturer, "Zürich ☃", StringValue("Zürich ☃")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeText(tt.path, []byte(tt.in))
			if err != nil {
				t.Fatalf("DecodeText: %v", err)
			}
			if !got.Equal(tt.want) {
				t.Errorf("DecodeText = %v (%s), want %v (%s)", got, got.Type(), tt.want, tt.want.Type())
			}
		})
	}
}

// Floats have no resource in the built-in model, so they are decoded by type.
func TestDecodeTextFloat(t *testing.T) {
	tests := []struct {
		in   string
		want float64
	}{
		{"0.00000000006667", 6.667e-11}, // Core TS Table C.2
		{"6.667e-11", 6.667e-11},
		{"6.667E-11", 6.667e-11},
		{"21.5", 21.5},
		{"-21.5", -21.5},
		{"+1", 1},
		{"1e3", 1000},
		{"1.e+3", 1000},
		{".5", 0.5},
		{"5.", 5},
		{"1.7976931348623157e308", math.MaxFloat64},
		{"4.9e-324", math.SmallestNonzeroFloat64},
		{"1e-400", 0}, // underflows to zero, like any decimal parser
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			v, err := singleDecodeText(TypeFloat, []byte(tt.in))
			if f, ok := v.AsFloat(); err != nil || !ok || f != tt.want {
				t.Errorf("decode %q = %v, %v; want %v", tt.in, v, err, tt.want)
			}
		})
	}
	t.Run("negative zero", func(t *testing.T) {
		v, err := singleDecodeText(TypeFloat, []byte("-0"))
		if f, _ := v.AsFloat(); err != nil || f != 0 || !math.Signbit(f) {
			t.Errorf("decode -0 = %v, %v", v, err)
		}
	})
}

func TestEncodeText(t *testing.T) {
	tests := []struct {
		name string
		v    Value
		want string
	}{
		{"string", StringValue("Open Mobile Alliance"), "Open Mobile Alliance"},
		{"empty string", StringValue(""), ""},
		{"integer -750", IntegerValue(-750), "-750"},
		{"integer min", IntegerValue(math.MinInt64), "-9223372036854775808"},
		{"integer max", IntegerValue(math.MaxInt64), "9223372036854775807"},
		{"unsigned 18", UnsignedValue(18), "18"},
		{"unsigned max", UnsignedValue(math.MaxUint64), "18446744073709551615"},
		{"float without exponent", FloatValue(6.667e-11), "0.00000000006667"},
		{"float 21.5", FloatValue(21.5), "21.5"},
		{"float integral", FloatValue(25), "25"},
		{"float 0.1 shortest", FloatValue(0.1), "0.1"},
		{"float 1e21", FloatValue(1e21), "1000000000000000000000"},
		{"negative zero", FloatValue(math.Copysign(0, -1)), "-0"},
		{"boolean false", BoolValue(false), "0"},
		{"boolean true", BoolValue(true), "1"},
		{"opaque", OpaqueValue([]byte{1, 2, 3, 4, 5}), "AQIDBAU="},
		{"empty opaque", OpaqueValue(nil), ""},
		{"time", TimeValue(time.Unix(1476186613, 0)), "1476186613"},
		{"time before 1970", TimeValue(time.Unix(-86400, 0)), "-86400"},
		{"object link", ObjectLinkValue(ObjectLink{66, 65535}), "66:65535"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := EncodeText(tt.v)
			if err != nil {
				t.Fatalf("EncodeText: %v", err)
			}
			if string(got) != tt.want {
				t.Errorf("EncodeText = %q, want %q", got, tt.want)
			}
			back, err := singleDecodeText(tt.v.Type(), got)
			if err != nil {
				t.Fatalf("decode of %q: %v", got, err)
			}
			if !back.Equal(tt.v) {
				t.Errorf("round trip gave %v, want %v", back, tt.v)
			}
		})
	}
}

// singleRoundTripValues holds every type with its edge values.
func singleRoundTripValues() []Value {
	return []Value{
		StringValue(""), StringValue("U"), StringValue("Zürich ☃ \x00 \n"), StringValue(strings.Repeat("x", 70000)),
		IntegerValue(0), IntegerValue(-1), IntegerValue(23), IntegerValue(24), IntegerValue(-24), IntegerValue(-25),
		IntegerValue(255), IntegerValue(256), IntegerValue(-257), IntegerValue(65536), IntegerValue(-4294967297),
		IntegerValue(math.MinInt64), IntegerValue(math.MaxInt64),
		UnsignedValue(0), UnsignedValue(24), UnsignedValue(math.MaxUint32 + 1), UnsignedValue(math.MaxUint64),
		FloatValue(0), FloatValue(math.Copysign(0, -1)), FloatValue(1.5), FloatValue(-4.1), FloatValue(0.1),
		FloatValue(65504), FloatValue(65505), FloatValue(100000), FloatValue(math.MaxFloat32), FloatValue(math.MaxFloat64),
		FloatValue(math.SmallestNonzeroFloat64), FloatValue(5.960464477539063e-8), FloatValue(1e300),
		FloatValue(-math.MaxFloat64),
		BoolValue(true), BoolValue(false),
		OpaqueValue(nil), OpaqueValue([]byte{0}), OpaqueValue([]byte{1, 2, 3, 4, 5}), OpaqueValue(bytes.Repeat([]byte{0xff}, 300)),
		TimeValue(time.Unix(0, 0)), TimeValue(time.Unix(1367491215, 0)), TimeValue(time.Unix(-1, 0)),
		{typ: TypeTime, num: 1 << 63}, {typ: TypeTime, num: 1<<63 - 1},
		ObjectLinkValue(ObjectLink{0, 0}), ObjectLinkValue(ObjectLink{3, 0}), ObjectLinkValue(ObjectLink{65535, 65535}),
	}
}

// Floats that only CBOR can carry.
func singleSpecialFloats() []Value {
	return []Value{
		FloatValue(math.Inf(1)), FloatValue(math.Inf(-1)), FloatValue(math.NaN()),
		{typ: TypeFloat, num: 0x7ff8000000000000}, // the quiet NaN of half precision 7e00
		{typ: TypeFloat, num: 0xfff8000000000000}, // negative NaN
		{typ: TypeFloat, num: 0x7ff0000000000001}, // signaling NaN, lowest payload bit
		{typ: TypeFloat, num: 0x7ff4000000000000}, // signaling NaN that fits half precision
		{typ: TypeFloat, num: 0x7ff0000020000000}, // signaling NaN that fits single precision
	}
}

func TestTextRoundTrip(t *testing.T) {
	for _, v := range singleRoundTripValues() {
		t.Run(v.Type().String()+" "+singleClip(v.String()), func(t *testing.T) {
			enc, err := EncodeText(v)
			if err != nil {
				t.Fatalf("EncodeText: %v", err)
			}
			back, err := singleDecodeText(v.Type(), enc)
			if err != nil {
				t.Fatalf("decode %q: %v", singleClip(string(enc)), err)
			}
			if !back.Equal(v) {
				t.Errorf("round trip gave %v, want %v", back, v)
			}
		})
	}
}

func TestDecodeTextRejects(t *testing.T) {
	tests := []struct {
		name string
		path Path
		in   string
	}{
		{"integer with fraction", spBattery, "1.5"},
		{"integer with exponent", spBattery, "1e3"},
		{"integer with space", spBattery, " 1"},
		{"integer with newline", spBattery, "100\n"},
		{"integer hex", spBattery, "0x10"},
		{"integer underscore", spBattery, "1_000"},
		{"integer above int64", spBattery, "9223372036854775808"},
		{"integer below int64", spBattery, "-9223372036854775809"},
		{"empty integer", spBattery, ""},
		{"negative unsigned", spLifetime, "-1"},
		{"unsigned with plus", spLifetime, "+1"},
		{"unsigned above uint64", spLifetime, "18446744073709551616"},
		{"boolean 2", spStoring, "2"},
		{"boolean word", spStoring, "true"},
		{"boolean 01", spStoring, "01"},
		{"empty boolean", spStoring, ""},
		{"time as RFC 3339", spCurrentTime, "2013-05-02T10:40:15Z"},
		{"time with fraction", spCurrentTime, "1367491215.5"},
		{"empty time", spCurrentTime, ""},
		{"object link without instance", spAPNLink, "1:"},
		{"object link without object", spAPNLink, ":1"},
		{"object link instance too big", spAPNLink, "1:65536"},
		{"object link with dash", spAPNLink, "1-2"},
		{"object link three parts", spAPNLink, "1:2:3"},
		{"object link signed", spAPNLink, "+1:2"},
		{"object link letters", spAPNLink, "a:b"},
		{"empty object link", spAPNLink, ""},
		{"opaque without padding", spPackage, "AQIDBAU"},
		{"opaque url alphabet", spPackage, "-_8="},
		{"opaque not base64", spPackage, "!!!!"},
		{"opaque non-zero trailing bits", spPackage, "AQIDBAV="},
		{"string not utf-8", spManufacturer, "\xff\xfe"},
		{"unknown resource not utf-8", spUnknown, "ok\xc3\x28"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := DecodeText(tt.path, []byte(tt.in))
			if !errors.Is(err, ErrMalformedValue) {
				t.Errorf("DecodeText = %v, %v; want ErrMalformedValue", v, err)
			}
		})
	}
	for _, in := range []string{"", "NaN", "nan", "Inf", "-Inf", "infinity", "1e400", "-1e400", "0x1p-2", "1_000.5",
		"1.2.3", "e5", "1e", "1e+", ".", "-", "+.e1", " 1.5", "1.5 ", "1,5"} {
		t.Run("float "+in, func(t *testing.T) {
			if v, err := singleDecodeText(TypeFloat, []byte(in)); !errors.Is(err, ErrMalformedValue) {
				t.Errorf("decode %q = %v, %v; want ErrMalformedValue", in, v, err)
			}
		})
	}
}

func TestEncodeTextRejects(t *testing.T) {
	for _, v := range []Value{FloatValue(math.NaN()), FloatValue(math.Inf(1)), FloatValue(math.Inf(-1)),
		StringValue("\xff"), {}} {
		if b, err := EncodeText(v); !errors.Is(err, ErrMalformedValue) {
			t.Errorf("EncodeText(%v) = %q, %v; want ErrMalformedValue", v, b, err)
		}
	}
}

func TestSingleValuePaths(t *testing.T) {
	decoders := map[string]func(Path, []byte) (Value, error){
		"text": DecodeText, "opaque": DecodeOpaque, "cbor": DecodeCBORValue,
	}
	payloads := map[string][]byte{"text": []byte("1"), "opaque": {1}, "cbor": {1}}
	for _, p := range []Path{RootPath(), ObjectPath(3), ObjectInstancePath(3, 0),
		ResourcePath(3, 0, 4), ResourcePath(5, 0, 2), ResourceInstancePath(3, 0, 4, 0)} {
		for name, decode := range decoders {
			t.Run(name+" "+p.String(), func(t *testing.T) {
				if v, err := decode(p, payloads[name]); !errors.Is(err, ErrNodeMismatch) {
					t.Errorf("decode = %v, %v; want ErrNodeMismatch", v, err)
				}
			})
		}
	}
}

func TestOpaqueFormat(t *testing.T) {
	t.Run("package", func(t *testing.T) {
		in := []byte{0xde, 0xad, 0xbe, 0xef}
		v, err := DecodeOpaque(spPackage, in)
		if err != nil {
			t.Fatal(err)
		}
		in[0] = 0
		if b, ok := v.AsOpaque(); !ok || !bytes.Equal(b, []byte{0xde, 0xad, 0xbe, 0xef}) {
			t.Errorf("DecodeOpaque = %v (aliases the input?)", v)
		}
		out, err := EncodeOpaque(v)
		if err != nil || !bytes.Equal(out, []byte{0xde, 0xad, 0xbe, 0xef}) {
			t.Errorf("EncodeOpaque = % x, %v", out, err)
		}
	})
	t.Run("empty package resets the update", func(t *testing.T) {
		v, err := DecodeOpaque(spPackage, nil)
		if b, ok := v.AsOpaque(); err != nil || !ok || len(b) != 0 {
			t.Errorf("DecodeOpaque(empty) = %v, %v", v, err)
		}
		if out, err := EncodeOpaque(OpaqueValue(nil)); err != nil || len(out) != 0 {
			t.Errorf("EncodeOpaque(empty) = % x, %v", out, err)
		}
	})
	t.Run("unknown resource", func(t *testing.T) {
		v, err := DecodeOpaque(spUnknown, []byte("21.5"))
		if b, ok := v.AsOpaque(); err != nil || !ok || string(b) != "21.5" {
			t.Errorf("DecodeOpaque = %v, %v", v, err)
		}
	})
	for _, p := range []Path{spBattery, spPackageURI, spCurrentTime, spStoring, spAPNLink} {
		t.Run("rejects "+p.String(), func(t *testing.T) {
			if v, err := DecodeOpaque(p, []byte{1}); !errors.Is(err, ErrMalformedValue) {
				t.Errorf("DecodeOpaque = %v, %v; want ErrMalformedValue", v, err)
			}
		})
	}
	for _, v := range []Value{StringValue("x"), IntegerValue(1), {}} {
		if b, err := EncodeOpaque(v); !errors.Is(err, ErrMalformedValue) {
			t.Errorf("EncodeOpaque(%v) = % x, %v; want ErrMalformedValue", v, b, err)
		}
	}
}

// RFC 8949 Appendix A examples that are LwM2M values, both ways.
func TestCBORValueRFC8949Examples(t *testing.T) {
	tests := []struct {
		v    Value
		wire string
	}{
		{IntegerValue(0), `00`},
		{IntegerValue(1), `01`},
		{IntegerValue(10), `0a`},
		{IntegerValue(23), `17`},
		{IntegerValue(24), `18 18`},
		{IntegerValue(25), `18 19`},
		{IntegerValue(100), `18 64`},
		{IntegerValue(1000), `19 03 e8`},
		{IntegerValue(1000000), `1a 00 0f 42 40`},
		{IntegerValue(1000000000000), `1b 00 00 00 e8 d4 a5 10 00`},
		{UnsignedValue(18446744073709551615), `1b ff ff ff ff ff ff ff ff`},
		{IntegerValue(-1), `20`},
		{IntegerValue(-10), `29`},
		{IntegerValue(-100), `38 63`},
		{IntegerValue(-1000), `39 03 e7`},
		{IntegerValue(math.MinInt64), `3b 7f ff ff ff ff ff ff ff`},
		{FloatValue(0.0), `f9 00 00`},
		{FloatValue(math.Copysign(0, -1)), `f9 80 00`},
		{FloatValue(1.0), `f9 3c 00`},
		{FloatValue(1.1), `fb 3f f1 99 99 99 99 99 9a`},
		{FloatValue(1.5), `f9 3e 00`},
		{FloatValue(65504.0), `f9 7b ff`},
		{FloatValue(100000.0), `fa 47 c3 50 00`},
		{FloatValue(3.4028234663852886e+38), `fa 7f 7f ff ff`},
		{FloatValue(1.0e+300), `fb 7e 37 e4 3c 88 00 75 9c`},
		{FloatValue(5.960464477539063e-8), `f9 00 01`},
		{FloatValue(0.00006103515625), `f9 04 00`},
		{FloatValue(-4.0), `f9 c4 00`},
		{FloatValue(-4.1), `fb c0 10 66 66 66 66 66 66`},
		{FloatValue(math.Inf(1)), `f9 7c 00`},
		{Value{typ: TypeFloat, num: 0x7ff8000000000000}, `f9 7e 00`},
		{FloatValue(math.Inf(-1)), `f9 fc 00`},
		{BoolValue(false), `f4`},
		{BoolValue(true), `f5`},
		{TimeValue(time.Unix(1363896240, 0)), `c1 1a 51 4b 67 b0`},
		{OpaqueValue(nil), `40`},
		{OpaqueValue([]byte{1, 2, 3, 4}), `44 01 02 03 04`},
		{StringValue(""), `60`},
		{StringValue("a"), `61 61`},
		{StringValue("IETF"), `64 49 45 54 46`},
		{StringValue("\"\\"), `62 22 5c`},
		{StringValue("\u00fc"), `62 c3 bc`},
		{StringValue("\u6c34"), `63 e6 b0 b4`},
		{StringValue("\U00010151"), `64 f0 90 85 91`},
		{ObjectLinkValue(ObjectLink{11, 0}), `64 31 31 3a 30`},
	}
	for _, tt := range tests {
		t.Run(tt.v.Type().String()+" "+tt.v.String(), func(t *testing.T) {
			got, err := EncodeCBORValue(tt.v)
			if err != nil {
				t.Fatalf("EncodeCBORValue: %v", err)
			}
			if want := unhex(t, tt.wire); !bytes.Equal(got, want) {
				t.Errorf("EncodeCBORValue = % x, want % x", got, want)
			}
			back, err := singleDecodeCBOR(tt.v.Type(), true, got)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if !back.Equal(tt.v) {
				t.Errorf("decode = %v, want %v", back, tt.v)
			}
		})
	}
}

func TestDecodeCBORValue(t *testing.T) {
	tests := []struct {
		name string
		path Path
		in   string
		want Value
	}{
		{"battery level", spBattery, `18 64`, IntegerValue(100)},
		{"negative integer", spBattery, `38 5c`, IntegerValue(-93)},
		{"integer max", spBattery, `1b 7f ff ff ff ff ff ff ff`, IntegerValue(math.MaxInt64)},
		{"integer in a long head", spBattery, `1b 00 00 00 00 00 00 00 64`, IntegerValue(100)},
		{"lifetime", spLifetime, `1a 00 01 51 80`, UnsignedValue(86400)},
		{"unsigned max", spLifetime, `1b ff ff ff ff ff ff ff ff`, UnsignedValue(math.MaxUint64)},
		{"current time, tag 1", spCurrentTime, `c1 1a 51 82 42 8f`, TimeValue(time.Unix(1367491215, 0))},
		{"current time, untagged", spCurrentTime, `1a 51 82 42 8f`, TimeValue(time.Unix(1367491215, 0))},
		{"time before 1970", spCurrentTime, `c1 20`, TimeValue(time.Unix(-1, 0))},
		{"time as tag 1 float", spCurrentTime, `c1 fb 41 d4 52 d9 ec 20 00 00`, TimeValue(time.Unix(1363896240, 0))},
		{"time as tag 1 negative float floors", spCurrentTime, `c1 f9 be 00`, TimeValue(time.Unix(-2, 0))},
		{"time as tag 0", spCurrentTime, `c0 74` + singleHex("2013-03-21T20:04:00Z"), TimeValue(time.Unix(1363896240, 0))},
		{"time as tag 0 with offset", spCurrentTime, `c0 78 1b` + singleHex("2013-03-21T22:04:00.5+02:00"), TimeValue(time.Unix(1363896240, 0))},
		{"storing", spStoring, `f5`, BoolValue(true)},
		{"package", spPackage, `44 01 02 03 04`, OpaqueValue([]byte{1, 2, 3, 4})},
		{"empty package", spPackage, `40`, OpaqueValue(nil)},
		{"package in chunks", spPackage, `5f 42 01 02 43 03 04 05 ff`, OpaqueValue([]byte{1, 2, 3, 4, 5})},
		{"package URI", spPackageURI, `6a` + singleHex("coap://a/b"), StringValue("coap://a/b")},
		{"package URI in chunks", spPackageURI, `7f 65 73 74 72 65 61 64 6d 69 6e 67 ff`, StringValue("streaming")},
		{"empty string", spManufacturer, `60`, StringValue("")},
		{"APN link", spAPNLink, `64 31 31 3a 30`, ObjectLinkValue(ObjectLink{11, 0})},
		{"resource instance", spVoltage1, `19 0e d8`, IntegerValue(3800)},
		// Unknown resources: the item decides.
		{"unknown half float", spUnknown, `f9 4d 60`, FloatValue(21.5)},
		{"unknown single float", spUnknown, `fa 47 c3 50 00`, FloatValue(100000)},
		{"unknown unsigned fits int64", spUnknown, `18 64`, IntegerValue(100)},
		{"unknown unsigned above int64", spUnknown, `1b ff ff ff ff ff ff ff ff`, UnsignedValue(math.MaxUint64)},
		{"unknown negative", spUnknown, `20`, IntegerValue(-1)},
		{"unknown bytes", spUnknown, `42 00 ff`, OpaqueValue([]byte{0, 0xff})},
		{"unknown text", spUnknown, `63 31 3a 30`, StringValue("1:0")},
		{"unknown tag 1", spUnknown, `c1 00`, TimeValue(time.Unix(0, 0))},
		{"unknown tag 0", spUnknown, `c0 74` + singleHex("1970-01-01T00:00:00Z"), TimeValue(time.Unix(0, 0))},
		{"unknown boolean", spUnknown, `f4`, BoolValue(false)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeCBORValue(tt.path, unhex(t, tt.in))
			if err != nil {
				t.Fatalf("DecodeCBORValue: %v", err)
			}
			if !got.Equal(tt.want) {
				t.Errorf("DecodeCBORValue = %v (%s), want %v (%s)", got, got.Type(), tt.want, tt.want.Type())
			}
		})
	}
}

func singleHex(s string) string {
	const digits = "0123456789abcdef"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		b.WriteByte(' ')
		b.WriteByte(digits[s[i]>>4])
		b.WriteByte(digits[s[i]&15])
	}
	return b.String()
}

// Floats have no resource in the built-in model; integers are accepted for
// them when exact.
func TestDecodeCBORValueFloat(t *testing.T) {
	tests := []struct {
		in   string
		want float64
	}{
		{`f9 3e 00`, 1.5},
		{`fa 3f c0 00 00`, 1.5},
		{`fb 3f f8 00 00 00 00 00 00`, 1.5},
		{`18 19`, 25},
		{`38 18`, -25},
		{`1b 00 20 00 00 00 00 00 00`, 1 << 53},
		{`3b 00 1f ff ff ff ff ff ff`, -(1 << 53)},
	}
	for _, tt := range tests {
		v, err := singleDecodeCBOR(TypeFloat, true, unhex(t, tt.in))
		if f, ok := v.AsFloat(); err != nil || !ok || f != tt.want {
			t.Errorf("decode %s = %v, %v; want %v", tt.in, v, err, tt.want)
		}
	}
	for _, in := range []string{`1b 00 20 00 00 00 00 00 01`, `3b 00 20 00 00 00 00 00 00`, `f5`, `61 31`} {
		if v, err := singleDecodeCBOR(TypeFloat, true, unhex(t, in)); !errors.Is(err, ErrMalformedValue) {
			t.Errorf("decode %s = %v, %v; want ErrMalformedValue", in, v, err)
		}
	}
}

func TestDecodeCBORValueRejects(t *testing.T) {
	tests := []struct {
		name string
		path Path
		in   string
	}{
		{"empty payload", spBattery, ``},
		{"empty payload for a string", spManufacturer, ``},
		{"trailing bytes", spBattery, `01 00`},
		{"two items", spManufacturer, `61 61 61 62`},
		{"truncated head", spBattery, `19 01`},
		{"truncated string", spManufacturer, `63 61 62`},
		{"unterminated indefinite string", spPackage, `5f 41 00`},
		{"text chunk in byte string", spPackage, `5f 61 00 ff`},
		{"reserved additional information", spBattery, `1c`},
		{"lone break", spBattery, `ff`},
		{"integer above int64", spBattery, `1b 80 00 00 00 00 00 00 00`},
		{"integer below int64", spBattery, `3b 80 00 00 00 00 00 00 00`},
		{"integer below uint64 negated", spUnknown, `3b ff ff ff ff ff ff ff ff`},
		{"negative unsigned", spLifetime, `20`},
		{"float for integer", spBattery, `f9 3c 00`},
		{"text for integer", spBattery, `62 31 30`},
		{"integer for boolean", spStoring, `01`},
		{"null for boolean", spStoring, `f6`},
		{"bytes for string", spManufacturer, `41 61`},
		{"invalid utf-8", spManufacturer, `62 c3 28`},
		{"invalid utf-8 in chunks", spManufacturer, `7f 61 c3 61 28 ff`},
		{"invalid utf-8 unknown", spUnknown, `61 ff`},
		{"text for opaque", spPackage, `61 61`},
		{"text for time", spCurrentTime, `6a` + singleHex("1367491215")},
		{"float for time untagged", spCurrentTime, `f9 3c 00`},
		{"tag 1 for integer", spBattery, `c1 00`},
		{"tag 0 for string", spManufacturer, `c0 74` + singleHex("2013-03-21T20:04:00Z")},
		{"tag 1 with text", spCurrentTime, `c1 61 31`},
		{"tag 0 with integer", spCurrentTime, `c0 00`},
		{"tag 0 not RFC 3339", spCurrentTime, `c0 6a` + singleHex("2013-03-21")},
		{"tag 1 NaN", spCurrentTime, `c1 f9 7e 00`},
		{"tag 1 infinity", spCurrentTime, `c1 f9 7c 00`},
		{"tag 1 float beyond int64", spCurrentTime, `c1 fa 5f 00 00 00`},
		{"tag 1 above int64", spCurrentTime, `c1 1b 80 00 00 00 00 00 00 00`},
		{"nested tags", spCurrentTime, `c1 c1 00`},
		{"bignum", spUnknown, `c2 41 01`},
		{"other tag", spUnknown, `d8 20 61 61`},
		{"tag 1 nested in unknown tag", spUnknown, `d8 20 c1 00`},
		{"null", spUnknown, `f6`},
		{"undefined", spUnknown, `f7`},
		{"simple value", spUnknown, `f0`},
		{"simple value 255", spUnknown, `f8 ff`},
		{"array", spUnknown, `80`},
		{"array of one", spBattery, `81 01`},
		{"map", spUnknown, `a0`},
		{"object link not o:i", spAPNLink, `63 31 3a 61`},
		{"object link out of range", spAPNLink, `67` + singleHex("70000:0")},
		{"object link as bytes", spAPNLink, `44 00 0b 00 00`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := DecodeCBORValue(tt.path, unhex(t, tt.in))
			if !errors.Is(err, ErrMalformedValue) {
				t.Errorf("DecodeCBORValue = %v, %v; want ErrMalformedValue", v, err)
			}
		})
	}
	t.Run("deep nesting", func(t *testing.T) {
		in := append(bytes.Repeat([]byte{0x81}, 10000), 0)
		if v, err := DecodeCBORValue(spUnknown, in); !errors.Is(err, ErrMalformedValue) {
			t.Errorf("DecodeCBORValue = %v, %v; want ErrMalformedValue", v, err)
		}
	})
	t.Run("huge announced length", func(t *testing.T) {
		if v, err := DecodeCBORValue(spPackage, unhex(t, `5b ff ff ff ff ff ff ff ff 00`)); !errors.Is(err, ErrMalformedValue) {
			t.Errorf("DecodeCBORValue = %v, %v; want ErrMalformedValue", v, err)
		}
	})
}

func TestCBORValueRoundTrip(t *testing.T) {
	for _, v := range append(singleRoundTripValues(), singleSpecialFloats()...) {
		t.Run(v.Type().String()+" "+singleClip(v.String()), func(t *testing.T) {
			enc, err := EncodeCBORValue(v)
			if err != nil {
				t.Fatalf("EncodeCBORValue: %v", err)
			}
			back, err := singleDecodeCBOR(v.Type(), true, enc)
			if err != nil {
				t.Fatalf("decode % x: %v", enc, err)
			}
			if !back.Equal(v) {
				t.Errorf("round trip gave %v (%#x), want %v (%#x)", back, back.num, v, v.num)
			}
			// Types the item shows survive without a model too.
			if v.Type() == TypeObjectLink || v.Type() == TypeUnsignedInteger && v.num <= math.MaxInt64 {
				return
			}
			back, err = singleDecodeCBOR(TypeNone, false, enc)
			if err != nil || !back.Equal(v) {
				t.Errorf("untyped decode gave %v, %v; want %v", back, err, v)
			}
		})
	}
}

// Every half precision pattern, NaN payloads included, survives widening
// and is written back in two bytes.
func TestCBORValueHalfFloats(t *testing.T) {
	for h := range 1 << 16 {
		want := []byte{0xf9, byte(h >> 8), byte(h)}
		v, err := singleDecodeCBOR(TypeFloat, true, want)
		if err != nil {
			t.Fatalf("decode % x: %v", want, err)
		}
		got, err := EncodeCBORValue(v)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("half %#04x: encoded % x, %v", h, got, err)
		}
	}
}

// Single precision patterns are written back in four bytes unless half
// precision holds them exactly.
func TestCBORValueSingleFloats(t *testing.T) {
	for i := uint64(0); i < 1<<32; i += 65521 {
		b := uint32(i)
		in := []byte{0xfa, byte(b >> 24), byte(b >> 16), byte(b >> 8), byte(b)}
		v, err := singleDecodeCBOR(TypeFloat, true, in)
		if err != nil {
			t.Fatalf("decode % x: %v", in, err)
		}
		got, err := EncodeCBORValue(v)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) == 5 && !bytes.Equal(got, in) || len(got) != 5 && len(got) != 3 {
			t.Fatalf("single %#08x: encoded % x", b, got)
		}
		if back, err := singleDecodeCBOR(TypeFloat, true, got); err != nil || !back.Equal(v) {
			t.Fatalf("single %#08x: % x decodes to %v, %v", b, got, back, err)
		}
	}
}

func TestEncodeCBORValueRejects(t *testing.T) {
	for _, v := range []Value{StringValue("\xff"), {}} {
		if b, err := EncodeCBORValue(v); !errors.Is(err, ErrMalformedValue) {
			t.Errorf("EncodeCBORValue(%v) = % x, %v; want ErrMalformedValue", v, b, err)
		}
	}
}

func TestParseValue(t *testing.T) {
	tests := []struct {
		typ  Type
		in   string
		want Value
	}{
		{TypeString, " keep spaces ", StringValue(" keep spaces ")},
		{TypeString, "", StringValue("")},
		{TypeInteger, "-750", IntegerValue(-750)},
		{TypeInteger, " 42\n", IntegerValue(42)},
		{TypeInteger, "-9223372036854775808", IntegerValue(math.MinInt64)},
		{TypeUnsignedInteger, "18446744073709551615", UnsignedValue(math.MaxUint64)},
		{TypeFloat, "21.5", FloatValue(21.5)},
		{TypeFloat, "6.667e-11", FloatValue(6.667e-11)},
		{TypeFloat, "-Inf", FloatValue(math.Inf(-1))},
		{TypeBoolean, "true", BoolValue(true)},
		{TypeBoolean, "FALSE", BoolValue(false)},
		{TypeBoolean, "1", BoolValue(true)},
		{TypeBoolean, "0", BoolValue(false)},
		{TypeTime, "1367491215", TimeValue(time.Unix(1367491215, 0))},
		{TypeTime, "-1", TimeValue(time.Unix(-1, 0))},
		{TypeTime, "2013-05-02T10:40:15Z", TimeValue(time.Unix(1367491215, 0))},
		{TypeTime, "2013-05-02T12:40:15.999+02:00", TimeValue(time.Unix(1367491215, 0))},
		{TypeObjectLink, "3:0", ObjectLinkValue(ObjectLink{3, 0})},
		{TypeObjectLink, "65535:65535", ObjectLinkValue(ObjectLink{65535, 65535})},
		{TypeOpaque, "0x0102ff", OpaqueValue([]byte{1, 2, 0xff})},
		{TypeOpaque, "0XABcd", OpaqueValue([]byte{0xab, 0xcd})},
		{TypeOpaque, "0x", OpaqueValue(nil)},
		{TypeOpaque, "", OpaqueValue(nil)},
		{TypeOpaque, "AQIDBAU=", OpaqueValue([]byte{1, 2, 3, 4, 5})},
		{TypeOpaque, "AQIDBAU", OpaqueValue([]byte{1, 2, 3, 4, 5})},
		{TypeOpaque, "-_8=", OpaqueValue([]byte{0xfb, 0xff})},
		{TypeOpaque, "-_8", OpaqueValue([]byte{0xfb, 0xff})},
	}
	for _, tt := range tests {
		t.Run(tt.typ.String()+" "+tt.in, func(t *testing.T) {
			got, err := ParseValue(tt.typ, tt.in)
			if err != nil {
				t.Fatalf("ParseValue: %v", err)
			}
			if !got.Equal(tt.want) {
				t.Errorf("ParseValue = %v (%s), want %v (%s)", got, got.Type(), tt.want, tt.want.Type())
			}
		})
	}
	rejects := []struct {
		typ Type
		in  string
	}{
		{TypeString, "\xff"},
		{TypeInteger, "1.5"},
		{TypeInteger, "0x10"},
		{TypeInteger, "9223372036854775808"},
		{TypeInteger, ""},
		{TypeUnsignedInteger, "-1"},
		{TypeFloat, "1e400"},
		{TypeFloat, "abc"},
		{TypeFloat, ""},
		{TypeBoolean, "yes"},
		{TypeBoolean, ""},
		{TypeTime, "2013-05-02"},
		{TypeTime, "yesterday"},
		{TypeTime, ""},
		{TypeObjectLink, "3"},
		{TypeObjectLink, "3:65536"},
		{TypeOpaque, "0x123"},
		{TypeOpaque, "0xzz"},
		{TypeOpaque, "not base64!"},
		{TypeNone, "x"},
		{Type(200), "x"},
	}
	for _, tt := range rejects {
		t.Run("rejects "+tt.typ.String()+" "+tt.in, func(t *testing.T) {
			if v, err := ParseValue(tt.typ, tt.in); !errors.Is(err, ErrMalformedValue) {
				t.Errorf("ParseValue = %v, %v; want ErrMalformedValue", v, err)
			}
		})
	}
	// What ParseValue reads, EncodeText writes in the wire form.
	v, _ := ParseValue(TypeTime, "2013-05-02T10:40:15Z")
	if b, err := EncodeText(v); err != nil || string(b) != "1367491215" {
		t.Errorf("EncodeText(parsed time) = %q, %v", b, err)
	}
}

// singleTarget is what a fuzzed payload is read for: a path through the
// public decoder, or a type (known or not) through the internal one, so that
// floats, which no built-in resource has, are covered too.
type singleTarget struct {
	path  Path
	typ   Type
	known bool
	byTyp bool
}

var singleTargets = []singleTarget{
	{path: spManufacturer}, {path: spBattery}, {path: spCurrentTime}, {path: spLifetime},
	{path: spStoring}, {path: spAPNLink}, {path: spPackage}, {path: spPackageURI},
	{path: spVoltage1}, {path: spUnknown}, {path: ResourcePath(3, 0, 4)}, {path: ObjectInstancePath(3, 0)},
	{typ: TypeFloat, known: true, byTyp: true}, {typ: TypeObjectLink, known: true, byTyp: true},
	{typ: TypeNone, known: false, byTyp: true},
}

func (st singleTarget) String() string {
	if st.byTyp {
		return st.typ.String()
	}
	return st.path.String()
}

func (st singleTarget) decodeText(data []byte) (Value, error) {
	if !st.byTyp {
		return DecodeText(st.path, data)
	}
	t := st.typ
	if !st.known {
		t = TypeString
	}
	return singleDecodeText(t, data)
}

func (st singleTarget) decodeCBOR(data []byte) (Value, error) {
	if !st.byTyp {
		return DecodeCBORValue(st.path, data)
	}
	return singleDecodeCBOR(st.typ, st.known, data)
}

func FuzzDecodeText(f *testing.F) {
	for _, s := range []string{"Open Mobile Alliance", "-750", "18", "0.00000000006667", "6.667e-11", "1", "0",
		"AQIDBAU=", "1476186613", "11:0", "65535:65535", "", "1e400", "NaN", "+5", "\xff", "9223372036854775808"} {
		for i := range singleTargets {
			f.Add(byte(i), []byte(s))
		}
	}
	f.Fuzz(func(t *testing.T, ti byte, data []byte) {
		st := singleTargets[int(ti)%len(singleTargets)]
		v, err := st.decodeText(data)
		if err != nil {
			if !errors.Is(err, ErrMalformedValue) && !errors.Is(err, ErrNodeMismatch) {
				t.Fatalf("%s: error %v wraps no sentinel", st, err)
			}
			return
		}
		enc, err := EncodeText(v)
		if err != nil {
			t.Fatalf("%s: re-encode of %v: %v", st, v, err)
		}
		again, err := st.decodeText(enc)
		if err != nil {
			t.Fatalf("%s: decode of re-encoding %q: %v", st, enc, err)
		}
		if !again.Equal(v) {
			t.Fatalf("%s: round trip differs: %v vs %v", st, v, again)
		}
		if enc2, err := EncodeText(again); err != nil || !bytes.Equal(enc, enc2) {
			t.Fatalf("%s: encoding is not stable: %q vs %q (%v)", st, enc, enc2, err)
		}
	})
}

func FuzzDecodeCBORValue(f *testing.F) {
	for _, s := range []string{`00`, `17`, `18 64`, `20`, `3b 7f ff ff ff ff ff ff ff`, `1b ff ff ff ff ff ff ff ff`,
		`f9 3e 00`, `fa 47 c3 50 00`, `fb 3f f1 99 99 99 99 99 9a`, `f9 7e 00`, `fb 7f f0 00 00 00 00 00 01`,
		`f4`, `f5`, `f6`, `40`, `44 01 02 03 04`, `5f 42 01 02 43 03 04 05 ff`, `60`, `64 49 45 54 46`,
		`7f 65 73 74 72 65 61 64 6d 69 6e 67 ff`, `64 31 31 3a 30`, `c1 1a 51 82 42 8f`, `c1 fb 41 d4 52 d9 ec 20 00 00`,
		`c0 74` + singleHex("2013-03-21T20:04:00Z"), `c2 41 01`, `81 01`, `a1 01 02`, `01 00`} {
		for i := range singleTargets {
			f.Add(byte(i), unhex(f, s))
		}
	}
	f.Fuzz(func(t *testing.T, ti byte, data []byte) {
		st := singleTargets[int(ti)%len(singleTargets)]
		v, err := st.decodeCBOR(data)
		if err != nil {
			if !errors.Is(err, ErrMalformedValue) && !errors.Is(err, ErrNodeMismatch) {
				t.Fatalf("%s: error %v wraps no sentinel", st, err)
			}
			return
		}
		enc, err := EncodeCBORValue(v)
		if err != nil {
			t.Fatalf("%s: re-encode of %v: %v", st, v, err)
		}
		if len(enc) > len(data)+9 {
			t.Fatalf("%s: %d input bytes re-encoded to %d", st, len(data), len(enc))
		}
		again, err := st.decodeCBOR(enc)
		if err != nil {
			t.Fatalf("%s: decode of re-encoding % x: %v", st, enc, err)
		}
		if !again.Equal(v) {
			t.Fatalf("%s: round trip differs: %v (%#x) vs %v (%#x)", st, v, v.num, again, again.num)
		}
		if enc2, err := EncodeCBORValue(again); err != nil || !bytes.Equal(enc, enc2) {
			t.Fatalf("%s: encoding is not stable: % x vs % x (%v)", st, enc, enc2, err)
		}
	})
}
