package coap

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	dtlsServer "github.com/plgd-dev/go-coap/v3/dtls/server"
	coapNet "github.com/plgd-dev/go-coap/v3/net"
	"github.com/plgd-dev/go-coap/v3/net/blockwise"
	"github.com/plgd-dev/go-coap/v3/net/monitor/inactivity"
	"github.com/plgd-dev/go-coap/v3/options/config"
	"github.com/plgd-dev/go-coap/v3/pkg/runner/periodic"
	udpClient "github.com/plgd-dev/go-coap/v3/udp/client"
	udpServer "github.com/plgd-dev/go-coap/v3/udp/server"
	"github.com/rs/zerolog"
)

var errListenerClosed = coapNet.ErrListenerIsClosed

// Config holds the transport parameters. Start from DefaultConfig: every
// value there is chosen for cellular devices, not taken from go-coap's or
// pion's defaults.
type Config struct {
	// DTLSAddr is the CoAPS listen address (":5684"); empty disables it.
	DTLSAddr string
	// PlainAddr is the plain CoAP listen address; empty disables it.
	PlainAddr string

	// PSK returns the key of a PSK identity, or an error wrapping
	// ErrUnknownIdentity. Nil disables PSK.
	PSK func(identity string) ([]byte, error)
	// Certificate enables X.509 mode: devices present certificates that
	// ClientCAs verifies, and their Common Name is their identity.
	Certificate *tls.Certificate
	ClientCAs   *x509.CertPool

	// CIDLength is the length of the Connection ID the server asks devices
	// to send (RFC 9146); 0 disables Connection ID. Every byte of it is
	// sent in every record a device sends.
	CIDLength int
	// HandshakeTimeout bounds a whole DTLS handshake.
	HandshakeTimeout time.Duration
	// FlightInterval is the first retransmission timeout of a handshake
	// flight; pion doubles it on each retry.
	FlightInterval time.Duration
	// HandshakeMTU is the largest record the server sends during a
	// handshake; larger flights (certificates) are fragmented.
	HandshakeMTU int

	// ReadBuffer is the largest CoAP message accepted in one datagram
	// (go-coap's MTU option).
	ReadBuffer int
	// MaxBlockSize is the largest block size the server uses (16-1024).
	MaxBlockSize int
	// BlockwiseTimeout is how long a block-wise transfer's state is kept.
	BlockwiseTimeout time.Duration

	// AckTimeout and MaxRetransmit are RFC 7252's ACK_TIMEOUT and
	// MAX_RETRANSMIT for confirmable messages the server sends.
	AckTimeout    time.Duration
	MaxRetransmit int
	// Tick is the period of retransmission and expiry checks for sessions
	// that were active in the last few minutes; idle sessions are checked
	// every ColdTicks ticks.
	Tick      time.Duration
	ColdTicks int

	// IdleTimeout closes a session that has been silent this long; the
	// registration layer extends it to the registration lifetime.
	IdleTimeout time.Duration
	// ParkAfter parks a DTLS session silent this long (see park.go); 0
	// never parks. It must exceed MAX_TRANSMIT_SPAN (45 s), the longest a
	// device retransmits a request whose answer may be in go-coap's
	// duplicate cache, which parking drops.
	ParkAfter time.Duration

	Handler Handler
	Logger  zerolog.Logger
}

// DefaultConfig returns the transport defaults, each chosen deliberately:
//   - CIDLength 3: 16.7 million IDs, so a random draw collides with a live
//     one rarely even at 100,000 sessions, for 3 bytes in every uplink
//     record (a DTLS record with AES-128-CCM-8 already carries 29).
//   - HandshakeTimeout 60 s and FlightInterval 2 s: NB-IoT round trips
//     reach several seconds in coverage class 2; pion's 1 s makes every
//     flight go twice there, and go-coap's 30 s cuts off slow handshakes.
//   - ReadBuffer 1472: the UDP payload of a 1500-byte IPv4 path; anything
//     larger would need IP fragmentation, which cellular networks drop.
//   - BlockwiseTimeout 120 s: go-coap's 3 s is a fixed deadline on the
//     whole transfer, which a multi-block request cannot meet over NB-IoT.
//   - Tick 250 ms: go-coap's 4 s grid turns a 2 s ACK timeout into 4 s.
//   - IdleTimeout 120 s before registration: pion closes after 16 s, a
//     device that sleeps between handshake and Register would lose it.
//   - ParkAfter 60 s: just past MAX_TRANSMIT_SPAN; an idle device then
//     costs a few hundred bytes instead of about 60 KB.
func DefaultConfig() Config {
	return Config{
		DTLSAddr:         ":5684",
		CIDLength:        3,
		HandshakeTimeout: 60 * time.Second,
		FlightInterval:   2 * time.Second,
		HandshakeMTU:     1200,
		ReadBuffer:       1472,
		MaxBlockSize:     1024,
		BlockwiseTimeout: 120 * time.Second,
		AckTimeout:       2 * time.Second,
		MaxRetransmit:    4,
		Tick:             250 * time.Millisecond,
		ColdTicks:        20,
		IdleTimeout:      120 * time.Second,
		ParkAfter:        60 * time.Second,
		Logger:           zerolog.Nop(),
	}
}

// Validate names the first bad field.
func (c *Config) Validate() error {
	switch {
	case c.DTLSAddr == "" && c.PlainAddr == "":
		return errors.New("coap config: no listener (DTLSAddr and PlainAddr are empty)")
	case c.DTLSAddr != "" && c.PSK == nil && c.Certificate == nil:
		return errors.New("coap config: DTLSAddr needs PSK or Certificate")
	case c.Certificate != nil && c.ClientCAs == nil:
		return errors.New("coap config: Certificate needs ClientCAs to verify devices")
	case c.CIDLength < 0 || c.CIDLength > 16:
		return fmt.Errorf("coap config: CIDLength %d outside 0-16", c.CIDLength)
	case c.ReadBuffer < 128 || c.ReadBuffer > 65507:
		return fmt.Errorf("coap config: ReadBuffer %d outside 128-65507", c.ReadBuffer)
	case blockSZX(c.MaxBlockSize) < 0:
		return fmt.Errorf("coap config: MaxBlockSize %d is not a power of two in 16-1024", c.MaxBlockSize)
	case c.HandshakeTimeout <= 0 || c.FlightInterval <= 0 || c.BlockwiseTimeout <= 0 ||
		c.AckTimeout <= 0 || c.Tick <= 0 || c.IdleTimeout <= 0:
		return errors.New("coap config: timeouts must be positive")
	case c.ParkAfter != 0 && c.ParkAfter < 45*time.Second:
		return fmt.Errorf("coap config: ParkAfter %v is shorter than MAX_TRANSMIT_SPAN (45s)", c.ParkAfter)
	case c.MaxRetransmit < 0 || c.ColdTicks < 1 || c.HandshakeMTU < 256:
		return errors.New("coap config: MaxRetransmit, ColdTicks or HandshakeMTU out of range")
	case c.Handler == nil:
		return errors.New("coap config: no Handler")
	}
	return nil
}

// blockSZX maps a block size to its SZX exponent, -1 if invalid.
func blockSZX(size int) int {
	for szx := 0; szx <= 6; szx++ {
		if 16<<szx == size {
			return szx
		}
	}
	return -1
}

// Server serves CoAP over DTLS and, optionally, plain UDP.
type Server struct {
	cfg   Config
	log   zerolog.Logger
	stats counters

	dtlsLn *dtlsListener
	udpLn  *coapNet.UDPConn
	dtlsSv *dtlsServer.Server
	udpSv  *udpServer.Server

	sessions sessionTable
	blobs    blobTable
	nextID   atomic.Uint64
	parked   atomic.Int64

	ctx    context.Context // ends at shutdown
	cancel context.CancelFunc
	wg     sync.WaitGroup
	// startMu orders Serve's wg.Add before stop's cancel, so that
	// Shutdown's wg.Wait never races an Add (a Shutdown right after start).
	startMu  sync.Mutex
	shutOnce sync.Once
}

// Listen binds the configured sockets. Serve starts answering.
func Listen(cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{cfg: cfg, log: cfg.Logger.With().Str("component", "coap").Logger(), ctx: ctx, cancel: cancel}
	s.sessions.init()
	s.blobs.init()
	if cfg.DTLSAddr != "" {
		pc, err := listenUDP(cfg.DTLSAddr)
		if err != nil {
			return nil, fmt.Errorf("listen coaps %s: %w", cfg.DTLSAddr, err)
		}
		s.dtlsLn = newDTLSListener(pc, &s.cfg, &s.stats)
		s.dtlsSv = dtlsServer.New(s.dtlsOptions())
	}
	if cfg.PlainAddr != "" {
		pc, err := listenUDP(cfg.PlainAddr)
		if err != nil {
			s.stop()
			return nil, fmt.Errorf("listen coap %s: %w", cfg.PlainAddr, err)
		}
		s.udpLn = coapNet.NewUDPConn("udp", pc)
		s.udpSv = udpServer.New(s.udpOptions(s.ctx))
	}
	return s, nil
}

// socketBuffer is the kernel receive buffer asked for each socket. One
// socket carries every device: Linux's default (208 KB) overflows when a
// few hundred devices handshake at once, and every dropped flight costs a
// device a retransmission timeout.
const socketBuffer = 4 << 20

func listenUDP(addr string) (*net.UDPConn, error) {
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, err
	}
	c, err := net.ListenUDP("udp", ua)
	if err != nil {
		return nil, err
	}
	_ = c.SetReadBuffer(socketBuffer) // capped by net.core.rmem_max; best effort
	_ = c.SetWriteBuffer(socketBuffer)
	return c, nil
}

// DTLSAddr is the bound CoAPS address, nil when disabled.
func (s *Server) DTLSAddr() net.Addr {
	if s.dtlsLn == nil {
		return nil
	}
	return s.dtlsLn.demux.pc.LocalAddr()
}

// PlainAddr is the bound plain CoAP address, nil when disabled.
func (s *Server) PlainAddr() net.Addr {
	if s.udpLn == nil {
		return nil
	}
	return s.udpLn.LocalAddr()
}

// Stats returns the transport counters.
func (s *Server) Stats() Stats {
	st := s.stats.snapshot()
	st.Sessions = s.sessions.len()
	st.Parked = int(s.parked.Load())
	return st
}

// Serve answers requests until ctx is done or Shutdown is called.
func (s *Server) Serve(ctx context.Context) error {
	errc := make(chan error, 2)
	s.startMu.Lock()
	if s.ctx.Err() != nil { // shut down before it served
		s.startMu.Unlock()
		return nil
	}
	if s.dtlsSv != nil {
		s.wg.Add(1)
		go func() { defer s.wg.Done(); errc <- s.dtlsSv.Serve(s.dtlsLn) }()
	}
	if s.udpSv != nil {
		s.wg.Add(1)
		go func() { defer s.wg.Done(); errc <- s.udpSv.Serve(s.udpLn) }()
	}
	s.wg.Add(1)
	go func() { defer s.wg.Done(); s.tickLoop() }()
	s.startMu.Unlock()
	s.log.Info().Str("coaps", addrString(s.DTLSAddr())).Str("coap", addrString(s.PlainAddr())).
		Int("cid_length", s.cfg.CIDLength).Msg("coap listening")
	var err error
	select {
	case <-ctx.Done():
	case <-s.ctx.Done():
	case err = <-errc:
	}
	s.stop()
	return err
}

// Shutdown stops the listeners and closes every session. It is safe to call
// more than once and returns when every goroutine has ended or ctx is done.
func (s *Server) Shutdown(ctx context.Context) error {
	s.stop()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("coap shutdown: %w", ctx.Err())
	}
}

func (s *Server) stop() {
	s.shutOnce.Do(func() {
		s.startMu.Lock()
		s.cancel()
		s.startMu.Unlock()
		if s.dtlsSv != nil {
			s.dtlsSv.Stop()
			_ = s.dtlsLn.Close()
		}
		if s.udpSv != nil {
			s.udpSv.Stop()
		}
		for _, sess := range s.sessions.snapshot(nil) {
			_ = sess.Close()
		}
	})
}

// hotWindow is how long after its last activity a session may still have
// retransmissions or cached responses to expire (EXCHANGE_LIFETIME is 247 s).
const hotWindow = 5 * time.Minute

type dtlsOption func(*dtlsServer.Config)

func (f dtlsOption) DTLSServerApply(c *dtlsServer.Config) { f(c) }

type udpOption func(*udpServer.Config)

func (f udpOption) UDPServerApply(c *udpServer.Config) { f(c) }

// dtlsOptions sets every go-coap DTLS server parameter that matters.
// Expirations run on the server's own tick (tickLoop) rather than go-coap's
// runner, whose connection map is keyed by remote address and loses track
// of a session when its peer's address changes or a rebooted peer reuses it.
// The request monitor answers blob requests before go-coap's caches
// (blobserve.go).
func (s *Server) dtlsOptions() dtlsServer.Option {
	return dtlsOption(func(c *dtlsServer.Config) {
		s.common(&c.Common)
		c.PeriodicRunner = func(func(time.Time) bool) {}
		c.CreateInactivityMonitor = nilMonitor
		c.Handler = s.handle
		c.RequestMonitor = s.interceptBlob
		c.OnNewConn = func(cc *udpClient.Conn) { s.newSession(cc, true) }
		c.TransmissionNStart = 1
		c.TransmissionAcknowledgeTimeout = s.cfg.AckTimeout
		c.TransmissionAcknowledgeRandomFactor = 1.5
		c.TransmissionMaxRetransmit = uint32(s.cfg.MaxRetransmit)
		c.HandshakeTimeout = s.cfg.HandshakeTimeout
		c.MTU = uint16(s.cfg.ReadBuffer)
	})
}

// udpOptions mirrors dtlsOptions for plain CoAP. go-coap's runner stays:
// its UDP connection map is keyed by address, which is right for UDP, and
// it is what removes closed connections from that map.
func (s *Server) udpOptions(ctx context.Context) udpServer.Option {
	return udpOption(func(c *udpServer.Config) {
		s.common(&c.Common)
		c.PeriodicRunner = periodic.New(ctx.Done(), s.cfg.Tick)
		c.CreateInactivityMonitor = nilMonitor
		c.Handler = s.handle
		c.RequestMonitor = s.interceptBlob
		c.OnNewConn = func(cc *udpClient.Conn) { s.newSession(cc, false) }
		c.TransmissionNStart = 1
		c.TransmissionAcknowledgeTimeout = s.cfg.AckTimeout
		c.TransmissionAcknowledgeRandomFactor = 1.5
		c.TransmissionMaxRetransmit = uint32(s.cfg.MaxRetransmit)
		c.MTU = uint16(s.cfg.ReadBuffer)
	})
}

func (s *Server) common(c *config.Common[*udpClient.Conn]) {
	c.Errors = func(err error) { s.log.Debug().Err(err).Msg("coap") }
	c.BlockwiseEnable = true
	c.BlockwiseSZX = blockwise.SZX(blockSZX(s.cfg.MaxBlockSize))
	c.BlockwiseTransferTimeout = s.cfg.BlockwiseTimeout
}

// nilMonitor disables go-coap's inactivity monitor: idleness is judged by
// the session (see tickLoop), whose timeout follows the registration.
func nilMonitor() udpClient.InactivityMonitor { return inactivity.NewNilMonitor[*udpClient.Conn]() }
