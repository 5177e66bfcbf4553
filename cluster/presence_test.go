package cluster

import (
	"testing"
	"time"
)

func TestPresenceFollowsSnapshotsAndDeltasAndAsksForWhatItMissed(t *testing.T) {
	now := time.Unix(1000, 0)
	p := newPresence()
	if p.delta("b", 1, true, "x", now) {
		t.Fatal("a delta before any snapshot was taken as in order")
	}
	p.snapshot("b", 3, []string{"x", "y"}, now)
	if where, ok := p.where("y"); !ok || where != "b" {
		t.Fatalf("y is at %q (%v)", where, ok)
	}
	if !p.delta("b", 2, false, "y", now) {
		t.Fatal("a delta older than the snapshot asked for a resync")
	}
	if _, ok := p.where("y"); !ok {
		t.Fatal("a delta older than the snapshot was applied")
	}
	if !p.delta("b", 4, false, "y", now) || !p.delta("b", 5, true, "z", now) {
		t.Fatal("deltas in order asked for a resync")
	}
	if _, ok := p.where("y"); ok {
		t.Fatal("y left but is still known")
	}
	if p.delta("b", 7, true, "w", now) {
		t.Fatal("a gap (6 missing) was not noticed")
	}
	if p.beat("b", 6, now) {
		t.Fatal("a beat at another number than the last delta was taken as in step")
	}
	if !p.beat("b", 7, now) {
		t.Fatal("a beat in step asked for a resync")
	}
}

func TestPresenceForgetsSilentInstancesAndTheirClients(t *testing.T) {
	start := time.Unix(1000, 0)
	p := newPresence()
	p.snapshot("b", 1, []string{"x"}, start)
	p.snapshot("c", 1, []string{"y"}, start.Add(5*time.Second))
	if gone := p.expire(start.Add(time.Second)); len(gone) != 1 || gone[0] != "b" {
		t.Fatalf("expired %v, want [b]", gone)
	}
	if _, ok := p.where("x"); ok {
		t.Fatal("the client of a forgotten instance is still known")
	}
	if where, _ := p.where("y"); where != "c" {
		t.Fatalf("y is at %q", where)
	}
	// The same id on two instances: the latest to announce it holds it,
	// and the other's leaving does not take it away.
	p.snapshot("d", 1, []string{"y"}, start)
	p.delta("c", 2, false, "y", start)
	if where, _ := p.where("y"); where != "d" {
		t.Fatalf("y is at %q, want d", where)
	}
}

func TestWireRoundTripsAndRefusesWhatIsCut(t *testing.T) {
	frames := [][]byte{[]byte("a"), {}, []byte("ccc")}
	id, got, err := decodeSend(encodeSend("\x00id", frames))
	if err != nil || id != "\x00id" || len(got) != 3 || string(got[2]) != "ccc" || len(got[1]) != 0 {
		t.Fatalf("got %q %q %v", id, got, err)
	}
	b := encodeSend("id", frames)
	for n := range len(b) - 1 {
		if _, _, err := decodeSend(b[:n]); err == nil && n > 0 && n < len(b) {
			// some prefixes end on a frame boundary and are valid messages
			if id, got, _ := decodeSend(b[:n]); id != "id" || len(got) == 0 {
				t.Fatalf("prefix %d decoded to %q %q", n, id, got)
			}
		}
	}
	ids, err := decodeIDs(encodeIDs([]string{"a", "", "ccc"}))
	if err != nil || len(ids) != 3 || ids[2] != "ccc" {
		t.Fatalf("got %q %v", ids, err)
	}
	if _, err := decodeIDs([]byte{5, 'a'}); err == nil {
		t.Fatal("a cut id list decoded")
	}
	if got := token("host.example.com:5555 *>"); got != "host_example_com:5555___" {
		t.Fatalf("token = %q", got)
	}
}

func TestSubjectsAreCheckedBeforeTheyReachNATS(t *testing.T) {
	for _, tc := range []struct {
		subject string
		wild    bool
		ok      bool
	}{
		{"orders.new", false, true},
		{"orders.*", true, true},
		{"orders.>", true, true},
		{"orders.*", false, false},
		{"", false, false},
		{"orders..new", false, false},
		{"orders.>.x", true, false},
		{"or*ders", true, false},
		{"a b", false, false},
	} {
		if err := CheckSubject(tc.subject, tc.wild); (err == nil) != tc.ok {
			t.Errorf("CheckSubject(%q, %v) = %v", tc.subject, tc.wild, err)
		}
	}
}

func TestPresenceKeepsAClientThatMovedWhenItsOldInstanceLetsGo(t *testing.T) {
	now := time.Unix(1000, 0)
	p := newPresence()
	p.snapshot("a", 1, []string{"x"}, now)
	p.snapshot("b", 1, nil, now)
	p.delta("b", 2, true, "x", now)        // x reconnected through the balancer to b
	p.snapshot("a", 1, []string{"x"}, now) // a's lingering connection, in a snapshot a sends
	if where, _ := p.where("x"); where != "b" {
		t.Fatalf("x is at %q after a's snapshot, want b (the newer claim)", where)
	}
	p.delta("a", 2, false, "x", now) // a's old connection goes
	if where, ok := p.where("x"); !ok || where != "b" {
		t.Fatalf("x is at %q (%v) after a let go, want b", where, ok)
	}
	p.forget("b")
	if _, ok := p.where("x"); ok {
		t.Fatal("x is still known after both let go")
	}
}

func TestASnapshotInPartsIsAppliedWholeWhenItsLastPartIsIn(t *testing.T) {
	now := time.Unix(1000, 0)
	p := newPresence()
	p.snapshot("b", 1, []string{"old"}, now)
	p.snapshotPart("b", 5, true, true, []string{"x"}, now)
	if _, ok := p.where("old"); !ok {
		t.Fatal("the previous snapshot was dropped before the new one was whole")
	}
	p.snapshotPart("b", 5, false, false, []string{"y"}, now)
	for id, want := range map[string]bool{"old": false, "x": true, "y": true} {
		if _, ok := p.where(id); ok != want {
			t.Errorf("%s known: %v, want %v", id, ok, want)
		}
	}
	p.snapshotPart("c", 1, false, false, []string{"z"}, now) // a later part without its first
	if _, ok := p.where("z"); ok {
		t.Fatal("a part without its first was applied")
	}
}
