package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/fotahub/fota/delivery/delta"
)

// deltaCmd dispatches "fotactl delta VERB": patches made and applied
// locally, without a server.
func (c *cli) deltaCmd(args []string) error {
	if len(args) == 0 {
		return usageErrorf("fotactl delta", "missing verb: create or apply")
	}
	switch verb, rest := args[0], args[1:]; verb {
	case "create":
		return c.deltaCreate(rest)
	case "apply":
		return c.deltaApply(rest)
	default:
		return usageErrorf("fotactl delta", "unknown verb %q; try create or apply", verb)
	}
}

func (c *cli) deltaCreate(args []string) error {
	cmd := c.command("delta create",
		"fotactl delta create --old OLD --new NEW --out PATCH [--format native|pelion] [--thumb]",
		`Make a patch from image OLD to image NEW and print its size, its ratio to
NEW and the RAM a device needs to apply it. --format pelion writes Pelion's
PELION/BSDIFF001 stream for devices of that installed base; --thumb applies
the ARM Thumb-2 branch transform (native format only).`)
	oldPath := cmd.fs.String("old", "", "the installed image `FILE`")
	newPath := cmd.fs.String("new", "", "the target image `FILE`")
	out := cmd.fs.String("out", "", "where to write the patch (`FILE`)")
	format := cmd.fs.String("format", "native", "patch `FORMAT`: native or pelion")
	thumb := cmd.fs.Bool("thumb", false, "apply the ARM Thumb-2 branch transform")
	if _, err := cmd.parse(args, 0, 0, ""); err != nil {
		return err
	}
	if *oldPath == "" || *newPath == "" || *out == "" {
		return cmd.usageErrorf("--old, --new and --out are required")
	}
	old, err := os.ReadFile(*oldPath)
	if err != nil {
		return err
	}
	newImg, err := os.ReadFile(*newPath)
	if err != nil {
		return err
	}
	var patch []byte
	var ram uint32
	switch *format {
	case "native":
		patch, err = delta.CreateWith(old, newImg, delta.Options{Thumb: *thumb})
		ram = delta.RAMBound
	case "pelion":
		if *thumb {
			return cmd.usageErrorf("--thumb works only with --format native")
		}
		patch, err = delta.CreatePelion(old, newImg, 0)
		ram = delta.PelionRAM(patch)
	default:
		return cmd.usageErrorf("unknown --format %q: native or pelion", *format)
	}
	if err != nil {
		return err
	}
	if err := writeFileAtomic(*out, patch); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "%s: %d bytes, %.2f %% of the %d-byte new image; applier RAM bound %d bytes\n",
		*out, len(patch), 100*float64(len(patch))/float64(max(1, len(newImg))), len(newImg), ram)
	return nil
}

func (c *cli) deltaApply(args []string) error {
	cmd := c.command("delta apply",
		"fotactl delta apply --old OLD --patch PATCH --out NEW [--new-sha256 HEX]",
		`Rebuild an image from OLD and PATCH (native or Pelion format, told apart by
its magic) and check its SHA-256: a native patch carries the digest;
for a Pelion patch, which does not, pass --new-sha256. Nothing is left at
--out unless the check passes.`)
	oldPath := cmd.fs.String("old", "", "the installed image `FILE`")
	patchPath := cmd.fs.String("patch", "", "the patch `FILE`")
	out := cmd.fs.String("out", "", "where to write the rebuilt image (`FILE`)")
	want := cmd.fs.String("new-sha256", "", "expected SHA-256 of the rebuilt image, in `HEX`")
	if _, err := cmd.parse(args, 0, 0, ""); err != nil {
		return err
	}
	if *oldPath == "" || *patchPath == "" || *out == "" {
		return cmd.usageErrorf("--old, --patch and --out are required")
	}
	old, err := os.ReadFile(*oldPath)
	if err != nil {
		return err
	}
	patch, err := os.ReadFile(*patchPath)
	if err != nil {
		return err
	}
	var img []byte
	if bytes.HasPrefix(patch, []byte("PELION/BSDIFF001")) {
		img, err = delta.ApplyPelion(old, patch)
	} else {
		img, err = delta.Apply(old, patch)
	}
	if err != nil {
		return fmt.Errorf("apply %s: %w", *patchPath, err)
	}
	sum := sha256.Sum256(img)
	if *want != "" {
		w, err := hex.DecodeString(*want)
		if err != nil || !bytes.Equal(w, sum[:]) {
			return fmt.Errorf("apply %s: rebuilt image has SHA-256 %x, want %s", *patchPath, sum, *want)
		}
	}
	if err := writeFileAtomic(*out, img); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "%s: %d bytes, SHA-256 %x\n", *out, len(img), sum)
	return nil
}

// writeFileAtomic writes b to path through a temporary file and a rename,
// so a failure never leaves a partial image or patch behind.
func writeFileAtomic(path string, b []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".fotactl-*")
	if err != nil {
		return err
	}
	_, werr := tmp.Write(b)
	cerr := tmp.Close()
	if err := errors.Join(werr, cerr); err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
