package curve

import (
	"encoding/binary"
	"fmt"
)

// z85Alphabet is RFC 32's alphabet: a 32-bit big-endian word becomes five
// characters, most significant first.
const z85Alphabet = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#"

// z85Value maps a character back to its digit, or 0xff for one outside
// the alphabet.
var z85Value = func() (v [256]byte) {
	for i := range v {
		v[i] = 0xff
	}
	for i := range len(z85Alphabet) {
		v[z85Alphabet[i]] = byte(i)
	}
	return v
}()

// EncodeZ85 encodes src, whose length must be a multiple of 4, as Z85 text.
func EncodeZ85(src []byte) (string, error) {
	if len(src)%4 != 0 {
		return "", fmt.Errorf("z85: %d bytes is not a multiple of 4", len(src))
	}
	out := make([]byte, 0, len(src)/4*5)
	for i := 0; i < len(src); i += 4 {
		word := binary.BigEndian.Uint32(src[i:])
		var chunk [5]byte
		for j := 4; j >= 0; j-- {
			chunk[j] = z85Alphabet[word%85]
			word /= 85
		}
		out = append(out, chunk[:]...)
	}
	return string(out), nil
}

// DecodeZ85 decodes Z85 text, whose length must be a multiple of 5.
func DecodeZ85(s string) ([]byte, error) {
	if len(s)%5 != 0 {
		return nil, fmt.Errorf("z85: %d characters is not a multiple of 5", len(s))
	}
	out := make([]byte, 0, len(s)/5*4)
	for i := 0; i < len(s); i += 5 {
		var word uint64
		for j := range 5 {
			d := z85Value[s[i+j]]
			if d == 0xff {
				return nil, fmt.Errorf("z85: character %q at %d is not in the alphabet", s[i+j], i+j)
			}
			word = word*85 + uint64(d)
		}
		if word > 0xffffffff {
			return nil, fmt.Errorf("z85: characters %d..%d encode more than 32 bits", i, i+4)
		}
		out = binary.BigEndian.AppendUint32(out, uint32(word))
	}
	return out, nil
}
