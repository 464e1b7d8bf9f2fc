package coap

import (
	"bytes"
	"testing"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/udp/coder"
)

// fuzzPublications are what the fuzzer's requests are answered from: one
// blob at the server's block size, one capped at 64-byte blocks.
func fuzzPublications() []*publication {
	image := testImage(5000)
	b := BytesBlob(image)
	mk := func(maxBlock int) *publication {
		return &publication{path: "/fw/x", owner: dev1, blob: b, size: b.Size(), etag: b.ETag(), maxBlock: maxBlock}
	}
	return []*publication{mk(1024), mk(64)}
}

// FuzzBlobRequest feeds datagrams through go-coap's decoder, the blob
// request parser, the planner and the encoder, and checks every response
// against the blob: the bytes a peer controls must never make the server
// send anything but the block it asked for, or an error.
func FuzzBlobRequest(f *testing.F) {
	for _, m := range []message.Message{
		blobGet("/fw/x", message.Confirmable, 1, []byte{1}, nil),
		blobGet("/fw/x", message.Confirmable, 2, []byte{1, 2}, []byte{0x16}),
		blobGet("/fw/x", message.NonConfirmable, 3, nil, []byte{0x4e, 0x05}),
		blobGet("/fw/x", message.Confirmable, 4, []byte{9}, []byte{0x07}),
		blobGet("/fw/x/y", message.Confirmable, 5, nil, nil),
	} {
		buf := make([]byte, 128)
		n, err := coder.DefaultCoder.Encode(m, buf)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(buf[:n], false)
	}
	image := testImage(5000)
	pubs := fuzzPublications()
	f.Fuzz(func(t *testing.T, datagram []byte, capped bool) {
		in := message.Message{Options: make(message.Options, 0, 32)}
		if _, err := coder.DefaultCoder.Decode(datagram, &in); err != nil {
			return
		}
		req, ok := parseBlobRequest(in.Type, in.Code, in.Options)
		if !ok {
			return
		}
		req.mid, req.token = in.MessageID, in.Token
		p := pubs[0]
		if capped {
			p = pubs[1]
		}
		if req.id == nil {
			p = nil
		}
		plan := planBlob(&req, p)
		out, r, err := encodeBlobReply(make([]byte, blobBufSize), &req, 77, plan, p)
		if err != nil {
			t.Fatalf("encode %+v: %v", r, err)
		}
		resp := message.Message{Options: make(message.Options, 0, 8)}
		if _, err := coder.DefaultCoder.Decode(out, &resp); err != nil {
			t.Fatalf("response does not decode: %v", err)
		}
		wantType, wantMID := message.NonConfirmable, int32(77)
		if in.Type == message.Confirmable {
			wantType, wantMID = message.Acknowledgement, in.MessageID
		}
		if resp.Type != wantType || resp.MessageID != wantMID || !bytes.Equal(resp.Token, in.Token) {
			t.Fatalf("response %s to %s", resp.String(), in.String())
		}
		if resp.Code != codes.Content {
			if resp.Options.HasOption(message.ETag) || resp.Options.HasOption(message.Block2) {
				t.Fatalf("error response with ETag or Block2: %s", resp.String())
			}
			return
		}
		if etag, _ := resp.Options.GetBytes(message.ETag); !bytes.Equal(etag, p.etag) {
			t.Fatalf("ETag %x", etag)
		}
		off, size := int64(0), len(image)
		if v, err := resp.Options.GetUint32(message.Block2); err == nil {
			b, err := decodeBlock(v)
			if err != nil || b.Size > p.maxBlock || (req.block2.Present() && b.Size > req.block2.Size) {
				t.Fatalf("Block2 %s for request %s (max %d)", b, req.block2, p.maxBlock)
			}
			if req.block2.Present() && b.Offset() != req.block2.Offset() {
				t.Fatalf("block %s does not start where %s does", b, req.block2)
			}
			off, size = b.Offset(), b.Size
			if b.More != (off+int64(len(resp.Payload)) < int64(len(image))) {
				t.Fatalf("M=%v at %d+%d", b.More, off, len(resp.Payload))
			}
		} else if req.block2.Present() {
			t.Fatal("Block2 request answered without Block2")
		}
		end := min(off+int64(size), int64(len(image)))
		if !bytes.Equal(resp.Payload, image[off:end]) {
			t.Fatalf("payload of %d bytes is not bytes %d-%d", len(resp.Payload), off, end)
		}
	})
}

func TestRecentRequests(t *testing.T) {
	var r recentRequests
	now := time.Now()
	req := func(mid int32, token ...byte) *blobRequest { return &blobRequest{mid: mid, token: token} }
	if r.duplicate(req(1, 0xa), now) {
		t.Fatal("first request is a duplicate")
	}
	if !r.duplicate(req(1, 0xa), now.Add(time.Second)) {
		t.Fatal("retransmission not detected")
	}
	if r.duplicate(req(1, 0xb), now) {
		t.Fatal("same Message ID with another token is a duplicate")
	}
	if r.duplicate(req(2, 0xa), now.Add(250*time.Second)) || r.duplicate(req(1, 0xa), now.Add(248*time.Second)) {
		t.Fatal("a request older than EXCHANGE_LIFETIME is remembered")
	}
	for mid := int32(100); mid < 100+recentLen; mid++ {
		r.duplicate(req(mid), now)
	}
	if r.duplicate(req(2, 0xa), now) {
		t.Fatal("the ring did not wrap")
	}
}

// BenchmarkBlobBlock is the server's work for one 1024-byte block, network
// aside: parse, plan, read and encode.
func BenchmarkBlobBlock(b *testing.B) {
	p := fuzzPublications()[0]
	in := blobGet("/fw/x", message.Confirmable, 1, []byte{1, 2, 3, 4}, []byte{0x36})
	buf := make([]byte, blobBufSize)
	b.ReportAllocs()
	for b.Loop() {
		req, _ := parseBlobRequest(in.Type, in.Code, in.Options)
		req.mid, req.token = in.MessageID, in.Token
		if _, _, err := encodeBlobReply(buf, &req, 0, planBlob(&req, p), p); err != nil {
			b.Fatal(err)
		}
	}
}
