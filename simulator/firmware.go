package simulator

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"slices"
	"time"

	"github.com/fotahub/fota/coap"
	"github.com/fotahub/fota/delivery/delta"
	"github.com/fotahub/fota/delivery/manifest"
	"github.com/fotahub/fota/lwm2m/model"
)

// Object 5 states and update results (LwM2M Core, Object 5).
const (
	StateIdle        = 0
	StateDownloading = 1
	StateDownloaded  = 2
	StateUpdating    = 3

	ResultInitial         = 0
	ResultSuccess         = 1
	ResultNoFlash         = 2
	ResultNoRAM           = 3
	ResultConnectionLost  = 4
	ResultIntegrity       = 5
	ResultUnsupportedType = 6
	ResultInvalidURI      = 7
	ResultUpdateFailed    = 8
	ResultUnsupportedProt = 9
	ResultCancelled       = 10
	ResultDeferred        = 11
)

// fwRecord is Object 5's persistent state and the download journal.
type fwRecord struct {
	State, Result      int
	PkgName, PkgVer    string
	Candidate          *ImageInfo // what the candidate slot holds once downloaded
	Journal            *journal
	LastChange         time.Time
	PendingResultAfter int // result to report after the reboot into the candidate
}

// journal is what a device saves after each block so that it can resume
// the download after a link drop or a power loss.
type journal struct {
	URI       string
	Push      bool
	ETag      []byte
	BlockSize int
	Next      uint32 // next block to fetch
	Offset    int64  // package bytes consumed
	Verifier  []byte
	Applier   []byte // native delta applier state; nil restarts a Pelion patch
	Written   int    // candidate bytes written
	Lost      int    // sessions lost during this download
}

// errUpdate carries the Update Result a failure ends with.
type errUpdate struct {
	result int
	err    error
}

func (e *errUpdate) Error() string { return fmt.Sprintf("update result %d: %v", e.result, e.err) }
func (e *errUpdate) Unwrap() error { return e.err }

func fail(result int, format string, args ...any) error {
	return &errUpdate{result: result, err: fmt.Errorf(format, args...)}
}

func resultOf(err error) int {
	var eu *errUpdate
	if errors.As(err, &eu) {
		return eu.result
	}
	return ResultUpdateFailed
}

// sink takes verified payload bytes: the candidate slot for a full image,
// a delta applier writing the candidate for a patch.
type sink struct {
	w      io.Writer
	native *delta.Applier
	pelion *delta.PelionApplier
}

func (s *sink) Write(p []byte) (int, error) { return s.w.Write(p) }

func (s *sink) close() error {
	switch {
	case s.native != nil:
		return s.native.Close()
	case s.pelion != nil:
		return s.pelion.Close()
	}
	return nil
}

// transfer is one download or push in progress.
type transfer struct {
	d        *Device
	j        *journal
	verifier *manifest.Verifier
	sink     *sink
}

// newTransfer starts a transfer from scratch, erasing the candidate.
func (d *Device) newTransfer(j *journal) *transfer {
	d.flash.EraseCandidate()
	j.Next, j.Offset, j.Written, j.Verifier, j.Applier = 0, 0, 0, nil, nil
	return &transfer{d: d, j: j, verifier: manifest.NewVerifier(d.cfg.TrustKey, maxEnvelope)}
}

// resumeTransfer rebuilds a transfer from its journal.
func (d *Device) resumeTransfer(j *journal) (*transfer, error) {
	t := &transfer{d: d, j: j, verifier: manifest.NewVerifier(d.cfg.TrustKey, maxEnvelope)}
	if j.Verifier == nil || j.Offset == 0 {
		return d.newTransfer(j), nil
	}
	if err := t.verifier.UnmarshalBinary(j.Verifier); err != nil {
		return nil, err
	}
	m, ok := t.verifier.Manifest()
	if !ok {
		return t, nil // still inside the envelope: the verifier holds it
	}
	if m.Format == manifest.FormatPelion && j.Written > 0 {
		return d.newTransfer(j), nil // the Pelion applier cannot be resumed
	}
	d.flash.TruncateCandidate(j.Written)
	if err := t.openSink(m, j.Applier); err != nil {
		return nil, err
	}
	return t, nil
}

// maxEnvelope bounds the manifest a device buffers before the payload.
const maxEnvelope = 4096

// write feeds package bytes: the manifest is checked before any payload
// byte reaches flash.
func (t *transfer) write(b []byte) error {
	had := t.sink != nil
	payload, err := t.verifier.Write(b)
	if err != nil {
		return fail(ResultIntegrity, "package: %w", err)
	}
	if !had {
		if m, ok := t.verifier.Manifest(); ok {
			if err := t.d.checkManifest(m); err != nil {
				return err
			}
			if err := t.openSink(m, nil); err != nil {
				return err
			}
		}
	}
	if len(payload) == 0 {
		return nil
	}
	if _, err := t.sink.Write(payload); err != nil {
		if errors.Is(err, ErrSlotFull) {
			return fail(ResultNoFlash, "candidate slot: %w", err)
		}
		return fail(ResultIntegrity, "apply: %w", err)
	}
	return nil
}

// checkManifest is what the device checks before it writes a byte.
func (d *Device) checkManifest(m manifest.Manifest) error {
	_, running := d.flash.Running()
	switch {
	case d.cfg.Class != "" && m.Class != d.cfg.Class:
		return fail(ResultUnsupportedType, "package for class %q, device is %q", m.Class, d.cfg.Class)
	case m.Sequence <= running.Sequence:
		return fail(ResultUnsupportedType, "package sequence %d not above installed %d", m.Sequence, running.Sequence)
	case m.ImageSize > uint64(d.flash.SlotSize()):
		return fail(ResultNoFlash, "image of %d bytes, slot of %d", m.ImageSize, d.flash.SlotSize())
	case m.Format != manifest.FormatFull && m.PrecursorDigest != running.Digest:
		return fail(ResultIntegrity, "delta for another image (precursor %x, running %x)", m.PrecursorDigest[:4], running.Digest[:4])
	}
	return nil
}

func (t *transfer) openSink(m manifest.Manifest, applierState []byte) error {
	out := candidateWriter{f: t.d.flash}
	old, oldSize := t.d.flash.runningReader()
	switch m.Format {
	case manifest.FormatFull:
		t.sink = &sink{w: out}
	case manifest.FormatDelta:
		a := delta.NewApplier(old, oldSize, out, uint32(t.d.cfg.DeltaRAM))
		if applierState != nil {
			var err error
			if a, err = delta.Resume(applierState, old, oldSize, out, uint32(t.d.cfg.DeltaRAM)); err != nil {
				return fail(ResultIntegrity, "resume delta: %w", err)
			}
		}
		t.sink = &sink{w: a, native: a}
	case manifest.FormatPelion:
		a := delta.NewPelionApplier(old, oldSize, out, 0)
		t.sink = &sink{w: a, pelion: a}
	default:
		return fail(ResultUnsupportedType, "payload format %s", m.Format)
	}
	return nil
}

// save records in the journal, after a block, the verifier and applier
// state and how much of the candidate is good; the caller persists it.
func (t *transfer) save() error {
	vs, err := t.verifier.MarshalBinary()
	if err != nil {
		return err
	}
	t.j.Verifier = vs
	t.j.Applier = nil
	if t.sink != nil && t.sink.native != nil {
		if t.j.Applier, err = t.sink.native.MarshalBinary(); err != nil {
			return fail(ResultIntegrity, "save delta state: %w", err)
		}
	}
	t.j.Offset = t.verifier.Offset()
	t.j.Written = t.d.flash.CandidateLen()
	return nil
}

func (t *transfer) journal() *journal { return t.j }

// finish checks the whole package and the image it produced.
func (t *transfer) finish() (ImageInfo, error) {
	if err := t.verifier.Finish(); err != nil {
		return ImageInfo{}, fail(ResultIntegrity, "package: %w", err)
	}
	m, _ := t.verifier.Manifest()
	if err := t.sink.close(); err != nil {
		return ImageInfo{}, fail(ResultIntegrity, "apply: %w", err)
	}
	if got := t.d.flash.CandidateDigest(); got != m.ImageDigest {
		return ImageInfo{}, fail(ResultIntegrity, "image digest %x, manifest says %x", got[:4], m.ImageDigest[:4])
	}
	return ImageInfo{Version: m.Version, Sequence: m.Sequence, Digest: m.ImageDigest}, nil
}

// pull downloads the Package URI block by block with Block2.
func (d *Device) pull(ctx context.Context, j *journal) error {
	u, err := d.packageURL(j.URI)
	if err != nil {
		return err
	}
	src, err := d.blockSource(u)
	if err != nil {
		return err
	}
	defer src.close()
	t := d.resumeReceiver(j)
	if j.BlockSize == 0 {
		j.BlockSize = d.cfg.BlockSize
	}
	resuming := j.Next > 0
	for {
		resp, err := d.fetchBlock(ctx, src, u.Path, j.Next, j.BlockSize, j.Next == 0 && d.p.askSize2)
		if err != nil {
			return err
		}
		if j.Next == 0 {
			if limit := d.maxPackage(); resp.Size2 > limit {
				return fail(ResultNoFlash, "package of %d bytes, at most %d fit", resp.Size2, limit)
			}
			j.ETag = resp.ETag
		} else if !d.sameETag(j, resp, resuming) {
			// The package changed under the download: start again.
			d.log.Info().Str("uri", j.URI).Uint32("block", j.Next).Msg("package etag changed: download restarts")
			t, resuming = d.newReceiver(j), false
			continue
		}
		resuming = false
		if resp.Block2.Size != 0 && resp.Block2.Size < j.BlockSize {
			// The server asked for smaller blocks (late negotiation).
			j.Next = uint32(int(j.Next) * j.BlockSize / resp.Block2.Size)
			j.BlockSize = resp.Block2.Size
		}
		chunk := resp.Payload
		if d.faults.take(FaultCorruptBlock) && len(chunk) > 0 {
			chunk = slices.Clone(chunk)
			chunk[len(chunk)/2] ^= 0x5a
		}
		if err := t.write(chunk); err != nil {
			return err
		}
		d.addDownloaded(len(chunk))
		j.Next++
		if err := t.save(); err != nil {
			return err
		}
		d.saveJournal(j)
		if d.faults.take(FaultPowerLossDownload) {
			return errPowerLoss
		}
		if !resp.Block2.More {
			break
		}
	}
	info, err := t.finish()
	if err != nil {
		return err
	}
	d.downloaded(info)
	return nil
}

// packageURL checks a Package URI: one the device can fetch, over a
// protocol it announced in /5/0/8.
func (d *Device) packageURL(uri string) (*url.URL, error) {
	u, err := url.Parse(uri)
	if err != nil || u.Host == "" || u.Path == "" {
		return nil, fail(ResultInvalidURI, "package uri %q", uri)
	}
	// /5/0/8 numbers; the simulator downloads over CoAP(S) only.
	proto, known := map[string]int{"coap": 0, "coaps": 1, "http": 2, "https": 3}[u.Scheme]
	if !known || proto > 1 || !slices.Contains(d.cfg.Protocols, proto) {
		return nil, fail(ResultUnsupportedProt, "scheme %q", u.Scheme)
	}
	return u, nil
}

// maxPackage is the largest Size2 the device accepts: a signed package
// carries its envelope besides the image, a raw image is the image.
func (d *Device) maxPackage() int64 {
	if d.p.raw() {
		return int64(d.flash.SlotSize())
	}
	return int64(d.flash.SlotSize()) + maxEnvelope
}

// sameETag reports whether a block belongs to the package the download
// started with. A raw client resuming after a reboot also wants an ETag
// (Anjay resumes only then).
func (d *Device) sameETag(j *journal, resp coap.Response, resuming bool) bool {
	if resuming && d.p.raw() && len(resp.ETag) == 0 {
		return false
	}
	return bytes.Equal(resp.ETag, j.ETag)
}

// sessionRetries is how many failed block requests make the device drop
// its session and connect again.
const sessionRetries = 3

// loseSession counts a lost session in the journal and reports whether
// the device should connect again (it gives up with result 4 after
// maxSessionLosses).
func (d *Device) loseSession() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	j := d.fw.Journal
	if j == nil || j.Lost >= maxSessionLosses {
		return false
	}
	j.Lost++
	d.persistLocked()
	return true
}

// maxSessionLosses is how often one download may lose its session.
const maxSessionLosses = 3

// errSessionLost ends a download so that the device connects again.
var errSessionLost = errors.New("no answer from the server: session lost")

// fetchBlock gets one block, retrying through link drops with backoff;
// it gives up (Update Result 4) when the link stays down.
func (d *Device) fetchBlock(ctx context.Context, src blockSource, path string, num uint32, size int, askSize bool) (coap.Response, error) {
	backoff := time.Second
	var last error
	for attempt := 0; attempt <= d.cfg.DownloadRetries; attempt++ {
		req := coap.NewRequest(coap.GET, path)
		req.Block2 = coap.Block{Num: num, Size: size}
		req.AskSize2 = askSize
		bctx, cancel := context.WithTimeout(ctx, d.cfg.BlockTimeout)
		resp, err := src.Do(bctx, req)
		cancel()
		switch {
		case err == nil && resp.Code == coap.Content:
			return resp, nil
		case err == nil:
			return resp, fail(ResultInvalidURI, "GET %s block %d: %s", path, num, resp.Code)
		case ctx.Err() != nil:
			return resp, ctx.Err()
		}
		last = err
		if attempt+1 == sessionRetries {
			if err := src.lost(); err != nil {
				return coap.Response{}, err
			}
		}
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return coap.Response{}, ctx.Err()
		}
		backoff = min(2*backoff, 30*time.Second)
	}
	return coap.Response{}, fail(ResultConnectionLost, "GET %s block %d: %w", path, num, last)
}

// push handles one block of a Write to /5/0/0 (Block1, done by hand so
// that each block is verified and applied as it arrives).
func (d *Device) push(r *coap.Request) coap.Response {
	value, ok := d.packageBytes(r)
	if !ok {
		return coap.Reply(coap.UnsupportedFormat)
	}
	b := r.Block1
	if !b.Present() {
		b = coap.Block{Num: 0, Size: max(len(value), 16)}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if b.Num == 0 && len(value) == 0 && !b.More {
		d.resetLocked()
		return coap.Reply(coap.Changed)
	}
	if b.Num == 0 {
		if d.fw.State != StateIdle {
			return coap.Reply(coap.BadRequest)
		}
		d.push0Locked()
	}
	t := d.pushing
	if t == nil || b.Num != t.journal().Next {
		return coap.Reply(coap.RequestEntityIncomplete)
	}
	if err := d.storePushedLocked(t, value); err != nil {
		d.failLocked(err)
		return coap.Reply(coap.Changed) // the write was taken; the result says why it failed
	}
	if d.faults.take(FaultPowerLossDownload) {
		// The block is stored and acknowledged, then the power goes:
		// the rest of the push finds nobody to take it.
		d.pushing = nil
		d.log.Info().Uint32("block", b.Num).Msg("power lost during push")
		d.requestReboot("power loss during push")
		return pushAck(b)
	}
	if b.More {
		return pushAck(b)
	}
	info, err := t.finish()
	d.pushing = nil
	if err != nil {
		d.failLocked(err)
	} else {
		d.downloadedLocked(info)
	}
	return pushAck(b)
}

// storePushedLocked writes one pushed block and persists the journal.
func (d *Device) storePushedLocked(t receiver, value []byte) error {
	if err := t.write(value); err != nil {
		return err
	}
	d.downloadedBytes += int64(len(value))
	t.journal().Next++
	if err := t.save(); err != nil {
		return err
	}
	d.persistLocked()
	return nil
}

// pushAck acknowledges a pushed block: 2.31 Continue for more, 2.04 for
// the last one.
func pushAck(b coap.Block) coap.Response {
	if b.More {
		resp := coap.Reply(coap.Continue)
		resp.Block1 = coap.Block{Num: b.Num, Size: b.Size, More: true}
		return resp
	}
	resp := coap.Reply(coap.Changed)
	resp.Block1 = coap.Block{Num: b.Num, Size: b.Size}
	return resp
}

// packageBytes is the opaque value of a Write to /5/0/0.
func (d *Device) packageBytes(r *coap.Request) ([]byte, bool) {
	switch r.ContentFormat {
	case model.ContentFormatOpaque, coap.NoFormat:
		return r.Payload, true
	}
	return nil, false
}
