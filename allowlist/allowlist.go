// Package allowlist is the CURVE allow-list: which client public keys may
// connect to a CURVE endpoint.
//
// It owns the set of allowed keys: those given in the configuration and
// those of the CZMQ public certificates in a folder, which it watches and
// reloads when a file is added, changed or removed. It tells its owner
// that the set changed (so the owner can drop clients whose key left it)
// but knows nothing of sockets, connections, handlers or JavaScript: the
// transport asks Allowed during a handshake, and decides what to do with
// the connections when the set changes.
package allowlist

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/moebius-js/moebius-js/curve"
)

// settle is how long the watcher waits after the last change in the
// folder before it reloads, so that a burst of events (a file written in
// several steps, a folder of files copied at once) is one reload.
const settle = 75 * time.Millisecond

// maxSettle bounds how long events can put a reload off.
const maxSettle = time.Second

// List is the allow-list. Allowed and Len may be called from any
// goroutine; Open starts one goroutine watching the folder, which Close
// stops.
type List struct {
	dir      string
	fixed    []curve.Key // from the configuration: always allowed
	log      *slog.Logger
	onChange func()

	// keys is the current set, an immutable map replaced whole on each
	// reload: the key, and the file in dir that holds it ("" for a key
	// from the configuration).
	keys atomic.Pointer[map[curve.Key]string]

	fw        *fsnotify.Watcher
	quit      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

// Open makes the list of keys and, when dir is not "", of the public
// certificates in dir (files whose name starts with a dot or ends in
// curve.SecretSuffix are not read; a file that is not a certificate is
// logged at WARN and skipped). It fails when dir cannot be read.
//
// The folder is watched: after each change it is read again, the reload
// is logged at INFO, and onChange (when not nil) is called if the set of
// keys changed. onChange runs on the watcher goroutine, one call at a
// time; it must not call Close. When the folder cannot be read (removed,
// permissions), the previous keys stay and a WARN says why; the folder is
// read again when it comes back. A file that is still there but no longer
// parses (half-written, say) keeps the key it held until it is removed or
// holds another key, so that rewriting a certificate in place does not
// revoke its key for a moment.
func Open(dir string, keys []curve.Key, log *slog.Logger, onChange func()) (*List, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	l := &List{dir: dir, fixed: keys, log: log, onChange: onChange}
	if dir == "" {
		set := make(map[curve.Key]string, len(keys))
		l.addFixed(set)
		l.keys.Store(&set)
		return l, nil
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("curve allow-list %s: %w", dir, err)
	}
	l.dir = abs
	set, err := l.load(nil)
	if err != nil {
		return nil, err
	}
	l.keys.Store(&set)

	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("curve allow-list: watch %s: %w", dir, err)
	}
	if err := fw.Add(l.dir); err != nil {
		_ = fw.Close()
		return nil, fmt.Errorf("curve allow-list: watch %s: %w", dir, err)
	}
	// The parent too, to see the folder come back after it was removed
	// or replaced. Not being able to is no reason to fail.
	if parent := filepath.Dir(l.dir); parent != l.dir {
		if err := fw.Add(parent); err != nil {
			log.Debug("curve allow-list: cannot watch the folder's parent", "folder", l.dir, "error", err)
		}
	}
	l.fw = fw
	l.quit, l.done = make(chan struct{}), make(chan struct{})
	go l.watch()
	return l, nil
}

// Allowed reports whether a client with long-term public key k may
// connect. Any goroutine; it takes no lock.
func (l *List) Allowed(k curve.Key) bool {
	_, ok := (*l.keys.Load())[k]
	return ok
}

// Len is the number of keys allowed. Any goroutine.
func (l *List) Len() int { return len(*l.keys.Load()) }

// Close stops watching the folder and waits for the watcher goroutine to
// end; onChange is not called once Close has returned. The list keeps
// answering Allowed with the last set. Any goroutine, any number of times.
func (l *List) Close() error {
	var err error
	l.closeOnce.Do(func() {
		if l.fw == nil {
			return
		}
		close(l.quit)
		<-l.done
		err = l.fw.Close()
	})
	return err
}

func (l *List) addFixed(set map[curve.Key]string) {
	for _, k := range l.fixed {
		set[k] = ""
	}
}

// load reads the folder into a new set. prev, the set in force, gives the
// keys of files that are still there but did not parse this time.
func (l *List) load(prev map[curve.Key]string) (map[curve.Key]string, error) {
	found, skipped, err := curve.LoadKeyDir(l.dir)
	if err != nil {
		return nil, fmt.Errorf("curve allow-list: %w", err)
	}
	for _, e := range skipped {
		l.log.Warn("curve allow-list: skipped a file that is not a public certificate", "folder", l.dir, "error", e)
	}
	set := make(map[curve.Key]string, len(found)+len(l.fixed))
	files := make(map[string]bool, len(found))
	for k, name := range found {
		set[k] = name
		files[name] = true
	}
	for k, name := range prev {
		if name == "" || files[name] {
			continue
		}
		if _, err := os.Stat(filepath.Join(l.dir, name)); err == nil {
			l.log.Warn("curve allow-list: a certificate no longer reads; keeping the key it held", "file", name, "key", k.String())
			set[k] = name
		}
	}
	l.addFixed(set)
	return set, nil
}

// watch is the watcher goroutine: it reloads once events have settled,
// and at most maxSettle after the first of them, so that a file written
// again and again cannot hold a revocation back.
func (l *List) watch() {
	defer close(l.done)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	var first time.Time // of the events not yet read; zero: none
	pending := func() {
		now := time.Now()
		if first.IsZero() {
			first = now
		}
		timer.Reset(min(settle, first.Add(maxSettle).Sub(now)))
	}
	for {
		select {
		case <-l.quit:
			timer.Stop()
			return
		case ev, ok := <-l.fw.Events:
			if !ok {
				return
			}
			// In the parent, only the folder itself matters.
			if filepath.Dir(ev.Name) != l.dir && ev.Name != l.dir {
				continue
			}
			pending()
		case err, ok := <-l.fw.Errors:
			if !ok {
				return
			}
			l.log.Warn("curve allow-list: folder watcher error", "folder", l.dir, "error", err)
			pending() // events may have been lost: read again
		case <-timer.C:
			first = time.Time{}
			l.reload()
		}
	}
}

// reload reads the folder again and publishes the new set.
func (l *List) reload() {
	// (Re)watch the folder first, so that nothing written after the read
	// goes unseen: a no-op when it is watched already, and what picks it
	// up again after it was removed and made anew.
	if err := l.fw.Add(l.dir); err != nil {
		l.log.Debug("curve allow-list: cannot watch the folder", "folder", l.dir, "error", err)
	}
	prev := *l.keys.Load()
	set, err := l.load(prev)
	if err != nil {
		msg := "curve allow-list: cannot read the folder; keeping the previous keys"
		if errors.Is(err, os.ErrNotExist) {
			msg = "curve allow-list: the folder is gone; keeping the previous keys"
		}
		l.log.Warn(msg, "folder", l.dir, "keys", len(prev), "error", err)
		return
	}
	added, removed := 0, 0
	for k := range set {
		if _, ok := prev[k]; !ok {
			added++
		}
	}
	for k := range prev {
		if _, ok := set[k]; !ok {
			removed++
		}
	}
	l.keys.Store(&set) // the same keys may be in other files now
	if added == 0 && removed == 0 {
		l.log.Debug("curve allow-list reloaded, unchanged", "folder", l.dir, "keys", len(set))
		return
	}
	l.log.Info("curve allow-list reloaded", "folder", l.dir, "keys", len(set), "added", added, "removed", removed)
	if l.onChange != nil {
		l.onChange()
	}
}
