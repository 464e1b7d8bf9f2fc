package main

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"

	"github.com/fotahub/fota/api"
	"github.com/fotahub/fota/delivery/firmware"
	"github.com/fotahub/fota/delivery/manifest"
)

// key dispatches "fotactl key VERB".
func (c *cli) key(args []string) error {
	if len(args) == 0 {
		return usageErrorf("fotactl key", "missing verb: gen or show")
	}
	switch verb, rest := args[0], args[1:]; verb {
	case "gen", "generate", "new":
		return c.keyGen(rest)
	case "show", "pub":
		return c.keyShow(rest)
	case "-h", "--help", "help":
		fmt.Fprint(c.stdout, mainUsage)
		return nil
	default:
		return usageErrorf("fotactl key", "unknown verb %q; try gen or show", verb)
	}
}

func (c *cli) keyGen(args []string) error {
	cmd := c.command("key gen", "fotactl key gen [--out FILE] [--force]",
		`Make a new package signing key (ECDSA P-256) on this machine, write it as a
PEM file that only its owner can read (mode 0600), and print its public key,
which devices verify packages with. The private key is never printed.
The default file is the one fotad uses: <--data>/signing-key.pem. fotad reads
its key when it starts; a key it made itself on first start is there already.`)
	out := cmd.fs.String("out", "", "where to write the private key (`FILE`; default <data>/signing-key.pem)")
	force := cmd.fs.Bool("force", false, "replace an existing key file (devices will no longer verify packages signed with the old key)")
	if _, err := cmd.parse(args, 0, 0, ""); err != nil {
		return err
	}
	path := *out
	if path == "" {
		path = filepath.Join(c.global.data, firmware.KeyFile)
	}
	key, err := manifest.GenerateKey()
	if err != nil {
		return err
	}
	if err := firmware.WriteKey(path, key, *force); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return cmd.usageErrorf("%s exists; pass --force to replace it (packages signed with it will no longer verify on devices that trust only the new key)", path)
		}
		return err
	}
	pub, err := manifest.MarshalPublicKeyPEM(&key.PublicKey)
	if err != nil {
		return err
	}
	fmt.Fprintf(c.stderr, "wrote the private signing key to %s (mode 0600); fingerprint %s\n",
		path, firmware.KeyFingerprint(&key.PublicKey))
	fmt.Fprintln(c.stderr, "the public key, for devices:")
	_, err = c.stdout.Write(pub)
	return err
}

func (c *cli) keyShow(args []string) error {
	cmd := c.command("key show", "fotactl key show [--json]",
		"Print the public key fotad signs packages with, as PEM: what devices trust.")
	asJSON := cmd.fs.Bool("json", false, "print the API's JSON, with the key's fingerprint")
	if _, err := cmd.parse(args, 0, 0, ""); err != nil {
		return err
	}
	var v api.SigningKeyView
	if printed, err := c.fetch("/api/v1/signing-key", &v, *asJSON, "show signing key"); printed || err != nil {
		return err
	}
	if _, err := manifest.ParsePublicKeyPEM([]byte(v.PublicKeyPEM)); err != nil {
		return fmt.Errorf("show signing key: the server sent %w", err)
	}
	_, err := fmt.Fprint(c.stdout, v.PublicKeyPEM)
	return err
}
