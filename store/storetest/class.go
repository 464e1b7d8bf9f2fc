package storetest

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/fotahub/fota/delivery/firmware"
)

// TestClassStore checks a firmware.ClassStore: round trips of every field,
// replacement, listing, deletion, ErrNotFound, and a cancelled context.
func TestClassStore(t *testing.T, open func(t *testing.T) firmware.ClassStore) {
	ctx := context.Background()
	s := open(t)
	at := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	raw := firmware.Class{Name: "nrf9160-mcuboot", Profile: firmware.ProfileRaw, Method: firmware.MethodPull,
		BlockSize: 256, Scheme: firmware.SchemeCoAPS, Deadline: 36 * time.Hour,
		Success: []string{firmware.SuccessResult, firmware.SuccessVersion}, Declared: true, Changed: at}
	native := firmware.Class{Name: "sensor", Profile: firmware.ProfileNative, Delta: true, Method: firmware.MethodAuto,
		Scheme: firmware.SchemeAuto, Success: []string{firmware.SuccessPackage}, Declared: true, Changed: at}

	if _, err := s.Class(ctx, raw.Name); !errors.Is(err, firmware.ErrNotFound) {
		t.Fatalf("Class of an empty store: %v, want ErrNotFound", err)
	}
	for _, c := range []firmware.Class{raw, native} {
		if err := s.PutClass(ctx, c); err != nil {
			t.Fatal(err)
		}
		got, err := s.Class(ctx, c.Name)
		if err != nil {
			t.Fatal(err)
		}
		got.Changed = got.Changed.UTC()
		if !reflect.DeepEqual(got, c) {
			t.Fatalf("Class(%q) = %+v, want %+v", c.Name, got, c)
		}
	}
	raw.BlockSize, raw.Success = 64, []string{firmware.SuccessResult}
	if err := s.PutClass(ctx, raw); err != nil {
		t.Fatal(err)
	}
	cs, err := s.Classes(ctx)
	if err != nil || len(cs) != 2 {
		t.Fatalf("Classes: %d, %v; want 2", len(cs), err)
	}
	for _, c := range cs {
		if c.Name == raw.Name && (c.BlockSize != 64 || len(c.Success) != 1) {
			t.Fatalf("replaced class reads %+v", c)
		}
	}
	if err := s.DeleteClass(ctx, raw.Name); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteClass(ctx, raw.Name); !errors.Is(err, firmware.ErrNotFound) {
		t.Fatalf("second DeleteClass: %v, want ErrNotFound", err)
	}
	if cs, err := s.Classes(ctx); err != nil || len(cs) != 1 || cs[0].Name != native.Name {
		t.Fatalf("Classes after the delete: %+v, %v", cs, err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if err := s.PutClass(cancelled, raw); !errors.Is(err, context.Canceled) {
		t.Fatalf("PutClass with a cancelled context: %v", err)
	}
}
