package simulator

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"time"
)

// Fault is a failure the simulator can inject into a device.
type Fault string

// Faults, injected on command (Device.Inject) or at random (Config.RandomFaults).
const (
	// FaultPowerLossDownload cuts power after the next block of a pull
	// or a push is stored (a pushed block is acknowledged first).
	FaultPowerLossDownload Fault = "power-loss-download"
	// FaultPowerLossApply cuts power while the new image is installed.
	FaultPowerLossApply Fault = "power-loss-apply"
	// FaultCorruptBlock flips a byte of the next downloaded block.
	FaultCorruptBlock Fault = "corrupt-block"
	// FaultBadImage corrupts the candidate before the reboot: the
	// bootloader refuses it and rolls back.
	FaultBadImage Fault = "bad-image"
	// FaultWrongPrecursor changes the running image, so that a delta made
	// for the image the server believes installed does not apply.
	FaultWrongPrecursor Fault = "wrong-precursor"
	// FaultClockJump moves the device's clock a day ahead.
	FaultClockJump Fault = "clock-jump"
	// FaultRebootLoop makes the new image crash before it confirms
	// itself, until the bootloader rolls back.
	FaultRebootLoop Fault = "reboot-loop"
	// FaultLowBattery makes the device defer the next update (result 11).
	FaultLowBattery Fault = "low-battery"
)

// Faults lists every fault.
var Faults = []Fault{FaultPowerLossDownload, FaultPowerLossApply, FaultCorruptBlock, FaultBadImage,
	FaultWrongPrecursor, FaultClockJump, FaultRebootLoop, FaultLowBattery}

// ParseFault checks a fault name.
func ParseFault(s string) (Fault, error) {
	for _, f := range Faults {
		if string(f) == s {
			return f, nil
		}
	}
	return "", fmt.Errorf("unknown fault %q", s)
}

// faults holds the armed faults of one device.
type faults struct {
	mu     sync.Mutex
	armed  map[Fault]bool
	random map[Fault]float64
	clock  time.Duration
}

func newFaults(random map[Fault]float64) *faults {
	f := &faults{armed: map[Fault]bool{}, random: map[Fault]float64{}}
	for x, p := range random {
		f.random[x] = p
	}
	return f
}

func (f *faults) arm(x Fault) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if x == FaultClockJump {
		f.clock += 24 * time.Hour
		return
	}
	f.armed[x] = true
}

// take reports whether fault x fires now, disarming it: armed on
// command, or drawn at its random probability.
func (f *faults) take(x Fault) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.armed[x] {
		delete(f.armed, x)
		return true
	}
	p := f.random[x]
	return p > 0 && rand.Float64() < p
}

func (f *faults) setRandom(x Fault, p float64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.random == nil {
		f.random = map[Fault]float64{}
	}
	f.random[x] = p
}

func (f *faults) clockOffset() time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.clock
}
