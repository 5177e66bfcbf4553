package curve

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Cert is a CZMQ certificate (zcert): a public key and, in a secret
// certificate, the secret key too.
type Cert struct {
	Public    Key
	Secret    Key
	HasSecret bool
}

// SecretSuffix is what CZMQ's zcert_save appends to a certificate's path
// for the file holding its secret key.
const SecretSuffix = "_secret"

// ParseCert reads a certificate in CZMQ's format: ZPL (ZeroMQ RFC 4)
// with the Z85 keys as "public-key" and "secret-key" in a "curve"
// section. Anything else in the file (metadata, comments) is ignored.
func ParseCert(text []byte) (Cert, error) {
	var c Cert
	var path []string // section names by indentation level
	sc := bufio.NewScanner(bytes.NewReader(text))
	for line := 1; sc.Scan(); line++ {
		raw := sc.Text()
		trimmed := strings.TrimSpace(raw)
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		indent := len(raw) - len(strings.TrimLeft(raw, " \t"))
		level := indent / 4
		if level > len(path) {
			return c, fmt.Errorf("line %d: indented deeper than its section", line)
		}
		path = path[:level]
		name, value, hasValue := strings.Cut(trimmed, "=")
		name = strings.TrimSpace(name)
		path = append(path, name)
		if !hasValue {
			continue
		}
		value = strings.Trim(strings.TrimSpace(value), `"'`)
		switch strings.Join(path, "/") {
		case "curve/public-key":
			k, err := ParseKey(value)
			if err != nil {
				return c, fmt.Errorf("line %d: public-key: %w", line, err)
			}
			c.Public = k
		case "curve/secret-key":
			k, err := ParseKey(value)
			if err != nil {
				return c, fmt.Errorf("line %d: secret-key: %w", line, err)
			}
			c.Secret, c.HasSecret = k, true
		}
		path = path[:level] // a name with a value opens no section
	}
	if err := sc.Err(); err != nil {
		return c, err
	}
	if c.Public == (Key{}) {
		return c, errors.New("no curve public-key in it")
	}
	if c.HasSecret && KeyPairFromSecret(c.Secret).Public != c.Public {
		return c, errors.New("its public-key is not the secret-key's")
	}
	return c, nil
}

// ReadCert reads the certificate file at path.
func ReadCert(path string) (Cert, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Cert{}, fmt.Errorf("read certificate: %w", err)
	}
	c, err := ParseCert(b)
	if err != nil {
		return Cert{}, fmt.Errorf("certificate %s: %w", path, err)
	}
	return c, nil
}

// WriteCert writes kp as CZMQ's zcert_save does: the public certificate
// to path and the secret one to path+SecretSuffix, readable by its owner
// only. Neither file may exist already.
func WriteCert(path string, kp KeyPair, now time.Time) error {
	stamp := now.UTC().Format("2006-01-02 15:04:05")
	public := fmt.Sprintf(`#   ****  Generated on %s by moebius-js  ****
#   ZeroMQ CURVE Public Certificate
#   Exchange securely, or use a secure mechanism to verify the contents
#   of this file after exchange. Store public certificates in your home
#   directory, in the .curve subdirectory.

metadata
curve
    public-key = "%s"
`, stamp, kp.Public)
	secret := fmt.Sprintf(`#   ****  Generated on %s by moebius-js  ****
#   ZeroMQ CURVE **Secret** Certificate
#   DO NOT PROVIDE THIS FILE TO OTHER USERS nor change its permissions.

metadata
curve
    public-key = "%s"
    secret-key = "%s"
`, stamp, kp.Public, kp.Secret)
	if err := writeNew(path+SecretSuffix, secret, 0o600); err != nil {
		return err
	}
	if err := writeNew(path, public, 0o644); err != nil {
		_ = os.Remove(path + SecretSuffix)
		return err
	}
	return nil
}

func writeNew(path, text string, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return fmt.Errorf("write certificate: %w", err)
	}
	if _, err := f.WriteString(text); err != nil {
		_ = f.Close()
		return fmt.Errorf("write certificate %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write certificate %s: %w", path, err)
	}
	return nil
}

// LoadSecret reads a secret key given as its Z85 text (white space
// around it is ignored) or as the path of a secret certificate, and
// returns the pair. Its errors never quote what they were given when no
// such file exists: it may be a mistyped secret key.
func LoadSecret(keyOrPath string) (KeyPair, error) {
	_, statErr := os.Stat(keyOrPath)
	if k, err := ParseKey(strings.TrimSpace(keyOrPath)); err == nil && statErr != nil {
		return KeyPairFromSecret(k), nil
	}
	if errors.Is(statErr, fs.ErrNotExist) {
		return KeyPair{}, errors.New("neither a secret key (40 characters of Z85) nor the path of a certificate file (what was given is not repeated here: it may be a secret)")
	}
	c, err := ReadCert(keyOrPath)
	if err != nil {
		return KeyPair{}, err
	}
	if !c.HasSecret {
		return KeyPair{}, fmt.Errorf("certificate %s holds no secret-key (the secret one is %s%s)", keyOrPath, keyOrPath, SecretSuffix)
	}
	return KeyPair{Public: c.Public, Secret: c.Secret}, nil
}

// LoadKeyDir reads the public keys of the certificates in dir: every
// regular file not starting with a dot and not ending in SecretSuffix.
// A file that is not a certificate is reported in skipped (with why) and
// does not stop the others.
func LoadKeyDir(dir string) (keys map[Key]string, skipped []error, err error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("read allowed keys: %w", err)
	}
	keys = make(map[Key]string)
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") || strings.HasSuffix(name, SecretSuffix) {
			continue
		}
		path := filepath.Join(dir, name)
		if info, err := os.Stat(path); err != nil || !info.Mode().IsRegular() {
			continue // a folder, a socket, a link to nothing
		}
		c, err := ReadCert(path)
		if err != nil {
			skipped = append(skipped, err)
			continue
		}
		keys[c.Public] = name
	}
	return keys, skipped, nil
}
