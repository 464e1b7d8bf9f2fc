package lwm2m

import (
	"time"

	"github.com/fotahub/fota/coap"
	"github.com/fotahub/fota/lwm2m/model"
)

// sendSub is one subscriber to the Sends of one endpoint ("" for all).
type sendSub struct {
	ep string
	c  chan Notification
}

// Sends subscribes to the data clients push with Send (LwM2M 1.1 Core
// §6.4.4, POST /dp). An empty ep subscribes to every client. The channel
// is buffered; when the reader falls behind, new values are dropped and
// logged. stop ends the subscription and closes the channel.
func (o *Operator) Sends(ep string) (c <-chan Notification, stop func()) {
	s := &sendSub{ep: ep, c: make(chan Notification, watchBuffer)}
	o.mu.Lock()
	o.sends[s] = struct{}{}
	o.mu.Unlock()
	return s.c, func() {
		o.mu.Lock()
		defer o.mu.Unlock()
		if _, ok := o.sends[s]; ok {
			delete(o.sends, s)
			close(s.c)
		}
	}
}

// serveSend answers POST /dp. The client must be registered on this
// session (or with this security identity); its values must decode.
func (o *Operator) serveSend(req *coap.Request) coap.Response {
	if req.Method != coap.POST {
		return coap.Reply(coap.MethodNotAllowed)
	}
	ep, ok := o.endpointOf(req)
	if !ok {
		o.log.Info().Str("remote", remoteOf(req)).Str("identity", identityString(req.Identity)).
			Msg("send refused: no registration for this client")
		return coap.Reply(coap.NotFound)
	}
	switch req.ContentFormat {
	case model.ContentFormatSenMLCBOR, model.ContentFormatSenMLJSON, model.ContentFormatLwM2MCBOR:
	default:
		return coap.Reply(coap.UnsupportedFormat)
	}
	vals, err := model.DecodeValues(req.ContentFormat, model.RootPath(), req.Payload)
	if err != nil {
		o.log.Info().Err(err).Str("endpoint", ep).Msg("send refused: bad payload")
		return coap.Reply(coap.BadRequest)
	}
	n := Notification{Endpoint: ep, Values: vals, Received: time.Now()}
	o.mu.Lock()
	for s := range o.sends {
		if s.ep != "" && s.ep != ep {
			continue
		}
		select {
		case s.c <- n:
		default:
			o.log.Warn().Str("endpoint", ep).Msg("send subscriber too slow: values dropped")
		}
	}
	o.mu.Unlock()
	o.log.Debug().Str("endpoint", ep).Int("values", len(vals)).Msg("send received")
	resp := coap.Reply(coap.Changed)
	resp.Then = func() { o.heard(req.Session) }
	return resp
}

// endpointOf finds the registered endpoint of a request's client: by its
// session, or, for a client on a new DTLS session that has not updated
// yet, by the security identity it registered with.
func (o *Operator) endpointOf(req *coap.Request) (string, bool) {
	if req.Session != nil {
		o.mu.Lock()
		ep, ok := o.bySession[req.Session]
		o.mu.Unlock()
		if ok {
			if _, live := o.reg.Lookup(ep); live {
				return ep, true
			}
		}
	}
	id, ok := identityOf(req.Identity)
	if !ok || id.Kind == IdentityNone {
		return "", false
	}
	for _, reg := range o.reg.Registrations() {
		if reg.Identity == id {
			return reg.Endpoint, true
		}
	}
	return "", false
}
