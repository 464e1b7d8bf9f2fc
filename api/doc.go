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
package api
