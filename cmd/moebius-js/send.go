package main

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/spf13/pflag"

	"github.com/moebius-js/moebius-js/transport"
)

// send is a client: it sends one message (each argument a frame) and
// prints each reply as it arrives, one line a message.
func send(args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("send", pflag.ContinueOnError)
	addr := fs.StringP("connect", "c", "tcp://127.0.0.1:5555", "server endpoint")
	count := fs.IntP("count", "n", 1, "replies to wait for (0: until --timeout passes without one)")
	timeout := fs.DurationP("timeout", "t", 5*time.Second, "how long to wait for each reply")
	req := fs.Bool("req", false, "speak as a REQ socket (an empty delimiter before the request, one reply) instead of a DEALER")
	identity := fs.StringP("identity", "i", "", "routing identity of the client (default: the server picks one)")
	curveClient := curveFlags(fs)
	if code, done := parseFlags(fs, args, stdout, stderr); done {
		return code
	}
	if fs.NArg() == 0 {
		fmt.Fprintln(stderr, "moebius-js send: give the message to send, e.g. '{\"command\":\"reply\"}'")
		return 2
	}
	if *req && *count != 1 {
		fmt.Fprintln(stderr, "moebius-js send: a REQ socket takes exactly one reply; drop --count or --req")
		return 2
	}

	curveKeys, err := curveClient()
	if err != nil {
		fmt.Fprintf(stderr, "moebius-js send: %v\n", err)
		return 2
	}
	network, address, err := transport.ParseEndpoint(*addr)
	if err != nil {
		fmt.Fprintf(stderr, "moebius-js send: %v\n", err)
		return 2
	}
	// The dealer connects in the background and retries for ever: dial
	// once first, so that a wrong address fails at once with the reason.
	probe, err := net.DialTimeout(network, address, *timeout)
	if err != nil {
		fmt.Fprintf(stderr, "moebius-js send: connect %s: %v\n", *addr, err)
		return 1
	}
	_ = probe.Close()

	replies := make(chan [][]byte, 64)
	d, err := transport.Dial(*addr, transport.DialConfig{
		Identity: *identity,
		Limits:   transport.Limits{HandshakeTimeout: *timeout},
		Curve:    curveKeys,
		Logger:   slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}, func(frames [][]byte) {
		if *req { // a REQ's reply comes behind the empty delimiter it sent
			if len(frames) == 0 || len(frames[0]) != 0 {
				return
			}
			frames = frames[1:]
		}
		select {
		case replies <- frames:
		default: // more than --count replies: nobody waits for them
		}
	})
	if err != nil {
		fmt.Fprintf(stderr, "moebius-js send: %v\n", err)
		return 2
	}
	defer d.Close()
	frames := make([][]byte, 0, fs.NArg()+1)
	if *req {
		frames = append(frames, []byte{}) // the delimiter a REQ socket puts first
	}
	for _, a := range fs.Args() {
		frames = append(frames, []byte(a))
	}
	if err := d.Send(frames...); err != nil {
		fmt.Fprintf(stderr, "moebius-js send: %v\n", err)
		return 1
	}

	got := 0
	for *count == 0 || got < *count {
		select {
		case r := <-replies:
			fmt.Fprintln(stdout, formatFrames(r))
			got++
		case <-time.After(*timeout):
			if *count == 0 && got > 0 {
				return 0
			}
			fmt.Fprintf(stderr, "moebius-js send: no reply from %s within %v (%d of %d received)\n", *addr, *timeout, got, *count)
			return 1
		}
	}
	return 0
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
