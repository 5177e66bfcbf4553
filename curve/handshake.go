package curve

import (
	"bytes"
	"crypto/rand"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"golang.org/x/crypto/curve25519"
	"golang.org/x/crypto/nacl/box"
	"golang.org/x/crypto/nacl/secretbox"
	"golang.org/x/crypto/salsa20/salsa"
)

// Why a handshake or a message box is refused. Each error a
// ServerHandshake, ClientHandshake or Opener returns wraps one of them.
var (
	// ErrMalformed: a command of the wrong size, version or layout, one
	// out of turn or after a refusal, or a public key of small order.
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

// sharedKey is crypto_box's precomputed key for a box between the
// holder of secret and the holder of peer's secret (box.Precompute), or
// ErrMalformed when peer is a point of small order: every secret gives
// the same shared key with it, one anyone can compute, so a box made with
// it proves nothing and hides nothing (libsodium refuses such keys too).
func sharedKey(peer, secret *Key) (*[32]byte, error) {
	dh, err := curve25519.X25519(secret[:], peer[:])
	if err != nil {
		return nil, fmt.Errorf("%w: public key %s is a point of small order", ErrMalformed, peer)
	}
	var k [32]byte
	var zeros [16]byte
	salsa.HSalsa20(&k, &zeros, (*[32]byte)(dh), &salsa.Sigma)
	return &k, nil
}

// A handshake's step after an error: every call after that fails.
const stepFailed = -1

// advance moves a handshake from the step it checked to the next, or to
// stepFailed when the step returned an error: a handshake that refused a
// command never goes on, whatever its caller does next.
func advance(step *int, err error) {
	if err != nil {
		*step = stepFailed
		return
	}
	*step++
}

func outOfTurn(step *int, command string) error {
	failed := *step == stepFailed
	*step = stepFailed
	if failed {
		return fmt.Errorf("%w: %s after the handshake failed", ErrMalformed, command)
	}
	return fmt.Errorf("%w: %s out of turn", ErrMalformed, command)
}

// ServerHandshake is the server's half of one connection's handshake:
// Hello, then Initiate, then Ready, each at most once and in that order.
// One goroutine (the connection's reader) uses it.
type ServerHandshake struct {
	long      KeyPair
	rand      io.Reader
	transient KeyPair // S', s'
	client    Key     // C', from HELLO
	cookieKey [32]byte
	session   *[32]byte // the box key of C' and s', from INITIATE on
	peerNonce uint64    // the last short nonce the client used
	step      int       // 0 before HELLO, 1 before INITIATE, 2 before READY, 3 done; or stepFailed
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
		return nil, outOfTurn(&h.step, "HELLO")
	}
	defer func() { advance(&h.step, err) }()
	if len(body) != helloLen || !bytes.HasPrefix(body, []byte(cmdHello)) {
		return nil, fmt.Errorf("%w: HELLO of %d bytes, want %d", ErrMalformed, len(body), helloLen)
	}
	if major, minor := body[6], body[7]; major != 1 || minor != 0 {
		return nil, fmt.Errorf("%w: CurveZMQ version %d.%d, want 1.0", ErrMalformed, major, minor)
	}
	copy(h.client[:], body[80:112])
	h.peerNonce = binary.BigEndian.Uint64(body[112:120])
	helloKey, err := sharedKey(&h.client, &h.long.Secret) // C' and s: HELLO and WELCOME
	if err != nil {
		return nil, fmt.Errorf("HELLO: client transient key: %w", err)
	}
	if _, ok := box.OpenAfterPrecomputation(nil, body[120:200], shortNonce(prefixHello, h.peerNonce), helloKey); !ok {
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
	welcome = box.SealAfterPrecomputation(welcome, welcomePlain, longNonce(prefixWelcome, random[16:]), helloKey)
	return welcome, nil
}

// Initiate checks the client's INITIATE (its frame body): the cookie is
// ours, the box opens, the client's long-term key vouches for its
// transient one and for this server. It returns the client's long-term
// public key and the ZMTP metadata it sent; the caller decides whether
// that key may connect, then calls Ready. When the INITIATE box opened
// but the vouch did not, client is the key the client claimed, unproven
// (for a log, not for trust); otherwise it is zero on an error.
func (h *ServerHandshake) Initiate(body []byte) (client Key, metadata []byte, err error) {
	if h.step != 1 {
		return Key{}, nil, outOfTurn(&h.step, "INITIATE")
	}
	defer func() { advance(&h.step, err) }()
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
	// C' passed sharedKey in Hello; s' is ours: this cannot fail.
	sessionKey, err := sharedKey(&h.client, &h.transient.Secret)
	if err != nil {
		return Key{}, nil, err
	}
	plain, ok = box.OpenAfterPrecomputation(nil, body[113:], shortNonce(prefixInitiate, nonce), sessionKey)
	if !ok {
		return Key{}, nil, fmt.Errorf("%w: INITIATE", ErrBadBox)
	}
	h.peerNonce = nonce
	copy(client[:], plain[:KeyLen])
	vouchKey, err := sharedKey(&client, &h.transient.Secret)
	if err != nil {
		return client, nil, fmt.Errorf("INITIATE: client key: %w", err)
	}
	vouch, ok := box.OpenAfterPrecomputation(nil, plain[KeyLen+16:initiatePlainFixed], longNonce(prefixVouch, plain[KeyLen:KeyLen+16]), vouchKey)
	if !ok {
		return client, nil, fmt.Errorf("%w: the vouch does not open with the client's key", ErrBadBox)
	}
	if subtle.ConstantTimeCompare(vouch[:KeyLen], h.client[:]) != 1 || subtle.ConstantTimeCompare(vouch[KeyLen:], h.long.Public[:]) != 1 {
		return client, nil, fmt.Errorf("%w: the vouch names another key or server", ErrBadBox)
	}
	h.session = sessionKey
	return client, plain[initiatePlainFixed:], nil
}

// Ready returns the READY command (its frame body) carrying the server's
// metadata, and the session for the messages that follow.
func (h *ServerHandshake) Ready(metadata []byte) (ready []byte, s *Session, err error) {
	if h.step != 2 {
		return nil, nil, outOfTurn(&h.step, "READY")
	}
	h.step++
	s = newSession(h.session, prefixMessageS, prefixMessageC, h.peerNonce)
	ready = make([]byte, 0, readyMinLen+len(metadata))
	ready = append(ready, cmdReady...)
	n := s.Sealer.next()
	ready = binary.BigEndian.AppendUint64(ready, n)
	ready = box.SealAfterPrecomputation(ready, metadata, shortNonce(prefixReady, n), &s.Sealer.key)
	return ready, s, nil
}

// ClientHandshake is the client's half: Hello, then Welcome, Initiate
// and Ready, in that order; after an error, every call fails. One
// goroutine uses it.
type ClientHandshake struct {
	long, transient KeyPair
	server          Key // S
	serverTransient Key // S', from WELCOME
	cookie          [cookieLen]byte
	helloKey        [32]byte  // the box key of S and c', from HELLO on
	session         *[32]byte // the box key of S' and c', from WELCOME on
	nonce           uint64    // the last short nonce we used
	rand            io.Reader
	step            int // 0 before HELLO, 1 before WELCOME, 2 before INITIATE, 3 before READY, 4 done; or stepFailed
}

// NewClientHandshake starts a handshake with the server whose long-term
// public key is server, as the client whose pair is long. A server key of
// small order is refused (ErrMalformed).
func NewClientHandshake(long KeyPair, server Key) (*ClientHandshake, error) {
	if _, err := sharedKey(&server, &long.Secret); err != nil {
		return nil, fmt.Errorf("server key: %w", err)
	}
	transient, err := GenerateKeyPair()
	if err != nil {
		return nil, err
	}
	return &ClientHandshake{long: long, transient: transient, server: server, rand: rand.Reader}, nil
}

// Hello returns the HELLO command (its frame body). Until a WELCOME is
// taken each call makes another, with the next nonce; after that, or
// after an error, it returns nil.
func (c *ClientHandshake) Hello() []byte {
	if c.step != 0 && c.step != 1 {
		_ = outOfTurn(&c.step, "HELLO")
		return nil
	}
	c.step = 1
	c.nonce++
	hello := make([]byte, 0, helloLen)
	hello = append(hello, cmdHello...)
	hello = append(hello, 1, 0)
	hello = append(hello, make([]byte, 72)...)
	hello = append(hello, c.transient.Public[:]...)
	hello = binary.BigEndian.AppendUint64(hello, c.nonce)
	// S passed sharedKey in NewClientHandshake.
	box.Precompute(&c.helloKey, (*[32]byte)(&c.server), (*[32]byte)(&c.transient.Secret))
	var zeros [64]byte
	return box.SealAfterPrecomputation(hello, zeros[:], shortNonce(prefixHello, c.nonce), &c.helloKey)
}

// Welcome takes the server's WELCOME (its frame body).
func (c *ClientHandshake) Welcome(body []byte) (err error) {
	if c.step != 1 {
		return outOfTurn(&c.step, "WELCOME")
	}
	defer func() { advance(&c.step, err) }()
	if len(body) != welcomeLen || !bytes.HasPrefix(body, []byte(cmdWelcome)) {
		return fmt.Errorf("%w: WELCOME of %d bytes, want %d", ErrMalformed, len(body), welcomeLen)
	}
	plain, ok := box.OpenAfterPrecomputation(nil, body[24:], longNonce(prefixWelcome, body[8:24]), &c.helloKey)
	if !ok {
		return fmt.Errorf("%w: WELCOME (is the server key right?)", ErrBadBox)
	}
	copy(c.serverTransient[:], plain[:KeyLen])
	copy(c.cookie[:], plain[KeyLen:])
	if c.session, err = sharedKey(&c.serverTransient, &c.transient.Secret); err != nil {
		return fmt.Errorf("WELCOME: server transient key: %w", err)
	}
	return nil
}

// Initiate returns the INITIATE command (its frame body) carrying the
// client's metadata.
func (c *ClientHandshake) Initiate(metadata []byte) (_ []byte, err error) {
	if c.step != 2 {
		return nil, outOfTurn(&c.step, "INITIATE")
	}
	defer func() { advance(&c.step, err) }()
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
	return box.SealAfterPrecomputation(out, plain, shortNonce(prefixInitiate, c.nonce), c.session), nil
}

// Ready takes the server's READY (its frame body) and returns the
// metadata it carried and the session for the messages that follow.
func (c *ClientHandshake) Ready(body []byte) (metadata []byte, s *Session, err error) {
	if c.step != 3 {
		return nil, nil, outOfTurn(&c.step, "READY")
	}
	defer func() { advance(&c.step, err) }()
	if len(body) < readyMinLen || !bytes.HasPrefix(body, []byte(cmdReady)) {
		return nil, nil, fmt.Errorf("%w: READY of %d bytes, want at least %d", ErrMalformed, len(body), readyMinLen)
	}
	s = newSession(c.session, prefixMessageC, prefixMessageS, 0)
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
