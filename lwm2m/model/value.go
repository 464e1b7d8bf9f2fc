package model

import (
	"bytes"
	"encoding/base64"
	"math"
	"strconv"
	"time"
)

// Type is the data type of a resource value, as named by the OMA object
// registry.
type Type uint8

// Resource data types. TypeNone is the type of executable resources, which
// carry no value.
const (
	TypeNone Type = iota
	TypeString
	TypeInteger
	TypeUnsignedInteger
	TypeFloat
	TypeBoolean
	TypeOpaque
	TypeTime
	TypeObjectLink
)

func (t Type) String() string {
	switch t {
	case TypeNone:
		return "none"
	case TypeString:
		return "string"
	case TypeInteger:
		return "integer"
	case TypeUnsignedInteger:
		return "unsigned integer"
	case TypeFloat:
		return "float"
	case TypeBoolean:
		return "boolean"
	case TypeOpaque:
		return "opaque"
	case TypeTime:
		return "time"
	case TypeObjectLink:
		return "objlnk"
	}
	return "Type(" + strconv.Itoa(int(t)) + ")"
}

// ObjectLink is the value of an Objlnk resource: a reference to an object
// instance. The null link is 65535:65535.
type ObjectLink struct {
	ObjectID   uint16
	InstanceID uint16
}

// String returns the LwM2M text form "objectID:instanceID".
func (l ObjectLink) String() string {
	return strconv.Itoa(int(l.ObjectID)) + ":" + strconv.Itoa(int(l.InstanceID))
}

// Value is one typed resource value. The zero Value has TypeNone. Values are
// built with the *Value constructors and read with the As* accessors, which
// report false when the value has another type.
type Value struct {
	typ Type
	num uint64 // integer (two's complement), unsigned, float bits, bool, unix seconds, objlnk
	str string // string
	raw []byte // opaque
}

// StringValue returns a string value.
func StringValue(s string) Value { return Value{typ: TypeString, str: s} }

// IntegerValue returns a signed integer value.
func IntegerValue(v int64) Value { return Value{typ: TypeInteger, num: uint64(v)} }

// UnsignedValue returns an unsigned integer value.
func UnsignedValue(v uint64) Value { return Value{typ: TypeUnsignedInteger, num: v} }

// FloatValue returns a float value.
func FloatValue(v float64) Value { return Value{typ: TypeFloat, num: math.Float64bits(v)} }

// BoolValue returns a boolean value.
func BoolValue(v bool) Value {
	var n uint64
	if v {
		n = 1
	}
	return Value{typ: TypeBoolean, num: n}
}

// OpaqueValue returns an opaque value. It keeps b without copying (firmware
// packages are large); the caller must not modify b afterwards.
func OpaqueValue(b []byte) Value { return Value{typ: TypeOpaque, raw: b} }

// TimeValue returns a time value. LwM2M carries time as whole seconds since
// the Unix epoch, so t is truncated to the second.
func TimeValue(t time.Time) Value { return Value{typ: TypeTime, num: uint64(t.Unix())} }

// ObjectLinkValue returns an object link value.
func ObjectLinkValue(l ObjectLink) Value {
	return Value{typ: TypeObjectLink, num: uint64(l.ObjectID)<<16 | uint64(l.InstanceID)}
}

// Type returns the type of v.
func (v Value) Type() Type { return v.typ }

// AsString returns the string held by v.
func (v Value) AsString() (string, bool) { return v.str, v.typ == TypeString } // str is "" unless a string

// AsInteger returns the signed integer held by v.
func (v Value) AsInteger() (int64, bool) {
	if v.typ != TypeInteger {
		return 0, false
	}
	return int64(v.num), true
}

// AsUnsigned returns the unsigned integer held by v.
func (v Value) AsUnsigned() (uint64, bool) {
	if v.typ != TypeUnsignedInteger {
		return 0, false
	}
	return v.num, true
}

// AsFloat returns the float held by v.
func (v Value) AsFloat() (float64, bool) {
	if v.typ != TypeFloat {
		return 0, false
	}
	return math.Float64frombits(v.num), true
}

// AsBool returns the boolean held by v.
func (v Value) AsBool() (bool, bool) {
	if v.typ != TypeBoolean {
		return false, false
	}
	return v.num == 1, true
}

// AsOpaque returns the bytes held by v without copying them.
func (v Value) AsOpaque() ([]byte, bool) { return v.raw, v.typ == TypeOpaque } // raw is nil unless opaque

// AsTime returns the time held by v, in UTC.
func (v Value) AsTime() (time.Time, bool) {
	if v.typ != TypeTime {
		return time.Time{}, false
	}
	return time.Unix(int64(v.num), 0).UTC(), true
}

// AsObjectLink returns the object link held by v.
func (v Value) AsObjectLink() (ObjectLink, bool) {
	if v.typ != TypeObjectLink {
		return ObjectLink{}, false
	}
	return ObjectLink{ObjectID: uint16(v.num >> 16), InstanceID: uint16(v.num)}, true
}

// Equal reports whether v and w have the same type and value. Floats are
// compared bit for bit, so a NaN equals the same NaN; nil and empty opaque
// values are equal.
func (v Value) Equal(w Value) bool {
	return v.typ == w.typ && v.num == w.num && v.str == w.str && bytes.Equal(v.raw, w.raw)
}

// String returns a readable form of v for logs and tests: opaque values are
// base64, times RFC 3339, object links "o:i".
func (v Value) String() string {
	switch v.typ {
	case TypeString:
		return v.str
	case TypeInteger:
		return strconv.FormatInt(int64(v.num), 10)
	case TypeUnsignedInteger:
		return strconv.FormatUint(v.num, 10)
	case TypeFloat:
		return strconv.FormatFloat(math.Float64frombits(v.num), 'g', -1, 64)
	case TypeBoolean:
		return strconv.FormatBool(v.num == 1)
	case TypeOpaque:
		return base64.StdEncoding.EncodeToString(v.raw)
	case TypeTime:
		t, _ := v.AsTime()
		return t.Format(time.RFC3339)
	case TypeObjectLink:
		l, _ := v.AsObjectLink()
		return l.String()
	}
	return "<none>"
}
