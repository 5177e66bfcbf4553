package lograte_test

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/moebius-js/moebius-js/internal/lograte"
)

type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

func TestOneKeyGetsABurstThenOneLinePerIntervalWithTheSuppressedCount(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1000, 0)}
	l := lograte.NewWithClock(clk.now)
	allowed := 0
	for i := 0; i < 100; i++ {
		if ok, _ := l.Allow("unknown_command", "peer-1"); ok {
			allowed++
		}
	}
	if allowed != lograte.KeyBurst {
		t.Fatalf("%d of 100 lines allowed at once, want the burst of %d", allowed, lograte.KeyBurst)
	}
	clk.t = clk.t.Add(lograte.KeyInterval)
	ok, n := l.Allow("unknown_command", "peer-1")
	if !ok || n != 100-lograte.KeyBurst {
		t.Fatalf("after an interval: allowed %v with %d suppressed, want true and %d", ok, n, 100-lograte.KeyBurst)
	}
	if ok, _ := l.Allow("unknown_command", "peer-1"); ok {
		t.Fatal("a second line in the same interval was allowed")
	}
	if got := l.Suppressed(); got != 100-lograte.KeyBurst+1 {
		t.Fatalf("Suppressed() = %d", got)
	}
}

func TestKeysAndKindsAreLimitedApart(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1000, 0)}
	l := lograte.NewWithClock(clk.now)
	for i := 0; i < lograte.KeyBurst; i++ {
		l.Allow("a", "peer-1")
	}
	if ok, _ := l.Allow("a", "peer-2"); !ok {
		t.Fatal("another peer was limited by the first one's burst")
	}
	if ok, _ := l.Allow("b", "peer-1"); !ok {
		t.Fatal("another kind was limited by the first one's burst")
	}
}

func TestManyPeersCannotFloodOneKind(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1000, 0)}
	l := lograte.NewWithClock(clk.now)
	allowed := 0
	for i := 0; i < 10_000; i++ {
		if ok, _ := l.Allow("handler_error", fmt.Sprint("peer-", i)); ok {
			allowed++
		}
	}
	if allowed != lograte.KindBurst {
		t.Fatalf("%d lines from 10,000 peers at once, want the kind's burst of %d", allowed, lograte.KindBurst)
	}
}

func TestLogWritesTheSuppressedAttribute(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1000, 0)}
	l := lograte.NewWithClock(clk.now)
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	for i := 0; i < 20; i++ {
		l.Log(log, slog.LevelWarn, "k", "p", "request refused", "i", i)
	}
	clk.t = clk.t.Add(lograte.KeyInterval)
	l.Log(log, slog.LevelWarn, "k", "p", "request refused", "i", 20)
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != lograte.KeyBurst+1 {
		t.Fatalf("%d lines logged, want %d:\n%s", len(lines), lograte.KeyBurst+1, buf.String())
	}
	if last := lines[len(lines)-1]; !strings.Contains(last, "suppressed=15") {
		t.Fatalf("last line %q lacks suppressed=15", last)
	}
}
