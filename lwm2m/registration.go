package lwm2m

import (
	"context"
	"time"
)

// Registration is a live registration of an LwM2M client, created by
// Register, refreshed by Update and removed by De-register or lifetime expiry.
type Registration struct {
	// ID is the registration's location: the client updates it at /rd/{ID}.
	ID       string
	Endpoint string
	// Version is the LwM2M enabler version the client announced: "1.0", "1.1" or "1.2".
	Version  string
	Lifetime time.Duration
	// Binding is the binding mode as the client sent it ("U", "UQ", "UT", ...).
	Binding string
	// Queue is true when the client uses queue mode ("Q" in a 1.0 binding or
	// the Q parameter of 1.1 and later).
	Queue     bool
	SMSNumber string
	// RootPath is the alternate path announced with rt="oma.lwm2m", "/" by default.
	RootPath string
	// Objects is the client's object and instance list as announced.
	Objects []Link
	// Identity is the security identity the client registered with; only a
	// request from the same identity may update or de-register.
	Identity Identity
	// Address is the client's last known transport address (ip:port).
	Address      string
	RegisteredAt time.Time
	// LastSeen is when the client last registered or updated; the
	// registration expires at LastSeen+Lifetime.
	LastSeen time.Time
}

// Expires returns when the registration dies unless it is updated.
func (r *Registration) Expires() time.Time { return r.LastSeen.Add(r.Lifetime) }

// Link is one entry of a CoRE link-format (RFC 6690) list: a target path
// and its attributes in the order they were sent.
type Link struct {
	Path  string
	Attrs []LinkAttr
}

// LinkAttr is one link attribute. Value is unquoted; a bare attribute has
// an empty Value.
type LinkAttr struct {
	Key   string
	Value string
}

// IdentityKind says how a client proved who it is.
type IdentityKind uint8

const (
	// IdentityNone is a client on plain CoAP (LwM2M NoSec mode).
	IdentityNone IdentityKind = iota
	// IdentityPSK is a client authenticated by a pre-shared key.
	IdentityPSK
	// IdentityX509 is a client authenticated by a certificate.
	IdentityX509
)

func (k IdentityKind) String() string {
	switch k {
	case IdentityNone:
		return "nosec"
	case IdentityPSK:
		return "psk"
	case IdentityX509:
		return "x509"
	}
	return "unknown"
}

// Identity is the proven identity of a client's session: the PSK identity
// or the certificate's Common Name. NoSec sessions have an empty Name.
type Identity struct {
	Kind IdentityKind
	Name string
}

func (id Identity) String() string {
	if id.Kind == IdentityNone {
		return "nosec"
	}
	return id.Kind.String() + ":" + id.Name
}

// RegistrationStore persists registrations so that they survive a restart.
// PutRegistration must be durable when it returns: the server acknowledges a
// registration only after it has been stored.
type RegistrationStore interface {
	PutRegistration(ctx context.Context, r Registration) error
	// DeleteRegistration removes the registration; deleting a missing one is not an error.
	DeleteRegistration(ctx context.Context, id string) error
	// Registrations returns every stored registration.
	Registrations(ctx context.Context) ([]Registration, error)
}
