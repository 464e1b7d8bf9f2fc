package coap

import "sync/atomic"

// Handshake outcomes counted in Stats.
const (
	HandshakeOK              = "ok"
	HandshakeUnknownIdentity = "unknown_identity"
	HandshakeBadCertificate  = "bad_certificate"
	HandshakeBadKey          = "bad_key"
	HandshakeTimeout         = "timeout"
	HandshakeFailed          = "failed"
)

// Stats is a snapshot of the transport's counters.
type Stats struct {
	// Handshakes counts finished DTLS handshakes by outcome (HandshakeOK, ...).
	Handshakes map[string]uint64
	// MessagesIn and MessagesOut count CoAP messages: requests received and
	// responses sent, requests sent and responses received.
	MessagesIn  uint64
	MessagesOut uint64
	// Sessions is the number of open sessions (DTLS sessions, plus plain
	// CoAP peers the server currently tracks).
	Sessions int
	// Parked is how many of those sessions are parked (see park.go).
	Parked int
}

type counters struct {
	hsOK, hsUnknown, hsBadCert, hsBadKey, hsTimeout, hsFailed atomic.Uint64
	in, out                                                   atomic.Uint64
}

func (c *counters) handshake(outcome string) {
	switch outcome {
	case HandshakeOK:
		c.hsOK.Add(1)
	case HandshakeUnknownIdentity:
		c.hsUnknown.Add(1)
	case HandshakeBadCertificate:
		c.hsBadCert.Add(1)
	case HandshakeTimeout:
		c.hsTimeout.Add(1)
	case HandshakeBadKey:
		c.hsBadKey.Add(1)
	default:
		c.hsFailed.Add(1)
	}
}

func (c *counters) snapshot() Stats {
	return Stats{
		Handshakes: map[string]uint64{
			HandshakeOK:              c.hsOK.Load(),
			HandshakeUnknownIdentity: c.hsUnknown.Load(),
			HandshakeBadCertificate:  c.hsBadCert.Load(),
			HandshakeTimeout:         c.hsTimeout.Load(),
			HandshakeBadKey:          c.hsBadKey.Load(),
			HandshakeFailed:          c.hsFailed.Load(),
		},
		MessagesIn:  c.in.Load(),
		MessagesOut: c.out.Load(),
	}
}
