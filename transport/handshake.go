package transport

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/moebius-js/moebius-js/curve"
)

const (
	// greetingLen is the fixed size of a ZMTP 3.x greeting, and
	// greetingVersionLen the size of its signature and major version.
	greetingLen        = 64
	greetingVersionLen = 11

	// handshakeMaxBytes caps each command a peer sends during the
	// handshake (NULL's READY, CURVE's HELLO and INITIATE: a few hundred
	// bytes in practice).
	handshakeMaxBytes = 64 << 10

	// maxIdentityLen is the longest routing identity ZMTP allows.
	maxIdentityLen = 255
)

// hello is what the handshake learned about the peer.
type hello struct {
	socketType string
	identity   string // empty when the peer announced none (or an empty one)

	// On a CURVE connection: the session that seals and opens every
	// frame from now on (the client's key the server keeps in the
	// side's proven).
	session *curve.Session
}

// side is one end of a handshake: the socket type we announce, our
// identity, the peer socket types we can talk to, and the security
// mechanism: NULL, or CURVE as the server (curveServer) or the client
// (curveClient).
type side struct {
	socketType  string
	identity    string // announced when not empty (a ROUTER announces none, like libzmq)
	server      bool   // the ROUTER end: it vets the peer's identity
	peers       []string
	curveServer *CurveServer
	curveClient *CurveClient
	proven      *atomic.Pointer[curve.Key] // where a CURVE server stores the client's key once proven (set with curveServer)
}

// mechanism is the security mechanism sd speaks, as the greeting names it.
func (sd side) mechanism() string {
	if sd.curveServer != nil || sd.curveClient != nil {
		return "CURVE"
	}
	return "NULL"
}

var (
	routerSide = side{socketType: "ROUTER", server: true, peers: []string{"DEALER", "REQ", "ROUTER"}}
	dealerSide = side{socketType: "DEALER", peers: []string{"ROUTER", "DEALER", "REP"}}
)

// Errors a handshake refuses a peer with (all wrap ErrProtocol), so that
// the server can count each kind and a client can say why it was refused:
// ErrVersion, the peer speaks a ZMTP older than 3.0; ErrMechanism, it
// asked for another security mechanism (NULL, CURVE) than this end's.
var (
	ErrVersion           = fmt.Errorf("%w: unsupported ZMTP version", ErrProtocol)
	ErrMechanism         = fmt.Errorf("%w: unsupported security mechanism", ErrProtocol)
	errReservedIdentity  = fmt.Errorf("%w: identity starting with a zero byte (libzmq reserves those for identities it generates)", ErrProtocol)
	errHandshakeTooLarge = fmt.Errorf("%w: handshake command over %d bytes", ErrMessageTooLarge, handshakeMaxBytes)
)

// readyMetadata is our READY command's metadata.
func (sd side) readyMetadata() []byte {
	md := appendProperty(nil, "Socket-Type", sd.socketType)
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

// handshake runs the ZMTP greeting and security handshake on c as the
// server side of a ROUTER, within timeout: NULL, or CURVE when cs is set,
// storing the client's key in proven as soon as it is proven.
func handshake(c net.Conn, cs *CurveServer, proven *atomic.Pointer[curve.Key], timeout time.Duration) (hello, error) {
	sd := routerSide
	sd.curveServer, sd.proven = cs, proven
	return handshakeAs(sd, c, timeout)
}

// handshakeAs runs the ZMTP 3.1 greeting and security handshake (RFC 23;
// RFC 25 for CURVE) on c as sd, within timeout, and clears c's deadline on
// success. It reads exactly the bytes of the handshake, segment by
// segment, so that a peer speaking an older ZMTP is recognised from its
// first bytes (it would wait for ours), nothing is allocated before its
// size is checked, and every byte after the handshake is left for the
// frame reader.
func handshakeAs(sd side, c net.Conn, timeout time.Duration) (hello, error) {
	deadline := time.Now().Add(timeout)
	if err := c.SetDeadline(deadline); err != nil {
		return hello{}, fmt.Errorf("set handshake deadline: %w", err)
	}
	mine := sd.mechanism()
	out := greeting(mine, sd.curveServer != nil)
	if mine == "NULL" {
		// Our greeting and READY go out together: NULL needs nothing from
		// the peer first.
		out = appendCommand(out, cmdReady, sd.readyMetadata())
	}
	// The server sends its signature and major version, reads the peer's
	// whole greeting, then sends the rest of its own. libzmq sends the rest
	// of its greeting once it has our version, but closes without a word
	// when it reads a mechanism that is not its own: sent in one piece,
	// our mechanism would reach it first, and we would never learn what a
	// peer on the wrong endpoint asked for. Once we have, the rest of ours
	// tells the peer. A client sends all at once, so that two of ours never
	// wait for each other.
	first := len(out)
	if sd.server {
		first = greetingVersionLen
	}
	if _, err := c.Write(out[:first]); err != nil {
		return hello{}, fmt.Errorf("send greeting: %w", err)
	}
	mech, err := readGreeting(c)
	if err != nil {
		return hello{}, err
	}
	if first < len(out) {
		rest := out[first:]
		if mech != mine {
			// The rest of the greeting alone: the peer learns from it
			// that the mechanisms differ, and closes too.
			rest = out[first:greetingLen]
		}
		if _, err := c.Write(rest); err != nil {
			return hello{}, fmt.Errorf("send greeting: %w", err)
		}
	}
	if mech != mine {
		err := fmt.Errorf("%w: the peer asked for %s, this endpoint speaks %s", ErrMechanism, mech, mine)
		if !sd.server {
			err = fmt.Errorf("%w: the server speaks %s, this client %s", ErrMechanism, mech, mine)
		}
		if sd.curveServer != nil {
			return hello{}, &curveRefusal{reason: CurveNullClient, err: err}
		}
		return hello{}, err
	}
	var metadata []byte
	var h hello
	switch {
	case sd.curveServer != nil:
		metadata, h.session, err = curveServerHandshake(sd, c, deadline)
	case sd.curveClient != nil:
		metadata, h.session, err = curveClientHandshake(sd, c)
	default:
		metadata, err = readPeerReady(c)
	}
	if err != nil {
		return hello{}, err
	}
	h.socketType, h.identity, err = parseReady(metadata)
	if err != nil {
		return hello{}, err
	}
	if !slices.Contains(sd.peers, h.socketType) {
		return hello{}, fmt.Errorf("%w: socket type %q cannot talk to a %s", ErrProtocol, h.socketType, sd.socketType)
	}
	if len(h.identity) > maxIdentityLen {
		return hello{}, fmt.Errorf("%w: identity of %d bytes (max %d)", ErrProtocol, len(h.identity), maxIdentityLen)
	}
	if sd.server && len(h.identity) > 0 && h.identity[0] == 0 {
		return hello{}, errReservedIdentity
	}
	if err := c.SetDeadline(time.Time{}); err != nil {
		return hello{}, fmt.Errorf("clear handshake deadline: %w", err)
	}
	return h, nil
}

// greeting is a ZMTP 3.1 greeting: signature, version 3.1, mechanism,
// as-server, filler.
func greeting(mechanism string, asServer bool) []byte {
	g := make([]byte, greetingLen, greetingLen+64)
	g[0], g[9] = 0xff, 0x7f
	g[10], g[11] = 3, 1
	copy(g[12:32], mechanism)
	if asServer {
		g[32] = 1
	}
	return g
}

// readGreeting reads the peer's greeting and returns the mechanism it asks
// for. A peer speaking ZMTP 1.0 or 2.0 is refused (ErrVersion) as soon
// as its first bytes show it: it would otherwise wait for a greeting of its
// own version until the deadline.
func readGreeting(r io.Reader) (mechanism string, err error) {
	var g [greetingLen]byte
	read := func(from, to int) error {
		if _, err := io.ReadFull(r, g[from:to]); err != nil {
			return fmt.Errorf("read greeting: %w", err)
		}
		return nil
	}
	// ZMTP 1.0 starts with its identity frame: a length byte (or 0xff and
	// an 8-byte length), then flags whose low bit is 0 where 2.0 and later
	// put 0x7f.
	if err := read(0, 1); err != nil {
		return "", err
	}
	if g[0] != 0xff {
		return "", fmt.Errorf("%w: the peer speaks ZMTP 1.0", ErrVersion)
	}
	if err := read(1, 10); err != nil {
		return "", err
	}
	if g[9]&1 == 0 {
		return "", fmt.Errorf("%w: the peer speaks ZMTP 1.0", ErrVersion)
	}
	if err := read(10, 11); err != nil {
		return "", err
	}
	switch major := g[10]; {
	case major == 1:
		return "", fmt.Errorf("%w: the peer speaks ZMTP 2.0 (revision 1)", ErrVersion)
	case major < 3:
		return "", fmt.Errorf("%w: the peer speaks ZMTP revision %d", ErrVersion, major)
	}
	if err := read(11, greetingLen); err != nil {
		return "", err
	}
	return string(bytes.TrimRight(g[12:32], "\x00")), nil
}

// readPeerReady reads a NULL peer's READY and returns its metadata.
func readPeerReady(r io.Reader) ([]byte, error) {
	body, err := readCommandBody(r)
	if err != nil {
		return nil, fmt.Errorf("receive READY: %w", err)
	}
	name, data, err := parseCommand(body)
	if err != nil {
		return nil, err
	}
	switch name {
	case cmdReady:
		return data, nil
	case "ERROR":
		return nil, fmt.Errorf("%w: peer sent ERROR %q", ErrProtocol, errorReason(data))
	default:
		return nil, fmt.Errorf("%w: expected READY, got command %q", ErrProtocol, name)
	}
}

// appendCommand appends a command frame (RFC 23: name length, name, data).
func appendCommand(b []byte, name string, data []byte) []byte {
	var hdr [maxHeaderLen]byte
	b = append(b, putHeader(hdr[:], flagCommand, 1+len(name)+len(data))...)
	b = append(b, byte(len(name)))
	b = append(b, name...)
	return append(b, data...)
}

// appendCommandBody appends a command frame whose body (name length,
// name, data) is already built, as the curve package builds them.
func appendCommandBody(b, body []byte) []byte {
	var hdr [maxHeaderLen]byte
	b = append(b, putHeader(hdr[:], flagCommand, len(body))...)
	return append(b, body...)
}

// readCommandBody reads one command frame of at most handshakeMaxBytes
// and returns its body: name length, name, data.
func readCommandBody(r io.Reader) ([]byte, error) {
	var hdr [maxHeaderLen]byte
	if _, err := io.ReadFull(r, hdr[:1]); err != nil {
		return nil, err
	}
	flags := hdr[0]
	switch {
	case flags&flagReserved != 0:
		return nil, fmt.Errorf("%w: reserved flag bits set during handshake (flags 0x%02x)", ErrProtocol, flags)
	case flags&flagCommand == 0:
		return nil, fmt.Errorf("%w: message frame before the handshake completed", ErrProtocol)
	case flags&flagMore != 0:
		return nil, fmt.Errorf("%w: command frame with MORE flag during handshake", ErrProtocol)
	}
	sizeLen := 1
	if flags&flagLong != 0 {
		sizeLen = 8
	}
	if _, err := io.ReadFull(r, hdr[1:1+sizeLen]); err != nil {
		return nil, err
	}
	size := uint64(hdr[1])
	if sizeLen == 8 {
		size = binary.BigEndian.Uint64(hdr[1:9])
	}
	if size > handshakeMaxBytes {
		return nil, fmt.Errorf("%w (%d bytes)", errHandshakeTooLarge, size)
	}
	body := make([]byte, size)
	if _, err := io.ReadFull(r, body); err != nil {
		return nil, err
	}
	return body, nil
}

// parseReady parses READY metadata: a sequence of properties, each a
// 1-byte name length (1..255), the name, a 4-byte big-endian value length
// and the value. Names are case-insensitive. Anything truncated is an error.
func parseReady(b []byte) (socketType, identity string, err error) {
	for len(b) > 0 {
		nameLen := int(b[0])
		b = b[1:]
		if nameLen == 0 {
			return "", "", fmt.Errorf("%w: metadata property with empty name", ErrProtocol)
		}
		if len(b) < nameLen+4 {
			return "", "", fmt.Errorf("%w: metadata truncated in a property name", ErrProtocol)
		}
		name := string(b[:nameLen])
		valueLen := binary.BigEndian.Uint32(b[nameLen:])
		b = b[nameLen+4:]
		if uint64(valueLen) > uint64(len(b)) {
			return "", "", fmt.Errorf("%w: metadata property %q claims %d bytes, %d left", ErrProtocol, name, valueLen, len(b))
		}
		value := string(b[:valueLen])
		b = b[valueLen:]

		switch strings.ToLower(name) {
		case "socket-type":
			socketType = value
		case "identity":
			identity = value
		}
	}
	return socketType, identity, nil
}

// errorReason extracts the reason of an ERROR command body (1-byte length,
// reason), tolerating truncation.
func errorReason(body []byte) string {
	if len(body) == 0 {
		return ""
	}
	return string(body[1:][:min(int(body[0]), len(body)-1)])
}

// isTimeout reports whether err is a network timeout (e.g. a deadline).
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
