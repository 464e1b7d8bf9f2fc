package model

import (
	"errors"
	"fmt"
)

// ErrUnsupportedFormat is returned for a content format this package does
// not read or write, or one that cannot carry the node at hand (a single
// value format for an object instance).
var ErrUnsupportedFormat = errors.New("unsupported content format")

// Decode reads a payload of content format cf that answers a request for p
// (a Read, or an Observe notification) into the node at p. Single-value
// formats (text, opaque, CBOR) give a *Resource or *ResourceInstance.
func Decode(cf int, p Path, data []byte) (Node, error) {
	switch cf {
	case ContentFormatTLV:
		return DecodeTLV(p, data)
	case ContentFormatText, ContentFormatOpaque, ContentFormatCBOR:
		v, err := decodeSingle(cf, p, data)
		if err != nil {
			return nil, err
		}
		return singleNode(p, v)
	}
	vals, err := DecodeValues(cf, p, data)
	if err != nil {
		return nil, err
	}
	return BuildNode(p, vals)
}

// DecodeValues reads a payload of content format cf into leaf values.
// base is the path the request addressed: names in the payload that are
// relative (LwM2M JSON without a base name) and single values resolve
// against it. Composite answers and Send use it with the root path.
func DecodeValues(cf int, base Path, data []byte) ([]PathValue, error) {
	switch cf {
	case ContentFormatSenMLJSON:
		return DecodeSenMLJSON(data)
	case ContentFormatSenMLCBOR:
		return DecodeSenMLCBOR(data)
	case ContentFormatLwM2MJSON:
		return DecodeLwM2MJSON(base, data)
	case ContentFormatLwM2MCBOR:
		return DecodeLwM2MCBOR(data)
	case ContentFormatTLV:
		n, err := DecodeTLV(base, data)
		if err != nil {
			return nil, err
		}
		return Flatten(base, n)
	case ContentFormatText, ContentFormatOpaque, ContentFormatCBOR:
		v, err := decodeSingle(cf, base, data)
		if err != nil {
			return nil, err
		}
		return []PathValue{{Path: base, Value: v}}, nil
	}
	return nil, fmt.Errorf("%w: %d", ErrUnsupportedFormat, cf)
}

// Encode writes the node n at p in content format cf, for a Write.
func Encode(cf int, p Path, n Node) ([]byte, error) {
	switch cf {
	case ContentFormatTLV:
		return EncodeTLV(p, n)
	case ContentFormatText, ContentFormatOpaque, ContentFormatCBOR:
		v, err := singleValue(p, n)
		if err != nil {
			return nil, err
		}
		return encodeSingle(cf, v)
	}
	vals, err := Flatten(p, n)
	if err != nil {
		return nil, err
	}
	return EncodeValues(cf, vals)
}

// EncodeValues writes leaf values in a flat content format (SenML, LwM2M
// JSON or CBOR), for Write-Composite and tests; TLV and the single-value
// formats cannot carry a list of paths.
func EncodeValues(cf int, vals []PathValue) ([]byte, error) {
	switch cf {
	case ContentFormatSenMLJSON:
		return EncodeSenMLJSON(vals)
	case ContentFormatSenMLCBOR:
		return EncodeSenMLCBOR(vals)
	case ContentFormatLwM2MJSON:
		return EncodeLwM2MJSON(vals)
	case ContentFormatLwM2MCBOR:
		return EncodeLwM2MCBOR(vals)
	}
	return nil, fmt.Errorf("%w: %d cannot carry a list of values", ErrUnsupportedFormat, cf)
}

// FormatName is the media type of a content format, for messages.
func FormatName(cf int) string {
	switch cf {
	case ContentFormatText:
		return "text/plain"
	case ContentFormatOpaque:
		return "application/octet-stream"
	case ContentFormatCBOR:
		return "application/cbor"
	case ContentFormatSenMLJSON:
		return "application/senml+json"
	case ContentFormatSenMLCBOR:
		return "application/senml+cbor"
	case ContentFormatTLV:
		return "application/vnd.oma.lwm2m+tlv"
	case ContentFormatLwM2MJSON:
		return "application/vnd.oma.lwm2m+json"
	case ContentFormatLwM2MCBOR:
		return "application/vnd.oma.lwm2m+cbor"
	case 40:
		return "application/link-format"
	}
	return fmt.Sprintf("content-format %d", cf)
}

func decodeSingle(cf int, p Path, data []byte) (Value, error) {
	switch cf {
	case ContentFormatText:
		return DecodeText(p, data)
	case ContentFormatOpaque:
		return DecodeOpaque(p, data)
	}
	return DecodeCBORValue(p, data)
}

func encodeSingle(cf int, v Value) ([]byte, error) {
	switch cf {
	case ContentFormatText:
		return EncodeText(v)
	case ContentFormatOpaque:
		return EncodeOpaque(v)
	}
	return EncodeCBORValue(v)
}

// singleNode wraps one value as the node at a resource or resource
// instance path.
func singleNode(p Path, v Value) (Node, error) {
	switch p.Level() {
	case LevelResource:
		r, _ := p.Resource()
		res := SingleResource(r, v)
		return &res, nil
	case LevelResourceInstance:
		ri, _ := p.ResourceInstance()
		return &ResourceInstance{ID: ri, Value: v}, nil
	}
	return nil, fmt.Errorf("%w: a single value cannot answer %s", ErrNodeMismatch, p)
}

// singleValue is the one value of a single resource or resource instance.
func singleValue(p Path, n Node) (Value, error) {
	switch n := n.(type) {
	case *Resource:
		if !n.Multiple {
			return n.Value, nil
		}
	case *ResourceInstance:
		return n.Value, nil
	}
	return Value{}, fmt.Errorf("%w: %T at %s needs a multi-value format", ErrUnsupportedFormat, n, p)
}
