package lwm2m

import (
	"errors"
	"fmt"

	"github.com/fotahub/fota/coap"
)

// CodeError is a CoAP error code a device answered an operation with.
// The Err* values below are CodeErrors, so a caller can test an operation's
// error with errors.Is(err, lwm2m.ErrMethodNotAllowed).
type CodeError coap.Code

func (c CodeError) Error() string {
	return fmt.Sprintf("%s %s", coap.Code(c), codeText[coap.Code(c)])
}

// Device answers that operations map to errors (OMA LwM2M Transport TS
// §6.4, Table "Response codes"). ErrTargetNotFound is 4.04: the object,
// instance or resource does not exist on the device.
var (
	ErrBadRequest        error = CodeError(coap.BadRequest)
	ErrUnauthorized      error = CodeError(coap.Unauthorized)
	ErrBadOption         error = CodeError(coap.BadOption)
	ErrForbidden         error = CodeError(coap.Forbidden)
	ErrTargetNotFound    error = CodeError(coap.NotFound)
	ErrMethodNotAllowed  error = CodeError(coap.MethodNotAllowed)
	ErrNotAcceptable     error = CodeError(coap.NotAcceptable)
	ErrEntityIncomplete  error = CodeError(coap.RequestEntityIncomplete)
	ErrEntityTooLarge    error = CodeError(coap.RequestEntityTooLarge)
	ErrUnsupportedFormat error = CodeError(coap.UnsupportedFormat)
	ErrDeviceInternal    error = CodeError(coap.InternalServerError)
)

var codeText = map[coap.Code]string{
	coap.BadRequest:              "Bad Request",
	coap.Unauthorized:            "Unauthorized",
	coap.BadOption:               "Bad Option",
	coap.Forbidden:               "Forbidden",
	coap.NotFound:                "Not Found",
	coap.MethodNotAllowed:        "Method Not Allowed",
	coap.NotAcceptable:           "Not Acceptable",
	coap.RequestEntityIncomplete: "Request Entity Incomplete",
	coap.PreconditionFailed:      "Precondition Failed",
	coap.RequestEntityTooLarge:   "Request Entity Too Large",
	coap.UnsupportedFormat:       "Unsupported Content-Format",
	coap.InternalServerError:     "Internal Server Error",
	coap.NotImplemented:          "Not Implemented",
	coap.ServiceUnavailable:      "Service Unavailable",
	coap.GatewayTimeout:          "Gateway Timeout",
}

// Errors of the operation machinery itself, before or after the device.
var (
	// ErrNotRegistered: the endpoint has no live registration.
	ErrNotRegistered = errors.New("device not registered")
	// ErrExpired: a queued operation's expiry passed before the device
	// woke up to take it.
	ErrExpired = errors.New("operation expired in the queue")
	// ErrCancelled: the operation was withdrawn before it was sent.
	ErrCancelled = errors.New("operation cancelled")
	// ErrUnexpectedResponse: the device answered with a success code the
	// operation does not allow, or a payload that cannot be decoded.
	ErrUnexpectedResponse = errors.New("unexpected response")
	// ErrQueueFull: the endpoint already has MaxQueued operations waiting.
	ErrQueueFull = errors.New("operation queue full")
)

// OpError is the error of an operation a device refused or that failed on
// the way: it names the operation, device and path, and wraps the cause (a
// CodeError, a context error, ErrExpired, ...).
type OpError struct {
	Op       string
	Endpoint string
	Path     string
	// Diagnostic is the device's diagnostic payload, if it sent one.
	Diagnostic string
	Err        error
}

func (e *OpError) Error() string {
	msg := fmt.Sprintf("%s %s on %s: %v", e.Op, e.Path, e.Endpoint, e.Err)
	if e.Diagnostic != "" {
		msg += fmt.Sprintf(" (%q)", e.Diagnostic)
	}
	return msg
}

func (e *OpError) Unwrap() error { return e.Err }
