// Package scaffold holds the files moebius-js writes into a handler
// author's folder, and writes them: the type definitions (moebius.d.ts)
// with an editor configuration (`moebius-js types`), and a starter project
// (`moebius-js init`). The files are embedded in the binary.
//
// It knows nothing of running handlers, nor of the server's settings:
// init's moebius.yaml is made by the caller (cmd), which owns the keys.
// Every function may be called from any goroutine.
package scaffold

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

//go:embed moebius.d.ts jsconfig.json tsconfig.json starter
var files embed.FS

// TypesFile is the name of the type definitions file.
const TypesFile = "moebius.d.ts"

// Handlers is the starter handlers file's name: handlers.js, or
// handlers.ts for a TypeScript folder.
func Handlers(typescript bool) string {
	if typescript {
		return "handlers.ts"
	}
	return "handlers.js"
}

// editorConfig is the editor's project file: jsconfig.json (checkJs over
// plain JavaScript) or tsconfig.json.
func editorConfig(typescript bool) string {
	if typescript {
		return "tsconfig.json"
	}
	return "jsconfig.json"
}

// Types writes moebius.d.ts into dir (replacing an older one: it describes
// this binary's API) and the editor's project file when dir has none (one
// there is the author's). It returns the paths it wrote.
func Types(dir string, typescript bool) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("types: %w", err)
	}
	var wrote []string
	dts := filepath.Join(dir, TypesFile)
	if err := os.WriteFile(dts, mustRead(TypesFile), 0o644); err != nil {
		return nil, fmt.Errorf("types: %w", err)
	}
	wrote = append(wrote, dts)
	name := editorConfig(typescript)
	path := filepath.Join(dir, name)
	switch err := writeNew(path, mustRead(name)); {
	case err == nil:
		wrote = append(wrote, path)
	case !errors.Is(err, fs.ErrExist):
		return wrote, fmt.Errorf("types: %w", err)
	}
	return wrote, nil
}

// Init writes a starter project into dir: handlers.js (or .ts), its test
// file, moebius.d.ts, the editor's project file and settings as
// moebius.yaml. It writes nothing when one of those files is already
// there, and says which.
func Init(dir string, typescript bool, settings []byte) ([]string, error) {
	h := Handlers(typescript)
	test := h[:len(h)-len(filepath.Ext(h))] + ".test" + filepath.Ext(h)
	want := []struct {
		name string
		data []byte
	}{
		{h, mustRead("starter/" + h)},
		{test, starterTests(typescript)},
		{TypesFile, mustRead(TypesFile)},
		{editorConfig(typescript), mustRead(editorConfig(typescript))},
		{"moebius.yaml", settings},
	}
	var there []string
	for _, f := range want {
		if _, err := os.Lstat(filepath.Join(dir, f.name)); err == nil {
			there = append(there, f.name)
		}
	}
	if len(there) > 0 {
		return nil, fmt.Errorf("init: %s already has %q; nothing was written", dir, there)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("init: %w", err)
	}
	var wrote []string
	for _, f := range want {
		path := filepath.Join(dir, f.name)
		if err := writeNew(path, f.data); err != nil {
			return wrote, fmt.Errorf("init: %w", err)
		}
		wrote = append(wrote, path)
	}
	return wrote, nil
}

// starterTests is the starter's test file: handlers.test.js, or for
// TypeScript the same tests importing the kit and naming the .ts files.
func starterTests(typescript bool) []byte {
	js := mustRead("starter/handlers.test.js")
	if !typescript {
		return js
	}
	return []byte(strings.NewReplacer(
		"handlers.test.js", "handlers.test.ts",
		"handlers.js", "handlers.ts",
		"const { test, assert } = require('moebius/test');", "import { test, assert } from 'moebius/test';",
	).Replace(string(js)))
}

// writeNew writes a file that must not exist yet.
func writeNew(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func mustRead(name string) []byte {
	b, err := files.ReadFile(name)
	if err != nil {
		panic(err) // embedded at build time
	}
	return b
}
