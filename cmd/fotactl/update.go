package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/fotahub/fota/api"
)

// updateCmd dispatches "fotactl update ...": start (the default verb),
// status, cancel and history. An endpoint named like a verb is started with
// "fotactl update start ENDPOINT".
func (c *cli) updateCmd(args []string) error {
	if len(args) > 0 {
		switch verb, rest := args[0], args[1:]; verb {
		case "start":
			return c.updateStart(rest)
		case "status", "show":
			return c.updateStatus(rest)
		case "cancel", "stop":
			return c.updateCancel(rest)
		case "history":
			return c.updateHistory(rest)
		}
	}
	return c.updateStart(args)
}

func updatePath(ep string) string { return devicePath(ep) + "/update" }

// updatesPath lists a device's updates, the current one and the earlier.
func updatesPath(ep string) string { return devicePath(ep) + "/updates" }

func (c *cli) updateStart(args []string) error {
	cmd := c.command("update", "fotactl update [start] ENDPOINT --image VERSION|DIGEST [--class C] [--full] [--push] [--json]",
		`Update a device's firmware through Object 5: fotad reads the installed
version, makes the package (a delta from the installed image when that is
smaller, else the full image), gives the device a Package URI to pull it
from (or writes it to /5/0/0 with --push), runs Update and checks that the
device comes back with the new version. A delta the device cannot apply
falls back to the full image. A raw class's image is sent as uploaded, the
way its class says (fotactl class show). The command returns once fotad has started;
follow the update with 'fotactl update status ENDPOINT --watch', stop it
with 'fotactl update cancel ENDPOINT'.`)
	image := cmd.fs.String("image", "", "the target image's `VERSION or DIGEST`")
	full := cmd.fs.Bool("full", false, "send the full image even when a delta would be smaller")
	push := cmd.fs.Bool("push", false, "write the package to /5/0/0 (Block1) instead of letting the device pull it")
	class := cmd.fs.String("class", "", "the image's `CLASS`, for a version several classes have (default: the device's class)")
	asJSON := cmd.fs.Bool("json", false, "print the API's JSON")
	pos, err := cmd.parse(args, 1, 1, "ENDPOINT")
	if err != nil {
		return err
	}
	if strings.TrimSpace(*image) == "" {
		return cmd.usageErrorf("--image is required")
	}
	ep := pos[0]
	client, err := c.client()
	if err != nil {
		return err
	}
	req := api.UpdateRequest{Image: *image, Full: *full, Push: *push, Class: *class}
	_, body, err := client.call(c.ctx, http.MethodPost, updatePath(ep), req)
	if err != nil {
		return fmt.Errorf("update %s: %w", ep, err)
	}
	if *asJSON {
		return c.printJSON(body)
	}
	var v api.UpdateView
	if err := json.Unmarshal(body, &v); err != nil {
		return fmt.Errorf("update %s: decode response: %w", ep, err)
	}
	what := "delta when smaller"
	if v.Full {
		what = "full image"
	}
	target := targetName(v)
	if v.Class != "" {
		target += " of class " + v.Class
	}
	fmt.Fprintf(c.stdout, "updating %s to %s (%s, %s): %s; follow it with: fotactl update status %s --watch\n",
		ep, target, v.Method, what, v.Phase, ep)
	return nil
}

func (c *cli) updateStatus(args []string) error {
	cmd := c.command("update status", "fotactl update status ENDPOINT [--watch] [--json]",
		`Show a device's current or last update: its phase, progress, time so far,
estimated time left and the last Update Result the device reported. --watch
follows the update and prints a line at each change until it ends (or
Ctrl-C); with --json, one JSON object per line. Exits 1 when the update
failed or was cancelled.`)
	watch := cmd.fs.Bool("watch", false, "follow the update until it ends")
	asJSON := cmd.fs.Bool("json", false, "print the API's JSON")
	pos, err := cmd.parse(args, 1, 1, "ENDPOINT")
	if err != nil {
		return err
	}
	ep := pos[0]
	client, err := c.client()
	if err != nil {
		return err
	}
	if *watch {
		return c.watchUpdate(client, ep, *asJSON)
	}
	_, body, err := client.call(c.ctx, http.MethodGet, updatePath(ep), nil)
	if err != nil {
		return fmt.Errorf("update of %s: %w", ep, err)
	}
	var v api.UpdateView
	if err := json.Unmarshal(body, &v); err != nil {
		return fmt.Errorf("update of %s: decode response: %w", ep, err)
	}
	if *asJSON {
		if err := c.printJSON(body); err != nil {
			return err
		}
	} else if err := c.printUpdate(v); err != nil {
		return err
	}
	return updateOutcome(v)
}

func (c *cli) updateCancel(args []string) error {
	cmd := c.command("update cancel", "fotactl update cancel ENDPOINT [--json]",
		`Stop a device's update: fotad stops serving the package and resets the
device's Object 5 (an empty Package URI). For a sleeping device this waits
up to a minute for it to wake up. --json prints the cancelled update.`)
	asJSON := cmd.fs.Bool("json", false, "print the cancelled update's JSON")
	pos, err := cmd.parse(args, 1, 1, "ENDPOINT")
	if err != nil {
		return err
	}
	ep := pos[0]
	client, err := c.opClient(true, defaultWait) // fotad waits for the device
	if err != nil {
		return err
	}
	if _, _, err := client.call(c.ctx, http.MethodDelete, updatePath(ep), nil); err != nil {
		return fmt.Errorf("cancel update of %s: %w", ep, err)
	}
	if !*asJSON {
		fmt.Fprintf(c.stdout, "update of %s cancelled\n", ep)
		return nil
	}
	_, body, err := client.call(c.ctx, http.MethodGet, updatePath(ep), nil)
	if err != nil {
		return fmt.Errorf("update of %s: %w", ep, err)
	}
	return c.printJSON(body)
}

func (c *cli) updateHistory(args []string) error {
	cmd := c.command("update history", "fotactl update history ENDPOINT [--json]",
		`List a device's firmware updates, the current or last one first, then the
earlier ones fotad keeps (the last 20), newest first: when each started
(UTC), its target version, method, payload (full, delta or raw), size,
phase, the last Update Result the device reported, retries and error.`)
	asJSON := cmd.fs.Bool("json", false, "print the API's JSON")
	pos, err := cmd.parse(args, 1, 1, "ENDPOINT")
	if err != nil {
		return err
	}
	ep := pos[0]
	var list api.UpdateList
	if printed, err := c.fetch(updatesPath(ep), &list, *asJSON, "update history of "+ep); printed || err != nil {
		return err
	}
	if len(list.Updates) == 0 {
		fmt.Fprintf(c.stdout, "No updates of %s. Start one with 'fotactl update %s --image VERSION'.\n", ep, ep)
		return nil
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "STARTED (UTC)\tVERSION\tMETHOD\tPAYLOAD\tSIZE\tPHASE\tRESULT\tRETRIES\tERROR")
	for _, v := range list.Updates {
		size := "-"
		if v.Size > 0 {
			size = sizeText(v.Size)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\n", v.Started.UTC().Format("2006-01-02 15:04:05"),
			targetName(v), v.Method, payloadText(v), size, v.Phase, v.ResultText, v.Retries, dash(v.Error))
	}
	return tw.Flush()
}

// payloadText is what an update sends: "raw" (the image as uploaded),
// the package's format ("full", "delta"), or "-" before it is made.
func payloadText(v api.UpdateView) string {
	if v.Raw {
		return "raw"
	}
	return dash(v.Format)
}

// errUpdateEnded stops reading the event stream at a finished phase.
var errUpdateEnded = errors.New("update ended")

// watchUpdate follows the update's event stream (Server-Sent Events),
// printing a line per event, until the update ends or Ctrl-C. On a
// terminal it redraws the line in place while the phase stays the same.
func (c *cli) watchUpdate(client *apiClient, ep string, asJSON bool) error {
	client.http.Timeout = 0 // a stream; Ctrl-C ends it
	ctx, stop := signal.NotifyContext(c.ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	resp, err := client.open(ctx, http.MethodGet, updatePath(ep)+"/events", nil)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("update of %s: %w", ep, err)
	}
	defer resp.Body.Close()
	// Closing the body ends a read blocked on the stream.
	go func() {
		<-ctx.Done()
		resp.Body.Close()
	}()
	if !asJSON {
		fmt.Fprintf(c.stderr, "Following the update of %s; Ctrl-C to stop watching (the update goes on).\n", ep)
	}
	redraw := !asJSON && outputIsTerminal(c)
	var last *api.UpdateView
	err = readEvents(resp.Body, func(event string, data []byte) error {
		if event != "update" {
			return nil
		}
		var v api.UpdateView
		if err := json.Unmarshal(data, &v); err != nil {
			return fmt.Errorf("bad event from the server: %w", err)
		}
		switch {
		case asJSON:
			fmt.Fprintf(c.stdout, "%s\n", data)
		case redraw:
			if last != nil && last.Phase != v.Phase {
				fmt.Fprintln(c.stdout) // keep the line of the phase that ended
			}
			fmt.Fprint(c.stdout, "\r\x1b[K"+c.updateLine(v))
		default:
			fmt.Fprintln(c.stdout, c.updateLine(v))
		}
		last = &v
		if isFinished(v.Phase) {
			return errUpdateEnded
		}
		return nil
	})
	if redraw && last != nil {
		fmt.Fprintln(c.stdout)
	}
	switch {
	case errors.Is(err, errUpdateEnded):
		return updateOutcome(*last)
	case ctx.Err() != nil:
		return nil // Ctrl-C
	case err != nil:
		return fmt.Errorf("update of %s: %w", ep, err)
	}
	return fmt.Errorf("update of %s: fotad ended the stream before the update finished", ep)
}

// readEvents reads a text/event-stream and calls fn with the type
// ("message" when unnamed) and data of each event; an error of fn ends it
// and is returned. Comments, ids and retry fields are skipped.
func readEvents(r io.Reader, fn func(event string, data []byte) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	var (
		event   string
		data    []byte
		hasData bool
	)
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			if hasData {
				if event == "" {
					event = "message"
				}
				if err := fn(event, data); err != nil {
					return err
				}
			}
			event, data, hasData = "", nil, false
			continue
		}
		if strings.HasPrefix(line, ":") {
			continue
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "event":
			event = value
		case "data":
			if hasData {
				data = append(data, '\n')
			}
			data, hasData = append(data, value...), true
		}
	}
	return sc.Err()
}

// outputIsTerminal reports whether stdout is a terminal that can redraw a
// line; tests replace it.
var outputIsTerminal = func(c *cli) bool {
	f, ok := c.stdout.(*os.File)
	if !ok || c.getenv("TERM") == "dumb" {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

func isFinished(phase string) bool {
	return phase == "done" || phase == "failed" || phase == "cancelled"
}

// updateOutcome is the command's error for a failed or cancelled update.
func updateOutcome(v api.UpdateView) error {
	switch v.Phase {
	case "failed":
		msg := v.Error
		if msg == "" {
			msg = resultName(v)
		}
		return fmt.Errorf("update of %s failed: %s", v.Endpoint, msg)
	case "cancelled":
		return fmt.Errorf("update of %s was cancelled", v.Endpoint)
	}
	return nil
}

// targetName is the update's target: its version once known, else the
// image as asked.
func targetName(v api.UpdateView) string {
	if v.Version != "" {
		return v.Version
	}
	return v.Image
}

func resultName(v api.UpdateView) string {
	return fmt.Sprintf("%d (%s)", v.Result, v.ResultText)
}

// progressBar draws progress (0..1) in width cells: [#####.....].
func progressBar(progress float64, width int) string {
	n := int(progress * float64(width))
	n = max(0, min(width, n))
	return "[" + strings.Repeat("#", n) + strings.Repeat(".", width-n) + "]"
}

func percent(progress float64) string { return fmt.Sprintf("%.1f %%", 100*progress) }

// shortDuration renders whole seconds as 42s, 3m05s or 2h07m.
func shortDuration(seconds int64) string {
	d := time.Duration(max(seconds, 0)) * time.Second
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d/time.Minute), int(d%time.Minute/time.Second))
	default:
		return fmt.Sprintf("%dh%02dm", int(d/time.Hour), int(d%time.Hour/time.Minute))
	}
}

// sizeText is a byte count for a person: 812 B, 4.8 KiB, 1.2 MiB, 2.3 GiB.
func sizeText(n int64) string {
	switch {
	case n < 1<<10:
		return fmt.Sprintf("%d B", n)
	case n < 1<<20:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	case n < 1<<30:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	default:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	}
}

// updateLine is one line of --watch: local time, phase, progress, time so
// far and left, and the device's result when it reported one.
func (c *cli) updateLine(v api.UpdateView) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s  %-11s", c.now().Local().Format("15:04:05"), v.Phase)
	if v.Size > 0 {
		fmt.Fprintf(&b, "  %s %7s  %s/%s", progressBar(v.Progress, 20), percent(v.Progress),
			sizeText(min(v.BytesServed, v.Size)), sizeText(v.Size))
	}
	if v.Blocks > 0 {
		fmt.Fprintf(&b, "  %d/%d blocks", v.BlocksServed, v.Blocks)
	}
	fmt.Fprintf(&b, "  %s", shortDuration(v.ElapsedS))
	if v.ETAS != nil {
		fmt.Fprintf(&b, ", ~%s left", shortDuration(*v.ETAS))
	}
	if v.Result != 0 {
		fmt.Fprintf(&b, "  result %s", resultName(v))
	}
	if v.FellBack && v.Phase != "done" {
		b.WriteString("  (fell back to the full image)")
	}
	if v.Error != "" && v.Phase == "failed" {
		b.WriteString("  error: " + v.Error)
	}
	return b.String()
}

// printUpdate prints an update's details.
func (c *cli) printUpdate(v api.UpdateView) error {
	tw := tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
	row := func(k, val string) { fmt.Fprintf(tw, "%s:\t%s\n", k, val) }
	row("Endpoint", v.Endpoint)
	image := targetName(v)
	if v.Target != "" {
		image += ", sha256 " + v.Target
	}
	if v.Image != targetName(v) {
		image += " (asked for " + v.Image + ")"
	}
	row("Image", image)
	if v.Class != "" {
		row("Class", v.Class)
	}
	method := "pull: the device downloads the package from fotad"
	if v.Method == "push" {
		method = "push: fotad writes the package to /5/0/0"
	}
	row("Method", method)
	switch {
	case v.Package != "":
		pkg := fmt.Sprintf("%s, %d bytes, id %s", v.Format, v.Size, v.Package)
		if v.Raw {
			pkg = fmt.Sprintf("raw image as uploaded, %d bytes, sha256 %s", v.Size, v.Package)
		}
		if v.FellBack {
			pkg += " (the delta failed on the device: fell back to the full image)"
		}
		row("Package", pkg)
	case v.Full:
		row("Package", "not made yet (full image asked for)")
	default:
		row("Package", "not made yet")
	}
	row("Phase", v.Phase)
	if v.Size > 0 {
		progress := fmt.Sprintf("%s %s  %d of %d bytes", progressBar(v.Progress, 30), percent(v.Progress),
			min(v.BytesServed, v.Size), v.Size)
		if v.Blocks > 0 {
			progress += fmt.Sprintf(", %d of %d blocks of %d bytes", v.BlocksServed, v.Blocks, v.BlockSize)
		}
		row("Progress", progress)
	}
	row("Time so far", shortDuration(v.ElapsedS))
	switch {
	case v.ETAS != nil:
		row("Time left", "about "+shortDuration(*v.ETAS)+" (download)")
	case v.Phase == "downloading":
		row("Time left", "unknown yet")
	}
	row("Last result", resultName(v))
	if v.Retries > 0 {
		row("Retries", fmt.Sprintf("%d (download started again after a lost connection)", v.Retries))
	}
	if v.Error != "" {
		row("Error", v.Error)
	}
	started := v.Started
	row("Started", c.when(&started))
	if isFinished(v.Phase) {
		changed := v.Changed
		row("Ended", c.when(&changed))
	} else {
		row("Deadline", v.Deadline.UTC().Format(time.RFC3339))
	}
	return tw.Flush()
}
