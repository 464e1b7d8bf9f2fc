package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// globalFlags are accepted before the command and after it.
type globalFlags struct {
	server  string
	token   string
	data    string
	timeout time.Duration
}

func defaultGlobals() globalFlags {
	return globalFlags{server: "http://127.0.0.1:8080", data: "./data", timeout: 10 * time.Second}
}

var globalNames = map[string]bool{"server": true, "token": true, "data": true, "timeout": true}

// register binds the global flags to fs, with their current values as
// defaults so that a value given before the command survives.
func (g *globalFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&g.server, "server", g.server, "fotad API address")
	fs.StringVar(&g.token, "token", g.token, "API token (default $FOTA_TOKEN, then <data>/api-token)")
	fs.StringVar(&g.data, "data", g.data, "fotad data directory holding api-token")
	fs.DurationVar(&g.timeout, "timeout", g.timeout, "timeout of each API request")
}

// usageError is a wrong command line; run prints it with the synopsis and
// exits with exitUsage.
type usageError struct {
	command  string // "fotactl device show"
	synopsis string
	msg      string
}

func (e *usageError) Error() string { return e.msg }

func usageErrorf(command, format string, args ...any) error {
	return &usageError{command: command, msg: fmt.Sprintf(format, args...)}
}

// errHelpShown ends a command after it printed its help.
var errHelpShown = errors.New("help shown")

// command is the flag set and synopsis of one subcommand.
type command struct {
	c        *cli
	name     string // "device show"
	synopsis string // "fotactl device show ENDPOINT [--json]"
	about    string
	fs       *flag.FlagSet
}

func (c *cli) command(name, synopsis, about string) *command {
	fs := flag.NewFlagSet("fotactl "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	c.global.register(fs)
	return &command{c: c, name: name, synopsis: synopsis, about: about, fs: fs}
}

func (cmd *command) usageErrorf(format string, args ...any) error {
	return &usageError{command: "fotactl " + cmd.name, synopsis: cmd.synopsis, msg: fmt.Sprintf(format, args...)}
}

// parse parses args, whose flags may come before, between or after the
// positional arguments ("device show ep1 --json"); "--" ends the flags. It
// checks that there are between min and max positional arguments.
func (cmd *command) parse(args []string, min, max int, argName string) ([]string, error) {
	pos, err := parseInterleaved(cmd.fs, args)
	if errors.Is(err, flag.ErrHelp) {
		cmd.printHelp()
		return nil, errHelpShown
	}
	if err != nil {
		return nil, cmd.usageErrorf("%v", err)
	}
	switch {
	case len(pos) < min:
		return nil, cmd.usageErrorf("missing %s", argName)
	case len(pos) > max && max == 0:
		return nil, cmd.usageErrorf("unexpected argument %q", pos[0])
	case len(pos) > max:
		return nil, cmd.usageErrorf("unexpected argument %q after %s", pos[max], argName)
	}
	return pos, nil
}

func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			return append(pos, rest...), nil
		}
		if len(rest) == 0 {
			return pos, nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// printHelp prints the synopsis and the command's own flags; the global
// flags are listed by 'fotactl -h'.
func (cmd *command) printHelp() {
	w := cmd.c.stdout
	fmt.Fprintf(w, "usage: %s\n\n%s\n", cmd.synopsis, cmd.about)
	var own []*flag.Flag
	cmd.fs.VisitAll(func(f *flag.Flag) {
		if !globalNames[f.Name] {
			own = append(own, f)
		}
	})
	if len(own) > 0 {
		fmt.Fprintln(w, "\nFlags:")
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		for _, f := range own {
			name, usage := flag.UnquoteUsage(f)
			if name != "" {
				name = " " + name
			}
			fmt.Fprintf(tw, "  --%s%s\t%s\n", f.Name, name, usage)
		}
		tw.Flush()
	}
	fmt.Fprintln(w, "\nGlobal flags --server, --token, --data and --timeout are described by 'fotactl -h'.")
}

// tagFlag collects repeated --tag KEY=VALUE flags.
type tagFlag map[string]string

func (t tagFlag) String() string {
	keys := make([]string, 0, len(t))
	for k := range t {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + t[k]
	}
	return strings.Join(parts, ",")
}

func (t tagFlag) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return fmt.Errorf("tag %q: want KEY=VALUE", s)
	}
	if _, dup := t[k]; dup {
		return fmt.Errorf("tag %q given twice", k)
	}
	t[k] = v
	return nil
}
