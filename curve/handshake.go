package curve

import (
	"bytes"
	"crypto/rand"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"golang.org/x/crypto/nacl/box"
	"golang.org/x/crypto/nacl/secretbox"
)

// Why a handshake or a message box is refused. Each error a
// ServerHandshake, ClientHandshake or Opener returns wraps one of them.
var (
	// ErrMalformed: a command of the wrong size, version or layout.
	ErrMalformed = errors.New("curve: malformed command")
	// ErrServerKey: the HELLO box does not open with this server's key:
	// the client was given another server's public key (or tampered).
	ErrServerKey = errors.New("curve: HELLO not sealed for this server's key")
	// ErrBadBox: a box (cookie, vouch, INITIATE, READY, WELCOME or
	// MESSAGE) does not open: forged, tampered or for another session.
	ErrBadBox = errors.New("curve: box does not open")
	// ErrNonce: a short nonce not above the last one (a replay, or
	// messages out of order).
	ErrNonce = errors.New("curve: nonce replayed or out of order")
)

// The handshake commands' frame bodies (name length, name, fields), in
// bytes (RFC 26, as ZMTP RFC 25 frames them).
const (
	helloLen           = 200 // "\x05HELLO", version 2, padding 72, C' 32, nonce 8, box 80
	welcomeLen         = 168 // "\x07WELCOME", nonce 16, box 144
	initiateMinLen     = 257 // "\x08INITIATE", cookie 96, nonce 8, box 144 + metadata
	readyMinLen        = 30  // "\x05READY", nonce 8, box 16 + metadata
	messageOverhead    = 33  // "\x07MESSAGE", nonce 8, box 16, flags 1
	cookieLen          = 96  // nonce 16, secret box of C' + s' (64 + 16)
	vouchBoxLen        = 80  // secret C' + S (64 + 16)
	boxOverhead        = box.Overhead
	initiatePlainFixed = KeyLen + 16 + vouchBoxLen
)

// MessageOverhead is what CURVE adds to each frame on the wire: a MESSAGE
// command's name, nonce, authenticator and flags byte.
const MessageOverhead = messageOverhead

// Command names, with the length byte ZMTP puts in front of a name.
const (
	cmdHello    = "\x05HELLO"
	cmdWelcome  = "\x07WELCOME"
	cmdInitiate = "\x08INITIATE"
	cmdReady    = "\x05READY"
	cmdMessage  = "\x07MESSAGE"
)

// Nonce prefixes (RFC 26): long nonces are 8-byte prefix + 16 random
// bytes; short nonces a 16-byte prefix + a 64-bit counter.
const (
	prefixHello    = "CurveZMQHELLO---"
	prefixWelcome  = "WELCOME-"
	prefixCookie   = "COOKIE--"
	prefixInitiate = "CurveZMQINITIATE"
	prefixVouch    = "VOUCH---"
	prefixReady    = "CurveZMQREADY---"
	prefixMessageC = "CurveZMQMESSAGEC"
	prefixMessageS = "CurveZMQMESSAGES"
)

// Flags of a MESSAGE's plaintext (RFC 26 as libzmq uses it).
const (
	FlagMore    = 0x01
	FlagCommand = 0x02
)

func shortNonce(prefix string, n uint64) *[24]byte {
	var nonce [24]byte
	copy(nonce[:], prefix)
	binary.BigEndian.PutUint64(nonce[16:], n)
	return &nonce
}

func longNonce(prefix string, random []byte) *[24]byte {
	var nonce [24]byte
	copy(nonce[:], prefix)
	copy(nonce[8:], random)
	return &nonce
}

func keyAt(b []byte) *[32]byte { return (*[32]byte)(b[:KeyLen]) }

// ServerHandshake is the server's half of one connection's handshake:
// Hello, then Initiate, then Ready, each at most once and in that order.
// One goroutine (the connection's reader) uses it.
type ServerHandshake struct {
	long      KeyPair
	rand      io.Reader
	transient KeyPair // S', s'
	client    Key     // C', from HELLO
	cookieKey [32]byte
	peerNonce uint64 // the last short nonce the client used
	step      int
}

// NewServerHandshake starts a handshake for a server whose long-term pair
// is long.
func NewServerHandshake(long KeyPair) *ServerHandshake {
	return &ServerHandshake{long: long, rand: rand.Reader}
}

// Hello checks the client's HELLO (its frame body) and returns the
// WELCOME to send back.
func (h *ServerHandshake) Hello(body []byte) (welcome []byte, err error) {
	if h.step != 0 {
		return nil, fmt.Errorf("%w: HELLO out of turn", ErrMalformed)
	}
	h.step++
	if len(body) != helloLen || !bytes.HasPrefix(body, []byte(cmdHello)) {
		return nil, fmt.Errorf("%w: HELLO of %d bytes, want %d", ErrMalformed, len(body), helloLen)
	}
	if major, minor := body[6], body[7]; major != 1 || minor != 0 {
		return nil, fmt.Errorf("%w: CurveZMQ version %d.%d, want 1.0", ErrMalformed, major, minor)
	}
	copy(h.client[:], body[80:112])
	h.peerNonce = binary.BigEndian.Uint64(body[112:120])
	if _, ok := box.Open(nil, body[120:200], shortNonce(prefixHello, h.peerNonce), (*[32]byte)(&h.client), (*[32]byte)(&h.long.Secret)); !ok {
		return nil, ErrServerKey
	}

	if h.transient, err = generateKeyPair(h.rand); err != nil {
		return nil, err
	}
	var random [32]byte // cookie key, then the nonces' random parts
	if _, err := io.ReadFull(h.rand, h.cookieKey[:]); err != nil {
		return nil, fmt.Errorf("curve: cookie key: %w", err)
	}
	if _, err := io.ReadFull(h.rand, random[:]); err != nil {
		return nil, fmt.Errorf("curve: nonces: %w", err)
	}
	// The cookie: C' and s', sealed with a key only this handshake holds.
	cookie := make([]byte, 16, cookieLen)
	copy(cookie, random[:16])
	var plain [2 * KeyLen]byte
	copy(plain[:], h.client[:])
	copy(plain[KeyLen:], h.transient.Secret[:])
	cookie = secretbox.Seal(cookie, plain[:], longNonce(prefixCookie, random[:16]), &h.cookieKey)

	welcomePlain := make([]byte, 0, KeyLen+cookieLen)
	welcomePlain = append(welcomePlain, h.transient.Public[:]...)
	welcomePlain = append(welcomePlain, cookie...)
	welcome = make([]byte, 0, welcomeLen)
	welcome = append(welcome, cmdWelcome...)
	welcome = append(welcome, random[16:]...)
	welcome = box.Seal(welcome, welcomePlain, longNonce(prefixWelcome, random[16:]), (*[32]byte)(&h.client), (*[32]byte)(&h.long.Secret))
	return welcome, nil
}

// Initiate checks the client's INITIATE (its frame body): the cookie is
// ours, the box opens, the client's long-term key vouches for its
// transient one and for this server. It returns the client's long-term
// public key and the ZMTP metadata it sent; the caller decides whether
// that key may connect, then calls Ready.
func (h *ServerHandshake) Initiate(body []byte) (client Key, metadata []byte, err error) {
	if h.step != 1 {
		return Key{}, nil, fmt.Errorf("%w: INITIATE out of turn", ErrMalformed)
	}
	h.step++
	if len(body) < initiateMinLen || !bytes.HasPrefix(body, []byte(cmdInitiate)) {
		return Key{}, nil, fmt.Errorf("%w: INITIATE of %d bytes, want at least %d", ErrMalformed, len(body), initiateMinLen)
	}
	cookie := body[9 : 9+cookieLen]
	plain, ok := secretbox.Open(nil, cookie[16:], longNonce(prefixCookie, cookie[:16]), &h.cookieKey)
	if !ok || subtle.ConstantTimeCompare(plain[:KeyLen], h.client[:]) != 1 ||
		subtle.ConstantTimeCompare(plain[KeyLen:], h.transient.Secret[:]) != 1 {
		return Key{}, nil, fmt.Errorf("%w: INITIATE's cookie is not this handshake's", ErrBadBox)
	}
	nonce := binary.BigEndian.Uint64(body[105:113])
	if nonce <= h.peerNonce {
		return Key{}, nil, fmt.Errorf("%w: INITIATE nonce %d after HELLO's %d", ErrNonce, nonce, h.peerNonce)
	}
	h.peerNonce = nonce
	plain, ok = box.Open(nil, body[113:], shortNonce(prefixInitiate, nonce), (*[32]byte)(&h.client), (*[32]byte)(&h.transient.Secret))
	if !ok {
		return Key{}, nil, fmt.Errorf("%w: INITIATE", ErrBadBox)
	}
	copy(client[:], plain[:KeyLen])
	vouch, ok := box.Open(nil, plain[KeyLen+16:initiatePlainFixed], longNonce(prefixVouch, plain[KeyLen:KeyLen+16]), (*[32]byte)(&client), (*[32]byte)(&h.transient.Secret))
	if !ok {
		return client, nil, fmt.Errorf("%w: the vouch does not open with the client's key", ErrBadBox)
	}
	if subtle.ConstantTimeCompare(vouch[:KeyLen], h.client[:]) != 1 || subtle.ConstantTimeCompare(vouch[KeyLen:], h.long.Public[:]) != 1 {
		return client, nil, fmt.Errorf("%w: the vouch names another key or server", ErrBadBox)
	}
	return client, plain[initiatePlainFixed:], nil
}

// Ready returns the READY command (its frame body) carrying the server's
// metadata, and the session for the messages that follow.
func (h *ServerHandshake) Ready(metadata []byte) (ready []byte, s *Session, err error) {
	if h.step != 2 {
		return nil, nil, fmt.Errorf("%w: READY out of turn", ErrMalformed)
	}
	h.step++
	s = newSession(h.client, h.transient.Secret, prefixMessageS, prefixMessageC, h.peerNonce)
	ready = make([]byte, 0, readyMinLen+len(metadata))
	ready = append(ready, cmdReady...)
	n := s.Sealer.next()
	ready = binary.BigEndian.AppendUint64(ready, n)
	ready = box.SealAfterPrecomputation(ready, metadata, shortNonce(prefixReady, n), &s.Sealer.key)
	return ready, s, nil
}

// ClientHandshake is the client's half: Hello, then Welcome, Initiate
// and Ready, in that order. One goroutine uses it.
type ClientHandshake struct {
	long, transient KeyPair
	server          Key // S
	serverTransient Key // S', from WELCOME
	cookie          [cookieLen]byte
	nonce           uint64 // the last short nonce we used
	rand            io.Reader
}

// NewClientHandshake starts a handshake with the server whose long-term
// public key is server, as the client whose pair is long.
func NewClientHandshake(long KeyPair, server Key) (*ClientHandshake, error) {
	transient, err := GenerateKeyPair()
	if err != nil {
		return nil, err
	}
	return &ClientHandshake{long: long, transient: transient, server: server, rand: rand.Reader}, nil
}

// Hello returns the HELLO command (its frame body).
func (c *ClientHandshake) Hello() []byte {
	c.nonce++
	hello := make([]byte, 0, helloLen)
	hello = append(hello, cmdHello...)
	hello = append(hello, 1, 0)
	hello = append(hello, make([]byte, 72)...)
	hello = append(hello, c.transient.Public[:]...)
	hello = binary.BigEndian.AppendUint64(hello, c.nonce)
	var zeros [64]byte
	return box.Seal(hello, zeros[:], shortNonce(prefixHello, c.nonce), (*[32]byte)(&c.server), (*[32]byte)(&c.transient.Secret))
}

// Welcome takes the server's WELCOME (its frame body).
func (c *ClientHandshake) Welcome(body []byte) error {
	if len(body) != welcomeLen || !bytes.HasPrefix(body, []byte(cmdWelcome)) {
		return fmt.Errorf("%w: WELCOME of %d bytes, want %d", ErrMalformed, len(body), welcomeLen)
	}
	plain, ok := box.Open(nil, body[24:], longNonce(prefixWelcome, body[8:24]), (*[32]byte)(&c.server), (*[32]byte)(&c.transient.Secret))
	if !ok {
		return fmt.Errorf("%w: WELCOME (is the server key right?)", ErrBadBox)
	}
	copy(c.serverTransient[:], plain[:KeyLen])
	copy(c.cookie[:], plain[KeyLen:])
	return nil
}

// Initiate returns the INITIATE command (its frame body) carrying the
// client's metadata.
func (c *ClientHandshake) Initiate(metadata []byte) ([]byte, error) {
	var random [16]byte
	if _, err := io.ReadFull(c.rand, random[:]); err != nil {
		return nil, fmt.Errorf("curve: vouch nonce: %w", err)
	}
	var vouchPlain [2 * KeyLen]byte
	copy(vouchPlain[:], c.transient.Public[:])
	copy(vouchPlain[KeyLen:], c.server[:])
	plain := make([]byte, 0, initiatePlainFixed+len(metadata))
	plain = append(plain, c.long.Public[:]...)
	plain = append(plain, random[:]...)
	plain = box.Seal(plain, vouchPlain[:], longNonce(prefixVouch, random[:]), (*[32]byte)(&c.serverTransient), (*[32]byte)(&c.long.Secret))
	plain = append(plain, metadata...)

	c.nonce++
	out := make([]byte, 0, initiateMinLen+len(metadata))
	out = append(out, cmdInitiate...)
	out = append(out, c.cookie[:]...)
	out = binary.BigEndian.AppendUint64(out, c.nonce)
	return box.Seal(out, plain, shortNonce(prefixInitiate, c.nonce), (*[32]byte)(&c.serverTransient), (*[32]byte)(&c.transient.Secret)), nil
}

// Ready takes the server's READY (its frame body) and returns the
// metadata it carried and the session for the messages that follow.
func (c *ClientHandshake) Ready(body []byte) (metadata []byte, s *Session, err error) {
	if len(body) < readyMinLen || !bytes.HasPrefix(body, []byte(cmdReady)) {
		return nil, nil, fmt.Errorf("%w: READY of %d bytes, want at least %d", ErrMalformed, len(body), readyMinLen)
	}
	s = newSession(c.serverTransient, c.transient.Secret, prefixMessageC, prefixMessageS, 0)
	s.Sealer.nonce = c.nonce
	n := binary.BigEndian.Uint64(body[6:14])
	if n <= s.Opener.last {
		return nil, nil, fmt.Errorf("%w: READY nonce %d", ErrNonce, n)
	}
	s.Opener.last = n
	metadata, ok := box.OpenAfterPrecomputation(nil, body[14:], shortNonce(prefixReady, n), &s.Opener.key)
	if !ok {
		return nil, nil, fmt.Errorf("%w: READY", ErrBadBox)
	}
	return metadata, s, nil
}
