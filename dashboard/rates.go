package dashboard

import (
	"math"
	"math/bits"
	"sync"
	"sync/atomic"
	"time"
)

// window is how many seconds of request rates and latencies a Recorder
// keeps: the dashboard's charts span it.
const window = 300

// Latency bins: four a doubling, from 1 µs (2^10 ns) to about 68 s
// (2^36 ns); what falls outside counts in the first or the last. A
// percentile read from them is within 19% of the truth.
const (
	binsPerDoubling = 4
	firstDoubling   = 10
	lastDoubling    = 36
	bins            = (lastDoubling - firstDoubling) * binsPerDoubling
)

// maxSeries bounds the commands a Recorder tells apart; requests of any
// command past it count as "(other)".
const maxSeries = 64

// Recorder counts requests and their durations per second and command,
// over the last [window] seconds. Observe may be called from any
// goroutine, and costs a lock of the command's own and a few additions.
type Recorder struct {
	now    func() time.Time
	series sync.Map   // command → *series: read without a lock
	mu     sync.Mutex // guards adding a series, and n
	n      int        // series added
}

// series is one command's record.
type series struct {
	total atomic.Uint64 // requests since the start
	mu    sync.Mutex    // guards secs
	secs  [window]second
}

// second is one second's requests: how many, and their durations by bin.
type second struct {
	at    int64 // the unix second it counts; another value means empty
	count uint32
	bins  [bins]uint32
}

// NewRecorder returns an empty Recorder on the wall clock (now nil) or on
// now.
func NewRecorder(now func() time.Time) *Recorder {
	if now == nil {
		now = time.Now
	}
	return &Recorder{now: now}
}

// Observe records one request of command that took took. Any goroutine.
func (r *Recorder) Observe(command string, took time.Duration) {
	s := r.get(command)
	s.total.Add(1)
	at := r.now().Unix()
	b := bin(took)
	s.mu.Lock()
	slot := &s.secs[at%window]
	if slot.at != at {
		*slot = second{at: at}
	}
	slot.count++
	slot.bins[b]++
	s.mu.Unlock()
}

func (r *Recorder) get(command string) *series {
	if s, ok := r.series.Load(command); ok {
		return s.(*series)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if s, ok := r.series.Load(command); ok {
		return s.(*series)
	}
	if r.n >= maxSeries-1 {
		command = "(other)"
		if s, ok := r.series.Load(command); ok {
			return s.(*series)
		}
	}
	s := new(series)
	r.series.Store(command, s)
	r.n++
	return s
}

// bin is the latency bin of d.
func bin(d time.Duration) int {
	ns := uint64(max(d, 0))
	l := bits.Len64(ns) - 1 // ns is in [2^l, 2^(l+1))
	if l < firstDoubling {
		return 0
	}
	if l >= lastDoubling {
		return bins - 1
	}
	sub := int(ns>>(l-2)) & (binsPerDoubling - 1) // the two bits after the leading one
	return (l-firstDoubling)*binsPerDoubling + sub
}

// binMillis is the middle of bin i, in milliseconds.
func binMillis(i int) float64 {
	l := firstDoubling + i/binsPerDoubling
	lo := float64(uint64(1)<<l) * (1 + float64(i%binsPerDoubling)/binsPerDoubling)
	width := float64(uint64(1)<<l) / binsPerDoubling
	return (lo + width/2) / 1e6
}

// quantile is the q-quantile (0 < q < 1) of the durations counted in h,
// in milliseconds, or nil when h counts none.
func quantile(h *[bins]uint32, q float64) *float64 {
	var n uint64
	for _, c := range h {
		n += uint64(c)
	}
	if n == 0 {
		return nil
	}
	rank := max(uint64(math.Ceil(q*float64(n))), 1) // nearest rank: a p99 of 10 requests is the slowest
	var seen uint64
	for i, c := range h {
		seen += uint64(c)
		if seen >= rank {
			ms := binMillis(i)
			return &ms
		}
	}
	return nil
}

// Rates is the recent past of requests, as the dashboard draws it.
type Rates struct {
	End   int64      `json:"end"`   // the unix second of the last point
	Count []uint32   `json:"count"` // requests that ended in each second, oldest first
	P50   []*float64 `json:"p50"`   // milliseconds; nil for a second with none
	P99   []*float64 `json:"p99"`
	// The quantiles of all the requests of the last 60 seconds together
	// (milliseconds; nil with none).
	MinuteP50 *float64 `json:"minuteP50"`
	MinuteP99 *float64 `json:"minuteP99"`
}

// CommandRates is one command's recent requests.
type CommandRates struct {
	Total uint64   // since the start
	Rate  float64  // per second, over the last 10 seconds
	P50   *float64 // milliseconds, over the last 60 seconds
	P99   *float64
}

// Snapshot returns the last [window] complete seconds of all commands
// together, and each command's own rates. Any goroutine.
func (r *Recorder) Snapshot() (Rates, map[string]CommandRates) {
	end := r.now().Unix() - 1
	total := make([]second, window) // by age: index window-1 is end
	cmds := map[string]CommandRates{}
	r.series.Range(func(k, v any) bool {
		s := v.(*series)
		var minute [bins]uint32
		var recent uint64
		s.mu.Lock()
		for i := range s.secs {
			slot := &s.secs[i]
			age := end - slot.at
			if age < 0 || age >= window || slot.count == 0 {
				continue
			}
			t := &total[window-1-age]
			t.count += slot.count
			for b, c := range slot.bins {
				t.bins[b] += c
				if age < 60 {
					minute[b] += c
				}
			}
			if age < 10 {
				recent += uint64(slot.count)
			}
		}
		s.mu.Unlock()
		cmds[k.(string)] = CommandRates{Total: s.total.Load(), Rate: float64(recent) / 10,
			P50: quantile(&minute, .5), P99: quantile(&minute, .99)}
		return true
	})
	rates := Rates{End: end, Count: make([]uint32, window), P50: make([]*float64, window), P99: make([]*float64, window)}
	var minute [bins]uint32
	for i := range total {
		rates.Count[i] = total[i].count
		rates.P50[i] = quantile(&total[i].bins, .5)
		rates.P99[i] = quantile(&total[i].bins, .99)
		if i >= window-60 {
			for b, c := range total[i].bins {
				minute[b] += c
			}
		}
	}
	rates.MinuteP50, rates.MinuteP99 = quantile(&minute, .5), quantile(&minute, .99)
	return rates, cmds
}
