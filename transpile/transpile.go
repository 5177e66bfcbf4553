// Package transpile prepares a source file for goja's CommonJS loader
// ([ForGoja]): a JavaScript file is checked for syntax errors, so that one
// is reported at its file:line:col (the loader flattens it to text), and a
// TypeScript file is turned into JavaScript with an inline source map, so
// that every position goja reports (stack traces, load errors) names the
// .ts file's own line and column. It uses esbuild's Go API and strips types
// only: type errors are the editor's and tsc's business, never the
// server's.
//
// It knows nothing of handlers, runtimes or the server; jsrt and testkit
// call it from their module loaders. Every function may be called from any
// goroutine.
package transpile

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/dop251/goja/parser"
	"github.com/evanw/esbuild/pkg/api"
)

// ForGoja returns the file at path, whose text is src, as goja's CommonJS
// loader should compile it: JavaScript as it is once its syntax is
// checked, TypeScript through [Source]. A file that does not parse is an
// *[Error].
func ForGoja(path string, src []byte) ([]byte, error) {
	if IsTypeScript(path) {
		return Source(path, src)
	}
	if err := checkSyntax(path, src); err != nil {
		return nil, err
	}
	return src, nil
}

// ModuleWrapper is how goja_nodejs wraps a CommonJS file before compiling
// it: positions goja reports on a JavaScript file's first line are off by
// its length (a TypeScript file's come from its source map, and are not).
const ModuleWrapper = "(function(exports,require,module,__filename,__dirname){"

// checkSyntax parses src the way the loader will compile it.
func checkSyntax(path string, src []byte) error {
	_, err := parser.ParseFile(nil, path, ModuleWrapper+string(src)+"\n})", 0, parser.WithDisableSourceMaps)
	var list parser.ErrorList
	if !errors.As(err, &list) || len(list) == 0 {
		return nil
	}
	pos := list[0].Position
	if pos.Line == 1 {
		pos.Column -= len(ModuleWrapper)
	}
	msg := list[0].Message
	if strings.Contains(msg, "reserved word") && strings.Contains(string(src), "export") {
		msg += " (ES modules are not supported in .js files: use module.exports and require)"
	}
	return &Error{File: path, Line: pos.Line, Column: pos.Column, Message: msg}
}

// IsTypeScript reports whether path names a file that [Source] transforms:
// one ending in .ts (.d.ts declarations hold no code, and are not run).
func IsTypeScript(path string) bool {
	return strings.HasSuffix(path, ".ts") && !strings.HasSuffix(path, ".d.ts")
}

// Error is a file that does not parse, at file:line:col.
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
