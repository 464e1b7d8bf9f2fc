package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/fotahub/fota/api"
	"github.com/fotahub/fota/lwm2m/model"
)

// many is the max of a variadic positional argument list.
const many = 1 << 20

// defaultWait matches the API's default wait for a result.
const defaultWait = api.DefaultOpWait

// opFlags are the flags every operation command takes.
type opFlags struct {
	asJSON  *bool
	async   *bool
	wait    *time.Duration
	expires *string
}

func addOpFlags(cmd *command) opFlags {
	return opFlags{
		asJSON: cmd.fs.Bool("json", false, "print the API's JSON"),
		async:  cmd.fs.Bool("async", false, "queue the operation and print its ticket at once"),
		wait: cmd.fs.Duration("wait", defaultWait,
			"wait up to `D` (at most 10m) for a sleeping device, then leave the operation queued"),
		expires: cmd.fs.String("expires", "",
			"drop the operation if the device has not woken up by `WHEN` (RFC 3339 or a duration; default fotad's, 24h)"),
	}
}

// opCommand runs read, write, exec, discover, attrs, create and delete.
func (c *cli) opCommand(name string, args []string) error {
	var (
		cmd      *command
		min, max int
		argNames string
	)
	switch name {
	case "read":
		cmd = c.command("read", "fotactl read ENDPOINT PATH [PATH...] [--format N] [--json]",
			"Read an object, instance, resource or resource instance, and print its values.\n"+
				"Several paths make a composite read.")
		min, max, argNames = 2, many, "ENDPOINT and PATH"
	case "write":
		cmd = c.command("write", "fotactl write ENDPOINT PATH VALUE [--type T] | ENDPOINT PATH RES=VALUE... [--partial]",
			`Write one resource (or resource instance) with VALUE, typed as the object
model says; --type gives the type of resources it does not know (default
string). With RES=VALUE pairs, write resources of the instance PATH, replacing
it, or only updating them with --partial. A negative number is taken as the
VALUE; any other VALUE starting with '-' goes after '--':
fotactl write dev-1 /3303/0/5750 -- -x-`)
		min, max, argNames = 3, many, "ENDPOINT, PATH and VALUE"
	case "exec", "execute":
		name = "exec"
		cmd = c.command("exec", "fotactl exec ENDPOINT PATH [ARGS]",
			"Execute a resource, e.g. /3/0/4 (Reboot), with optional arguments such as 0='v',1.")
		min, max, argNames = 2, 3, "ENDPOINT and PATH"
	case "discover":
		cmd = c.command("discover", "fotactl discover ENDPOINT [PATH]",
			"List what the device has at PATH (default /): objects, instances, resources and\ntheir attributes.")
		min, max, argNames = 1, 2, "ENDPOINT"
	case "attrs":
		cmd = c.command("attrs", "fotactl attrs ENDPOINT PATH NAME=VALUE...",
			"Write notification attributes (pmin, pmax, gt, lt, st, epmin, epmax, edge, con,\nhqmax); NAME= with no value removes one.")
		min, max, argNames = 3, many, "ENDPOINT, PATH and NAME=VALUE"
	case "create":
		cmd = c.command("create", "fotactl create ENDPOINT PATH RES=VALUE... [--type T]",
			`Create an object instance: PATH is the object (the device picks the instance
id) or the new instance. RES is a resource id or RES/INSTANCE for a multiple
resource; values are typed as the object model says, --type gives the type of
resources it does not know (default string).`)
		min, max, argNames = 2, many, "ENDPOINT and PATH"
	case "delete":
		cmd = c.command("delete", "fotactl delete ENDPOINT PATH", "Delete an object instance.")
		min, max, argNames = 2, 2, "ENDPOINT and PATH"
	}
	flags := addOpFlags(cmd)
	var typ *string
	var partial *bool
	var format *int
	switch name {
	case "write", "create":
		typ = cmd.fs.String("type", "", "value `TYPE` for resources the object model does not know: "+api.TypeNames)
	}
	if name == "write" {
		partial = cmd.fs.Bool("partial", false, "update the given resources only (RES=VALUE form)")
	}
	if name == "read" || name == "write" || name == "create" {
		format = cmd.fs.Int("format", 0, "content-format `NUMBER` to use instead of fotad's choice (e.g. 11542 TLV, 112 SenML CBOR)")
	}
	if name == "write" {
		args = negativeValues(args)
	}
	pos, err := cmd.parse(args, min, max, argNames)
	if err != nil {
		return err
	}

	ep := pos[0]
	req := api.OpRequest{Async: *flags.async, Expires: *flags.expires}
	if !*flags.async {
		req.Wait = flags.wait.String()
	}
	if format != nil {
		req.Format = *format
	}
	if typ != nil {
		req.Type = *typ
	}
	if len(pos) > 1 {
		req.Path = pos[1]
	}
	switch name {
	case "read":
		req.Op = "read"
		if len(pos) > 2 {
			req.Op, req.Path, req.Paths = "read-composite", "", pos[1:]
		}
	case "write":
		req.Op, req.Partial = "write", *partial
		p, err := model.ParsePath(pos[1])
		if err != nil {
			return cmd.usageErrorf("%v", err)
		}
		if len(pos) == 3 && p.Level() >= model.LevelResource && !*partial {
			req.Value = jsonText(pos[2])
			break
		}
		if req.Values, err = resValues(pos[2:]); err != nil {
			return cmd.usageErrorf("%v", err)
		}
	case "exec":
		req.Op = "execute"
		if len(pos) > 2 {
			req.Args = pos[2]
		}
	case "discover":
		req.Op = "discover"
	case "attrs":
		req.Op, req.Attributes = "write-attributes", map[string]json.RawMessage{}
		for _, a := range pos[2:] {
			k, v, ok := strings.Cut(a, "=")
			if !ok || k == "" {
				return cmd.usageErrorf("attribute %q: want NAME=VALUE (NAME= removes it)", a)
			}
			req.Attributes[k] = jsonText(v)
		}
	case "create":
		req.Op = "create"
		if req.Values, err = resValues(pos[2:]); err != nil {
			return cmd.usageErrorf("%v", err)
		}
	case "delete":
		req.Op = "delete"
	}

	client, err := c.opClient(!*flags.async, *flags.wait)
	if err != nil {
		return err
	}
	what := strings.TrimSpace(req.Op + " " + target(req.Path, req.Paths))
	resp, body, err := client.call(context.Background(), http.MethodPost, devicePath(ep)+"/ops", req)
	if err != nil {
		return opError(what, ep, err)
	}
	if *flags.asJSON {
		return c.printJSON(body)
	}
	if resp.StatusCode == http.StatusAccepted {
		var tb api.TicketBody
		if err := json.Unmarshal(body, &tb); err != nil {
			return fmt.Errorf("%s on %s: decode response: %w", what, ep, err)
		}
		c.printQueued(tb.Ticket, *flags.async, *flags.wait)
		return nil
	}
	var res api.ResultView
	if err := json.Unmarshal(body, &res); err != nil {
		return fmt.Errorf("%s on %s: decode response: %w", what, ep, err)
	}
	return c.printResult(req.Op, ep, req.Path, req.Attributes, res)
}

// negativeValues moves arguments that are negative numbers ("-5",
// "-4.5", "-.5") behind "--", so that the flag parser takes them as
// positional (the VALUE of write, its only positional that can be one),
// unless they are a flag's value or follow "--" already.
func negativeValues(args []string) []string {
	var out, moved []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			out = append(out, args[i:]...)
			i = len(args)
			continue
		case isNegativeNumber(a):
			moved = append(moved, a)
			continue
		}
		out = append(out, a)
		switch strings.TrimLeft(a, "-") {
		case "wait", "expires", "type", "format", "server", "token", "data", "timeout":
			if strings.HasPrefix(a, "-") && i+1 < len(args) {
				i++
				out = append(out, args[i])
			}
		}
	}
	if len(moved) == 0 {
		return args
	}
	if k := slices.Index(out, "--"); k >= 0 {
		// Keep the order: the moved values come before what followed "--".
		return slices.Concat(out[:k+1], moved, out[k+1:])
	}
	return slices.Concat(out, []string{"--"}, moved)
}

func isNegativeNumber(s string) bool {
	if len(s) < 2 || s[0] != '-' {
		return false
	}
	_, err := strconv.ParseFloat(s, 64)
	return err == nil && (s[1] >= '0' && s[1] <= '9' || s[1] == '.')
}

// jsonText is s as a JSON string.
func jsonText(s string) json.RawMessage {
	b, _ := json.Marshal(s)
	return b
}

// resValues reads RES=VALUE arguments into values with relative paths.
func resValues(args []string) ([]api.ValueRequest, error) {
	vals := make([]api.ValueRequest, 0, len(args))
	for _, a := range args {
		k, v, ok := strings.Cut(a, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("%q: want RES=VALUE, e.g. 1=300 or 6/0=1", a)
		}
		vals = append(vals, api.ValueRequest{Path: k, Value: jsonText(v)})
	}
	return vals, nil
}

func target(path string, paths []string) string {
	if len(paths) > 0 {
		return strings.Join(paths, ",")
	}
	return path
}

// opError words an operation's failure: the API's message names the
// operation, path and device when the device failed; others get them here.
func opError(what, ep string, err error) error {
	var he *httpError
	if errors.As(err, &he) && strings.Contains(he.msg, " on "+ep) {
		return err
	}
	return fmt.Errorf("%s on %s: %w", what, ep, err)
}

// opClient is an API client whose timeout covers waiting for the device.
func (c *cli) opClient(waiting bool, wait time.Duration) (*apiClient, error) {
	client, err := c.client()
	if err != nil {
		return nil, err
	}
	if waiting && wait > 0 {
		client.http.Timeout += wait
	}
	return client, nil
}

// call sends a request with a JSON body (when body is not nil) and returns
// the response of a 2xx answer with its body read; other answers become an
// *httpError carrying the server's message and the device's CoAP code.
func (a *apiClient) call(ctx context.Context, method, path string, body any) (*http.Response, []byte, error) {
	resp, err := a.open(ctx, method, path, body)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, nil, fmt.Errorf("%s %s: read response: %w", method, path, err)
	}
	return resp, b, nil
}

// open sends a request and returns the response of a 2xx answer with its
// body unread (streams); other answers become an *httpError.
func (a *apiClient) open(ctx context.Context, method, path string, body any) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(a.base.String(), "/")+path, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+a.token)
	req.Header.Set("Accept", "application/json, application/x-ndjson")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := a.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return nil, fmt.Errorf("%s %s: %w (is fotad running there? see --server)", method, a.base.Redacted(), err)
	}
	if resp.StatusCode/100 == 2 {
		return resp, nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var e api.OpErrorBody
	if json.Unmarshal(b, &e) != nil || e.Error == "" {
		e.Error = "server answered " + resp.Status
	}
	if e.CoAPCode != "" && !strings.Contains(e.Error, e.CoAPCode) {
		e.Error += " (CoAP " + e.CoAPCode + ")"
	}
	return nil, &httpError{status: resp.StatusCode, msg: e.Error}
}

// codeText names the success codes of LwM2M operations.
var codeText = map[string]string{
	"2.01": "Created", "2.02": "Deleted", "2.03": "Valid", "2.04": "Changed", "2.05": "Content",
}

func codeString(code string) string {
	if t, ok := codeText[code]; ok {
		return code + " " + t
	}
	return code
}

// printResult prints a finished operation's result.
func (c *cli) printResult(op, ep, path string, attrs map[string]json.RawMessage, res api.ResultView) error {
	code := codeString(res.Code)
	switch op {
	case "read", "read-composite":
		return c.printValues(res.Values)
	case "discover":
		return c.printLinks(res.Links)
	case "write":
		fmt.Fprintf(c.stdout, "wrote %s on %s (%s)\n", path, ep, code)
	case "execute":
		fmt.Fprintf(c.stdout, "executed %s on %s (%s)\n", path, ep, code)
	case "delete":
		fmt.Fprintf(c.stdout, "deleted %s on %s (%s)\n", path, ep, code)
	case "create":
		where := path
		if res.Location != "" {
			where = res.Location
		}
		fmt.Fprintf(c.stdout, "created %s on %s (%s)\n", where, ep, code)
	case "write-attributes":
		keys := make([]string, 0, len(attrs))
		for k := range attrs {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for i, k := range keys {
			var v string
			_ = json.Unmarshal(attrs[k], &v)
			keys[i] = k + "=" + v
		}
		fmt.Fprintf(c.stdout, "set %s on %s of %s (%s)\n", strings.Join(keys, " "), path, ep, code)
	default:
		fmt.Fprintf(c.stdout, "%s %s on %s (%s)\n", op, path, ep, code)
	}
	return nil
}

// printValues prints values as an aligned PATH NAME VALUE table.
func (c *cli) printValues(vals []api.ValueView) error {
	if len(vals) == 0 {
		fmt.Fprintln(c.stdout, "(no values)")
		return nil
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PATH\tNAME\tVALUE")
	for _, v := range vals {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", v.Path, dash(v.Name), displayValue(v))
	}
	return tw.Flush()
}

// printLinks prints Discover's links in link format, one per line.
func (c *cli) printLinks(links []api.LinkView) error {
	if len(links) == 0 {
		fmt.Fprintln(c.stdout, "(no links)")
		return nil
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
	for _, l := range links {
		var b strings.Builder
		b.WriteString("<" + l.Path + ">")
		keys := make([]string, 0, len(l.Attributes))
		for k := range l.Attributes {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			b.WriteString(";" + k)
			if v := l.Attributes[k]; v != "" {
				b.WriteString("=" + v)
			}
		}
		fmt.Fprintf(tw, "%s\t%s\n", b.String(), l.Name)
	}
	return tw.Flush()
}

// displayValue is a value as a person reads it: strings bare (quoted when
// empty or holding control characters), opaque values in hex.
func displayValue(v api.ValueView) string {
	raw := bytes.TrimSpace(v.Value)
	if len(raw) == 0 || raw[0] != '"' {
		return string(raw)
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return string(raw)
	}
	if v.Type == "opaque" {
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return s
		}
		if len(b) > 32 {
			return fmt.Sprintf("%d bytes: 0x%s...", len(b), hex.EncodeToString(b[:16]))
		}
		return "0x" + hex.EncodeToString(b)
	}
	if s == "" || strings.IndexFunc(s, unicode.IsControl) >= 0 {
		return strconv.Quote(s)
	}
	return s
}

// printQueued tells that an operation waits in the device's queue.
func (c *cli) printQueued(t api.TicketView, async bool, wait time.Duration) {
	what := strings.TrimSpace(t.Op + " " + target(t.Path, t.Paths))
	if async {
		fmt.Fprintf(c.stdout, "%s on %s queued as ticket %s (expires %s)\n", what, t.Endpoint, t.ID, t.Expires.UTC().Format(time.RFC3339))
	} else {
		fmt.Fprintf(c.stdout, "%s did not answer within %s (asleep?): %s stays queued as ticket %s (expires %s)\n",
			t.Endpoint, wait, what, t.ID, t.Expires.UTC().Format(time.RFC3339))
	}
	fmt.Fprintf(c.stdout, "Fetch the result with: fotactl ticket %s --wait 5m\n", t.ID)
}

// ticket runs "fotactl ticket ID".
func (c *cli) ticket(args []string) error {
	cmd := c.command("ticket", "fotactl ticket ID [--wait D] [--cancel] [--json]",
		"Show a queued or finished operation and its result; --wait waits for it to\nfinish, --cancel withdraws it if it was not sent yet.")
	asJSON := cmd.fs.Bool("json", false, "print the API's JSON")
	wait := cmd.fs.Duration("wait", 0, "wait up to `D` (at most 10m) for the operation to finish")
	cancel := cmd.fs.Bool("cancel", false, "withdraw the operation if it is still queued")
	pos, err := cmd.parse(args, 1, 1, "ID")
	if err != nil {
		return err
	}
	id := pos[0]
	client, err := c.opClient(true, *wait)
	if err != nil {
		return err
	}
	path := "/api/v1/tickets/" + url.PathEscape(id)
	if *cancel {
		if _, _, err := client.call(context.Background(), http.MethodDelete, path, nil); err != nil {
			return fmt.Errorf("cancel ticket %s: %w", id, err)
		}
		fmt.Fprintf(c.stdout, "ticket %s withdrawn\n", id)
		return nil
	}
	if *wait > 0 {
		path += "?wait=" + url.QueryEscape(wait.String())
	}
	_, body, err := client.call(context.Background(), http.MethodGet, path, nil)
	if err != nil {
		return fmt.Errorf("ticket %s: %w", id, err)
	}
	var tb api.TicketBody
	if err := json.Unmarshal(body, &tb); err != nil {
		return fmt.Errorf("ticket %s: decode response: %w", id, err)
	}
	t := tb.Ticket
	if *asJSON {
		if err := c.printJSON(body); err != nil {
			return err
		}
	} else {
		c.printTicket(t)
	}
	if t.State == "failed" {
		return fmt.Errorf("%s", t.Error)
	}
	return nil
}

func (c *cli) printTicket(t api.TicketView) {
	what := strings.TrimSpace(t.Op + " " + target(t.Path, t.Paths))
	tw := tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
	row := func(k, v string) { fmt.Fprintf(tw, "%s:\t%s\n", k, v) }
	row("Ticket", t.ID)
	row("Endpoint", t.Endpoint)
	row("Operation", what)
	row("State", t.State)
	row("Created", c.when(&t.Created))
	if t.Finished != nil {
		row("Finished", c.when(t.Finished))
	} else {
		row("Expires", t.Expires.UTC().Format(time.RFC3339))
	}
	if t.Error != "" {
		row("Error", t.Error)
	}
	if t.Result != nil {
		row("Result", codeString(t.Result.Code))
	}
	tw.Flush()
	switch {
	case t.Result != nil && (t.Op == "read" || t.Op == "read-composite"):
		fmt.Fprintln(c.stdout)
		_ = c.printValues(t.Result.Values)
	case t.Result != nil && t.Op == "discover":
		fmt.Fprintln(c.stdout)
		_ = c.printLinks(t.Result.Links)
	case t.Result != nil && t.Result.Location != "":
		fmt.Fprintf(c.stdout, "Location:  %s\n", t.Result.Location)
	case t.State == "queued":
		fmt.Fprintf(c.stdout, "\nWaiting for %s to wake up; fetch the result with: fotactl ticket %s --wait 5m\n", t.Endpoint, t.ID)
	}
}

// queue runs "fotactl queue ENDPOINT".
func (c *cli) queue(args []string) error {
	cmd := c.command("queue", "fotactl queue ENDPOINT [--json]",
		"List the operations waiting for a device to wake up, oldest first.")
	asJSON := cmd.fs.Bool("json", false, "print the API's JSON")
	pos, err := cmd.parse(args, 1, 1, "ENDPOINT")
	if err != nil {
		return err
	}
	client, err := c.client()
	if err != nil {
		return err
	}
	_, body, err := client.call(context.Background(), http.MethodGet, devicePath(pos[0])+"/queue", nil)
	if err != nil {
		return fmt.Errorf("queue of %s: %w", pos[0], err)
	}
	if *asJSON {
		return c.printJSON(body)
	}
	var list api.TicketList
	if err := json.Unmarshal(body, &list); err != nil {
		return fmt.Errorf("queue of %s: decode response: %w", pos[0], err)
	}
	if len(list.Tickets) == 0 {
		fmt.Fprintf(c.stdout, "No operations queued for %s.\n", pos[0])
		return nil
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TICKET\tOP\tPATH\tSTATE\tCREATED\tEXPIRES")
	for _, t := range list.Tickets {
		created := t.Created
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, t.Op, target(t.Path, t.Paths), t.State,
			c.ago(&created), t.Expires.UTC().Format(time.RFC3339))
	}
	return tw.Flush()
}

// observe runs "fotactl observe ENDPOINT PATH...": one line per
// notification until Ctrl-C.
func (c *cli) observe(args []string) error {
	cmd := c.command("observe", "fotactl observe ENDPOINT PATH [PATH...] [--format N] [--json]",
		`Observe resources and print each change, prefixed with the local time, until
Ctrl-C. Several paths make a composite observation. For a sleeping device the
first value comes when it wakes up. --json prints the API's NDJSON lines.`)
	asJSON := cmd.fs.Bool("json", false, "print the API's NDJSON lines")
	format := cmd.fs.Int("format", 0, "content-format `NUMBER` to use instead of fotad's choice")
	pos, err := cmd.parse(args, 2, many, "ENDPOINT and PATH")
	if err != nil {
		return err
	}
	ep := pos[0]
	q := url.Values{"path": pos[1:]}
	if *format != 0 {
		q.Set("format", strconv.Itoa(*format))
	}
	client, err := c.client()
	if err != nil {
		return err
	}
	client.http.Timeout = 0 // a stream; Ctrl-C ends it

	ctx, stop := signal.NotifyContext(c.ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	what := "observe " + strings.Join(pos[1:], ",")
	fmt.Fprintf(c.stderr, "Observing %s on %s; Ctrl-C to stop.\n", strings.Join(pos[1:], ", "), ep)
	resp, err := client.open(ctx, http.MethodGet, devicePath(ep)+"/observe?"+q.Encode(), nil)
	if err != nil {
		if ctx.Err() != nil {
			return nil // interrupted while waiting for the device
		}
		return opError(what, ep, err)
	}
	defer resp.Body.Close()
	// Closing the body ends a read blocked on the stream.
	go func() {
		<-ctx.Done()
		resp.Body.Close()
	}()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		if *asJSON {
			fmt.Fprintf(c.stdout, "%s\n", line)
			continue
		}
		var n api.NotificationView
		if err := json.Unmarshal(line, &n); err != nil {
			return fmt.Errorf("%s on %s: bad line from the server: %w", what, ep, err)
		}
		fmt.Fprintln(c.stdout, c.notificationLine(n))
	}
	if ctx.Err() != nil {
		return nil
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("%s on %s: %w", what, ep, err)
	}
	return fmt.Errorf("%s on %s: fotad ended the observation", what, ep)
}

// notificationLine is one notification: the local time, then the path,
// name and value of a single value, or PATH=VALUE pairs.
func (c *cli) notificationLine(n api.NotificationView) string {
	var b strings.Builder
	b.WriteString(c.now().Local().Format("2006-01-02 15:04:05"))
	switch len(n.Values) {
	case 0:
		b.WriteString("  (no values)")
	case 1:
		v := n.Values[0]
		b.WriteString("  " + v.Path)
		if v.Name != "" {
			b.WriteString("  " + v.Name)
		}
		b.WriteString("  " + displayValue(v))
	default:
		b.WriteString(" ")
		for _, v := range n.Values {
			s := displayValue(v)
			if strings.ContainsAny(s, " \t") {
				s = strconv.Quote(s)
			}
			b.WriteString(" " + v.Path + "=" + s)
		}
	}
	if n.Reestablished {
		b.WriteString("  (observation re-established)")
	}
	return b.String()
}
