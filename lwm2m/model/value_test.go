package model

import (
	"math"
	"testing"
	"time"
)

func TestValueAccessors(t *testing.T) {
	now := time.Date(2013, 5, 2, 10, 40, 15, 999, time.UTC)
	tests := []struct {
		name  string
		v     Value
		typ   Type
		check func(Value) bool
		text  string
	}{
		{"string", StringValue("U"), TypeString, func(v Value) bool { s, ok := v.AsString(); return ok && s == "U" }, "U"},
		{"integer", IntegerValue(-3800), TypeInteger, func(v Value) bool { n, ok := v.AsInteger(); return ok && n == -3800 }, "-3800"},
		{"unsigned", UnsignedValue(math.MaxUint64), TypeUnsignedInteger, func(v Value) bool { n, ok := v.AsUnsigned(); return ok && n == math.MaxUint64 }, "18446744073709551615"},
		{"float", FloatValue(1.5), TypeFloat, func(v Value) bool { f, ok := v.AsFloat(); return ok && f == 1.5 }, "1.5"},
		{"boolean", BoolValue(true), TypeBoolean, func(v Value) bool { b, ok := v.AsBool(); return ok && b }, "true"},
		{"opaque", OpaqueValue([]byte{1, 2, 3, 4, 5}), TypeOpaque, func(v Value) bool { b, ok := v.AsOpaque(); return ok && len(b) == 5 }, "AQIDBAU="},
		{"time truncated to seconds", TimeValue(now), TypeTime, func(v Value) bool {
			tm, ok := v.AsTime()
			return ok && tm.Equal(now.Truncate(time.Second))
		}, "2013-05-02T10:40:15Z"},
		{"object link", ObjectLinkValue(ObjectLink{ObjectID: 66, InstanceID: 65535}), TypeObjectLink, func(v Value) bool {
			l, ok := v.AsObjectLink()
			return ok && l == ObjectLink{66, 65535}
		}, "66:65535"},
		{"none", Value{}, TypeNone, func(v Value) bool { _, ok := v.AsString(); return !ok }, "<none>"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.v.Type() != tt.typ {
				t.Errorf("Type() = %v, want %v", tt.v.Type(), tt.typ)
			}
			if !tt.check(tt.v) {
				t.Error("accessor returned the wrong value")
			}
			if got := tt.v.String(); got != tt.text {
				t.Errorf("String() = %q, want %q", got, tt.text)
			}
			if !tt.v.Equal(tt.v) {
				t.Error("value not equal to itself")
			}
		})
	}
}

func TestValueWrongAccessor(t *testing.T) {
	v := IntegerValue(1)
	if _, ok := v.AsUnsigned(); ok {
		t.Error("AsUnsigned on an integer reported ok")
	}
	if _, ok := v.AsBool(); ok {
		t.Error("AsBool on an integer reported ok")
	}
	if _, ok := v.AsTime(); ok {
		t.Error("AsTime on an integer reported ok")
	}
	if IntegerValue(1).Equal(UnsignedValue(1)) {
		t.Error("integer 1 equals unsigned 1")
	}
	if !FloatValue(math.NaN()).Equal(FloatValue(math.NaN())) {
		t.Error("the same NaN is not Equal")
	}
	if !OpaqueValue(nil).Equal(OpaqueValue([]byte{})) {
		t.Error("nil and empty opaque differ")
	}
}

func TestTypeString(t *testing.T) {
	want := map[Type]string{
		TypeNone: "none", TypeString: "string", TypeInteger: "integer", TypeUnsignedInteger: "unsigned integer",
		TypeFloat: "float", TypeBoolean: "boolean", TypeOpaque: "opaque", TypeTime: "time", TypeObjectLink: "objlnk",
	}
	for typ, s := range want {
		t.Run(s, func(t *testing.T) {
			if typ.String() != s {
				t.Errorf("String() = %q, want %q", typ.String(), s)
			}
		})
	}
	if Type(200).String() != "Type(200)" {
		t.Errorf("unknown type prints %q", Type(200).String())
	}
}
