package model

import (
	"cmp"
	"fmt"
	"slices"
	"time"
)

// PathValue is one leaf value at its full path: a single-instance resource
// (/o/i/r) or one instance of a multiple-instance resource (/o/i/r/ri). The
// flat formats (SenML JSON and CBOR, LwM2M JSON and CBOR) carry lists of
// them. Time is the timestamp a value was sampled at (Send, timestamped
// notifications); it is zero when the payload gave none.
type PathValue struct {
	Path  Path
	Value Value
	Time  time.Time
}

// ComparePaths orders paths depth-first by id: /3 < /3/0 < /3/0/1 < /3/1.
func ComparePaths(a, b Path) int {
	for i := uint8(0); i < min(a.n, b.n); i++ {
		if c := cmp.Compare(a.ids[i], b.ids[i]); c != 0 {
			return c
		}
	}
	return cmp.Compare(a.n, b.n)
}

// TypeOf returns the value type the built-in object model gives the
// resource p addresses, and false when p is not a resource or resource
// instance path or the model does not know it. Decoders of formats that do
// not carry types (TLV, text, LwM2M CBOR) use it; unknown resources fall
// back to what the wire representation suggests.
func TypeOf(p Path) (Type, bool) {
	o, _ := p.Object()
	r, ok := p.Resource()
	if !ok {
		return TypeNone, false
	}
	return resourceType(o, r)
}

// BuildNode assembles the node at p from leaf values, all of which must lie
// at or below p. A resource is multiple when its values carry resource
// instance ids. p must not be the root: a root-level payload is a list of
// values, not a node.
func BuildNode(p Path, vals []PathValue) (Node, error) {
	for _, pv := range vals {
		if pv.Path.Level() < LevelResource {
			return nil, fmt.Errorf("%w: value at %s is not a resource", ErrNodeMismatch, pv.Path)
		}
		if !pv.Path.HasPrefix(p) {
			return nil, fmt.Errorf("%w: value at %s outside %s", ErrNodeMismatch, pv.Path, p)
		}
	}
	switch p.Level() {
	case LevelObject:
		o, _ := p.Object()
		obj := &Object{ID: o, Instances: map[uint16]ObjectInstance{}}
		for _, pv := range vals {
			i, _ := pv.Path.Instance()
			if _, ok := obj.Instances[i]; !ok {
				obj.Instances[i] = ObjectInstance{ID: i, Resources: map[uint16]Resource{}}
			}
			if err := addValue(obj.Instances[i].Resources, pv); err != nil {
				return nil, err
			}
		}
		return obj, nil
	case LevelObjectInstance:
		i, _ := p.Instance()
		oi := &ObjectInstance{ID: i, Resources: map[uint16]Resource{}}
		for _, pv := range vals {
			if err := addValue(oi.Resources, pv); err != nil {
				return nil, err
			}
		}
		return oi, nil
	case LevelResource:
		r, _ := p.Resource()
		rs := map[uint16]Resource{}
		for _, pv := range vals {
			if err := addValue(rs, pv); err != nil {
				return nil, err
			}
		}
		res, ok := rs[r]
		if !ok {
			return nil, fmt.Errorf("%w: no value for %s", ErrNodeMismatch, p)
		}
		return &res, nil
	case LevelResourceInstance:
		if len(vals) != 1 || vals[0].Path != p {
			return nil, fmt.Errorf("%w: want exactly one value for %s, have %d", ErrNodeMismatch, p, len(vals))
		}
		ri, _ := p.ResourceInstance()
		return &ResourceInstance{ID: ri, Value: vals[0].Value}, nil
	}
	return nil, fmt.Errorf("%w: no node at %s", ErrNodeMismatch, p)
}

// addValue puts one leaf value into the resources of its object instance.
func addValue(rs map[uint16]Resource, pv PathValue) error {
	r, _ := pv.Path.Resource()
	cur, exists := rs[r]
	ri, multi := pv.Path.ResourceInstance()
	switch {
	case !multi && exists:
		return fmt.Errorf("%w: two values for %s", ErrNodeMismatch, pv.Path)
	case !multi:
		rs[r] = SingleResource(r, pv.Value)
	case exists && !cur.Multiple:
		return fmt.Errorf("%w: %s is both single and multiple", ErrNodeMismatch, pv.Path.Parent())
	default:
		if !exists {
			cur = MultipleResource(r, nil)
		}
		if _, dup := cur.Instances[ri]; dup {
			return fmt.Errorf("%w: two values for %s", ErrNodeMismatch, pv.Path)
		}
		cur.Instances[ri] = pv.Value
		rs[r] = cur
	}
	return nil
}

// Flatten lists the leaf values of the node n at p, ordered by path. A
// multiple resource with no instances has no leaves and disappears.
func Flatten(p Path, n Node) ([]PathValue, error) {
	var out []PathValue
	switch n := n.(type) {
	case *Object:
		if p.Level() != LevelObject || n.ID != p.ids[0] {
			return nil, fmt.Errorf("%w: object %d at %s", ErrNodeMismatch, n.ID, p)
		}
		for _, i := range sortedKeys(n.Instances) {
			q, _ := p.Child(i)
			out = flattenResources(out, q, n.Instances[i].Resources)
		}
	case *ObjectInstance:
		if i, ok := p.Instance(); !ok || p.Level() != LevelObjectInstance || i != n.ID {
			return nil, fmt.Errorf("%w: object instance %d at %s", ErrNodeMismatch, n.ID, p)
		}
		out = flattenResources(out, p, n.Resources)
	case *Resource:
		if r, ok := p.Resource(); !ok || p.Level() != LevelResource || r != n.ID {
			return nil, fmt.Errorf("%w: resource %d at %s", ErrNodeMismatch, n.ID, p)
		}
		out = flattenResource(out, p, *n)
	case *ResourceInstance:
		if ri, ok := p.ResourceInstance(); !ok || ri != n.ID {
			return nil, fmt.Errorf("%w: resource instance %d at %s", ErrNodeMismatch, n.ID, p)
		}
		out = append(out, PathValue{Path: p, Value: n.Value})
	default:
		return nil, fmt.Errorf("%w: %T", ErrNodeMismatch, n)
	}
	return out, nil
}

func flattenResources(out []PathValue, instance Path, rs map[uint16]Resource) []PathValue {
	for _, r := range sortedKeys(rs) {
		q, _ := instance.Child(r)
		out = flattenResource(out, q, rs[r])
	}
	return out
}

func flattenResource(out []PathValue, p Path, r Resource) []PathValue {
	if !r.Multiple {
		return append(out, PathValue{Path: p, Value: r.Value})
	}
	for _, ri := range sortedKeys(r.Instances) {
		q, _ := p.Child(ri)
		out = append(out, PathValue{Path: q, Value: r.Instances[ri]})
	}
	return out
}

// SortValues orders vals by path, stably.
func SortValues(vals []PathValue) {
	slices.SortStableFunc(vals, func(a, b PathValue) int { return ComparePaths(a.Path, b.Path) })
}
