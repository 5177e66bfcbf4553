package transport

import (
	"bytes"
	"testing"

	"github.com/moebius-js/moebius-js/curve"
)

// A sealed frame costs what a plain one does on the way in: the box is
// read into the reader's scratch, and only what it carries is allocated.
func TestASealedMessageAllocatesOnlyWhatItCarries(t *testing.T) {
	client, _ := curve.GenerateKeyPair()
	server, _ := curve.GenerateKeyPair()
	ch, _ := curve.NewClientHandshake(client, server.Public)
	sh := curve.NewServerHandshake(server)
	welcome, _ := sh.Hello(ch.Hello())
	if err := ch.Welcome(welcome); err != nil {
		t.Fatal(err)
	}
	initiate, _ := ch.Initiate(nil)
	if _, _, err := sh.Initiate(initiate); err != nil {
		t.Fatal(err)
	}
	ready, serverSession, _ := sh.Ready(nil)
	_, clientSession, err := ch.Ready(ready)
	if err != nil {
		t.Fatal(err)
	}
	const n = 200
	var wire []byte
	w := newBatchWriter(clientSession)
	for range n + 1 {
		w.build([]outMsg{{frames: [][]byte{bytes.Repeat([]byte("x"), 1000)}}})
		for _, b := range w.bufs {
			wire = append(wire, b...)
		}
		w.reset()
	}
	fr := newFrameReader(bytes.NewReader(wire), 1<<20, 16)
	fr.open = &serverSession.Opener
	if _, _, _, err := fr.next(); err != nil { // the scratch is made once
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(n-1, func() {
		if frames, _, _, err := fr.next(); err != nil || len(frames) != 1 || len(frames[0]) != 1000 {
			t.Fatalf("got %d frames, %v", len(frames), err)
		}
	})
	if allocs != 2 { // the frames slice and the opened frame
		t.Fatalf("%v allocations per sealed message, want 2", allocs)
	}
}
