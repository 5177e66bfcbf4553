package testkit

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/dop251/goja"

	"github.com/moebius-js/moebius-js/transpile"
)

// Options say how Run runs test files.
type Options struct {
	// Handlers is the handlers file of a test file with none of its own
	// (foo.test.js tests foo.js, or foo.ts, when one is beside it).
	Handlers   string
	StepBudget time.Duration // as Config's
	QueueLimit int
	TAP        bool      // report as TAP version 13 instead of a listing
	Out        io.Writer // where the report goes
}

// Summary counts what a run's tests came to.
type Summary struct{ Passed, Failed, Skipped int }

// Find expands paths into the test files to run: a file as it is, a
// folder into every *.test.js and *.test.ts under it (node_modules and
// dot-folders left out), in order, each file once.
func Find(paths []string) ([]string, error) {
	var files []string
	seen := map[string]bool{}
	add := func(path string) {
		if !seen[filepath.Clean(path)] {
			seen[filepath.Clean(path)] = true
			files = append(files, path)
		}
	}
	for _, p := range paths {
		info, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("test files: %w", err)
		}
		if !info.IsDir() {
			add(p)
			continue
		}
		var found []string
		err = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			name := d.Name()
			if d.IsDir() {
				if path != p && (name == "node_modules" || strings.HasPrefix(name, ".")) {
					return filepath.SkipDir
				}
				return nil
			}
			if IsTestFile(name) {
				found = append(found, path)
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("test files: %w", err)
		}
		slices.Sort(found)
		for _, f := range found {
			add(f)
		}
	}
	return files, nil
}

// IsTestFile reports whether name is a test file's: *.test.js or
// *.test.ts.
func IsTestFile(name string) bool {
	return strings.HasSuffix(name, ".test.js") || strings.HasSuffix(name, ".test.ts")
}

// HandlersFor returns the handlers file that the test file tests: foo.js
// or foo.ts beside foo.test.js (or .ts) when there is one, else fallback.
func HandlersFor(testFile, fallback string) string {
	if !IsTestFile(testFile) {
		return fallback
	}
	base := strings.TrimSuffix(testFile, filepath.Ext(testFile))
	base = strings.TrimSuffix(base, ".test")
	for _, ext := range []string{".js", ".ts"} {
		if info, err := os.Stat(base + ext); err == nil && !info.IsDir() {
			return base + ext
		}
	}
	return fallback
}

// result is how one test (or the loading of a file) ended.
type result struct {
	name    string
	skipped bool
	failure string   // "" when it passed
	at      string   // file:line:col of the failure in the test file, when known
	logs    []string // the server's warnings and errors, for a failure
	took    time.Duration
}

// Run runs every test of files, each on a fresh Sim, and reports to
// opts.Out as it goes. Driver goroutine: it is the driver of every Sim it
// makes.
func Run(files []string, opts Options) Summary {
	rep := reporter{w: opts.Out, tap: opts.TAP}
	rep.start()
	var sum Summary
	for _, f := range files {
		handlers := HandlersFor(f, opts.Handlers)
		rep.file(f, handlers)
		for _, r := range runFile(f, handlers, opts) {
			switch {
			case r.skipped:
				sum.Skipped++
			case r.failure != "":
				sum.Failed++
			default:
				sum.Passed++
			}
			rep.result(r)
		}
	}
	rep.end(sum)
	return sum
}

// runFile loads one test file and runs its tests.
func runFile(path, handlers string, opts Options) []result {
	fr, err := newFileRuntime(opts.Out)
	if err != nil {
		return []result{{name: "load " + path, failure: err.Error()}}
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return []result{{name: "load " + path, failure: err.Error()}}
	}
	if _, err := fr.require(abs); err != nil {
		r := result{name: "load " + path}
		r.failure, r.at = explain(err)
		return []result{r}
	}
	if len(fr.tests) == 0 {
		return []result{{name: path, failure: "the file declares no tests (test(name, fn) from require('moebius/test'))"}}
	}
	out := make([]result, 0, len(fr.tests))
	for _, t := range fr.tests {
		if t.skip {
			out = append(out, result{name: t.name, skipped: true})
			continue
		}
		out = append(out, fr.runTest(t, handlers, opts))
	}
	return out
}

// require loads the test file as a CommonJS module.
func (fr *fileRuntime) require(abs string) (goja.Value, error) {
	req, ok := goja.AssertFunction(fr.vm.Get("require"))
	if !ok {
		return nil, errors.New("require is not installed")
	}
	return req(goja.Undefined(), fr.vm.ToValue(abs))
}

// runTest runs one test on a fresh Sim over handlers.
func (fr *fileRuntime) runTest(t registered, handlers string, opts Options) result {
	began := time.Now()
	r := result{name: t.name}
	sim, err := New(Config{Handlers: handlers, StepBudget: opts.StepBudget, QueueLimit: opts.QueueLimit})
	if err != nil {
		r.failure = "the handlers did not load: " + err.Error()
		return r
	}
	defer sim.Close()
	ctx, err := fr.context(goja.Undefined(), (&simBinding{vm: fr.vm, sim: sim}).object())
	if err == nil {
		var ret goja.Value
		ret, err = t.fn(goja.Undefined(), ctx)
		if err == nil && isIterator(fr.vm, ret) {
			err = errors.New("the test function is a generator, so its body never ran: write function (t) { … }; each t and client call already waits for the server")
		}
	}
	if err != nil {
		r.failure, r.at = explain(err)
		for _, l := range sim.Logs() {
			if strings.Contains(l, "level=WARN") || strings.Contains(l, "level=ERROR") {
				r.logs = append(r.logs, l)
			}
		}
	}
	r.took = time.Since(began)
	return r
}

func isIterator(vm *goja.Runtime, v goja.Value) bool {
	o, ok := v.(*goja.Object)
	if !ok {
		return false
	}
	_, next := goja.AssertFunction(o.Get("next"))
	return next && o.GetSymbol(goja.SymIterator) != nil
}

// explain renders a failure: the error's own text (an AssertionError's
// message, say), and where in a test file it was thrown.
func explain(err error) (msg, at string) {
	var syn *transpile.Error
	if errors.As(err, &syn) { // a test file that does not parse
		return "SyntaxError: " + syn.Message, fmt.Sprintf("%s:%d:%d", relative(syn.File), syn.Line, syn.Column)
	}
	var ex *goja.Exception
	if !errors.As(err, &ex) {
		return err.Error(), ""
	}
	msg = ex.Value().String()
	for _, f := range ex.Stack() {
		name := f.SrcName()
		if name == "<native>" || name == kitName || name == "" {
			continue
		}
		p := f.Position()
		at = fmt.Sprintf("%s:%d:%d", relative(p.Filename), p.Line, p.Column)
		break
	}
	return msg, at
}

// relative shows path from the working folder when it is under it.
func relative(path string) string {
	wd, err := os.Getwd()
	if err != nil {
		return path
	}
	if rel, err := filepath.Rel(wd, path); err == nil && !strings.HasPrefix(rel, "..") {
		return rel
	}
	return path
}

// reporter writes a run's report as a listing or as TAP.
type reporter struct {
	w   io.Writer
	tap bool
	n   int
}

func (r *reporter) start() {
	if r.tap {
		fmt.Fprintln(r.w, "TAP version 13")
	}
}

func (r *reporter) file(path, handlers string) {
	if r.tap {
		fmt.Fprintf(r.w, "# %s (handlers %s)\n", path, handlers)
		return
	}
	fmt.Fprintf(r.w, "%s (handlers %s)\n", path, handlers)
}

func (r *reporter) result(res result) {
	r.n++
	if r.tap {
		r.tapResult(res)
		return
	}
	switch {
	case res.skipped:
		fmt.Fprintf(r.w, "  skip  %s\n", res.name)
	case res.failure == "":
		fmt.Fprintf(r.w, "  ok    %s (%s)\n", res.name, res.took.Round(time.Millisecond))
	default:
		fmt.Fprintf(r.w, "  FAIL  %s\n", res.name)
		for _, l := range strings.Split(res.failure, "\n") {
			fmt.Fprintf(r.w, "        %s\n", l)
		}
		if res.at != "" {
			fmt.Fprintf(r.w, "        at %s\n", res.at)
		}
		for _, l := range res.logs {
			fmt.Fprintf(r.w, "        server: %s\n", l)
		}
	}
}

func (r *reporter) tapResult(res result) {
	// A description is one line, and a '#' in it would start a directive.
	res.name = strings.ReplaceAll(strings.ReplaceAll(res.name, "\n", " "), "#", "\\#")
	switch {
	case res.skipped:
		fmt.Fprintf(r.w, "ok %d - %s # SKIP\n", r.n, res.name)
	case res.failure == "":
		fmt.Fprintf(r.w, "ok %d - %s\n", r.n, res.name)
	default:
		fmt.Fprintf(r.w, "not ok %d - %s\n  ---\n  message: %s\n", r.n, res.name, quote(res.failure))
		if res.at != "" {
			fmt.Fprintf(r.w, "  at: %s\n", quote(res.at))
		}
		if len(res.logs) > 0 {
			fmt.Fprintln(r.w, "  server:")
			for _, l := range res.logs {
				fmt.Fprintf(r.w, "    - %s\n", quote(l))
			}
		}
		fmt.Fprintln(r.w, "  ...")
	}
}

// quote writes s as a YAML scalar (JSON's quoting is valid YAML).
func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func (r *reporter) end(sum Summary) {
	if r.tap {
		fmt.Fprintf(r.w, "1..%d\n", r.n)
		fmt.Fprintf(r.w, "# %d passed, %d failed, %d skipped\n", sum.Passed, sum.Failed, sum.Skipped)
		return
	}
	fmt.Fprintf(r.w, "\n%d tests: %d passed, %d failed, %d skipped\n", sum.Passed+sum.Failed+sum.Skipped, sum.Passed, sum.Failed, sum.Skipped)
}
