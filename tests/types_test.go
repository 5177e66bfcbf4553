package tests

// The TypeScript declarations `moebius-js types` writes (moebius.d.ts, with
// a jsconfig.json or tsconfig.json), checked by TypeScript's own tsc from
// tests/interop/node (npm ci there installs it). Without node or tsc the
// tests skip, unless REQUIRE_INTEROP=1, which makes them fail.

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// tscPath is TypeScript's compiler as npm installed it in tests/interop/node.
var tscPath = sync.OnceValues(func() (string, error) {
	if _, err := exec.LookPath("node"); err != nil {
		return "", fmt.Errorf("no node on PATH (install Node.js, then npm ci in tests/%s): %w", nodeDir, err)
	}
	tsc, err := filepath.Abs(filepath.Join(nodeDir, "node_modules", ".bin", "tsc"))
	if err != nil {
		return "", err
	}
	out, err := exec.Command(tsc, "--version").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("tsc is not usable in tests/%s (run npm ci there): %s", nodeDir, nodeFailure(err, out))
	}
	if !strings.HasPrefix(string(out), "Version 5.") {
		return "", fmt.Errorf("tsc in tests/%s is %s, not TypeScript 5 (run npm ci there)", nodeDir, strings.TrimSpace(string(out)))
	}
	return tsc, nil
})

// requireTSC returns tsc's path, or skips the test when it cannot run (fails
// it if REQUIRE_INTEROP=1).
func requireTSC(t *testing.T) string {
	t.Helper()
	tsc, err := tscPath()
	if err == nil {
		return tsc
	}
	if os.Getenv("REQUIRE_INTEROP") == "1" {
		t.Fatalf("TypeScript test cannot run and REQUIRE_INTEROP=1: %v", err)
	}
	t.Skipf("skipping TypeScript test: %v (REQUIRE_INTEROP=1 turns this skip into a failure)", err)
	return ""
}

// typesDir is a fresh directory holding what `moebius-js types` writes there:
// moebius.d.ts and jsconfig.json, or tsconfig.json with --typescript.
func typesDir(t *testing.T, typescript bool) string {
	t.Helper()
	dir := t.TempDir()
	args := []string{"types"}
	config := "jsconfig.json"
	if typescript {
		args = append(args, "--typescript")
		config = "tsconfig.json"
	}
	stdout, stderr, code := runCLI(t, append(args, dir)...)
	if code != 0 {
		t.Fatalf("moebius-js %s %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), dir, code, stdout, stderr)
	}
	for _, name := range []string{"moebius.d.ts", config} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Fatalf("moebius-js %s did not write %s: %v", strings.Join(args, " "), name, err)
		}
	}
	return dir
}

// copyFile copies the file at src into dir, under its own name.
func copyFile(t *testing.T, src, dir string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, filepath.Base(src)), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// runTSC runs tsc -p config (a file in dir) with dir as its working
// directory, so that it names files relative to it. It returns tsc's output
// and exit code.
func runTSC(t *testing.T, tsc, dir, config string, flags ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(tsc, append([]string{"--noEmit", "--pretty", "false", "-p", config}, flags...)...)
	cmd.Dir = dir
	cmd.WaitDelay = 5 * time.Second
	timer := time.AfterFunc(2*time.Minute, func() { _ = cmd.Process.Kill() })
	out, err := cmd.CombinedOutput()
	timer.Stop()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		return string(out), exit.ExitCode()
	case err != nil:
		t.Fatalf("tsc: %v\n%s", err, out)
	}
	return string(out), 0
}

// tscError is one line of tsc's --pretty false output: file(line,col): error TSn: text.
var tscError = regexp.MustCompile(`(?m)^(\S+)\((\d+),(\d+)\): error TS\d+: .*$`)

func TestTypesCheckTheExampleHandlers(t *testing.T) {
	tsc := requireTSC(t)
	dir := typesDir(t, false)
	files := []string{filepath.Join("..", "handlers.js")}
	examples, err := filepath.Glob(filepath.Join("..", "examples", "*.js"))
	if err != nil || len(examples) == 0 {
		t.Fatalf("no examples/*.js: %v", err)
	}
	files = append(files, examples...)
	for _, f := range files {
		copyFile(t, f, dir)
	}
	out, code := runTSC(t, tsc, dir, "jsconfig.json", "--listFiles")
	if code != 0 {
		t.Fatalf("tsc found errors in the example handlers (exit %d):\n%s", code, out)
	}
	// Every file was checked: the configuration's include found them all.
	listed := map[string]bool{}
	for _, l := range strings.Split(out, "\n") {
		listed[filepath.Base(strings.TrimSpace(l))] = true
	}
	for _, f := range append(files, "moebius.d.ts") {
		if !listed[filepath.Base(f)] {
			t.Errorf("tsc did not check %s; it listed:\n%s", filepath.Base(f), out)
		}
	}
}

// TestTypesRejectAWrongHandlersFile checks that the types are not loose
// enough to let mistakes through: tsc must report an error on every line of
// testdata/types/wrong.js whose comment starts with "tsc:", and on no other.
func TestTypesRejectAWrongHandlersFile(t *testing.T) {
	tsc := requireTSC(t)
	dir := typesDir(t, false)
	src := filepath.Join("testdata", "types", "wrong.js")
	copyFile(t, src, dir)
	want := markedLines(t, src)
	if len(want) < 10 {
		t.Fatalf("%s marks %d mistakes; expected a dozen or more", src, len(want))
	}

	out, code := runTSC(t, tsc, dir, "jsconfig.json")
	if code == 0 {
		t.Fatalf("tsc accepted %s:\n%s", src, out)
	}
	got := map[int]bool{}
	for _, m := range tscError.FindAllStringSubmatch(out, -1) {
		if m[1] != "wrong.js" {
			t.Errorf("tsc reports an error outside wrong.js: %s", m[0])
			continue
		}
		line, _ := strconv.Atoi(m[2])
		got[line] = true
		if _, ok := want[line]; !ok {
			t.Errorf("tsc reports an error on wrong.js line %d, which has no mistake: %s", line, m[0])
		}
	}
	var lines []int
	for line := range want {
		lines = append(lines, line)
	}
	sort.Ints(lines)
	for _, line := range lines {
		if !got[line] {
			t.Errorf("tsc missed the mistake on wrong.js line %d (%s)", line, want[line])
		}
	}
	if t.Failed() {
		t.Logf("tsc output:\n%s", out)
	}
}

// markedLines returns the 1-based numbers of the lines of the file at path
// that carry a "// tsc: what is wrong" comment after their code, with what
// the comment says.
func markedLines(t *testing.T, path string) map[int]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	marks := map[int]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		code, comment, ok := strings.Cut(sc.Text(), "// tsc: ")
		if ok && strings.TrimSpace(code) != "" {
			marks[n] = comment
		}
	}
	return marks
}

// TestTypesCheckTheStarterProjects checks what `moebius-js init` writes,
// in JavaScript and in TypeScript, against the types it writes with it.
func TestTypesCheckTheStarterProjects(t *testing.T) {
	tsc := requireTSC(t)
	for _, tc := range []struct {
		name, config string
		flags        []string
	}{
		{"javascript", "jsconfig.json", nil},
		{"typescript", "tsconfig.json", []string{"--typescript"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			args := append(append([]string{"init"}, tc.flags...), dir)
			if stdout, stderr, code := runCLI(t, args...); code != 0 {
				t.Fatalf("moebius-js %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, stdout, stderr)
			}
			if out, code := runTSC(t, tsc, dir, tc.config); code != 0 {
				t.Fatalf("tsc found errors in the starter project (exit %d):\n%s", code, out)
			}
		})
	}
}

func TestTypesCheckATypeScriptHandlersFile(t *testing.T) {
	tsc := requireTSC(t)
	dir := typesDir(t, true)
	for _, f := range []string{"handlers.ts", "handlers.test.ts"} {
		copyFile(t, filepath.Join("testdata", "types", f), dir)
	}
	out, code := runTSC(t, tsc, dir, "tsconfig.json", "--listFiles")
	if code != 0 {
		t.Fatalf("tsc found errors in testdata/types/handlers.ts or handlers.test.ts (exit %d):\n%s", code, out)
	}
	for _, f := range []string{"handlers.ts", "handlers.test.ts", "moebius.d.ts"} {
		if !strings.Contains(out, "/"+f+"\n") {
			t.Errorf("tsc did not check %s; it listed:\n%s", f, out)
		}
	}
}
