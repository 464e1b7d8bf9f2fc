// Package lwm2m implements the server side of the OMA LwM2M protocol (1.0, 1.1
// and 1.2): the registration interface (Register, Update, De-register), the
// registry of live registrations with their lifetime expiry, and the device
// records that bind security identities to endpoint names.
//
// The package speaks CoAP only through package coap; the registration rules
// themselves (query parameters, link-format, response codes) are plain Go
// and can be tested without sockets.
package lwm2m
