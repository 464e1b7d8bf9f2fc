package store

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/fotahub/fota/delivery/campaign"
	"github.com/fotahub/fota/delivery/firmware"
	"github.com/fotahub/fota/delivery/manifest"
	"github.com/fotahub/fota/lwm2m"
)

// On-disk records. These structs, not the lwm2m types, are the file
// format: a field renamed in package lwm2m changes only the mapping
// functions below. Every record carries its own version "v" so that a
// record layout can change with a schema migration that rewrites it.
//
// Times are stored as RFC 3339 strings with nanoseconds, in UTC;
// durations as integer nanoseconds in a field whose name says so.

const (
	deviceRecordVersion       = 1
	registrationRecordVersion = 1
)

type deviceRecord struct {
	V           int               `json:"v"`
	Endpoint    string            `json:"endpoint"`
	PSKIdentity string            `json:"psk_identity,omitempty"`
	PSKKey      []byte            `json:"psk_key,omitempty"` // base64 by encoding/json
	Tags        map[string]string `json:"tags,omitempty"`
	LinkMTU     int               `json:"link_mtu,omitempty"`
	Class       string            `json:"class,omitempty"`
	CreatedAt   time.Time         `json:"created_at"`
}

type registrationRecord struct {
	V            int            `json:"v"`
	ID           string         `json:"id"`
	Endpoint     string         `json:"endpoint"`
	LwM2MVersion string         `json:"lwm2m_version"`
	LifetimeNS   int64          `json:"lifetime_ns"`
	Binding      string         `json:"binding"`
	Queue        bool           `json:"queue,omitempty"`
	SMSNumber    string         `json:"sms_number,omitempty"`
	RootPath     string         `json:"root_path"`
	Objects      []linkRecord   `json:"objects,omitempty"`
	Identity     identityRecord `json:"identity"`
	Address      string         `json:"address"`
	RegisteredAt time.Time      `json:"registered_at"`
	LastSeen     time.Time      `json:"last_seen"`
}

type linkRecord struct {
	Path  string       `json:"path"`
	Attrs []attrRecord `json:"attrs,omitempty"`
}

type attrRecord struct {
	Key   string `json:"key"`
	Value string `json:"value,omitempty"`
}

type identityRecord struct {
	Kind string `json:"kind"` // one of the identityKinds values
	Name string `json:"name,omitempty"`
}

// identityKinds fixes the stored spelling of each identity kind; it does
// not depend on lwm2m.IdentityKind's numbering or String.
var identityKinds = map[lwm2m.IdentityKind]string{
	lwm2m.IdentityNone: "nosec",
	lwm2m.IdentityPSK:  "psk",
	lwm2m.IdentityX509: "x509",
}

func encodeDevice(d lwm2m.Device) ([]byte, error) {
	rec := deviceRecord{
		V:           deviceRecordVersion,
		Endpoint:    d.Endpoint,
		PSKIdentity: d.PSKIdentity,
		PSKKey:      d.PSKKey,
		Tags:        d.Tags,
		LinkMTU:     d.LinkMTU,
		Class:       d.Class,
		CreatedAt:   d.CreatedAt.UTC(),
	}
	b, err := json.Marshal(rec)
	if err != nil {
		// Only the time can fail (a year outside 0-9999); the message
		// cannot hold the key.
		return nil, fmt.Errorf("encode device record: %w", err)
	}
	return b, nil
}

// decodeDevice reads a device record. Its errors never quote the record:
// it holds the PSK key.
func decodeDevice(b []byte) (lwm2m.Device, error) {
	var rec deviceRecord
	if err := json.Unmarshal(b, &rec); err != nil {
		return lwm2m.Device{}, fmt.Errorf("device record of %d bytes does not decode: %w", len(b), ErrCorrupt)
	}
	if rec.V != deviceRecordVersion {
		return lwm2m.Device{}, fmt.Errorf("device record version %d, want %d: %w", rec.V, deviceRecordVersion, ErrCorrupt)
	}
	return lwm2m.Device{
		Endpoint:    rec.Endpoint,
		PSKIdentity: rec.PSKIdentity,
		PSKKey:      rec.PSKKey,
		Tags:        rec.Tags,
		LinkMTU:     rec.LinkMTU,
		Class:       rec.Class,
		CreatedAt:   rec.CreatedAt,
	}, nil
}

func encodeRegistration(r lwm2m.Registration) ([]byte, error) {
	kind, ok := identityKinds[r.Identity.Kind]
	if !ok {
		return nil, fmt.Errorf("encode registration record: unknown identity kind %d", r.Identity.Kind)
	}
	rec := registrationRecord{
		V:            registrationRecordVersion,
		ID:           r.ID,
		Endpoint:     r.Endpoint,
		LwM2MVersion: r.Version,
		LifetimeNS:   int64(r.Lifetime),
		Binding:      r.Binding,
		Queue:        r.Queue,
		SMSNumber:    r.SMSNumber,
		RootPath:     r.RootPath,
		Identity:     identityRecord{Kind: kind, Name: r.Identity.Name},
		Address:      r.Address,
		RegisteredAt: r.RegisteredAt.UTC(),
		LastSeen:     r.LastSeen.UTC(),
	}
	if len(r.Objects) > 0 {
		rec.Objects = make([]linkRecord, len(r.Objects))
		for i, l := range r.Objects {
			rec.Objects[i].Path = l.Path
			if len(l.Attrs) > 0 {
				rec.Objects[i].Attrs = make([]attrRecord, len(l.Attrs))
				for j, a := range l.Attrs {
					rec.Objects[i].Attrs[j] = attrRecord{Key: a.Key, Value: a.Value}
				}
			}
		}
	}
	b, err := json.Marshal(rec)
	if err != nil {
		return nil, fmt.Errorf("encode registration record: %w", err)
	}
	return b, nil
}

func decodeRegistration(b []byte) (lwm2m.Registration, error) {
	var rec registrationRecord
	if err := json.Unmarshal(b, &rec); err != nil {
		return lwm2m.Registration{}, fmt.Errorf("registration record does not decode: %v: %w", err, ErrCorrupt)
	}
	if rec.V != registrationRecordVersion {
		return lwm2m.Registration{}, fmt.Errorf("registration record version %d, want %d: %w", rec.V, registrationRecordVersion, ErrCorrupt)
	}
	kind, ok := identityKindOf(rec.Identity.Kind)
	if !ok {
		return lwm2m.Registration{}, fmt.Errorf("registration record has identity kind %q: %w", rec.Identity.Kind, ErrCorrupt)
	}
	r := lwm2m.Registration{
		ID:           rec.ID,
		Endpoint:     rec.Endpoint,
		Version:      rec.LwM2MVersion,
		Lifetime:     time.Duration(rec.LifetimeNS),
		Binding:      rec.Binding,
		Queue:        rec.Queue,
		SMSNumber:    rec.SMSNumber,
		RootPath:     rec.RootPath,
		Identity:     lwm2m.Identity{Kind: kind, Name: rec.Identity.Name},
		Address:      rec.Address,
		RegisteredAt: rec.RegisteredAt,
		LastSeen:     rec.LastSeen,
	}
	if len(rec.Objects) > 0 {
		r.Objects = make([]lwm2m.Link, len(rec.Objects))
		for i, l := range rec.Objects {
			r.Objects[i].Path = l.Path
			if len(l.Attrs) > 0 {
				r.Objects[i].Attrs = make([]lwm2m.LinkAttr, len(l.Attrs))
				for j, a := range l.Attrs {
					r.Objects[i].Attrs[j] = lwm2m.LinkAttr{Key: a.Key, Value: a.Value}
				}
			}
		}
	}
	return r, nil
}

func identityKindOf(s string) (lwm2m.IdentityKind, bool) {
	for k, name := range identityKinds {
		if name == s {
			return k, true
		}
	}
	return 0, false
}

// Firmware records. Digests are lower-case hex; formats are the strings in
// packageFormats, not manifest's numbers.

const (
	imageRecordVersion   = 1
	packageRecordVersion = 1
)

type imageRecord struct {
	V        int       `json:"v"`
	Digest   string    `json:"digest"`
	Size     int64     `json:"size"`
	Version  string    `json:"version"`
	Class    string    `json:"class"`
	Sequence uint64    `json:"sequence"`
	Raw      bool      `json:"raw,omitempty"`
	Added    time.Time `json:"added"`
}

type packageRecord struct {
	V               int       `json:"v"`
	ID              string    `json:"id"`
	Size            int64     `json:"size"`
	Format          string    `json:"format"` // one of the packageFormats values
	Sequence        uint64    `json:"sequence"`
	Version         string    `json:"version"`
	Class           string    `json:"class"`
	PayloadDigest   string    `json:"payload_digest"`
	PayloadSize     uint64    `json:"payload_size"`
	ImageDigest     string    `json:"image_digest"`
	ImageSize       uint64    `json:"image_size"`
	PrecursorDigest string    `json:"precursor_digest,omitempty"`
	PrecursorSize   uint64    `json:"precursor_size,omitempty"`
	KeyFingerprint  string    `json:"key_fingerprint"`
	Created         time.Time `json:"created"`
}

// packageFormats fixes the stored spelling of each payload format, in
// records and in package_keys keys.
var packageFormats = map[manifest.Format]string{
	manifest.FormatFull:   "full",
	manifest.FormatDelta:  "delta",
	manifest.FormatPelion: "pelion",
}

func packageFormatOf(s string) (manifest.Format, bool) {
	for f, name := range packageFormats {
		if name == s {
			return f, true
		}
	}
	return 0, false
}

func encodeImage(img firmware.Image) ([]byte, error) {
	b, err := json.Marshal(imageRecord{
		V:        imageRecordVersion,
		Digest:   img.Digest.String(),
		Size:     img.Size,
		Version:  img.Version,
		Class:    img.Class,
		Sequence: img.Sequence,
		Raw:      img.Raw,
		Added:    img.Added.UTC(),
	})
	if err != nil {
		return nil, fmt.Errorf("encode image record: %w", err)
	}
	return b, nil
}

func decodeImage(b []byte) (firmware.Image, error) {
	var rec imageRecord
	if err := json.Unmarshal(b, &rec); err != nil {
		return firmware.Image{}, fmt.Errorf("image record does not decode: %v: %w", err, ErrCorrupt)
	}
	if rec.V != imageRecordVersion {
		return firmware.Image{}, fmt.Errorf("image record version %d, want %d: %w", rec.V, imageRecordVersion, ErrCorrupt)
	}
	img := firmware.Image{Size: rec.Size, Version: rec.Version, Class: rec.Class, Sequence: rec.Sequence, Raw: rec.Raw, Added: rec.Added}
	if err := img.Digest.UnmarshalText([]byte(rec.Digest)); err != nil {
		return firmware.Image{}, fmt.Errorf("image record: %v: %w", err, ErrCorrupt)
	}
	return img, nil
}

func encodePackage(p firmware.Package) ([]byte, error) {
	m := &p.Manifest
	format, ok := packageFormats[m.Format]
	if !ok {
		return nil, fmt.Errorf("encode package record: unknown format %d", uint8(m.Format))
	}
	rec := packageRecord{
		V:              packageRecordVersion,
		ID:             p.ID.String(),
		Size:           p.Size,
		Format:         format,
		Sequence:       m.Sequence,
		Version:        m.Version,
		Class:          m.Class,
		PayloadDigest:  m.PayloadDigest.String(),
		PayloadSize:    m.PayloadSize,
		ImageDigest:    m.ImageDigest.String(),
		ImageSize:      m.ImageSize,
		KeyFingerprint: p.KeyFingerprint,
		Created:        p.Created.UTC(),
	}
	if m.Format.IsDelta() {
		rec.PrecursorDigest, rec.PrecursorSize = m.PrecursorDigest.String(), m.PrecursorSize
	}
	b, err := json.Marshal(rec)
	if err != nil {
		return nil, fmt.Errorf("encode package record: %w", err)
	}
	return b, nil
}

func decodePackage(b []byte) (firmware.Package, error) {
	var rec packageRecord
	if err := json.Unmarshal(b, &rec); err != nil {
		return firmware.Package{}, fmt.Errorf("package record does not decode: %v: %w", err, ErrCorrupt)
	}
	if rec.V != packageRecordVersion {
		return firmware.Package{}, fmt.Errorf("package record version %d, want %d: %w", rec.V, packageRecordVersion, ErrCorrupt)
	}
	format, ok := packageFormatOf(rec.Format)
	if !ok {
		return firmware.Package{}, fmt.Errorf("package record has format %q: %w", rec.Format, ErrCorrupt)
	}
	p := firmware.Package{
		Size:           rec.Size,
		KeyFingerprint: rec.KeyFingerprint,
		Created:        rec.Created,
		Manifest: manifest.Manifest{
			Sequence:      rec.Sequence,
			Version:       rec.Version,
			Class:         rec.Class,
			Format:        format,
			PayloadSize:   rec.PayloadSize,
			ImageSize:     rec.ImageSize,
			PrecursorSize: rec.PrecursorSize,
		},
	}
	for _, f := range []struct {
		dst      *manifest.Digest
		src      string
		optional bool
	}{
		{&p.ID, rec.ID, false},
		{&p.Manifest.PayloadDigest, rec.PayloadDigest, false},
		{&p.Manifest.ImageDigest, rec.ImageDigest, false},
		{&p.Manifest.PrecursorDigest, rec.PrecursorDigest, true},
	} {
		if f.optional && f.src == "" {
			continue
		}
		if err := f.dst.UnmarshalText([]byte(f.src)); err != nil {
			return firmware.Package{}, fmt.Errorf("package record: %v: %w", err, ErrCorrupt)
		}
	}
	return p, nil
}

// Campaign records. A campaign is stored without its targets, each target
// under its own key, so that the frequent change of one device's progress
// rewrites one small record. The campaign's Spec is stored in the JSON form
// package campaign gives it, the form the API reads and writes: it is what
// the field engineer asked for, kept as asked. Campaign and target states
// are package campaign's strings; formats are the packageFormats strings.

const (
	campaignRecordVersion   = 1
	targetRecordVersion     = 1
	deviceInfoRecordVersion = 1
)

type campaignRecord struct {
	V       int           `json:"v"`
	ID      string        `json:"id"`
	Spec    campaign.Spec `json:"spec"`
	Version string        `json:"version,omitempty"`
	State   string        `json:"state"`
	Reason  string        `json:"reason,omitempty"`
	Created time.Time     `json:"created"`
	Started time.Time     `json:"started,omitzero"`
	Ended   time.Time     `json:"ended,omitzero"`
	Waves   []waveRecord  `json:"waves"`
	Peak    int           `json:"peak_running,omitempty"`
}

type waveRecord struct {
	Size     int               `json:"size"`
	Soak     campaign.Duration `json:"soak,omitzero"`
	Opened   time.Time         `json:"opened,omitzero"`
	Settled  time.Time         `json:"settled,omitzero"`
	Forgiven int               `json:"forgiven,omitempty"`
}

type targetRecord struct {
	V           int               `json:"v"`
	Endpoint    string            `json:"endpoint"`
	Wave        int               `json:"wave"`
	State       string            `json:"state"`
	Installed   string            `json:"installed,omitempty"`
	Format      string            `json:"format,omitempty"` // one of the packageFormats values
	Size        int64             `json:"size,omitempty"`
	FullSize    int64             `json:"full_size,omitempty"`
	BytesServed int64             `json:"bytes_served,omitempty"`
	FellBack    bool              `json:"fell_back,omitempty"`
	Result      int               `json:"result,omitempty"`
	Reason      string            `json:"reason,omitempty"`
	Tags        map[string]string `json:"tags,omitempty"`
	Started     time.Time         `json:"started,omitzero"`
	Ended       time.Time         `json:"ended,omitzero"`
}

type deviceInfoRecord struct {
	V               int       `json:"v"`
	Endpoint        string    `json:"endpoint"`
	FirmwareVersion string    `json:"firmware_version,omitempty"`
	Read            time.Time `json:"read"`
}

// encodeCampaign writes c without its targets.
func encodeCampaign(c campaign.Campaign) ([]byte, error) {
	rec := campaignRecord{
		V:       campaignRecordVersion,
		ID:      c.ID,
		Spec:    c.Spec,
		Version: c.Version,
		State:   string(c.State),
		Reason:  c.Reason,
		Created: c.Created.UTC(),
		Started: c.Started.UTC(),
		Ended:   c.Ended.UTC(),
		Peak:    c.PeakRunning,
	}
	if c.Waves != nil {
		rec.Waves = make([]waveRecord, len(c.Waves))
		for i, w := range c.Waves {
			rec.Waves[i] = waveRecord{Size: w.Size, Soak: w.Soak, Opened: w.Opened.UTC(), Settled: w.Settled.UTC(), Forgiven: w.Forgiven}
		}
	}
	b, err := json.Marshal(rec)
	if err != nil {
		return nil, fmt.Errorf("encode campaign record: %w", err)
	}
	return b, nil
}

// decodeCampaign reads a campaign record; the campaign has no targets.
func decodeCampaign(b []byte) (campaign.Campaign, error) {
	var rec campaignRecord
	if err := json.Unmarshal(b, &rec); err != nil {
		return campaign.Campaign{}, fmt.Errorf("campaign record does not decode: %v: %w", err, ErrCorrupt)
	}
	if rec.V != campaignRecordVersion {
		return campaign.Campaign{}, fmt.Errorf("campaign record version %d, want %d: %w", rec.V, campaignRecordVersion, ErrCorrupt)
	}
	c := campaign.Campaign{
		ID:          rec.ID,
		Spec:        rec.Spec,
		Version:     rec.Version,
		State:       campaign.State(rec.State),
		Reason:      rec.Reason,
		Created:     rec.Created,
		Started:     rec.Started,
		Ended:       rec.Ended,
		PeakRunning: rec.Peak,
	}
	if rec.Waves != nil {
		c.Waves = make([]campaign.WaveState, len(rec.Waves))
		for i, w := range rec.Waves {
			c.Waves[i] = campaign.WaveState{Size: w.Size, Soak: w.Soak, Opened: w.Opened, Settled: w.Settled, Forgiven: w.Forgiven}
		}
	}
	return c, nil
}

func encodeTarget(t campaign.Target) ([]byte, error) {
	rec := targetRecord{
		V:           targetRecordVersion,
		Endpoint:    t.Endpoint,
		Wave:        t.Wave,
		State:       string(t.State),
		Installed:   t.Installed,
		Size:        t.Size,
		FullSize:    t.FullSize,
		BytesServed: t.BytesServed,
		FellBack:    t.FellBack,
		Result:      t.Result,
		Reason:      t.Reason,
		Tags:        t.Tags,
		Started:     t.Started.UTC(),
		Ended:       t.Ended.UTC(),
	}
	if t.Format != 0 { // not yet planned
		format, ok := packageFormats[t.Format]
		if !ok {
			return nil, fmt.Errorf("encode target record: unknown format %d", uint8(t.Format))
		}
		rec.Format = format
	}
	b, err := json.Marshal(rec)
	if err != nil {
		return nil, fmt.Errorf("encode target record: %w", err)
	}
	return b, nil
}

func decodeTarget(b []byte) (campaign.Target, error) {
	var rec targetRecord
	if err := json.Unmarshal(b, &rec); err != nil {
		return campaign.Target{}, fmt.Errorf("target record does not decode: %v: %w", err, ErrCorrupt)
	}
	if rec.V != targetRecordVersion {
		return campaign.Target{}, fmt.Errorf("target record version %d, want %d: %w", rec.V, targetRecordVersion, ErrCorrupt)
	}
	t := campaign.Target{
		Endpoint:    rec.Endpoint,
		Wave:        rec.Wave,
		State:       campaign.TargetState(rec.State),
		Installed:   rec.Installed,
		Size:        rec.Size,
		FullSize:    rec.FullSize,
		BytesServed: rec.BytesServed,
		FellBack:    rec.FellBack,
		Result:      rec.Result,
		Reason:      rec.Reason,
		Tags:        rec.Tags,
		Started:     rec.Started,
		Ended:       rec.Ended,
	}
	if rec.Format != "" {
		format, ok := packageFormatOf(rec.Format)
		if !ok {
			return campaign.Target{}, fmt.Errorf("target record has format %q: %w", rec.Format, ErrCorrupt)
		}
		t.Format = format
	}
	return t, nil
}

func encodeDeviceInfo(info lwm2m.DeviceInfo) ([]byte, error) {
	b, err := json.Marshal(deviceInfoRecord{
		V:               deviceInfoRecordVersion,
		Endpoint:        info.Endpoint,
		FirmwareVersion: info.FirmwareVersion,
		Read:            info.Read.UTC(),
	})
	if err != nil {
		return nil, fmt.Errorf("encode device info record: %w", err)
	}
	return b, nil
}

func decodeDeviceInfo(b []byte) (lwm2m.DeviceInfo, error) {
	var rec deviceInfoRecord
	if err := json.Unmarshal(b, &rec); err != nil {
		return lwm2m.DeviceInfo{}, fmt.Errorf("device info record does not decode: %v: %w", err, ErrCorrupt)
	}
	if rec.V != deviceInfoRecordVersion {
		return lwm2m.DeviceInfo{}, fmt.Errorf("device info record version %d, want %d: %w", rec.V, deviceInfoRecordVersion, ErrCorrupt)
	}
	return lwm2m.DeviceInfo{Endpoint: rec.Endpoint, FirmwareVersion: rec.FirmwareVersion, Read: rec.Read}, nil
}
