package simulator

import (
	"context"
	"fmt"
	"net"
	"net/url"

	"github.com/fotahub/fota/coap"
)

// blockSource is the session a pull fetches its blocks over.
type blockSource interface {
	Do(ctx context.Context, req coap.Request) (coap.Response, error)
	// lost is called after sessionRetries unanswered requests in a row;
	// an error ends the download.
	lost() error
	close()
}

// receiver takes the bytes of a pull or a push into the candidate slot:
// fotad's signed package (transfer) or a raw image (rawTransfer).
type receiver interface {
	journal() *journal
	write(b []byte) error
	// save brings the journal up to date after a block.
	save() error
	// finish checks what the slot holds and describes it.
	finish() (ImageInfo, error)
}

// newReceiver starts a transfer from scratch, erasing the candidate.
func (d *Device) newReceiver(j *journal) receiver {
	if d.p.raw() {
		return d.newRawTransfer(j)
	}
	return d.newTransfer(j)
}

// resumeReceiver continues a transfer from its journal, or starts it
// again when it cannot.
func (d *Device) resumeReceiver(j *journal) receiver {
	if d.p.raw() {
		return d.resumeRawTransfer(j)
	}
	t, err := d.resumeTransfer(j)
	if err != nil {
		return d.newTransfer(j)
	}
	return t
}

// blockSource opens what the pull of u fetches over: the registration
// session for the native client, a session of its own for the others.
func (d *Device) blockSource(u *url.URL) (blockSource, error) {
	if !d.p.ownSession {
		return regSession{d: d}, nil
	}
	secure := u.Scheme == "coaps"
	if secure && d.cfg.PSKKey == nil && d.cfg.Certificate == nil {
		return nil, fail(ResultUnsupportedProt, "coaps download without DTLS credentials")
	}
	return &ownSession{d: d, addr: d.downloadAddr(u), secure: secure}, nil
}

// downloadAddr is where the download session for u sends: the URI's
// host and port, or what Config.DownloadVia maps them to.
func (d *Device) downloadAddr(u *url.URL) string {
	hostPort := u.Host
	if u.Port() == "" {
		hostPort = net.JoinHostPort(u.Hostname(), map[bool]string{true: "5684", false: "5683"}[u.Scheme == "coaps"])
	}
	if via, ok := d.cfg.DownloadVia[hostPort]; ok {
		return via
	}
	return hostPort
}

// regSession downloads over the registration session: when it stays
// silent the device connects again and resumes from its journal.
type regSession struct{ d *Device }

func (s regSession) Do(ctx context.Context, req coap.Request) (coap.Response, error) {
	return s.d.session().Do(ctx, req)
}

func (s regSession) lost() error {
	if s.d.loseSession() {
		// Three silences in a row: the server may have lost the DTLS
		// session (a restart). Start over with a new one; the journal
		// resumes the download at this block.
		return errSessionLost
	}
	return nil
}

func (regSession) close() {}

// ownSession is a download session of its own, as Zephyr and Anjay open
// one for the Package URI: a new socket and a new handshake with the
// registration's credentials, while the registration session stays up.
// It is dialled at the first request and again after silences.
type ownSession struct {
	d      *Device
	addr   string
	secure bool
	conn   *coap.ClientConn
}

func (s *ownSession) Do(ctx context.Context, req coap.Request) (coap.Response, error) {
	s.d.wakeRadio() // one modem carries both sessions
	if s.conn == nil {
		if err := s.dial(ctx); err != nil {
			return coap.Response{}, err
		}
	}
	return s.conn.Do(ctx, req)
}

func (s *ownSession) dial(ctx context.Context) error {
	if !s.secure {
		conn, err := coap.DialUDP(ctx, s.addr, coap.ClientConfig{NoBlockwise: true})
		if err != nil {
			return fmt.Errorf("download session: %w", err)
		}
		s.conn = conn
		return nil
	}
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return fmt.Errorf("download session: %w", err)
	}
	cfg := s.d.cfg
	conn, err := coap.DialDTLS(ctx, s.addr, coap.ClientConfig{PSKIdentity: cfg.PSKIdentity, PSKKey: cfg.PSKKey,
		Certificate: cfg.Certificate, RootCAs: cfg.RootCAs, ServerName: cfg.ServerName, ConnectionID: true,
		PacketConn: pc, HandshakeTimeout: cfg.BlockTimeout, NoBlockwise: true})
	if err != nil {
		return fmt.Errorf("download session: %w", err)
	}
	s.d.log.Debug().Str("addr", s.addr).Stringer("local", conn.LocalAddr()).Msg("download session open")
	s.conn = conn
	return nil
}

// lost drops the session: the next request opens a new one.
func (s *ownSession) lost() error {
	s.d.log.Info().Str("addr", s.addr).Msg("download session silent: opening a new one")
	s.close()
	return nil
}

func (s *ownSession) close() {
	if s.conn != nil {
		_ = s.conn.Close()
		s.conn = nil
	}
}
