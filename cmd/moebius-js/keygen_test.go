package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moebius-js/moebius-js/curve"
)

func runKeygen(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errOut strings.Builder
	code = run(append([]string{"keygen"}, args...), &out, &errOut)
	return out.String(), errOut.String(), code
}

func TestKeygenWritesAPublicAndAPrivateSecretCertificateAndPrintsTheKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "server.key")
	out, errOut, code := runKeygen(t, path)
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	printed := strings.TrimSuffix(out, "\n")
	if strings.Contains(printed, "\n") {
		t.Fatalf("stdout %q: want the public key alone", out)
	}
	if !strings.Contains(errOut, path) || !strings.Contains(errOut, path+curve.SecretSuffix) {
		t.Fatalf("stderr %q does not say where the files are", errOut)
	}

	pub, err := curve.ReadCert(path)
	if err != nil {
		t.Fatal(err)
	}
	if pub.HasSecret {
		t.Fatal("the public certificate holds the secret key")
	}
	if pub.Public.String() != printed {
		t.Fatalf("printed %q, the certificate holds %s", printed, pub.Public)
	}
	sec, err := curve.ReadCert(path + curve.SecretSuffix)
	if err != nil {
		t.Fatal(err)
	}
	if !sec.HasSecret || sec.Public != pub.Public || curve.KeyPairFromSecret(sec.Secret).Public != pub.Public {
		t.Fatalf("secret certificate %+v does not pair with public %s", sec, pub.Public)
	}

	for file, want := range map[string]os.FileMode{path: 0o644, path + curve.SecretSuffix: 0o600} {
		info, err := os.Stat(file)
		if err != nil {
			t.Fatal(err)
		}
		// The umask may take bits away from 0644, never add them; the
		// secret must be the owner's only.
		if got := info.Mode().Perm(); got&^want != 0 || file != path && got != want {
			t.Errorf("%s: mode %v, want %v", file, got, want)
		}
	}

	// A second key pair is another one.
	path2 := filepath.Join(t.TempDir(), "client")
	out2, _, code := runKeygen(t, path2)
	if code != 0 || out2 == out {
		t.Fatalf("second keygen: exit %d, key %q (first %q)", code, out2, out)
	}
}

func TestKeygenNeverOverwrites(t *testing.T) {
	for _, existing := range []string{"", curve.SecretSuffix} {
		t.Run("existing PATH"+existing, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "k")
			if err := os.WriteFile(path+existing, []byte("keep me"), 0o600); err != nil {
				t.Fatal(err)
			}
			out, errOut, code := runKeygen(t, path)
			if code != 1 || out != "" || !strings.Contains(errOut, "exists") || !strings.Contains(errOut, path+existing) {
				t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errOut)
			}
			if b, _ := os.ReadFile(path + existing); string(b) != "keep me" {
				t.Fatalf("%s overwritten with %q", path+existing, b)
			}
			entries, _ := os.ReadDir(dir)
			if len(entries) != 1 {
				t.Fatalf("keygen left %d files, want the 1 that was there", len(entries))
			}
		})
	}
}

func TestKeygenFailsOnAFolderThatIsNotThere(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missing", "k")
	out, errOut, code := runKeygen(t, path)
	if code != 1 || out != "" || errOut == "" {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}

func TestKeygenUsage(t *testing.T) {
	tests := []struct {
		name   string
		args   []string
		code   int
		stdout string // a part of it
		stderr string // a part of it
	}{
		{"no PATH", nil, 2, "", "give one PATH"},
		{"two PATHs", []string{"a", "b"}, 2, "", "give one PATH"},
		{"an empty PATH", []string{""}, 2, "", "give one PATH"},
		{"a PATH ending in _secret", []string{"k" + curve.SecretSuffix}, 2, "", "secret"},
		{"an unknown flag", []string{"--force", "k"}, 2, "", "unknown flag"},
		{"--help", []string{"--help"}, 0, "usage: moebius-js keygen PATH", ""},
		{"-h", []string{"-h"}, 0, "usage: moebius-js keygen PATH", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			wd, _ := os.Getwd()
			if err := os.Chdir(dir); err != nil {
				t.Fatal(err)
			}
			defer os.Chdir(wd)
			out, errOut, code := runKeygen(t, tc.args...)
			if code != tc.code || !strings.Contains(out, tc.stdout) || !strings.Contains(errOut, tc.stderr) {
				t.Fatalf("exit %d (want %d), stdout %q, stderr %q", code, tc.code, out, errOut)
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 0 {
				t.Fatalf("wrote %d files", len(entries))
			}
		})
	}
}

func TestTheCommandListNamesKeygen(t *testing.T) {
	var out strings.Builder
	if code := run([]string{"help"}, &out, &out); code != 0 || !strings.Contains(out.String(), "moebius-js keygen PATH") {
		t.Fatalf("exit %d:\n%s", code, out.String())
	}
}
