// Package storetest is the conformance suite for implementations of
// lwm2m.DeviceStore, lwm2m.RegistrationStore and the firmware stores
// (firmware.ImageStore, and firmware.PackageStore with the images its
// packages need). Every backend runs it from its own tests:
//
//	func TestDeviceStore(t *testing.T) {
//		storetest.TestDeviceStore(t, func(t *testing.T) lwm2m.DeviceStore { return openTestDB(t) })
//	}
//
// open must return an empty store that lives until the (sub)test ends; it
// is called once per subtest.
package storetest

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fotahub/fota/lwm2m"
)

// TestDeviceStore runs the DeviceStore conformance tests.
func TestDeviceStore(t *testing.T, open func(t *testing.T) lwm2m.DeviceStore) {
	ctx := context.Background()

	t.Run("PutGet", func(t *testing.T) {
		s := open(t)
		want := device("dev-1", "id-1")
		want.Tags = map[string]string{"site": "lab", "hw": "rev-b"}
		want.LinkMTU, want.Class = 1280, "sensor-a"
		mustPut(t, s, want)
		got, err := s.Device(ctx, "dev-1")
		if err != nil {
			t.Fatalf("Device: %v", err)
		}
		checkDevice(t, got, want)
	})

	t.Run("WithoutCredentials", func(t *testing.T) {
		s := open(t)
		// Several devices without a PSK identity must not collide in the index.
		for _, ep := range []string{"plain-1", "plain-2"} {
			mustPut(t, s, lwm2m.Device{Endpoint: ep, CreatedAt: created})
		}
		got, err := s.Device(ctx, "plain-2")
		if err != nil {
			t.Fatalf("Device: %v", err)
		}
		checkDevice(t, got, lwm2m.Device{Endpoint: "plain-2", CreatedAt: created})
		if _, err := s.DeviceByPSKIdentity(ctx, ""); !errors.Is(err, lwm2m.ErrNotFound) {
			t.Errorf("DeviceByPSKIdentity(\"\") = %v, want ErrNotFound", err)
		}
	})

	t.Run("Replace", func(t *testing.T) {
		s := open(t)
		first := device("dev-1", "id-1")
		first.Class = "sensor-a"
		mustPut(t, s, first)
		want := device("dev-1", "id-1")
		want.PSKKey = []byte("another key 0123")
		want.Tags = map[string]string{"site": "field"}
		want.Class = "sensor-b"
		mustPut(t, s, want)
		got, err := s.Device(ctx, "dev-1")
		if err != nil {
			t.Fatalf("Device: %v", err)
		}
		checkDevice(t, got, want)
		got, err = s.DeviceByPSKIdentity(ctx, "id-1")
		if err != nil {
			t.Fatalf("DeviceByPSKIdentity: %v", err)
		}
		checkDevice(t, got, want)
		checkEndpoints(t, s, "dev-1")
	})

	t.Run("ReturnsCopies", func(t *testing.T) {
		s := open(t)
		d := device("dev-1", "id-1")
		d.Tags = map[string]string{"site": "lab"}
		if err := s.PutDevice(ctx, d); err != nil {
			t.Fatalf("PutDevice: %v", err)
		}
		d.PSKKey[0] ^= 0xff // the caller's values must not alias the store's
		d.Tags["site"] = "changed"
		got, err := s.Device(ctx, "dev-1")
		if err != nil {
			t.Fatalf("Device: %v", err)
		}
		got.PSKKey[0] ^= 0xff
		got.Tags["site"] = "changed again"
		again, err := s.Device(ctx, "dev-1")
		if err != nil {
			t.Fatalf("Device: %v", err)
		}
		want := device("dev-1", "id-1")
		want.Tags = map[string]string{"site": "lab"}
		checkDevice(t, again, want)
	})

	t.Run("NotFound", func(t *testing.T) {
		s := open(t)
		mustPut(t, s, device("dev-1", "id-1"))
		if _, err := s.Device(ctx, "dev-2"); !errors.Is(err, lwm2m.ErrNotFound) {
			t.Errorf("Device(missing) = %v, want ErrNotFound", err)
		}
		if _, err := s.DeviceByPSKIdentity(ctx, "id-2"); !errors.Is(err, lwm2m.ErrNotFound) {
			t.Errorf("DeviceByPSKIdentity(missing) = %v, want ErrNotFound", err)
		}
		if err := s.DeleteDevice(ctx, "dev-2"); !errors.Is(err, lwm2m.ErrNotFound) {
			t.Errorf("DeleteDevice(missing) = %v, want ErrNotFound", err)
		}
	})

	t.Run("Delete", func(t *testing.T) {
		s := open(t)
		mustPut(t, s, device("dev-1", "id-1"))
		mustPut(t, s, device("dev-2", "id-2"))
		if err := s.DeleteDevice(ctx, "dev-1"); err != nil {
			t.Fatalf("DeleteDevice: %v", err)
		}
		if _, err := s.Device(ctx, "dev-1"); !errors.Is(err, lwm2m.ErrNotFound) {
			t.Errorf("Device after delete = %v, want ErrNotFound", err)
		}
		if _, err := s.DeviceByPSKIdentity(ctx, "id-1"); !errors.Is(err, lwm2m.ErrNotFound) {
			t.Errorf("DeviceByPSKIdentity after delete = %v, want ErrNotFound", err)
		}
		if err := s.DeleteDevice(ctx, "dev-1"); !errors.Is(err, lwm2m.ErrNotFound) {
			t.Errorf("second DeleteDevice = %v, want ErrNotFound", err)
		}
		checkEndpoints(t, s, "dev-2")
		// The identity is free again.
		mustPut(t, s, device("dev-3", "id-1"))
		checkOwner(t, s, "id-1", "dev-3")
	})

	t.Run("ListOrdered", func(t *testing.T) {
		s := open(t)
		checkEndpoints(t, s)
		for _, ep := range []string{"c", "a", "B", "b-2", "b"} {
			mustPut(t, s, lwm2m.Device{Endpoint: ep, CreatedAt: created})
		}
		checkEndpoints(t, s, "B", "a", "b", "b-2", "c")
	})

	t.Run("PSKIdentityUnique", func(t *testing.T) {
		s := open(t)
		owner := device("dev-1", "shared")
		mustPut(t, s, owner)
		thief := device("dev-2", "shared")
		thief.PSKKey = []byte("thief-secret-key-0123456789")
		err := s.PutDevice(ctx, thief)
		if !errors.Is(err, lwm2m.ErrExists) {
			t.Fatalf("PutDevice with another device's identity = %v, want ErrExists", err)
		}
		checkNoSecret(t, err, thief.PSKKey)
		checkNoSecret(t, err, owner.PSKKey)
		if _, err := s.Device(ctx, "dev-2"); !errors.Is(err, lwm2m.ErrNotFound) {
			t.Errorf("rejected device was stored: Device = %v", err)
		}
		checkOwner(t, s, "shared", "dev-1")
		// Re-putting the owner with its own identity is fine.
		mustPut(t, s, owner)
		checkOwner(t, s, "shared", "dev-1")
	})

	t.Run("PSKIdentityRejectedReplaceKeepsOld", func(t *testing.T) {
		s := open(t)
		mustPut(t, s, device("dev-1", "id-1"))
		mustPut(t, s, device("dev-2", "id-2"))
		if err := s.PutDevice(ctx, device("dev-2", "id-1")); !errors.Is(err, lwm2m.ErrExists) {
			t.Fatalf("PutDevice = %v, want ErrExists", err)
		}
		checkOwner(t, s, "id-1", "dev-1")
		checkOwner(t, s, "id-2", "dev-2")
	})

	t.Run("PSKIdentityChange", func(t *testing.T) {
		s := open(t)
		mustPut(t, s, device("dev-1", "old"))
		mustPut(t, s, device("dev-1", "new"))
		if _, err := s.DeviceByPSKIdentity(ctx, "old"); !errors.Is(err, lwm2m.ErrNotFound) {
			t.Errorf("old identity after change = %v, want ErrNotFound", err)
		}
		checkOwner(t, s, "new", "dev-1")
		mustPut(t, s, device("dev-2", "old"))
		checkOwner(t, s, "old", "dev-2")
	})

	t.Run("PSKIdentityCleared", func(t *testing.T) {
		s := open(t)
		mustPut(t, s, device("dev-1", "id-1"))
		mustPut(t, s, lwm2m.Device{Endpoint: "dev-1", CreatedAt: created})
		if _, err := s.DeviceByPSKIdentity(ctx, "id-1"); !errors.Is(err, lwm2m.ErrNotFound) {
			t.Errorf("identity after clearing = %v, want ErrNotFound", err)
		}
		mustPut(t, s, device("dev-2", "id-1"))
		checkOwner(t, s, "id-1", "dev-2")
	})

	t.Run("CancelledContext", func(t *testing.T) {
		s := open(t)
		mustPut(t, s, device("dev-1", "id-1"))
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		calls := map[string]error{}
		calls["PutDevice"] = s.PutDevice(cctx, device("dev-2", "id-2"))
		_, calls["Device"] = s.Device(cctx, "dev-1")
		_, calls["DeviceByPSKIdentity"] = s.DeviceByPSKIdentity(cctx, "id-1")
		calls["DeleteDevice"] = s.DeleteDevice(cctx, "dev-1")
		_, calls["Devices"] = s.Devices(cctx)
		for name, err := range calls {
			if !errors.Is(err, context.Canceled) {
				t.Errorf("%s with cancelled context = %v, want context.Canceled", name, err)
			}
		}
		checkEndpoints(t, s, "dev-1")
	})
}

// TestRegistrationStore runs the RegistrationStore conformance tests.
func TestRegistrationStore(t *testing.T, open func(t *testing.T) lwm2m.RegistrationStore) {
	ctx := context.Background()

	t.Run("RoundTripEveryField", func(t *testing.T) {
		s := open(t)
		want := fullRegistration("reg-1", "dev-1")
		mustPutReg(t, s, want)
		checkRegistrations(t, s, want)
	})

	t.Run("IdentityKinds", func(t *testing.T) {
		for _, id := range []lwm2m.Identity{
			{Kind: lwm2m.IdentityNone},
			{Kind: lwm2m.IdentityPSK, Name: "psk-id"},
			{Kind: lwm2m.IdentityX509, Name: "dev-1.example.com"},
		} {
			t.Run(id.Kind.String(), func(t *testing.T) {
				s := open(t)
				r := registration("reg-1", "dev-1")
				r.Identity = id
				mustPutReg(t, s, r)
				checkRegistrations(t, s, r)
			})
		}
	})

	t.Run("Minimal", func(t *testing.T) {
		s := open(t)
		r := lwm2m.Registration{ID: "reg-1", Endpoint: "dev-1"}
		mustPutReg(t, s, r)
		checkRegistrations(t, s, r)
	})

	t.Run("Replace", func(t *testing.T) {
		s := open(t)
		r := fullRegistration("reg-1", "dev-1")
		mustPutReg(t, s, r)
		r.LastSeen = r.LastSeen.Add(time.Hour)
		r.Lifetime = 5 * time.Minute
		r.Address = "[2001:db8::1]:5684"
		r.Objects = []lwm2m.Link{{Path: "/5/0"}}
		mustPutReg(t, s, r)
		checkRegistrations(t, s, r)
	})

	t.Run("Delete", func(t *testing.T) {
		s := open(t)
		a, b := registration("reg-a", "dev-a"), registration("reg-b", "dev-b")
		mustPutReg(t, s, a)
		mustPutReg(t, s, b)
		if err := s.DeleteRegistration(ctx, "reg-a"); err != nil {
			t.Fatalf("DeleteRegistration: %v", err)
		}
		checkRegistrations(t, s, b)
		if err := s.DeleteRegistration(ctx, "reg-a"); err != nil {
			t.Errorf("DeleteRegistration of a deleted registration = %v, want nil", err)
		}
		if err := s.DeleteRegistration(ctx, "never-existed"); err != nil {
			t.Errorf("DeleteRegistration of a missing registration = %v, want nil", err)
		}
		checkRegistrations(t, s, b)
	})

	t.Run("Empty", func(t *testing.T) {
		s := open(t)
		checkRegistrations(t, s)
	})

	t.Run("Concurrent", func(t *testing.T) {
		s := open(t)
		const n = 50
		var want []lwm2m.Registration
		for i := range n {
			want = append(want, registration(fmt.Sprintf("reg-%03d", i), fmt.Sprintf("dev-%03d", i)))
		}
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for _, r := range want {
			wg.Go(func() { errs <- s.PutRegistration(ctx, r) })
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Errorf("PutRegistration: %v", err)
			}
		}
		checkRegistrations(t, s, want...)
	})

	t.Run("CancelledContext", func(t *testing.T) {
		s := open(t)
		r := registration("reg-1", "dev-1")
		mustPutReg(t, s, r)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		calls := map[string]error{}
		calls["PutRegistration"] = s.PutRegistration(cctx, registration("reg-2", "dev-2"))
		calls["DeleteRegistration"] = s.DeleteRegistration(cctx, "reg-1")
		_, calls["Registrations"] = s.Registrations(cctx)
		for name, err := range calls {
			if !errors.Is(err, context.Canceled) {
				t.Errorf("%s with cancelled context = %v, want context.Canceled", name, err)
			}
		}
		checkRegistrations(t, s, r)
	})
}

// created is a CreatedAt in a non-UTC zone with nanoseconds: a backend
// must keep the instant, not necessarily the zone.
var created = time.Date(2025, 3, 14, 15, 9, 26, 535897932, time.FixedZone("CET", 3600))

func device(ep, identity string) lwm2m.Device {
	return lwm2m.Device{
		Endpoint:    ep,
		PSKIdentity: identity,
		PSKKey:      []byte("secret-of-" + ep),
		CreatedAt:   created,
	}
}

func registration(id, ep string) lwm2m.Registration {
	at := time.Date(2025, 6, 1, 12, 0, 0, 123456789, time.UTC)
	return lwm2m.Registration{
		ID:           id,
		Endpoint:     ep,
		Version:      "1.1",
		Lifetime:     86400 * time.Second,
		Binding:      "U",
		RootPath:     "/",
		Objects:      []lwm2m.Link{{Path: "/1/0"}, {Path: "/3/0"}, {Path: "/5/0"}},
		Identity:     lwm2m.Identity{Kind: lwm2m.IdentityPSK, Name: "psk-" + ep},
		Address:      "192.0.2.1:56830",
		RegisteredAt: at,
		LastSeen:     at,
	}
}

// fullRegistration sets every field to a value other than its zero value.
func fullRegistration(id, ep string) lwm2m.Registration {
	berlin := time.FixedZone("CEST", 2*3600)
	return lwm2m.Registration{
		ID:        id,
		Endpoint:  ep,
		Version:   "1.2",
		Lifetime:  3600*time.Second + 250*time.Millisecond,
		Binding:   "UQ",
		Queue:     true,
		SMSNumber: "+491701234567",
		RootPath:  "/lwm2m",
		Objects: []lwm2m.Link{
			{Path: "/", Attrs: []lwm2m.LinkAttr{{Key: "rt", Value: "oma.lwm2m"}, {Key: "ct", Value: "11543"}}},
			{Path: "/1", Attrs: []lwm2m.LinkAttr{{Key: "ver", Value: "1.1"}}},
			{Path: "/1/0"},
			{Path: "/5/0", Attrs: []lwm2m.LinkAttr{{Key: "obs"}, {Key: "title", Value: "firmware, \"update\""}}},
			{Path: "/3442/0", Attrs: []lwm2m.LinkAttr{{Key: "z", Value: "1"}, {Key: "a", Value: "2"}}},
		},
		Identity:     lwm2m.Identity{Kind: lwm2m.IdentityX509, Name: "CN=" + ep},
		Address:      "[2001:db8::2]:5684",
		RegisteredAt: time.Date(2025, 6, 1, 12, 0, 0, 1, berlin),
		LastSeen:     time.Date(2025, 6, 1, 13, 30, 15, 999999999, berlin),
	}
}

func mustPut(t *testing.T, s lwm2m.DeviceStore, d lwm2m.Device) {
	t.Helper()
	// Put a copy so the test's value cannot be aliased by the store.
	d.PSKKey = bytes.Clone(d.PSKKey)
	d.Tags = maps.Clone(d.Tags)
	if err := s.PutDevice(context.Background(), d); err != nil {
		t.Fatalf("PutDevice(%s): %v", d.Endpoint, err)
	}
}

func mustPutReg(t *testing.T, s lwm2m.RegistrationStore, r lwm2m.Registration) {
	t.Helper()
	if err := s.PutRegistration(context.Background(), r); err != nil {
		t.Fatalf("PutRegistration(%s): %v", r.ID, err)
	}
}

func checkDevice(t *testing.T, got, want lwm2m.Device) {
	t.Helper()
	if got.Endpoint != want.Endpoint {
		t.Errorf("Endpoint = %q, want %q", got.Endpoint, want.Endpoint)
	}
	if got.PSKIdentity != want.PSKIdentity {
		t.Errorf("PSKIdentity = %q, want %q", got.PSKIdentity, want.PSKIdentity)
	}
	if !bytes.Equal(got.PSKKey, want.PSKKey) {
		t.Errorf("PSKKey differs (%d bytes, want %d)", len(got.PSKKey), len(want.PSKKey)) // never print keys
	}
	if !maps.Equal(got.Tags, want.Tags) {
		t.Errorf("Tags = %v, want %v", got.Tags, want.Tags)
	}
	if got.LinkMTU != want.LinkMTU {
		t.Errorf("LinkMTU = %d, want %d", got.LinkMTU, want.LinkMTU)
	}
	if got.Class != want.Class {
		t.Errorf("Class = %q, want %q", got.Class, want.Class)
	}
	if !got.CreatedAt.Equal(want.CreatedAt) {
		t.Errorf("CreatedAt = %v, want %v", got.CreatedAt, want.CreatedAt)
	}
}

func checkEndpoints(t *testing.T, s lwm2m.DeviceStore, want ...string) {
	t.Helper()
	ds, err := s.Devices(context.Background())
	if err != nil {
		t.Fatalf("Devices: %v", err)
	}
	got := make([]string, 0, len(ds))
	for _, d := range ds {
		got = append(got, d.Endpoint)
	}
	if want == nil {
		want = []string{}
	}
	if !slices.Equal(got, want) {
		t.Errorf("Devices = %q, want %q", got, want)
	}
}

func checkOwner(t *testing.T, s lwm2m.DeviceStore, identity, ep string) {
	t.Helper()
	d, err := s.DeviceByPSKIdentity(context.Background(), identity)
	if err != nil {
		t.Fatalf("DeviceByPSKIdentity(%s): %v", identity, err)
	}
	if d.Endpoint != ep || d.PSKIdentity != identity {
		t.Errorf("DeviceByPSKIdentity(%s) = device %s with identity %s, want device %s", identity, d.Endpoint, d.PSKIdentity, ep)
	}
}

// checkNoSecret fails if the error message holds the key in any common
// spelling.
func checkNoSecret(t *testing.T, err error, key []byte) {
	t.Helper()
	if err == nil || len(key) == 0 {
		return
	}
	msg := err.Error()
	for _, form := range []string{
		string(key),
		hex.EncodeToString(key),
		base64.StdEncoding.EncodeToString(key),
		fmt.Sprintf("%q", key),
		fmt.Sprint(key),
	} {
		if strings.Contains(msg, form) {
			t.Errorf("error message contains a PSK key: %q", strings.ReplaceAll(msg, form, "<key>"))
		}
	}
}

// checkRegistrations compares the stored registrations with want,
// regardless of order.
func checkRegistrations(t *testing.T, s lwm2m.RegistrationStore, want ...lwm2m.Registration) {
	t.Helper()
	got, err := s.Registrations(context.Background())
	if err != nil {
		t.Fatalf("Registrations: %v", err)
	}
	byID := func(a, b lwm2m.Registration) int { return strings.Compare(a.ID, b.ID) }
	got, want = slices.Clone(got), slices.Clone(want)
	slices.SortFunc(got, byID)
	slices.SortFunc(want, byID)
	if len(got) != len(want) {
		t.Fatalf("Registrations returned %d registrations, want %d", len(got), len(want))
	}
	for i := range want {
		for _, d := range diffRegistration(got[i], want[i]) {
			t.Errorf("registration %s: %s", want[i].ID, d)
		}
	}
}

// diffRegistration lists the fields that differ. Times compare with Equal
// and nil and empty slices are the same.
func diffRegistration(got, want lwm2m.Registration) []string {
	var diffs []string
	field := func(name string, g, w any) {
		if g != w {
			diffs = append(diffs, fmt.Sprintf("%s = %v, want %v", name, g, w))
		}
	}
	field("ID", got.ID, want.ID)
	field("Endpoint", got.Endpoint, want.Endpoint)
	field("Version", got.Version, want.Version)
	field("Lifetime", got.Lifetime, want.Lifetime)
	field("Binding", got.Binding, want.Binding)
	field("Queue", got.Queue, want.Queue)
	field("SMSNumber", got.SMSNumber, want.SMSNumber)
	field("RootPath", got.RootPath, want.RootPath)
	field("Identity", got.Identity, want.Identity)
	field("Address", got.Address, want.Address)
	if !got.RegisteredAt.Equal(want.RegisteredAt) {
		diffs = append(diffs, fmt.Sprintf("RegisteredAt = %v, want %v", got.RegisteredAt, want.RegisteredAt))
	}
	if !got.LastSeen.Equal(want.LastSeen) {
		diffs = append(diffs, fmt.Sprintf("LastSeen = %v, want %v", got.LastSeen, want.LastSeen))
	}
	if !slices.EqualFunc(got.Objects, want.Objects, func(a, b lwm2m.Link) bool {
		return a.Path == b.Path && slices.Equal(a.Attrs, b.Attrs)
	}) {
		diffs = append(diffs, fmt.Sprintf("Objects = %+v, want %+v", got.Objects, want.Objects))
	}
	return diffs
}
