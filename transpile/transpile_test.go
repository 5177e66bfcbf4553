package transpile_test

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dop251/goja"
	"github.com/dop251/goja_nodejs/require"
	"github.com/moebius-js/moebius-js/transpile"
)

func TestIsTypeScript(t *testing.T) {
	for path, want := range map[string]bool{
		"handlers.ts": true, "lib/x.ts": true, "moebius.d.ts": false, "handlers.js": false, "x.tsx": false, "ts": false,
	} {
		if got := transpile.IsTypeScript(path); got != want {
			t.Errorf("IsTypeScript(%q) = %v, want %v", path, got, want)
		}
	}
}

// A thrown error's stack names the .ts file's own line and column, through
// the inline source map, whatever the types esbuild removed above it; so
// does one on the file's first line, behind the header CommonJS loaders
// put there.
func TestStackNamesTheTypeScriptLineAndColumn(t *testing.T) {
	for _, tc := range []struct{ name, src, want string }{
		{"below types", `interface Greeting {
  name: string;
  loud?: boolean;
}

type Shout = (g: Greeting) => string;

export function* greet(g: Greeting): Generator<number, string, unknown> {
  yield 1;
  throw new Error('no ' + g.name);
}
`, "handlers.ts:10:9"},
		{"first line", "exports.greet = function* (g: {name: string}) { yield 1; throw new Error('no ' + g.name); };\n", "handlers.ts:1:64"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "handlers.ts")
			vm := goja.New()
			reg := require.NewRegistry(require.WithLoader(func(p string) ([]byte, error) {
				if p != path {
					return nil, require.ModuleFileDoesNotExistError
				}
				return transpile.Source(p, []byte(tc.src))
			}))
			mods := reg.Enable(vm)
			mod, err := mods.Require(path)
			if err != nil {
				t.Fatal(err)
			}
			_ = vm.Set("mod", mod)
			_, err = vm.RunString(`var it = mod.greet({name: 'x'}); it.next(); it.next();`)
			var ex *goja.Exception
			if !errors.As(err, &ex) {
				t.Fatalf("want a JavaScript exception, got %v", err)
			}
			if stack := ex.String(); !strings.Contains(stack, filepath.Join(dir, tc.want)+"(") {
				t.Fatalf("stack does not name %s:\n%s", tc.want, stack)
			}
		})
	}
}

func TestSyntaxErrorNamesFileLineAndColumn(t *testing.T) {
	_, err := transpile.Source("h.ts", []byte("const a: number = 1;\nconst b = ;\n"))
	var e *transpile.Error
	if !errors.As(err, &e) {
		t.Fatalf("want *transpile.Error, got %v", err)
	}
	if e.File != "h.ts" || e.Line != 2 || e.Column != 11 {
		t.Fatalf("error at %s:%d:%d, want h.ts:2:11 (%v)", e.File, e.Line, e.Column, err)
	}
}
