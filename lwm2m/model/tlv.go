package model

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
)

// ContentFormatTLV is the CoAP content format number of LwM2M TLV.
const ContentFormatTLV = 11542

// Errors wrapped by the TLV codec.
var (
	// ErrMalformedTLV: the payload is not valid TLV, or does not fit the path
	// it was read for.
	ErrMalformedTLV = errors.New("malformed lwm2m tlv")
	// ErrNodeMismatch: the node and the path disagree (wrong level or id), or
	// the path cannot be carried in TLV at all (the root).
	ErrNodeMismatch = errors.New("node does not match path")
)

// maxTLVLength is the largest value a 24-bit TLV length field can announce.
const maxTLVLength = 1<<24 - 1

// tlvKind is bits 7-6 of the TLV type byte.
type tlvKind uint8

const (
	kindObjectInstance   tlvKind = 0
	kindResourceInstance tlvKind = 1
	kindMultipleResource tlvKind = 2
	kindResourceValue    tlvKind = 3
)

func (k tlvKind) String() string {
	switch k {
	case kindObjectInstance:
		return "object instance"
	case kindResourceInstance:
		return "resource instance"
	case kindMultipleResource:
		return "multiple resource"
	}
	return "resource value"
}

// tlv is one parsed TLV. value aliases the input; children is set for the
// container kinds (object instance, multiple resource).
type tlv struct {
	kind     tlvKind
	id       uint16
	value    []byte
	children []tlv
}

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformedTLV, fmt.Sprintf(format, args...))
}

// parseTLVs parses a sequence of TLVs. inside is the kind of the enclosing
// TLV, or -1 at the top level; it decides which kinds may appear. Every TLV
// takes at least two input bytes, so the slices grow at most len(b)/2; the
// nesting is at most three deep because leaves do not recurse and object
// instances cannot contain object instances.
func parseTLVs(b []byte, inside int) ([]tlv, error) {
	var out []tlv
	for len(b) > 0 {
		typ := b[0]
		kind := tlvKind(typ >> 6)
		idLen := 1
		if typ&0x20 != 0 {
			idLen = 2
		}
		lenLen := int(typ>>3) & 3
		hdr := 1 + idLen + lenLen
		if len(b) < hdr {
			return nil, malformed("truncated header: need %d bytes, have %d", hdr, len(b))
		}
		var id uint16
		if idLen == 1 {
			id = uint16(b[1])
		} else {
			id = binary.BigEndian.Uint16(b[1:3])
		}
		length := int(typ & 7)
		if lenLen > 0 {
			length = 0
			for _, c := range b[1+idLen : hdr] {
				length = length<<8 | int(c)
			}
		}
		if length > len(b)-hdr {
			return nil, malformed("%s %d: length %d beyond the %d bytes left", kind, id, length, len(b)-hdr)
		}
		switch inside {
		case int(kindObjectInstance):
			if kind != kindResourceValue && kind != kindMultipleResource {
				return nil, malformed("%s %d inside an object instance", kind, id)
			}
		case int(kindMultipleResource):
			if kind != kindResourceInstance {
				return nil, malformed("%s %d inside a multiple resource", kind, id)
			}
		}
		t := tlv{kind: kind, id: id, value: b[hdr : hdr+length]}
		if kind == kindObjectInstance || kind == kindMultipleResource {
			children, err := parseTLVs(t.value, int(kind))
			if err != nil {
				return nil, err
			}
			t.children, t.value = children, nil
		}
		out = append(out, t)
		b = b[hdr+length:]
	}
	return out, nil
}

// DecodeTLV decodes a TLV payload read from path p. It returns *Object for
// /o, *ObjectInstance for /o/i, *Resource for /o/i/r and *ResourceInstance
// for /o/i/r/ri. Values of resources the built-in object model knows are
// decoded to its types; other values are opaque.
//
// It accepts the forms clients send: /o/i as a list of resources or wrapped
// in one object instance TLV; /o/i/r as a resource, a multiple resource or a
// bare list of resource instances; /o as object instance TLVs, or as bare
// resources taken to be instance 0.
func DecodeTLV(p Path, data []byte) (Node, error) {
	tlvs, err := parseTLVs(data, -1)
	if err != nil {
		return nil, err
	}
	o, _ := p.Object()
	switch p.Level() {
	case LevelObject:
		obj := &Object{ID: o, Instances: make(map[uint16]ObjectInstance, len(tlvs))}
		if len(tlvs) > 0 && tlvs[0].kind != kindObjectInstance {
			oi, err := decodeInstance(o, 0, tlvs)
			if err != nil {
				return nil, err
			}
			obj.Instances[0] = oi
			return obj, nil
		}
		for _, t := range tlvs {
			if t.kind != kindObjectInstance {
				return nil, malformed("%s %d beside object instances", t.kind, t.id)
			}
			if _, dup := obj.Instances[t.id]; dup {
				return nil, malformed("duplicate object instance %d", t.id)
			}
			oi, err := decodeInstance(o, t.id, t.children)
			if err != nil {
				return nil, err
			}
			obj.Instances[t.id] = oi
		}
		return obj, nil
	case LevelObjectInstance:
		i, _ := p.Instance()
		if len(tlvs) == 1 && tlvs[0].kind == kindObjectInstance {
			if tlvs[0].id != i {
				return nil, malformed("object instance %d read from %s", tlvs[0].id, p)
			}
			tlvs = tlvs[0].children
		}
		oi, err := decodeInstance(o, i, tlvs)
		if err != nil {
			return nil, err
		}
		return &oi, nil
	case LevelResource:
		r, _ := p.Resource()
		if len(tlvs) == 0 {
			return nil, malformed("empty payload for %s", p)
		}
		if tlvs[0].kind == kindResourceInstance {
			res, err := decodeMultiple(o, r, tlvs)
			if err != nil {
				return nil, err
			}
			return &res, nil
		}
		if len(tlvs) != 1 || tlvs[0].id != r {
			return nil, malformed("payload for %s is not resource %d", p, r)
		}
		res, err := decodeResource(o, tlvs[0])
		if err != nil {
			return nil, err
		}
		return &res, nil
	case LevelResourceInstance:
		r, _ := p.Resource()
		ri, _ := p.ResourceInstance()
		if len(tlvs) != 1 || tlvs[0].id != ri ||
			(tlvs[0].kind != kindResourceInstance && tlvs[0].kind != kindResourceValue) {
			return nil, malformed("payload for %s is not resource instance %d", p, ri)
		}
		v, err := decodeValue(o, r, tlvs[0].value)
		if err != nil {
			return nil, err
		}
		return &ResourceInstance{ID: ri, Value: v}, nil
	}
	return nil, fmt.Errorf("%w: tlv cannot address %s", ErrNodeMismatch, p)
}

func decodeInstance(o, i uint16, tlvs []tlv) (ObjectInstance, error) {
	oi := ObjectInstance{ID: i, Resources: make(map[uint16]Resource, len(tlvs))}
	for _, t := range tlvs {
		if t.kind != kindResourceValue && t.kind != kindMultipleResource {
			return ObjectInstance{}, malformed("%s %d where resources were expected", t.kind, t.id)
		}
		if _, dup := oi.Resources[t.id]; dup {
			return ObjectInstance{}, malformed("duplicate resource %d in /%d/%d", t.id, o, i)
		}
		r, err := decodeResource(o, t)
		if err != nil {
			return ObjectInstance{}, err
		}
		oi.Resources[t.id] = r
	}
	return oi, nil
}

func decodeResource(o uint16, t tlv) (Resource, error) {
	switch t.kind {
	case kindResourceValue:
		v, err := decodeValue(o, t.id, t.value)
		if err != nil {
			return Resource{}, err
		}
		return SingleResource(t.id, v), nil
	case kindMultipleResource:
		return decodeMultiple(o, t.id, t.children)
	}
	return Resource{}, malformed("%s %d where a resource was expected", t.kind, t.id)
}

func decodeMultiple(o, r uint16, tlvs []tlv) (Resource, error) {
	res := Resource{ID: r, Multiple: true, Instances: make(map[uint16]Value, len(tlvs))}
	for _, t := range tlvs {
		if t.kind != kindResourceInstance {
			return Resource{}, malformed("%s %d inside resource %d", t.kind, t.id, r)
		}
		if _, dup := res.Instances[t.id]; dup {
			return Resource{}, malformed("duplicate instance %d of resource %d", t.id, r)
		}
		v, err := decodeValue(o, r, t.value)
		if err != nil {
			return Resource{}, err
		}
		res.Instances[t.id] = v
	}
	return res, nil
}

// decodeValue decodes b as the model's type for resource /o/*/r, or as
// opaque when the model does not know it. The result never aliases b.
func decodeValue(o, r uint16, b []byte) (Value, error) {
	t, known := resourceType(o, r)
	if !known {
		t = TypeOpaque
	}
	v, err := decodeTypedValue(t, b)
	if err != nil {
		return Value{}, fmt.Errorf("object %d resource %d: %w", o, r, err)
	}
	return v, nil
}

func decodeTypedValue(t Type, b []byte) (Value, error) {
	switch t {
	case TypeString:
		return StringValue(string(b)), nil
	case TypeInteger, TypeTime:
		n, err := decodeInt(b)
		if err != nil {
			return Value{}, err
		}
		if t == TypeTime {
			return Value{typ: TypeTime, num: uint64(n)}, nil
		}
		return IntegerValue(n), nil
	case TypeUnsignedInteger:
		switch len(b) {
		case 1:
			return UnsignedValue(uint64(b[0])), nil
		case 2:
			return UnsignedValue(uint64(binary.BigEndian.Uint16(b))), nil
		case 4:
			return UnsignedValue(uint64(binary.BigEndian.Uint32(b))), nil
		case 8:
			return UnsignedValue(binary.BigEndian.Uint64(b)), nil
		}
		return Value{}, malformed("unsigned integer of %d bytes", len(b))
	case TypeFloat:
		switch len(b) {
		case 4:
			return FloatValue(float64(math.Float32frombits(binary.BigEndian.Uint32(b)))), nil
		case 8:
			return FloatValue(math.Float64frombits(binary.BigEndian.Uint64(b))), nil
		}
		return Value{}, malformed("float of %d bytes", len(b))
	case TypeBoolean:
		if len(b) != 1 || b[0] > 1 {
			return Value{}, malformed("boolean % x", b)
		}
		return BoolValue(b[0] == 1), nil
	case TypeObjectLink:
		if len(b) != 4 {
			return Value{}, malformed("object link of %d bytes", len(b))
		}
		return ObjectLinkValue(ObjectLink{
			ObjectID:   binary.BigEndian.Uint16(b[0:2]),
			InstanceID: binary.BigEndian.Uint16(b[2:4]),
		}), nil
	}
	return OpaqueValue(slices.Clone(b)), nil
}

func decodeInt(b []byte) (int64, error) {
	switch len(b) {
	case 1:
		return int64(int8(b[0])), nil
	case 2:
		return int64(int16(binary.BigEndian.Uint16(b))), nil
	case 4:
		return int64(int32(binary.BigEndian.Uint32(b))), nil
	case 8:
		return int64(binary.BigEndian.Uint64(b)), nil
	}
	return 0, malformed("integer of %d bytes", len(b))
}

// EncodeTLV encodes n for path p: an *Object for /o as object instance TLVs;
// an *ObjectInstance for /o/i as its resource TLVs (Write), or for /o wrapped
// in one object instance TLV (Create); a *Resource for /o/i/r; a
// *ResourceInstance for /o/i/r/ri. Ids are written in ascending order and
// lengths in their shortest form, so equal nodes give equal bytes.
func EncodeTLV(p Path, n Node) ([]byte, error) {
	mismatch := func() error {
		return fmt.Errorf("%w: %T for %s", ErrNodeMismatch, n, p)
	}
	// last is only called once the level is known to be at least 1.
	last := func() uint16 { return p.ids[p.n-1] }
	switch n := n.(type) {
	case *Object:
		if n == nil || p.Level() != LevelObject || last() != n.ID {
			return nil, mismatch()
		}
		var out []byte
		for _, id := range sortedKeys(n.Instances) {
			oi := n.Instances[id]
			if oi.ID != id {
				return nil, fmt.Errorf("%w: instance %d stored under id %d", ErrNodeMismatch, oi.ID, id)
			}
			var err error
			if out, err = appendInstance(out, oi); err != nil {
				return nil, err
			}
		}
		return out, nil
	case *ObjectInstance:
		switch {
		case n == nil:
		case p.Level() == LevelObject:
			return appendInstance(nil, *n)
		case p.Level() == LevelObjectInstance && last() == n.ID:
			return appendResources(nil, n.Resources)
		}
		return nil, mismatch()
	case *Resource:
		if n == nil || p.Level() != LevelResource || last() != n.ID {
			return nil, mismatch()
		}
		return appendResource(nil, *n)
	case *ResourceInstance:
		if n == nil || p.Level() != LevelResourceInstance || last() != n.ID {
			return nil, mismatch()
		}
		v, err := encodeValue(n.Value)
		if err != nil {
			return nil, err
		}
		return appendTLV(nil, kindResourceInstance, n.ID, v)
	case nil:
		return nil, fmt.Errorf("%w: nil node for %s", ErrNodeMismatch, p)
	}
	return nil, fmt.Errorf("%w: unknown node %T", ErrNodeMismatch, n)
}

func sortedKeys[V any](m map[uint16]V) []uint16 {
	keys := make([]uint16, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func appendInstance(dst []byte, oi ObjectInstance) ([]byte, error) {
	body, err := appendResources(nil, oi.Resources)
	if err != nil {
		return nil, err
	}
	return appendTLV(dst, kindObjectInstance, oi.ID, body)
}

func appendResources(dst []byte, rs map[uint16]Resource) ([]byte, error) {
	for _, id := range sortedKeys(rs) {
		r := rs[id]
		if r.ID != id {
			return nil, fmt.Errorf("%w: resource %d stored under id %d", ErrNodeMismatch, r.ID, id)
		}
		var err error
		if dst, err = appendResource(dst, r); err != nil {
			return nil, err
		}
	}
	return dst, nil
}

func appendResource(dst []byte, r Resource) ([]byte, error) {
	if !r.Multiple {
		v, err := encodeValue(r.Value)
		if err != nil {
			return nil, fmt.Errorf("resource %d: %w", r.ID, err)
		}
		return appendTLV(dst, kindResourceValue, r.ID, v)
	}
	var body []byte
	for _, id := range sortedKeys(r.Instances) {
		v, err := encodeValue(r.Instances[id])
		if err != nil {
			return nil, fmt.Errorf("resource %d instance %d: %w", r.ID, id, err)
		}
		if body, err = appendTLV(body, kindResourceInstance, id, v); err != nil {
			return nil, err
		}
	}
	return appendTLV(dst, kindMultipleResource, r.ID, body)
}

func appendTLV(dst []byte, kind tlvKind, id uint16, value []byte) ([]byte, error) {
	n := len(value)
	if n > maxTLVLength {
		return nil, fmt.Errorf("%w: %s %d: %d bytes exceed the 24-bit tlv length", ErrNodeMismatch, kind, id, n)
	}
	typ := byte(kind) << 6
	if id > 0xff {
		typ |= 0x20
	}
	switch {
	case n <= 7:
		typ |= byte(n)
	case n <= 0xff:
		typ |= 1 << 3
	case n <= 0xffff:
		typ |= 2 << 3
	default:
		typ |= 3 << 3
	}
	dst = append(dst, typ)
	if id > 0xff {
		dst = append(dst, byte(id>>8))
	}
	dst = append(dst, byte(id))
	switch {
	case n <= 7:
	case n <= 0xff:
		dst = append(dst, byte(n))
	case n <= 0xffff:
		dst = append(dst, byte(n>>8), byte(n))
	default:
		dst = append(dst, byte(n>>16), byte(n>>8), byte(n))
	}
	return append(dst, value...), nil
}

// encodeValue returns the TLV value bytes of v: integers and times in the
// shortest of 1, 2, 4 or 8 bytes, floats in 4 bytes when that is exact.
func encodeValue(v Value) ([]byte, error) {
	switch v.typ {
	case TypeString:
		return []byte(v.str), nil
	case TypeInteger, TypeTime:
		return encodeInt(int64(v.num)), nil
	case TypeUnsignedInteger:
		switch u := v.num; {
		case u <= math.MaxUint8:
			return []byte{byte(u)}, nil
		case u <= math.MaxUint16:
			return binary.BigEndian.AppendUint16(nil, uint16(u)), nil
		case u <= math.MaxUint32:
			return binary.BigEndian.AppendUint32(nil, uint32(u)), nil
		default:
			return binary.BigEndian.AppendUint64(nil, u), nil
		}
	case TypeFloat:
		f := math.Float64frombits(v.num)
		if float64(float32(f)) == f {
			return binary.BigEndian.AppendUint32(nil, math.Float32bits(float32(f))), nil
		}
		return binary.BigEndian.AppendUint64(nil, v.num), nil
	case TypeBoolean:
		return []byte{byte(v.num)}, nil
	case TypeOpaque:
		return v.raw, nil
	case TypeObjectLink:
		return binary.BigEndian.AppendUint32(nil, uint32(v.num)), nil
	}
	return nil, fmt.Errorf("%w: a value of type %s cannot be encoded", ErrNodeMismatch, v.typ)
}

func encodeInt(n int64) []byte {
	switch {
	case n >= math.MinInt8 && n <= math.MaxInt8:
		return []byte{byte(n)}
	case n >= math.MinInt16 && n <= math.MaxInt16:
		return binary.BigEndian.AppendUint16(nil, uint16(n))
	case n >= math.MinInt32 && n <= math.MaxInt32:
		return binary.BigEndian.AppendUint32(nil, uint32(n))
	}
	return binary.BigEndian.AppendUint64(nil, uint64(n))
}
