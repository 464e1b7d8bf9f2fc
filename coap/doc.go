// Package coap is the transport of the server: CoAP over UDP and over DTLS
// 1.2 (PSK and X.509, with Connection ID), built on go-coap and pion/dtls.
//
// It owns the sockets, the DTLS handshakes, the binding of each session to
// the identity it proved, and every transport parameter that matters on a
// cellular link (MTU, block-wise limits, retransmission, idle timeouts). The
// protocol above it sees only Request, Response and Session; no other
// package imports go-coap or pion.
package coap
