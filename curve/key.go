package curve

import (
	"crypto/rand"
	"fmt"
	"io"

	"golang.org/x/crypto/curve25519"
)

// KeyLen is the length of a Curve25519 key, public or secret.
const KeyLen = 32

// Key is a Curve25519 public or secret key. Its text form is Z85 (40
// characters), as libzmq, pyzmq and CZMQ write keys.
type Key [KeyLen]byte

// ParseKey reads a key in Z85 (40 characters).
func ParseKey(z85 string) (Key, error) {
	var k Key
	if len(z85) != 40 {
		return k, fmt.Errorf("curve key: %d characters, want 40 of Z85", len(z85))
	}
	b, err := DecodeZ85(z85)
	if err != nil {
		return k, fmt.Errorf("curve key: %w", err)
	}
	copy(k[:], b)
	return k, nil
}

// String is the key in Z85.
func (k Key) String() string {
	s, _ := EncodeZ85(k[:]) // 32 is a multiple of 4
	return s
}

// KeyPair is a long-term (or transient) key pair.
type KeyPair struct {
	Public, Secret Key
}

// GenerateKeyPair makes a key pair from crypto/rand.
func GenerateKeyPair() (KeyPair, error) {
	return generateKeyPair(rand.Reader)
}

func generateKeyPair(r io.Reader) (KeyPair, error) {
	var kp KeyPair
	if _, err := io.ReadFull(r, kp.Secret[:]); err != nil {
		return kp, fmt.Errorf("curve: generate key pair: %w", err)
	}
	return KeyPairFromSecret(kp.Secret), nil
}

// KeyPairFromSecret completes a key pair from its secret key.
func KeyPairFromSecret(secret Key) KeyPair {
	kp := KeyPair{Secret: secret}
	pub, err := curve25519.X25519(secret[:], curve25519.Basepoint)
	if err != nil {
		// Only a low-order point can fail; the base point is not one.
		panic(fmt.Sprintf("curve: X25519 with the base point: %v", err))
	}
	copy(kp.Public[:], pub)
	return kp
}
