package dashboard

import (
	"sync"
	"testing"
	"time"
)

// fakeNow is a clock a test sets.
type fakeNow struct {
	mu sync.Mutex
	t  time.Time
}

func (f *fakeNow) now() time.Time  { f.mu.Lock(); defer f.mu.Unlock(); return f.t }
func (f *fakeNow) set(t time.Time) { f.mu.Lock(); f.t = t; f.mu.Unlock() }

func TestBinsCoverDurationsInOrderWithin19Percent(t *testing.T) {
	prev := -1
	for d := time.Microsecond; d < 60*time.Second; d = d * 21 / 20 {
		b := bin(d)
		if b < prev {
			t.Fatalf("bin(%v) = %d, below bin %d of a shorter duration", d, b, prev)
		}
		prev = b
		mid := binMillis(b)
		if got := float64(d) / 1e6; mid < got*0.85 || mid > got*1.19 {
			t.Fatalf("bin(%v) = %d, whose middle %.6f ms is not within the bound of %.6f ms", d, b, mid, got)
		}
	}
	if bin(0) != 0 || bin(time.Hour) != bins-1 {
		t.Fatalf("bin(0) = %d, bin(1h) = %d", bin(0), bin(time.Hour))
	}
}

func TestSnapshotCountsEachSecondAndCommand(t *testing.T) {
	clock := &fakeNow{t: time.Unix(1_000_000, 0)}
	r := NewRecorder(clock.now)
	for i := 0; i < 97; i++ {
		r.Observe("echo", time.Millisecond)
	}
	for i := 0; i < 3; i++ {
		r.Observe("echo", 100*time.Millisecond) // the slow 3%
	}
	r.Observe("boom", 10*time.Microsecond)
	clock.set(time.Unix(1_000_001, 500_000_000)) // the second they ended in is complete
	rates, cmds := r.Snapshot()
	if rates.End != 1_000_000 || len(rates.Count) != window || rates.Count[window-1] != 101 || rates.Count[window-2] != 0 {
		t.Fatalf("end %d, last counts %v", rates.End, rates.Count[window-3:])
	}
	if p := rates.P50[window-1]; p == nil || *p < 0.85 || *p > 1.19 {
		t.Fatalf("p50 %v, want about 1 ms", deref(p))
	}
	if p := rates.P99[window-1]; p == nil || *p < 85 || *p > 119 {
		t.Fatalf("p99 %v, want about 100 ms", deref(p))
	}
	if rates.MinuteP99 == nil || *rates.MinuteP99 < 85 || rates.MinuteP50 == nil || *rates.MinuteP50 > 1.19 {
		t.Fatalf("the minute's p50 %v and p99 %v", deref(rates.MinuteP50), deref(rates.MinuteP99))
	}
	if rates.P50[window-2] != nil {
		t.Fatal("a second with no requests has a p50")
	}
	echo := cmds["echo"]
	if echo.Total != 100 || echo.Rate != 10 || echo.P50 == nil || *echo.P50 > 1.19 || echo.P99 == nil || *echo.P99 < 85 {
		t.Fatalf("echo %+v (p50 %v, p99 %v)", echo, deref(echo.P50), deref(echo.P99))
	}
	if cmds["boom"].Total != 1 {
		t.Fatalf("boom %+v", cmds["boom"])
	}
	clock.set(time.Unix(1_000_000+window+1, 0)) // all of it out of the window
	rates, cmds = r.Snapshot()
	if rates.Count[window-1] != 0 || cmds["echo"].Total != 100 || cmds["echo"].P50 != nil || cmds["echo"].Rate != 0 {
		t.Fatalf("old seconds still counted: %v %+v", rates.Count[window-1], cmds["echo"])
	}
}

// A p99 is the nearest rank: of ten requests, the slowest, so a slow one
// at low traffic shows.
func TestQuantileIsTheNearestRank(t *testing.T) {
	var h [bins]uint32
	h[bin(time.Millisecond)] = 9
	h[bin(time.Second)] = 1
	if p := quantile(&h, .99); p == nil || *p < 850 {
		t.Fatalf("p99 of nine 1 ms requests and one 1 s one: %v", deref(p))
	}
	if p := quantile(&h, .5); p == nil || *p > 1.19 {
		t.Fatalf("p50: %v", deref(p))
	}
}

func TestCommandsPastTheBoundCountAsOther(t *testing.T) {
	r := NewRecorder(nil)
	for i := 0; i < maxSeries+10; i++ {
		r.Observe(string(rune('A'+i)), time.Millisecond)
	}
	_, cmds := r.Snapshot()
	if len(cmds) != maxSeries || cmds["(other)"].Total != 11 {
		t.Fatalf("%d series, (other) %+v", len(cmds), cmds["(other)"])
	}
}

func TestObserveAllocatesNothing(t *testing.T) {
	r := NewRecorder(nil)
	r.Observe("echo", time.Millisecond)
	if n := testing.AllocsPerRun(1000, func() { r.Observe("echo", time.Millisecond) }); n != 0 {
		t.Fatalf("Observe allocates %.1f times", n)
	}
}

func deref(p *float64) any {
	if p == nil {
		return nil
	}
	return *p
}

// What each request pays for the dashboard's rates: go test -bench Observe ./dashboard
func BenchmarkObserve(b *testing.B) {
	r := NewRecorder(nil)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			r.Observe("echo", 20*time.Microsecond)
		}
	})
}
