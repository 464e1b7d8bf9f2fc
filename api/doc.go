// Package api is the management HTTP API of fotad: JSON over HTTP for
// provisioning devices, inspecting registrations, operating on devices,
// managing firmware images and packages, updating devices and running
// update campaigns, a health check, and Prometheus metrics; and the web
// console for field engineers (console.go, assets in console/, described
// in docs/console.md), with the event journal it streams (events.go).
//
// # Authentication
//
// Every endpoint except GET /healthz and the console's assets and sign-in
// requires the header "Authorization: Bearer TOKEN", or the console's
// session cookie (with its CSRF token on changes; see console.go). The token is compared in constant time; a
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
//	GET    /api/v1/events               Server-Sent Events: fotad's log at info and above (?endpoint=EP)
//	GET    /api/v1/images/{digest}/deltas  delta sizes from each version the fleet runs
//	GET    /console/                    the web console; POST/GET/DELETE /console/session signs in/shows/out
//
// Create and replace take
//
//	{"endpoint":"ep1","psk_identity":"id1","psk_key":"00112233...","tags":{"site":"lab"},"class":"sensor-a"}
//
// where class (optional) is the device class, which images fit the device
// (without it, the class of its installed image counts), and psk_key is
// hex (1 to 64 bytes) and must come with psk_identity and
// vice versa; a device with neither authenticates with an X.509 certificate
// whose Common Name is its endpoint name, or registers over plain CoAP when
// open registration is on. For PUT the endpoint comes from the path; a body
// endpoint, if present, must match it.
//
// # The device view
//
// Devices and registrations share one JSON shape, [DeviceView]: the device
// record (provisioned, psk_identity, has_psk_key, tags, link_mtu, class,
// created_at), the firmware_version the device last reported (when
// [Config.Inventory] knows it), merged
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
// # Firmware updates
//
// With [Config.Updates] set (otherwise 503):
//
//	POST   /api/v1/devices/{endpoint}/update         {"image":"2.0.0","full":false,"push":false}: 202 [UpdateView];
//	                                                 409 while one runs; 404 unknown device or image
//	GET    /api/v1/devices/{endpoint}/update         the current or last update: phase, progress, result
//	DELETE /api/v1/devices/{endpoint}/update         cancel it and reset the device's Object 5: 204
//	GET    /api/v1/devices/{endpoint}/update/events  Server-Sent Events: an "update" event per change, until it ends
//	GET    /api/v1/devices/{endpoint}/updates        {"updates":[UpdateView...]}: the current or last update, then
//	                                                 the earlier ones from [Config.History], newest first
//
// # Update campaigns
//
// With [Config.Campaigns] set (otherwise 503 "campaigns not enabled"):
//
//	POST   /api/v1/campaigns/plan          a campaign spec -> 200 campaign.Plan: who gets which package, airtime per link
//	POST   /api/v1/campaigns               a campaign spec -> 201 [CampaignBody] (without targets), state "created"
//	GET    /api/v1/campaigns               {"campaigns":[progress...]}, oldest first
//	GET    /api/v1/campaigns/{id}          [CampaignBody]: the campaign with its targets, and its progress
//	POST   /api/v1/campaigns/{id}/start    200 progress; 409 when the state does not allow it
//	POST   /api/v1/campaigns/{id}/pause    (likewise; running updates finish)
//	POST   /api/v1/campaigns/{id}/resume   (likewise; the failures that paused it are forgiven)
//	POST   /api/v1/campaigns/{id}/cancel   (likewise; running updates are cancelled)
//	GET    /api/v1/campaigns/{id}/events   Server-Sent Events: a "progress" event per change, until done or cancelled
//
// A spec (campaign.Spec, at most 1 MiB; unknown fields are refused) is
//
//	{"name":"spring","image":"2.0.0","select":{"class":"sensor-a","versions":["1.0.0"],"tags":{"site":"field"}},
//	 "waves":[{"count":10,"soak":"1h"},{"percent":50,"soak":"10m"}],
//	 "limits":{"max_concurrent":20,"per_tag":{"cell":4},"bytes_per_hour":10000000,"window":{"start":"22:00","end":"04:00"}},
//	 "failure":{"max_failures":3,"max_failure_percent":10,"retries":2},
//	 "delivery":{"full":false,"push":false,"block_size":512},"asleep_wait":"1h","deadline":"336h"}
//
// 400 for a bad spec, 404 for an unknown campaign or image, 422 when the
// selection matches no device. Durations are Go durations ("90s", "10m")
// or seconds. The metrics fota_campaign_devices{campaign,state},
// fota_campaign_bytes_served, fota_campaign_bytes_saved,
// fota_campaign_failures{campaign,result} (failed devices by Update
// Result) and fota_campaign_running (updates running now) are gauges per
// campaign, kept for a day after the campaign ended.
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
// integers exactly, opaque values in base64, times in RFC 3339, with the
// resource's name and the operations the object model allows on it.
//
// A failed operation answers {"error":"...","coap_code":"4.04"}, where
// coap_code is the CoAP code the device refused with, if it did: 502 for
// a device's error code, an answer fotad cannot read or a broken session;
// 504 when the device did not answer in time or the operation expired in
// the queue; 404 for an unregistered device; 429 when its queue is full;
// 409 when the operation was withdrawn; 400 for a request that cannot be
// built or encoded.
//
// # Firmware
//
// With [Config.Images] and [Config.Packages] set (otherwise they answer
// 503 "firmware images not enabled" or "firmware packages not enabled"):
//
//	POST   /api/v1/images?version=V&class=C[&format=native|raw]
//	                                          the image file as the body (at most MaxImageBytes, else 413):
//	                                          201 [ImageView]; 200 with the stored image for the same bytes,
//	                                          version and class; 409 if the bytes or the version are taken otherwise
//	GET    /api/v1/images                     {"images":[view...]}, by class, then sequence
//	GET    /api/v1/images/{ref}[?class=C]     an image by digest or version; ?download=1 gives its bytes
//	DELETE /api/v1/images/{digest}            204, removing the packages made from or to it; 404 if unknown
//	GET    /api/v1/signing-key                the public key that verifies packages, as PEM; as
//	                                          [SigningKeyView] JSON for "Accept: application/json"
//	POST   /api/v1/packages                   [PackageRequest] -> [PackageView] of the package a device gets
//	GET    /api/v1/packages/{id}              a package's metadata; ?download=1 gives its bytes
//
// An image view is
//
//	{"digest":"803ce91d...","size":19452,"version":"1.1.0","class":"sensor-a","format":"native","sequence":3,
//	 "added":"2025-03-01T12:00:00Z"}
//
// where sequence is the manifest sequence number every package of the image
// carries: per class, in the order images were added, and format is the
// image's kind: native, delivered in fotad's signed packages, or raw,
// delivered byte for byte as uploaded (a vendor-signed image). Without
// format= an upload takes its class's profile; format=raw for a class
// nobody declared declares it raw; a format other than a declared class's
// profile is a 400. A package request
//
//	{"image":"1.1.0","installed":"f57087ca...","class":"sensor-a","full":false}
//
// makes (once, then reuses) a delta from the installed image when it is
// stored and the delta package is smaller, else the full image; the answer
// gives the package's id (the SHA-256 of its bytes), format, size and
// manifest fields, full_size, delta_size when a delta was made, and the
// reason when the package is a full image. 409 when the classes differ or
// the device runs the image or a later one already, 404 for an unknown
// image, 400 for a version several classes have without "class". Bytes
// downloads are application/octet-stream with the digest as ETag and
// answer Range requests. The private signing key never appears in an
// answer.
//
// # Device classes
//
// With [Config.Classes] set (otherwise 503 "device classes not enabled"):
//
//	POST   /api/v1/classes          declare a class ([ClassView] with its name): 201; 409 if declared already
//	GET    /api/v1/classes          {"classes":[view...]}: the declared classes and those of stored images, by name
//	GET    /api/v1/classes/{name}   the declared class, or the default profile (declared false)
//	PUT    /api/v1/classes/{name}   declare (201) or replace (200) a class; a body name must match the path
//	DELETE /api/v1/classes/{name}   204; 404 if not declared; 409 while images of the class are stored
//
// A class view is
//
//	{"name":"nrf-a","profile":"raw","delta":false,"method":"auto","block_size":512,"scheme":"coaps",
//	 "deadline":"36h","success":["result","version"],"declared":true,"changed":"2025-03-01T12:00:00Z"}
//
// where profile is native (fotad's packages) or raw (the uploaded file as
// it is), delta says whether the devices apply fotad's delta packages
// (native classes only), method is auto, pull or push, block_size caps
// the Block2 size of downloads (16 to 1024, a power of two; 0 for the
// link's), scheme is the Package URI's (auto, coaps or coap), deadline
// bounds one device's update ("" for the server's default) and success
// lists the checks that all hold when an update worked (result, version,
// package). POST and PUT take the view; they ignore declared and changed,
// give empty fields their defaults (native, auto, auto, result and
// version; delta is off unless set) and answer 400 for a bad field, 409
// when the class holds images of the other profile. A class nobody
// declared is native with deltas.
package api
