package simulator

import (
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// radio is the device's socket as its modem sees it: in queue mode
// (PSM) the modem sleeps once the device has been quiet for the awake
// time, and what arrives meanwhile is lost, as on a real network. Sending
// wakes it.
type radio struct {
	net.PacketConn
	last    atomic.Int64 // unix nanoseconds of the last datagram either way
	awake   atomic.Int64 // awake time in nanoseconds; 0: never sleeps
	dropped atomic.Int64
	mu      sync.Mutex
}

func newRadio(pc net.PacketConn) *radio {
	r := &radio{PacketConn: pc}
	r.touch()
	return r
}

func (r *radio) touch() { r.last.Store(time.Now().UnixNano()) }

// sleepAfter makes the modem sleep once it has been quiet for d.
func (r *radio) sleepAfter(d time.Duration) {
	if r != nil {
		r.awake.Store(int64(d))
	}
}

// wake is a transmission: the modem is awake from now on.
func (r *radio) wake() {
	if r != nil {
		r.touch()
	}
}

func (r *radio) asleep() bool {
	a := r.awake.Load()
	return a > 0 && time.Now().UnixNano()-r.last.Load() > a
}

// ReadFrom drops what arrives while the modem sleeps.
func (r *radio) ReadFrom(p []byte) (int, net.Addr, error) {
	for {
		n, addr, err := r.PacketConn.ReadFrom(p)
		if err != nil || !r.asleep() {
			if err == nil {
				r.touch()
			}
			return n, addr, err
		}
		r.dropped.Add(1)
	}
}

// WriteTo wakes the modem.
func (r *radio) WriteTo(p []byte, addr net.Addr) (int, error) {
	r.touch()
	return r.PacketConn.WriteTo(p, addr)
}
