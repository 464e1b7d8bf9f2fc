package model

import "testing"

func TestLookupBuiltins(t *testing.T) {
	tests := []struct {
		name      string
		id        uint16
		multiple  bool
		resources int
	}{
		{"security", 0, true, 31},
		{"server", 1, true, 28},
		{"device", 3, false, 23},
		{"connectivity monitoring", 4, false, 14},
		{"firmware update", 5, false, 13},
		{"software management", 9, true, 23},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, ok := Lookup(tt.id)
			if !ok {
				t.Fatalf("Lookup(%d) not found", tt.id)
			}
			if m.ID != tt.id || m.Multiple != tt.multiple || len(m.Resources) != tt.resources {
				t.Errorf("got id %d multiple %v with %d resources", m.ID, m.Multiple, len(m.Resources))
			}
			for id, r := range m.Resources {
				if r.ID != id || r.Name == "" {
					t.Errorf("resource %d: %+v", id, r)
				}
				if (r.Operations == OpE) != (r.Type == TypeNone) {
					t.Errorf("resource %d: executable %v but type %v", id, r.Operations == OpE, r.Type)
				}
			}
		})
	}
}

func TestFirmwareUpdateModel(t *testing.T) {
	tests := []struct {
		id       uint16
		ops      Operations
		typ      Type
		multiple bool
	}{
		{0, OpW, TypeOpaque, false},
		{1, OpRW, TypeString, false},
		{2, OpE, TypeNone, false},
		{3, OpR, TypeInteger, false},
		{5, OpR, TypeInteger, false},
		{6, OpR, TypeString, false},
		{7, OpR, TypeString, false},
		{8, OpR, TypeInteger, true},
		{9, OpR, TypeInteger, false},
		{10, OpE, TypeNone, false},
		{11, OpRW, TypeInteger, false},
		{12, OpR, TypeTime, false},
		{13, OpRW, TypeUnsignedInteger, false},
	}
	m, _ := Lookup(5)
	for _, tt := range tests {
		t.Run(ResourcePath(5, 0, tt.id).String(), func(t *testing.T) {
			r, ok := m.Resource(tt.id)
			if !ok {
				t.Fatal("missing")
			}
			if r.Operations != tt.ops || r.Type != tt.typ || r.Multiple != tt.multiple {
				t.Errorf("got %v %v multiple=%v", r.Operations, r.Type, r.Multiple)
			}
		})
	}
	if _, ok := m.Resource(4); ok {
		t.Error("/5/0/4 is not in the registry")
	}
}

func TestLookupUnknownAndIsolation(t *testing.T) {
	t.Run("unknown object", func(t *testing.T) {
		if _, ok := Lookup(3303); ok {
			t.Error("Lookup(3303) found a model")
		}
	})
	t.Run("callers cannot change the table", func(t *testing.T) {
		m, _ := Lookup(3)
		delete(m.Resources, 0)
		again, _ := Lookup(3)
		if _, ok := again.Resource(0); !ok {
			t.Error("deleting from a looked-up model changed the table")
		}
	})
}

func TestOperations(t *testing.T) {
	tests := []struct {
		op             Operations
		s              string
		read, write, x bool
	}{
		{OpNone, "none", false, false, false},
		{OpR, "R", true, false, false},
		{OpW, "W", false, true, false},
		{OpRW, "RW", true, true, false},
		{OpE, "E", false, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.s, func(t *testing.T) {
			if tt.op.String() != tt.s || tt.op.Readable() != tt.read || tt.op.Writable() != tt.write || tt.op.Executable() != tt.x {
				t.Errorf("%v: readable %v writable %v executable %v", tt.op, tt.op.Readable(), tt.op.Writable(), tt.op.Executable())
			}
		})
	}
}
