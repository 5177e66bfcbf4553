package transport

import (
	"fmt"
	"testing"
)

func TestSplitEnvelopeTakesTheFramesUpToTheFirstEmptyOne(t *testing.T) {
	b := func(s ...string) [][]byte {
		out := make([][]byte, len(s))
		for i, f := range s {
			out[i] = []byte(f)
		}
		return out
	}
	deep := make([]string, MaxEnvelopeFrames)
	for i := range deep {
		deep[i] = fmt.Sprint("hop", i)
	}
	tooDeep := append(append([]string{}, deep...), "", "payload")
	justDeepEnough := append(append([]string{}, deep[1:]...), "", "payload")
	cases := []struct {
		name         string
		in           [][]byte
		env, payload int // frame counts
	}{
		{"no delimiter", b("a", "b"), 0, 2},
		{"REQ", b("", "a"), 1, 1},
		{"correlated REQ", b("\x00\x00\x00\x01", "", "a"), 2, 1},
		{"through a proxy", b("p1", "p2", "", "a", "b"), 3, 2},
		{"probe", b(""), 1, 0},
		{"two delimiters: the first one ends it", b("", "", "a"), 1, 2},
		{"an empty last frame is payload", b("a", "b", ""), 0, 3},
		{"an envelope of the most frames", b(justDeepEnough...), MaxEnvelopeFrames, 1},
		{"past the bound: no envelope", b(tooDeep...), 0, MaxEnvelopeFrames + 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env, payload := splitEnvelope(tc.in)
			if len(env) != tc.env || len(payload) != tc.payload {
				t.Fatalf("envelope %q, payload %q: want %d and %d frames", env, payload, tc.env, tc.payload)
			}
			if tc.env == 0 && env != nil {
				t.Fatalf("no envelope must be nil, got %q", env)
			}
			if tc.env > 0 && len(env[len(env)-1]) != 0 {
				t.Fatalf("envelope %q does not end with its delimiter", env)
			}
		})
	}
}
