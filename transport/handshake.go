package transport

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/go-zeromq/zmq4"
)

const (
	// greetingLen is the fixed size of a ZMTP 3.x greeting.
	greetingLen = 64

	// handshakeMaxBytes caps everything a peer may send after its greeting
	// and before the handshake completes (in practice: one READY command,
	// a few hundred bytes).
	handshakeMaxBytes = 64 << 10

	// maxIdentityLen is the longest routing identity ZMTP allows.
	maxIdentityLen = 255
)

// hello is what the handshake learned about the peer.
type hello struct {
	socketType string
	identity   string // empty when the peer announced none (or an empty one)
}

// side is one end of a handshake: the socket type we announce, our
// identity, and the peer socket types we can talk to.
type side struct {
	socketType zmq4.SocketType
	identity   string // announced when not empty (a ROUTER announces none, like libzmq)
	server     bool
	peers      []zmq4.SocketType
}

var (
	routerSide = side{socketType: zmq4.Router, server: true, peers: []zmq4.SocketType{zmq4.Dealer, zmq4.Req, zmq4.Router}}
	dealerSide = side{socketType: zmq4.Dealer, peers: []zmq4.SocketType{zmq4.Router, zmq4.Dealer, zmq4.Rep}}
)

// readyMetadata is our READY command's metadata.
func (sd side) readyMetadata() []byte {
	md := appendProperty(nil, "Socket-Type", string(sd.socketType))
	if sd.identity != "" {
		md = appendProperty(md, "Identity", sd.identity)
	}
	return md
}

func appendProperty(b []byte, name, value string) []byte {
	b = append(b, byte(len(name)))
	b = append(b, name...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(value)))
	return append(b, value...)
}

// handshake runs the ZMTP greeting and NULL security handshake on c as the
// server side of a ROUTER, within timeout.
func handshake(c net.Conn, timeout time.Duration, log logger) (hello, error) {
	return handshakeAs(routerSide, c, timeout, log)
}

// handshakeAs runs the ZMTP greeting and NULL security handshake on c as
// sd, within timeout. It clears c's deadline on success. It uses zmq4.Open
// for the exchange, fed through a handshakeGuard so that no oversized frame
// reaches zmq4's allocator, and recovers from any panic inside zmq4 (logged
// with its stack), turning it into an error.
func handshakeAs(sd side, c net.Conn, timeout time.Duration, log logger) (hello, error) {
	if err := c.SetDeadline(time.Now().Add(timeout)); err != nil {
		return hello{}, fmt.Errorf("set handshake deadline: %w", err)
	}
	mech := &nullMechanism{side: sd}
	if err := openZMTP(newHandshakeGuard(c, handshakeMaxBytes), mech, log); err != nil {
		return hello{}, err
	}
	if err := c.SetDeadline(time.Time{}); err != nil {
		return hello{}, fmt.Errorf("clear handshake deadline: %w", err)
	}
	return mech.peer, nil
}

// openZMTP calls zmq4.Open, the last line of defence being recover().
func openZMTP(c net.Conn, mech *nullMechanism, log logger) (err error) {
	defer func() {
		if r := recover(); r != nil {
			log.Error("zmq4 panicked during handshake", "panic", r, "stack", string(debug.Stack()))
			err = fmt.Errorf("%w: handshake panicked: %v", ErrProtocol, r)
		}
	}()
	sd := mech.side
	if _, err := zmq4.Open(c, mech, sd.socketType, zmq4.SocketIdentity(sd.identity), sd.server, nil); err != nil {
		return fmt.Errorf("zmtp handshake: %w", err)
	}
	return nil
}

// logger is the slice of *slog.Logger the handshake needs.
type logger interface {
	Error(msg string, args ...any)
}

// nullMechanism is the ZMTP NULL security mechanism
// (https://rfc.zeromq.org/spec/23/#the-null-security-mechanism), server
// side, for one connection. zmq4's own is unexported, and its metadata
// parser panics on truncated input; this one checks every bound and keeps
// what it learned about the peer.
type nullMechanism struct {
	side side
	peer hello
}

var _ zmq4.Security = (*nullMechanism)(nil)

// Type implements zmq4.Security.
func (*nullMechanism) Type() zmq4.SecurityType { return zmq4.NullSecurity }

// Handshake implements zmq4.Security: send our READY, receive and check
// the peer's.
func (m *nullMechanism) Handshake(conn *zmq4.Conn, server bool) error {
	if err := conn.SendCmd(zmq4.CmdReady, m.side.readyMetadata()); err != nil {
		return fmt.Errorf("send READY: %w", err)
	}
	cmd, err := conn.RecvCmd()
	if err != nil {
		return fmt.Errorf("receive READY: %w", err)
	}
	switch cmd.Name {
	case zmq4.CmdReady:
	case zmq4.CmdError:
		return fmt.Errorf("%w: peer sent ERROR %q", ErrProtocol, errorReason(cmd.Body))
	default:
		return fmt.Errorf("%w: expected READY, got command %q", ErrProtocol, cmd.Name)
	}

	h, err := parseReady(cmd.Body)
	if err != nil {
		return err
	}
	if !slices.Contains(m.side.peers, zmq4.SocketType(h.socketType)) {
		return fmt.Errorf("%w: socket type %q cannot talk to a %s", ErrProtocol, h.socketType, m.side.socketType)
	}
	if len(h.identity) > maxIdentityLen {
		return fmt.Errorf("%w: identity of %d bytes (max %d)", ErrProtocol, len(h.identity), maxIdentityLen)
	}
	// zmq4.Open checks compatibility from this map after Handshake returns.
	conn.Peer.Meta["Socket-Type"] = h.socketType
	m.peer = h
	return nil
}

// Encrypt implements zmq4.Security: NULL does not encrypt.
func (*nullMechanism) Encrypt(w io.Writer, data []byte) (int, error) { return w.Write(data) }

// Decrypt implements zmq4.Security: NULL does not decrypt.
func (*nullMechanism) Decrypt(w io.Writer, data []byte) (int, error) { return w.Write(data) }

// parseReady parses READY metadata: a sequence of properties, each a
// 1-byte name length (1..255), the name, a 4-byte big-endian value length
// and the value. Names are case-insensitive. Anything truncated is an error.
func parseReady(b []byte) (hello, error) {
	var h hello
	for len(b) > 0 {
		nameLen := int(b[0])
		b = b[1:]
		if nameLen == 0 {
			return hello{}, fmt.Errorf("%w: metadata property with empty name", ErrProtocol)
		}
		if len(b) < nameLen+4 {
			return hello{}, fmt.Errorf("%w: metadata truncated in a property name", ErrProtocol)
		}
		name := string(b[:nameLen])
		valueLen := binary.BigEndian.Uint32(b[nameLen:])
		b = b[nameLen+4:]
		if uint64(valueLen) > uint64(len(b)) {
			return hello{}, fmt.Errorf("%w: metadata property %q claims %d bytes, %d left", ErrProtocol, name, valueLen, len(b))
		}
		value := string(b[:valueLen])
		b = b[valueLen:]

		switch strings.ToLower(name) {
		case "socket-type":
			h.socketType = value
		case "identity":
			h.identity = value
		}
	}
	return h, nil
}

// errorReason extracts the reason of an ERROR command body (1-byte length,
// reason), tolerating truncation.
func errorReason(body []byte) string {
	if len(body) == 0 {
		return ""
	}
	return string(body[1:][:min(int(body[0]), len(body)-1)])
}

// handshakeGuard wraps the net.Conn given to zmq4.Open. Its Read follows
// the byte stream (64-byte greeting, then ZMTP frames: flags byte, 1- or
// 8-byte size, body) and fails before handing over the last byte of a
// frame header that is not an acceptable handshake command: reserved or
// MORE flag set, not a command, or a size beyond what is left of
// handshakeMaxBytes. io.ReadFull discards errors once it has all the bytes
// it asked for, so the guard withholds the offending byte, returning fewer
// bytes together with the error.
//
// Each Read is limited to the current segment (greeting, flags, size or
// body), so the guard never reads ahead of zmq4: after the handshake the
// connection's remaining bytes are all still in the socket.
type handshakeGuard struct {
	net.Conn
	limit int64 // bytes allowed after the greeting
	used  int64 // bytes of frames accepted so far (headers + bodies)
	state guardState
	left  uint64 // bytes left in the current segment
	long  bool   // the current frame has an 8-byte size
	size  uint64 // frame size accumulated so far
	err   error  // sticky
}

type guardState uint8

const (
	guardGreeting guardState = iota
	guardFlags
	guardSize
	guardBody
)

func newHandshakeGuard(c net.Conn, limit int64) *handshakeGuard {
	return &handshakeGuard{Conn: c, limit: limit, state: guardGreeting, left: greetingLen}
}

// Read implements io.Reader with the checks described on handshakeGuard.
func (g *handshakeGuard) Read(p []byte) (int, error) {
	if g.err != nil {
		return 0, g.err
	}
	if len(p) == 0 {
		return 0, nil
	}
	if uint64(len(p)) > g.left {
		p = p[:g.left]
	}
	n, err := g.Conn.Read(p)
	if kept, gerr := g.advance(p[:n]); gerr != nil {
		g.err = gerr
		return kept, gerr
	}
	return n, err
}

// advance moves the state machine over b, which never spans two segments.
// On a violation it returns how many bytes of b may be handed over.
func (g *handshakeGuard) advance(b []byte) (int, error) {
	switch g.state {
	case guardGreeting, guardBody:
		g.left -= uint64(len(b))
		if g.left == 0 {
			g.state, g.left = guardFlags, 1
		}
	case guardFlags:
		if len(b) == 0 {
			return 0, nil
		}
		flags := b[0]
		switch {
		case flags&flagReserved != 0:
			return 0, fmt.Errorf("%w: reserved flag bits set during handshake (flags 0x%02x)", ErrProtocol, flags)
		case flags&flagCommand == 0:
			return 0, fmt.Errorf("%w: message frame before the handshake completed", ErrProtocol)
		case flags&flagMore != 0:
			return 0, fmt.Errorf("%w: command frame with MORE flag during handshake", ErrProtocol)
		}
		g.long = flags&flagLong != 0
		g.size, g.state, g.left = 0, guardSize, 1
		if g.long {
			g.left = 8
		}
	case guardSize:
		for i, c := range b {
			g.size = g.size<<8 | uint64(c)
			g.left--
			if g.left > 0 {
				continue
			}
			headerLen := int64(shortHeaderLen)
			if g.long {
				headerLen = longHeaderLen
			}
			room := g.limit - g.used - headerLen
			if room < 0 || g.size > uint64(room) {
				return i, fmt.Errorf("%w: handshake frame of %d bytes exceeds the %d-byte handshake limit",
					ErrMessageTooLarge, g.size, g.limit)
			}
			g.used += headerLen + int64(g.size)
			g.state, g.left = guardBody, g.size
			if g.size == 0 {
				g.state, g.left = guardFlags, 1
			}
		}
	}
	return len(b), nil
}

// isTimeout reports whether err is a network timeout (e.g. a deadline).
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
