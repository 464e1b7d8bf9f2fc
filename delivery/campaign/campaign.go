// Package campaign rolls a firmware image out to a selection of devices:
// in waves with a soak time between them, under limits (concurrent
// downloads overall and per tag value, bytes per hour, a maintenance
// window), pausing itself when a wave fails too often. Each device is
// updated by the Object 5 driver (package update); the campaign decides
// who goes next and when. Campaigns and their devices are persisted after
// every change, so that the scheduler continues where it was after a
// restart. docs/campaigns.md has the design.
package campaign

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/fotahub/fota/delivery/manifest"
)

// State is where a campaign is.
type State string

// Campaign states. A campaign is created, then started; it runs until
// every device has ended, or it is cancelled. It may be paused, by hand or
// by its failure policy, and resumed.
const (
	Created   State = "created"
	Running   State = "running"
	Paused    State = "paused"
	Done      State = "done"
	Cancelled State = "cancelled"
)

// Finished reports an end state.
func (s State) Finished() bool { return s == Done || s == Cancelled }

// TargetState is where one device of a campaign is.
type TargetState string

// Device states. A device waits (pending) until its wave is open, the
// limits allow and it is reachable; it is updated (running) and ends
// done, failed, cancelled, skipped (it needed no update) or expired (it
// was not reachable before the campaign's deadline).
const (
	TargetPending   TargetState = "pending"
	TargetRunning   TargetState = "running"
	TargetDone      TargetState = "done"
	TargetFailed    TargetState = "failed"
	TargetCancelled TargetState = "cancelled"
	TargetSkipped   TargetState = "skipped"
	TargetExpired   TargetState = "expired"
)

// Finished reports an end state.
func (s TargetState) Finished() bool { return s != TargetPending && s != TargetRunning }

// Spec is what a field engineer asks for.
type Spec struct {
	Name string `json:"name,omitempty"`
	// Image is the target image: a version or a digest.
	Image  string    `json:"image"`
	Select Selection `json:"select"`
	// Waves split the selection, in order. Devices not covered by the
	// waves form a last wave. No waves: one wave of every device.
	Waves    []Wave        `json:"waves,omitempty"`
	Limits   Limits        `json:"limits,omitzero"`
	Failure  FailurePolicy `json:"failure,omitzero"`
	Delivery Delivery      `json:"delivery,omitzero"`
	// AsleepWait is how long a wave waits for devices that have not been
	// reachable since it opened before the next wave may open (default
	// 1 h). Those devices stay in the campaign and are updated when they
	// wake.
	AsleepWait Duration `json:"asleep_wait,omitzero"`
	// Deadline bounds the campaign from its start (default 14 days):
	// devices not reached by then end expired.
	Deadline Duration `json:"deadline,omitzero"`
}

// Selection picks devices. Every given criterion must hold; an empty
// selection matches nothing.
type Selection struct {
	// Endpoints names devices explicitly.
	Endpoints []string `json:"endpoints,omitempty"`
	// Class is the device class (the device's own, else its installed
	// image's).
	Class string `json:"class,omitempty"`
	// Versions are installed firmware versions (/3/0/3 as last read).
	Versions []string `json:"versions,omitempty"`
	// Tags must all be present with these values ("" matches any value).
	Tags map[string]string `json:"tags,omitempty"`
	// All selects every provisioned device the other criteria allow.
	All bool `json:"all,omitempty"`
}

// Wave is a share of the selection: Count devices, or Percent of the
// selection (rounded up). Soak is the time after the wave has ended before
// the next opens.
type Wave struct {
	Count   int      `json:"count,omitempty"`
	Percent float64  `json:"percent,omitempty"`
	Soak    Duration `json:"soak,omitzero"`
}

// Limits bound how fast the campaign goes. Zero means no limit.
type Limits struct {
	// MaxConcurrent bounds the updates running at once.
	MaxConcurrent int `json:"max_concurrent,omitempty"`
	// PerTag bounds the updates running at once among devices with the
	// same value of a tag: {"cell": 4} lets at most 4 devices per cell
	// download together.
	PerTag map[string]int `json:"per_tag,omitempty"`
	// BytesPerHour bounds the package bytes of the updates started in
	// any hour.
	BytesPerHour int64 `json:"bytes_per_hour,omitempty"`
	// Window is when updates may start, in UTC; running ones finish.
	Window *Window `json:"window,omitempty"`
}

// Window is a daily time window in UTC, "HH:MM" to "HH:MM"; it may wrap
// past midnight ("22:00" to "04:00").
type Window struct {
	Start string `json:"start"`
	End   string `json:"end"`
}

// FailurePolicy pauses a campaign whose wave fails too often.
type FailurePolicy struct {
	// MaxFailures pauses the campaign when more devices than this have
	// failed in the open wave (0: no limit by count).
	MaxFailures int `json:"max_failures,omitempty"`
	// MaxFailurePercent pauses it when more than this share of the wave
	// has failed (0: no limit by share).
	MaxFailurePercent float64 `json:"max_failure_percent,omitempty"`
	// Retries is how often a device's download starts again after a lost
	// connection (0: the server's default, negative: never).
	Retries int `json:"retries,omitempty"`
}

// Delivery says how packages go to the devices.
type Delivery struct {
	// Full sends the full image to every device. By default a device
	// gets a delta where one can be made, and the full image if the delta
	// fails on it.
	Full bool `json:"full,omitempty"`
	// Push writes the package (Block1) instead of a Package URI where the
	// device allows it.
	Push bool `json:"push,omitempty"`
	// BlockSize caps the block size (16-1024); 0: sized to each device's
	// link.
	BlockSize int `json:"block_size,omitempty"`
}

// Campaign is a persisted campaign with its devices.
type Campaign struct {
	ID   string `json:"id"`
	Spec Spec   `json:"spec"`
	// Version is the target image's version (Spec.Image is its digest).
	Version string `json:"version"`
	State   State  `json:"state"`
	// Reason says why the campaign is paused or how it ended.
	Reason  string    `json:"reason,omitempty"`
	Created time.Time `json:"created"`
	Started time.Time `json:"started,omitzero"`
	Ended   time.Time `json:"ended,omitzero"`
	// Waves is the rollout's progress, one per wave.
	Waves []WaveState `json:"waves"`
	// PeakRunning is the most updates that have run at once.
	PeakRunning int      `json:"peak_running,omitempty"`
	Targets     []Target `json:"targets,omitempty"`
}

// WaveState is a wave's progress.
type WaveState struct {
	Size int      `json:"size"`
	Soak Duration `json:"soak,omitzero"`
	// Opened is when devices of the wave could first start; Settled when
	// every device of it had ended (or was left asleep); the next wave
	// opens Soak later.
	Opened  time.Time `json:"opened,omitzero"`
	Settled time.Time `json:"settled,omitzero"`
	// Forgiven counts failures a resume accepted: the failure policy
	// counts only those after it.
	Forgiven int `json:"forgiven,omitempty"`
}

// Target is one device of a campaign.
type Target struct {
	Endpoint string      `json:"endpoint"`
	Wave     int         `json:"wave"`
	State    TargetState `json:"state"`
	// Installed is the firmware version the device ran when it was last
	// looked at ("" when unknown).
	Installed string `json:"installed,omitempty"`
	// Format and Size are of the package: planned, then as delivered.
	Format manifest.Format `json:"format,omitempty"`
	Size   int64           `json:"size,omitempty"`
	// FullSize is the full image package's size, the baseline a delta
	// saves against.
	FullSize    int64  `json:"full_size,omitempty"`
	BytesServed int64  `json:"bytes_served,omitempty"`
	FellBack    bool   `json:"fell_back,omitempty"`
	Result      int    `json:"result,omitempty"`
	Reason      string `json:"reason,omitempty"`
	// Tags are the device's tags when the campaign was created: the
	// per-tag limits count by them.
	Tags    map[string]string `json:"tags,omitempty"`
	Started time.Time         `json:"started,omitzero"`
	Ended   time.Time         `json:"ended,omitzero"`
}

// Duration is a time.Duration written as "90s", "10m" or "2h" in JSON.
type Duration time.Duration

// MarshalJSON writes the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON reads "10m" or a number of seconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		var secs float64
		if err := json.Unmarshal(b, &secs); err != nil {
			return fmt.Errorf("duration: want a string like \"10m\" or seconds, got %s", b)
		}
		*d = Duration(secs * float64(time.Second))
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("duration: %w", err)
	}
	*d = Duration(v)
	return nil
}

// Errors of the Manager.
var (
	ErrNotFound = errors.New("no such campaign")
	// ErrState: the campaign is not in a state that allows the change.
	ErrState = errors.New("campaign state does not allow this")
	// ErrInvalid wraps every complaint about a Spec.
	ErrInvalid = errors.New("invalid campaign")
	// ErrEmpty: the selection matched no device.
	ErrEmpty = errors.New("the selection matches no device")
)
