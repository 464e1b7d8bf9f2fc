package model

// SenML JSON (content format 110) and SenML CBOR (112), RFC 8428, as the
// OMA LwM2M 1.1/1.2 TS uses them (§7.4.4/7.4.5; the examples are Tables
// 7.4.4-2 to 7.4.4-8 of the 1.1 Core TS).
//
// Decoding:
//   - Every record's name is base name + name; bn (like bt and bv) carries
//     over to the following records until a record changes it (RFC 8428
//     §4.5.1). The result must be a valid LwM2M path: a resource /o/i/r or a
//     resource instance /o/i/r/ri for values, any level (including "/") for
//     the Read-Composite and Observe-Composite requests DecodeSenMLPaths
//     reads.
//   - bt + t is the time of a record. Per RFC 8428 §4.5.3, a result of 2^28
//     or more is seconds since the Unix epoch, a smaller one (zero and
//     negative values included) is relative to now: the decoder resolves it
//     against time.Now, once per payload, so PathValue.Time is always
//     absolute. A relative time that lands before 2^28 (1978) is an error,
//     as it could not be encoded again. Time is zero when neither bt nor t is
//     present. Fractional seconds are kept to the nanosecond nearest the
//     float64.
//   - The value fields are v (number, plus bv when a base value is set), vs
//     (string), vb (boolean), vd (data: base64url without padding in JSON,
//     padded and standard base64 accepted too; a byte string in CBOR) and
//     LwM2M's vlo (object link "o:i"; in CBOR under the text label "vlo").
//     A record carries exactly one of them. A record with only a sum (s) has
//     no LwM2M meaning and is an error; a sum beside a value is ignored, as
//     are u, bu and ut. Unknown labels are ignored unless they end in "_"
//     (must-understand, RFC 8428 §4.4), and bver must be 1 to 10.
//   - When the built-in model (TypeOf) knows the resource, the value gets its
//     type: v gives integer, unsigned (integral and in range; 100.0 is
//     accepted as 100), float or time (seconds since the epoch), vs string,
//     vb boolean, vd opaque, vlo objlnk; any other field is an error.
//     Otherwise the wire decides: v is an integer when it is integral on the
//     wire (CBOR major type 0/1, JSON number text without '.', 'e' or 'E')
//     and fits int64, unsigned when it only fits uint64, and float otherwise
//     (CBOR floats and decimal fractions, tag 4, are floats even when
//     integral).
//   - SenML is an array of maps and nothing deeper: a nested array or
//     object/map as a field value is an error, and so are tags other than the
//     decimal fraction on v and the time fields. A multiple-instance resource
//     without instances has no record and so cannot be expressed.
//   - The input is validated before anything is built from it, and every
//     allocation is bounded by it: CBOR limits (nesting, array and map sizes)
//     are set from the input length, strings and byte strings are copied
//     once, and the result is allocated once for the records present. The
//     result is what dominates: a 96-byte PathValue for a CBOR record of at
//     least 3 bytes (a JSON record of at least 7), so about 32 bytes per
//     input byte at worst; the JSON tokenizer adds short-lived garbage of
//     about the same size.
//
// Encoding:
//   - Records follow the order of the input. Values are written as v
//     (integer, unsigned and time exactly as integers, float as a float that
//     reads back as a float: "100.0" in JSON, a CBOR float of 4 bytes when
//     exact, else 8), vs, vb, vd or vlo.
//   - The first record carries a bn holding the longest path prefix common
//     to all values, and names are relative to it, e.g. bn "/3/0/" with names
//     "0" and "6/1" (OMA Table 7.4.4-2). A single path (one value, or several
//     timestamped samples of one resource) goes into bn alone, without names
//     (Table 7.4.4-5). When the values share no object, there is no bn and
//     names are absolute (Table 7.4.4-7). EncodeSenMLPaths always writes
//     absolute names (Table 7.4.4-6).
//   - t is written only when PathValue.Time is non-zero, as whole seconds
//     since the epoch, or as a float when the time has a fraction of a second
//     (kept to float64 precision, about 0.1 µs today). A time before 2^28
//     seconds would read back as relative and is an error.
//   - Decoding an encoding gives the same values, with two exceptions that
//     SenML cannot tell apart on the wire: at resources the model does not
//     know, time values come back as integers, and unsigned values below
//     2^63 as integers too. (At known resources every value comes back with
//     the model's type.)
//   - SenML JSON has no NaN or infinities, so encoding such a float to JSON
//     is an error; CBOR carries them, payload bits included. Strings must be
//     valid UTF-8.
//
// All errors wrap ErrMalformedSenML; invalid names also wrap ErrInvalidPath.

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"math/bits"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/fxamacker/cbor/v2"
)

// CoAP content format numbers of SenML JSON and SenML CBOR (RFC 8428 §12.3).
const (
	ContentFormatSenMLJSON = 110
	ContentFormatSenMLCBOR = 112
)

// ErrMalformedSenML is wrapped by every error of the SenML codecs: the
// payload is not SenML, does not fit the LwM2M model, or (when encoding) the
// values cannot be carried in SenML.
var ErrMalformedSenML = errors.New("malformed senml")

func senmlErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformedSenML, fmt.Sprintf(format, args...))
}

// senmlRecordErr wraps err, which happened in record i, once.
func senmlRecordErr(i int, err error) error {
	return fmt.Errorf("%w: record %d: %w", ErrMalformedSenML, i, err)
}

// DecodeSenMLJSON decodes a SenML JSON pack (content format 110) into leaf
// values, in the order of the records. Names resolve to resource or
// resource instance paths; values take the built-in model's type when it
// knows the resource; times below 2^28 s are relative and resolved against
// time.Now. The comment at the top of senml.go has the details.
func DecodeSenMLJSON(data []byte) ([]PathValue, error) {
	d := senmlValueDecoder{maxRecords: len(data) / len(`{"v":0}`)}
	if err := senmlDecodeJSON(data, d.start, d.record); err != nil {
		return nil, err
	}
	return d.out, nil
}

// DecodeSenMLCBOR decodes a SenML CBOR pack (content format 112) into leaf
// values, in the order of the records, by the rules of DecodeSenMLJSON.
func DecodeSenMLCBOR(data []byte) ([]PathValue, error) {
	d := senmlValueDecoder{maxRecords: len(data) / len("\xA1\x02\x00")}
	if err := senmlDecodeCBOR(data, d.start, d.record); err != nil {
		return nil, err
	}
	return d.out, nil
}

// EncodeSenMLJSON encodes leaf values as a SenML JSON pack, in their order,
// with a base name for their common path prefix. A time is written only when
// PathValue.Time is set, and must be 2^28 s after the epoch or later. NaN and
// infinities cannot be written. A multiple-instance resource without
// instances has no leaf value and so cannot be written either.
func EncodeSenMLJSON(vals []PathValue) ([]byte, error) {
	recs, err := senmlValueRecords(vals)
	if err != nil {
		return nil, err
	}
	return senmlEncodeJSON(recs)
}

// EncodeSenMLCBOR encodes leaf values as a SenML CBOR pack, like
// EncodeSenMLJSON but with NaN and infinities allowed.
func EncodeSenMLCBOR(vals []PathValue) ([]byte, error) {
	recs, err := senmlValueRecords(vals)
	if err != nil {
		return nil, err
	}
	return senmlEncodeCBOR(recs)
}

// EncodeSenMLPaths encodes the body of a Read-Composite or Observe-Composite
// request: one record per path, carrying only its absolute name. format is
// ContentFormatSenMLJSON or ContentFormatSenMLCBOR.
func EncodeSenMLPaths(format int, paths []Path) ([]byte, error) {
	recs := make([]senmlOutRecord, len(paths))
	for i, p := range paths {
		recs[i] = senmlOutRecord{name: p.String(), hasName: true}
	}
	switch format {
	case ContentFormatSenMLJSON:
		return senmlEncodeJSON(recs)
	case ContentFormatSenMLCBOR:
		return senmlEncodeCBOR(recs)
	}
	return nil, senmlErr("content format %d is not senml", format)
}

// DecodeSenMLPaths decodes the body of a Read-Composite or Observe-Composite
// request: the resolved names of the records, at any level from "/" to a
// resource instance. Values, if a record has any, are checked for their
// SenML syntax and otherwise ignored.
func DecodeSenMLPaths(format int, data []byte) ([]Path, error) {
	var res senmlResolver
	var out []Path
	start := func(n int) { out = make([]Path, 0, n) }
	emit := func(rec *senmlRecord) error {
		p, err := res.path(rec)
		if err != nil {
			return err
		}
		out = append(out, p)
		return nil
	}
	var err error
	switch format {
	case ContentFormatSenMLJSON:
		err = senmlDecodeJSON(data, start, emit)
	case ContentFormatSenMLCBOR:
		err = senmlDecodeCBOR(data, start, emit)
	default:
		err = senmlErr("content format %d is not senml", format)
	}
	if err != nil {
		return nil, err
	}
	return out, nil
}

// ---- The record model shared by both representations ----

// senmlLabel identifies a SenML field this codec understands.
type senmlLabel uint8

const (
	senmlBaseVersion senmlLabel = iota // bver, CBOR -1
	senmlBaseName                      // bn, -2
	senmlBaseTime                      // bt, -3
	senmlBaseUnit                      // bu, -4
	senmlBaseValue                     // bv, -5
	senmlBaseSum                       // bs, -6
	senmlName                          // n, 0
	senmlUnit                          // u, 1
	senmlValue                         // v, 2
	senmlStringValue                   // vs, 3
	senmlBoolValue                     // vb, 4
	senmlSum                           // s, 5
	senmlTime                          // t, 6
	senmlUpdateTime                    // ut, 7
	senmlDataValue                     // vd, 8
	senmlObjlnkValue                   // vlo (LwM2M), text label in CBOR too
	senmlLabelCount
)

// senmlLabelNames are the JSON labels, indexed by senmlLabel.
var senmlLabelNames = [senmlLabelCount]string{
	"bver", "bn", "bt", "bu", "bv", "bs", "n", "u", "v", "vs", "vb", "s", "t", "ut", "vd", "vlo",
}

func (l senmlLabel) String() string { return senmlLabelNames[l] }

// senmlValueFields are the fields that carry a record's value.
const senmlValueFields = 1<<senmlValue | 1<<senmlStringValue | 1<<senmlBoolValue |
	1<<senmlDataValue | 1<<senmlObjlnkValue

func senmlJSONLabel(s string) (senmlLabel, bool) {
	for l, name := range senmlLabelNames {
		if name == s {
			return senmlLabel(l), true
		}
	}
	return 0, false
}

// senmlCBORLabel maps an integer label of RFC 8428 Table 6 to its field.
func senmlCBORLabel(n int64) (senmlLabel, bool) {
	switch {
	case n >= -6 && n <= -1:
		return senmlLabel(-n - 1), true
	case n >= 0 && n <= 8:
		return senmlName + senmlLabel(n), true
	}
	return 0, false
}

// senmlKind is the SenML type of a field's value.
type senmlKind uint8

const (
	senmlKindString senmlKind = iota
	senmlKindNumber
	senmlKindBool
	senmlKindData
)

func (k senmlKind) String() string {
	return [...]string{"a string", "a number", "a boolean", "data"}[k]
}

func senmlLabelKind(l senmlLabel) senmlKind {
	switch l {
	case senmlBoolValue:
		return senmlKindBool
	case senmlDataValue:
		return senmlKindData
	case senmlBaseVersion, senmlBaseTime, senmlBaseValue, senmlBaseSum, senmlValue, senmlSum,
		senmlTime, senmlUpdateTime:
		return senmlKindNumber
	}
	return senmlKindString
}

// senmlRecord is one record as read from the wire, before the base fields of
// earlier records are applied.
type senmlRecord struct {
	has          uint32 // bit 1<<senmlLabel per field present
	bn, n        string
	vs, vlo      string
	vb           bool
	vd           []byte
	bt, bv, v, t senmlNum
}

func (r *senmlRecord) is(l senmlLabel) bool { return r.has&(1<<l) != 0 }

func (r *senmlRecord) mark(l senmlLabel) error {
	if r.is(l) {
		return fmt.Errorf("label %s appears twice", l)
	}
	r.has |= 1 << l
	return nil
}

func (r *senmlRecord) setString(l senmlLabel, s string) error {
	if err := r.mark(l); err != nil {
		return err
	}
	switch l {
	case senmlBaseName:
		r.bn = s
	case senmlName:
		r.n = s
	case senmlStringValue:
		r.vs = s
	case senmlObjlnkValue:
		r.vlo = s
	case senmlBaseUnit, senmlUnit:
	default:
		return fmt.Errorf("%s must be %s, not a string", l, senmlLabelKind(l))
	}
	return nil
}

func (r *senmlRecord) setNumber(l senmlLabel, n senmlNum) error {
	if err := r.mark(l); err != nil {
		return err
	}
	switch l {
	case senmlBaseVersion:
		if n.kind != senmlInt || n.i < 1 || n.i > 10 {
			return fmt.Errorf("unsupported bver %s", n)
		}
	case senmlBaseTime:
		r.bt = n
	case senmlBaseValue:
		r.bv = n
	case senmlValue:
		r.v = n
	case senmlTime:
		r.t = n
	case senmlBaseSum, senmlSum, senmlUpdateTime:
	default:
		return fmt.Errorf("%s must be %s, not a number", l, senmlLabelKind(l))
	}
	return nil
}

func (r *senmlRecord) setBool(l senmlLabel, b bool) error {
	if err := r.mark(l); err != nil {
		return err
	}
	if l != senmlBoolValue {
		return fmt.Errorf("%s must be %s, not a boolean", l, senmlLabelKind(l))
	}
	r.vb = b
	return nil
}

func (r *senmlRecord) setData(l senmlLabel, b []byte) error {
	if err := r.mark(l); err != nil {
		return err
	}
	if l != senmlDataValue {
		return fmt.Errorf("%s must be %s, not data", l, senmlLabelKind(l))
	}
	r.vd = b
	return nil
}

// senmlResolver applies the base fields of a pack to its records in order.
type senmlResolver struct {
	baseName    string
	baseTime    senmlNum
	hasBaseTime bool
	baseValue   senmlNum
	hasBaseVal  bool
	now         time.Time // set on the first relative time
}

// name applies rec's base fields and returns its resolved name.
func (s *senmlResolver) name(rec *senmlRecord) string {
	if rec.is(senmlBaseName) {
		s.baseName = rec.bn
	}
	if rec.is(senmlBaseTime) {
		s.baseTime, s.hasBaseTime = rec.bt, true
	}
	if rec.is(senmlBaseValue) {
		s.baseValue, s.hasBaseVal = rec.bv, true
	}
	return s.baseName + rec.n
}

func (s *senmlResolver) path(rec *senmlRecord) (Path, error) {
	name := s.name(rec)
	p, err := ParsePath(name)
	if err != nil {
		return Path{}, err
	}
	return p, nil
}

// senmlValueDecoder collects the values of DecodeSenMLJSON/CBOR.
type senmlValueDecoder struct {
	res        senmlResolver
	out        []PathValue
	maxRecords int // as many as the shortest value records would fill the input with
}

// start sizes the result for the n records of the pack, so that it is
// allocated once: 96 bytes a value, for a record of at least 3 (CBOR) or 7
// (JSON) bytes.
func (d *senmlValueDecoder) start(n int) { d.out = make([]PathValue, 0, min(n, d.maxRecords)) }

func (d *senmlValueDecoder) record(rec *senmlRecord) error {
	p, err := d.res.path(rec)
	if err != nil {
		return err
	}
	if p.Level() < LevelResource {
		return fmt.Errorf("name %q is not a resource or resource instance", p)
	}
	t, err := d.res.time(rec)
	if err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	v, err := d.res.value(p, rec)
	if err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	d.out = append(d.out, PathValue{Path: p, Value: v, Time: t})
	return nil
}

// senmlRelativeLimit is 2^28: smaller times are relative to now (RFC 8428
// §4.5.3).
const senmlRelativeLimit = 1 << 28

// time resolves bt + t to an absolute time, or zero when neither is set.
func (s *senmlResolver) time(rec *senmlRecord) (time.Time, error) {
	var n senmlNum
	switch {
	case rec.is(senmlTime) && s.hasBaseTime:
		n = s.baseTime.add(rec.t)
	case rec.is(senmlTime):
		n = rec.t
	case s.hasBaseTime:
		n = s.baseTime
	default:
		return time.Time{}, nil
	}
	var rel float64
	switch n.kind {
	case senmlInt:
		if n.i >= senmlRelativeLimit {
			return time.Unix(n.i, 0).UTC(), nil
		}
		rel = float64(n.i)
	case senmlUint:
		return time.Time{}, fmt.Errorf("time %s out of range", n)
	default:
		if math.IsNaN(n.f) || math.IsInf(n.f, 0) {
			return time.Time{}, fmt.Errorf("time %s out of range", n)
		}
		if n.f >= senmlRelativeLimit {
			return senmlFloatTime(n.f)
		}
		rel = n.f
	}
	if s.now.IsZero() {
		s.now = time.Now()
	}
	abs := float64(s.now.Unix()) + float64(s.now.Nanosecond())/1e9 + rel
	if abs < senmlRelativeLimit {
		return time.Time{}, fmt.Errorf("relative time %s is before 1978", n)
	}
	return senmlFloatTime(abs)
}

// senmlFloatTime converts seconds since the epoch, at least 2^28, to a time
// rounded to the nanosecond. For such values a float64 step is at least
// 60 ns, so the conversion back in senmlTimeNum gives the same float.
func senmlFloatTime(f float64) (time.Time, error) {
	if !(f >= senmlRelativeLimit && f < 1<<63) {
		return time.Time{}, fmt.Errorf("time %v out of range", f)
	}
	sec := math.Floor(f)
	ns := math.Round((f - sec) * 1e9)
	if ns >= 1e9 {
		sec++
		ns = 0
	}
	return time.Unix(int64(sec), int64(ns)).UTC(), nil
}

// value decodes the one value field of rec for path p.
func (s *senmlResolver) value(p Path, rec *senmlRecord) (Value, error) {
	fields := rec.has & senmlValueFields
	switch bits.OnesCount32(fields) {
	case 0:
		if rec.is(senmlSum) {
			return Value{}, errors.New("a sum without a value has no lwm2m meaning")
		}
		return Value{}, errors.New("record has no value")
	case 1:
	default:
		return Value{}, errors.New("record has more than one value field")
	}
	typ, known := TypeOf(p)
	want := func(t Type, field senmlLabel) error {
		if known && typ != t {
			return fmt.Errorf("%s value for a resource of type %s", field, typ)
		}
		return nil
	}
	switch {
	case rec.is(senmlValue):
		n := rec.v
		if s.hasBaseVal {
			n = s.baseValue.add(n)
		}
		return n.typed(typ, known)
	case rec.is(senmlStringValue):
		if err := want(TypeString, senmlStringValue); err != nil {
			return Value{}, err
		}
		return StringValue(rec.vs), nil
	case rec.is(senmlBoolValue):
		if err := want(TypeBoolean, senmlBoolValue); err != nil {
			return Value{}, err
		}
		return BoolValue(rec.vb), nil
	case rec.is(senmlDataValue):
		if err := want(TypeOpaque, senmlDataValue); err != nil {
			return Value{}, err
		}
		return OpaqueValue(rec.vd), nil
	}
	if err := want(TypeObjectLink, senmlObjlnkValue); err != nil {
		return Value{}, err
	}
	l, err := senmlParseObjlnk(rec.vlo)
	if err != nil {
		return Value{}, err
	}
	return ObjectLinkValue(l), nil
}

// senmlParseObjlnk parses "objectID:instanceID" in the strict decimal form
// of path ids.
func senmlParseObjlnk(s string) (ObjectLink, error) {
	o, i, ok := strings.Cut(s, ":")
	if !ok {
		return ObjectLink{}, fmt.Errorf("object link %q has no ':'", s)
	}
	oid, err := parseID(o)
	if err != nil {
		return ObjectLink{}, fmt.Errorf("object link %q: %v", s, err)
	}
	iid, err := parseID(i)
	if err != nil {
		return ObjectLink{}, fmt.Errorf("object link %q: %v", s, err)
	}
	return ObjectLink{ObjectID: oid, InstanceID: iid}, nil
}

// ---- Numbers ----

type senmlNumKind uint8

const (
	senmlInt   senmlNumKind = iota // integral on the wire, fits int64
	senmlUint                      // integral on the wire, above int64
	senmlFloat                     // a float on the wire, or an integer beyond uint64/below int64
)

// senmlNum is a SenML number as the wire gave it.
type senmlNum struct {
	kind senmlNumKind
	i    int64
	u    uint64
	f    float64
}

func senmlIntNum(i int64) senmlNum     { return senmlNum{kind: senmlInt, i: i} }
func senmlFloatNum(f float64) senmlNum { return senmlNum{kind: senmlFloat, f: f} }

func senmlUintNum(u uint64) senmlNum {
	if u <= math.MaxInt64 {
		return senmlIntNum(int64(u))
	}
	return senmlNum{kind: senmlUint, u: u}
}

func (n senmlNum) String() string {
	switch n.kind {
	case senmlInt:
		return strconv.FormatInt(n.i, 10)
	case senmlUint:
		return strconv.FormatUint(n.u, 10)
	}
	return strconv.FormatFloat(n.f, 'g', -1, 64)
}

func (n senmlNum) float() float64 {
	switch n.kind {
	case senmlInt:
		return float64(n.i)
	case senmlUint:
		return float64(n.u)
	}
	return n.f
}

func (n senmlNum) bigInt() *big.Int {
	if n.kind == senmlUint {
		return new(big.Int).SetUint64(n.u)
	}
	return big.NewInt(n.i)
}

// add returns n + m: exact when both are integers, a float otherwise.
func (n senmlNum) add(m senmlNum) senmlNum {
	if n.kind == senmlFloat || m.kind == senmlFloat {
		return senmlFloatNum(n.float() + m.float())
	}
	sum := n.bigInt()
	sum.Add(sum, m.bigInt())
	switch {
	case sum.IsInt64():
		return senmlIntNum(sum.Int64())
	case sum.IsUint64():
		return senmlUintNum(sum.Uint64())
	}
	f, _ := new(big.Float).SetInt(sum).Float64()
	return senmlFloatNum(f)
}

func (n senmlNum) int64() (int64, bool) {
	switch n.kind {
	case senmlInt:
		return n.i, true
	case senmlFloat:
		// NaN fails the first test, infinities the range test.
		if n.f == math.Trunc(n.f) && n.f >= -(1<<63) && n.f < 1<<63 {
			return int64(n.f), true
		}
	}
	return 0, false
}

func (n senmlNum) uint64() (uint64, bool) {
	switch n.kind {
	case senmlInt:
		return uint64(n.i), n.i >= 0
	case senmlUint:
		return n.u, true
	}
	if n.f == math.Trunc(n.f) && n.f >= 0 && n.f < 1<<64 {
		return uint64(n.f), true
	}
	return 0, false
}

// typed returns n as a value of type t when the model knows the resource,
// or of the type the wire suggests otherwise.
func (n senmlNum) typed(t Type, known bool) (Value, error) {
	if !known {
		switch n.kind {
		case senmlInt:
			return IntegerValue(n.i), nil
		case senmlUint:
			return UnsignedValue(n.u), nil
		}
		return FloatValue(n.f), nil
	}
	switch t {
	case TypeInteger, TypeTime:
		i, ok := n.int64()
		if !ok {
			return Value{}, fmt.Errorf("v %s is not a 64-bit integer", n)
		}
		if t == TypeTime {
			return Value{typ: TypeTime, num: uint64(i)}, nil
		}
		return IntegerValue(i), nil
	case TypeUnsignedInteger:
		u, ok := n.uint64()
		if !ok {
			return Value{}, fmt.Errorf("v %s is not a 64-bit unsigned integer", n)
		}
		return UnsignedValue(u), nil
	case TypeFloat:
		return FloatValue(n.float()), nil
	}
	return Value{}, fmt.Errorf("v value for a resource of type %s", t)
}

// senmlParseJSONNumber reads JSON number text: integers stay exact.
func senmlParseJSONNumber(s string) (senmlNum, error) {
	if !strings.ContainsAny(s, ".eE") {
		if i, err := strconv.ParseInt(s, 10, 64); err == nil {
			return senmlIntNum(i), nil
		}
		if u, err := strconv.ParseUint(s, 10, 64); err == nil {
			return senmlUintNum(u), nil
		}
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return senmlNum{}, fmt.Errorf("number %.40s out of range", s)
	}
	return senmlFloatNum(f), nil
}

// ---- SenML JSON ----

// senmlDecodeJSON parses a SenML JSON pack, calls start with the number of
// records and then hands each record to emit.
func senmlDecodeJSON(data []byte, start func(int), emit func(*senmlRecord) error) error {
	if !utf8.Valid(data) {
		return senmlErr("json is not valid utf-8")
	}
	if !json.Valid(data) {
		return senmlErr("invalid json")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if tok, err := dec.Token(); err != nil || tok != json.Delim('[') {
		return senmlErr("a senml pack must be a json array")
	}
	start(senmlJSONRecordCount(data))
	var rec senmlRecord
	for i := 0; dec.More(); i++ {
		rec = senmlRecord{}
		if err := senmlJSONRecord(dec, &rec); err != nil {
			return senmlRecordErr(i, err)
		}
		if err := emit(&rec); err != nil {
			return senmlRecordErr(i, err)
		}
	}
	if _, err := dec.Token(); err != nil { // the closing ']'
		return senmlErr("json: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return senmlErr("data after the senml pack")
	}
	return nil
}

// senmlJSONRecordCount counts the objects directly inside the top-level
// array of valid JSON.
func senmlJSONRecordCount(data []byte) int {
	n, depth := 0, 0
	inString, escaped := false, false
	for _, c := range data {
		if inString {
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
		case '{':
			if depth == 1 {
				n++
			}
			depth++
		case '[':
			depth++
		case ']', '}':
			depth--
		}
	}
	return n
}

func senmlJSONRecord(dec *json.Decoder, rec *senmlRecord) error {
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return errors.New("a senml record must be a json object")
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		key, _ := tok.(string)
		val, err := dec.Token()
		if err != nil {
			return err
		}
		if d, ok := val.(json.Delim); ok {
			return fmt.Errorf("label %q holds a nested %v", key, d)
		}
		l, known := senmlJSONLabel(key)
		if !known {
			if strings.HasSuffix(key, "_") {
				return fmt.Errorf("must-understand label %q is not supported", key)
			}
			continue
		}
		switch v := val.(type) {
		case string:
			if l == senmlDataValue {
				b, err := senmlDecodeBase64(v)
				if err != nil {
					return err
				}
				err = rec.setData(l, b)
			} else {
				err = rec.setString(l, v)
			}
		case json.Number:
			var n senmlNum
			if n, err = senmlParseJSONNumber(string(v)); err == nil {
				err = rec.setNumber(l, n)
			}
		case bool:
			err = rec.setBool(l, v)
		default:
			err = fmt.Errorf("%s must be %s, not null", l, senmlLabelKind(l))
		}
		if err != nil {
			return err
		}
	}
	_, err := dec.Token() // the closing '}'
	return err
}

// senmlDecodeBase64 reads vd: base64url without padding (RFC 8428 §4.3), or
// padded, or the standard alphabet.
func senmlDecodeBase64(s string) ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.RawURLEncoding, base64.URLEncoding,
		base64.RawStdEncoding, base64.StdEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b, nil
		}
	}
	return nil, fmt.Errorf("vd %.40q is not base64", s)
}

// senmlOutRecord is one record to encode: a name (the first record may carry
// the base name too), a value unless it is a path-only record, a time.
type senmlOutRecord struct {
	baseName, name       string
	hasBaseName, hasName bool
	value                Value // TypeNone: no value
	t                    senmlNum
	hasTime              bool
}

// senmlValueRecords checks vals and lays them out as records.
func senmlValueRecords(vals []PathValue) ([]senmlOutRecord, error) {
	recs := make([]senmlOutRecord, len(vals))
	if len(vals) == 0 {
		return recs, nil
	}
	prefix := vals[0].Path
	for i, pv := range vals {
		if pv.Path.Level() < LevelResource {
			return nil, senmlErr("value %d: %s is not a resource or resource instance", i, pv.Path)
		}
		if pv.Value.Type() == TypeNone {
			return nil, senmlErr("value %d: %s has no value", i, pv.Path)
		}
		n := uint8(0)
		for n < prefix.n && n < pv.Path.n && prefix.ids[n] == pv.Path.ids[n] {
			n++
		}
		prefix = Path{ids: prefix.ids, n: n}
		for j := n; j < 4; j++ {
			prefix.ids[j] = 0
		}
		recs[i].value = pv.Value
		if !pv.Time.IsZero() {
			t, err := senmlTimeNum(pv.Time)
			if err != nil {
				return nil, senmlErr("value %d: %s: %v", i, pv.Path, err)
			}
			recs[i].t, recs[i].hasTime = t, true
		}
	}
	same, atPrefix := true, false
	for _, pv := range vals {
		if pv.Path == prefix {
			atPrefix = true
		} else {
			same = false
		}
	}
	if !same && atPrefix {
		// A value sits at the prefix itself, so it cannot be named relative
		// to prefix + "/".
		prefix = prefix.Parent()
	}
	switch {
	case same:
		recs[0].baseName, recs[0].hasBaseName = prefix.String(), true
	case prefix.IsRoot():
		for i, pv := range vals {
			recs[i].name, recs[i].hasName = pv.Path.String(), true
		}
	default:
		bn := prefix.String() + "/"
		recs[0].baseName, recs[0].hasBaseName = bn, true
		for i, pv := range vals {
			recs[i].name, recs[i].hasName = pv.Path.String()[len(bn):], true
		}
	}
	return recs, nil
}

// senmlTimeNum is the t of a record for an absolute time.
func senmlTimeNum(t time.Time) (senmlNum, error) {
	sec := t.Unix()
	if sec < senmlRelativeLimit {
		return senmlNum{}, fmt.Errorf("time %s is before 2^28 s and would read as relative", t.UTC().Format(time.RFC3339))
	}
	ns := t.Nanosecond()
	if ns == 0 || sec >= 1<<53 {
		return senmlIntNum(sec), nil
	}
	return senmlFloatNum(float64(sec) + float64(ns)/1e9), nil
}

func senmlEncodeJSON(recs []senmlOutRecord) ([]byte, error) {
	b := make([]byte, 0, 32*len(recs)+2)
	b = append(b, '[')
	for i, r := range recs {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '{')
		first := true
		label := func(l senmlLabel) {
			if !first {
				b = append(b, ',')
			}
			first = false
			b = append(b, '"')
			b = append(b, senmlLabelNames[l]...)
			b = append(b, '"', ':')
		}
		if r.hasBaseName {
			label(senmlBaseName)
			b = senmlAppendJSONString(b, r.baseName)
		}
		if r.hasName {
			label(senmlName)
			b = senmlAppendJSONString(b, r.name)
		}
		v := r.value
		var err error
		switch v.typ {
		case TypeNone:
		case TypeInteger, TypeTime:
			label(senmlValue)
			b = strconv.AppendInt(b, int64(v.num), 10)
		case TypeUnsignedInteger:
			label(senmlValue)
			b = strconv.AppendUint(b, v.num, 10)
		case TypeFloat:
			label(senmlValue)
			b, err = senmlAppendJSONFloat(b, math.Float64frombits(v.num))
		case TypeString:
			if !utf8.ValidString(v.str) {
				return nil, senmlErr("record %d: string value is not valid utf-8", i)
			}
			label(senmlStringValue)
			b = senmlAppendJSONString(b, v.str)
		case TypeBoolean:
			label(senmlBoolValue)
			b = strconv.AppendBool(b, v.num == 1)
		case TypeOpaque:
			label(senmlDataValue)
			b = append(b, '"')
			b = base64.RawURLEncoding.AppendEncode(b, v.raw)
			b = append(b, '"')
		case TypeObjectLink:
			label(senmlObjlnkValue)
			b = append(b, '"')
			b = append(b, v.String()...)
			b = append(b, '"')
		default:
			return nil, senmlErr("record %d: a value of type %s cannot be encoded", i, v.typ)
		}
		if err != nil {
			return nil, senmlErr("record %d: %v", i, err)
		}
		if r.hasTime {
			label(senmlTime)
			if r.t.kind == senmlInt {
				b = strconv.AppendInt(b, r.t.i, 10)
			} else if b, err = senmlAppendJSONFloat(b, r.t.f); err != nil {
				return nil, senmlErr("record %d: %v", i, err)
			}
		}
		b = append(b, '}')
	}
	return append(b, ']'), nil
}

// senmlAppendJSONFloat writes f the way encoding/json does, but always with
// a '.' or an exponent so that it reads back as a float.
func senmlAppendJSONFloat(b []byte, f float64) ([]byte, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return nil, fmt.Errorf("senml json cannot carry the float %v", f)
	}
	start := len(b)
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// 1e-07 to 1e-7, as encoding/json does.
		if n := len(b); n-start >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	if !bytes.ContainsAny(b[start:], ".e") {
		b = append(b, '.', '0')
	}
	return b, nil
}

func senmlAppendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c == '\n':
			b = append(b, '\\', 'n')
		case c == '\r':
			b = append(b, '\\', 'r')
		case c == '\t':
			b = append(b, '\\', 't')
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}

// ---- SenML CBOR ----

const (
	senmlMajorUint   = 0
	senmlMajorNint   = 1
	senmlMajorBytes  = 2
	senmlMajorText   = 3
	senmlMajorArray  = 4
	senmlMajorMap    = 5
	senmlMajorTag    = 6
	senmlMajorSimple = 7

	senmlIndefinite = 31
	senmlBreak      = 0xFF
)

// senmlDecMode returns the CBOR decoding limits for an input of n bytes: a
// pack is an array of maps whose values may be a decimal fraction (a tag
// holding an array), so four levels; no array or map can have more entries
// than the input has bytes.
func senmlDecMode(n int) (cbor.DecMode, error) {
	limit := min(max(n, 16), math.MaxInt32)
	return cbor.DecOptions{
		DupMapKey:        cbor.DupMapKeyEnforcedAPF,
		MaxNestedLevels:  4,
		MaxArrayElements: limit,
		MaxMapPairs:      max(limit/2, 16),
		IndefLength:      cbor.IndefLengthAllowed,
		TagsMd:           cbor.TagsAllowed,
		BignumTag:        cbor.BignumTagForbidden,
		UTF8:             cbor.UTF8RejectInvalid,
		NaN:              cbor.NaNDecodeAllowed,
		Inf:              cbor.InfDecodeAllowed,
	}.DecMode()
}

// senmlCBORReader walks a SenML CBOR pack that is known to be well formed.
type senmlCBORReader struct {
	b  []byte
	dm cbor.DecMode
}

// head consumes an initial byte and its argument. For ai 31 (indefinite
// length or break) arg is 0.
func (r *senmlCBORReader) head() (major, ai byte, arg uint64, err error) {
	if len(r.b) == 0 {
		return 0, 0, 0, io.ErrUnexpectedEOF
	}
	major, ai = r.b[0]>>5, r.b[0]&0x1F
	switch {
	case ai < 24:
		arg = uint64(ai)
		r.b = r.b[1:]
	case ai <= 27:
		n := 1 << (ai - 24)
		if len(r.b) < 1+n {
			return 0, 0, 0, io.ErrUnexpectedEOF
		}
		for _, c := range r.b[1 : 1+n] {
			arg = arg<<8 | uint64(c)
		}
		r.b = r.b[1+n:]
	case ai == senmlIndefinite:
		r.b = r.b[1:]
	default:
		return 0, 0, 0, fmt.Errorf("reserved additional information %d", ai)
	}
	return major, ai, arg, nil
}

func (r *senmlCBORReader) peekMajor() byte {
	if len(r.b) == 0 {
		return 0xFF
	}
	return r.b[0] >> 5
}

// atBreak consumes a break code if one is next.
func (r *senmlCBORReader) atBreak() bool {
	if len(r.b) > 0 && r.b[0] == senmlBreak {
		r.b = r.b[1:]
		return true
	}
	return false
}

func (r *senmlCBORReader) unmarshal(v any) error {
	rest, err := r.dm.UnmarshalFirst(r.b, v)
	if err != nil {
		return err
	}
	r.b = rest
	return nil
}

func (r *senmlCBORReader) text() (string, error) {
	if r.peekMajor() != senmlMajorText {
		return "", errors.New("not a text string")
	}
	var s string
	err := r.unmarshal(&s)
	return s, err
}

// number reads an integer, a float or a decimal fraction (tag 4).
func (r *senmlCBORReader) number() (senmlNum, error) {
	if len(r.b) == 0 {
		return senmlNum{}, io.ErrUnexpectedEOF
	}
	switch c := r.b[0]; c >> 5 {
	case senmlMajorUint, senmlMajorNint:
		return r.integer()
	case senmlMajorSimple:
		if c < 0xF9 || c > 0xFB {
			return senmlNum{}, errors.New("not a number")
		}
		var f float64
		if err := r.unmarshal(&f); err != nil {
			return senmlNum{}, err
		}
		return senmlFloatNum(f), nil
	case senmlMajorTag:
		_, _, tag, err := r.head()
		if err != nil {
			return senmlNum{}, err
		}
		if tag != 4 {
			return senmlNum{}, fmt.Errorf("tag %d where a number was expected", tag)
		}
		return r.decimalFraction()
	}
	return senmlNum{}, errors.New("not a number")
}

func (r *senmlCBORReader) integer() (senmlNum, error) {
	major, _, arg, err := r.head()
	if err != nil {
		return senmlNum{}, err
	}
	switch {
	case major == senmlMajorUint:
		return senmlUintNum(arg), nil
	case major != senmlMajorNint:
		return senmlNum{}, errors.New("not an integer")
	case arg <= math.MaxInt64:
		return senmlIntNum(-1 - int64(arg)), nil
	}
	return senmlFloatNum(-1 - float64(arg)), nil
}

// decimalFraction reads the content of tag 4, [exponent, mantissa], as the
// float nearest to mantissa × 10^exponent.
func (r *senmlCBORReader) decimalFraction() (senmlNum, error) {
	major, ai, n, err := r.head()
	if err != nil {
		return senmlNum{}, err
	}
	if major != senmlMajorArray || ai == senmlIndefinite || n != 2 {
		return senmlNum{}, errors.New("decimal fraction is not a two-element array")
	}
	exp, err := r.integer()
	if err != nil {
		return senmlNum{}, err
	}
	mant, err := r.integer()
	if err != nil {
		return senmlNum{}, err
	}
	if exp.kind != senmlInt || mant.kind == senmlFloat {
		return senmlNum{}, errors.New("decimal fraction out of range")
	}
	f, err := strconv.ParseFloat(mant.String()+"e"+exp.String(), 64)
	if err != nil {
		return senmlNum{}, fmt.Errorf("decimal fraction %se%s out of range", mant, exp)
	}
	return senmlFloatNum(f), nil
}

// skip consumes the value of an unknown label: any scalar, tagged or not.
func (r *senmlCBORReader) skip() error {
	for {
		major, ai, arg, err := r.head()
		if err != nil {
			return err
		}
		switch major {
		case senmlMajorTag:
			continue
		case senmlMajorArray, senmlMajorMap:
			return errors.New("nested array or map in a record")
		case senmlMajorBytes, senmlMajorText:
			if ai != senmlIndefinite {
				if arg > uint64(len(r.b)) {
					return io.ErrUnexpectedEOF
				}
				r.b = r.b[arg:]
				return nil
			}
			for !r.atBreak() {
				_, _, n, err := r.head()
				if err != nil {
					return err
				}
				if n > uint64(len(r.b)) {
					return io.ErrUnexpectedEOF
				}
				r.b = r.b[n:]
			}
			return nil
		case senmlMajorSimple:
			if ai == senmlIndefinite {
				return errors.New("unexpected break")
			}
		}
		return nil
	}
}

// skipItem consumes any well-formed data item; the nesting is at most
// four deep (senmlDecMode).
func (r *senmlCBORReader) skipItem() error {
	major, ai, arg, err := r.head()
	if err != nil {
		return err
	}
	switch major {
	case senmlMajorBytes, senmlMajorText:
		if ai == senmlIndefinite {
			for !r.atBreak() {
				if err := r.skipItem(); err != nil {
					return err
				}
			}
			return nil
		}
		if arg > uint64(len(r.b)) {
			return io.ErrUnexpectedEOF
		}
		r.b = r.b[arg:]
	case senmlMajorArray, senmlMajorMap:
		items := arg
		if major == senmlMajorMap {
			items *= 2 // arg is at most the input length
		}
		for j := uint64(0); ai == senmlIndefinite || j < items; j++ {
			if ai == senmlIndefinite && r.atBreak() {
				break
			}
			if err := r.skipItem(); err != nil {
				return err
			}
		}
	case senmlMajorTag:
		return r.skipItem()
	}
	return nil
}

// senmlDecodeCBOR parses a SenML CBOR pack, calls start with the number of
// records and then hands each record to emit.
func senmlDecodeCBOR(data []byte, start func(int), emit func(*senmlRecord) error) error {
	dm, err := senmlDecMode(len(data))
	if err != nil {
		return senmlErr("cbor options: %v", err)
	}
	if err := dm.Wellformed(data); err != nil {
		return senmlErr("cbor: %v", err)
	}
	r := &senmlCBORReader{b: data, dm: dm}
	major, ai, n, err := r.head()
	if err != nil || major != senmlMajorArray {
		return senmlErr("a senml pack must be a cbor array")
	}
	if ai == senmlIndefinite {
		count := senmlCBORReader{b: r.b}
		for !count.atBreak() {
			if err := count.skipItem(); err != nil {
				return senmlErr("cbor: %v", err)
			}
			n++
		}
	}
	// Wellformed has checked that the n items are there.
	start(int(n))
	var rec senmlRecord
	for i := 0; ai == senmlIndefinite || uint64(i) < n; i++ {
		if ai == senmlIndefinite && r.atBreak() {
			break
		}
		rec = senmlRecord{}
		if err := r.record(&rec); err != nil {
			return senmlRecordErr(i, err)
		}
		if err := emit(&rec); err != nil {
			return senmlRecordErr(i, err)
		}
	}
	if len(r.b) != 0 {
		return senmlErr("data after the senml pack")
	}
	return nil
}

func (r *senmlCBORReader) record(rec *senmlRecord) error {
	major, ai, n, err := r.head()
	if err != nil {
		return err
	}
	if major != senmlMajorMap {
		return errors.New("a senml record must be a cbor map")
	}
	for j := uint64(0); ai == senmlIndefinite || j < n; j++ {
		if ai == senmlIndefinite && r.atBreak() {
			break
		}
		l, known, err := r.label()
		if err != nil {
			return err
		}
		if !known {
			if err := r.skip(); err != nil {
				return err
			}
			continue
		}
		if err := r.field(rec, l); err != nil {
			return err
		}
	}
	return nil
}

// label reads a map key: an integer of RFC 8428 Table 6, or a text label.
func (r *senmlCBORReader) label() (senmlLabel, bool, error) {
	switch r.peekMajor() {
	case senmlMajorUint, senmlMajorNint:
		major, _, arg, err := r.head()
		if err != nil || arg > math.MaxInt64 {
			return 0, false, err
		}
		n := int64(arg)
		if major == senmlMajorNint {
			n = -1 - n
		}
		l, known := senmlCBORLabel(n)
		return l, known, nil
	case senmlMajorText:
		s, err := r.text()
		if err != nil {
			return 0, false, err
		}
		if s == "vlo" {
			return senmlObjlnkValue, true, nil
		}
		if strings.HasSuffix(s, "_") {
			return 0, false, fmt.Errorf("must-understand label %q is not supported", s)
		}
		return 0, false, nil
	}
	return 0, false, errors.New("a label must be an integer or a text string")
}

func (r *senmlCBORReader) field(rec *senmlRecord, l senmlLabel) error {
	kind := senmlLabelKind(l)
	wrong := func(err error) error {
		if err == nil {
			err = errors.New("wrong type")
		}
		return fmt.Errorf("%s must be %s: %w", l, kind, err)
	}
	switch kind {
	case senmlKindString:
		s, err := r.text()
		if err != nil {
			return wrong(err)
		}
		return rec.setString(l, s)
	case senmlKindNumber:
		n, err := r.number()
		if err != nil {
			return wrong(err)
		}
		return rec.setNumber(l, n)
	case senmlKindBool:
		if len(r.b) == 0 || (r.b[0] != 0xF4 && r.b[0] != 0xF5) {
			return wrong(nil)
		}
		b := r.b[0] == 0xF5
		r.b = r.b[1:]
		return rec.setBool(l, b)
	}
	if r.peekMajor() != senmlMajorBytes {
		return wrong(nil)
	}
	var b []byte
	if err := r.unmarshal(&b); err != nil {
		return wrong(err)
	}
	return rec.setData(l, b)
}

// senmlEncodeCBOR writes records with the integer labels of RFC 8428 Table
// 6 in the order bn, n, value, t, like the OMA examples.
func senmlEncodeCBOR(recs []senmlOutRecord) ([]byte, error) {
	b := make([]byte, 0, 24*len(recs)+9)
	b = senmlAppendHead(b, senmlMajorArray, uint64(len(recs)))
	for i, r := range recs {
		pairs := 0
		for _, has := range []bool{r.hasBaseName, r.hasName, r.value.typ != TypeNone, r.hasTime} {
			if has {
				pairs++
			}
		}
		b = senmlAppendHead(b, senmlMajorMap, uint64(pairs))
		if r.hasBaseName {
			b = senmlAppendLabel(b, senmlBaseName)
			b = senmlAppendText(b, r.baseName)
		}
		if r.hasName {
			b = senmlAppendLabel(b, senmlName)
			b = senmlAppendText(b, r.name)
		}
		v := r.value
		switch v.typ {
		case TypeNone:
		case TypeInteger, TypeTime:
			b = senmlAppendLabel(b, senmlValue)
			b = senmlAppendInt(b, int64(v.num))
		case TypeUnsignedInteger:
			b = senmlAppendLabel(b, senmlValue)
			b = senmlAppendHead(b, senmlMajorUint, v.num)
		case TypeFloat:
			b = senmlAppendLabel(b, senmlValue)
			b = senmlAppendFloat(b, math.Float64frombits(v.num))
		case TypeString:
			if !utf8.ValidString(v.str) {
				return nil, senmlErr("record %d: string value is not valid utf-8", i)
			}
			b = senmlAppendLabel(b, senmlStringValue)
			b = senmlAppendText(b, v.str)
		case TypeBoolean:
			b = senmlAppendLabel(b, senmlBoolValue)
			b = append(b, 0xF4+byte(v.num))
		case TypeOpaque:
			b = senmlAppendLabel(b, senmlDataValue)
			b = senmlAppendHead(b, senmlMajorBytes, uint64(len(v.raw)))
			b = append(b, v.raw...)
		case TypeObjectLink:
			b = senmlAppendText(b, "vlo")
			b = senmlAppendText(b, v.String())
		default:
			return nil, senmlErr("record %d: a value of type %s cannot be encoded", i, v.typ)
		}
		if r.hasTime {
			b = senmlAppendLabel(b, senmlTime)
			if r.t.kind == senmlInt {
				b = senmlAppendInt(b, r.t.i)
			} else {
				b = senmlAppendFloat(b, r.t.f)
			}
		}
	}
	return b, nil
}

func senmlAppendHead(b []byte, major byte, arg uint64) []byte {
	m := major << 5
	switch {
	case arg < 24:
		return append(b, m|byte(arg))
	case arg <= math.MaxUint8:
		return append(b, m|24, byte(arg))
	case arg <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(b, m|25), uint16(arg))
	case arg <= math.MaxUint32:
		return binary.BigEndian.AppendUint32(append(b, m|26), uint32(arg))
	}
	return binary.BigEndian.AppendUint64(append(b, m|27), arg)
}

func senmlAppendInt(b []byte, n int64) []byte {
	if n >= 0 {
		return senmlAppendHead(b, senmlMajorUint, uint64(n))
	}
	return senmlAppendHead(b, senmlMajorNint, uint64(-(n + 1)))
}

func senmlAppendLabel(b []byte, l senmlLabel) []byte {
	if l < senmlName {
		return senmlAppendInt(b, -int64(l)-1)
	}
	return senmlAppendInt(b, int64(l-senmlName))
}

func senmlAppendText(b []byte, s string) []byte {
	b = senmlAppendHead(b, senmlMajorText, uint64(len(s)))
	return append(b, s...)
}

// senmlAppendFloat writes f in 4 bytes when that is exact, else in 8, so
// NaN payloads survive.
func senmlAppendFloat(b []byte, f float64) []byte {
	if f32 := float32(f); float64(f32) == f {
		return binary.BigEndian.AppendUint32(append(b, 0xFA), math.Float32bits(f32))
	}
	return binary.BigEndian.AppendUint64(append(b, 0xFB), math.Float64bits(f))
}
