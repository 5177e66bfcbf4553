package jsrt_test

import (
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/moebius-js/moebius-js/jsrt"
)

// regexpJS runs regular expressions on client data. The patterns with a
// lookahead (or a backreference) are ones goja hands to regexp2, a
// backtracking engine; /(a+)+$/y is one Go's regexp could run, but a sticky
// match from lastIndex 1 goes to regexp2 too (compiled then, mid-step).
const regexpJS = `
const { sleep } = require('moebius');
function* ping(client) { yield sleep(1); client.send('pong'); }
function* later(c, d) { yield; c.send(String(/^(?=(a+)+$)/.test(d.s))); }
module.exports = { rules: [
  { command: 'test', handler: (c, d) => c.send(String(/^(?=(a+)+$)/.test(d.s))) },
  { command: 'exec', handler: (c, d) => c.send(JSON.stringify(/(a+)+(?=b)/.exec(d.s))) },
  { command: 'replace', handler: (c, d) => c.send(d.s.replace(/(a+)+(?=b)/g, 'x')) },
  { command: 'dynamic', handler: (c, d) => c.send(String(new RegExp(d.p).test(d.s))) },
  { command: 'sticky', handler: (c, d) => { const re = /(a+)+$/y; re.lastIndex = 1; c.send(String(re.test(d.s))); } },
  { command: 'caught', handler: (c, d) => { let r; try { r = /(a+)+(?=b)/.test(d.s); } catch (e) { r = 'caught ' + e; } c.send(String(r)); } },
  { command: 'later', handler: later },
  { command: 'ping', handler: ping },
  { command: 'ordinary', handler: (c, d) => {
      const re = /a(?=b)/g; let n = 0; while (re.exec('abababac')) n++;
      c.send(JSON.stringify([
        /^(?=.*\d)(?=.*[a-z]).{8,}$/.test(d.password),
        /^(?=.*\d)(?=.*[a-z]).{8,}$/.test('short1'),
        d.price.match(/\d+(?= USD)/)[0],
        'aBcDe'.split(/(?=[A-Z])/),
        '2024-01-02'.replace(/(?<y>\d+)-(?<m>\d+)-(?<d>\d+)/, '$<d>/$<m>/$<y>'),
        /(\w)\1/.test('hello'),
        n,
        ('x'.repeat(2000) + 'y').search(/x(?=y)/),
        new RegExp(d.p).test('ab'),
        // the catastrophic pattern on a string it settles quickly
        /^(?=(a+)+$)/.test('aaaa'),
        /(a+)+(?=b)/.exec('aaab')[0],
      ]));
  } },
]};
`

// catastrophic makes the patterns above backtrack for seconds (without a
// limit, about 8s for the 25 "a"s here): each more "a" doubles the work.
var catastrophic = `"s":"` + strings.Repeat("a", 25) + `!","p":"(a+)+(?=b)"`

// TestCatastrophicRegexpIsARunaway runs in a process of its own: the
// match limit is set once per process, from the step budget of the first
// Host (see regexp.go), so it must be the first Host there.
func TestCatastrophicRegexpIsARunaway(t *testing.T) {
	if os.Getenv("JSRT_REGEXP_CHILD") == "" {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCatastrophicRegexpIsARunaway$", "-test.v", "-test.count=1", "-test.timeout=1m")
		cmd.Env = append(os.Environ(), "JSRT_REGEXP_CHILD=1")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("in a process of its own: %v\n%s", err, out)
		}
		if !strings.Contains(string(out), "--- PASS: TestCatastrophicRegexpIsARunaway") {
			t.Fatalf("the child process ran no test:\n%s", out)
		}
		t.Logf("in a process of its own:\n%s", out)
		return
	}

	const budget = 100 * time.Millisecond
	// The watchdog interrupts the step at the budget; the match gives up
	// at twice the budget, give or take regexp2's 100ms clock, and the
	// interrupt that waited for it ends the step.
	const within = 8 * budget
	for _, command := range []string{"test", "exec", "replace", "dynamic", "sticky", "caught", "later"} {
		t.Run(command, func(t *testing.T) {
			e := start(t, jsrt.Config{StepBudget: budget}, map[string]string{"handlers.js": regexpJS})
			e.connect("bad")
			e.connect("good")
			began := time.Now()
			e.send("bad", `{"command":"`+command+`",`+catastrophic+`}`)
			e.send("good", `{"command":"ping"}`)
			got := e.reply("bad", 1)
			took := time.Since(began)
			if !strings.Contains(got, `"runaway_handler"`) || !strings.Contains(got, "step exceeded its time budget") {
				t.Fatalf("bad got %s, want runaway_handler", got)
			}
			if took > within {
				t.Fatalf("the runaway reply took %v, want at most %v", took, within)
			}
			if got := e.reply("good", 1); got != "pong" {
				t.Fatalf("good got %q", got)
			}
			if took := time.Since(began); took > within {
				t.Fatalf("the other client waited %v, want at most %v", took, within)
			}
			t.Logf("runaway_handler after %v", took)
			// The runtime is healthy afterwards: both are served.
			e.send("bad", `{"command":"ping"}`)
			if got := e.reply("bad", 2); got != "pong" {
				t.Fatalf("after the runaway, bad got %q", got)
			}
			e.send("good", ordinary)
			if got, want := e.reply("good", 2), ordinaryWant; got != want {
				t.Fatalf("after the runaway, ordinary regexps give\n%s\nwant\n%s", got, want)
			}
		})
	}
}

const ordinary = `{"command":"ordinary","password":"abcd1234","price":"price: 100 USD","p":"a(?=b)"}`

const ordinaryWant = `[true,false,"100",["a","Bc","De"],"02/01/2024",true,3,1999,true,true,"aaa"]`

func TestOrdinaryRegexpsStillWork(t *testing.T) {
	e := start(t, jsrt.Config{StepBudget: 100 * time.Millisecond}, map[string]string{"handlers.js": regexpJS})
	e.connect("c")
	e.send("c", ordinary)
	if got := e.reply("c", 1); got != ordinaryWant {
		t.Fatalf("got\n%s\nwant\n%s", got, ordinaryWant)
	}
	// The catastrophic patterns on input they settle quickly.
	for i, tc := range []struct{ command, want string }{
		{"test", "false"},
		{"exec", `["aaa","aaa"]`},
		{"replace", "xb!"},
		{"dynamic", "true"},
		{"sticky", "false"},
		{"caught", "true"},
		{"later", "false"},
	} {
		e.send("c", `{"command":"`+tc.command+`","s":"aaab!","p":"(a+)+(?=b)"}`)
		if got := e.reply("c", i+2); got != tc.want {
			t.Fatalf("%s: got %q, want %q", tc.command, got, tc.want)
		}
	}
}
