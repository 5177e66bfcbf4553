// Package dashboard serves the admin listener's live dashboard: a page
// (web/, embedded in the binary, plain HTML, CSS and JavaScript with its own
// SVG charts, no third-party code) that polls /dashboard/api/state about
// once a second, and an optional console that sends messages to handlers
// as a simulated client and streams the replies back.
//
// It owns the page, the state endpoint's shape (paging and sorting the
// client list on the server, so that the page stays small at any number of
// clients), the request rates and latencies over the last minutes (a
// [Recorder]), and the console's sessions. It reads the server only
// through the [Source] cmd gives it, in jsrt's status vocabulary, and
// reaches it for the console only through a [Server]; it knows no sockets,
// no ZMTP and no runtime.
//
// Threading: the handlers run on net/http's goroutines; the Recorder's
// Observe on the workers'; the Console's Deliver and Closed on whichever
// goroutine the Host sends from. Each type says what it guards.
package dashboard

import (
	"context"
	"embed"
	"io/fs"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/moebius-js/moebius-js/jsrt"
)

//go:embed web
var web embed.FS

// Snapshot is what the dashboard reads of the server for one poll.
type Snapshot struct {
	Version    string
	Uptime     string
	Instance   string
	Ready      bool
	Generation int
	Files      []string
	Totals     Totals
	Commands   map[string]jsrt.CommandStatus
	Workers    []jsrt.WorkerStatus
	Clients    []ClientRow // unsorted, all of them
	Counters   []Counter
	Errors     []jsrt.ErrorEvent
	Loads      []jsrt.LoadEvent
	Cluster    any // the cluster link's status as JSON shows it; nil without one
}

// Totals are the server's running totals.
type Totals struct {
	Clients     int    `json:"clients"`  // connected, the console's included
	Requests    uint64 `json:"requests"` // filled in from the Recorder
	Errors      uint64 `json:"errors"`   // error replies, all codes
	MessagesIn  uint64 `json:"messagesIn"`
	MessagesOut uint64 `json:"messagesOut"`
}

// ClientRow is one connected client: what the workers know of it and what
// the transport knows of its connection.
type ClientRow struct {
	jsrt.ClientStatus
	Remote    string `json:"remote,omitempty"`
	Endpoint  string `json:"endpoint,omitempty"`
	SendBytes int64  `json:"sendQueueBytes"`
}

// Counter is one counter of /metrics.
type Counter struct {
	Name   string  `json:"name"`
	Labels string  `json:"labels"` // as /metrics writes them, without braces; "" for none
	Value  float64 `json:"value"`
	Help   string  `json:"help"`
	// Traffic marks a counter that moves with ordinary traffic (messages,
	// steps, requests started): the page does not flag it when it moves,
	// as it does a limit or defence that bites.
	Traffic bool `json:"traffic"`
}

// Source reads the server for one poll; cmd implements it. It is called
// on an HTTP handler's goroutine with the request's context, and bounds
// its own wait for workers inside a long step.
type Source func(ctx context.Context) Snapshot

// Handler serves the page at / and its API under /dashboard/api/. The
// console is served when console is not nil. Any goroutine.
func Handler(src Source, rec *Recorder, console *Console) http.Handler {
	mux := http.NewServeMux()
	files, _ := fs.Sub(web, "web")
	mux.Handle("/", http.FileServerFS(files))
	mux.HandleFunc("GET /dashboard/api/state", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, state(src(r.Context()), rec, console != nil, readQuery(r)))
	})
	mux.HandleFunc("/dashboard/api/", http.NotFound) // the rest of the API, and the console while it is off
	if console != nil {
		console.routes(mux)
	}
	return mux
}

// query is how the page asks for the client list.
type query struct {
	sort   string
	desc   bool
	offset int
	limit  int
	filter string
}

const (
	defaultLimit = 50
	maxLimit     = 500
)

func readQuery(r *http.Request) query {
	v := r.URL.Query()
	q := query{sort: v.Get("sort"), desc: v.Get("desc") == "1", filter: v.Get("filter"), limit: defaultLimit}
	if n, err := strconv.Atoi(v.Get("offset")); err == nil && n > 0 {
		q.offset = n
	}
	if n, err := strconv.Atoi(v.Get("limit")); err == nil && n > 0 {
		q.limit = min(n, maxLimit)
	}
	if _, ok := clientOrder[q.sort]; !ok {
		q.sort = "id"
	}
	return q
}

// stateView is /dashboard/api/state.
type stateView struct {
	Now        time.Time           `json:"now"`
	Version    string              `json:"version"`
	Uptime     string              `json:"uptime"`
	Instance   string              `json:"instance"`
	Ready      bool                `json:"ready"`
	Generation int                 `json:"generation"`
	Files      []string            `json:"files"`
	Console    bool                `json:"console"`
	Totals     Totals              `json:"totals"`
	Rate       Rates               `json:"rate"`
	Commands   []commandView       `json:"commands"`
	Workers    []jsrt.WorkerStatus `json:"workers"`
	Clients    clientPage          `json:"clients"`
	Counters   []Counter           `json:"counters"`
	Errors     []jsrt.ErrorEvent   `json:"errors"`
	Reloads    []jsrt.LoadEvent    `json:"reloads"`
	Cluster    any                 `json:"cluster"`
}

type commandView struct {
	Command  string   `json:"command"`
	Strategy string   `json:"strategy"`
	Running  int      `json:"running"`
	Queued   int      `json:"queued"`
	Count    uint64   `json:"count"`
	Rate     float64  `json:"rate"`
	P50      *float64 `json:"p50"`
	P99      *float64 `json:"p99"`
}

type clientPage struct {
	Total  int         `json:"total"` // clients that match the filter
	Offset int         `json:"offset"`
	Limit  int         `json:"limit"`
	Sort   string      `json:"sort"`
	Desc   bool        `json:"desc"`
	Filter string      `json:"filter"`
	Rows   []ClientRow `json:"rows"`
}

func state(snap Snapshot, rec *Recorder, console bool, q query) stateView {
	rates, byCommand := rec.Snapshot()
	v := stateView{Now: time.Now(), Version: snap.Version, Uptime: snap.Uptime, Instance: snap.Instance,
		Ready: snap.Ready, Generation: snap.Generation, Files: snap.Files, Console: console,
		Totals: snap.Totals, Rate: rates, Workers: snap.Workers, Counters: snap.Counters,
		Errors: snap.Errors, Reloads: snap.Loads, Cluster: snap.Cluster}
	names := map[string]bool{}
	for c := range snap.Commands {
		names[c] = true
	}
	for c, r := range byCommand {
		names[c] = true
		v.Totals.Requests += r.Total
	}
	for _, c := range slices.Sorted(maps.Keys(names)) {
		st, r := snap.Commands[c], byCommand[c]
		v.Commands = append(v.Commands, commandView{Command: c, Strategy: st.Strategy, Running: st.Running,
			Queued: st.Queued, Count: r.Total, Rate: r.Rate, P50: r.P50, P99: r.P99})
	}
	v.Clients = page(snap.Clients, q)
	return v
}

// clientOrder compares two clients by each sortable column.
var clientOrder = map[string]func(a, b *ClientRow) int{
	"id":      func(a, b *ClientRow) int { return strings.Compare(a.ID, b.ID) },
	"remote":  func(a, b *ClientRow) int { return strings.Compare(a.Remote, b.Remote) },
	"worker":  func(a, b *ClientRow) int { return a.Worker - b.Worker },
	"state":   func(a, b *ClientRow) int { return strings.Compare(a.State, b.State) },
	"command": func(a, b *ClientRow) int { return strings.Compare(a.Command, b.Command) },
	"since": func(a, b *ClientRow) int {
		switch {
		case a.Since == nil && b.Since == nil:
			return 0
		case a.Since == nil:
			return 1 // idle clients last
		case b.Since == nil:
			return -1
		}
		return a.Since.Compare(*b.Since)
	},
	"queued":         func(a, b *ClientRow) int { return a.Queued - b.Queued },
	"sendQueueBytes": func(a, b *ClientRow) int { return int(min(max(a.SendBytes-b.SendBytes, -1), 1)) },
}
