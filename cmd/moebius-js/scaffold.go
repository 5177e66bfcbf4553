package main

import (
	"encoding/json"
	"fmt"
	"io"
	"reflect"
	"strings"

	"github.com/spf13/pflag"

	"github.com/moebius-js/moebius-js/scaffold"
)

const typesAbout = "Writes moebius.d.ts, the types of require('moebius'), the client, the exports of handlers.js and\n" +
	"require('moebius/test'), into DIR (default the current folder), replacing an older one, and\n" +
	"jsconfig.json (with --typescript, tsconfig.json) unless DIR has one, so that an editor completes\n" +
	"and checks a plain handlers.js. Type errors are the editor's and tsc's business: the server\n" +
	"never checks types."

const initAbout = "Writes a starter project into DIR (default the current folder): handlers.js and\n" +
	"handlers.test.js (with --typescript, handlers.ts and handlers.test.ts), moebius.d.ts,\n" +
	"jsconfig.json (tsconfig.json) and moebius.yaml with every setting at its default, commented.\n" +
	"`moebius-js test` run in DIR then passes. Writes nothing if any of those files exists."

// typescriptFlag is the --typescript flag of types and init.
func typescriptFlag(fs *pflag.FlagSet) {
	fs.Bool("typescript", false, "a TypeScript folder: tsconfig.json (and, for init, handlers.ts)")
}

// folderArgs parses the flags of types or init and returns their folder
// and --typescript.
func folderArgs(name string, args []string, stdout, stderr io.Writer) (dir string, typescript bool, code int, done bool) {
	fs := pflag.NewFlagSet(name, pflag.ContinueOnError)
	typescriptFlag(fs)
	if code, done := parseFlags(fs, args, stdout, stderr); done {
		return "", false, code, true
	}
	if fs.NArg() > 1 {
		return "", false, usageError(stderr, name, "takes one folder, got %q", fs.Args()), true
	}
	dir = "."
	if fs.NArg() == 1 {
		dir = fs.Arg(0)
	}
	typescript, _ = fs.GetBool("typescript")
	return dir, typescript, 0, false
}

// typesCmd is `moebius-js types`.
func typesCmd(args []string, stdout, stderr io.Writer) int {
	dir, ts, code, done := folderArgs("types", args, stdout, stderr)
	if done {
		return code
	}
	wrote, err := scaffold.Types(dir, ts)
	for _, p := range wrote {
		fmt.Fprintf(stdout, "wrote %s\n", p)
	}
	if err != nil {
		fmt.Fprintf(stderr, "moebius-js %v\n", err)
		return 1
	}
	return 0
}

// initCmd is `moebius-js init`.
func initCmd(args []string, stdout, stderr io.Writer) int {
	dir, ts, code, done := folderArgs("init", args, stdout, stderr)
	if done {
		return code
	}
	wrote, err := scaffold.Init(dir, ts, starterSettings(scaffold.Handlers(ts)))
	for _, p := range wrote {
		fmt.Fprintf(stdout, "wrote %s\n", p)
	}
	if err != nil {
		fmt.Fprintf(stderr, "moebius-js %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "\nNext: cd %s && moebius-js test && moebius-js serve\n", dir)
	return 0
}

// starterSettings is init's moebius.yaml: every setting with its help and
// its default, commented out (handlers set when it is not the default).
// Made from configKeys, so it cannot drift from what serve reads.
func starterSettings(handlers string) []byte {
	var b strings.Builder
	b.WriteString("# moebius-js settings. Each is shown at its default, commented out: uncomment a line to\n")
	b.WriteString("# change it. MOEBIUS_<KEY> environment variables and --<key> flags override this file;\n")
	b.WriteString("# `moebius-js config` shows what they add up to and where each value came from.\n")
	for _, k := range configKeys {
		if k.key == "metrics" {
			continue // the old name of admin
		}
		fmt.Fprintf(&b, "\n# %s\n", k.help)
		if k.key == "handlers" && handlers != k.def {
			fmt.Fprintf(&b, "%s: %s\n", k.key, yamlValue(k.key, handlers))
			continue
		}
		fmt.Fprintf(&b, "# %s: %s\n", k.key, yamlValue(k.key, k.def))
	}
	return []byte(b.String())
}

// yamlValue writes a default as YAML of the key's type: a list in
// brackets, strings quoted (JSON's quoting is YAML's), the rest as is.
func yamlValue(key, def string) string {
	quote := func(s string) string { q, _ := json.Marshal(s); return string(q) }
	switch keyTypes[key] {
	case reflect.TypeFor[[]string]():
		items := listDefault(def)
		for i, s := range items {
			items[i] = quote(s)
		}
		return "[" + strings.Join(items, ", ") + "]"
	case reflect.TypeFor[string]():
		return quote(def)
	}
	return def
}
