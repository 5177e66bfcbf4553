package dashboard

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moebius-js/moebius-js/internal/lograte"
	"github.com/moebius-js/moebius-js/jsrt"
)

func getState(t *testing.T, h http.Handler, query string) stateView {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/dashboard/api/state?"+query, nil))
	if rec.Code != 200 {
		t.Fatalf("state: %d %s", rec.Code, rec.Body)
	}
	var v stateView
	if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
		t.Fatal(err)
	}
	return v
}

func manyClients(n int) []ClientRow {
	rows := make([]ClientRow, n)
	for i := range rows {
		rows[i] = ClientRow{ClientStatus: jsrt.ClientStatus{ID: fmt.Sprintf("c%05d", i), Worker: i % 2, Queued: i % 7},
			Remote: fmt.Sprintf("127.0.0.%d:%d", 2+i%3, 40000+i)}
	}
	return rows
}

// The client list comes a page at a time, sorted and filtered on the
// server: the page never holds more than a page of rows.
func TestStatePagesSortsAndFiltersClients(t *testing.T) {
	snap := Snapshot{Clients: manyClients(10_000)}
	h := Handler(func(context.Context) Snapshot { return snap }, NewRecorder(nil), nil)
	for _, tc := range []struct {
		query       string
		total, rows int
		first, last string
	}{
		{"", 10_000, 50, "c00000", "c00049"},
		{"offset=50&limit=10", 10_000, 10, "c00050", "c00059"},
		{"desc=1", 10_000, 50, "c09999", "c09950"},
		{"sort=queued&desc=1&limit=3", 10_000, 3, "c00006", "c00020"}, // queued 6, ties by id
		{"filter=127.0.0.4&limit=2", 3333, 2, "c00002", "c00005"},
		{"limit=100000", 10_000, maxLimit, "c00000", "c00499"},
		{"offset=9999", 10_000, 1, "c09999", "c09999"},
		{"offset=20000", 10_000, 0, "", ""},
		{"sort=nonsense&limit=1", 10_000, 1, "c00000", "c00000"},
	} {
		t.Run(tc.query, func(t *testing.T) {
			p := getState(t, h, tc.query).Clients
			if p.Total != tc.total || len(p.Rows) != tc.rows {
				t.Fatalf("total %d rows %d, want %d and %d", p.Total, len(p.Rows), tc.total, tc.rows)
			}
			if tc.rows > 0 && (p.Rows[0].ID != tc.first || p.Rows[len(p.Rows)-1].ID != tc.last) {
				t.Fatalf("rows %s..%s, want %s..%s", p.Rows[0].ID, p.Rows[len(p.Rows)-1].ID, tc.first, tc.last)
			}
		})
	}
}

func TestStateListsEveryCommandWithItsRates(t *testing.T) {
	rec := NewRecorder(nil)
	rec.Observe("echo", time.Millisecond)
	rec.Observe("echo", time.Millisecond)
	rec.Observe("(route)", time.Millisecond)
	snap := Snapshot{Commands: map[string]jsrt.CommandStatus{"echo": {Strategy: "queue", Running: 1}, "idle": {Strategy: "ignore"}}}
	v := getState(t, Handler(func(context.Context) Snapshot { return snap }, rec, nil), "")
	var names []string
	for _, c := range v.Commands {
		names = append(names, fmt.Sprintf("%s/%s/%d/%d", c.Command, c.Strategy, c.Running, c.Count))
	}
	if got := strings.Join(names, " "); got != "(route)//0/1 echo/queue/1/2 idle/ignore/0/0" {
		t.Fatalf("commands %s", got)
	}
	if v.Totals.Requests != 3 || v.Console {
		t.Fatalf("totals %+v, console %v", v.Totals, v.Console)
	}
}

func TestThePageIsServedFromTheBinary(t *testing.T) {
	h := Handler(func(context.Context) Snapshot { return Snapshot{} }, NewRecorder(nil), nil)
	for _, path := range []string{"/", "/app.js", "/style.css"} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		if rec.Code != 200 || rec.Body.Len() == 0 {
			t.Errorf("%s: %d, %d bytes", path, rec.Code, rec.Body.Len())
		}
		body := strings.ReplaceAll(rec.Body.String(), "http://www.w3.org/2000/svg", "") // SVG's namespace name, not a fetch
		if strings.Contains(body, "http://") || strings.Contains(body, "https://") || strings.Contains(body, "//cdn") {
			t.Errorf("%s refers to another site: no CDN, nothing from outside", path)
		}
	}
	for _, method := range []string{"GET", "POST", "PUT", "DELETE"} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(method, "/dashboard/api/console/connect", nil))
		if rec.Code != 404 {
			t.Fatalf("%s to the console without the setting: %d", method, rec.Code)
		}
	}
}

// fakeServer records what the console did to the server.
type fakeServer struct {
	mu     sync.Mutex
	inUse  map[string]bool
	events []string
}

func (f *fakeServer) InUse(id string) bool { f.mu.Lock(); defer f.mu.Unlock(); return f.inUse[id] }
func (f *fakeServer) Connected(id string, conn uint64) {
	f.add(fmt.Sprintf("connect %s", id))
}
func (f *fakeServer) Message(id string, conn uint64, frames [][]byte) {
	f.add(fmt.Sprintf("message %s %q", id, frames))
}
func (f *fakeServer) Disconnected(id string, conn uint64) { f.add(fmt.Sprintf("disconnect %s", id)) }
func (f *fakeServer) add(e string)                        { f.mu.Lock(); f.events = append(f.events, e); f.mu.Unlock() }
func (f *fakeServer) log() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return strings.Join(f.events, "; ")
}

// sse reads a server-sent event stream.
type sse struct{ r *bufio.Reader }

func (s sse) next(t *testing.T) (name, data string) {
	t.Helper()
	for {
		line, err := s.r.ReadString('\n')
		if err != nil {
			t.Fatalf("stream ended: %v", err)
		}
		line = strings.TrimRight(line, "\n")
		switch {
		case strings.HasPrefix(line, "event: "):
			name = line[len("event: "):]
		case strings.HasPrefix(line, "data: "):
			data = line[len("data: "):]
		case line == "" && name != "":
			return name, data
		}
	}
}

func post(t *testing.T, url, contentType, body string) (int, string) {
	t.Helper()
	resp, err := http.Post(url, contentType, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestConsoleConnectsSendsAndStreamsReplies(t *testing.T) {
	srv := &fakeServer{inUse: map[string]bool{"taken": true}}
	console := NewConsole(srv, slog.New(slog.DiscardHandler), lograte.New())
	ts := httptest.NewServer(Handler(func(context.Context) Snapshot { return Snapshot{} }, NewRecorder(nil), console))
	defer ts.Close()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", ts.URL+"/dashboard/api/console", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	stream := sse{bufio.NewReader(resp.Body)}
	name, data := stream.next(t)
	var hello struct{ Session string }
	if name != "session" || json.Unmarshal([]byte(data), &hello) != nil || hello.Session == "" {
		t.Fatalf("first event %s %s", name, data)
	}
	api := ts.URL + "/dashboard/api/console/"
	body := func(id string, frames ...string) string {
		b, _ := json.Marshal(map[string]any{"session": hello.Session, "id": id, "frames": frames})
		return string(b)
	}
	for _, tc := range []struct {
		what, path, contentType, body string
		status                        int
	}{
		{"a form post (cross-site)", "connect", "text/plain", body("c1"), 415},
		{"an identity a network client holds", "connect", "application/json", body("taken"), 409},
		{"a client", "connect", "application/json", body("c1"), 200},
		{"the same again", "connect", "application/json", body("c1"), 409},
		{"a message", "send", "application/json", body("c1", `{"command":"echo"}`, "b"), 200},
		{"a message for no client", "send", "application/json", body("nobody", "x"), 404},
		{"an unknown session", "send", "application/json", `{"session":"x","id":"c1","frames":["x"]}`, 404},
		{"a second client", "connect", "application/json", body("c2"), 200},
		{"its disconnection", "disconnect", "application/json", body("c2"), 200},
	} {
		if status, got := post(t, api+tc.path, tc.contentType, tc.body); status != tc.status {
			t.Fatalf("%s: %d %s, want %d", tc.what, status, got, tc.status)
		}
	}
	if !console.Owns("c1", 0) || console.Owns("c2", 0) || console.Owns("c1", 5) {
		t.Fatal("Owns is wrong")
	}
	if !console.Deliver("c1", 0, [][]byte{[]byte("hello"), []byte("there")}) {
		t.Fatal("a reply to a console client was not delivered")
	}
	if name, data := stream.next(t); name != "reply" || !strings.Contains(data, `"frames":["hello","there"]`) || !strings.Contains(data, `"id":"c1"`) {
		t.Fatalf("event %s %s", name, data)
	}
	if !console.Closed("c1", 0) {
		t.Fatal("Closed refused the console's client")
	}
	if name, data := stream.next(t); name != "closed" || data != `{"id":"c1"}` {
		t.Fatalf("event %s %s", name, data)
	}
	post(t, api+"connect", "application/json", body("c3"))
	cancel() // the page goes: its clients leave
	resp.Body.Close()
	deadline := time.Now().Add(5 * time.Second)
	for !strings.HasSuffix(srv.log(), "disconnect c3") {
		if time.Now().After(deadline) {
			t.Fatalf("the stream's end did not disconnect its client: %s", srv.log())
		}
		time.Sleep(5 * time.Millisecond)
	}
	want := `connect c1; message c1 ["{\"command\":\"echo\"}" "b"]; connect c2; disconnect c2; disconnect c1; connect c3; disconnect c3`
	if got := srv.log(); got != want {
		t.Fatalf("server saw\n%s\nwant\n%s", got, want)
	}
	if console.Owns("c3", 0) {
		t.Fatal("a client of a closed session is still the console's")
	}
}

// What one poll costs the dashboard at 10,000 clients, beyond reading the
// server: go test -bench StateAtTenThousand ./dashboard
func BenchmarkStateAtTenThousandClients(b *testing.B) {
	snap := Snapshot{Clients: manyClients(10_000)}
	rec := NewRecorder(nil)
	rec.Observe("echo", time.Millisecond)
	b.ReportAllocs()
	for b.Loop() {
		state(snap, rec, false, query{sort: "id", limit: defaultLimit})
	}
}

// A page that does not read its replies loses those past sessionBuffer,
// counted, and the server is never held up by it.
func TestConsoleDropsRepliesPastTheBufferOfAPageThatDoesNotRead(t *testing.T) {
	c := NewConsole(&fakeServer{}, slog.New(slog.DiscardHandler), lograte.New())
	s := &session{events: make(chan event, sessionBuffer), clients: map[string]*consoleClient{}}
	for i := 0; i < sessionBuffer+3; i++ {
		c.emit(s, event{"reply", i})
	}
	if n := c.dropped.Load(); n != 3 || len(s.events) != sessionBuffer {
		t.Fatalf("dropped %d, buffered %d", n, len(s.events))
	}
}

// A connect that arrives after its page's stream ended connects nothing:
// no client would be left to disconnect it.
func TestConsoleConnectAfterTheSessionEndedIsRefused(t *testing.T) {
	srv := &fakeServer{}
	c := NewConsole(srv, slog.New(slog.DiscardHandler), lograte.New())
	s := &session{token: "t", events: make(chan event, 1), clients: map[string]*consoleClient{}}
	c.sessions[s.token] = s
	c.end(s)
	err := c.connect(s, request{Session: "t", ID: "late"})
	var es *errStatus
	if !errors.As(err, &es) || es.status != http.StatusNotFound || srv.log() != "" || c.active.Load() != 0 {
		t.Fatalf("connect after the end: %v; server saw %q; %d active", err, srv.log(), c.active.Load())
	}
}
