package tests

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// brokerWorker answers REQUEST messages until the test ends.
func brokerWorker(t *testing.T, addr, id, service string, wg *sync.WaitGroup, stop <-chan struct{}) {
	t.Helper()
	w := dial(t, addr, id, false)
	w.send("READY", service)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			case m := <-w.in:
				if string(m[0]) != "REQUEST" {
					continue // HEARTBEAT
				}
				_ = w.sock.Send(zmqMsg("REPLY", string(m[1]), fmt.Sprintf("%s did %s", id, m[2])))
			}
		}
	}()
}

func TestABrokerWrittenInHandlersJSRelaysBetweenClientsAndWorkers(t *testing.T) {
	srv := startServer(t, "../examples/broker.js")
	stop := make(chan struct{})
	var wg sync.WaitGroup
	defer func() { close(stop); wg.Wait() }()
	brokerWorker(t, srv.addr, "worker-1", "upper", &wg, stop)
	brokerWorker(t, srv.addr, "worker-2", "upper", &wg, stop)

	var clients []*client
	for i := 0; i < 3; i++ {
		clients = append(clients, dial(t, srv.addr, fmt.Sprintf("customer-%d", i), false))
	}
	workersSeen := map[string]bool{}
	deadline := time.Now().Add(10 * time.Second)
	for round := 0; len(workersSeen) < 2 || round < 3; round++ {
		if time.Now().After(deadline) {
			t.Fatalf("after %d rounds only %v answered", round, workersSeen)
		}
		for i, c := range clients {
			job := fmt.Sprintf("job %d.%d", round, i)
			c.send("REQUEST", "upper", job)
			m := c.recv()
			if len(m) != 3 || string(m[0]) != "REPLY" || string(m[1]) != "upper" || !strings.HasSuffix(string(m[2]), " did "+job) {
				t.Fatalf("%s got %q", c.id, m)
			}
			workersSeen[strings.Fields(string(m[2]))[0]] = true
		}
	}

	lost := dial(t, srv.addr, "lost", false)
	lost.send("REQUEST", "nosuch", "x")
	if m := lost.recv(); string(m[0]) != "ERROR" {
		t.Fatalf("a request for a missing service got %q", m)
	}
}
