package core

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Config sets a Scheduler's limits. Zero values take the defaults.
type Config struct {
	// Clock is the source of time and sleep (default: NewSystemClock()).
	Clock Clock
	// QueueLimit is how many requests a client may have waiting behind its
	// running one; Submit refuses more (default 100).
	QueueLimit int
	// MaxStackDepth bounds a task's stack of nested coroutines (default 1000);
	// a Call past it throws ErrStackOverflow into the calling coroutine.
	MaxStackDepth int
	// OnPanic, if set, hears of a panic that a Coroutine or Job method or a
	// posted function raised. The scheduler recovers it: a panic in Start or
	// Resume fails that job; one in Cancel, Finish or a posted function is
	// dropped. Scheduler goroutine.
	OnPanic func(where string, v any)
}

// Defaults for Config's zero values.
const (
	DefaultQueueLimit    = 100
	DefaultMaxStackDepth = 1000
)

// SpawnID names a background task started by Spawn.
type SpawnID uint64

// Stats are counters for monitoring. Any goroutine may read them.
type Stats struct {
	Steps    atomic.Uint64 // coroutine resumes
	Started  atomic.Uint64 // jobs started
	Refused  atomic.Uint64 // requests refused for a full queue
	Ignored  atomic.Uint64 // requests dropped by the Ignore strategy
	Replaced atomic.Uint64 // jobs cancelled by the Replace strategy
	Tasks    atomic.Int64  // tasks with work (client and spawned)
}

// CarryOver adds the counters of from (a scheduler this one replaces) to
// these, so that they stay monotonic; Tasks, a gauge, is not carried. Any
// goroutine.
func (s *Stats) CarryOver(from *Stats) {
	s.Steps.Add(from.Steps.Load())
	s.Started.Add(from.Started.Load())
	s.Refused.Add(from.Refused.Load())
	s.Ignored.Add(from.Ignored.Load())
	s.Replaced.Add(from.Replaced.Load())
}

// Scheduler steps tasks cooperatively. Create it with New; drive it with Run
// on one goroutine (or with Turn, in tests).
type Scheduler struct {
	clock      Clock
	queueLimit int
	maxDepth   int
	onPanic    func(string, any)

	mu       sync.Mutex // guards inbox and sleeping
	inbox    []func()
	sleeping bool

	// Everything below belongs to the scheduler goroutine.
	spare     []func()
	tasks     map[string]*task
	spawned   map[SpawnID]*task
	waits     map[WaitKey]*task
	timers    timerHeap
	next      []*task // runnable tasks, in round-robin order
	cur       []*task // the round being stepped
	lastKey   WaitKey
	lastSpawn SpawnID
	stopped   bool // Stop ran: Run returns after this turn
	closed    bool // the same, under mu, for Post

	stats Stats
}

// New returns a scheduler with no tasks. Any goroutine.
func New(cfg Config) *Scheduler {
	s := &Scheduler{
		clock:      cfg.Clock,
		queueLimit: cfg.QueueLimit,
		maxDepth:   cfg.MaxStackDepth,
		onPanic:    cfg.OnPanic,
		tasks:      make(map[string]*task),
		spawned:    make(map[SpawnID]*task),
		waits:      make(map[WaitKey]*task),
	}
	if s.clock == nil {
		s.clock = NewSystemClock()
	}
	if s.queueLimit <= 0 {
		s.queueLimit = DefaultQueueLimit
	}
	if s.maxDepth <= 0 {
		s.maxDepth = DefaultMaxStackDepth
	}
	return s
}

// Stats returns the scheduler's counters. Any goroutine.
func (s *Scheduler) Stats() *Stats { return &s.stats }

// Now returns the scheduler's clock time. Scheduler goroutine.
func (s *Scheduler) Now() time.Time { return s.clock.Now() }

// Post hands fn to the scheduler goroutine, which runs it at the start of
// its next turn, in posting order, waking the scheduler if it sleeps. Once
// Stop has run, fn is dropped and Post reports false: it will never run.
// Any goroutine.
func (s *Scheduler) Post(fn func()) bool {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return false
	}
	s.inbox = append(s.inbox, fn)
	wake := s.sleeping
	s.sleeping = false
	s.mu.Unlock()
	if wake {
		s.clock.Wake()
	}
	return true
}

// Run drives the scheduler until Stop: turn after turn, sleeping on the
// clock when nothing is runnable. The goroutine that calls Run is the
// scheduler goroutine.
func (s *Scheduler) Run() {
	for !s.stopped {
		s.Turn()
		if s.stopped || s.hasRunnable() {
			continue
		}
		s.mu.Lock()
		if len(s.inbox) > 0 {
			s.mu.Unlock()
			continue
		}
		s.sleeping = true
		s.mu.Unlock()
		s.clock.Sleep(s.NextDeadline())
		s.mu.Lock()
		s.sleeping = false
		s.mu.Unlock()
	}
}

// Stop makes Run return after the current turn. It cancels nothing: call
// CancelAll first to end the work in flight. Scheduler goroutine (from any
// other, Post it).
// What was posted and has not run yet is dropped with it.
func (s *Scheduler) Stop() {
	s.stopped = true
	s.mu.Lock()
	s.closed = true
	clear(s.inbox)
	s.inbox = nil
	s.mu.Unlock()
}

// Turn runs one round: the posted functions, then the due timers, then one
// step of every task that was runnable when the round began. Scheduler
// goroutine.
func (s *Scheduler) Turn() {
	s.mu.Lock()
	posted := s.inbox
	s.inbox = s.spare[:0]
	s.mu.Unlock()
	for i, fn := range posted {
		posted[i] = nil
		s.run(fn)
	}
	s.spare = posted[:0]

	if len(s.timers) > 0 {
		now := s.clock.Now()
		for len(s.timers) > 0 && !s.timers[0].until.After(now) {
			t := s.timers.pop()
			s.unwait(t)
			s.runnable(t)
		}
	}

	s.cur, s.next = s.next, s.cur[:0]
	for i, t := range s.cur {
		s.cur[i] = nil
		t.listed = false
		if t.state == stateRunnable {
			s.step(t)
		}
	}
}

// Busy reports whether a task is runnable or a posted function waits: the
// next Turn has work without waiting for time to pass. Scheduler goroutine.
func (s *Scheduler) Busy() bool {
	if s.hasRunnable() {
		return true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.inbox) > 0
}

// NextDeadline returns the earliest time a parked task is due, or the zero
// time when none has a deadline. Scheduler goroutine.
func (s *Scheduler) NextDeadline() time.Time {
	if len(s.timers) == 0 {
		return time.Time{}
	}
	return s.timers[0].until
}

// NewWaitKey returns a key that no other wait of this scheduler uses, for a
// coroutine to Park on and a later Resolve to end. Scheduler goroutine.
func (s *Scheduler) NewWaitKey() WaitKey {
	s.lastKey++
	return s.lastKey
}

// Submit hands a client's new request to its task, following strategy when
// the task is busy, and says what it did. Scheduler goroutine, outside any
// step of that client's task.
func (s *Scheduler) Submit(client string, job Job, strategy Strategy) Outcome {
	t := s.tasks[client]
	if t == nil {
		t = &task{client: client, heapIdx: -1}
		s.tasks[client] = t
		s.stats.Tasks.Add(1)
		s.begin(t, job)
		return Started
	}
	switch strategy {
	case Ignore:
		s.stats.Ignored.Add(1)
		return Ignored
	case Replace:
		s.stats.Replaced.Add(1)
		s.clear(t, ErrReplaced)
		s.begin(t, job)
		return Replaced
	}
	if t.queued() >= s.queueLimit {
		s.stats.Refused.Add(1)
		return Refused
	}
	t.queue = append(t.queue, job)
	return Queued
}

// Drop cancels a client's task, running work and queue alike, as when the
// client disconnects. Each job ends with ErrCancelled. Scheduler goroutine,
// outside any step of that client's task.
func (s *Scheduler) Drop(client string) {
	if t := s.tasks[client]; t != nil {
		s.clear(t, ErrCancelled)
		s.retire(t)
	}
}

// Spawn starts job on a task of its own, not tied to any client (background
// work). Scheduler goroutine; may be called from inside a step.
func (s *Scheduler) Spawn(job Job) SpawnID {
	s.lastSpawn++
	id := s.lastSpawn
	t := &task{spawn: id, heapIdx: -1}
	s.spawned[id] = t
	s.stats.Tasks.Add(1)
	s.begin(t, job)
	return id
}

// Cancel ends a spawned task; its job ends with ErrCancelled. It reports
// whether the task was still running. Scheduler goroutine, outside that
// task's own step.
func (s *Scheduler) Cancel(id SpawnID) bool {
	t := s.spawned[id]
	if t == nil {
		return false
	}
	s.clear(t, ErrCancelled)
	s.retire(t)
	return true
}

// CancelAll cancels every task, client and spawned, with err (ErrCancelled
// when nil), as at shutdown. Scheduler goroutine, outside any step.
func (s *Scheduler) CancelAll(err error) {
	if err == nil {
		err = ErrCancelled
	}
	for _, t := range s.tasks {
		s.clear(t, err)
		s.retire(t)
	}
	for _, t := range s.spawned {
		s.clear(t, err)
		s.retire(t)
	}
}

// Resolve ends the wait named key: the task parked on it resumes with in at
// its next step. It reports false when no task waits on key any more (it
// timed out or was cancelled). Scheduler goroutine.
func (s *Scheduler) Resolve(key WaitKey, in Input) bool {
	t := s.waits[key]
	if t == nil {
		return false
	}
	s.unwait(t)
	s.timers.remove(t)
	t.in = in
	s.runnable(t)
	return true
}

// Clients returns how many clients have a task with work. Scheduler
// goroutine.
func (s *Scheduler) Clients() int { return len(s.tasks) }

// Spawned returns how many spawned tasks are running. Scheduler goroutine.
func (s *Scheduler) Spawned() int { return len(s.spawned) }

// TaskView is what Inspect shows of one client's task: its running job
// (nil between jobs), the jobs queued behind it, oldest first, and whether
// it waits (parked on a key or a timer) rather than being due a step.
// Queued is the scheduler's own slice: read it, do not keep it.
type TaskView struct {
	Running Job
	Queued  []Job
	Waiting bool
}

// Inspect shows client's task; ok is false when the client has no work.
// Scheduler goroutine.
func (s *Scheduler) Inspect(client string) (v TaskView, ok bool) {
	t := s.tasks[client]
	if t == nil {
		return TaskView{}, false
	}
	return TaskView{Running: t.job, Queued: t.queue[t.qhead:], Waiting: t.state == stateParked}, true
}

// begin makes job t's running job; it starts at t's next step.
func (s *Scheduler) begin(t *task, job Job) {
	t.job = job
	t.started = false
	t.in = Input{}
	s.runnable(t)
}

// step advances t once: it starts the job if needed, then resumes the top
// coroutine; a Call steps the new child at once, so a step ends at a yield, a
// park, or a coroutine's end.
func (s *Scheduler) step(t *task) {
	t.state = stateStepping
	if !t.started {
		t.started = true
		s.stats.Started.Add(1)
		coroutine, err := s.start(t.job)
		if coroutine == nil {
			s.finish(t, Input{Err: err})
			return
		}
		t.stack = append(t.stack, coroutine)
	}
	for {
		top := t.stack[len(t.stack)-1]
		st := s.resume(top, t.in)
		t.in = st.In
		switch st.Kind {
		case Yield:
			s.runnable(t)
			return
		case Park:
			s.park(t, st.Wait, st.Until)
			return
		case Call:
			if st.Child == nil || len(t.stack) >= s.maxDepth {
				if st.Child != nil {
					s.cancelCoroutine(st.Child)
				}
				t.in = Input{Err: ErrStackOverflow}
				s.runnable(t)
				return
			}
			t.stack = append(t.stack, st.Child)
			t.in = Input{}
		case Done:
			t.stack[len(t.stack)-1] = nil
			t.stack = t.stack[:len(t.stack)-1]
			if len(t.stack) == 0 {
				s.finish(t, st.In)
				return
			}
			s.runnable(t)
			return
		case Abort:
			t.stack[len(t.stack)-1] = nil
			t.stack = t.stack[:len(t.stack)-1]
			s.unwind(t)
			s.finish(t, st.In)
			return
		default:
			panic(fmt.Sprintf("core: coroutine returned unknown step kind %d", st.Kind))
		}
	}
}

// finish ends t's running job with result and starts the next queued one,
// or retires t when nothing is queued.
func (s *Scheduler) finish(t *task, result Input) {
	job := t.job
	t.job = nil
	t.in = Input{}
	if next := t.dequeue(); next != nil {
		s.begin(t, next)
	} else {
		t.state = stateIdle
		s.retire(t)
	}
	s.finishJob(job, result)
}

// clear cancels t's running job and queue, each ending with err; t is left
// idle and off every list.
func (s *Scheduler) clear(t *task, err error) {
	s.unwait(t)
	s.timers.remove(t)
	t.state = stateIdle
	s.unwind(t)
	if job := t.job; job != nil {
		t.job = nil
		s.finishJob(job, Input{Err: err})
	}
	for job := t.dequeue(); job != nil; job = t.dequeue() {
		s.finishJob(job, Input{Err: err})
	}
}

// unwind cancels t's coroutines, innermost first, and empties its stack.
func (s *Scheduler) unwind(t *task) {
	for i := len(t.stack) - 1; i >= 0; i-- {
		f := t.stack[i]
		t.stack[i] = nil
		s.cancelCoroutine(f)
	}
	t.stack = t.stack[:0]
}

// retire forgets an idle task.
func (s *Scheduler) retire(t *task) {
	if t.state == stateGone {
		return
	}
	t.state = stateGone
	if t.spawn != 0 {
		delete(s.spawned, t.spawn)
	} else if s.tasks[t.client] == t {
		delete(s.tasks, t.client)
	}
	s.stats.Tasks.Add(-1)
}

// hasRunnable reports whether the next round has a task to step (the list
// may also hold tasks cancelled since they were listed).
func (s *Scheduler) hasRunnable() bool {
	for _, t := range s.next {
		if t.state == stateRunnable {
			return true
		}
	}
	return false
}

func (s *Scheduler) runnable(t *task) {
	t.state = stateRunnable
	if !t.listed {
		t.listed = true
		s.next = append(s.next, t)
	}
}

func (s *Scheduler) park(t *task, key WaitKey, until time.Time) {
	t.state = stateParked
	if key != 0 {
		t.wait = key
		s.waits[key] = t
	}
	if !until.IsZero() {
		t.until = until
		s.timers.push(t)
	}
}

func (s *Scheduler) unwait(t *task) {
	if t.wait != 0 {
		delete(s.waits, t.wait)
		t.wait = 0
	}
}

// The host calls below recover panics so that one broken coroutine or job
// cannot stop the scheduler goroutine.

func (s *Scheduler) start(job Job) (f Coroutine, err error) {
	defer func() {
		if v := recover(); v != nil {
			s.panicked("Start", v)
			f, err = nil, fmt.Errorf("job panicked: %v", v)
		}
	}()
	return job.Start()
}

func (s *Scheduler) resume(f Coroutine, in Input) (st Step) {
	defer func() {
		if v := recover(); v != nil {
			s.panicked("Resume", v)
			st = Step{Kind: Abort, In: Input{Err: fmt.Errorf("coroutine panicked: %v", v)}}
		}
	}()
	s.stats.Steps.Add(1)
	return f.Resume(in)
}

// run calls a posted function; a panic in it is reported, not fatal.
func (s *Scheduler) run(fn func()) {
	defer func() {
		if v := recover(); v != nil {
			s.panicked("Post", v)
		}
	}()
	fn()
}

func (s *Scheduler) cancelCoroutine(f Coroutine) {
	defer func() {
		if v := recover(); v != nil {
			s.panicked("Cancel", v)
		}
	}()
	f.Cancel()
}

func (s *Scheduler) finishJob(job Job, result Input) {
	defer func() {
		if v := recover(); v != nil {
			s.panicked("Finish", v)
		}
	}()
	job.Finish(result)
}

func (s *Scheduler) panicked(where string, v any) {
	if s.onPanic != nil {
		s.onPanic(where, v)
	}
}
