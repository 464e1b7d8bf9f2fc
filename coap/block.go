package coap

import (
	"fmt"
	"math/bits"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/pool"
)

// Block is a Block1 or Block2 option (RFC 7959 §2.2): the block number,
// the block size (16-1024, a power of two) and whether more blocks follow.
// The zero Block (Size 0) means the option is absent.
type Block struct {
	Num  uint32
	Size int
	More bool
}

// Present reports whether the option is set.
func (b Block) Present() bool { return b.Size != 0 }

// Offset is the byte offset of the block in the whole body.
func (b Block) Offset() int64 { return int64(b.Num) * int64(b.Size) }

func (b Block) String() string { return fmt.Sprintf("%d/%d/%d", b.Num, btoi(b.More), b.Size) }

func btoi(v bool) int {
	if v {
		return 1
	}
	return 0
}

// encode packs the option value; Size must be a power of two in 16-1024.
func (b Block) encode() (uint32, error) {
	szx := bits.TrailingZeros(uint(b.Size)) - 4
	if b.Size&(b.Size-1) != 0 || szx < 0 || szx > 6 || b.Num >= 1<<20 {
		return 0, fmt.Errorf("block option %s out of range", b)
	}
	v := b.Num<<4 | uint32(szx)
	if b.More {
		v |= 1 << 3
	}
	return v, nil
}

func decodeBlock(v uint32) (Block, error) {
	szx := v & 7
	if szx == 7 {
		return Block{}, fmt.Errorf("block option SZX 7 (BERT) is not supported")
	}
	return Block{Num: v >> 4, Size: 1 << (szx + 4), More: v&(1<<3) != 0}, nil
}

// setBlockOptions writes the block options of a message.
func setBlockOptions(m *pool.Message, id message.OptionID, b Block) error {
	if !b.Present() {
		return nil
	}
	v, err := b.encode()
	if err != nil {
		return err
	}
	m.SetOptionUint32(id, v)
	return nil
}

// blockOption reads a block option; absent gives the zero Block.
func blockOption(m *pool.Message, id message.OptionID) (Block, error) {
	v, err := m.GetOptionUint32(id)
	if err != nil {
		return Block{}, nil
	}
	return decodeBlock(v)
}

// Bytes a Block2 response adds to its payload on the wire, at most:
// IPv6 and UDP (48), a DTLS 1.2 record with AES-CCM-8 and an 8-byte
// Connection ID (29 + 9), and the CoAP header with an 8-byte token, ETag
// (8), Block2, Size2 and Content-Format options and the payload marker
// (32). With IPv4 the sum is 20 bytes less.
const blockOverhead = 48 + 38 + 32

// DefaultLinkMTU is the IP MTU 3GPP TS 24.301 recommends for cellular
// devices; 1,024-byte blocks fit it.
const DefaultLinkMTU = 1358

// BlockSizeForMTU returns the largest block size (a power of two in
// 16-1024) whose Block2 response fits one IP datagram of the link's MTU,
// so that no block is fragmented: 1024 at 1,358 or 1,280 bytes, 512 at
// 680, 256 at 576. A zero MTU means DefaultLinkMTU; an MTU too small for
// any block gives 16, which the link then fragments.
func BlockSizeForMTU(mtu int) int {
	if mtu <= 0 {
		mtu = DefaultLinkMTU
	}
	size := 1024
	for size > 16 && size+blockOverhead > mtu {
		size /= 2
	}
	return size
}
