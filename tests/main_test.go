// Package tests holds end-to-end tests: they build the real moebius-js
// binary, start it on a free port and talk to it over real ZeroMQ sockets.
package tests

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// moebiusBin is the moebius-js executable built for this test run.
var moebiusBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "moebius-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	moebiusBin = filepath.Join(dir, "moebius-js")
	args := []string{"build", "-o", moebiusBin}
	if raceEnabled {
		args = append(args, "-race") // the server under test is checked for races too
	}
	build := exec.Command("go", append(args, "../cmd/moebius-js")...)
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building moebius-js:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
