// Command fotactl manages a fotad server through its HTTP API: provision
// devices, list and inspect them and their registrations, read, write,
// execute and observe resources on registered devices, declare device
// classes, manage firmware images, signed packages and the signing key,
// update devices' firmware, and run update campaigns over many devices.
//
//	fotactl [--server URL] [--token TOKEN] [--data DIR] NOUN VERB [ARGS] [FLAGS]
//
// The API token is taken from --token, else the FOTA_TOKEN environment
// variable, else the file <data>/api-token that fotad creates.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

func main() {
	os.Exit(newCLI(os.Stdout, os.Stderr, os.Stdin, os.Getenv).run(os.Args[1:]))
}

// Exit codes.
const (
	exitOK      = 0
	exitFailure = 1 // the command ran and failed: HTTP error, network, I/O
	exitUsage   = 2 // the command line was wrong
)

// cli holds what every command needs; tests build one around buffers.
type cli struct {
	stdout, stderr io.Writer
	stdin          io.Reader
	getenv         func(string) string
	now            func() time.Time
	// transport, when set, replaces the default HTTP transport (tests).
	transport http.RoundTripper
	// ctx ends long-running commands (observe) besides Ctrl-C (tests).
	ctx context.Context

	global globalFlags
}

func newCLI(stdout, stderr io.Writer, stdin io.Reader, getenv func(string) string) *cli {
	return &cli{stdout: stdout, stderr: stderr, stdin: stdin, getenv: getenv, now: time.Now,
		ctx: context.Background(), global: defaultGlobals()}
}

const mainUsage = `fotactl manages a fotad firmware-update server.

Usage:
  fotactl [global flags] COMMAND [ARGS] [FLAGS]

Commands:
  device add ENDPOINT [--psk-identity ID --psk-key HEX] [--tag KEY=VALUE]... [--class C]
                              provision a device (--replace to overwrite one)
  device list [--json]        list provisioned devices and their registration state
  device show ENDPOINT [--json]
                              show a device or a registered endpoint
  device rm ENDPOINT          remove a device
  registrations [--json]      list live registrations, provisioned or not (also: reg list)
  class add NAME [--profile native|raw] [--delta] [--method auto|pull|push] [--block-size N]
      [--scheme auto|coaps|coap] [--deadline D] [--success result,version,package] [--json]
                              declare a device class: the package its devices take
                              and how it is delivered (--replace to overwrite one)
  class list [--json]         list declared classes and the default ones of images
  class show NAME [--json]    show a class's profile (the default for an undeclared one)
  class rm NAME               remove a declared class that holds no images
  image add FILE --version V --class C [--format native|raw] [--json]
                              store a firmware image, known by its SHA-256; raw images
                              are delivered as uploaded
  image list [--json]         list images by class and sequence
  image show DIGEST|VERSION [--class C] [--json]
                              show an image
  image rm DIGEST             remove an image and the packages made from or to it
  package make --image DIGEST|VERSION [--installed DIGEST] [--class C] [--full] [--json]
                              make (or find) the signed package a device gets: a delta
                              when smaller; prints format, size and saving
  package show ID [--json]    show a package
  update ENDPOINT --image VERSION|DIGEST [--full] [--push] [--json]
                              update a device's firmware through Object 5: a delta when
                              smaller, pulled by the device unless --push
  update status ENDPOINT [--watch] [--json]
                              show an update's phase, progress, time left and result;
                              --watch follows it until it ends
  update cancel ENDPOINT [--json]
                              stop a device's update
  update history ENDPOINT [--json]
                              list a device's updates, the current one and the
                              earlier ones, newest first
  campaign plan SPEC-FLAGS [--json]
                              dry run: each device's wave and package (delta, full or
                              skip), bytes against full images only, airtime per link
  campaign create SPEC-FLAGS [--start] [--json]
                              store a campaign (and start it); prints its ID
  campaign list [--json]      list campaigns with their state and progress
  campaign show ID [--devices] [--json]
                              state, waves, devices by state, bytes, failures
  campaign start|pause|resume|cancel ID [--json]
                              change a campaign's state
  campaign watch ID [--json]  follow a campaign until it ends: exit 0 done, 1 cancelled
  key gen [--out FILE] [--force]
                              make a package signing key here (mode 0600); prints the public key
  key show [--json]           print the public key fotad signs packages with (PEM)
  delta create --old OLD --new NEW --out PATCH [--format native|pelion] [--thumb]
                              make a patch locally; prints its size and RAM bound
  delta apply --old OLD --patch PATCH --out NEW [--new-sha256 HEX]
                              rebuild an image and check its digest
  version                     print the version of fotactl

Campaign SPEC-FLAGS: --image V, a selection (--endpoint EP... --class C --version V...
--tag KEY[=VALUE]... --all), [--file SPEC.json] [--name S] [--wave N|P%[,soak=D]]...
[--max-concurrent N] [--per-tag KEY=N]... [--bytes-per-hour SIZE] [--window HH:MM-HH:MM]
[--max-failures N] [--max-failure-percent X] [--retries N] [--full] [--push]
[--block-size N] [--asleep-wait D] [--deadline D]; see 'fotactl campaign plan -h'.

Device operations (--json prints the API's JSON; --wait D waits up to D for a
sleeping device, default 1m, then leaves the operation queued; --async queues it
and returns at once):
  read ENDPOINT PATH [PATH...]           read resources, e.g. read dev-1 /3/0
  write ENDPOINT PATH VALUE [--type T]   write one resource, e.g. write dev-1 /1/0/1 300
  write ENDPOINT PATH RES=VALUE... [--partial]
                                         write resources of an instance
  exec ENDPOINT PATH [ARGS]              execute a resource, e.g. exec dev-1 /3/0/4
  discover ENDPOINT [PATH]               list objects, instances, resources and attributes
  attrs ENDPOINT PATH NAME=VALUE...      write notification attributes, e.g. pmin=10 pmax=60
  create ENDPOINT PATH RES=VALUE...      create an object instance
  delete ENDPOINT PATH                   delete an object instance
  observe ENDPOINT PATH [PATH...]        print each change until Ctrl-C
  queue ENDPOINT                         list the operations waiting for a device
  ticket ID [--wait D] [--cancel]        show (or withdraw) a queued operation

Global flags (before or after the command):
  --server URL      fotad API address (default http://127.0.0.1:8080)
  --token TOKEN     API token; prefer FOTA_TOKEN or the token file, which ps cannot see
  --data DIR        fotad data directory holding api-token (default ./data)
  --timeout DUR     timeout of each API request (default 10s)

Run 'fotactl COMMAND -h' for the flags of a command.
`

// run parses the global flags and dispatches to the command; it returns
// the exit code.
func (c *cli) run(args []string) int {
	fs := flag.NewFlagSet("fotactl", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	c.global.register(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(c.stdout, mainUsage)
			return exitOK
		}
		return c.fail(usageErrorf("fotactl", "%v", err))
	}
	args = fs.Args()
	if len(args) == 0 {
		fmt.Fprint(c.stderr, mainUsage)
		return exitUsage
	}
	noun, rest := args[0], args[1:]
	var err error
	switch noun {
	case "device", "devices", "dev":
		err = c.device(rest)
	case "registrations", "registration", "reg", "regs":
		err = c.registrations(rest)
	case "class", "classes":
		err = c.classCmd(rest)
	case "image", "images", "img":
		err = c.image(rest)
	case "package", "packages", "pkg":
		err = c.pkg(rest)
	case "key", "keys":
		err = c.key(rest)
	case "delta":
		err = c.deltaCmd(rest)
	case "update", "updates":
		err = c.updateCmd(rest)
	case "campaign", "campaigns":
		err = c.campaignCmd(rest)
	case "read", "write", "exec", "execute", "discover", "attrs", "create", "delete":
		err = c.opCommand(noun, rest)
	case "observe":
		err = c.observe(rest)
	case "queue":
		err = c.queue(rest)
	case "ticket", "tickets":
		err = c.ticket(rest)
	case "version":
		err = c.version(rest)
	case "help":
		fmt.Fprint(c.stdout, mainUsage)
	default:
		err = usageErrorf("fotactl", "unknown command %q; run 'fotactl help' for the list", noun)
	}
	return c.fail(err)
}

// fail prints err and returns its exit code.
func (c *cli) fail(err error) int {
	var uerr *usageError
	switch {
	case err == nil, errors.Is(err, errHelpShown):
		return exitOK
	case errors.As(err, &uerr):
		fmt.Fprintf(c.stderr, "fotactl: %s\n", uerr.msg)
		if uerr.synopsis != "" {
			fmt.Fprintf(c.stderr, "usage: %s\n", uerr.synopsis)
		}
		fmt.Fprintf(c.stderr, "Run '%s -h' for help.\n", uerr.command)
		return exitUsage
	default:
		fmt.Fprintf(c.stderr, "fotactl: %v\n", err)
		return exitFailure
	}
}
