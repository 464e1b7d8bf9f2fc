package model

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// ContentFormatLwM2MJSON is the CoAP content format number of LwM2M JSON
// (application/vnd.oma.lwm2m+json), the JSON format of OMA LwM2M 1.0.
const ContentFormatLwM2MJSON = 11543

// ErrMalformedLwM2MJSON is wrapped by every error of the LwM2M JSON codec:
// a payload that is not valid LwM2M JSON or holds a value its resource's
// type cannot take, and, on encoding, values the format cannot carry.
var ErrMalformedLwM2MJSON = errors.New("malformed lwm2m json")

func lwjErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformedLwM2MJSON, fmt.Sprintf(format, args...))
}

// lwjPayload is the top level of an LwM2M JSON payload as read.
type lwjPayload struct {
	BN *string     `json:"bn"`
	BT lwjNumText  `json:"bt"`
	E  *lwjEntries `json:"e"`
}

// lwjWireEntry is one element of "e" as read.
type lwjWireEntry struct {
	N  *string    `json:"n"`
	V  lwjNumText `json:"v"`
	SV *string    `json:"sv"`
	BV *bool      `json:"bv"`
	OV *string    `json:"ov"`
	T  lwjNumText `json:"t"`
}

// lwjNumText is the text of a JSON number; "" when there is none.
type lwjNumText string

// UnmarshalJSON implements json.Unmarshaler: it takes numbers only (the
// json package would also take a quoted number for a json.Number).
func (n *lwjNumText) UnmarshalJSON(b []byte) error {
	if len(b) == 0 || b[0] != '-' && (b[0] < '0' || b[0] > '9') {
		return fmt.Errorf("%s is not a number", lwm2mClip(string(b)))
	}
	*n = lwjNumText(b)
	return nil
}

// lwjEntry is one element of "e" checked to hold one value, before its
// name is resolved and its value typed.
type lwjEntry struct {
	n     string
	hasN  bool
	field string // "v", "sv", "bv" or "ov"
	text  string // the number text of v, or the string of sv and ov
	bv    bool
	t     lwjNumText
}

// lwjEntries is the "e" array. It reads its elements one at a time into a
// compact form, so a long array costs little more than its values.
type lwjEntries []lwjEntry

// UnmarshalJSON implements json.Unmarshaler.
func (es *lwjEntries) UnmarshalJSON(b []byte) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('[') {
		return fmt.Errorf(`"e" is %s, not an array`, lwm2mClip(string(b)))
	}
	for dec.More() {
		var w lwjWireEntry
		if err := dec.Decode(&w); err != nil {
			return fmt.Errorf("entry %d: %v", len(*es), err)
		}
		e := lwjEntry{t: w.T}
		if w.N != nil {
			e.n, e.hasN = *w.N, true
		}
		values := 0
		if w.V != "" {
			values++
			e.field, e.text = "v", string(w.V)
		}
		if w.SV != nil {
			values++
			e.field, e.text = "sv", *w.SV
		}
		if w.BV != nil {
			values++
			e.field, e.bv = "bv", *w.BV
		}
		if w.OV != nil {
			values++
			e.field, e.text = "ov", *w.OV
		}
		switch values {
		case 0:
			return fmt.Errorf(`entry %d has no value ("v", "sv", "bv" or "ov")`, len(*es))
		case 1:
		default:
			return fmt.Errorf("entry %d has %d values", len(*es), values)
		}
		if len(*es) == cap(*es) { // double: append would add a quarter
			*es = slices.Grow(*es, max(1, len(*es)))
		}
		*es = append(*es, e)
	}
	_, err := dec.Token() // the closing bracket
	return err
}

// DecodeLwM2MJSON decodes an LwM2M JSON payload (content format 11543, OMA
// LwM2M 1.0 TS §6.4.4): {"bn": base name, "bt": base time, "e": [entries]},
// each entry {"n": name, one of "v" (number), "sv" (string), "bv" (boolean),
// "ov" (object link "o:i"), and "t" (time)}. Only "e" is required. As with
// encoding/json, members the format does not define are skipped, member
// names match regardless of case and a member given twice counts once (the
// last). The payload must be UTF-8.
//
// An entry's path is the base name followed by its name, as in SenML
// ("/3/0/" + "6/0" is /3/0/6/0; a missing leading slash is supplied, so "3/0/"
// works too). Without a base name, a name starting with "/" is absolute and
// any other is relative to base, the path the request addressed: some 1.0
// clients answer a Read of /3/0 with names like "6/0" and no "bn"; an entry
// without a name is base itself. Every path must be a resource or resource
// instance.
//
// An entry's time is bt + t in whole seconds since the epoch (floats are
// floored); with neither, PathValue.Time is zero. The same path may appear
// several times with different times (a notification with history), but not
// twice at the same time, and no value may lie below another's path.
// Values come back in path order, entries of one path in payload order.
//
// When the built-in model knows the resource, the value must be able to
// take its type: integers and unsigned integers from a "v" that is integral
// and in range (1e3 and 1000.0 are 1000), times from any "v" (floored to the
// second), floats from any "v", strings from "sv", opaque values from "sv"
// in base64 (standard alphabet, padded or not), booleans from "bv", object
// links from "ov" (or "sv") "objectID:instanceID". Otherwise the entry
// decides: a "v" without '.', 'e' or 'E' is an integer when it fits int64,
// an unsigned integer when it fits uint64 only, and a float otherwise; "sv"
// is a string, "bv" a boolean, "ov" an object link.
//
// The json package checks the whole payload before decoding it; what
// decoding allocates is a small multiple of the payload.
func DecodeLwM2MJSON(base Path, data []byte) ([]PathValue, error) {
	if !utf8.Valid(data) {
		return nil, lwjErr("payload is not UTF-8")
	}
	var w lwjPayload
	if err := json.Unmarshal(data, &w); err != nil {
		return nil, lwjErr("%v", err)
	}
	if w.E == nil {
		return nil, lwjErr(`no "e" array`)
	}
	var (
		bn, bt  = "", w.BT
		hasBN   = w.BN != nil
		entries = *w.E
		err     error
	)
	if hasBN {
		bn = *w.BN
	}
	var baseTime int64
	if bt != "" {
		if baseTime, err = lwjSeconds(string(bt)); err != nil {
			return nil, lwjErr("bt: %v", err)
		}
	}
	out := make([]PathValue, 0, len(entries))
	for _, e := range entries {
		p, err := lwjResolve(base, bn, hasBN, e.n, e.hasN)
		if err != nil {
			return nil, err
		}
		v, err := e.value(p)
		if err != nil {
			return nil, lwjErr("%s: %v", p, err)
		}
		pv := PathValue{Path: p, Value: v}
		if bt != "" || e.t != "" {
			sec := baseTime
			if e.t != "" {
				t, err := lwjSeconds(string(e.t))
				if err != nil {
					return nil, lwjErr("%s: t: %v", p, err)
				}
				if sec += t; (t > 0 && sec < baseTime) || (t < 0 && sec > baseTime) {
					return nil, lwjErr("%s: bt + t overflows", p)
				}
			}
			pv.Time = time.Unix(sec, 0).UTC()
		}
		out = append(out, pv)
	}
	SortValues(out)
	if err := lwm2mCheckPaths(out); err != nil {
		return nil, lwjErr("%v", err)
	}
	return out, nil
}

// lwjResolve gives an entry's path from the base name bn, its name n and
// the request path base.
func lwjResolve(base Path, bn string, hasBN bool, n string, hasN bool) (Path, error) {
	// The longest path is "/65535/65535/65535/65535". Checking the parts
	// first keeps a long base name from being copied for every entry.
	const maxName = 32
	if len(bn)+len(n) > maxName {
		return Path{}, lwjErr("name %q%q is too long for a path", lwm2mClip(bn), lwm2mClip(n))
	}
	var name string
	switch {
	case hasBN:
		name = bn + n
	case !hasN || n == "":
		return lwjCheckLevel(base)
	case strings.HasPrefix(n, "/"):
		name = n
	case base.IsRoot():
		name = "/" + n
	default:
		name = base.String() + "/" + n
	}
	if !strings.HasPrefix(name, "/") {
		name = "/" + name
	}
	p, err := ParsePath(name)
	if err != nil {
		return Path{}, lwjErr("name: %v", err)
	}
	return lwjCheckLevel(p)
}

func lwjCheckLevel(p Path) (Path, error) {
	if l := p.Level(); l != LevelResource && l != LevelResourceInstance {
		return Path{}, lwjErr("value at %s, which is not a resource or resource instance", p)
	}
	return p, nil
}

// lwjSeconds reads a time in seconds, floored.
func lwjSeconds(text string) (int64, error) {
	n, err := lwjNumber(text)
	if err != nil {
		return 0, err
	}
	v, err := n.as(TypeTime)
	if err != nil {
		return 0, err
	}
	return int64(v.num), nil
}

// lwjNumber reads the text of a JSON number, which the decoder has
// checked: integral text exactly, anything else as the nearest float.
func lwjNumber(text string) (lwm2mNum, error) {
	kind := lwm2mNumFloat
	if !strings.ContainsAny(text, ".eE") {
		if i, err := strconv.ParseInt(text, 10, 64); err == nil {
			return lwm2mNum{kind: lwm2mNumInt, bits: uint64(i)}, nil
		}
		if u, err := strconv.ParseUint(text, 10, 64); err == nil {
			return lwm2mNum{kind: lwm2mNumUint, bits: u}, nil
		}
		kind = lwm2mNumHuge
	}
	f, err := strconv.ParseFloat(text, 64)
	if err != nil {
		return lwm2mNum{}, fmt.Errorf("number %s is out of the float range", lwm2mClip(text))
	}
	return lwm2mNum{kind: kind, bits: math.Float64bits(f)}, nil
}

// value types the entry's value for the resource at p.
func (e lwjEntry) value(p Path) (Value, error) {
	t, known := TypeOf(p)
	want := func() (Value, error) {
		return Value{}, fmt.Errorf("%q where a %s was expected", e.field, t)
	}
	switch e.field {
	case "v":
		n, err := lwjNumber(e.text)
		if err != nil {
			return Value{}, err
		}
		if !known {
			return n.guess(), nil
		}
		return n.as(t)
	case "sv":
		switch {
		case !known || t == TypeString:
			return StringValue(e.text), nil
		case t == TypeOpaque:
			b, err := base64.StdEncoding.DecodeString(e.text)
			if err != nil {
				if b, err = base64.RawStdEncoding.DecodeString(e.text); err != nil {
					return Value{}, fmt.Errorf("opaque value is not base64")
				}
			}
			return OpaqueValue(b), nil
		case t == TypeObjectLink:
			return lwjObjectLink(e.text)
		}
		return want()
	case "bv":
		if known && t != TypeBoolean {
			return want()
		}
		return BoolValue(e.bv), nil
	case "ov":
		if known && t != TypeObjectLink {
			return want()
		}
		return lwjObjectLink(e.text)
	}
	return Value{}, fmt.Errorf("entry with field %q", e.field) // not reached
}

func lwjObjectLink(s string) (Value, error) {
	l, err := lwm2mParseObjectLink(s)
	if err != nil {
		return Value{}, err
	}
	return ObjectLinkValue(l), nil
}

// EncodeLwM2MJSON encodes values as LwM2M JSON (content format 11543). The
// base name is the longest path all values lie below (at most their parent),
// so the values of /3/0 come out as {"bn":"/3/0/","e":[{"n":"0","sv":...},
// {"n":"6/0","v":1},...]} as in the TS examples, and values under several
// objects with "bn":"/". Entries come in path order (values of one path in
// the order given), keys in a fixed order, and numbers exactly: integers
// and times digit for digit, floats in the shortest form that reads back to
// the same float64, always with a '.' or an exponent so they read back as
// floats. A non-zero PathValue.Time becomes "t" in whole seconds since the
// epoch (no "bt"; sub-second parts are dropped).
//
// Strings are "sv", opaque values "sv" in padded standard base64, booleans
// "bv", object links "ov", the numeric types "v". Every value decodes back
// to itself for a resource the model knows; for one it does not know,
// unsigned integers up to 2^63-1 and times come back as integers, and
// opaque values as strings (their base64 text).
//
// Errors (wrapping ErrMalformedLwM2MJSON): a path that is not a resource or
// resource instance, a path given twice at the same time or below another
// value's path, a value without a type, a string that is not valid UTF-8,
// and NaN and the infinities, which JSON cannot write.
func EncodeLwM2MJSON(vals []PathValue) ([]byte, error) {
	vals = slices.Clone(vals)
	SortValues(vals)
	for i, pv := range vals {
		if l := pv.Path.Level(); l != LevelResource && l != LevelResourceInstance {
			return nil, lwjErr("cannot encode a value at %s, which is not a resource or resource instance", pv.Path)
		}
		if !pv.Time.IsZero() {
			vals[i].Time = time.Unix(pv.Time.Unix(), 0) // as it will be read back
		}
	}
	if err := lwm2mCheckPaths(vals); err != nil {
		return nil, lwjErr("cannot encode: %v", err)
	}
	if len(vals) == 0 {
		return []byte(`{"e":[]}`), nil
	}
	// The base name: the common prefix, short of every value's own path.
	prefix := vals[0].Path.n - 1
	for _, pv := range vals[1:] {
		k := uint8(0)
		for k < prefix && k < pv.Path.n-1 && pv.Path.ids[k] == vals[0].Path.ids[k] {
			k++
		}
		prefix = k
	}
	b := []byte(`{"bn":"/`)
	for _, id := range vals[0].Path.ids[:prefix] {
		b = strconv.AppendUint(b, uint64(id), 10)
		b = append(b, '/')
	}
	b = append(b, `","e":[`...)
	for i, pv := range vals {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"n":"`...)
		for j, id := range pv.Path.ids[prefix:pv.Path.n] {
			if j > 0 {
				b = append(b, '/')
			}
			b = strconv.AppendUint(b, uint64(id), 10)
		}
		b = append(b, `",`...)
		var err error
		if b, err = lwjAppendValue(b, pv.Value); err != nil {
			return nil, lwjErr("cannot encode %s: %v", pv.Path, err)
		}
		if !pv.Time.IsZero() {
			b = append(b, `,"t":`...)
			b = strconv.AppendInt(b, pv.Time.Unix(), 10)
		}
		b = append(b, '}')
	}
	return append(b, "]}"...), nil
}

func lwjAppendValue(b []byte, v Value) ([]byte, error) {
	switch v.typ {
	case TypeString:
		if !utf8.ValidString(v.str) {
			return nil, errors.New("string is not valid UTF-8")
		}
		return lwjAppendString(append(b, `"sv":`...), v.str), nil
	case TypeOpaque:
		b = append(b, `"sv":"`...)
		return append(base64.StdEncoding.AppendEncode(b, v.raw), '"'), nil
	case TypeInteger, TypeTime:
		return strconv.AppendInt(append(b, `"v":`...), int64(v.num), 10), nil
	case TypeUnsignedInteger:
		return strconv.AppendUint(append(b, `"v":`...), v.num, 10), nil
	case TypeFloat:
		f := math.Float64frombits(v.num)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, fmt.Errorf("json has no number for %v", f)
		}
		b = append(b, `"v":`...)
		start := len(b)
		b = strconv.AppendFloat(b, f, 'g', -1, 64)
		if !bytes.ContainsAny(b[start:], ".e") {
			b = append(b, ".0"...)
		}
		return b, nil
	case TypeBoolean:
		return strconv.AppendBool(append(b, `"bv":`...), v.num == 1), nil
	case TypeObjectLink:
		l, _ := v.AsObjectLink()
		return append(append(append(b, `"ov":"`...), l.String()...), '"'), nil
	}
	return nil, fmt.Errorf("a value of type %s cannot be encoded", v.typ)
}

// lwjAppendString appends s, which is valid UTF-8, as a JSON string:
// quotes, backslashes and control characters escaped, the rest as is.
func lwjAppendString(b []byte, s string) []byte {
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
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}
