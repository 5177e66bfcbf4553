package tests

// The dashboard (issue 14) in a real browser: Debian's chromium, driven
// headless by chromedp, against the real binary. Without chromium the tests
// skip, unless REQUIRE_INTEROP=1, which makes them fail. The contract they
// check (the JSON API, the console endpoints, the ids and attributes of the
// page) is the one the page and the server were written to.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/go-zeromq/zmq4"
)

// chromiumPath is where Debian's chromium package installs the browser.
const chromiumPath = "/usr/bin/chromium"

// dashboardHandlers is the handlers file of these tests.
const dashboardHandlers = "testdata/dashboard/handlers.js"

// pageWait bounds each wait for the page to show something: it polls the
// server once a second, so a state shows within a second or two.
const pageWait = 15 * time.Second

// requireChromium returns chromium's path, or skips the test when it is not
// installed (fails it if REQUIRE_INTEROP=1, as in CI, which installs it).
func requireChromium(t *testing.T) string {
	t.Helper()
	info, err := os.Stat(chromiumPath)
	if err == nil && info.Mode().IsRegular() && info.Mode()&0o111 != 0 {
		return chromiumPath
	}
	if err == nil {
		err = fmt.Errorf("%s is not an executable file", chromiumPath)
	}
	if os.Getenv("REQUIRE_INTEROP") == "1" {
		t.Fatalf("dashboard browser test cannot run and REQUIRE_INTEROP=1: %v (install Debian's chromium)", err)
	}
	t.Skipf("skipping dashboard browser test: %v (install Debian's chromium; REQUIRE_INTEROP=1 turns this skip into a failure)", err)
	return ""
}

// dashPage is the dashboard open in a headless chromium tab. It records what
// must not happen while the page runs: console errors and warnings, uncaught
// exceptions, error entries of the browser's log, and failed requests to the
// server (network failures and HTTP error statuses).
type dashPage struct {
	t      *testing.T
	ctx    context.Context // the tab's
	origin string          // the admin listener, "http://127.0.0.1:PORT"

	mu       sync.Mutex
	urls     map[network.RequestID]string
	problems []string
}

// openDashboard starts chromium and opens url (the admin listener's root) in
// a tab; both are closed at cleanup, before the server stops.
func openDashboard(t *testing.T, url string) *dashPage {
	t.Helper()
	chromium := requireChromium(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium),
		chromedp.Headless,
		chromedp.NoSandbox, // the tests run as root
		chromedp.DisableGPU,
		chromedp.WindowSize(1400, 900),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	p := &dashPage{t: t, origin: strings.TrimSuffix(url, "/"), urls: map[network.RequestID]string{}}
	ctx, cancelTab := chromedp.NewContext(allocCtx, chromedp.WithListener(p.observe))
	p.ctx = ctx
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc()
	})

	// The first action starts the browser and ties it to ctx, which must
	// have no deadline; a browser that never starts is stopped here.
	started := make(chan struct{})
	watchdog := time.AfterFunc(60*time.Second, func() {
		select {
		case <-started:
		default:
			cancelAlloc()
		}
	})
	err := chromedp.Do(ctx)
	close(started)
	watchdog.Stop()
	if err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	p.do("open "+url, chromedp.Navigate(url))
	return p
}

// observe runs in the tab's event loop, for every event of the tab from its
// start: it only records.
func (p *dashPage) observe(ev any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch ev := ev.(type) {
	case *runtime.EventConsoleAPICalled:
		switch ev.Type {
		case runtime.ConsoleAPICalledTypeError, runtime.ConsoleAPICalledTypeWarning, runtime.ConsoleAPICalledTypeAssert:
			var args []string
			for _, a := range ev.Args {
				if len(a.Value) > 0 {
					args = append(args, string(a.Value))
				} else {
					args = append(args, a.Description)
				}
			}
			p.problems = append(p.problems, fmt.Sprintf("console.%s: %s%s", ev.Type, strings.Join(args, " "), stackText(ev.StackTrace)))
		}
	case *runtime.EventExceptionThrown:
		d := ev.ExceptionDetails
		text := d.Text
		if d.Exception != nil && d.Exception.Description != "" {
			text += " " + d.Exception.Description
		}
		p.problems = append(p.problems, fmt.Sprintf("uncaught exception at %s:%d:%d: %s", d.URL, d.LineNumber+1, d.ColumnNumber+1, text))
	case *log.EventEntryAdded:
		if e := ev.Entry; e.Level == log.EntryLevelError || e.Level == log.EntryLevelWarning {
			p.problems = append(p.problems, fmt.Sprintf("browser log %s (%s): %s %s", e.Level, e.Source, e.Text, e.URL))
		}
	case *network.EventRequestWillBeSent:
		p.urls[ev.RequestID] = ev.Request.URL
	case *network.EventResponseReceived:
		if p.ours(ev.Response.URL) && ev.Response.Status >= 400 {
			p.problems = append(p.problems, fmt.Sprintf("HTTP %d for %s", ev.Response.Status, ev.Response.URL))
		}
	case *network.EventLoadingFailed:
		if url := p.urls[ev.RequestID]; p.ours(url) {
			p.problems = append(p.problems, fmt.Sprintf("request failed: %s: %s (canceled %v, blocked %q)", url, ev.ErrorText, ev.Canceled, ev.BlockedReason))
		}
	}
}

// ours reports whether url is on the admin listener the page came from.
func (p *dashPage) ours(url string) bool {
	return url == p.origin || strings.HasPrefix(url, p.origin+"/")
}

func stackText(st *runtime.StackTrace) string {
	if st == nil || len(st.CallFrames) == 0 {
		return ""
	}
	f := st.CallFrames[0]
	return fmt.Sprintf(" (at %s:%d:%d)", f.URL, f.LineNumber+1, f.ColumnNumber+1)
}

// assertClean fails the test if the page has logged an error or a warning,
// thrown, or seen a request to the server fail, so far.
func (p *dashPage) assertClean() {
	p.t.Helper()
	p.mu.Lock()
	problems := slices.Clone(p.problems)
	p.mu.Unlock()
	if len(problems) > 0 {
		p.t.Errorf("the page had %d problem(s):\n  %s", len(problems), strings.Join(problems, "\n  "))
	}
}

// do runs actions in the tab, failing the test on an error.
func (p *dashPage) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, pageWait+5*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		p.t.Fatalf("%s: %v\npage:\n%s", what, err, p.snapshot())
	}
}

// pageJS are helpers for the expressions the tests evaluate in the page.
const pageJS = `
const $ = (s) => document.querySelector(s);
const $$ = (s) => [...document.querySelectorAll(s)];
const txt = (s) => { const e = $(s); return e ? e.textContent.replace(/\s+/g, ' ').trim() : null; };
const num = (s) => { const t = txt(s); return t === null ? null : t.replace(/[,\s\u00a0\u202f]/g, ''); };
const visible = (s) => {
  const e = $(s);
  if (!e) return false;
  const st = getComputedStyle(e);
  return e.getClientRects().length > 0 && st.visibility !== 'hidden' && st.display !== 'none';
};
const clientIDs = () => $$('#clients-table tr[data-client-id]').map((r) => r.dataset.clientId);
`

// statusLive holds while #status-line says the page's polling works.
const statusLive = `/\blive\b/.test(txt('#status-line')) && !$('#status-line').classList.contains('down')`

// pageEval evaluates a JavaScript expression in the page (with pageJS's helpers)
// and decodes its value into T.
func pageEval[T any](p *dashPage, expr string) T {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](fmt.Sprintf("(() => {%s\nreturn (%s);\n})()", pageJS, expr)))
	if err != nil {
		p.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// waitUntil polls the page until the JavaScript condition cond (with
// pageJS's helpers; an exception counts as false) holds, failing the test
// with what the page shows after pageWait.
func (p *dashPage) waitUntil(what, cond string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, pageWait+5*time.Second)
	defer cancel()
	expr := fmt.Sprintf("(() => {%s\ntry { return !!(%s); } catch (e) { return false; }\n})()", pageJS, cond)
	_, err := chromedp.Run(ctx, chromedp.Poll[bool](expr,
		chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(pageWait)))
	if err != nil {
		p.t.Fatalf("the page never showed %s (%v): waited for\n  %s\npage:\n%s", what, err, cond, p.snapshot())
	}
}

// snapshot is the text of the page's main parts, for failure messages.
func (p *dashPage) snapshot() string {
	ctx, cancel := context.WithTimeout(p.ctx, 5*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(() => {
  const t = (s) => { const e = document.querySelector(s); return e ? e.textContent.replace(/\s+/g, ' ').trim().slice(0, 800) : '(no such element)'; };
  return ['#status-line', '#generation', '#total-requests', '#total-errors', '#clients-count', '#clients-range',
    '#commands-table', '#clients-table', '#errors', '#reloads', '#console', '#console-output']
    .map((s) => '  ' + s + ': ' + t(s)).join('\n') + '\n  reloads: ' +
    [...document.querySelectorAll('li.reload')].map((li) => li.dataset.generation + '/' + li.dataset.ok).join(' ') +
    '\n  client rows: ' + [...document.querySelectorAll('#clients-table tr[data-client-id]')].map((r) => r.dataset.clientId).slice(0, 60).join(' ');
})()`))
	if err != nil {
		s = fmt.Sprintf("  (cannot read the page: %v)", err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.problems) > 0 {
		s += "\n  problems so far:\n    " + strings.Join(p.problems, "\n    ")
	}
	return s
}

// fill replaces the text of an input or a textarea as a user would: clear it,
// then type.
func (p *dashPage) fill(sel, text string) {
	p.t.Helper()
	clear := fmt.Sprintf(`(() => { const e = document.querySelector(%s); e.value = ''; e.dispatchEvent(new Event('input', {bubbles: true})); return true; })()`, jsString(sel))
	p.do("fill "+sel,
		chromedp.WaitVisible(chromedp.CSS(sel)),
		chromedp.Evaluate[chromedp.Void](clear),
		chromedp.SendKeys(chromedp.CSS(sel), text),
	)
}

// click clicks the element sel with the mouse.
func (p *dashPage) click(sel string) {
	p.t.Helper()
	p.do("click "+sel, chromedp.Click(chromedp.CSS(sel)))
}

// jsString is s as a JavaScript string literal.
func jsString(s string) string {
	b, err := json.Marshal(s)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// dashState is the part of /dashboard/api/state the tests compare with.
type dashState struct {
	Generation int  `json:"generation"`
	Console    bool `json:"console"`
	Totals     struct {
		Clients  int64 `json:"clients"`
		Requests int64 `json:"requests"`
		Errors   int64 `json:"errors"`
	} `json:"totals"`
	Rate struct {
		Count []float64  `json:"count"`
		P50   []*float64 `json:"p50"`
		P99   []*float64 `json:"p99"`
	} `json:"rate"`
	Commands []struct {
		Command string   `json:"command"`
		Count   int64    `json:"count"`
		P50     *float64 `json:"p50"`
	} `json:"commands"`
	Clients struct {
		Total int `json:"total"`
		Rows  []struct {
			ID      string `json:"id"`
			State   string `json:"state"`
			Command string `json:"command"`
		} `json:"rows"`
	} `json:"clients"`
	Errors []struct {
		Client  string `json:"client"`
		Code    string `json:"code"`
		Command string `json:"command"`
		Message string `json:"message"`
		Stack   string `json:"stack"`
	} `json:"errors"`
	Reloads []struct {
		Generation int    `json:"generation"`
		OK         bool   `json:"ok"`
		Error      string `json:"error"`
	} `json:"reloads"`
}

var httpClient = &http.Client{Timeout: 10 * time.Second}

// dashboardState reads /dashboard/api/state (query: its query string, or "").
func dashboardState(t *testing.T, s *server, query string) dashState {
	t.Helper()
	url := s.admin + "dashboard/api/state"
	if query != "" {
		url += "?" + query
	}
	resp, err := httpClient.Get(url)
	if err != nil {
		t.Fatalf("get %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read %s: %v", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("get %s: %s: %s", url, resp.Status, body)
	}
	var st dashState
	if err := json.Unmarshal(body, &st); err != nil {
		t.Fatalf("decode %s: %v: %s", url, err, body)
	}
	return st
}

// clientsNow is how many clients /dashboard/api/state counts.
func clientsNow(t *testing.T, s *server) int64 {
	t.Helper()
	return dashboardState(t, s, "limit=1").Totals.Clients
}

// who asks the server, through c (a real ZeroMQ client), for the ids of its
// connected clients.
func who(c *client) []string {
	c.t.Helper()
	reply := c.roundTrip(`{"command":"who"}`)
	var r struct {
		IDs []string `json:"ids"`
	}
	if err := json.Unmarshal([]byte(reply), &r); err != nil {
		c.t.Fatalf("who: %v: %q", err, reply)
	}
	return r.IDs
}

// lineOf is the 1-based line of the one line of path that contains text.
func lineOf(t *testing.T, path, text string) int {
	t.Helper()
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	line := 0
	for i, l := range strings.Split(string(src), "\n") {
		if strings.Contains(l, text) {
			if line != 0 {
				t.Fatalf("%s has %q on lines %d and %d", path, text, line, i+1)
			}
			line = i + 1
		}
	}
	if line == 0 {
		t.Fatalf("%s has no line with %q", path, text)
	}
	return line
}

// copyHandlers copies the tests' handlers file into a temp dir, so that a
// test may edit it, and returns the copy's path.
func copyHandlers(t *testing.T) string {
	t.Helper()
	src, err := os.ReadFile(dashboardHandlers)
	if err != nil {
		t.Fatal(err)
	}
	return writeHandlers(t, string(src))
}

// After known traffic (25 echo requests from one client, a second client
// connected then gone, one handler error, one reload), the page shows the
// server as it is; a screenshot of it is kept in tests/artifacts/.
func TestDashboardShowsTheServerAfterKnownTraffic(t *testing.T) {
	const echoes = 25
	path := copyHandlers(t)
	throwLine := lineOf(t, path, "throw new Error('boom')")
	s := startServer(t, path, "--admin", "127.0.0.1:0", "--admin-console")

	first := dial(t, s.addr, "dash-first", false)
	for i := range echoes {
		req := fmt.Sprintf(`{"command":"echo","n":%d}`, i)
		var got struct {
			Command string `json:"command"`
			N       int    `json:"n"`
		}
		if reply := first.roundTrip(req); json.Unmarshal([]byte(reply), &got) != nil || got.Command != "echo" || got.N != i {
			t.Fatalf("echo %d: reply %q", i, reply)
		}
	}

	// A second client connects (the server sees it) and goes.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	second := zmq4.NewDealer(ctx, zmq4.WithID(zmq4.SocketIdentity("dash-second")))
	if err := second.Dial(s.addr); err != nil {
		t.Fatalf("dial: %v", err)
	}
	eventually(t, 10*time.Second, "the server to count the second client", func() bool { return clientsNow(t, s) == 2 })
	if err := second.Close(); err != nil {
		t.Fatalf("close the second client: %v", err)
	}
	eventually(t, 10*time.Second, "the server to see the second client go", func() bool { return clientsNow(t, s) == 1 })

	if reply := first.roundTrip(`{"command":"boom"}`); !strings.Contains(reply, "handler_error") {
		t.Fatalf("boom: reply %q", reply)
	}

	// A reload: the same rules and one more line at the end (the throw
	// keeps its line), then SIGHUP.
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	replaceFile(t, path, string(src)+"// edited by TestDashboardShowsTheServerAfterKnownTraffic\n")
	if err := s.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	s.logs.waitFor(t, regexp.MustCompile(`handlers reloaded.*gen=2`), 10*time.Second)

	// What the API says, first.
	const requests = echoes + 1
	st := dashboardState(t, s, "")
	if st.Totals.Requests != requests || st.Totals.Clients != 1 || st.Generation != 2 {
		t.Fatalf("/dashboard/api/state: requests %d (want %d), clients %d (want 1), generation %d (want 2)",
			st.Totals.Requests, requests, st.Totals.Clients, st.Generation)
	}

	p := openDashboard(t, s.admin)
	location := fmt.Sprintf("%s:%d:", path, throwLine)
	p.waitUntil("the status live", statusLive)
	p.waitUntil(fmt.Sprintf("%d requests in #total-requests", requests), fmt.Sprintf(`num('#total-requests') === '%d'`, requests))
	// The echo row's count: the column headed "count" when there is one,
	// else a cell holding exactly the count (no other cell of the row can:
	// running and queued are 0, rate and latencies are not whole numbers
	// of that size).
	p.waitUntil(fmt.Sprintf("echo's count %d in its row of #commands-table", echoes), fmt.Sprintf(`(() => {
  const row = $('#commands-table tr[data-command="echo"]');
  if (!row) return false;
  const heads = $$('#commands-table th').map((th) => th.textContent.trim().toLowerCase());
  const i = heads.indexOf('count');
  if (i >= 0 && row.cells.length === heads.length) return row.cells[i].textContent.trim() === '%[1]d';
  return [...row.cells].some((td) => td.textContent.trim() === '%[1]d');
})()`, echoes))
	p.waitUntil("1 client in #clients-count", `num('#clients-count') === '1'`)
	p.waitUntil("the first client in the clients table, and not the second",
		`$('#clients-table tr[data-client-id="dash-first"]') && !$('#clients-table tr[data-client-id="dash-second"]') && clientIDs().length === 1`)
	p.waitUntil("the handler error with "+location+" in #errors",
		fmt.Sprintf(`$$('#errors li.error').some((li) => li.textContent.includes('boom') && li.textContent.includes(%s))`, jsString(location)))
	p.waitUntil("generation 2", `txt('#generation') === '2'`)
	p.waitUntil("both loads in #reloads, generation 2 ok",
		`$('#reloads li.reload[data-generation="2"][data-ok="true"]') && $('#reloads li.reload[data-generation="1"][data-ok="true"]')`)
	p.waitUntil("1 error in #total-errors", `num('#total-errors') === '1'`)

	// The rate arrays hold the seconds that are over: once the traffic's
	// are, they count every request, and the page draws them.
	eventually(t, 10*time.Second, fmt.Sprintf("/dashboard/api/state's rate.count to add up to %d", requests), func() bool {
		var sum float64
		for _, n := range dashboardState(t, s, "limit=1").Rate.Count {
			sum += n
		}
		return sum == requests
	})
	p.waitUntil("a rate above 0 and latencies in ms", `Number(txt('#rps')) > 0 && Number(txt('#p50')) >= 0 && Number(txt('#p99')) >= Number(txt('#p50'))`)

	// The page's numbers are the API's.
	st = dashboardState(t, s, "")
	var counted float64
	for _, n := range st.Rate.Count {
		counted += n
	}
	if len(st.Rate.Count) != 300 || len(st.Rate.P50) != 300 || len(st.Rate.P99) != 300 || counted != requests {
		t.Errorf("/dashboard/api/state rate: %d counts adding up to %v, %d p50s, %d p99s; want 300 each, counting %d",
			len(st.Rate.Count), counted, len(st.Rate.P50), len(st.Rate.P99), requests)
	}
	if shown := pageEval[string](p, `num('#total-requests')`); shown != strconv.FormatInt(st.Totals.Requests, 10) {
		t.Errorf("#total-requests shows %q, /dashboard/api/state says %d", shown, st.Totals.Requests)
	}
	for _, c := range st.Commands {
		if c.Command == "echo" && c.Count != echoes {
			t.Errorf("/dashboard/api/state counts %d echo requests, want %d", c.Count, echoes)
		}
	}
	if len(st.Errors) != 1 || !strings.Contains(st.Errors[0].Stack, location) || st.Errors[0].Client != "dash-first" ||
		st.Errors[0].Code != "handler_error" || st.Errors[0].Command != "boom" {
		t.Errorf("/dashboard/api/state errors: %+v; want one handler_error of boom from dash-first at %s", st.Errors, location)
	}

	buf, err := chromedp.Run(p.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if err := os.MkdirAll("artifacts", 0o755); err != nil {
		t.Fatal(err)
	}
	shot := filepath.Join("artifacts", "dashboard.png")
	if err := os.WriteFile(shot, buf, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: tests/%s", shot)

	// A defence or failure counter that moves while the page is open is
	// flagged; a traffic counter that moves with it is not.
	if reply := first.roundTrip(`{"command":"boom"}`); !strings.Contains(reply, "handler_error") {
		t.Fatalf("second boom: reply %q", reply)
	}
	p.waitUntil("the handler_error counter flagged as moved",
		`!!$('#counters li[data-counter="moebius_request_errors_total{code=\\"handler_error\\"}"].moved')`)
	if pageEval[bool](p, `!!$('#counters li[data-counter="moebius_messages_received_total"].moved')`) {
		t.Error("a traffic counter (messages received) is flagged as a limit that bit")
	}
	p.assertClean()
}

// The console connects a client with the id typed in, sends what is typed
// through the real routing, and shows every reply as it comes; a real
// ZeroMQ client sees the console's client among the server's clients.
func TestDashboardConsoleSendsAndShowsReplies(t *testing.T) {
	s := startServer(t, dashboardHandlers, "--admin", "127.0.0.1:0", "--admin-console")
	watcher := dial(t, s.addr, "watcher", false)
	p := openDashboard(t, s.admin)

	p.waitUntil("the console", `visible('#console') && visible('#console-connect') && visible('#console-send')`)
	p.fill("#console-id", "console-7")
	p.click("#console-connect")
	eventually(t, pageWait, "the console's client console-7 to connect", func() bool {
		return slices.Contains(who(watcher), "console-7")
	})

	p.fill("#console-message", `{"command":"echo","x":1}`)
	p.click("#console-send")
	p.waitUntil(`the echo's reply in #console-output`, `$$('#console-output div.reply').some((d) => d.textContent.includes('"x":1'))`)

	// Two replies a little apart: both show, in order.
	p.fill("#console-message", `{"command":"twice","n":7}`)
	p.click("#console-send")
	p.waitUntil("both replies of twice, in order", `(() => {
  const replies = $$('#console-output div.reply').map((d) => d.textContent);
  const a = replies.findIndex((r) => r.includes('first 7'));
  const b = replies.findIndex((r) => r.includes('second 7'));
  return a >= 0 && b > a;
})()`)
	if ids := who(watcher); !slices.Contains(ids, "console-7") {
		t.Fatalf("the server's clients while the console is connected: %q", ids)
	}

	p.click("#console-disconnect")
	eventually(t, pageWait, "the console's client to disconnect", func() bool {
		return !slices.Contains(who(watcher), "console-7")
	})
	if n := s.metric("moebius_console_replies_dropped_total"); n != 0 {
		t.Errorf("%v console replies dropped for a page that reads them", n)
	}
	p.assertClean()
}

// Without admin_console the console's endpoints answer 404 and the page
// hides the console.
func TestDashboardConsoleIsOffByDefault(t *testing.T) {
	s := startServer(t, dashboardHandlers, "--admin", "127.0.0.1:0")
	resp, err := httpClient.Get(s.admin + "dashboard/api/console")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /dashboard/api/console without admin_console: %s, want 404", resp.Status)
	}
	if code, body := postConsole(t, s, "connect", "application/json", `{"session":"x","id":"intruder"}`); code != http.StatusNotFound {
		t.Errorf("POST /dashboard/api/console/connect without admin_console: %d %s, want 404", code, body)
	}
	if st := dashboardState(t, s, ""); st.Console {
		t.Errorf("/dashboard/api/state says console: true without admin_console")
	}

	p := openDashboard(t, s.admin)
	// Once the page shows the state, it has decided about the console.
	p.waitUntil("the state (generation 1, live)", `txt('#generation') === '1' && `+statusLive)
	if pageEval[bool](p, `visible('#console')`) {
		t.Errorf("#console is visible without admin_console")
	}
	p.assertClean()
}

// A cross-site page can POST with a form (text/plain, urlencoded,
// multipart) without asking: the console's endpoints refuse all of them.
func TestDashboardConsoleRefusesCrossSiteRequests(t *testing.T) {
	s := startServer(t, dashboardHandlers, "--admin", "127.0.0.1:0", "--admin-console")
	watcher := dial(t, s.addr, "watcher", false)
	session, events := consoleStream(t, s)

	connect := func(id string) string { return fmt.Sprintf(`{"session":%s,"id":%s}`, jsString(session), jsString(id)) }
	for _, ct := range []string{"text/plain", "text/plain;charset=UTF-8", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", ""} {
		code, body := postConsole(t, s, "connect", ct, connect("csrf-1"))
		if code < 400 || code > 499 {
			t.Errorf("POST /dashboard/api/console/connect with Content-Type %q: %d %s, want a 4xx refusal", ct, code, body)
		}
	}
	if ids := who(watcher); !slices.Equal(ids, []string{"watcher"}) {
		t.Fatalf("after refused connects the server's clients are %q", ids)
	}
	if n := clientsNow(t, s); n != 1 {
		t.Fatalf("after refused connects /dashboard/api/state counts %d clients", n)
	}

	// The same request as JSON connects: the session was good, only the
	// content type was wrong.
	if code, body := postConsole(t, s, "connect", "application/json", connect("csrf-ok")); code != http.StatusOK {
		t.Fatalf("POST /dashboard/api/console/connect as JSON: %d %s", code, body)
	}
	if ids := who(watcher); !slices.Contains(ids, "csrf-ok") {
		t.Fatalf("after a JSON connect the server's clients are %q", ids)
	}

	// A send as text/plain is refused too: its reply never comes before
	// the reply to the JSON send that follows it (one client's requests are
	// served in order).
	send := func(frame string) string {
		return fmt.Sprintf(`{"session":%s,"id":"csrf-ok","frames":[%s]}`, jsString(session), jsString(frame))
	}
	if code, body := postConsole(t, s, "send", "text/plain", send(`{"command":"echo","forged":true}`)); code < 400 || code > 499 {
		t.Errorf("POST /dashboard/api/console/send as text/plain: %d %s, want a 4xx refusal", code, body)
	}
	if code, body := postConsole(t, s, "send", "application/json", send(`{"command":"echo","real":true}`)); code != http.StatusOK {
		t.Fatalf("POST /dashboard/api/console/send as JSON: %d %s", code, body)
	}
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				t.Fatalf("the console stream ended before the reply")
			}
			if ev.name != "reply" {
				continue
			}
			if strings.Contains(ev.data, "forged") {
				t.Fatalf("the text/plain send reached the handler: %s", ev.data)
			}
			if strings.Contains(ev.data, "real") {
				return
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no reply to the JSON send on the console stream")
		}
	}
}

// postConsole POSTs body to /dashboard/api/console/<what> with the content
// type ct (none when empty) and returns the status and the body.
func postConsole(t *testing.T, s *server, what, ct, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, s.admin+"dashboard/api/console/"+what, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", what, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b))
}

type sseEvent struct{ name, data string }

// consoleStream opens /dashboard/api/console (server-sent events) and
// returns the session of its first event and the events that follow. The
// stream closes at cleanup.
func consoleStream(t *testing.T, s *server) (string, <-chan sseEvent) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.admin+"dashboard/api/console", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req) // no timeout: the stream stays open
	if err != nil {
		cancel()
		t.Fatalf("GET /dashboard/api/console: %v", err)
	}
	if resp.StatusCode != http.StatusOK {
		cancel()
		resp.Body.Close()
		t.Fatalf("GET /dashboard/api/console: %s", resp.Status)
	}
	events := make(chan sseEvent, 100)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(events)
		sc := bufio.NewScanner(resp.Body)
		var ev sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if ev.name != "" || ev.data != "" {
					events <- ev
				}
				ev = sseEvent{}
			case strings.HasPrefix(line, "event:"):
				ev.name = strings.TrimSpace(strings.TrimPrefix(line, "event:"))
			case strings.HasPrefix(line, "data:"):
				if ev.data != "" {
					ev.data += "\n"
				}
				ev.data += strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " ")
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		resp.Body.Close()
		for range events {
		}
		<-done
	})
	select {
	case ev, ok := <-events:
		var first struct {
			Session string `json:"session"`
		}
		if !ok || ev.name != "session" || json.Unmarshal([]byte(ev.data), &first) != nil || first.Session == "" {
			t.Fatalf("the console stream's first event is %+v (ended: %v), want a session", ev, !ok)
		}
		return first.Session, events
	case <-time.After(10 * time.Second):
		t.Fatalf("no session event on the console stream within 10s")
	}
	return "", nil
}

// With thousands of clients the page lists one page of them (never a row
// per client), says how many there are, pages, sorts and filters.
func TestDashboardStaysUsableWithManyClients(t *testing.T) {
	// 2,000 zmq4 DEALERs connect in about 0.6 s (1.3 s with the race
	// detector on both sides), so the test opens that many.
	const many = 2000
	s := startServer(t, dashboardHandlers, "--admin", "127.0.0.1:0", "--shutdown-grace", "1s")

	// One client busy in a slow request, to see its row say so.
	busy := dial(t, s.addr, "busy", false)
	busy.send(`{"command":"slow","ms":600000}`)

	ctx, cancel := context.WithCancel(context.Background())
	socks := make([]zmq4.Socket, 0, many)
	t.Cleanup(func() {
		cancel()
		for _, sock := range socks {
			sock.Close()
		}
	})
	for i := range many {
		sock := zmq4.NewDealer(ctx, zmq4.WithID(zmq4.SocketIdentity(fmt.Sprintf("many-%04d", i))))
		if err := sock.Dial(s.addr); err != nil {
			t.Fatalf("dial client %d: %v", i, err)
		}
		socks = append(socks, sock)
	}
	const total = many + 1
	eventually(t, 30*time.Second, fmt.Sprintf("the server to count %d clients", total), func() bool { return clientsNow(t, s) == total })

	p := openDashboard(t, s.admin)
	const atMost = `clientIDs().length >= 1 && clientIDs().length <= 50 && $$('tr').length < 200`
	p.waitUntil(fmt.Sprintf("%d in #clients-count, \"of %d\" in #clients-range and one page of rows", total, total),
		fmt.Sprintf(`num('#clients-count') === '%[1]d' && /\bof\s*%[1]d\b/.test(txt('#clients-range').replace(/[,\u00a0\u202f]/g, '')) && %[2]s`, total, atMost))

	firstPage := pageEval[[]string](p, `clientIDs()`)
	p.click("#clients-next")
	p.waitUntil("the second page", fmt.Sprintf(`%s && clientIDs()[0] !== %s && /^\s*51\b/.test(txt('#clients-range'))`, atMost, jsString(firstPage[0])))
	secondPage := pageEval[[]string](p, `clientIDs()`)
	for _, id := range secondPage {
		if slices.Contains(firstPage, id) {
			t.Fatalf("client %s is on both the first page %q and the second %q", id, firstPage, secondPage)
		}
	}
	p.click("#clients-prev")
	p.waitUntil("the first page again", fmt.Sprintf(`clientIDs()[0] === %s && /^\s*1\b/.test(txt('#clients-range'))`, jsString(firstPage[0])))

	// Sort by another column, then by id (ascending), then by id again
	// (descending).
	ascending := `(() => { const ids = clientIDs(); return ids.every((id, i) => i === 0 || ids[i - 1] < id); })()`
	descending := `(() => { const ids = clientIDs(); return ids.every((id, i) => i === 0 || ids[i - 1] > id); })()`
	p.click(`#clients-table th[data-sort="remote"]`)
	p.click(`#clients-table th[data-sort="id"]`)
	p.waitUntil("the clients sorted by id", fmt.Sprintf(`%s && clientIDs()[0] === 'busy' && %s`, atMost, ascending))
	p.waitUntil("the busy client's row running slow",
		`(() => { const r = $('#clients-table tr[data-client-id="busy"]'); if (!r) return false; const cells = [...r.cells].map((c) => c.textContent.trim()); return cells.includes('slow') && (cells.includes('running') || cells.includes('waiting')); })()`)
	p.click(`#clients-table th[data-sort="id"]`)
	p.waitUntil("the clients sorted by id, reversed", fmt.Sprintf(`%s && clientIDs()[0] === 'many-%04d' && %s`, atMost, many-1, descending))

	p.fill("#clients-filter", fmt.Sprintf("many-%04d", many-2))
	p.waitUntil("the filtered client alone", fmt.Sprintf(`clientIDs().join() === 'many-%04d'`, many-2))
	p.assertClean()
}
