package jsrt

import (
	"bufio"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/dop251/goja"
)

// newTestRuntime is a runtime with no worker, enough for pure conversions.
func newTestRuntime(t testing.TB) *jsRuntime {
	t.Helper()
	rt := &jsRuntime{vm: goja.New()}
	js, err := newIntrinsics(rt.vm)
	if err != nil {
		t.Fatal(err)
	}
	rt.js = js
	return rt
}

// viaJSONParse is the reference: what JSON.parse makes of data, as JSON
// text (or "error").
func viaJSONParse(rt *jsRuntime, data []byte) string {
	v, err := rt.js.jsonParse(goja.Undefined(), rt.vm.ToValue(string(data)))
	if err != nil {
		return "error"
	}
	return stringify(rt, v)
}

func viaParseJSON(rt *jsRuntime, data []byte) string {
	v, err := rt.parseJSON(data)
	if err != nil {
		return "error"
	}
	return stringify(rt, v)
}

func stringify(rt *jsRuntime, v goja.Value) string {
	s, err := rt.js.jsonStringify(goja.Undefined(), v)
	if err != nil {
		return "unstringifiable"
	}
	if o, ok := v.(*goja.Object); ok && o.Get("__proto__") != nil {
		// own __proto__ keys must stay data, not become the prototype
		if p := o.Prototype(); p != nil && p != rt.vm.Get("Object").(*goja.Object).Get("prototype").(*goja.Object) && o.ClassName() == "Object" {
			return s.String() + " (prototype changed!)"
		}
	}
	return s.String()
}

var jsonCases = []string{
	`{"command":"echo","n":1}`, `[]`, `{}`, `[1,2,[3,[4]]]`, ` {"a" : [ true , false , null ] } `,
	`"str"`, `"esc \" \\ \/ \b \f \n \r \t \u00e9 \ud83d\ude00"`, `"héllo ✓"`, "\"\xff\xfe bad utf8\"",
	`0`, `-0`, `-1`, `1.5`, `1e3`, `1E-3`, `-2.5e+10`, `9007199254740993`, `12345678901234567890`,
	`{"__proto__":{"x":1},"y":2}`, `{"a":1,"a":2}`, `{"2":1,"1":2,"b":3}`,
	// (goja's JSON.parse differs from the standard on lone surrogates and
	// numbers past float64: testdata/json-corpus.txt has V8's answers.)
	// errors
	``, ` `, `{`, `}`, `[1,]`, `{"a":1,}`, `{"a" 1}`, `{a:1}`, `01`, `1.`, `.5`, `-`, `1e`, `+1`, `tru`, `nul`,
	`"unterminated`, "\"ctl\x01\"", `"\x"`, `"\u12"`, `[1 2]`, `{"a":1}x`, `NaN`, `Infinity`, `'single'`,
	"\xef\xbb\xbf{}",
}

func TestParseJSONAgreesWithJSONParse(t *testing.T) {
	rt := newTestRuntime(t)
	for _, c := range jsonCases {
		if got, want := viaParseJSON(rt, []byte(c)), viaJSONParse(rt, []byte(c)); got != want {
			t.Errorf("%q: parseJSON %s, JSON.parse %s", c, got, want)
		}
	}
}

// renderJS is json-corpus.js's render: JSON.stringify keeping -0 and the
// infinities.
const renderJS = `(v => JSON.stringify(v, (k, x) =>
  typeof x === 'number' && (!isFinite(x) || Object.is(x, -0)) ? 'number ' + (Object.is(x, -0) ? '-0' : x) : x))`

// The reference is the language's JSON.parse as V8 implements it
// (testdata/json-corpus.txt, written by json-corpus.js under Node), not
// goja's, which turns a lone surrogate into U+FFFD and refuses 1e400.
func TestParseJSONAgreesWithV8sJSONParse(t *testing.T) {
	rt := newTestRuntime(t)
	v, err := rt.vm.RunString(renderJS)
	if err != nil {
		t.Fatal(err)
	}
	render, _ := goja.AssertFunction(v)
	f, err := os.Open("testdata/json-corpus.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	lines := bufio.NewScanner(f)
	n := 0
	for lines.Scan() {
		quoted, want, ok := strings.Cut(lines.Text(), "\t")
		var input string
		if err := json.Unmarshal([]byte(quoted), &input); !ok || err != nil {
			t.Fatalf("corpus line %q: %v", lines.Text(), err)
		}
		got := "error"
		if parsed, err := rt.parseJSON([]byte(input)); err == nil {
			s, err := render(goja.Undefined(), parsed)
			if err != nil {
				t.Fatalf("%q: render: %v", input, err)
			}
			got = s.String()
		}
		if got != want {
			t.Errorf("%q: parseJSON gives %s, V8's JSON.parse %s", input, got, want)
		}
		n++
	}
	if err := lines.Err(); err != nil || n < 50 {
		t.Fatalf("read %d corpus lines: %v", n, err)
	}
}

// A lone surrogate in a command is valid JSON that names no rule; one in
// another key or value does not hide the command.
func TestScanCommandPastLoneSurrogates(t *testing.T) {
	for _, tc := range []struct{ payload, want string }{
		{`{"command":"echo","s":"\udc00x"}`, "command echo"},
		{`{"\ud800":1,"command":"echo"}`, "command echo"},
		{`{"command":"e\udc00"}`, "no command"},
		{`{"command":"echo","n":1e400}`, "command echo"},
	} {
		if got := viaScanCommand([]byte(tc.payload)); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.payload, got, tc.want)
		}
	}
}

// viaScanCommand renders what scanCommand finds, and viaParseCommand the
// same read from JSON.parse's result, for comparison.
func viaScanCommand(data []byte) string {
	cmd, err := scanCommand(data)
	switch {
	case errors.Is(err, errNoCommand):
		return "no command"
	case err != nil:
		return "error"
	}
	return "command " + string(cmd)
}

func viaParseCommand(rt *jsRuntime, data []byte) string {
	v, err := rt.js.jsonParse(goja.Undefined(), rt.vm.ToValue(string(data)))
	if err != nil {
		return "error"
	}
	if o, ok := v.(*goja.Object); ok && o.ClassName() == "Object" {
		if c := o.Get("command"); c != nil && goja.IsString(c) {
			return "command " + c.String()
		}
	}
	return "no command"
}

func TestScanCommandAgreesWithJSONParse(t *testing.T) {
	rt := newTestRuntime(t)
	cases := append([]string{
		`{"command":"echo"}`, `{"a":{"command":"inner"},"command":"outer"}`, `{"command":1}`,
		`{"command":"a","command":"b"}`, `{"command":"x","command":2}`, `[{"command":"x"}]`, `"command"`,
		`{"command":"\u0041b"}`, `{"command":"x","y":[1,{"z":null}]}`, `{"command":"x"} 1`,
	}, jsonCases...)
	for _, c := range cases {
		if strings.Contains(c, `\ud800`) || strings.Contains(c, `\udc00`) {
			continue // a lone surrogate command cannot be a Go string
		}
		if got, want := viaScanCommand([]byte(c)), viaParseCommand(rt, []byte(c)); got != want {
			t.Errorf("%q: scanCommand %s, JSON.parse %s", c, got, want)
		}
	}
}

func TestParseJSONBoundsNesting(t *testing.T) {
	rt := newTestRuntime(t)
	deep := strings.Repeat("[", maxJSONDepth+1) + strings.Repeat("]", maxJSONDepth+1)
	if _, err := rt.parseJSON([]byte(deep)); err == nil || !strings.Contains(err.Error(), "nested deeper") {
		t.Fatalf("error %v", err)
	}
	ok := strings.Repeat("[", maxJSONDepth) + strings.Repeat("]", maxJSONDepth)
	if _, err := rt.parseJSON([]byte(ok)); err != nil {
		t.Fatalf("%d levels: %v", maxJSONDepth, err)
	}
	// Routing counts levels the same way.
	if _, err := scanCommand([]byte(deep)); err == nil || !strings.Contains(err.Error(), "nested deeper") {
		t.Fatalf("scanCommand of %d levels: %v", maxJSONDepth+1, err)
	}
	inObject := `{"command":"x","a":` + ok[1:len(ok)-1] + `}` // the object is level 1
	if cmd, err := scanCommand([]byte(inObject)); err != nil || string(cmd) != "x" {
		t.Fatalf("scanCommand of %d levels: %q %v", maxJSONDepth, cmd, err)
	}
}

func FuzzParseJSON(f *testing.F) {
	for _, c := range jsonCases {
		f.Add([]byte(c))
	}
	rt := newTestRuntime(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		if strings.Count(string(data), "[")+strings.Count(string(data), "{") > maxJSONDepth {
			return // JSON.parse has no depth limit
		}
		if strings.Contains(string(data), `\u`) || strings.ContainsAny(string(data), "eE") {
			return // where goja's JSON.parse leaves the standard (see above)
		}
		if got, want := viaParseJSON(rt, data), viaJSONParse(rt, data); got != want {
			t.Fatalf("%q: parseJSON %s, JSON.parse %s", data, got, want)
		}
		if strings.Contains(string(data), `\u`) {
			return // a lone-surrogate command is the one known difference
		}
		if got, want := viaScanCommand(data), viaParseCommand(rt, data); got != want {
			t.Fatalf("%q: scanCommand %s, JSON.parse %s", data, got, want)
		}
	})
}

func BenchmarkParseJSON(b *testing.B) {
	rt := newTestRuntime(b)
	payload := []byte(`{"command":"reply","user":{"id":12345,"name":"Ada","tags":["a","b"]},"n":1.5}`)
	b.Run("parseJSON", func(b *testing.B) {
		for b.Loop() {
			if _, err := rt.parseJSON(payload); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("JSON.parse", func(b *testing.B) {
		for b.Loop() {
			if _, err := rt.js.jsonParse(goja.Undefined(), rt.vm.ToValue(string(payload))); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// The arrival scan builds nothing of the payload: it checks the JSON and
// finds the command with no allocation for keys, numbers or strings; what
// it still allocates is one closure per nested container it skips.
func TestScanCommandAllocatesOnlyForNestedContainers(t *testing.T) {
	for _, tc := range []struct {
		data string
		most float64
	}{
		{`{"id":12345,"command":"price","sku":"ABC-123","qty":2.5e3,"ok":true,"n":null}`, 0},
		{`{"command":"price","tags":["a","bb"],"opts":{"fast":true}}`, 2},
	} {
		data := []byte(tc.data)
		got := testing.AllocsPerRun(100, func() {
			if cmd, err := scanCommand(data); err != nil || string(cmd) != "price" {
				t.Fatalf("scan: %q %v", cmd, err)
			}
		})
		if got > tc.most {
			t.Errorf("%s: %.0f allocations per scan, want at most %v", tc.data, got, tc.most)
		}
	}
}
