package link

import (
	"fmt"
	"time"
)

// IPv4Overhead is what IPv4 and UDP headers add to a UDP payload: the size
// a packet has on the air and against the MTU is payload + IPv4Overhead.
const IPv4Overhead = 28

// MinMTU is the smallest MTU a profile may set (the IPv4 minimum).
const MinMTU = 68

// DefaultQueueBytes is the drop-tail queue of every built-in profile, in IP
// bytes. [assumption] Operators do not publish eNB/modem buffer sizes; 64 KiB
// holds a full Q-Block2 burst of ten 1024-byte blocks several times over
// and is a few seconds of traffic at LTE-M rates.
const DefaultQueueBytes = 64 << 10

// Params describe one direction of a link. The zero value is a perfect
// link: unlimited rate, no delay, no loss, no MTU.
type Params struct {
	// Rate is the air rate in bit/s; 0 means unlimited (no serialization
	// time and no queue).
	Rate int64
	// Delay is the one-way delay added after a packet leaves the air.
	Delay time.Duration
	// Jitter spreads the delay uniformly over [Delay-Jitter, Delay+Jitter];
	// it may not exceed Delay.
	Jitter time.Duration
	// Reorder lets jitter deliver a packet before one sent earlier. When
	// false (the default) delivery order is send order.
	Reorder bool
	// Loss is the probability that a packet on the air is lost,
	// independently of every other packet.
	Loss float64
	// Burst is a Gilbert-Elliott model of losses that come in bursts; the
	// zero value is off.
	Burst GilbertElliott
	// MTU is the largest IP packet (UDP payload + IPv4Overhead) that
	// passes; larger ones are dropped. 0 means no limit.
	MTU int
	// QueueBytes bounds the IP bytes waiting for the air, drop-tail. 0 means
	// unlimited. It has no effect when Rate is 0.
	QueueBytes int
}

// GilbertElliott is a two-state loss model evaluated once per packet on the
// air: the channel moves from good to bad with probability PGoodBad and back
// with PBadGood, and a packet sent in the bad state is lost with probability
// LossBad. The good state adds no loss of its own (Params.Loss applies in
// both states). With LossBad = 1, losses come in runs of mean length
// 1/PBadGood.
type GilbertElliott struct {
	PGoodBad float64
	PBadGood float64
	LossBad  float64
}

// Enabled reports whether the model can lose packets.
func (g GilbertElliott) Enabled() bool { return g.PGoodBad > 0 && g.LossBad > 0 }

// StationaryLoss is the long-run fraction of packets the model loses:
// LossBad times the stationary probability of the bad state.
func (g GilbertElliott) StationaryLoss() float64 {
	if !g.Enabled() {
		return 0
	}
	return g.LossBad * g.PGoodBad / (g.PGoodBad + g.PBadGood)
}

// MeanBurst is the mean number of consecutive packets sent in the bad
// state, 1/PBadGood.
func (g GilbertElliott) MeanBurst() float64 {
	if !g.Enabled() {
		return 0
	}
	return 1 / g.PBadGood
}

// Validate reports the first field that is out of range.
func (g GilbertElliott) Validate() error {
	for _, f := range []struct {
		name string
		v    float64
	}{{"p_good_bad", g.PGoodBad}, {"p_bad_good", g.PBadGood}, {"loss_bad", g.LossBad}} {
		if !(f.v >= 0 && f.v <= 1) {
			return fmt.Errorf("burst: %s %v not in [0, 1]", f.name, f.v)
		}
	}
	if g.PGoodBad > 0 && g.PBadGood == 0 {
		return fmt.Errorf("burst: p_bad_good is 0, the bad state would never end")
	}
	return nil
}

// Validate reports the first field that is out of range.
func (p Params) Validate() error {
	switch {
	case p.Rate < 0:
		return fmt.Errorf("rate %d bit/s is negative", p.Rate)
	case p.Delay < 0:
		return fmt.Errorf("delay %v is negative", p.Delay)
	case p.Jitter < 0:
		return fmt.Errorf("jitter %v is negative", p.Jitter)
	case p.Jitter > p.Delay:
		return fmt.Errorf("jitter %v exceeds delay %v", p.Jitter, p.Delay)
	case !(p.Loss >= 0 && p.Loss <= 1):
		return fmt.Errorf("loss %v not in [0, 1]", p.Loss)
	case p.MTU != 0 && p.MTU < MinMTU:
		return fmt.Errorf("mtu %d below %d", p.MTU, MinMTU)
	case p.QueueBytes < 0:
		return fmt.Errorf("queue %d bytes is negative", p.QueueBytes)
	}
	return p.Burst.Validate()
}

// Profile is a named link: one Params per direction plus what the radio
// costs.
type Profile struct {
	Name string
	// Up is device to server, Down server to device.
	Up, Down Params
	// RRCInactivity is how long the radio stays connected after the last
	// packet in either direction. 0 counts only the time on the air.
	RRCInactivity time.Duration
	// CurrentMA and Volts are the connected-mode current draw and supply
	// voltage for Energy.
	CurrentMA float64
	Volts     float64
}

// Validate reports the first field that is out of range, naming it.
func (p Profile) Validate() error {
	if p.Name == "" {
		return fmt.Errorf("profile has no name")
	}
	if err := p.validateFields(); err != nil {
		return fmt.Errorf("profile %q: %w", p.Name, err)
	}
	return nil
}

func (p Profile) validateFields() error {
	if err := p.Up.Validate(); err != nil {
		return fmt.Errorf("up: %w", err)
	}
	if err := p.Down.Validate(); err != nil {
		return fmt.Errorf("down: %w", err)
	}
	switch {
	case p.RRCInactivity < 0:
		return fmt.Errorf("rrc_inactivity %v is negative", p.RRCInactivity)
	case !(p.CurrentMA >= 0):
		return fmt.Errorf("current %v mA is negative", p.CurrentMA)
	case !(p.Volts >= 0):
		return fmt.Errorf("voltage %v V is negative", p.Volts)
	}
	return nil
}

// Energy estimates the energy in joules the radio spends connected for the
// given time, with the profile's current and voltage.
func (p Profile) Energy(connected time.Duration) float64 {
	return EnergyJoules(connected, p.CurrentMA, p.Volts)
}

// EnergyJoules is the first-order energy estimate of links.md: connected
// time x connected current x voltage. currentmA is in milliamperes.
func EnergyJoules(connected time.Duration, currentmA, volts float64) float64 {
	return connected.Seconds() * currentmA / 1000 * volts
}

// Radio figures for the built-in profiles.
const (
	// Connected current at 0-10 dBm on an nRF9160 (links.md: LTE-M ~45-55
	// mA, NB-IoT ~35-45 mA) and its supply voltage.
	currentLTEM  = 50
	currentNBIoT = 40
	voltsCell    = 3.7
	// [assumption] links.md has no Wi-Fi figure; 80 mA is a typical
	// low-power 802.11n module mixing receive and transmit.
	currentWiFi = 80
	// [assumption] RRC inactivity timers are set by the operator and not
	// given in links.md; 10 s (LTE-M) and 20 s (NB-IoT) are common network
	// settings. Wi-Fi has no RRC state: only air time counts.
	rrcLTEM  = 10 * time.Second
	rrcNBIoT = 20 * time.Second
)

// builtins is the profile table of links.md, in its order. The RTT is split
// evenly into two one-way delays and the table's loss is random loss; no
// burst loss or jitter is added.
var builtins = []Profile{
	symmetric("wifi", 10_000_000, 30*time.Millisecond, 0.001, 1500, 0, currentWiFi),
	symmetric("catm1", 300_000, 150*time.Millisecond, 0.005, 1358, rrcLTEM, currentLTEM),
	symmetric("catm1-typical", 100_000, 300*time.Millisecond, 0.01, 1358, rrcLTEM, currentLTEM),
	symmetric("nbiot", 20_000, 1500*time.Millisecond, 0.01, 1358, rrcNBIoT, currentNBIoT),
	symmetric("nbiot-ce1", 5_000, 3*time.Second, 0.02, 1358, rrcNBIoT, currentNBIoT),
	func() Profile {
		p := symmetric("nbiot-ce2", 500, 8*time.Second, 0.05, 680, rrcNBIoT, currentNBIoT)
		p.Up.Rate = 300
		return p
	}(),
}

func symmetric(name string, rate int64, rtt time.Duration, loss float64, mtu int, rrc time.Duration, mA float64) Profile {
	d := Params{Rate: rate, Delay: rtt / 2, Loss: loss, MTU: mtu, QueueBytes: DefaultQueueBytes}
	return Profile{Name: name, Up: d, Down: d, RRCInactivity: rrc, CurrentMA: mA, Volts: voltsCell}
}

// Lookup returns the built-in profile with the given name.
func Lookup(name string) (Profile, bool) {
	for _, p := range builtins {
		if p.Name == name {
			return p, true
		}
	}
	return Profile{}, false
}

// Names lists the built-in profiles from the fastest to the slowest, as
// links.md does.
func Names() []string {
	names := make([]string, len(builtins))
	for i, p := range builtins {
		names[i] = p.Name
	}
	return names
}
