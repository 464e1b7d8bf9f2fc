package model

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/fxamacker/cbor/v2"
)

// ContentFormatLwM2MCBOR is the CoAP content format number of LwM2M CBOR
// (application/vnd.oma.lwm2m+cbor, OMA LwM2M 1.2).
const ContentFormatLwM2MCBOR = 11544

// ErrMalformedLwM2MCBOR is wrapped by every error of the LwM2M CBOR codec:
// a payload that is not valid LwM2M CBOR or holds a value its resource's
// type cannot take, and, on encoding, values the format cannot carry.
var ErrMalformedLwM2MCBOR = errors.New("malformed lwm2m cbor")

func lwcErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformedLwM2MCBOR, fmt.Sprintf(format, args...))
}

// lwcDecMode decodes LwM2M CBOR. On every Unmarshal the library first
// checks that the item is well formed and within these limits, so no length
// from the wire is trusted and nothing is allocated for a payload it
// rejects. The deepest valid payload is four maps (one level per path id)
// holding a tag around a decimal fraction's array; keys are arrays of at
// most four ids, so arrays can be small. Indefinite lengths stay allowed:
// clients that stream (Anjay) write indefinite-length maps. A key given
// twice in one map is an error.
var lwcDecMode = func() cbor.DecMode {
	dm, err := cbor.DecOptions{
		DupMapKey:        cbor.DupMapKeyEnforcedAPF,
		MaxNestedLevels:  8,
		MaxArrayElements: 16,
		MaxMapPairs:      65536,
		IndefLength:      cbor.IndefLengthAllowed,
		TagsMd:           cbor.TagsAllowed,
		IntDec:           cbor.IntDecConvertNone,
		BignumTag:        cbor.BignumTagForbidden,
		MapKeyByteString: cbor.MapKeyByteStringForbidden,
		UTF8:             cbor.UTF8RejectInvalid,
	}.DecMode()
	if err != nil {
		panic("model: lwm2m cbor options: " + err.Error())
	}
	return dm
}()

// lwcKey is a map key of LwM2M CBOR: one path id (an unsigned integer) or
// several (an array of one to four unsigned integers), relative to the
// path of the enclosing map. It is comparable, so the library's duplicate
// key check also catches 3 and [3] in one map.
type lwcKey struct {
	ids [4]uint16
	n   uint8
}

// UnmarshalCBOR implements cbor.Unmarshaler for map keys. The library has
// checked that b is one well-formed item; it is read here without
// allocating.
func (k *lwcKey) UnmarshalCBOR(b []byte) error {
	*k = lwcKey{}
	major, arg, n, ok := lwcHead(b)
	switch {
	case ok && major == 0:
		if arg > math.MaxUint16 {
			return fmt.Errorf("path id %d is above 65535", arg)
		}
		k.ids[0], k.n = uint16(arg), 1
		return nil
	case !ok || major != 4:
		return errors.New("path key is neither an unsigned integer nor an array of them")
	}
	indefinite := b[0]&0x1f == 31
	for b = b[n:]; len(b) > 0 && (indefinite && b[0] != 0xff || !indefinite && uint64(k.n) < arg); {
		major, id, n, ok := lwcHead(b)
		if !ok || major != 0 || id > math.MaxUint16 {
			return errors.New("path key array holds something other than ids from 0 to 65535")
		}
		if int(k.n) == len(k.ids) {
			return errors.New("path key of more than 4 ids")
		}
		k.ids[k.n] = uint16(id)
		k.n++
		b = b[n:]
	}
	if k.n == 0 {
		return errors.New("empty path key")
	}
	return nil
}

// lwcHead reads the head of the CBOR item at b: its major type, argument
// (0 for an indefinite length) and length; ok is false for a truncated or
// reserved head.
func lwcHead(b []byte) (major byte, arg uint64, n int, ok bool) {
	if len(b) == 0 {
		return 0, 0, 0, false
	}
	major, ai := b[0]>>5, b[0]&0x1f
	switch {
	case ai < 24:
		return major, uint64(ai), 1, true
	case ai == 31:
		return major, 0, 1, true
	case ai > 27:
		return 0, 0, 0, false
	}
	n = 1 << (ai - 24)
	if len(b) < 1+n {
		return 0, 0, 0, false
	}
	for _, c := range b[1 : 1+n] {
		arg = arg<<8 | uint64(c)
	}
	return major, arg, 1 + n, true
}

// lwcRaw is a map value: the bytes of one item, which alias the payload
// while it is decoded (the library hands over a slice of its input).
type lwcRaw []byte

// UnmarshalCBOR implements cbor.Unmarshaler.
func (r *lwcRaw) UnmarshalCBOR(b []byte) error {
	*r = b
	return nil
}

// DecodeLwM2MCBOR decodes an LwM2M CBOR payload (content format 11544, OMA
// LwM2M 1.2 Core TS §7.4.7): a map whose keys are path ids, one id as an
// unsigned integer or several as an array of them, and whose values are
// either maps one or more levels down or, at resource and resource instance
// level, the value. Keys add to the path of their map, so {3: {0: {9: 100}}},
// {[3, 0]: {9: 100}} and {[3, 0, 9]: 100} all carry /3/0/9 = 100. Definite
// and indefinite lengths are accepted. Paths are absolute: a payload read
// from /3/0 names /3/0 itself.
//
// The values come back in path order (ComparePaths); the format carries no
// timestamps. A key given twice in one map (3 and [3] count as the same), a
// path reached twice, or a value at a path below another value (/3/0/6 and
// /3/0/6/0) is an error. So are null (the format's "no value"), an empty
// array key, maps below resource instances and values above resources.
//
// Value representations (Core TS Appendix C data type mapping for CBOR,
// LwM2M CBOR and SenML CBOR; Anjay writes and reads the same): strings are
// text strings, opaque values byte strings, booleans true and false,
// integers and unsigned integers major types 0 and 1, floats half, single or
// double precision (a decimal fraction, tag 4, is read as a float), object
// links the text "objectID:instanceID", and times tag 1 with the seconds
// since the epoch, or tag 0 with an RFC 3339 date/time string.
//
// When the built-in model knows the resource, the value must be able to
// take its type: integers and unsigned integers accept any number that is
// integral and in range, floats any number, times tag 1 or an untagged
// number (a float is floored to the second) or tag 0; object links a text
// string "o:i". Otherwise the wire decides: integers fitting int64 are
// integers, larger ones unsigned integers, negative integers below int64
// floats; text strings are strings (so an unknown object link comes back
// as a string), byte strings opaque, tags 0 and 1 times.
//
// Before anything is decoded, the library checks that the payload is one
// well-formed item within small limits (nesting, array and map sizes), so
// no length from the wire is trusted; what decoding allocates beyond the
// result is a small multiple of the payload.
func DecodeLwM2MCBOR(data []byte) ([]PathValue, error) {
	if len(data) == 0 {
		return nil, lwcErr("empty payload")
	}
	if data[0]>>5 != 5 {
		return nil, lwcErr("payload is not a map")
	}
	var out []PathValue
	if err := lwcDecodeMap(&out, RootPath(), data); err != nil {
		return nil, err
	}
	SortValues(out)
	if err := lwm2mCheckPaths(out); err != nil {
		return nil, lwcErr("%v", err)
	}
	return out, nil
}

// lwcDecodeMap decodes the map raw at path p. Every level of the recursion
// consumes at least one path id, so it is at most four deep. The first call
// has the library check the whole payload; the deeper ones re-check their
// part, at most four times in all.
func lwcDecodeMap(out *[]PathValue, p Path, raw []byte) error {
	var m map[lwcKey]lwcRaw
	if err := lwcDecMode.Unmarshal(raw, &m); err != nil {
		return lwcErr("below %s: %v", p, err)
	}
	leaves := 0
	for _, v := range m {
		if len(v) > 0 && v[0]>>5 != 5 {
			leaves++
		}
	}
	*out = lwm2mGrow(*out, leaves)
	for k, v := range m {
		q := p
		for _, id := range k.ids[:k.n] {
			var ok bool
			if q, ok = q.Child(id); !ok {
				return lwcErr("path below %s is longer than a resource instance path", p)
			}
		}
		if len(v) == 0 {
			return lwcErr("no value at %s", q)
		}
		if v[0]>>5 == 5 {
			if err := lwcDecodeMap(out, q, v); err != nil {
				return err
			}
			continue
		}
		if l := q.Level(); l != LevelResource && l != LevelResourceInstance {
			return lwcErr("value at %s, which is not a resource or resource instance", q)
		}
		t, known := TypeOf(q)
		val, err := lwcValueAs(t, known, v)
		if err != nil {
			return lwcErr("%s: %v", q, err)
		}
		*out = append(*out, PathValue{Path: q, Value: val})
	}
	return nil
}

// lwcValueAs decodes the leaf item raw, which the library has checked, as
// type t (when known) or as the type the item suggests. Each kind of item
// is decoded into a Go value of its own type, which allocates nothing but
// the bytes of strings.
func lwcValueAs(t Type, known bool, raw []byte) (Value, error) {
	want := func(kind string) error { return fmt.Errorf("cbor %s where a %s was expected", kind, t) }
	number := func(n lwm2mNum) (Value, error) {
		if !known {
			return n.guess(), nil
		}
		return n.as(t)
	}
	switch raw[0] >> 5 {
	case 0:
		var u uint64
		if err := lwcDecMode.Unmarshal(raw, &u); err != nil {
			return Value{}, err
		}
		return number(lwcUint(u))
	case 1:
		var i int64
		if err := lwcDecMode.Unmarshal(raw, &i); err == nil {
			return number(lwm2mNum{kind: lwm2mNumInt, bits: uint64(i)})
		}
		var b big.Int // below int64: only a float can hold it
		if err := lwcDecMode.Unmarshal(raw, &b); err != nil {
			return Value{}, err
		}
		f, _ := new(big.Float).SetInt(&b).Float64()
		return number(lwm2mNum{kind: lwm2mNumHuge, bits: math.Float64bits(f)})
	case 2:
		if known && t != TypeOpaque {
			return Value{}, want("byte string")
		}
		var b []byte
		if err := lwcDecMode.Unmarshal(raw, &b); err != nil {
			return Value{}, err
		}
		return OpaqueValue(b), nil
	case 3:
		if known && t != TypeString && t != TypeObjectLink {
			return Value{}, want("text string")
		}
		var s string
		if err := lwcDecMode.Unmarshal(raw, &s); err != nil {
			return Value{}, err
		}
		if known && t == TypeObjectLink {
			l, err := lwm2mParseObjectLink(s)
			if err != nil {
				return Value{}, err
			}
			return ObjectLinkValue(l), nil
		}
		return StringValue(s), nil
	case 4:
		return Value{}, errors.New("an array is not a value")
	case 6:
		var tag cbor.RawTag
		if err := lwcDecMode.Unmarshal(raw, &tag); err != nil {
			return Value{}, err
		}
		return lwcTaggedAs(t, known, tag)
	}
	switch raw[0] & 0x1f {
	case 20, 21:
		if known && t != TypeBoolean {
			return Value{}, want("boolean")
		}
		return BoolValue(raw[0] == 0xf5), nil
	case 22, 23:
		return Value{}, errors.New("null or undefined carries no value")
	case 25, 26, 27:
		var f float64
		if err := lwcDecMode.Unmarshal(raw, &f); err != nil {
			return Value{}, err
		}
		return number(lwm2mNum{kind: lwm2mNumFloat, bits: math.Float64bits(f)})
	}
	return Value{}, errors.New("a simple value is not an LwM2M value")
}

func lwcUint(u uint64) lwm2mNum {
	if u > math.MaxInt64 {
		return lwm2mNum{kind: lwm2mNumUint, bits: u}
	}
	return lwm2mNum{kind: lwm2mNumInt, bits: u}
}

// lwcTaggedAs decodes a tagged leaf: tag 1 (epoch seconds) and tag 0
// (RFC 3339) are times, tag 4 a decimal fraction.
func lwcTaggedAs(t Type, known bool, tag cbor.RawTag) (Value, error) {
	switch tag.Number {
	case 0, 1:
		if known && t != TypeTime {
			return Value{}, fmt.Errorf("tag %d (a time) where a %s was expected", tag.Number, t)
		}
		if tag.Number == 0 {
			var s string
			if err := lwcDecMode.Unmarshal(tag.Content, &s); err != nil {
				return Value{}, fmt.Errorf("tag 0: %v", err)
			}
			tm, err := time.Parse(time.RFC3339, s)
			if err != nil {
				return Value{}, fmt.Errorf("tag 0 date/time %q is not RFC 3339", lwm2mClip(s))
			}
			return TimeValue(tm), nil
		}
		var x any
		if err := lwcDecMode.Unmarshal(tag.Content, &x); err != nil {
			return Value{}, fmt.Errorf("tag 1: %v", err)
		}
		n, ok := lwcNumber(x)
		if !ok {
			return Value{}, errors.New("tag 1 does not enclose a number")
		}
		return n.as(TypeTime)
	case 4:
		var x []any
		if err := lwcDecMode.Unmarshal(tag.Content, &x); err != nil || len(x) != 2 {
			return Value{}, errors.New("tag 4 does not enclose [exponent, mantissa]")
		}
		var parts [2]string
		for i, e := range x {
			switch e := e.(type) {
			case int64:
				parts[i] = strconv.FormatInt(e, 10)
			case uint64:
				parts[i] = strconv.FormatUint(e, 10)
			default:
				return Value{}, errors.New("tag 4 exponent and mantissa must be integers")
			}
		}
		f, err := strconv.ParseFloat(parts[1]+"e"+parts[0], 64)
		if err != nil {
			return Value{}, fmt.Errorf("decimal fraction %se%s is out of the float range", parts[1], parts[0])
		}
		n := lwm2mNum{kind: lwm2mNumFloat, bits: math.Float64bits(f)}
		if !known {
			return n.guess(), nil
		}
		return n.as(t)
	}
	return Value{}, fmt.Errorf("cbor tag %d is not an LwM2M value", tag.Number)
}

// lwcNumber reads the numbers the library decodes into any.
func lwcNumber(x any) (lwm2mNum, bool) {
	switch x := x.(type) {
	case uint64:
		return lwcUint(x), true
	case int64:
		return lwm2mNum{kind: lwm2mNumInt, bits: uint64(x)}, true
	case big.Int: // a negative integer below int64: only a float can hold it
		f, _ := new(big.Float).SetInt(&x).Float64()
		return lwm2mNum{kind: lwm2mNumHuge, bits: math.Float64bits(f)}, true
	case float64:
		return lwm2mNum{kind: lwm2mNumFloat, bits: math.Float64bits(x)}, true
	}
	return lwm2mNum{}, false
}

// EncodeLwM2MCBOR encodes values as LwM2M CBOR (content format 11544) in
// the compact nested form: one map level per path id, except that a run of
// levels with a single entry each becomes one array key, so the values of
// /3/0 are {[3, 0]: {0: ..., 9: 100, ...}} and a lone /5/0/3 is
// {[5, 0, 3]: 2}. Maps and arrays have definite lengths, map keys come in
// ascending id order (the order of ComparePaths), integers and lengths
// have the shortest head; the same values always give the same bytes,
// whatever their order in vals.
//
// Values are written as DecodeLwM2MCBOR reads them: floats as the shortest
// of half, single and double precision that keeps the value (NaN as
// double, payload and all), times as tag 1 with an integer, object links as
// "objectID:instanceID" text. Every value decodes back to itself for a
// resource the model knows; for one it does not know, unsigned integers up
// to 2^63-1 come back as integers and object links as strings, everything
// else as itself.
//
// Errors (wrapping ErrMalformedLwM2MCBOR): a path that is not a resource or
// resource instance, a path given twice or below another value's path, a
// value without a type, a string that is not valid UTF-8, and a timestamp
// (PathValue.Time), which LwM2M CBOR cannot carry: use SenML for Send.
func EncodeLwM2MCBOR(vals []PathValue) ([]byte, error) {
	vals = slices.Clone(vals)
	SortValues(vals)
	for _, pv := range vals {
		if l := pv.Path.Level(); l != LevelResource && l != LevelResourceInstance {
			return nil, lwcErr("cannot encode a value at %s, which is not a resource or resource instance", pv.Path)
		}
		if !pv.Time.IsZero() {
			return nil, lwcErr("cannot encode the timestamp of %s: lwm2m cbor has none", pv.Path)
		}
	}
	if err := lwm2mCheckPaths(vals); err != nil {
		return nil, lwcErr("cannot encode: %v", err)
	}
	return lwcAppendMap(nil, vals, 0)
}

// lwcAppendMap appends the map of vals, which are sorted, free of
// duplicates and prefixes, and share their first depth ids.
func lwcAppendMap(dst []byte, vals []PathValue, depth uint8) ([]byte, error) {
	var groups [][]PathValue
	for i := 0; i < len(vals); {
		j := i + 1
		for j < len(vals) && vals[j].Path.ids[depth] == vals[i].Path.ids[depth] {
			j++
		}
		groups = append(groups, vals[i:j])
		i = j
	}
	dst = lwcAppendHead(dst, 5, uint64(len(groups)))
	for _, g := range groups {
		// Extend the key over every level the group does not branch at. A
		// group of several values has no value at its own path (no value is
		// a prefix of another), so they all go deeper than end.
		end := depth + 1
		if len(g) == 1 {
			end = g[0].Path.n
		} else {
			for g[0].Path.n > end && g[len(g)-1].Path.n > end &&
				g[0].Path.ids[end] == g[len(g)-1].Path.ids[end] {
				end++ // sorted: first and last agree, so all do
			}
		}
		ids := g[0].Path.ids[depth:end]
		if len(ids) == 1 {
			dst = lwcAppendHead(dst, 0, uint64(ids[0]))
		} else {
			dst = lwcAppendHead(dst, 4, uint64(len(ids)))
			for _, id := range ids {
				dst = lwcAppendHead(dst, 0, uint64(id))
			}
		}
		var err error
		if len(g) == 1 {
			dst, err = lwcAppendValue(dst, g[0].Value)
			if err != nil {
				return nil, lwcErr("cannot encode %s: %v", g[0].Path, err)
			}
			continue
		}
		if dst, err = lwcAppendMap(dst, g, end); err != nil {
			return nil, err
		}
	}
	return dst, nil
}

// lwcAppendHead appends a CBOR head with the shortest argument.
func lwcAppendHead(dst []byte, major byte, arg uint64) []byte {
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

func lwcAppendInt(dst []byte, n int64) []byte {
	if n < 0 {
		return lwcAppendHead(dst, 1, uint64(^n)) // ^n is -1-n
	}
	return lwcAppendHead(dst, 0, uint64(n))
}

func lwcAppendValue(dst []byte, v Value) ([]byte, error) {
	switch v.typ {
	case TypeString:
		if !utf8.ValidString(v.str) {
			return nil, errors.New("string is not valid UTF-8")
		}
		return append(lwcAppendHead(dst, 3, uint64(len(v.str))), v.str...), nil
	case TypeInteger:
		return lwcAppendInt(dst, int64(v.num)), nil
	case TypeUnsignedInteger:
		return lwcAppendHead(dst, 0, v.num), nil
	case TypeFloat:
		return lwcAppendFloat(dst, v.num), nil
	case TypeBoolean:
		if v.num == 1 {
			return append(dst, 0xf5), nil
		}
		return append(dst, 0xf4), nil
	case TypeOpaque:
		return append(lwcAppendHead(dst, 2, uint64(len(v.raw))), v.raw...), nil
	case TypeTime:
		return lwcAppendInt(append(dst, 0xc1), int64(v.num)), nil
	case TypeObjectLink:
		l, _ := v.AsObjectLink()
		s := l.String()
		return append(lwcAppendHead(dst, 3, uint64(len(s))), s...), nil
	}
	return nil, fmt.Errorf("a value of type %s cannot be encoded", v.typ)
}

// lwcAppendFloat appends the float with bits b in the shortest of half,
// single and double precision that holds it exactly. NaNs are written in
// double precision, so their payload survives.
func lwcAppendFloat(dst []byte, b uint64) []byte {
	f := math.Float64frombits(b)
	if !math.IsNaN(f) {
		if f32 := float32(f); float64(f32) == f {
			if h, ok := lwcHalf(f32); ok {
				return binary.BigEndian.AppendUint16(append(dst, 0xf9), h)
			}
			return binary.BigEndian.AppendUint32(append(dst, 0xfa), math.Float32bits(f32))
		}
	}
	return binary.BigEndian.AppendUint64(append(dst, 0xfb), b)
}

// lwcHalf narrows a float32 that is not NaN to IEEE 754 half precision bits
// when that keeps its value exactly.
func lwcHalf(f float32) (uint16, bool) {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	a := math.Abs(float64(f))
	switch {
	case math.IsInf(a, 1):
		return sign | 0x7c00, true
	case a == 0:
		return sign, true
	case a >= 0x1p-14 && a <= 65504: // normal in half precision
		exp := int(b>>23&0xff) - 127
		mant := b & 0x7fffff
		if mant&(1<<13-1) != 0 {
			return 0, false
		}
		return sign | uint16(exp+15)<<10 | uint16(mant>>13), true
	case a < 0x1p-14: // subnormal in half precision: a multiple of 2^-24
		m := a * 0x1p24
		if m != math.Trunc(m) {
			return 0, false
		}
		return sign | uint16(m), true
	}
	return 0, false
}

// The rest is shared by the LwM2M JSON and CBOR codecs.

// lwm2mNum is a number read from the wire before it has a type.
type lwm2mNum struct {
	kind lwm2mNumKind
	bits uint64 // int64 two's complement, uint64, or float64 bits
}

type lwm2mNumKind uint8

const (
	lwm2mNumInt   lwm2mNumKind = iota // an integer within int64
	lwm2mNumUint                      // an integer above int64, within uint64
	lwm2mNumHuge                      // an integer beyond both, as the nearest float
	lwm2mNumFloat                     // a float
)

func (n lwm2mNum) String() string {
	switch n.kind {
	case lwm2mNumInt:
		return strconv.FormatInt(int64(n.bits), 10)
	case lwm2mNumUint:
		return strconv.FormatUint(n.bits, 10)
	case lwm2mNumHuge:
		return "about " + strconv.FormatFloat(math.Float64frombits(n.bits), 'g', -1, 64)
	}
	return strconv.FormatFloat(math.Float64frombits(n.bits), 'g', -1, 64)
}

// guess is the value of n for a resource the model does not know.
func (n lwm2mNum) guess() Value {
	switch n.kind {
	case lwm2mNumInt:
		return Value{typ: TypeInteger, num: n.bits}
	case lwm2mNumUint:
		return Value{typ: TypeUnsignedInteger, num: n.bits}
	}
	return Value{typ: TypeFloat, num: n.bits}
}

// as converts n to type t: integers and unsigned integers take integral
// numbers in their range, times any number in the int64 range (floats are
// floored to the second), floats any number (integers beyond 2^53 rounded
// to the nearest float).
func (n lwm2mNum) as(t Type) (Value, error) {
	f := math.Float64frombits(n.bits)
	rangeErr := func() (Value, error) { return Value{}, fmt.Errorf("%v is outside the %s range", n, t) }
	switch t {
	case TypeInteger, TypeTime:
		switch n.kind {
		case lwm2mNumUint, lwm2mNumHuge:
			return rangeErr()
		case lwm2mNumFloat:
			if t == TypeTime {
				f = math.Floor(f)
			} else if f != math.Trunc(f) {
				return Value{}, fmt.Errorf("%v is not an integer", n)
			}
			// The bounds are -2^63 and 2^63, both exact as floats; NaN fails.
			if !(f >= math.MinInt64 && f < -math.MinInt64) {
				return rangeErr()
			}
			return Value{typ: t, num: uint64(int64(f))}, nil
		}
		return Value{typ: t, num: n.bits}, nil
	case TypeUnsignedInteger:
		switch n.kind {
		case lwm2mNumHuge:
			return rangeErr()
		case lwm2mNumInt:
			if int64(n.bits) < 0 {
				return rangeErr()
			}
		case lwm2mNumFloat:
			if f != math.Trunc(f) {
				return Value{}, fmt.Errorf("%v is not an integer", n)
			}
			if !(f >= 0 && f < 0x1p64) {
				return rangeErr()
			}
			return UnsignedValue(uint64(f)), nil
		}
		return UnsignedValue(n.bits), nil
	case TypeFloat:
		switch n.kind {
		case lwm2mNumInt:
			return FloatValue(float64(int64(n.bits))), nil
		case lwm2mNumUint:
			return FloatValue(float64(n.bits)), nil
		}
		return Value{typ: TypeFloat, num: n.bits}, nil
	}
	return Value{}, fmt.Errorf("number %v where a %s was expected", n, t)
}

// lwm2mGrow makes room for n more values, at least doubling the capacity
// when it must grow, so that building a long result allocates at most about
// twice its final size (append grows large slices by a quarter at a time).
func lwm2mGrow(s []PathValue, n int) []PathValue {
	if cap(s)-len(s) >= n {
		return s
	}
	return slices.Grow(s, max(n, cap(s)))
}

// lwm2mParseObjectLink reads "objectID:instanceID", both decimal from 0 to
// 65535.
func lwm2mParseObjectLink(s string) (ObjectLink, error) {
	o, i, ok := strings.Cut(s, ":")
	if ok {
		oid, err1 := strconv.ParseUint(o, 10, 16)
		iid, err2 := strconv.ParseUint(i, 10, 16)
		if err1 == nil && err2 == nil {
			return ObjectLink{ObjectID: uint16(oid), InstanceID: uint16(iid)}, nil
		}
	}
	return ObjectLink{}, fmt.Errorf("object link %q is not objectID:instanceID with ids from 0 to 65535", lwm2mClip(s))
}

// lwm2mClip shortens wire text quoted in an error message.
func lwm2mClip(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

// lwm2mCheckPaths checks values sorted by path: no two may have the same
// path and time, and none may lie below another's path (/3/0/6 and
// /3/0/6/0 make a resource both single and multiple). Timestamped values
// (LwM2M JSON notifications with history) may repeat a path at different
// times.
func lwm2mCheckPaths(vals []PathValue) error {
	type at struct {
		sec  int64
		nsec int
		zero bool
	}
	for i := 0; i < len(vals); {
		j := i + 1
		for j < len(vals) && vals[j].Path == vals[i].Path {
			j++
		}
		if j-i > 1 {
			seen := make(map[at]struct{}, j-i)
			for _, pv := range vals[i:j] {
				k := at{sec: pv.Time.Unix(), nsec: pv.Time.Nanosecond(), zero: pv.Time.IsZero()}
				if _, dup := seen[k]; dup {
					return fmt.Errorf("two values for %s", pv.Path)
				}
				seen[k] = struct{}{}
			}
		}
		if j < len(vals) && vals[j].Path.HasPrefix(vals[i].Path) {
			return fmt.Errorf("%s has a value and so has %s below it", vals[i].Path, vals[j].Path)
		}
		i = j
	}
	return nil
}
