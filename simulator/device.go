package simulator

import (
	"context"
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/fotahub/fota/coap"
	"github.com/fotahub/fota/lwm2m/client"
	"github.com/fotahub/fota/lwm2m/model"
)

// Config describes one simulated device.
type Config struct {
	Endpoint string
	// PSKIdentity and PSKKey select DTLS PSK; Certificate and RootCAs
	// select X.509. Neither: plain CoAP.
	PSKIdentity string
	PSKKey      []byte
	Certificate *tls.Certificate
	RootCAs     *x509.CertPool
	// ServerName is the name the server's certificate must carry.
	ServerName string
	// Server is where the device sends its datagrams: the server's CoAP
	// address, or the link emulator's relay in front of it.
	Server string
	// Version is the LwM2M version (default "1.1").
	Version string
	// Formats the device reads and writes (default SenML CBOR and TLV).
	Formats []int
	// Lifetime of the registration (default 300 s); the device sends an
	// Update at UpdateAt of it (default 0.8).
	Lifetime time.Duration
	UpdateAt float64
	// Queue registers in queue mode: after each exchange the device stays
	// awake for Awake (default 93 s), then sleeps until its next Update.
	Queue bool
	Awake time.Duration
	// Client is the LwM2M client stack the device plays (default
	// ClientNative): the image format it takes and how it fetches, keeps
	// and reports an update.
	Client Client
	// Firmware is the image the device runs at first, FirmwareVersion its
	// version. Devices share it (a fleet holds one copy): it must not be
	// changed after New. For a raw client (zephyr, anjay) Firmware is an
	// image in its vendor format, whose header gives the version:
	// FirmwareVersion and Sequence are ignored, as the client reads its
	// version from the image it runs.
	Firmware        []byte
	FirmwareVersion string
	Sequence        uint64
	Class           string
	// SlotSize is the size of each flash slot (default twice the image).
	SlotSize int
	// TrustKey verifies package manifests.
	TrustKey *ecdsa.PublicKey
	// BlockSize is the Block2 size of pull downloads, a power of two in
	// 16-1024 (default: the client's, 512 native, 256 zephyr, 1024
	// anjay); choose it from the link's MTU. A smaller size the server
	// answers with is followed.
	BlockSize int
	// DownloadVia maps the host:port of a Package URI to the address a
	// client with a download session of its own (zephyr, anjay) sends to,
	// such as the link relay in front of the server. Unmapped: the URI's.
	DownloadVia map[string]string
	// Protocols is /5/0/8 (default CoAP and CoAPS); Delivery is /5/0/9
	// (0 pull only, the zero value; 1 push only; 2 both).
	Protocols []int
	Delivery  int
	// DeltaRAM bounds the delta applier's RAM (0: the format's bound).
	DeltaRAM int
	// DownloadRetries is how many times one block is retried before the
	// download fails with result 4 (default 8, about 2.5 minutes).
	DownloadRetries int
	// BlockTimeout bounds one block request, retransmissions included
	// (default 93 s, MAX_TRANSMIT_WAIT). After three in a row the device
	// connects again.
	BlockTimeout time.Duration
	// RegTimeout bounds a Register or registration Update (default 2
	// min). When an Update fails, the device takes the DTLS session for
	// lost (a server restart, a NAT that forgot it), connects again and
	// registers.
	RegTimeout time.Duration
	// Battery is /3/0/9 in percent (default 90); below MinBattery the
	// device defers updates (result 11).
	Battery, MinBattery int
	// BootTime is how long a reboot takes (default 1 s).
	BootTime time.Duration
	// NoObserve makes the device refuse every observation (4.05 Method
	// Not Allowed), as minimal clients do.
	NoObserve bool
	// Faults injected at random, each with its probability per update.
	RandomFaults map[Fault]float64
	Logger       zerolog.Logger
}

func (c *Config) defaults() error {
	if c.Endpoint == "" || c.Server == "" {
		return errors.New("simulator: Endpoint and Server are required")
	}
	if len(c.Firmware) == 0 {
		return errors.New("simulator: no firmware image")
	}
	if c.Version == "" {
		c.Version = "1.1"
	}
	if len(c.Formats) == 0 {
		c.Formats = []int{model.ContentFormatSenMLCBOR, model.ContentFormatTLV}
		if c.Version == "1.0" {
			c.Formats = []int{model.ContentFormatTLV}
		}
	}
	if c.Lifetime <= 0 {
		c.Lifetime = 300 * time.Second
	}
	if c.UpdateAt <= 0 || c.UpdateAt >= 1 {
		c.UpdateAt = 0.8
	}
	if c.Awake <= 0 {
		c.Awake = 93 * time.Second
	}
	if c.SlotSize <= 0 {
		c.SlotSize = 2 * len(c.Firmware)
	}
	client, err := ParseClient(string(c.Client))
	if err != nil {
		return fmt.Errorf("simulator: %w", err)
	}
	c.Client = client
	if c.BlockSize <= 0 {
		c.BlockSize = personalities[client].blockSize
	}
	if c.BlockSize < 16 || c.BlockSize > 1024 || c.BlockSize&(c.BlockSize-1) != 0 {
		return fmt.Errorf("simulator: BlockSize %d is not a power of two in 16-1024", c.BlockSize)
	}
	if len(c.Protocols) == 0 {
		c.Protocols = []int{0, 1}
	}
	if c.DownloadRetries <= 0 {
		c.DownloadRetries = 8
	}
	if c.BlockTimeout <= 0 {
		c.BlockTimeout = 93 * time.Second
	}
	if c.RegTimeout <= 0 {
		c.RegTimeout = 2 * time.Minute
	}
	if c.Battery == 0 {
		c.Battery = 90
	}
	if c.BootTime <= 0 {
		c.BootTime = time.Second
	}
	if c.FirmwareVersion == "" {
		c.FirmwareVersion = "1.0.0"
	}
	return nil
}

// Device is one simulated LwM2M device: its flash survives reboots, its
// session and registration do not.
type Device struct {
	cfg    Config
	p      personality
	log    zerolog.Logger
	flash  *Flash
	faults *faults

	mu              sync.Mutex
	client          *client.Client
	fw              fwRecord
	pushing         receiver
	cancelPull      context.CancelFunc
	downloadedBytes int64
	reboot          chan string   // a reason: the Run loop reboots the device
	notes           chan fwRecord // Object 5 changes, notified in order
	registered      bool
	reboots         int
	events          chan Event
	radio           *radio
}

// Event is something that happened to the device, for fleets and tests.
type Event struct {
	Time     time.Time
	Endpoint string
	Kind     string // registered, updated, state, rebooted, rolled-back, error
	State    int
	Result   int
	Version  string
	Detail   string
}

// New builds a device with its image in slot 0.
func New(cfg Config) (*Device, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	p := personalities[cfg.Client]
	info, err := p.initialImage(cfg)
	if err != nil {
		return nil, fmt.Errorf("simulator %s: %w", cfg.Endpoint, err)
	}
	flash, err := NewFlash(cfg.Firmware, info, cfg.SlotSize)
	if err != nil {
		return nil, fmt.Errorf("simulator %s: %w", cfg.Endpoint, err)
	}
	return &Device{
		cfg: cfg, p: p, flash: flash, faults: newFaults(cfg.RandomFaults),
		log:    cfg.Logger.With().Str("endpoint", cfg.Endpoint).Str("client", string(cfg.Client)).Logger(),
		reboot: make(chan string, 1),
		notes:  make(chan fwRecord, 64),
		events: make(chan Event, 256),
	}, nil
}

// Events delivers what happens to the device. It is buffered; events
// are dropped when nobody reads them.
func (d *Device) Events() <-chan Event { return d.events }

// Flash is the device's flash, for tests.
func (d *Device) Flash() *Flash { return d.flash }

// Inject arms a fault: it fires at the next point where it can happen.
// A wrong precursor changes the running image at once.
func (d *Device) Inject(f Fault) {
	if f == FaultWrongPrecursor {
		d.flash.tamperRunning()
		return
	}
	d.faults.arm(f)
}

// SetRandomFault makes fault f fire with probability p wherever it can.
func (d *Device) SetRandomFault(f Fault, p float64) { d.faults.setRandom(f, p) }

// Status is a snapshot of the device.
type Status struct {
	Endpoint   string
	Client     Client
	Registered bool
	Version    string
	State      int
	Result     int
	Downloaded int64
	Reboots    int
}

// Status returns the device's state now.
func (d *Device) Status() Status {
	_, info := d.flash.Running()
	d.mu.Lock()
	defer d.mu.Unlock()
	return Status{Endpoint: d.cfg.Endpoint, Client: d.cfg.Client, Registered: d.registered, Version: info.Version,
		State: d.fw.State, Result: d.fw.Result, Downloaded: d.downloadedBytes, Reboots: d.reboots}
}

func (d *Device) emit(kind, detail string) {
	_, info := d.flash.Running()
	d.mu.Lock()
	ev := Event{Time: time.Now(), Endpoint: d.cfg.Endpoint, Kind: kind, State: d.fw.State,
		Result: d.fw.Result, Version: info.Version, Detail: detail}
	d.mu.Unlock()
	select {
	case d.events <- ev:
	default:
	}
}

// errPowerLoss ends a run of the device as if its power were cut.
var errPowerLoss = errors.New("power loss")

// Run boots the device and keeps it registered until ctx ends: periodic
// Updates, sleep in queue mode, reboots into new firmware. A reboot or a
// power loss restarts it from the bootloader with its flash intact.
func (d *Device) Run(ctx context.Context) error {
	for {
		reason, err := d.life(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil && !errors.Is(err, errPowerLoss) {
			d.log.Warn().Err(err).Msg("device restarts after an error")
			reason = "error: " + err.Error()
		}
		d.mu.Lock()
		d.reboots++
		d.mu.Unlock()
		d.emit("rebooted", reason)
		select {
		case <-time.After(d.cfg.BootTime):
		case <-ctx.Done():
			return nil
		}
	}
}

// life is one boot of the device, until it reboots or ctx ends.
func (d *Device) life(ctx context.Context) (string, error) {
	if crashed := d.bootloader(); crashed {
		return "crash in new image", nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	c, err := d.connect(ctx)
	if err != nil {
		return "", err
	}
	defer c.Close()
	go d.notifier(ctx, c)
	if err := d.register(ctx, c); err != nil {
		return "", err
	}
	if j := d.resumeJournal(); j != nil && !j.Push {
		d.startPull(ctx, j)
	}
	updateEvery := time.Duration(float64(d.cfg.Lifetime) * d.cfg.UpdateAt)
	timer := time.NewTimer(updateEvery)
	defer timer.Stop()
	for {
		if d.cfg.Queue {
			d.radio.sleepAfter(d.cfg.Awake)
		}
		select {
		case <-ctx.Done():
			_ = d.deregister(c)
			return "", nil
		case reason := <-d.reboot:
			return reason, nil
		case <-timer.C:
			d.radio.wake()
			uctx, ucancel := context.WithTimeout(ctx, d.cfg.RegTimeout)
			err := c.Update(uctx)
			ucancel()
			if err != nil {
				// Unanswered (the server lost the session: a restart) or
				// refused (4.04: the registration expired): register again
				// on a new session, as LwM2M clients do.
				d.log.Info().Err(err).Msg("update failed: connecting and registering again")
				return "registration update failed", nil
			}
			d.emit("updated", "")
			timer.Reset(updateEvery)
		}
	}
}

// bootloader runs at power-on: it may switch to the candidate or roll
// back, and Object 5 reports how the last update ended. It reports
// whether the image crashed before it could confirm itself.
func (d *Device) bootloader() (crashed bool) {
	outcome := d.flash.Boot()
	d.flash.mu.Lock()
	saved := d.flash.fw
	d.flash.mu.Unlock()
	d.mu.Lock()
	defer d.mu.Unlock()
	d.fw = d.p.restored(saved) // RAM is gone: Object 5 comes back from flash, if it was kept there
	if d.cancelPull != nil {
		d.cancelPull() // a download of the previous boot dies with it
	}
	d.pushing, d.cancelPull, d.registered = nil, nil, false
	switch outcome {
	case BootedCandidate:
		if d.faults.take(FaultRebootLoop) {
			d.faults.arm(FaultRebootLoop) // it keeps crashing until rolled back
			d.log.Info().Msg("new image crashes before it confirms itself")
			crashed = true
		} else {
			d.reportBootedLocked()
		}
	case RolledBack:
		d.faults.take(FaultRebootLoop) // the old image does not crash
		d.fw.State, d.fw.Result = StateIdle, ResultUpdateFailed
		d.fw.Journal = nil
		d.log.Info().Msg("bootloader rolled back to the previous image")
	}
	if d.fw.State == StateUpdating && outcome == BootedSame {
		// Power was lost during the update before the candidate was marked.
		d.fw.State, d.fw.Result = StateIdle, ResultUpdateFailed
	}
	d.persistLocked()
	return crashed
}

func (d *Device) persistLocked() {
	d.flash.mu.Lock()
	d.flash.fw = d.fw
	d.flash.mu.Unlock()
}

func (d *Device) connect(ctx context.Context) (*client.Client, error) {
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, fmt.Errorf("device %s: %w", d.cfg.Endpoint, err)
	}
	r := newRadio(pc)
	tc := coap.ClientConfig{PSKIdentity: d.cfg.PSKIdentity, PSKKey: d.cfg.PSKKey, Certificate: d.cfg.Certificate,
		RootCAs: d.cfg.RootCAs, ServerName: d.cfg.ServerName, ConnectionID: true, PacketConn: r,
		HandshakeTimeout: 60 * time.Second, NoBlockwise: true}
	c := client.New(client.Config{
		Endpoint: d.cfg.Endpoint, Version: d.cfg.Version, Lifetime: d.cfg.Lifetime, Queue: d.cfg.Queue,
		Formats: d.cfg.Formats, Server: d.cfg.Server, Secure: d.cfg.PSKKey != nil || d.cfg.Certificate != nil,
		Transport: tc, Intercept: d.intercept, Timeout: 100 * time.Second,
	})
	d.populate(c)
	if err := c.Dial(ctx); err != nil {
		_ = r.Close()
		return nil, err
	}
	d.mu.Lock()
	d.client, d.radio = c, r
	d.mu.Unlock()
	return c, nil
}

func (d *Device) register(ctx context.Context, c *client.Client) error {
	rctx, cancel := context.WithTimeout(ctx, d.cfg.RegTimeout)
	defer cancel()
	if err := c.Register(rctx); err != nil {
		return err
	}
	d.mu.Lock()
	d.registered = true
	d.mu.Unlock()
	if d.flash.Trial() {
		d.flash.Confirm()
		d.reportRegistered(ctx)
	}
	d.emit("registered", "")
	return nil
}

func (d *Device) deregister(c *client.Client) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	d.radio.wake()
	d.mu.Lock()
	d.registered = false
	d.mu.Unlock()
	return c.Deregister(ctx)
}

// populate fills the object tree: Objects 0 (Security: never announced,
// 4.01 to the management server), 1, 3 and 5.
func (d *Device) populate(c *client.Client) {
	_, info := d.flash.Running()
	mode := int64(3) // NoSec
	switch {
	case d.cfg.PSKKey != nil:
		mode = 0
	case d.cfg.Certificate != nil:
		mode = 2
	}
	scheme := map[bool]string{true: "coaps://", false: "coap://"}[mode != 3]
	c.AddInstance(0, model.ObjectInstance{ID: 0, Resources: map[uint16]model.Resource{
		0:  model.SingleResource(0, model.StringValue(scheme+d.cfg.Server)),
		1:  model.SingleResource(1, model.BoolValue(false)),
		2:  model.SingleResource(2, model.IntegerValue(mode)),
		3:  model.SingleResource(3, model.OpaqueValue([]byte(d.cfg.PSKIdentity))),
		5:  model.SingleResource(5, model.OpaqueValue(d.cfg.PSKKey)),
		10: model.SingleResource(10, model.IntegerValue(1)),
	}})
	c.AddInstance(1, model.ObjectInstance{ID: 0, Resources: map[uint16]model.Resource{
		0: model.SingleResource(0, model.IntegerValue(1)),
		1: model.SingleResource(1, model.UnsignedValue(uint64(d.cfg.Lifetime/time.Second))),
		6: model.SingleResource(6, model.BoolValue(false)),
		7: model.SingleResource(7, model.StringValue(binding(d.cfg))),
	}})
	c.AddInstance(3, model.ObjectInstance{ID: 0, Resources: map[uint16]model.Resource{
		0:  model.SingleResource(0, model.StringValue("fotahub")),
		1:  model.SingleResource(1, model.StringValue("fotasim")),
		2:  model.SingleResource(2, model.StringValue(d.cfg.Endpoint)),
		3:  model.SingleResource(3, model.StringValue(info.Version)),
		9:  model.SingleResource(9, model.IntegerValue(int64(d.cfg.Battery))),
		11: model.MultipleResource(11, map[uint16]model.Value{0: model.IntegerValue(0)}),
		13: model.SingleResource(13, model.TimeValue(d.now())),
		16: model.SingleResource(16, model.StringValue("UQ")),
		17: model.SingleResource(17, model.StringValue(d.cfg.Class)),
	}})
	protocols := map[uint16]model.Value{}
	for i, p := range d.cfg.Protocols {
		protocols[uint16(i)] = model.IntegerValue(int64(p))
	}
	d.mu.Lock()
	fw := d.fw
	d.mu.Unlock()
	c.AddInstance(5, model.ObjectInstance{ID: 0, Resources: map[uint16]model.Resource{
		1:  model.SingleResource(1, model.StringValue(uriOf(fw))),
		3:  model.SingleResource(3, model.IntegerValue(int64(fw.State))),
		5:  model.SingleResource(5, model.IntegerValue(int64(fw.Result))),
		6:  model.SingleResource(6, model.StringValue(fw.PkgName)),
		7:  model.SingleResource(7, model.StringValue(fw.PkgVer)),
		8:  model.MultipleResource(8, protocols),
		9:  model.SingleResource(9, model.IntegerValue(int64(d.cfg.Delivery))),
		11: model.SingleResource(11, model.IntegerValue(1)),
		12: model.SingleResource(12, model.TimeValue(fw.LastChange)),
		13: model.SingleResource(13, model.UnsignedValue(0)),
	}})
}

func binding(c Config) string {
	if c.Queue {
		return "UQ"
	}
	return "U"
}

func uriOf(fw fwRecord) string {
	if fw.Journal != nil && !fw.Journal.Push {
		return fw.Journal.URI
	}
	return ""
}

// now is the device's clock, which a fault can move.
func (d *Device) now() time.Time { return time.Now().Add(d.faults.clockOffset()) }

// intercept takes the Object 5 requests that are more than a value in
// the tree: the package URI, the package itself, Update and Cancel.
func (d *Device) intercept(r *coap.Request) coap.Response {
	d.radio.wake()
	switch {
	case d.cfg.NoObserve && r.Observe == coap.ObserveRegister:
		return coap.Reply(coap.MethodNotAllowed)
	case r.Path == "/5/0/0" && (r.Method == coap.PUT || r.Method == coap.POST):
		return d.push(r)
	case r.Path == "/5/0/1" && (r.Method == coap.PUT || r.Method == coap.POST):
		return d.writeURI(r)
	case r.Path == "/5/0/2" && r.Method == coap.POST:
		return d.executeUpdate()
	case r.Path == "/5/0/10" && r.Method == coap.POST:
		return d.cancel()
	case r.Path == "/3/0/4" && r.Method == coap.POST:
		d.requestReboot("reboot executed")
		return coap.Reply(coap.Changed)
	}
	return coap.Response{}
}

func (d *Device) requestReboot(reason string) {
	go func() {
		time.Sleep(50 * time.Millisecond) // let the 2.04 go out first
		select {
		case d.reboot <- reason:
		default:
		}
	}()
}

func (d *Device) writeURI(r *coap.Request) coap.Response {
	vals, err := model.DecodeValues(max(r.ContentFormat, 0), model.ResourcePath(5, 0, 1), r.Payload)
	if err != nil || len(vals) != 1 {
		return coap.Reply(coap.BadRequest)
	}
	uri, _ := vals[0].Value.AsString()
	d.mu.Lock()
	defer d.mu.Unlock()
	if uri == "" {
		d.resetLocked()
		return coap.Reply(coap.Changed)
	}
	if d.fw.State != StateIdle {
		return coap.Reply(coap.BadRequest)
	}
	j := &journal{URI: uri, BlockSize: d.cfg.BlockSize}
	d.fw.Journal = j
	d.setStateLocked(StateDownloading, ResultInitial)
	ctx := context.Background()
	go d.startPull(ctx, j)
	return coap.Reply(coap.Changed)
}

func (d *Device) startPull(parent context.Context, j *journal) {
	ctx, cancel := context.WithCancel(parent)
	d.mu.Lock()
	if d.cancelPull != nil {
		d.cancelPull()
	}
	d.cancelPull = cancel
	d.mu.Unlock()
	go func() {
		defer cancel()
		err := d.pull(ctx, j)
		switch {
		case errors.Is(err, errPowerLoss):
			d.log.Info().Msg("power lost during download")
			d.requestReboot("power loss during download")
		case errors.Is(err, errSessionLost):
			d.log.Info().Msg("session lost during download: connecting again")
			d.requestReboot("session lost")
		case ctx.Err() != nil:
		case err != nil:
			d.mu.Lock()
			d.failLocked(err)
			d.mu.Unlock()
		}
	}()
}

func (d *Device) executeUpdate() coap.Response {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.fw.State != StateDownloaded {
		return coap.Reply(coap.MethodNotAllowed)
	}
	if d.cfg.Battery < d.cfg.MinBattery || d.faults.take(FaultLowBattery) {
		d.setStateLocked(StateDownloaded, ResultDeferred)
		return coap.Reply(coap.Changed)
	}
	d.setStateLocked(StateUpdating, ResultInitial)
	go d.install(*d.fw.Candidate)
	return coap.Reply(coap.Changed)
}

// install marks the candidate for the bootloader and reboots into it.
func (d *Device) install(image ImageInfo) {
	time.Sleep(50 * time.Millisecond) // the 2.04 goes out first
	if d.faults.take(FaultPowerLossApply) {
		d.log.Info().Msg("power lost while installing")
		d.requestReboot("power loss during install")
		return
	}
	if d.faults.take(FaultBadImage) {
		d.flash.CorruptCandidate()
	}
	d.flash.MarkCandidate(image)
	d.requestReboot("installing " + image.Version)
}

func (d *Device) cancel() coap.Response {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.fw.State != StateDownloading && d.fw.State != StateDownloaded {
		return coap.Reply(coap.MethodNotAllowed)
	}
	d.stopTransferLocked()
	d.setStateLocked(StateIdle, ResultCancelled)
	return coap.Reply(coap.Changed)
}

func (d *Device) resetLocked() {
	d.stopTransferLocked()
	d.setStateLocked(StateIdle, ResultInitial)
}

func (d *Device) stopTransferLocked() {
	if d.cancelPull != nil {
		d.cancelPull()
		d.cancelPull = nil
	}
	d.pushing = nil
	d.fw.Journal = nil
	d.flash.EraseCandidate()
}

func (d *Device) push0Locked() {
	j := &journal{Push: true}
	d.fw.Journal = j
	d.pushing = d.newReceiver(j)
	d.setStateLocked(StateDownloading, ResultInitial)
}

func (d *Device) failLocked(err error) {
	res := resultOf(err)
	d.log.Info().Err(err).Int("result", res).Msg("firmware download failed")
	d.stopTransferLocked()
	d.setStateLocked(StateIdle, res)
}

func (d *Device) downloaded(image ImageInfo) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.downloadedLocked(image)
}

func (d *Device) downloadedLocked(image ImageInfo) {
	d.fw.Candidate = &image
	d.fw.PkgName, d.fw.PkgVer = d.p.pkgName(d.cfg.Class), image.Version
	d.cancelPull = nil
	d.setStateLocked(StateDownloaded, ResultInitial)
}

func (d *Device) addDownloaded(n int) {
	d.mu.Lock()
	d.downloadedBytes += int64(n)
	d.mu.Unlock()
}

func (d *Device) saveJournal(j *journal) {
	d.mu.Lock()
	if d.fw.Journal == j {
		d.persistLocked()
	}
	d.mu.Unlock()
}

// resumeJournal continues, after a boot, a download that was under way.
func (d *Device) resumeJournal() *journal {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.fw.State != StateDownloading || d.fw.Journal == nil {
		return nil
	}
	if !d.fw.Journal.Push {
		return d.fw.Journal
	}
	// A push cannot resume: the server starts it again.
	d.stopTransferLocked()
	d.setStateLocked(StateIdle, ResultConnectionLost)
	return nil
}

// setStateLocked changes Object 5's state and result, persists them and
// notifies the server's observations.
func (d *Device) setStateLocked(state, result int) {
	d.fw.State, d.fw.Result, d.fw.LastChange = state, result, d.now()
	d.persistLocked()
	if d.client != nil {
		select {
		case d.notes <- d.fw:
		default:
			d.log.Warn().Msg("object 5 notifications backed up: one dropped")
		}
	}
	d.log.Debug().Int("state", state).Int("result", result).Msg("firmware state")
	go d.emit("state", "")
}

// notifier writes Object 5 changes into the tree in order, which
// notifies the server's observations of /5/0/3 and /5/0/5.
func (d *Device) notifier(ctx context.Context, c *client.Client) {
	for {
		select {
		case <-ctx.Done():
			return
		case fw := <-d.notes:
			nctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			_ = c.Set(nctx, model.ResourcePath(5, 0, 3), model.IntegerValue(int64(fw.State)))
			_ = c.Set(nctx, model.ResourcePath(5, 0, 5), model.IntegerValue(int64(fw.Result)))
			_ = c.Set(nctx, model.ResourcePath(5, 0, 12), model.TimeValue(fw.LastChange))
			setChanged(nctx, c, model.ResourcePath(5, 0, 6), model.StringValue(fw.PkgName))
			setChanged(nctx, c, model.ResourcePath(5, 0, 7), model.StringValue(fw.PkgVer))
			cancel()
		}
	}
}

// setChanged writes a resource only when its value changes: PkgName and
// PkgVersion change once per download, and observers of the whole
// instance need not hear of them at every state change.
func setChanged(ctx context.Context, c *client.Client, p model.Path, v model.Value) {
	if n, ok := c.Get(p); ok {
		if r, ok := n.(*model.Resource); ok && r.Equal(model.SingleResource(r.ID, v)) {
			return
		}
	}
	_ = c.Set(ctx, p, v)
}

// setFirmwareResources reports the running version after a boot.
func (d *Device) setFirmwareResources(ctx context.Context) {
	_, info := d.flash.Running()
	d.mu.Lock()
	c := d.client
	d.mu.Unlock()
	_ = c.Set(ctx, model.ResourcePath(3, 0, 3), model.StringValue(info.Version))
}

// wakeRadio is a transmission on any of the device's sockets: one modem
// carries them all.
func (d *Device) wakeRadio() {
	d.mu.Lock()
	r := d.radio
	d.mu.Unlock()
	r.wake()
}

// session is the client of the current boot.
func (d *Device) session() *client.Client {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.client
}
