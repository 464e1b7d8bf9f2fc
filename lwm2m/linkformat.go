package lwm2m

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// This file reads and writes CoRE link format (RFC 6690 §2):
//
//	Link            = link-value-list
//	link-value-list = [ link-value *[ "," link-value ]]
//	link-value      = "<" URI-Reference ">" *( ";" link-param )
//	link-param      = parmname [ "=" ( ptoken / quoted-string ) ]
//
// Every registered parameter of RFC 6690 (rel, rt, if, sz, ct, title, ...)
// is a special case of the link-extension rule above, so the parser knows
// none of them by name: the LwM2M layer interprets rt, ct and ver.
//
// RFC 6690 has no whitespace in its grammar, but its own examples wrap
// lines "for readability" and some clients copy that. The parser therefore
// accepts spaces, tabs and line breaks around the separators "," ";" "="
// (never inside a target or an unquoted value); FormatLinks never writes any.

// LinkFormatError says where and why a link-format document is malformed.
type LinkFormatError struct {
	// Offset is the byte offset in the input where the problem was found.
	Offset int
	Reason string
}

func (e *LinkFormatError) Error() string {
	return fmt.Sprintf("link-format: %s at offset %d", e.Reason, e.Offset)
}

// Attr returns the value of the first attribute named key and whether
// the link has it. A bare attribute has an empty value.
func (l Link) Attr(key string) (string, bool) {
	for _, a := range l.Attrs {
		if a.Key == key {
			return a.Value, true
		}
	}
	return "", false
}

// ParseLinks parses a CoRE link-format document. An empty document (or
// one of only whitespace) is an empty list, not an error.
//
// Allocation is bounded by the input: the document is converted to one
// string that targets and unescaped values slice into, and every link or
// attribute consumes at least two input bytes.
func ParseLinks(b []byte) ([]Link, error) {
	if !utf8.Valid(b) {
		return nil, &LinkFormatError{Offset: firstInvalidUTF8(b), Reason: "invalid UTF-8"}
	}
	p := linkParser{s: string(b)}
	return p.parse()
}

// FormatLinks writes links in CoRE link format. A value is quoted when it
// is not a plain token, and always for rel, rev, rt, if, anchor and title,
// whose RFC 6690 grammar is a quoted string (so the LwM2M root link comes
// out as </>;rt="oma.lwm2m"). An empty value is written as a bare
// attribute. It fails, naming the link, when a target, name or value
// cannot be written so that ParseLinks reads it back unchanged.
func FormatLinks(links []Link) ([]byte, error) {
	var b []byte
	for i, l := range links {
		var err error
		if b, err = appendLink(b, l); err != nil {
			return nil, fmt.Errorf("format link %d: %w", i, err)
		}
		if i < len(links)-1 {
			b = append(b, ',')
		}
	}
	return b, nil
}

func appendLink(b []byte, l Link) ([]byte, error) {
	if l.Path == "" {
		return nil, fmt.Errorf("empty link target")
	}
	if i, ok := checkTarget(l.Path); !ok {
		return nil, fmt.Errorf("target %q: invalid character at %d", l.Path, i)
	}
	b = append(b, '<')
	b = append(b, l.Path...)
	b = append(b, '>')
	for _, a := range l.Attrs {
		if !isParmname(a.Key) {
			return nil, fmt.Errorf("%s: invalid attribute name %q", l.Path, a.Key)
		}
		b = append(b, ';')
		b = append(b, a.Key...)
		if a.Value == "" {
			continue
		}
		b = append(b, '=')
		if !needsQuotes(a.Key, a.Value) {
			b = append(b, a.Value...)
			continue
		}
		var ok bool
		if b, ok = appendQuoted(b, a.Value); !ok {
			return nil, fmt.Errorf("%s: attribute %s: value cannot be quoted", l.Path, a.Key)
		}
	}
	return b, nil
}

// quotedKeys are the RFC 6690 parameters whose grammar is (or commonly is)
// a quoted string; writing them quoted matches what peers expect to see.
var quotedKeys = map[string]bool{"rel": true, "rev": true, "rt": true, "if": true, "anchor": true, "title": true}

func needsQuotes(key, value string) bool {
	return quotedKeys[key] || !isPtoken(value)
}

// appendQuoted writes a quoted-string, escaping '"' and '\'. It fails on
// control characters and invalid UTF-8, which the parser would refuse.
func appendQuoted(b []byte, v string) ([]byte, bool) {
	if !utf8.ValidString(v) {
		return nil, false
	}
	b = append(b, '"')
	for i := 0; i < len(v); i++ {
		c := v[i]
		if isCtl(c) {
			return nil, false
		}
		if c == '"' || c == '\\' {
			b = append(b, '\\')
		}
		b = append(b, c)
	}
	return append(b, '"'), true
}

// linkParser is a cursor over one link-format document.
type linkParser struct {
	s string
	i int
}

func (p *linkParser) errorf(at int, format string, args ...any) error {
	return &LinkFormatError{Offset: at, Reason: fmt.Sprintf(format, args...)}
}

func (p *linkParser) eof() bool { return p.i >= len(p.s) }

// peek returns the next byte, or 0 at the end.
func (p *linkParser) peek() byte {
	if p.eof() {
		return 0
	}
	return p.s[p.i]
}

func (p *linkParser) skipSpace() {
	for !p.eof() && isSpace(p.s[p.i]) {
		p.i++
	}
}

func (p *linkParser) parse() ([]Link, error) {
	p.skipSpace()
	if p.eof() {
		return nil, nil
	}
	var links []Link
	for {
		l, err := p.linkValue()
		if err != nil {
			return nil, err
		}
		links = append(links, l)
		p.skipSpace()
		if p.eof() {
			return links, nil
		}
		if c := p.s[p.i]; c != ',' {
			return nil, p.errorf(p.i, "expected ',' between links, found %q", c)
		}
		p.i++
		p.skipSpace()
		if p.eof() {
			return nil, p.errorf(p.i, "trailing ','")
		}
	}
}

// linkValue reads "<" URI-Reference ">" *( ";" link-param ).
func (p *linkParser) linkValue() (Link, error) {
	if c := p.peek(); c != '<' {
		return Link{}, p.errorf(p.i, "link must start with '<', found %q", c)
	}
	start := p.i + 1
	n, _ := checkTarget(p.s[start:])
	end := start + n
	switch {
	case end >= len(p.s):
		return Link{}, p.errorf(p.i, "missing '>' after link target")
	case p.s[end] != '>':
		return Link{}, p.errorf(end, "invalid character %q in link target (missing '>'?)", p.s[end])
	case end == start:
		return Link{}, p.errorf(start, "empty link target")
	}
	l := Link{Path: p.s[start:end]}
	p.i = end + 1
	for {
		p.skipSpace()
		if p.peek() != ';' {
			return l, nil
		}
		p.i++
		p.skipSpace()
		a, err := p.param()
		if err != nil {
			return Link{}, err
		}
		l.Attrs = append(l.Attrs, a)
	}
}

// param reads parmname [ "=" ( ptoken / quoted-string ) ].
func (p *linkParser) param() (LinkAttr, error) {
	start := p.i
	for !p.eof() && isAttrChar(p.s[p.i]) {
		p.i++
	}
	// A trailing '*' marks an RFC 5987 ext-value name such as title*.
	if p.i > start && p.peek() == '*' {
		p.i++
	}
	if p.i == start {
		return LinkAttr{}, p.errorf(p.i, "bad attribute: expected a name, found %s", describe(p.s, p.i))
	}
	a := LinkAttr{Key: p.s[start:p.i]}
	p.skipSpace()
	if p.peek() != '=' {
		return a, nil // bare attribute
	}
	p.i++
	p.skipSpace()
	var err error
	if p.peek() == '"' {
		a.Value, err = p.quoted()
	} else {
		a.Value, err = p.ptoken(a.Key)
	}
	if err != nil {
		return LinkAttr{}, err
	}
	if !p.eof() && !isSpace(p.s[p.i]) && p.s[p.i] != ',' && p.s[p.i] != ';' {
		return LinkAttr{}, p.errorf(p.i, "bad attribute %s: unexpected %q after value", a.Key, p.s[p.i])
	}
	return a, nil
}

func (p *linkParser) ptoken(key string) (string, error) {
	start := p.i
	for !p.eof() && isPtokenChar(p.s[p.i]) {
		p.i++
	}
	if p.i == start {
		return "", p.errorf(p.i, "bad attribute %s: missing value, found %s", key, describe(p.s, p.i))
	}
	return p.s[start:p.i], nil
}

// quoted reads a quoted-string (RFC 2616 §2.2) and returns it unescaped.
// Control characters other than tab are refused, escaped or not: no LwM2M
// attribute needs them and FormatLinks could not write them back.
func (p *linkParser) quoted() (string, error) {
	open := p.i
	p.i++ // opening quote
	start := p.i
	var sb *strings.Builder // only when an escape forces a copy
	for {
		if p.eof() {
			return "", p.errorf(open, "unterminated quoted string")
		}
		c := p.s[p.i]
		switch {
		case c == '"':
			v := p.s[start:p.i]
			p.i++
			if sb != nil {
				sb.WriteString(v)
				return sb.String(), nil
			}
			return v, nil
		case isCtl(c):
			return "", p.errorf(p.i, "control character %q in quoted string", c)
		case c == '\\':
			if p.i+1 >= len(p.s) {
				return "", p.errorf(open, "unterminated quoted string")
			}
			e := p.s[p.i+1]
			if e >= utf8.RuneSelf || isCtl(e) {
				return "", p.errorf(p.i, "bad escape %q in quoted string", e)
			}
			if sb == nil {
				// Not sized by the rest of the input: a document of many
				// short escaped values would then allocate quadratically.
				sb = &strings.Builder{}
			}
			sb.WriteString(p.s[start:p.i])
			sb.WriteByte(e)
			p.i += 2
			start = p.i
		default:
			p.i++
		}
	}
}

// describe names what the parser found at i, for error messages.
func describe(s string, i int) string {
	if i >= len(s) {
		return "end of input"
	}
	return fmt.Sprintf("%q", s[i])
}

// checkTarget reports how many leading bytes of s are valid URI-Reference
// characters (RFC 3986: unreserved, reserved and %HH) and whether all are.
func checkTarget(s string) (int, bool) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '%' {
			if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
				return i, false
			}
			i += 2
			continue
		}
		if !isURIChar(c) {
			return i, false
		}
	}
	return len(s), true
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

// isCtl is a control character that may not appear in a quoted string
// (tab is allowed, as linear whitespace).
func isCtl(c byte) bool { return (c < 0x20 && c != '\t') || c == 0x7f }

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// isURIChar is an RFC 3986 unreserved or reserved character.
func isURIChar(c byte) bool {
	return isAlnum(c) || strings.IndexByte("-._~:/?#[]@!$&'()*+,;=", c) >= 0
}

// isAttrChar is RFC 5987 attr-char: token characters except "*", "'" and "%".
func isAttrChar(c byte) bool { return isAlnum(c) || strings.IndexByte("!#$&+-.^_`|~", c) >= 0 }

// isPtokenChar is RFC 6690 ptokenchar.
func isPtokenChar(c byte) bool {
	return isAlnum(c) || strings.IndexByte("!#$%&'()*+-./:<=>?@[]^_`{|}~", c) >= 0
}

func isPtoken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isPtokenChar(s[i]) {
			return false
		}
	}
	return true
}

func isParmname(s string) bool {
	name := strings.TrimSuffix(s, "*")
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		if !isAttrChar(name[i]) {
			return false
		}
	}
	return true
}

func firstInvalidUTF8(b []byte) int {
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n <= 1 {
			return i
		}
		i += n
	}
	return len(b)
}
