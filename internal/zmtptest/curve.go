package zmtptest

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"testing"

	"github.com/moebius-js/moebius-js/curve"
)

// CurveGreeting returns a 64-byte ZMTP 3.1 greeting asking for the CURVE
// mechanism as a client (as-server 0), as RFC 23 and RFC 25 lay it out.
func CurveGreeting() []byte {
	g := Greeting(3, "CURVE")
	g[11] = 1
	return g
}

// CurveClient is a raw TCP connection that speaks ZMTP CURVE (RFC 25) by
// hand: each step of the handshake is a method, so that a test can stop
// after any of them, skip one or send something else in its place, and the
// messages after it are sealed and opened with the session the handshake
// made. Its embedded Client writes and reads raw bytes (Write, WriteErr,
// ReadMessage, ExpectClosed); CurveClient's own Send, SendText, Recv,
// RecvText and Handshake shadow the Client's plaintext ones.
type CurveClient struct {
	*Client
	Long    curve.KeyPair // this client's long-term key pair
	HS      *curve.ClientHandshake
	Session *curve.Session // once ReadReady succeeded
	// ServerMetadata is what the server's READY carried.
	ServerMetadata []byte
	// MessageFlags are the ZMTP flags of the frames that carry MESSAGE
	// commands: 0 by default, as libzmq 4.3 sends them (it keeps MORE
	// inside the box, and ignores a MESSAGE in a command frame);
	// FlagCommand to send them as command frames.
	MessageFlags byte
}

// DialCurve connects to a tcp:// endpoint as a CURVE client with the
// long-term pair long, expecting the server whose public key is server;
// the connection closes at cleanup. Nothing is sent yet.
func DialCurve(t testing.TB, endpoint string, server curve.Key, long curve.KeyPair) *CurveClient {
	t.Helper()
	hs, err := curve.NewClientHandshake(long, server)
	if err != nil {
		t.Fatalf("curve client handshake: %v", err)
	}
	return &CurveClient{Client: Dial(t, endpoint), Long: long, HS: hs}
}

// NewKeyPair returns a fresh key pair, failing the test if there is none.
func NewKeyPair(t testing.TB) curve.KeyPair {
	t.Helper()
	kp, err := curve.GenerateKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	return kp
}

// CommandBody frames a command body (name length, name, fields: what the
// curve package's handshakes and sealer produce) as a ZMTP command frame,
// with a long size when it needs one.
func CommandBody(body []byte) []byte { return Frame(FlagCommand, body) }

// Handshake runs the whole CURVE handshake as socketType with identity
// (nil: none sent): greeting and HELLO, the server's greeting and WELCOME,
// INITIATE, READY.
func (c *CurveClient) Handshake(socketType string, identity *string) {
	c.t.Helper()
	if err := c.HandshakeErr(socketType, identity); err != nil {
		c.t.Fatal(err)
	}
}

// HandshakeErr is Handshake returning its error.
func (c *CurveClient) HandshakeErr(socketType string, identity *string) error {
	if err := c.WriteErr(append(CurveGreeting(), c.HelloFrame()...)); err != nil {
		return fmt.Errorf("send greeting and HELLO: %w", err)
	}
	if err := c.ReadGreetingErr(); err != nil {
		return err
	}
	if err := c.ReadWelcomeErr(); err != nil {
		return err
	}
	initiate, err := c.InitiateFrameErr(Metadata(socketType, identity))
	if err != nil {
		return err
	}
	if err := c.WriteErr(initiate); err != nil {
		return fmt.Errorf("send INITIATE: %w", err)
	}
	return c.ReadReadyErr()
}

// HelloFrame returns the HELLO command frame (each call a new nonce).
func (c *CurveClient) HelloFrame() []byte { return CommandBody(c.HS.Hello()) }

// ReadGreetingErr reads the server's greeting and checks that it is ZMTP
// 3.x and CURVE (not its as-server byte: libzmq's CURVE servers send 0).
func (c *CurveClient) ReadGreetingErr() error {
	g := make([]byte, 64)
	c.deadline()
	if _, err := io.ReadFull(c.r, g); err != nil {
		return fmt.Errorf("read server greeting: %w", err)
	}
	if g[0] != 0xff || g[9] != 0x7f || g[10] != 3 || string(bytes.TrimRight(g[12:32], "\x00")) != "CURVE" {
		return fmt.Errorf("bad server greeting % x", g)
	}
	return nil
}

// ReadCommandErr reads one command frame and returns its body; a message
// frame or a frame with MORE is an error.
func (c *CurveClient) ReadCommandErr() ([]byte, error) {
	frames, isCmd, err := c.ReadMessage()
	if err != nil {
		return nil, err
	}
	if !isCmd || len(frames) != 1 {
		return nil, fmt.Errorf("expected one command frame, got %d frames (command %v): %q", len(frames), isCmd, frames)
	}
	return frames[0], nil
}

// ReadWelcomeErr reads the server's WELCOME and checks it.
func (c *CurveClient) ReadWelcomeErr() error {
	body, err := c.ReadCommandErr()
	if err != nil {
		return fmt.Errorf("read WELCOME: %w", err)
	}
	if err := c.HS.Welcome(body); err != nil {
		return fmt.Errorf("server WELCOME %q: %w", truncate(body), err)
	}
	return nil
}

// InitiateFrameErr returns the INITIATE command frame carrying metadata
// (see CurveMetadata); it needs the WELCOME read first.
func (c *CurveClient) InitiateFrameErr(metadata []byte) ([]byte, error) {
	body, err := c.HS.Initiate(metadata)
	if err != nil {
		return nil, fmt.Errorf("build INITIATE: %w", err)
	}
	return CommandBody(body), nil
}

// ReadReadyErr reads the server's READY, checks it, and keeps the session
// and the server's metadata.
func (c *CurveClient) ReadReadyErr() error {
	body, err := c.ReadCommandErr()
	if err != nil {
		return fmt.Errorf("read READY: %w", err)
	}
	md, s, err := c.HS.Ready(body)
	if err != nil {
		return fmt.Errorf("server READY %q: %w", truncate(body), err)
	}
	if !bytes.Contains(md, Property("Socket-Type", "ROUTER")) {
		return fmt.Errorf("server READY metadata %q announces no ROUTER", md)
	}
	c.Session, c.ServerMetadata = s, md
	return nil
}

// Seal returns one frame carrying a MESSAGE command (with MessageFlags)
// that carries data with the plaintext flags given (curve.FlagMore,
// curve.FlagCommand), sealed with the next nonce. Nothing is sent: a test
// may send it, alter it, send it twice or keep it for later.
func (c *CurveClient) Seal(flags byte, data []byte) []byte {
	return Frame(c.MessageFlags, c.Session.Sealer.AppendMessage(nil, flags, data))
}

// SealMessage returns the MESSAGE frames carrying a multipart message, one
// MESSAGE a frame, MORE set in all the plaintexts but the last.
func (c *CurveClient) SealMessage(frames ...[]byte) []byte {
	var b []byte
	for i, f := range frames {
		var flags byte
		if i < len(frames)-1 {
			flags = curve.FlagMore
		}
		b = append(b, c.Seal(flags, f)...)
	}
	return b
}

// Send seals and sends one message.
func (c *CurveClient) Send(frames ...[]byte) { c.t.Helper(); c.Write(c.SealMessage(frames...)) }

// SendText seals and sends a one-frame message.
func (c *CurveClient) SendText(s string) { c.t.Helper(); c.Send([]byte(s)) }

// RecvErr reads MESSAGE commands until they make a whole message, opening
// each, and returns its frames. It takes a MESSAGE in a message frame (as
// libzmq sends them) or in a command frame; commands sealed inside
// MESSAGEs (a PING) are skipped; anything that is not a MESSAGE, or does
// not open, is an error.
func (c *CurveClient) RecvErr() ([][]byte, error) {
	var frames [][]byte
	for {
		_, body, err := c.ReadFrameErr()
		if err != nil {
			return nil, err
		}
		if !curve.IsMessage(body) {
			return nil, fmt.Errorf("expected a MESSAGE, got command %q", truncate(body))
		}
		flags, data, err := c.Session.Opener.Open(body)
		if err != nil {
			return nil, fmt.Errorf("open the server's MESSAGE: %w", err)
		}
		if flags&curve.FlagCommand != 0 {
			continue
		}
		frames = append(frames, data)
		if flags&curve.FlagMore == 0 {
			return frames, nil
		}
	}
}

// Recv reads and opens one message, failing the test on an error.
func (c *CurveClient) Recv() [][]byte {
	c.t.Helper()
	frames, err := c.RecvErr()
	if err != nil {
		c.t.Fatalf("curve recv: %v", err)
	}
	return frames
}

// RecvText reads one message and returns its first frame.
func (c *CurveClient) RecvText() string { c.t.Helper(); return string(c.Recv()[0]) }

// ReadFrameErr reads one frame, whatever its flags, and returns them and
// its body.
func (c *Client) ReadFrameErr() (flags byte, body []byte, err error) {
	c.deadline()
	if flags, err = c.r.ReadByte(); err != nil {
		return 0, nil, err
	}
	var size uint64
	if flags&FlagLong != 0 {
		var b [8]byte
		if _, err := io.ReadFull(c.r, b[:]); err != nil {
			return 0, nil, err
		}
		size = binary.BigEndian.Uint64(b[:])
	} else {
		b, err := c.r.ReadByte()
		if err != nil {
			return 0, nil, err
		}
		size = uint64(b)
	}
	if size > 64<<20 {
		return 0, nil, fmt.Errorf("server sent a %d-byte frame", size)
	}
	body = make([]byte, size)
	if _, err := io.ReadFull(c.r, body); err != nil {
		return 0, nil, err
	}
	return flags, body, nil
}

// LongHeader returns a command frame header (LONG set) claiming size bytes,
// for a peer that announces more than it will send.
func LongHeader(flags byte, size uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte{flags | FlagLong}, size)
}

// truncate shortens a body for an error message.
func truncate(b []byte) []byte {
	if len(b) > 32 {
		return b[:32]
	}
	return b
}
