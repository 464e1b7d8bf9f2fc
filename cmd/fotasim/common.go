package main

import (
	"crypto/ecdsa"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"sort"
	"strings"
	"syscall"

	"github.com/fotahub/fota/delivery/manifest"
	"github.com/fotahub/fota/simulator/link"
)

// serverAddr resolves a coaps:// or coap:// server URL.
func serverAddr(raw string) (*net.UDPAddr, bool, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return nil, false, fmt.Errorf("server %q: want coaps://HOST:PORT or coap://HOST:PORT", raw)
	}
	secure := u.Scheme == "coaps"
	if !secure && u.Scheme != "coap" {
		return nil, false, fmt.Errorf("server %q: scheme must be coap or coaps", raw)
	}
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), map[bool]string{true: "5684", false: "5683"}[secure])
	}
	addr, err := net.ResolveUDPAddr("udp", host)
	if err != nil {
		return nil, false, fmt.Errorf("server %q: %w", raw, err)
	}
	if !addr.IP.IsLoopback() {
		return nil, false, fmt.Errorf("server %s is not a loopback address: fotasim only talks to servers on this machine", addr)
	}
	return addr, secure, nil
}

// profiles returns the built-in link profiles and those of a YAML file.
func profiles(file string) (map[string]link.Profile, error) {
	all := map[string]link.Profile{}
	for _, n := range link.Names() {
		all[n], _ = link.Lookup(n)
	}
	if file == "" {
		return all, nil
	}
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	custom, err := link.LoadProfiles(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	for n, p := range custom {
		all[n] = p
	}
	return all, nil
}

// blockSize is the largest Block2 size whose datagram fits the profile's
// MTU: IPv4+UDP 28, DTLS with CCM-8 and a 3-byte CID 33, CoAP header and
// options of a block response about 30 (links.md's table).
func blockSize(p link.Profile) int {
	mtu := p.Down.MTU
	if mtu == 0 {
		return 1024
	}
	room := mtu - 28 - 33 - 30
	size := 1024
	for size > 16 && size > room {
		size /= 2
	}
	return size
}

func loadTrustKey(file string) (*ecdsa.PublicKey, error) {
	if file == "" {
		return nil, nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	return manifest.ParsePublicKeyPEM(b)
}

// raiseFileLimit lifts the soft limit on open files to the hard one: a
// fleet needs three sockets per device (its own and two in its relay),
// and two more while a zephyr or anjay device downloads over a session of
// its own.
func raiseFileLimit() {
	var l syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l) == nil && l.Cur < l.Max {
		l.Cur = l.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l)
	}
}

func runLinks(args []string, stdout, stderr io.Writer) error {
	file := ""
	if len(args) == 2 && args[0] == "--links" {
		file = args[1]
	} else if len(args) != 0 {
		return errors.New("usage: fotasim links [--links FILE]")
	}
	all, err := profiles(file)
	if err != nil {
		return err
	}
	names := make([]string, 0, len(all))
	for n := range all {
		names = append(names, n)
	}
	sort.Strings(names)
	fmt.Fprintf(stdout, "%-14s %12s %12s %8s %6s %6s %6s\n", "PROFILE", "DOWN", "UP", "RTT", "LOSS", "MTU", "BLOCK")
	for _, n := range names {
		p := all[n]
		fmt.Fprintf(stdout, "%-14s %12s %12s %8s %5.1f%% %6d %6d\n", n, rate(p.Down.Rate), rate(p.Up.Rate),
			p.Up.Delay+p.Down.Delay, 100*p.Down.Loss, p.Down.MTU, blockSize(p))
	}
	return nil
}

func rate(bps int64) string {
	switch {
	case bps == 0:
		return "unlimited"
	case bps >= 1e6:
		return fmt.Sprintf("%g Mbit/s", float64(bps)/1e6)
	case bps >= 1e3:
		return fmt.Sprintf("%g kbit/s", float64(bps)/1e3)
	}
	return fmt.Sprintf("%d bit/s", bps)
}

// splitList splits a comma-separated flag value.
func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}
