package coap

import (
	"context"
	"fmt"
	"net"
)

// Code is a CoAP method or response code, class<<5 | detail (RFC 7252 §3).
type Code uint8

// Method codes.
const (
	GET    Code = 1
	POST   Code = 2
	PUT    Code = 3
	DELETE Code = 4
	FETCH  Code = 5
	PATCH  Code = 6
	IPATCH Code = 7
)

// Response codes used by the server.
const (
	Created                 Code = 2<<5 | 1
	Deleted                 Code = 2<<5 | 2
	Valid                   Code = 2<<5 | 3
	Changed                 Code = 2<<5 | 4
	Content                 Code = 2<<5 | 5
	Continue                Code = 2<<5 | 31
	BadRequest              Code = 4 << 5
	Unauthorized            Code = 4<<5 | 1
	BadOption               Code = 4<<5 | 2
	Forbidden               Code = 4<<5 | 3
	NotFound                Code = 4<<5 | 4
	MethodNotAllowed        Code = 4<<5 | 5
	NotAcceptable           Code = 4<<5 | 6
	RequestEntityIncomplete Code = 4<<5 | 8
	PreconditionFailed      Code = 4<<5 | 12
	RequestEntityTooLarge   Code = 4<<5 | 13
	UnsupportedFormat       Code = 4<<5 | 15
	InternalServerError     Code = 5 << 5
	NotImplemented          Code = 5<<5 | 1
	ServiceUnavailable      Code = 5<<5 | 3
	GatewayTimeout          Code = 5<<5 | 4
)

// String returns the dotted form, e.g. "2.01".
func (c Code) String() string { return fmt.Sprintf("%d.%02d", c>>5, c&0x1f) }

// IsSuccess reports a 2.xx code.
func (c Code) IsSuccess() bool { return c>>5 == 2 }

// NoFormat marks an absent Content-Format or Accept option.
const NoFormat = -1

// Request is a CoAP request received from a peer.
type Request struct {
	Method Code
	// Path is the Uri-Path, slash-joined with a leading slash: "/rd/4f1a".
	Path string
	// Query holds the Uri-Query options in the order received.
	Query []string
	// ContentFormat and Accept are NoFormat when the option is absent.
	ContentFormat int
	Accept        int
	Payload       []byte
	// Token is the request's token. Set on a request to send, it reuses a
	// token (the cancellation of an observation must carry the token of the
	// observe request); nil draws a fresh one.
	Token []byte
	// Observe is the request's Observe option (RFC 7641).
	Observe ObserveFlag
	// Block1 and Block2 are the block-wise options (RFC 7959), set on a
	// request only by peers that do block-wise transfers themselves
	// (ClientConfig.NoBlockwise); otherwise go-coap handles them.
	Block1, Block2 Block
	// Size1 is the Size1 option of a Block1 request: the whole body's
	// size, 0 when absent. AskSize2 asks for the Size2 option (a Size2 of
	// 0 in the request, RFC 7959 §4).
	Size1    int64
	AskSize2 bool
	// Identity is what the peer proved when its session opened.
	Identity Identity
	// RemoteAddr is the peer's address as this request arrived.
	RemoteAddr net.Addr
	// Session is the peer's session, the way back to it for
	// server-initiated requests. It is nil for requests built in tests.
	Session *Session
}

// ObserveFlag is the Observe option of a request. The zero value is no
// option, so that a Request literal never observes by accident.
type ObserveFlag uint8

// Observe option values of a request (RFC 7641 §2): register is 0 on the
// wire, deregister 1.
const (
	NoObserve ObserveFlag = iota
	ObserveRegister
	ObserveDeregister
)

// NewRequest returns a request with no Content-Format, Accept, Observe or
// payload.
func NewRequest(method Code, path string) Request {
	return Request{Method: method, Path: path, ContentFormat: NoFormat, Accept: NoFormat}
}

// Response is the answer to a Request.
type Response struct {
	Code         Code
	LocationPath []string
	// ContentFormat is NoFormat when the response has no payload.
	ContentFormat int
	Payload       []byte
	// Observed marks a response that carries the Observe option with the
	// sequence number ObserveSeq: a handler sets it to accept an
	// observation, and every notification received has it.
	Observed   bool
	ObserveSeq uint32
	// Block1 and Block2 are the block-wise options of the response.
	Block1, Block2 Block
	// ETag is the response's entity tag; Size2 the whole body's size
	// (0 when absent).
	ETag  []byte
	Size2 int64
	// Then, if set, runs on its own goroutine once the response has been
	// written: work the peer should see only after this answer, such as
	// the requests queued for a device that just woke up.
	Then func()
}

// Reply returns a payload-less response with code c.
func Reply(c Code) Response { return Response{Code: c, ContentFormat: NoFormat} }

// Handler answers requests. ServeCoAP runs on the session's receive
// goroutine: a slow handler delays only that peer.
type Handler interface {
	ServeCoAP(ctx context.Context, r *Request) Response
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, r *Request) Response

// ServeCoAP calls f.
func (f HandlerFunc) ServeCoAP(ctx context.Context, r *Request) Response { return f(ctx, r) }

// SecurityMode says how a session's peer authenticated.
type SecurityMode uint8

const (
	// NoSec is plain CoAP: the peer is known only by its address.
	NoSec SecurityMode = iota
	// PSK is DTLS with a pre-shared key; the identity is the PSK identity.
	PSK
	// X509 is DTLS with a client certificate; the identity is its Common Name.
	X509
)

func (m SecurityMode) String() string {
	switch m {
	case NoSec:
		return "nosec"
	case PSK:
		return "psk"
	case X509:
		return "x509"
	}
	return "unknown"
}

// Identity is what a session's peer proved during the handshake.
type Identity struct {
	Mode SecurityMode
	Name string
}

// addrString is net.Addr.String that tolerates nil.
func addrString(a net.Addr) string {
	if a == nil {
		return ""
	}
	return a.String()
}
