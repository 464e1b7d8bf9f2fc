package model

import (
	"errors"
	"testing"
)

func TestParsePathRoundTrip(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		level Level
	}{
		{"root", "/", LevelRoot},
		{"object", "/5", LevelObject},
		{"object instance", "/5/0", LevelObjectInstance},
		{"resource", "/5/0/3", LevelResource},
		{"resource instance", "/3/0/6/1", LevelResourceInstance},
		{"max ids", "/65535/65535/65535/65535", LevelResourceInstance},
		{"zero ids", "/0/0/0/0", LevelResourceInstance},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := ParsePath(tt.in)
			if err != nil {
				t.Fatalf("ParsePath(%q): %v", tt.in, err)
			}
			if got := p.String(); got != tt.in {
				t.Errorf("String() = %q, want %q", got, tt.in)
			}
			if p.Level() != tt.level {
				t.Errorf("Level() = %v, want %v", p.Level(), tt.level)
			}
		})
	}
}

func TestParsePathRejects(t *testing.T) {
	tests := []struct{ name, in string }{
		{"empty", ""},
		{"no leading slash", "5/0"},
		{"trailing slash", "/5/0/"},
		{"double slash", "/5//0"},
		{"id too large", "/65536"},
		{"id far too large", "/99999999999999999999"},
		{"non digit", "/5/a"},
		{"sign", "/+5"},
		{"negative", "/-1"},
		{"space", "/5/ 0"},
		{"leading zero", "/05"},
		{"five levels", "/1/2/3/4/5"},
		{"hex", "/0x10"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := ParsePath(tt.in)
			if err == nil {
				t.Fatalf("ParsePath(%q) = %v, want error", tt.in, p)
			}
			if !errors.Is(err, ErrInvalidPath) {
				t.Errorf("error %v does not wrap ErrInvalidPath", err)
			}
		})
	}
}

func TestPathHelpers(t *testing.T) {
	p := ResourceInstancePath(3, 0, 6, 1)
	checks := []struct {
		name string
		get  func() (uint16, bool)
		want uint16
	}{
		{"object", p.Object, 3},
		{"instance", p.Instance, 0},
		{"resource", p.Resource, 6},
		{"resource instance", p.ResourceInstance, 1},
	}
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			got, ok := c.get()
			if !ok || got != c.want {
				t.Errorf("got %d, %v; want %d, true", got, ok, c.want)
			}
		})
	}
	t.Run("absent levels", func(t *testing.T) {
		q := ObjectPath(5)
		if _, ok := q.Instance(); ok {
			t.Error("Instance() of /5 reported ok")
		}
		if _, ok := RootPath().Object(); ok {
			t.Error("Object() of / reported ok")
		}
	})
	t.Run("parent and child", func(t *testing.T) {
		if got := p.Parent(); got != ResourcePath(3, 0, 6) {
			t.Errorf("Parent() = %v", got)
		}
		if got := RootPath().Parent(); !got.IsRoot() {
			t.Errorf("root Parent() = %v", got)
		}
		c, ok := ObjectInstancePath(5, 0).Child(3)
		if !ok || c != ResourcePath(5, 0, 3) {
			t.Errorf("Child(3) = %v, %v", c, ok)
		}
		if _, ok := p.Child(0); ok {
			t.Error("Child of a resource instance path reported ok")
		}
		parsed, _ := ParsePath("/5/0/3")
		if parsed != ResourcePath(5, 0, 3) {
			t.Error("parsed path is not == the constructed one")
		}
	})
	t.Run("prefix", func(t *testing.T) {
		if !p.HasPrefix(ObjectPath(3)) || !p.HasPrefix(RootPath()) || !p.HasPrefix(p) {
			t.Error("HasPrefix missed an ancestor")
		}
		if p.HasPrefix(ObjectPath(5)) || ObjectPath(3).HasPrefix(p) {
			t.Error("HasPrefix accepted a non-ancestor")
		}
	})
	t.Run("level names", func(t *testing.T) {
		for l := LevelRoot; l <= LevelResourceInstance+1; l++ {
			if l.String() == "" {
				t.Errorf("Level(%d) has no name", l)
			}
		}
	})
}

func FuzzParsePath(f *testing.F) {
	for _, s := range []string{"/", "/5/0/3", "/3/0/6/1", "/65536", "//", "/01"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePath(s)
		if err != nil {
			return
		}
		if p.String() != s {
			t.Fatalf("ParsePath(%q).String() = %q", s, p.String())
		}
	})
}
