package campaign

import (
	"math"
	"time"
)

// Link is a link profile a plan estimates transfer times on.
type Link struct {
	Name string
	// RateDown and RateUp are in bit/s.
	RateDown, RateUp int64
	RTT              time.Duration
	// MTU sizes the blocks (coap.BlockSizeForMTU) unless the campaign
	// sets a block size.
	MTU int
}

// Per-exchange overheads of one Block2 exchange over IPv4 and DTLS
// CCM-8 (links.md, measured on the wire): the response carries the block
// and 78 bytes, the request 75.
const (
	blockDownOverhead = 78
	blockUpBytes      = 75
)

// StopAndWait is links.md's transfer-time model for a Block2 download of
// size bytes in blocks of block bytes, one request in flight:
// T_sw = N (RTT + s_d + s_u), N = ceil(size / block),
// s_d = (block + 78) 8 / R_down, s_u = 75 8 / R_up. It leaves out the
// DTLS handshake and the trigger exchange, and assumes no loss.
func StopAndWait(size int64, block int, l Link) time.Duration {
	if size <= 0 || block <= 0 || l.RateDown <= 0 || l.RateUp <= 0 {
		return 0
	}
	n := math.Ceil(float64(size) / float64(block))
	sd := float64(block+blockDownOverhead) * 8 / float64(l.RateDown)
	su := float64(blockUpBytes) * 8 / float64(l.RateUp)
	return time.Duration(n * (l.RTT.Seconds() + sd + su) * float64(time.Second))
}
