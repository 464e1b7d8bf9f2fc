package model

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/fxamacker/cbor/v2"
)

// CoAP content format numbers of the single-value formats (OMA LwM2M 1.1
// Core TS §7.4.1-7.4.3).
const (
	ContentFormatText   = 0  // text/plain;charset=utf-8
	ContentFormatOpaque = 42 // application/octet-stream
	ContentFormatCBOR   = 60 // application/cbor, one data item
)

// ErrMalformedValue is wrapped by every error the single-value codecs and
// ParseValue return for a payload or text that is not a valid value of the
// type the resource has (or, on encoding, a value the format cannot carry).
var ErrMalformedValue = errors.New("malformed lwm2m value")

func singleErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformedValue, fmt.Sprintf(format, args...))
}

// singleType returns the type the built-in model gives the resource p
// addresses, and whether the model knows it. p must be a resource or
// resource instance path, and must not be an executable resource, which has
// no value to carry.
func singleType(p Path) (Type, bool, error) {
	if l := p.Level(); l != LevelResource && l != LevelResourceInstance {
		return TypeNone, false, fmt.Errorf("%w: a single value cannot be read from %s", ErrNodeMismatch, p)
	}
	o, _ := p.Object()
	r, _ := p.Resource()
	if m, ok := builtin[o].Resources[r]; ok && m.Type == TypeNone {
		return TypeNone, false, fmt.Errorf("%w: %s is executable and has no value", ErrNodeMismatch, p)
	}
	t, known := TypeOf(p)
	return t, known, nil
}

// DecodeText decodes a text/plain payload (content format 0) read from the
// resource or resource instance p. The type comes from the built-in model;
// the payload of a resource the model does not know is a string.
//
// Integers, unsigned integers and times (seconds since the Unix epoch) are
// decimal ASCII, with an optional sign where the type allows one. Floats are
// decimal with an optional exponent ("21.5", "6.667e-11"); NaN and the
// infinities have no text form. Booleans are "0" or "1", object links
// "objectID:instanceID". Strings are taken as they are but must be valid
// UTF-8; the empty string is a string. Opaque values are base64 (RFC 4648,
// standard alphabet, padded), as the data type mapping of the LwM2M Core TS
// (Table C.2 in 1.1.1 and 1.2) defines; clients should rather use
// application/octet-stream for them. No whitespace is allowed around
// numbers, and an empty payload is an error for every type but string and
// opaque.
func DecodeText(p Path, data []byte) (Value, error) {
	t, known, err := singleType(p)
	if err != nil {
		return Value{}, err
	}
	if !known {
		t = TypeString
	}
	v, err := singleDecodeText(t, data)
	if err != nil {
		return Value{}, fmt.Errorf("%s: %w", p, err)
	}
	return v, nil
}

func singleDecodeText(t Type, data []byte) (Value, error) {
	if len(data) == 0 && t != TypeString && t != TypeOpaque {
		return Value{}, singleErr("empty payload for a value of type %s", t)
	}
	s := string(data)
	switch t {
	case TypeString:
		if !utf8.ValidString(s) {
			return Value{}, singleErr("string is not valid UTF-8")
		}
		return StringValue(s), nil
	case TypeInteger:
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return Value{}, singleErr("integer %q: %v", singleClip(s), singleNumErr(err))
		}
		return IntegerValue(n), nil
	case TypeUnsignedInteger:
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return Value{}, singleErr("unsigned integer %q: %v", singleClip(s), singleNumErr(err))
		}
		return UnsignedValue(n), nil
	case TypeFloat:
		return singleParseFloat(s)
	case TypeBoolean:
		switch s {
		case "0":
			return BoolValue(false), nil
		case "1":
			return BoolValue(true), nil
		}
		return Value{}, singleErr("boolean %q is neither 0 nor 1", singleClip(s))
	case TypeOpaque:
		b, err := base64.StdEncoding.Strict().DecodeString(s)
		if err != nil {
			return Value{}, singleErr("opaque value is not padded base64: %v", err)
		}
		return OpaqueValue(b), nil
	case TypeTime:
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return Value{}, singleErr("time %q is not decimal seconds since the epoch: %v", singleClip(s), singleNumErr(err))
		}
		return Value{typ: TypeTime, num: uint64(n)}, nil
	case TypeObjectLink:
		l, err := singleParseObjlnk(s)
		if err != nil {
			return Value{}, err
		}
		return ObjectLinkValue(l), nil
	}
	return Value{}, singleErr("a value of type %s has no text form", t)
}

// singleClip shortens s for an error message.
func singleClip(s string) string {
	if len(s) > 32 {
		return s[:32] + "..."
	}
	return s
}

// singleNumErr is the reason in a strconv error, without its repetition of the
// input.
func singleNumErr(err error) error {
	var ne *strconv.NumError
	if errors.As(err, &ne) {
		return ne.Err
	}
	return err
}

// singleParseFloat reads [+-]digits[.digits][(e|E)[+-]digits], with at
// least one digit before the exponent. strconv.ParseFloat alone would also
// take "NaN", "Inf", hexadecimal mantissas and underscores.
func singleParseFloat(s string) (Value, error) {
	i := 0
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		i++
	}
	digits := 0
	for ; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
		digits++
	}
	if i < len(s) && s[i] == '.' {
		for i++; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
			digits++
		}
	}
	ok := digits > 0
	if ok && i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		exp := 0
		for ; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
			exp++
		}
		ok = exp > 0
	}
	if !ok || i != len(s) {
		return Value{}, singleErr("float %q is not a decimal number", singleClip(s))
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return Value{}, singleErr("float %q: %v", singleClip(s), singleNumErr(err))
	}
	return FloatValue(f), nil
}

// singleParseObjlnk reads "objectID:instanceID", both decimal from 0 to 65535.
func singleParseObjlnk(s string) (ObjectLink, error) {
	o, i, ok := strings.Cut(s, ":")
	if ok {
		oid, err1 := strconv.ParseUint(o, 10, 16)
		iid, err2 := strconv.ParseUint(i, 10, 16)
		if err1 == nil && err2 == nil {
			return ObjectLink{ObjectID: uint16(oid), InstanceID: uint16(iid)}, nil
		}
	}
	return ObjectLink{}, singleErr("object link %q is not objectID:instanceID with ids from 0 to 65535", singleClip(s))
}

// EncodeText encodes v as text/plain (content format 0), in the forms
// DecodeText reads. Floats are written in plain decimal notation without an
// exponent (6.667e-11 is "0.00000000006667", as in the Core TS data type
// mapping), with as few digits as read back to the same float64; NaN and
// the infinities cannot be written. Opaque values are base64 (see
// DecodeText); strings that are not valid UTF-8 cannot be written.
func EncodeText(v Value) ([]byte, error) {
	switch v.typ {
	case TypeString:
		if !utf8.ValidString(v.str) {
			return nil, singleErr("string is not valid UTF-8")
		}
		return []byte(v.str), nil
	case TypeInteger, TypeTime:
		return strconv.AppendInt(nil, int64(v.num), 10), nil
	case TypeUnsignedInteger:
		return strconv.AppendUint(nil, v.num, 10), nil
	case TypeFloat:
		f := math.Float64frombits(v.num)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, singleErr("float %v has no text form", f)
		}
		return strconv.AppendFloat(nil, f, 'f', -1, 64), nil
	case TypeBoolean:
		if v.num == 1 {
			return []byte("1"), nil
		}
		return []byte("0"), nil
	case TypeOpaque:
		return base64.StdEncoding.AppendEncode(nil, v.raw), nil
	case TypeObjectLink:
		l, _ := v.AsObjectLink()
		return []byte(l.String()), nil
	}
	return nil, singleErr("a value of type %s cannot be encoded", v.typ)
}

// DecodeOpaque decodes an application/octet-stream payload (content format
// 42) read from p: the payload bytes are the value, an empty payload is an
// empty value (a Write of one to /5/0/0 resets a firmware update). Only
// opaque resources, and resources the model does not know, can be read in
// this format. The value does not alias data.
func DecodeOpaque(p Path, data []byte) (Value, error) {
	t, known, err := singleType(p)
	if err != nil {
		return Value{}, err
	}
	if known && t != TypeOpaque {
		return Value{}, fmt.Errorf("%s: %w", p, singleErr("a %s resource cannot be read as opaque bytes", t))
	}
	return OpaqueValue(slices.Clone(data)), nil
}

// EncodeOpaque encodes an opaque value as application/octet-stream (content
// format 42): its bytes, unchanged and not copied. Other types are an error.
func EncodeOpaque(v Value) ([]byte, error) {
	if v.typ != TypeOpaque {
		return nil, singleErr("only opaque values can be encoded as application/octet-stream, not %s", v.typ)
	}
	return v.raw, nil
}

// singleDecMode checks CBOR payloads: a single value needs no arrays, maps
// or deep nesting, so the limits are the smallest the library allows; they
// bound the work a hostile payload can cause. Indefinite-length strings stay
// allowed: clients stream large opaque values that way.
var singleDecMode = func() cbor.DecMode {
	dm, err := cbor.DecOptions{
		MaxNestedLevels:  4,
		MaxArrayElements: 16,
		MaxMapPairs:      16,
		IndefLength:      cbor.IndefLengthAllowed,
		TagsMd:           cbor.TagsAllowed,
		UTF8:             cbor.UTF8RejectInvalid,
	}.DecMode()
	if err != nil {
		panic("model: cbor options: " + err.Error())
	}
	return dm
}()

// CBOR major types.
const (
	singleMajUint   = 0
	singleMajNegInt = 1
	singleMajBytes  = 2
	singleMajText   = 3
	singleMajArray  = 4
	singleMajMap    = 5
	singleMajTag    = 6
	singleMajSimple = 7
)

// singleHead reads the head of the well-formed CBOR item at b[0]: its major
// type, additional information, argument and length. An indefinite length
// (additional information 31) has argument 0.
func singleHead(b []byte) (major, ai byte, arg uint64, n int) {
	major, ai = b[0]>>5, b[0]&0x1f
	switch ai {
	case 24:
		return major, ai, uint64(b[1]), 2
	case 25:
		return major, ai, uint64(binary.BigEndian.Uint16(b[1:])), 3
	case 26:
		return major, ai, uint64(binary.BigEndian.Uint32(b[1:])), 5
	case 27:
		return major, ai, binary.BigEndian.Uint64(b[1:]), 9
	case 31:
		return major, ai, 0, 1
	}
	return major, ai, uint64(ai), 1
}

// DecodeCBORValue decodes an application/cbor payload (content format 60)
// read from p: exactly one CBOR data item (RFC 8949), nothing after it.
//
// For a resource the model knows, the item must have that type's form:
// strings and object links ("objectID:instanceID") are text strings, opaque
// values byte strings (definite or indefinite length), booleans true or
// false, integers major type 0 or 1 within int64, unsigned integers major
// type 0, floats a half, single or double precision float (or an integer of
// at most 2^53 in magnitude, which is exact). Times are tag 1 with an integer
// (or a float, floored to the second), tag 0 with an RFC 3339 string, or an
// untagged integer. For a resource the model does not know, the item decides
// the type: integers are integers, or unsigned when above the int64 range;
// byte strings opaque; text strings strings; tags 0 and 1 times; floats and
// booleans themselves. Null, undefined, other simple values, arrays, maps
// and other tags are errors.
func DecodeCBORValue(p Path, data []byte) (Value, error) {
	t, known, err := singleType(p)
	if err != nil {
		return Value{}, err
	}
	v, err := singleDecodeCBOR(t, known, data)
	if err != nil {
		return Value{}, fmt.Errorf("%s: %w", p, err)
	}
	return v, nil
}

func singleDecodeCBOR(t Type, known bool, data []byte) (Value, error) {
	if len(data) == 0 {
		return Value{}, singleErr("empty cbor payload")
	}
	if err := singleDecMode.Wellformed(data); err != nil {
		return Value{}, singleErr("%v", err)
	}
	item := data
	major, ai, arg, n := singleHead(item)
	if major == singleMajTag {
		if known && t != TypeTime {
			return Value{}, singleErr("tag %d where a %s was expected", arg, t)
		}
		item = item[n:]
		return singleCBORTime(arg, item)
	}
	if !known {
		t = singleGuessType(major, ai, arg)
	}
	want := func() error {
		return singleErr("cbor %s where a %s was expected", singleCBORKind(major, ai), t)
	}
	switch t {
	case TypeString, TypeObjectLink:
		if major != singleMajText {
			return Value{}, want()
		}
		var s string
		if err := singleDecMode.Unmarshal(item, &s); err != nil {
			return Value{}, singleErr("%v", err)
		}
		if t == TypeString {
			return StringValue(s), nil
		}
		l, err := singleParseObjlnk(s)
		if err != nil {
			return Value{}, err
		}
		return ObjectLinkValue(l), nil
	case TypeOpaque:
		if major != singleMajBytes {
			return Value{}, want()
		}
		var b []byte
		if err := singleDecMode.Unmarshal(item, &b); err != nil {
			return Value{}, singleErr("%v", err)
		}
		return OpaqueValue(b), nil
	case TypeInteger, TypeTime:
		if major != singleMajUint && major != singleMajNegInt {
			return Value{}, want()
		}
		i, err := singleCBORInt64(major, arg)
		if err != nil {
			return Value{}, err
		}
		return Value{typ: t, num: uint64(i)}, nil
	case TypeUnsignedInteger:
		if major != singleMajUint {
			return Value{}, want()
		}
		return UnsignedValue(arg), nil
	case TypeFloat:
		switch {
		case major == singleMajSimple && ai >= 25 && ai <= 27:
			return Value{typ: TypeFloat, num: singleFloatBits(ai, arg)}, nil
		case major == singleMajUint && arg <= 1<<53:
			return FloatValue(float64(arg)), nil
		case major == singleMajNegInt && arg < 1<<53:
			return FloatValue(-1 - float64(arg)), nil
		case major == singleMajUint || major == singleMajNegInt:
			return Value{}, singleErr("integer beyond 2^53 cannot be a float exactly")
		}
		return Value{}, want()
	case TypeBoolean:
		if major != singleMajSimple || (ai != 20 && ai != 21) {
			return Value{}, want()
		}
		return BoolValue(ai == 21), nil
	}
	return Value{}, want()
}

// singleGuessType is the type of an untagged item for a resource the model
// does not know; TypeNone for items that are no LwM2M value.
func singleGuessType(major, ai byte, arg uint64) Type {
	switch major {
	case singleMajUint:
		if arg > math.MaxInt64 {
			return TypeUnsignedInteger
		}
		return TypeInteger
	case singleMajNegInt:
		return TypeInteger
	case singleMajBytes:
		return TypeOpaque
	case singleMajText:
		return TypeString
	case singleMajSimple:
		switch {
		case ai == 20 || ai == 21:
			return TypeBoolean
		case ai >= 25 && ai <= 27:
			return TypeFloat
		}
	}
	return TypeNone
}

// singleCBORKind names an item for error messages.
func singleCBORKind(major, ai byte) string {
	switch major {
	case singleMajUint:
		return "unsigned integer"
	case singleMajNegInt:
		return "negative integer"
	case singleMajBytes:
		return "byte string"
	case singleMajText:
		return "text string"
	case singleMajArray:
		return "array"
	case singleMajMap:
		return "map"
	case singleMajTag:
		return "tag"
	}
	switch ai {
	case 20, 21:
		return "boolean"
	case 22:
		return "null"
	case 23:
		return "undefined"
	case 25, 26, 27:
		return "float"
	}
	return "simple value"
}

// singleCBORInt64 is the value of an integer item (major type 0 or 1), which must
// lie within int64.
func singleCBORInt64(major byte, arg uint64) (int64, error) {
	if arg > math.MaxInt64 {
		if major == singleMajNegInt {
			return 0, singleErr("integer -1-%d is below the int64 range", arg)
		}
		return 0, singleErr("integer %d is above the int64 range", arg)
	}
	if major == singleMajNegInt {
		return -1 - int64(arg), nil
	}
	return int64(arg), nil
}

// singleCBORTime decodes the content of tag number tag as a time: tag 1
// (seconds since the epoch) with an integer or a float, tag 0 with an RFC
// 3339 date/time string. Nothing else may be tagged.
func singleCBORTime(tag uint64, content []byte) (Value, error) {
	major, ai, arg, _ := singleHead(content)
	switch {
	case tag == 1 && (major == singleMajUint || major == singleMajNegInt):
		n, err := singleCBORInt64(major, arg)
		if err != nil {
			return Value{}, err
		}
		return Value{typ: TypeTime, num: uint64(n)}, nil
	case tag == 1 && major == singleMajSimple && ai >= 25 && ai <= 27:
		f := math.Floor(math.Float64frombits(singleFloatBits(ai, arg)))
		// The bounds are -2^63 and 2^63, both exact as floats.
		if !(f >= math.MinInt64 && f < -math.MinInt64) {
			return Value{}, singleErr("epoch time %v is outside the int64 range", f)
		}
		return Value{typ: TypeTime, num: uint64(int64(f))}, nil
	case tag == 0 && major == singleMajText:
		var s string
		if err := singleDecMode.Unmarshal(content, &s); err != nil {
			return Value{}, singleErr("%v", err)
		}
		tm, err := time.Parse(time.RFC3339, s)
		if err != nil {
			return Value{}, singleErr("tag 0 date/time %q is not RFC 3339", singleClip(s))
		}
		return TimeValue(tm), nil
	case tag == 0 || tag == 1:
		return Value{}, singleErr("tag %d encloses a cbor %s", tag, singleCBORKind(major, ai))
	}
	return Value{}, singleErr("cbor tag %d is not an LwM2M value", tag)
}

// singleFloatBits widens a half (ai 25), single (26) or double (27) precision
// float to float64 bits, exactly: NaN payloads and signs are kept.
func singleFloatBits(ai byte, arg uint64) uint64 {
	switch ai {
	case 25:
		return singleF16To64(uint16(arg))
	case 26:
		return singleF32To64(uint32(arg))
	}
	return arg
}

func singleF16To64(h uint16) uint64 {
	sign := uint64(h>>15) << 63
	exp, mant := (h>>10)&0x1f, uint64(h&0x3ff)
	switch exp {
	case 0x1f:
		return sign | 0x7ff<<52 | mant<<42
	case 0:
		return sign | math.Float64bits(math.Ldexp(float64(mant), -24))
	}
	return sign | math.Float64bits(math.Ldexp(float64(mant|0x400), int(exp)-25))
}

func singleF32To64(b uint32) uint64 {
	if (b>>23)&0xff == 0xff { // a conversion could quiet a signaling NaN
		return uint64(b>>31)<<63 | 0x7ff<<52 | uint64(b&0x7fffff)<<29
	}
	return math.Float64bits(float64(math.Float32frombits(b)))
}

// singleF64To32 narrows float64 bits to float32 bits when that keeps the value
// (and a NaN's payload) exactly.
func singleF64To32(b uint64) (uint32, bool) {
	if (b>>52)&0x7ff == 0x7ff {
		if b&(1<<29-1) != 0 {
			return 0, false
		}
		return uint32(b>>63)<<31 | 0xff<<23 | uint32(b>>29)&0x7fffff, true
	}
	f := math.Float64frombits(b)
	f32 := float32(f)
	if float64(f32) != f {
		return 0, false
	}
	return math.Float32bits(f32), true
}

// singleF32To16 narrows float32 bits to half precision bits when that keeps
// the value exactly.
func singleF32To16(b uint32) (uint16, bool) {
	sign := uint16(b>>31) << 15
	exp, mant := int(b>>23)&0xff, b&0x7fffff
	switch {
	case exp == 0xff:
		if mant&(1<<13-1) != 0 {
			return 0, false
		}
		return sign | 0x1f<<10 | uint16(mant>>13), true
	case exp == 0 && mant == 0:
		return sign, true
	case exp == 0:
		return 0, false // float32 subnormals are far below half precision
	}
	e := exp - 127
	switch {
	case e > 15:
		return 0, false
	case e >= -14:
		if mant&(1<<13-1) != 0 {
			return 0, false
		}
		return sign | uint16(e+15)<<10 | uint16(mant>>13), true
	case e >= -24:
		full := mant | 1<<23
		shift := uint(-(e + 1)) // 14 to 23
		if full&(1<<shift-1) != 0 {
			return 0, false
		}
		return sign | uint16(full>>shift), true
	}
	return 0, false
}

// singleAppendHead appends a CBOR head with the shortest argument.
func singleAppendHead(dst []byte, major byte, arg uint64) []byte {
	m := major << 5
	switch {
	case arg < 24:
		return append(dst, m|byte(arg))
	case arg <= math.MaxUint8:
		return append(dst, m|24, byte(arg))
	case arg <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(dst, m|25), uint16(arg))
	case arg <= math.MaxUint32:
		return binary.BigEndian.AppendUint32(append(dst, m|26), uint32(arg))
	}
	return binary.BigEndian.AppendUint64(append(dst, m|27), arg)
}

func singleAppendInt(dst []byte, n int64) []byte {
	if n < 0 {
		return singleAppendHead(dst, singleMajNegInt, uint64(^n)) // ^n is -1-n
	}
	return singleAppendHead(dst, singleMajUint, uint64(n))
}

// EncodeCBORValue encodes v as application/cbor (content format 60), in the
// preferred serialization of RFC 8949 §4.1: integers with the shortest
// head, floats as the shortest of half, single and double precision that
// keeps the value exactly (NaN payloads included), times as tag 1 with an
// integer, object links as "objectID:instanceID" text, opaque values as
// definite-length byte strings. Strings must be valid UTF-8.
func EncodeCBORValue(v Value) ([]byte, error) {
	switch v.typ {
	case TypeString:
		if !utf8.ValidString(v.str) {
			return nil, singleErr("string is not valid UTF-8")
		}
		return append(singleAppendHead(nil, singleMajText, uint64(len(v.str))), v.str...), nil
	case TypeInteger:
		return singleAppendInt(nil, int64(v.num)), nil
	case TypeTime:
		return singleAppendInt([]byte{0xc1}, int64(v.num)), nil
	case TypeUnsignedInteger:
		return singleAppendHead(nil, singleMajUint, v.num), nil
	case TypeFloat:
		if b32, ok := singleF64To32(v.num); ok {
			if b16, ok := singleF32To16(b32); ok {
				return binary.BigEndian.AppendUint16([]byte{0xf9}, b16), nil
			}
			return binary.BigEndian.AppendUint32([]byte{0xfa}, b32), nil
		}
		return binary.BigEndian.AppendUint64([]byte{0xfb}, v.num), nil
	case TypeBoolean:
		if v.num == 1 {
			return []byte{0xf5}, nil
		}
		return []byte{0xf4}, nil
	case TypeOpaque:
		return append(singleAppendHead(nil, singleMajBytes, uint64(len(v.raw))), v.raw...), nil
	case TypeObjectLink:
		l, _ := v.AsObjectLink()
		s := l.String()
		return append(singleAppendHead(nil, singleMajText, uint64(len(s))), s...), nil
	}
	return nil, singleErr("a value of type %s cannot be encoded", v.typ)
}

// ParseValue reads a value of type t as a person types it, on a command line
// or in a form; surrounding white space is ignored except for strings.
//
//   - string: as typed (valid UTF-8)
//   - integer, unsigned integer: decimal, e.g. -750, 86400
//   - float: decimal with an optional exponent (21.5, 6.667e-11), or
//     anything else strconv.ParseFloat reads, such as NaN and Inf
//   - boolean: true, false, 1 or 0 (words in any case)
//   - time: seconds since the Unix epoch (1367491215) or RFC 3339
//     (2013-05-02T10:40:15Z; fractions of a second are dropped)
//   - objlnk: objectID:instanceID, e.g. 3:0
//   - opaque: hexadecimal after 0x (0x0102ff; "0x" alone is empty), else
//     base64, padded or not, standard or URL alphabet (AQIDBAU=); the
//     empty text is the empty value
func ParseValue(t Type, s string) (Value, error) {
	if t != TypeString {
		s = strings.TrimSpace(s)
	}
	switch t {
	case TypeString:
		if !utf8.ValidString(s) {
			return Value{}, singleErr("string is not valid UTF-8")
		}
		return StringValue(s), nil
	case TypeInteger, TypeUnsignedInteger, TypeObjectLink:
		return singleDecodeText(t, []byte(s))
	case TypeFloat:
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return Value{}, singleErr("float %q: %v", singleClip(s), singleNumErr(err))
		}
		return FloatValue(f), nil
	case TypeBoolean:
		switch strings.ToLower(s) {
		case "true", "1":
			return BoolValue(true), nil
		case "false", "0":
			return BoolValue(false), nil
		}
		return Value{}, singleErr("boolean %q is not true, false, 1 or 0", singleClip(s))
	case TypeTime:
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			return Value{typ: TypeTime, num: uint64(n)}, nil
		}
		tm, err := time.Parse(time.RFC3339, s)
		if err != nil {
			return Value{}, singleErr("time %q is neither seconds since the epoch nor RFC 3339", singleClip(s))
		}
		return TimeValue(tm), nil
	case TypeOpaque:
		return singleParseOpaque(s)
	}
	return Value{}, singleErr("no value can be typed for type %s", t)
}

func singleParseOpaque(s string) (Value, error) {
	if strings.HasPrefix(s, "0x") || strings.HasPrefix(s, "0X") {
		b, err := hex.DecodeString(s[2:])
		if err != nil {
			return Value{}, singleErr("opaque hex %q: %v", singleClip(s), err)
		}
		return OpaqueValue(b), nil
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.Strict().DecodeString(s); err == nil {
			return OpaqueValue(b), nil
		}
	}
	return Value{}, singleErr("opaque %q is neither 0x-prefixed hex nor base64", singleClip(s))
}
