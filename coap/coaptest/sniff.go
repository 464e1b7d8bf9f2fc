package coaptest

import (
	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/udp/coder"
)

// GetRequest is what a test sniffing plain CoAP datagrams sees of a GET.
// (Its block is not a coap.Block: package coap's own tests use this
// package.)
type GetRequest struct {
	// Block2: number, size and more flag; Size 0 when absent.
	Num   uint32
	Size  int
	More  bool
	Size2 bool // Size2 asked for
}

// ParseGet decodes a plain CoAP datagram and reports whether it is a GET;
// tests outside coap/ use it so that only this layer knows go-coap.
func ParseGet(b []byte) (GetRequest, bool) {
	m := message.Message{Options: make(message.Options, 0, 16)}
	if _, err := coder.DefaultCoder.Decode(b, &m); err != nil || m.Code != codes.GET {
		return GetRequest{}, false
	}
	var r GetRequest
	if v, err := m.Options.GetUint32(message.Block2); err == nil {
		r.Num, r.Size, r.More = v>>4, 1<<(v&7+4), v&8 != 0
	}
	r.Size2 = m.Options.HasOption(message.Size2)
	return r, true
}
