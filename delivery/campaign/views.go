package campaign

import (
	"time"

	"github.com/fotahub/fota/delivery/manifest"
)

// Plan is a dry run: who would get which package, and how long it would
// take on each link profile. Nothing is stored or sent to make it.
type Plan struct {
	Image   string `json:"image"`
	Version string `json:"version"`
	Class   string `json:"class"`
	// Devices in rollout order: by wave, then endpoint.
	Devices []PlanDevice `json:"devices"`
	Waves   []int        `json:"waves"` // devices per wave
	Delta   int          `json:"delta"` // devices that would get a delta
	Full    int          `json:"full"`  // ... the full image
	Skip    int          `json:"skip"`  // ... nothing (see PlanDevice.Reason)
	// Bytes is what the plan sends; FullBytes what sending every device
	// the full image would.
	Bytes     int64 `json:"bytes"`
	FullBytes int64 `json:"full_bytes"`
	// Airtime estimates the transfer time on each link profile.
	Airtime []Airtime `json:"airtime"`
}

// PlanDevice is one device's row of a plan.
type PlanDevice struct {
	Endpoint  string          `json:"endpoint"`
	Wave      int             `json:"wave"`
	Installed string          `json:"installed,omitempty"`
	Format    manifest.Format `json:"format,omitempty"`
	Size      int64           `json:"size,omitempty"`
	FullSize  int64           `json:"full_size,omitempty"`
	// Reason says why the device gets the full image, or why it is
	// skipped (Skip).
	Reason string `json:"reason,omitempty"`
	Skip   bool   `json:"skip,omitempty"`
}

// Airtime is the estimated transfer time of a plan over one link profile,
// by links.md's stop-and-wait model: N (RTT + s_d + s_u) per device.
type Airtime struct {
	Link      string `json:"link"`
	BlockSize int    `json:"block_size"`
	// PerDevice is the mean per updated device; Total the sum over them
	// (the radio time the fleet spends); FullOnly the sum had every
	// device been sent the full image.
	PerDevice time.Duration `json:"per_device"`
	Total     time.Duration `json:"total"`
	FullOnly  time.Duration `json:"full_only"`
}

// Progress is a campaign's live summary.
type Progress struct {
	ID      string    `json:"id"`
	Name    string    `json:"name,omitempty"`
	Image   string    `json:"image"`
	State   State     `json:"state"`
	Reason  string    `json:"reason,omitempty"`
	Created time.Time `json:"created"`
	Started time.Time `json:"started,omitzero"`
	Ended   time.Time `json:"ended,omitzero"`

	Total  int                 `json:"total"`
	Counts map[TargetState]int `json:"counts"`
	Waves  []WaveProgress      `json:"waves"`
	// Running is the number of updates running now, PeakRunning the most
	// there have been at once.
	Running     int `json:"running"`
	PeakRunning int `json:"peak_running"`
	// BytesServed is the package bytes sent to the campaign's devices;
	// BytesBaseline what the full image would have cost the devices
	// updated so far; BytesSaved the difference the deltas made.
	BytesServed   int64 `json:"bytes_served"`
	BytesBaseline int64 `json:"bytes_baseline"`
	BytesSaved    int64 `json:"bytes_saved"`
	// Failures groups failed devices by Update Result and reason.
	Failures []FailureGroup `json:"failures,omitempty"`
}

// WaveProgress is one wave's summary.
type WaveProgress struct {
	Index  int                 `json:"index"`
	Size   int                 `json:"size"`
	Counts map[TargetState]int `json:"counts"`
	Opened time.Time           `json:"opened,omitzero"`
	// Settled is when the wave had ended; the next opens at SoakUntil.
	Settled   time.Time `json:"settled,omitzero"`
	SoakUntil time.Time `json:"soak_until,omitzero"`
}

// FailureGroup is the failed devices that share an Update Result and
// reason.
type FailureGroup struct {
	Result     int      `json:"result"`
	ResultText string   `json:"result_text"`
	Reason     string   `json:"reason"`
	Count      int      `json:"count"`
	Endpoints  []string `json:"endpoints"` // the first ten
}
