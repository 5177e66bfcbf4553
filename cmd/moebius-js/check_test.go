package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// checkIn runs `moebius-js check args...` inside dir with env as the
// whole environment.
func checkIn(t *testing.T, dir string, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	wd, _ := os.Getwd()
	if err := os.Chdir(dir); err != nil {
		t.Fatal(err)
	}
	defer os.Chdir(wd)
	var out, errOut strings.Builder
	code = runCheck(args, &out, &errOut, func() []string { return env })
	return out.String(), errOut.String(), code
}

func writeFile(t *testing.T, dir, name, text string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

const echoHandlers = "module.exports = { rules: [{ command: 'echo', handler: (c, d) => c.send(d) }] };\n"

// serve loads a file that opens a dealer() at its top level (the dealer
// connects in the background); check must accept it too, without
// connecting anywhere.
func TestCheckAcceptsADealerOpenedAtTopLevel(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "up.js", `
const { dealer } = require('moebius');
const up = dealer('tcp://127.0.0.1:1', { identity: 'me' });
up.send('hello');
module.exports = { rules: [{ command: 'echo', handler: (c, d) => c.send(d) }] };
`)
	out, errOut, code := checkIn(t, dir, nil, "up.js")
	if code != 0 || !strings.Contains(out, "up.js: ok") {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}

// What serve's Dial refuses (a malformed endpoint), check refuses too.
func TestCheckRefusesADealerWithABadEndpoint(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "up.js", "const { dealer } = require('moebius');\nconst up = dealer('http://x');\nmodule.exports = { rules: [] };\n")
	_, errOut, code := checkIn(t, dir, nil, "up.js")
	if code != 1 || !strings.Contains(errOut, "http://x") {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
}

func TestCheckReadsHandlersFromTheConfiguration(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "app.js", echoHandlers)
	writeFile(t, dir, "other.js", echoHandlers)
	writeFile(t, dir, "env.js", echoHandlers)
	writeFile(t, dir, "broken.js", "module.exports = {\n")
	writeFile(t, dir, "moebius.yaml", "handlers: app.js\n")
	writeFile(t, dir, "alt.yaml", "handlers: other.js\n")

	for _, tc := range []struct {
		name string
		env  []string
		args []string
		want string
	}{
		{"moebius.yaml", nil, nil, "app.js: ok"},
		{"--config", nil, []string{"--config", "alt.yaml"}, "other.js: ok"},
		{"environment", []string{"MOEBIUS_HANDLERS=env.js"}, nil, "env.js: ok"},
		{"argument wins", []string{"MOEBIUS_HANDLERS=broken.js"}, []string{"--config", "alt.yaml", "env.js"}, "env.js: ok"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code := checkIn(t, dir, tc.env, tc.args...)
			if code != 0 || !strings.Contains(out, tc.want) {
				t.Fatalf("exit %d, stdout %q, stderr %q; want %q", code, out, errOut, tc.want)
			}
		})
	}
}

func TestCheckReportsABrokenFileAndABadConfiguration(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "broken.js", "module.exports = {\n  rules: [\n    { command: 'x', handler: (c) => c.send( },\n  ],\n};\n")
	writeFile(t, dir, "moebius.yaml", "handlers: broken.js\n")
	if _, errOut, code := checkIn(t, dir, nil); code != 1 || !strings.Contains(errOut, "broken.js:3:") {
		t.Fatalf("broken file: exit %d, stderr %q", code, errOut)
	}
	writeFile(t, dir, "moebius.yaml", "handlers: broken.js\nhandshake_timeout: 5\n")
	if _, errOut, code := checkIn(t, dir, nil); code != 2 || !strings.Contains(errOut, "handshake_timeout") {
		t.Fatalf("bad configuration: exit %d, stderr %q", code, errOut)
	}
	writeFile(t, dir, "moebius.yaml", "handlers: broken.js\n")
	if _, errOut, code := checkIn(t, dir, nil, "a.js", "b.js"); code != 2 || !strings.Contains(errOut, "one handlers file") {
		t.Fatalf("two files: exit %d, stderr %q", code, errOut)
	}
}

// With no configuration at all, check looks at ./handlers.js, as serve does.
func TestCheckDefaultsToHandlersJS(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "handlers.js", echoHandlers)
	if out, errOut, code := checkIn(t, dir, nil); code != 0 || !strings.Contains(out, "handlers.js: ok") {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}
