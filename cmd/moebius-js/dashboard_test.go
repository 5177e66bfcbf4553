package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/moebius-js/moebius-js/dashboard"
	"github.com/moebius-js/moebius-js/internal/lograte"
	"github.com/moebius-js/moebius-js/jsrt"
)

// recordingSender is the transport as consoleSender's next: it records
// whom each call was for.
type recordingSender struct{ calls []string }

func (r *recordingSender) SendConn(id string, conn uint64, frames ...[]byte) (bool, error) {
	r.calls = append(r.calls, "send "+id)
	return false, nil
}
func (r *recordingSender) ReplyConn(id string, conn uint64, env [][]byte, frames ...[]byte) (bool, error) {
	r.calls = append(r.calls, "reply "+id)
	return false, nil
}
func (r *recordingSender) Broadcast(frame []byte, to []jsrt.Target) int {
	ids := make([]string, len(to))
	for i, t := range to {
		ids[i] = t.ID
	}
	r.calls = append(r.calls, fmt.Sprintf("broadcast %v", ids))
	return len(to)
}
func (r *recordingSender) WhenWritable(id string, conn uint64, fn func()) bool { return true }
func (r *recordingSender) DisconnectConn(id string, conn uint64) bool {
	r.calls = append(r.calls, "disconnect "+id)
	return true
}

// serials is a dashboard.Server that remembers the serial of each
// console client it was told of.
type serials map[string]uint64

func (serials) InUse(string) bool                   { return false }
func (s serials) Connected(id string, conn uint64)  { s[id] = conn }
func (serials) Message(string, uint64, [][]byte)    {}
func (serials) Disconnected(id string, conn uint64) {}

// consoleClient connects a console client called id through the console's
// own HTTP API, as a page would.
func consoleClient(t *testing.T, console *dashboard.Console, id string) {
	t.Helper()
	ts := httptest.NewServer(dashboard.Handler(func(context.Context) dashboard.Snapshot { return dashboard.Snapshot{} }, dashboard.NewRecorder(nil), console))
	t.Cleanup(ts.Close)
	resp, err := http.Get(ts.URL + "/dashboard/api/console") // the session lasts as long as this stream
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	br := bufio.NewReader(resp.Body)
	line, err := br.ReadString('\n')
	for err == nil && !strings.HasPrefix(line, "data: ") {
		line, err = br.ReadString('\n')
	}
	var hello struct{ Session string }
	if err != nil || json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &hello) != nil {
		t.Fatalf("no session: %q %v", line, err)
	}
	body, _ := json.Marshal(map[string]string{"session": hello.Session, "id": id})
	r, err := http.Post(ts.URL+"/dashboard/api/console/connect", "application/json", bytes.NewReader(body))
	if err != nil || r.StatusCode != 200 {
		t.Fatalf("connect: %v %v", r, err)
	}
	r.Body.Close()
}

// What is meant for the console's clients goes to the console, the rest
// to the transport, and a broadcast is split between them.
func TestConsoleSenderSplitsConsoleClientsFromNetworkOnes(t *testing.T) {
	known := serials{}
	console := dashboard.NewConsole(known, slog.New(slog.DiscardHandler), lograte.New())
	next := &recordingSender{}
	s := consoleSender{next: next, console: console}
	s.Broadcast([]byte("x"), []jsrt.Target{{ID: "a", Serial: 1}, {ID: "b", Serial: 2}})
	consoleClient(t, console, "c")
	for _, targets := range [][]jsrt.Target{
		{{ID: "a", Serial: 1}, {ID: "c", Serial: known["c"]}, {ID: "b", Serial: 2}},
		{{ID: "c", Serial: known["c"]}, {ID: "a", Serial: 1}},
		{{ID: "c", Serial: known["c"]}},
	} {
		if n := s.Broadcast([]byte("x"), targets); n != len(targets) {
			t.Fatalf("broadcast to %v reached %d", targets, n)
		}
	}
	s.SendConn("a", 1)
	s.SendConn("c", 0)
	s.ReplyConn("c", known["c"], nil)
	s.ReplyConn("c", 7, nil) // a network connection that reuses the id
	if s.WhenWritable("c", known["c"], func() {}) {
		t.Fatal("a console client is backlogged")
	}
	s.DisconnectConn("c", known["c"])
	s.SendConn("c", 0) // gone from the console: the transport's to refuse
	want := []string{"broadcast [a b]", "broadcast [a b]", "broadcast [a]", "broadcast []", "send a", "reply c", "send c"}
	if !slices.Equal(next.calls, want) {
		t.Fatalf("the transport got %q, want %q", next.calls, want)
	}
}
