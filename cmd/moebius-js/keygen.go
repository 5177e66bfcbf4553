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

const keygenUsage = `usage: moebius-js keygen PATH

Makes a CURVE key pair and writes it as CZMQ certificates: the public one
to PATH, the secret one to PATH` + curve.SecretSuffix + ` (readable by its owner only).
Prints the public key (Z85) on stdout. Existing files are never overwritten.`

// keygen writes a new CURVE key pair as CZMQ certificates (what pyzmq's
// zmq.auth.load_certificate reads) and prints the public key.
func keygen(args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("keygen", pflag.ContinueOnError)
	help := fs.BoolP("help", "h", false, "print this help")
	if code, done := parseFlags(fs, args, stdout, stderr); done {
		return code
	}
	if *help {
		fmt.Fprintln(stdout, keygenUsage)
		fs.SetOutput(stdout)
		fs.PrintDefaults()
		return 0
	}
	if fs.NArg() != 1 || fs.Arg(0) == "" {
		fmt.Fprintf(stderr, "moebius-js keygen: give one PATH for the public certificate\n\n%s\n", keygenUsage)
		return 2
	}
	path := fs.Arg(0)
	if strings.HasSuffix(path, curve.SecretSuffix) {
		fmt.Fprintf(stderr, "moebius-js keygen: PATH is the public certificate's; the secret one is written to PATH%s, so %q would be skipped in a curve_allow folder\n", curve.SecretSuffix, path)
		return 2
	}
	for _, p := range []string{path, path + curve.SecretSuffix} {
		if _, err := os.Lstat(p); err == nil {
			fmt.Fprintf(stderr, "moebius-js keygen: %s exists; not overwriting it (remove it or pick another PATH)\n", p)
			return 1
		} else if !errors.Is(err, os.ErrNotExist) {
			fmt.Fprintf(stderr, "moebius-js keygen: %v\n", err)
			return 1
		}
	}
	kp, err := curve.GenerateKeyPair()
	if err != nil {
		fmt.Fprintf(stderr, "moebius-js keygen: %v\n", err)
		return 1
	}
	if err := curve.WriteCert(path, kp, time.Now()); err != nil {
		fmt.Fprintf(stderr, "moebius-js keygen: %v\n", err)
		return 1
	}
	fmt.Fprintln(stdout, kp.Public)
	fmt.Fprintf(stderr, "moebius-js keygen: public certificate %s (for clients' server key, or a curve_allow folder), secret certificate %s%s (mode 0600; for curve_key or --curve-client-key)\n", path, path, curve.SecretSuffix)
	return 0
}
