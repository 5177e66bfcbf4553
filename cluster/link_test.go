package cluster_test

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moebius-js/moebius-js/cluster"
	"github.com/moebius-js/moebius-js/internal/natstest"
)

// local records what the link hands to an instance.
type local struct {
	mu         sync.Mutex
	broadcasts []string
	sent       map[string][]string
}

func (l *local) Broadcast(frame []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.broadcasts = append(l.broadcasts, string(frame))
}

func (l *local) Send(id string, frames [][]byte) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.sent == nil {
		l.sent = map[string][]string{}
	}
	l.sent[id] = append(l.sent[id], string(frames[0]))
	return nil
}

func (l *local) snapshot() (broadcasts []string, sent map[string][]string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	sent = map[string][]string{}
	for k, v := range l.sent {
		sent[k] = append([]string(nil), v...)
	}
	return append([]string(nil), l.broadcasts...), sent
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func open(t *testing.T, url, name string) (*cluster.Link, *local) {
	t.Helper()
	l, err := cluster.Open(cluster.Config{URLs: url, Name: "test", Instance: name, Beat: 100 * time.Millisecond,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Close)
	loc := &local{}
	l.Serve(loc)
	return l, loc
}

func TestTwoInstancesShareClientsBroadcastsAndSubjects(t *testing.T) {
	nats := natstest.Start(t)
	a, la := open(t, nats.URL, "a.example:1")
	b, lb := open(t, nats.URL, "b.example:1")
	eventually(t, "both links up", func() bool { return a.Up() && b.Up() })

	b.Connected("bob")
	eventually(t, "a knows bob", func() bool { return a.Send("bob", [][]byte{[]byte("hi bob")}) == nil })
	eventually(t, "bob's message", func() bool { _, sent := lb.snapshot(); return len(sent["bob"]) > 0 })
	if err := a.Send("nobody", [][]byte{[]byte("x")}); !errors.Is(err, cluster.ErrNoClient) {
		t.Fatalf("send to nobody: %v, want ErrNoClient", err)
	}
	b.Disconnected("bob")
	eventually(t, "a forgets bob", func() bool { return errors.Is(a.Send("bob", [][]byte{[]byte("x")}), cluster.ErrNoClient) })

	if err := a.Broadcast([]byte("from a")); err != nil {
		t.Fatal(err)
	}
	eventually(t, "b's broadcast", func() bool { bs, _ := lb.snapshot(); return len(bs) == 1 && bs[0] == "from a" })
	if bs, _ := la.snapshot(); len(bs) != 0 {
		t.Fatalf("a got its own broadcast back: %q", bs)
	}

	var mu sync.Mutex
	got := map[string][]string{}
	for name, l := range map[string]*cluster.Link{"a": a, "b": b} {
		unsub, err := l.Subscribe("orders.*", func(subject string, payload []byte) {
			mu.Lock()
			defer mu.Unlock()
			got[name] = append(got[name], subject+"="+string(payload))
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(unsub)
	}
	_ = a.Publish("orders.new", []byte("1")) // subscriptions reach NATS asynchronously: publish until both hear
	eventually(t, "both subscribers", func() bool {
		mu.Lock()
		defer mu.Unlock()
		if len(got["a"]) == 0 || len(got["b"]) == 0 {
			_ = a.Publish("orders.new", []byte("1"))
			return false
		}
		return got["a"][0] == "orders.new=1" && got["b"][0] == "orders.new=1"
	})
	if st := a.Status(); st.State != "up" || len(st.Instances) != 1 || st.Instances[0].Name != "b.example:1" || st.Out[cluster.KindBroadcast.String()] != 1 {
		t.Fatalf("status: %+v", st)
	}
}

func TestTheLinkFailsFastWhileNATSIsDownAndComesBackByItself(t *testing.T) {
	nats := natstest.Start(t)
	a, _ := open(t, nats.URL, "a")
	b, lb := open(t, nats.URL, "b")
	b.Connected("bob")
	eventually(t, "a knows bob", func() bool { return a.Up() && a.Send("bob", [][]byte{[]byte("x")}) == nil })

	nats.Stop()
	eventually(t, "the link down", func() bool { return !a.Up() })
	if err := a.Send("bob", [][]byte{[]byte("x")}); !errors.Is(err, cluster.ErrDown) {
		t.Fatalf("send while down: %v, want ErrDown", err)
	}
	if err := a.Broadcast([]byte("x")); !errors.Is(err, cluster.ErrDown) {
		t.Fatalf("broadcast while down: %v, want ErrDown", err)
	}
	if st := a.Status(); st.State != "down" || st.LocalOnly != 1 {
		t.Fatalf("status while down: %+v", st)
	}
	if c := a.Counters(); c.NotSent != 1 {
		t.Fatalf("%d failed sends counted, want the one", c.NotSent)
	}
	b.Connected("carol") // while down: repaired by the snapshots traded when it is back

	nats.Restart()
	eventually(t, "a reaches carol after the restart", func() bool { return a.Up() && a.Send("carol", [][]byte{[]byte("back")}) == nil })
	eventually(t, "carol's message", func() bool { _, sent := lb.snapshot(); return len(sent["carol"]) == 1 })
}

func TestAClosedInstanceIsForgottenAtOnce(t *testing.T) {
	nats := natstest.Start(t)
	a, _ := open(t, nats.URL, "a")
	b, _ := open(t, nats.URL, "b")
	b.Connected("bob")
	eventually(t, "a knows bob", func() bool { return a.Up() && a.Send("bob", [][]byte{[]byte("x")}) == nil })
	b.Close()
	eventually(t, "a forgets bob", func() bool { return errors.Is(a.Send("bob", [][]byte{[]byte("x")}), cluster.ErrNoClient) })
}

func TestASnapshotTooBigForOneMessageArrivesWhole(t *testing.T) {
	nats := natstest.Start(t)
	b, _ := open(t, nats.URL, "b")
	const n = 30_000 // with 16-byte ids, over 500 KB: more than one snapshot message
	for i := range n {
		b.Connected(fmt.Sprintf("client-%09d", i))
	}
	a, _ := open(t, nats.URL, "a") // joins late: learns b's clients from its snapshot
	eventually(t, "a knows all of b's clients", func() bool {
		st := a.Status()
		return len(st.Instances) == 1 && st.Instances[0].Clients == n
	})
	if err := a.Send(fmt.Sprintf("client-%09d", n-1), [][]byte{[]byte("x")}); err != nil {
		t.Fatal(err)
	}
}

func TestTwoInstancesWithOneNameSayTheyClash(t *testing.T) {
	nats := natstest.Start(t)
	a, _ := open(t, nats.URL, "same")
	b, _ := open(t, nats.URL, "same")
	eventually(t, "each hears its namesake", func() bool {
		return a.Status().NameClashes > 0 && b.Status().NameClashes > 0
	})
}

func TestAHungNATSNeverHoldsUpTheCaller(t *testing.T) {
	nats := natstest.Start(t)
	a, _ := open(t, nats.URL, "a")
	b, _ := open(t, nats.URL, "b")
	b.Connected("bob")
	eventually(t, "a knows bob", func() bool { return a.Up() && a.Send("bob", [][]byte{[]byte("x")}) == nil })

	nats.Pause() // a partition: the connection stays, nothing answers
	defer nats.Resume()
	frame := make([]byte, 100<<10)
	done := make(chan error, 1)
	go func() { // far more than NATS's socket buffers and the outbox hold
		var err error
		for range 20_000 {
			if e := a.Broadcast(frame); e != nil {
				err = e
			}
		}
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, cluster.ErrDown) {
			t.Fatalf("20,000 broadcasts into a hung NATS: %v, want some to fail with ErrDown", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the broadcasts waited on a hung NATS")
	}
	nats.Resume()
	eventually(t, "a reaches bob again", func() bool { return a.Up() && a.Send("bob", [][]byte{[]byte("back")}) == nil })
}

func TestRedactURLsHidesPasswordsAndTokens(t *testing.T) {
	got := cluster.RedactURLs("nats://alice:s3cret@h1:4222,nats://t0ken@h2:4222,nats://h3:4222")
	if strings.Contains(got, "s3cret") || strings.Contains(got, "t0ken") || !strings.Contains(got, "h3:4222") || !strings.Contains(got, "alice") {
		t.Fatalf("got %q", got)
	}
}
