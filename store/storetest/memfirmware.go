package storetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"sync"

	"github.com/fotahub/fota/delivery/firmware"
	"github.com/fotahub/fota/delivery/manifest"
)

// FirmwareStore is a map-backed firmware.Store for the tests of its users
// (the firmware service, the API, fotactl). It passes TestImageStore and
// TestPackageStore. BeforePackageFor, when set, is called at the start of
// every PackageFor: tests use it to see a lookup happen.
type FirmwareStore struct {
	BeforePackageFor func(firmware.PackageKey)

	mu          sync.Mutex
	images      map[manifest.Digest]firmware.Image
	imageData   map[manifest.Digest][]byte
	seqs        map[string]uint64
	packages    map[manifest.Digest]firmware.Package
	packageData map[manifest.Digest][]byte
	keys        map[firmware.PackageKey]manifest.Digest
	classes     map[string]firmware.Class
}

var _ firmware.Store = (*FirmwareStore)(nil)

// NewFirmwareStore returns an empty FirmwareStore.
func NewFirmwareStore() *FirmwareStore {
	return &FirmwareStore{
		images:      map[manifest.Digest]firmware.Image{},
		imageData:   map[manifest.Digest][]byte{},
		seqs:        map[string]uint64{},
		packages:    map[manifest.Digest]firmware.Package{},
		packageData: map[manifest.Digest][]byte{},
		keys:        map[firmware.PackageKey]manifest.Digest{},
		classes:     map[string]firmware.Class{},
	}
}

func (m *FirmwareStore) PutImage(ctx context.Context, img firmware.Image, data []byte) (firmware.Image, bool, error) {
	if err := ctx.Err(); err != nil {
		return firmware.Image{}, false, err
	}
	if int64(len(data)) != img.Size || sha256.Sum256(data) != img.Digest {
		return firmware.Image{}, false, fmt.Errorf("put image: wrong bytes")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if old, ok := m.images[img.Digest]; ok {
		if old.Version != img.Version || old.Class != img.Class {
			return firmware.Image{}, false, fmt.Errorf("image %s is %s/%s: %w", img.Digest, old.Class, old.Version, firmware.ErrConflict)
		}
		return old, false, nil
	}
	for _, o := range m.images {
		if o.Class == img.Class && o.Version == img.Version {
			return firmware.Image{}, false, fmt.Errorf("version %q of class %q is image %s: %w", img.Version, img.Class, o.Digest, firmware.ErrConflict)
		}
	}
	m.seqs[img.Class]++
	img.Sequence = m.seqs[img.Class]
	m.images[img.Digest] = img
	m.imageData[img.Digest] = bytes.Clone(data)
	return img, true, nil
}

func (m *FirmwareStore) Image(ctx context.Context, d manifest.Digest) (firmware.Image, error) {
	if err := ctx.Err(); err != nil {
		return firmware.Image{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	img, ok := m.images[d]
	if !ok {
		return firmware.Image{}, fmt.Errorf("image %s: %w", d, firmware.ErrNotFound)
	}
	return img, nil
}

func (m *FirmwareStore) ImageByVersion(ctx context.Context, class, version string) (firmware.Image, error) {
	if err := ctx.Err(); err != nil {
		return firmware.Image{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, img := range m.images {
		if img.Class == class && img.Version == version {
			return img, nil
		}
	}
	return firmware.Image{}, fmt.Errorf("image version %q: %w", version, firmware.ErrNotFound)
}

func (m *FirmwareStore) Images(ctx context.Context) ([]firmware.Image, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []firmware.Image
	for _, img := range m.images {
		out = append(out, img)
	}
	return out, nil
}

func (m *FirmwareStore) ImageData(ctx context.Context, d manifest.Digest) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.imageData[d]
	if !ok {
		return nil, fmt.Errorf("image data %s: %w", d, firmware.ErrNotFound)
	}
	return bytes.Clone(b), nil
}

func (m *FirmwareStore) DeleteImage(ctx context.Context, d manifest.Digest) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.images[d]; !ok {
		return fmt.Errorf("image %s: %w", d, firmware.ErrNotFound)
	}
	for k, id := range m.keys {
		if k.From == d || k.To == d {
			delete(m.keys, k)
			delete(m.packages, id)
			delete(m.packageData, id)
		}
	}
	delete(m.images, d)
	delete(m.imageData, d)
	return nil
}

func (m *FirmwareStore) PutPackage(ctx context.Context, p firmware.Package, data []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if int64(len(data)) != p.Size || sha256.Sum256(data) != p.ID {
		return fmt.Errorf("put package: wrong bytes")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	k := p.Key()
	if _, ok := m.images[k.To]; !ok {
		return fmt.Errorf("image %s: %w", k.To, firmware.ErrNotFound)
	}
	if _, ok := m.images[k.From]; k.Format.IsDelta() && !ok {
		return fmt.Errorf("image %s: %w", k.From, firmware.ErrNotFound)
	}
	if old, ok := m.keys[k]; ok && old != p.ID {
		delete(m.packages, old)
		delete(m.packageData, old)
	}
	m.keys[k] = p.ID
	m.packages[p.ID] = p
	m.packageData[p.ID] = bytes.Clone(data)
	return nil
}

func (m *FirmwareStore) PackageFor(ctx context.Context, k firmware.PackageKey) (firmware.Package, error) {
	if m.BeforePackageFor != nil {
		m.BeforePackageFor(k)
	}
	if err := ctx.Err(); err != nil {
		return firmware.Package{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	id, ok := m.keys[k]
	if !ok {
		return firmware.Package{}, fmt.Errorf("package %s: %w", k, firmware.ErrNotFound)
	}
	return m.packages[id], nil
}

func (m *FirmwareStore) Package(ctx context.Context, id manifest.Digest) (firmware.Package, error) {
	if err := ctx.Err(); err != nil {
		return firmware.Package{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	p, ok := m.packages[id]
	if !ok {
		return firmware.Package{}, fmt.Errorf("package %s: %w", id, firmware.ErrNotFound)
	}
	return p, nil
}

func (m *FirmwareStore) PackageData(ctx context.Context, id manifest.Digest) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.packageData[id]
	if !ok {
		return nil, fmt.Errorf("package data %s: %w", id, firmware.ErrNotFound)
	}
	return bytes.Clone(b), nil
}

func (m *FirmwareStore) PutClass(ctx context.Context, c firmware.Class) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	c.Success = append([]string(nil), c.Success...)
	m.classes[c.Name] = c
	return nil
}

func (m *FirmwareStore) Class(ctx context.Context, name string) (firmware.Class, error) {
	if err := ctx.Err(); err != nil {
		return firmware.Class{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.classes[name]
	if !ok {
		return firmware.Class{}, fmt.Errorf("class %q: %w", name, firmware.ErrNotFound)
	}
	c.Success = append([]string(nil), c.Success...)
	return c, nil
}

func (m *FirmwareStore) Classes(ctx context.Context) ([]firmware.Class, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]firmware.Class, 0, len(m.classes))
	for _, c := range m.classes {
		c.Success = append([]string(nil), c.Success...)
		out = append(out, c)
	}
	return out, nil
}

func (m *FirmwareStore) DeleteClass(ctx context.Context, name string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.classes[name]; !ok {
		return fmt.Errorf("class %q: %w", name, firmware.ErrNotFound)
	}
	delete(m.classes, name)
	return nil
}
