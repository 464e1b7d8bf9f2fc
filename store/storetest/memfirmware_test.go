package storetest

import (
	"testing"

	"github.com/fotahub/fota/delivery/firmware"
)

// The in-memory store passes the suite the bbolt store passes.
func TestFirmwareStoreImages(t *testing.T) {
	TestImageStore(t, func(*testing.T) firmware.ImageStore { return NewFirmwareStore() })
}

func TestFirmwareStorePackages(t *testing.T) {
	TestPackageStore(t, func(*testing.T) firmware.Store { return NewFirmwareStore() })
}

func TestFirmwareStoreClasses(t *testing.T) {
	TestClassStore(t, func(*testing.T) firmware.ClassStore { return NewFirmwareStore() })
}
