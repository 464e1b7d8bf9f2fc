package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"runtime"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/fotahub/fota/simulator"
	"github.com/fotahub/fota/simulator/link"
)

// fleetConfig is the YAML file of fotasim fleet (configs/fleet.yaml).
type fleetConfig struct {
	Server       string             `yaml:"server"`
	Count        int                `yaml:"count"`
	Endpoint     string             `yaml:"endpoint"`
	PSKIdentity  string             `yaml:"psk_identity"`
	PSKKey       string             `yaml:"psk_key"`
	Client       string             `yaml:"client"`
	Firmware     string             `yaml:"firmware"`
	Version      string             `yaml:"version"`
	Class        string             `yaml:"class"`
	TrustKey     string             `yaml:"trust_key"`
	LwM2M        string             `yaml:"lwm2m"`
	Queue        bool               `yaml:"queue"`
	Lifetime     time.Duration      `yaml:"lifetime"`
	Awake        time.Duration      `yaml:"awake"`
	Links        map[string]float64 `yaml:"links"`
	LinksFile    string             `yaml:"links_file"`
	Ramp         float64            `yaml:"ramp"`
	Duration     time.Duration      `yaml:"duration"`
	RandomFaults map[string]float64 `yaml:"random_faults"`
	Output       string             `yaml:"output"`
	Provision    *struct {
		API       string `yaml:"api"`
		TokenFile string `yaml:"token_file"`
	} `yaml:"provision"`
}

func loadFleetConfig(file string) (fleetConfig, error) {
	c := fleetConfig{Server: "coaps://127.0.0.1:5684", Client: "native", Count: 10, Endpoint: "sim-%05d",
		PSKIdentity: "sim-%05d", PSKKey: "sim-key-%05d", Version: "1.0.0", LwM2M: "1.1", Lifetime: 300 * time.Second,
		Awake: 93 * time.Second, Links: map[string]float64{"wifi": 1}, Ramp: 50}
	b, err := os.ReadFile(file)
	if err != nil {
		return c, err
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return c, fmt.Errorf("%s: %w", file, err)
	}
	switch {
	case c.Count < 1:
		return c, fmt.Errorf("%s: count must be at least 1", file)
	case c.Firmware == "":
		return c, fmt.Errorf("%s: firmware is required", file)
	case c.Ramp <= 0:
		return c, fmt.Errorf("%s: ramp must be positive", file)
	case len(c.Links) == 0:
		return c, fmt.Errorf("%s: links is empty", file)
	}
	if _, err := simulator.ParseClient(c.Client); err != nil {
		return c, fmt.Errorf("%s: client: %w", file, err)
	}
	return c, nil
}

// member is one device of the fleet.
type member struct {
	dev   *simulator.Device
	relay *link.Relay
	link  string
	err   error
}

func runFleet(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("fotasim fleet", flag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.String("config", "", "fleet YAML file (see configs/fleet.yaml)")
	progress := fs.Duration("progress", 5*time.Second, "how often to print progress on stderr")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *file == "" {
		return errors.New("--config is required")
	}
	cfg, err := loadFleetConfig(*file)
	if err != nil {
		return err
	}
	out := stdout
	if cfg.Output != "" {
		f, err := os.Create(cfg.Output)
		if err != nil {
			return err
		}
		defer f.Close()
		out = f
	}
	raiseFileLimit()
	members, err := buildFleet(cfg, stderr)
	if err != nil {
		return err
	}
	if cfg.Provision != nil {
		if err := provision(ctx, cfg, members); err != nil {
			return err
		}
	}
	if cfg.Duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cfg.Duration)
		defer cancel()
	}
	start := time.Now()
	var wg sync.WaitGroup
	ticker := time.NewTicker(time.Duration(float64(time.Second) / cfg.Ramp))
	var peak peakTally
	go reportProgress(ctx, stderr, members, start, *progress, &peak)
	for _, m := range members {
		select {
		case <-ticker.C:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			m.err = m.dev.Run(ctx)
		}()
	}
	ticker.Stop()
	<-ctx.Done()
	wg.Wait()
	return writeOutcomes(out, members, start, peak.get())
}

func buildFleet(cfg fleetConfig, stderr io.Writer) ([]*member, error) {
	names := make([]string, 0, len(cfg.Links))
	total := 0.0
	for n, w := range cfg.Links {
		names = append(names, n)
		total += w
	}
	sort.Strings(names)
	image, err := os.ReadFile(cfg.Firmware)
	if err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(1, 2))
	members := make([]*member, 0, cfg.Count)
	for i := range cfg.Count {
		pick, x := names[0], rng.Float64()*total
		for _, n := range names {
			if x -= cfg.Links[n]; x < 0 {
				pick = n
				break
			}
		}
		f := deviceFlags{endpoint: fmt.Sprintf(cfg.Endpoint, i), identity: fmt.Sprintf(cfg.PSKIdentity, i),
			keyHex: hex.EncodeToString([]byte(fmt.Sprintf(cfg.PSKKey, i))), server: cfg.Server,
			linkName: pick, linksFile: cfg.LinksFile, client: cfg.Client, firmware: cfg.Firmware, version: cfg.Version,
			class: cfg.Class, trustKey: cfg.TrustKey, lwm2m: cfg.LwM2M, queue: cfg.Queue,
			lifetime: cfg.Lifetime, awake: cfg.Awake, logLevel: "error", protocols: "0,1", delivery: 2}
		d, relay, err := buildDevice(f, image, uint64(i)+1, stderr)
		if err != nil {
			closeFleet(members)
			return nil, fmt.Errorf("device %d: %w", i, err)
		}
		for name, p := range cfg.RandomFaults {
			fault, err := simulator.ParseFault(name)
			if err != nil {
				closeFleet(members)
				return nil, err
			}
			d.SetRandomFault(fault, p)
		}
		members = append(members, &member{dev: d, relay: relay, link: pick})
	}
	return members, nil
}

func closeFleet(ms []*member) {
	for _, m := range ms {
		if m.relay != nil {
			_ = m.relay.Close()
		}
	}
}

// provision adds every device to fotad through its admin API.
func provision(ctx context.Context, cfg fleetConfig, ms []*member) error {
	token, err := os.ReadFile(cfg.Provision.TokenFile)
	if err != nil {
		return fmt.Errorf("provision: %w", err)
	}
	client := &http.Client{Timeout: 10 * time.Second}
	for i, m := range ms {
		body, _ := json.Marshal(map[string]string{"endpoint": m.dev.Status().Endpoint,
			"psk_identity": fmt.Sprintf(cfg.PSKIdentity, i), "psk_key": hex.EncodeToString([]byte(fmt.Sprintf(cfg.PSKKey, i)))})
		req, _ := http.NewRequestWithContext(ctx, "POST", strings.TrimRight(cfg.Provision.API, "/")+"/api/v1/devices", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(token)))
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			return fmt.Errorf("provision: %w", err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusConflict {
			return fmt.Errorf("provision %s: HTTP %d", m.dev.Status().Endpoint, resp.StatusCode)
		}
	}
	return nil
}

// tally counts the fleet's devices by what they are doing.
type tally struct {
	Registered, Downloading, Downloaded, Updated, Failed int
}

func count(ms []*member) tally {
	var t tally
	for _, m := range ms {
		st := m.dev.Status()
		if st.Registered {
			t.Registered++
		}
		switch {
		case st.State == simulator.StateDownloading:
			t.Downloading++
		case st.State == simulator.StateDownloaded:
			t.Downloaded++
		case st.Result == simulator.ResultSuccess:
			t.Updated++
		case st.Result > simulator.ResultSuccess:
			t.Failed++
		}
	}
	return t
}

// peakTally keeps the most devices seen registered at once.
type peakTally struct {
	mu sync.Mutex
	n  int
}

func (p *peakTally) add(n int) {
	p.mu.Lock()
	p.n = max(p.n, n)
	p.mu.Unlock()
}

func (p *peakTally) get() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.n
}

func reportProgress(ctx context.Context, w io.Writer, ms []*member, start time.Time, every time.Duration, peak *peakTally) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			c := count(ms)
			peak.add(c.Registered)
			u := usage()
			fmt.Fprintf(w, "%6s registered %d/%d downloading %d downloaded %d updated %d failed %d | cpu %.1f s rss %d MB goroutines %d\n",
				time.Since(start).Round(time.Second), c.Registered, len(ms), c.Downloading, c.Downloaded, c.Updated, c.Failed,
				u.CPU.Seconds(), u.MaxRSSMB, runtime.NumGoroutine())
		}
	}
}

type resources struct {
	CPU      time.Duration
	MaxRSSMB int64
}

// usage is this process's CPU time (user + system) and peak RSS.
func usage() resources {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	return resources{CPU: cpu, MaxRSSMB: ru.Maxrss / 1024}
}

// outcome is the JSON line written for each device.
type outcome struct {
	simulator.Status
	Link      string  `json:"link"`
	UpBytes   int64   `json:"up_bytes_on_air"`
	DownBytes int64   `json:"down_bytes_on_air"`
	RadioSecs float64 `json:"radio_connected_s"`
	EnergyJ   float64 `json:"energy_j"`
	Error     string  `json:"error,omitempty"`
}

type summary struct {
	Devices        int `json:"devices"`
	PeakRegistered int `json:"peak_registered"`
	tally
	ElapsedS    float64 `json:"elapsed_s"`
	CPUS        float64 `json:"cpu_s"`
	CPUPerDevMS float64 `json:"cpu_per_device_ms"`
	CPUPercent  float64 `json:"cpu_percent_of_one_core"`
	MaxRSSMB    int64   `json:"max_rss_mb"`
	RSSPerDevKB float64 `json:"rss_per_device_kb"`
}

func writeOutcomes(w io.Writer, ms []*member, start time.Time, peak int) error {
	enc := json.NewEncoder(w)
	for _, m := range ms {
		o := outcome{Status: m.dev.Status(), Link: m.link}
		if m.relay != nil {
			st := m.relay.Stats()
			o.UpBytes, o.DownBytes, o.RadioSecs = st.Up.AirBytes, st.Down.AirBytes, st.Connected.Seconds()
			o.EnergyJ = m.relay.Link().Profile().Energy(st.Connected)
			_ = m.relay.Close()
		}
		if m.err != nil {
			o.Error = m.err.Error()
		}
		if err := enc.Encode(o); err != nil {
			return err
		}
	}
	u := usage()
	elapsed := time.Since(start)
	s := summary{Devices: len(ms), PeakRegistered: peak, tally: count(ms), ElapsedS: elapsed.Seconds(), CPUS: u.CPU.Seconds(),
		CPUPerDevMS: float64(u.CPU.Milliseconds()) / float64(len(ms)),
		CPUPercent:  100 * u.CPU.Seconds() / elapsed.Seconds(), MaxRSSMB: u.MaxRSSMB,
		RSSPerDevKB: float64(u.MaxRSSMB*1024) / float64(len(ms))}
	return enc.Encode(map[string]summary{"summary": s})
}
