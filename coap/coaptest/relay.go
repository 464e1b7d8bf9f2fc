// Package coaptest holds test helpers for code that talks CoAP over UDP.
package coaptest

import (
	"net"
	"sync"
	"testing"
)

// Relay is a NAT in front of a server: a device sends to Relay.Addr and
// the relay forwards from an outside socket that Rebind moves to a new
// port, as a carrier NAT does when its mapping expires.
type Relay struct {
	inside net.PacketConn
	server net.Addr

	mu      sync.Mutex
	outside net.PacketConn
	device  net.Addr
}

// NewRelay starts a relay to server on loopback; it stops when the test ends.
func NewRelay(t testing.TB, server net.Addr) *Relay {
	t.Helper()
	in, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &Relay{inside: in, server: server}
	r.Rebind(t)
	go r.up()
	t.Cleanup(func() {
		_ = in.Close()
		r.mu.Lock()
		_ = r.outside.Close()
		r.mu.Unlock()
	})
	return r
}

// Addr is where the device sends.
func (r *Relay) Addr() net.Addr { return r.inside.LocalAddr() }

// OutsideAddr is the address the server sees now.
func (r *Relay) OutsideAddr() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.outside.LocalAddr().String()
}

// Rebind moves the outside socket to a new port.
func (r *Relay) Rebind(t testing.TB) {
	t.Helper()
	out, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r.mu.Lock()
	old := r.outside
	r.outside = out
	r.mu.Unlock()
	if old != nil {
		_ = old.Close()
	}
	go r.down(out)
}

func (r *Relay) up() {
	buf := make([]byte, 65536)
	for {
		n, from, err := r.inside.ReadFrom(buf)
		if err != nil {
			return
		}
		r.mu.Lock()
		r.device = from
		out := r.outside
		r.mu.Unlock()
		_, _ = out.WriteTo(buf[:n], r.server)
	}
}

func (r *Relay) down(out net.PacketConn) {
	buf := make([]byte, 65536)
	for {
		n, _, err := out.ReadFrom(buf)
		if err != nil {
			return
		}
		r.mu.Lock()
		dev := r.device
		r.mu.Unlock()
		if dev != nil {
			_, _ = r.inside.WriteTo(buf[:n], dev)
		}
	}
}
