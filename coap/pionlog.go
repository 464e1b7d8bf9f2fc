package coap

import (
	"strings"

	"github.com/pion/logging"
	"github.com/rs/zerolog"
)

// pionLogger sends pion's log lines to zerolog at debug level: the
// outcomes that matter (failed handshakes with their reason) are logged
// by the listener itself, and pion's warnings about a single bad record
// are noise at fleet scale unless someone is debugging.
//
// During a handshake it also notes records that failed authentication:
// DTLS drops them silently, so this is the only sign that a device holds
// the wrong PSK rather than a lossy link.
type pionLogger struct {
	log zerolog.Logger
	att *attempt
}

// NewLogger is called for every connection. The scope is added to each
// line rather than baked into a child logger: a child logger's context
// buffer would be held by every live session, for lines that are almost
// never enabled.
func (p pionLogger) NewLogger(scope string) logging.LeveledLogger {
	return pionScoped{p.log, scope, p.att}
}

type pionScoped struct {
	log   zerolog.Logger
	scope string
	att   *attempt
}

func (p pionScoped) trace() *zerolog.Event { return p.log.Trace().Str("pion", p.scope) }
func (p pionScoped) debug() *zerolog.Event { return p.log.Debug().Str("pion", p.scope) }

func (p pionScoped) Trace(string)          {}
func (p pionScoped) Tracef(string, ...any) {}
func (p pionScoped) Debug(msg string)      { p.trace().Msg(msg) }
func (p pionScoped) Debugf(f string, args ...any) {
	if p.att != nil && strings.Contains(f, "decrypt failed") && !p.att.decryptFailed.Swap(true) {
		// Say so now: the handshake itself only ends at its timeout.
		id := p.att.get()
		p.att.log.Warn().Str("identity", id.Name).Str("remote", addrString(p.att.remote)).
			Msg("dtls records failed authentication during the handshake: wrong PSK?")
	}
	p.trace().Msgf(f, args...)
}
func (p pionScoped) Info(msg string)              { p.debug().Msg(msg) }
func (p pionScoped) Infof(f string, args ...any)  { p.debug().Msgf(f, args...) }
func (p pionScoped) Warn(msg string)              { p.debug().Msg(msg) }
func (p pionScoped) Warnf(f string, args ...any)  { p.debug().Msgf(f, args...) }
func (p pionScoped) Error(msg string)             { p.debug().Msg(msg) }
func (p pionScoped) Errorf(f string, args ...any) { p.debug().Msgf(f, args...) }
