package client

import (
	"context"
	"testing"

	"github.com/fotahub/fota/coap"
	"github.com/fotahub/fota/lwm2m/model"
)

func testClient() *Client {
	c := New(Config{Endpoint: "unit", Formats: []int{model.ContentFormatSenMLJSON, model.ContentFormatTLV}})
	c.AddInstance(0, model.ObjectInstance{ID: 0, Resources: map[uint16]model.Resource{
		5: model.SingleResource(5, model.OpaqueValue([]byte("secret"))),
	}})
	c.AddInstance(3, model.ObjectInstance{ID: 0, Resources: map[uint16]model.Resource{
		0: model.SingleResource(0, model.StringValue("Acme")),
		9: model.SingleResource(9, model.IntegerValue(80)),
	}})
	c.AddInstance(1, model.ObjectInstance{ID: 0, Resources: map[uint16]model.Resource{
		1: model.SingleResource(1, model.UnsignedValue(300)),
	}})
	return c
}

func serve(c *Client, method coap.Code, path string, mutate func(*coap.Request)) coap.Response {
	r := coap.NewRequest(method, path)
	if mutate != nil {
		mutate(&r)
	}
	return c.ServeCoAP(context.Background(), &r)
}

// TestServeCodes checks the client answers with the codes LwM2M
// Transport §6.4 gives each case.
func TestServeCodes(t *testing.T) {
	c := testClient()
	cases := []struct {
		name   string
		method coap.Code
		path   string
		mutate func(*coap.Request)
		want   coap.Code
	}{
		{"read instance", coap.GET, "/3/0", nil, coap.Content},
		{"read missing", coap.GET, "/3/1", nil, coap.NotFound},
		{"security object hidden", coap.GET, "/0/0", nil, coap.Unauthorized},
		{"format not spoken", coap.GET, "/3/0", func(r *coap.Request) { r.Accept = model.ContentFormatLwM2MCBOR }, coap.NotAcceptable},
		{"single value as text", coap.GET, "/3/0/9", func(r *coap.Request) { r.Accept = model.ContentFormatText }, coap.Content},
		{"write read-only", coap.PUT, "/3/0/0", func(r *coap.Request) { r.ContentFormat, r.Payload = 0, []byte("Evil") }, coap.MethodNotAllowed},
		{"write unknown format", coap.PUT, "/1/0/1", func(r *coap.Request) { r.ContentFormat, r.Payload = 11544, []byte{0xa0} }, coap.UnsupportedFormat},
		{"write bad payload", coap.PUT, "/1/0/1", func(r *coap.Request) { r.ContentFormat, r.Payload = 0, []byte("-5") }, coap.BadRequest},
		{"write lifetime", coap.PUT, "/1/0/1", func(r *coap.Request) { r.ContentFormat, r.Payload = 0, []byte("60") }, coap.Changed},
		{"execute a value", coap.POST, "/3/0/9", nil, coap.MethodNotAllowed},
		{"execute reboot", coap.POST, "/3/0/4", nil, coap.Changed},
		{"delete a resource", coap.DELETE, "/3/0/9", nil, coap.MethodNotAllowed},
		{"delete missing", coap.DELETE, "/1/9", nil, coap.NotFound},
		{"attributes", coap.PUT, "/3/0/9", func(r *coap.Request) { r.Query = []string{"pmin=5"} }, coap.Changed},
	}
	for _, tc := range cases {
		if got := serve(c, tc.method, tc.path, tc.mutate).Code; got != tc.want {
			t.Errorf("%s: %s %s answered %s, want %s", tc.name, tc.method, tc.path, got, tc.want)
		}
	}
	if n, _ := c.Get(model.ResourcePath(1, 0, 1)); !n.(*model.Resource).Value.Equal(model.UnsignedValue(60)) {
		t.Errorf("lifetime after write: %v", n)
	}
	if attrs := c.Attributes(model.ResourcePath(3, 0, 9)); len(attrs) != 1 || attrs[0].Value != "5" {
		t.Errorf("attributes %v", attrs)
	}
}

func TestObserveRegistersAndCancels(t *testing.T) {
	c := testClient()
	resp := serve(c, coap.GET, "/3/0/9", func(r *coap.Request) { r.Observe, r.Token = coap.ObserveRegister, []byte{1, 2} })
	if resp.Code != coap.Content || !resp.Observed || c.Observed() != 1 {
		t.Fatalf("observe: %+v, %d observers", resp, c.Observed())
	}
	serve(c, coap.GET, "/3/0/9", func(r *coap.Request) { r.Observe, r.Token = coap.ObserveDeregister, []byte{1, 2} })
	if c.Observed() != 0 {
		t.Fatalf("%d observers after cancel", c.Observed())
	}
}

func TestRegistrationLinksHideSecurity(t *testing.T) {
	for _, l := range testClient().objectLinks() {
		if l.Path == "/0/0" || l.Path == "/0" {
			t.Fatalf("security object announced: %v", l)
		}
	}
}
