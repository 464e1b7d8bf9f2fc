package coap

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"

	piondtls "github.com/pion/dtls/v3"
	"github.com/rs/zerolog"
)

// ErrUnknownIdentity is what a PSK lookup returns for an identity that
// belongs to no device.
var ErrUnknownIdentity = errors.New("unknown psk identity")

// pskSuites are offered in this order of preference. tinydtls-based
// clients offer only AES_128_CCM_8, which LwM2M names as mandatory;
// libcoap+OpenSSL picks GCM, mbedTLS and GnuTLS clients ECDHE_PSK_CBC.
var pskSuites = []piondtls.CipherSuiteID{
	piondtls.TLS_PSK_WITH_AES_128_CCM_8,
	piondtls.TLS_PSK_WITH_AES_128_GCM_SHA256,
	piondtls.TLS_PSK_WITH_AES_128_CCM,
	piondtls.TLS_ECDHE_PSK_WITH_AES_128_CBC_SHA256,
}

// certSuites are offered when the server has a certificate.
var certSuites = []piondtls.CipherSuiteID{
	piondtls.TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8,
}

// secureConn is a DTLS connection whose handshake has completed, with the
// identity its peer proved.
type secureConn struct {
	*piondtls.Conn
	identity Identity
	pc       *peerConn
	resumed  *Session // set when this is a parked session resumed
	cont     continuation
}

// dtlsListener accepts DTLS sessions for go-coap. Handshakes run here, one
// goroutine each, so that a failed one can be logged with the identity it
// tried and its address, and so that go-coap only ever sees sessions whose
// peer is authenticated.
type dtlsListener struct {
	demux  *demux
	cfg    *Config
	log    zerolog.Logger
	stats  *counters
	ready  chan *secureConn
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func newDTLSListener(pc udpSocket, cfg *Config, stats *counters) *dtlsListener {
	ctx, cancel := context.WithCancel(context.Background())
	l := &dtlsListener{
		demux:  newDemux(pc, cfg.CIDLength),
		cfg:    cfg,
		log:    cfg.Logger.With().Str("component", "dtls").Logger(),
		stats:  stats,
		ready:  make(chan *secureConn, acceptBacklog),
		ctx:    ctx,
		cancel: cancel,
	}
	l.wg.Add(1)
	go l.acceptLoop()
	return l
}

func (l *dtlsListener) acceptLoop() {
	defer l.wg.Done()
	for {
		pc, err := l.demux.acceptConn()
		if err != nil {
			return
		}
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			l.handshake(pc)
		}()
	}
}

// attempt records what a peer presented during one handshake, for the
// log line when it fails.
type attempt struct {
	log           zerolog.Logger
	remote        net.Addr
	mu            sync.Mutex
	identity      Identity
	decryptFailed atomic.Bool
}

func (a *attempt) set(id Identity) { a.mu.Lock(); a.identity = id; a.mu.Unlock() }
func (a *attempt) get() Identity   { a.mu.Lock(); defer a.mu.Unlock(); return a.identity }

func (l *dtlsListener) handshake(pc *peerConn) {
	att := attempt{log: l.log, remote: pc.raddr}
	conn, err := piondtls.ServerWithOptions(pc, pc.raddr, l.serverOptions(pc, &att)...)
	if err == nil {
		ctx, cancel := context.WithTimeout(l.ctx, l.cfg.HandshakeTimeout)
		err = conn.HandshakeContext(ctx)
		cancel()
	}
	if err != nil {
		l.handshakeFailed(pc, &att, err)
		if conn != nil {
			_ = conn.Close()
		} else {
			_ = pc.Close()
		}
		return
	}
	l.stats.handshake(HandshakeOK)
	l.demux.handshakeDone(pc)
	sc := &secureConn{Conn: conn, identity: att.get(), pc: pc}
	select {
	case l.ready <- sc:
	case <-l.ctx.Done():
		_ = conn.Close()
	}
}

func (l *dtlsListener) handshakeFailed(pc *peerConn, att *attempt, err error) {
	id := att.get()
	if l.ctx.Err() != nil {
		return // shutting down
	}
	outcome := HandshakeFailed
	var bad certError
	switch {
	case errors.Is(err, ErrUnknownIdentity):
		outcome = HandshakeUnknownIdentity
	case errors.As(err, &bad):
		outcome = HandshakeBadCertificate
	case att.decryptFailed.Load():
		outcome = HandshakeBadKey
		err = fmt.Errorf("peer's records failed authentication, wrong PSK: %w", err)
	case errors.Is(err, context.DeadlineExceeded):
		outcome = HandshakeTimeout
	}
	l.stats.handshake(outcome)
	ev := l.log.Warn().Str("remote", addrString(pc.raddr)).Str("outcome", outcome).Err(err)
	if id.Mode != NoSec {
		ev = ev.Str("identity", id.Name).Str("mode", id.Mode.String())
	}
	ev.Msg("dtls handshake failed")
}

// certError marks a client certificate that failed verification.
type certError struct{ err error }

func (e certError) Error() string { return "client certificate: " + e.err.Error() }
func (e certError) Unwrap() error { return e.err }

// serverOptions builds the pion options for one handshake. They are built
// per peer so that the PSK and certificate callbacks can record what this
// peer presented and so that its Connection ID is the one demux routes.
func (l *dtlsListener) serverOptions(pc *peerConn, att *attempt) []piondtls.ServerOption {
	cfg := l.cfg
	suites := []piondtls.CipherSuiteID{}
	opts := []piondtls.ServerOption{
		piondtls.WithExtendedMasterSecret(piondtls.RequestExtendedMasterSecret),
		piondtls.WithFlightInterval(cfg.FlightInterval),
		piondtls.WithMTU(cfg.HandshakeMTU),
		piondtls.WithLoggerFactory(pionLogger{l.log, att}),
	}
	if cfg.PSK != nil {
		suites = append(suites, pskSuites...)
		opts = append(opts, piondtls.WithPSK(func(hint []byte) ([]byte, error) {
			id := string(hint)
			att.set(Identity{Mode: PSK, Name: id})
			return cfg.PSK(id)
		}))
	}
	if cfg.Certificate != nil {
		suites = append(suites, certSuites...)
		opts = append(opts,
			piondtls.WithCertificates(*cfg.Certificate),
			piondtls.WithClientAuth(piondtls.RequireAndVerifyClientCert),
			piondtls.WithClientCAs(cfg.ClientCAs),
			piondtls.WithVerifyPeerCertificate(func(_ [][]byte, chains [][]*x509.Certificate) error {
				if len(chains) == 0 || len(chains[0]) == 0 {
					return certError{errors.New("no verified chain")}
				}
				cn := chains[0][0].Subject.CommonName
				att.set(Identity{Mode: X509, Name: cn})
				if cn == "" {
					return certError{errors.New("certificate has no common name")}
				}
				return nil
			}),
		)
	}
	opts = append(opts, piondtls.WithCipherSuites(suites...))
	if pc.cid != nil {
		opts = append(opts, piondtls.WithConnectionIDGenerator(pc.connectionID))
	}
	return opts
}

// AcceptWithContext implements go-coap's dtls server Listener.
func (l *dtlsListener) AcceptWithContext(ctx context.Context) (net.Conn, error) {
	select {
	case c := <-l.ready:
		return c, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-l.ctx.Done():
		return nil, errListenerClosed
	}
}

// Close stops accepting; established sessions are closed by the server.
func (l *dtlsListener) Close() error {
	l.cancel()
	err := l.demux.close()
	l.wg.Wait()
	for {
		select {
		case c := <-l.ready:
			_ = c.Close()
		default:
			return err
		}
	}
}
