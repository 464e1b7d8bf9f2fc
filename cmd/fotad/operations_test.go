package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fotahub/fota/coap"
	"github.com/fotahub/fota/lwm2m/client"
	"github.com/fotahub/fota/lwm2m/model"
)

var fotactlOnce struct {
	sync.Once
	path string
	err  error
}

// fotactlBinary builds the CLI once per test process.
func fotactlBinary(t *testing.T) string {
	t.Helper()
	fotactlOnce.Do(func() {
		dir, err := os.MkdirTemp("", "fotactl")
		if err != nil {
			fotactlOnce.err = err
			return
		}
		fotactlOnce.path = filepath.Join(dir, "fotactl")
		out, err := exec.Command("go", "build", "-o", fotactlOnce.path, "../fotactl").CombinedOutput()
		if err != nil {
			fotactlOnce.err = fmt.Errorf("go build fotactl: %v\n%s", err, out)
		}
	})
	if fotactlOnce.err != nil {
		t.Fatal(fotactlOnce.err)
	}
	return fotactlOnce.path
}

// TestFieldEngineerOperations drives a device over DTLS through fotad the
// way a field engineer does: fotactl, the admin API, the operator queue.
func TestFieldEngineerOperations(t *testing.T) {
	s := startServer(t, nil)
	s.provision("meter-7", "meter-7-id", "meter-7-key")
	dev := client.New(client.Config{Endpoint: "meter-7", Version: "1.1", Server: s.coapsAddr(), Secure: true,
		Formats:   []int{model.ContentFormatSenMLCBOR, model.ContentFormatTLV},
		Transport: coap.ClientConfig{PSKIdentity: "meter-7-id", PSKKey: []byte("meter-7-key"), ConnectionID: true}})
	dev.AddInstance(1, model.ObjectInstance{ID: 0, Resources: map[uint16]model.Resource{
		0: model.SingleResource(0, model.IntegerValue(1)),
		1: model.SingleResource(1, model.UnsignedValue(3600)),
	}})
	dev.AddInstance(3, model.ObjectInstance{ID: 0, Resources: map[uint16]model.Resource{
		0: model.SingleResource(0, model.StringValue("Acme Meters")),
		3: model.SingleResource(3, model.StringValue("2.4.1")),
		9: model.SingleResource(9, model.IntegerValue(87)),
	}})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := dev.Dial(ctx); err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	if err := dev.Register(ctx); err != nil {
		t.Fatal(err)
	}

	ctl := func(args ...string) (string, error) {
		cmd := exec.CommandContext(ctx, fotactlBinary(t), append([]string{"--server", s.apiURL()}, args...)...)
		cmd.Env = append(os.Environ(), "FOTA_TOKEN="+s.d.token)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	mustCtl := func(args ...string) string {
		t.Helper()
		out, err := ctl(args...)
		if err != nil {
			t.Fatalf("fotactl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}

	if out := mustCtl("read", "meter-7", "/3/0"); !strings.Contains(out, "Manufacturer") || !strings.Contains(out, "Acme Meters") {
		t.Errorf("read /3/0:\n%s", out)
	}
	var res struct {
		Code   string
		Values []struct {
			Path  string
			Value json.RawMessage
		}
	}
	if err := json.Unmarshal([]byte(mustCtl("read", "meter-7", "/3/0/9", "--json")), &res); err != nil ||
		res.Code != "2.05" || len(res.Values) != 1 || string(res.Values[0].Value) != "87" {
		t.Errorf("read --json: %+v %v", res, err)
	}
	mustCtl("write", "meter-7", "/1/0/1", "300")
	if n, _ := dev.Get(model.ResourcePath(1, 0, 1)); !n.(*model.Resource).Value.Equal(model.UnsignedValue(300)) {
		t.Errorf("lifetime after write: %v", n)
	}
	mustCtl("exec", "meter-7", "/3/0/4")
	if ex := dev.Executed(); len(ex) != 1 || ex[0].Path != model.ResourcePath(3, 0, 4) {
		t.Errorf("executions %+v", ex)
	}
	if out := mustCtl("discover", "meter-7", "/3/0"); !strings.Contains(out, "/3/0/9") {
		t.Errorf("discover:\n%s", out)
	}
	out, err := ctl("read", "meter-7", "/4/0")
	if err == nil || !strings.Contains(out, "4.04") {
		t.Errorf("read of a missing object: %v\n%s", err, out)
	}

	// observe prints each change until interrupted.
	cmd := exec.CommandContext(ctx, fotactlBinary(t), "--server", s.apiURL(), "observe", "meter-7", "/3/0/9")
	cmd.Env = append(os.Environ(), "FOTA_TOKEN="+s.d.token)
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(stdout)
	if !lines.Scan() || !strings.Contains(lines.Text(), "87") {
		t.Fatalf("observe: first line %q", lines.Text())
	}
	if err := dev.Set(ctx, model.ResourcePath(3, 0, 9), model.IntegerValue(86)); err != nil {
		t.Fatal(err)
	}
	if !lines.Scan() || !strings.Contains(lines.Text(), "86") {
		t.Fatalf("observe: notification line %q", lines.Text())
	}
	_ = cmd.Process.Signal(syscall.SIGINT)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("observe after Ctrl-C: %v", err)
	}
	waitFor(t, "observation cancelled on the device", func() bool { return dev.Observed() == 0 })
}
