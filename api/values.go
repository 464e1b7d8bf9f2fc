package api

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/fotahub/fota/coap"
	"github.com/fotahub/fota/lwm2m"
	"github.com/fotahub/fota/lwm2m/model"
)

// ValueView is the JSON shape of one resource value. Value is typed by
// Type: integers and unsigned integers are JSON numbers written exactly
// (no float rounding, whatever their size), floats are numbers or the
// strings "NaN", "+Inf" and "-Inf", booleans true or false, strings
// strings, opaque values base64 strings (standard alphabet, padded),
// times RFC 3339 strings and object links "objectID:instanceID" strings.
// Name is the resource's name in the built-in object model, when the
// model knows it, and Operations what the model allows on it ("R", "W",
// "RW", "E", "none"), so that the console offers only those. Time is when
// the device sampled the value, when it said.
type ValueView struct {
	Path       string          `json:"path"`
	Name       string          `json:"name,omitempty"`
	Operations string          `json:"operations,omitempty"`
	Type       string          `json:"type"`
	Value      json.RawMessage `json:"value"`
	Time       *time.Time      `json:"time,omitempty"`
}

// LinkView is one link of a Discover answer: the path, its name in the
// object model if known (an object's name for object and instance paths,
// a resource's for resource paths), and its attributes (dim, ver, pmin,
// ...; an attribute without a value, such as obs, maps to "").
type LinkView struct {
	Path       string            `json:"path"`
	Name       string            `json:"name,omitempty"`
	Attributes map[string]string `json:"attributes,omitempty"`
}

// ResultView is the JSON shape of a successful operation: the CoAP code
// the device answered with ("2.05"), the content format of its payload as
// a media type (Format) and a number (ContentFormat), both absent when it
// sent none; the values read (read, read-composite, observe), the links of
// a discover, and the path of the instance a create made. Values and
// Links are always present, [] when the operation has none.
type ResultView struct {
	Code          string      `json:"code"`
	Format        string      `json:"format,omitempty"`
	ContentFormat *int        `json:"content_format,omitempty"`
	Values        []ValueView `json:"values"`
	Links         []LinkView  `json:"links"`
	Location      string      `json:"location,omitempty"`
}

// NotificationView is one line of an observe or send stream. Path is the
// observed path, "/" for composite observations and Sends. Initial marks
// the first line of an observe stream: the value when the observation
// was set up. Reestablished marks the first value after fotad set the
// observation up again on a new registration or DTLS session.
type NotificationView struct {
	Endpoint      string      `json:"endpoint"`
	Path          string      `json:"path"`
	Received      time.Time   `json:"received"`
	Initial       bool        `json:"initial,omitempty"`
	Reestablished bool        `json:"reestablished,omitempty"`
	Values        []ValueView `json:"values"`
}

func newResultView(res lwm2m.Result) ResultView {
	v := ResultView{Code: res.Code.String(), Location: res.Location,
		Values: newValueViews(res.Values), Links: make([]LinkView, 0, len(res.Links))}
	if res.Format != coap.NoFormat && res.Format >= 0 {
		f := res.Format
		v.Format, v.ContentFormat = model.FormatName(f), &f
	}
	for _, l := range res.Links {
		v.Links = append(v.Links, newLinkView(l))
	}
	return v
}

func newValueViews(vals []model.PathValue) []ValueView {
	out := make([]ValueView, 0, len(vals))
	names := nameCache{}
	for _, pv := range vals {
		vv := ValueView{
			Path:  pv.Path.String(),
			Type:  pv.Value.Type().String(),
			Value: valueJSON(pv.Value),
		}
		vv.Name, vv.Operations = names.of(pv.Path)
		if !pv.Time.IsZero() {
			t := pv.Time.UTC()
			vv.Time = &t
		}
		out = append(out, vv)
	}
	return out
}

func newLinkView(l lwm2m.Link) LinkView {
	v := LinkView{Path: l.Path}
	if p, err := model.ParsePath(l.Path); err == nil {
		v.Name, _ = nameCache{}.of(p)
	}
	if len(l.Attrs) > 0 {
		v.Attributes = make(map[string]string, len(l.Attrs))
		for _, a := range l.Attrs {
			v.Attributes[a.Key] = a.Value
		}
	}
	return v
}

// nameCache looks names up in the object model, once per object.
type nameCache map[uint16]*model.ObjectModel

// of is the name of the resource p addresses, or of its object for object
// and instance paths, and for resources the operations the model allows
// on it; "" for what the model does not know.
func (c nameCache) of(p model.Path) (name, ops string) {
	m := c.object(p)
	if m == nil {
		return "", ""
	}
	r, ok := p.Resource()
	if !ok {
		return m.Name, ""
	}
	rm, known := m.Resource(r)
	if !known {
		return "", ""
	}
	return rm.Name, rm.Operations.String()
}

// object is the model of p's object, nil when unknown.
func (c nameCache) object(p model.Path) *model.ObjectModel {
	o, ok := p.Object()
	if !ok {
		return nil
	}
	m, seen := c[o]
	if !seen {
		if om, known := model.Lookup(o); known {
			m = &om
		}
		if c != nil {
			c[o] = m
		}
	}
	return m
}

// valueJSON is the JSON form of v; see ValueView.
func valueJSON(v model.Value) json.RawMessage {
	switch v.Type() {
	case model.TypeInteger:
		n, _ := v.AsInteger()
		return json.RawMessage(strconv.FormatInt(n, 10))
	case model.TypeUnsignedInteger:
		n, _ := v.AsUnsigned()
		return json.RawMessage(strconv.FormatUint(n, 10))
	case model.TypeFloat:
		f, _ := v.AsFloat()
		switch {
		case math.IsNaN(f):
			return json.RawMessage(`"NaN"`)
		case math.IsInf(f, 1):
			return json.RawMessage(`"+Inf"`)
		case math.IsInf(f, -1):
			return json.RawMessage(`"-Inf"`)
		}
		return json.RawMessage(strconv.FormatFloat(f, 'g', -1, 64))
	case model.TypeBoolean:
		b, _ := v.AsBool()
		return json.RawMessage(strconv.FormatBool(b))
	case model.TypeString:
		s, _ := v.AsString()
		return jsonString(s)
	case model.TypeOpaque:
		b, _ := v.AsOpaque()
		return jsonString(base64.StdEncoding.EncodeToString(b))
	case model.TypeTime:
		t, _ := v.AsTime()
		return jsonString(t.Format(time.RFC3339))
	case model.TypeObjectLink:
		l, _ := v.AsObjectLink()
		return jsonString(l.String())
	}
	return json.RawMessage("null")
}

func jsonString(s string) json.RawMessage {
	b, _ := marshalNoEscape(s) // a string always marshals
	return b
}

// marshalNoEscape is json.Marshal without HTML escaping and without the
// encoder's trailing newline.
func marshalNoEscape(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// typeNames are the names a request may give a value type, lowercased.
var typeNames = map[string]model.Type{
	"string": model.TypeString, "str": model.TypeString,
	"integer": model.TypeInteger, "int": model.TypeInteger,
	"unsigned integer": model.TypeUnsignedInteger, "unsigned": model.TypeUnsignedInteger,
	"unsigned_integer": model.TypeUnsignedInteger, "unsigned-integer": model.TypeUnsignedInteger,
	"uint":    model.TypeUnsignedInteger,
	"float":   model.TypeFloat,
	"boolean": model.TypeBoolean, "bool": model.TypeBoolean,
	"opaque": model.TypeOpaque,
	"time":   model.TypeTime,
	"objlnk": model.TypeObjectLink, "object link": model.TypeObjectLink, "objectlink": model.TypeObjectLink,
}

// TypeNames lists the value type names requests accept, for messages.
const TypeNames = "string, integer, unsigned (or \"unsigned integer\"), float, boolean, opaque, time, objlnk"

// ParseTypeName reads a value type name: the model's names (Type.String)
// and the short forms in TypeNames, in any case.
func ParseTypeName(s string) (model.Type, bool) {
	t, ok := typeNames[strings.ToLower(strings.TrimSpace(s))]
	return t, ok
}

// scalarText is the text of a JSON string, number or boolean: the
// string's content, the number as written, "true" or "false". ok is false
// for an absent value or null.
func scalarText(raw json.RawMessage) (text string, ok bool, err error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return "", false, nil
	}
	switch raw[0] {
	case '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", false, err
		}
		return s, true, nil
	case 't', 'f':
		var b bool
		if err := json.Unmarshal(raw, &b); err != nil {
			return "", false, err
		}
		return strconv.FormatBool(b), true, nil
	case '{', '[':
		return "", false, fmt.Errorf("must be a JSON string, number or boolean")
	}
	var n json.Number
	if err := json.Unmarshal(raw, &n); err != nil {
		return "", false, err
	}
	return n.String(), true, nil
}

// sortedAttrs turns an attributes object into link attributes, sorted
// by name so that the query the device gets does not depend on map order.
func sortedAttrs(m map[string]string) []lwm2m.LinkAttr {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]lwm2m.LinkAttr, len(keys))
	for i, k := range keys {
		out[i] = lwm2m.LinkAttr{Key: k, Value: m[k]}
	}
	return out
}
