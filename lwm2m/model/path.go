package model

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrInvalidPath is wrapped by every error ParsePath returns.
var ErrInvalidPath = errors.New("invalid lwm2m path")

// Level is the depth of a Path in the LwM2M tree.
type Level uint8

// Levels from the root to a resource instance.
const (
	LevelRoot             Level = iota // "/"
	LevelObject                        // /o
	LevelObjectInstance                // /o/i
	LevelResource                      // /o/i/r
	LevelResourceInstance              // /o/i/r/ri
)

func (l Level) String() string {
	switch l {
	case LevelRoot:
		return "root"
	case LevelObject:
		return "object"
	case LevelObjectInstance:
		return "object instance"
	case LevelResource:
		return "resource"
	case LevelResourceInstance:
		return "resource instance"
	}
	return "Level(" + strconv.Itoa(int(l)) + ")"
}

// Path addresses a node of the LwM2M tree: the root, an object, an object
// instance, a resource or a resource instance. The zero value is the root.
// Paths are comparable values and can be used as map keys.
type Path struct {
	ids [4]uint16
	n   uint8
}

// RootPath returns the path "/".
func RootPath() Path { return Path{} }

// ObjectPath returns /o.
func ObjectPath(o uint16) Path { return Path{ids: [4]uint16{o}, n: 1} }

// ObjectInstancePath returns /o/i.
func ObjectInstancePath(o, i uint16) Path { return Path{ids: [4]uint16{o, i}, n: 2} }

// ResourcePath returns /o/i/r.
func ResourcePath(o, i, r uint16) Path { return Path{ids: [4]uint16{o, i, r}, n: 3} }

// ResourceInstancePath returns /o/i/r/ri.
func ResourceInstancePath(o, i, r, ri uint16) Path {
	return Path{ids: [4]uint16{o, i, r, ri}, n: 4}
}

// ParsePath parses "/", "/o", "/o/i", "/o/i/r" or "/o/i/r/ri". Identifiers
// are decimal numbers from 0 to 65535 without sign or leading zeros, so that
// String gives back the same text.
func ParsePath(s string) (Path, error) {
	if s == "/" {
		return Path{}, nil
	}
	if !strings.HasPrefix(s, "/") {
		return Path{}, fmt.Errorf("%w %q: must start with /", ErrInvalidPath, s)
	}
	var p Path
	rest := s[1:]
	for {
		seg, tail, more := strings.Cut(rest, "/")
		if p.n == 4 {
			return Path{}, fmt.Errorf("%w %q: more than 4 levels", ErrInvalidPath, s)
		}
		id, err := parseID(seg)
		if err != nil {
			return Path{}, fmt.Errorf("%w %q: %v", ErrInvalidPath, s, err)
		}
		p.ids[p.n] = id
		p.n++
		if !more {
			return p, nil
		}
		rest = tail
	}
}

func parseID(seg string) (uint16, error) {
	if seg == "" {
		return 0, errors.New("empty segment")
	}
	if len(seg) > 5 {
		return 0, fmt.Errorf("id %q out of range", seg)
	}
	for i := 0; i < len(seg); i++ {
		if seg[i] < '0' || seg[i] > '9' {
			return 0, fmt.Errorf("id %q is not a decimal number", seg)
		}
	}
	if len(seg) > 1 && seg[0] == '0' {
		return 0, fmt.Errorf("id %q has a leading zero", seg)
	}
	v, err := strconv.ParseUint(seg, 10, 16)
	if err != nil {
		return 0, fmt.Errorf("id %q out of range", seg)
	}
	return uint16(v), nil
}

// String returns the canonical text form, e.g. "/5/0/3" or "/".
func (p Path) String() string {
	if p.n == 0 {
		return "/"
	}
	var b strings.Builder
	for i := uint8(0); i < p.n; i++ {
		b.WriteByte('/')
		b.WriteString(strconv.FormatUint(uint64(p.ids[i]), 10))
	}
	return b.String()
}

// Level reports how deep p is.
func (p Path) Level() Level { return Level(p.n) }

// IsRoot reports whether p is "/".
func (p Path) IsRoot() bool { return p.n == 0 }

func (p Path) id(level uint8) (uint16, bool) {
	if p.n < level {
		return 0, false
	}
	return p.ids[level-1], true
}

// Object returns the object id, if p has one.
func (p Path) Object() (uint16, bool) { return p.id(1) }

// Instance returns the object instance id, if p has one.
func (p Path) Instance() (uint16, bool) { return p.id(2) }

// Resource returns the resource id, if p has one.
func (p Path) Resource() (uint16, bool) { return p.id(3) }

// ResourceInstance returns the resource instance id, if p has one.
func (p Path) ResourceInstance() (uint16, bool) { return p.id(4) }

// Parent returns the path one level up; the parent of the root is the root.
func (p Path) Parent() Path {
	if p.n == 0 {
		return p
	}
	q := p
	q.n--
	q.ids[q.n] = 0
	return q
}

// Child returns the path one level down with the given id, or false when p is
// already a resource instance path.
func (p Path) Child(id uint16) (Path, bool) {
	if p.n == 4 {
		return Path{}, false
	}
	q := p
	q.ids[q.n] = id
	q.n++
	return q, true
}

// HasPrefix reports whether p is q or lies below q.
func (p Path) HasPrefix(q Path) bool {
	if q.n > p.n {
		return false
	}
	for i := uint8(0); i < q.n; i++ {
		if p.ids[i] != q.ids[i] {
			return false
		}
	}
	return true
}
