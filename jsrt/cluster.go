package jsrt

import (
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"

	"github.com/dop251/goja"
)

// Cluster is the link to the other instances of a cluster, as handlers
// use it (cmd/moebius-js gives it package cluster's Link). Its methods are
// called on workers' goroutines and must not block; Subscribe's deliver
// is called on a goroutine of the link's.
type Cluster interface {
	// Broadcast sends a frame to every client of every other instance.
	Broadcast(frame []byte) error
	// Send sends a message to a client of another instance; it fails with
	// ErrNoClient when no instance has it.
	Send(id string, frames [][]byte) error
	// Publish sends payload on a subject to every subscriber of every
	// instance.
	Publish(subject string, payload []byte) error
	// Subscribe delivers what is published on subject until unsubscribe.
	Subscribe(subject string, deliver func(subject string, payload []byte)) (unsubscribe func(), err error)
}

// ErrNoClient is what Cluster.Send fails with when no instance of the
// cluster has the client.
var ErrNoClient = errors.New("no instance of the cluster has that client")

// clusterObject is the moebius `cluster`: instance, publish, subscribe.
func (rt *jsRuntime) clusterObject() *goja.Object {
	vm := rt.vm
	o := vm.NewObject()
	instance := goja.Null()
	if name := rt.w.host.cfg.Instance; name != "" {
		instance = vm.ToValue(name)
	}
	_ = o.Set("instance", instance)
	_ = o.Set("publish", func(call goja.FunctionCall) goja.Value {
		c := rt.clusterLink("cluster.publish(subject, x)")
		subject := rt.subject(call.Argument(0), "cluster.publish(subject, x)")
		payload, err := rt.frame(call.Argument(1))
		if err != nil {
			rt.throw(err)
		}
		if err := c.Publish(subject, payload); err != nil {
			rt.throw(fmt.Errorf("cluster.publish(%q): %w", subject, err))
		}
		return goja.Undefined()
	})
	_ = o.Set("subscribe", func(call goja.FunctionCall) goja.Value {
		c := rt.clusterLink("cluster.subscribe(subject, fn)")
		subject := rt.subject(call.Argument(0), "cluster.subscribe(subject, fn)")
		fn, ok := goja.AssertFunction(call.Argument(1))
		if !ok {
			rt.throw(badArgument("cluster.subscribe(subject, fn) needs a function"))
		}
		s := &subscription{rt: rt, fn: fn}
		unsubscribe, err := c.Subscribe(subject, s.arrived)
		if err != nil {
			rt.throw(fmt.Errorf("cluster.subscribe(%q): %w", subject, err))
		}
		s.unsubscribe = unsubscribe
		rt.own(s.close) // a top-level subscription lives as long as its code; a handler's, as its handler
		o := vm.NewObject()
		_ = o.Set("subject", subject)
		_ = o.Set("unsubscribe", func(goja.FunctionCall) goja.Value {
			s.close()
			return goja.Undefined()
		})
		return o
	})
	return o
}

// clusterLink returns the cluster, or throws when this server is in none.
func (rt *jsRuntime) clusterLink(what string) *gatedCluster {
	c := rt.w.cluster
	if c == nil {
		rt.throw(fmt.Errorf("%s: this server is not in a cluster (set cluster_nats)", what))
	}
	return c
}

// subject reads a subject argument.
func (rt *jsRuntime) subject(v goja.Value, what string) string {
	if !goja.IsString(v) || v.String() == "" {
		rt.throw(badArgument("%s needs a subject such as 'orders.new'", what))
	}
	return v.String()
}

// subscription is one cluster.subscribe: what arrives runs its fn on the
// worker until it is closed (unsubscribe(), the end of its owner, the
// worker's retirement).
type subscription struct {
	rt          *jsRuntime
	fn          goja.Callable
	unsubscribe func()
	closed      atomic.Bool  // no fn call once set, even for a message already posted
	pending     atomic.Int64 // messages posted to the worker and not yet run
}

// maxPendingDeliveries bounds the messages one subscription may have
// waiting for its worker: past it (a publisher faster than fn) they are
// dropped, counted and logged, as a slow subscriber's are in NATS.
const maxPendingDeliveries = 10_000

// arrived posts one message to the worker. A goroutine of the cluster's.
func (s *subscription) arrived(subject string, payload []byte) {
	if s.closed.Load() {
		return
	}
	w := s.rt.w
	if s.pending.Add(1) > maxPendingDeliveries {
		s.pending.Add(-1)
		w.host.subscriberDropped.Add(1)
		w.host.lim.Log(w.log, slog.LevelWarn, "subscriber_behind", subject,
			"cluster message dropped: its subscriber is too far behind", "subject", subject, "pending", maxPendingDeliveries)
		return
	}
	w.sched.Post(func() {
		s.pending.Add(-1)
		if !s.closed.Load() {
			s.rt.delivered(s.fn, subject, payload)
		}
	})
}

// close ends the subscription. Any goroutine; idempotent.
func (s *subscription) close() {
	if s.closed.CompareAndSwap(false, true) {
		s.unsubscribe()
	}
}

// delivered runs a subscriber's fn(message) for one message, guarded like
// a handler step; what it throws is logged. Scheduler goroutine.
func (rt *jsRuntime) delivered(fn goja.Callable, subject string, payload []byte) {
	w := rt.w
	w.exitIfRetired()
	msg := rt.vm.NewDynamicObject(&message{rt: rt, raw: [][]byte{payload}, subject: subject})
	if _, err := w.callIn(&scope{}, rt, fn, msg); err != nil {
		w.log.Error("cluster subscriber threw", "subject", subject, "error", rt.describe(err))
	}
}

// Broadcast sends frame to every client of every worker: what another
// instance broadcast. Any goroutine.
func (h *Host) Broadcast(frame []byte) { h.postBroadcast(nil, frame) }
