package dashboard

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/moebius-js/moebius-js/internal/lograte"
)

// Server is the running server as the console reaches it: a console
// client connects, sends and leaves through the real routing and runtime,
// as a network client's events would. cmd implements it over the Host.
// Any goroutine.
type Server interface {
	// InUse reports whether a network client holds identity id.
	InUse(id string) bool
	Connected(id string, conn uint64)
	Message(id string, conn uint64, frames [][]byte)
	Disconnected(id string, conn uint64)
}

// firstSerial is where console clients' connection serials start, far
// from the transport's (which count from 1).
const firstSerial = 1 << 62

// sessionBuffer bounds the events a console page has not read yet; past
// it, replies are dropped and counted (the console is a tool for a person,
// not a client to keep up with).
const sessionBuffer = 1000

// Console is the dashboard's console: each open page is a session, whose
// simulated clients it connects, sends for and disconnects. Replies
// reach it through Deliver (cmd's Sender sends them here for the serials
// it owns) and go to the page as server-sent events. Any goroutine.
type Console struct {
	srv     Server
	log     *slog.Logger
	lim     *lograte.Limiter
	serial  atomic.Uint64
	active  atomic.Int64 // clients connected: while 0, Owns answers without a lock
	dropped atomic.Uint64

	mu       sync.Mutex
	sessions map[string]*session
	clients  map[string]*consoleClient // by identity
}

type session struct {
	token   string
	events  chan event
	clients map[string]*consoleClient // guarded by Console.mu
	ended   bool                      // its page went; guarded by Console.mu
}

type consoleClient struct {
	id     string
	serial uint64
	s      *session
}

type event struct {
	name string
	data any
}

// NewConsole returns a console that reaches srv and logs through lim.
func NewConsole(srv Server, log *slog.Logger, lim *lograte.Limiter) *Console {
	c := &Console{srv: srv, log: log, lim: lim, sessions: map[string]*session{}, clients: map[string]*consoleClient{}}
	c.serial.Store(firstSerial)
	return c
}

// Dropped counts the replies dropped for pages that did not read them.
// Any goroutine.
func (c *Console) Dropped() uint64 { return c.dropped.Load() }

// Owns reports whether the connection (id, conn) is a console client's;
// conn 0 means whichever connection holds id. Any goroutine; without
// console clients it takes no lock.
func (c *Console) Owns(id string, conn uint64) bool {
	if c.active.Load() == 0 || (conn != 0 && conn < firstSerial) {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	cc := c.clients[id]
	return cc != nil && (conn == 0 || cc.serial == conn)
}

// Deliver hands a message the server sent to a console client to its
// page; false when no console client holds (id, conn). Any goroutine; it
// never blocks, and without console clients takes no lock.
func (c *Console) Deliver(id string, conn uint64, frames [][]byte) bool {
	if c.active.Load() == 0 || (conn != 0 && conn < firstSerial) {
		return false
	}
	c.mu.Lock()
	cc := c.clients[id]
	c.mu.Unlock()
	if cc == nil || (conn != 0 && cc.serial != conn) {
		return false
	}
	text := make([]string, len(frames))
	for i, f := range frames {
		text[i] = string(f)
	}
	c.emit(cc.s, event{"reply", map[string]any{"id": id, "frames": text, "time": time.Now()}})
	return true
}

// Closed ends a console client the server closed (client.close()), or
// whose identity a network client took over (conn 0): the page hears of
// it and the server is told it is gone, as the transport would once a
// socket closed. Any goroutine; without console clients it takes no lock.
func (c *Console) Closed(id string, conn uint64) bool {
	if c.active.Load() == 0 || (conn != 0 && conn < firstSerial) {
		return false
	}
	c.mu.Lock()
	cc := c.clients[id]
	if cc == nil || (conn != 0 && cc.serial != conn) {
		c.mu.Unlock()
		return false
	}
	c.forget(cc)
	c.srv.Disconnected(id, cc.serial)
	c.mu.Unlock()
	c.emit(cc.s, event{"closed", map[string]any{"id": id}})
	return true
}

// forget drops cc from the maps. c.mu held: the Host hears of a console
// client's connection, messages and end under it, so that they reach it in
// that order (as the transport's do, from one reader goroutine).
func (c *Console) forget(cc *consoleClient) {
	delete(c.clients, cc.id)
	delete(cc.s.clients, cc.id)
	c.active.Add(-1)
}

func (c *Console) emit(s *session, e event) {
	select {
	case s.events <- e:
	default:
		n := c.dropped.Add(1)
		c.lim.Log(c.log, slog.LevelWarn, "console_dropped", s.token,
			"dashboard console: a page is not reading its replies; dropped", "dropped", n)
	}
}

func (c *Console) routes(mux *http.ServeMux) {
	mux.HandleFunc("GET /dashboard/api/console", c.stream)
	mux.HandleFunc("POST /dashboard/api/console/connect", c.post(c.connect))
	mux.HandleFunc("POST /dashboard/api/console/send", c.post(c.send))
	mux.HandleFunc("POST /dashboard/api/console/disconnect", c.post(c.disconnect))
}

// stream is one page's session: its events as server-sent events until
// the page goes, which disconnects its clients.
func (c *Console) stream(w http.ResponseWriter, r *http.Request) {
	flusher, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	var b [16]byte
	_, _ = rand.Read(b[:])
	s := &session{token: hex.EncodeToString(b[:]), events: make(chan event, sessionBuffer), clients: map[string]*consoleClient{}}
	c.mu.Lock()
	c.sessions[s.token] = s
	c.mu.Unlock()
	defer c.end(s)

	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	write := func(e event) bool {
		data, _ := json.Marshal(e.data)
		if _, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", e.name, data); err != nil {
			return false
		}
		flusher.Flush()
		return true
	}
	if !write(event{"session", map[string]string{"session": s.token}}) {
		return
	}
	keepAlive := time.NewTicker(15 * time.Second)
	defer keepAlive.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case e := <-s.events:
			if !write(e) {
				return
			}
		case <-keepAlive.C:
			if _, err := fmt.Fprint(w, ": keep-alive\n\n"); err != nil {
				return
			}
			flusher.Flush()
		}
	}
}

// end closes a session: its clients leave the server.
func (c *Console) end(s *session) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.sessions, s.token)
	s.ended = true // a connect still on its way finds it ended
	for _, cc := range s.clients {
		c.forget(cc)
		c.srv.Disconnected(cc.id, cc.serial)
	}
}

// request is the body of the console's POSTs.
type request struct {
	Session string   `json:"session"`
	ID      string   `json:"id"`
	Frames  []string `json:"frames"`
}

// errStatus is an error with the HTTP status it answers with.
type errStatus struct {
	status int
	msg    string
}

func (e *errStatus) Error() string { return e.msg }

// post wraps a console action: JSON only (a cross-site form cannot send
// it without the page's own origin), a known session, then fn.
func (c *Console) post(fn func(s *session, req request) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
			writeJSON(w, http.StatusUnsupportedMediaType, map[string]string{"error": "send application/json"})
			return
		}
		if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" && site != "none" {
			writeJSON(w, http.StatusForbidden, map[string]string{"error": "cross-site request refused"})
			return
		}
		var req request
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&req); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "bad request: " + err.Error()})
			return
		}
		c.mu.Lock()
		s := c.sessions[req.Session]
		c.mu.Unlock()
		if s == nil {
			writeJSON(w, http.StatusNotFound, map[string]string{"error": "no such console session (reload the page)"})
			return
		}
		if err := fn(s, req); err != nil {
			status := http.StatusInternalServerError
			var es *errStatus
			if errors.As(err, &es) {
				status = es.status
			}
			writeJSON(w, status, map[string]string{"error": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"id": req.ID})
	}
}

func (c *Console) connect(s *session, req request) error {
	if req.ID == "" || len(req.ID) > 255 {
		return &errStatus{http.StatusBadRequest, "an identity is 1 to 255 bytes"}
	}
	if c.srv.InUse(req.ID) {
		return &errStatus{http.StatusConflict, fmt.Sprintf("a client %q is connected already", req.ID)}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if s.ended {
		return &errStatus{http.StatusNotFound, "the console session ended (reload the page)"}
	}
	if c.clients[req.ID] != nil {
		return &errStatus{http.StatusConflict, fmt.Sprintf("a console client %q is connected already", req.ID)}
	}
	cc := &consoleClient{id: req.ID, serial: c.serial.Add(1), s: s}
	c.clients[req.ID], s.clients[req.ID] = cc, cc
	c.active.Add(1)
	c.srv.Connected(cc.id, cc.serial)
	return nil
}

func (c *Console) send(s *session, req request) error {
	if len(req.Frames) == 0 {
		return &errStatus{http.StatusBadRequest, "a message has at least one frame"}
	}
	frames := make([][]byte, len(req.Frames))
	for i, f := range req.Frames {
		frames[i] = []byte(f)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	cc := s.clients[req.ID]
	if cc == nil {
		return &errStatus{http.StatusNotFound, fmt.Sprintf("no console client %q: connect it first", req.ID)}
	}
	c.srv.Message(cc.id, cc.serial, frames)
	return nil
}

func (c *Console) disconnect(s *session, req request) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	cc := s.clients[req.ID]
	if cc == nil {
		return &errStatus{http.StatusNotFound, fmt.Sprintf("no console client %q", req.ID)}
	}
	c.forget(cc)
	c.srv.Disconnected(cc.id, cc.serial)
	return nil
}
