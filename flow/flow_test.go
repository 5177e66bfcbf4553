package flow_test

import (
	"sync"
	"testing"
	"time"

	"github.com/moebius-js/moebius-js/flow"
)

// start runs fn on its own goroutine and returns a channel closed when fn
// returns.
func start(fn func()) <-chan struct{} {
	done := make(chan struct{})
	go func() { defer close(done); fn() }()
	return done
}

// isBlocked reports whether the goroutine behind done is still running
// after a short while (that it waits is the point: no event says so).
func isBlocked(done <-chan struct{}) bool {
	select {
	case <-done:
		return false
	case <-time.After(50 * time.Millisecond):
		return true
	}
}

func await(t *testing.T, done <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatalf("%s never returned", what)
	}
}

func TestTryReserve(t *testing.T) {
	type step struct {
		acct  int   // which account
		n     int64 // bytes
		first bool
		want  bool
	}
	cases := []struct {
		name   string
		limit  int64
		maxMsg int
		steps  []step
	}{
		{"within the limit", 100, 0, []step{{0, 60, true, true}, {0, 40, true, true}}},
		{"past the limit an account that holds something is refused", 100, 0, []step{{0, 60, true, true}, {0, 41, true, false}}},
		{"an account that holds nothing may use the reserve", 100, 0, []step{{0, 100, true, true}, {1, 25, true, true}, {1, 1, false, false}}},
		{"the reserve is a quarter of the limit", 100, 0, []step{{0, 100, true, true}, {1, 26, true, false}}},
		{"only small frames may use the reserve", 1 << 20, 0, []step{{0, 1 << 20, true, true}, {1, flow.SmallFrame + 1, true, false}, {1, flow.SmallFrame, true, true}}},
		{"one message bigger than everything passes alone", 100, 0, []step{{0, 1000, true, true}, {1, 1, true, false}}},
		{"the message bound refuses the next first frame", 1000, 2, []step{{0, 1, true, true}, {0, 1, true, true}, {0, 1, true, false}, {0, 1, false, true}}},
		{"message bounds are per account", 1000, 1, []step{{0, 1, true, true}, {1, 1, true, true}, {0, 1, true, false}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := flow.NewBudget(tc.limit, nil)
			accts := []*flow.Account{b.Open(tc.maxMsg), b.Open(tc.maxMsg)}
			for i, s := range tc.steps {
				if got := accts[s.acct].TryReserve(s.n, s.first); got != s.want {
					t.Fatalf("step %d: TryReserve(%d, %v) on account %d = %v, want %v (used %d)", i, s.n, s.first, s.acct, got, s.want, b.Used())
				}
			}
		})
	}
}

func TestReserveWaitsForTheMessageBoundAndReleaseWakesIt(t *testing.T) {
	b := flow.NewBudget(0, nil)
	a := b.Open(1)
	if err := a.Reserve(10, true); err != nil {
		t.Fatal(err)
	}
	h := flow.NewHold(a, 10)
	done := start(func() { _ = a.Reserve(10, true) })
	if !isBlocked(done) {
		t.Fatal("a second message was reserved past the bound of one")
	}
	h.Release()
	await(t, done, "Reserve after the release")
	if got := b.Stats().CountPauses.Load(); got != 1 {
		t.Fatalf("CountPauses = %d, want 1", got)
	}
	if n, m := a.Held(); n != 10 || m != 1 {
		t.Fatalf("held %d bytes in %d messages, want 10 in 1", n, m)
	}
}

func TestReserveWaitsForTheBudgetAndAnyReleaseWakesIt(t *testing.T) {
	b := flow.NewBudget(100, nil)
	heavy, other := b.Open(0), b.Open(0)
	if err := heavy.Reserve(60, true); err != nil {
		t.Fatal(err)
	}
	if err := other.Reserve(40, true); err != nil {
		t.Fatal(err)
	}
	done := start(func() { _ = heavy.Reserve(30, true) })
	if !isBlocked(done) {
		t.Fatal("an account holding bytes reserved past the limit")
	}
	other.Release(40, true) // another account's release makes room
	await(t, done, "Reserve after another account released")
	if got := b.Stats().BudgetPauses.Load(); got != 1 {
		t.Fatalf("BudgetPauses = %d, want 1", got)
	}
	if got := b.Used(); got != 90 {
		t.Fatalf("used %d, want 90", got)
	}
}

func TestCloseEndsAWaitingReserve(t *testing.T) {
	b := flow.NewBudget(10, nil)
	a := b.Open(0)
	_ = a.Reserve(10, true)
	var err error
	done := start(func() { err = a.Reserve(5, false) })
	if !isBlocked(done) {
		t.Fatal("Reserve did not wait")
	}
	a.Close()
	await(t, done, "Reserve after Close")
	if err != flow.ErrClosed {
		t.Fatalf("err = %v, want ErrClosed", err)
	}
	a.Release(10, true) // a hold taken before Close is still given back
	if b.Used() != 0 {
		t.Fatalf("used %d after every release", b.Used())
	}
}

func TestZeroHoldReleasesNothing(t *testing.T) {
	var h flow.Hold
	h.Release()
	if h.Bytes() != 0 {
		t.Fatal("the zero Hold holds bytes")
	}
}

// TestManyReadersAndReleasersNeverExceedTheBoundNorHang runs readers that
// reserve and a releaser that gives back, concurrently (run with -race):
// every reservation eventually succeeds and the budget never holds more
// than its limit plus reserve plus one message.
func TestManyReadersAndReleasersNeverExceedTheBoundNorHang(t *testing.T) {
	const limit, msg, readers, perReader = 1000, 100, 8, 500
	b := flow.NewBudget(limit, nil)
	holds := make(chan flow.Hold, readers*perReader)
	var wg sync.WaitGroup
	var peakMu sync.Mutex
	peak := int64(0)
	for r := 0; r < readers; r++ {
		a := b.Open(4)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < perReader; i++ {
				if err := a.Reserve(msg, true); err != nil {
					t.Error(err)
					return
				}
				peakMu.Lock()
				peak = max(peak, b.Used())
				peakMu.Unlock()
				holds <- flow.NewHold(a, msg)
			}
		}()
	}
	released := start(func() {
		for i := 0; i < readers*perReader; i++ {
			(<-holds).Release()
		}
	})
	wg.Wait()
	await(t, released, "the releaser")
	if b.Used() != 0 {
		t.Fatalf("used %d after every release", b.Used())
	}
	if peak > limit+limit/4+msg {
		t.Fatalf("peak %d over the bound %d", peak, limit+limit/4+msg)
	}
}
