package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/fotahub/fota/api"
	"github.com/fotahub/fota/delivery/campaign"
)

// campaignCmd dispatches "fotactl campaign VERB".
func (c *cli) campaignCmd(args []string) error {
	if len(args) == 0 {
		return usageErrorf("fotactl campaign", "missing verb: plan, create, list, show, start, pause, resume, cancel or watch")
	}
	switch verb, rest := args[0], args[1:]; verb {
	case "plan":
		return c.campaignPlan(rest)
	case "create", "new":
		return c.campaignCreate(rest)
	case "list", "ls":
		return c.campaignList(rest)
	case "show", "get", "status":
		return c.campaignShow(rest)
	case "start", "pause", "resume", "cancel":
		return c.campaignChange(verb, rest)
	case "watch":
		return c.campaignWatch(rest)
	case "-h", "--help", "help":
		fmt.Fprint(c.stdout, mainUsage)
		return nil
	default:
		return usageErrorf("fotactl campaign", "unknown verb %q; try plan, create, list, show, start, pause, resume, cancel or watch", verb)
	}
}

func campaignPath(id string) string { return "/api/v1/campaigns/" + url.PathEscape(id) }

// planTimeout is added to the request timeout of plan and create: fotad
// makes the deltas the plan needs before it answers.
const planTimeout = 5 * time.Minute

// specFlagsSynopsis is the part of the synopsis the spec flags take.
const specFlagsSynopsis = "[--file SPEC.json] --image V (--endpoint EP... | --class C | --version V... | --tag K[=V]... | --all) " +
	"[--wave N|P%[,soak=D]]... [LIMITS] [--full] [--push]"

const specFlagsHelp = `The spec comes from --file (a campaign spec in JSON, as the API takes it)
and the flags, which override what the file says. The selection is every
device that matches all of --endpoint, --class, --version and --tag (--all
for every provisioned device the others allow). Waves split it in order:
--wave 10 --wave 50%,soak=10m updates 10 devices, then half of the
selection 10 minutes after the first wave ended, then the rest. Sizes take
10MB, 500KiB or bytes; durations 90s, 10m, 2h or 7d.`

// specFlags are the flags that make a campaign spec.
type specFlags struct {
	fs                *flag.FlagSet
	file              string
	name, image       string
	class             string
	endpoints         listFlag
	versions          listFlag
	tags              selectTagFlag
	all               bool
	waves             waveFlag
	maxConcurrent     int
	perTag            perTagFlag
	bytesPerHour      sizeFlag
	window            windowFlag
	maxFailures       int
	maxFailurePercent float64
	retries           int
	full, push        bool
	blockSize         int
	asleepWait        durationFlag
	deadline          durationFlag
}

func addSpecFlags(cmd *command) *specFlags {
	f := &specFlags{fs: cmd.fs, tags: selectTagFlag{}, perTag: perTagFlag{}}
	fs := cmd.fs
	fs.StringVar(&f.file, "file", "", "read the campaign spec from `FILE` (JSON; '-' for standard input); flags override it")
	fs.StringVar(&f.name, "name", "", "a `NAME` for the campaign")
	fs.StringVar(&f.image, "image", "", "the target image's `VERSION or DIGEST` (required unless in --file)")
	fs.Var(&f.endpoints, "endpoint", "select the device `EP` (repeatable, or comma-separated)")
	fs.StringVar(&f.class, "class", "", "select devices of the `CLASS`")
	fs.Var(&f.versions, "version", "select devices running the firmware `VERSION` (repeatable)")
	fs.Var(f.tags, "tag", "select devices tagged `KEY=VALUE`, or KEY with any value (repeatable)")
	fs.BoolVar(&f.all, "all", false, "select every provisioned device the other criteria allow")
	fs.Var(&f.waves, "wave", "`N|P%[,soak=DURATION]`: a wave of N devices or P % of the selection; the next opens DURATION after it ended (repeatable)")
	fs.IntVar(&f.maxConcurrent, "max-concurrent", 0, "run at most `N` updates at once (0: no limit)")
	fs.Var(f.perTag, "per-tag", "`KEY=N`: run at most N updates at once per value of tag KEY (repeatable)")
	fs.Var(&f.bytesPerHour, "bytes-per-hour", "start updates of at most `SIZE` package bytes an hour")
	fs.Var(&f.window, "window", "start updates only within `HH:MM-HH:MM`, UTC (may wrap past midnight)")
	fs.IntVar(&f.maxFailures, "max-failures", 0, "pause when more than `N` devices of a wave failed")
	fs.Float64Var(&f.maxFailurePercent, "max-failure-percent", 0, "pause when more than `X` % of a wave failed")
	fs.IntVar(&f.retries, "retries", 0, "restart a download `N` times after a lost connection (0: the server's default, -1: never)")
	fs.BoolVar(&f.full, "full", false, "send every device the full image, not a delta")
	fs.BoolVar(&f.push, "push", false, "write packages to /5/0/0 (Block1) where devices allow it")
	fs.IntVar(&f.blockSize, "block-size", 0, "cap the block size at `N` bytes (16-1024; 0: sized to each link)")
	fs.Var(&f.asleepWait, "asleep-wait", "let a wave wait `DURATION` for sleeping devices (default 1h)")
	fs.Var(&f.deadline, "deadline", "end the campaign `DURATION` after its start (default 14d)")
	return f
}

// spec reads the file, applies the flags given and checks that the spec
// has an image and a selection.
func (f *specFlags) spec(cmd *command) (campaign.Spec, error) {
	var spec campaign.Spec
	if f.file != "" {
		var err error
		if spec, err = cmd.c.readSpec(f.file); err != nil {
			return spec, err
		}
	}
	set := map[string]func(){
		"name":                func() { spec.Name = f.name },
		"image":               func() { spec.Image = strings.TrimSpace(f.image) },
		"endpoint":            func() { spec.Select.Endpoints = f.endpoints },
		"class":               func() { spec.Select.Class = f.class },
		"version":             func() { spec.Select.Versions = f.versions },
		"tag":                 func() { spec.Select.Tags = f.tags },
		"all":                 func() { spec.Select.All = f.all },
		"wave":                func() { spec.Waves = f.waves },
		"max-concurrent":      func() { spec.Limits.MaxConcurrent = f.maxConcurrent },
		"per-tag":             func() { spec.Limits.PerTag = f.perTag },
		"bytes-per-hour":      func() { spec.Limits.BytesPerHour = int64(f.bytesPerHour) },
		"window":              func() { spec.Limits.Window = f.window.w },
		"max-failures":        func() { spec.Failure.MaxFailures = f.maxFailures },
		"max-failure-percent": func() { spec.Failure.MaxFailurePercent = f.maxFailurePercent },
		"retries":             func() { spec.Failure.Retries = f.retries },
		"full":                func() { spec.Delivery.Full = f.full },
		"push":                func() { spec.Delivery.Push = f.push },
		"block-size":          func() { spec.Delivery.BlockSize = f.blockSize },
		"asleep-wait":         func() { spec.AsleepWait = campaign.Duration(f.asleepWait) },
		"deadline":            func() { spec.Deadline = campaign.Duration(f.deadline) },
	}
	f.fs.Visit(func(fl *flag.Flag) {
		if apply, ok := set[fl.Name]; ok {
			apply()
		}
	})
	sel := spec.Select
	switch {
	case spec.Image == "":
		return spec, cmd.usageErrorf("--image is required (or \"image\" in --file)")
	case !sel.All && len(sel.Endpoints) == 0 && sel.Class == "" && len(sel.Versions) == 0 && len(sel.Tags) == 0:
		return spec, cmd.usageErrorf("select devices with --endpoint, --class, --version, --tag or --all")
	}
	return spec, nil
}

// readSpec reads a campaign spec from a JSON file or, for "-", standard
// input; unknown fields are errors, as fotad would refuse them.
func (c *cli) readSpec(name string) (campaign.Spec, error) {
	var spec campaign.Spec
	var rd io.Reader = c.stdin
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return spec, fmt.Errorf("read campaign spec: %w", err)
		}
		defer f.Close()
		rd = f
	}
	dec := json.NewDecoder(io.LimitReader(rd, 16<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&spec); err != nil {
		return spec, fmt.Errorf("read campaign spec %s: %w", name, err)
	}
	return spec, nil
}

// listFlag collects repeated, comma-separated values.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(s string) error {
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			*l = append(*l, v)
		}
	}
	return nil
}

// selectTagFlag collects --tag KEY=VALUE and --tag KEY (any value).
type selectTagFlag map[string]string

func (t selectTagFlag) String() string { return tagFlag(t).String() }

func (t selectTagFlag) Set(s string) error {
	k, v, _ := strings.Cut(s, "=")
	if k == "" {
		return fmt.Errorf("tag %q: want KEY=VALUE or KEY", s)
	}
	if _, dup := t[k]; dup {
		return fmt.Errorf("tag %q given twice", k)
	}
	t[k] = v
	return nil
}

// waveFlag collects --wave N|P%[,soak=DURATION].
type waveFlag []campaign.Wave

func (w *waveFlag) String() string { return fmt.Sprint(len(*w), " waves") }

func (w *waveFlag) Set(s string) error {
	wave, err := parseWave(s)
	if err != nil {
		return err
	}
	*w = append(*w, wave)
	return nil
}

func parseWave(s string) (campaign.Wave, error) {
	var w campaign.Wave
	parts := strings.Split(s, ",")
	head := strings.TrimSpace(parts[0])
	if p, ok := strings.CutSuffix(head, "%"); ok {
		v, err := strconv.ParseFloat(strings.TrimSpace(p), 64)
		if err != nil || !(v > 0 && v <= 100) {
			return w, fmt.Errorf("wave %q: want a share of more than 0 and at most 100 %%", s)
		}
		w.Percent = v
	} else {
		n, err := strconv.Atoi(head)
		if err != nil || n <= 0 {
			return w, fmt.Errorf("wave %q: want a number of devices or a share, like 10 or 25%%", s)
		}
		w.Count = n
	}
	for _, part := range parts[1:] {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		if k != "soak" {
			return w, fmt.Errorf("wave %q: unknown option %q; want soak=DURATION", s, part)
		}
		d, err := parseDuration(v)
		if err != nil {
			return w, fmt.Errorf("wave %q: soak: %v", s, err)
		}
		w.Soak = campaign.Duration(d)
	}
	return w, nil
}

// perTagFlag collects --per-tag KEY=N.
type perTagFlag map[string]int

func (p perTagFlag) String() string {
	keys := make([]string, 0, len(p))
	for k := range p {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%d", k, p[k])
	}
	return strings.Join(parts, ",")
}

func (p perTagFlag) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	n, err := strconv.Atoi(v)
	if !ok || k == "" || err != nil || n <= 0 {
		return fmt.Errorf("per-tag limit %q: want KEY=N with N > 0", s)
	}
	if _, dup := p[k]; dup {
		return fmt.Errorf("per-tag limit %q given twice", k)
	}
	p[k] = n
	return nil
}

// sizeFlag is a byte count given as 10MB, 500KiB or bytes.
type sizeFlag int64

func (f *sizeFlag) String() string { return strconv.FormatInt(int64(*f), 10) }

func (f *sizeFlag) Set(s string) error {
	n, err := parseSize(s)
	*f = sizeFlag(n)
	return err
}

// sizeUnits are the units parseSize takes, lower case: SI (kB = 1000
// bytes) and binary (KiB = 1024 bytes).
var sizeUnits = map[string]float64{
	"": 1, "b": 1,
	"kb": 1e3, "mb": 1e6, "gb": 1e9,
	"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30,
}

// parseSize reads "10MB", "500 KiB", "1.5GB" or a number of bytes.
func parseSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	i := strings.IndexFunc(s, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	if i < 0 {
		i = len(s)
	}
	v, err := strconv.ParseFloat(s[:i], 64)
	mult, ok := sizeUnits[strings.ToLower(strings.TrimSpace(s[i:]))]
	if err != nil || !ok || v*mult > math.MaxInt64 {
		return 0, fmt.Errorf("size %q: want bytes or a number with kB, MB, GB, KiB, MiB or GiB, like 10MB or 500KiB", s)
	}
	return int64(math.Round(v * mult)), nil
}

// windowFlag is a daily window in UTC, HH:MM-HH:MM.
type windowFlag struct{ w *campaign.Window }

func (f *windowFlag) String() string {
	if f.w == nil {
		return ""
	}
	return f.w.Start + "-" + f.w.End
}

func (f *windowFlag) Set(s string) error {
	start, end, ok := strings.Cut(strings.TrimSpace(s), "-")
	start, end = strings.TrimSpace(start), strings.TrimSpace(end)
	_, err1 := time.Parse("15:04", start)
	_, err2 := time.Parse("15:04", end)
	if !ok || err1 != nil || err2 != nil {
		return fmt.Errorf("window %q: want HH:MM-HH:MM in UTC, like 22:00-04:00", s)
	}
	f.w = &campaign.Window{Start: start, End: end}
	return nil
}

// durationFlag is a duration that also takes days: 90s, 10m, 2h, 7d.
type durationFlag time.Duration

func (f *durationFlag) String() string { return time.Duration(*f).String() }

func (f *durationFlag) Set(s string) error {
	d, err := parseDuration(s)
	*f = durationFlag(d)
	return err
}

// parseDuration is time.ParseDuration that also takes days ("7d", "1.5d"),
// not negative.
func parseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	var d time.Duration
	var err error
	if days, ok := strings.CutSuffix(s, "d"); ok {
		var v float64
		if v, err = strconv.ParseFloat(days, 64); err == nil {
			d = time.Duration(v * float64(24*time.Hour))
		}
	} else {
		d, err = time.ParseDuration(s)
	}
	if err != nil || d < 0 {
		return 0, fmt.Errorf("duration %q: want 90s, 10m, 2h or 7d", s)
	}
	return d, nil
}

// specClient is an API client whose timeout covers making packages.
func (c *cli) specClient() (*apiClient, error) {
	client, err := c.client()
	if err != nil {
		return nil, err
	}
	client.http.Timeout += planTimeout
	return client, nil
}

func (c *cli) campaignPlan(args []string) error {
	cmd := c.command("campaign plan", "fotactl campaign plan "+specFlagsSynopsis+" [--json]",
		`Plan a campaign without storing or sending anything: which devices it
selects, in which wave, which package each would get (a delta from its
installed version, the full image, or nothing when it needs no update) and
why, the bytes it sends against sending every device the full image, and
how long the transfers take on each link profile fotad knows.

`+specFlagsHelp)
	sf := addSpecFlags(cmd)
	asJSON := cmd.fs.Bool("json", false, "print the API's JSON")
	if _, err := cmd.parse(args, 0, 0, ""); err != nil {
		return err
	}
	spec, err := sf.spec(cmd)
	if err != nil {
		return err
	}
	client, err := c.specClient()
	if err != nil {
		return err
	}
	body, err := client.do(http.MethodPost, "/api/v1/campaigns/plan", spec)
	if err != nil {
		return fmt.Errorf("plan campaign: %w", err)
	}
	if *asJSON {
		return c.printJSON(body)
	}
	var p campaign.Plan
	if err := json.Unmarshal(body, &p); err != nil {
		return fmt.Errorf("plan campaign: decode response: %w", err)
	}
	return c.printPlan(p)
}

// payload names what a device of a plan gets.
func payload(skip bool, format string) string {
	if skip {
		return "skip"
	}
	if format == "full" {
		return "full"
	}
	if format != "" {
		return "delta"
	}
	return "-"
}

// printPlan prints a plan: a row per device, the totals and the airtime
// per link.
func (c *cli) printPlan(p campaign.Plan) error {
	fmt.Fprintf(c.stdout, "Plan for %s (class %s, sha256 %s)\n\n", p.Version, dash(p.Class), p.Image)
	tw := tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ENDPOINT\tWAVE\tINSTALLED\tPAYLOAD\tSIZE\tREASON")
	for _, d := range p.Devices {
		size := "-"
		if !d.Skip {
			size = sizeText(d.Size)
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\n", d.Endpoint, d.Wave+1, dash(d.Installed),
			payload(d.Skip, d.Format.String()), size, dash(d.Reason))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(c.stdout)
	tw = tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
	row := func(k, v string) { fmt.Fprintf(tw, "%s:\t%s\n", k, v) }
	waves := make([]string, len(p.Waves))
	for i, n := range p.Waves {
		waves[i] = fmt.Sprintf("%d: %s", i+1, plural(n, "device"))
	}
	row("Devices", fmt.Sprintf("%d in %s (%s)", len(p.Devices), plural(len(p.Waves), "wave"), strings.Join(waves, ", ")))
	row("Payloads", fmt.Sprintf("%d delta, %d full, %d skip", p.Delta, p.Full, p.Skip))
	row("Bytes", bytesVersusFull(p.Bytes, p.FullBytes))
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(p.Airtime) == 0 {
		return nil
	}
	fmt.Fprintln(c.stdout, "\nAirtime (stop-and-wait Block2 transfers, no loss):")
	tw = tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "LINK\tBLOCK\tPER DEVICE\tTOTAL\tFULL ONLY")
	for _, a := range p.Airtime {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\n", a.Link, a.BlockSize, durationText(a.PerDevice),
			durationText(a.Total), durationText(a.FullOnly))
	}
	return tw.Flush()
}

// bytesVersusFull compares the bytes sent with those full images alone
// would send: "10.7 KiB (19.5 KiB with full images only: saves 8.8 KiB, 45.0 %)".
func bytesVersusFull(bytes, full int64) string {
	s := sizeText(bytes)
	if full <= 0 {
		return s
	}
	s += " (" + sizeText(full) + " with full images only"
	if bytes < full {
		s += fmt.Sprintf(": saves %s, %.1f %%", sizeText(full-bytes), 100*float64(full-bytes)/float64(full))
	}
	return s + ")"
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// durationText renders a duration for a person: 850ms, 4.2s, 3m05s,
// 2h07m, 3d04h.
func durationText(d time.Duration) string {
	switch {
	case d <= 0:
		return "0s"
	case d < time.Second:
		return fmt.Sprintf("%dms", d.Milliseconds())
	case d < 10*time.Second:
		return fmt.Sprintf("%.1fs", d.Seconds())
	case d < 48*time.Hour:
		return shortDuration(int64(d.Round(time.Second) / time.Second))
	default:
		return fmt.Sprintf("%dd%02dh", int(d/(24*time.Hour)), int(d%(24*time.Hour)/time.Hour))
	}
}

func (c *cli) campaignCreate(args []string) error {
	cmd := c.command("campaign create", "fotactl campaign create "+specFlagsSynopsis+" [--start] [--json]",
		`Create a campaign: fotad plans it (see 'fotactl campaign plan') and stores
it with its devices, not started. --start starts it at once; else start it
with 'fotactl campaign start ID'. Prints the campaign's ID.

`+specFlagsHelp)
	sf := addSpecFlags(cmd)
	start := cmd.fs.Bool("start", false, "start the campaign once created")
	asJSON := cmd.fs.Bool("json", false, "print the API's JSON: the campaign and its progress")
	if _, err := cmd.parse(args, 0, 0, ""); err != nil {
		return err
	}
	spec, err := sf.spec(cmd)
	if err != nil {
		return err
	}
	client, err := c.specClient()
	if err != nil {
		return err
	}
	body, err := client.do(http.MethodPost, "/api/v1/campaigns", spec)
	if err != nil {
		return fmt.Errorf("create campaign: %w", err)
	}
	var cb api.CampaignBody
	if err := json.Unmarshal(body, &cb); err != nil {
		return fmt.Errorf("create campaign: decode response: %w", err)
	}
	id := cb.Campaign.ID
	if *start {
		b, err := client.do(http.MethodPost, campaignPath(id)+"/start", nil)
		if err != nil {
			return fmt.Errorf("campaign %s created, but not started: %w", id, err)
		}
		if err := json.Unmarshal(b, &cb.Progress); err != nil {
			return fmt.Errorf("start campaign %s: decode response: %w", id, err)
		}
		cb.Campaign.State, cb.Campaign.Reason = cb.Progress.State, cb.Progress.Reason
		cb.Campaign.Started = cb.Progress.Started
		if body, err = json.Marshal(cb); err != nil {
			return err
		}
	}
	if *asJSON {
		return c.printJSON(body)
	}
	p := cb.Progress
	name := ""
	if p.Name != "" {
		name = fmt.Sprintf(" (%s)", p.Name)
	}
	sizes := make([]string, len(p.Waves))
	for i, w := range p.Waves {
		sizes[i] = strconv.Itoa(w.Size)
	}
	fmt.Fprintf(c.stdout, "%s\n", id)
	fmt.Fprintf(c.stdout, "campaign %s%s created: %s to %s in %s (%s)", id, name, cb.Campaign.Version,
		plural(p.Total, "device"), plural(len(p.Waves), "wave"), strings.Join(sizes, ", "))
	if n := p.Counts[campaign.TargetSkipped]; n > 0 {
		fmt.Fprintf(c.stdout, "; %d skipped (no update needed or possible)", n)
	}
	fmt.Fprintln(c.stdout)
	if *start {
		fmt.Fprintf(c.stdout, "campaign %s %s; follow it with: fotactl campaign watch %s\n", id, p.State, id)
	} else {
		fmt.Fprintf(c.stdout, "start it with: fotactl campaign start %s\n", id)
	}
	return nil
}

func (c *cli) campaignList(args []string) error {
	cmd := c.command("campaign list", "fotactl campaign list [--json]", "List campaigns, oldest first, with their state and progress.")
	asJSON := cmd.fs.Bool("json", false, "print the API's JSON")
	if _, err := cmd.parse(args, 0, 0, ""); err != nil {
		return err
	}
	var list api.CampaignList
	if printed, err := c.fetch("/api/v1/campaigns", &list, *asJSON, "list campaigns"); printed || err != nil {
		return err
	}
	if len(list.Campaigns) == 0 {
		fmt.Fprintln(c.stdout, "No campaigns. Plan one with 'fotactl campaign plan --image VERSION --all'.")
		return nil
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tIMAGE\tSTATE\tENDED\tDONE\tFAILED\tRUNNING\tCREATED")
	for _, p := range list.Campaigns {
		created := p.Created
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d/%d\t%d\t%d\t%d\t%s\n", p.ID, dash(p.Name), p.Image, p.State,
			ended(p.Counts), p.Total, p.Counts[campaign.TargetDone], p.Counts[campaign.TargetFailed], p.Running,
			c.ago(&created))
	}
	return tw.Flush()
}

// targetStates are the device states in the order they are listed.
var targetStates = []campaign.TargetState{
	campaign.TargetPending, campaign.TargetRunning, campaign.TargetDone, campaign.TargetFailed,
	campaign.TargetCancelled, campaign.TargetSkipped, campaign.TargetExpired,
}

// ended counts the devices in an end state.
func ended(counts map[campaign.TargetState]int) int {
	n := 0
	for st, k := range counts {
		if st.Finished() {
			n += k
		}
	}
	return n
}

// countsText lists the non-zero counts: "2 done, 1 failed, 5 pending".
func countsText(counts map[campaign.TargetState]int) string {
	var parts []string
	for _, st := range targetStates {
		if n := counts[st]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, st))
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

// stateText is a campaign's state with the reason it is paused or ended.
func stateText(p campaign.Progress) string {
	if p.Reason != "" {
		return fmt.Sprintf("%s: %s", p.State, p.Reason)
	}
	return string(p.State)
}

func (c *cli) campaignShow(args []string) error {
	cmd := c.command("campaign show", "fotactl campaign show ID [--devices] [--json]",
		`Show a campaign: its state and why it is paused or ended, its waves,
the devices by state, the bytes served and saved by deltas, and failures
grouped by Update Result and reason. --devices lists every device.`)
	devices := cmd.fs.Bool("devices", false, "list every device of the campaign")
	asJSON := cmd.fs.Bool("json", false, "print the API's JSON (the campaign with its devices, and its progress)")
	pos, err := cmd.parse(args, 1, 1, "ID")
	if err != nil {
		return err
	}
	var cb api.CampaignBody
	if printed, err := c.fetch(campaignPath(pos[0]), &cb, *asJSON, fmt.Sprintf("show campaign %s", pos[0])); printed || err != nil {
		return err
	}
	return c.printCampaign(cb, *devices)
}

// printCampaign prints a campaign's details, and its devices if asked.
func (c *cli) printCampaign(cb api.CampaignBody, devices bool) error {
	cp, p := cb.Campaign, cb.Progress
	tw := tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
	row := func(k, v string) { fmt.Fprintf(tw, "%s:\t%s\n", k, v) }
	id := cp.ID
	if cp.Spec.Name != "" {
		id += " (" + cp.Spec.Name + ")"
	}
	row("Campaign", id)
	row("Image", fmt.Sprintf("%s, sha256 %s", cp.Version, cp.Spec.Image))
	row("State", stateText(p))
	row("Selection", selectionText(cp.Spec.Select))
	if l := limitsText(cp.Spec); l != "" {
		row("Limits", l)
	}
	row("Created", c.when(&p.Created))
	if !p.Started.IsZero() {
		row("Started", c.when(&p.Started))
	}
	if !p.Ended.IsZero() {
		row("Ended", c.when(&p.Ended))
	}
	row("Devices", fmt.Sprintf("%d/%d ended: %s", ended(p.Counts), p.Total, countsText(p.Counts)))
	row("Running", fmt.Sprintf("%d now, at most %d at once", p.Running, p.PeakRunning))
	row("Bytes", fmt.Sprintf("%s served; %s", sizeText(p.BytesServed), savedText(p)))
	if err := tw.Flush(); err != nil {
		return err
	}

	fmt.Fprintln(c.stdout)
	tw = tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "WAVE\tSIZE\tENDED\tDEVICES\tSTATUS")
	for _, w := range p.Waves {
		fmt.Fprintf(tw, "%d\t%d\t%d/%d\t%s\t%s\n", w.Index, w.Size, ended(w.Counts), w.Size, countsText(w.Counts), c.waveStatus(w))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(p.Failures) > 0 {
		fmt.Fprintln(c.stdout, "\nFailures:")
		printFailures(c.stdout, "  ", p.Failures)
	}
	if !devices {
		return nil
	}
	fmt.Fprintln(c.stdout)
	tw = tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ENDPOINT\tWAVE\tSTATE\tINSTALLED\tPAYLOAD\tSIZE\tSERVED\tRESULT\tREASON")
	for _, t := range cp.Targets {
		result := "-"
		if t.Result != 0 {
			result = fmt.Sprintf("%d (%s)", t.Result, api.UpdateResultText(t.Result))
		}
		format := payload(t.State == campaign.TargetSkipped, t.Format.String())
		if t.FellBack {
			format += " (fell back)"
		}
		size := "-"
		if t.Size > 0 {
			size = sizeText(t.Size)
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", t.Endpoint, t.Wave+1, t.State, dash(t.Installed),
			format, size, sizeText(t.BytesServed), result, dash(t.Reason))
	}
	return tw.Flush()
}

// savedText is the bytes deltas saved and the share of the full images':
// "98.0 KiB saved by deltas (49.0 % of 200.0 KiB for full images)".
func savedText(p campaign.Progress) string {
	s := sizeText(p.BytesSaved) + " saved by deltas"
	if p.BytesBaseline > 0 {
		s += fmt.Sprintf(" (%.1f %% of %s for full images)", 100*float64(p.BytesSaved)/float64(p.BytesBaseline),
			sizeText(p.BytesBaseline))
	}
	return s
}

// waveStatus says where a wave is: not open, open, settled and soaking,
// or over.
func (c *cli) waveStatus(w campaign.WaveProgress) string {
	switch {
	case w.Opened.IsZero():
		return "not open"
	case w.Settled.IsZero():
		return "open since " + c.clock(w.Opened)
	case w.SoakUntil.After(c.now()):
		return "settled, soaking until " + c.clock(w.SoakUntil)
	default:
		return "settled " + c.clock(w.Settled)
	}
}

// clock is a time of day, local, with how far it is: "12:10:00 (in 4m)".
func (c *cli) clock(t time.Time) string {
	return t.Local().Format("15:04:05") + " (" + relative(c.now().Sub(t)) + ")"
}

// printFailures writes failure groups, each with its endpoints.
func printFailures(w io.Writer, indent string, groups []campaign.FailureGroup) {
	for _, g := range groups {
		fmt.Fprintf(w, "%s%s  result %d (%s): %s\n", indent, plural(g.Count, "device"), g.Result, g.ResultText, dash(g.Reason))
		eps := strings.Join(g.Endpoints, ", ")
		if len(g.Endpoints) < g.Count {
			eps += fmt.Sprintf(" and %d more", g.Count-len(g.Endpoints))
		}
		fmt.Fprintf(w, "%s    %s\n", indent, eps)
	}
}

func selectionText(s campaign.Selection) string {
	var parts []string
	if s.All {
		parts = append(parts, "all devices")
	}
	if n := len(s.Endpoints); n > 0 {
		eps := s.Endpoints
		more := ""
		if n > 5 {
			eps, more = eps[:5], fmt.Sprintf(" and %d more", n-5)
		}
		parts = append(parts, "endpoints "+strings.Join(eps, ", ")+more)
	}
	if s.Class != "" {
		parts = append(parts, "class "+s.Class)
	}
	if len(s.Versions) > 0 {
		parts = append(parts, "running "+strings.Join(s.Versions, " or "))
	}
	if len(s.Tags) > 0 {
		tags := make([]string, 0, len(s.Tags))
		for k, v := range s.Tags {
			if v == "" {
				v = "*"
			}
			tags = append(tags, k+"="+v)
		}
		sort.Strings(tags)
		parts = append(parts, "tagged "+strings.Join(tags, ","))
	}
	return dash(strings.Join(parts, "; "))
}

func limitsText(s campaign.Spec) string {
	var parts []string
	l := s.Limits
	if l.MaxConcurrent > 0 {
		parts = append(parts, fmt.Sprintf("%d at once", l.MaxConcurrent))
	}
	if len(l.PerTag) > 0 {
		parts = append(parts, "per tag "+perTagFlag(l.PerTag).String())
	}
	if l.BytesPerHour > 0 {
		parts = append(parts, sizeText(l.BytesPerHour)+"/h")
	}
	if l.Window != nil {
		parts = append(parts, l.Window.Start+"-"+l.Window.End+" UTC")
	}
	if f := s.Failure; f.MaxFailures > 0 || f.MaxFailurePercent > 0 {
		var p []string
		if f.MaxFailures > 0 {
			p = append(p, strconv.Itoa(f.MaxFailures))
		}
		if f.MaxFailurePercent > 0 {
			p = append(p, strconv.FormatFloat(f.MaxFailurePercent, 'f', -1, 64)+" %")
		}
		parts = append(parts, "pause after more than "+strings.Join(p, " or ")+" failures in a wave")
	}
	return strings.Join(parts, "; ")
}

// campaignChange runs start, pause, resume or cancel.
func (c *cli) campaignChange(verb string, args []string) error {
	about := map[string]string{
		"start":  "Start a created campaign: its first wave opens at once.",
		"pause":  "Pause a running campaign: no further updates start; running ones finish.",
		"resume": "Resume a paused campaign. The failures that paused it are forgiven: the\nfailure policy counts only those after the resume.",
		"cancel": "Cancel a campaign: no further device is updated, and running updates are\ncancelled on their devices.",
	}[verb]
	cmd := c.command("campaign "+verb, "fotactl campaign "+verb+" ID [--json]", about)
	asJSON := cmd.fs.Bool("json", false, "print the campaign's progress as JSON")
	pos, err := cmd.parse(args, 1, 1, "ID")
	if err != nil {
		return err
	}
	id := pos[0]
	client, err := c.client()
	if err != nil {
		return err
	}
	body, err := client.do(http.MethodPost, campaignPath(id)+"/"+verb, nil)
	if err != nil {
		return fmt.Errorf("%s campaign %s: %w", verb, id, err)
	}
	if *asJSON {
		return c.printJSON(body)
	}
	var p campaign.Progress
	if err := json.Unmarshal(body, &p); err != nil {
		return fmt.Errorf("%s campaign %s: decode response: %w", verb, id, err)
	}
	past := map[string]string{"start": "started", "pause": "paused", "resume": "resumed", "cancel": "cancelled"}[verb]
	fmt.Fprintf(c.stdout, "campaign %s %s: %s; %d/%d devices ended (%s)\n", id, past, stateText(p), ended(p.Counts), p.Total,
		countsText(p.Counts))
	if verb == "start" || verb == "resume" {
		fmt.Fprintf(c.stdout, "follow it with: fotactl campaign watch %s\n", id)
	}
	return nil
}

// errCampaignEnded stops reading the event stream at a finished campaign.
var errCampaignEnded = errors.New("campaign ended")

func (c *cli) campaignWatch(args []string) error {
	cmd := c.command("campaign watch", "fotactl campaign watch ID [--json]",
		`Follow a campaign until it ends (or Ctrl-C, which leaves it running): a
progress bar per wave and overall (devices ended of all), the devices by
state, the updates running now, the bytes served and saved, and failures
with their reasons. On a terminal the display is redrawn in place; else a
new block is printed at each change. --json prints each progress event as
one JSON line. Exits 0 when the campaign is done, 1 when it was cancelled.`)
	asJSON := cmd.fs.Bool("json", false, "print each progress event as one line of JSON")
	pos, err := cmd.parse(args, 1, 1, "ID")
	if err != nil {
		return err
	}
	id := pos[0]
	client, err := c.client()
	if err != nil {
		return err
	}
	client.http.Timeout = 0 // a stream; Ctrl-C ends it
	ctx, stop := signal.NotifyContext(c.ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	resp, err := client.open(ctx, http.MethodGet, campaignPath(id)+"/events", nil)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("campaign %s: %w", id, err)
	}
	defer resp.Body.Close()
	// Closing the body ends a read blocked on the stream.
	go func() {
		<-ctx.Done()
		resp.Body.Close()
	}()
	if !*asJSON {
		fmt.Fprintf(c.stderr, "Following campaign %s; Ctrl-C to stop watching (the campaign goes on).\n", id)
	}
	redraw := !*asJSON && outputIsTerminal(c)
	var last *campaign.Progress
	drawn := 0 // lines of the block on the screen
	err = readEvents(resp.Body, func(event string, data []byte) error {
		if event != "progress" {
			return nil
		}
		var p campaign.Progress
		if err := json.Unmarshal(data, &p); err != nil {
			return fmt.Errorf("bad event from the server: %w", err)
		}
		switch {
		case *asJSON:
			fmt.Fprintf(c.stdout, "%s\n", data)
		case redraw:
			block := c.progressBlock(p)
			if drawn > 0 {
				fmt.Fprintf(c.stdout, "\x1b[%dA\r\x1b[J", drawn) // up to the block's start, clear below
			}
			fmt.Fprint(c.stdout, block)
			drawn = strings.Count(block, "\n")
		default:
			if last != nil {
				fmt.Fprintln(c.stdout)
			}
			fmt.Fprint(c.stdout, c.progressBlock(p))
		}
		last = &p
		if p.State.Finished() {
			return errCampaignEnded
		}
		return nil
	})
	switch {
	case errors.Is(err, errCampaignEnded):
		return campaignOutcome(*last)
	case ctx.Err() != nil:
		return nil // Ctrl-C
	case err != nil:
		return fmt.Errorf("campaign %s: %w", id, err)
	}
	return fmt.Errorf("campaign %s: fotad ended the stream before the campaign finished", id)
}

// campaignOutcome is the command's error for a cancelled campaign.
func campaignOutcome(p campaign.Progress) error {
	if p.State == campaign.Cancelled {
		why := p.Reason
		if why == "" {
			why = "no reason given"
		}
		return fmt.Errorf("campaign %s was cancelled: %s", p.ID, why)
	}
	return nil
}

// progressBlock is the display of campaign watch: a header, a progress bar
// per wave and overall, the devices by state, the updates running, the
// bytes, and the failures. It ends with a newline.
func (c *cli) progressBlock(p campaign.Progress) string {
	var b strings.Builder
	name := p.ID
	if p.Name != "" {
		name += " (" + p.Name + ")"
	}
	fmt.Fprintf(&b, "%s  campaign %s, image %s: %s\n", c.now().Local().Format("15:04:05"), name, p.Image, stateText(p))
	type bar struct {
		label       string
		done, total int
		status      string
	}
	bars := make([]bar, 0, len(p.Waves)+1)
	for _, w := range p.Waves {
		bars = append(bars, bar{fmt.Sprintf("wave %d", w.Index), ended(w.Counts), w.Size, countsText(w.Counts) + "; " + c.waveStatus(w)})
	}
	bars = append(bars, bar{"all", ended(p.Counts), p.Total, countsText(p.Counts)})
	labelW, numW := 0, 0
	for _, r := range bars {
		labelW = max(labelW, len(r.label))
		numW = max(numW, len(strconv.Itoa(r.total)))
	}
	for _, r := range bars {
		frac := 0.0
		if r.total > 0 {
			frac = float64(r.done) / float64(r.total)
		}
		fmt.Fprintf(&b, "  %-*s  %s %7s  %*d/%-*d  %s\n", labelW, r.label, progressBar(frac, 20), percent(frac),
			numW, r.done, numW, r.total, r.status)
	}
	fmt.Fprintf(&b, "  running now: %d (at most %d at once)\n", p.Running, p.PeakRunning)
	fmt.Fprintf(&b, "  bytes: %s served, %s saved by deltas\n", sizeText(p.BytesServed), sizeText(p.BytesSaved))
	if len(p.Failures) > 0 {
		b.WriteString("  failures:\n")
		printFailures(&b, "    ", p.Failures)
	}
	return b.String()
}
