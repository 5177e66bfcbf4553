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
	// parts are the snapshots being received in parts, by instance.
	parts map[string][]string
	// byClient is, for each client id, the instances that hold it, the
	// latest to announce it last: ids are the clients' choice, and one
	// may be on two instances at once (a reconnect through a balancer
	// while the old connection lingers).
	byClient  map[string][]string
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
	return &presence{byClient: map[string][]string{}, instances: map[string]*instance{}, parts: map[string][]string{}}
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
		p.hold(id, origin)
	} else {
		delete(in.clients, id)
		p.release(id, origin)
	}
	return inOrder
}

// hold records that origin holds id, as the latest to announce it.
func (p *presence) hold(id, origin string) {
	holders := slices.DeleteFunc(p.byClient[id], func(o string) bool { return o == origin })
	p.byClient[id] = append(holders, origin)
}

// release records that origin no longer holds id.
func (p *presence) release(id, origin string) {
	holders := slices.DeleteFunc(p.byClient[id], func(o string) bool { return o == origin })
	if len(holders) == 0 {
		delete(p.byClient, id)
		return
	}
	p.byClient[id] = holders
}

// snapshot replaces what origin holds with ids, as of its delta seq.
func (p *presence) snapshot(origin string, seq uint64, ids []string, now time.Time) {
	in := p.get(origin, now)
	for id := range in.clients {
		p.release(id, origin)
	}
	in.clients = make(map[string]struct{}, len(ids))
	for _, id := range ids {
		in.clients[id] = struct{}{}
		p.keep(id, origin)
	}
	in.seq, in.synced = seq, true
}

// snapshotPart takes one part of origin's snapshot at delta seq: the
// first part or a later one, and whether more follow. The snapshot is
// applied whole once its last part is in, so that no client is missing
// meanwhile; a later part without its first is dropped.
func (p *presence) snapshotPart(origin string, seq uint64, first, more bool, ids []string, now time.Time) {
	p.get(origin, now)
	if first {
		p.parts[origin] = nil
	} else if _, started := p.parts[origin]; !started {
		return
	}
	all := append(p.parts[origin], ids...)
	if more {
		p.parts[origin] = all
		return
	}
	delete(p.parts, origin)
	p.snapshot(origin, seq, all, now)
}

// keep records that origin holds id, as a snapshot says: behind any
// instance that announced it since (a snapshot is no newer claim).
func (p *presence) keep(id, origin string) {
	if slices.Contains(p.byClient[id], origin) {
		return
	}
	p.byClient[id] = append([]string{origin}, p.byClient[id]...)
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
		p.release(id, origin)
	}
	delete(p.instances, origin)
	delete(p.parts, origin)
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

// where returns the instance that holds id (the latest to announce it,
// when several do).
func (p *presence) where(id string) (string, bool) {
	holders := p.byClient[id]
	if len(holders) == 0 {
		return "", false
	}
	return holders[len(holders)-1], true
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
