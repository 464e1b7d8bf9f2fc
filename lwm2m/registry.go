package lwm2m

import (
	"container/heap"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/fotahub/fota/coap"
)

// DefaultIdleGrace is CoAP's MAX_TRANSMIT_WAIT (RFC 7252 §4.8.2): how long
// past its lifetime a silent client's session is kept, so that an Update
// sent at the last moment and retransmitted still finds it.
const DefaultIdleGrace = 93 * time.Second

// RegistryConfig configures a Registry.
type RegistryConfig struct {
	// Devices binds security identities to endpoints. Nil means no device
	// is provisioned: only open NoSec and X.509 registrations succeed.
	Devices DeviceStore
	// Store persists registrations. Nil keeps them in memory only.
	Store RegistrationStore
	// OpenRegistration accepts NoSec registrations from endpoints with no
	// credentials. Without it, every client must use DTLS.
	OpenRegistration bool
	// IdleGrace is added to the lifetime for the session idle timeout;
	// zero or negative means DefaultIdleGrace.
	IdleGrace time.Duration
	// Logger receives one line per registration event and refusal.
	Logger zerolog.Logger
	// Now is the clock, for tests; nil means time.Now.
	Now func() time.Time
}

// RegistrationObserver hears of registration changes. Registered runs on
// its own goroutine after the client has been answered, so requests it
// sends reach the client after its 2.01 or 2.04.
type RegistrationObserver interface {
	// Registered reports a Register (update false) or an Update, with the
	// session the client spoke on (nil for requests built in tests).
	Registered(reg Registration, s *coap.Session, update bool)
	// Deregistered reports a De-register or an expiry.
	Deregistered(reg Registration)
}

// Registry holds the live registrations: it answers the registration
// interface (Register, Update, De-register on /rd), persists every change
// before acknowledging it, and removes registrations whose lifetime
// passes. It is safe for concurrent use.
//
// Locking: requests for one endpoint are serialized by a per-endpoint
// stripe lock held across the store call, so that Register, Update,
// De-register and expiry of one endpoint cannot interleave; the map lock
// mu is held only to read or commit memory, never during I/O, so a slow
// store delays only the endpoints that share a stripe. Lock order is
// stripe, then mu.
type Registry struct {
	devices  DeviceStore
	store    RegistrationStore
	observer RegistrationObserver
	open     bool
	grace    time.Duration
	log      zerolog.Logger
	now      func() time.Time

	stripes [64]sync.Mutex

	mu         sync.RWMutex
	byID       map[string]*entry
	byEndpoint map[string]*entry
	reserved   map[string]bool // ids handed out but not yet committed
	expiry     expiryHeap

	// wake tells Run that the earliest expiry moved earlier.
	wake chan struct{}
}

// entry is one live registration. reg changes only under mu.
type entry struct {
	reg     Registration
	session *coap.Session
	index   int // position in the expiry heap
}

// NewRegistry returns an empty registry. Call Load to restore stored
// registrations and Run to expire them.
func NewRegistry(cfg RegistryConfig) *Registry {
	r := &Registry{
		devices:    cfg.Devices,
		store:      cfg.Store,
		open:       cfg.OpenRegistration,
		grace:      cfg.IdleGrace,
		log:        cfg.Logger.With().Str("component", "lwm2m").Logger(),
		now:        cfg.Now,
		byID:       map[string]*entry{},
		byEndpoint: map[string]*entry{},
		reserved:   map[string]bool{},
		wake:       make(chan struct{}, 1),
	}
	if r.grace <= 0 {
		r.grace = DefaultIdleGrace
	}
	if r.now == nil {
		r.now = time.Now
	}
	return r
}

// ServeCoAP answers the registration interface: POST /rd (Register),
// POST /rd/{id} (Update) and DELETE /rd/{id} (De-register). Other paths
// are 4.04, other methods on these paths 4.05.
func (r *Registry) ServeCoAP(ctx context.Context, req *coap.Request) coap.Response {
	segs := strings.Split(strings.TrimPrefix(req.Path, "/"), "/")
	switch {
	case len(segs) == 1 && segs[0] == "rd":
		if req.Method != coap.POST {
			return coap.Reply(coap.MethodNotAllowed)
		}
		return r.register(ctx, req)
	case len(segs) == 2 && segs[0] == "rd" && segs[1] != "":
		switch req.Method {
		case coap.POST:
			return r.update(ctx, req, segs[1])
		case coap.DELETE:
			return r.deregister(ctx, req, segs[1])
		}
		return coap.Reply(coap.MethodNotAllowed)
	}
	return coap.Reply(coap.NotFound)
}

// Registrations returns a copy of every live registration, sorted by endpoint.
func (r *Registry) Registrations() []Registration {
	r.mu.RLock()
	regs := make([]Registration, 0, len(r.byEndpoint))
	for _, e := range r.byEndpoint {
		regs = append(regs, cloneRegistration(e.reg))
	}
	r.mu.RUnlock()
	slices.SortFunc(regs, func(a, b Registration) int { return strings.Compare(a.Endpoint, b.Endpoint) })
	return regs
}

// Lookup returns a copy of the endpoint's live registration.
func (r *Registry) Lookup(endpoint string) (Registration, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	e, ok := r.byEndpoint[endpoint]
	if !ok {
		return Registration{}, false
	}
	return cloneRegistration(e.reg), true
}

// Session returns the session the endpoint last registered or updated
// on, or nil when there is none (restored from the store, or made by a
// request without one) or it has closed.
func (r *Registry) Session(endpoint string) *coap.Session {
	r.mu.RLock()
	var s *coap.Session
	if e, ok := r.byEndpoint[endpoint]; ok {
		s = e.session
	}
	r.mu.RUnlock()
	if s == nil {
		return nil
	}
	select {
	case <-s.Done():
		return nil
	default:
		return s
	}
}

// Count returns the number of live registrations.
func (r *Registry) Count() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return len(r.byID)
}

// Load restores the stored registrations. Records already expired, and
// all but the newest of an endpoint (left behind when a re-registration
// could not delete its predecessor), are deleted from the store instead.
// Restored registrations have no session until the client speaks again.
// Call it before serving: a registration already live in memory wins
// over a stored one for the same endpoint.
func (r *Registry) Load(ctx context.Context) error {
	if r.store == nil {
		return nil
	}
	stored, err := r.store.Registrations(ctx)
	if err != nil {
		return fmt.Errorf("load registrations: %w", err)
	}
	now := r.now()
	newest := map[string]Registration{}
	var drop []Registration
	for _, reg := range stored {
		switch {
		case reg.ID == "" || reg.Endpoint == "" || reg.Lifetime <= 0:
			r.log.Warn().Str("endpoint", reg.Endpoint).Str("id", reg.ID).Msg("invalid stored registration dropped")
			drop = append(drop, reg)
		case !reg.Expires().After(now):
			drop = append(drop, reg)
		default:
			if prev, ok := newest[reg.Endpoint]; ok {
				if !newerThan(reg, prev) {
					drop = append(drop, reg)
					continue
				}
				drop = append(drop, prev)
			}
			newest[reg.Endpoint] = reg
		}
	}
	r.dropStored(ctx, drop)
	loaded := r.restore(newest)
	r.log.Info().Int("loaded", loaded).Int("dropped", len(drop)).Msg("registrations restored")
	return nil
}

// newerThan orders registrations of one endpoint by when they were last
// refreshed, then registered, then by id so that the choice is stable.
func newerThan(a, b Registration) bool {
	if !a.LastSeen.Equal(b.LastSeen) {
		return a.LastSeen.After(b.LastSeen)
	}
	if !a.RegisteredAt.Equal(b.RegisteredAt) {
		return a.RegisteredAt.After(b.RegisteredAt)
	}
	return a.ID > b.ID
}

// dropStored deletes records Load will not restore. A failure is only
// logged: the next Load drops the record again.
func (r *Registry) dropStored(ctx context.Context, regs []Registration) {
	for _, reg := range regs {
		if reg.ID == "" {
			continue
		}
		if err := r.store.DeleteRegistration(ctx, reg.ID); err != nil {
			r.log.Warn().Err(err).Str("endpoint", reg.Endpoint).Str("id", reg.ID).Msg("stale registration left in store")
		}
	}
}

// restore puts loaded registrations into memory and returns how many.
func (r *Registry) restore(regs map[string]Registration) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for ep, reg := range regs {
		if _, live := r.byEndpoint[ep]; live {
			continue
		}
		if _, live := r.byID[reg.ID]; live || r.reserved[reg.ID] {
			continue
		}
		e := &entry{reg: reg}
		r.byID[reg.ID] = e
		r.byEndpoint[ep] = e
		heap.Push(&r.expiry, e)
		n++
	}
	r.signal()
	return n
}

// register handles POST /rd.
func (r *Registry) register(ctx context.Context, req *coap.Request) coap.Response {
	p, err := ParseRegister(req)
	if err != nil {
		return r.refused(req, "register", claimedEndpoint(req), err)
	}
	id, ok := identityOf(req.Identity)
	if !ok {
		return r.refused(req, "register", p.Endpoint, refuse(coap.Forbidden, "unknown security mode %s", req.Identity.Mode))
	}
	ep, err := r.authorize(ctx, id, p.Endpoint)
	if err != nil {
		return r.refused(req, "register", p.Endpoint, err)
	}

	unlock := r.lockEndpoint(ep)
	defer unlock()
	old, replacing := r.lookupEntry(ep)
	if replacing && id.Kind == IdentityNone && old.Identity.Kind != IdentityNone {
		// Open registration must not let a plain-CoAP peer take over an
		// endpoint that proved itself over DTLS.
		return r.refused(req, "register", ep, refuse(coap.Forbidden, "nosec register of endpoint registered with %s", old.Identity.Kind))
	}

	now := r.now()
	reg := Registration{
		ID:           r.reserveID(),
		Endpoint:     ep,
		Version:      p.Version,
		Lifetime:     p.Lifetime,
		Binding:      p.Binding,
		Queue:        p.Queue,
		SMSNumber:    p.SMSNumber,
		RootPath:     p.RootPath,
		Objects:      p.Objects,
		Identity:     id,
		Address:      remoteOf(req),
		RegisteredAt: now,
		LastSeen:     now,
	}
	if err := r.put(ctx, reg); err != nil {
		r.release(reg.ID)
		return r.failed(req, "register", ep, fmt.Errorf("register %s: %w", ep, err))
	}
	if replacing {
		r.dropReplaced(ctx, old)
	}
	r.commit(reg, req.Session)
	r.keepSession(req.Session, reg.Lifetime)

	ev := r.event(r.log.Info(), reg, reg.Address)
	if replacing {
		ev = ev.Str("replaced", old.ID)
	}
	ev.Msg("registered")
	resp := coap.Response{Code: coap.Created, LocationPath: []string{"rd", reg.ID}, ContentFormat: coap.NoFormat}
	return r.announce(resp, reg, req.Session, false)
}

// dropReplaced deletes the stored registration a re-registration
// replaced. The new one is already durable, so a failure is logged and
// not answered: Load keeps only the newest registration of an endpoint.
func (r *Registry) dropReplaced(ctx context.Context, old Registration) {
	if r.store == nil {
		return
	}
	// The client has its answer coming; finish the cleanup even if it
	// hangs up now.
	if err := r.store.DeleteRegistration(context.WithoutCancel(ctx), old.ID); err != nil {
		r.log.Warn().Err(err).Str("endpoint", old.Endpoint).Str("id", old.ID).
			Msg("replaced registration left in store")
	}
}

// lockOwned finds registration regID, locks its endpoint and checks that
// the request's identity owns it. On success the caller must call unlock;
// otherwise it answers with refusal.
func (r *Registry) lockOwned(req *coap.Request, op, regID string) (cur Registration, unlock func(), refusal *coap.Response) {
	cur, ok := r.lookupID(regID)
	if !ok {
		resp := r.refused(req, op, "", refuse(coap.NotFound, "unknown registration %q", regID))
		return cur, nil, &resp
	}
	unlock = r.lockEndpoint(cur.Endpoint)
	// Re-read under the endpoint lock: a concurrent request may have
	// replaced or removed the registration since.
	if cur, ok = r.lookupID(regID); !ok {
		unlock()
		resp := r.refused(req, op, "", refuse(coap.NotFound, "unknown registration %q", regID))
		return cur, nil, &resp
	}
	if err := r.checkOwner(req, cur); err != nil {
		unlock()
		resp := r.refused(req, op, cur.Endpoint, err)
		return cur, nil, &resp
	}
	return cur, unlock, nil
}

// update handles POST /rd/{id}.
func (r *Registry) update(ctx context.Context, req *coap.Request, regID string) coap.Response {
	cur, unlock, refusal := r.lockOwned(req, "update", regID)
	if refusal != nil {
		return *refusal
	}
	defer unlock()
	u, err := ParseUpdate(req, cur.Version)
	if err != nil {
		return r.refused(req, "update", cur.Endpoint, err)
	}

	next := u.Apply(cur)
	next.LastSeen = r.now()
	if addr := remoteOf(req); addr != "" {
		next.Address = addr
	}
	if err := r.put(ctx, next); err != nil {
		return r.failed(req, "update", cur.Endpoint, fmt.Errorf("update %s: %w", cur.Endpoint, err))
	}
	r.commit(next, req.Session)
	r.keepSession(req.Session, next.Lifetime)
	r.event(r.log.Info(), next, next.Address).Msg("updated")
	return r.announce(coap.Reply(coap.Changed), next, req.Session, true)
}

// announce has the observer hear of reg once resp is on its way.
func (r *Registry) announce(resp coap.Response, reg Registration, s *coap.Session, update bool) coap.Response {
	if r.observer != nil {
		reg := cloneRegistration(reg)
		resp.Then = func() { r.observer.Registered(reg, s, update) }
	}
	return resp
}

// deregister handles DELETE /rd/{id}.
func (r *Registry) deregister(ctx context.Context, req *coap.Request, regID string) coap.Response {
	cur, unlock, refusal := r.lockOwned(req, "deregister", regID)
	if refusal != nil {
		return *refusal
	}
	defer unlock()
	if r.store != nil {
		if err := r.store.DeleteRegistration(ctx, regID); err != nil {
			return r.failed(req, "deregister", cur.Endpoint, fmt.Errorf("deregister %s: %w", cur.Endpoint, err))
		}
	}
	r.remove(regID)
	r.event(r.log.Info(), cur, remoteOf(req)).Msg("deregistered")
	if r.observer != nil {
		r.observer.Deregistered(cur)
	}
	return coap.Reply(coap.Deleted)
}

// authorize decides which endpoint a Register from identity id may
// claim, given the ep parameter (empty when omitted). A PSK identity and
// a certificate each belong to exactly one endpoint; a NoSec client may
// only claim an endpoint without credentials, and only with open
// registration.
func (r *Registry) authorize(ctx context.Context, id Identity, ep string) (string, error) {
	switch id.Kind {
	case IdentityPSK:
		d, err := r.deviceByPSK(ctx, id.Name)
		if errors.Is(err, ErrNotFound) {
			return "", refuse(coap.Forbidden, "unknown psk identity %q", id.Name)
		} else if err != nil {
			return "", fmt.Errorf("psk identity %q: %w", id.Name, err)
		}
		if ep != "" && ep != d.Endpoint {
			return "", refuse(coap.Forbidden, "psk identity %q belongs to another endpoint than %q", id.Name, ep)
		}
		return d.Endpoint, nil
	case IdentityX509:
		if ep != "" && ep != id.Name {
			return "", refuse(coap.Forbidden, "certificate of %q used for endpoint %q", id.Name, ep)
		}
		if err := checkEndpoint(id.Name); err != nil {
			return "", refuse(coap.Forbidden, "certificate common name %q is not an endpoint name", id.Name)
		}
		return id.Name, nil
	}
	if ep == "" {
		return "", refuse(coap.BadRequest, "missing endpoint name (ep): nosec clients must send it")
	}
	d, err := r.device(ctx, ep)
	switch {
	case err == nil && d.HasCredentials():
		return "", refuse(coap.Forbidden, "endpoint has credentials and must register over DTLS")
	case err != nil && !errors.Is(err, ErrNotFound):
		return "", fmt.Errorf("device %q: %w", ep, err)
	case !r.open:
		return "", refuse(coap.Forbidden, "nosec registration is not open")
	}
	return ep, nil
}

// checkOwner lets only the identity that registered update or
// de-register. Any NoSec peer may act on a NoSec registration: a NAT
// rebinding changes its address, and it never proved more than that.
func (r *Registry) checkOwner(req *coap.Request, reg Registration) error {
	id, ok := identityOf(req.Identity)
	if !ok || id.Kind != reg.Identity.Kind || (id.Kind != IdentityNone && id.Name != reg.Identity.Name) {
		return refuse(coap.Forbidden, "registration %s belongs to %s, not %s", reg.ID, reg.Identity, id)
	}
	return nil
}

func (r *Registry) deviceByPSK(ctx context.Context, identity string) (Device, error) {
	if r.devices == nil {
		return Device{}, ErrNotFound
	}
	return r.devices.DeviceByPSKIdentity(ctx, identity)
}

func (r *Registry) device(ctx context.Context, endpoint string) (Device, error) {
	if r.devices == nil {
		return Device{}, ErrNotFound
	}
	return r.devices.Device(ctx, endpoint)
}

func (r *Registry) put(ctx context.Context, reg Registration) error {
	if r.store == nil {
		return nil
	}
	return r.store.PutRegistration(ctx, reg)
}

// keepSession ties the session's idle timeout to the lifetime: the
// transport must not close a session the client may still update on.
func (r *Registry) keepSession(s *coap.Session, lifetime time.Duration) {
	if s != nil {
		s.SetIdleTimeout(lifetime + r.grace)
	}
}

// refused answers a request refused by the rules and logs why.
func (r *Registry) refused(req *coap.Request, op, ep string, err error) coap.Response {
	code := CodeOf(err)
	if code == coap.InternalServerError {
		return r.failed(req, op, ep, err)
	}
	r.log.Warn().Str("endpoint", ep).Str("remote", remoteOf(req)).Str("identity", identityString(req.Identity)).
		Str("op", op).Str("code", code.String()).Str("reason", reasonOf(err)).Msg("request refused")
	return coap.Reply(code)
}

// failed answers 5.00 for a failure of the server itself.
func (r *Registry) failed(req *coap.Request, op, ep string, err error) coap.Response {
	r.log.Error().Err(err).Str("endpoint", ep).Str("remote", remoteOf(req)).Str("op", op).Msg("request failed")
	return coap.Reply(coap.InternalServerError)
}

// event adds the fixed fields of a registration event; remote is where
// the event came from (the last known address for an expiry).
func (r *Registry) event(ev *zerolog.Event, reg Registration, remote string) *zerolog.Event {
	return ev.Str("endpoint", reg.Endpoint).Str("remote", remote).Str("id", reg.ID).
		Int64("lifetime", int64(reg.Lifetime/time.Second)).Str("binding", reg.Binding).
		Bool("queue", reg.Queue).Str("version", reg.Version).Str("identity", reg.Identity.String())
}

func reasonOf(err error) string {
	var re *RequestError
	if errors.As(err, &re) {
		if re.Err != nil {
			return re.Reason + ": " + re.Err.Error()
		}
		return re.Reason
	}
	return err.Error()
}

// identityOf maps the transport's identity to the domain's.
func identityOf(ci coap.Identity) (Identity, bool) {
	switch ci.Mode {
	case coap.NoSec:
		return Identity{Kind: IdentityNone}, true
	case coap.PSK:
		return Identity{Kind: IdentityPSK, Name: ci.Name}, true
	case coap.X509:
		return Identity{Kind: IdentityX509, Name: ci.Name}, true
	}
	return Identity{}, false
}

func identityString(ci coap.Identity) string {
	if id, ok := identityOf(ci); ok {
		return id.String()
	}
	return ci.Mode.String()
}

// claimedEndpoint is the ep parameter as sent, for logging a request
// refused before it was parsed.
func claimedEndpoint(req *coap.Request) string {
	for _, q := range req.Query {
		if ep, ok := strings.CutPrefix(q, "ep="); ok {
			return ep
		}
	}
	return ""
}

func remoteOf(req *coap.Request) string {
	if req.RemoteAddr == nil {
		return ""
	}
	return req.RemoteAddr.String()
}

// lockEndpoint serializes the requests of one endpoint. Stripes keep the
// memory fixed however many endpoints there are; two endpoints sharing a
// stripe only wait for each other's store calls.
func (r *Registry) lockEndpoint(ep string) (unlock func()) {
	h := uint32(2166136261) // FNV-1a
	for i := 0; i < len(ep); i++ {
		h ^= uint32(ep[i])
		h *= 16777619
	}
	m := &r.stripes[h%uint32(len(r.stripes))]
	m.Lock()
	return m.Unlock
}

func (r *Registry) lookupEntry(ep string) (Registration, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if e, ok := r.byEndpoint[ep]; ok {
		return e.reg, true
	}
	return Registration{}, false
}

func (r *Registry) lookupID(id string) (Registration, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if e, ok := r.byID[id]; ok {
		return e.reg, true
	}
	return Registration{}, false
}

// commit makes reg live: it replaces the endpoint's registration (of the
// same or another id) and remembers the session, keeping the old one when
// the request came without.
func (r *Registry) commit(reg Registration, s *coap.Session) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.reserved, reg.ID)
	if e, ok := r.byID[reg.ID]; ok {
		e.reg = reg
		if s != nil {
			e.session = s
		}
		heap.Fix(&r.expiry, e.index)
		r.wakeIfFirst(e)
		return
	}
	if old, ok := r.byEndpoint[reg.Endpoint]; ok {
		r.removeLocked(old)
	}
	e := &entry{reg: reg, session: s}
	r.byID[reg.ID] = e
	r.byEndpoint[reg.Endpoint] = e
	heap.Push(&r.expiry, e)
	r.wakeIfFirst(e)
}

func (r *Registry) remove(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if e, ok := r.byID[id]; ok {
		r.removeLocked(e)
	}
}

func (r *Registry) removeLocked(e *entry) {
	delete(r.byID, e.reg.ID)
	if r.byEndpoint[e.reg.Endpoint] == e {
		delete(r.byEndpoint, e.reg.Endpoint)
	}
	heap.Remove(&r.expiry, e.index)
}

// wakeIfFirst tells Run to re-arm its timer when e now expires first.
func (r *Registry) wakeIfFirst(e *entry) {
	if e.index == 0 {
		r.signal()
	}
}

func (r *Registry) signal() {
	select {
	case r.wake <- struct{}{}:
	default: // a wake-up is already pending
	}
}

// Registration ids: 8 characters from 62 give about 47 bits, enough that
// an id cannot be guessed (an Update or De-register by id is all a NoSec
// peer needs to prove) while keeping Location-Path short on the air.
const (
	idAlphabet = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	idLength   = 8
)

// reserveID returns a fresh id unused by live and in-flight registrations.
func (r *Registry) reserveID() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	for {
		id := randomID()
		if _, live := r.byID[id]; !live && !r.reserved[id] {
			r.reserved[id] = true
			return id
		}
	}
}

func (r *Registry) release(id string) {
	r.mu.Lock()
	delete(r.reserved, id)
	r.mu.Unlock()
}

// randomID draws idLength characters uniformly from idAlphabet, by
// rejecting bytes that would bias the modulo.
func randomID() string {
	var id [idLength]byte
	var buf [2 * idLength]byte
	for n := 0; n < idLength; {
		_, _ = rand.Read(buf[:]) // never fails since Go 1.24
		for _, b := range buf {
			if b >= 248 { // 248 = 4*62
				continue
			}
			id[n] = idAlphabet[b%62]
			if n++; n == idLength {
				break
			}
		}
	}
	return string(id[:])
}

func cloneRegistration(reg Registration) Registration {
	reg.Objects = cloneLinks(reg.Objects)
	return reg
}

func cloneLinks(links []Link) []Link {
	if links == nil {
		return nil
	}
	out := make([]Link, len(links))
	for i, l := range links {
		out[i] = Link{Path: l.Path, Attrs: slices.Clone(l.Attrs)}
	}
	return out
}
