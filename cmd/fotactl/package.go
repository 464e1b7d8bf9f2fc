package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"text/tabwriter"

	"github.com/fotahub/fota/api"
)

// pkg dispatches "fotactl package VERB".
func (c *cli) pkg(args []string) error {
	if len(args) == 0 {
		return usageErrorf("fotactl package", "missing verb: make or show")
	}
	switch verb, rest := args[0], args[1:]; verb {
	case "make", "build":
		return c.packageMake(rest)
	case "show", "get":
		return c.packageShow(rest)
	case "-h", "--help", "help":
		fmt.Fprint(c.stdout, mainUsage)
		return nil
	default:
		return usageErrorf("fotactl package", "unknown verb %q; try make or show", verb)
	}
}

func (c *cli) packageMake(args []string) error {
	cmd := c.command("package make",
		"fotactl package make --image DIGEST|VERSION [--installed DIGEST] [--class C] [--full] [--json]",
		`Make the signed package that brings a device from its installed image to
--image, or find it made already, and print its format, size and saving. It
is a delta when the installed image is stored, of the same class and older,
and the delta package is smaller than the full one; else the full image.
Packages are kept and served to every device on the same image.`)
	image := cmd.fs.String("image", "", "the target image's `DIGEST or VERSION`")
	installed := cmd.fs.String("installed", "", "SHA-256 `DIGEST` of the image the device runs")
	class := cmd.fs.String("class", "", "the device `CLASS` (needed when several classes have the version)")
	full := cmd.fs.Bool("full", false, "make the full-image package even when a delta would be smaller")
	asJSON := cmd.fs.Bool("json", false, "print the API's JSON")
	if _, err := cmd.parse(args, 0, 0, ""); err != nil {
		return err
	}
	if *image == "" {
		return cmd.usageErrorf("--image is required")
	}
	client, err := c.client()
	if err != nil {
		return err
	}
	req := api.PackageRequest{Image: *image, Installed: *installed, Class: *class, Full: *full}
	body, err := client.do(http.MethodPost, "/api/v1/packages", req)
	if err != nil {
		return fmt.Errorf("make package: %w", err)
	}
	if *asJSON {
		return c.printJSON(body)
	}
	var p api.PackageView
	if err := json.Unmarshal(body, &p); err != nil {
		return fmt.Errorf("make package: decode response: %w", err)
	}
	return c.printPackage(p, true)
}

func (c *cli) packageShow(args []string) error {
	cmd := c.command("package show", "fotactl package show ID [--json]", "Show a stored package by its ID (the SHA-256 of its bytes).")
	asJSON := cmd.fs.Bool("json", false, "print the API's JSON")
	pos, err := cmd.parse(args, 1, 1, "ID")
	if err != nil {
		return err
	}
	var p api.PackageView
	if printed, err := c.fetch("/api/v1/packages/"+pos[0], &p, *asJSON, fmt.Sprintf("show package %s", pos[0])); printed || err != nil {
		return err
	}
	return c.printPackage(p, false)
}

// printPackage prints a package's details; offer adds how it compares
// with the alternatives (the answer to package make).
func (c *cli) printPackage(p api.PackageView, offer bool) error {
	tw := tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
	row := func(k, v string) { fmt.Fprintf(tw, "%s:\t%s\n", k, v) }
	row("Package", p.ID)
	format := p.Format
	if p.PrecursorDigest != "" {
		format += " from " + p.PrecursorDigest
	}
	if offer && p.Reason != "" {
		format += " (" + p.Reason + ")"
	}
	row("Format", format)
	size := fmt.Sprintf("%d bytes", p.Size)
	if offer && p.FullSize > 0 && p.Size < p.FullSize {
		size += fmt.Sprintf(", %.1f %% of the %d-byte full package: saves %d bytes",
			100*float64(p.Size)/float64(p.FullSize), p.FullSize, p.FullSize-p.Size)
	}
	if offer && p.DeltaSize > 0 && p.DeltaSize >= p.Size && p.Format == "full" {
		size += fmt.Sprintf("; the delta would be %d bytes", p.DeltaSize)
	}
	row("Size", size)
	row("Image", fmt.Sprintf("%s (class %s), %d bytes, sha256 %s", p.Version, p.Class, p.ImageSize, p.ImageDigest))
	row("Sequence", fmt.Sprint(p.Sequence))
	row("Signed by", p.KeyFingerprint)
	row("Created", c.when(&p.Created))
	return tw.Flush()
}
