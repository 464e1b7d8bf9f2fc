package api

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/fotahub/fota/delivery/firmware"
	"github.com/fotahub/fota/delivery/manifest"
)

// MaxImageBytes is the largest image POST /api/v1/images takes; a larger
// body gets 413.
const MaxImageBytes = 16 << 20

// Images adds, finds and removes firmware images. *firmware.Service is
// one.
type Images interface {
	// AddImage stores an image and reports whether it is new; the same
	// bytes with the same version and class give the stored image.
	AddImage(ctx context.Context, data []byte, version, class string, profile firmware.Profile) (firmware.Image, bool, error)
	// Images lists every image, without bytes.
	Images(ctx context.Context) ([]firmware.Image, error)
	// Image finds an image by digest or version (class may be empty).
	Image(ctx context.Context, ref, class string) (firmware.Image, error)
	// ImageData returns an image's bytes.
	ImageData(ctx context.Context, digest manifest.Digest) ([]byte, error)
	// RemoveImage removes an image and the packages made from or to it.
	RemoveImage(ctx context.Context, digest manifest.Digest) error
}

// Packages makes and serves signed firmware packages. *firmware.Service
// is one.
type Packages interface {
	// MakePackage returns (making and storing it on first request) the
	// package that brings a device to an image: a delta or the full image.
	MakePackage(ctx context.Context, req firmware.Request) (firmware.Offer, error)
	// Package returns a stored package's metadata.
	Package(ctx context.Context, id manifest.Digest) (firmware.Package, error)
	// PackageData returns a package's bytes, which the caller must not
	// modify.
	PackageData(ctx context.Context, id manifest.Digest) ([]byte, error)
	// PublicKey returns the key devices verify packages with.
	PublicKey() *ecdsa.PublicKey
}

// ImageView is the JSON shape of an image.
type ImageView struct {
	Digest   string    `json:"digest"` // SHA-256, hex
	Size     int64     `json:"size"`
	Version  string    `json:"version"`
	Class    string    `json:"class"`
	Format   string    `json:"format"`   // native: delivered in fotad's packages; raw: as uploaded
	Sequence uint64    `json:"sequence"` // the manifest sequence of its packages
	Added    time.Time `json:"added"`
}

// ImageList is the body of GET /api/v1/images.
type ImageList struct {
	Images []ImageView `json:"images"`
}

// PackageRequest is the body of POST /api/v1/packages.
type PackageRequest struct {
	// Image is the target image: its digest or its version.
	Image string `json:"image"`
	// Installed is the digest of the image the device runs, if known.
	Installed string `json:"installed,omitempty"`
	// Class is the device's class, needed when a version exists in
	// several classes.
	Class string `json:"class,omitempty"`
	// Full asks for the full image even when a delta would be smaller.
	Full bool `json:"full,omitempty"`
}

const packageRequestFields = "image, installed, class, full"

// PackageView is the JSON shape of a package: its ID (the SHA-256 of its
// bytes), size, the manifest's fields and the key that signed it. The
// answer to POST /api/v1/packages adds full_size, delta_size (when a delta
// was made) and the reason a full image was chosen.
type PackageView struct {
	ID              string    `json:"id"`
	Format          string    `json:"format"` // full or delta
	Size            int64     `json:"size"`
	Sequence        uint64    `json:"sequence"`
	Version         string    `json:"version"`
	Class           string    `json:"class"`
	ImageDigest     string    `json:"image_digest"`
	ImageSize       uint64    `json:"image_size"`
	PayloadDigest   string    `json:"payload_digest"`
	PayloadSize     uint64    `json:"payload_size"`
	PrecursorDigest string    `json:"precursor_digest,omitempty"`
	PrecursorSize   uint64    `json:"precursor_size,omitempty"`
	KeyFingerprint  string    `json:"key_fingerprint"`
	Created         time.Time `json:"created"`

	FullSize  int64  `json:"full_size,omitempty"`
	DeltaSize int64  `json:"delta_size,omitempty"`
	Reason    string `json:"reason,omitempty"`
}

// SigningKeyView is the JSON answer of GET /api/v1/signing-key.
type SigningKeyView struct {
	Algorithm    string `json:"algorithm"` // ES256: ECDSA on P-256 with SHA-256
	Fingerprint  string `json:"fingerprint"`
	PublicKeyPEM string `json:"public_key_pem"`
}

func imageView(img firmware.Image) ImageView {
	format := firmware.ProfileNative
	if img.Raw {
		format = firmware.ProfileRaw
	}
	return ImageView{
		Digest:   img.Digest.String(),
		Size:     img.Size,
		Version:  img.Version,
		Class:    img.Class,
		Format:   string(format),
		Sequence: img.Sequence,
		Added:    img.Added.UTC(),
	}
}

func packageView(p firmware.Package) PackageView {
	m := &p.Manifest
	v := PackageView{
		ID:             p.ID.String(),
		Format:         m.Format.String(),
		Size:           p.Size,
		Sequence:       m.Sequence,
		Version:        m.Version,
		Class:          m.Class,
		ImageDigest:    m.ImageDigest.String(),
		ImageSize:      m.ImageSize,
		PayloadDigest:  m.PayloadDigest.String(),
		PayloadSize:    m.PayloadSize,
		KeyFingerprint: p.KeyFingerprint,
		Created:        p.Created.UTC(),
	}
	if m.Format.IsDelta() {
		v.PrecursorDigest, v.PrecursorSize = m.PrecursorDigest.String(), m.PrecursorSize
	}
	return v
}

// images answers 503 and reports false when images are off.
func (s *Server) imagesOn(w http.ResponseWriter) (Images, bool) {
	if s.images == nil {
		writeError(w, http.StatusServiceUnavailable, "firmware images not enabled")
		return nil, false
	}
	return s.images, true
}

// packagesOn answers 503 and reports false when packages are off.
func (s *Server) packagesOn(w http.ResponseWriter) (Packages, bool) {
	if s.packages == nil {
		writeError(w, http.StatusServiceUnavailable, "firmware packages not enabled")
		return nil, false
	}
	return s.packages, true
}

// firmwareError answers with the status a firmware error calls for; the
// message of a 4xx is the error's, which names digests and versions only.
func (s *Server) firmwareError(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, firmware.ErrInvalid), errors.Is(err, firmware.ErrAmbiguous):
		writeError(w, http.StatusBadRequest, err.Error())
	case errors.Is(err, firmware.ErrNotFound):
		writeError(w, http.StatusNotFound, err.Error())
	case errors.Is(err, firmware.ErrConflict), errors.Is(err, firmware.ErrClassMismatch), errors.Is(err, firmware.ErrNotNewer):
		writeError(w, http.StatusConflict, err.Error())
	default:
		s.internalError(w, r, err)
	}
}

// pathDigest reads a digest path value, answering 400 itself.
func pathDigest(w http.ResponseWriter, r *http.Request, name, what string) (manifest.Digest, bool) {
	d, err := firmware.ParseDigest(r.PathValue(name))
	if err != nil {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("%s must be a SHA-256 digest (64 hex digits), not %q", what, r.PathValue(name)))
		return d, false
	}
	return d, true
}

func (s *Server) addImage(w http.ResponseWriter, r *http.Request) {
	images, ok := s.imagesOn(w)
	if !ok {
		return
	}
	q := r.URL.Query()
	version, class := q.Get("version"), q.Get("class")
	if version == "" || class == "" {
		writeError(w, http.StatusBadRequest, "give the image's version and device class: POST /api/v1/images?version=V&class=C with the image as the body")
		return
	}
	format := firmware.Profile(q.Get("format"))
	if format != "" && format != firmware.ProfileNative && format != firmware.ProfileRaw {
		writeError(w, http.StatusBadRequest, fmt.Sprintf(
			"format %q is not native (fotad's packages) or raw (the file as uploaded); leave it out for the class's profile", format))
		return
	}
	if r.ContentLength > MaxImageBytes {
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("image larger than %d bytes", MaxImageBytes))
		return
	}
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxImageBytes))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("image larger than %d bytes", MaxImageBytes))
		return
	case err != nil:
		writeError(w, http.StatusBadRequest, "read image: "+err.Error())
		return
	}
	img, created, err := images.AddImage(r.Context(), data, version, class, format)
	if err != nil {
		s.firmwareError(w, r, err)
		return
	}
	v, status := imageView(img), http.StatusOK
	if created {
		status = http.StatusCreated
		s.log.Info().Str("digest", v.Digest).Str("version", v.Version).Str("class", v.Class).Str("format", v.Format).
			Int64("size", v.Size).Uint64("sequence", v.Sequence).Msg("image added")
	}
	writeJSON(w, status, v)
}

func (s *Server) listImages(w http.ResponseWriter, r *http.Request) {
	images, ok := s.imagesOn(w)
	if !ok {
		return
	}
	imgs, err := images.Images(r.Context())
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	list := ImageList{Images: make([]ImageView, 0, len(imgs))}
	for _, img := range imgs {
		list.Images = append(list.Images, imageView(img))
	}
	writeJSON(w, http.StatusOK, list)
}

func (s *Server) showImage(w http.ResponseWriter, r *http.Request) {
	images, ok := s.imagesOn(w)
	if !ok {
		return
	}
	img, err := images.Image(r.Context(), r.PathValue("ref"), r.URL.Query().Get("class"))
	if err != nil {
		s.firmwareError(w, r, err)
		return
	}
	if !wantDownload(r) {
		writeJSON(w, http.StatusOK, imageView(img))
		return
	}
	data, err := images.ImageData(r.Context(), img.Digest)
	if err != nil {
		s.firmwareError(w, r, err)
		return
	}
	serveBytes(w, r, data, img.Digest, fmt.Sprintf("%s-%s.bin", img.Class, img.Version))
}

func (s *Server) removeImage(w http.ResponseWriter, r *http.Request) {
	images, ok := s.imagesOn(w)
	if !ok {
		return
	}
	d, ok := pathDigest(w, r, "digest", "the image")
	if !ok {
		return
	}
	if err := images.RemoveImage(r.Context(), d); err != nil {
		s.firmwareError(w, r, err)
		return
	}
	s.log.Info().Str("digest", d.String()).Msg("image removed")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNoContent)
}

// signingKey answers with the public key: PEM, or JSON with its
// fingerprint for a client that asks for application/json.
func (s *Server) signingKey(w http.ResponseWriter, r *http.Request) {
	packages, ok := s.packagesOn(w)
	if !ok {
		return
	}
	pub := packages.PublicKey()
	pemBytes, err := manifest.MarshalPublicKeyPEM(pub)
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	if acceptsJSON(r) {
		writeJSON(w, http.StatusOK, SigningKeyView{
			Algorithm:    "ES256",
			Fingerprint:  firmware.KeyFingerprint(pub),
			PublicKeyPEM: string(pemBytes),
		})
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/x-pem-file")
	h.Set("Cache-Control", "no-store")
	_, _ = w.Write(pemBytes)
}

func (s *Server) makePackage(w http.ResponseWriter, r *http.Request) {
	packages, ok := s.packagesOn(w)
	if !ok {
		return
	}
	var req PackageRequest
	if !decodeBody(w, r, &req, "a package request", packageRequestFields) {
		return
	}
	if req.Image == "" {
		writeError(w, http.StatusBadRequest, `"image" is required: the target image's digest or version`)
		return
	}
	freq := firmware.Request{Image: req.Image, Class: req.Class, Full: req.Full}
	if req.Installed != "" {
		d, err := firmware.ParseDigest(req.Installed)
		if err != nil {
			writeError(w, http.StatusBadRequest, `"installed" must be the SHA-256 digest (64 hex digits) of the image the device runs`)
			return
		}
		freq.Installed = d
	}
	offer, err := packages.MakePackage(r.Context(), freq)
	if err != nil {
		s.firmwareError(w, r, err)
		return
	}
	v := packageView(offer.Package)
	v.FullSize, v.DeltaSize, v.Reason = offer.FullSize, offer.DeltaSize, offer.Reason
	writeJSON(w, http.StatusOK, v)
}

func (s *Server) showPackage(w http.ResponseWriter, r *http.Request) {
	packages, ok := s.packagesOn(w)
	if !ok {
		return
	}
	id, ok := pathDigest(w, r, "id", "a package ID")
	if !ok {
		return
	}
	p, err := packages.Package(r.Context(), id)
	if err != nil {
		s.firmwareError(w, r, err)
		return
	}
	if !wantDownload(r) {
		writeJSON(w, http.StatusOK, packageView(p))
		return
	}
	data, err := packages.PackageData(r.Context(), id)
	if err != nil {
		s.firmwareError(w, r, err)
		return
	}
	serveBytes(w, r, data, id, fmt.Sprintf("%s-%s-%s.fwpkg", p.Manifest.Class, p.Manifest.Version, p.Manifest.Format))
}

// wantDownload reports whether the query asks for the bytes
// (?download=1 or true).
func wantDownload(r *http.Request) bool {
	switch r.URL.Query().Get("download") {
	case "1", "true", "yes":
		return true
	}
	return false
}

// acceptsJSON reports whether the Accept header names application/json.
func acceptsJSON(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		if mt, _, err := mime.ParseMediaType(strings.TrimSpace(part)); err == nil && mt == "application/json" {
			return true
		}
	}
	return false
}

// serveBytes sends content-addressed bytes: immutable, with the digest as
// ETag, and Range requests answered.
func serveBytes(w http.ResponseWriter, r *http.Request, data []byte, digest manifest.Digest, filename string) {
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("ETag", `"`+digest.String()+`"`)
	h.Set("Cache-Control", "private, max-age=31536000, immutable")
	h.Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": filename}))
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(data))
}
