package lwm2m

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/fotahub/fota/coap"
	"github.com/fotahub/fota/lwm2m/model"
)

// OpKind names a device-management operation (OMA LwM2M Core §6.3, the
// Device Management and Information Reporting interfaces).
type OpKind uint8

// Operations a server sends to a registered client.
const (
	OpRead OpKind = iota + 1
	OpDiscover
	OpWrite
	OpWriteAttributes
	OpExecute
	OpCreate
	OpDelete
	OpReadComposite
	OpObserve
	OpObserveComposite
)

var opNames = map[OpKind]string{
	OpRead: "read", OpDiscover: "discover", OpWrite: "write", OpWriteAttributes: "write-attributes",
	OpExecute: "execute", OpCreate: "create", OpDelete: "delete", OpReadComposite: "read-composite",
	OpObserve: "observe", OpObserveComposite: "observe-composite",
}

func (k OpKind) String() string {
	if n, ok := opNames[k]; ok {
		return n
	}
	return "op(" + strconv.Itoa(int(k)) + ")"
}

// ParseOpKind is the inverse of OpKind.String.
func ParseOpKind(s string) (OpKind, bool) {
	for k, n := range opNames {
		if n == s {
			return k, true
		}
	}
	return 0, false
}

// Op is one operation on one device.
type Op struct {
	Kind OpKind
	// Path is the target: an object, instance, resource or resource
	// instance (the root only for Discover on 1.1+ clients).
	Path model.Path
	// Paths are the targets of Read- and Observe-Composite.
	Paths []model.Path
	// Node is the content of Write (at Path) and Create (an
	// *ObjectInstance; its ID is used when Path names the instance).
	Node model.Node
	// Partial makes Write a partial update (POST) instead of a replace (PUT).
	Partial bool
	// Attributes are the notification attributes of Write-Attributes
	// (pmin, pmax, gt, lt, st, epmin, epmax, edge, con, hqmax); an
	// attribute with an empty value is removed from the target.
	Attributes []LinkAttr
	// Args are Execute's arguments (LwM2M Core §5.4.5: 0='v',1).
	Args string
	// Format overrides the content format picked from the client's
	// version and announced formats; 0 means pick (text/plain cannot be
	// forced this way: use it through single-resource writes, which pick it).
	Format int
}

// Result is a successful operation's outcome.
type Result struct {
	Code coap.Code
	// Format is the content format of the answer, coap.NoFormat if none.
	Format int
	// Node is what Read and Observe returned at the operation's path.
	Node model.Node
	// Values are what Read-/Observe-Composite returned; for Read and
	// Observe, the leaves of Node.
	Values []model.PathValue
	// Links is Discover's answer.
	Links []Link
	// Location is the path of the instance Create made, e.g. "/1/1".
	Location string
}

// notificationAttrs are the Write-Attributes names of LwM2M 1.0-1.2 with
// whether the value is a non-negative integer (else a decimal number).
var notificationAttrs = map[string]bool{
	"pmin": true, "pmax": true, "epmin": true, "epmax": true, "hqmax": true,
	"edge": true, "con": true, "gt": false, "lt": false, "st": false,
}

// validate checks op before it is queued, so that a mistake is reported
// at once and not when the device wakes up.
func (op *Op) validate() error {
	lvl := op.Path.Level()
	switch op.Kind {
	case OpRead, OpObserve:
		if lvl == model.LevelRoot {
			return fmt.Errorf("%s needs an object, instance or resource path", op.Kind)
		}
	case OpDiscover:
	case OpWrite:
		if lvl < model.LevelObjectInstance || op.Node == nil {
			return fmt.Errorf("write needs an instance or resource path and a value")
		}
		if op.Partial && lvl != model.LevelObjectInstance && lvl != model.LevelResource {
			return fmt.Errorf("partial update needs an instance or multiple resource path")
		}
	case OpWriteAttributes:
		if lvl == model.LevelRoot || len(op.Attributes) == 0 {
			return fmt.Errorf("write-attributes needs a path and at least one attribute")
		}
		for _, a := range op.Attributes {
			if err := checkAttribute(a); err != nil {
				return err
			}
		}
	case OpExecute:
		if lvl != model.LevelResource {
			return fmt.Errorf("execute needs a resource path, not %s", op.Path)
		}
		if !utf8.ValidString(op.Args) {
			return fmt.Errorf("execute arguments are not UTF-8")
		}
	case OpCreate:
		if (lvl != model.LevelObject && lvl != model.LevelObjectInstance) || op.Node == nil {
			return fmt.Errorf("create needs an object (or new instance) path and an object instance")
		}
		if _, ok := op.Node.(*model.ObjectInstance); !ok {
			return fmt.Errorf("create needs an object instance, not %T", op.Node)
		}
		if lvl == model.LevelObject && op.Format != 0 && op.Format != model.ContentFormatTLV {
			return fmt.Errorf("create without an instance id needs TLV, not %s", model.FormatName(op.Format))
		}
	case OpDelete:
		if lvl != model.LevelObjectInstance {
			return fmt.Errorf("delete needs an object instance path, not %s", op.Path)
		}
	case OpReadComposite, OpObserveComposite:
		if len(op.Paths) == 0 {
			return fmt.Errorf("%s needs at least one path", op.Kind)
		}
	default:
		return fmt.Errorf("unknown operation %d", op.Kind)
	}
	return nil
}

func checkAttribute(a LinkAttr) error {
	integer, ok := notificationAttrs[a.Key]
	if !ok {
		return fmt.Errorf("unknown notification attribute %q", a.Key)
	}
	if a.Value == "" {
		return nil
	}
	var err error
	if integer {
		_, err = strconv.ParseUint(a.Value, 10, 32)
	} else {
		_, err = strconv.ParseFloat(a.Value, 64)
	}
	if err != nil {
		return fmt.Errorf("attribute %s=%q: not a number", a.Key, a.Value)
	}
	return nil
}

// target is the path string an operation is reported under.
func (op *Op) target() string {
	if len(op.Paths) == 0 {
		return op.Path.String()
	}
	s := make([]string, len(op.Paths))
	for i, p := range op.Paths {
		s[i] = p.String()
	}
	return strings.Join(s, ",")
}

// request builds the CoAP request for op to a client with registration reg.
func (op *Op) request(reg *Registration) (coap.Request, error) {
	path := reg.rootPrefix() + op.Path.String()
	switch op.Kind {
	case OpRead, OpObserve:
		req := coap.NewRequest(coap.GET, path)
		req.Accept = op.format(reg, false)
		return req, nil
	case OpDiscover:
		req := coap.NewRequest(coap.GET, path)
		req.Accept = ContentFormatLink
		return req, nil
	case OpWrite:
		method := coap.PUT
		if op.Partial {
			method = coap.POST
		}
		return op.withPayload(coap.NewRequest(method, path), reg, op.Path, op.Node)
	case OpWriteAttributes:
		req := coap.NewRequest(coap.PUT, path)
		for _, a := range op.Attributes {
			q := a.Key
			if a.Value != "" {
				q += "=" + a.Value
			}
			req.Query = append(req.Query, q)
		}
		return req, nil
	case OpExecute:
		req := coap.NewRequest(coap.POST, path)
		if op.Args != "" {
			req.ContentFormat, req.Payload = model.ContentFormatText, []byte(op.Args)
		}
		return req, nil
	case OpCreate:
		o, _ := op.Path.Object()
		req := coap.NewRequest(coap.POST, reg.rootPrefix()+model.ObjectPath(o).String())
		oi := *op.Node.(*model.ObjectInstance)
		if i, ok := op.Path.Instance(); ok {
			// The new instance's id goes in the payload (Core §6.3.6).
			oi.ID = i
			return op.withPayload(req, reg, model.ObjectPath(o), &model.Object{ID: o, Instances: map[uint16]model.ObjectInstance{i: oi}})
		}
		// Without an id only TLV leaves the choice to the client: SenML
		// and the LwM2M formats name every value by its full path.
		body, err := model.EncodeTLV(model.ObjectInstancePath(o, oi.ID), &oi)
		if err != nil {
			return coap.Request{}, fmt.Errorf("encode %s: %w", op.Path, err)
		}
		req.ContentFormat, req.Payload = model.ContentFormatTLV, body
		return req, nil
	case OpDelete:
		return coap.NewRequest(coap.DELETE, path), nil
	case OpReadComposite, OpObserveComposite:
		cf := op.format(reg, true)
		body, err := model.EncodeSenMLPaths(cf, op.Paths)
		if err != nil {
			return coap.Request{}, err
		}
		req := coap.NewRequest(coap.FETCH, reg.rootPrefix()+"/")
		req.ContentFormat, req.Accept, req.Payload = cf, cf, body
		return req, nil
	}
	return coap.Request{}, fmt.Errorf("unknown operation %d", op.Kind)
}

func (op *Op) withPayload(req coap.Request, reg *Registration, p model.Path, n model.Node) (coap.Request, error) {
	cf := op.format(reg, false)
	if op.Format == 0 && p.Level() >= model.LevelResource && !isMultiple(n) {
		// One value: plain text is the one format every client reads
		// (LwM2M Core §6.4.1), except for opaque resources.
		cf = model.ContentFormatText
		if v, err := nodeValue(n); err == nil && v.Type() == model.TypeOpaque {
			cf = model.ContentFormatOpaque
		}
	}
	body, err := model.Encode(cf, p, n)
	if err != nil {
		return coap.Request{}, fmt.Errorf("encode %s as %s: %w", p, model.FormatName(cf), err)
	}
	req.ContentFormat, req.Payload = cf, body
	return req, nil
}

func isMultiple(n model.Node) bool {
	r, ok := n.(*model.Resource)
	return ok && r.Multiple
}

func nodeValue(n model.Node) (model.Value, error) {
	switch n := n.(type) {
	case *model.Resource:
		return n.Value, nil
	case *model.ResourceInstance:
		return n.Value, nil
	}
	return model.Value{}, fmt.Errorf("%T has no single value", n)
}

func (op *Op) format(reg *Registration, composite bool) int {
	switch {
	case op.Format != 0:
		return op.Format
	case composite:
		return compositeFormat(reg)
	}
	return nodeFormat(reg)
}

// rootPrefix is the alternate path the client announced, "" for "/".
func (r *Registration) rootPrefix() string {
	if r.RootPath == "" || r.RootPath == "/" {
		return ""
	}
	return strings.TrimSuffix(r.RootPath, "/")
}

// successCode is the code a client answers op with when it succeeds.
func (op *Op) successCode() coap.Code {
	switch op.Kind {
	case OpWrite, OpWriteAttributes, OpExecute:
		return coap.Changed
	case OpCreate:
		return coap.Created
	case OpDelete:
		return coap.Deleted
	}
	return coap.Content
}

// result interprets the client's answer. An error code becomes an
// *OpError wrapping a CodeError.
func (op *Op) result(ep string, resp coap.Response) (Result, error) {
	if !resp.Code.IsSuccess() {
		e := &OpError{Op: op.Kind.String(), Endpoint: ep, Path: op.target(), Err: CodeError(resp.Code)}
		if utf8.Valid(resp.Payload) && len(resp.Payload) <= 256 {
			e.Diagnostic = string(resp.Payload)
		}
		return Result{}, e
	}
	res := Result{Code: resp.Code, Format: resp.ContentFormat}
	if want := op.successCode(); resp.Code != want && !(resp.Code == coap.Valid && want == coap.Content) {
		return res, op.failed(ep, fmt.Errorf("%w: %s, want %s", ErrUnexpectedResponse, resp.Code, want))
	}
	var err error
	switch op.Kind {
	case OpRead, OpObserve:
		err = res.decodeNode(op.Path, resp)
	case OpReadComposite, OpObserveComposite:
		res.Values, err = model.DecodeValues(resp.ContentFormat, model.RootPath(), resp.Payload)
	case OpDiscover:
		res.Links, err = ParseLinks(resp.Payload)
	case OpCreate:
		if len(resp.LocationPath) > 0 {
			res.Location = "/" + strings.Join(resp.LocationPath, "/")
		}
	}
	if err != nil {
		return res, op.failed(ep, fmt.Errorf("%w: %w", ErrUnexpectedResponse, err))
	}
	return res, nil
}

func (res *Result) decodeNode(p model.Path, resp coap.Response) error {
	cf := resp.ContentFormat
	if cf == coap.NoFormat {
		cf = model.ContentFormatText // RFC 7252 §5.5.2: no Content-Format, take it as text
	}
	n, err := model.Decode(cf, p, resp.Payload)
	if err != nil {
		return err
	}
	res.Node = n
	res.Values, err = model.Flatten(p, n)
	return err
}

func (op *Op) failed(ep string, err error) *OpError {
	return &OpError{Op: op.Kind.String(), Endpoint: ep, Path: op.target(), Err: err}
}
