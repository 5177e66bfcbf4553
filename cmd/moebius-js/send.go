package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/spf13/pflag"

	"github.com/moebius-js/moebius-js/transport"
)

// sendOptions are send's flags, once parsed.
type sendOptions struct {
	connect, identity *string
	count             *int
	timeout           *time.Duration
	req, verbose      *bool
	curve             func() (*transport.CurveClient, error)
}

// sendFlags defines send's flags on fs.
func sendFlags(fs *pflag.FlagSet) sendOptions {
	return sendOptions{
		connect:  fs.StringP("connect", "c", "tcp://127.0.0.1:5555", "server endpoint, tcp://host:port or ipc://path"),
		count:    fs.IntP("count", "n", 1, "replies to wait for (0: until --timeout passes without one)"),
		timeout:  fs.DurationP("timeout", "t", 5*time.Second, "how long to wait to connect, and for each reply"),
		req:      fs.Bool("req", false, "speak as a REQ socket (an empty delimiter before the request, one reply) instead of a DEALER"),
		identity: fs.StringP("identity", "i", "", "routing identity of the client (default: the server picks one)"),
		verbose:  fs.Bool("verbose", false, "log the connection's events on stderr"),
		curve:    curveFlags(fs),
	}
}

// sendMaxMessageSize bounds a reply send accepts: far more than a server's
// default max_message_size, since the server chose to send it.
const sendMaxMessageSize = 256 << 20

// send is a client: it sends one message (each argument a frame) and
// prints each reply as it arrives, one line a message. When it fails it
// says what happened and what to check.
func send(args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("send", pflag.ContinueOnError)
	o := sendFlags(fs)
	if code, done := parseFlags(fs, args, stdout, stderr); done {
		return code
	}
	addr, count, timeout := *o.connect, *o.count, *o.timeout
	switch {
	case fs.NArg() == 0:
		return usageError(stderr, "send", "give the message to send, e.g. '{\"command\":\"reply\"}'")
	case *o.req && count != 1:
		return usageError(stderr, "send", "a REQ socket takes exactly one reply; drop --count or --req")
	case count < 0:
		return usageError(stderr, "send", "--count must not be negative")
	case timeout <= 0:
		return usageError(stderr, "send", "--timeout must be greater than zero")
	}
	curveKeys, err := o.curve()
	if err != nil {
		return usageError(stderr, "send", "%v", err)
	}
	network, address, err := transport.ParseEndpoint(addr)
	if err != nil {
		return usageError(stderr, "send", "--connect: %v", err)
	}
	fail := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "moebius-js send: "+format+"\n", a...)
		return 1
	}
	// The dealer connects in the background and retries for ever: dial
	// once first, so that an address nobody listens on fails at once with
	// the reason.
	probe, err := net.DialTimeout(network, address, timeout)
	if err != nil {
		return fail("%s", explainDial(addr, timeout, err))
	}
	_ = probe.Close()

	replies := make(chan [][]byte, 64)
	finished := make(chan struct{}) // closed when send stops reading replies
	events := make(chan transport.ConnState, 16)
	logs := slog.New(slog.DiscardHandler)
	if *o.verbose {
		logs = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	d, err := transport.Dial(addr, transport.DialConfig{
		Identity: *o.identity,
		Limits:   transport.Limits{HandshakeTimeout: timeout, MaxMessageSize: sendMaxMessageSize},
		Curve:    curveKeys,
		// One attempt is all a command line waits for: a failure ends it.
		ReconnectMin: time.Hour,
		Logger:       logs,
		OnState: func(st transport.ConnState) {
			select {
			case events <- st:
			default: // send has stopped listening
			}
		},
	}, func(frames [][]byte) {
		if *o.req { // a REQ's reply comes behind the empty delimiter it sent
			if len(frames) == 0 || len(frames[0]) != 0 {
				return
			}
			frames = frames[1:]
		}
		select {
		case replies <- frames: // send waits for these: the dealer's reader waits for send
		case <-finished: // send is done: nobody waits for more
		}
	})
	if err != nil {
		return usageError(stderr, "send", "%v", err)
	}
	defer d.Close()
	defer close(finished) // before the Close above: a reader waiting to hand over a reply lets go
	frames := make([][]byte, 0, fs.NArg()+1)
	if *o.req {
		frames = append(frames, []byte{}) // the delimiter a REQ socket puts first
	}
	for _, a := range fs.Args() {
		frames = append(frames, []byte(a))
	}
	if err := d.Send(frames...); err != nil {
		return fail("%v", err)
	}

	got, connected := 0, false
	show := func(r [][]byte) {
		fmt.Fprintln(stdout, formatFrames(r))
		got++
	}
	// printQueued prints the replies that came before an event: the
	// dealer delivers a message before it reports the connection lost.
	printQueued := func() {
		for count == 0 || got < count {
			select {
			case r := <-replies:
				show(r)
			default:
				return
			}
		}
	}
	wait := time.NewTimer(timeout)
	defer wait.Stop()
	for count == 0 || got < count {
		select {
		case r := <-replies:
			show(r)
			wait.Reset(timeout)
		case ev := <-events:
			switch ev.Event {
			case transport.ConnUp:
				connected = true
				continue
			case transport.ConnRefused:
				return fail("%s", explainRefused(addr, curveKeys != nil, ev.Err))
			case transport.ConnFailed:
				return fail("%s", explainFailed(addr, timeout, curveKeys != nil, ev.Err))
			}
			printQueued() // transport.ConnLost
			if (count == 0 && got > 0) || got == count {
				return 0
			}
			return fail("%s", explainLost(addr, *o.identity, got, count, ev.Err))
		case <-wait.C:
			if count == 0 && got > 0 {
				return 0
			}
			if !connected {
				return fail("%s", noHandshake(addr, timeout))
			}
			return fail("no reply from %s within %v (%d of %s received). The request was sent; check that a rule of the server's handlers.js answers it (the server's log shows a handler's error), or wait longer with --timeout", addr, timeout, got, wanted(count))
		}
	}
	return 0
}

// explainDial says why the server at addr could not be reached, and what
// to check.
func explainDial(addr string, timeout time.Duration, err error) string {
	var dnsErr *net.DNSError
	var netErr net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Sprintf("cannot connect to %s: nothing is listening there (connection refused). Is the server running, and does --connect name the endpoint it logs as \"listening\"?", addr)
	case errors.Is(err, os.ErrNotExist):
		return fmt.Sprintf("cannot connect to %s: no such socket file. Is the server running, bound to this ipc endpoint?", addr)
	case errors.Is(err, os.ErrPermission):
		return fmt.Sprintf("cannot connect to %s: permission denied. Check the socket file's permissions and those of its folder", addr)
	case errors.As(err, &dnsErr):
		return fmt.Sprintf("cannot connect to %s: the host %q is not known (%v). Check the host name in --connect", addr, dnsErr.Name, dnsErr.Err)
	case errors.As(err, &netErr) && netErr.Timeout():
		return fmt.Sprintf("cannot connect to %s: no answer within %v. Is the host up, and does a firewall let the port through? (--timeout waits longer)", addr, timeout)
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return fmt.Sprintf("cannot connect to %s: the host cannot be reached (%v). Check the address in --connect and the network", addr, err)
	}
	return fmt.Sprintf("cannot connect to %s: %v", addr, err)
}

// explainRefused says why the handshake with addr was refused.
func explainRefused(addr string, curve bool, err error) string {
	msg := fmt.Sprintf("the server at %s refused the ZeroMQ handshake: %s", addr, errText(err))
	switch s := errText(err); {
	case errors.Is(err, transport.ErrMechanism) && !curve:
		return msg + ". That endpoint speaks CURVE: give the server's public key with --curve-server-key (the server logs it as server_key in its \"curve on\" line)"
	case errors.Is(err, transport.ErrMechanism):
		return msg + ". That endpoint does not speak CURVE: drop --curve-server-key, or connect to one of the server's curve_bind endpoints"
	case errors.Is(err, transport.ErrVersion), strings.Contains(s, "greeting"):
		return msg + ". Is --connect a ZeroMQ endpoint (not, say, the admin HTTP port)?"
	case curve:
		return msg + ". Check that --curve-server-key is the server's public key, and that the server lets this client's key in (curve_allow, curve_allow_keys, authorize in handlers.js)"
	}
	return msg
}

// explainFailed says why the connection to addr failed before its
// handshake completed (the probe connection had succeeded).
func explainFailed(addr string, timeout time.Duration, curve bool, err error) string {
	var netErr net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, os.ErrNotExist):
		return explainDial(addr, timeout, err) + " (it stopped while send connected)"
	case errors.As(err, &netErr) && netErr.Timeout():
		return noHandshake(addr, timeout)
	}
	msg := fmt.Sprintf("the server at %s closed the connection during the ZeroMQ handshake (%s).", addr, errText(err))
	busy := "it may also be at its max_connections or max_handshakes. The server's log says why"
	switch {
	case curve && strings.Contains(errText(err), "greeting"):
		return msg + " The endpoint may not speak CURVE (then drop --curve-server-key, or connect to one of the server's curve_bind endpoints); " + busy
	case curve:
		return msg + " Check that --curve-server-key is the server's public key and that the server lets this client's key in (curve_allow, curve_allow_keys, authorize in handlers.js); " + busy
	}
	return msg + " If the endpoint speaks CURVE, give the server's public key with --curve-server-key; " + busy
}

// errText is err's message without the package prefix transport puts on
// its own.
func errText(err error) string {
	if err == nil {
		return "no reason given"
	}
	return strings.TrimPrefix(err.Error(), "transport: ")
}

// explainLost says what it means that addr closed the connection after
// got of count replies.
func explainLost(addr, identity string, got, count int, err error) string {
	reasons := "a handler closed the client, the server is shutting down, or the request broke one of its limits (max_message_size, max_frames)"
	if identity != "" {
		reasons = "another client is connected as --identity " + identity + ", " + reasons
	}
	return fmt.Sprintf("the server at %s closed the connection after %d of %s replies (%s). The server's log says why; usually %s", addr, got, wanted(count), errText(err), reasons)
}

// noHandshake says that addr took the connection but completed no ZeroMQ
// handshake within timeout (whether send's timer or the dealer's saw it
// first).
func noHandshake(addr string, timeout time.Duration) string {
	return fmt.Sprintf("connected to %s, but no ZeroMQ handshake completed within %v: is it a ZeroMQ endpoint (not, say, the admin HTTP port)? A busy server may need a longer --timeout", addr, timeout)
}

// wanted is --count as the messages say it: 0 waits for any number.
func wanted(count int) string {
	if count == 0 {
		return "any"
	}
	return fmt.Sprint(count)
}

// formatFrames renders a message on one line: frames separated by " | ",
// text as is, other bytes as 0x-hex.
func formatFrames(frames [][]byte) string {
	parts := make([]string, len(frames))
	for i, f := range frames {
		if utf8.Valid(f) {
			parts[i] = string(f)
		} else {
			parts[i] = fmt.Sprintf("0x%x", f)
		}
	}
	return strings.Join(parts, " | ")
}
