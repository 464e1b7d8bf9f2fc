// Package api is the management HTTP API of fotad: JSON over HTTP for
// provisioning devices and inspecting registrations, a health check, and
// Prometheus metrics.
//
// # Authentication
//
// Every endpoint except GET /healthz requires the header
// "Authorization: Bearer TOKEN". The token is compared in constant time; a
// missing or wrong token gets 401 with a JSON error and a WWW-Authenticate
// challenge. /metrics requires the token too: the metrics reveal fleet size
// and handshake failures, and Prometheus sends a bearer token with the
// scrape config's "authorization" (or "bearer_token_file") setting.
// [LoadOrCreateToken] keeps the token in <data>/api-token, where fotactl
// finds it.
//
// # Endpoints
//
//	GET    /healthz                     200 {"status":"ok"}, no token needed
//	GET    /metrics                     Prometheus text exposition
//	POST   /api/v1/devices              create a device: 201, 409 if the endpoint or PSK identity is taken
//	GET    /api/v1/devices              {"devices":[view...]}, provisioned devices by endpoint name
//	GET    /api/v1/devices/{endpoint}   view of a device record, a registration, or both; 404 if neither
//	PUT    /api/v1/devices/{endpoint}   create (201) or replace (200) a device
//	DELETE /api/v1/devices/{endpoint}   204, or 404
//	GET    /api/v1/registrations        {"registrations":[view...]}, every live registration by endpoint
//
// Create and replace take
//
//	{"endpoint":"ep1","psk_identity":"id1","psk_key":"00112233...","tags":{"site":"lab"}}
//
// where psk_key is hex (1 to 64 bytes) and must come with psk_identity and
// vice versa; a device with neither authenticates with an X.509 certificate
// whose Common Name is its endpoint name, or registers over plain CoAP when
// open registration is on. For PUT the endpoint comes from the path; a body
// endpoint, if present, must match it.
//
// # The device view
//
// Devices and registrations share one JSON shape, [DeviceView]: the device
// record (provisioned, psk_identity, has_psk_key, tags, created_at) merged
// with the live registration (registered, registration_id, lwm2m_version,
// binding, queue_mode, lifetime in seconds, objects, identity, address,
// registered_at, last_seen, expires_at). The registration fields are all
// present, zero or not, when registered is true, and all absent otherwise. objects is a list of CoRE link-format
// strings as the client announced them, attributes included, for example
// "</>;rt=\"oma.lwm2m\"", "</3/0>", "</5>;ver=1.1": the shape LwM2M tools
// print, and one that parses back with any link-format parser.
//
// A PSK key never leaves the server: no response and no log line carries
// it, only has_psk_key.
//
// Errors are {"error":"message"} with a 4xx or 5xx status.
//
// # Device operations
//
// With [Config.Operations] set (otherwise they answer 503 "operations not
// enabled"):
//
//	POST   /api/v1/devices/{endpoint}/ops       run an operation ([OpRequest]): 200 [ResultView], or 202 [TicketBody]
//	GET    /api/v1/devices/{endpoint}/queue     {"tickets":[ticket...]}, the operations waiting for the device
//	GET    /api/v1/devices/{endpoint}/observe?path=/3/0/9[&path=...][&format=N]
//	                                            NDJSON stream of [NotificationView]: the current value, then each change
//	GET    /api/v1/devices/{endpoint}/send      NDJSON stream of the values the device pushes with Send
//	GET    /api/v1/tickets/{id}[?wait=30s]      {"ticket":{...}} with its result or error once finished
//	DELETE /api/v1/tickets/{id}                 withdraw a queued operation: 204; 409 once sent; 404 if unknown
//
// An operation is
//
//	{"op":"write","path":"/1/0/1","value":"300"}
//	{"op":"write","path":"/1/0","partial":true,"values":[{"path":"1","value":"300"},{"path":"/1/0/7","value":"UQ"}]}
//	{"op":"write-attributes","path":"/3/0/9","attributes":{"pmin":"10","pmax":"60"}}
//	{"op":"execute","path":"/5/0/2","args":"0='v',1"}
//	{"op":"read","path":"/3/0","wait":"2m"}    {"op":"read-composite","paths":["/3/0/0","/1/0/1"]}
//	{"op":"create","path":"/1","values":[{"path":"0","value":"2"}]}    {"op":"delete","path":"/1/1","async":true}
//
// Values are text, read as the type the object model gives the resource
// ("type" names it for resources the model does not know; string by
// default). The request waits for the result up to "wait" (60 s by
// default, at most 10 min); if the device is asleep and the wait ends, or
// with "async":true, the answer is 202 with the ticket, whose operation
// stays queued until the device wakes up or "expires" (RFC 3339 or a
// duration) passes. Results carry values as typed JSON ([ValueView]):
// integers exactly, opaque values in base64, times in RFC 3339.
//
// A failed operation answers {"error":"...","coap_code":"4.04"}, where
// coap_code is the CoAP code the device refused with, if it did: 502 for
// a device's error code, an answer fotad cannot read or a broken session;
// 504 when the device did not answer in time or the operation expired in
// the queue; 404 for an unregistered device; 429 when its queue is full;
// 409 when the operation was withdrawn; 400 for a request that cannot be
// built or encoded.
package api
