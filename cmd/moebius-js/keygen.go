package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/moebius-js/moebius-js/curve"
)

const keygenAbout = `Makes a CURVE key pair and writes it as CZMQ certificates: the public one
to PATH, the secret one to PATH` + curve.SecretSuffix + ` (readable by its owner only).
Prints the public key (Z85) on stdout. Existing files are never overwritten.`

// keygen writes a new CURVE key pair as CZMQ certificates (what pyzmq's
// zmq.auth.load_certificate reads) and prints the public key.
func keygen(args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("keygen", pflag.ContinueOnError)
	if code, done := parseFlags(fs, args, stdout, stderr); done {
		return code
	}
	if fs.NArg() != 1 || fs.Arg(0) == "" {
		return usageError(stderr, "keygen", "give one PATH for the public certificate (the secret one goes to PATH%s)", curve.SecretSuffix)
	}
	path := fs.Arg(0)
	if strings.HasSuffix(path, curve.SecretSuffix) {
		return usageError(stderr, "keygen", "PATH is the public certificate's; the secret one is written to PATH%s, so %q would be skipped in a curve_allow folder", curve.SecretSuffix, path)
	}
	kp, err := curve.GenerateKeyPair()
	if err != nil {
		fmt.Fprintf(stderr, "moebius-js keygen: %v\n", err)
		return 1
	}
	// WriteCert creates both files anew (O_EXCL): it never overwrites.
	if err := curve.WriteCert(path, kp, time.Now()); err != nil {
		var pathErr *os.PathError
		if errors.Is(err, os.ErrExist) && errors.As(err, &pathErr) {
			fmt.Fprintf(stderr, "moebius-js keygen: %s exists; not overwriting it (remove it or pick another PATH)\n", pathErr.Path)
			return 1
		}
		fmt.Fprintf(stderr, "moebius-js keygen: %v\n", err)
		return 1
	}
	fmt.Fprintln(stdout, kp.Public)
	fmt.Fprintf(stderr, "moebius-js keygen: public certificate %s (for clients' server key, or a curve_allow folder), secret certificate %s%s (mode 0600; for curve_key or --curve-client-key)\n", path, path, curve.SecretSuffix)
	return 0
}
