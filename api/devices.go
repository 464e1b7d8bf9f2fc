package api

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/fotahub/fota/delivery/firmware"
	"github.com/fotahub/fota/lwm2m"
)

// Inventory knows the firmware version every device last reported
// (/3/0/3). *lwm2m.Inventory is one.
type Inventory interface {
	Installed(ep string) (string, bool)
}

// Limits on device requests.
const (
	maxBodyBytes      = 64 << 10
	MaxEndpointLength = 255
	MaxIdentityLength = 128 // RFC 4279 section 5.3: at least 128 bytes must be supported
	MaxPSKKeyBytes    = 64
	MaxTags           = 64
	// MinLinkMTU and MaxLinkMTU bound a device's link MTU: 256 bytes
	// still carries 16-byte blocks; 65,535 is the largest IP datagram.
	MinLinkMTU        = 256
	MaxLinkMTU        = 65535
	maxTagKeyLength   = 128
	maxTagValueLength = 1024
)

// DeviceRequest is the body of POST /api/v1/devices and
// PUT /api/v1/devices/{endpoint}.
type DeviceRequest struct {
	Endpoint    string `json:"endpoint"`
	PSKIdentity string `json:"psk_identity,omitempty"`
	// PSKKey is the key in hex.
	PSKKey string            `json:"psk_key,omitempty"`
	Tags   map[string]string `json:"tags,omitempty"`
	// LinkMTU is the IP MTU of the device's link (0: the default);
	// Package URIs serve blocks that fit it.
	LinkMTU int `json:"link_mtu,omitempty"`
	// Class is the device class, which images fit it ("": the class of
	// its installed image).
	Class string `json:"class,omitempty"`
}

// DeviceView is the JSON shape of a device, a registration, or both merged.
// It never carries the PSK key. The registration fields, from
// registration_id on, are present exactly when registered is true.
type DeviceView struct {
	Endpoint string `json:"endpoint"`

	// Provisioned is true when a device record exists for the endpoint.
	Provisioned bool              `json:"provisioned"`
	PSKIdentity string            `json:"psk_identity"`
	HasPSKKey   bool              `json:"has_psk_key"`
	Tags        map[string]string `json:"tags"`
	LinkMTU     int               `json:"link_mtu,omitempty"`
	Class       string            `json:"class,omitempty"`
	CreatedAt   *time.Time        `json:"created_at,omitempty"`
	// FirmwareVersion is the version the device last reported (/3/0/3),
	// when the server knows it.
	FirmwareVersion string `json:"firmware_version,omitempty"`

	// Update summarizes the device's current or last firmware update;
	// absent when it never had one (or updates are not enabled).
	Update *UpdateSummary `json:"update,omitempty"`

	// Registered is true when the endpoint holds a live registration.
	Registered     bool       `json:"registered"`
	RegistrationID string     `json:"registration_id"`
	LwM2MVersion   string     `json:"lwm2m_version"`
	Binding        string     `json:"binding"`
	QueueMode      bool       `json:"queue_mode"`
	Lifetime       int64      `json:"lifetime"` // seconds
	Objects        []string   `json:"objects"`  // CoRE link format, e.g. "</3/0>"
	Identity       string     `json:"identity"` // "nosec", "psk:ID" or "x509:CN"
	Address        string     `json:"address"`
	RegisteredAt   *time.Time `json:"registered_at"`
	LastSeen       *time.Time `json:"last_seen"`
	ExpiresAt      *time.Time `json:"expires_at"`
}

// unregisteredView is DeviceView without the registration fields.
type unregisteredView struct {
	Endpoint        string            `json:"endpoint"`
	Provisioned     bool              `json:"provisioned"`
	PSKIdentity     string            `json:"psk_identity"`
	HasPSKKey       bool              `json:"has_psk_key"`
	Tags            map[string]string `json:"tags"`
	LinkMTU         int               `json:"link_mtu,omitempty"`
	Class           string            `json:"class,omitempty"`
	CreatedAt       *time.Time        `json:"created_at,omitempty"`
	FirmwareVersion string            `json:"firmware_version,omitempty"`
	Update          *UpdateSummary    `json:"update,omitempty"`
	Registered      bool              `json:"registered"`
	RegistrationID  string            `json:"-"`
	LwM2MVersion    string            `json:"-"`
	Binding         string            `json:"-"`
	QueueMode       bool              `json:"-"`
	Lifetime        int64             `json:"-"`
	Objects         []string          `json:"-"`
	Identity        string            `json:"-"`
	Address         string            `json:"-"`
	RegisteredAt    *time.Time        `json:"-"`
	LastSeen        *time.Time        `json:"-"`
	ExpiresAt       *time.Time        `json:"-"`
}

// MarshalJSON leaves out the registration fields of an unregistered
// endpoint, and keeps every field of a registered one, zero or not.
func (v DeviceView) MarshalJSON() ([]byte, error) {
	type full DeviceView // without the method
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false) // objects hold '<' and '>'
	var err error
	if v.Registered {
		if v.Objects == nil {
			v.Objects = []string{}
		}
		err = enc.Encode(full(v))
	} else {
		err = enc.Encode(unregisteredView(v))
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), err
}

// DeviceList is the body of GET /api/v1/devices.
type DeviceList struct {
	Devices []DeviceView `json:"devices"`
}

// RegistrationList is the body of GET /api/v1/registrations.
type RegistrationList struct {
	Registrations []DeviceView `json:"registrations"`
}

func newView(endpoint string, d *lwm2m.Device, r *lwm2m.Registration) DeviceView {
	v := DeviceView{Endpoint: endpoint, Tags: map[string]string{}}
	if d != nil {
		v.Provisioned = true
		v.PSKIdentity = d.PSKIdentity
		v.HasPSKKey = len(d.PSKKey) > 0
		for k, val := range d.Tags {
			v.Tags[k] = val
		}
		v.LinkMTU = d.LinkMTU
		v.Class = d.Class
		v.CreatedAt = timePtr(d.CreatedAt)
	}
	if r != nil {
		v.Registered = true
		v.RegistrationID = r.ID
		v.LwM2MVersion = r.Version
		v.Binding = r.Binding
		v.QueueMode = r.Queue
		v.Lifetime = int64(r.Lifetime / time.Second)
		v.Objects = make([]string, len(r.Objects))
		for i, l := range r.Objects {
			v.Objects[i] = formatLink(l)
		}
		v.Identity = r.Identity.String()
		v.Address = r.Address
		v.RegisteredAt = timePtr(r.RegisteredAt)
		v.LastSeen = timePtr(r.LastSeen)
		if !r.LastSeen.IsZero() {
			v.ExpiresAt = timePtr(r.Expires())
		}
	}
	return v
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}

// formatLink writes l in CoRE link format (RFC 6690). Values are quoted
// when they are not plain tokens, and always for rt, if, rel, anchor and
// title, whose grammar asks for quoted strings.
func formatLink(l lwm2m.Link) string {
	var b strings.Builder
	b.WriteByte('<')
	b.WriteString(l.Path)
	b.WriteByte('>')
	for _, a := range l.Attrs {
		b.WriteByte(';')
		b.WriteString(a.Key)
		if a.Value == "" {
			continue
		}
		b.WriteByte('=')
		if needsQuotes(a.Key, a.Value) {
			b.WriteByte('"')
			for _, c := range a.Value {
				if c == '"' || c == '\\' {
					b.WriteByte('\\')
				}
				b.WriteRune(c)
			}
			b.WriteByte('"')
		} else {
			b.WriteString(a.Value)
		}
	}
	return b.String()
}

func needsQuotes(key, value string) bool {
	switch key {
	case "rt", "if", "rel", "anchor", "title":
		return true
	}
	for _, c := range value {
		// ptoken characters of RFC 6690 section 2.
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.ContainsRune("!#$%&'()*+-./:<=>?@[]^_`{|}~", c):
		default:
			return true
		}
	}
	return false
}

func (s *Server) listDevices(w http.ResponseWriter, r *http.Request) {
	devices, err := s.devices.Devices(r.Context())
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	list := DeviceList{Devices: make([]DeviceView, 0, len(devices))}
	for i := range devices {
		d := &devices[i]
		var reg *lwm2m.Registration
		if rg, ok := s.regs.Lookup(d.Endpoint); ok {
			reg = &rg
		}
		list.Devices = append(list.Devices, s.view(d.Endpoint, d, reg))
	}
	writeJSON(w, http.StatusOK, list)
}

func (s *Server) listRegistrations(w http.ResponseWriter, r *http.Request) {
	devices, err := s.devices.Devices(r.Context())
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	byEndpoint := make(map[string]*lwm2m.Device, len(devices))
	for i := range devices {
		byEndpoint[devices[i].Endpoint] = &devices[i]
	}
	regs := append([]lwm2m.Registration(nil), s.regs.Registrations()...) // sort our own copy
	sort.Slice(regs, func(i, j int) bool { return regs[i].Endpoint < regs[j].Endpoint })
	list := RegistrationList{Registrations: make([]DeviceView, 0, len(regs))}
	for i := range regs {
		rg := &regs[i]
		list.Registrations = append(list.Registrations, s.view(rg.Endpoint, byEndpoint[rg.Endpoint], rg))
	}
	writeJSON(w, http.StatusOK, list)
}

func (s *Server) showDevice(w http.ResponseWriter, r *http.Request) {
	endpoint := r.PathValue("endpoint")
	var dev *lwm2m.Device
	d, err := s.devices.Device(r.Context(), endpoint)
	switch {
	case err == nil:
		dev = &d
	case errors.Is(err, lwm2m.ErrNotFound):
	default:
		s.internalError(w, r, err)
		return
	}
	var reg *lwm2m.Registration
	if rg, ok := s.regs.Lookup(endpoint); ok {
		reg = &rg
	}
	if dev == nil && reg == nil {
		writeError(w, http.StatusNotFound, fmt.Sprintf("device %q not found: it is neither provisioned nor registered", endpoint))
		return
	}
	writeJSON(w, http.StatusOK, s.view(endpoint, dev, reg))
}

func (s *Server) createDevice(w http.ResponseWriter, r *http.Request) {
	req, ok := s.decodeDevice(w, r)
	if !ok {
		return
	}
	dev, msg := req.device()
	if msg != "" {
		writeError(w, http.StatusBadRequest, msg)
		return
	}

	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	_, err := s.devices.Device(r.Context(), dev.Endpoint)
	switch {
	case err == nil:
		writeError(w, http.StatusConflict, fmt.Sprintf(
			"device %q already exists; use PUT /api/v1/devices/%s to replace it", dev.Endpoint, url.PathEscape(dev.Endpoint)))
		return
	case !errors.Is(err, lwm2m.ErrNotFound):
		s.internalError(w, r, err)
		return
	}
	dev.CreatedAt = s.now().UTC().Truncate(time.Second)
	if !s.put(w, r, dev) {
		return
	}
	writeJSON(w, http.StatusCreated, s.viewOf(&dev))
}

func (s *Server) replaceDevice(w http.ResponseWriter, r *http.Request) {
	endpoint := r.PathValue("endpoint")
	req, ok := s.decodeDevice(w, r)
	if !ok {
		return
	}
	if req.Endpoint != "" && req.Endpoint != endpoint {
		writeError(w, http.StatusBadRequest, fmt.Sprintf(
			"endpoint %q in the body does not match %q in the path", req.Endpoint, endpoint))
		return
	}
	req.Endpoint = endpoint
	dev, msg := req.device()
	if msg != "" {
		writeError(w, http.StatusBadRequest, msg)
		return
	}

	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	status := http.StatusOK
	old, err := s.devices.Device(r.Context(), endpoint)
	switch {
	case err == nil:
		dev.CreatedAt = old.CreatedAt
	case errors.Is(err, lwm2m.ErrNotFound):
		status = http.StatusCreated
		dev.CreatedAt = s.now().UTC().Truncate(time.Second)
	default:
		s.internalError(w, r, err)
		return
	}
	if !s.put(w, r, dev) {
		return
	}
	writeJSON(w, status, s.viewOf(&dev))
}

func (s *Server) deleteDevice(w http.ResponseWriter, r *http.Request) {
	endpoint := r.PathValue("endpoint")
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	err := s.devices.DeleteDevice(r.Context(), endpoint)
	switch {
	case err == nil:
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusNoContent)
	case errors.Is(err, lwm2m.ErrNotFound):
		writeError(w, http.StatusNotFound, fmt.Sprintf("device %q not found", endpoint))
	default:
		s.internalError(w, r, err)
	}
}

// put stores dev and writes the error response if that fails.
func (s *Server) put(w http.ResponseWriter, r *http.Request, dev lwm2m.Device) bool {
	err := s.devices.PutDevice(r.Context(), dev)
	switch {
	case err == nil:
		return true
	case errors.Is(err, lwm2m.ErrExists):
		writeError(w, http.StatusConflict, fmt.Sprintf(
			"psk_identity %q is already used by another device", dev.PSKIdentity))
	default:
		s.internalError(w, r, err)
	}
	return false
}

func (s *Server) viewOf(d *lwm2m.Device) DeviceView {
	var reg *lwm2m.Registration
	if rg, ok := s.regs.Lookup(d.Endpoint); ok {
		reg = &rg
	}
	return s.view(d.Endpoint, d, reg)
}

// view is newView with the firmware version the inventory knows.
func (s *Server) view(endpoint string, d *lwm2m.Device, r *lwm2m.Registration) DeviceView {
	v := newView(endpoint, d, r)
	if s.inventory != nil {
		v.FirmwareVersion, _ = s.inventory.Installed(endpoint)
	}
	if s.updates != nil {
		if u, ok := s.updates.Status(endpoint); ok {
			uv := s.updateView(u)
			v.Update = &UpdateSummary{Phase: uv.Phase, Progress: uv.Progress, Result: uv.Result,
				ResultText: uv.ResultText, Version: uv.Version, Changed: uv.Changed}
		}
	}
	return v
}

// UpdateSummary is the part of a device's update a device list shows.
type UpdateSummary struct {
	Phase      string    `json:"phase"`
	Progress   float64   `json:"progress"`
	Result     int       `json:"result"`
	ResultText string    `json:"result_text"`
	Version    string    `json:"version,omitempty"`
	Changed    time.Time `json:"changed"`
}

// internalError logs err, which may name internals, and answers with a
// generic message.
func (s *Server) internalError(w http.ResponseWriter, r *http.Request, err error) {
	s.log.Error().Err(err).Str("method", r.Method).Str("path", r.URL.Path).Msg("api request failed")
	writeError(w, http.StatusInternalServerError, "internal error")
}

// decodeDevice reads a DeviceRequest, answering 400 or 413 itself when the
// body is not one.
func (s *Server) decodeDevice(w http.ResponseWriter, r *http.Request) (DeviceRequest, bool) {
	var req DeviceRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	dec.DisallowUnknownFields()
	err := dec.Decode(&req)
	if err == nil {
		if _, tail := dec.Token(); tail == io.EOF {
			return req, true
		}
		writeError(w, http.StatusBadRequest, "unexpected data after the JSON object")
		return req, false
	}
	var tooBig *http.MaxBytesError
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &tooBig):
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body larger than %d bytes", maxBodyBytes))
	case errors.Is(err, io.EOF):
		writeError(w, http.StatusBadRequest, "empty request body: send a JSON device object")
	case errors.As(err, &syntax), errors.Is(err, io.ErrUnexpectedEOF):
		writeError(w, http.StatusBadRequest, "malformed JSON in request body")
	case errors.As(err, &typ) && typ.Field == "":
		writeError(w, http.StatusBadRequest, "request body must be a JSON object")
	case errors.As(err, &typ):
		// The message names the field and types, never the value.
		writeError(w, http.StatusBadRequest, fmt.Sprintf("field %q must be a JSON %s", typ.Field, jsonType(typ.Type.Kind().String())))
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		writeError(w, http.StatusBadRequest, strings.TrimPrefix(err.Error(), "json: ")+
			`; known fields are "endpoint", "psk_identity", "psk_key", "tags", "link_mtu" and "class"`)
	default:
		writeError(w, http.StatusBadRequest, "invalid request body: "+err.Error())
	}
	return req, false
}

func jsonType(kind string) string {
	switch kind {
	case "map", "struct":
		return "object"
	case "slice", "array":
		return "array"
	}
	return kind
}

// device validates req and converts it. A non-empty message says what is
// wrong; it never includes the key.
func (req *DeviceRequest) device() (lwm2m.Device, string) {
	var d lwm2m.Device
	if msg := checkName("endpoint", req.Endpoint, MaxEndpointLength); msg != "" {
		return d, msg
	}
	if req.PSKIdentity != "" {
		if msg := checkIdentity(req.PSKIdentity); msg != "" {
			return d, msg
		}
	}
	switch {
	case req.PSKIdentity != "" && req.PSKKey == "":
		return d, "psk_identity given without psk_key: a PSK device needs both"
	case req.PSKIdentity == "" && req.PSKKey != "":
		return d, "psk_key given without psk_identity: a PSK device needs both"
	}
	var key []byte
	if req.PSKKey != "" {
		var err error
		key, err = hex.DecodeString(req.PSKKey)
		if err != nil {
			return d, "psk_key must be an even number of hex digits (0-9, a-f)"
		}
		if len(key) > MaxPSKKeyBytes {
			return d, fmt.Sprintf("psk_key is %d bytes; at most %d are allowed", len(key), MaxPSKKeyBytes)
		}
	}
	if req.LinkMTU != 0 && (req.LinkMTU < MinLinkMTU || req.LinkMTU > MaxLinkMTU) {
		return d, fmt.Sprintf("link_mtu %d is outside %d-%d bytes", req.LinkMTU, MinLinkMTU, MaxLinkMTU)
	}
	if req.Class != "" {
		if err := firmware.CheckClass(req.Class); err != nil {
			return d, strings.TrimPrefix(err.Error(), firmware.ErrInvalid.Error()+": ")
		}
	}
	if len(req.Tags) > MaxTags {
		return d, fmt.Sprintf("%d tags; at most %d are allowed", len(req.Tags), MaxTags)
	}
	var tags map[string]string
	if len(req.Tags) > 0 {
		tags = make(map[string]string, len(req.Tags))
	}
	for k, v := range req.Tags {
		switch {
		case k == "":
			return d, "tag names must not be empty"
		case len(k) > maxTagKeyLength:
			return d, fmt.Sprintf("tag name %.20q... is longer than %d bytes", k, maxTagKeyLength)
		case len(v) > maxTagValueLength:
			return d, fmt.Sprintf("tag %q has a value longer than %d bytes", k, maxTagValueLength)
		case !utf8.ValidString(k) || !utf8.ValidString(v):
			return d, fmt.Sprintf("tag %q is not valid UTF-8", k)
		}
		tags[k] = v
	}
	return lwm2m.Device{
		Endpoint:    req.Endpoint,
		PSKIdentity: req.PSKIdentity,
		PSKKey:      key,
		Tags:        tags,
		LinkMTU:     req.LinkMTU,
		Class:       req.Class,
	}, ""
}

// checkIdentity validates a PSK identity: bounded, valid UTF-8, no control
// characters, no leading or trailing white space.
func checkIdentity(v string) string {
	switch {
	case len(v) > MaxIdentityLength:
		return fmt.Sprintf("psk_identity is %d bytes; at most %d are allowed", len(v), MaxIdentityLength)
	case !utf8.ValidString(v):
		return "psk_identity is not valid UTF-8"
	case strings.TrimSpace(v) != v:
		return fmt.Sprintf("psk_identity %q has leading or trailing white space", v)
	case strings.IndexFunc(v, unicode.IsControl) >= 0:
		return fmt.Sprintf("psk_identity %q contains a control character", v)
	}
	return ""
}

// checkName validates an endpoint name: not empty, bounded, valid UTF-8,
// no white space or control characters.
func checkName(field, v string, max int) string {
	switch {
	case v == "":
		return field + " is required"
	case len(v) > max:
		return fmt.Sprintf("%s is %d bytes; at most %d are allowed", field, len(v), max)
	case !utf8.ValidString(v):
		return field + " is not valid UTF-8"
	}
	for _, c := range v {
		if unicode.IsSpace(c) || unicode.IsControl(c) {
			return fmt.Sprintf("%s %q contains white space or a control character", field, v)
		}
	}
	return ""
}
