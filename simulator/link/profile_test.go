package link

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"
)

func formatRate(r int64) string { return fmt.Sprintf("%dbit", r) }

func formatFraction(f float64) string { return fmt.Sprintf("%g%%", f*100) }

// The built-in profiles follow the table of links.md.
func TestBuiltins(t *testing.T) {
	tests := []struct {
		name      string
		down, up  int64
		rtt       time.Duration
		loss      float64
		mtu       int
		rrc       time.Duration
		currentMA float64
	}{
		{"wifi", 10_000_000, 10_000_000, 30 * time.Millisecond, 0.001, 1500, 0, 80},
		{"catm1", 300_000, 300_000, 150 * time.Millisecond, 0.005, 1358, 10 * time.Second, 50},
		{"catm1-typical", 100_000, 100_000, 300 * time.Millisecond, 0.01, 1358, 10 * time.Second, 50},
		{"nbiot", 20_000, 20_000, 1500 * time.Millisecond, 0.01, 1358, 20 * time.Second, 40},
		{"nbiot-ce1", 5_000, 5_000, 3 * time.Second, 0.02, 1358, 20 * time.Second, 40},
		{"nbiot-ce2", 500, 300, 8 * time.Second, 0.05, 680, 20 * time.Second, 40},
	}
	var names []string
	for _, tt := range tests {
		names = append(names, tt.name)
		t.Run(tt.name, func(t *testing.T) {
			p, ok := Lookup(tt.name)
			if !ok {
				t.Fatal("not found")
			}
			if err := p.Validate(); err != nil {
				t.Fatal(err)
			}
			if p.Name != tt.name || p.Down.Rate != tt.down || p.Up.Rate != tt.up {
				t.Errorf("name %q rates down %d up %d", p.Name, p.Down.Rate, p.Up.Rate)
			}
			for dir, d := range map[string]Params{"up": p.Up, "down": p.Down} {
				if d.Delay != tt.rtt/2 || d.Loss != tt.loss || d.MTU != tt.mtu || d.Jitter != 0 ||
					d.Burst != (GilbertElliott{}) || d.QueueBytes != DefaultQueueBytes || d.Reorder {
					t.Errorf("%s: %+v", dir, d)
				}
			}
			if p.RRCInactivity != tt.rrc || p.CurrentMA != tt.currentMA || p.Volts != 3.7 {
				t.Errorf("rrc %v current %v volts %v", p.RRCInactivity, p.CurrentMA, p.Volts)
			}
		})
	}
	if got := Names(); !slices.Equal(got, names) {
		t.Errorf("Names() = %v, want %v", got, names)
	}
	if _, ok := Lookup("lora"); ok {
		t.Error("Lookup found an unknown profile")
	}
	// Lookup returns a copy.
	p, _ := Lookup("nbiot")
	p.Up.Rate = 1
	if q, _ := Lookup("nbiot"); q.Up.Rate != 20_000 {
		t.Error("changing a looked-up profile changed the built-in")
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Profile)
		want string // in the error; "" for none
	}{
		{"ok", func(*Profile) {}, ""},
		{"no name", func(p *Profile) { p.Name = "" }, "no name"},
		{"negative rate", func(p *Profile) { p.Up.Rate = -1 }, "up: rate"},
		{"negative delay", func(p *Profile) { p.Down.Delay = -1 }, "down: delay"},
		{"negative jitter", func(p *Profile) { p.Down.Jitter = -1 }, "down: jitter"},
		{"jitter over delay", func(p *Profile) { p.Up.Jitter = time.Second }, "up: jitter 1s exceeds delay 750ms"},
		{"loss over 1", func(p *Profile) { p.Up.Loss = 1.5 }, "up: loss"},
		{"loss NaN", func(p *Profile) { p.Up.Loss = math.NaN() }, "up: loss"},
		{"small mtu", func(p *Profile) { p.Down.MTU = 40 }, "down: mtu 40 below 68"},
		{"negative queue", func(p *Profile) { p.Down.QueueBytes = -1 }, "down: queue"},
		{"burst probability", func(p *Profile) { p.Up.Burst.PGoodBad = 2 }, "up: burst: p_good_bad"},
		{"burst never ends", func(p *Profile) { p.Up.Burst = GilbertElliott{PGoodBad: 0.1, LossBad: 1} }, "never end"},
		{"negative rrc", func(p *Profile) { p.RRCInactivity = -1 }, "rrc_inactivity"},
		{"negative current", func(p *Profile) { p.CurrentMA = -1 }, "current"},
		{"negative voltage", func(p *Profile) { p.Volts = -1 }, "voltage"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, _ := Lookup("nbiot")
			tt.edit(&p)
			err := p.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("unexpected error %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("error %v, want one containing %q", err, tt.want)
			}
			if tt.want != "" {
				if _, err := NewLink(p, 1); err == nil {
					t.Error("NewLink accepted an invalid profile")
				}
			}
		})
	}
	if _, err := NewPipe(Params{Loss: 2}, 1); err == nil {
		t.Error("NewPipe accepted loss 2")
	}
}

func TestEnergy(t *testing.T) {
	within(t, "EnergyJoules", EnergyJoules(time.Hour, 40, 3.7), 3600*0.040*3.7, 1e-9)
	p, _ := Lookup("catm1")
	within(t, "catm1 Energy(1m)", p.Energy(time.Minute), 60*0.050*3.7, 1e-9)
	if EnergyJoules(0, 50, 3.7) != 0 {
		t.Error("no connected time should cost nothing")
	}
}

func TestGilbertElliott(t *testing.T) {
	g := GilbertElliott{PGoodBad: 0.01, PBadGood: 0.24, LossBad: 0.5}
	within(t, "stationary loss", g.StationaryLoss(), 0.5*0.01/0.25, 1e-12)
	within(t, "mean burst", g.MeanBurst(), 1/0.24, 1e-12)
	var off GilbertElliott
	if off.Enabled() || off.StationaryLoss() != 0 || off.MeanBurst() != 0 {
		t.Error("zero model is not off")
	}
}
