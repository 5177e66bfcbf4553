package curve

import (
	"bytes"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Z85 vectors: RFC 32's own, its reference code's (spec_32.c) and pyzmq's
// test keys, which libzmq's documentation uses too.
var z85Vectors = []struct{ hex, z85 string }{
	{"864fd26fb559f75b", "HelloWorld"},
	{"00000000", "00000"},
	{"ffffffff", "%nSc0"},
	{"8e0bdd697628b91d8f245587ee95c5b04d48963f79259877b49cd9063aead3b7", "JTKVSB%%)wK0E.X)V>+}o?pNmC{O&4W4b!Ni{Lh6"},
	{"bb88471d65e2659b30c55a5321cebb5aab2b70a398645c26dca2b2fcb43fc518", "Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID"},
	{"7bb864b489afa3671fbe69101f94b38972f24816dfb01b51656b3fec8dfd0888", "D:)Q[IlAW!ahhC2ac:9*A}h:p?([4%wOTJ%JR%cs"},
}

func TestZ85EncodesAndDecodesTheReferenceVectors(t *testing.T) {
	for _, v := range z85Vectors {
		raw, _ := hex.DecodeString(v.hex)
		got, err := EncodeZ85(raw)
		if err != nil || got != v.z85 {
			t.Errorf("EncodeZ85(%s) = %q, %v; want %q", v.hex, got, err, v.z85)
		}
		back, err := DecodeZ85(v.z85)
		if err != nil || !bytes.Equal(back, raw) {
			t.Errorf("DecodeZ85(%q) = %x, %v; want %s", v.z85, back, err, v.hex)
		}
	}
}

func TestZ85RefusesWhatIsNotZ85(t *testing.T) {
	for _, s := range []string{"HelloWorl", "Hell\"World", "%nSc1", "~~~~~"} {
		if _, err := DecodeZ85(s); err == nil {
			t.Errorf("DecodeZ85(%q) succeeded", s)
		}
	}
	if _, err := EncodeZ85([]byte{1, 2, 3}); err == nil {
		t.Error("EncodeZ85 of 3 bytes succeeded")
	}
	if _, err := ParseKey("HelloWorld"); err == nil {
		t.Error("ParseKey of 10 characters succeeded")
	}
}

func TestACertificateWrittenIsReadBackAndItsSecretIsPrivate(t *testing.T) {
	kp, err := GenerateKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "server.key")
	if err := WriteCert(path, kp, time.Now()); err != nil {
		t.Fatal(err)
	}
	pub, err := ReadCert(path)
	if err != nil || pub.Public != kp.Public || pub.HasSecret {
		t.Fatalf("public cert read as %+v, %v", pub, err)
	}
	sec, err := LoadSecret(path + SecretSuffix)
	if err != nil || sec != kp {
		t.Fatalf("secret cert read as %v, %v", sec, err)
	}
	info, err := os.Stat(path + SecretSuffix)
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("secret cert mode %v, %v; want 0600", info.Mode().Perm(), err)
	}
	if err := WriteCert(path, kp, time.Now()); err == nil {
		t.Fatal("WriteCert over an existing certificate succeeded")
	}
	if _, err := LoadSecret(path); err == nil || !strings.Contains(err.Error(), "no secret-key") {
		t.Fatalf("LoadSecret of a public cert: %v", err)
	}
}

// A certificate as CZMQ's zcert_save writes it, metadata included.
const czmqCert = `#   ****  Generated on 2024-01-02 03:04:05 by CZMQ  ****
#   ZeroMQ CURVE **Secret** Certificate
#   DO NOT PROVIDE THIS FILE TO OTHER USERS nor change its permissions.

metadata
    name = "edge-1"
curve
    public-key = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7"
    secret-key = "JTKVSB%%)wK0E.X)V>+}o?pNmC{O&4W4b!Ni{Lh6"
`

func TestParseCertReadsCZMQsFormat(t *testing.T) {
	c, err := ParseCert([]byte(czmqCert))
	if err != nil {
		t.Fatal(err)
	}
	if c.Public.String() != "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7" || !c.HasSecret {
		t.Fatalf("read %+v", c)
	}
	bad := map[string]string{
		"no key":            "metadata\ncurve\n",
		"key outside curve": "metadata\n    public-key = \"rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7\"\n",
		"mismatched pair":   strings.Replace(czmqCert, "rq:rM", "rq:rN", 1),
		"bad z85":           strings.Replace(czmqCert, "rq:rM", "rq:r~", 1),
	}
	for name, text := range bad {
		if _, err := ParseCert([]byte(text)); err == nil {
			t.Errorf("%s: parsed", name)
		}
	}
}

func TestLoadKeyDirReadsPublicCertsAndSkipsSecretsAndJunk(t *testing.T) {
	dir := t.TempDir()
	a, _ := GenerateKeyPair()
	b, _ := GenerateKeyPair()
	if err := WriteCert(filepath.Join(dir, "a.key"), a, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := WriteCert(filepath.Join(dir, "b"), b, time.Now()); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("hello"), 0o644)
	os.WriteFile(filepath.Join(dir, ".hidden"), []byte("x"), 0o644)
	keys, skipped, err := LoadKeyDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 2 || keys[a.Public] != "a.key" || keys[b.Public] != "b" {
		t.Fatalf("keys %v", keys)
	}
	if len(skipped) != 1 || !strings.Contains(skipped[0].Error(), "notes.txt") {
		t.Fatalf("skipped %v", skipped)
	}
}

// handshake runs a full handshake between a client and a server in
// memory and returns both sessions.
func handshake(t testing.TB, server, client KeyPair, serverKey Key) (*Session, *Session, Key, []byte) {
	t.Helper()
	sh, ch := toWelcome(t, server, client, serverKey)
	initiate, err := ch.Initiate([]byte("client metadata"))
	if err != nil {
		t.Fatal(err)
	}
	key, md, err := sh.Initiate(initiate)
	if err != nil {
		t.Fatal(err)
	}
	ready, ss, err := sh.Ready([]byte("server metadata"))
	if err != nil {
		t.Fatal(err)
	}
	smd, cs, err := ch.Ready(ready)
	if err != nil {
		t.Fatal(err)
	}
	if string(smd) != "server metadata" {
		t.Fatalf("client got server metadata %q", smd)
	}
	return ss, cs, key, md
}

func keyPairs(t testing.TB) (KeyPair, KeyPair) {
	s, err := GenerateKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	c, err := GenerateKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	return s, c
}

func TestAHandshakeProvesTheClientsKeyAndMessagesCrossBothWays(t *testing.T) {
	server, client := keyPairs(t)
	ss, cs, key, md := handshake(t, server, client, server.Public)
	if key != client.Public || string(md) != "client metadata" {
		t.Fatalf("server learned key %s metadata %q", key, md)
	}
	for _, data := range [][]byte{nil, []byte("hi"), bytes.Repeat([]byte{7}, 70000)} {
		wire := cs.Sealer.AppendMessage(nil, FlagMore, data)
		if len(wire) != SealedLen(len(data)) {
			t.Fatalf("sealed %d bytes into %d, want %d", len(data), len(wire), SealedLen(len(data)))
		}
		flags, got, err := ss.Opener.Open(wire)
		if err != nil || flags != FlagMore || !bytes.Equal(got, data) {
			t.Fatalf("server opened flags %x, %d bytes, %v", flags, len(got), err)
		}
		wire = ss.Sealer.AppendMessage(nil, FlagCommand, data)
		flags, got, err = cs.Opener.Open(wire)
		if err != nil || flags != FlagCommand || !bytes.Equal(got, data) {
			t.Fatalf("client opened flags %x, %d bytes, %v", flags, len(got), err)
		}
	}
}

func TestWhatTheServerRefuses(t *testing.T) {
	server, client := keyPairs(t)
	other, _ := keyPairs(t)
	t.Run("a HELLO sealed for another server's key", func(t *testing.T) {
		ch, _ := NewClientHandshake(client, other.Public)
		if _, err := NewServerHandshake(server).Hello(ch.Hello()); !errors.Is(err, ErrServerKey) {
			t.Fatalf("err %v, want ErrServerKey", err)
		}
	})
	t.Run("a HELLO of the wrong size or version", func(t *testing.T) {
		ch, _ := NewClientHandshake(client, server.Public)
		hello := ch.Hello()
		if _, err := NewServerHandshake(server).Hello(hello[:199]); !errors.Is(err, ErrMalformed) {
			t.Fatalf("short: err %v", err)
		}
		hello[6] = 2
		if _, err := NewServerHandshake(server).Hello(hello); !errors.Is(err, ErrMalformed) {
			t.Fatalf("version 2: err %v", err)
		}
	})
	t.Run("an INITIATE whose cookie, box or vouch was tampered with", func(t *testing.T) {
		for _, at := range []int{20, 110, 120, 150, 250} { // cookie, nonce, C, vouch, vouch box
			sh, ch := toWelcome(t, server, client, server.Public)
			initiate, _ := ch.Initiate(nil)
			initiate[at] ^= 1
			if _, _, err := sh.Initiate(initiate); err == nil {
				t.Errorf("byte %d flipped: accepted", at)
			}
		}
	})
	t.Run("a vouch made for another server", func(t *testing.T) {
		sh := NewServerHandshake(server)
		ch, _ := NewClientHandshake(client, server.Public)
		welcome, _ := sh.Hello(ch.Hello())
		if err := ch.Welcome(welcome); err != nil {
			t.Fatal(err)
		}
		ch.server = other.Public // it vouches for another server's key
		initiate, _ := ch.Initiate(nil)
		if _, _, err := sh.Initiate(initiate); !errors.Is(err, ErrBadBox) {
			t.Fatalf("err %v, want ErrBadBox", err)
		}
	})
	t.Run("a tampered, replayed or reordered MESSAGE", func(t *testing.T) {
		ss, cs, _, _ := handshake(t, server, client, server.Public)
		first := cs.Sealer.AppendMessage(nil, 0, []byte("one"))
		second := cs.Sealer.AppendMessage(nil, 0, []byte("two"))
		tampered := bytes.Clone(first)
		tampered[len(tampered)-1] ^= 1
		if _, _, err := ss.Opener.Open(tampered); !errors.Is(err, ErrBadBox) {
			t.Fatalf("tampered: %v", err)
		}
		if _, _, err := ss.Opener.Open(second); err != nil {
			t.Fatalf("second: %v", err)
		}
		if _, _, err := ss.Opener.Open(first); !errors.Is(err, ErrNonce) {
			t.Fatalf("first after second: %v", err)
		}
		if _, _, err := ss.Opener.Open(second); !errors.Is(err, ErrNonce) {
			t.Fatalf("second replayed: %v", err)
		}
		if _, _, err := ss.Opener.Open(first[:32]); !errors.Is(err, ErrMalformed) {
			t.Fatalf("short: %v", err)
		}
	})
	t.Run("a MESSAGE sealed by the server's own direction", func(t *testing.T) {
		ss, _, _, _ := handshake(t, server, client, server.Public)
		reflected := ss.Sealer.AppendMessage(nil, 0, []byte("echo"))
		if _, _, err := ss.Opener.Open(reflected); err == nil {
			t.Fatal("the server opened its own message as the client's")
		}
	})
}

func TestTheClientRefusesAWelcomeFromAnotherServer(t *testing.T) {
	server, client := keyPairs(t)
	impostor, _ := keyPairs(t)
	ch, _ := NewClientHandshake(client, server.Public)
	ch.Hello() // sent to the server, intercepted by the impostor
	// The impostor cannot open HELLO; it answers with a WELCOME of its own
	// made for a HELLO addressed to it.
	ch2, _ := NewClientHandshake(client, impostor.Public)
	ch2.transient = ch.transient
	welcome, err := NewServerHandshake(impostor).Hello(ch2.Hello())
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.Welcome(welcome); !errors.Is(err, ErrBadBox) {
		t.Fatalf("err %v, want ErrBadBox", err)
	}
}

func BenchmarkSealOpen(b *testing.B) {
	server, client := keyPairs(b)
	ss, cs, _, _ := handshake(b, server, client, server.Public)
	data := bytes.Repeat([]byte("x"), 64)
	var wire []byte
	b.ReportAllocs()
	for b.Loop() {
		wire = cs.Sealer.AppendMessage(wire[:0], 0, data)
		if _, _, err := ss.Opener.Open(wire); err != nil {
			b.Fatal(err)
		}
	}
}

func TestLoadSecretNeverRepeatsAMistypedKey(t *testing.T) {
	kp, _ := keyPairs(t)
	secret := kp.Secret.String()
	for _, given := range []string{secret + " ", "\n" + secret + "\n"} {
		got, err := LoadSecret(given)
		if err != nil || got != kp {
			t.Errorf("%q: got %v, %v; want the pair", given, got, err)
		}
	}
	for _, given := range []string{secret[:39], secret + "x", "x" + secret[1:] + "y"} {
		_, err := LoadSecret(given)
		if err == nil {
			t.Errorf("%q: no error", given)
			continue
		}
		if strings.Contains(err.Error(), given) || strings.Contains(err.Error(), secret[5:30]) {
			t.Errorf("the error repeats the key: %v", err)
		}
	}
}

// toWelcome runs a server and a client handshake to the client's taking
// the WELCOME: HELLO and WELCOME done, INITIATE next.
func toWelcome(t testing.TB, server, client KeyPair, serverKey Key) (*ServerHandshake, *ClientHandshake) {
	t.Helper()
	sh := NewServerHandshake(server)
	ch, err := NewClientHandshake(client, serverKey)
	if err != nil {
		t.Fatal(err)
	}
	welcome, err := sh.Hello(ch.Hello())
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.Welcome(welcome); err != nil {
		t.Fatal(err)
	}
	return sh, ch
}
