package cluster

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nuid"

	"github.com/moebius-js/moebius-js/internal/lograte"
)

// Config configures a Link.
type Config struct {
	// URLs are the NATS servers, comma-separated, as nats.go takes them:
	// nats://host:4222, nats://user:password@host:4222, tls://host:4222.
	URLs string
	// Creds is a NATS credentials file (a JWT and its seed); CA a file of
	// CA certificates for tls:// servers. Both optional.
	Creds, CA string
	// Name is the cluster's name: everything it sends is under the
	// subjects moebius.<Name>.
	Name string
	// Instance is this instance's name, unique in the cluster.
	Instance string
	// Beat is how often this instance says it is alive (default 2s); an
	// instance not heard from for three beats is forgotten, its clients
	// with it.
	Beat time.Duration
	// Logger receives the link's logs (default slog.Default()); LogLimiter
	// rate-limits its repeated warnings (default: one of its own).
	Logger     *slog.Logger
	LogLimiter *lograte.Limiter
}

// DefaultBeat is Config.Beat's default.
const DefaultBeat = 2 * time.Second

// Local is this instance's side of the link: what arrives for its clients
// is handed to it. Its methods are called on NATS's goroutines and must
// not block.
type Local interface {
	// Broadcast delivers a frame to every client of this instance.
	Broadcast(frame []byte)
	// Send delivers a message to this instance's client id; an error means
	// it is not here (any more).
	Send(id string, frames [][]byte) error
}

// Errors of cross-instance calls.
var (
	// ErrDown: the link to NATS is down; nothing can cross it now (it
	// comes back by itself).
	ErrDown = errors.New("cluster: the link to NATS is down")
	// ErrNoClient: no instance of the cluster has that client.
	ErrNoClient = errors.New("cluster: no instance has that client")
)

// Kind is a kind of message that crosses the link, as Counters counts
// them.
type Kind int

const (
	KindBroadcast Kind = iota
	KindSend
	KindPresence
	KindPublish
	numKinds
)

var kindNames = [numKinds]string{"broadcast", "send", "presence", "publish"}

// String is the kind's name: "broadcast", "send", "presence", "publish".
func (k Kind) String() string { return kindNames[k] }

// Kinds lists every kind of message.
func Kinds() []Kind { return []Kind{KindBroadcast, KindSend, KindPresence, KindPublish} }

// Link is this instance's connection to the cluster, over NATS. It
// replicates which instance holds which client, carries broadcasts and
// sends to other instances' clients, and handlers' publish/subscribe. It
// knows neither sockets nor JavaScript: the transport tells it of
// connects and disconnects, and it hands what arrives to a Local.
//
// Nothing the Link is asked to do waits on the network: what goes out is
// queued (outbox) and published by a goroutine of the Link's own, so a
// NATS server that hangs instead of going away fills the queue, and what
// does not fit fails at once (ErrDown) rather than holding up a worker.
//
// Goroutines: nats.go's own (its connection, and one per subscription,
// which call Local and the Subscribe callbacks), and two of the Link's:
// the publisher, and the one that beats and forgets silent instances.
// Close stops them all.
type Link struct {
	cfg    Config
	log    *slog.Logger
	lim    *lograte.Limiter
	nc     *nats.Conn
	prefix string // "moebius.<name>."
	me     string // token(Instance), for subjects

	local atomic.Pointer[Local]

	mu    sync.Mutex
	seq   uint64              // the number of this instance's last presence delta
	mine  map[string]struct{} // this instance's clients
	peers *presence

	nonce string // this process's, beside its name: tells a namesake from an echo

	in, out   [numKinds]atomic.Uint64
	localOnly atomic.Uint64
	notSent   atomic.Uint64 // sends and publishes that failed: the link down or its outbox full
	clashes   atomic.Uint64 // messages from another process with this instance's name
	opened    chan struct{} // closed once nc is set and subscribed: NATS's callbacks wait for it
	outbox    chan outgoing // what the publisher sends, in order
	quit      chan struct{}
	wg        sync.WaitGroup // the publisher and the beat
	closeOnce sync.Once
}

// outgoing is one message for the publisher, and the kind Stats counts it
// as.
type outgoing struct {
	m    *nats.Msg
	kind Kind
}

// outboxSize bounds what waits for the publisher; past it (a NATS that
// hangs) a send or broadcast fails at once, and presence is repaired by
// the next resync.
const outboxSize = 8192

// Open starts the link: it connects to NATS in the background (and keeps
// reconnecting for as long as the link is open), so it returns at once
// even when NATS is down. Nothing arrives for this instance's clients
// until Serve names its Local. Any goroutine.
func Open(cfg Config) (*Link, error) {
	if cfg.Beat <= 0 {
		cfg.Beat = DefaultBeat
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.LogLimiter == nil {
		cfg.LogLimiter = lograte.New()
	}
	switch {
	case cfg.URLs == "":
		return nil, errors.New("cluster: no NATS URL")
	case cfg.Name == "" || token(cfg.Name) != cfg.Name:
		return nil, fmt.Errorf("cluster: name %q: it must be non-empty, without '.', '*', '>' or white space", cfg.Name)
	case cfg.Instance == "":
		return nil, errors.New("cluster: no instance name")
	}
	l := &Link{
		cfg: cfg, log: cfg.Logger.With("cluster", cfg.Name, "instance", cfg.Instance), lim: cfg.LogLimiter,
		prefix: "moebius." + cfg.Name + ".", me: token(cfg.Instance),
		mine: map[string]struct{}{}, peers: newPresence(), nonce: nuid.Next(),
		opened: make(chan struct{}), outbox: make(chan outgoing, outboxSize), quit: make(chan struct{}),
	}
	opened := sync.OnceFunc(func() { close(l.opened) })
	defer opened() // on every way out, so that no callback waits for ever
	opts := []nats.Option{
		nats.Name("moebius-js " + cfg.Instance),
		nats.RetryOnFailedConnect(true),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.ReconnectBufSize(-1), // while down, a publish fails at once instead of waiting in a buffer
		// A NATS that hangs (a partition, a paused process) is noticed
		// within a few beats, and a write to it gives up soon.
		nats.PingInterval(cfg.Beat),
		nats.MaxPingsOutstanding(2),
		nats.FlusherTimeout(cfg.Beat),
		nats.ConnectHandler(func(*nats.Conn) { l.up() }),
		nats.ReconnectHandler(func(*nats.Conn) { l.up() }),
		nats.DisconnectErrHandler(func(nc *nats.Conn, err error) { l.down(err) }),
	}
	if cfg.Creds != "" {
		opts = append(opts, nats.UserCredentials(cfg.Creds))
	}
	if cfg.CA != "" {
		opts = append(opts, nats.RootCAs(cfg.CA))
	}
	nc, err := nats.Connect(cfg.URLs, opts...)
	if err != nil {
		return nil, fmt.Errorf("cluster: connect %s: %w", RedactURLs(cfg.URLs), err)
	}
	l.nc = nc
	for subject, handle := range map[string]nats.MsgHandler{
		l.prefix + "bcast":          l.onBroadcast,
		l.prefix + "send." + l.me:   l.onSend,
		l.prefix + kindPresenceSubj: l.onPresence,
	} {
		if _, err := nc.Subscribe(subject, handle); err != nil {
			nc.Close()
			return nil, fmt.Errorf("cluster: subscribe %s: %w", subject, err)
		}
	}
	opened() // nats.go calls ConnectHandler for a first connection made at once too
	l.wg.Add(2)
	go l.publisher()
	go l.beat()
	return l, nil
}

// send queues m for the publisher; false when the link is down or the
// queue is full. Any goroutine; it never blocks.
func (l *Link) send(m *nats.Msg, kind Kind) bool {
	if !l.nc.IsConnected() {
		return false
	}
	select {
	case l.outbox <- outgoing{m, kind}:
		return true
	default:
		return false
	}
}

// publisher is the Link's goroutine that hands what is queued to NATS, in
// order. On Close it sends what is queued, then returns.
func (l *Link) publisher() {
	defer l.wg.Done()
	publish := func(o outgoing) {
		if l.nc.PublishMsg(o.m) == nil {
			l.out[o.kind].Add(1)
		}
	}
	for {
		select {
		case o := <-l.outbox:
			publish(o)
		case <-l.quit:
			for {
				select {
				case o := <-l.outbox:
					publish(o)
				default:
					return
				}
			}
		}
	}
}

const kindPresenceSubj = "presence"

// Serve names the Local that what arrives for this instance's clients is
// handed to. Any goroutine.
func (l *Link) Serve(local Local) { l.local.Store(&local) }

// Up reports whether the link to NATS is up now. Any goroutine.
func (l *Link) Up() bool { return l.nc.IsConnected() }

// Close leaves the cluster: the other instances forget this one's
// clients at once (and the instance itself once it stops beating), and
// the link's goroutines end. Any goroutine; once.
func (l *Link) Close() {
	l.closeOnce.Do(func() {
		l.mu.Lock()
		l.mine = map[string]struct{}{}
		l.mu.Unlock()
		l.publishSnapshot() // empty: nobody is here any more
		close(l.quit)
		l.wg.Wait()
		if l.nc.IsConnected() {
			_ = l.nc.FlushTimeout(time.Second)
		}
		l.nc.Close()
	})
}

// up runs when the link comes (back) up: say so, and trade snapshots.
// NATS's goroutine.
func (l *Link) up() {
	<-l.opened
	if l.nc == nil {
		return // Open failed
	}
	l.log.Info("cluster link up", "url", l.nc.ConnectedUrlRedacted())
	l.publishPresence(kindHello, 0, nil)
	l.publishSnapshot()
}

// down runs when the link drops. NATS's goroutine.
func (l *Link) down(err error) {
	<-l.opened
	if l.nc == nil || l.nc.IsClosed() {
		return
	}
	l.log.Warn("cluster link down; reconnecting", "url", RedactURLs(l.cfg.URLs), "error", fmt.Sprint(err))
}

// Connected tells the cluster that this instance has a client id now.
// Any goroutine.
func (l *Link) Connected(id string) { l.changed(id, true) }

// Disconnected tells the cluster that this instance's client id left.
// Any goroutine.
func (l *Link) Disconnected(id string) { l.changed(id, false) }

func (l *Link) changed(id string, add bool) {
	kind := kindRemove
	l.mu.Lock()
	defer l.mu.Unlock() // queued in seq order
	if add {
		l.mine[id] = struct{}{}
		kind = kindAdd
	} else {
		delete(l.mine, id)
	}
	l.seq++
	l.publishPresence(kind, l.seq, []byte(id))
}

// publishSnapshot publishes this instance's clients as of its last delta:
// a snapshot message, then as many more as it takes for each to stay
// under snapshotChunk bytes (NATS bounds a message's size).
func (l *Link) publishSnapshot() {
	l.mu.Lock()
	defer l.mu.Unlock()
	ids := slices.Sorted(maps.Keys(l.mine))
	kind := kindSnapshot
	for first := true; first || len(ids) > 0; first = false {
		n, size := 0, 0
		for n < len(ids) && size+1+len(ids[n]) <= snapshotChunk {
			size += 1 + len(ids[n])
			n++
		}
		m := l.presenceMsg(kind, l.seq, encodeIDs(ids[:n]))
		if n < len(ids) {
			m.Header.Set(hdrMore, "1") // the snapshot is applied whole, once its last part is in
		}
		l.send(m, KindPresence)
		ids, kind = ids[n:], kindSnapshotMore
	}
}

// snapshotChunk bounds one snapshot message's bytes, well under NATS's
// default limit of a megabyte a message.
const snapshotChunk = 256 << 10

// publishPresence queues one presence message; one lost (the link is
// down, the queue full) is repaired by a resync, or by the snapshots
// traded when the link is back. Called under l.mu where the order of
// presence messages matters (deltas, snapshots, beats).
func (l *Link) publishPresence(kind string, seq uint64, data []byte) {
	l.send(l.presenceMsg(kind, seq, data), KindPresence)
}

func (l *Link) presenceMsg(kind string, seq uint64, data []byte) *nats.Msg {
	m := nats.NewMsg(l.prefix + kindPresenceSubj)
	m.Header.Set(hdrOrigin, l.cfg.Instance)
	m.Header.Set(hdrNonce, l.nonce)
	m.Header.Set(hdrKind, kind)
	m.Header.Set(hdrSeq, strconv.FormatUint(seq, 10))
	m.Data = data
	return m
}

// onPresence applies another instance's presence message. NATS's
// goroutine for the presence subscription (so in the order sent).
func (l *Link) onPresence(m *nats.Msg) {
	origin := m.Header.Get(hdrOrigin)
	if origin == "" || l.fromMyName(m) {
		return
	}
	l.in[KindPresence].Add(1)
	seq, _ := strconv.ParseUint(m.Header.Get(hdrSeq), 10, 64)
	now := time.Now()
	switch kind := m.Header.Get(hdrKind); kind {
	case kindAdd, kindRemove:
		l.mu.Lock()
		inOrder := l.peers.delta(origin, seq, kind == kindAdd, string(m.Data), now)
		l.mu.Unlock()
		if !inOrder {
			l.publishPresence(kindResync, 0, []byte(origin))
		}
	case kindSnapshot, kindSnapshotMore:
		ids, err := decodeIDs(m.Data)
		if err != nil {
			l.lim.Log(l.log, slog.LevelWarn, "cluster_malformed", origin, "cluster: a malformed snapshot", "from", origin)
			return
		}
		l.mu.Lock()
		l.peers.snapshotPart(origin, seq, kind == kindSnapshot, m.Header.Get(hdrMore) != "", ids, now)
		l.mu.Unlock()
	case kindBeat:
		l.mu.Lock()
		inStep := l.peers.beat(origin, seq, now)
		l.mu.Unlock()
		if !inStep {
			l.publishPresence(kindResync, 0, []byte(origin))
		}
	case kindHello:
		l.mu.Lock()
		l.peers.forget(origin) // it starts afresh; its snapshot follows
		l.peers.get(origin, now)
		l.mu.Unlock()
		l.publishSnapshot()
	case kindResync:
		if string(m.Data) == l.cfg.Instance {
			l.publishSnapshot()
		}
	}
}

// fromMyName reports whether m came from this instance's name: its own echo, or
// (another process's nonce) a namesake, which is said loudly: two
// instances with one name ignore each other.
func (l *Link) fromMyName(m *nats.Msg) bool {
	if m.Header.Get(hdrOrigin) != l.cfg.Instance {
		return false
	}
	if m.Header.Get(hdrNonce) != l.nonce {
		l.clashes.Add(1)
		l.lim.Log(l.log, slog.LevelError, "cluster_name_clash", "",
			"cluster: another instance has this instance's name; each ignores the other (set instance_name)")
	}
	return true
}

// beat is the Link's goroutine: it says this instance is alive, at which
// delta, and forgets the instances that have gone silent.
func (l *Link) beat() {
	defer l.wg.Done()
	t := time.NewTicker(l.cfg.Beat)
	defer t.Stop()
	for {
		select {
		case <-l.quit:
			return
		case <-t.C:
		}
		l.mu.Lock()
		gone := l.peers.expire(time.Now().Add(-3 * l.cfg.Beat))
		l.publishPresence(kindBeat, l.seq, nil) // under l.mu: in order with the deltas
		l.mu.Unlock()
		for _, name := range gone {
			l.log.Warn("cluster: an instance went silent; forgetting its clients", "other", name)
		}
	}
}

// Broadcast sends frame to every client of every other instance. While
// the link is down it fails with ErrDown, counted and logged
// (rate-limited): the broadcast reached this instance's clients only.
// Any goroutine.
func (l *Link) Broadcast(frame []byte) error {
	m := nats.NewMsg(l.prefix + "bcast")
	m.Header.Set(hdrOrigin, l.cfg.Instance)
	m.Header.Set(hdrNonce, l.nonce)
	m.Data = frame
	if !l.send(m, KindBroadcast) {
		l.localOnly.Add(1)
		l.lim.Log(l.log, slog.LevelWarn, "cluster_local_only", "", "cluster link down: broadcast reached this instance's clients only")
		return ErrDown
	}
	return nil
}

func (l *Link) onBroadcast(m *nats.Msg) {
	if l.fromMyName(m) {
		return
	}
	l.in[KindBroadcast].Add(1)
	if local := l.local.Load(); local != nil {
		(*local).Broadcast(m.Data)
	}
}

// Send sends a message to client id of another instance: ErrNoClient when
// no instance has it, ErrDown when the link is down. Once handed to NATS
// it is not acknowledged: a client that left meanwhile never gets it. Any
// goroutine.
func (l *Link) Send(id string, frames [][]byte) error {
	if !l.nc.IsConnected() {
		l.notSent.Add(1)
		return ErrDown
	}
	l.mu.Lock()
	where, ok := l.peers.where(id)
	l.mu.Unlock()
	if !ok {
		return ErrNoClient
	}
	m := nats.NewMsg(l.prefix + "send." + token(where))
	m.Data = encodeSend(id, frames)
	if !l.send(m, KindSend) {
		l.notSent.Add(1)
		return ErrDown
	}
	return nil
}

func (l *Link) onSend(m *nats.Msg) {
	l.in[KindSend].Add(1)
	id, frames, err := decodeSend(m.Data)
	if err != nil {
		l.lim.Log(l.log, slog.LevelWarn, "cluster_malformed", "", "cluster: a malformed send")
		return
	}
	if local := l.local.Load(); local != nil {
		_ = (*local).Send(id, frames) // gone meanwhile: as with any send, it is lost
	}
}

// Publish sends payload on a handlers' subject (no wildcards), to every
// subscriber of every instance, this one's included. Any goroutine.
func (l *Link) Publish(subject string, payload []byte) error {
	if err := CheckSubject(subject, false); err != nil {
		return err
	}
	m := nats.NewMsg(l.prefix + "app." + subject)
	m.Data = payload
	if !l.send(m, KindPublish) {
		l.notSent.Add(1)
		return ErrDown
	}
	return nil
}

// Subscribe calls fn, on a goroutine of NATS's, with the subject (without
// the cluster's prefix) and payload of each message published on subject
// (which may hold the wildcards '*' and '>'), until the returned
// unsubscribe. It works while the link is down: the subscription is made
// when it comes back. Any goroutine.
func (l *Link) Subscribe(subject string, fn func(subject string, payload []byte)) (unsubscribe func(), err error) {
	if err := CheckSubject(subject, true); err != nil {
		return nil, err
	}
	strip := l.prefix + "app."
	sub, err := l.nc.Subscribe(strip+subject, func(m *nats.Msg) {
		l.in[KindPublish].Add(1)
		fn(strings.TrimPrefix(m.Subject, strip), m.Data)
	})
	if err != nil {
		return nil, fmt.Errorf("cluster: subscribe %q: %w", subject, err)
	}
	return func() { _ = sub.Unsubscribe() }, nil
}

// RedactURLs is NATS URLs (comma-separated) with their passwords hidden,
// for logs and status.
func RedactURLs(urls string) string {
	parts := strings.Split(urls, ",")
	for i, p := range parts {
		if u, err := url.Parse(strings.TrimSpace(p)); err == nil && u.User != nil {
			if _, hasPassword := u.User.Password(); !hasPassword {
				u.User = url.User("xxxxx") // a token
			}
			parts[i] = u.Redacted()
		}
	}
	return strings.Join(parts, ",")
}

// CheckSubject refuses what is not a NATS subject: empty tokens, white
// space, and (unless wild) the wildcards.
func CheckSubject(subject string, wild bool) error {
	if subject == "" {
		return errors.New("cluster: an empty subject")
	}
	for i, tok := range strings.Split(subject, ".") {
		switch {
		case tok == "":
			return fmt.Errorf("cluster: subject %q has an empty token", subject)
		case strings.ContainsAny(tok, " \t\r\n"):
			return fmt.Errorf("cluster: subject %q holds white space", subject)
		case (tok == "*" || tok == ">") && !wild:
			return fmt.Errorf("cluster: subject %q: wildcards are for subscribe", subject)
		case tok == ">" && i != strings.Count(subject, "."):
			return fmt.Errorf("cluster: subject %q: '>' must be the last token", subject)
		case tok != "*" && tok != ">" && strings.ContainsAny(tok, "*>"):
			return fmt.Errorf("cluster: subject %q: a wildcard must be a token of its own", subject)
		}
	}
	return nil
}

// Counters are what crossed the link, by kind.
type Counters struct {
	In, Out   [numKinds]uint64
	LocalOnly uint64 // broadcasts that reached this instance's clients only
	NotSent   uint64 // sends and publishes that failed with ErrDown
}

// Counters reads what crossed the link. Any goroutine; it takes no lock.
func (l *Link) Counters() Counters {
	c := Counters{LocalOnly: l.localOnly.Load(), NotSent: l.notSent.Load()}
	for k := range numKinds {
		c.In[k], c.Out[k] = l.in[k].Load(), l.out[k].Load()
	}
	return c
}

// Instances is how many other instances this one knows. Any goroutine.
func (l *Link) Instances() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.peers.instances)
}

// Status is the link as an operator sees it.
type Status struct {
	State     string            `json:"state"` // "up" or "down"
	URL       string            `json:"url,omitempty"`
	Cluster   string            `json:"cluster"`
	Instance  string            `json:"instance"`
	Clients   int               `json:"clients"` // this instance's, as the cluster knows them
	Instances []InstanceStatus  `json:"instances"`
	In        map[string]uint64 `json:"in"`  // messages received, by kind
	Out       map[string]uint64 `json:"out"` // messages sent, by kind
	LocalOnly uint64            `json:"broadcastsLocalOnly"`
	// NameClashes counts messages from another process with this
	// instance's name (instance_name must be unique in the cluster).
	NameClashes uint64 `json:"nameClashes"`
}

// Status returns the link's state. Any goroutine.
func (l *Link) Status() Status {
	c := l.Counters()
	st := Status{State: "down", Cluster: l.cfg.Name, Instance: l.cfg.Instance,
		In: map[string]uint64{}, Out: map[string]uint64{}, LocalOnly: c.LocalOnly, NameClashes: l.clashes.Load()}
	if l.nc.IsConnected() {
		st.State, st.URL = "up", l.nc.ConnectedUrlRedacted()
	}
	for k := range numKinds {
		st.In[k.String()], st.Out[k.String()] = c.In[k], c.Out[k]
	}
	l.mu.Lock()
	st.Clients = len(l.mine)
	st.Instances = l.peers.list()
	l.mu.Unlock()
	return st
}
