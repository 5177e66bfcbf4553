package jsrt_test

import (
	"fmt"
	"testing"

	"github.com/moebius-js/moebius-js/jsrt"
)

const sharded = `
let served = 0; // per worker: each worker has its own runtime
module.exports = { rules: [
  { command: 'hit', handler: (c) => { served++; c.send('served ' + served); } },
  { command: 'all', handler: (c, d) => c.broadcast(d.text) },
]};
`

func TestWorkersServeTheirClientsAndUnfilteredBroadcastReachesAll(t *testing.T) {
	e := start(t, jsrt.Config{Workers: 4}, map[string]string{"handlers.js": sharded})
	const n = 40
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("client-%d", i)
		e.connect(id)
		e.send(id, `{"command":"hit"}`)
	}
	maxCount := 0
	for i := 0; i < n; i++ {
		var k int
		if _, err := fmt.Sscanf(e.reply(fmt.Sprintf("client-%d", i), 1), "served %d", &k); err != nil {
			t.Fatal(err)
		}
		maxCount = max(maxCount, k)
	}
	if maxCount == n {
		t.Fatalf("one runtime counted all %d requests: clients were not spread over the workers", n)
	}
	e.send("client-0", `{"command":"all","text":"to everyone"}`)
	for i := 0; i < n; i++ {
		if got := e.reply(fmt.Sprintf("client-%d", i), 2); got != "to everyone" {
			t.Fatalf("client-%d got %q", i, got)
		}
	}
}
