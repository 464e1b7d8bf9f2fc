package store

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// openTestDB opens a store in a fresh directory. When the test ends it
// closes the store and checks the file (see checkFile).
func openTestDB(t testing.TB, opts Options) *DB {
	t.Helper()
	return openTestPath(t, filepath.Join(t.TempDir(), "fota.db"), opts)
}

// openTestPath opens the store at path; the cleanup closes it (a no-op if
// the test closed it already) and checks the file.
func openTestPath(t testing.TB, path string, opts Options) *DB {
	t.Helper()
	db, err := Open(path, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		checkFile(t, path)
	})
	return db
}

// checkFile opens a closed store file read-only and checks bbolt's page
// consistency (tx.Check) and this package's invariants: the schema
// version, that every record decodes under its own key, that
// psk_identities indexes exactly the devices with a PSK identity, and the
// firmware and campaign buckets' own invariants.
func checkFile(t testing.TB, path string) {
	t.Helper()
	b, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Errorf("check %s: %v", path, err)
		return
	}
	defer b.Close()
	err = b.View(func(tx *bolt.Tx) error {
		for err := range tx.Check(bolt.WithKVStringer(redactedKV{})) {
			t.Errorf("check %s: bbolt: %v", path, err)
		}
		for _, err := range checkInvariants(tx) {
			t.Errorf("check %s: %v", path, err)
		}
		return nil
	})
	if err != nil {
		t.Errorf("check %s: %v", path, err)
	}
}

func checkInvariants(tx *bolt.Tx) []error {
	var errs []error
	fail := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	v, err := readSchemaVersion(tx)
	if err != nil {
		fail("schema version: %v", err)
	} else if v != schemaVersion() {
		fail("schema version %d, want %d", v, schemaVersion())
	}
	devices, index, regs := tx.Bucket(bucketDevices), tx.Bucket(bucketPSKIdentities), tx.Bucket(bucketRegistrations)
	if devices == nil || index == nil || regs == nil {
		fail("missing bucket: devices %t, psk_identities %t, registrations %t", devices != nil, index != nil, regs != nil)
		return errs
	}
	_ = devices.ForEach(func(k, v []byte) error {
		d, err := decodeDevice(v)
		switch {
		case err != nil:
			fail("device %q: %v", k, err)
		case d.Endpoint != string(k):
			fail("device key %q holds endpoint %q", k, d.Endpoint)
		case d.PSKIdentity != "" && !bytes.Equal(index.Get([]byte(d.PSKIdentity)), k):
			fail("device %q: identity %q indexed to %q", k, d.PSKIdentity, index.Get([]byte(d.PSKIdentity)))
		}
		return nil
	})
	_ = index.ForEach(func(k, v []byte) error {
		raw := devices.Get(v)
		if raw == nil {
			fail("identity %q indexed to missing device %q", k, v)
			return nil
		}
		if d, err := decodeDevice(raw); err == nil && d.PSKIdentity != string(k) {
			fail("identity %q indexed to device %q, which holds %q", k, v, d.PSKIdentity)
		}
		return nil
	})
	_ = regs.ForEach(func(k, v []byte) error {
		r, err := decodeRegistration(v)
		switch {
		case err != nil:
			fail("registration %q: %v", k, err)
		case r.ID != string(k):
			fail("registration key %q holds id %q", k, r.ID)
		}
		return nil
	})
	errs = append(errs, checkFirmwareInvariants(tx)...)
	errs = append(errs, checkUpdateInvariants(tx)...)
	return append(errs, checkCampaignInvariants(tx)...)
}

// checkUpdateInvariants checks the update buckets: every record decodes
// under its own key (update_history: its endpoint, a zero byte and its
// Started), and no endpoint has more than maxUpdateHistory earlier
// updates.
func checkUpdateInvariants(tx *bolt.Tx) []error {
	var errs []error
	fail := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	updates, history := tx.Bucket(bucketUpdates), tx.Bucket(bucketUpdateHistory)
	if updates == nil || history == nil {
		fail("missing bucket: updates %t, update_history %t", updates != nil, history != nil)
		return errs
	}
	_ = updates.ForEach(func(k, v []byte) error {
		var rec updateRecord
		switch err := json.Unmarshal(v, &rec); {
		case err != nil:
			fail("update %q: %v", k, err)
		case rec.Endpoint != string(k):
			fail("update key %q holds endpoint %q", k, rec.Endpoint)
		}
		return nil
	})
	count := map[string]int{}
	_ = history.ForEach(func(k, v []byte) error {
		var rec updateRecord
		if err := json.Unmarshal(v, &rec); err != nil {
			fail("update history %q: %v", k, err)
			return nil
		}
		if want := historyKey([]byte(rec.Endpoint), rec.Started); !bytes.Equal(k, want) {
			fail("update history key %q holds the update of %q started %v", k, rec.Endpoint, rec.Started)
		}
		if count[rec.Endpoint]++; count[rec.Endpoint] == maxUpdateHistory+1 {
			fail("update history of %q holds more than %d updates", rec.Endpoint, maxUpdateHistory)
		}
		return nil
	})
	return errs
}

// checkCampaignInvariants checks the campaign and device info buckets:
// every record decodes under its own key, and every target belongs to a
// stored campaign.
func checkCampaignInvariants(tx *bolt.Tx) []error {
	var errs []error
	fail := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	campaigns, targets, infos := tx.Bucket(bucketCampaigns), tx.Bucket(bucketCampaignTargets), tx.Bucket(bucketDeviceInfo)
	if campaigns == nil || targets == nil || infos == nil {
		fail("missing bucket: campaigns %t, campaign_targets %t, device_info %t", campaigns != nil, targets != nil, infos != nil)
		return errs
	}
	_ = campaigns.ForEach(func(k, v []byte) error {
		c, err := decodeCampaign(v)
		switch {
		case err != nil:
			fail("campaign %q: %v", k, err)
		case c.ID != string(k):
			fail("campaign key %q holds campaign %q", k, c.ID)
		}
		return nil
	})
	_ = targets.ForEach(func(k, v []byte) error {
		id, ep, ok := bytes.Cut(k, []byte{0})
		if !ok {
			fail("target key %q has no zero byte", k)
			return nil
		}
		if campaigns.Get(id) == nil {
			fail("target %q of missing campaign %q", ep, id)
		}
		t, err := decodeTarget(v)
		switch {
		case err != nil:
			fail("target %q: %v", k, err)
		case t.Endpoint != string(ep):
			fail("target key %q holds endpoint %q", k, t.Endpoint)
		}
		return nil
	})
	_ = infos.ForEach(func(k, v []byte) error {
		i, err := decodeDeviceInfo(v)
		switch {
		case err != nil:
			fail("device info %q: %v", k, err)
		case i.Endpoint != string(k):
			fail("device info key %q holds endpoint %q", k, i.Endpoint)
		}
		return nil
	})
	return errs
}

// checkFirmwareInvariants checks the firmware buckets: every image and
// package decodes under its own digest, its bytes are there and hash to
// it, and the indexes (image_versions, package_keys) map exactly the
// records there are; class_sequences is at least every image's sequence,
// and every package's images are stored.
func checkFirmwareInvariants(tx *bolt.Tx) []error {
	var errs []error
	fail := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	names := [][]byte{bucketImages, bucketImageData, bucketImageVersions, bucketClassSequences,
		bucketPackages, bucketPackageData, bucketPackageKeys}
	for _, name := range names {
		if tx.Bucket(name) == nil {
			fail("missing bucket %s", name)
			return errs
		}
	}
	images, imageData, versions, seqs := tx.Bucket(bucketImages), tx.Bucket(bucketImageData), tx.Bucket(bucketImageVersions), tx.Bucket(bucketClassSequences)
	packages, packageData, keys := tx.Bucket(bucketPackages), tx.Bucket(bucketPackageData), tx.Bucket(bucketPackageKeys)

	_ = images.ForEach(func(k, v []byte) error {
		img, err := decodeImage(v)
		switch {
		case err != nil:
			fail("image %x: %v", k, err)
			return nil
		case !bytes.Equal(img.Digest[:], k):
			fail("image key %x holds image %s", k, img.Digest)
		}
		if data := imageData.Get(k); int64(len(data)) != img.Size || sha256.Sum256(data) != img.Digest {
			fail("image %x: %d bytes of data that do not hash to it (size %d)", k, len(data), img.Size)
		}
		if d := versions.Get(versionKey(img.Class, img.Version)); !bytes.Equal(d, k) {
			fail("image %x: version %q of class %q indexed to %x", k, img.Version, img.Class, d)
		}
		if seq := seqs.Get([]byte(img.Class)); len(seq) != 8 || binary.BigEndian.Uint64(seq) < img.Sequence {
			fail("image %x: sequence %d, class %q counter %x", k, img.Sequence, img.Class, seq)
		}
		return nil
	})
	_ = imageData.ForEach(func(k, _ []byte) error {
		if images.Get(k) == nil {
			fail("image data %x without an image", k)
		}
		return nil
	})
	_ = versions.ForEach(func(k, v []byte) error {
		raw := images.Get(v)
		if raw == nil {
			fail("version %q indexed to missing image %x", k, v)
			return nil
		}
		if img, err := decodeImage(raw); err == nil && !bytes.Equal(versionKey(img.Class, img.Version), k) {
			fail("version %q indexed to image %x of class %q version %q", k, v, img.Class, img.Version)
		}
		return nil
	})
	_ = packages.ForEach(func(k, v []byte) error {
		p, err := decodePackage(v)
		switch {
		case err != nil:
			fail("package %x: %v", k, err)
			return nil
		case !bytes.Equal(p.ID[:], k):
			fail("package key %x holds package %s", k, p.ID)
		}
		if data := packageData.Get(k); int64(len(data)) != p.Size || sha256.Sum256(data) != p.ID {
			fail("package %x: %d bytes of data that do not hash to it (size %d)", k, len(data), p.Size)
		}
		pk, err := packageKey(p.Key())
		if err != nil {
			fail("package %x: %v", k, err)
		} else if id := keys.Get(pk); !bytes.Equal(id, k) {
			fail("package %x: its key %s maps to %x", k, p.Key(), id)
		}
		return nil
	})
	_ = packageData.ForEach(func(k, _ []byte) error {
		if packages.Get(k) == nil {
			fail("package data %x without a package", k)
		}
		return nil
	})
	_ = keys.ForEach(func(k, id []byte) error {
		from, to, format, ok := splitPackageKey(k)
		if !ok {
			fail("package key %x does not parse", k)
			return nil
		}
		if images.Get(to) == nil || (format.IsDelta() && images.Get(from) == nil) {
			fail("package key %x: its images are not stored", k)
		}
		if packages.Get(id) == nil {
			fail("package key %x maps to missing package %x", k, id)
		}
		return nil
	})
	return errs
}

// redactedKV prints keys and hides values in bbolt's check messages:
// device values hold PSK keys.
type redactedKV struct{}

func (redactedKV) KeyToString(k []byte) string   { return fmt.Sprintf("%q", k) }
func (redactedKV) ValueToString(v []byte) string { return fmt.Sprintf("<%d bytes>", len(v)) }
