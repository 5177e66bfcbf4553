package curve

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"golang.org/x/crypto/nacl/box"
)

// Session is what a finished handshake leaves: a Sealer for the frames
// this side sends and an Opener for those it receives. The two halves may
// be used by two goroutines (a connection's writer and reader), each half
// by one.
type Session struct {
	Sealer Sealer
	Opener Opener
}

// newSession makes the session whose boxes use key (the precomputed box
// key of the two transient keys).
func newSession(key *[32]byte, sendPrefix, recvPrefix string, peerNonce uint64) *Session {
	s := &Session{}
	s.Sealer.key, s.Opener.key = *key, *key
	copy(s.Sealer.prefix[:], sendPrefix)
	copy(s.Opener.prefix[:], recvPrefix)
	s.Opener.last = peerNonce
	return s
}

// Sealer seals outgoing frames as MESSAGE commands. One goroutine.
type Sealer struct {
	key    [32]byte
	prefix [16]byte
	nonce  uint64 // the last short nonce used
	plain  []byte // scratch: flags + data, contiguous for the box
}

func (s *Sealer) next() uint64 {
	s.nonce++
	return s.nonce
}

// SealedLen is the length of the MESSAGE frame body that carries data.
func SealedLen(data int) int { return messageOverhead + data }

// AppendMessage appends to dst the MESSAGE command (its frame body)
// carrying one frame of data with flags (FlagMore, FlagCommand).
func (s *Sealer) AppendMessage(dst []byte, flags byte, data []byte) []byte {
	s.plain = append(append(s.plain[:0], flags), data...)
	n := s.next()
	dst = append(dst, cmdMessage...)
	dst = binary.BigEndian.AppendUint64(dst, n)
	var nonce [24]byte
	copy(nonce[:], s.prefix[:])
	binary.BigEndian.PutUint64(nonce[16:], n)
	dst = box.SealAfterPrecomputation(dst, s.plain, &nonce, &s.key)
	if cap(s.plain) > 64<<10 {
		s.plain = nil // keep no big scratch after one big frame
	}
	return dst
}

// Opener opens incoming MESSAGE commands. One goroutine.
type Opener struct {
	key    [32]byte
	prefix [16]byte
	last   uint64 // the last short nonce the peer used
}

// IsMessage reports whether a command frame body is a MESSAGE.
func IsMessage(body []byte) bool { return bytes.HasPrefix(body, []byte(cmdMessage)) }

// Open opens a MESSAGE command (its frame body) into a new slice and
// returns the frame's flags and data. A nonce not above the last one is
// refused before anything is decrypted.
func (o *Opener) Open(body []byte) (flags byte, data []byte, err error) {
	if len(body) < messageOverhead || !IsMessage(body) {
		return 0, nil, fmt.Errorf("%w: MESSAGE of %d bytes", ErrMalformed, len(body))
	}
	n := binary.BigEndian.Uint64(body[8:16])
	if n <= o.last {
		return 0, nil, fmt.Errorf("%w: nonce %d after %d", ErrNonce, n, o.last)
	}
	var nonce [24]byte
	copy(nonce[:], o.prefix[:])
	binary.BigEndian.PutUint64(nonce[16:], n)
	plain, ok := box.OpenAfterPrecomputation(make([]byte, 0, len(body)-16-boxOverhead), body[16:], &nonce, &o.key)
	if !ok {
		return 0, nil, fmt.Errorf("%w: MESSAGE nonce %d", ErrBadBox, n)
	}
	o.last = n
	return plain[0], plain[1:], nil
}
