package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/fotahub/fota/api"
)

// classCmd dispatches "fotactl class VERB".
func (c *cli) classCmd(args []string) error {
	if len(args) == 0 {
		return usageErrorf("fotactl class", "missing verb: add, list, show or rm")
	}
	verb, rest := args[0], args[1:]
	switch verb {
	case "add", "create", "declare":
		return c.classAdd(rest)
	case "list", "ls":
		return c.classList(rest)
	case "show", "get":
		return c.classShow(rest)
	case "rm", "remove", "delete":
		return c.classRemove(rest)
	case "-h", "--help", "help":
		fmt.Fprint(c.stdout, mainUsage)
		return nil
	}
	return usageErrorf("fotactl class", "unknown verb %q; try add, list, show or rm", verb)
}

func classPath(name string) string { return "/api/v1/classes/" + url.PathEscape(name) }

func (c *cli) classAdd(args []string) error {
	cmd := c.command("class add",
		"fotactl class add NAME [--profile native|raw] [--delta] [--method auto|pull|push] [--block-size N] "+
			"[--scheme auto|coaps|coap] [--deadline D] [--success result,version,package] [--replace] [--json]",
		`Declare a device class: the package its devices take and how fotad delivers it.
A native class takes fotad's signed packages, and delta packages with --delta
(when its devices have fotad's delta applier); a raw class takes the uploaded
file byte for byte, as its vendor built and signed it. A class nobody declared
is native with deltas. Flags left out take their defaults: native, no deltas,
method auto (pull when the device can), the link's block size, scheme auto
(coaps for a DTLS device), the server's deadline, and success when the device
reports result 1 and runs the new version. Without --replace a declared class
is not overwritten. A class holding images keeps its profile: remove them to
change it.`)
	profile := cmd.fs.String("profile", "", "package `PROFILE`: native (fotad's signed packages) or raw (the file as uploaded); default native")
	delta := cmd.fs.Bool("delta", false, "the devices apply fotad's delta packages (native classes only)")
	deliveryMethod := cmd.fs.String("method", "", "delivery `METHOD`: auto, pull (Package URI) or push (writes of /5/0/0); default auto")
	blockSize := cmd.fs.Int("block-size", 0, "cap the download block size at `N` bytes (16 to 1024, a power of two; 0: the link's)")
	scheme := cmd.fs.String("scheme", "", "Package URI `SCHEME`: auto, coaps or coap; default auto")
	var deadline durationFlag
	cmd.fs.Var(&deadline, "deadline", "bound one device's update to `D`, e.g. 36h or 7d (default: the server's)")
	success := cmd.fs.String("success", "", "the `CHECKS` that show an update worked: result, version, package (default result,version)")
	replace := cmd.fs.Bool("replace", false, "replace the class if it is declared instead of failing")
	asJSON := cmd.fs.Bool("json", false, "print the declared class as JSON")
	pos, err := cmd.parse(args, 1, 1, "NAME")
	if err != nil {
		return err
	}
	name := pos[0]
	v := api.ClassView{Name: name, Profile: *profile, Delta: *delta, Method: *deliveryMethod, BlockSize: *blockSize, Scheme: *scheme}
	if deadline != 0 {
		v.Deadline = time.Duration(deadline).String()
	}
	if *success != "" {
		for _, s := range strings.Split(*success, ",") {
			v.Success = append(v.Success, strings.TrimSpace(s))
		}
	}
	client, err := c.client()
	if err != nil {
		return err
	}
	method, path := http.MethodPost, "/api/v1/classes"
	if *replace {
		method, path = http.MethodPut, classPath(name)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	status, body, err := client.send(method, path, bytes.NewReader(b), "application/json")
	if err != nil {
		return fmt.Errorf("add class %s: %w", name, err)
	}
	if *asJSON {
		return c.printJSON(body)
	}
	if err := json.Unmarshal(body, &v); err != nil {
		return fmt.Errorf("add class %s: decode response: %w", name, err)
	}
	what := "declared"
	if status == http.StatusOK {
		what = "replaced"
	}
	fmt.Fprintf(c.stdout, "class %s %s: %s\n", v.Name, what, classSummary(&v))
	return nil
}

// classSummary is a class's profile on one line.
func classSummary(v *api.ClassView) string {
	parts := []string{v.Profile}
	if v.Delta {
		parts = append(parts, "deltas")
	} else {
		parts = append(parts, "no deltas")
	}
	parts = append(parts, "method "+v.Method, "block size "+blockSizeText(v.BlockSize), "scheme "+v.Scheme,
		"deadline "+deadlineText(v.Deadline), "success "+successText(v.Success))
	return strings.Join(parts, ", ")
}

func blockSizeText(n int) string {
	if n == 0 {
		return "link"
	}
	return fmt.Sprint(n)
}

func deadlineText(d string) string {
	if d == "" {
		return "default"
	}
	return d
}

func successText(checks []string) string { return dash(strings.Join(checks, ",")) }

func declaredText(declared bool) string {
	if declared {
		return "declared"
	}
	return "default"
}

func (c *cli) classList(args []string) error {
	cmd := c.command("class list", "fotactl class list [--json]",
		"List the declared device classes and, with the default profile, the classes of\nstored images nobody declared.")
	asJSON := cmd.fs.Bool("json", false, "print the API's JSON")
	if _, err := cmd.parse(args, 0, 0, ""); err != nil {
		return err
	}
	var list api.ClassList
	if printed, err := c.fetch("/api/v1/classes", &list, *asJSON, "list classes"); printed || err != nil {
		return err
	}
	if len(list.Classes) == 0 {
		fmt.Fprintln(c.stdout, "No classes. Declare one with 'fotactl class add NAME --profile native|raw'.")
		return nil
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tPROFILE\tDELTA\tMETHOD\tBLOCK SIZE\tSCHEME\tDEADLINE\tSUCCESS\tSOURCE")
	for _, v := range list.Classes {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", v.Name, v.Profile, yesNo(v.Delta), v.Method,
			blockSizeText(v.BlockSize), v.Scheme, deadlineText(v.Deadline), successText(v.Success), declaredText(v.Declared))
	}
	return tw.Flush()
}

func (c *cli) classShow(args []string) error {
	cmd := c.command("class show", "fotactl class show NAME [--json]",
		"Show a device class: the declared one, or the default profile of a class nobody\ndeclared.")
	asJSON := cmd.fs.Bool("json", false, "print the API's JSON")
	pos, err := cmd.parse(args, 1, 1, "NAME")
	if err != nil {
		return err
	}
	var v api.ClassView
	if printed, err := c.fetch(classPath(pos[0]), &v, *asJSON, fmt.Sprintf("show class %s", pos[0])); printed || err != nil {
		return err
	}
	profile := v.Profile
	switch v.Profile {
	case "native":
		profile += " (fotad's signed packages)"
	case "raw":
		profile += " (the file as uploaded)"
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
	row := func(k, v string) { fmt.Fprintf(tw, "%s:\t%s\n", k, v) }
	row("Name", v.Name)
	row("Profile", profile)
	row("Delta", yesNo(v.Delta))
	row("Method", v.Method)
	row("Block size", blockSizeText(v.BlockSize))
	row("Scheme", v.Scheme)
	row("Deadline", deadlineText(v.Deadline))
	row("Success", successText(v.Success))
	if v.Declared {
		row("Declared", "yes, changed "+c.when(&v.Changed))
	} else {
		row("Declared", "no: the default profile")
	}
	return tw.Flush()
}

func (c *cli) classRemove(args []string) error {
	cmd := c.command("class rm", "fotactl class rm NAME",
		"Remove a declared class; its devices get the default profile again. A class\nholding images cannot be removed: remove the images first.")
	pos, err := cmd.parse(args, 1, 1, "NAME")
	if err != nil {
		return err
	}
	client, err := c.client()
	if err != nil {
		return err
	}
	if _, err := client.do(http.MethodDelete, classPath(pos[0]), nil); err != nil {
		return fmt.Errorf("remove class %s: %w", pos[0], err)
	}
	fmt.Fprintf(c.stdout, "class %s removed\n", pos[0])
	return nil
}
