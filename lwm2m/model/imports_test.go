package model

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// allowedImports are the non-standard packages the model may use:
// fxamacker/cbor is RFC 8949 complete and hardened against hostile input
// (it checks well-formedness and limits before it allocates), which the
// CBOR-based formats (60, 112, 11544) need for bytes from the network.
var allowedImports = map[string]bool{"github.com/fxamacker/cbor/v2": true}

// TestStandardLibraryOnly holds the house rule that the LwM2M model and its
// codecs import nothing but the standard library and allowedImports.
func TestStandardLibraryOnly(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, name := range files {
		f, err := parser.ParseFile(fset, name, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			if first, _, _ := strings.Cut(path, "/"); strings.Contains(first, ".") && !allowedImports[path] {
				t.Errorf("%s imports %s, which is not in the standard library", name, path)
			}
		}
	}
}
