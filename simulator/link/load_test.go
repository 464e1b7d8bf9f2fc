package link

import (
	"os"
	"strings"
	"testing"
	"time"
)

func TestLoadProfilesExample(t *testing.T) {
	f, err := os.Open("testdata/profiles.yaml")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got, err := LoadProfiles(f)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 5 {
		t.Errorf("%d profiles, want 5", len(got))
	}

	nbiot, _ := Lookup("nbiot")
	nbiot.RRCInactivity = 10 * time.Second
	if got["nbiot"] != nbiot {
		t.Errorf("nbiot = %+v, want the built-in with a 10s RRC timer", got["nbiot"])
	}

	bursty := nbiot // based on the file's nbiot
	bursty.Name = "nbiot-bursty"
	for _, d := range []*Params{&bursty.Up, &bursty.Down} {
		d.Burst = GilbertElliott{PGoodBad: 0.005, PBadGood: 0.25, LossBad: 1}
	}
	if got["nbiot-bursty"] != bursty {
		t.Errorf("nbiot-bursty = %+v, want %+v", got["nbiot-bursty"], bursty)
	}

	jitter, _ := Lookup("catm1")
	jitter.Name = "catm1-jitter"
	jitter.Up.Jitter, jitter.Down.Jitter = 30*time.Millisecond, 30*time.Millisecond
	jitter.Down.Rate = 375_000
	if got["catm1-jitter"] != jitter {
		t.Errorf("catm1-jitter = %+v, want %+v", got["catm1-jitter"], jitter)
	}

	d := Params{Rate: 1_000_000, Delay: 50 * time.Millisecond, Loss: 0.002, MTU: 1280, QueueBytes: 16384}
	lab := Profile{Name: "lab", Up: d, Down: d, RRCInactivity: 5 * time.Second, CurrentMA: 50, Volts: 3.7}
	if got["lab"] != lab {
		t.Errorf("lab = %+v, want %+v", got["lab"], lab)
	}

	edge, _ := Lookup("nbiot-ce2")
	edge.Name = "nbiot-ce2-edge"
	edge.Up.Rate, edge.Up.Loss = 250, 0.1
	if got["nbiot-ce2-edge"] != edge {
		t.Errorf("nbiot-ce2-edge = %+v, want %+v", got["nbiot-ce2-edge"], edge)
	}
}

func TestLoadProfilesUnits(t *testing.T) {
	tests := []struct {
		yaml string
		want func(*Profile)
	}{
		{"rate: 20kbit", func(p *Profile) { p.Up.Rate, p.Down.Rate = 20_000, 20_000 }},
		{"rate: 20kbit/s", func(p *Profile) { p.Up.Rate, p.Down.Rate = 20_000, 20_000 }},
		{"rate: 1.5Mbit/s", func(p *Profile) { p.Up.Rate, p.Down.Rate = 1_500_000, 1_500_000 }},
		{"rate: 500bps", func(p *Profile) { p.Up.Rate, p.Down.Rate = 500, 500 }},
		{"rate: 2 mbit", func(p *Profile) { p.Up.Rate, p.Down.Rate = 2_000_000, 2_000_000 }},
		{"rate: 0", func(p *Profile) {}},
		{"delay: 1.5s", func(p *Profile) { p.Up.Delay, p.Down.Delay = 1500*time.Millisecond, 1500*time.Millisecond }},
		{"rtt: 300ms", func(p *Profile) { p.Up.Delay, p.Down.Delay = 150*time.Millisecond, 150*time.Millisecond }},
		{"loss: 1%", func(p *Profile) { p.Up.Loss, p.Down.Loss = 0.01, 0.01 }},
		{"loss: 0.25", func(p *Profile) { p.Up.Loss, p.Down.Loss = 0.25, 0.25 }},
		{"loss: 0.5 %", func(p *Profile) { p.Up.Loss, p.Down.Loss = 0.005, 0.005 }},
		{"mtu: 1358", func(p *Profile) { p.Up.MTU, p.Down.MTU = 1358, 1358 }},
		{"queue: 64KiB", func(p *Profile) { p.Up.QueueBytes, p.Down.QueueBytes = 65536, 65536 }},
		{"queue: 16kB", func(p *Profile) { p.Up.QueueBytes, p.Down.QueueBytes = 16000, 16000 }},
		{"queue: 1500B", func(p *Profile) { p.Up.QueueBytes, p.Down.QueueBytes = 1500, 1500 }},
		{"current: 0.1A", func(p *Profile) { p.CurrentMA = 100 }},
		{"voltage: 3.3V", func(p *Profile) { p.Volts = 3.3 }},
		{"rrc_inactivity: 20s", func(p *Profile) { p.RRCInactivity = 20 * time.Second }},
		{"delay: 1s\njitter: 100ms\nreorder: true", func(p *Profile) {
			for _, d := range []*Params{&p.Up, &p.Down} {
				d.Delay, d.Jitter, d.Reorder = time.Second, 100*time.Millisecond, true
			}
		}},
		{"burst: {p_good_bad: 1%, p_bad_good: 50%, loss_bad: 80%}", func(p *Profile) {
			p.Up.Burst = GilbertElliott{PGoodBad: 0.01, PBadGood: 0.5, LossBad: 0.8}
			p.Down.Burst = p.Up.Burst
		}},
		{"rate: 1Mbit\nup: {rate: 100kbit}", func(p *Profile) { p.Up.Rate, p.Down.Rate = 100_000, 1_000_000 }},
		{"rtt: 2s\ndown: {delay: 1.5s}", func(p *Profile) { p.Up.Delay, p.Down.Delay = time.Second, 1500*time.Millisecond }},
	}
	for _, tt := range tests {
		t.Run(tt.yaml, func(t *testing.T) {
			in := "p:\n  " + strings.ReplaceAll(tt.yaml, "\n", "\n  ") + "\n"
			got, err := LoadProfiles(strings.NewReader(in))
			if err != nil {
				t.Fatal(err)
			}
			want := Profile{Name: "p"}
			tt.want(&want)
			if got["p"] != want {
				t.Errorf("got %+v, want %+v", got["p"], want)
			}
		})
	}
}

func TestLoadProfilesBases(t *testing.T) {
	in := `
c: {base: b, loss: 3%}
b: {base: a, down: {mtu: 1280}}
a: {base: catm1, rtt: 1s}
`
	got, err := LoadProfiles(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	want, _ := Lookup("catm1")
	want.Name = "c"
	want.Up.Delay, want.Down.Delay = 500*time.Millisecond, 500*time.Millisecond
	want.Down.MTU = 1280
	want.Up.Loss, want.Down.Loss = 0.03, 0.03
	if got["c"] != want {
		t.Errorf("c = %+v, want %+v", got["c"], want)
	}
	// A burst override keeps the base's other burst fields.
	got, err = LoadProfiles(strings.NewReader(`
a: {burst: {p_good_bad: 1%, p_bad_good: 10%, loss_bad: 50%}}
b: {base: a, up: {burst: {p_bad_good: 20%}}}
`))
	if err != nil {
		t.Fatal(err)
	}
	if g := got["b"].Up.Burst; g != (GilbertElliott{PGoodBad: 0.01, PBadGood: 0.2, LossBad: 0.5}) {
		t.Errorf("b up burst %+v", g)
	}
}

func TestLoadProfilesEmpty(t *testing.T) {
	for _, in := range []string{"", "# nothing\n"} {
		got, err := LoadProfiles(strings.NewReader(in))
		if err != nil || len(got) != 0 {
			t.Errorf("%q: %v, %v", in, got, err)
		}
	}
}

func TestLoadProfilesRejects(t *testing.T) {
	tests := []struct {
		name, yaml, want string
	}{
		{"not a mapping", "- a\n- b\n", "want a mapping of profile names"},
		{"profile not a mapping", "p: 3\n", `profile "p": line 1: want a mapping`},
		{"bad yaml", "p: {rate: [\n", "load profiles"},
		{"unknown key", "p:\n  rat: 20kbit\n", `profile "p": line 2: unknown key "rat"`},
		{"unknown key in up", "p:\n  up:\n    delya: 1s\n", `up: line 3: unknown key "delya"`},
		{"profile key in up", "p:\n  up: {rtt: 1s}\n", `unknown key "rtt"`},
		{"unknown burst key", "p: {burst: {p: 1%}}\n", `burst: line 1: unknown key "p"`},
		{"duplicate key", "p:\n  loss: 1%\n  loss: 2%\n", "loss given twice"},
		{"duplicate profile", "p: {}\np: {}\n", "defined twice"},
		{"bad name", "\"a b\": {}\n", "profile name"},
		{"unknown base", "p: {base: lora}\n", `unknown base "lora" (built-ins: wifi, catm1`},
		{"cycle", "a: {base: b}\nb: {base: a}\n", "base cycle"},
		{"rate without unit", "p: {rate: 20000}\n", `rate "20000": no unit`},
		{"rate in bytes", "p: {rate: 20kB/s}\n", `unknown unit "kB/s"`},
		{"rate negative", "p: {rate: -5kbit}\n", "negative"},
		{"rate not a number", "p: {rate: fast}\n", "not a number"},
		{"delay without unit", "p: {delay: 150}\n", "want a duration"},
		{"delay negative", "p: {delay: -1s}\n", "negative"},
		{"loss over 100%", "p: {loss: 150%}\n", `loss "150%": not in [0%, 100%]`},
		{"loss not a number", "p: {loss: high}\n", "want a percentage"},
		{"mtu fractional", "p: {mtu: 1358.5}\n", "whole number"},
		{"mtu too small", "p: {mtu: 40}\n", "mtu 40 below 68"},
		{"queue unit", "p: {queue: 64Kb}\n", `unknown unit "Kb"`},
		{"jitter over delay", "p: {base: catm1, jitter: 100ms}\n", "jitter 100ms exceeds delay 75ms"},
		{"rtt and delay", "p: {rtt: 1s, delay: 1s}\n", "rtt and delay both given"},
		{"list value", "p: {rate: [1, 2]}\n", "rate: want a single value"},
		{"reorder not bool", "p: {reorder: maybe}\n", "reorder"},
		{"current without unit", "p: {current: 50}\n", "want a current"},
		{"voltage unit", "p: {voltage: 3.7mV}\n", "want a voltage"},
		{"burst never ends", "p: {burst: {p_good_bad: 1%}}\n", "never end"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := LoadProfiles(strings.NewReader(tt.yaml))
			if err == nil {
				t.Fatalf("accepted: %+v", got)
			}
			t.Log(err)
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q, want it to contain %q", err, tt.want)
			}
		})
	}
}
