package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/fotahub/fota/lwm2m"
	"github.com/fotahub/fota/lwm2m/model"
)

// OpRequest is the body of POST /api/v1/devices/{endpoint}/ops.
type OpRequest struct {
	// Op is read, discover, write, write-attributes, execute, create,
	// delete or read-composite.
	Op string `json:"op"`
	// Path is the target; discover defaults to "/".
	Path string `json:"path,omitempty"`
	// Paths are the targets of read-composite.
	Paths []string `json:"paths,omitempty"`
	// Value is the value of a write to one resource or resource instance:
	// a JSON string (or number or boolean) read as the resource's type.
	Value json.RawMessage `json:"value,omitempty"`
	// Type is the type of Value, and of Values without a type of their
	// own, for resources the object model does not know (default string).
	Type string `json:"type,omitempty"`
	// Values are the content of a write to an instance or a multiple
	// resource, and of a create.
	Values []ValueRequest `json:"values,omitempty"`
	// Partial makes a write a partial update instead of a replace.
	Partial bool `json:"partial,omitempty"`
	// Attributes are write-attributes' notification attributes; an empty
	// value removes the attribute.
	Attributes map[string]json.RawMessage `json:"attributes,omitempty"`
	// Args are execute's arguments, e.g. "0='v',1".
	Args string `json:"args,omitempty"`
	// Format overrides the content format fotad picks (a CoAP number).
	Format int `json:"format,omitempty"`
	// Async answers 202 with the ticket at once.
	Async bool `json:"async,omitempty"`
	// Wait is how long to wait for the result, a Go duration ("30s");
	// DefaultOpWait when empty, at most MaxOpWait.
	Wait string `json:"wait,omitempty"`
	// Expires is when the operation leaves the queue undone if the device
	// has not woken up: RFC 3339 or a duration from now; fotad's queue
	// expiry (24 h by default) when empty.
	Expires string `json:"expires,omitempty"`
}

// ValueRequest is one value of OpRequest.Values. Path is absolute
// ("/1/0/1") and lies at or below the operation's path, or relative to
// it ("1", "6/0"; for a create on an object path, relative to the new
// instance).
type ValueRequest struct {
	Path  string          `json:"path"`
	Value json.RawMessage `json:"value"`
	Type  string          `json:"type,omitempty"`
}

// observeOp builds the observation of the path= query parameters (several
// make a composite observation) and format=.
func observeOp(q url.Values) (lwm2m.Op, string) {
	var op lwm2m.Op
	raw := q["path"]
	if len(raw) == 0 {
		return op, `path is required: ?path=/3/0/9 (repeat path= for a composite observation)`
	}
	for _, s := range raw {
		p, err := model.ParsePath(s)
		if err != nil {
			return op, err.Error()
		}
		if p.IsRoot() {
			return op, "observe needs an object, instance or resource path, not /"
		}
		op.Paths = append(op.Paths, p)
	}
	if len(op.Paths) == 1 {
		op.Kind, op.Path, op.Paths = lwm2m.OpObserve, op.Paths[0], nil
	} else {
		op.Kind = lwm2m.OpObserveComposite
	}
	if f := q.Get("format"); f != "" {
		n, err := strconv.Atoi(f)
		if err != nil || n < 0 || n > 65535 {
			return op, fmt.Sprintf("format %q is not a content-format number from 0 to 65535", f)
		}
		op.Format = n
	}
	return op, ""
}

// parseWait reads a wait duration: def when empty, at most MaxOpWait.
func parseWait(s string, def time.Duration) (time.Duration, string) {
	if s == "" {
		return def, ""
	}
	d, err := time.ParseDuration(s)
	switch {
	case err != nil:
		return 0, fmt.Sprintf("wait %q is not a duration such as 30s or 2m", s)
	case d < 0:
		return 0, fmt.Sprintf("wait %q is negative", s)
	case d > MaxOpWait:
		return 0, fmt.Sprintf("wait %q is longer than the maximum of %s", s, MaxOpWait)
	}
	return d, ""
}

// timing reads Wait and Expires.
func (req *OpRequest) timing(now time.Time) (time.Duration, time.Time, string) {
	wait, msg := parseWait(req.Wait, DefaultOpWait)
	if msg != "" {
		return 0, time.Time{}, msg
	}
	if req.Expires == "" {
		return wait, time.Time{}, ""
	}
	var expires time.Time
	if t, err := time.Parse(time.RFC3339, req.Expires); err == nil {
		expires = t
	} else if d, err := time.ParseDuration(req.Expires); err == nil {
		expires = now.Add(d)
	} else {
		return 0, time.Time{}, fmt.Sprintf("expires %q is neither RFC 3339 nor a duration such as 1h", req.Expires)
	}
	if !expires.After(now) {
		return 0, time.Time{}, fmt.Sprintf("expires %q is not in the future", req.Expires)
	}
	return wait, expires, ""
}

const opRequestFields = `"op", "path", "paths", "value", "type", "values", "partial", "attributes", "args", ` +
	`"format", "async", "wait" and "expires"`

const opNames = "read, discover, write, write-attributes, execute, create, delete or read-composite"

// op validates req and builds the operation; a non-empty message says
// what is wrong.
func (req *OpRequest) op() (lwm2m.Op, string) {
	var op lwm2m.Op
	if req.Op == "" {
		return op, "op is required: " + opNames
	}
	kind, ok := lwm2m.ParseOpKind(req.Op)
	switch {
	case !ok:
		return op, fmt.Sprintf("unknown op %q: want %s", req.Op, opNames)
	case kind == lwm2m.OpObserve || kind == lwm2m.OpObserveComposite:
		return op, "observe has its own route: GET /api/v1/devices/{endpoint}/observe?path=..."
	case kind == lwm2m.OpRead && req.Path == "" && len(req.Paths) > 0:
		kind = lwm2m.OpReadComposite
	}
	op.Kind = kind

	// Targets.
	if kind == lwm2m.OpReadComposite {
		if req.Path != "" {
			return op, "read-composite takes paths, not path"
		}
		if len(req.Paths) == 0 {
			return op, "read-composite needs paths"
		}
		for _, s := range req.Paths {
			p, err := model.ParsePath(s)
			if err != nil {
				return op, err.Error()
			}
			op.Paths = append(op.Paths, p)
		}
	} else {
		if len(req.Paths) > 0 {
			return op, "paths is only for read-composite; give path"
		}
		switch {
		case req.Path == "" && kind == lwm2m.OpDiscover:
			req.Path = "/"
		case req.Path == "":
			return op, "path is required"
		}
		p, err := model.ParsePath(req.Path)
		if err != nil {
			return op, err.Error()
		}
		op.Path = p
	}

	// Fields that belong to other operations.
	hasValue := len(req.Value) > 0 && string(req.Value) != "null"
	switch {
	case (hasValue || len(req.Values) > 0) && kind != lwm2m.OpWrite && kind != lwm2m.OpCreate:
		return op, fmt.Sprintf("%s takes no value or values", kind)
	case req.Type != "" && !hasValue && len(req.Values) == 0:
		return op, "type given without value or values"
	case req.Partial && kind != lwm2m.OpWrite:
		return op, "partial is only for write"
	case len(req.Attributes) > 0 && kind != lwm2m.OpWriteAttributes:
		return op, "attributes are only for write-attributes"
	case req.Args != "" && kind != lwm2m.OpExecute:
		return op, "args are only for execute"
	case req.Format < 0 || req.Format > 65535:
		return op, fmt.Sprintf("format %d is not a content-format number from 0 to 65535", req.Format)
	}
	op.Partial, op.Args, op.Format = req.Partial, req.Args, req.Format

	switch kind {
	case lwm2m.OpWrite:
		n, msg := req.writeNode(op.Path, hasValue)
		if msg != "" {
			return op, msg
		}
		op.Node = n
	case lwm2m.OpCreate:
		n, msg := req.createNode(op.Path, hasValue)
		if msg != "" {
			return op, msg
		}
		op.Node = n
	case lwm2m.OpWriteAttributes:
		if len(req.Attributes) == 0 {
			return op, `write-attributes needs attributes, e.g. {"pmin":"10","pmax":"60"}`
		}
		attrs := make(map[string]string, len(req.Attributes))
		for k, raw := range req.Attributes {
			v, _, err := scalarText(raw)
			if err != nil {
				return op, fmt.Sprintf("attribute %q %v", k, err)
			}
			attrs[k] = v
		}
		op.Attributes = sortedAttrs(attrs)
	}
	return op, ""
}

// writeNode builds the content of a write at p.
func (req *OpRequest) writeNode(p model.Path, hasValue bool) (model.Node, string) {
	if p.Level() < model.LevelObjectInstance {
		return nil, fmt.Sprintf("write needs an instance, resource or resource instance path, not %s", p)
	}
	switch {
	case hasValue && len(req.Values) > 0:
		return nil, "give value or values, not both"
	case hasValue:
		if p.Level() < model.LevelResource {
			return nil, fmt.Sprintf("value writes one resource: give values to write the instance %s", p)
		}
		pv, msg := typedValue(p, p.String(), req.Value, req.Type, "")
		if msg != "" {
			return nil, msg
		}
		n, err := model.BuildNode(p, []model.PathValue{pv})
		if err != nil {
			return nil, err.Error()
		}
		return n, ""
	case len(req.Values) == 0:
		return nil, "write needs value or values"
	}
	vals, msg := req.pathValues(p, p)
	if msg != "" {
		return nil, msg
	}
	n, err := model.BuildNode(p, vals)
	if err != nil {
		return nil, err.Error()
	}
	return n, ""
}

// createNode builds the object instance a create at p makes.
func (req *OpRequest) createNode(p model.Path, hasValue bool) (model.Node, string) {
	if hasValue {
		return nil, "create takes values, not value"
	}
	var inst model.Path
	switch p.Level() {
	case model.LevelObject:
		o, _ := p.Object()
		inst = model.ObjectInstancePath(o, 0) // the device picks the id
	case model.LevelObjectInstance:
		inst = p
	default:
		return nil, fmt.Sprintf("create needs an object or new instance path, not %s", p)
	}
	vals, msg := req.pathValues(p, inst)
	if msg != "" {
		return nil, msg
	}
	n, err := model.BuildNode(inst, vals)
	if err != nil {
		return nil, err.Error()
	}
	return n, ""
}

// pathValues types and places Values: absolute paths must lie at or below
// target, relative ones are taken from base.
func (req *OpRequest) pathValues(target, base model.Path) ([]model.PathValue, string) {
	vals := make([]model.PathValue, 0, len(req.Values))
	for _, vr := range req.Values {
		var p model.Path
		var err error
		switch {
		case vr.Path == "":
			return nil, "every value needs a path"
		case strings.HasPrefix(vr.Path, "/"):
			if p, err = model.ParsePath(vr.Path); err != nil {
				return nil, err.Error()
			}
			if base != target {
				return nil, fmt.Sprintf("value path %s: a create on %s leaves the instance id to the device, "+
					"so give paths relative to the new instance (\"1\", \"6/0\"), or create %s/ID", vr.Path, target, target)
			}
			if !p.HasPrefix(target) {
				return nil, fmt.Sprintf("value path %s is not below %s", p, target)
			}
		default:
			if p, err = model.ParsePath(base.String() + "/" + vr.Path); err != nil {
				return nil, fmt.Sprintf("value path %q relative to %s: %v", vr.Path, base, err)
			}
		}
		pv, msg := typedValue(p, vr.Path, vr.Value, vr.Type, req.Type)
		if msg != "" {
			return nil, msg
		}
		vals = append(vals, pv)
	}
	return vals, ""
}

// typedValue reads the value at p, of the type the object model gives
// the resource; for a resource the model does not know, of the type
// explicit names, else def, else string. An explicit type that contradicts
// the model is an error; def only applies to unknown resources. name is
// the path as the request gave it, for messages.
func typedValue(p model.Path, name string, raw json.RawMessage, explicit, def string) (model.PathValue, string) {
	pv := model.PathValue{Path: p}
	if l := p.Level(); l != model.LevelResource && l != model.LevelResourceInstance {
		return pv, fmt.Sprintf("value path %s is not a resource or resource instance", name)
	}
	text, ok, err := scalarText(raw)
	switch {
	case err != nil:
		return pv, fmt.Sprintf("value for %s %v", name, err)
	case !ok:
		return pv, fmt.Sprintf("value for %s is missing", name)
	}
	parse := func(s string) (model.Type, string) {
		if s == "" {
			return model.TypeNone, ""
		}
		t, ok := ParseTypeName(s)
		if !ok {
			return t, fmt.Sprintf("unknown type %q for %s: want %s", s, name, TypeNames)
		}
		return t, ""
	}
	given, msg := parse(explicit)
	if msg != "" {
		return pv, msg
	}
	fallback, msg := parse(def)
	if msg != "" {
		return pv, msg
	}
	t := model.TypeString
	switch {
	case given != model.TypeNone:
		t = given
	case fallback != model.TypeNone:
		t = fallback
	}
	o, _ := p.Object()
	r, _ := p.Resource()
	if om, known := model.Lookup(o); known {
		if rm, known := om.Resources[r]; known {
			switch {
			case rm.Type == model.TypeNone:
				return pv, fmt.Sprintf("%s (%s) is executable and has no value", p, rm.Name)
			case rm.Multiple && p.Level() == model.LevelResource:
				return pv, fmt.Sprintf("%s (%s) is a multiple-instance resource: give values for its instances, e.g. %s/0",
					p, rm.Name, p)
			case !rm.Multiple && p.Level() == model.LevelResourceInstance:
				return pv, fmt.Sprintf("%s (%s) is a single-instance resource: write %s", p.Parent(), rm.Name, p.Parent())
			case given != model.TypeNone && given != rm.Type:
				return pv, fmt.Sprintf("type %s given for %s, which the object model types %s", given, p, rm.Type)
			}
			t = rm.Type
		}
	}
	v, err := model.ParseValue(t, text)
	if err != nil {
		return pv, fmt.Sprintf("value for %s: %v", name, err)
	}
	pv.Value = v
	return pv, ""
}

// decodeBody reads a JSON object into v, answering 400 or 413 itself when
// the body is not one; what names the object, fields the known fields.
func decodeBody(w http.ResponseWriter, r *http.Request, v any, what, fields string) bool {
	return decodeBodyMax(w, r, v, maxBodyBytes, what, fields)
}

// decodeBodyMax is decodeBody for bodies of at most limit bytes.
func decodeBodyMax(w http.ResponseWriter, r *http.Request, v any, limit int64, what, fields string) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, limit))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		if _, tail := dec.Token(); tail == io.EOF {
			return true
		}
		writeError(w, http.StatusBadRequest, "unexpected data after the JSON object")
		return false
	}
	var tooBig *http.MaxBytesError
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &tooBig):
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body larger than %d bytes", limit))
	case errors.Is(err, io.EOF):
		writeError(w, http.StatusBadRequest, "empty request body: send "+what)
	case errors.As(err, &syntax), errors.Is(err, io.ErrUnexpectedEOF):
		writeError(w, http.StatusBadRequest, "malformed JSON in request body")
	case errors.As(err, &typ) && typ.Field == "":
		writeError(w, http.StatusBadRequest, "request body must be a JSON object")
	case errors.As(err, &typ):
		writeError(w, http.StatusBadRequest, fmt.Sprintf("field %q must be a JSON %s", typ.Field, jsonType(typ.Type.Kind().String())))
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		writeError(w, http.StatusBadRequest, strings.TrimPrefix(err.Error(), "json: ")+"; known fields are "+fields)
	default:
		writeError(w, http.StatusBadRequest, "invalid request body: "+err.Error())
	}
	return false
}
