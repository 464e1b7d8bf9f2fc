package coap

import (
	"bytes"
	"context"
	"testing"
	"time"
)

func TestBlockOptionCodec(t *testing.T) {
	for _, b := range []Block{{Num: 0, Size: 16}, {Num: 5, Size: 512, More: true}, {Num: 1<<20 - 1, Size: 1024}} {
		v, err := b.encode()
		if err != nil {
			t.Fatal(err)
		}
		got, err := decodeBlock(v)
		if err != nil || got != b {
			t.Fatalf("%s: decoded %s %v", b, got, err)
		}
	}
	for _, b := range []Block{{Size: 24}, {Size: 2048}, {Size: 8}, {Num: 1 << 20, Size: 16}} {
		if _, err := b.encode(); err == nil {
			t.Errorf("%s encoded", b)
		}
	}
	if _, err := decodeBlock(7); err == nil {
		t.Error("BERT accepted")
	}
}

// TestManualBlock2 downloads a body block by block with go-coap's
// block-wise layer off on the client, as the simulated device does: any
// block on demand, with the ETag in every block and Size2 when asked.
func TestManualBlock2(t *testing.T) {
	body := bytes.Repeat([]byte("firmware-"), 400) // 3,600 bytes
	etag := []byte{0xe7, 0x01}
	s := startServer(t, func(c *Config) {
		c.Handler = HandlerFunc(func(_ context.Context, r *Request) Response {
			return Response{Code: Content, ContentFormat: 42, Payload: body, ETag: etag, Size2: int64(len(body))}
		})
	})
	c, err := dialPSK(t, s.DTLSAddr(), "dev-1", testKeys["dev-1"], func(c *ClientConfig) { c.NoBlockwise = true })
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var got []byte
	for _, num := range []uint32{0, 1, 2, 3, 4, 5, 6, 7} {
		req := NewRequest(GET, "/fw")
		req.Block2 = Block{Num: num, Size: 512}
		req.AskSize2 = num == 0
		resp, err := c.Do(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		if resp.Block2.Num != num || resp.Block2.Size != 512 || !bytes.Equal(resp.ETag, etag) {
			t.Fatalf("block %d: %s etag %x", num, resp.Block2, resp.ETag)
		}
		if num == 0 && resp.Size2 != int64(len(body)) {
			t.Fatalf("Size2 %d, want %d", resp.Size2, len(body))
		}
		got = append(got, resp.Payload...)
		if !resp.Block2.More {
			break
		}
	}
	if !bytes.Equal(got, body) {
		t.Fatalf("downloaded %d bytes, want %d", len(got), len(body))
	}
	// Random access: block 5 alone.
	req := NewRequest(GET, "/fw")
	req.Block2 = Block{Num: 5, Size: 256}
	resp, err := c.Do(ctx, req)
	if err != nil || !bytes.Equal(resp.Payload, body[5*256:6*256]) {
		t.Fatalf("block 5 of 256: %s %v", resp.Block2, err)
	}
}

// TestBlockSizeForMTU checks the sizes links.md lists for the MTUs of
// cellular links (IPv4, CCM-8, CID 8), which the IPv6 bound keeps.
func TestBlockSizeForMTU(t *testing.T) {
	for _, tc := range []struct{ mtu, want int }{
		{0, 1024}, {1500, 1024}, {1358, 1024}, {1280, 1024}, {1152, 1024}, {1141, 512},
		{680, 512}, {629, 256}, {576, 256}, {512, 256}, {373, 128}, {100, 16}, {1, 16},
	} {
		if got := BlockSizeForMTU(tc.mtu); got != tc.want {
			t.Errorf("BlockSizeForMTU(%d) = %d, want %d", tc.mtu, got, tc.want)
		}
	}
}
