package main

import (
	"fmt"
	"time"
)

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// ago is a table cell for a past time: "12s ago".
func (c *cli) ago(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return relative(c.now().Sub(*t))
}

// when is a detail line for a time: "2025-03-01T11:59:00Z (1m ago)".
func (c *cli) when(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.UTC().Format(time.RFC3339) + " (" + relative(c.now().Sub(*t)) + ")"
}

// relative renders d, positive in the past, in its largest unit.
func relative(d time.Duration) string {
	future := d < 0
	if future {
		d = -d
	}
	var s string
	switch {
	case d < time.Second:
		return "now"
	case d < time.Minute:
		s = fmt.Sprintf("%ds", int(d/time.Second))
	case d < time.Hour:
		s = fmt.Sprintf("%dm", int(d/time.Minute))
	case d < 48*time.Hour:
		s = fmt.Sprintf("%dh", int(d/time.Hour))
	default:
		s = fmt.Sprintf("%dd", int(d/(24*time.Hour)))
	}
	if future {
		return "in " + s
	}
	return s + " ago"
}
