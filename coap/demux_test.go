package coap

import (
	"net"
	"net/netip"
	"testing"
)

// discardConn is a PacketConn that reads nothing and drops writes.
type discardConn struct {
	net.PacketConn
	closed chan struct{}
}

func newDiscardConn() discardConn { return discardConn{closed: make(chan struct{})} }

func (c discardConn) ReadFromUDPAddrPort([]byte) (int, netip.AddrPort, error) {
	<-c.closed
	return 0, netip.AddrPort{}, net.ErrClosed
}
func (discardConn) WriteToUDPAddrPort(b []byte, _ netip.AddrPort) (int, error) { return len(b), nil }
func (c discardConn) Close() error                                             { close(c.closed); return nil }
func (discardConn) LocalAddr() net.Addr                                        { return &net.UDPAddr{} }

// clientHello is the start of a DTLS 1.2 ClientHello record.
var clientHello = []byte{22, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 40, 1, 0, 0, 36}

func TestNormalizeHelloVersion(t *testing.T) {
	for _, tc := range []struct {
		name   string
		in     [2]byte
		expect [2]byte
	}{
		{"dtls 1.2 kept", [2]byte{0xfe, 0xfd}, [2]byte{0xfe, 0xfd}},
		{"dtls 1.0 kept", [2]byte{0xfe, 0xff}, [2]byte{0xfe, 0xff}},
		{"mbedtls 0xfe00 rewritten", [2]byte{0xfe, 0x00}, [2]byte{0xfe, 0xff}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := append([]byte(nil), clientHello...)
			b[1], b[2] = tc.in[0], tc.in[1]
			normalizeHelloVersion(b)
			if [2]byte{b[1], b[2]} != tc.expect {
				t.Fatalf("version %x, want %x", b[1:3], tc.expect)
			}
		})
	}
	appData := []byte{23, 0xfe, 0x00, 0, 1, 0, 0, 0, 0, 0, 1, 0, 0}
	normalizeHelloVersion(appData)
	if appData[2] != 0x00 {
		t.Fatal("rewrote a record that is not a ClientHello")
	}
}

func TestDemuxRouting(t *testing.T) {
	d := newDemux(newDiscardConn(), 3)
	defer d.close()
	a := netip.MustParseAddrPort("127.0.0.1:1000")
	d.route([]byte{23, 0xfe, 0xfd, 0, 1, 0, 0, 0, 0, 0, 1, 0, 0}, a)
	if len(d.accept) != 0 {
		t.Fatal("application data from an unknown peer opened a conn")
	}
	d.route(append([]byte(nil), clientHello...), a)
	c, err := d.acceptConn()
	if err != nil || c == nil {
		t.Fatalf("ClientHello did not open a conn: %v", err)
	}
	d.route(append([]byte(nil), clientHello...), a) // retransmission
	if len(d.accept) != 0 {
		t.Fatal("retransmitted ClientHello of an unfinished handshake opened a second conn")
	}
	// A record carrying c's Connection ID from a new address follows c.
	b := []byte{contentTLS12CID, 0xfe, 0xfd, 0, 1, 0, 0, 0, 0, 0, 2}
	b = append(append(b, c.cid...), 0, 0)
	moved := netip.MustParseAddrPort("127.0.0.1:2000")
	d.route(b, moved)
	if d.byAddr[moved] != c || d.byAddr[a] != nil {
		t.Fatal("conn did not follow its Connection ID to the new address")
	}
	if len(c.queue) != 3 {
		t.Fatalf("conn got %d datagrams, want 3", len(c.queue))
	}
	_ = c.Close()
	if len(d.byCID) != 0 || len(d.byAddr) != 0 {
		t.Fatal("closed conn still routed")
	}
}

// FuzzDemuxRoute feeds arbitrary datagrams, as any host on the network
// can, to the record router: it must never panic.
func FuzzDemuxRoute(f *testing.F) {
	f.Add(clientHello)
	f.Add([]byte{contentTLS12CID, 0xfe, 0xfd, 0, 1, 0, 0, 0, 0, 0, 2, 1, 2, 3, 0, 0})
	f.Add([]byte{22, 0xfe, 0x00, 0, 0})
	d := newDemux(newDiscardConn(), 3)
	defer d.close()
	a := netip.MustParseAddrPort("127.0.0.1:1000")
	f.Fuzz(func(t *testing.T, b []byte) {
		d.route(b, a)
		for len(d.accept) > 0 {
			c := <-d.accept
			_ = c.Close()
		}
	})
}

// BenchmarkDemuxRoute routes application records of an established peer:
// the per-packet cost every CoAP block pays.
func BenchmarkDemuxRoute(b *testing.B) {
	d := newDemux(newDiscardConn(), 3)
	defer d.close()
	a := netip.MustParseAddrPort("127.0.0.1:1000")
	d.route(append([]byte(nil), clientHello...), a)
	c, _ := d.acceptConn()
	rec := append([]byte{contentTLS12CID, 0xfe, 0xfd, 0, 1, 0, 0, 0, 0, 0, 2}, c.cid...)
	rec = append(rec, make([]byte, 1024)...)
	b.ReportAllocs()
	b.SetBytes(int64(len(rec)))
	for b.Loop() {
		d.route(rec, a)
		(<-c.queue).free() // as ReadFrom does
	}
}
