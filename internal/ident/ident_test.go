package ident

import "testing"

func TestTextRoundTrips(t *testing.T) {
	for _, tc := range []struct{ id, text string }{
		{"Client1", "Client1"},
		{"héllo", "héllo"},
		{"\x00\x00\x00\x00\x2a", "0x000000002a"},
		{"\xff\xfe", "0xfffe"},
		{"a\nb", "0x610a62"},
		{"0xabc", "0x3078616263"}, // text that looks like hex is hex-encoded too
	} {
		if got := Text(tc.id); got != tc.text {
			t.Errorf("Text(%q) = %q, want %q", tc.id, got, tc.text)
		}
		back, ok := Bytes(tc.text)
		if !ok || back != tc.id {
			t.Errorf("Bytes(%q) = %q, %v; want %q", tc.text, back, ok, tc.id)
		}
	}
	for _, bad := range []string{"", "0x", "0xzz", "tab\there"} {
		if _, ok := Bytes(bad); ok {
			t.Errorf("Bytes(%q) accepted an id no identity maps to", bad)
		}
	}
}
