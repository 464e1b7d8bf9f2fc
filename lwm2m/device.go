package lwm2m

import (
	"context"
	"errors"
	"time"
)

// ErrNotFound is returned by stores when the requested record does not exist.
var ErrNotFound = errors.New("not found")

// ErrExists is returned by stores when a record would replace another one
// that it must not replace (an endpoint or PSK identity already in use).
var ErrExists = errors.New("already exists")

// Device is a provisioned LwM2M client: the endpoint name it registers with
// and the credentials it proves its identity with.
//
// A device authenticates either with a pre-shared key (PSKIdentity and
// PSKKey) or with an X.509 certificate whose Common Name is the endpoint
// name. A device with neither may only register over plain CoAP when the
// server runs with open registration.
type Device struct {
	Endpoint    string
	PSKIdentity string
	// PSKKey is secret: it must never reach a log line or API output.
	PSKKey []byte
	Tags   map[string]string
	// LinkMTU is the IP MTU of the device's link; block sizes are chosen
	// to fit it. Zero means the default of the device's class or the
	// server's.
	LinkMTU int
	// Class is the device's class: which images fit it ("" when not
	// set; the class of its installed image is used then).
	Class     string
	CreatedAt time.Time
}

// HasCredentials reports whether the device must authenticate over DTLS.
func (d *Device) HasCredentials() bool { return d.PSKIdentity != "" || len(d.PSKKey) > 0 }

// DeviceStore keeps provisioned devices. Implementations must make
// PSK identities unique across devices.
type DeviceStore interface {
	// PutDevice creates or replaces the device with d.Endpoint. It fails with
	// ErrExists when d.PSKIdentity belongs to another endpoint.
	PutDevice(ctx context.Context, d Device) error
	// Device returns the device with the endpoint name, or ErrNotFound.
	Device(ctx context.Context, endpoint string) (Device, error)
	// DeviceByPSKIdentity returns the device holding the PSK identity, or ErrNotFound.
	DeviceByPSKIdentity(ctx context.Context, identity string) (Device, error)
	// DeleteDevice removes the device, or returns ErrNotFound.
	DeleteDevice(ctx context.Context, endpoint string) error
	// Devices returns every device ordered by endpoint name.
	Devices(ctx context.Context) ([]Device, error)
}
