package main

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/fotahub/fota/api"
)

// registrations runs "fotactl registrations" (also "reg list").
func (c *cli) registrations(args []string) error {
	if len(args) > 0 && (args[0] == "list" || args[0] == "ls") {
		args = args[1:]
	}
	cmd := c.command("registrations", "fotactl registrations [--json]",
		"List live registrations, including endpoints without a device record\n(open-registration NoSec devices).")
	asJSON := cmd.fs.Bool("json", false, "print the API's JSON")
	if _, err := cmd.parse(args, 0, 0, ""); err != nil {
		return err
	}
	var list api.RegistrationList
	if printed, err := c.fetch("/api/v1/registrations", &list, *asJSON, "list registrations"); printed || err != nil {
		return err
	}
	if len(list.Registrations) == 0 {
		fmt.Fprintln(c.stdout, "No registrations.")
		return nil
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ENDPOINT\tPROVISIONED\tVERSION\tBINDING\tLIFETIME\tIDENTITY\tADDRESS\tLAST SEEN")
	for _, r := range list.Registrations {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n",
			r.Endpoint, yesNo(r.Provisioned), dash(r.LwM2MVersion), dash(r.Binding),
			time.Duration(r.Lifetime)*time.Second, dash(r.Identity), dash(r.Address), c.ago(r.LastSeen))
	}
	return tw.Flush()
}
