package allowlist

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moebius-js/moebius-js/curve"
)

// patience bounds every wait for an event: reaching it fails the test.
const patience = 10 * time.Second

// logs is a slog.Handler that hands the tests each record's level and
// message, so a test can wait for a reload that changed nothing.
type logs struct{ records chan slog.Record }

func newLogs() *logs { return &logs{records: make(chan slog.Record, 256)} }

func (h *logs) Enabled(context.Context, slog.Level) bool { return true }
func (h *logs) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *logs) WithGroup(string) slog.Handler            { return h }
func (h *logs) Handle(_ context.Context, r slog.Record) error {
	select {
	case h.records <- r:
	default: // a test that reads none of them does not block the watcher
	}
	return nil
}

// waitLog waits for a record at level whose message contains text.
func (h *logs) waitLog(t *testing.T, level slog.Level, text string) slog.Record {
	t.Helper()
	deadline := time.After(patience)
	for {
		select {
		case r := <-h.records:
			if r.Level == level && strings.Contains(r.Message, text) {
				return r
			}
		case <-deadline:
			t.Fatalf("no %v log containing %q", level, text)
		}
	}
}

// opened is a List on a temporary folder, with its onChange calls on a
// channel.
type opened struct {
	*List
	dir     string
	changed chan struct{}
	logs    *logs
}

func open(t *testing.T, dir string, keys ...curve.Key) *opened {
	t.Helper()
	o := &opened{dir: dir, changed: make(chan struct{}, 64), logs: newLogs()}
	l, err := Open(dir, keys, slog.New(o.logs), func() { o.changed <- struct{}{} })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	o.List = l
	return o
}

// until waits for onChange calls until cond holds.
func (o *opened) until(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(patience)
	for !cond() {
		select {
		case <-o.changed:
		case <-deadline:
			t.Fatalf("onChange never left the list with %s", what)
		}
	}
}

func newKey(t *testing.T) curve.KeyPair {
	t.Helper()
	kp, err := curve.GenerateKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	return kp
}

// writeCert writes kp's public and secret certificates as dir/name and
// dir/name_secret.
func writeCert(t *testing.T, dir, name string, kp curve.KeyPair) {
	t.Helper()
	if err := curve.WriteCert(filepath.Join(dir, name), kp, time.Now()); err != nil {
		t.Fatal(err)
	}
}

func TestAllowListOfKeysGivenWithoutAFolder(t *testing.T) {
	a, b, other := newKey(t), newKey(t), newKey(t)
	o := open(t, "", a.Public, b.Public)
	if !o.Allowed(a.Public) || !o.Allowed(b.Public) || o.Allowed(other.Public) || o.Len() != 2 {
		t.Fatalf("a %v b %v other %v len %d", o.Allowed(a.Public), o.Allowed(b.Public), o.Allowed(other.Public), o.Len())
	}
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestAnEmptyAllowListAllowsNoOne(t *testing.T) {
	o := open(t, t.TempDir())
	if o.Len() != 0 || o.Allowed(newKey(t).Public) || o.Allowed(curve.Key{}) {
		t.Fatalf("len %d", o.Len())
	}
}

func TestAllowListOpenFailsOnAFolderThatCannotBeRead(t *testing.T) {
	if _, err := Open(filepath.Join(t.TempDir(), "missing"), nil, nil, nil); err == nil {
		t.Fatal("Open of a missing folder succeeded")
	}
}

func TestAllowListReadsPublicCertificatesAndSkipsSecretsAndJunk(t *testing.T) {
	dir := t.TempDir()
	a, secretOnly, hidden := newKey(t), newKey(t), newKey(t)
	writeCert(t, dir, "a.key", a)
	// A secret certificate alone does not let its key in: only public
	// certificates are read.
	writeCert(t, dir, "b.key", secretOnly)
	if err := os.Remove(filepath.Join(dir, "b.key")); err != nil {
		t.Fatal(err)
	}
	writeCert(t, dir, ".hidden.key", hidden)
	if err := os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("not a certificate\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}

	o := open(t, dir)
	if !o.Allowed(a.Public) || o.Allowed(secretOnly.Public) || o.Allowed(hidden.Public) || o.Len() != 1 {
		t.Fatalf("a %v secret-only %v hidden %v len %d", o.Allowed(a.Public), o.Allowed(secretOnly.Public), o.Allowed(hidden.Public), o.Len())
	}
	r := o.logs.waitLog(t, slog.LevelWarn, "skipped")
	var why string
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "error" {
			why = a.Value.String()
		}
		return true
	})
	if !strings.Contains(why, "notes.txt") {
		t.Fatalf("the skipped-file warning names %q, want notes.txt", why)
	}
}

func TestAllowListTakesAKeyFileAddedAndDropsOneRemoved(t *testing.T) {
	dir := t.TempDir()
	a, b, listed := newKey(t), newKey(t), newKey(t)
	writeCert(t, dir, "a.key", a)
	o := open(t, dir, listed.Public)

	// Readers on other goroutines while the set is replaced (-race).
	stop := make(chan struct{})
	var readers sync.WaitGroup
	for range 2 {
		readers.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
					o.Allowed(a.Public)
					o.Allowed(b.Public)
					o.Len()
				}
			}
		})
	}
	defer func() { close(stop); readers.Wait() }()

	writeCert(t, dir, "b.key", b)
	o.until(t, "b allowed", func() bool { return o.Allowed(b.Public) })
	if !o.Allowed(a.Public) || !o.Allowed(listed.Public) || o.Len() != 3 {
		t.Fatalf("after adding b: a %v listed %v len %d", o.Allowed(a.Public), o.Allowed(listed.Public), o.Len())
	}
	o.logs.waitLog(t, slog.LevelInfo, "curve allow-list reloaded")

	if err := os.Remove(filepath.Join(dir, "a.key")); err != nil {
		t.Fatal(err)
	}
	o.until(t, "a gone", func() bool { return !o.Allowed(a.Public) })
	if !o.Allowed(b.Public) || !o.Allowed(listed.Public) || o.Len() != 2 {
		t.Fatalf("after removing a: b %v listed %v len %d", o.Allowed(b.Public), o.Allowed(listed.Public), o.Len())
	}

	// Emptying the folder leaves the keys from the configuration.
	if err := os.Remove(filepath.Join(dir, "b.key")); err != nil {
		t.Fatal(err)
	}
	o.until(t, "b gone", func() bool { return !o.Allowed(b.Public) })
	if !o.Allowed(listed.Public) || o.Len() != 1 {
		t.Fatalf("with an empty folder: listed %v len %d", o.Allowed(listed.Public), o.Len())
	}
}

func TestAllowListCertificateRewrittenInPlaceSwapsItsKey(t *testing.T) {
	dir := t.TempDir()
	a, b := newKey(t), newKey(t)
	writeCert(t, dir, "client.key", a)
	o := open(t, dir)
	path := filepath.Join(dir, "client.key")

	// Half-written: the file is still there, so its key stays.
	if err := os.WriteFile(path, []byte("curve\n    public-key = \"abc"), 0o644); err != nil {
		t.Fatal(err)
	}
	o.logs.waitLog(t, slog.LevelWarn, "no longer reads")
	if !o.Allowed(a.Public) || o.Len() != 1 {
		t.Fatalf("a half-written certificate dropped its key: a %v len %d", o.Allowed(a.Public), o.Len())
	}

	// Written whole with another key: that key replaces the old one.
	other := t.TempDir()
	writeCert(t, other, "b.key", b)
	bText, err := os.ReadFile(filepath.Join(other, "b.key"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, bText, 0o644); err != nil {
		t.Fatal(err)
	}
	o.until(t, "b in place of a", func() bool { return o.Allowed(b.Public) && !o.Allowed(a.Public) })
	if o.Len() != 1 {
		t.Fatalf("len %d", o.Len())
	}
}

func TestAllowListFolderThatVanishesKeepsItsKeysUntilItComesBack(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "clients")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	a, c := newKey(t), newKey(t)
	writeCert(t, dir, "a.key", a)
	o := open(t, dir)

	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	o.logs.waitLog(t, slog.LevelWarn, "keeping the previous keys")
	if !o.Allowed(a.Public) || o.Len() != 1 {
		t.Fatalf("a vanished folder dropped its keys: a %v len %d", o.Allowed(a.Public), o.Len())
	}

	// It comes back with another key: the list follows it.
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	writeCert(t, dir, "c.key", c)
	o.until(t, "c only", func() bool { return o.Allowed(c.Public) && !o.Allowed(a.Public) })
	if o.Len() != 1 {
		t.Fatalf("len %d", o.Len())
	}
}

// watching reports whether a goroutine that Open started is running.
func watching() bool {
	buf := make([]byte, 1<<20)
	return strings.Contains(string(buf[:runtime.Stack(buf, true)]), "created by github.com/moebius-js/moebius-js/allowlist.Open")
}

func TestAllowListCloseStopsTheWatcherGoroutine(t *testing.T) {
	if watching() {
		t.Fatal("a watcher is running before Open")
	}
	dir := t.TempDir()
	var mu sync.Mutex
	closed := false
	l, err := Open(dir, nil, nil, func() {
		mu.Lock()
		defer mu.Unlock()
		if closed {
			t.Error("onChange called after Close returned")
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if !watching() {
		t.Fatal("no watcher goroutine after Open")
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	closed = true
	mu.Unlock()
	if watching() {
		t.Fatal("the watcher goroutine outlived Close")
	}
	if err := l.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestAllowListReloadsEvenWhileAFileKeepsChanging(t *testing.T) {
	dir := t.TempDir()
	alice := newKey(t)
	writeCert(t, dir, "alice", alice)
	o := open(t, dir)
	stop, stopped := make(chan struct{}), make(chan struct{})
	go func() { // a file rewritten faster than the settle time, for ever
		defer close(stopped)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(settle / 3):
			}
			_ = os.WriteFile(filepath.Join(dir, ".busy"), []byte(fmt.Sprint(i)), 0o644)
		}
	}()
	defer func() { close(stop); <-stopped }()
	if err := os.Remove(filepath.Join(dir, "alice")); err != nil {
		t.Fatal(err)
	}
	o.until(t, "alice revoked while the other file keeps changing", func() bool { return !o.Allowed(alice.Public) })
}
