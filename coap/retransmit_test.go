package coap

import (
	"bytes"
	"testing"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/udp/coder"
)

// encode builds a datagram of the given type and code with a Block1
// option of block num (none when num < 0).
func encode(t *testing.T, typ message.Type, code codes.Code, mid int32, num int) []byte {
	t.Helper()
	var opts message.Options
	buf := make([]byte, 16)
	if num >= 0 {
		v, err := Block{Num: uint32(num), Size: 256, More: true}.encode()
		if err != nil {
			t.Fatal(err)
		}
		opts, _, _ = opts.SetUint32(buf, message.Block1, v)
	}
	m := message.Message{Type: typ, Code: code, MessageID: mid, Token: []byte{1, 2}, Options: opts, Payload: []byte("data")}
	out := make([]byte, 256)
	n, err := coder.DefaultCoder.Encode(m, out)
	if err != nil {
		t.Fatal(err)
	}
	return out[:n]
}

func TestContinuationRetransmission(t *testing.T) {
	now := time.Unix(1000, 0)
	var c continuation
	first := encode(t, message.Confirmable, codes.PUT, 10, 0)
	c.wrote(first, now)
	if c.due(now.Add(time.Hour)) != nil {
		t.Fatal("block 0 tracked: go-coap retransmits it itself")
	}
	for _, b := range [][]byte{
		encode(t, message.Acknowledgement, codes.Continue, 11, 1), // a response
		encode(t, message.NonConfirmable, codes.PUT, 11, 1),       // not confirmable
		encode(t, message.Confirmable, codes.GET, 11, -1),         // no block option
		{0x40}, // too short
	} {
		c.wrote(b, now)
		if c.due(now.Add(time.Hour)) != nil {
			t.Fatalf("% x tracked", b)
		}
	}

	block := encode(t, message.Confirmable, codes.PUT, 12, 3)
	c.wrote(block, now)
	if c.due(now.Add(ackTimeout-time.Millisecond)) != nil {
		t.Fatal("sent again before ACK_TIMEOUT")
	}
	// Retransmissions after 2, 4, 8 and 16 s (each timeout from the last
	// send), then it gives up.
	at := now
	for i, wait := range []time.Duration{2, 4, 8, 16} {
		at = at.Add(wait * time.Second)
		got := c.due(at)
		if !bytes.Equal(got, block) {
			t.Fatalf("retransmission %d at +%v: % x, want the block again", i+1, at.Sub(now), got)
		}
		c.wrote(got, at) // the retransmission goes through Write too
		if c.due(at.Add(time.Millisecond)) != nil {
			t.Fatalf("retransmission %d sent twice", i+1)
		}
	}
	if got := c.due(at.Add(time.Hour)); got != nil {
		t.Fatal("more than MAX_RETRANSMIT retransmissions")
	}

	// An acknowledgement of another Message ID changes nothing; its own
	// ends the retransmissions.
	c.wrote(encode(t, message.Confirmable, codes.PUT, 13, 4), now)
	c.read(encode(t, message.Acknowledgement, codes.Continue, 12, 3))
	if c.due(now.Add(ackTimeout)) == nil {
		t.Fatal("an acknowledgement of another message cleared the block")
	}
	c.read(encode(t, message.Acknowledgement, codes.Continue, 13, 4))
	if c.due(now.Add(time.Hour)) != nil {
		t.Fatal("retransmitted after its acknowledgement")
	}
	c.wrote(encode(t, message.Confirmable, codes.PUT, 14, 5), now)
	c.read(encode(t, message.Reset, codes.Empty, 14, -1))
	if c.due(now.Add(time.Hour)) != nil {
		t.Fatal("retransmitted after a reset")
	}
}
