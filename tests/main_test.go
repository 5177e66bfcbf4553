// Package tests holds end-to-end tests: they build the real moebius-js
// binary, start it on a free port and talk to it over real ZeroMQ sockets.
package tests

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// moebiusBin is the moebius-js executable built for this test run (with
// the race detector when the tests run with it), and buildDir where it
// lives. MOEBIUS_BIN names another executable to test instead, for
// instance a build of an older commit, to watch a test fail there.
var moebiusBin, buildDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "moebius-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	buildDir = dir
	moebiusBin = os.Getenv("MOEBIUS_BIN")
	if moebiusBin == "" {
		moebiusBin = filepath.Join(dir, "moebius-js")
		if err := buildBinary(moebiusBin, raceEnabled); err != nil {
			fmt.Fprintln(os.Stderr, "building moebius-js:", err)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// buildBinary builds the moebius-js command into path.
func buildBinary(path string, race bool) error {
	args := []string{"build", "-o", path}
	if race {
		args = append(args, "-race") // the server under test is checked for races too
	}
	build := exec.Command("go", append(args, "../cmd/moebius-js")...)
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	return build.Run()
}

// plainBin is moebius-js built without the race detector, for the tests
// that measure the server's memory (the detector's shadow memory would
// swamp it) or push a load through it that a race build takes minutes
// for. It is moebiusBin when that has no race detector.
var plainBin = sync.OnceValues(func() (string, error) {
	if !raceEnabled || os.Getenv("MOEBIUS_BIN") != "" {
		return moebiusBin, nil
	}
	path := filepath.Join(buildDir, "moebius-js-plain")
	return path, buildBinary(path, false)
})
