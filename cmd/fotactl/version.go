package main

import (
	"fmt"
	"runtime/debug"
	"strings"
)

// version is set with -ldflags "-X main.version=v1.2.3"; otherwise it
// comes from the build info.
var version = ""

func (c *cli) version(args []string) error {
	cmd := c.command("version", "fotactl version", "Print the version of fotactl.")
	if _, err := cmd.parse(args, 0, 0, ""); err != nil {
		return err
	}
	fmt.Fprintln(c.stdout, versionString())
	return nil
}

func versionString() string {
	v := version
	info, ok := debug.ReadBuildInfo()
	if !ok {
		if v == "" {
			v = "unknown"
		}
		return "fotactl " + v
	}
	if v == "" {
		v = info.Main.Version
	}
	if v == "" {
		v = "(devel)"
	}
	parts := []string{"fotactl", v}
	var rev, modified string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			modified = s.Value
		}
	}
	if rev != "" {
		if len(rev) > 12 {
			rev = rev[:12]
		}
		if modified == "true" {
			rev += "+dirty"
		}
		parts = append(parts, "rev "+rev)
	}
	parts = append(parts, info.GoVersion)
	return strings.Join(parts, " ")
}
