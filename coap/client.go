package coap

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	piondtls "github.com/pion/dtls/v3"
	godtls "github.com/plgd-dev/go-coap/v3/dtls"
	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/message/pool"
	"github.com/plgd-dev/go-coap/v3/net/blockwise"
	"github.com/plgd-dev/go-coap/v3/net/responsewriter"
	"github.com/plgd-dev/go-coap/v3/options"
	"github.com/plgd-dev/go-coap/v3/pkg/runner/periodic"
	"github.com/plgd-dev/go-coap/v3/udp"
	udpClient "github.com/plgd-dev/go-coap/v3/udp/client"
)

// ClientConfig configures the device side of a CoAP session: the simulator
// and tests use it.
type ClientConfig struct {
	// PSKIdentity and PSKKey select DTLS PSK.
	PSKIdentity string
	PSKKey      []byte
	// Certificate and RootCAs select DTLS with certificates.
	Certificate *tls.Certificate
	RootCAs     *x509.CertPool
	ServerName  string
	// CipherSuites overrides the suites offered (tests of single-suite clients).
	CipherSuites []uint16
	// ConnectionID makes the client send the Connection ID the server asks
	// for, so its session survives a change of source address.
	ConnectionID bool
	// Handler answers requests from the server; nil answers 4.04.
	Handler Handler
	// PacketConn is the socket to use; nil opens a new UDP socket.
	PacketConn net.PacketConn
	// HandshakeTimeout bounds the DTLS handshake (default 30 s).
	HandshakeTimeout time.Duration
	// NoBlockwise turns go-coap's block-wise layer off: the peer then sees
	// Block1/Block2 options in its requests and responses and does the
	// transfer itself, block by block (the simulated device does, to
	// resume at any block and to apply a package as it arrives).
	NoBlockwise bool
}

// ClientConn is a device's session with a server.
type ClientConn struct {
	cc *udpClient.Conn
}

// DialDTLS opens a DTLS session to addr and returns once the handshake is done.
func DialDTLS(ctx context.Context, addr string, cfg ClientConfig) (*ClientConn, error) {
	raddr, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	pc := cfg.PacketConn
	if pc == nil {
		if pc, err = net.ListenUDP("udp", nil); err != nil {
			return nil, fmt.Errorf("dial %s: %w", addr, err)
		}
	}
	conn, err := piondtls.ClientWithOptions(pc, raddr, clientOptions(cfg)...)
	if err != nil {
		_ = pc.Close()
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	timeout := cfg.HandshakeTimeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	hctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := conn.HandshakeContext(hctx); err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("dtls handshake with %s: %w", addr, err)
	}
	cc := godtls.Client(conn, clientHandler(cfg.Handler), options.WithCloseSocket(), quietErrors, blockwiseOption(cfg),
		clientTimers())
	return &ClientConn{cc: cc}, nil
}

// DialUDP opens a plain CoAP session to addr.
func DialUDP(_ context.Context, addr string, cfg ClientConfig) (*ClientConn, error) {
	cc, err := udp.Dial(addr, clientHandler(cfg.Handler), quietErrors, blockwiseOption(cfg), clientTimers())
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	return &ClientConn{cc: cc}, nil
}

// blockwiseOption keeps go-coap's block-wise layer (1 KB blocks, the
// server's transfer timeout) unless the client does block-wise itself.
func blockwiseOption(cfg ClientConfig) options.BlockwiseOpt {
	return options.WithBlockwise(!cfg.NoBlockwise, blockwise.SZX1024, 120*time.Second)
}

// clientTick is how often client sessions check for requests to
// retransmit. go-coap's default checks every 4 s, so a lost message was
// resent 4-8 s after it was sent instead of after ACK_TIMEOUT (2-3 s):
// on a 150 ms link with 0.5 % loss that made a 373-block download 1.26
// times the stop-and-wait time instead of ~1.1.
const clientTick = 250 * time.Millisecond

// clientRunner is the one timer goroutine of all client sessions in the
// process (a simulated fleet has thousands): each session's check leaves
// it when the session ends.
var clientRunner = sync.OnceValue(func() periodic.Func { return periodic.New(nil, clientTick) })

func clientTimers() options.PeriodicRunnerOpt { return options.WithPeriodicRunner(clientRunner()) }

// quietErrors stops go-coap from printing client errors to stdout; they
// reach the caller as the errors of Do.
var quietErrors = options.WithErrors(func(error) {})

func clientOptions(cfg ClientConfig) []piondtls.ClientOption {
	var opts []piondtls.ClientOption
	if cfg.PSKKey != nil {
		key := cfg.PSKKey
		opts = append(opts,
			piondtls.WithPSK(func([]byte) ([]byte, error) { return key, nil }),
			piondtls.WithPSKIdentityHint([]byte(cfg.PSKIdentity)))
	}
	if cfg.Certificate != nil {
		opts = append(opts, piondtls.WithCertificates(*cfg.Certificate),
			piondtls.WithRootCAs(cfg.RootCAs), piondtls.WithServerName(cfg.ServerName))
	}
	suites := make([]piondtls.CipherSuiteID, 0, len(cfg.CipherSuites))
	for _, s := range cfg.CipherSuites {
		suites = append(suites, piondtls.CipherSuiteID(s))
	}
	if len(suites) == 0 {
		if cfg.PSKKey != nil {
			suites = append(suites, pskSuites...)
		}
		if cfg.Certificate != nil {
			suites = append(suites, certSuites...)
		}
	}
	opts = append(opts, piondtls.WithCipherSuites(suites...),
		piondtls.WithExtendedMasterSecret(piondtls.RequestExtendedMasterSecret))
	if cfg.ConnectionID {
		opts = append(opts, piondtls.WithConnectionIDGenerator(piondtls.OnlySendCIDGenerator()))
	}
	return opts
}

// clientHandler routes server-initiated requests to h.
func clientHandler(h Handler) udp.Option {
	return options.WithHandlerFunc(func(w *responsewriter.ResponseWriter[*udpClient.Conn], m *pool.Message) {
		if h == nil {
			_ = w.SetResponse(codes.NotFound, message.TextPlain, nil)
			return
		}
		req, err := newRequest(m, nil, w.Conn().RemoteAddr())
		if err != nil {
			_ = w.SetResponse(codes.BadRequest, message.TextPlain, nil)
			return
		}
		writeResponse(w, h.ServeCoAP(m.Context(), req))
	})
}

// Do sends a request and waits for its response or ctx.
func (c *ClientConn) Do(ctx context.Context, req Request) (Response, error) {
	return do(ctx, c.cc, req)
}

// LocalAddr is the client's socket address.
func (c *ClientConn) LocalAddr() net.Addr { return c.cc.LocalAddr() }

// Close ends the session and closes its socket.
func (c *ClientConn) Close() error { return c.cc.Close() }

// Done is closed when the session has ended.
func (c *ClientConn) Done() <-chan struct{} { return c.cc.Done() }

// do sends req over cc: the one request path for clients and for
// server-initiated requests.
func do(ctx context.Context, cc *udpClient.Conn, req Request) (Response, error) {
	m, err := newMessage(ctx, cc, req)
	if err != nil {
		return Response{}, err
	}
	defer cc.ReleaseMessage(m)
	resp, err := cc.Do(m)
	if err != nil {
		return Response{}, fmt.Errorf("coap %s %s: %w", req.Method, req.Path, err)
	}
	defer cc.ReleaseMessage(resp)
	return newResponse(resp)
}

// newMessage builds the go-coap message for req; the caller releases it.
func newMessage(ctx context.Context, cc *udpClient.Conn, req Request) (*pool.Message, error) {
	m := cc.AcquireMessage(ctx)
	token := message.Token(req.Token)
	if token == nil {
		var err error
		if token, err = message.GetToken(); err != nil {
			cc.ReleaseMessage(m)
			return nil, fmt.Errorf("coap %s %s: %w", req.Method, req.Path, err)
		}
	}
	m.SetToken(token)
	m.SetCode(codes.Code(req.Method))
	if err := m.SetPath(req.Path); err != nil {
		cc.ReleaseMessage(m)
		return nil, fmt.Errorf("coap %s %s: %w", req.Method, req.Path, err)
	}
	for _, q := range req.Query {
		m.AddQuery(q)
	}
	if req.Accept != NoFormat {
		m.SetAccept(message.MediaType(req.Accept))
	}
	if req.Observe != NoObserve {
		m.SetObserve(uint32(req.Observe - ObserveRegister))
	}
	if err := setBlockOptions(m, message.Block1, req.Block1); err != nil {
		cc.ReleaseMessage(m)
		return nil, fmt.Errorf("coap %s %s: %w", req.Method, req.Path, err)
	}
	if err := setBlockOptions(m, message.Block2, req.Block2); err != nil {
		cc.ReleaseMessage(m)
		return nil, fmt.Errorf("coap %s %s: %w", req.Method, req.Path, err)
	}
	if req.Size1 > 0 {
		m.SetOptionUint32(message.Size1, uint32(min(req.Size1, 1<<32-1)))
	}
	if req.AskSize2 {
		m.SetOptionUint32(message.Size2, 0)
	}
	if req.Payload != nil {
		m.SetBody(bytes.NewReader(req.Payload))
		if req.ContentFormat != NoFormat {
			m.SetContentFormat(message.MediaType(req.ContentFormat))
		}
	}
	return m, nil
}

func newResponse(m *pool.Message) (Response, error) {
	r := Response{Code: Code(m.Code()), ContentFormat: NoFormat}
	if cf, err := m.ContentFormat(); err == nil {
		r.ContentFormat = int(cf)
	}
	if seq, err := m.Observe(); err == nil {
		r.Observed, r.ObserveSeq = true, seq
	}
	var err error
	if r.Block1, err = blockOption(m, message.Block1); err != nil {
		return Response{}, err
	}
	if r.Block2, err = blockOption(m, message.Block2); err != nil {
		return Response{}, err
	}
	if etag, err := m.ETag(); err == nil {
		r.ETag = append([]byte(nil), etag...)
	}
	if size, err := m.GetOptionUint32(message.Size2); err == nil {
		r.Size2 = int64(size)
	}
	if lp, err := m.Options().LocationPath(); err == nil && lp != "" {
		r.LocationPath = strings.Split(strings.TrimPrefix(lp, "/"), "/")
	}
	if m.Body() != nil {
		body, err := m.ReadBody()
		if err != nil {
			return Response{}, fmt.Errorf("read response body: %w", err)
		}
		r.Payload = body
	}
	return r, nil
}
