package cluster

import (
	"maps"
	"slices"
	"time"
)

// presence is this instance's view of which other instance holds which
// client, built from what they announce: a delta for each connect and
// disconnect (numbered per instance), a full snapshot when asked, and a
// beat that carries the number of the last delta. It is a plain
// structure with no I/O and no clock of its own: the Link feeds it under
// its lock and does what its results ask (resync a gap, forget the
// silent).
type presence struct {
	byClient  map[string]string // client id → the instance that announced it last
	instances map[string]*instance
}

// instance is one other instance as presence knows it.
type instance struct {
	clients  map[string]struct{}
	seq      uint64    // the number of the last delta applied
	synced   bool      // a snapshot has been applied: deltas count from it
	lastSeen time.Time // when anything last came from it
}

func newPresence() *presence {
	return &presence{byClient: map[string]string{}, instances: map[string]*instance{}}
}

// get returns origin's record, making one at first sight.
func (p *presence) get(origin string, now time.Time) *instance {
	in := p.instances[origin]
	if in == nil {
		in = &instance{clients: map[string]struct{}{}}
		p.instances[origin] = in
	}
	in.lastSeen = now
	return in
}

// delta applies origin's delta number seq: a client connected (add) or
// disconnected. It reports false when deltas were missed (or no snapshot
// came yet): then origin must be asked for a snapshot. The delta is
// applied either way: it is news.
func (p *presence) delta(origin string, seq uint64, add bool, id string, now time.Time) (inOrder bool) {
	in := p.get(origin, now)
	if in.synced && seq <= in.seq {
		return true // older than the snapshot applied: it knew
	}
	inOrder = in.synced && seq == in.seq+1
	in.seq = seq
	if add {
		in.clients[id] = struct{}{}
		p.byClient[id] = origin
	} else {
		delete(in.clients, id)
		if p.byClient[id] == origin {
			delete(p.byClient, id)
		}
	}
	return inOrder
}

// snapshot replaces what origin holds with ids, as of its delta seq.
func (p *presence) snapshot(origin string, seq uint64, ids []string, now time.Time) {
	in := p.get(origin, now)
	for id := range in.clients {
		if p.byClient[id] == origin {
			delete(p.byClient, id)
		}
	}
	in.clients = make(map[string]struct{}, len(ids))
	for _, id := range ids {
		in.clients[id] = struct{}{}
		p.byClient[id] = origin
	}
	in.seq, in.synced = seq, true
}

// snapshotMore adds ids to the snapshot of origin applied last.
func (p *presence) snapshotMore(origin string, ids []string, now time.Time) {
	in := p.get(origin, now)
	for _, id := range ids {
		in.clients[id] = struct{}{}
		p.byClient[id] = origin
	}
}

// beat notes that origin is alive and at delta seq; it reports false when
// this view is behind (or was never synced): origin must be asked for a
// snapshot.
func (p *presence) beat(origin string, seq uint64, now time.Time) (inStep bool) {
	in := p.get(origin, now)
	return in.synced && in.seq == seq
}

// forget drops origin and its clients.
func (p *presence) forget(origin string) {
	in := p.instances[origin]
	if in == nil {
		return
	}
	for id := range in.clients {
		if p.byClient[id] == origin {
			delete(p.byClient, id)
		}
	}
	delete(p.instances, origin)
}

// expire forgets the instances not heard from since before, and returns
// their names.
func (p *presence) expire(before time.Time) (gone []string) {
	for name, in := range p.instances {
		if in.lastSeen.Before(before) {
			gone = append(gone, name)
		}
	}
	slices.Sort(gone)
	for _, name := range gone {
		p.forget(name)
	}
	return gone
}

// where returns the instance that holds id.
func (p *presence) where(id string) (string, bool) {
	origin, ok := p.byClient[id]
	return origin, ok
}

// InstanceStatus is one other instance as this one knows it.
type InstanceStatus struct {
	Name     string    `json:"name"`
	Clients  int       `json:"clients"`
	LastSeen time.Time `json:"lastSeen"`
}

// list returns the instances, by name.
func (p *presence) list() []InstanceStatus {
	out := make([]InstanceStatus, 0, len(p.instances))
	for _, name := range slices.Sorted(maps.Keys(p.instances)) {
		in := p.instances[name]
		out = append(out, InstanceStatus{Name: name, Clients: len(in.clients), LastSeen: in.lastSeen})
	}
	return out
}
