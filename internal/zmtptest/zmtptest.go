// Package zmtptest speaks ZMTP 3 by hand, for tests that play a hostile or
// broken peer: it encodes greetings, commands and frames byte by byte and
// drives a raw TCP connection with them. It is test support; no production
// code imports it.
package zmtptest

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// Frame flags.
const (
	FlagMore    = 0x01
	FlagLong    = 0x02
	FlagCommand = 0x04
)

// Greeting returns a 64-byte ZMTP greeting: signature, version major.0,
// mechanism, as-server 0, filler.
func Greeting(major byte, mechanism string) []byte {
	g := make([]byte, 64)
	g[0], g[9], g[10], g[11] = 0xff, 0x7f, major, 0
	copy(g[12:32], mechanism)
	return g
}

// Property encodes one metadata property.
func Property(name, value string) []byte {
	b := []byte{byte(len(name))}
	b = append(b, name...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(value)))
	return append(b, value...)
}

// Command encodes a command frame: name-length, name, data.
func Command(name string, data []byte) []byte {
	body := append([]byte{byte(len(name))}, name...)
	return Frame(FlagCommand, append(body, data...))
}

// Ready encodes a READY command for a socket type and an identity (nil:
// none sent).
func Ready(socketType string, identity *string) []byte {
	return Command("READY", Metadata(socketType, identity))
}

// Metadata encodes the properties a peer announces (in NULL's READY,
// CURVE's INITIATE): its socket type and, unless nil, its identity.
func Metadata(socketType string, identity *string) []byte {
	md := Property("Socket-Type", socketType)
	if identity != nil {
		md = append(md, Property("Identity", *identity)...)
	}
	return md
}

// Frame encodes one frame with the given flags (LONG added when needed).
func Frame(flags byte, body []byte) []byte {
	if len(body) > 255 {
		h := []byte{flags | FlagLong}
		h = binary.BigEndian.AppendUint64(h, uint64(len(body)))
		return append(h, body...)
	}
	return append([]byte{flags, byte(len(body))}, body...)
}

// Message encodes a multipart message.
func Message(frames ...[]byte) []byte {
	var b []byte
	for i, f := range frames {
		var flags byte
		if i < len(frames)-1 {
			flags = FlagMore
		}
		b = append(b, Frame(flags, f)...)
	}
	return b
}

// Str returns a pointer to s, for Ready's identity.
func Str(s string) *string { return &s }

// Client is a raw TCP connection to a ZMTP server. Its methods fail the
// test on I/O errors unless they return the error.
type Client struct {
	t       testing.TB
	C       net.Conn
	r       *bufio.Reader
	Timeout time.Duration // for each read and write (default 10s)
}

// Dial connects to a tcp:// endpoint; the connection closes at cleanup.
func Dial(t testing.TB, endpoint string) *Client {
	t.Helper()
	c, err := DialErr(endpoint)
	if err != nil {
		t.Fatalf("dial %s: %v", endpoint, err)
	}
	t.Cleanup(func() { _ = c.C.Close() })
	c.t = t
	return c
}

// DialFrom is Dial from the local IP address from (such as 127.0.0.2, to
// play another host on loopback).
func DialFrom(t testing.TB, endpoint, from string) *Client {
	t.Helper()
	c, err := DialFromErr(endpoint, from)
	if err != nil {
		t.Fatalf("dial %s from %s: %v", endpoint, from, err)
	}
	t.Cleanup(func() { _ = c.C.Close() })
	c.t = t
	return c
}

// DialFromErr is DialFrom without a test; the caller closes C.
func DialFromErr(endpoint, from string) (*Client, error) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	c, err := d.Dial("tcp", strings.TrimPrefix(endpoint, "tcp://"))
	if err != nil {
		return nil, err
	}
	return &Client{C: c, r: bufio.NewReader(c), Timeout: 10 * time.Second}, nil
}

// DialErr connects without a test, for loops that open thousands of
// connections; the caller closes C. Its methods must not be used without a
// test (use Exchange).
func DialErr(endpoint string) (*Client, error) {
	c, err := net.Dial("tcp", strings.TrimPrefix(endpoint, "tcp://"))
	if err != nil {
		return nil, err
	}
	return &Client{C: c, r: bufio.NewReader(c), Timeout: 10 * time.Second}, nil
}

// Handshake completes a NULL handshake as socketType with identity (nil:
// none sent) and reads the server's greeting and READY.
func (c *Client) Handshake(socketType string, identity *string) {
	c.t.Helper()
	if err := c.HandshakeErr(socketType, identity); err != nil {
		c.t.Fatal(err)
	}
}

// HandshakeErr is Handshake returning its error.
func (c *Client) HandshakeErr(socketType string, identity *string) error {
	if err := c.WriteErr(append(Greeting(3, "NULL"), Ready(socketType, identity)...)); err != nil {
		return err
	}
	g := make([]byte, 64)
	c.deadline()
	if _, err := io.ReadFull(c.r, g); err != nil {
		return fmt.Errorf("read server greeting: %w", err)
	}
	if g[0] != 0xff || g[9] != 0x7f || g[10] != 3 || string(bytes.TrimRight(g[12:32], "\x00")) != "NULL" {
		return fmt.Errorf("bad server greeting % x", g)
	}
	frames, isCmd, err := c.ReadMessage()
	if err != nil || !isCmd || !bytes.HasPrefix(frames[0], []byte("\x05READY")) {
		return fmt.Errorf("server READY: %q cmd=%v err=%v", frames, isCmd, err)
	}
	return nil
}

func (c *Client) deadline() { _ = c.C.SetDeadline(time.Now().Add(c.Timeout)) }

// Write sends raw bytes.
func (c *Client) Write(b []byte) {
	c.t.Helper()
	if err := c.WriteErr(b); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// WriteErr is Write returning its error.
func (c *Client) WriteErr(b []byte) error {
	c.deadline()
	_, err := c.C.Write(b)
	return err
}

// Send sends one message.
func (c *Client) Send(frames ...[]byte) { c.t.Helper(); c.Write(Message(frames...)) }

// SendText sends a one-frame message.
func (c *Client) SendText(s string) { c.t.Helper(); c.Send([]byte(s)) }

// ReadMessage reads one message or command from the server.
func (c *Client) ReadMessage() (frames [][]byte, isCmd bool, err error) {
	for {
		flags, body, err := c.ReadFrameErr()
		if err != nil {
			return nil, false, err
		}
		frames = append(frames, body)
		isCmd = isCmd || flags&FlagCommand != 0
		if flags&FlagMore == 0 {
			return frames, isCmd, nil
		}
	}
}

// Recv reads one message, failing on a command or an error.
func (c *Client) Recv() [][]byte {
	c.t.Helper()
	frames, isCmd, err := c.ReadMessage()
	if err != nil || isCmd {
		c.t.Fatalf("recv: %q cmd=%v err=%v", frames, isCmd, err)
	}
	return frames
}

// RecvText reads one message and returns its first frame.
func (c *Client) RecvText() string { c.t.Helper(); return string(c.Recv()[0]) }

// ExpectClosed reads until the server closes the connection, failing if
// that takes longer than within, and returns every byte received first.
func (c *Client) ExpectClosed(within time.Duration) []byte {
	c.t.Helper()
	_ = c.C.SetReadDeadline(time.Now().Add(within))
	data, err := io.ReadAll(c.r)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		c.t.Fatalf("connection still open after %v (received %d bytes)", within, len(data))
	}
	return data // EOF (nil) or a reset: closed either way
}
