package model

// Node is one of the LwM2M tree nodes a content format carries: *Object,
// *ObjectInstance, *Resource or *ResourceInstance. The set is closed.
type Node interface {
	// NodeID is the node's own identifier (object, instance, resource or
	// resource instance id).
	NodeID() uint16
	node()
}

// Object is an object with its instances, e.g. the answer to a Read of /3.
type Object struct {
	ID        uint16
	Instances map[uint16]ObjectInstance
}

// ObjectInstance is an object instance with its resources, e.g. /3/0.
type ObjectInstance struct {
	ID        uint16
	Resources map[uint16]Resource
}

// Resource is a single-instance resource holding Value, or, when Multiple is
// set, a multiple-instance resource holding Instances (possibly none).
type Resource struct {
	ID        uint16
	Multiple  bool
	Value     Value
	Instances map[uint16]Value
}

// ResourceInstance is one instance of a multiple-instance resource, e.g.
// /3/0/6/1.
type ResourceInstance struct {
	ID    uint16
	Value Value
}

// SingleResource returns a single-instance resource.
func SingleResource(id uint16, v Value) Resource { return Resource{ID: id, Value: v} }

// MultipleResource returns a multiple-instance resource; a nil map means no
// instances.
func MultipleResource(id uint16, instances map[uint16]Value) Resource {
	if instances == nil {
		instances = map[uint16]Value{}
	}
	return Resource{ID: id, Multiple: true, Instances: instances}
}

// NodeID implements Node.
func (o *Object) NodeID() uint16 { return o.ID }

// NodeID implements Node.
func (oi *ObjectInstance) NodeID() uint16 { return oi.ID }

// NodeID implements Node.
func (r *Resource) NodeID() uint16 { return r.ID }

// NodeID implements Node.
func (ri *ResourceInstance) NodeID() uint16 { return ri.ID }

func (*Object) node()           {}
func (*ObjectInstance) node()   {}
func (*Resource) node()         {}
func (*ResourceInstance) node() {}

// Equal reports whether o and p hold the same instances.
func (o Object) Equal(p Object) bool {
	if o.ID != p.ID || len(o.Instances) != len(p.Instances) {
		return false
	}
	for id, oi := range o.Instances {
		pi, ok := p.Instances[id]
		if !ok || !oi.Equal(pi) {
			return false
		}
	}
	return true
}

// Equal reports whether oi and pi hold the same resources.
func (oi ObjectInstance) Equal(pi ObjectInstance) bool {
	if oi.ID != pi.ID || len(oi.Resources) != len(pi.Resources) {
		return false
	}
	for id, r := range oi.Resources {
		s, ok := pi.Resources[id]
		if !ok || !r.Equal(s) {
			return false
		}
	}
	return true
}

// Equal reports whether r and s are the same resource with the same values.
func (r Resource) Equal(s Resource) bool {
	if r.ID != s.ID || r.Multiple != s.Multiple {
		return false
	}
	if !r.Multiple {
		return r.Value.Equal(s.Value)
	}
	if len(r.Instances) != len(s.Instances) {
		return false
	}
	for id, v := range r.Instances {
		w, ok := s.Instances[id]
		if !ok || !v.Equal(w) {
			return false
		}
	}
	return true
}

// Equal reports whether ri and si are the same resource instance.
func (ri ResourceInstance) Equal(si ResourceInstance) bool {
	return ri.ID == si.ID && ri.Value.Equal(si.Value)
}
