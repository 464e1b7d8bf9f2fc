package client

import (
	"context"
	"encoding/hex"
	"slices"
	"strconv"
	"strings"

	"github.com/fotahub/fota/coap"
	"github.com/fotahub/fota/lwm2m"
	"github.com/fotahub/fota/lwm2m/model"
)

// singleFormats are read and written by every client, for one value.
var singleFormats = []int{model.ContentFormatText, model.ContentFormatOpaque, model.ContentFormatCBOR}

// ServeCoAP answers the server's operations (LwM2M Core §6.3, response
// codes as in Transport §6.4).
func (c *Client) ServeCoAP(_ context.Context, r *coap.Request) coap.Response {
	if c.cfg.Intercept != nil {
		if resp := c.cfg.Intercept(r); resp.Code != 0 {
			return resp
		}
	}
	if r.Method == coap.FETCH {
		return c.serveComposite(r)
	}
	p, err := model.ParsePath(r.Path)
	if err != nil {
		return coap.Reply(coap.BadRequest)
	}
	if o, ok := p.Object(); ok && hidden(o) {
		return coap.Reply(coap.Unauthorized) // a management server may not touch the keys
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case r.Method == coap.GET && r.Accept == lwm2m.ContentFormatLink:
		return c.discoverLocked(p)
	case r.Method == coap.GET:
		return c.readObserveLocked(r, p)
	case r.Method == coap.PUT && r.Payload == nil && len(r.Query) > 0:
		return c.writeAttributesLocked(r, p)
	case r.Method == coap.PUT:
		return c.writeLocked(r, p, true)
	case r.Method == coap.POST && p.Level() == model.LevelObject:
		return c.createLocked(r, p)
	case r.Method == coap.POST && p.Level() == model.LevelResource && c.executable(p):
		return c.executeLocked(r, p)
	case r.Method == coap.POST && p.Level() == model.LevelResource && !c.multiple(p):
		return coap.Reply(coap.MethodNotAllowed) // neither executable nor a multiple resource to add to
	case r.Method == coap.POST:
		return c.writeLocked(r, p, false)
	case r.Method == coap.DELETE:
		return c.deleteLocked(p)
	}
	return coap.Reply(coap.MethodNotAllowed)
}

func (c *Client) readObserveLocked(r *coap.Request, p model.Path) coap.Response {
	if _, ok := c.nodeLocked(p); !ok {
		return coap.Reply(coap.NotFound)
	}
	if rm, ok := resourceModel(p); ok && !rm.Operations.Readable() {
		return coap.Reply(coap.MethodNotAllowed)
	}
	format, ok := c.answerFormat(r.Accept, p)
	if !ok {
		return coap.Reply(coap.NotAcceptable)
	}
	resp := c.readLocked([]model.Path{p}, format, false)
	if resp.Code == coap.Content {
		c.observeLocked(r, &resp, []model.Path{p}, format)
	}
	return resp
}

// observeLocked registers or cancels an observation (RFC 7641 §3.1, §3.6).
func (c *Client) observeLocked(r *coap.Request, resp *coap.Response, paths []model.Path, format int) {
	key := hex.EncodeToString(r.Token)
	switch r.Observe {
	case coap.ObserveRegister:
		ob := &observer{req: r, paths: paths, format: format, seq: 2}
		c.observers[key] = ob
		resp.Observed, resp.ObserveSeq = true, ob.seq
	case coap.ObserveDeregister:
		delete(c.observers, key)
	}
}

// answerFormat picks the format to answer a read of p in: the one asked
// for if the client speaks it, else its first format (or text for one
// value when nothing was asked).
func (c *Client) answerFormat(accept int, p model.Path) (int, bool) {
	if accept == coap.NoFormat {
		return c.cfg.Formats[0], true
	}
	if slices.Contains(c.cfg.Formats, accept) {
		return accept, true
	}
	return accept, slices.Contains(singleFormats, accept) && p.Level() >= model.LevelResource
}

// readLocked encodes the nodes at paths: one node, or for composite reads
// the values under every path.
func (c *Client) readLocked(paths []model.Path, format int, composite bool) coap.Response {
	var body []byte
	var err error
	if composite {
		var vals []model.PathValue
		for _, p := range paths {
			vals = append(vals, c.valuesLocked(p)...)
		}
		body, err = model.EncodeValues(format, vals)
	} else {
		n, ok := c.nodeLocked(paths[0])
		if !ok {
			return coap.Reply(coap.NotFound)
		}
		body, err = model.Encode(format, paths[0], n)
	}
	if err != nil {
		return coap.Reply(coap.NotAcceptable)
	}
	return coap.Response{Code: coap.Content, ContentFormat: format, Payload: body}
}

// valuesLocked lists the values at or below p; the root covers everything.
func (c *Client) valuesLocked(p model.Path) []model.PathValue {
	if p.IsRoot() {
		var out []model.PathValue
		for _, o := range sortedKeys(c.objects) {
			out = append(out, c.valuesLocked(model.ObjectPath(o))...)
		}
		return out
	}
	n, ok := c.nodeLocked(p)
	if !ok {
		return nil
	}
	vals, _ := model.Flatten(p, n)
	return vals
}

func (c *Client) serveComposite(r *coap.Request) coap.Response {
	if !slices.Contains(c.cfg.Formats, r.ContentFormat) {
		return coap.Reply(coap.UnsupportedFormat)
	}
	paths, err := model.DecodeSenMLPaths(r.ContentFormat, r.Payload)
	if err != nil {
		return coap.Reply(coap.BadRequest)
	}
	format := r.ContentFormat
	if r.Accept != coap.NoFormat {
		if !slices.Contains(c.cfg.Formats, r.Accept) {
			return coap.Reply(coap.NotAcceptable)
		}
		format = r.Accept
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	resp := c.readLocked(paths, format, true)
	if resp.Code == coap.Content {
		c.observeLocked(r, &resp, paths, format)
	}
	return resp
}

func (c *Client) discoverLocked(p model.Path) coap.Response {
	n, ok := c.nodeLocked(p)
	if !ok {
		return coap.Reply(coap.NotFound)
	}
	var links []lwm2m.Link
	add := func(q model.Path) {
		links = append(links, lwm2m.Link{Path: q.String(), Attrs: c.attrs[q]})
	}
	switch n := n.(type) {
	case *model.Object:
		add(p)
		for _, i := range sortedKeys(n.Instances) {
			q, _ := p.Child(i)
			add(q)
			for _, r := range sortedKeys(n.Instances[i].Resources) {
				rq, _ := q.Child(r)
				add(rq)
			}
		}
	case *model.ObjectInstance:
		add(p)
		for _, r := range sortedKeys(n.Resources) {
			q, _ := p.Child(r)
			add(q)
		}
	default:
		add(p)
	}
	body, err := lwm2m.FormatLinks(links)
	if err != nil {
		return coap.Reply(coap.InternalServerError)
	}
	return coap.Response{Code: coap.Content, ContentFormat: lwm2m.ContentFormatLink, Payload: body}
}

func (c *Client) writeAttributesLocked(r *coap.Request, p model.Path) coap.Response {
	if _, ok := c.nodeLocked(p); !ok {
		return coap.Reply(coap.NotFound)
	}
	var attrs []lwm2m.LinkAttr
	for _, q := range r.Query {
		k, v, _ := strings.Cut(q, "=")
		attrs = append(attrs, lwm2m.LinkAttr{Key: k, Value: v})
	}
	c.attrs[p] = attrs
	return coap.Reply(coap.Changed)
}

// writeLocked handles Write: replace (PUT) or partial update (POST).
func (c *Client) writeLocked(r *coap.Request, p model.Path, replace bool) coap.Response {
	if !c.speaks(r.ContentFormat, p) {
		return coap.Reply(coap.UnsupportedFormat)
	}
	if _, ok := c.nodeLocked(p); !ok || p.Level() < model.LevelObjectInstance {
		return coap.Reply(coap.NotFound)
	}
	vals, err := model.DecodeValues(r.ContentFormat, p, r.Payload)
	if err != nil {
		return coap.Reply(coap.BadRequest)
	}
	for _, pv := range vals {
		if !pv.Path.HasPrefix(p) {
			return coap.Reply(coap.BadRequest)
		}
		if rm, ok := resourceModel(pv.Path); ok && !rm.Operations.Writable() {
			return coap.Reply(coap.MethodNotAllowed)
		}
	}
	o, _ := p.Object()
	i, _ := p.Instance()
	oi := c.objects[o][i]
	if replace {
		switch p.Level() {
		case model.LevelObjectInstance:
			for id := range oi.Resources {
				if rm, ok := resourceModel(model.ResourcePath(o, i, id)); !ok || rm.Operations.Writable() {
					delete(oi.Resources, id)
				}
			}
		case model.LevelResource:
			r, _ := p.Resource()
			delete(oi.Resources, r)
		}
	}
	for _, pv := range vals {
		if err := c.setLocked(pv.Path, pv.Value); err != nil {
			return coap.Reply(coap.BadRequest)
		}
	}
	return coap.Reply(coap.Changed)
}

func (c *Client) speaks(format int, p model.Path) bool {
	return slices.Contains(c.cfg.Formats, format) ||
		slices.Contains(singleFormats, format) && p.Level() >= model.LevelResource
}

func (c *Client) executable(p model.Path) bool {
	rm, ok := resourceModel(p)
	return ok && rm.Operations.Executable()
}

func (c *Client) multiple(p model.Path) bool {
	rm, ok := resourceModel(p)
	return ok && rm.Multiple
}

// executeLocked runs an Execute. Executable resources hold no value, so
// the tree has no node for them: the instance must exist.
func (c *Client) executeLocked(r *coap.Request, p model.Path) coap.Response {
	if _, ok := c.nodeLocked(p.Parent()); !ok {
		return coap.Reply(coap.NotFound)
	}
	c.executed = append(c.executed, Execution{Path: p, Args: string(r.Payload)})
	if c.cfg.Execute != nil {
		return coap.Reply(c.cfg.Execute(p, string(r.Payload)))
	}
	return coap.Reply(coap.Changed)
}

func (c *Client) createLocked(r *coap.Request, p model.Path) coap.Response {
	if !slices.Contains(c.cfg.Formats, r.ContentFormat) {
		return coap.Reply(coap.UnsupportedFormat)
	}
	o, _ := p.Object()
	free := uint16(0)
	for _, taken := c.objects[o][free]; taken; _, taken = c.objects[o][free] {
		free++
	}
	// The payload names the new instance (SenML names, a TLV object
	// instance); TLV resources alone leave the choice to the client.
	base := p
	if r.ContentFormat == model.ContentFormatTLV && !tlvWrapped(r.Payload) {
		base = model.ObjectInstancePath(o, free)
	}
	vals, err := model.DecodeValues(r.ContentFormat, base, r.Payload)
	if err != nil {
		return coap.Reply(coap.BadRequest)
	}
	id := free
	if len(vals) > 0 {
		id, _ = vals[0].Path.Instance()
	}
	if _, exists := c.objects[o][id]; exists {
		return coap.Reply(coap.BadRequest)
	}
	if c.objects[o] == nil {
		c.objects[o] = map[uint16]model.ObjectInstance{}
	}
	c.objects[o][id] = model.ObjectInstance{ID: id, Resources: map[uint16]model.Resource{}}
	for _, pv := range vals {
		if i, _ := pv.Path.Instance(); i != id || c.setLocked(pv.Path, pv.Value) != nil {
			delete(c.objects[o], id)
			return coap.Reply(coap.BadRequest)
		}
	}
	return coap.Response{Code: coap.Created, ContentFormat: coap.NoFormat,
		LocationPath: []string{strconv.Itoa(int(o)), strconv.Itoa(int(id))}}
}

// tlvWrapped reports a TLV payload that is an object instance TLV, which
// carries the new instance's id.
func tlvWrapped(b []byte) bool { return len(b) > 0 && b[0]>>6 == 0 }

func (c *Client) deleteLocked(p model.Path) coap.Response {
	if p.Level() != model.LevelObjectInstance {
		return coap.Reply(coap.MethodNotAllowed)
	}
	o, _ := p.Object()
	i, _ := p.Instance()
	if _, ok := c.objects[o][i]; !ok {
		return coap.Reply(coap.NotFound)
	}
	delete(c.objects[o], i)
	return coap.Reply(coap.Deleted)
}

// nodeLocked returns a copy-free view of the node at p.
func (c *Client) nodeLocked(p model.Path) (model.Node, bool) {
	if p.IsRoot() {
		return nil, false
	}
	o, _ := p.Object()
	insts, ok := c.objects[o]
	if !ok {
		return nil, false
	}
	if p.Level() == model.LevelObject {
		return &model.Object{ID: o, Instances: insts}, true
	}
	i, _ := p.Instance()
	oi, ok := insts[i]
	if !ok {
		return nil, false
	}
	if p.Level() == model.LevelObjectInstance {
		return &oi, true
	}
	r, _ := p.Resource()
	res, ok := oi.Resources[r]
	if !ok {
		return nil, false
	}
	ri, multi := p.ResourceInstance()
	if !multi {
		return &res, true
	}
	v, ok := res.Instances[ri]
	if !ok || !res.Multiple {
		return nil, false
	}
	return &model.ResourceInstance{ID: ri, Value: v}, true
}

func resourceModel(p model.Path) (model.ResourceModel, bool) {
	o, _ := p.Object()
	r, ok := p.Resource()
	if !ok {
		return model.ResourceModel{}, false
	}
	m, ok := model.Lookup(o)
	if !ok {
		return model.ResourceModel{}, false
	}
	return m.Resource(r)
}
