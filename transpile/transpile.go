// Package transpile turns a TypeScript file into JavaScript that goja
// runs as CommonJS, with an inline source map, so that every position goja
// reports (stack traces, load errors) names the .ts file's own line and
// column. It uses esbuild's Go API and strips types only: type errors are
// the editor's and tsc's business, never the server's.
//
// It knows nothing of handlers, runtimes or the server; jsrt and testkit
// call it from their module loaders. Every function may be called from any
// goroutine.
package transpile

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/evanw/esbuild/pkg/api"
)

// IsTypeScript reports whether path names a file that [Source] transforms:
// one ending in .ts (.d.ts declarations hold no code, and are not run).
func IsTypeScript(path string) bool {
	return strings.HasSuffix(path, ".ts") && !strings.HasSuffix(path, ".d.ts")
}

// Error is a file that esbuild could not transform, at file:line:col.
type Error struct {
	File         string
	Line, Column int // 1-based
	Message      string
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s:%d:%d: SyntaxError: %s", e.File, e.Line, e.Column, e.Message)
}

// Source returns src, the TypeScript file at path, as CommonJS JavaScript
// ending in an inline source map whose source is that file (named by its
// base name, which goja resolves next to path). ES module syntax becomes
// require and module.exports; generators, classes and the rest goja
// supports are left as written. A file that does not parse is an *[Error].
func Source(path string, src []byte) ([]byte, error) {
	res := api.Transform(string(src), api.TransformOptions{
		Loader:         api.LoaderTS,
		Format:         api.FormatCommonJS,
		Target:         api.ES2020,
		Sourcemap:      api.SourceMapInline,
		SourcesContent: api.SourcesContentExclude,
		Sourcefile:     filepath.Base(path),
		Platform:       api.PlatformNeutral,
		LogLevel:       api.LogLevelSilent,
	})
	if len(res.Errors) > 0 {
		m := res.Errors[0]
		e := &Error{File: path, Message: m.Text}
		if m.Location != nil {
			e.Line, e.Column = m.Location.Line, m.Location.Column+1
		}
		return nil, e
	}
	return forGoja(res.Code)
}
