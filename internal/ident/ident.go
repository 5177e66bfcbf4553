// Package ident renders ZeroMQ routing identities as text and back, the
// same way in the logs of every package and in JavaScript's client.id. It
// knows nothing else.
package ident

import (
	"encoding/hex"
	"strings"
	"unicode/utf8"
)

// Text is how logs and JavaScript show a routing identity: the identity itself when
// it is non-empty UTF-8 text without control characters that does not start
// with "0x", else "0x" followed by its bytes in hex (as for the 5-byte
// identities, starting with a zero byte, that a ROUTER makes up for
// anonymous peers). The mapping is one to one, so an id can
// travel inside messages and come back (see Bytes). Any goroutine.
func Text(id string) string {
	if isText(id) {
		return id
	}
	return "0x" + hex.EncodeToString([]byte(id))
}

func isText(id string) bool {
	if id == "" || !utf8.ValidString(id) || strings.HasPrefix(id, "0x") {
		return false
	}
	for _, r := range id {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}

// Bytes inverts Text. It reports false for text that no identity maps
// to (a "0x" prefix followed by something that is not hex). Any goroutine.
func Bytes(text string) (string, bool) {
	rest, isHex := strings.CutPrefix(text, "0x")
	if !isHex {
		return text, isText(text)
	}
	b, err := hex.DecodeString(rest)
	if err != nil || len(b) == 0 {
		return "", false
	}
	return string(b), true
}
