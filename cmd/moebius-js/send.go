package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/go-zeromq/zmq4"
	"github.com/spf13/pflag"
)

// send is a client: it sends one message (each argument a frame) and
// prints each reply as it arrives, one line a message.
func send(args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("send", pflag.ContinueOnError)
	addr := fs.StringP("connect", "c", "tcp://127.0.0.1:5555", "server endpoint")
	count := fs.IntP("count", "n", 1, "replies to wait for (0: until --timeout passes without one)")
	timeout := fs.DurationP("timeout", "t", 5*time.Second, "how long to wait for each reply")
	req := fs.Bool("req", false, "use a REQ socket (one reply per request) instead of a DEALER")
	identity := fs.StringP("identity", "i", "", "routing identity of the client (default: the server picks one)")
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

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var opts []zmq4.Option
	if *identity != "" {
		opts = append(opts, zmq4.WithID(zmq4.SocketIdentity(*identity)))
	}
	opts = append(opts, zmq4.WithDialerTimeout(*timeout))
	sock := zmq4.NewDealer(ctx, opts...)
	if *req {
		sock = zmq4.NewReq(ctx, opts...)
	}
	defer sock.Close()
	if err := sock.Dial(*addr); err != nil {
		fmt.Fprintf(stderr, "moebius-js send: connect %s: %v\n", *addr, err)
		return 1
	}
	frames := make([][]byte, fs.NArg())
	for i, a := range fs.Args() {
		frames[i] = []byte(a)
	}
	if err := sock.Send(zmq4.NewMsgFrom(frames...)); err != nil {
		fmt.Fprintf(stderr, "moebius-js send: %v\n", err)
		return 1
	}

	type result struct {
		msg zmq4.Msg
		err error
	}
	replies := make(chan result)
	go func() {
		for {
			m, err := sock.Recv()
			select {
			case replies <- result{m, err}:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	got := 0
	for *count == 0 || got < *count {
		select {
		case r := <-replies:
			if r.err != nil {
				fmt.Fprintf(stderr, "moebius-js send: %v\n", r.err)
				return 1
			}
			fmt.Fprintln(stdout, formatFrames(r.msg.Frames))
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
