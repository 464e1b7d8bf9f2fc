// Command fotad is the firmware-update server: an LwM2M server on CoAP and
// CoAPS with its device registry in an embedded bbolt file and a management
// HTTP API with its web console (/console/).
//
// With no arguments it keeps its data under ./data, listens for CoAPS on
// :5684 and serves the API on 127.0.0.1:8080.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/rs/zerolog"

	"github.com/fotahub/fota/api"
)

func main() {
	if err := run(os.Args[1:], os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "fotad:", err)
		os.Exit(1)
	}
}

func run(args []string, stderr io.Writer) error {
	cfg, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	events := api.NewJournal(0)
	log, err := newLogger(cfg, stderr, events)
	if err != nil {
		return err
	}
	ctx, stop := signalContext()
	defer stop()
	d, err := start(cfg, log, events)
	if err != nil {
		return err
	}
	return d.wait(ctx)
}

// parseFlags reads --config and lets the other flags override it.
func parseFlags(args []string, stderr io.Writer) (fileConfig, error) {
	fs := flag.NewFlagSet("fotad", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "YAML configuration `file` (see configs/fotad.yaml)")
	dataDir := fs.String("data", "", "data `directory` (bbolt database, API token); default ./data")
	coaps := fs.String("coaps", "", "CoAPS (DTLS) listen `address`; default :5684")
	plain := fs.String("coap", "", "plain CoAP listen `address`; off unless given")
	apiAddr := fs.String("api", "", "admin API listen `address`; default 127.0.0.1:8080")
	open := fs.Bool("open-registration", false, "accept NoSec registrations from endpoints without credentials (labs and tests only)")
	level := fs.String("log-level", "", "log `level`: trace, debug, info, warn, error")
	format := fs.String("log-format", "", "log format: json or console")
	if err := fs.Parse(args); err != nil {
		return fileConfig{}, err
	}
	if fs.NArg() > 0 {
		return fileConfig{}, fmt.Errorf("unexpected argument %q (fotad takes only flags; try -h)", fs.Arg(0))
	}
	cfg, err := loadConfig(*configPath)
	if err != nil {
		return cfg, err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	override := func(name string, dst *string, v string) {
		if set[name] {
			*dst = v
		}
	}
	override("data", &cfg.DataDir, *dataDir)
	override("coaps", &cfg.CoAP.CoAPSListen, *coaps)
	override("coap", &cfg.CoAP.CoAPListen, *plain)
	override("api", &cfg.API.Listen, *apiAddr)
	override("log-level", &cfg.LogLevel, *level)
	override("log-format", &cfg.LogFormat, *format)
	if set["open-registration"] {
		cfg.OpenRegistration = *open
	}
	return cfg, cfg.validate()
}

func parseLevel(s string) (zerolog.Level, error) {
	l, err := zerolog.ParseLevel(strings.ToLower(s))
	if err != nil || s == "" {
		return l, fmt.Errorf("config: log_level %q is not one of trace, debug, info, warn, error", s)
	}
	return l, nil
}

// newLogger logs to w at the configured level, and to events (the
// console's event page) at info level and above whatever the configured
// level is.
func newLogger(cfg fileConfig, w io.Writer, events *api.Journal) (zerolog.Logger, error) {
	level, err := parseLevel(cfg.LogLevel)
	if err != nil {
		return zerolog.Nop(), err
	}
	switch cfg.LogFormat {
	case "", "json":
	case "console":
		w = zerolog.ConsoleWriter{Out: w}
	default:
		return zerolog.Nop(), fmt.Errorf("config: log_format %q is not json or console", cfg.LogFormat)
	}
	out := zerolog.LevelWriter(&zerolog.FilteredLevelWriter{Writer: zerolog.LevelWriterAdapter{Writer: w}, Level: level})
	if events != nil {
		out = zerolog.MultiLevelWriter(out, events)
		level = min(level, zerolog.InfoLevel)
	}
	return zerolog.New(out).Level(level).With().Timestamp().Logger(), nil
}

// signalContext is cancelled by the first SIGINT or SIGTERM, for a
// graceful shutdown; a second one exits at once.
func signalContext() (context.Context, func()) {
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ch
		cancel()
		<-ch
		os.Exit(130)
	}()
	return ctx, func() { signal.Stop(ch); cancel() }
}
