package link

import (
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// LoadProfiles reads custom profiles from YAML: a mapping of profile names
// to profiles (testdata/profiles.yaml is an example). A profile's keys are:
//
//	base            a profile to start from: another one in the same input,
//	                or a built-in (a profile may name itself to extend the
//	                built-in of that name); without it, a perfect link
//	rtt             round-trip time, split evenly into the two one-way delays
//	rrc_inactivity  duration the radio stays connected after the last packet
//	current         connected current, "50mA" or "0.05A"
//	voltage         supply voltage, "3.7V"
//	up, down        keys of one direction, applied after those for both
//
// and, for both directions at once or inside up or down:
//
//	rate     bit/s: "20kbit", "300kbit/s", "1.5Mbit/s", "500bps"; 0 is unlimited
//	delay    one-way delay, a Go duration: "750ms", "1.5s"
//	jitter   delay varies uniformly by up to this much either way
//	reorder  true lets jitter reorder packets
//	loss     random loss: "1%" or 0.01
//	burst    Gilbert-Elliott loss: {p_good_bad: 1%, p_bad_good: 25%, loss_bad: 100%};
//	         loss_bad defaults to 100%
//	mtu      largest IP packet in bytes: 1358
//	queue    drop-tail queue in IP bytes: 65536, "64KiB", "16kB"; 0 is unlimited
//
// Unknown keys, unknown bases, cycles and values out of range are errors.
// Keys not given keep the base's value.
func LoadProfiles(r io.Reader) (map[string]Profile, error) {
	var doc yaml.Node
	if err := yaml.NewDecoder(r).Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return map[string]Profile{}, nil
		}
		return nil, fmt.Errorf("load profiles: %w", err)
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	if root.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("load profiles: line %d: want a mapping of profile names to profiles", root.Line)
	}
	specs := make(map[string]*spec)
	var order []string
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		name := k.Value
		if err := checkName(k); err != nil {
			return nil, fmt.Errorf("load profiles: %w", err)
		}
		if _, dup := specs[name]; dup {
			return nil, fmt.Errorf("load profiles: line %d: profile %q defined twice", k.Line, name)
		}
		s, err := parseSpec(v)
		if err != nil {
			return nil, fmt.Errorf("load profiles: profile %q: %w", name, err)
		}
		specs[name] = s
		order = append(order, name)
	}
	res := resolver{specs: specs, done: make(map[string]Profile)}
	for _, name := range order {
		if _, err := res.resolve(name); err != nil {
			return nil, fmt.Errorf("load profiles: %w", err)
		}
	}
	return res.done, nil
}

func checkName(k *yaml.Node) error {
	if k.Kind != yaml.ScalarNode || k.Value == "" {
		return fmt.Errorf("line %d: a profile name must be a non-empty string", k.Line)
	}
	for _, c := range k.Value {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return fmt.Errorf("line %d: profile name %q: use letters, digits, '-', '_' and '.'", k.Line, k.Value)
		}
	}
	return nil
}

// spec is a profile as written: nil fields were not given.
type spec struct {
	base             string
	baseLine         int
	rtt, rrc         *time.Duration
	current, voltage *float64
	both, up, down   dirSpec
	line             int
}

type dirSpec struct {
	rate          *int64
	delay, jitter *time.Duration
	reorder       *bool
	loss          *float64
	burst         *burstSpec
	mtu, queue    *int
}

type burstSpec struct {
	pGoodBad, pBadGood, lossBad *float64
}

// each calls fn for every key and value of a mapping node, refusing
// duplicate keys.
func each(n *yaml.Node, fn func(key string, k, v *yaml.Node) error) error {
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: want a mapping", n.Line)
	}
	seen := make(map[string]bool)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			return fmt.Errorf("line %d: want a key", k.Line)
		}
		if seen[k.Value] {
			return fmt.Errorf("line %d: %s given twice", k.Line, k.Value)
		}
		seen[k.Value] = true
		if err := fn(k.Value, k, v); err != nil {
			return err
		}
	}
	return nil
}

func parseSpec(n *yaml.Node) (*spec, error) {
	s := &spec{line: n.Line}
	err := each(n, func(key string, k, v *yaml.Node) error {
		var err error
		switch key {
		case "base":
			s.base, err = scalar(v, key)
			s.baseLine = v.Line
		case "rtt":
			s.rtt, err = parse(v, key, parseDuration)
		case "rrc_inactivity":
			s.rrc, err = parse(v, key, parseDuration)
		case "current":
			s.current, err = parse(v, key, parseCurrent)
		case "voltage":
			s.voltage, err = parse(v, key, parseVoltage)
		case "up", "down":
			d := &s.up
			if key == "down" {
				d = &s.down
			}
			err = each(v, func(key string, k, v *yaml.Node) error {
				known, err := d.set(key, v)
				if err == nil && !known {
					err = fmt.Errorf("line %d: unknown key %q", k.Line, key)
				}
				return err
			})
			if err != nil {
				err = fmt.Errorf("%s: %w", key, err)
			}
		default:
			var known bool
			if known, err = s.both.set(key, v); err == nil && !known {
				err = fmt.Errorf("line %d: unknown key %q", k.Line, key)
			}
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	if s.rtt != nil && s.both.delay != nil {
		return nil, fmt.Errorf("line %d: rtt and delay both given; give one", n.Line)
	}
	return s, nil
}

// set parses a direction key into d; known is false for a key that is not
// a direction key.
func (d *dirSpec) set(key string, v *yaml.Node) (known bool, err error) {
	switch key {
	case "rate":
		d.rate, err = parse(v, key, parseRate)
	case "delay":
		d.delay, err = parse(v, key, parseDuration)
	case "jitter":
		d.jitter, err = parse(v, key, parseDuration)
	case "reorder":
		d.reorder, err = parse(v, key, parseBool)
	case "loss":
		d.loss, err = parse(v, key, parseFraction)
	case "mtu":
		d.mtu, err = parse(v, key, parseBytes)
	case "queue":
		d.queue, err = parse(v, key, parseBytes)
	case "burst":
		b := &burstSpec{}
		err = each(v, func(key string, k, v *yaml.Node) error {
			var err error
			switch key {
			case "p_good_bad":
				b.pGoodBad, err = parse(v, key, parseFraction)
			case "p_bad_good":
				b.pBadGood, err = parse(v, key, parseFraction)
			case "loss_bad":
				b.lossBad, err = parse(v, key, parseFraction)
			default:
				err = fmt.Errorf("line %d: unknown key %q", k.Line, key)
			}
			return err
		})
		if err != nil {
			err = fmt.Errorf("burst: %w", err)
		}
		d.burst = b
	default:
		return false, nil
	}
	return true, err
}

func (d *dirSpec) apply(p *Params) {
	setIf(&p.Rate, d.rate)
	setIf(&p.Delay, d.delay)
	setIf(&p.Jitter, d.jitter)
	setIf(&p.Reorder, d.reorder)
	setIf(&p.Loss, d.loss)
	setIf(&p.MTU, d.mtu)
	setIf(&p.QueueBytes, d.queue)
	if b := d.burst; b != nil {
		setIf(&p.Burst.PGoodBad, b.pGoodBad)
		setIf(&p.Burst.PBadGood, b.pBadGood)
		setIf(&p.Burst.LossBad, b.lossBad)
		if b.lossBad == nil && p.Burst.LossBad == 0 {
			p.Burst.LossBad = 1
		}
	}
}

func setIf[T any](dst *T, v *T) {
	if v != nil {
		*dst = *v
	}
}

type resolver struct {
	specs map[string]*spec
	done  map[string]Profile
	path  []string // profiles being resolved, each the base of the one before
}

func (r *resolver) resolve(name string) (Profile, error) {
	if p, ok := r.done[name]; ok {
		return p, nil
	}
	if i := slices.Index(r.path, name); i >= 0 {
		return Profile{}, fmt.Errorf("profile %q: base cycle %s -> %s", name, strings.Join(r.path[i:], " -> "), name)
	}
	r.path = append(r.path, name)
	defer func() { r.path = r.path[:len(r.path)-1] }()
	s := r.specs[name]
	var p Profile
	if s.base != "" {
		if _, ok := r.specs[s.base]; ok && s.base != name {
			base, err := r.resolve(s.base)
			if err != nil {
				return Profile{}, err
			}
			p = base
		} else if base, ok := Lookup(s.base); ok {
			p = base
		} else {
			return Profile{}, fmt.Errorf("profile %q: line %d: unknown base %q (built-ins: %s)",
				name, s.baseLine, s.base, strings.Join(Names(), ", "))
		}
	}
	p.Name = name
	if s.rtt != nil {
		p.Up.Delay, p.Down.Delay = *s.rtt/2, *s.rtt/2
	}
	setIf(&p.RRCInactivity, s.rrc)
	setIf(&p.CurrentMA, s.current)
	setIf(&p.Volts, s.voltage)
	s.both.apply(&p.Up)
	s.both.apply(&p.Down)
	s.up.apply(&p.Up)
	s.down.apply(&p.Down)
	if err := p.validateFields(); err != nil {
		return Profile{}, fmt.Errorf("profile %q: line %d: %w", name, s.line, err)
	}
	r.done[name] = p
	return p, nil
}

func scalar(v *yaml.Node, key string) (string, error) {
	if v.Kind != yaml.ScalarNode {
		return "", fmt.Errorf("line %d: %s: want a single value", v.Line, key)
	}
	return strings.TrimSpace(v.Value), nil
}

// parse parses a scalar node with fn, naming the key and line on error.
func parse[T any](v *yaml.Node, key string, fn func(string) (T, error)) (*T, error) {
	s, err := scalar(v, key)
	if err != nil {
		return nil, err
	}
	x, err := fn(s)
	if err != nil {
		return nil, fmt.Errorf("line %d: %s %q: %w", v.Line, key, s, err)
	}
	return &x, nil
}

// splitUnit splits "1.5Mbit/s" into 1.5 and "Mbit/s".
func splitUnit(s string) (float64, string, error) {
	i := strings.IndexFunc(s, func(c rune) bool {
		return !(c >= '0' && c <= '9' || c == '.' || c == '-' || c == '+')
	})
	if i < 0 {
		i = len(s)
	}
	num, unit := s[:i], strings.TrimSpace(s[i:])
	x, err := strconv.ParseFloat(num, 64)
	if err != nil || math.IsInf(x, 0) || math.IsNaN(x) {
		return 0, "", fmt.Errorf("not a number with a unit")
	}
	if x < 0 {
		return 0, "", fmt.Errorf("negative")
	}
	return x, unit, nil
}

func parseRate(s string) (int64, error) {
	if s == "0" || s == "unlimited" {
		return 0, nil
	}
	x, unit, err := splitUnit(s)
	if err != nil {
		return 0, err
	}
	u := strings.TrimSuffix(strings.ToLower(unit), "/s")
	var mult float64
	switch u {
	case "bit", "bps":
		mult = 1
	case "kbit", "kbps":
		mult = 1e3
	case "mbit", "mbps":
		mult = 1e6
	case "gbit", "gbps":
		mult = 1e9
	case "":
		return 0, fmt.Errorf("no unit: write e.g. 20kbit/s")
	default:
		return 0, fmt.Errorf("unknown unit %q: use bit, kbit, Mbit or Gbit (per second)", unit)
	}
	r := math.Round(x * mult)
	if r < 1 || r > 1e12 {
		return 0, fmt.Errorf("out of range [1bit/s, 1000Gbit/s]")
	}
	return int64(r), nil
}

func parseBool(s string) (bool, error) {
	switch s {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, fmt.Errorf("want true or false")
}

func parseDuration(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("want a duration such as 150ms or 1.5s")
	}
	if d < 0 {
		return 0, fmt.Errorf("negative")
	}
	return d, nil
}

// parseFraction reads "1%" or 0.01.
func parseFraction(s string) (float64, error) {
	pct := strings.HasSuffix(s, "%")
	x, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(s, "%")), 64)
	if err != nil {
		return 0, fmt.Errorf("want a percentage such as 1%% or a fraction such as 0.01")
	}
	if pct {
		x /= 100
	}
	if !(x >= 0 && x <= 1) {
		return 0, fmt.Errorf("not in [0%%, 100%%]")
	}
	return x, nil
}

func parseBytes(s string) (int, error) {
	x, unit, err := splitUnit(s)
	if err != nil {
		return 0, err
	}
	var mult float64
	switch unit {
	case "", "B":
		mult = 1
	case "kB", "KB":
		mult = 1e3
	case "KiB":
		mult = 1 << 10
	case "MB":
		mult = 1e6
	case "MiB":
		mult = 1 << 20
	default:
		return 0, fmt.Errorf("unknown unit %q: use B, kB, KiB, MB or MiB", unit)
	}
	n := x * mult
	if n != math.Trunc(n) || n > 1<<30 {
		return 0, fmt.Errorf("not a whole number of bytes up to 1GiB")
	}
	return int(n), nil
}

func parseCurrent(s string) (float64, error) {
	x, unit, err := splitUnit(s)
	if err != nil {
		return 0, err
	}
	switch unit {
	case "mA":
		return x, nil
	case "A":
		return x * 1000, nil
	}
	return 0, fmt.Errorf("want a current such as 50mA")
}

func parseVoltage(s string) (float64, error) {
	x, unit, err := splitUnit(s)
	if err != nil {
		return 0, err
	}
	if unit != "V" {
		return 0, fmt.Errorf("want a voltage such as 3.7V")
	}
	return x, nil
}
