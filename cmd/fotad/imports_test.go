package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"
)

// The house rules on imports and package docs, held as a test the way
// CoreDNS holds its presubmit checks: only coap/ touches go-coap and
// pion, only store/ touches bbolt; the LwM2M model and the delivery
// packages depend on neither the store nor the API; commands are imported by nobody; every package says
// what it owns.

// modulePath is this module's import path.
const modulePath = "github.com/fotahub/fota"

// importOwners: only packages under owner (a directory of this module) may
// import root or a package under it. Checked on the direct imports of
// every package, its tests included.
var importOwners = []struct{ root, owner, why string }{
	{"github.com/plgd-dev/go-coap", "coap", "the transport is the only layer that knows the CoAP stack"},
	{"github.com/pion", "coap", "the transport is the only layer that knows DTLS"},
	{"go.etcd.io/bbolt", "store", "storage is reached through the interfaces its users declare"},
}

// layering: no package under from may depend, directly or through other
// packages, on to (a directory of this module or an outside import path).
// Checked on the packages without their tests.
var layering = []struct{ from, to, why string }{
	{"lwm2m", "store", "the LwM2M model declares the store interfaces it needs; store implements them"},
	{"lwm2m", "api", "the API is built on the LwM2M model, not the other way round"},
	{"lwm2m", "cmd", "commands only wire packages together"},
	{"api", "store", "the API reaches storage through the lwm2m interfaces"},
	{"api", "go.etcd.io/bbolt", "the API reaches storage through the lwm2m interfaces"},
	{"delivery", "store", "delivery/firmware declares the store interfaces it needs; store implements them"},
	{"delivery", "api", "the API is built on the delivery packages, not the other way round"},
	{"delivery", "cmd", "commands only wire packages together"},
	{"delivery", "simulator", "the server does not depend on the device simulator; fotad passes in what a plan needs"},
	{"api", "simulator", "the server does not depend on the device simulator"},
	{"lwm2m", "simulator", "the server does not depend on the device simulator"},
	{"coap", "simulator", "the server does not depend on the device simulator"},
}

func TestImportRules(t *testing.T) {
	pkgs := listPackages(t)
	byPath := map[string]*listedPackage{}
	var own []*listedPackage
	for _, p := range pkgs {
		byPath[p.ImportPath] = p
		if !p.DepOnly && within(p.ImportPath, modulePath) {
			own = append(own, p)
		}
	}
	if len(own) == 0 {
		t.Fatal("go list found no packages of this module")
	}

	for _, p := range own {
		if p.Error != nil {
			t.Errorf("%s: %s", p.ImportPath, p.Error.Err)
		}
		for _, imp := range p.allImports() {
			for _, r := range importOwners {
				if within(imp.path, r.root) && !within(p.ImportPath, modulePath+"/"+r.owner) {
					t.Errorf("%s imports %s%s: only packages under %s/ may (%s)", short(p.ImportPath), imp.path, imp.where, r.owner, r.why)
				}
			}
			if cmd, ok := commandOf(imp.path); ok {
				if mine, _ := commandOf(p.ImportPath); mine != cmd {
					t.Errorf("%s imports %s%s: only %s itself may import its packages (commands only wire packages together)", short(p.ImportPath), short(imp.path), imp.where, cmd)
				}
			}
		}
		for _, r := range layering {
			if !within(p.ImportPath, modulePath+"/"+r.from) {
				continue
			}
			to := r.to
			if !strings.Contains(to, ".") {
				to = modulePath + "/" + to
			}
			if chain := importChain(byPath, p.ImportPath, func(q string) bool { return within(q, to) }); chain != nil {
				t.Errorf("%s must not depend on %s (%s), but %s", short(p.ImportPath), short(to), r.why, formatChain(chain))
			}
		}
		if strings.TrimSpace(p.Doc) == "" {
			t.Errorf("%s has no package doc comment: say in one sentence what it owns (a doc.go if there is more to say)", short(p.ImportPath))
		}
	}
}

// listedPackage is the part of `go list -json` these rules read.
type listedPackage struct {
	ImportPath   string
	Doc          string
	DepOnly      bool
	Imports      []string
	TestImports  []string
	XTestImports []string
	Error        *struct{ Err string }
}

type importedPath struct{ path, where string }

// allImports lists the direct imports of the package and of its tests.
func (p *listedPackage) allImports() []importedPath {
	var out []importedPath
	for _, set := range []struct {
		paths []string
		where string
	}{{p.Imports, ""}, {p.TestImports, " (in its tests)"}, {p.XTestImports, " (in its external tests)"}} {
		for _, imp := range set.paths {
			out = append(out, importedPath{imp, set.where})
		}
	}
	return out
}

// listPackages runs go list over the module and every package it depends on.
func listPackages(t *testing.T) []*listedPackage {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		if ci := os.Getenv("CI"); ci != "" && ci != "false" && ci != "0" {
			t.Fatalf("the go command is not on PATH: %v", err)
		}
		t.Skipf("the go command is not on PATH (%v): cannot check the import rules", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goBin, "list", "-e", "-deps",
		"-json=ImportPath,Doc,DepOnly,Imports,TestImports,XTestImports,Error", modulePath+"/...")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.Bytes())
	}
	var pkgs []*listedPackage
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		p := new(listedPackage)
		if err := dec.Decode(p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("decode go list output: %v", err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}

// importChain returns the shortest chain of imports from the package from
// to a package for which target holds, or nil.
func importChain(pkgs map[string]*listedPackage, from string, target func(string) bool) []string {
	prev := map[string]string{from: ""}
	queue := []string{from}
	for len(queue) > 0 {
		cur := queue[0]
		queue = queue[1:]
		p := pkgs[cur]
		if p == nil {
			continue
		}
		for _, imp := range p.Imports {
			if _, seen := prev[imp]; seen {
				continue
			}
			prev[imp] = cur
			if target(imp) {
				chain := []string{imp}
				for at := cur; at != ""; at = prev[at] {
					chain = append(chain, at)
				}
				slices.Reverse(chain)
				return chain
			}
			queue = append(queue, imp)
		}
	}
	return nil
}

func formatChain(chain []string) string {
	parts := make([]string, len(chain))
	for i, p := range chain {
		parts[i] = short(p)
	}
	if len(parts) == 2 {
		return parts[0] + " imports " + parts[1]
	}
	return "it does through " + strings.Join(parts, " → ")
}

// within reports whether path is root or a package under it.
func within(path, root string) bool {
	return path == root || strings.HasPrefix(path, root+"/")
}

// commandOf returns the command a package of this module belongs to
// ("cmd/fotad" for cmd/fotad and the packages under it).
func commandOf(path string) (string, bool) {
	rest, ok := strings.CutPrefix(path, modulePath+"/cmd/")
	if !ok || rest == "" {
		return "", false
	}
	name, _, _ := strings.Cut(rest, "/")
	return "cmd/" + name, true
}

// short drops the module path from this module's import paths.
func short(path string) string {
	if s, ok := strings.CutPrefix(path, modulePath+"/"); ok {
		return s
	}
	return path
}
