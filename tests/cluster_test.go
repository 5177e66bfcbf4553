package tests

import (
	"bufio"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moebius-js/moebius-js/internal/natstest"
)

// clusterHandlers exercise what crosses the cluster: broadcasts, sends by
// id and cluster.publish. What is published on 'news' is forwarded by the
// subscriber made at the top of the file to this instance's listening
// clients, with a filtered broadcast (so it stays on this instance), tagged
// with the instance that heard it.
const clusterHandlers = `
const { server, cluster, ClientGoneError } = require('moebius');

// Without a cluster, subscribe throws; whoami tells.
let subscribed = false;
try {
  cluster.subscribe('news', (m) => {
    server.broadcast(JSON.stringify({ heardBy: cluster.instance, subject: m.subject, text: m.text }),
      (c) => c.state.listening === true);
  });
  subscribed = true;
} catch (e) {}

function failure(e) { return e instanceof ClientGoneError ? 'gone' : 'error: ' + e.message; }

module.exports = { rules: [
  { command: 'whoami', handler: (c) => c.send(JSON.stringify({ instance: cluster.instance, subscribed })) },
  { command: 'ping', handler: (c) => c.send('pong') },
  { command: 'hold', handler: () => {} },
  { command: 'listen', handler: (c) => { c.state.listening = true; c.send('listening'); } },
  { command: 'shout', handler: (c, d) => { server.broadcast(d.text); c.send('shouted'); } },
  { command: 'cshout', handler: (c, d) => { c.broadcast(d.text); c.send('shouted'); } },
  { command: 'relay', handler: (c, d) => {
      try { server.send(d.to, d.text); c.send('sent'); } catch (e) { c.send(failure(e)); } } },
  { command: 'publish', handler: (c, d) => {
      try { cluster.publish('news', d.text); c.send('published'); } catch (e) { c.send(failure(e)); } } },
  { command: 'subscribe', handler: (c) => {
      try { cluster.subscribe('news', () => {}).unsubscribe(); c.send('subscribed'); } catch (e) { c.send(failure(e)); } } },
  { command: 'burst', handler: (c, d) => {
      for (let i = 0; i < d.n; i++) server.broadcast(d.prefix + i);
      c.send('burst done'); } },
]};
`

var (
	clusterLinkUp   = regexp.MustCompile(`level=INFO msg="cluster link up"`)
	clusterLinkDown = regexp.MustCompile(`level=WARN msg="cluster link down(; reconnecting)?"`)
	localOnlyWarn   = regexp.MustCompile(`level=WARN msg="cluster link down: broadcast reached this instance's clients only"`)
)

// clusterNode is one instance of a cluster and the clients connected to it.
type clusterNode struct {
	name    string
	srv     *server
	clients []*client
}

// startCluster starts one instance per name (with start: startServer or
// startPlain) on the NATS server given, connects perInstance clients to
// each (ids "<instance>-<i>", each checked to see its instance's name and
// made a listener of 'news'), and waits until every instance knows every
// other one with all its clients.
func startCluster(t *testing.T, start func(*testing.T, string, ...string) *server, nats *natstest.Server,
	perInstance int, extra []string, names ...string) []*clusterNode {
	t.Helper()
	handlers := writeHandlers(t, clusterHandlers)
	nodes := make([]*clusterNode, len(names))
	for i, name := range names {
		flags := append([]string{"--cluster-nats", nats.URL, "--cluster-name", "e2e", "--instance-name", name,
			"--admin", "127.0.0.1:0"}, extra...)
		nodes[i] = &clusterNode{name: name, srv: start(t, handlers, flags...)}
	}
	for _, n := range nodes {
		n.srv.logs.waitFor(t, clusterLinkUp, 15*time.Second)
		for i := range perInstance {
			c := dial(t, n.srv.addr, fmt.Sprintf("%s-%d", n.name, i), false)
			if got, want := c.roundTrip(`{"command":"whoami"}`), fmt.Sprintf(`{"instance":%q,"subscribed":true}`, n.name); got != want {
				t.Fatalf("%s: whoami = %s, want %s (cluster.instance is the instance_name given; the top of handlers.js subscribed)", c.id, got, want)
			}
			if got := c.roundTrip(`{"command":"listen"}`); got != "listening" {
				t.Fatalf("%s: listen = %q", c.id, got)
			}
			n.clients = append(n.clients, c)
		}
	}
	waitPresence(t, nodes, perInstance)
	return nodes
}

// clusterStatus is the cluster part of /status.
type clusterStatus struct {
	Cluster struct {
		State     string        `json:"state"`
		Instance  string        `json:"instance"`
		Instances []clusterPeer `json:"instances"`
	} `json:"cluster"`
}

// clusterPeer is another instance as /status lists it.
type clusterPeer struct {
	Name    string `json:"name"`
	Clients int    `json:"clients"`
}

// knows reports whether n's /status lists every other node with clients
// clients.
func (n *clusterNode) knows(t *testing.T, nodes []*clusterNode, clients int) bool {
	t.Helper()
	var st clusterStatus
	n.srv.getJSON(t, "/status", &st)
	for _, o := range nodes {
		if o == n {
			continue
		}
		if !slices.Contains(st.Cluster.Instances, clusterPeer{Name: o.name, Clients: clients}) {
			return false
		}
	}
	return true
}

// wantState checks the link's state and the instance's name in /status.
func (n *clusterNode) wantState(t *testing.T, state string) {
	t.Helper()
	var st clusterStatus
	n.srv.getJSON(t, "/status", &st)
	if st.Cluster.State != state || st.Cluster.Instance != n.name {
		t.Fatalf("%s /status cluster: state %q instance %q, want %q and %q", n.name, st.Cluster.State, st.Cluster.Instance, state, n.name)
	}
}

// waitPresence waits until every node's /status lists every other node
// with clients clients, and its moebius_cluster_instances counts them: no
// event announces that presence has arrived.
func waitPresence(t *testing.T, nodes []*clusterNode, clients int) {
	t.Helper()
	for _, n := range nodes {
		eventually(t, 15*time.Second, n.name+" to know every other instance and its clients", func() bool {
			return n.knows(t, nodes, clients) && n.srv.metric("moebius_cluster_instances") == float64(len(nodes)-1)
		})
	}
}

// recvSet reads len(want) messages from c and checks their first frames
// are want in any order (a handler's reply and a broadcast it made may
// come in either order).
func recvSet(t *testing.T, c *client, want ...string) {
	t.Helper()
	got := make([]string, len(want))
	for i := range want {
		got[i] = c.recvText()
	}
	slices.Sort(got)
	w := slices.Clone(want)
	slices.Sort(w)
	if !slices.Equal(got, w) {
		t.Fatalf("%s received %q, want %q", c.id, got, w)
	}
}

// clusterMessages reads moebius_cluster_messages_total for a direction and
// kind.
func clusterMessages(t *testing.T, s *server, direction, kind string) float64 {
	t.Helper()
	return metricOrZero(t, s, "moebius_cluster_messages_total", fmt.Sprintf(`direction=%q,kind=%q`, direction, kind))
}

// metricOrZero reads a sample like server.metricLabelled, but returns 0
// when the sample is absent.
func metricOrZero(t *testing.T, s *server, name, labels string) float64 {
	t.Helper()
	resp, err := http.Get(s.metrics)
	if err != nil {
		t.Fatalf("get metrics: %v", err)
	}
	defer resp.Body.Close()
	prefix := name + " "
	if labels != "" {
		prefix = name + "{" + labels + "} "
	}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), prefix); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				t.Fatalf("metric %s{%s}: %v", name, labels, err)
			}
			return f
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("read metrics: %v", err)
	}
	return 0
}

// eventuallyEquals polls get until it returns want, failing with the last
// value after timeout: for counters that no event announces.
func eventuallyEquals(t *testing.T, timeout time.Duration, what string, want float64, get func() float64) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got := get()
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s = %v after %v, want %v", what, got, timeout, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// relay asks from's instance to server.send text to the client with id to,
// and returns the handler's answer: "sent", "gone" or "error: ...".
func relay(from *client, to, text string) string {
	from.t.Helper()
	return from.roundTrip(fmt.Sprintf(`{"command":"relay","to":%q,"text":%q}`, to, text))
}

// allClients is every client of every node.
func allClients(nodes []*clusterNode) []*client {
	var all []*client
	for _, n := range nodes {
		all = append(all, n.clients...)
	}
	return all
}

// shoutReachesAll makes from broadcast text and checks every client
// receives it, once, as its next message (from also gets the handler's
// "shouted").
func shoutReachesAll(t *testing.T, from *client, everyone []*client, text string) {
	t.Helper()
	from.send(fmt.Sprintf(`{"command":"shout","text":%q}`, text))
	for _, c := range everyone {
		if c == from {
			recvSet(t, c, text, "shouted")
		} else if got := c.recvText(); got != text {
			t.Fatalf("%s received %q, want the broadcast %q", c.id, got, text)
		}
	}
}

func TestClusterBroadcastReachesTheClientsOfEveryInstance(t *testing.T) {
	nats := natstest.Start(t)
	nodes := startCluster(t, startServer, nats, 2, nil, "alpha", "beta")
	everyone := allClients(nodes)
	for _, tc := range []struct {
		name string
		from *client
	}{
		{"from alpha", nodes[0].clients[0]},
		{"from beta", nodes[1].clients[1]},
		{"from alpha again", nodes[0].clients[1]},
	} {
		// Each client's next message is this broadcast, so a copy of an
		// earlier one delivered twice (say, an instance hearing its own
		// broadcast back from NATS) shows up here.
		shoutReachesAll(t, tc.from, everyone, "broadcast "+tc.name)
	}
	for _, c := range everyone {
		if got := c.roundTrip(`{"command":"ping"}`); got != "pong" {
			t.Fatalf("%s: after the broadcasts it received %q, want only the pong", c.id, got)
		}
	}
	// alpha sent two broadcasts and heard one; beta the other way round.
	for _, tc := range []struct {
		node    *clusterNode
		out, in float64
	}{{nodes[0], 2, 1}, {nodes[1], 1, 2}} {
		for dir, want := range map[string]float64{"out": tc.out, "in": tc.in} {
			eventuallyEquals(t, 5*time.Second, fmt.Sprintf(`%s's moebius_cluster_messages_total{direction=%q,kind="broadcast"}`, tc.node.name, dir),
				want, func() float64 { return clusterMessages(t, tc.node.srv, dir, "broadcast") })
		}
	}
}

func TestClusterSendReachesAClientOfAnotherInstance(t *testing.T) {
	nats := natstest.Start(t)
	nodes := startCluster(t, startServer, nats, 2, nil, "alpha", "beta")
	a0, a1, b0, b1 := nodes[0].clients[0], nodes[0].clients[1], nodes[1].clients[0], nodes[1].clients[1]
	for _, tc := range []struct {
		name     string
		from, to *client
	}{
		{"alpha to beta", a0, b0},
		{"beta to alpha", b1, a1},
		{"alpha to alpha", a0, a1},
	} {
		text := "hello " + tc.name
		if got := relay(tc.from, tc.to.id, text); got != "sent" {
			t.Fatalf("%s: relay from %s to %s answered %q, want sent", tc.name, tc.from.id, tc.to.id, got)
		}
		if got := tc.to.recvText(); got != text {
			t.Fatalf("%s: %s received %q, want %q", tc.name, tc.to.id, got, text)
		}
	}
	for _, from := range []*client{a0, b0} {
		if got := relay(from, "nobody", "lost"); got != "gone" {
			t.Fatalf("relay from %s to an id no instance has answered %q, want ClientGoneError caught (gone)", from.id, got)
		}
	}
	if got := clusterMessages(t, nodes[1].srv, "in", "send"); got < 1 {
		t.Fatalf(`beta's moebius_cluster_messages_total{direction="in",kind="send"} = %v after a send from alpha`, got)
	}

	// b1 leaves: alpha hears of it (a disconnect is published at once)
	// and a send to it throws ClientGoneError there too.
	b1.sock.Close()
	eventually(t, 10*time.Second, "alpha to see beta-1 gone", func() bool {
		return nodes[0].knows(t, nodes, 1)
	})
	if got := relay(a0, b1.id, "too late"); got != "gone" {
		t.Fatalf("relay from alpha to %s after it left answered %q, want gone", b1.id, got)
	}
}

func TestClusterPublishReachesSubscribersOnEveryInstance(t *testing.T) {
	nats := natstest.Start(t)
	nodes := startCluster(t, startServer, nats, 2, nil, "alpha", "beta")
	heard := func(n *clusterNode, text string) string {
		return fmt.Sprintf(`{"heardBy":%q,"subject":"news","text":%q}`, n.name, text)
	}
	for _, tc := range []struct {
		name string
		from *client
	}{
		{"from alpha", nodes[0].clients[0]},
		{"from beta", nodes[1].clients[0]},
	} {
		text := "bulletin " + tc.name
		tc.from.send(fmt.Sprintf(`{"command":"publish","text":%q}`, text))
		// Every instance's subscriber (the publisher's own too) hears it
		// once and forwards it to that instance's clients only.
		for _, n := range nodes {
			for _, c := range n.clients {
				if c == tc.from {
					recvSet(t, c, "published", heard(n, text))
				} else if got := c.recvText(); got != heard(n, text) {
					t.Fatalf("%s: %s received %s, want %s", tc.name, c.id, got, heard(n, text))
				}
			}
		}
	}
	for _, c := range allClients(nodes) {
		if got := c.roundTrip(`{"command":"ping"}`); got != "pong" {
			t.Fatalf("%s: after the bulletins it received %q, want only the pong", c.id, got)
		}
	}
	for _, n := range nodes {
		if out, in := clusterMessages(t, n.srv, "out", "publish"), clusterMessages(t, n.srv, "in", "publish"); out != 1 || in < 2 {
			t.Errorf(`%s: moebius_cluster_messages_total kind="publish" out=%v in=%v, want out 1 and in 2 (both bulletins)`, n.name, out, in)
		}
	}
}

func TestClusterIsOffWithoutClusterNATS(t *testing.T) {
	srv := startServer(t, writeHandlers(t, clusterHandlers), "--instance-name", "solo-1")
	c := dial(t, srv.addr, "solo", false)
	if got, want := c.roundTrip(`{"command":"whoami"}`), `{"instance":"solo-1","subscribed":false}`; got != want {
		t.Errorf("whoami without a cluster answered %s, want %s (cluster.instance names it all the same, subscribe throws)", got, want)
	}
	if got := relay(c, "nobody", "x"); got != "gone" {
		t.Fatalf("relay to an unknown id answered %q, want gone", got)
	}
	shoutReachesAll(t, c, []*client{c}, "to myself")
	for _, request := range []string{`{"command":"publish","text":"x"}`, `{"command":"subscribe"}`} {
		if got := c.roundTrip(request); !strings.HasPrefix(got, "error: ") {
			t.Fatalf("%s without a cluster answered %q, want it to throw", request, got)
		}
	}
}

func TestClusterInstancesServeTheirOwnClientsWhileNATSIsDown(t *testing.T) {
	for _, tc := range []struct {
		name string
		sig  syscall.Signal
		// the outage lasts until each instance has forgotten the other
		// (3 missed beats), so presence must be rebuilt afterwards
		forget bool
	}{
		{"nats stopped briefly", syscall.SIGTERM, false},
		{"nats killed until the instances forget each other", syscall.SIGKILL, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			nats := natstest.Start(t)
			nodes := startCluster(t, startServer, nats, 2, nil, "alpha", "beta")
			alpha, beta := nodes[0], nodes[1]
			a0, a1, b0, b1 := alpha.clients[0], alpha.clients[1], beta.clients[0], beta.clients[1]
			if got := relay(a0, b0.id, "before"); got != "sent" {
				t.Fatalf("relay alpha to beta before the outage answered %q", got)
			}
			if got := b0.recvText(); got != "before" {
				t.Fatalf("%s received %q, want before", b0.id, got)
			}
			for _, n := range nodes {
				if code, body := n.srv.get(t, "/readyz"); code != http.StatusOK || !strings.Contains(body, "cluster: up") {
					t.Fatalf("%s /readyz with the link up: %d %q, want 200 saying cluster: up", n.name, code, body)
				}
			}

			nats.StopWith(tc.sig)
			for _, n := range nodes {
				n.srv.logs.waitFor(t, clusterLinkDown, 15*time.Second)
				eventually(t, 10*time.Second, n.name+"'s moebius_cluster_link_up to be 0", func() bool {
					return n.srv.metric("moebius_cluster_link_up") == 0
				})
				if code, body := n.srv.get(t, "/readyz"); code != http.StatusOK || !strings.Contains(body, "cluster: down") {
					t.Fatalf("%s /readyz with the link down: %d %q, want 200 saying cluster: down", n.name, code, body)
				}
				n.wantState(t, "down")
			}
			for _, c := range allClients(nodes) {
				if got := c.roundTrip(`{"command":"ping"}`); got != "pong" {
					t.Fatalf("%s during the outage: ping answered %q", c.id, got)
				}
			}
			if got := relay(a0, a1.id, "local"); got != "sent" {
				t.Fatalf("relay within alpha during the outage answered %q", got)
			}
			if got := a1.recvText(); got != "local" {
				t.Fatalf("%s received %q, want local", a1.id, got)
			}
			began := time.Now()
			got := relay(a0, b0.id, "across")
			took := time.Since(began)
			if !regexp.MustCompile(`(?i)^error: .*link.*down`).MatchString(got) {
				t.Fatalf("relay alpha to beta during the outage answered %q, want an error saying the cluster link is down", got)
			}
			if took > 2*time.Second {
				t.Fatalf("relay alpha to beta during the outage took %v to fail, want it to fail fast", took)
			}
			t.Logf("a cross-instance send with the link down failed in %v: %s", took, got)

			// Broadcasts while the link is down: each reaches alpha's clients
			// only and is counted; a WARN says so, rate-limited.
			const localOnly = 10
			before := alpha.srv.metric("moebius_cluster_broadcasts_local_only_total")
			for i := range localOnly {
				text := fmt.Sprintf("during the outage %d", i)
				a0.send(fmt.Sprintf(`{"command":"shout","text":%q}`, text))
				recvSet(t, a0, text, "shouted")
				if got := a1.recvText(); got != text {
					t.Fatalf("%s received %q, want %q", a1.id, got, text)
				}
			}
			alpha.srv.logs.waitFor(t, localOnlyWarn, 5*time.Second)
			if n := alpha.srv.logs.count(localOnlyWarn); n >= localOnly {
				t.Errorf("%d local-only broadcasts in a row logged the WARN %d times, want it rate-limited", localOnly, n)
			}
			if got := alpha.srv.metric("moebius_cluster_broadcasts_local_only_total"); got != before+localOnly {
				t.Errorf("moebius_cluster_broadcasts_local_only_total = %v after %d broadcasts with the link down, want %v", got, localOnly, before+localOnly)
			}

			if tc.forget {
				for _, n := range nodes {
					eventually(t, 20*time.Second, n.name+" to forget the other instance", func() bool {
						return n.srv.metric("moebius_cluster_instances") == 0
					})
				}
			}
			nats.Restart()
			for _, n := range nodes {
				eventually(t, 30*time.Second, n.name+"'s moebius_cluster_link_up to be 1 again", func() bool {
					return n.srv.metric("moebius_cluster_link_up") == 1
				})
				if n.srv.logs.count(clusterLinkUp) < 2 {
					t.Errorf("%s: link up again but no second INFO %q logged", n.name, clusterLinkUp)
				}
				if code, body := n.srv.get(t, "/readyz"); code != http.StatusOK || !strings.Contains(body, "cluster: up") {
					t.Fatalf("%s /readyz with the link back: %d %q", n.name, code, body)
				}
				n.wantState(t, "up")
			}
			waitPresence(t, nodes, 2)
			for _, r := range []struct{ from, to *client }{{a0, b0}, {b1, a1}} {
				if got := relay(r.from, r.to.id, "after"); got != "sent" {
					t.Fatalf("relay from %s to %s after the restart answered %q", r.from.id, r.to.id, got)
				}
				if got := r.to.recvText(); got != "after" {
					t.Fatalf("%s received %q after the restart, want after (a message of the outage replayed?)", r.to.id, got)
				}
			}
			// beta's clients' next message is this broadcast, not one of the
			// local-only ones replayed when the link came back.
			shoutReachesAll(t, a0, allClients(nodes), "after the outage, from alpha")
			shoutReachesAll(t, b0, allClients(nodes), "after the outage, from beta")
		})
	}
}

func TestClusterBroadcastLoadAcrossFourInstances(t *testing.T) {
	const (
		perInstance = 5    // clients on each instance
		burst       = 1000 // broadcasts each sender makes
	)
	nats := natstest.Start(t)
	// The plain build: four race-detecting servers under this load would
	// measure the detector. The high-water mark is raised so that no copy
	// is skipped for a client that reads slower than the burst comes.
	nodes := startCluster(t, startPlain, nats, perInstance, []string{"--send-hwm", "100000"}, "n1", "n2", "n3", "n4")
	everyone := allClients(nodes)

	// collect reads every broadcast of the round from every client and
	// checks each reached each client exactly once; senders also get
	// their handler's reply.
	collect := func(round string, senders []*clusterNode) {
		t.Helper()
		for _, c := range everyone {
			seen := map[string]int{}
			replies := 0
			isSender := slices.ContainsFunc(senders, func(n *clusterNode) bool { return n.clients[0] == c })
			for received := 0; received < len(senders)*burst; {
				m := c.recvText()
				if m == "burst done" && isSender && replies == 0 {
					replies++
					continue
				}
				if !strings.HasPrefix(m, round+"/") {
					t.Fatalf("%s: %s received %q, want only the round's broadcasts", round, c.id, m)
				}
				seen[m]++
				received++
			}
			if isSender && replies == 0 {
				if got := c.recvText(); got != "burst done" {
					t.Fatalf("%s: %s received %q, want its burst's reply", round, c.id, got)
				}
			}
			for _, s := range senders {
				for i := range burst {
					if k := fmt.Sprintf("%s/%s|%d", round, s.name, i); seen[k] != 1 {
						t.Fatalf("%s: %s received broadcast %s %d times, want once", round, c.id, k, seen[k])
					}
				}
			}
		}
	}
	rounds := []struct {
		name    string
		senders []*clusterNode
	}{
		{"one instance", nodes[:1]},
		{"all four instances", nodes},
	}
	sent := map[*clusterNode]int{}
	for _, r := range rounds {
		began := time.Now()
		for _, s := range r.senders {
			s.clients[0].send(fmt.Sprintf(`{"command":"burst","n":%d,"prefix":"%s/%s|"}`, burst, r.name, s.name))
			sent[s] += burst
		}
		collect(r.name, r.senders)
		took := time.Since(began)
		n := len(r.senders) * burst
		deliveries := n * len(everyone)
		t.Logf("%s sending %d broadcasts each: %d broadcasts reached %d clients on %d instances (%d deliveries) in %v: %.0f broadcasts/s, %.0f deliveries/s",
			r.name, burst, n, len(everyone), len(nodes), deliveries, took.Round(time.Millisecond),
			float64(n)/took.Seconds(), float64(deliveries)/took.Seconds())
	}

	total := 0
	for _, n := range nodes {
		total += sent[n]
	}
	for _, n := range nodes {
		for dir, want := range map[string]int{"out": sent[n], "in": total - sent[n]} {
			eventuallyEquals(t, 10*time.Second, fmt.Sprintf(`%s's moebius_cluster_messages_total{direction=%q,kind="broadcast"}`, n.name, dir),
				float64(want), func() float64 { return clusterMessages(t, n.srv, dir, "broadcast") })
		}
		t.Logf("%s: broadcasts out %v in %v; presence out %v in %v; skipped copies %v", n.name,
			clusterMessages(t, n.srv, "out", "broadcast"), clusterMessages(t, n.srv, "in", "broadcast"),
			clusterMessages(t, n.srv, "out", "presence"), clusterMessages(t, n.srv, "in", "presence"),
			metricOrZero(t, n.srv, "moebius_broadcast_skipped_total", ""))
	}
}

// A send across instances carries the client's envelope as a local one
// does: a REQ client on beta gets alpha's relay as the answer to its
// request.
func TestClusterSendToAREQClientCarriesItsEnvelope(t *testing.T) {
	nats := natstest.Start(t)
	nodes := startCluster(t, startServer, nats, 1, nil, "alpha", "beta")
	req := dial(t, nodes[1].srv.addr, "beta-req", true)
	req.send(`{"command":"listen"}`)
	if got := req.recvText(); got != "listening" {
		t.Fatalf("got %q", got)
	}
	eventually(t, 10*time.Second, "alpha to know beta-req", func() bool { return nodes[0].knows(t, nodes, 2) })
	req.send(`{"command":"hold"}`) // a REQ takes a reply only to a request it sent
	if got := relay(nodes[0].clients[0], "beta-req", "from alpha"); got != "sent" {
		t.Fatalf("relay answered %q", got)
	}
	if got := req.recvText(); got != "from alpha" {
		t.Fatalf("the REQ client received %q, want alpha's relay", got)
	}
}

// check evaluates a clustered handlers.js (one that subscribes at its top
// level) without a cluster to connect to, as systemctl reload runs it.
func TestCheckAcceptsAHandlersFileThatSubscribes(t *testing.T) {
	path := writeHandlers(t, clusterHandlers)
	out, errOut, code := runCLI(t, "check", path)
	if code != 0 || !strings.Contains(out, "ok") {
		t.Fatalf("check exit %d: %s%s", code, out, errOut)
	}
}

// client.broadcast crosses instances as server.broadcast does, and the
// cluster is its name: an instance of another cluster on the same NATS
// hears nothing of it.
func TestClusterClientBroadcastCrossesAndAnotherClusterNameHearsNothing(t *testing.T) {
	nats := natstest.Start(t)
	nodes := startCluster(t, startServer, nats, 1, nil, "alpha", "beta")
	other := startCluster(t, startServer, nats, 1, []string{"--cluster-name", "elsewhere"}, "gamma")[0]
	a, b := nodes[0].clients[0], nodes[1].clients[0]
	a.send(`{"command":"cshout","text":"from a client"}`)
	recvSet(t, a, "from a client", "shouted")
	if got := b.recvText(); got != "from a client" {
		t.Fatalf("beta's client received %q, want alpha's client's broadcast", got)
	}
	// beta heard it through NATS; gamma, subscribed to its own cluster's
	// subjects on the same server, did not.
	if got := clusterMessages(t, other.srv, "in", "broadcast"); got != 0 {
		t.Fatalf("an instance of another cluster received %v broadcasts", got)
	}
	if got := other.clients[0].pending(); got != 0 {
		t.Fatalf("gamma's client has %d messages, want none", got)
	}
}
