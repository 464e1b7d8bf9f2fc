package simulator

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"sync"
)

// Flash is the device's non-volatile memory: two image slots, the boot
// record that says which one runs, and the small records a real device
// keeps in a flash page (Object 5 state, the download journal). It
// survives the device's reboots and power losses; the simulator keeps it
// when it restarts a device.
type Flash struct {
	mu       sync.Mutex
	slotSize int
	slots    [2][]byte
	info     [2]ImageInfo
	boot     BootRecord
	fw       fwRecord
}

// ImageInfo describes the image in a slot.
type ImageInfo struct {
	Version  string
	Sequence uint64
	Digest   [32]byte
	Size     int
}

// BootRecord is what the bootloader reads (MCUboot's image trailer, in
// spirit): the slot that runs, a candidate to try on the next boot, and
// how many times a trial boot was attempted without being confirmed.
type BootRecord struct {
	Active    int
	Candidate int // -1: none pending
	Attempts  int
	Confirmed bool
}

// maxBootAttempts is how many unconfirmed boots of a candidate the
// bootloader allows before it rolls back.
const maxBootAttempts = 3

// ErrSlotFull is a write past the slot's size.
var ErrSlotFull = errors.New("flash slot full")

// NewFlash returns flash with image in slot 0 (running) and slots of
// slotSize bytes.
func NewFlash(image []byte, info ImageInfo, slotSize int) (*Flash, error) {
	if len(image) > slotSize {
		return nil, fmt.Errorf("image of %d bytes does not fit a %d-byte slot", len(image), slotSize)
	}
	info.Size = len(image)
	info.Digest = sha256.Sum256(image)
	f := &Flash{slotSize: slotSize, boot: BootRecord{Candidate: -1, Confirmed: true}}
	// Slot 0 shares image until something writes it (only the wrong-
	// precursor fault does, and it copies first): a fleet of devices on
	// one image holds it once.
	f.slots[0] = image[:len(image):len(image)]
	f.info[0] = info
	return f, nil
}

// Running returns the running image and its description.
func (f *Flash) Running() ([]byte, ImageInfo) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.slots[f.boot.Active], f.info[f.boot.Active]
}

// SlotSize is the capacity of each slot.
func (f *Flash) SlotSize() int { return f.slotSize }

// candidate is the slot that is not running.
func (f *Flash) candidate() int { return 1 - f.boot.Active }

// EraseCandidate empties the candidate slot for a new download.
func (f *Flash) EraseCandidate() {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.candidate()
	f.slots[c] = nil // never reuse the array: slot 0 may share the fleet's image
	f.info[c] = ImageInfo{}
}

// TruncateCandidate cuts the candidate back to n bytes (a download that
// resumes rewrites what followed its last journal entry).
func (f *Flash) TruncateCandidate(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.candidate()
	if n < len(f.slots[c]) {
		f.slots[c] = f.slots[c][:n]
	}
}

// candidateWriter appends to the candidate slot.
type candidateWriter struct{ f *Flash }

func (w candidateWriter) Write(p []byte) (int, error) {
	w.f.mu.Lock()
	defer w.f.mu.Unlock()
	c := w.f.candidate()
	if len(w.f.slots[c])+len(p) > w.f.slotSize {
		return 0, ErrSlotFull
	}
	w.f.slots[c] = append(w.f.slots[c], p...)
	return len(p), nil
}

// CandidateLen is how many bytes the candidate slot holds.
func (f *Flash) CandidateLen() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.slots[f.candidate()])
}

// readCandidate calls fn with the candidate slot's bytes, which fn must
// not keep or change, under the flash's lock.
func (f *Flash) readCandidate(fn func([]byte)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f.slots[f.candidate()])
}

// CandidateDigest hashes the candidate slot.
func (f *Flash) CandidateDigest() [32]byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	return sha256.Sum256(f.slots[f.candidate()])
}

// MarkCandidate records what the candidate holds and asks the bootloader
// to try it on the next boot.
func (f *Flash) MarkCandidate(info ImageInfo) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.candidate()
	info.Size = len(f.slots[c])
	f.info[c] = info
	f.boot.Candidate, f.boot.Attempts, f.boot.Confirmed = c, 0, false
}

// CorruptCandidate flips a byte of the candidate (a fault: a bad image).
func (f *Flash) CorruptCandidate() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if s := f.slots[f.candidate()]; len(s) > 0 {
		s[len(s)/2] ^= 0xff
	}
}

// BootOutcome is what the bootloader did.
type BootOutcome int

// Boot outcomes.
const (
	BootedSame      BootOutcome = iota // no candidate: the running image again
	BootedCandidate                    // the candidate runs, on trial until confirmed
	RolledBack                         // the candidate was bad or never confirmed
)

// Boot runs the bootloader: a pending candidate is tried if its digest
// checks, up to maxBootAttempts unconfirmed boots; otherwise the device
// goes back to the image that ran before.
func (f *Flash) Boot() BootOutcome {
	f.mu.Lock()
	defer f.mu.Unlock()
	b := &f.boot
	if b.Candidate < 0 {
		if b.Confirmed || b.Attempts == 0 {
			return BootedSame
		}
		// A trial image that has not confirmed itself yet: try again,
		// up to maxBootAttempts, then go back to the other slot.
		b.Attempts++
		if b.Attempts > maxBootAttempts {
			b.Active, b.Attempts, b.Confirmed = 1-b.Active, 0, true
			return RolledBack
		}
		return BootedCandidate
	}
	c := b.Candidate
	b.Candidate = -1
	if sha256.Sum256(f.slots[c]) != f.info[c].Digest || f.info[c].Size == 0 {
		return RolledBack
	}
	b.Active, b.Attempts, b.Confirmed = c, 1, false
	return BootedCandidate
}

// Confirm makes the running image permanent (the new firmware registered
// with its server).
func (f *Flash) Confirm() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.boot.Confirmed, f.boot.Attempts = true, 0
}

// Trial reports whether the running image is an unconfirmed candidate.
func (f *Flash) Trial() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return !f.boot.Confirmed && f.boot.Attempts > 0
}

// readerAt reads the running image (the delta applier's old image).
type readerAt struct {
	f    *Flash
	slot int
}

func (r readerAt) ReadAt(p []byte, off int64) (int, error) {
	r.f.mu.Lock()
	defer r.f.mu.Unlock()
	s := r.f.slots[r.slot]
	if off >= int64(len(s)) {
		return 0, io.EOF
	}
	n := copy(p, s[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (f *Flash) runningReader() (io.ReaderAt, int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return readerAt{f: f, slot: f.boot.Active}, int64(len(f.slots[f.boot.Active]))
}

// tamperRunning changes the running image in place (a fault: the device
// no longer runs what the server believes it does).
func (f *Flash) tamperRunning() {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := bytes.Clone(f.slots[f.boot.Active])
	f.slots[f.boot.Active] = s
	if len(s) > 0 {
		s[0] ^= 0xff
		f.info[f.boot.Active].Digest = sha256.Sum256(s)
	}
}
