package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/bits"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"github.com/moebius-js/moebius-js/transport"
)

// bench is a load generator: N synchronous clients, each its own DEALER
// connection, send a request, wait for its reply and send again, for a
// warm-up and then a measured duration. It prints a progress line on
// stderr while it runs, then throughput and latency percentiles on stdout.
//
// Exit codes: 0 when at least one good reply was counted (errors and
// timeouts are reported but do not fail the run); 1 when the endpoint
// refused the connection or no good reply was counted (for instance every
// reply failed --expect); 2 for usage errors.
func bench(args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("bench", pflag.ContinueOnError)
	o := benchFlags(fs)
	endpoint, clients, prefix, duration, warmup := o.endpoint, o.clients, o.prefix, o.duration, o.warmup
	message, expect, timeout, asJSON := o.message, o.expect, o.timeout, o.asJSON
	if code, done := parseFlags(fs, args, stdout, stderr); done {
		return code
	}
	usageErr := func(format string, a ...any) int {
		return usageError(stderr, "bench", format, a...)
	}
	switch {
	case fs.NArg() > 0:
		return usageErr("unexpected argument %q (the request payload is --message)", fs.Arg(0))
	case *clients < 1:
		return usageErr("--clients must be at least 1")
	case *duration <= 0:
		return usageErr("--duration must be greater than zero")
	case *warmup < 0:
		return usageErr("--warmup must not be negative")
	case *timeout <= 0:
		return usageErr("--timeout must be greater than zero")
	case *message == "":
		// One empty frame is a ZMQ_PROBE_ROUTER hello: the server drops it.
		return usageErr("--message must not be empty")
	case len(*prefix) > maxBenchPrefix:
		return usageErr("--identity-prefix is longer than %d bytes", maxBenchPrefix)
	}
	if _, _, err := transport.ParseEndpoint(*endpoint); err != nil {
		return usageErr("%v", err)
	}
	curveKeys, err := o.curve()
	if err != nil {
		return usageErr("%v", err)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	progress := &progressPrinter{w: stderr, tty: isTerminal(stderr)}
	cfg := benchConfig{
		Endpoint:       *endpoint,
		Clients:        *clients,
		IdentityPrefix: *prefix,
		Duration:       *duration,
		Warmup:         *warmup,
		Timeout:        *timeout,
		Message:        []byte(*message),
		Curve:          curveKeys,
		Expect:         *expect,
		CheckExpect:    fs.Changed("expect"),
		ProgressEvery:  time.Second,
		Progress:       progress.update,
	}
	if progress.tty {
		cfg.ProgressEvery = 500 * time.Millisecond
	}
	res, err := runBench(ctx, cfg)
	progress.finish()
	if err != nil {
		fmt.Fprintf(stderr, "moebius-js bench: %v\n", err)
		return 1
	}
	if *asJSON {
		if err := json.NewEncoder(stdout).Encode(res.jsonValue()); err != nil {
			fmt.Fprintf(stderr, "moebius-js bench: %v\n", err)
			return 1
		}
	} else {
		writeBenchResult(stdout, res)
	}
	if res.Replies == 0 {
		why := "no reply"
		if cfg.CheckExpect {
			why = "no reply matching --expect"
		}
		fmt.Fprintf(stderr, "moebius-js bench: %s from %s in %v (%d errors, %d timeouts)\n",
			why, cfg.Endpoint, res.Duration, res.Errors, res.Timeouts)
		return 1
	}
	return 0
}

// benchOptions are bench's flags, once parsed.
type benchOptions struct {
	endpoint, prefix, message, expect *string
	clients                           *int
	duration, warmup, timeout         *time.Duration
	asJSON                            *bool
	curve                             func() (*transport.CurveClient, error)
}

// benchFlags defines bench's flags on fs.
func benchFlags(fs *pflag.FlagSet) benchOptions {
	return benchOptions{
		endpoint: fs.StringP("connect", "c", "tcp://127.0.0.1:5555", "server endpoint"),
		clients:  fs.IntP("clients", "n", 10, "synchronous clients, each with its own connection"),
		prefix:   fs.String("identity-prefix", "bench-", "client i connects with identity <prefix><i>"),
		duration: fs.DurationP("duration", "d", 5*time.Second, "measured time, after the warm-up"),
		warmup:   fs.DurationP("warmup", "w", time.Second, "time before measuring starts, connecting included; its replies are not counted"),
		message:  fs.StringP("message", "m", `{"command":"echo"}`, "the request payload (one frame)"),
		expect:   fs.String("expect", "", "each reply's first frame must equal this, with {id} replaced by the client's identity; other replies count as errors (the run still exits 0 if any reply matched)"),
		timeout:  fs.DurationP("timeout", "t", 5*time.Second, "how long a client waits for a reply; past it the client counts a timeout, reconnects under a new identity <prefix><i>.<n> and sends again"),
		asJSON:   fs.Bool("json", false, "print the result as one JSON object on stdout"),
		curve:    curveFlags(fs),
	}
}

// maxBenchPrefix leaves room in the 255-byte ZMTP identity for the client
// number and the reconnection suffix.
const maxBenchPrefix = 200

// benchConfig is one load run.
type benchConfig struct {
	Endpoint       string // tcp://host:port or ipc://path
	Clients        int    // synchronous clients, one connection each
	IdentityPrefix string // client i is <prefix><i>, then <prefix><i>.<n> after its n-th timeout
	Duration       time.Duration
	Warmup         time.Duration          // before Duration; nothing in it is counted
	Timeout        time.Duration          // per reply
	Message        []byte                 // the request: one frame
	Curve          *transport.CurveClient // speak CURVE with these keys (one pair for all clients); nil: NULL
	// With CheckExpect, a reply whose first frame is not Expect (with
	// "{id}" replaced by the client's identity) is an error. Without it, a
	// moebius-js error reply ({"error":{"code":…) is an error.
	Expect      string
	CheckExpect bool
	// Progress, when set, is called every ProgressEvery from the progress
	// goroutine (never concurrently with itself).
	ProgressEvery time.Duration
	Progress      func(benchProgress)

	// watchEvery overrides how often the watchdog looks for timed-out
	// requests (default: a tenth of Timeout, between 1ms and 100ms). Tests.
	watchEvery time.Duration
}

// benchProgress is a snapshot taken while the run goes on.
type benchProgress struct {
	Warmup   bool          // still warming up
	Elapsed  time.Duration // since the current phase began
	Phase    time.Duration // the current phase's length
	Replies  int64         // replies in the current phase (good ones once measuring)
	Rate     float64       // replies/s since the previous snapshot, all kinds
	Errors   int64         // measured so far
	Timeouts int64         // measured so far
}

// benchResult is what a run measured. Only the measured window counts:
// replies (good ones), errors and timeouts are those that arrived, or
// expired, after the warm-up.
type benchResult struct {
	Endpoint    string
	Clients     int
	Warmup      time.Duration
	Duration    time.Duration // the measured window (shorter when interrupted)
	Interrupted bool
	Replies     int64 // good replies: latency is measured over these
	Errors      int64 // replies that failed --expect, or error replies
	Timeouts    int64 // requests not answered within the timeout
	FirstError  string
	Latency     latencySummary
}

// Throughput is good replies per second of the measured window.
func (r benchResult) Throughput() float64 {
	if r.Duration <= 0 {
		return 0
	}
	return float64(r.Replies) / r.Duration.Seconds()
}

// latencySummary describes a set of round-trip times.
type latencySummary struct {
	Count                         int64
	Min, Mean, P50, P90, P99, Max time.Duration
}

// runBench runs one load test: it checks that the endpoint accepts a
// connection (else it returns an error), starts cfg.Clients clients, and
// returns what they measured once the warm-up and duration have passed, or
// early, with Interrupted set, when ctx is cancelled.
//
// Each client is a transport.Dealer, so its reader goroutine runs
// benchClient.reply: it records the reply and sends the next request
// itself, so a round trip costs no goroutine hand-off of ours. runBench
// starts two goroutines of its own — the watchdog, which times out
// unanswered requests and reconnects those clients, and the progress
// reporter — and stops and waits for both, then closes every Dealer
// (which waits for their goroutines) before it returns.
func runBench(ctx context.Context, cfg benchConfig) (benchResult, error) {
	network, address, err := transport.ParseEndpoint(cfg.Endpoint)
	if err != nil {
		return benchResult{}, err
	}
	// A Dealer connects in the background and retries forever; dial once
	// first so that a wrong address fails at once with the reason.
	conn, err := net.DialTimeout(network, address, cfg.Timeout)
	if err != nil {
		return benchResult{}, fmt.Errorf("connect %s: %w", cfg.Endpoint, err)
	}
	_ = conn.Close()

	watchEvery := cfg.watchEvery
	if watchEvery <= 0 {
		watchEvery = min(max(cfg.Timeout/10, time.Millisecond), 100*time.Millisecond)
	}
	start := time.Now()
	r := &benchRun{
		cfg:       cfg,
		start:     start,
		warmEnd:   start.Add(cfg.Warmup),
		end:       start.Add(cfg.Warmup + cfg.Duration),
		scanEvery: watchEvery,
		log:       slog.New(slog.DiscardHandler),
	}
	for i := range cfg.Clients {
		c := &benchClient{run: r, index: i, msg: [][]byte{bytes.Clone(cfg.Message)}}
		r.clients = append(r.clients, c)
		c.mu.Lock()
		err := c.connectLocked(start)
		c.mu.Unlock()
		if err != nil {
			r.closeAll()
			return benchResult{}, err
		}
	}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { r.watchdog(stop) })
	if cfg.Progress != nil && cfg.ProgressEvery > 0 {
		wg.Go(func() { r.reportProgress(stop) })
	}
	deadline := time.NewTimer(time.Until(r.end))
	interrupted := false
	select {
	case <-deadline.C:
	case <-ctx.Done():
		deadline.Stop()
		interrupted = true
	}
	stoppedAt := time.Now()
	for _, c := range r.clients {
		c.mu.Lock()
		c.stopped = true
		c.mu.Unlock()
	}
	close(stop)
	wg.Wait()
	r.closeAll()

	res := benchResult{
		Endpoint:    cfg.Endpoint,
		Clients:     cfg.Clients,
		Warmup:      cfg.Warmup,
		Duration:    cfg.Duration,
		Interrupted: interrupted,
	}
	if interrupted {
		res.Duration = min(max(stoppedAt.Sub(r.warmEnd), 0), cfg.Duration)
	}
	var lat histogram
	var firstErrAt time.Time
	for _, c := range r.clients {
		// The Dealers are closed: no callback runs any more.
		res.Replies += c.replies
		res.Errors += c.errors
		res.Timeouts += c.timeouts
		lat.merge(&c.lat)
		if c.firstErr != "" && (firstErrAt.IsZero() || c.firstErrAt.Before(firstErrAt)) {
			res.FirstError, firstErrAt = c.firstErr, c.firstErrAt
		}
	}
	res.Latency = lat.summary()
	return res, nil
}

// benchRun is the state of one run shared by its clients; all but
// clients' own fields are set before any goroutine starts and never change.
type benchRun struct {
	cfg                 benchConfig
	start, warmEnd, end time.Time
	scanEvery           time.Duration
	log                 *slog.Logger // for the Dealers: discards
	clients             []*benchClient
}

// watchdog runs on its own goroutine until stop is closed: every
// scanEvery it gives up on requests older than the timeout.
func (r *benchRun) watchdog(stop <-chan struct{}) {
	t := time.NewTicker(r.scanEvery)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case now := <-t.C:
			for _, c := range r.clients {
				c.checkTimeout(now)
			}
		}
	}
}

// reportProgress runs on its own goroutine until stop is closed, calling
// cfg.Progress every cfg.ProgressEvery.
func (r *benchRun) reportProgress(stop <-chan struct{}) {
	t := time.NewTicker(r.cfg.ProgressEvery)
	defer t.Stop()
	var lastAll int64
	lastAt := r.start
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		now := time.Now()
		var p benchProgress
		var all, warm int64
		for _, c := range r.clients {
			c.mu.Lock()
			all += c.all
			warm += c.warmReplies
			p.Replies += c.replies
			p.Errors += c.errors
			p.Timeouts += c.timeouts
			c.mu.Unlock()
		}
		if dt := now.Sub(lastAt).Seconds(); dt > 0 {
			p.Rate = float64(all-lastAll) / dt
		}
		lastAll, lastAt = all, now
		if now.Before(r.warmEnd) {
			p.Warmup, p.Elapsed, p.Phase, p.Replies = true, now.Sub(r.start), r.cfg.Warmup, warm
		} else {
			p.Elapsed, p.Phase = min(now.Sub(r.warmEnd), r.cfg.Duration), r.cfg.Duration
		}
		r.cfg.Progress(p)
	}
}

// closeAll closes every client's Dealer, waiting for its goroutines. Only
// once the watchdog has stopped (it replaces Dealers).
func (r *benchRun) closeAll() {
	for _, c := range r.clients {
		c.mu.Lock()
		d := c.dealer
		c.dealer = nil
		c.mu.Unlock()
		if d != nil {
			d.Close()
		}
	}
}

// benchClient is one synchronous client: at most one request outstanding.
//
// Late replies. A reply that comes after its request's timeout must not be
// taken for the reply to the next request, and nothing in a reply says
// which request it answers. So a client never sends again on a connection
// that still owes a reply: when the watchdog finds a request older than
// the timeout, it closes that connection (Close waits for its reader, so
// no callback of it runs afterwards; callbacks already waiting for mu are
// told apart by gen) and connects anew under a fresh identity
// <prefix><i>.<gen>. A fresh identity, not the same one, because the
// server refuses a second connection with an identity it still holds (it
// may not have seen the old one close yet), and because it routes replies
// by identity, so a reply of the old request that the server sends just
// as the new connection registers could otherwise reach it. A reply that
// arrives after the timeout but before the watchdog acted is counted as a
// timeout, not a reply, and the client sends its next request on the same
// connection, which then owes nothing.
//
// The fields under mu are written by the Dealer's reader goroutine
// (reply), the watchdog (checkTimeout), runBench, and read by the
// progress goroutine.
type benchClient struct {
	run   *benchRun
	index int
	// msg is this client's own request. It is sent again and again: a
	// Dealer takes ownership of what it sends, but only until the message
	// is written, which is before its reply can arrive.
	msg [][]byte

	mu      sync.Mutex
	dealer  *transport.Dealer
	gen     int    // connections given up on so far; names the identity
	id      string // identity of the current connection
	expect  []byte // cfg.Expect for id
	sentAt  time.Time
	waiting bool // a request is outstanding on dealer
	stopped bool // the run is over: send nothing more

	all         int64 // replies of any kind, warm-up included (progress rate)
	warmReplies int64 // replies during the warm-up
	replies     int64 // measured good replies
	errors      int64
	timeouts    int64
	firstErr    string
	firstErrAt  time.Time
	lat         histogram
}

// connectLocked dials a Dealer for generation c.gen and sends the
// request. c.mu is held.
func (c *benchClient) connectLocked(now time.Time) error {
	cfg := &c.run.cfg
	c.id = cfg.IdentityPrefix + strconv.Itoa(c.index)
	if c.gen > 0 {
		c.id += "." + strconv.Itoa(c.gen)
	}
	if cfg.CheckExpect {
		c.expect = []byte(strings.ReplaceAll(cfg.Expect, "{id}", c.id))
	}
	d, err := transport.Dial(cfg.Endpoint, transport.DialConfig{Identity: c.id, Logger: c.run.log, Curve: cfg.Curve}, c.reply(c.gen))
	if err != nil {
		return err
	}
	c.dealer = d
	c.sendLocked(now)
	return nil
}

// sendLocked sends the request. c.mu is held.
func (c *benchClient) sendLocked(now time.Time) {
	c.sentAt, c.waiting = now, true
	// Send fails only when the Dealer is closed or its queue is full;
	// neither happens with one message outstanding, and if it did, the
	// watchdog would time the request out and reconnect.
	_ = c.dealer.Send(c.msg...)
}

// reply returns the onMessage callback of the Dealer of generation gen;
// it runs on that Dealer's reader goroutine.
func (c *benchClient) reply(gen int) func(frames [][]byte) {
	return func(frames [][]byte) {
		now := time.Now()
		c.mu.Lock()
		defer c.mu.Unlock()
		r := c.run
		if gen != c.gen || !c.waiting || c.stopped || !now.Before(r.end) {
			// A connection given up on, a message nobody asked for, or the
			// run is over.
			return
		}
		c.waiting = false
		c.all++
		latency := now.Sub(c.sentAt)
		measured := !now.Before(r.warmEnd)
		switch {
		case latency > r.cfg.Timeout:
			if measured {
				c.timeouts++
			}
		case !measured:
			c.warmReplies++
		case !c.good(frames):
			c.errors++
			if c.firstErr == "" {
				c.firstErr, c.firstErrAt = c.describe(frames), now
			}
		default:
			c.replies++
			c.lat.record(int64(latency))
		}
		c.sendLocked(now)
	}
}

// errorReply starts a moebius-js error reply.
var errorReply = []byte(`{"error":{"code":`)

// good reports whether a reply passes the check.
func (c *benchClient) good(frames [][]byte) bool {
	if c.run.cfg.CheckExpect {
		return len(frames) > 0 && bytes.Equal(frames[0], c.expect)
	}
	return len(frames) == 0 || !bytes.HasPrefix(frames[0], errorReply)
}

// describe says what is wrong with a reply that is not good.
func (c *benchClient) describe(frames [][]byte) string {
	got := ""
	if len(frames) > 0 {
		got = formatFrames(frames)
	}
	if len(got) > 200 {
		got = got[:200] + "…"
	}
	if c.run.cfg.CheckExpect {
		return fmt.Sprintf("%s: got %q, want %q", c.id, got, c.expect)
	}
	return fmt.Sprintf("%s: error reply %s", c.id, got)
}

// checkTimeout gives up on c's request if it is older than the timeout:
// it counts a timeout (after the warm-up), closes the connection and
// connects anew (see benchClient). Watchdog goroutine only.
func (c *benchClient) checkTimeout(now time.Time) {
	c.mu.Lock()
	if c.stopped || !c.waiting || now.Sub(c.sentAt) <= c.run.cfg.Timeout {
		c.mu.Unlock()
		return
	}
	if !now.Before(c.run.warmEnd) {
		c.timeouts++
	}
	old := c.dealer
	c.dealer, c.waiting = nil, false
	c.gen++
	c.mu.Unlock()
	if old != nil {
		old.Close() // waits for its reader: no callback of it runs after this
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		return
	}
	if err := c.connectLocked(time.Now()); err != nil {
		// Dial fails only for a malformed endpoint or identity, both
		// checked before the run; try again at the next timeout.
		c.sentAt, c.waiting = now, true
	}
}

// Latency histogram.
//
// Values (nanoseconds) below histExact have a bucket each. Above, every
// power of two [2^k, 2^(k+1)) is split into histSub equal buckets, so a
// bucket is at most 1/128 of its lower bound wide. A percentile is reported
// as the middle of its bucket, clamped to the smallest and largest value
// recorded, so it is within 1/256 (0.4%) of the exact one. Memory is fixed:
// histBuckets counters per client, however long the run.
const (
	histSubBits = 7
	histSub     = 1 << histSubBits       // buckets per power of two
	histExact   = 2 * histSub            // values below have a bucket each
	histBuckets = histExact + 55*histSub // up to 2^63: shifts 1..55
)

type histogram struct {
	counts        [histBuckets]uint64
	n             int64
	sum, min, max int64
}

// bucketOf returns the bucket holding v (v >= 0).
func bucketOf(v int64) int {
	if v < histExact {
		return int(v)
	}
	shift := bits.Len64(uint64(v)) - (histSubBits + 1)
	return histExact + (shift-1)*histSub + int(uint64(v)>>shift) - histSub
}

// bucketRange returns the smallest value of bucket i and its width.
func bucketRange(i int) (lo, width int64) {
	if i < histExact {
		return int64(i), 1
	}
	j := i - histExact
	shift := j/histSub + 1
	top := int64(j%histSub + histSub)
	return top << shift, 1 << shift
}

func (h *histogram) record(v int64) {
	v = max(v, 0)
	h.counts[bucketOf(v)]++
	if h.n == 0 || v < h.min {
		h.min = v
	}
	h.max = max(h.max, v)
	h.n++
	h.sum += v
}

func (h *histogram) merge(o *histogram) {
	if o.n == 0 {
		return
	}
	for i, n := range o.counts {
		h.counts[i] += n
	}
	if h.n == 0 || o.min < h.min {
		h.min = o.min
	}
	h.max = max(h.max, o.max)
	h.n += o.n
	h.sum += o.sum
}

// percentile returns the nearest-rank p-th percentile (0 < p <= 100): the
// smallest recorded value such that at least p% of the values are less or
// equal, as the middle of its bucket (see above). 0 when empty.
func (h *histogram) percentile(p float64) int64 {
	if h.n == 0 {
		return 0
	}
	rank := min(max(int64(math.Ceil(p*float64(h.n)/100)), 1), h.n)
	var seen int64
	for i, n := range h.counts {
		seen += int64(n)
		if seen >= rank {
			lo, width := bucketRange(i)
			return min(max(lo+(width-1)/2, h.min), h.max)
		}
	}
	return h.max
}

func (h *histogram) summary() latencySummary {
	if h.n == 0 {
		return latencySummary{}
	}
	return latencySummary{
		Count: h.n,
		Min:   time.Duration(h.min),
		Mean:  time.Duration(h.sum / h.n),
		P50:   time.Duration(h.percentile(50)),
		P90:   time.Duration(h.percentile(90)),
		P99:   time.Duration(h.percentile(99)),
		Max:   time.Duration(h.max),
	}
}

// Output.

// progressPrinter writes progress snapshots: on a terminal, one line
// rewritten in place with \r; elsewhere, one line each.
type progressPrinter struct {
	w     io.Writer
	tty   bool
	width int // length of the line on screen (tty)
}

func (p *progressPrinter) update(bp benchProgress) {
	line := formatProgress(bp)
	if !p.tty {
		fmt.Fprintln(p.w, line)
		return
	}
	pad := max(p.width-len(line), 0)
	fmt.Fprintf(p.w, "\r%s%s", line, strings.Repeat(" ", pad))
	p.width = len(line)
}

// finish ends the progress line on a terminal.
func (p *progressPrinter) finish() {
	if p.tty && p.width > 0 {
		fmt.Fprintln(p.w)
		p.width = 0
	}
}

// formatProgress renders a snapshot on one line, e.g.
// "bench    2.5s/5.0s  replies 61234  24512/s".
func formatProgress(p benchProgress) string {
	phase := "bench"
	if p.Warmup {
		phase = "warm-up"
	}
	line := fmt.Sprintf("%-7s %5.1fs/%.1fs  replies %d  %.0f/s",
		phase, p.Elapsed.Seconds(), p.Phase.Seconds(), p.Replies, p.Rate)
	if p.Errors > 0 {
		line += fmt.Sprintf("  errors %d", p.Errors)
	}
	if p.Timeouts > 0 {
		line += fmt.Sprintf("  timeouts %d", p.Timeouts)
	}
	return line
}

// formatLatency renders a latency with a unit that keeps 3-4 digits.
func formatLatency(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return fmt.Sprintf("%.1fµs", float64(d)/1e3)
	case d < time.Second:
		return fmt.Sprintf("%.2fms", float64(d)/1e6)
	default:
		return fmt.Sprintf("%.2fs", d.Seconds())
	}
}

// writeBenchResult prints the result for people.
func writeBenchResult(w io.Writer, r benchResult) {
	duration := r.Duration.String()
	if r.Interrupted {
		duration += " (interrupted)"
	}
	if r.Warmup > 0 {
		duration += ", after " + r.Warmup.String() + " warm-up"
	}
	fmt.Fprintf(w, "endpoint    %s\n", r.Endpoint)
	fmt.Fprintf(w, "clients     %d\n", r.Clients)
	fmt.Fprintf(w, "duration    %s\n", duration)
	fmt.Fprintf(w, "replies     %d\n", r.Replies)
	fmt.Fprintf(w, "throughput  %.1f replies/s\n", r.Throughput())
	if l := r.Latency; l.Count > 0 {
		fmt.Fprintf(w, "latency     p50 %s  p90 %s  p99 %s  max %s  (min %s, mean %s)\n",
			formatLatency(l.P50), formatLatency(l.P90), formatLatency(l.P99), formatLatency(l.Max),
			formatLatency(l.Min), formatLatency(l.Mean))
	} else {
		fmt.Fprintf(w, "latency     -\n")
	}
	fmt.Fprintf(w, "errors      %d\n", r.Errors)
	if r.FirstError != "" {
		fmt.Fprintf(w, "first error %s\n", r.FirstError)
	}
	fmt.Fprintf(w, "timeouts    %d\n", r.Timeouts)
}

// benchJSON is the --json output.
type benchJSON struct {
	Endpoint    string      `json:"endpoint"`
	Clients     int         `json:"clients"`
	WarmupS     float64     `json:"warmup_s"`
	DurationS   float64     `json:"duration_s"`
	Interrupted bool        `json:"interrupted,omitempty"`
	Replies     int64       `json:"replies"`
	Throughput  float64     `json:"throughput"` // replies/s
	LatencyUS   latencyJSON `json:"latency_us"`
	Errors      int64       `json:"errors"`
	Timeouts    int64       `json:"timeouts"`
	FirstError  string      `json:"first_error,omitempty"`
}

type latencyJSON struct {
	Min  float64 `json:"min"`
	Mean float64 `json:"mean"`
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	Max  float64 `json:"max"`
}

func (r benchResult) jsonValue() benchJSON {
	us := func(d time.Duration) float64 { return float64(d) / 1e3 }
	l := r.Latency
	return benchJSON{
		Endpoint:    r.Endpoint,
		Clients:     r.Clients,
		WarmupS:     r.Warmup.Seconds(),
		DurationS:   r.Duration.Seconds(),
		Interrupted: r.Interrupted,
		Replies:     r.Replies,
		Throughput:  math.Round(r.Throughput()*10) / 10,
		LatencyUS: latencyJSON{
			Min: us(l.Min), Mean: us(l.Mean), P50: us(l.P50), P90: us(l.P90), P99: us(l.P99), Max: us(l.Max),
		},
		Errors:     r.Errors,
		Timeouts:   r.Timeouts,
		FirstError: r.FirstError,
	}
}

// isTerminal reports whether w is a terminal (a character device).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
