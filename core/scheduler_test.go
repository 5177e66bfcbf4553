package core_test

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moebius-js/moebius-js/core"
)

// fakeClock is virtual time: Sleep jumps to its deadline at once.
type fakeClock struct {
	now    time.Time
	sleeps int
	woken  bool
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Unix(1_000_000, 0)} }

func (c *fakeClock) Now() time.Time { return c.now }
func (c *fakeClock) Wake()          { c.woken = true }
func (c *fakeClock) Sleep(until time.Time) {
	c.sleeps++
	if c.woken {
		c.woken = false
		return
	}
	if until.IsZero() {
		panic("fakeClock: sleeping forever with nothing to wake it")
	}
	if until.After(c.now) {
		c.now = until
	}
}
func (c *fakeClock) advance(d time.Duration) { c.now = c.now.Add(d) }

// recorder collects what coroutines and jobs did, in order.
type recorder struct{ events []string }

func (r *recorder) add(format string, args ...any) {
	r.events = append(r.events, fmt.Sprintf(format, args...))
}

// scriptCoroutine is a Go-native coroutine: its steps run one per Resume.
type scriptCoroutine struct {
	name  string
	rec   *recorder
	steps []func(in core.Input) core.Step
	i     int
}

func (f *scriptCoroutine) Resume(in core.Input) core.Step {
	if in.Err != nil {
		f.rec.add("%s got error %v", f.name, in.Err)
	} else if in.Value != nil {
		f.rec.add("%s got %v", f.name, in.Value)
	}
	if f.i >= len(f.steps) {
		f.rec.add("%s done", f.name)
		return core.Step{Kind: core.Done}
	}
	st := f.steps[f.i](in)
	f.i++
	return st
}

func (f *scriptCoroutine) Cancel() { f.rec.add("%s cancelled", f.name) }

// coroutine builds a scriptCoroutine whose steps each log "<name> <i>" then do what
// the given step says.
func coroutine(rec *recorder, name string, steps ...core.Step) *scriptCoroutine {
	f := &scriptCoroutine{name: name, rec: rec}
	for i, st := range steps {
		f.steps = append(f.steps, func(core.Input) core.Step {
			rec.add("%s %d", name, i+1)
			return st
		})
	}
	return f
}

func yields(n int) []core.Step {
	out := make([]core.Step, n)
	for i := range out {
		out[i] = core.Step{Kind: core.Yield}
	}
	return out
}

// job starts a coroutine built lazily (so tests can see when it starts) and
// records how it finished.
type job struct {
	name  string
	rec   *recorder
	build func() core.Coroutine
	err   error // returned by Start with a nil coroutine
}

func (j *job) Start() (core.Coroutine, error) {
	j.rec.add("%s start", j.name)
	if j.build == nil {
		return nil, j.err
	}
	return j.build(), nil
}

func (j *job) Finish(res core.Input) {
	switch {
	case res.Err != nil:
		j.rec.add("%s finished: %v", j.name, res.Err)
	case res.Value != nil:
		j.rec.add("%s finished: %v", j.name, res.Value)
	default:
		j.rec.add("%s finished", j.name)
	}
}

func newJob(rec *recorder, name string, steps ...core.Step) *job {
	return &job{name: name, rec: rec, build: func() core.Coroutine { return coroutine(rec, name, steps...) }}
}

// settle runs turns until nothing is runnable, failing past a bound.
func settle(t *testing.T, s *core.Scheduler) {
	t.Helper()
	for i := 0; s.Busy(); i++ {
		if i > 10_000 {
			t.Fatal("scheduler still busy after 10,000 turns")
		}
		s.Turn()
	}
}

func setup(cfg core.Config) (*core.Scheduler, *fakeClock, *recorder) {
	clk := newFakeClock()
	cfg.Clock = clk
	return core.New(cfg), clk, &recorder{}
}

func assertEvents(t *testing.T, rec *recorder, want ...string) {
	t.Helper()
	if !reflect.DeepEqual(rec.events, want) {
		t.Fatalf("events:\n  got  %s\n  want %s", strings.Join(rec.events, " | "), strings.Join(want, " | "))
	}
}

func TestRoundRobinStepsEachRunnableTaskOncePerTurn(t *testing.T) {
	s, _, rec := setup(core.Config{})
	for _, c := range []string{"a", "b", "c"} {
		s.Submit(c, newJob(rec, c, yields(2)...), core.Queue)
	}
	settle(t, s)
	assertEvents(t, rec,
		"a start", "a 1", "b start", "b 1", "c start", "c 1",
		"a 2", "b 2", "c 2",
		"a done", "a finished", "b done", "b finished", "c done", "c finished")
}

func TestYieldWithNothingElseRunnableRunsAtOnceWithoutSleeping(t *testing.T) {
	s, clk, rec := setup(core.Config{})
	s.Submit("a", &stopJob{job: newJob(rec, "a", yields(5)...), s: s}, core.Queue)
	s.Run()
	if clk.sleeps != 0 {
		t.Fatalf("Run slept %d times; a yield must not wait for a tick", clk.sleeps)
	}
	if got := s.Stats().Steps.Load(); got != 6 {
		t.Fatalf("%d steps, want 6", got)
	}
}

func TestQueueRunsRequestsInOrderAfterCurrentWork(t *testing.T) {
	s, _, rec := setup(core.Config{})
	for i, tag := range []string{"r1", "r2", "r3"} {
		out := s.Submit("a", newJob(rec, tag, core.Step{Kind: core.Yield}), core.Queue)
		want := core.Queued
		if i == 0 {
			want = core.Started
		}
		if out != want {
			t.Fatalf("submit %s: outcome %v, want %v", tag, out, want)
		}
	}
	settle(t, s)
	assertEvents(t, rec,
		"r1 start", "r1 1", "r1 done", "r1 finished",
		"r2 start", "r2 1", "r2 done", "r2 finished",
		"r3 start", "r3 1", "r3 done", "r3 finished")
}

func TestReplaceCancelsStackInnermostFirstAndDropsQueue(t *testing.T) {
	s, _, rec := setup(core.Config{})
	child := func() core.Coroutine { return coroutine(rec, "child", yields(10)...) }
	parent := &job{name: "p", rec: rec, build: func() core.Coroutine {
		return coroutine(rec, "p", core.Step{Kind: core.Call, Child: child()})
	}}
	s.Submit("a", parent, core.Queue)
	s.Submit("a", newJob(rec, "queued"), core.Queue)
	s.Turn() // p 1 calls child, child 1 runs in the same step
	rec.events = nil
	if out := s.Submit("a", newJob(rec, "new"), core.Replace); out != core.Replaced {
		t.Fatalf("outcome %v, want Replaced", out)
	}
	settle(t, s)
	assertEvents(t, rec,
		"child cancelled", "p cancelled",
		"p finished: replaced by a newer request",
		"queued finished: replaced by a newer request",
		"new start", "new done", "new finished")
}

func TestReplaceOnIdleClientJustStarts(t *testing.T) {
	s, _, rec := setup(core.Config{})
	if out := s.Submit("a", newJob(rec, "x"), core.Replace); out != core.Started {
		t.Fatalf("outcome %v, want Started", out)
	}
	settle(t, s)
	assertEvents(t, rec, "x start", "x done", "x finished")
}

func TestIgnoreDropsNewRequestWhileBusy(t *testing.T) {
	s, _, rec := setup(core.Config{})
	s.Submit("a", newJob(rec, "first", core.Step{Kind: core.Yield}), core.Ignore)
	if out := s.Submit("a", newJob(rec, "second"), core.Ignore); out != core.Ignored {
		t.Fatalf("outcome %v, want Ignored", out)
	}
	settle(t, s)
	assertEvents(t, rec, "first start", "first 1", "first done", "first finished")
	if out := s.Submit("a", newJob(rec, "third"), core.Ignore); out != core.Started {
		t.Fatalf("after the first finished: outcome %v, want Started", out)
	}
}

func TestQueueBoundRefusesPastLimit(t *testing.T) {
	s, _, rec := setup(core.Config{QueueLimit: 2})
	var outs []core.Outcome
	for i := 0; i < 4; i++ {
		outs = append(outs, s.Submit("a", newJob(rec, fmt.Sprint(i)), core.Queue))
	}
	want := []core.Outcome{core.Started, core.Queued, core.Queued, core.Refused}
	if !reflect.DeepEqual(outs, want) {
		t.Fatalf("outcomes %v, want %v", outs, want)
	}
	if got := s.Stats().Refused.Load(); got != 1 {
		t.Fatalf("Refused counter %d, want 1", got)
	}
	// Another client has its own queue.
	if out := s.Submit("b", newJob(rec, "b"), core.Queue); out != core.Started {
		t.Fatalf("other client: outcome %v, want Started", out)
	}
}

func TestNestedCoroutines(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name  string
		child core.Step // how the child ends
		want  string    // what the parent sees
	}{
		{"return value reaches parent", core.Step{Kind: core.Done, In: core.Input{Value: "K"}}, "p got K"},
		{"error is thrown into parent", core.Step{Kind: core.Done, In: core.Input{Err: boom}}, "p got error boom"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, _, rec := setup(core.Config{})
			child := &scriptCoroutine{name: "c", rec: rec, steps: []func(core.Input) core.Step{
				func(core.Input) core.Step { rec.add("c 1"); return core.Step{Kind: core.Yield} },
				func(core.Input) core.Step { return tc.child },
			}}
			s.Submit("a", &job{name: "p", rec: rec, build: func() core.Coroutine {
				return coroutine(rec, "p", core.Step{Kind: core.Call, Child: child})
			}}, core.Queue)
			settle(t, s)
			assertEvents(t, rec, "p start", "p 1", "c 1", tc.want, "p done", "p finished")
		})
	}
}

func TestCallBeyondMaxDepthThrowsIntoCaller(t *testing.T) {
	s, _, rec := setup(core.Config{MaxStackDepth: 3})
	var deep func(n int) core.Coroutine
	deep = func(n int) core.Coroutine {
		return &scriptCoroutine{name: fmt.Sprint("f", n), rec: rec, steps: []func(core.Input) core.Step{
			func(core.Input) core.Step { return core.Step{Kind: core.Call, Child: deep(n + 1)} },
		}}
	}
	s.Submit("a", &job{name: "j", rec: rec, build: func() core.Coroutine { return deep(1) }}, core.Queue)
	settle(t, s)
	assertEvents(t, rec,
		"j start", "f4 cancelled", "f3 got error too many nested generators", "f3 done",
		"f2 done", "f1 done", "j finished")
}

func TestSleepParksOnVirtualTimeAndCostsNoSteps(t *testing.T) {
	s, clk, rec := setup(core.Config{})
	start := clk.now
	s.Submit("a", newJob(rec, "z",
		core.Step{Kind: core.Park, Until: start.Add(100 * time.Millisecond), In: core.Input{Value: "woke"}}), core.Queue)
	settle(t, s)
	assertEvents(t, rec, "z start", "z 1")
	if got, want := s.NextDeadline(), start.Add(100*time.Millisecond); !got.Equal(want) {
		t.Fatalf("NextDeadline %v, want %v", got, want)
	}
	steps := s.Stats().Steps.Load()
	clk.advance(99 * time.Millisecond)
	s.Turn()
	if s.Stats().Steps.Load() != steps {
		t.Fatal("a sleeping task was stepped before its deadline")
	}
	clk.advance(time.Millisecond)
	s.Turn()
	settle(t, s)
	assertEvents(t, rec, "z start", "z 1", "z got woke", "z done", "z finished")
}

func TestTimersFireInDeadlineOrder(t *testing.T) {
	s, clk, rec := setup(core.Config{})
	for _, c := range []struct {
		name string
		d    time.Duration
	}{{"slow", 300 * time.Millisecond}, {"fast", 100 * time.Millisecond}, {"mid", 200 * time.Millisecond}} {
		s.Submit(c.name, newJob(rec, c.name, core.Step{Kind: core.Park, Until: clk.now.Add(c.d)}), core.Queue)
	}
	settle(t, s)
	rec.events = nil
	for i := 0; i < 3; i++ {
		clk.now = s.NextDeadline()
		s.Turn()
	}
	assertEvents(t, rec, "fast done", "fast finished", "mid done", "mid finished", "slow done", "slow finished")
}

func TestResolveWakesExactlyTheWaitingTask(t *testing.T) {
	s, clk, rec := setup(core.Config{})
	keys := map[string]core.WaitKey{}
	for _, c := range []string{"a", "b"} {
		keys[c] = s.NewWaitKey()
		s.Submit(c, newJob(rec, c, core.Step{Kind: core.Park, Wait: keys[c], Until: clk.now.Add(time.Second),
			In: core.Input{Err: errors.New("timeout")}}), core.Queue)
	}
	settle(t, s)
	rec.events = nil
	if !s.Resolve(keys["b"], core.Input{Value: "reply-b"}) {
		t.Fatal("Resolve(b) reported no waiter")
	}
	settle(t, s)
	assertEvents(t, rec, "b got reply-b", "b done", "b finished")
	if s.Resolve(keys["b"], core.Input{Value: "again"}) {
		t.Fatal("a second Resolve of the same key found a waiter")
	}
	rec.events = nil
	clk.advance(time.Second)
	s.Turn()
	assertEvents(t, rec, "a got error timeout", "a done", "a finished")
	if s.Resolve(keys["a"], core.Input{Value: "late"}) {
		t.Fatal("Resolve after the timeout found a waiter")
	}
}

func TestDropCancelsRunningWorkAndQueue(t *testing.T) {
	s, clk, rec := setup(core.Config{})
	key := s.NewWaitKey()
	s.Submit("a", newJob(rec, "run", core.Step{Kind: core.Park, Wait: key, Until: clk.now.Add(time.Second)}), core.Queue)
	s.Submit("a", newJob(rec, "queued"), core.Queue)
	settle(t, s)
	rec.events = nil
	s.Drop("a")
	assertEvents(t, rec, "run cancelled", "run finished: cancelled", "queued finished: cancelled")
	if s.Clients() != 0 || s.NextDeadline() != (time.Time{}) || s.Resolve(key, core.Input{}) {
		t.Fatal("dropped task left state behind (task, timer or wait)")
	}
}

func TestAbortDropsJobWithoutCancellingDeadCoroutineAndGoesOn(t *testing.T) {
	s, _, rec := setup(core.Config{})
	dead := errors.New("interrupted")
	child := func() core.Coroutine {
		return coroutine(rec, "spin", core.Step{Kind: core.Abort, In: core.Input{Err: dead}})
	}
	s.Submit("a", &job{name: "p", rec: rec, build: func() core.Coroutine {
		return coroutine(rec, "p", core.Step{Kind: core.Call, Child: child()})
	}}, core.Queue)
	s.Submit("a", newJob(rec, "next"), core.Queue)
	settle(t, s)
	assertEvents(t, rec,
		"p start", "p 1", "spin 1", "p cancelled", "p finished: interrupted",
		"next start", "next done", "next finished")
}

func TestPlainJobsFinishInTheirFirstStep(t *testing.T) {
	s, _, rec := setup(core.Config{})
	s.Submit("a", &job{name: "ok", rec: rec}, core.Queue)
	s.Submit("a", &job{name: "bad", rec: rec, err: errors.New("thrown")}, core.Queue)
	settle(t, s)
	assertEvents(t, rec, "ok start", "ok finished", "bad start", "bad finished: thrown")
}

type panicFrame struct{}

func (panicFrame) Resume(core.Input) core.Step { panic("bug") }
func (panicFrame) Cancel()                     {}

func TestPanickingCoroutineFailsOnlyItsJob(t *testing.T) {
	var where []string
	s, _, rec := setup(core.Config{OnPanic: func(w string, v any) { where = append(where, w) }})
	s.Submit("a", &job{name: "bad", rec: rec, build: func() core.Coroutine { return panicFrame{} }}, core.Queue)
	s.Submit("b", newJob(rec, "good"), core.Queue)
	settle(t, s)
	assertEvents(t, rec, "bad start", "bad finished: coroutine panicked: bug", "good start", "good done", "good finished")
	if !reflect.DeepEqual(where, []string{"Resume"}) {
		t.Fatalf("OnPanic saw %v, want [Resume]", where)
	}
}

func TestPanickingPostedFunctionIsReportedAndTheLoopGoesOn(t *testing.T) {
	var where []string
	s, _, rec := setup(core.Config{OnPanic: func(w string, v any) { where = append(where, w) }})
	s.Post(func() { panic("bad event") })
	s.Post(func() { s.Submit("a", newJob(rec, "after"), core.Queue) })
	settle(t, s)
	assertEvents(t, rec, "after start", "after done", "after finished")
	if !reflect.DeepEqual(where, []string{"Post"}) {
		t.Fatalf("OnPanic saw %v, want [Post]", where)
	}
}

func TestSpawnRunsBackgroundWorkUntilCancelled(t *testing.T) {
	s, _, rec := setup(core.Config{})
	id := s.Spawn(newJob(rec, "bg", yields(100)...))
	s.Turn()
	s.Turn()
	if !s.Cancel(id) {
		t.Fatal("Cancel reported the spawned task gone")
	}
	settle(t, s)
	assertEvents(t, rec, "bg start", "bg 1", "bg 2", "bg cancelled", "bg finished: cancelled")
	if s.Spawned() != 0 || s.Cancel(id) {
		t.Fatal("cancelled spawned task still present")
	}
}

func TestCancelAllEndsEveryTask(t *testing.T) {
	s, _, rec := setup(core.Config{})
	s.Submit("a", newJob(rec, "a", yields(5)...), core.Queue)
	s.Spawn(newJob(rec, "bg", yields(5)...))
	s.Turn()
	rec.events = nil
	s.CancelAll(nil)
	if s.Clients() != 0 || s.Spawned() != 0 || s.Busy() {
		t.Fatal("tasks left after CancelAll")
	}
	if got := s.Stats().Tasks.Load(); got != 0 {
		t.Fatalf("Tasks gauge %d after CancelAll, want 0", got)
	}
	if len(rec.events) != 4 {
		t.Fatalf("want 2 cancels and 2 finishes, got %v", rec.events)
	}
}

func TestRunSleepsUntilNextDeadlineWithoutPolling(t *testing.T) {
	s, clk, rec := setup(core.Config{})
	var steps []core.Step
	for i := 1; i <= 10; i++ {
		steps = append(steps, core.Step{Kind: core.Park, Until: clk.now.Add(time.Duration(i) * time.Second)})
	}
	j := newJob(rec, "tick", steps...)
	s.Submit("a", &stopJob{job: j, s: s}, core.Queue)
	s.Run()
	if clk.sleeps != 10 {
		t.Fatalf("Run slept %d times for 10 timed parks; want exactly 10 (no polling)", clk.sleeps)
	}
	if got := s.Stats().Steps.Load(); got != 11 {
		t.Fatalf("%d steps, want 11", got)
	}
}

// stopJob stops the scheduler when its job finishes.
type stopJob struct {
	*job
	s *core.Scheduler
}

func (j *stopJob) Finish(res core.Input) { j.job.Finish(res); j.s.Stop() }

func TestPostFromOtherGoroutinesWakesRealClockRun(t *testing.T) {
	s := core.New(core.Config{})
	var mu sync.Mutex
	got := 0
	done := make(chan struct{})
	go func() {
		s.Run()
		close(done)
	}()
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 100; i++ {
				s.Post(func() { mu.Lock(); got++; mu.Unlock() })
			}
		}()
	}
	wg.Wait()
	s.Post(s.Stop)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not stop after a posted Stop")
	}
	if got != 800 {
		t.Fatalf("ran %d posted functions, want 800", got)
	}
}

func TestRealClockWakesSleeperAtDeadline(t *testing.T) {
	s := core.New(core.Config{})
	rec := &recorder{}
	start := time.Now()
	s.Submit("a", &stopJob{job: newJob(rec, "z", core.Step{Kind: core.Park, Until: start.Add(20 * time.Millisecond)}), s: s}, core.Queue)
	s.Run()
	if el := time.Since(start); el < 20*time.Millisecond {
		t.Fatalf("woke after %v, before the 20ms deadline", el)
	}
	assertEvents(t, rec, "z start", "z 1", "z done", "z finished")
}

func TestParseStrategy(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want core.Strategy
		ok   bool
	}{{"", core.Queue, true}, {"queue", core.Queue, true}, {"replace", core.Replace, true}, {"ignore", core.Ignore, true}, {"drop", core.Queue, false}} {
		got, err := core.ParseStrategy(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseStrategy(%q) = %v, %v", tc.in, got, err)
		}
	}
}

func TestPostAfterStopIsRefusedAndNeverRuns(t *testing.T) {
	s := core.New(core.Config{Clock: newFakeClock()})
	ran := 0
	if !s.Post(func() { ran++ }) {
		t.Fatal("Post before Stop refused")
	}
	s.Post(s.Stop)
	late := s.Post(func() { ran += 10 }) // accepted before Stop ran: it runs
	s.Run()
	if s.Post(func() { ran += 100 }) {
		t.Fatal("Post after Stop accepted")
	}
	s.Turn() // even a stray turn runs nothing posted after Stop
	if !late || ran != 11 {
		t.Fatalf("ran = %d (late accepted: %v), want 11: what Post accepted runs, nothing after Stop", ran, late)
	}
}

func TestCarryOverAddsEveryCounterButNotTheTaskGauge(t *testing.T) {
	var from, to core.Stats
	from.Steps.Store(5)
	from.Started.Store(4)
	from.Refused.Store(3)
	from.Ignored.Store(2)
	from.Replaced.Store(1)
	from.Tasks.Store(9)
	to.Steps.Store(10)
	to.Tasks.Store(1)
	to.CarryOver(&from)
	if to.Steps.Load() != 15 || to.Started.Load() != 4 || to.Refused.Load() != 3 || to.Ignored.Load() != 2 ||
		to.Replaced.Load() != 1 || to.Tasks.Load() != 1 {
		t.Fatalf("after CarryOver: steps %d started %d refused %d ignored %d replaced %d tasks %d",
			to.Steps.Load(), to.Started.Load(), to.Refused.Load(), to.Ignored.Load(), to.Replaced.Load(), to.Tasks.Load())
	}
}

func TestInspectShowsTheRunningJobItsQueueAndWhetherItWaits(t *testing.T) {
	s, _, rec := setup(core.Config{})
	if _, ok := s.Inspect("nobody"); ok {
		t.Fatal("a client without work has a task")
	}
	park := core.Step{Kind: core.Park, Wait: s.NewWaitKey()}
	first, second, third := newJob(rec, "first", park), newJob(rec, "second"), newJob(rec, "third")
	for _, j := range []*job{first, second, third} {
		s.Submit("c", j, core.Queue)
	}
	v, ok := s.Inspect("c")
	if !ok || v.Running != first || len(v.Queued) != 2 || v.Waiting {
		t.Fatalf("before a turn: got %+v (ok %v)", v, ok)
	}
	settle(t, s)
	v, ok = s.Inspect("c")
	if !ok || v.Running != first || len(v.Queued) != 2 || v.Queued[0] != second || v.Queued[1] != third || !v.Waiting {
		t.Fatalf("parked: got %+v (ok %v)", v, ok)
	}
}
