package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"text/tabwriter"

	"github.com/fotahub/fota/api"
)

// image dispatches "fotactl image VERB".
func (c *cli) image(args []string) error {
	if len(args) == 0 {
		return usageErrorf("fotactl image", "missing verb: add, list, show or rm")
	}
	verb, rest := args[0], args[1:]
	switch verb {
	case "add", "upload":
		return c.imageAdd(rest)
	case "list", "ls":
		return c.imageList(rest)
	case "show", "get":
		return c.imageShow(rest)
	case "rm", "remove", "delete":
		return c.imageRemove(rest)
	case "-h", "--help", "help":
		fmt.Fprint(c.stdout, mainUsage)
		return nil
	}
	return usageErrorf("fotactl image", "unknown verb %q; try add, list, show or rm", verb)
}

func (c *cli) imageAdd(args []string) error {
	cmd := c.command("image add", "fotactl image add FILE --version V --class C [--format native|raw] [--json]",
		`Store a firmware image in fotad. An image is known by the SHA-256 of its bytes
and never changes; its sequence number, which every package installing it
carries, follows the order images of its class are added. Adding the same
file again with the same version and class does nothing.

The image's format is its class's profile (see 'fotactl class add'): native
images are delivered in fotad's signed packages, raw ones byte for byte as
uploaded, for devices that check their vendor's signature. --format raw for a
class nobody declared declares it raw; a format other than a declared class's
profile is refused.`)
	version := cmd.fs.String("version", "", "the image's firmware `VERSION`, e.g. 1.2.0")
	class := cmd.fs.String("class", "", "the device `CLASS` the image is for")
	format := cmd.fs.String("format", "", "the image's `FORMAT`: native or raw (default: its class's profile)")
	asJSON := cmd.fs.Bool("json", false, "print the stored image as JSON")
	pos, err := cmd.parse(args, 1, 1, "FILE")
	if err != nil {
		return err
	}
	if *version == "" || *class == "" {
		return cmd.usageErrorf("--version and --class are required")
	}
	switch *format {
	case "", "native", "raw":
	default:
		return cmd.usageErrorf("--format %q: want native or raw", *format)
	}
	data, err := os.ReadFile(pos[0])
	if err != nil {
		return fmt.Errorf("add image: %w", err)
	}
	if len(data) > api.MaxImageBytes {
		return fmt.Errorf("add image: %s is %d bytes; fotad takes images up to %d", pos[0], len(data), api.MaxImageBytes)
	}
	client, err := c.client()
	if err != nil {
		return err
	}
	q := url.Values{"version": {*version}, "class": {*class}}
	if *format != "" {
		q.Set("format", *format)
	}
	status, body, err := client.send(http.MethodPost, "/api/v1/images?"+q.Encode(), bytes.NewReader(data), "application/octet-stream")
	if err != nil {
		return fmt.Errorf("add image %s: %w", pos[0], err)
	}
	if *asJSON {
		return c.printJSON(body)
	}
	var img api.ImageView
	if err := json.Unmarshal(body, &img); err != nil {
		return fmt.Errorf("add image: decode response: %w", err)
	}
	what := "added"
	if status != http.StatusCreated {
		what = "already stored"
	}
	fmt.Fprintf(c.stdout, "image %s (class %s, %s) %s: %d bytes, sequence %d, sha256 %s\n",
		img.Version, img.Class, dash(img.Format), what, img.Size, img.Sequence, img.Digest)
	return nil
}

func (c *cli) imageList(args []string) error {
	cmd := c.command("image list", "fotactl image list [--json]", "List the stored images by class and sequence.")
	asJSON := cmd.fs.Bool("json", false, "print the API's JSON")
	if _, err := cmd.parse(args, 0, 0, ""); err != nil {
		return err
	}
	var list api.ImageList
	if printed, err := c.fetch("/api/v1/images", &list, *asJSON, "list images"); printed || err != nil {
		return err
	}
	if len(list.Images) == 0 {
		fmt.Fprintln(c.stdout, "No images. Add one with 'fotactl image add FILE --version V --class C'.")
		return nil
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CLASS\tVERSION\tFORMAT\tSEQUENCE\tSIZE\tADDED\tSHA256")
	for _, img := range list.Images {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%s\t%s\n",
			img.Class, img.Version, dash(img.Format), img.Sequence, img.Size, c.ago(&img.Added), img.Digest)
	}
	return tw.Flush()
}

func (c *cli) imageShow(args []string) error {
	cmd := c.command("image show", "fotactl image show DIGEST|VERSION [--class C] [--json]",
		"Show an image, found by its SHA-256 or its version (with --class when several\nclasses have that version).")
	class := cmd.fs.String("class", "", "the image's device `CLASS`")
	asJSON := cmd.fs.Bool("json", false, "print the API's JSON")
	pos, err := cmd.parse(args, 1, 1, "DIGEST or VERSION")
	if err != nil {
		return err
	}
	client, err := c.client()
	if err != nil {
		return err
	}
	path := "/api/v1/images/" + url.PathEscape(pos[0])
	if *class != "" {
		path += "?" + url.Values{"class": {*class}}.Encode()
	}
	var img api.ImageView
	body, err := client.getJSON(path, &img)
	if err != nil {
		return fmt.Errorf("show image %s: %w", pos[0], err)
	}
	if *asJSON {
		return c.printJSON(body)
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
	row := func(k, v string) { fmt.Fprintf(tw, "%s:\t%s\n", k, v) }
	row("Version", img.Version)
	row("Class", img.Class)
	row("Format", formatText(img.Format))
	row("Sequence", fmt.Sprint(img.Sequence))
	row("Size", fmt.Sprintf("%d bytes", img.Size))
	row("SHA-256", img.Digest)
	row("Added", c.when(&img.Added))
	return tw.Flush()
}

func (c *cli) imageRemove(args []string) error {
	cmd := c.command("image rm", "fotactl image rm DIGEST",
		"Remove an image and every package made from or to it. Its sequence number is\nnot given again: an image added later always gets a higher one.")
	pos, err := cmd.parse(args, 1, 1, "DIGEST")
	if err != nil {
		return err
	}
	client, err := c.client()
	if err != nil {
		return err
	}
	if _, err := client.do(http.MethodDelete, "/api/v1/images/"+url.PathEscape(pos[0]), nil); err != nil {
		return fmt.Errorf("remove image %s: %w", pos[0], err)
	}
	fmt.Fprintf(c.stdout, "image %s removed, with its packages\n", pos[0])
	return nil
}

// formatText describes an image's format.
func formatText(format string) string {
	switch format {
	case "native":
		return "native (delivered in fotad's signed packages)"
	case "raw":
		return "raw (delivered as uploaded)"
	}
	return dash(format)
}
