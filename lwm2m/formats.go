package lwm2m

import (
	"slices"
	"strconv"
	"strings"

	"github.com/fotahub/fota/lwm2m/model"
)

// ContentFormatLink is CoRE link format (RFC 6690): Discover answers and
// registration payloads.
const ContentFormatLink = 40

// Formats returns the content formats the client announced in its
// registration: the ct attribute of its root link (LwM2M 1.1 Transport
// §6.2.2: `</>;rt="oma.lwm2m";ct="60 110 112 11542"`, or a single number
// as 1.0 clients send for LwM2M JSON). Nil when it announced none.
func (r *Registration) Formats() []int {
	for _, l := range r.Objects {
		if l.Path != "/" && l.Path != r.RootPath {
			continue
		}
		for _, a := range l.Attrs {
			if a.Key != "ct" {
				continue
			}
			var cts []int
			for _, f := range strings.Fields(a.Value) {
				if n, err := strconv.Atoi(f); err == nil && n >= 0 && n <= 65535 {
					cts = append(cts, n)
				}
			}
			return cts
		}
	}
	return nil
}

// Preferences, most compact first. LwM2M CBOR exists only in 1.2.
var (
	nodeFormats      = []int{model.ContentFormatLwM2MCBOR, model.ContentFormatSenMLCBOR, model.ContentFormatTLV, model.ContentFormatSenMLJSON, model.ContentFormatLwM2MJSON}
	compositeFormats = []int{model.ContentFormatSenMLCBOR, model.ContentFormatSenMLJSON}
)

// nodeFormat picks the content format for reading and writing nodes of a
// client: the most compact one it announced that its version allows, and
// otherwise TLV, which every 1.0 client and nearly every later one
// supports (LwM2M 1.0 Core §6.4 makes it mandatory).
func nodeFormat(reg *Registration) int {
	announced := reg.Formats()
	for _, f := range nodeFormats {
		if f == model.ContentFormatLwM2MCBOR && reg.Version != "1.2" {
			continue
		}
		if slices.Contains(announced, f) {
			return f
		}
	}
	return model.ContentFormatTLV
}

// compositeFormat picks the SenML format for composite operations: the
// one the client announced, SenML CBOR when it announced neither.
func compositeFormat(reg *Registration) int {
	announced := reg.Formats()
	for _, f := range compositeFormats {
		if slices.Contains(announced, f) {
			return f
		}
	}
	return model.ContentFormatSenMLCBOR
}
