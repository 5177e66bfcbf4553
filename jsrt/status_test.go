package jsrt_test

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moebius-js/moebius-js/jsrt"
)

func TestStatusShowsEachClientsWorkAndTheRequestsByCommand(t *testing.T) {
	var mu sync.Mutex
	took := map[string]int{}
	e := start(t, jsrt.Config{Workers: 2, OnRequest: func(command string, d time.Duration) {
		mu.Lock()
		defer mu.Unlock()
		took[command]++
	}}, map[string]string{"handlers.js": `
const { sleep } = require('moebius');
module.exports = { rules: [
  { command: 'park', handler: function* (c) { c.send('parked'); yield sleep(3600000); } },
  { command: 'quick', handler: (c) => c.send('done') },
]};`})
	e.connectWithKey("parker", testKey)
	e.connect("idle")
	e.send("parker", `{"command":"park"}`)
	e.send("parker", `{"command":"quick"}`)
	e.send("parker", `{"command":"nope"}`)
	e.send("idle", `{"command":"quick"}`)
	e.reply("parker", 1)
	e.reply("idle", 1)

	before := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if st := e.host.Status(ctx, false); st.Clients != nil || st.Commands["park"].Running != 1 {
		t.Fatalf("without clients: %d clients listed, commands %+v", len(st.Clients), st.Commands)
	}
	st := e.host.Status(ctx, true)
	if st.Generation != 1 || len(st.Files) == 0 || len(st.Workers) != 2 {
		t.Fatalf("generation %d, files %v, %d workers", st.Generation, st.Files, len(st.Workers))
	}
	clients := 0
	for _, w := range st.Workers {
		if !w.Answered {
			t.Fatalf("worker %d did not answer", w.Index)
		}
		clients += w.Clients
	}
	if clients != 2 || len(st.Clients) != 2 {
		t.Fatalf("workers count %d clients, the list has %d", clients, len(st.Clients))
	}
	idle, parker := st.Clients[0], st.Clients[1]
	if idle.ID != "idle" || idle.State != "idle" || idle.Command != "" || idle.Queued != 0 || idle.PublicKey != "" {
		t.Errorf("idle client: %+v", idle)
	}
	if parker.ID != "parker" || parker.State != "waiting" || parker.Command != "park" || parker.Queued != 2 ||
		parker.PublicKey != testKey || parker.Since == nil || parker.Since.After(before) {
		t.Errorf("parked client: %+v", parker)
	}
	want := map[string]jsrt.CommandStatus{"park": {Strategy: "queue", Running: 1}, "quick": {Strategy: "queue", Queued: 1}, "(refused)": {Queued: 1}}
	if len(st.Commands) != len(want) {
		t.Errorf("commands %+v, want %+v", st.Commands, want)
	}
	for cmd, n := range want {
		if st.Commands[cmd] != n {
			t.Errorf("command %s: %+v, want %+v", cmd, st.Commands[cmd], n)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if took["quick"] != 1 || took["park"] != 0 || took["(refused)"] != 0 {
		t.Errorf("OnRequest heard %v, want quick once and park not yet", took)
	}
}

func TestPingIsFalseWhileAWorkerIsInsideALongStep(t *testing.T) {
	e := start(t, jsrt.Config{Workers: 2, StepBudget: 5 * time.Second}, map[string]string{"handlers.js": `
module.exports = { rules: [{ command: 'busy', handler: (c) => { c.send('started'); const end = Date.now() + 1000; while (Date.now() < end) {} c.send('done'); } }] };`})
	ping := func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		return e.host.Ping(ctx)
	}
	if !ping() {
		t.Fatal("idle workers did not answer")
	}
	e.connect("c")
	e.send("c", `{"command":"busy"}`)
	e.reply("c", 1) // the step has begun
	if ping() {
		t.Fatal("a worker inside a one-second step answered")
	}
	e.reply("c", 2)
	if !ping() {
		t.Fatal("the worker did not answer once its step ended")
	}
}

// Status lists every command of the live rules with its strategy, with
// nothing running too, and says which workers run a background().
func TestStatusListsEveryRuleWithItsStrategy(t *testing.T) {
	e := start(t, jsrt.Config{}, map[string]string{"handlers.js": `
const { sleep } = require('moebius');
module.exports = {
  rules: [{ command: 'a', handler() {} }, { command: 'b', strategy: 'replace', handler() {} }, { command: 'c', strategy: 'ignore', handler() {} }],
  *background() { yield sleep(1e9); },
};`})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st := e.host.Status(ctx, false)
	want := map[string]jsrt.CommandStatus{"a": {Strategy: "queue"}, "b": {Strategy: "replace"}, "c": {Strategy: "ignore"}}
	if !maps.Equal(st.Commands, want) {
		t.Fatalf("commands %+v, want %+v", st.Commands, want)
	}
	if w := st.Workers[0]; !w.Background || w.Spawned != 1 {
		t.Fatalf("worker %+v: want its background() running as one spawned task", w)
	}
}

// The Host keeps the last handler errors, with their stacks, and every
// load; 50 errors and 20 loads at the most, newest first.
func TestHistoryKeepsHandlerErrorsAndLoads(t *testing.T) {
	e := start(t, jsrt.Config{}, map[string]string{"handlers.js": "module.exports = { rules: [\n  { command: 'boom', handler(c, d) { throw new Error('boom ' + d.n); } },\n  { command: 'ok', handler(c) { c.send('ok'); } },\n] };\n"})
	e.connect("c")
	e.send("c", `{"command":"boom","n":0}`)
	e.reply("c", 1)
	errs := e.host.RecentErrors()
	if len(errs) != 1 || errs[0].Client != "c" || errs[0].Code != jsrt.CodeHandlerError || errs[0].Command != "boom" ||
		errs[0].Message != "Error: boom 0" || !strings.Contains(errs[0].Stack, "handlers.js:2:44") || strings.Contains(errs[0].Stack, "boom 0") {
		t.Fatalf("errors %+v", errs)
	}
	e.send("c", `{"command":"ok"}`)
	for i := 1; i <= 55; i++ {
		e.send("c", fmt.Sprintf(`{"command":"boom","n":%d}`, i))
	}
	e.send("c", `{"command":"ok"}`)
	e.reply("c", 58) // everything before it has run
	errs = e.host.RecentErrors()
	if len(errs) != 50 || errs[0].Message != "Error: boom 55" || errs[49].Message != "Error: boom 6" {
		t.Fatalf("%d errors kept, newest %q, oldest %q: want 50, boom 55 to boom 6", len(errs), errs[0].Message, errs[len(errs)-1].Message)
	}

	e.write("handlers.js", "module.exports = {\n  rules: [,\n};\n")
	if err := e.host.Reload(); err == nil {
		t.Fatal("a broken file reloaded")
	}
	e.write("handlers.js", "module.exports = { rules: [{ command: 'x', handler() {} }] };\n")
	if err := e.host.Reload(); err != nil {
		t.Fatal(err)
	}
	loads := e.host.Loads()
	if len(loads) != 3 || !loads[0].OK || loads[0].Generation != 2 || loads[1].OK || loads[1].Generation != 2 ||
		!strings.Contains(loads[1].Error, "handlers.js:3:1") || !loads[2].OK || loads[2].Generation != 1 {
		t.Fatalf("loads %+v", loads)
	}
	for i := 0; i < 20; i++ {
		if err := e.host.Reload(); err != nil {
			t.Fatal(err)
		}
	}
	if loads := e.host.Loads(); len(loads) != 20 || loads[0].Generation != 22 || loads[19].Generation != 3 {
		t.Fatalf("%d loads kept, newest generation %d, oldest %d: want 20, 22 to 3", len(loads), loads[0].Generation, loads[len(loads)-1].Generation)
	}
}
