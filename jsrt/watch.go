package jsrt

import (
	"fmt"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
)

// DefaultSettle is how long the watcher waits after the last change to a
// watched file before it reloads.
const DefaultSettle = 150 * time.Millisecond

// Watch reloads the handlers when handlers.js or any file it required
// changes, once changes have settled for settle. It watches their
// directories, since editors save by writing a new file and renaming it over
// the old one. The returned stop ends the watcher and waits for it. Any
// goroutine.
func (h *Host) Watch(settle time.Duration) (stop func(), err error) {
	if settle <= 0 {
		settle = DefaultSettle
	}
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("watch handlers: %w", err)
	}
	wt := &watcher{h: h, fw: fw, files: map[string]bool{}, dirs: map[string]bool{}}
	if err := wt.track(); err != nil {
		fw.Close()
		return nil, err
	}
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		wt.loop(settle, quit)
	}()
	return func() {
		close(quit)
		<-done
		fw.Close()
	}, nil
}

// watcher is the state of one Watch goroutine.
type watcher struct {
	h     *Host
	fw    *fsnotify.Watcher
	files map[string]bool // absolute paths that trigger a reload
	dirs  map[string]bool // directories being watched
}

// track watches the directories of the live generation's files, and always
// the main handlers file (even when a failed load left it out).
func (wt *watcher) track() error {
	for _, f := range append(wt.h.Files(), wt.h.cfg.Handlers) {
		abs, err := filepath.Abs(f)
		if err != nil {
			return fmt.Errorf("watch %s: %w", f, err)
		}
		wt.files[abs] = true
		dir := filepath.Dir(abs)
		if wt.dirs[dir] {
			continue
		}
		if err := wt.fw.Add(dir); err != nil {
			return fmt.Errorf("watch %s: %w", dir, err)
		}
		wt.dirs[dir] = true
	}
	return nil
}

func (wt *watcher) loop(settle time.Duration, quit <-chan struct{}) {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		select {
		case <-quit:
			timer.Stop()
			return
		case ev, ok := <-wt.fw.Events:
			if !ok {
				return
			}
			if ev.Op == fsnotify.Chmod || !wt.files[filepath.Clean(ev.Name)] {
				continue
			}
			timer.Reset(settle)
		case err, ok := <-wt.fw.Errors:
			if !ok {
				return
			}
			wt.h.log.Warn("file watcher error", "error", err)
		case <-timer.C:
			if err := wt.h.Reload(); err == nil {
				if err := wt.track(); err != nil {
					wt.h.log.Warn("cannot watch a required file", "error", err)
				}
			}
		}
	}
}
