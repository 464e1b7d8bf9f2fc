package lwm2m_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/fotahub/fota/coap"
	"github.com/fotahub/fota/lwm2m"
	"github.com/fotahub/fota/lwm2m/client"
	"github.com/fotahub/fota/lwm2m/lwm2mtest"
	"github.com/fotahub/fota/lwm2m/model"
)

// server is fotad's LwM2M core on loopback DTLS.
type server struct {
	*lwm2mtest.Server
	reg *lwm2m.Registry
	ops *lwm2m.Operator
}

func startServer(t testing.TB, opcfg lwm2m.OperatorConfig) *server {
	t.Helper()
	ts := lwm2mtest.Start(t, opcfg)
	return &server{Server: ts, reg: ts.Registry, ops: ts.Operator}
}

// device provisions ep and returns its client, with Objects 1, 3 and 5,
// dialled and registered.
func (s *server) device(t testing.TB, ep string, mutate func(*client.Config)) *client.Client {
	t.Helper()
	id, key := s.Provision(t, ep)
	cfg := client.Config{Endpoint: ep, Version: "1.1", Server: s.Addr(), Secure: true,
		Transport: coap.ClientConfig{PSKIdentity: id, PSKKey: key, ConnectionID: true, HandshakeTimeout: 5 * time.Second}}
	if mutate != nil {
		mutate(&cfg)
	}
	c := client.New(cfg)
	c.AddInstance(1, model.ObjectInstance{ID: 0, Resources: map[uint16]model.Resource{
		0: model.SingleResource(0, model.IntegerValue(101)),
		1: model.SingleResource(1, model.UnsignedValue(86400)),
		6: model.SingleResource(6, model.BoolValue(false)),
		7: model.SingleResource(7, model.StringValue("U")),
	}})
	c.AddInstance(3, model.ObjectInstance{ID: 0, Resources: map[uint16]model.Resource{
		0:  model.SingleResource(0, model.StringValue("Open Mobile Alliance")),
		1:  model.SingleResource(1, model.StringValue("Lightweight M2M Client")),
		3:  model.SingleResource(3, model.StringValue("1.0")),
		6:  model.MultipleResource(6, map[uint16]model.Value{0: model.IntegerValue(1), 1: model.IntegerValue(5)}),
		9:  model.SingleResource(9, model.IntegerValue(100)),
		13: model.SingleResource(13, model.TimeValue(time.Unix(1367491215, 0))),
	}})
	c.AddInstance(5, model.ObjectInstance{ID: 0, Resources: map[uint16]model.Resource{
		1: model.SingleResource(1, model.StringValue("")),
		3: model.SingleResource(3, model.IntegerValue(0)),
		5: model.SingleResource(5, model.IntegerValue(0)),
	}})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Dial(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	if err := c.Register(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { _, ok := s.reg.Lookup(ep); return ok })
	return c
}

func waitFor(t testing.TB, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 10 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func ctx5(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func path(s string) model.Path {
	p, err := model.ParsePath(s)
	if err != nil {
		panic(err)
	}
	return p
}

func value(t *testing.T, c *client.Client, p string) model.Value {
	t.Helper()
	n, ok := c.Get(path(p))
	if !ok {
		t.Fatalf("%s missing on the device", p)
	}
	switch n := n.(type) {
	case *model.Resource:
		return n.Value
	case *model.ResourceInstance:
		return n.Value
	}
	t.Fatalf("%s is a %T", p, n)
	return model.Value{}
}

// formatCases are clients of every version with every node format.
var formatCases = []struct {
	name    string
	version string
	formats []int
	want    int // the format the server should pick
}{
	{"1.0-tlv", "1.0", nil, model.ContentFormatTLV},
	{"1.1-tlv", "1.1", []int{model.ContentFormatTLV}, model.ContentFormatTLV},
	{"1.1-senml-cbor", "1.1", []int{model.ContentFormatSenMLCBOR, model.ContentFormatSenMLJSON}, model.ContentFormatSenMLCBOR},
	{"1.1-senml-json", "1.1", []int{model.ContentFormatSenMLJSON}, model.ContentFormatSenMLJSON},
	{"1.1-lwm2m-json", "1.1", []int{model.ContentFormatLwM2MJSON}, model.ContentFormatLwM2MJSON},
	{"1.2-lwm2m-cbor", "1.2", []int{model.ContentFormatLwM2MCBOR, model.ContentFormatSenMLCBOR}, model.ContentFormatLwM2MCBOR},
}

func TestOperations(t *testing.T) {
	s := startServer(t, lwm2m.OperatorConfig{})
	for _, tc := range formatCases {
		t.Run(tc.name, func(t *testing.T) {
			ep := "dev-" + tc.name
			c := s.device(t, ep, func(c *client.Config) { c.Version, c.Formats = tc.version, tc.formats })
			ctx := ctx5(t)

			res, err := s.ops.Do(ctx, ep, lwm2m.Op{Kind: lwm2m.OpRead, Path: path("/3/0")})
			if err != nil {
				t.Fatal(err)
			}
			if res.Format != tc.want {
				t.Errorf("read in %s, want %s", model.FormatName(res.Format), model.FormatName(tc.want))
			}
			want, _ := c.Get(path("/3/0"))
			if oi, ok := res.Node.(*model.ObjectInstance); !ok || !oi.Equal(*want.(*model.ObjectInstance)) {
				t.Errorf("read /3/0:\n got %+v\nwant %+v", res.Node, want)
			}

			res, err = s.ops.Do(ctx, ep, lwm2m.Op{Kind: lwm2m.OpRead, Path: path("/3/0/6/1")})
			if err != nil || len(res.Values) != 1 || !res.Values[0].Value.Equal(model.IntegerValue(5)) {
				t.Errorf("read /3/0/6/1: %+v %v", res.Values, err)
			}

			res, err = s.ops.Do(ctx, ep, lwm2m.Op{Kind: lwm2m.OpDiscover, Path: path("/3/0")})
			if err != nil || len(res.Links) != 7 || res.Links[0].Path != "/3/0" || res.Links[1].Path != "/3/0/0" {
				t.Errorf("discover /3/0: %+v %v", res.Links, err)
			}

			lifetime := model.SingleResource(1, model.UnsignedValue(300))
			if _, err := s.ops.Do(ctx, ep, lwm2m.Op{Kind: lwm2m.OpWrite, Path: path("/1/0/1"), Node: &lifetime}); err != nil {
				t.Fatal(err)
			}
			if v := value(t, c, "/1/0/1"); !v.Equal(model.UnsignedValue(300)) {
				t.Errorf("after write /1/0/1 = %v", v)
			}

			partial := model.ObjectInstance{ID: 0, Resources: map[uint16]model.Resource{
				2: model.SingleResource(2, model.IntegerValue(10)),
				3: model.SingleResource(3, model.IntegerValue(60)),
			}}
			if _, err := s.ops.Do(ctx, ep, lwm2m.Op{Kind: lwm2m.OpWrite, Path: path("/1/0"), Node: &partial, Partial: true}); err != nil {
				t.Fatal(err)
			}
			if v := value(t, c, "/1/0/3"); !v.Equal(model.IntegerValue(60)) || !value(t, c, "/1/0/7").Equal(model.StringValue("U")) {
				t.Errorf("partial update: /1/0/3 = %v, /1/0/7 = %v", v, value(t, c, "/1/0/7"))
			}

			attrs := []lwm2m.LinkAttr{{Key: "pmin", Value: "10"}, {Key: "pmax", Value: "60"}}
			if _, err := s.ops.Do(ctx, ep, lwm2m.Op{Kind: lwm2m.OpWriteAttributes, Path: path("/3/0/9"), Attributes: attrs}); err != nil {
				t.Fatal(err)
			}
			if got := c.Attributes(path("/3/0/9")); len(got) != 2 || got[1] != attrs[1] {
				t.Errorf("attributes on the device: %v", got)
			}

			if _, err := s.ops.Do(ctx, ep, lwm2m.Op{Kind: lwm2m.OpExecute, Path: path("/3/0/4"), Args: "0='now'"}); err != nil {
				t.Fatal(err)
			}
			if ex := c.Executed(); len(ex) != 1 || ex[0].Path != path("/3/0/4") || ex[0].Args != "0='now'" {
				t.Errorf("executions: %+v", ex)
			}

			server := model.ObjectInstance{ID: 7, Resources: map[uint16]model.Resource{
				0: model.SingleResource(0, model.IntegerValue(202)),
				1: model.SingleResource(1, model.UnsignedValue(600)),
				6: model.SingleResource(6, model.BoolValue(true)),
				7: model.SingleResource(7, model.StringValue("UQ")),
			}}
			res, err = s.ops.Do(ctx, ep, lwm2m.Op{Kind: lwm2m.OpCreate, Path: path("/1/7"), Node: &server})
			if err != nil || res.Location != "/1/7" {
				t.Fatalf("create /1/7: %q %v", res.Location, err)
			}
			if v := value(t, c, "/1/7/7"); !v.Equal(model.StringValue("UQ")) {
				t.Errorf("created /1/7/7 = %v", v)
			}
			if _, err := s.ops.Do(ctx, ep, lwm2m.Op{Kind: lwm2m.OpDelete, Path: path("/1/7")}); err != nil {
				t.Fatal(err)
			}
			if _, ok := c.Get(path("/1/7")); ok {
				t.Error("/1/7 still there after delete")
			}

			if tc.version == "1.0" {
				if _, err := s.ops.Do(ctx, ep, lwm2m.Op{Kind: lwm2m.OpReadComposite, Paths: []model.Path{path("/3/0/0")}}); err == nil {
					t.Error("read-composite accepted for a 1.0 client")
				}
				return
			}
			if !hasSenML(tc.formats) {
				return
			}
			res, err = s.ops.Do(ctx, ep, lwm2m.Op{Kind: lwm2m.OpReadComposite, Paths: []model.Path{path("/3/0/0"), path("/1/0/1")}})
			if err != nil || len(res.Values) != 2 || !res.Values[1].Value.Equal(model.UnsignedValue(300)) {
				t.Errorf("read-composite: %+v %v", res.Values, err)
			}
		})
	}
}

func hasSenML(formats []int) bool {
	for _, f := range formats {
		if f == model.ContentFormatSenMLCBOR || f == model.ContentFormatSenMLJSON {
			return true
		}
	}
	return false
}

func TestOperationErrors(t *testing.T) {
	s := startServer(t, lwm2m.OperatorConfig{})
	s.device(t, "dev-1", nil)
	ctx := ctx5(t)
	manufacturer := model.SingleResource(0, model.StringValue("Evil Corp"))
	cases := []struct {
		name string
		op   lwm2m.Op
		want error
		code string
	}{
		{"missing object", lwm2m.Op{Kind: lwm2m.OpRead, Path: path("/4/0")}, lwm2m.ErrTargetNotFound, "4.04"},
		{"read-only resource", lwm2m.Op{Kind: lwm2m.OpWrite, Path: path("/3/0/0"), Node: &manufacturer}, lwm2m.ErrMethodNotAllowed, "4.05"},
		{"execute a value", lwm2m.Op{Kind: lwm2m.OpExecute, Path: path("/3/0/9")}, lwm2m.ErrMethodNotAllowed, "4.05"},
		{"format it does not speak", lwm2m.Op{Kind: lwm2m.OpRead, Path: path("/3/0"), Format: model.ContentFormatSenMLJSON}, lwm2m.ErrNotAcceptable, "4.06"},
		{"payload it cannot read", lwm2m.Op{Kind: lwm2m.OpWrite, Path: path("/1/0"), Node: &model.ObjectInstance{Resources: map[uint16]model.Resource{}}, Format: model.ContentFormatLwM2MJSON}, lwm2m.ErrUnsupportedFormat, "4.15"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.ops.Do(ctx, "dev-1", tc.op)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			var oe *lwm2m.OpError
			if !errors.As(err, &oe) || oe.Endpoint != "dev-1" || !strings.Contains(err.Error(), tc.code) {
				t.Fatalf("error %q does not name the device and code %s", err, tc.code)
			}
		})
	}
	if _, err := s.ops.Do(ctx, "nobody", lwm2m.Op{Kind: lwm2m.OpRead, Path: path("/3/0")}); !errors.Is(err, lwm2m.ErrNotRegistered) {
		t.Fatalf("unregistered endpoint: %v", err)
	}
	if _, err := s.ops.Do(ctx, "dev-1", lwm2m.Op{Kind: lwm2m.OpExecute, Path: path("/3/0")}); err == nil || errors.Is(err, lwm2m.ErrTargetNotFound) {
		t.Fatalf("execute on an instance must be refused before sending: %v", err)
	}
}

func TestOperationDeadline(t *testing.T) {
	s := startServer(t, lwm2m.OperatorConfig{})
	release := make(chan struct{})
	defer close(release)
	s.device(t, "slow", func(c *client.Config) {
		c.Execute = func(model.Path, string) coap.Code { <-release; return coap.Changed }
	})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := s.ops.Do(ctx, "slow", lwm2m.Op{Kind: lwm2m.OpExecute, Path: path("/3/0/4")})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want a deadline error", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("deadline of 300 ms honoured after %v", took)
	}
}

func TestQueueMode(t *testing.T) {
	s := startServer(t, lwm2m.OperatorConfig{AwakeTime: 200 * time.Millisecond})
	c := s.device(t, "sleepy", func(c *client.Config) { c.Queue = true })
	// Asleep once AwakeTime has passed since it last spoke.
	time.Sleep(400 * time.Millisecond)

	first, err := s.ops.Submit("sleepy", lwm2m.Op{Kind: lwm2m.OpRead, Path: path("/3/0/9")}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	lifetime := model.SingleResource(1, model.UnsignedValue(120))
	second, err := s.ops.Submit("sleepy", lwm2m.Op{Kind: lwm2m.OpWrite, Path: path("/1/0/1"), Node: &lifetime}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if st, _ := s.ops.Ticket(first.ID); st.State != lwm2m.TicketQueued {
		t.Fatalf("operation for a sleeping device is %s, want queued", st.State)
	}
	if q := s.ops.Queue("sleepy"); len(q) != 2 || q[0].ID != first.ID || q[1].ID != second.ID {
		t.Fatalf("queue %+v, want the two tickets in order", q)
	}

	if err := c.Update(ctx5(t)); err != nil { // the device wakes up
		t.Fatal(err)
	}
	st, err := s.ops.Wait(ctx5(t), first.ID)
	if err != nil || st.State != lwm2m.TicketDone || !st.Result.Values[0].Value.Equal(model.IntegerValue(100)) {
		t.Fatalf("queued read after the update: %+v %v", st, err)
	}
	if st, _ := s.ops.Wait(ctx5(t), second.ID); st.State != lwm2m.TicketDone {
		t.Fatalf("second queued operation: %+v", st)
	}
	if v := value(t, c, "/1/0/1"); !v.Equal(model.UnsignedValue(120)) {
		t.Fatalf("queued write not applied: %v", v)
	}

	// A device that never wakes up: the operation expires.
	time.Sleep(400 * time.Millisecond)
	t3, err := s.ops.Submit("sleepy", lwm2m.Op{Kind: lwm2m.OpRead, Path: path("/3/0/9")}, time.Now().Add(300*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	st, _ = s.ops.Wait(ctx5(t), t3.ID)
	if st.State != lwm2m.TicketFailed || !errors.Is(st.Err, lwm2m.ErrExpired) {
		t.Fatalf("never-woken operation: %+v", st)
	}
	if q := s.ops.Queue("sleepy"); len(q) != 0 {
		t.Fatalf("expired operation still queued: %+v", q)
	}

	// Do on a sleeping device waits and withdraws its operation when its
	// context ends.
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, err := s.ops.Do(ctx, "sleepy", lwm2m.Op{Kind: lwm2m.OpRead, Path: path("/3/0/9")}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Do on a sleeping device: %v", err)
	}
	if q := s.ops.Queue("sleepy"); len(q) != 0 {
		t.Fatalf("withdrawn operation still queued: %+v", q)
	}
}

func nextNotification(t *testing.T, w *lwm2m.Watch) lwm2m.Notification {
	t.Helper()
	select {
	case n := <-w.C:
		return n
	case <-time.After(5 * time.Second):
		t.Fatal("no notification in 5 s")
	}
	return lwm2m.Notification{}
}

func TestObserve(t *testing.T) {
	s := startServer(t, lwm2m.OperatorConfig{})
	c := s.device(t, "watched", nil)
	ctx := ctx5(t)
	w, res, err := s.ops.Observe(ctx, "watched", lwm2m.Op{Kind: lwm2m.OpObserve, Path: path("/3/0/9")})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Values[0].Value.Equal(model.IntegerValue(100)) {
		t.Fatalf("first value %+v", res.Values)
	}
	if err := c.Set(ctx, path("/3/0/9"), model.IntegerValue(99)); err != nil {
		t.Fatal(err)
	}
	if n := nextNotification(t, w); !n.Values[0].Value.Equal(model.IntegerValue(99)) || n.Reestablished {
		t.Fatalf("notification %+v", n)
	}

	// A notification larger than one block (1 KB): the device object with a
	// long firmware version string.
	wi, _, err := s.ops.Observe(ctx, "watched", lwm2m.Op{Kind: lwm2m.OpObserve, Path: path("/3/0")})
	if err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("v1.2.3-build-", 300) // 3,900 bytes
	if err := c.Set(ctx, path("/3/0/3"), model.StringValue(long)); err != nil {
		t.Fatal(err)
	}
	n := nextNotification(t, wi)
	oi, ok := n.Node.(*model.ObjectInstance)
	if !ok || !oi.Resources[3].Value.Equal(model.StringValue(long)) {
		t.Fatalf("block-wise notification did not carry the %d-byte version", len(long))
	}

	// The device reboots: new DTLS session, new registration. Both
	// observations are set up again and values flow on the new session.
	_ = c.Close()
	if err := c.Dial(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Register(ctx); err != nil {
		t.Fatal(err)
	}
	if n := nextNotification(t, w); !n.Reestablished || !n.Values[0].Value.Equal(model.IntegerValue(99)) {
		t.Fatalf("after re-registration: %+v", n)
	}
	waitFor(t, func() bool { return c.Observed() == 2 })
	if err := c.Set(ctx, path("/3/0/9"), model.IntegerValue(42)); err != nil {
		t.Fatal(err)
	}
	for {
		n := nextNotification(t, w)
		if n.Values[0].Value.Equal(model.IntegerValue(42)) {
			break
		}
	}

	// A new DTLS session with only an Update (no new registration).
	_ = c.Close()
	if err := c.Dial(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Update(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return c.Observed() == 2 })
	if err := c.Set(ctx, path("/3/0/9"), model.IntegerValue(7)); err != nil {
		t.Fatal(err)
	}
	for {
		if n := nextNotification(t, w); n.Values[0].Value.Equal(model.IntegerValue(7)) {
			break
		}
	}

	if err := w.Cancel(ctx); err != nil {
		t.Fatal(err)
	}
	if err := wi.Cancel(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return c.Observed() == 0 })
	if _, open := <-w.C; open {
		t.Fatal("cancelled watch channel still open")
	}
}

func TestObserveComposite(t *testing.T) {
	s := startServer(t, lwm2m.OperatorConfig{})
	c := s.device(t, "composite", func(c *client.Config) {
		c.Formats = []int{model.ContentFormatSenMLCBOR}
	})
	ctx := ctx5(t)
	w, res, err := s.ops.Observe(ctx, "composite", lwm2m.Op{Kind: lwm2m.OpObserveComposite,
		Paths: []model.Path{path("/3/0/9"), path("/1/0/1")}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Values) != 2 {
		t.Fatalf("first values %+v", res.Values)
	}
	if err := c.Set(ctx, path("/1/0/1"), model.UnsignedValue(60)); err != nil {
		t.Fatal(err)
	}
	n := nextNotification(t, w)
	if len(n.Values) != 2 || !n.Values[1].Value.Equal(model.UnsignedValue(60)) {
		t.Fatalf("composite notification %+v", n.Values)
	}
	if err := w.Cancel(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return c.Observed() == 0 })
}

func TestSend(t *testing.T) {
	s := startServer(t, lwm2m.OperatorConfig{})
	c := s.device(t, "sender", func(c *client.Config) { c.Formats = []int{model.ContentFormatSenMLCBOR} })
	sends, stop := s.ops.Sends("sender")
	defer stop()
	ctx := ctx5(t)
	at := time.Unix(1700000000, 0)
	vals := []model.PathValue{{Path: path("/3/0/9"), Value: model.IntegerValue(88), Time: at}}
	for _, cf := range []int{model.ContentFormatSenMLCBOR, model.ContentFormatSenMLJSON} {
		code, err := c.Send(ctx, cf, vals)
		if err != nil || code != coap.Changed {
			t.Fatalf("send as %d: %s %v", cf, code, err)
		}
		select {
		case n := <-sends:
			if n.Endpoint != "sender" || len(n.Values) != 1 || !n.Values[0].Value.Equal(model.IntegerValue(88)) || !n.Values[0].Time.Equal(at) {
				t.Fatalf("send received as %+v", n)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("send not delivered")
		}
	}
}

// TestUnknownObject reads an object the model does not know (IPSO 3303,
// Temperature): its values keep the type the format carries, or are
// opaque in TLV, which carries none.
func TestUnknownObject(t *testing.T) {
	s := startServer(t, lwm2m.OperatorConfig{})
	for _, tc := range []struct {
		name   string
		format int
		want   model.Value
	}{
		{"senml-cbor", model.ContentFormatSenMLCBOR, model.FloatValue(21.5)},
		{"tlv", model.ContentFormatTLV, model.OpaqueValue([]byte{0x41, 0xac, 0, 0})}, // float32 21.5
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := s.device(t, "ipso-"+tc.name, func(c *client.Config) { c.Formats = []int{tc.format} })
			c.AddInstance(3303, model.ObjectInstance{ID: 0, Resources: map[uint16]model.Resource{
				5700: model.SingleResource(5700, model.FloatValue(21.5)),
				5701: model.SingleResource(5701, model.StringValue("Cel")),
			}})
			res, err := s.ops.Do(ctx5(t), "ipso-"+tc.name, lwm2m.Op{Kind: lwm2m.OpRead, Path: path("/3303/0")})
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Values) != 2 || !res.Values[0].Value.Equal(tc.want) {
				t.Fatalf("read /3303/0: %+v", res.Values)
			}
		})
	}
}

// TestCreateWithoutID lets the client pick the new instance's id: the
// server must send TLV then, whatever the client prefers.
func TestCreateWithoutID(t *testing.T) {
	s := startServer(t, lwm2m.OperatorConfig{})
	c := s.device(t, "picker", func(c *client.Config) {
		c.Formats = []int{model.ContentFormatSenMLCBOR, model.ContentFormatTLV}
	})
	inst := model.ObjectInstance{Resources: map[uint16]model.Resource{
		0: model.SingleResource(0, model.IntegerValue(303)),
		1: model.SingleResource(1, model.UnsignedValue(60)),
	}}
	res, err := s.ops.Do(ctx5(t), "picker", lwm2m.Op{Kind: lwm2m.OpCreate, Path: path("/1"), Node: &inst})
	if err != nil || res.Location != "/1/1" {
		t.Fatalf("create /1: %q %v", res.Location, err)
	}
	if v := value(t, c, "/1/1/0"); !v.Equal(model.IntegerValue(303)) {
		t.Fatalf("created /1/1/0 = %v", v)
	}
	_, err = s.ops.Do(ctx5(t), "picker", lwm2m.Op{Kind: lwm2m.OpCreate, Path: path("/1"), Node: &inst, Format: model.ContentFormatSenMLCBOR})
	if err == nil || errors.Is(err, lwm2m.ErrBadRequest) {
		t.Fatalf("create without id in SenML must be refused before sending: %v", err)
	}
}
