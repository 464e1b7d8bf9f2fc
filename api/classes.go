package api

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/fotahub/fota/delivery/firmware"
)

// Classes declares device classes: the kind of package their devices
// take and how fotad delivers it. *firmware.Service is one.
type Classes interface {
	// Class returns the declared class, or the default profile of a class
	// nobody declared (Declared false).
	Class(ctx context.Context, name string) (firmware.Class, error)
	// Classes returns the declared classes and the undeclared classes of
	// stored images, by name.
	Classes(ctx context.Context) ([]firmware.Class, error)
	// PutClass declares the class, replacing one of its name, and returns
	// it as stored: firmware.ErrInvalid for a bad field,
	// firmware.ErrConflict when it holds images of the other profile.
	PutClass(ctx context.Context, c firmware.Class) (firmware.Class, error)
	// RemoveClass removes a declared class: firmware.ErrNotFound when it
	// is not declared, firmware.ErrConflict while it holds images.
	RemoveClass(ctx context.Context, name string) error
}

// ClassView is the JSON shape of a device class, and the body of POST
// /api/v1/classes and PUT /api/v1/classes/{name}, which ignore declared
// and changed and default empty fields (see firmware.Class.Normalize).
type ClassView struct {
	Name    string `json:"name"`
	Profile string `json:"profile"` // native or raw
	// Delta is set when the devices apply fotad's delta packages.
	Delta  bool   `json:"delta"`
	Method string `json:"method"` // auto, pull or push
	// BlockSize caps the Block2 size of downloads; 0: the link's.
	BlockSize int    `json:"block_size"`
	Scheme    string `json:"scheme"` // auto, coaps or coap
	// Deadline bounds one device's update, a Go duration ("36h"); empty
	// for the server's default.
	Deadline string   `json:"deadline"`
	Success  []string `json:"success"` // result, version, package
	// Declared is false for a class fotad knows only from its images,
	// which has the default profile.
	Declared bool      `json:"declared"`
	Changed  time.Time `json:"changed,omitzero"`
}

const classFields = "name, profile, delta, method, block_size, scheme, deadline, success, declared, changed"

// ClassList is the body of GET /api/v1/classes.
type ClassList struct {
	Classes []ClassView `json:"classes"`
}

func classView(c firmware.Class) ClassView {
	v := ClassView{
		Name:      c.Name,
		Profile:   string(c.Profile),
		Delta:     c.Delta,
		Method:    c.Method,
		BlockSize: c.BlockSize,
		Scheme:    c.Scheme,
		Success:   c.Success,
		Declared:  c.Declared,
		Changed:   c.Changed.UTC(),
	}
	if c.Deadline != 0 {
		v.Deadline = formatDuration(c.Deadline)
	}
	if v.Success == nil {
		v.Success = []string{}
	}
	return v
}

// class reads the view as a class to declare, or returns the message of
// a 400.
func (v *ClassView) class() (firmware.Class, string) {
	c := firmware.Class{
		Name:      v.Name,
		Profile:   firmware.Profile(v.Profile),
		Delta:     v.Delta,
		Method:    v.Method,
		BlockSize: v.BlockSize,
		Scheme:    v.Scheme,
		Success:   v.Success,
	}
	if v.Deadline != "" {
		d, err := time.ParseDuration(v.Deadline)
		if err != nil {
			return c, fmt.Sprintf(`"deadline" %q is not a duration such as 36h or 90m; leave it empty for the server's default`, v.Deadline)
		}
		c.Deadline = d
	}
	return c, ""
}

// formatDuration writes d as a Go duration without zero trailing units:
// "36h", "1h30m", "45s".
func formatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

func classPath(name string) string { return "/api/v1/classes/" + url.PathEscape(name) }

// classesOn answers 503 and reports false when classes are off.
func (s *Server) classesOn(w http.ResponseWriter) (Classes, bool) {
	if s.classes == nil {
		writeError(w, http.StatusServiceUnavailable, "device classes not enabled")
		return nil, false
	}
	return s.classes, true
}

// decodeClass reads the class of a POST or PUT body, answering 400 or
// 413 itself when it is not a good one.
func decodeClass(w http.ResponseWriter, r *http.Request) (firmware.Class, bool) {
	var v ClassView
	if !decodeBody(w, r, &v, `a class, {"profile":"native","delta":true}`, classFields) {
		return firmware.Class{}, false
	}
	c, msg := v.class()
	if msg != "" {
		writeError(w, http.StatusBadRequest, msg)
		return c, false
	}
	return c, true
}

// listClasses answers GET /api/v1/classes.
func (s *Server) listClasses(w http.ResponseWriter, r *http.Request) {
	classes, ok := s.classesOn(w)
	if !ok {
		return
	}
	cs, err := classes.Classes(r.Context())
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	list := ClassList{Classes: make([]ClassView, 0, len(cs))}
	for _, c := range cs {
		list.Classes = append(list.Classes, classView(c))
	}
	writeJSON(w, http.StatusOK, list)
}

// showClass answers GET /api/v1/classes/{name}: the declared class, or
// the default profile of one nobody declared.
func (s *Server) showClass(w http.ResponseWriter, r *http.Request) {
	classes, ok := s.classesOn(w)
	if !ok {
		return
	}
	c, err := classes.Class(r.Context(), r.PathValue("name"))
	if err != nil {
		s.firmwareError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, classView(c))
}

// createClass answers POST /api/v1/classes: 201 with the declared class,
// 409 when the class is declared already.
func (s *Server) createClass(w http.ResponseWriter, r *http.Request) {
	classes, ok := s.classesOn(w)
	if !ok {
		return
	}
	c, ok := decodeClass(w, r)
	if !ok {
		return
	}
	if c.Name == "" {
		writeError(w, http.StatusBadRequest, `"name" is required: the device class to declare`)
		return
	}
	s.classMu.Lock()
	defer s.classMu.Unlock()
	old, err := classes.Class(r.Context(), c.Name)
	switch {
	case err != nil:
		s.firmwareError(w, r, err)
		return
	case old.Declared:
		writeError(w, http.StatusConflict, fmt.Sprintf(
			"class %q is already declared; use PUT %s to replace it", c.Name, classPath(c.Name)))
		return
	}
	s.putClass(w, r, classes, c, http.StatusCreated)
}

// replaceClass answers PUT /api/v1/classes/{name}: 201 with the class
// when it declares it, 200 when it replaces the declared one.
func (s *Server) replaceClass(w http.ResponseWriter, r *http.Request) {
	classes, ok := s.classesOn(w)
	if !ok {
		return
	}
	name := r.PathValue("name")
	c, ok := decodeClass(w, r)
	if !ok {
		return
	}
	if c.Name != "" && c.Name != name {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("name %q in the body does not match %q in the path", c.Name, name))
		return
	}
	c.Name = name
	s.classMu.Lock()
	defer s.classMu.Unlock()
	old, err := classes.Class(r.Context(), name)
	if err != nil {
		s.firmwareError(w, r, err)
		return
	}
	status := http.StatusOK
	if !old.Declared {
		status = http.StatusCreated
	}
	s.putClass(w, r, classes, c, status)
}

// putClass stores c and answers with it and the status.
func (s *Server) putClass(w http.ResponseWriter, r *http.Request, classes Classes, c firmware.Class, status int) {
	c, err := classes.PutClass(r.Context(), c)
	if err != nil {
		s.firmwareError(w, r, err)
		return
	}
	s.log.Info().Str("class", c.Name).Str("profile", string(c.Profile)).Bool("delta", c.Delta).Msg("class declared")
	if status == http.StatusCreated {
		w.Header().Set("Location", classPath(c.Name))
	}
	writeJSON(w, status, classView(c))
}

// removeClass answers DELETE /api/v1/classes/{name}: 204; 404 for a class
// not declared, 409 while it holds images.
func (s *Server) removeClass(w http.ResponseWriter, r *http.Request) {
	classes, ok := s.classesOn(w)
	if !ok {
		return
	}
	name := r.PathValue("name")
	s.classMu.Lock()
	defer s.classMu.Unlock()
	if err := classes.RemoveClass(r.Context(), name); err != nil {
		s.firmwareError(w, r, err)
		return
	}
	s.log.Info().Str("class", name).Msg("class removed")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNoContent)
}
