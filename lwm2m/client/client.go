// Package client is an LwM2M client: it registers with a server over CoAP
// or DTLS, keeps an object tree, and answers the server's operations
// (Read, Discover, Write, Write-Attributes, Execute, Create, Delete,
// Observe, Read- and Observe-Composite) in the content formats it
// announces. The device simulator and the server's tests play devices with
// it.
package client

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/fotahub/fota/coap"
	"github.com/fotahub/fota/lwm2m"
	"github.com/fotahub/fota/lwm2m/model"
)

// Config describes the client.
type Config struct {
	Endpoint string
	// Version is the LwM2M version it registers with ("1.0", "1.1", "1.2").
	Version string
	// Lifetime of the registration; 0 means 86400 s.
	Lifetime time.Duration
	// Queue registers in queue mode.
	Queue bool
	// Formats are the content formats it reads and writes besides the
	// single-value ones, announced in the registration (1.1+). Empty
	// means TLV only. The first is what it answers in when the server does
	// not ask for one.
	Formats []int
	// Server is the server's address (host:port); Secure selects DTLS.
	Server string
	Secure bool
	// Transport holds the credentials and socket options.
	Transport coap.ClientConfig
	// Execute is called for an Execute on an executable resource; nil
	// accepts every Execute.
	Execute func(p model.Path, args string) coap.Code
	// Intercept, if set, sees every request first: a response with a
	// non-zero Code answers it, a zero Response passes it to the object
	// tree. The simulator takes firmware downloads and pushes this way.
	Intercept func(r *coap.Request) coap.Response
	// Timeout bounds each request the client sends (default 10 s).
	Timeout time.Duration
}

// Client is one simulated LwM2M client. It is safe for concurrent use.
type Client struct {
	cfg Config

	mu        sync.Mutex
	objects   map[uint16]map[uint16]model.ObjectInstance
	attrs     map[model.Path][]lwm2m.LinkAttr
	observers map[string]*observer // by token
	conn      *coap.ClientConn
	regID     string
	executed  []Execution
}

// Execution records one Execute the client received.
type Execution struct {
	Path model.Path
	Args string
}

type observer struct {
	req    *coap.Request
	paths  []model.Path // one path, or the paths of a composite observation
	format int
	seq    uint32
}

// New returns a client with an empty object tree.
func New(cfg Config) *Client {
	if cfg.Lifetime <= 0 {
		cfg.Lifetime = 86400 * time.Second
	}
	if cfg.Version == "" {
		cfg.Version = "1.1"
	}
	if len(cfg.Formats) == 0 {
		cfg.Formats = []int{model.ContentFormatTLV}
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	return &Client{cfg: cfg, objects: map[uint16]map[uint16]model.ObjectInstance{},
		attrs: map[model.Path][]lwm2m.LinkAttr{}, observers: map[string]*observer{}}
}

// AddInstance puts an object instance into the tree, replacing any.
func (c *Client) AddInstance(o uint16, oi model.ObjectInstance) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.objects[o] == nil {
		c.objects[o] = map[uint16]model.ObjectInstance{}
	}
	c.objects[o][oi.ID] = cloneInstance(oi)
}

// Get returns the node at p.
func (c *Client) Get(p model.Path) (model.Node, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nodeLocked(p)
}

// Executed lists the Executes received so far.
func (c *Client) Executed() []Execution {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.executed)
}

// Attributes returns the notification attributes written to p.
func (c *Client) Attributes(p model.Path) []lwm2m.LinkAttr {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.attrs[p])
}

// Observed reports how many observations the server holds on the client.
func (c *Client) Observed() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.observers)
}

// Set changes the value at a resource or resource instance path and
// notifies the server of every observation that covers it.
func (c *Client) Set(ctx context.Context, p model.Path, v model.Value) error {
	c.mu.Lock()
	if err := c.setLocked(p, v); err != nil {
		c.mu.Unlock()
		return err
	}
	var notes []notification
	for _, ob := range c.observers {
		if covers(ob.paths, p) {
			ob.seq++
			notes = append(notes, c.notificationLocked(ob))
		}
	}
	conn := c.conn
	c.mu.Unlock()
	var errs []error
	for _, n := range notes {
		if conn == nil {
			break
		}
		errs = append(errs, conn.Notify(ctx, n.req, n.seq, n.resp))
	}
	return errors.Join(errs...)
}

type notification struct {
	req  *coap.Request
	seq  uint32
	resp coap.Response
}

func (c *Client) notificationLocked(ob *observer) notification {
	return notification{req: ob.req, seq: ob.seq, resp: c.readLocked(ob.paths, ob.format, len(ob.paths) > 1 || ob.req.Method == coap.FETCH)}
}

func covers(paths []model.Path, p model.Path) bool {
	for _, q := range paths {
		if p.HasPrefix(q) || q.HasPrefix(p) {
			return true
		}
	}
	return false
}

func (c *Client) setLocked(p model.Path, v model.Value) error {
	o, _ := p.Object()
	i, _ := p.Instance()
	r, ok := p.Resource()
	oi, exists := c.objects[o][i]
	if !ok || !exists {
		return fmt.Errorf("set %s: no such resource", p)
	}
	if ri, multi := p.ResourceInstance(); multi {
		res := oi.Resources[r]
		if !res.Multiple {
			res = model.MultipleResource(r, nil)
		}
		res.Instances[ri] = v
		oi.Resources[r] = res
	} else {
		oi.Resources[r] = model.SingleResource(r, v)
	}
	return nil
}

// Dial opens the session to the server.
func (c *Client) Dial(ctx context.Context) error {
	tc := c.cfg.Transport
	tc.Handler = c
	var conn *coap.ClientConn
	var err error
	if c.cfg.Secure {
		conn, err = coap.DialDTLS(ctx, c.cfg.Server, tc)
	} else {
		conn, err = coap.DialUDP(ctx, c.cfg.Server, tc)
	}
	if err != nil {
		return err
	}
	c.mu.Lock()
	old := c.conn
	c.conn = conn
	c.mu.Unlock()
	if old != nil {
		_ = old.Close()
	}
	return nil
}

// Close ends the session, as a device does that powers off or loses its
// DTLS state; observations held on it are gone.
func (c *Client) Close() error {
	c.mu.Lock()
	conn := c.conn
	c.conn = nil
	c.observers = map[string]*observer{}
	c.mu.Unlock()
	if conn == nil {
		return nil
	}
	return conn.Close()
}

// Register registers the client (Dial first).
func (c *Client) Register(ctx context.Context) error {
	links := []lwm2m.Link{{Path: "/", Attrs: []lwm2m.LinkAttr{{Key: "rt", Value: "oma.lwm2m"}}}}
	if c.cfg.Version != "1.0" {
		cts := make([]string, len(c.cfg.Formats))
		for i, f := range c.cfg.Formats {
			cts[i] = strconv.Itoa(f)
		}
		links[0].Attrs = append(links[0].Attrs, lwm2m.LinkAttr{Key: "ct", Value: strings.Join(cts, " ")})
	}
	links = append(links, c.objectLinks()...)
	body, err := lwm2m.FormatLinks(links)
	if err != nil {
		return err
	}
	req := coap.NewRequest(coap.POST, "/rd")
	req.Query = []string{"ep=" + c.cfg.Endpoint, "lt=" + strconv.Itoa(int(c.cfg.Lifetime/time.Second)),
		"lwm2m=" + c.cfg.Version, "b=U"}
	if c.cfg.Queue {
		if c.cfg.Version == "1.0" {
			req.Query[3] = "b=UQ"
		} else {
			req.Query = append(req.Query, "Q")
		}
	}
	req.ContentFormat, req.Payload = lwm2m.ContentFormatLink, body
	resp, err := c.do(ctx, req)
	if err != nil {
		return fmt.Errorf("register %s: %w", c.cfg.Endpoint, err)
	}
	if resp.Code != coap.Created || len(resp.LocationPath) != 2 {
		return fmt.Errorf("register %s: %s", c.cfg.Endpoint, resp.Code)
	}
	c.mu.Lock()
	c.regID = resp.LocationPath[1]
	c.mu.Unlock()
	return nil
}

// Update sends a registration Update with no parameters.
func (c *Client) Update(ctx context.Context) error {
	return c.regRequest(ctx, coap.POST, coap.Changed)
}

// Deregister ends the registration.
func (c *Client) Deregister(ctx context.Context) error {
	return c.regRequest(ctx, coap.DELETE, coap.Deleted)
}

func (c *Client) regRequest(ctx context.Context, method, want coap.Code) error {
	c.mu.Lock()
	id := c.regID
	c.mu.Unlock()
	if id == "" {
		return errors.New("not registered")
	}
	resp, err := c.do(ctx, coap.NewRequest(method, "/rd/"+id))
	if err != nil {
		return fmt.Errorf("%s /rd/%s: %w", method, id, err)
	}
	if resp.Code != want {
		return fmt.Errorf("%s /rd/%s: %s", method, id, resp.Code)
	}
	return nil
}

// Send pushes values to the server (LwM2M 1.1 Send, POST /dp).
func (c *Client) Send(ctx context.Context, format int, vals []model.PathValue) (coap.Code, error) {
	body, err := model.EncodeValues(format, vals)
	if err != nil {
		return 0, err
	}
	req := coap.NewRequest(coap.POST, "/dp")
	req.ContentFormat, req.Payload = format, body
	resp, err := c.do(ctx, req)
	if err != nil {
		return 0, err
	}
	return resp.Code, nil
}

// Do sends a request to the server over the client's session, bounded by
// the client's Timeout.
func (c *Client) Do(ctx context.Context, req coap.Request) (coap.Response, error) {
	return c.do(ctx, req)
}

func (c *Client) do(ctx context.Context, req coap.Request) (coap.Response, error) {
	c.mu.Lock()
	conn := c.conn
	c.mu.Unlock()
	if conn == nil {
		return coap.Response{}, errors.New("no session: Dial first")
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	return conn.Do(ctx, req)
}

func (c *Client) objectLinks() []lwm2m.Link {
	c.mu.Lock()
	defer c.mu.Unlock()
	var links []lwm2m.Link
	for _, o := range sortedKeys(c.objects) {
		if hidden(o) {
			continue // LwM2M Core §6.2.1: Security (0) and OSCORE (21) are never announced
		}
		if len(c.objects[o]) == 0 {
			links = append(links, lwm2m.Link{Path: model.ObjectPath(o).String()})
		}
		for _, i := range sortedKeys(c.objects[o]) {
			links = append(links, lwm2m.Link{Path: model.ObjectInstancePath(o, i).String()})
		}
	}
	return links
}

func sortedKeys[V any](m map[uint16]V) []uint16 {
	keys := make([]uint16, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func cloneInstance(oi model.ObjectInstance) model.ObjectInstance {
	out := model.ObjectInstance{ID: oi.ID, Resources: make(map[uint16]model.Resource, len(oi.Resources))}
	for id, r := range oi.Resources {
		if r.Multiple {
			r = model.MultipleResource(id, maps.Clone(r.Instances))
		}
		out.Resources[id] = r
	}
	return out
}

// hidden reports the objects only a bootstrap server may see: Security
// (0) and OSCORE (21), which hold the client's keys.
func hidden(o uint16) bool { return o == 0 || o == 21 }
