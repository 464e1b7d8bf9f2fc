package coap

import (
	"bytes"
	"errors"
	"net"
	"sync"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/message/pool"
	coapNet "github.com/plgd-dev/go-coap/v3/net"
	udpClient "github.com/plgd-dev/go-coap/v3/udp/client"
	"github.com/plgd-dev/go-coap/v3/udp/coder"
)

// Serving blobs outside go-coap's request path.
//
// go-coap marshals every piggybacked response into a per-connection
// duplicate-detection cache kept for EXCHANGE_LIFETIME (247 s), and the
// cache cannot be replaced on connections a server accepts: a completed
// 380 KB download left about 1.3 times the image in memory for four
// minutes. go-coap's request monitor (dtls/server and udp/server
// Config.RequestMonitor) runs for every message a connection receives,
// after decoding and before duplicate detection, the cache, the block-wise
// layer and the handler; a monitor that returns drop=true ends go-coap's
// processing of that message. interceptBlob is that monitor: it answers
// every request for a published path itself, with a piggybacked response
// it encodes into a pooled buffer and writes straight to the connection,
// and drops the request. Nothing of the response outlives the write.
//
// Duplicates. A retransmitted request (same Message ID) gets the same
// response again, rebuilt from the blob: a GET of an immutable
// representation is idempotent, so RFC 7252 §4.5 allows processing it
// again, and the rebuilt response is identical to the first (same token,
// Message ID, options and bytes); only a blob withdrawn in between makes
// it 4.04. The only state kept is a ring of the last few Message IDs per
// connection (when the publication has OnBlock), so that progress counts a
// block once however often it is asked for.

// interceptBlob is go-coap's RequestMonitor for every server connection.
// It takes the requests for published paths, whoever sends them; a
// request for a path under /fw/ that is not published (never, or no
// longer) goes on to the Handler like any other.
func (s *Server) interceptBlob(cc *udpClient.Conn, m *pool.Message) (drop bool, err error) {
	req, ok := parseBlobRequest(m.Type(), m.Code(), m.Options())
	if !ok || req.id == nil {
		return false, nil
	}
	now := time.Now()
	p := s.blobs.lookup(req.id, now)
	if p == nil {
		return false, nil
	}
	req.mid, req.token = m.MessageID(), m.Token()
	s.serveBlob(cc, m.ControlMessage(), &req, p, now)
	return true, nil
}

// blobRequest is what the blob server reads from a request.
type blobRequest struct {
	typ   message.Type
	code  codes.Code
	mid   int32
	token []byte
	// id is the second Uri-Path segment; nil when the path is not
	// exactly /fw/{id}.
	id       []byte
	block2   Block
	badBlock bool // Block2 repeated, too long or SZX 7 (BERT)
	askSize2 bool
	accept   int
}

// parseBlobRequest reports whether a message is a request whose path
// starts with /fw and decodes what the blob server needs from it. It reads
// only options go-coap has already decoded and does not allocate.
func parseBlobRequest(typ message.Type, code codes.Code, opts message.Options) (blobRequest, bool) {
	if (typ != message.Confirmable && typ != message.NonConfirmable) || code < codes.GET || code >= 32 {
		return blobRequest{}, false
	}
	req := blobRequest{typ: typ, code: code, accept: NoFormat}
	segments, blocks := 0, 0
	for _, o := range opts {
		switch o.ID {
		case message.URIPath:
			switch segments {
			case 0:
				if string(o.Value) != BlobPathSegment {
					return blobRequest{}, false
				}
			case 1:
				req.id = o.Value
			default:
				req.id = nil
			}
			segments++
		case message.Block2:
			blocks++
			v, n, err := message.DecodeUint32(o.Value)
			if err != nil || n != len(o.Value) || len(o.Value) > 3 {
				req.badBlock = true
				continue
			}
			if req.block2, err = decodeBlock(v); err != nil {
				req.badBlock = true
			}
		case message.Size2:
			req.askSize2 = true
		case message.Accept:
			v, n, err := message.DecodeUint32(o.Value)
			if err != nil || n != len(o.Value) {
				v = 1 << 16 // not a content format: answered 4.06
			}
			req.accept = int(v)
		}
	}
	if segments == 0 {
		return blobRequest{}, false
	}
	if blocks > 1 {
		req.badBlock = true
	}
	return req, true
}

// blobReply is the planned answer to a blobRequest.
type blobReply struct {
	code  Code
	block Block // absent when the whole blob fits one response
	off   int64
	n     int
	size2 bool
	diag  string // diagnostic payload of an error (RFC 7252 §5.5.2)
}

// planBlob decides the answer to req for p, the publication the
// requesting session owns (nil: none, a foreign one or an expired one).
func planBlob(req *blobRequest, p *publication) blobReply {
	switch {
	case p == nil:
		return blobReply{code: NotFound}
	case req.code != codes.GET:
		return blobReply{code: MethodNotAllowed}
	case req.badBlock:
		return blobReply{code: BadOption, diag: "Block2 invalid"}
	case req.accept != NoFormat && req.accept != octetStream:
		return blobReply{code: NotAcceptable}
	}
	r := blobReply{code: Content, n: p.maxBlock}
	if b := req.block2; b.Present() {
		// RFC 7959 §2.4: the server uses the requested size or a smaller
		// one; the block then keeps the requested offset.
		size := min(b.Size, p.maxBlock)
		r.off = b.Offset()
		if r.off >= p.size {
			// RFC 7959 defines no code for a block past the end; 4.02 says
			// this Block2 value cannot be served (as Californium answers).
			return blobReply{code: BadOption, diag: "Block2 beyond end"}
		}
		r.block = Block{Num: uint32(r.off / int64(size)), Size: size}
		r.n = size
	} else if p.size > int64(p.maxBlock) {
		// Late negotiation (RFC 7959 §2.4): block 0 at the preferred size.
		r.block = Block{Num: 0, Size: p.maxBlock}
	}
	r.n = int(min(int64(r.n), p.size-r.off))
	if r.block.Present() {
		r.block.More = r.off+int64(r.n) < p.size
	}
	r.size2 = r.off == 0 || req.askSize2
	return r
}

// octetStream is the Content-Format of every blob (application/octet-stream).
const octetStream = 42

// blobBufSize holds the largest response: header, token, options, a
// diagnostic and a 1024-byte block.
const blobBufSize = 1152

var blobBuffers = sync.Pool{New: func() any { b := make([]byte, blobBufSize); return &b }}

// encodeBlobReply writes the response datagram into buf and returns it.
// For a 2.05 it reads the block from p; if that fails (the blob was
// withdrawn meanwhile, or its storage failed) the response becomes 4.04 or
// 5.00, and the reply returned says which.
func encodeBlobReply(buf []byte, req *blobRequest, mid int32, r blobReply, p *publication) ([]byte, blobReply, error) {
	typ := message.NonConfirmable
	if req.typ == message.Confirmable {
		typ, mid = message.Acknowledgement, req.mid
	}
	var vals [12]byte
	var optArr [4]message.Option
	opts := optArr[:0]
	if r.code == Content {
		opts = append(opts, message.Option{ID: message.ETag, Value: p.etag})
		n, _ := message.EncodeUint32(vals[0:4], octetStream)
		opts = append(opts, message.Option{ID: message.ContentFormat, Value: vals[0:n]})
		if r.block.Present() {
			v, err := r.block.encode()
			if err != nil {
				return nil, r, err
			}
			n, _ := message.EncodeUint32(vals[4:8], v)
			opts = append(opts, message.Option{ID: message.Block2, Value: vals[4 : 4+n]})
		}
		if r.size2 {
			n, _ := message.EncodeUint32(vals[8:12], uint32(min(p.size, 1<<32-1)))
			opts = append(opts, message.Option{ID: message.Size2, Value: vals[8 : 8+n]})
		}
	}
	msg := message.Message{Token: req.token, Options: opts, Code: codes.Code(r.code), MessageID: mid, Type: typ}
	head, err := coder.DefaultCoder.Encode(msg, buf)
	if err != nil {
		return nil, r, err
	}
	payload := r.n
	if r.code != Content {
		payload = len(r.diag)
	}
	if payload == 0 {
		return buf[:head], r, nil
	}
	if head+1+payload > len(buf) {
		return nil, r, errors.New("blob response larger than its buffer")
	}
	buf[head] = 0xff
	body := buf[head+1 : head+1+payload]
	if r.code != Content {
		copy(body, r.diag)
		return buf[:head+1+payload], r, nil
	}
	if err := p.readAt(body, r.off); err != nil {
		failed := blobReply{code: InternalServerError}
		if errors.Is(err, errWithdrawn) {
			failed.code = NotFound
		}
		out, failed, encErr := encodeBlobReply(buf, req, mid, failed, p)
		return out, failed, errors.Join(err, encErr)
	}
	return buf[:head+1+payload], r, nil
}

// serveBlob answers one request for p on cc's receive goroutine.
func (s *Server) serveBlob(cc *udpClient.Conn, cm *coapNet.ControlMessage, req *blobRequest, p *publication, now time.Time) {
	s.stats.in.Add(1)
	sess := sessionOf(cc)
	if sess != nil {
		sess.touch()
	}
	if sess == nil || p.owner != sess.identity {
		p = nil // someone else's: answered as if it did not exist
	}
	r := planBlob(req, p)
	var mid int32
	if req.typ == message.NonConfirmable {
		mid = cc.GetMessageID()
	}
	bufp := blobBuffers.Get().(*[]byte)
	defer blobBuffers.Put(bufp)
	out, r, err := encodeBlobReply(*bufp, req, mid, r, p)
	if out == nil {
		s.log.Warn().Err(err).Str("path", pathString(req)).Msg("cannot build blob response") // a bug
		return
	}
	if err != nil {
		s.log.Warn().Err(err).Str("path", p.path).Msg("cannot read blob")
	}
	// Progress first: when the device has the block, its report is in.
	if r.code == Content && p.onBlock != nil && !s.blobs.recent(cc).duplicate(req, now) {
		p.onBlock(BlockServed{
			Path: p.path, Session: sess, Num: r.block.Num, Size: max(r.block.Size, r.n),
			Offset: r.off, Len: r.n, Last: !r.block.More,
		})
	}
	if err := s.writeRaw(cc, cm, out); err != nil {
		s.log.Debug().Err(err).Str("remote", addrString(cc.RemoteAddr())).Msg("cannot send blob response")
		return
	}
	s.stats.out.Add(1)
}

func pathString(req *blobRequest) string {
	return "/" + BlobPathSegment + "/" + string(req.id)
}

// writeRaw sends a datagram over cc's transport: the DTLS connection, or
// the plain UDP socket to the peer's address, from the address the request
// came to.
func (s *Server) writeRaw(cc *udpClient.Conn, cm *coapNet.ControlMessage, b []byte) error {
	if sc, ok := cc.NetConn().(*secureConn); ok {
		_, err := sc.Write(b)
		return err
	}
	ua, ok := cc.RemoteAddr().(*net.UDPAddr)
	if !ok || s.udpLn == nil {
		return errors.New("no transport for blob response")
	}
	if cm != nil && len(cm.Dst) > 0 && !cm.Dst.IsMulticast() {
		return s.udpLn.WriteWithOptions(b, coapNet.WithRemoteAddr(ua),
			coapNet.WithControlMessage(&coapNet.ControlMessage{IfIndex: cm.GetIfIndex(), Src: cm.Dst}))
	}
	return s.udpLn.WriteWithOptions(b, coapNet.WithRemoteAddr(ua))
}

// recentLen is how many requests per connection duplicate detection
// remembers. A device has one request outstanding (NSTART=1) and
// retransmits only that one, so a few cover delayed duplicates too.
const recentLen = 8

// recentRequests remembers the last requests for blobs a connection sent.
type recentRequests struct {
	mu   sync.Mutex
	next int
	ent  [recentLen]recentEntry
}

type recentEntry struct {
	at    int64 // unix nanoseconds; 0 for an empty slot
	mid   int32
	tlen  uint8
	token [message.MaxTokenSize]byte
}

// duplicate records req and reports whether the same Message ID and token
// came within EXCHANGE_LIFETIME.
func (r *recentRequests) duplicate(req *blobRequest, now time.Time) bool {
	cutoff := now.Add(-udpClient.ExchangeLifetime).UnixNano()
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := range r.ent {
		e := &r.ent[i]
		if e.at > cutoff && e.mid == req.mid && bytes.Equal(e.token[:e.tlen], req.token) {
			return true
		}
	}
	e := &r.ent[r.next]
	r.next = (r.next + 1) % recentLen
	*e = recentEntry{at: now.UnixNano(), mid: req.mid}
	e.tlen = uint8(copy(e.token[:], req.token))
	return false
}

// recent returns cc's duplicate-detection ring, created on cc's first
// blob block and forgotten when cc closes.
func (t *blobTable) recent(cc *udpClient.Conn) *recentRequests {
	if v, ok := t.conns.Load(cc); ok {
		return v.(*recentRequests)
	}
	r := &recentRequests{}
	if v, loaded := t.conns.LoadOrStore(cc, r); loaded {
		return v.(*recentRequests)
	}
	cc.AddOnClose(func() { t.conns.Delete(cc) })
	select {
	case <-cc.Done(): // closed before the hook was added
		t.conns.Delete(cc)
	default:
	}
	return r
}
