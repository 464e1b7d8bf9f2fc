package coap

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	piondtls "github.com/pion/dtls/v3"
	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/udp/coder"
)

// testImage returns n bytes of deterministic noise.
func testImage(n int) []byte {
	r := rand.New(rand.NewPCG(uint64(n), 7))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

var dev1 = Identity{Mode: PSK, Name: "dev-1"}

// handlerNotFound is the payload of the 4.04 blobServer's Handler gives
// for paths under /fw, as the LwM2M handler answers any path it does not
// serve: a test tells by it who answered.
const handlerNotFound = "handler"

// blobServer starts a server whose Handler answers 4.04 under /fw.
func blobServer(t *testing.T, mutate func(*Config)) *Server {
	t.Helper()
	return startServer(t, func(c *Config) {
		c.Handler = HandlerFunc(func(ctx context.Context, r *Request) Response {
			if strings.HasPrefix(r.Path, "/"+BlobPathSegment) {
				return Response{Code: NotFound, ContentFormat: 0, Payload: []byte(handlerNotFound)}
			}
			return whoami.ServeCoAP(ctx, r)
		})
		if mutate != nil {
			mutate(c)
		}
	})
}

// blockClient is a device that does block-wise transfers itself.
func blockClient(t *testing.T, s *Server, id string) *ClientConn {
	t.Helper()
	c, err := dialPSK(t, s.DTLSAddr(), id, testKeys[id], func(c *ClientConfig) { c.NoBlockwise = true })
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func fetch(t testing.TB, c *ClientConn, path string, b Block, askSize2 bool) Response {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req := NewRequest(GET, path)
	req.Block2, req.AskSize2 = b, askSize2
	resp, err := c.Do(ctx, req)
	if err != nil {
		t.Fatalf("GET %s block %s: %v", path, b, err)
	}
	return resp
}

// download fetches a blob from block `from` to its end at one block size
// and checks every block's options.
func download(t testing.TB, c *ClientConn, path string, size int, from uint32, image []byte) []byte {
	t.Helper()
	etag := BytesBlob(image).ETag()
	var got []byte
	for num := from; ; num++ {
		resp := fetch(t, c, path, Block{Num: num, Size: size}, num == from)
		switch {
		case resp.Code != Content:
			t.Fatalf("block %d/%d: %v", num, size, resp.Code)
		case resp.Block2.Num != num || resp.Block2.Size != size:
			t.Fatalf("asked block %d of %d, got %s", num, size, resp.Block2)
		case !bytes.Equal(resp.ETag, etag):
			t.Fatalf("block %d: ETag %x, want %x", num, resp.ETag, etag)
		case resp.ContentFormat != octetStream:
			t.Fatalf("block %d: Content-Format %d", num, resp.ContentFormat)
		case num == from && resp.Size2 != int64(len(image)):
			t.Fatalf("block %d: Size2 %d, want %d", num, resp.Size2, len(image))
		case resp.Block2.More != (int(num+1)*size < len(image)):
			t.Fatalf("block %d: M=%v with %d bytes", num, resp.Block2.More, len(image))
		}
		got = append(got, resp.Payload...)
		if !resp.Block2.More {
			return got
		}
	}
}

func TestBlobDownloadBlockSizes(t *testing.T) {
	s := blobServer(t, nil)
	c := blockClient(t, s, "dev-1")
	image := testImage(10_007) // not a multiple of any block size
	path, err := s.Publish(dev1, BytesBlob(image), PublishOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(path, "/fw/") || len(path) != len("/fw/")+22 {
		t.Fatalf("path %q", path)
	}
	for _, size := range []int{16, 256, 512, 1024} {
		if got := download(t, c, path, size, 0, image); !bytes.Equal(got, image) {
			t.Fatalf("%d-byte blocks: downloaded %d bytes that differ from the %d published", size, len(got), len(image))
		}
	}
}

func TestBlobRandomAccessAndResume(t *testing.T) {
	s := blobServer(t, nil)
	c := blockClient(t, s, "dev-1")
	image := testImage(20_000)
	path, err := s.Publish(dev1, BytesBlob(image), PublishOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, num := range []uint32{5, 2, 19, 0, 39} {
		resp := fetch(t, c, path, Block{Num: num, Size: 512}, false)
		off := int(num) * 512
		if want := image[off:min(off+512, len(image))]; !bytes.Equal(resp.Payload, want) || resp.Block2.Num != num {
			t.Fatalf("block %d: %s with %d bytes", num, resp.Block2, len(resp.Payload))
		}
		if num != 0 && resp.Size2 != 0 {
			t.Fatalf("block %d carries Size2 %d though not asked for", num, resp.Size2)
		}
	}
	// Resume at block 23 of 256, in a new session (as after a reboot).
	c2 := blockClient(t, s, "dev-1")
	if got := download(t, c2, path, 256, 23, image); !bytes.Equal(got, image[23*256:]) {
		t.Fatalf("resumed download differs")
	}
}

func TestBlobBlockSizeNegotiation(t *testing.T) {
	s := blobServer(t, func(c *Config) { c.MaxBlockSize = 512 })
	c := blockClient(t, s, "dev-1")
	image := testImage(5000)
	small := testImage(300)
	path, _ := s.Publish(dev1, BytesBlob(image), PublishOptions{})
	capped, _ := s.Publish(dev1, BytesBlob(image), PublishOptions{MaxBlock: 128})
	whole, _ := s.Publish(dev1, BytesBlob(small), PublishOptions{})

	cases := []struct {
		name      string
		path      string
		ask       Block
		want      Block
		off, n    int
		wantSize2 bool
	}{
		{"no Block2: block 0 at the server's size", path, Block{}, Block{Num: 0, Size: 512, More: true}, 0, 512, true},
		{"client asks more than the server's max", path, Block{Num: 0, Size: 1024}, Block{Num: 0, Size: 512, More: true}, 0, 512, true},
		{"larger block 2 keeps its offset", path, Block{Num: 2, Size: 1024}, Block{Num: 4, Size: 512, More: true}, 2048, 512, false},
		{"device cap", capped, Block{Num: 1, Size: 1024}, Block{Num: 8, Size: 128, More: true}, 1024, 128, false},
		{"device cap without Block2", capped, Block{}, Block{Num: 0, Size: 128, More: true}, 0, 128, true},
		{"smaller client size wins", capped, Block{Num: 3, Size: 32}, Block{Num: 3, Size: 32, More: true}, 96, 32, false},
		{"last partial block", path, Block{Num: 9, Size: 512}, Block{Num: 9, Size: 512}, 4608, 392, false},
		{"small blob whole, no Block2", whole, Block{}, Block{}, 0, 300, true},
		{"small blob with Block2", whole, Block{Num: 0, Size: 1024}, Block{Num: 0, Size: 512}, 0, 300, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp := fetch(t, c, tc.path, tc.ask, false)
			src := image
			if tc.path == whole {
				src = small
			}
			if resp.Code != Content || resp.Block2 != tc.want {
				t.Fatalf("got %v %s, want %s", resp.Code, resp.Block2, tc.want)
			}
			if !bytes.Equal(resp.Payload, src[tc.off:tc.off+tc.n]) {
				t.Fatalf("payload of %d bytes is not bytes %d-%d", len(resp.Payload), tc.off, tc.off+tc.n)
			}
			if (resp.Size2 == int64(len(src))) != tc.wantSize2 {
				t.Fatalf("Size2 %d", resp.Size2)
			}
		})
	}
}

func TestBlobRefusals(t *testing.T) {
	s := blobServer(t, nil)
	owner := blockClient(t, s, "dev-1")
	other := blockClient(t, s, "dev-2")
	image := testImage(3000)
	path, _ := s.Publish(dev1, BytesBlob(image), PublishOptions{})
	gone, _ := s.Publish(dev1, BytesBlob(image), PublishOptions{})
	if !s.Unpublish(gone) || s.Unpublish(gone) {
		t.Fatal("Unpublish did not report the path's state")
	}
	expired, _ := s.Publish(dev1, BytesBlob(image), PublishOptions{Expires: time.Now().Add(-time.Second)})

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	getBlock := func(path string, b Block) Request {
		r := NewRequest(GET, path)
		r.Block2 = b
		return r
	}
	accept0 := getBlock(path, Block{Num: 0, Size: 512})
	accept0.Accept = 0
	put := NewRequest(PUT, path)
	put.Payload, put.ContentFormat = []byte("x"), octetStream

	for _, tc := range []struct {
		name      string
		c         *ClientConn
		req       Request
		want      Code
		byHandler bool // a path not published: the Handler answers
	}{
		{"another identity", other, getBlock(path, Block{Num: 0, Size: 512}), NotFound, false},
		{"another identity, other method", other, put, NotFound, false},
		{"unpublished", owner, getBlock(gone, Block{Num: 0, Size: 512}), NotFound, true},
		{"expired", owner, getBlock(expired, Block{Num: 0, Size: 512}), NotFound, true},
		{"never published", owner, NewRequest(GET, "/fw/AAAAAAAAAAAAAAAAAAAAAA"), NotFound, true},
		{"bare /fw", owner, NewRequest(GET, "/fw"), NotFound, true},
		{"path too deep", owner, NewRequest(GET, path+"/x"), NotFound, true},
		{"block past the end", owner, getBlock(path, Block{Num: 6, Size: 512}), BadOption, false},
		{"far past the end", owner, getBlock(path, Block{Num: 1<<20 - 1, Size: 1024}), BadOption, false},
		{"PUT by the owner", owner, put, MethodNotAllowed, false},
		{"Accept text/plain", owner, accept0, NotAcceptable, false},
		{"last block still served", owner, getBlock(path, Block{Num: 5, Size: 512}), Content, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := tc.c.Do(ctx, tc.req)
			if err != nil {
				t.Fatal(err)
			}
			if resp.Code != tc.want || (string(resp.Payload) == handlerNotFound) != tc.byHandler {
				t.Fatalf("got %v %q, want %v from the Handler: %v", resp.Code, resp.Payload, tc.want, tc.byHandler)
			}
			if resp.Code != Content && resp.ETag != nil {
				t.Fatalf("error with an ETag")
			}
		})
	}
	if s.Published() != 1 {
		t.Fatalf("%d blobs published, want 1 (the expired one forgotten)", s.Published())
	}
	// Other paths still reach the Handler.
	if got := string(get(t, owner, "/firmware").Payload); got != "psk:dev-1" {
		t.Fatalf("/firmware answered %q", got)
	}
}

func TestBlobPublishValidation(t *testing.T) {
	s := blobServer(t, nil)
	big := NewBlob(bytesReaderAt(nil), 1024<<20+1, []byte{1})
	for name, tc := range map[string]struct {
		owner Identity
		blob  Blob
		opts  PublishOptions
		want  error
	}{
		"empty":          {dev1, BytesBlob(nil), PublishOptions{}, ErrBlobEmpty},
		"no etag":        {dev1, NewBlob(bytesReaderAt("x"), 1, nil), PublishOptions{}, ErrBlobETag},
		"nameless owner": {Identity{Mode: PSK}, BytesBlob([]byte("x")), PublishOptions{}, ErrBlobOwner},
		"bad max block":  {dev1, BytesBlob([]byte("x")), PublishOptions{MaxBlock: 100}, ErrBlobMaxBlock},
		"too many blocks": {dev1, NewBlob(bytesReaderAt(nil), 16<<20+1, []byte{1}), PublishOptions{MaxBlock: 16},
			ErrBlobTooLarge},
		"over 1 GiB": {dev1, big, PublishOptions{}, ErrBlobTooLarge},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := s.Publish(tc.owner, tc.blob, tc.opts); !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
	a, _ := s.Publish(dev1, BytesBlob([]byte("x")), PublishOptions{})
	b, _ := s.Publish(dev1, BytesBlob([]byte("x")), PublishOptions{})
	if a == b {
		t.Fatal("two publications share a path")
	}
}

// progress collects OnBlock reports.
type progress struct {
	mu     sync.Mutex
	events []BlockServed
}

func (p *progress) add(b BlockServed) { p.mu.Lock(); p.events = append(p.events, b); p.mu.Unlock() }
func (p *progress) get() []BlockServed {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]BlockServed(nil), p.events...)
}

func TestBlobProgress(t *testing.T) {
	s := blobServer(t, nil)
	c := blockClient(t, s, "dev-1")
	image := testImage(2500)
	var p progress
	path, _ := s.Publish(dev1, BytesBlob(image), PublishOptions{OnBlock: p.add})
	download(t, c, path, 1024, 0, image)
	fetch(t, c, path, Block{Num: 9, Size: 256}, false)
	ev := p.get()
	if len(ev) != 4 {
		t.Fatalf("%d reports, want 4: %+v", len(ev), ev)
	}
	for i, want := range []BlockServed{
		{Num: 0, Size: 1024, Offset: 0, Len: 1024},
		{Num: 1, Size: 1024, Offset: 1024, Len: 1024},
		{Num: 2, Size: 1024, Offset: 2048, Len: 452, Last: true},
		{Num: 9, Size: 256, Offset: 2304, Len: 196, Last: true},
	} {
		got := ev[i]
		if got.Path != path || got.Session == nil || got.Session.Identity() != dev1 {
			t.Fatalf("report %d: %+v", i, got)
		}
		got.Path, got.Session = "", nil
		if got != want {
			t.Fatalf("report %d: %+v, want %+v", i, got, want)
		}
	}
}

// rawClient is a DTLS client that sends CoAP datagrams as given, to test
// retransmissions and non-confirmable requests byte for byte.
type rawClient struct {
	t    *testing.T
	conn *piondtls.Conn
}

func dialRaw(t *testing.T, s *Server, id string) *rawClient {
	t.Helper()
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	cfg := ClientConfig{PSKIdentity: id, PSKKey: testKeys[id]}
	conn, err := piondtls.ClientWithOptions(pc, s.DTLSAddr(), clientOptions(cfg)...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := conn.HandshakeContext(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close(); _ = pc.Close() })
	return &rawClient{t: t, conn: conn}
}

func (c *rawClient) send(m message.Message) {
	c.t.Helper()
	buf := make([]byte, 256)
	n, err := coder.DefaultCoder.Encode(m, buf)
	if err != nil {
		c.t.Fatal(err)
	}
	if _, err := c.conn.Write(buf[:n]); err != nil {
		c.t.Fatal(err)
	}
}

func (c *rawClient) recv() ([]byte, message.Message) {
	c.t.Helper()
	buf := make([]byte, 2048)
	_ = c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := c.conn.Read(buf)
	if err != nil {
		c.t.Fatal(err)
	}
	m := message.Message{Options: make(message.Options, 0, 16)}
	if _, err := coder.DefaultCoder.Decode(buf[:n], &m); err != nil {
		c.t.Fatal(err)
	}
	return buf[:n], m
}

func blobGet(path string, typ message.Type, mid int32, token []byte, block2 []byte) message.Message {
	segs := strings.Split(strings.TrimPrefix(path, "/"), "/")
	var opts message.Options
	for _, s := range segs {
		opts = append(opts, message.Option{ID: message.URIPath, Value: []byte(s)})
	}
	if block2 != nil {
		opts = append(opts, message.Option{ID: message.Block2, Value: block2})
	}
	return message.Message{Token: token, Options: opts, Code: codes.GET, MessageID: mid, Type: typ}
}

func TestBlobDuplicatesAndTokens(t *testing.T) {
	s := blobServer(t, nil)
	image := testImage(4000)
	var p progress
	path, _ := s.Publish(dev1, BytesBlob(image), PublishOptions{OnBlock: p.add})
	c := dialRaw(t, s, "dev-1")

	// A confirmable request sent twice (its ACK was lost): the same
	// response, byte for byte, and the block is reported once.
	req := blobGet(path, message.Confirmable, 0x1234, []byte{1, 2, 3, 4}, []byte{0x16}) // block 1 of 1024
	c.send(req)
	first, m := c.recv()
	c.send(req)
	again, _ := c.recv()
	if m.Type != message.Acknowledgement || m.MessageID != 0x1234 || m.Code != codes.Content ||
		!bytes.Equal(m.Token, []byte{1, 2, 3, 4}) || !bytes.Equal(m.Payload, image[1024:2048]) {
		t.Fatalf("response %v", m.String())
	}
	if !bytes.Equal(first, again) {
		t.Fatal("the retransmitted request got a different response")
	}
	if n := len(p.get()); n != 1 {
		t.Fatalf("%d progress reports for one block asked twice", n)
	}

	// libcoap's way: a new token (and Message ID) for every block.
	var got []byte
	for num := 0; ; num++ {
		c.send(blobGet(path, message.Confirmable, int32(0x2000+num), []byte{byte(num), 0xaa}, []byte{byte(num<<4 | 5)}))
		_, m := c.recv()
		if m.Code != codes.Content || !bytes.Equal(m.Token, []byte{byte(num), 0xaa}) {
			t.Fatalf("block %d: %v", num, m.String())
		}
		got = append(got, m.Payload...)
		v, _ := m.Options.GetUint32(message.Block2)
		if v&8 == 0 {
			break
		}
	}
	if !bytes.Equal(got, image) {
		t.Fatal("download with a token per block differs")
	}

	// A non-confirmable request gets a non-confirmable response.
	c.send(blobGet(path, message.NonConfirmable, 0x3000, []byte{9}, []byte{0x06}))
	if _, m := c.recv(); m.Type != message.NonConfirmable || m.Code != codes.Content || len(m.Payload) != 1024 {
		t.Fatalf("NON response %v", m.String())
	}

	// Block2 with SZX 7 (BERT, reliable transports only) and a Block2
	// longer than 3 bytes (which go-coap itself refuses as an option of
	// invalid length, RFC 7252 §5.4.3) are refused.
	for i, v := range [][]byte{{0x07}, {0, 0, 0, 0x06}} {
		c.send(blobGet(path, message.Confirmable, 0x4000+int32(i), []byte{7}, v))
		if _, m := c.recv(); m.Code != codes.BadOption || m.Options.HasOption(message.ETag) {
			t.Fatalf("Block2 %x: %v", v, m.String())
		}
	}
}

func TestBlobPlainCoAP(t *testing.T) {
	s := blobServer(t, func(c *Config) { c.PlainAddr = "127.0.0.1:0" })
	image := testImage(3333)
	path, _ := s.Publish(Identity{Mode: NoSec}, BytesBlob(image), PublishOptions{})
	c, err := DialUDP(context.Background(), s.PlainAddr().String(), ClientConfig{NoBlockwise: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got := download(t, c, path, 512, 0, image); !bytes.Equal(got, image) {
		t.Fatal("plain download differs")
	}
	// A DTLS device is not the plain-CoAP owner.
	if resp := fetch(t, blockClient(t, s, "dev-1"), path, Block{Size: 512}, false); resp.Code != NotFound {
		t.Fatalf("DTLS session got %v for a plain-CoAP blob", resp.Code)
	}
}

func TestBlobSurvivesParking(t *testing.T) {
	s := startServerWith(t, func(c *Config) { c.Tick = 20 * time.Millisecond }, func(s *Server) {
		s.cfg.ParkAfter = 150 * time.Millisecond
	})
	c := blockClient(t, s, "dev-1")
	image := testImage(3000)
	path, _ := s.Publish(dev1, BytesBlob(image), PublishOptions{})
	fetch(t, c, path, Block{Num: 0, Size: 1024}, true)
	sess := sessionsByIdentity(s, "dev-1")[0]
	waitFor(t, sess.Parked)
	if got := download(t, c, path, 1024, 1, image); !bytes.Equal(got, image[1024:]) {
		t.Fatal("download across parking differs")
	}
}

func TestBlobRepublishAtSamePath(t *testing.T) {
	old := blobServer(t, nil)
	image := testImage(3000)
	path, err := old.Publish(dev1, BytesBlob(image), PublishOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// After a restart, a new server publishes the blob where the device
	// was downloading from; the device resumes with the URI it has.
	s := blobServer(t, nil)
	if got, err := s.Publish(dev1, BytesBlob(image), PublishOptions{Path: path}); err != nil || got != path {
		t.Fatalf("republished at %q, %v; want %q", got, err, path)
	}
	c := blockClient(t, s, "dev-1")
	if got := download(t, c, path, 1024, 1, image); !bytes.Equal(got, image[1024:]) {
		t.Fatal("resumed download differs")
	}
	// Publishing at a published path replaces the blob, and its ETag.
	other := testImage(2000)
	if _, err := s.Publish(dev1, BytesBlob(other), PublishOptions{Path: path}); err != nil {
		t.Fatal(err)
	}
	if resp := fetch(t, c, path, Block{Size: 1024}, true); !bytes.Equal(resp.ETag, BytesBlob(other).ETag()) ||
		resp.Size2 != 2000 || s.Published() != 1 {
		t.Fatalf("after replacing: ETag %x Size2 %d, %d published", resp.ETag, resp.Size2, s.Published())
	}
	for _, bad := range []string{"/fw/short", "/x/" + path[4:], path + "A", "/fw/" + strings.Repeat("_", 22), path[:len(path)-1] + "B"} {
		if _, err := s.Publish(dev1, BytesBlob(image), PublishOptions{Path: bad}); !errors.Is(err, ErrBlobPath) {
			t.Errorf("Path %q: %v", bad, err)
		}
	}
}
