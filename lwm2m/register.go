package lwm2m

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/fotahub/fota/coap"
)

// This file turns Register and Update requests into plain values and
// decides every response code that depends on the request alone (4.00 and
// 4.12). Identity and state checks (4.03, 4.04) are the registry's.

// LwM2M enabler versions the server speaks.
const (
	Version10 = "1.0"
	Version11 = "1.1"
	Version12 = "1.2"
)

// Registration defaults and limits.
const (
	// DefaultLifetime applies when a Register has no lt parameter
	// (LwM2M Core §6.2.1: 86400 s).
	DefaultLifetime = 86400 * time.Second
	// DefaultBinding applies when a Register has no b parameter.
	DefaultBinding = "U"
	// ContentFormatLinkFormat is application/link-format (RFC 6690).
	ContentFormatLinkFormat = 40
	// MaxEndpointLength matches what the device API accepts.
	MaxEndpointLength = 255
	// MaxRegisterPayload bounds the object list a client may announce.
	// Real lists are a few hundred bytes; the limit keeps a hostile client
	// from making the server parse and store megabytes.
	MaxRegisterPayload = 16 << 10
	maxSMSNumberLength = 32
)

// RequestError is a refused registration request: the CoAP response code
// to answer and why.
type RequestError struct {
	Code   coap.Code
	Reason string
	Err    error
}

func (e *RequestError) Error() string {
	if e.Err != nil {
		return e.Code.String() + " " + e.Reason + ": " + e.Err.Error()
	}
	return e.Code.String() + " " + e.Reason
}

func (e *RequestError) Unwrap() error { return e.Err }

func refuse(code coap.Code, format string, args ...any) *RequestError {
	return &RequestError{Code: code, Reason: fmt.Sprintf(format, args...)}
}

// CodeOf returns the response code err asks for: a RequestError's code,
// 5.00 for anything else.
func CodeOf(err error) coap.Code {
	var re *RequestError
	if errors.As(err, &re) {
		return re.Code
	}
	return coap.InternalServerError
}

// RegisterRequest is a parsed and validated Register (POST /rd).
type RegisterRequest struct {
	// Endpoint is empty when a 1.1+ client left it for the server to derive
	// from its credentials.
	Endpoint  string
	Version   string
	Lifetime  time.Duration
	Binding   string
	Queue     bool
	SMSNumber string
	RootPath  string
	// Objects is every link the client sent, the root link included.
	Objects []Link
}

// UpdateRequest is a parsed and validated Update (POST /rd/{id}). Zero
// fields mean "unchanged": the spec lets a client send only what changed.
type UpdateRequest struct {
	Lifetime time.Duration // 0: unchanged (a present lt is always positive)
	Binding  string        // "": unchanged
	// SMSSet says sms was present; an empty SMSNumber then clears it.
	SMSSet    bool
	SMSNumber string
	// QueueParam is the 1.1+ Q parameter.
	QueueParam bool
	// Objects is nil when the update carries no object list.
	Objects  []Link
	RootPath string
}

// query holds the known Uri-Query parameters of one request.
type query map[string]queryValue

type queryValue struct {
	value    string
	hasValue bool // "k=" has an empty value, "k" has none
}

// knownParams are the parameters of Register and Update; others are
// ignored, as the spec asks of unknown parameters.
var knownParams = map[string]bool{"ep": true, "lt": true, "lwm2m": true, "b": true, "sms": true, "Q": true}

// parseQuery collects the known parameters. A known parameter given twice
// is ambiguous and refused.
func parseQuery(opts []string) (query, error) {
	q := query{}
	for _, opt := range opts {
		k, v, hasValue := strings.Cut(opt, "=")
		if !knownParams[k] {
			continue
		}
		if _, dup := q[k]; dup {
			return nil, refuse(coap.BadRequest, "parameter %s given twice", k)
		}
		q[k] = queryValue{value: v, hasValue: hasValue}
	}
	return q, nil
}

// ParseRegister parses and validates a Register request. The version is
// checked first, so that a client of a newer enabler gets 4.12 and can
// fall back even if the rest of its request uses that version's syntax.
func ParseRegister(req *coap.Request) (RegisterRequest, error) {
	q, err := parseQuery(req.Query)
	if err != nil {
		return RegisterRequest{}, err
	}
	r := RegisterRequest{Lifetime: DefaultLifetime, Binding: DefaultBinding}
	if r.Version, err = parseVersion(q); err != nil {
		return RegisterRequest{}, err
	}
	if r.Endpoint, err = parseEndpoint(q, r.Version); err != nil {
		return RegisterRequest{}, err
	}
	if lt, ok, err := parseLifetime(q); err != nil {
		return RegisterRequest{}, err
	} else if ok {
		r.Lifetime = lt
	}
	if v, ok := q["b"]; ok {
		r.Binding = v.value
	}
	if r.Queue, err = parseQueue(q, r.Binding, r.Version); err != nil {
		return RegisterRequest{}, err
	}
	if r.SMSNumber, _, err = parseSMS(q); err != nil {
		return RegisterRequest{}, err
	}
	if len(req.Payload) == 0 {
		return RegisterRequest{}, refuse(coap.BadRequest, "register without object list")
	}
	if r.Objects, r.RootPath, err = parseObjects(req); err != nil {
		return RegisterRequest{}, err
	}
	return r, nil
}

// ParseUpdate parses and validates an Update of a registration made with
// the given enabler version (the binding letters allowed depend on it).
func ParseUpdate(req *coap.Request, version string) (UpdateRequest, error) {
	q, err := parseQuery(req.Query)
	if err != nil {
		return UpdateRequest{}, err
	}
	var u UpdateRequest
	if u.Lifetime, _, err = parseLifetime(q); err != nil {
		return UpdateRequest{}, err
	}
	if v, ok := q["b"]; ok {
		if _, err := parseBinding(v.value, version); err != nil {
			return UpdateRequest{}, err
		}
		u.Binding = v.value
	}
	if u.QueueParam, err = parseQueueParam(q, version); err != nil {
		return UpdateRequest{}, err
	}
	if u.SMSNumber, u.SMSSet, err = parseSMS(q); err != nil {
		return UpdateRequest{}, err
	}
	if err := checkContentFormat(req.ContentFormat); err != nil {
		return UpdateRequest{}, err
	}
	if len(req.Payload) > 0 {
		if u.Objects, u.RootPath, err = parseObjects(req); err != nil {
			return UpdateRequest{}, err
		}
	}
	return u, nil
}

// Apply returns reg with the update's changes. LastSeen, Address and
// the session are the registry's business.
func (u UpdateRequest) Apply(reg Registration) Registration {
	if u.Lifetime > 0 {
		reg.Lifetime = u.Lifetime
	}
	if u.SMSSet {
		reg.SMSNumber = u.SMSNumber
	}
	if u.Objects != nil {
		reg.Objects = u.Objects
		reg.RootPath = u.RootPath
	}
	reg.Queue = u.queue(reg)
	if u.Binding != "" {
		reg.Binding = u.Binding
	}
	return reg
}

// queue decides queue mode after an update of reg. In 1.0 the binding
// carries it, so a new binding decides. From 1.1 on the Q flag does, and
// Update does not define it: a queue-mode client that changes binding
// stays in queue mode unless it had asked for queue mode only through a
// legacy "UQ"-style binding and now sends one without Q. Erring towards
// queue mode costs a held request; erring the other way sends requests
// to a sleeping device.
func (u UpdateRequest) queue(reg Registration) bool {
	if reg.Version == Version10 {
		if u.Binding == "" {
			return reg.Queue
		}
		return strings.Contains(u.Binding, "Q")
	}
	switch {
	case u.QueueParam:
		return true
	case u.Binding == "":
		return reg.Queue
	case strings.Contains(u.Binding, "Q"):
		return true
	case strings.Contains(reg.Binding, "Q"):
		return false
	}
	return reg.Queue
}

// parseVersion returns the lwm2m parameter, "1.0" when absent. A
// well-formed version the server does not speak is 4.12 (LwM2M 1.1 Core
// §6.2.1: the client then retries with an older version); anything else
// that is not a version is 4.00.
func parseVersion(q query) (string, error) {
	v, ok := q["lwm2m"]
	if !ok {
		return Version10, nil
	}
	if !isVersion(v.value) {
		return "", refuse(coap.BadRequest, "malformed lwm2m version %q", v.value)
	}
	switch v.value {
	case Version10, Version11, Version12:
		return v.value, nil
	}
	return "", refuse(coap.PreconditionFailed, "unsupported lwm2m version %s", v.value)
}

// isVersion matches major.minor with no leading zeros, at most 3 digits each.
func isVersion(s string) bool {
	major, minor, ok := strings.Cut(s, ".")
	return ok && isVersionNumber(major) && isVersionNumber(minor)
}

func isVersionNumber(s string) bool {
	if s == "" || len(s) > 3 || (len(s) > 1 && s[0] == '0') {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// parseEndpoint returns ep. It is mandatory in 1.0; from 1.1 on a client
// may omit it and the registry derives it from the credentials.
func parseEndpoint(q query, version string) (string, error) {
	v, ok := q["ep"]
	if !ok {
		if version == Version10 {
			return "", refuse(coap.BadRequest, "missing endpoint name (ep)")
		}
		return "", nil
	}
	if err := checkEndpoint(v.value); err != nil {
		return "", err
	}
	return v.value, nil
}

// checkEndpoint refuses names that cannot serve as a key and a log field.
func checkEndpoint(ep string) error {
	switch {
	case ep == "":
		return refuse(coap.BadRequest, "empty endpoint name")
	case len(ep) > MaxEndpointLength:
		return refuse(coap.BadRequest, "endpoint name longer than %d bytes", MaxEndpointLength)
	case !utf8.ValidString(ep):
		return refuse(coap.BadRequest, "endpoint name is not UTF-8")
	case strings.ContainsFunc(ep, isControl):
		return refuse(coap.BadRequest, "control character in endpoint name")
	}
	return nil
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// parseLifetime returns lt and whether it was given. It must be a positive
// number of seconds that fits the 32-bit unsigned Lifetime resource.
func parseLifetime(q query) (time.Duration, bool, error) {
	v, ok := q["lt"]
	if !ok {
		return 0, false, nil
	}
	n, err := strconv.ParseUint(v.value, 10, 32)
	if err != nil || n == 0 {
		return 0, false, refuse(coap.BadRequest, "lifetime %q is not a positive integer below 2^32", v.value)
	}
	return time.Duration(n) * time.Second, true, nil
}

// parseQueue validates the binding for the version and returns whether
// the client asked for queue mode: Q in the binding (1.0, and tolerated
// from 1.1 clients that still send "UQ") or the Q parameter (1.1+).
func parseQueue(q query, binding, version string) (bool, error) {
	inBinding, err := parseBinding(binding, version)
	if err != nil {
		return false, err
	}
	param, err := parseQueueParam(q, version)
	if err != nil {
		return false, err
	}
	return inBinding || param, nil
}

// parseQueueParam returns whether the 1.1+ Q flag is present. The flag
// has no value; 1.0 does not define it, so there it is an unknown
// parameter and ignored.
func parseQueueParam(q query, version string) (bool, error) {
	v, ok := q["Q"]
	if !ok || version == Version10 {
		return false, nil
	}
	if v.value != "" {
		return false, refuse(coap.BadRequest, "queue flag Q takes no value")
	}
	return true, nil
}

// bindings10 are the binding modes of LwM2M 1.0 (Core §5.3.1.1).
var bindings10 = map[string]bool{"U": true, "UQ": true, "S": true, "SQ": true, "US": true, "UQS": true}

// bindingLetters are the transports each version knows: UDP, SMS, TCP,
// Non-IP, then MQTT and HTTP in 1.2.
var bindingLetters = map[string]string{Version11: "USTN", Version12: "USTNMH"}

// parseBinding validates b for the version and reports whether it
// carries a queue-mode Q.
func parseBinding(b, version string) (bool, error) {
	if version == Version10 {
		if !bindings10[b] {
			return false, refuse(coap.BadRequest, "binding %q is not a LwM2M 1.0 binding", b)
		}
		return strings.Contains(b, "Q"), nil
	}
	letters := bindingLetters[version]
	var seen [128]bool
	transports := 0
	for i := 0; i < len(b); i++ {
		c := b[i]
		if c >= utf8.RuneSelf || (c != 'Q' && strings.IndexByte(letters, c) < 0) {
			return false, refuse(coap.BadRequest, "binding %q: %q is not a LwM2M %s binding", b, c, version)
		}
		if seen[c] {
			return false, refuse(coap.BadRequest, "binding %q repeats %q", b, c)
		}
		seen[c] = true
		if c != 'Q' {
			transports++
		}
	}
	if transports == 0 {
		return false, refuse(coap.BadRequest, "binding %q names no transport", b)
	}
	return seen['Q'], nil
}

// parseSMS returns the sms parameter (the client's MSISDN) and whether
// it was given.
func parseSMS(q query) (string, bool, error) {
	v, ok := q["sms"]
	if !ok {
		return "", false, nil
	}
	if len(v.value) > maxSMSNumberLength || strings.ContainsFunc(v.value, isControl) || !utf8.ValidString(v.value) {
		return "", false, refuse(coap.BadRequest, "malformed sms number")
	}
	return v.value, true, nil
}

// parseObjects parses the object list and finds the root path. The
// Content-Format must be link-format or absent (a client may leave the
// default implied).
func parseObjects(req *coap.Request) ([]Link, string, error) {
	if err := checkContentFormat(req.ContentFormat); err != nil {
		return nil, "", err
	}
	if len(req.Payload) > MaxRegisterPayload {
		return nil, "", refuse(coap.RequestEntityTooLarge, "object list larger than %d bytes", MaxRegisterPayload)
	}
	links, err := ParseLinks(req.Payload)
	if err != nil {
		return nil, "", &RequestError{Code: coap.BadRequest, Reason: "malformed object list", Err: err}
	}
	if len(links) == 0 {
		return nil, "", refuse(coap.BadRequest, "empty object list")
	}
	root, err := checkObjects(links)
	if err != nil {
		return nil, "", &RequestError{Code: coap.BadRequest, Reason: "invalid object list", Err: err}
	}
	return links, root, nil
}

// checkContentFormat refuses an object list in anything but link-format.
// The spec answers 4.00 here (not CoAP's 4.15): a Register with a wrong
// payload is a bad request, whatever its format.
func checkContentFormat(cf int) error {
	if cf != coap.NoFormat && cf != ContentFormatLinkFormat {
		return refuse(coap.BadRequest, "object list in content format %d, want link-format (40)", cf)
	}
	return nil
}

// checkObjects returns the root path, the target of the link whose rt
// includes "oma.lwm2m" ("/" if none), and checks that every link under it
// is an object or object instance (Core §6.2.1: the list names objects
// and instances only). Links outside the root path are the client's own
// resources and are kept as they are, as Leshan does.
func checkObjects(links []Link) (string, error) {
	root := "/"
	for _, l := range links {
		if rt, ok := l.Attr("rt"); ok && hasToken(rt, "oma.lwm2m") {
			root = l.Path
			break
		}
	}
	if err := checkRootPath(root); err != nil {
		return "", err
	}
	for _, l := range links {
		rel, under := underRoot(l.Path, root)
		if !under || rel == "" {
			continue
		}
		if err := checkObjectPath(rel); err != nil {
			return "", fmt.Errorf("link <%s>: %w", l.Path, err)
		}
	}
	return root, nil
}

// hasToken reports whether the space-separated list s contains tok
// (rt may hold several resource types).
func hasToken(s, tok string) bool {
	for _, f := range strings.Fields(s) {
		if f == tok {
			return true
		}
	}
	return false
}

// checkRootPath accepts "/" or an absolute path of non-numeric segments
// ("/lwm2m"): a numeric segment would make objects ambiguous.
func checkRootPath(root string) error {
	if root == "/" {
		return nil
	}
	if !strings.HasPrefix(root, "/") || strings.HasSuffix(root, "/") {
		return fmt.Errorf("root path %q must be absolute without a trailing '/'", root)
	}
	for _, seg := range strings.Split(root[1:], "/") {
		if seg == "" || strings.ContainsAny(seg, "?#") {
			return fmt.Errorf("root path %q is not a plain path", root)
		}
		if _, err := strconv.Atoi(seg); err == nil {
			return fmt.Errorf("root path %q has a numeric segment", root)
		}
	}
	return nil
}

// underRoot returns path relative to root ("" for the root itself, else
// starting with "/") and whether path lies under root at all.
func underRoot(path, root string) (string, bool) {
	if root == "/" {
		if path == "/" {
			return "", true
		}
		return path, strings.HasPrefix(path, "/")
	}
	if path == root {
		return "", true
	}
	if rel, ok := strings.CutPrefix(path, root); ok && strings.HasPrefix(rel, "/") {
		return rel, true
	}
	return "", false
}

// checkObjectPath accepts "/{object}" and "/{object}/{instance}" with ids
// in 0..65535.
func checkObjectPath(rel string) error {
	segs := strings.Split(rel[1:], "/")
	if len(segs) > 2 {
		return fmt.Errorf("not an object or object instance")
	}
	for _, seg := range segs {
		if seg == "" || len(seg) > 5 || strings.Trim(seg, "0123456789") != "" {
			return fmt.Errorf("%q is not a numeric id", seg)
		}
		if n, _ := strconv.Atoi(seg); n > math.MaxUint16 {
			return fmt.Errorf("id %s out of range", seg)
		}
	}
	return nil
}
