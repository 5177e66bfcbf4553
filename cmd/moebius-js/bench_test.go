package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"math"
	"math/rand/v2"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moebius-js/moebius-js/flow"
	"github.com/moebius-js/moebius-js/transport"
)

func TestHistogramPercentiles(t *testing.T) {
	seq := func(from, to int64) []int64 {
		var v []int64
		for i := from; i <= to; i++ {
			v = append(v, i)
		}
		return v
	}
	skewed := append(slices.Repeat([]int64{100}, 99), 1_000_000)
	for _, tc := range []struct {
		name                     string
		values                   []int64
		p50, p90, p99, p100, max int64
		min, mean                int64
	}{
		{"empty", nil, 0, 0, 0, 0, 0, 0, 0},
		{"one value", []int64{42}, 42, 42, 42, 42, 42, 42, 42},
		// Below 256 ns every value has its own bucket: exact ranks.
		{"1..10", seq(1, 10), 5, 9, 10, 10, 10, 1, 5},
		{"1..100", seq(1, 100), 50, 90, 99, 100, 100, 1, 50},
		// Above 256 ns, the middle of the bucket: 900 is in [900, 903], 990
		// in [988, 991].
		{"1000..1", reversed(seq(1, 1000)), 500, 901, 989, 1000, 1000, 1, 500},
		// The same large value: every percentile is clamped to it.
		{"constant", slices.Repeat([]int64{1_000_000}, 5), 1_000_000, 1_000_000, 1_000_000, 1_000_000, 1_000_000, 1_000_000, 1_000_000},
		// 5000 is in [4992, 5023] (middle 5007); 9000 in [8960, 9023]
		// (middle 8991, below the max).
		{"buckets", []int64{300, 5000, 9000}, 5007, 8991, 8991, 8991, 9000, 300, 4766},
		{"one outlier", skewed, 100, 100, 100, 1_000_000, 1_000_000, 100, 10099},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var h histogram
			for _, v := range tc.values {
				h.record(v)
			}
			got := []int64{h.percentile(50), h.percentile(90), h.percentile(99), h.percentile(100)}
			want := []int64{tc.p50, tc.p90, tc.p99, tc.p100}
			if !slices.Equal(got, want) {
				t.Errorf("p50, p90, p99, p100 = %v, want %v", got, want)
			}
			s := h.summary()
			if s.Count != int64(len(tc.values)) || s.Min != time.Duration(tc.min) || s.Max != time.Duration(tc.max) || s.Mean != time.Duration(tc.mean) {
				t.Errorf("summary %+v, want count %d min %d mean %d max %d", s, len(tc.values), tc.min, tc.mean, tc.max)
			}
			if s.P50 != time.Duration(tc.p50) || s.P90 != time.Duration(tc.p90) || s.P99 != time.Duration(tc.p99) {
				t.Errorf("summary %+v disagrees with percentile()", s)
			}
		})
	}
}

func reversed(v []int64) []int64 {
	slices.Reverse(v)
	return v
}

func TestHistogramBuckets(t *testing.T) {
	for _, v := range []int64{0, 1, 255, 256, 257, 511, 512, 1000, 1 << 20, 1<<20 + 1, 123_456_789, math.MaxInt64} {
		i := bucketOf(v)
		if i < 0 || i >= histBuckets {
			t.Fatalf("bucketOf(%d) = %d, out of [0, %d)", v, i, histBuckets)
		}
		lo, width := bucketRange(i)
		if v < lo || v-lo >= width {
			t.Errorf("bucketOf(%d) = %d = [%d, %d+%d): does not hold it", v, i, lo, lo, width)
		}
		if v >= histExact && width*histSub > lo {
			t.Errorf("bucket of %d is %d wide at %d: coarser than 1/%d", v, width, lo, histSub)
		}
	}
	// Consecutive buckets tile the values without gaps.
	for i := 1; i < histBuckets; i++ {
		lo, width := bucketRange(i - 1)
		if next, _ := bucketRange(i); next != lo+width {
			t.Fatalf("bucket %d ends at %d, bucket %d starts at %d", i-1, lo+width, i, next)
		}
	}
}

// The histogram's percentiles are within 1/256 of the exact nearest-rank
// ones, over six decades of latency.
func TestHistogramAccuracy(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var h, a, b histogram
	values := make([]int64, 200_000)
	for i := range values {
		values[i] = int64(math.Exp(rng.Float64()*math.Log(1e6)) * 1e3) // 1µs .. 1s
		h.record(values[i])
		if i%2 == 0 {
			a.record(values[i])
		} else {
			b.record(values[i])
		}
	}
	a.merge(&b)
	slices.Sort(values)
	for _, p := range []float64{1, 10, 50, 90, 99, 99.9, 100} {
		rank := int(math.Ceil(p * float64(len(values)) / 100))
		exact := values[rank-1]
		got := h.percentile(p)
		if rel := math.Abs(float64(got-exact)) / float64(exact); rel > 1.0/256 {
			t.Errorf("p%v = %d, exact %d: off by %.3f%%", p, got, exact, rel*100)
		}
		if merged := a.percentile(p); merged != got {
			t.Errorf("p%v of two merged halves = %d, of the whole = %d", p, merged, got)
		}
	}
	if a.summary() != h.summary() {
		t.Errorf("merged summary %+v, whole %+v", a.summary(), h.summary())
	}
}

func TestFormatProgress(t *testing.T) {
	for _, tc := range []struct {
		p    benchProgress
		want string
	}{
		{benchProgress{Warmup: true, Elapsed: 500 * time.Millisecond, Phase: time.Second, Replies: 1234, Rate: 2468.4},
			"warm-up   0.5s/1.0s  replies 1234  2468/s"},
		{benchProgress{Elapsed: 2500 * time.Millisecond, Phase: 5 * time.Second, Replies: 61234, Rate: 24512.6},
			"bench     2.5s/5.0s  replies 61234  24513/s"},
		{benchProgress{Elapsed: 12 * time.Second, Phase: 60 * time.Second, Replies: 7, Rate: 0.4, Errors: 3, Timeouts: 1},
			"bench    12.0s/60.0s  replies 7  0/s  errors 3  timeouts 1"},
	} {
		if got := formatProgress(tc.p); got != tc.want {
			t.Errorf("formatProgress(%+v)\n got %q\nwant %q", tc.p, got, tc.want)
		}
	}
}

func TestProgressPrinter(t *testing.T) {
	long := benchProgress{Elapsed: time.Second, Phase: 5 * time.Second, Replies: 123456, Rate: 99999}
	short := benchProgress{Elapsed: 2 * time.Second, Phase: 5 * time.Second, Replies: 1, Rate: 1}
	l, s := formatProgress(long), formatProgress(short)

	var tty bytes.Buffer
	p := &progressPrinter{w: &tty, tty: true}
	p.update(long)
	p.update(short)
	p.finish()
	// The shorter line blanks out what is left of the longer one.
	if want := "\r" + l + "\r" + s + strings.Repeat(" ", len(l)-len(s)) + "\n"; tty.String() != want {
		t.Errorf("terminal output\n got %q\nwant %q", tty.String(), want)
	}

	var plain bytes.Buffer
	p = &progressPrinter{w: &plain}
	p.update(long)
	p.update(short)
	p.finish()
	if want := l + "\n" + s + "\n"; plain.String() != want {
		t.Errorf("plain output\n got %q\nwant %q", plain.String(), want)
	}

	var none bytes.Buffer
	p = &progressPrinter{w: &none, tty: true}
	p.finish()
	if none.Len() != 0 {
		t.Errorf("finish without progress wrote %q", none.String())
	}
}

func TestFormatLatency(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0:                        "0.0µs",
		152_345:                  "152.3µs",
		999_949:                  "999.9µs",
		time.Millisecond:         "1.00ms",
		3_125_000:                "3.12ms",
		1500 * time.Millisecond:  "1.50s",
		90 * time.Second:         "90.00s",
		time.Microsecond + 50:    "1.1µs",
		999*time.Millisecond + 1: "999.00ms",
	} {
		if got := formatLatency(d); got != want {
			t.Errorf("formatLatency(%d) = %q, want %q", d, got, want)
		}
	}
}

var sampleResult = benchResult{
	Endpoint:   "tcp://127.0.0.1:5555",
	Clients:    4,
	Warmup:     time.Second,
	Duration:   5 * time.Second,
	Replies:    100_000,
	Errors:     2,
	Timeouts:   1,
	FirstError: `bench-1: got "a", want "b"`,
	Latency: latencySummary{
		Count: 100_000,
		Min:   20 * time.Microsecond, Mean: 48_500, P50: 45 * time.Microsecond,
		P90: 80_260, P99: 1500 * time.Microsecond, Max: 2 * time.Second,
	},
}

func TestWriteBenchResult(t *testing.T) {
	var b bytes.Buffer
	writeBenchResult(&b, sampleResult)
	want := `endpoint    tcp://127.0.0.1:5555
clients     4
duration    5s, after 1s warm-up
replies     100000
throughput  20000.0 replies/s
latency     p50 45.0µs  p90 80.3µs  p99 1.50ms  max 2.00s  (min 20.0µs, mean 48.5µs)
errors      2
first error bench-1: got "a", want "b"
timeouts    1
`
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}

	b.Reset()
	writeBenchResult(&b, benchResult{Endpoint: "ipc:///tmp/s", Clients: 1, Duration: 1500 * time.Millisecond, Interrupted: true})
	want = `endpoint    ipc:///tmp/s
clients     1
duration    1.5s (interrupted)
replies     0
throughput  0.0 replies/s
latency     -
errors      0
timeouts    0
`
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
}

func TestBenchResultJSON(t *testing.T) {
	got, err := json.Marshal(sampleResult.jsonValue())
	if err != nil {
		t.Fatal(err)
	}
	want := `{"endpoint":"tcp://127.0.0.1:5555","clients":4,"warmup_s":1,"duration_s":5,"replies":100000,` +
		`"throughput":20000,"latency_us":{"min":20,"mean":48.5,"p50":45,"p90":80.26,"p99":1500,"max":2000000},` +
		`"errors":2,"timeouts":1,"first_error":"bench-1: got \"a\", want \"b\""}`
	if string(got) != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	if tp := (benchResult{Replies: 10, Duration: 3 * time.Second}).jsonValue().Throughput; tp != 3.3 {
		t.Errorf("throughput of 10 replies in 3s = %v, want 3.3", tp)
	}
}

func TestSplitEndpoint(t *testing.T) {
	for _, tc := range []struct{ in, network, address string }{
		{"tcp://127.0.0.1:5555", "tcp", "127.0.0.1:5555"},
		{"tcp://[::1]:1", "tcp", "[::1]:1"},
		{"ipc:///tmp/x.sock", "unix", "/tmp/x.sock"},
		{"tcp://127.0.0.1", "", ""},
		{"udp://127.0.0.1:1", "", ""},
		{"127.0.0.1:5555", "", ""},
		{"ipc://", "", ""},
	} {
		n, a, err := transport.ParseEndpoint(tc.in)
		if n != tc.network || a != tc.address || (err != nil) != (tc.network == "") {
			t.Errorf("transport.ParseEndpoint(%q) = %q, %q, %v", tc.in, n, a, err)
		}
	}
}

func TestBenchUsage(t *testing.T) {
	for _, args := range [][]string{
		{"--clients", "0"},
		{"--duration", "0s"},
		{"--warmup", "-1s"},
		{"--timeout", "0s"},
		{"--message", ""},
		{"--connect", "localhost:5555"},
		{"--identity-prefix", strings.Repeat("x", 201)},
		{"--nope"},
		{"extra"},
	} {
		var out, errOut bytes.Buffer
		if code := run(append([]string{"bench"}, args...), &out, &errOut); code != 2 {
			t.Errorf("bench %q: exit %d, want 2 (stderr %q)", args, code, errOut.String())
		}
	}
	var out, errOut bytes.Buffer
	if code := run([]string{"bench", "--help"}, &out, &errOut); code != 0 || !strings.Contains(out.String(), "--expect") {
		t.Errorf("bench --help: exit %d, output %q", code, out.String())
	}
}

// fakeRouter is an in-process ROUTER for runBench: it answers each message
// with answer(id, n, frames), n counting that identity's messages from 1,
// after the delay answer returns; a nil reply is no reply.
type fakeRouter struct {
	srv    atomic.Pointer[transport.Server]
	answer answerFunc

	mu   sync.Mutex
	seen map[string]int // messages per identity
}

type answerFunc func(id string, n int, frames [][]byte) (reply [][]byte, delay time.Duration)

func startFakeRouter(t *testing.T, answer answerFunc) (*fakeRouter, string) {
	t.Helper()
	f := &fakeRouter{answer: answer, seen: map[string]int{}}
	srv, err := transport.Listen(transport.Config{
		Endpoints: []string{"tcp://127.0.0.1:0"},
		Logger:    slog.New(slog.DiscardHandler),
	}, f)
	if err != nil {
		t.Fatal(err)
	}
	f.srv.Store(srv)
	t.Cleanup(func() { _ = srv.Close() })
	return f, srv.Addrs()[0]
}

func (f *fakeRouter) Connected(transport.Peer)           {}
func (f *fakeRouter) Disconnected(transport.Peer, error) {}
func (f *fakeRouter) Message(p transport.Peer, _ transport.Envelope, frames [][]byte, hold flow.Hold) {
	hold.Release()
	f.mu.Lock()
	f.seen[p.ID]++
	n := f.seen[p.ID]
	f.mu.Unlock()
	reply, delay := f.answer(p.ID, n, frames)
	switch {
	case reply == nil:
	case delay > 0:
		// To p.ID, whichever connection has it then, as a moebius-js
		// server does; after Close, Send fails.
		time.AfterFunc(delay, func() { _ = f.srv.Load().Send(p.ID, reply...) })
	default:
		_ = f.srv.Load().Send(p.ID, reply...)
	}
}

func (f *fakeRouter) identities() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var ids []string
	for id := range f.seen {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// replyTo answers "re:<identity>".
func replyTo(id string, _ int, _ [][]byte) ([][]byte, time.Duration) {
	return [][]byte{[]byte("re:" + id)}, 0
}

func testConfig(endpoint string) benchConfig {
	return benchConfig{
		Endpoint:       endpoint,
		Clients:        3,
		IdentityPrefix: "c",
		Duration:       300 * time.Millisecond,
		Warmup:         50 * time.Millisecond,
		Timeout:        5 * time.Second,
		Message:        []byte("ping"),
		Expect:         "re:{id}",
		CheckExpect:    true,
	}
}

func checkSane(t *testing.T, res benchResult) {
	t.Helper()
	l := res.Latency
	if res.Replies == 0 || l.Count != res.Replies {
		t.Fatalf("replies %d, latency samples %d", res.Replies, l.Count)
	}
	if !(0 < l.Min && l.Min <= l.P50 && l.P50 <= l.P90 && l.P90 <= l.P99 && l.P99 <= l.Max) || l.Mean < l.Min || l.Mean > l.Max {
		t.Fatalf("latency out of order: %+v", l)
	}
	if want := float64(res.Replies) / res.Duration.Seconds(); res.Throughput() != want {
		t.Fatalf("throughput %v, want %v", res.Throughput(), want)
	}
}

func TestRunBenchCountsGoodReplies(t *testing.T) {
	f, addr := startFakeRouter(t, replyTo)
	var mu sync.Mutex
	var progress []benchProgress
	cfg := testConfig(addr)
	cfg.ProgressEvery = 10 * time.Millisecond
	cfg.Progress = func(p benchProgress) {
		mu.Lock()
		progress = append(progress, p)
		mu.Unlock()
	}
	res, err := runBench(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	checkSane(t, res)
	if res.Errors != 0 || res.Timeouts != 0 || res.FirstError != "" || res.Interrupted {
		t.Errorf("result %+v: want no errors, timeouts or interruption", res)
	}
	if res.Clients != 3 || res.Duration != 300*time.Millisecond || res.Warmup != 50*time.Millisecond || res.Endpoint != addr {
		t.Errorf("result %+v does not echo the config", res)
	}
	if ids := f.identities(); !slices.Equal(ids, []string{"c0", "c1", "c2"}) {
		t.Errorf("server saw identities %q", ids)
	}
	// runBench waited for the progress goroutine: nothing is appended now.
	mu.Lock()
	defer mu.Unlock()
	if len(progress) == 0 {
		t.Fatal("no progress reported")
	}
	last := progress[len(progress)-1]
	if last.Warmup || last.Phase != cfg.Duration || last.Replies > res.Replies || last.Errors != 0 {
		t.Errorf("last progress %+v (result: %d replies)", last, res.Replies)
	}
}

func TestRunBenchCountsMismatchesAsErrors(t *testing.T) {
	_, addr := startFakeRouter(t, replyTo)
	cfg := testConfig(addr)
	cfg.Expect = "re:someone-else"
	res, err := runBench(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.Replies != 0 || res.Errors == 0 || res.Latency.Count != 0 {
		t.Fatalf("replies %d, errors %d, latency %+v: want every reply an error", res.Replies, res.Errors, res.Latency)
	}
	if !strings.Contains(res.FirstError, `got "re:c`) || !strings.Contains(res.FirstError, `want "re:someone-else"`) {
		t.Errorf("first error %q", res.FirstError)
	}
}

func TestRunBenchCountsErrorRepliesWithoutExpect(t *testing.T) {
	_, addr := startFakeRouter(t, func(_ string, n int, _ [][]byte) ([][]byte, time.Duration) {
		if n%2 == 0 {
			return [][]byte{[]byte(`{"error":{"code":"unknown_command","message":"no"}}`)}, 0
		}
		return [][]byte{[]byte(`{"ok":true}`)}, 0
	})
	cfg := testConfig(addr)
	cfg.CheckExpect = false
	res, err := runBench(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	checkSane(t, res)
	// Every other reply is an error reply.
	if res.Errors == 0 || res.Errors < res.Replies-3 || res.Errors > res.Replies+3 {
		t.Errorf("replies %d, errors %d: want about as many of each", res.Replies, res.Errors)
	}
	if !strings.Contains(res.FirstError, "error reply") {
		t.Errorf("first error %q", res.FirstError)
	}
}

// Each client's first request is not answered in time: the watchdog gives
// up on it, and the client goes on under a new identity, so that a late
// reply, which the server routes by identity, cannot reach it.
func TestRunBenchTimeoutReconnects(t *testing.T) {
	for _, tc := range []struct {
		name  string
		first [][]byte // the answer to a client's first request, after 150ms
	}{
		{"never answered", nil},
		{"answered late", [][]byte{[]byte("late")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, addr := startFakeRouter(t, func(id string, n int, frames [][]byte) ([][]byte, time.Duration) {
				if n == 1 && !strings.Contains(id, ".") {
					return tc.first, 150 * time.Millisecond
				}
				return replyTo(id, n, frames)
			})
			cfg := testConfig(addr)
			cfg.Warmup = 0
			cfg.Timeout = 100 * time.Millisecond
			cfg.watchEvery = time.Millisecond
			res, err := runBench(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			checkSane(t, res)
			if res.Timeouts != 3 || res.Errors != 0 {
				t.Errorf("timeouts %d, errors %d (%s): want 3 and 0", res.Timeouts, res.Errors, res.FirstError)
			}
			if ids := f.identities(); !slices.Equal(ids, []string{"c0", "c0.1", "c1", "c1.1", "c2", "c2.1"}) {
				t.Errorf("server saw identities %q", ids)
			}
		})
	}
}

// Each client's first request is answered after its timeout, before the
// watchdog acts: that reply counts as a timeout, not as the reply to the
// next request, and the client carries on on the same connection.
func TestRunBenchLateReplyOnSameConnection(t *testing.T) {
	f, addr := startFakeRouter(t, func(id string, n int, frames [][]byte) ([][]byte, time.Duration) {
		if n == 1 {
			return [][]byte{[]byte("late:" + id)}, 150 * time.Millisecond
		}
		return replyTo(id, n, frames)
	})
	cfg := testConfig(addr)
	cfg.Warmup = 0
	cfg.Duration = 400 * time.Millisecond
	cfg.Timeout = 100 * time.Millisecond
	cfg.watchEvery = time.Hour // never acts
	res, err := runBench(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	checkSane(t, res)
	if res.Timeouts != 3 || res.Errors != 0 {
		t.Errorf("timeouts %d, errors %d (%s): want 3 and 0", res.Timeouts, res.Errors, res.FirstError)
	}
	if res.Latency.Max >= cfg.Timeout {
		t.Errorf("a reply of %v was counted, over the %v timeout", res.Latency.Max, cfg.Timeout)
	}
	if ids := f.identities(); !slices.Equal(ids, []string{"c0", "c1", "c2"}) {
		t.Errorf("server saw identities %q: want no reconnection", ids)
	}
}

func TestRunBenchInterrupted(t *testing.T) {
	_, addr := startFakeRouter(t, replyTo)
	cfg := testConfig(addr)
	cfg.Duration = time.Hour
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	res, err := runBench(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	checkSane(t, res)
	if !res.Interrupted || res.Duration <= 0 || res.Duration >= time.Minute {
		t.Errorf("interrupted %v after %v", res.Interrupted, res.Duration)
	}
}

func TestRunBenchConnectRefused(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := "tcp://" + l.Addr().String()
	l.Close()
	if _, err := runBench(context.Background(), testConfig(addr)); err == nil || !strings.Contains(err.Error(), "connect "+addr) {
		t.Fatalf("runBench on a closed port: %v", err)
	}
	var out, errOut bytes.Buffer
	if code := run([]string{"bench", "-c", addr, "-d", "100ms"}, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), "connect") {
		t.Errorf("bench on a closed port: exit %d, stderr %q", code, errOut.String())
	}
}
