// Command fotasim plays LwM2M devices against a fotad server: one device
// (fotasim device) or a fleet of hundreds to thousands in one process
// (fotasim fleet), each with its own DTLS session and an emulated Wi-Fi,
// LTE-M or NB-IoT link in front of it.
//
//	fotasim device --endpoint EP --psk-identity ID --psk-key HEX \
//	    --server coaps://HOST:PORT --link PROFILE --firmware FILE --version V \
//	    [--client native|zephyr|anjay]
//	fotasim fleet --config FILE
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

const mainUsage = `fotasim plays LwM2M devices against a fotad server.

Usage:
  fotasim device --endpoint EP --psk-identity ID --psk-key HEX --server coaps://HOST:PORT
                 --link PROFILE --firmware FILE --version V [--client native|zephyr|anjay] [flags]
                               run one device until interrupted (fotasim device -h: all flags)
  fotasim fleet --config FILE  run a fleet; one JSON line per device and a summary at the end
  fotasim links [--links FILE] list the link profiles

Link profiles: wifi, catm1, catm1-typical, nbiot, nbiot-ce1, nbiot-ce2, none (no emulation),
or your own from a YAML file (--links).
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "fotasim:", err)
		}
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, mainUsage)
		return flag.ErrHelp
	}
	switch args[0] {
	case "device":
		return runDevice(ctx, args[1:], stdout, stderr)
	case "fleet":
		return runFleet(ctx, args[1:], stdout, stderr)
	case "links":
		return runLinks(args[1:], stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, mainUsage)
		return nil
	}
	fmt.Fprint(stderr, mainUsage)
	return fmt.Errorf("unknown command %q", args[0])
}
