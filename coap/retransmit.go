package coap

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/udp/coder"
)

// Retransmitting go-coap's continuation blocks.
//
// go-coap retransmits a confirmable request only while the call that sent
// it waits for the acknowledgement. The blocks after the first of a
// block-wise transfer the server drives (Block1 of a push of /5/0/0,
// Block2 of a large read) are written from go-coap's response path
// instead, asynchronously, and their retransmission entry is dropped as
// soon as they are written: one of them lost on the air stalls the whole
// transfer until the operation's deadline. On a lossy NB-IoT link a push
// of a few hundred blocks would never finish.
//
// secureConn therefore keeps the last such request it wrote (the server
// has one outstanding per session: NSTART 1) and the session tick sends
// it again, same bytes and Message ID, after ACK_TIMEOUT, doubling, up to
// MAX_RETRANSMIT times (RFC 7252 §4.2), until an Acknowledgement or Reset
// with its Message ID is read. The device answers a duplicate from its
// own cache, so a copy that was not lost costs it nothing.

// Transmission parameters (RFC 7252 §4.8).
const (
	ackTimeout    = 2 * time.Second
	maxRetransmit = 4
)

// continuation is the last continuation block a session wrote.
type continuation struct {
	// pending mirrors msg != nil, so that reading a message (every
	// datagram of the session) takes no lock when nothing is outstanding.
	pending atomic.Bool
	mu      sync.Mutex
	msg     []byte // nil: none outstanding
	mid     uint16
	next    time.Time
	timeout time.Duration
	sent    int // retransmissions so far
}

// wrote records b when it is a confirmable request carrying a Block1 or
// Block2 option with a block number above 0.
func (c *continuation) wrote(b []byte, now time.Time) {
	if len(b) < 4 || b[0]>>6 != 1 || (b[0]>>4)&3 != 0 || b[1] == 0 || b[1] >= 32 {
		return // not a confirmable request
	}
	if !laterBlock(b) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	mid := uint16(b[2])<<8 | uint16(b[3])
	if c.msg != nil && c.mid == mid {
		return // our own retransmission
	}
	c.msg = append(c.msg[:0], b...)
	c.mid, c.sent, c.timeout, c.next = mid, 0, ackTimeout, now.Add(ackTimeout)
	c.pending.Store(true)
}

// laterBlock reports whether the request carries a Block1 or Block2
// option with a block number above 0.
func laterBlock(b []byte) bool {
	var opts [16]message.Option
	m := message.Message{Options: opts[:0]}
	if _, err := coder.DefaultCoder.Decode(b, &m); err != nil {
		return false
	}
	for _, id := range []message.OptionID{message.Block1, message.Block2} {
		if v, err := m.Options.GetUint32(id); err == nil && v>>4 > 0 {
			return true
		}
	}
	return false
}

// read clears the outstanding block when b acknowledges or resets it.
func (c *continuation) read(b []byte) {
	if !c.pending.Load() || len(b) < 4 || b[0]>>6 != 1 || (b[0]>>4)&3 < 2 {
		return // nothing outstanding, or not an Acknowledgement or Reset
	}
	mid := uint16(b[2])<<8 | uint16(b[3])
	c.mu.Lock()
	if c.msg != nil && c.mid == mid {
		c.msg = nil
		c.pending.Store(false)
	}
	c.mu.Unlock()
}

// due returns the block to send again now, if any, and counts it; after
// MAX_RETRANSMIT it gives up (the operation's deadline ends the transfer).
func (c *continuation) due(now time.Time) []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.msg == nil || now.Before(c.next) {
		return nil
	}
	if c.sent >= maxRetransmit {
		c.msg = nil
		c.pending.Store(false)
		return nil
	}
	c.sent++
	c.timeout *= 2
	c.next = now.Add(c.timeout)
	return append([]byte(nil), c.msg...)
}

// Write sends b and remembers it when it is a continuation block.
func (c *secureConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	if err == nil {
		c.cont.wrote(b, time.Now())
	}
	return n, err
}

// Read reads the next message and notes the acknowledgement of an
// outstanding continuation block.
func (c *secureConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 {
		c.cont.read(b[:n])
	}
	return n, err
}

// retransmit sends the outstanding continuation block again when due.
func (c *secureConn) retransmit(now time.Time) {
	if b := c.cont.due(now); b != nil {
		_, _ = c.Conn.Write(b)
	}
}
