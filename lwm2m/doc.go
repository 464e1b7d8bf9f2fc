// Package lwm2m implements the server side of the OMA LwM2M protocol (1.0, 1.1
// and 1.2): the registration interface (Register, Update, De-register), the
// registry of live registrations with their lifetime expiry, the device
// records that bind security identities to endpoint names, and the device
// management operations the server sends to its clients, with the queue
// that holds them for sleeping devices.
//
// The package speaks CoAP only through package coap; the registration rules
// themselves (query parameters, link-format, response codes) are plain Go
// and can be tested without sockets.
//
// # Reading the source
//
//   - registration.go, device.go: the domain types and the store interfaces
//     this package consumes.
//   - linkformat.go: CoRE link format (RFC 6690), ParseLinks and FormatLinks.
//   - register.go: ParseRegister and ParseUpdate, every rule that depends on
//     the request alone.
//   - registry.go: Registry, which answers /rd, checks identities, persists
//     before it answers, and remembers each endpoint's session.
//   - expiry.go: the expiry heap and Run, the one goroutine that removes
//     registrations whose lifetime passed.
//   - ops.go: Op and Result, one operation as a CoAP request and its answer;
//     formats.go picks the content format from the client's version and
//     the formats it announced; errors.go turns CoAP codes into errors.
//   - operator.go: Operator, the one queue: operations wait per endpoint, in
//     order, until the client is reachable (queue mode: until it speaks),
//     and expire if it never is. Callers wait (Do) or take a ticket (Submit).
//   - observe.go: Watch, an observation that outlives sessions: it is set up
//     again when the client registers anew or comes back on a new DTLS
//     session. send.go: the client's Send (POST /dp).
//
// The data model and the content formats live in lwm2m/model; lwm2m/client
// is an LwM2M client for the simulator and the tests.
//
// # Response codes
//
//	2.01 Created      Register accepted; Location-Path rd/{id}
//	2.04 Changed      Update accepted
//	2.02 Deleted      De-register accepted
//	4.00 Bad Request  a missing or malformed parameter (ep, lt, lwm2m, b,
//	                  sms, Q), a wrong Content-Format, an empty or malformed
//	                  object list, a NoSec client without ep
//	4.03 Forbidden    the security identity may not register (unknown PSK
//	                  identity, NoSec for a device with credentials or with
//	                  registration closed), may not claim that endpoint, or
//	                  may not update or de-register that registration
//	4.04 Not Found    unknown registration id, or a path other than /rd[/id]
//	4.05 Method Not Allowed  another method on /rd or /rd/{id}
//	4.12 Precondition Failed  a well-formed lwm2m version other than 1.0-1.2
//	4.13 Request Entity Too Large  an object list above MaxRegisterPayload
//	5.00 Internal Server Error  the device or registration store failed;
//	                  nothing changed
package lwm2m
