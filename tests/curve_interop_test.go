package tests

// The CURVE interoperability suite: the real moebius-js binary serving
// CURVE (--curve-key, --curve-allow) to real libzmq clients (Debian's pyzmq
// via interop/curve_client.py, zeromq.js 6 via interop/node/curve_client.js,
// libzmq's C API via interop/curve_client.c compiled here), and our own
// dealer() and request() as CURVE clients of a pyzmq CURVE ROUTER. Like the
// rest of the interop suite, a missing client library skips the test,
// unless REQUIRE_INTEROP=1, which makes it fail.

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moebius-js/moebius-js/internal/waitfor"
)

// curveScript is the pyzmq side of this suite.
const curveScript = "curve_client.py"

// curveEcho echoes every frame back, except for "whoami", which answers
// with the client's id and CURVE public key.
const curveEcho = `
function echo(client, data, message) { client.send(...message.frames); }
function whoami(client) { client.send({ id: client.id, publicKey: client.publicKey }); }
module.exports = { route: (message) => ({ handler: message.text === 'whoami' ? whoami : echo }) };
`

// whoamiReply is curveEcho's answer to "whoami".
type whoamiReply struct {
	ID        string  `json:"id"`
	PublicKey *string `json:"publicKey"`
}

func parseWhoami(t *testing.T, reply string) whoamiReply {
	t.Helper()
	var w whoamiReply
	dec := json.NewDecoder(strings.NewReader(reply))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&w); err != nil {
		t.Fatalf("%q is not a whoami reply: %v", reply, err)
	}
	return w
}

// checkOwnKey fails unless reply is a whoami reply carrying key.
func checkOwnKey(t *testing.T, who, reply, key string) {
	t.Helper()
	w := parseWhoami(t, reply)
	if w.PublicKey == nil || *w.PublicKey != key {
		t.Errorf("%s: the handler saw client.publicKey %s, want the client's own key %q", who, jsonText(w.PublicKey), key)
	}
}

func jsonText(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// lines splits a script's output into its non-empty lines.
func outputLines(out []byte) [][]byte {
	var ls [][]byte
	for _, l := range bytes.Split(bytes.TrimSpace(out), []byte("\n")) {
		if len(l) > 0 {
			ls = append(ls, l)
		}
	}
	return ls
}

// runCurvePy runs a scenario of curve_client.py and decodes its JSON lines.
func runCurvePy[T any](t *testing.T, args ...string) []T {
	t.Helper()
	return decodeJSONLines[T](t, outputLines(runPython(t, 90*time.Second, curveScript, args...)))
}

// pyCert is a certificate pair pyzmq's create_certificates wrote.
type pyCert struct {
	Name       string `json:"name"`
	Public     string `json:"public"`
	Secret     string `json:"secret"`
	PublicFile string `json:"public_file"`
	SecretFile string `json:"secret_file"`
}

// pyCerts has pyzmq write a certificate pair per name into dir.
func pyCerts(t *testing.T, dir string, names ...string) map[string]pyCert {
	t.Helper()
	certs := map[string]pyCert{}
	for _, c := range runCurvePy[pyCert](t, append([]string{"certs", dir}, names...)...) {
		certs[c.Name] = c
	}
	if len(certs) != len(names) {
		t.Fatalf("pyzmq wrote %d certificates, want %d", len(certs), len(names))
	}
	return certs
}

// loadedCert is what pyzmq's load_certificate read from a file.
type loadedCert struct {
	Path          string  `json:"path"`
	Public        *string `json:"public"`
	Secret        *string `json:"secret"`
	DerivedPublic *string `json:"derived_public"`
}

// pyLoadCert reads a secret certificate with pyzmq and returns its keys.
func pyLoadCert(t *testing.T, path string) (public, secret string) {
	t.Helper()
	c := runCurvePy[loadedCert](t, "loadcert", path)[0]
	if c.Public == nil || c.Secret == nil {
		t.Fatalf("pyzmq read no key pair from %s: %+v", path, c)
	}
	return *c.Public, *c.Secret
}

// keygen runs `moebius-js keygen path` and returns the public key it
// printed.
func runKeygen(t *testing.T, path string) string {
	t.Helper()
	stdout, stderr, code := runCLI(t, "keygen", path)
	if code != 0 {
		t.Fatalf("keygen %s exited %d: %s", path, code, stderr)
	}
	key := strings.TrimSpace(stdout)
	if len(key) != 40 {
		t.Fatalf("keygen printed %q, want a 40-character Z85 public key", stdout)
	}
	return key
}

// pyReply is one line of the request scenario.
type pyReply struct {
	ClientKey *string   `json:"client_key"`
	Reply     *[]string `json:"reply"` // hex frames; nil when none came
	Events    []string  `json:"events"`
	Attempts  int       `json:"attempts"`
}

// frames decodes the reply's hex frames (nil if there was no reply).
func (r pyReply) frames(t *testing.T) [][]byte {
	t.Helper()
	if r.Reply == nil {
		return nil
	}
	var fs [][]byte
	for _, h := range *r.Reply {
		b, err := hex.DecodeString(h)
		if err != nil {
			t.Fatal(err)
		}
		fs = append(fs, b)
	}
	return fs
}

// pyRequest runs the request scenario: one client, one message.
func pyRequest(t *testing.T, addr string, flags []string, specs ...string) pyReply {
	t.Helper()
	got := runCurvePy[pyReply](t, append(append([]string{"request", addr}, specs...), flags...)...)
	if len(got) != 1 {
		t.Fatalf("request printed %d lines, want 1", len(got))
	}
	return got[0]
}

// specBytes is the frame a curve_client.py frame spec stands for.
func specBytes(spec string) []byte {
	if s, ok := strings.CutPrefix(spec, "text:"); ok {
		return []byte(s)
	}
	n, err := strconv.Atoi(strings.TrimPrefix(spec, "size:"))
	if err != nil {
		panic("bad frame spec " + spec)
	}
	b := make([]byte, n)
	for i := range b {
		b[i] = byte((i*7 + n) % 256)
	}
	return b
}

// curveInterop is a moebius-js server speaking CURVE on its bind endpoint,
// with its key from `moebius-js keygen` and client keys allowed by the
// folder allow (pyzmq-written public certificates).
type curveInterop struct {
	*server
	serverKey string            // the server's public key
	allow     string            // the --curve-allow folder
	dir       string            // a scratch folder outside it
	clients   map[string]pyCert // secret certificates of the allowed clients
}

// startCurveInterop serves handlers with CURVE and allows a client key per
// name (its public certificate moved into the allow folder).
func startCurveInterop(t *testing.T, handlers string, names ...string) *curveInterop {
	t.Helper()
	requireInterop(t)
	dir := t.TempDir()
	cs := &curveInterop{dir: dir, allow: filepath.Join(dir, "allow")}
	if err := os.Mkdir(cs.allow, 0o755); err != nil {
		t.Fatal(err)
	}
	serverCert := filepath.Join(dir, "server.key")
	cs.serverKey = runKeygen(t, serverCert)
	cs.clients = map[string]pyCert{}
	if len(names) > 0 {
		cs.clients = pyCerts(t, filepath.Join(dir, "clients"), names...)
		for name, c := range cs.clients {
			if err := os.Rename(c.PublicFile, filepath.Join(cs.allow, name+".key")); err != nil {
				t.Fatal(err)
			}
		}
	}
	cs.server = startServer(t, writeHandlers(t, handlers),
		"--curve-key", serverCert+"_secret", "--curve-allow", cs.allow, "--metrics", "127.0.0.1:0")
	return cs
}

// clientFlags are curve_client.py's flags for the allowed client name.
func (cs *curveInterop) clientFlags(name string) []string {
	return []string{"--server-key", cs.serverKey, "--client-cert", cs.clients[name].SecretFile}
}

// curveInteropLogLine waits for a line of the server's log that matches every
// pattern, and returns it.
func (s *server) curveInteropLogLine(t *testing.T, timeout time.Duration, patterns ...string) string {
	t.Helper()
	res := make([]*regexp.Regexp, len(patterns))
	for i, p := range patterns {
		res[i] = regexp.MustCompile(p)
	}
	match := func() string {
		for _, line := range strings.Split(s.logs.b.String(), "\n") {
			if !slices.ContainsFunc(res, func(re *regexp.Regexp) bool { return !re.MatchString(line) }) {
				return line
			}
		}
		return ""
	}
	s.logs.mu.Lock()
	defer s.logs.mu.Unlock()
	var line string
	waitfor.Cond(&s.logs.mu, s.logs.cond, timeout, func() bool {
		line = match()
		return line != "" || s.logs.eof
	})
	if line == "" {
		t.Fatalf("no server log line matched all of %q within %v:\n%s", patterns, timeout, s.logs.b.String())
	}
	return line
}

// logValue is a pattern for key=value in a slog text line, where the value
// may be quoted (a Z85 key may hold '=').
func logValue(key, value string) string {
	return `\b` + key + `="?` + regexp.QuoteMeta(value) + `"?(\s|$)`
}

// requireCurveTool skips the test when err says a client library is missing,
// or fails it if REQUIRE_INTEROP=1.
func requireCurveTool(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	if os.Getenv("REQUIRE_INTEROP") == "1" {
		t.Fatalf("CURVE interop test cannot run and REQUIRE_INTEROP=1: %v", err)
	}
	t.Skipf("skipping CURVE interop test: %v (REQUIRE_INTEROP=1 turns this skip into a failure)", err)
}

// nodeDir holds the zeromq.js client and its package.json.
const nodeDir = "interop/node"

var zeromqJSCheck = sync.OnceValue(func() error {
	node, err := exec.LookPath("node")
	if err != nil {
		return fmt.Errorf("no node on PATH (install Node.js, then npm ci in tests/%s): %w", nodeDir, err)
	}
	cmd := exec.Command(node, "-e", `const z = require('zeromq');
if (!/^6\./.test(require('zeromq/package.json').version)) throw new Error('zeromq.js is not version 6');
if (!z.capability.curve) throw new Error('zeromq.js has no CURVE');`)
	cmd.Dir = nodeDir
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("zeromq.js 6 is not usable in tests/%s (run npm ci there): %s", nodeDir, nodeFailure(err, out))
	}
	return nil
})

// nodeFailure is the gist of a failed node run: its first Error line.
func nodeFailure(err error, out []byte) string {
	for _, l := range strings.Split(string(out), "\n") {
		if strings.Contains(l, "Error") {
			return strings.TrimSpace(l)
		}
	}
	return err.Error()
}

var libzmqDevCheck = sync.OnceValue(func() error {
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		return fmt.Errorf("no gcc on PATH (install gcc and libzmq3-dev): %w", err)
	}
	cmd := exec.Command(gcc, "-E", "-x", "c", "-o", os.DevNull, "-")
	cmd.Stdin = strings.NewReader("#include <zmq.h>\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("zmq.h not found (install libzmq3-dev): %s", pythonFailure(err, out))
	}
	return nil
})

// buildCClient compiles interop/curve_client.c against libzmq into a temp dir.
func buildCClient(t *testing.T) string {
	t.Helper()
	requireCurveTool(t, libzmqDevCheck())
	bin := filepath.Join(t.TempDir(), "curve_client")
	out, err := exec.Command("gcc", "-Wall", "-o", bin, "interop/curve_client.c", "-lzmq").CombinedOutput()
	if err != nil {
		t.Fatalf("gcc interop/curve_client.c -lzmq: %v\n%s", err, out)
	}
	return bin
}

// runCurveClient runs a client program and returns its stdout, failing the test
// with its stderr if it fails.
func runCurveClient(t *testing.T, dir, name string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 5 * time.Second
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("%s %s: %v\nstderr:\n%s\nstdout:\n%s", name, strings.Join(args, " "), err, stderr.Bytes(), stdout.Bytes())
		}
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("%s did not finish within 60s", name)
	}
	return stdout.Bytes()
}

// pyProcess is a running curve_client.py scenario the test talks to over
// its stdin and stdout.
type pyProcess struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	out    chan []byte // its stdout lines; closed at EOF
	stderr bytes.Buffer
	exited chan error
}

func startCurvePy(t *testing.T, args ...string) *pyProcess {
	t.Helper()
	requireInterop(t)
	script, err := filepath.Abs(filepath.Join("interop", curveScript))
	if err != nil {
		t.Fatal(err)
	}
	p := &pyProcess{out: make(chan []byte, 16), exited: make(chan error, 1)}
	p.cmd = exec.Command(interopPython, append([]string{"-E", script}, args...)...)
	p.cmd.Stderr = &p.stderr
	if p.stdin, err = p.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(nil, 4<<20)
		for sc.Scan() {
			p.out <- slices.Clone(sc.Bytes())
		}
		close(p.out)
		p.exited <- p.cmd.Wait()
	}()
	t.Cleanup(func() {
		p.stdin.Close()
		select {
		case <-p.exited:
		case <-time.After(10 * time.Second):
			_ = p.cmd.Process.Kill()
			t.Errorf("%s %s did not exit within 10s of its stdin closing", curveScript, args[0])
		}
	})
	return p
}

// next decodes the next line the script prints, waiting up to timeout.
func nextLine[T any](t *testing.T, p *pyProcess, timeout time.Duration) T {
	t.Helper()
	select {
	case l, ok := <-p.out:
		if !ok {
			err := <-p.exited
			p.exited <- err // for the cleanup
			t.Fatalf("%s exited (%v) without printing the next line; stderr:\n%s", curveScript, err, p.stderr.String())
		}
		return decodeJSONLines[T](t, [][]byte{l})[0]
	case <-time.After(timeout):
		t.Fatalf("%s printed nothing within %v", curveScript, timeout)
	}
	panic("unreachable")
}

func TestCurveKeygenWritesCertificatesPyzmqReads(t *testing.T) {
	requireInterop(t)
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "server.key")
	public := runKeygen(t, path)

	got := runCurvePy[loadedCert](t, "loadcert", path, path+"_secret")
	pub, sec := got[0], got[1]
	if pub.Public == nil || *pub.Public != public || pub.Secret != nil {
		t.Errorf("pyzmq read %s as public %s, secret %s; want public %q (what keygen printed) and no secret",
			path, jsonText(pub.Public), jsonText(pub.Secret), public)
	}
	if sec.Public == nil || *sec.Public != public || sec.Secret == nil {
		t.Fatalf("pyzmq read %s_secret as public %s, secret %s; want public %q and a secret key",
			path, jsonText(sec.Public), jsonText(sec.Secret), public)
	}
	if sec.DerivedPublic == nil || *sec.DerivedPublic != public {
		t.Errorf("libzmq derives public key %s from the secret key, but the certificates say %q",
			jsonText(sec.DerivedPublic), public)
	}

	info, err := os.Stat(path + "_secret")
	if err != nil {
		t.Fatal(err)
	}
	if mode := info.Mode().Perm(); mode != 0o600 {
		t.Errorf("the secret certificate has mode %#o, want 0600", mode)
	}

	if other := runKeygen(t, filepath.Join(dir, "other.key")); other == public {
		t.Errorf("two keygen runs made the same key %q", public)
	}
}

func TestCurvePyzmqClientsGetMultipartAndLargeFramesBackByteExact(t *testing.T) {
	requireInterop(t)
	t.Parallel()
	srv := startCurveInterop(t, curveEcho, "py")
	for _, tc := range []struct {
		name, socket string
		specs        []string
	}{
		{"dealer-multipart", "dealer", []string{"text:one", "text:two", "text:three"}},
		{"req-multipart", "req", []string{"text:one", "text:two", "text:three"}},
		// Over 255 bytes a ZMTP frame (and a CURVE MESSAGE command) takes
		// the long size form.
		{"dealer-300B-and-100KB", "dealer", []string{"size:300", "size:102400", "text:end"}},
		{"req-300B-and-100KB", "req", []string{"size:102400", "size:300"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := pyRequest(t, srv.addr, append(srv.clientFlags("py"), "--socket", tc.socket), tc.specs...)
			got := r.frames(t)
			if got == nil {
				t.Fatalf("no reply (monitor events %v)", r.Events)
			}
			if len(got) != len(tc.specs) {
				t.Fatalf("got %d frames back, want %d", len(got), len(tc.specs))
			}
			for i, spec := range tc.specs {
				if want := specBytes(spec); !bytes.Equal(got[i], want) {
					t.Errorf("frame %d (%s) came back as %d bytes, not the %d sent", i, spec, len(got[i]), len(want))
				}
			}
		})
	}
}

func TestCurveFiftyConcurrentPyzmqClientsEachSeeTheirOwnKeyAndReply(t *testing.T) {
	requireInterop(t)
	t.Parallel()
	const clients = 50
	var names []string
	for i := range clients {
		names = append(names, fmt.Sprintf("c%02d", i))
	}
	srv := startCurveInterop(t, curveEcho, names...)
	var certs []string
	for _, n := range names {
		certs = append(certs, srv.clients[n].SecretFile)
	}
	got := runCurvePy[struct {
		Identity  string     `json:"identity"`
		ClientKey string     `json:"client_key"`
		Replies   [][]string `json:"replies"`
	}](t, append([]string{"many", srv.addr, "--server-key", srv.serverKey, "--timeout-ms", "20000"}, certs...)...)
	if len(got) != clients {
		t.Fatalf("%d clients reported, want %d", len(got), clients)
	}
	keys := map[string]bool{}
	for _, c := range got {
		keys[c.ClientKey] = true
		if len(c.Replies) != 1 || len(c.Replies[0]) != 1 {
			t.Errorf("%s received %q, want exactly one one-frame reply", c.Identity, c.Replies)
			continue
		}
		w := parseWhoami(t, c.Replies[0][0])
		if w.ID != c.Identity || w.PublicKey == nil || *w.PublicKey != c.ClientKey {
			t.Errorf("%s (key %s) got the reply for id %q, key %s", c.Identity, c.ClientKey, w.ID, jsonText(w.PublicKey))
		}
	}
	if len(keys) != clients {
		t.Errorf("the %d clients had %d distinct keys", clients, len(keys))
	}
}

// TestCurveClientsOfOtherLibrariesGetAReply: zeromq.js 6 and libzmq's C API,
// as CURVE DEALERs with their keys given as Z85 text, get the reply, which
// names their own public key.
func TestCurveClientsOfOtherLibrariesGetAReply(t *testing.T) {
	requireInterop(t)
	t.Parallel()
	srv := startCurveInterop(t, curveEcho, "node", "c")
	for _, tc := range []struct {
		name string
		cert string // the client's certificate in srv.clients
		// run runs the client and returns the first frame of its reply.
		run func(t *testing.T, addr, serverKey, public, secret string) string
	}{
		{"zeromq.js-6", "node", func(t *testing.T, addr, serverKey, public, secret string) string {
			requireCurveTool(t, zeromqJSCheck())
			out := runCurveClient(t, nodeDir, "node", "curve_client.js", addr, serverKey, public, secret, "whoami")
			r := decodeJSONLines[struct {
				Reply []string `json:"reply"`
			}](t, outputLines(out))[0]
			if len(r.Reply) != 1 {
				t.Fatalf("zeromq.js got %q, want one frame", r.Reply)
			}
			return r.Reply[0]
		}},
		{"libzmq-C", "c", func(t *testing.T, addr, serverKey, public, secret string) string {
			bin := buildCClient(t)
			out := runCurveClient(t, "", bin, addr, serverKey, public, secret, "whoami")
			r := decodeJSONLines[struct {
				Reply []string `json:"reply"`
			}](t, outputLines(out))[0]
			if len(r.Reply) != 1 {
				t.Fatalf("the C client got %q, want one frame", r.Reply)
			}
			b, err := hex.DecodeString(r.Reply[0])
			if err != nil {
				t.Fatal(err)
			}
			return string(b)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			public, secret := pyLoadCert(t, srv.clients[tc.cert].SecretFile)
			checkOwnKey(t, tc.name, tc.run(t, srv.addr, srv.serverKey, public, secret), public)
		})
	}
}

// pyRouterReply is what the router scenario answers: the client's User-Id
// (its Z85 key, set by pyzmq's authenticator) and the frames it sent.
type pyRouterReply struct {
	User   *string  `json:"user"`
	Frames []string `json:"frames"`
}

// TestCurveOwnDealerAndRequestReachAPyzmqCurveRouter: dealer() and request()
// of a handler, with curve options, get answers from a libzmq CURVE ROUTER
// whose authenticator admits only the key they were given; with a key the
// router does not admit, or the wrong server key, they get none.
func TestCurveOwnDealerAndRequestReachAPyzmqCurveRouter(t *testing.T) {
	requireInterop(t)
	t.Parallel()
	dir := t.TempDir()
	routerAllow := filepath.Join(dir, "router-allow")
	if err := os.Mkdir(routerAllow, 0o755); err != nil {
		t.Fatal(err)
	}
	ours := filepath.Join(dir, "ours.key")
	ourPublic := runKeygen(t, ours)
	if err := os.Rename(ours, filepath.Join(routerAllow, "ours.key")); err != nil {
		t.Fatal(err)
	}
	_, ourSecret := pyLoadCert(t, ours+"_secret")
	stranger := filepath.Join(dir, "stranger.key")
	runKeygen(t, stranger)
	strangerPublic, strangerSecret := pyLoadCert(t, stranger+"_secret")
	elsewhere := runKeygen(t, filepath.Join(dir, "elsewhere.key"))

	router := startCurvePy(t, "router", "--allow", routerAllow)
	info := nextLine[struct {
		Endpoint  string `json:"endpoint"`
		ServerKey string `json:"server_key"`
	}](t, router, 30*time.Second)

	keys := map[string]map[string]string{
		"allowed":      {"serverKey": info.ServerKey, "publicKey": ourPublic, "secretKey": ourSecret},
		"stranger":     {"serverKey": info.ServerKey, "publicKey": strangerPublic, "secretKey": strangerSecret},
		"wrong-server": {"serverKey": elsewhere, "publicKey": ourPublic, "secretKey": ourSecret},
	}
	handlers := fmt.Sprintf(`
const { dealer, request, TimeoutError } = require('moebius');
const upstream = %s;
const keys = %s;
function* viaDealer(client, data) {
  const d = dealer(upstream, { curve: keys[data.keys] });
  d.send('via', 'dealer');
  try { client.send(yield d.recv({ timeout: data.timeout })); }
  catch (e) { if (e instanceof TimeoutError) client.send('timeout'); else throw e; }
}
function* viaRequest(client, data) {
  try { client.send(yield request(upstream, 'via request', { curve: keys[data.keys], timeout: data.timeout })); }
  catch (e) { if (e instanceof TimeoutError) client.send('timeout'); else throw e; }
}
module.exports = { rules: [
  { command: 'dealer', handler: viaDealer },
  { command: 'request', handler: viaRequest },
] };
`, jsonText(info.Endpoint), jsonText(keys))
	srv := startServer(t, writeHandlers(t, handlers))

	for _, tc := range []struct {
		name, command, keys string
		timeout             int      // ms the handler waits
		want                []string // the frames the router saw; nil: no answer
	}{
		{"dealer", "dealer", "allowed", 8000, []string{"via", "dealer"}},
		{"request", "request", "allowed", 8000, []string{"via request"}},
		{"dealer-with-a-key-the-router-refuses", "dealer", "stranger", 1500, nil},
		{"request-with-a-key-the-router-refuses", "request", "stranger", 1500, nil},
		{"dealer-with-the-wrong-server-key", "dealer", "wrong-server", 1500, nil},
		{"request-with-the-wrong-server-key", "request", "wrong-server", 1500, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := dial(t, srv.addr, "", false)
			reply := c.roundTrip(fmt.Sprintf(`{"command":%q,"keys":%q,"timeout":%d}`, tc.command, tc.keys, tc.timeout))
			if tc.want == nil {
				if reply != "timeout" {
					t.Fatalf("got %q, want a TimeoutError (the router must not answer)", reply)
				}
				return
			}
			var r pyRouterReply
			if err := json.Unmarshal([]byte(reply), &r); err != nil {
				t.Fatalf("got %q, not the router's answer", reply)
			}
			if r.User == nil || *r.User != ourPublic {
				t.Errorf("the router saw the client key %s, want %q", jsonText(r.User), ourPublic)
			}
			if !slices.Equal(r.Frames, tc.want) {
				t.Errorf("the router got frames %q, want %q", r.Frames, tc.want)
			}
		})
	}
}

// TestCurveRefusalsAsALibzmqClientSeesThem: a pyzmq client with the wrong
// server key, with a key not in the allow folder, or without CURVE, never
// completes the handshake or gets a reply, and the server logs and counts
// the refusal with its reason; an allowed client on the same server is
// served.
func TestCurveRefusalsAsALibzmqClientSeesThem(t *testing.T) {
	requireInterop(t)
	t.Parallel()
	srv := startCurveInterop(t, curveEcho, "allowed")
	otherServer := runKeygen(t, filepath.Join(srv.dir, "other-server.key"))
	for _, tc := range []struct {
		name   string
		flags  []string
		reason string // "" for a client that is served
	}{
		{"allowed-client-is-served", srv.clientFlags("allowed"), ""},
		{"wrong-server-key", []string{"--server-key", otherServer, "--client-cert", srv.clients["allowed"].SecretFile}, "server_key"},
		{"client-key-not-allowed", []string{"--server-key", srv.serverKey}, "client_key"},
		{"null-client", []string{"--null"}, "null_client"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			timeout := "1000"
			if tc.reason == "" {
				timeout = "10000"
			}
			r := pyRequest(t, srv.addr, append(tc.flags, "--timeout-ms", timeout), "text:hello")
			if tc.reason == "" {
				if f := r.frames(t); len(f) != 1 || string(f[0]) != "hello" {
					t.Fatalf("the allowed client got %q (monitor events %v), want its echo", f, r.Events)
				}
				return
			}
			if r.Reply != nil {
				t.Errorf("a refused client got a reply: %q", r.frames(t))
			}
			if slices.Contains(r.Events, "HANDSHAKE_SUCCEEDED") {
				t.Errorf("libzmq completed the handshake of a client that should be refused: %v", r.Events)
			}
			patterns := []string{`msg="curve handshake refused"`, logValue("reason", tc.reason)}
			if tc.reason == "client_key" {
				patterns = append(patterns, logValue("client_key", *r.ClientKey))
			}
			line := srv.curveInteropLogLine(t, 10*time.Second, patterns...)
			t.Logf("server: %s", line)
			if n := srv.metricLabelled("moebius_curve_refused_total", fmt.Sprintf("reason=%q", tc.reason)); n < 1 {
				t.Errorf("moebius_curve_refused_total{reason=%q} is %v after the refusal", tc.reason, n)
			}
		})
	}
}

// TestCurveRemovingAKeyFileDisconnectsItsClientAndAddingOneLetsANewClientIn:
// the allow folder is live. Deleting a client's certificate disconnects that
// client (libzmq's monitor sees it) and no other; copying a new one in lets
// its client in, without a restart.
func TestCurveRemovingAKeyFileDisconnectsItsClientAndAddingOneLetsANewClientIn(t *testing.T) {
	requireInterop(t)
	t.Parallel()
	srv := startCurveInterop(t, curveEcho, "keep", "drop")
	keep, drop := srv.clients["keep"], srv.clients["drop"]

	p := startCurvePy(t, "revoke", srv.addr, "--server-key", srv.serverKey,
		"--keep", keep.SecretFile, "--drop", drop.SecretFile, "--timeout-ms", "10000")
	before := nextLine[struct {
		Keep []string `json:"keep"`
		Drop []string `json:"drop"`
	}](t, p, 30*time.Second)
	checkOwnKey(t, "keep", before.Keep[0], keep.Public)
	checkOwnKey(t, "drop", before.Drop[0], drop.Public)

	if err := os.Remove(filepath.Join(srv.allow, "drop.key")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(p.stdin, "removed\n"); err != nil {
		t.Fatal(err)
	}
	after := nextLine[struct {
		DropEvents []string  `json:"drop_events"`
		KeepEvents []string  `json:"keep_events"`
		KeepReply  *[]string `json:"keep_reply"`
		DropReply  *[]string `json:"drop_reply"`
	}](t, p, 30*time.Second)
	t.Logf("monitor events: drop %v, keep %v", after.DropEvents, after.KeepEvents)
	if !slices.Contains(after.DropEvents, "DISCONNECTED") {
		t.Errorf("the client whose key file was removed was not disconnected (its monitor saw %v)", after.DropEvents)
	}
	if after.DropReply != nil {
		t.Errorf("the client whose key file was removed still got a reply: %q", *after.DropReply)
	}
	if slices.Contains(after.KeepEvents, "DISCONNECTED") {
		t.Errorf("the client whose key stayed allowed was disconnected too (its monitor saw %v)", after.KeepEvents)
	}
	if after.KeepReply == nil {
		t.Errorf("the client whose key stayed allowed got no reply after the other's removal")
	} else {
		checkOwnKey(t, "keep", (*after.KeepReply)[0], keep.Public)
	}
	eventually(t, 5*time.Second, "moebius_curve_revoked_total to count the disconnect", func() bool {
		return srv.metric("moebius_curve_revoked_total") >= 1
	})

	// A client whose key is in no file yet is refused...
	late := pyCerts(t, filepath.Join(srv.dir, "late"), "late")["late"]
	lateFlags := []string{"--server-key", srv.serverKey, "--client-cert", late.SecretFile}
	if r := pyRequest(t, srv.addr, append(lateFlags, "--timeout-ms", "1000"), "text:whoami"); r.Reply != nil {
		t.Fatalf("a client whose key is in no file got a reply: %q", r.frames(t))
	}
	srv.curveInteropLogLine(t, 10*time.Second, `msg="curve handshake refused"`,
		logValue("reason", "client_key"), logValue("client_key", late.Public))
	// ...until its certificate appears in the folder.
	if err := os.Rename(late.PublicFile, filepath.Join(srv.allow, "late.key")); err != nil {
		t.Fatal(err)
	}
	r := pyRequest(t, srv.addr, append(lateFlags, "--retry", "--timeout-ms", "15000"), "text:whoami")
	f := r.frames(t)
	if len(f) != 1 {
		t.Fatalf("the client whose certificate was added got %q after %d attempts (events %v), want a whoami reply", f, r.Attempts, r.Events)
	}
	t.Logf("the added client got in at attempt %d", r.Attempts)
	checkOwnKey(t, "late", string(f[0]), late.Public)
	if !srv.alive() || len(listening.FindAllString(srv.logs.String(), -1)) != 1 {
		t.Errorf("the server restarted (or died) to take the new key:\n%s", srv.logs.String())
	}
}

// handlers.js's authorize export decides after the allow-list: here by the
// address the client connects from (libzmq binds a connection's source
// address with "tcp://source;destination").
func TestCurveAuthorizeExportDecidesWhoMayConnect(t *testing.T) {
	requireInterop(t)
	t.Parallel()
	srv := startCurveInterop(t, `
function whoami(client) { client.send({ id: client.id, publicKey: client.publicKey }); }
module.exports = {
  authorize: (key, address) => key.length === 40 && address.startsWith('127.0.0.2:'),
  route: () => ({ handler: whoami }),
};`, "alice")
	dest := strings.TrimPrefix(srv.addr, "tcp://")

	let := pyRequest(t, "tcp://127.0.0.2:0;"+dest, append(srv.clientFlags("alice"), "--timeout-ms", "10000"), "text:whoami")
	if let.Reply == nil {
		t.Fatalf("the client authorize() lets in got no reply (monitor events %v)", let.Events)
	}
	checkOwnKey(t, "alice from 127.0.0.2", string(let.frames(t)[0]), *let.ClientKey)

	refused := pyRequest(t, "tcp://127.0.0.1:0;"+dest, append(srv.clientFlags("alice"), "--timeout-ms", "1000"), "text:whoami")
	if refused.Reply != nil {
		t.Fatalf("the client authorize() refuses got a reply: %q", refused.frames(t))
	}
	line := srv.curveInteropLogLine(t, 10*time.Second, `msg="curve handshake refused"`, logValue("reason", "client_key"), `returned false`)
	t.Logf("server: %s", line)
}
