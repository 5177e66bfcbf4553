package jsrt

import "testing"

func TestHandlersThatCanSeeOnlyTheClientAreFound(t *testing.T) {
	rt := newTestRuntime(t)
	for _, tc := range []struct {
		src        string
		clientOnly bool
	}{
		{`(function reply(client) { client.send('x'); })`, true},
		{`((c) => c.send('x'))`, true},
		{`(function* (c) { yield 1; })`, true},
		{`(function () {})`, true},
		{`((c, data) => c.send(data.x))`, false},
		{`(function (c, data, message) {})`, false},
		{`(function (c) { c.send(arguments[1].x); })`, false}, // reads data through arguments
		{`((c, ...rest) => c.send(rest[0].x))`, false},        // a rest parameter has length 1
		{"(function (c) { eval('argu' + 'ments'); })", false}, // eval can reach arguments
		{`(function (c, d = 1) {})`, false},                   // length 1, yet d sees data
		{`({ reply(c) { c.send('x'); } }).reply`, true},       // a method
		{`({ reply(c, d) { c.send(d); } }).reply`, false},
		{`((function (c, d) {}).bind(null))`, false}, // bound: its source does not show
		{`(Math.max)`, false},                        // native
	} {
		v, err := rt.vm.RunString(tc.src)
		if err != nil {
			t.Fatalf("%s: %v", tc.src, err)
		}
		if got := takesClientOnly(&rt.js, v); got != tc.clientOnly {
			t.Errorf("%s: takesClientOnly %v, want %v", tc.src, got, tc.clientOnly)
		}
	}
}
