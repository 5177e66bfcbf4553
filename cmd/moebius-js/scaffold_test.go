package main

import (
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

// inDir runs fn with dir as the working folder.
func inDir(t *testing.T, dir string, fn func()) {
	t.Helper()
	wd, _ := os.Getwd()
	if err := os.Chdir(dir); err != nil {
		t.Fatal(err)
	}
	defer os.Chdir(wd)
	fn()
}

// runCmd runs the command line args as main would, in dir.
func runCmd(t *testing.T, dir string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errOut strings.Builder
	inDir(t, dir, func() { code = run(args, &out, &errOut) })
	return out.String(), errOut.String(), code
}

// Uncommenting every line of init's moebius.yaml gives serve's defaults:
// the file cannot drift from the keys serve reads.
func TestStarterSettingsUncommentedAreTheDefaults(t *testing.T) {
	for _, handlers := range []string{"handlers.js", "handlers.ts"} {
		t.Run(handlers, func(t *testing.T) {
			text := string(starterSettings(handlers))
			dir := t.TempDir()
			uncommented := regexp.MustCompile(`(?m)^# ([a-z_]+: )`).ReplaceAllString(text, "$1")
			writeFile(t, dir, "moebius.yaml", uncommented)
			got, _, err := loadIn(t, dir, nil)
			if err != nil {
				t.Fatalf("uncommented moebius.yaml refused: %v\n%s", err, uncommented)
			}
			want, _, err := loadIn(t, t.TempDir(), nil)
			if err != nil {
				t.Fatal(err)
			}
			want.Handlers = handlers
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("uncommented settings\n%+v\nare not the defaults\n%+v", got, want)
			}
			for _, k := range configKeys {
				if k.key != "metrics" && !strings.Contains(text, k.key+": ") {
					t.Errorf("moebius.yaml leaves out %s", k.key)
				}
			}
		})
	}
}

func TestInitWritesAProjectWhoseTestsPass(t *testing.T) {
	for _, tc := range []struct {
		flags []string
		files []string
	}{
		{nil, []string{"handlers.js", "handlers.test.js", "moebius.d.ts", "jsconfig.json", "moebius.yaml"}},
		{[]string{"--typescript"}, []string{"handlers.ts", "handlers.test.ts", "moebius.d.ts", "tsconfig.json", "moebius.yaml"}},
	} {
		t.Run(strings.Join(append([]string{"init"}, tc.flags...), " "), func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "app")
			out, errOut, code := runCmd(t, ".", append(append([]string{"init"}, tc.flags...), dir)...)
			if code != 0 {
				t.Fatalf("init exit %d: %s%s", code, out, errOut)
			}
			for _, f := range tc.files {
				if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
					t.Errorf("init did not write %s: %v", f, err)
				}
			}
			out, errOut, code = runCmd(t, dir, "test")
			if code != 0 || !strings.Contains(out, "0 failed") {
				t.Fatalf("test in the new project: exit %d\n%s%s", code, out, errOut)
			}
			if _, errOut, code := runCmd(t, dir, "check"); code != 0 {
				t.Fatalf("check in the new project: exit %d: %s", code, errOut)
			}
		})
	}
}

func TestInitWritesNothingOverAnExistingFile(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "handlers.test.js", "// mine\n")
	_, errOut, code := runCmd(t, dir, "init")
	if code != 1 || !strings.Contains(errOut, "handlers.test.js") {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("init wrote beside an existing file: %v", entries)
	}
}

// types replaces an older moebius.d.ts (it describes this binary) but
// keeps the author's own editor configuration.
func TestTypesReplacesTheDefinitionsAndKeepsAnExistingConfig(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "moebius.d.ts", "// old\n")
	writeFile(t, dir, "jsconfig.json", "{}\n")
	out, errOut, code := runCmd(t, dir, "types")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	dts, _ := os.ReadFile(filepath.Join(dir, "moebius.d.ts"))
	if !strings.Contains(string(dts), "declare module 'moebius'") {
		t.Fatalf("moebius.d.ts not replaced: %.80q", dts)
	}
	if cfg, _ := os.ReadFile(filepath.Join(dir, "jsconfig.json")); string(cfg) != "{}\n" {
		t.Fatalf("jsconfig.json overwritten: %q", cfg)
	}
	if strings.Contains(out, "jsconfig.json") {
		t.Fatalf("says it wrote jsconfig.json: %q", out)
	}
}

func TestTestCommandExitsByOutcome(t *testing.T) {
	pass := "const { test, assert } = require('moebius/test');\ntest('echo', (t) => { const c = t.connect('c'); c.send({command: 'echo', n: 1}); assert.deepEqual(c.take(), {command: 'echo', n: 1}); });\n"
	for _, tc := range []struct {
		name  string
		files map[string]string
		args  []string
		code  int
		want  string // regexp over stdout and stderr
	}{
		{"passing", map[string]string{"handlers.js": echoHandlers, "echo.test.js": pass}, nil, 0, `1 passed, 0 failed`},
		{"tap", map[string]string{"handlers.js": echoHandlers, "echo.test.js": pass}, []string{"--tap"}, 0, `(?s)TAP version 13.*ok 1 - echo.*1\.\.1`},
		{"failing at its line", map[string]string{"handlers.js": echoHandlers,
			"echo.test.js": strings.Replace(pass, "n: 1});", "n: 2});", 1)}, nil, 1, `FAIL  echo(?s:.*)at echo\.test\.js:2:\d+`},
		{"handlers from --handlers", map[string]string{"srv.js": echoHandlers, "echo.test.js": pass}, []string{"--handlers", "srv.js"}, 0, `handlers srv\.js`},
		{"no test files", map[string]string{"handlers.js": echoHandlers}, nil, 1, `no \*\.test\.js`},
		{"a missing path", map[string]string{"handlers.js": echoHandlers}, []string{"nowhere"}, 2, `nowhere`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, text := range tc.files {
				writeFile(t, dir, name, text)
			}
			out, errOut, code := runCmd(t, dir, append([]string{"test"}, tc.args...)...)
			if code != tc.code || !regexp.MustCompile(tc.want).MatchString(out+errOut) {
				t.Fatalf("exit %d (want %d), output does not match %q:\n%s%s", code, tc.code, tc.want, out, errOut)
			}
		})
	}
}
