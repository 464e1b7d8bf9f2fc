package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/fotahub/fota/api"
)

// device dispatches "fotactl device VERB".
func (c *cli) device(args []string) error {
	if len(args) == 0 {
		return usageErrorf("fotactl device", "missing verb: add, list, show or rm")
	}
	verb, rest := args[0], args[1:]
	switch verb {
	case "add", "create":
		return c.deviceAdd(rest)
	case "list", "ls":
		return c.deviceList(rest)
	case "show", "get":
		return c.deviceShow(rest)
	case "rm", "remove", "delete":
		return c.deviceRemove(rest)
	case "-h", "--help", "help":
		fmt.Fprint(c.stdout, mainUsage)
		return nil
	}
	return usageErrorf("fotactl device", "unknown verb %q; try add, list, show or rm", verb)
}

func (c *cli) deviceAdd(args []string) error {
	cmd := c.command("device add",
		"fotactl device add ENDPOINT [--psk-identity ID --psk-key HEX] [--tag KEY=VALUE]... [--class C] [--link-mtu BYTES] [--replace] [--json]",
		`Provision a device. A PSK device needs both --psk-identity and the key, in hex
(--psk-key, or --psk-key-file to keep it out of the process list and shell
history). A device without a PSK authenticates with an X.509 certificate whose
Common Name is its endpoint name. --link-mtu is the IP MTU of the device's
link: firmware blocks are sized to fit it (1358, 3GPP's recommendation, when
unset; 680 gives 512-byte blocks). --class is the device class, which images
fit the device; without it, the class of its installed image counts.`)
	identity := cmd.fs.String("psk-identity", "", "PSK identity: the `ID` the device sends in the DTLS handshake")
	key := cmd.fs.String("psk-key", "", "pre-shared key in `HEX` (1 to 64 bytes)")
	keyFile := cmd.fs.String("psk-key-file", "", "read the hex key from `FILE` ('-' for standard input)")
	tags := tagFlag{}
	cmd.fs.Var(tags, "tag", "tag the device with `KEY=VALUE` (repeatable)")
	mtu := cmd.fs.Int("link-mtu", 0, "IP MTU of the device's link in `BYTES` (0: the server's default)")
	class := cmd.fs.String("class", "", "the device `CLASS`: which firmware images fit it")
	replace := cmd.fs.Bool("replace", false, "replace the device if it exists instead of failing")
	asJSON := cmd.fs.Bool("json", false, "print the created device as JSON")
	pos, err := cmd.parse(args, 1, 1, "ENDPOINT")
	if err != nil {
		return err
	}
	endpoint := pos[0]
	if *key != "" && *keyFile != "" {
		return cmd.usageErrorf("give --psk-key or --psk-key-file, not both")
	}
	if *keyFile != "" {
		if *key, err = c.readKeyFile(*keyFile); err != nil {
			return err
		}
	}
	if (*identity == "") != (*key == "") {
		return cmd.usageErrorf("a PSK device needs both --psk-identity and --psk-key")
	}

	client, err := c.client()
	if err != nil {
		return err
	}
	req := api.DeviceRequest{Endpoint: endpoint, PSKIdentity: *identity, PSKKey: *key, Tags: tags, LinkMTU: *mtu, Class: *class}
	method, path := http.MethodPost, "/api/v1/devices"
	if *replace {
		method, path = http.MethodPut, devicePath(endpoint)
	}
	body, err := client.do(method, path, req)
	if err != nil {
		return fmt.Errorf("add device %s: %w", endpoint, err)
	}
	if *asJSON {
		return c.printJSON(body)
	}
	var v api.DeviceView
	if err := json.Unmarshal(body, &v); err != nil {
		return fmt.Errorf("add device %s: decode response: %w", endpoint, err)
	}
	how := "PSK identity " + v.PSKIdentity
	if v.PSKIdentity == "" {
		how = "no PSK: X.509 or NoSec"
	}
	if v.Class != "" {
		how += ", class " + v.Class
	}
	fmt.Fprintf(c.stdout, "device %s provisioned (%s)\n", v.Endpoint, how)
	return nil
}

// readKeyFile reads a hex key from a file or, for "-", standard input.
func (c *cli) readKeyFile(name string) (string, error) {
	var b []byte
	var err error
	if name == "-" {
		b, err = io.ReadAll(io.LimitReader(c.stdin, 4096))
	} else {
		b, err = os.ReadFile(name)
	}
	if err != nil {
		return "", fmt.Errorf("read PSK key: %w", err)
	}
	k := strings.TrimSpace(string(b))
	if k == "" {
		return "", fmt.Errorf("read PSK key: %s is empty", name)
	}
	return k, nil
}

func (c *cli) deviceList(args []string) error {
	cmd := c.command("device list", "fotactl device list [--json]",
		"List provisioned devices with their registration state.")
	asJSON := cmd.fs.Bool("json", false, "print the API's JSON")
	if _, err := cmd.parse(args, 0, 0, ""); err != nil {
		return err
	}
	var list api.DeviceList
	if printed, err := c.fetch("/api/v1/devices", &list, *asJSON, "list devices"); printed || err != nil {
		return err
	}
	if len(list.Devices) == 0 {
		fmt.Fprintln(c.stdout, "No devices. Add one with 'fotactl device add ENDPOINT --psk-identity ID --psk-key HEX'.")
		return nil
	}
	// The class and firmware columns appear when some device has them.
	var classes, firmware bool
	for _, d := range list.Devices {
		classes = classes || d.Class != ""
		firmware = firmware || d.FirmwareVersion != ""
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprint(tw, "ENDPOINT\tPSK IDENTITY")
	if classes {
		fmt.Fprint(tw, "\tCLASS")
	}
	if firmware {
		fmt.Fprint(tw, "\tFIRMWARE")
	}
	fmt.Fprintln(tw, "\tREGISTERED\tVERSION\tBINDING\tADDRESS\tLAST SEEN\tTAGS")
	for _, d := range list.Devices {
		fmt.Fprintf(tw, "%s\t%s", d.Endpoint, dash(d.PSKIdentity))
		if classes {
			fmt.Fprintf(tw, "\t%s", dash(d.Class))
		}
		if firmware {
			fmt.Fprintf(tw, "\t%s", dash(d.FirmwareVersion))
		}
		fmt.Fprintf(tw, "\t%s\t%s\t%s\t%s\t%s\t%s\n",
			yesNo(d.Registered), dash(d.LwM2MVersion), dash(d.Binding),
			dash(d.Address), c.ago(d.LastSeen), dash(formatTags(d.Tags)))
	}
	return tw.Flush()
}

func (c *cli) deviceShow(args []string) error {
	cmd := c.command("device show", "fotactl device show ENDPOINT [--json]",
		"Show a provisioned device or a registered endpoint: its credentials (never the key)\nand its live registration.")
	asJSON := cmd.fs.Bool("json", false, "print the API's JSON")
	pos, err := cmd.parse(args, 1, 1, "ENDPOINT")
	if err != nil {
		return err
	}
	var d api.DeviceView
	if printed, err := c.fetch(devicePath(pos[0]), &d, *asJSON, fmt.Sprintf("show device %s", pos[0])); printed || err != nil {
		return err
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
	row := func(k, v string) { fmt.Fprintf(tw, "%s:\t%s\n", k, v) }
	row("Endpoint", d.Endpoint)
	row("Provisioned", yesNo(d.Provisioned))
	if d.Provisioned {
		row("PSK identity", dash(d.PSKIdentity))
		row("PSK key", map[bool]string{true: "set", false: "-"}[d.HasPSKKey])
		row("Tags", dash(formatTags(d.Tags)))
		if d.LinkMTU != 0 {
			row("Link MTU", fmt.Sprintf("%d bytes", d.LinkMTU))
		}
		if d.Class != "" {
			row("Class", d.Class)
		}
		row("Created", c.when(d.CreatedAt))
	}
	if d.FirmwareVersion != "" {
		row("Firmware", d.FirmwareVersion+" (as last reported)")
	}
	row("Registered", yesNo(d.Registered))
	if d.Registered {
		row("Registration ID", d.RegistrationID)
		row("LwM2M version", dash(d.LwM2MVersion))
		binding := dash(d.Binding)
		if d.QueueMode {
			binding += " (queue mode)"
		}
		row("Binding", binding)
		row("Lifetime", fmt.Sprintf("%ds", d.Lifetime))
		row("Identity", dash(d.Identity))
		row("Address", dash(d.Address))
		row("Registered at", c.when(d.RegisteredAt))
		row("Last seen", c.when(d.LastSeen))
		row("Expires", c.when(d.ExpiresAt))
		row("Objects", dash(strings.Join(d.Objects, " ")))
	}
	return tw.Flush()
}

func (c *cli) deviceRemove(args []string) error {
	cmd := c.command("device rm", "fotactl device rm ENDPOINT",
		"Remove a device's record and credentials. A live registration stays until it\nexpires or the device de-registers; the device cannot open a new DTLS session.")
	pos, err := cmd.parse(args, 1, 1, "ENDPOINT")
	if err != nil {
		return err
	}
	client, err := c.client()
	if err != nil {
		return err
	}
	if _, err := client.do(http.MethodDelete, devicePath(pos[0]), nil); err != nil {
		return fmt.Errorf("remove device %s: %w", pos[0], err)
	}
	fmt.Fprintf(c.stdout, "device %s removed\n", pos[0])
	return nil
}

func formatTags(tags map[string]string) string {
	keys := make([]string, 0, len(tags))
	for k := range tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + tags[k]
	}
	return strings.Join(parts, ",")
}
