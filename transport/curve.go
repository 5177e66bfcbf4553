package transport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"time"

	"github.com/moebius-js/moebius-js/curve"
)

// CURVE (RFC 25, RFC 26) on the wire: after a greeting that names the
// mechanism "CURVE", the client sends HELLO, the server WELCOME, the
// client INITIATE (carrying its metadata, boxed), the server READY (its
// metadata, boxed). From then on every frame, message or command, travels
// as one MESSAGE command whose box holds a flags byte (more, command) and
// the frame's bytes. The cryptography and the command layouts are the
// curve package's; this file runs them over a connection and decides who
// may connect.

// CurveServer makes a Server's CurveEndpoints speak CURVE as the server.
type CurveServer struct {
	// Keys is the server's long-term key pair; clients are given its
	// public half.
	Keys curve.KeyPair

	// Authorize decides whether a client that proved its long-term key
	// may connect: nil lets every key in; a non-nil error refuses the
	// client (its text is logged as the reason). It runs on the
	// connection's reader goroutine during the handshake; ctx ends at the
	// handshake's deadline. It may be called from many connections at
	// once. A key that RevokeKeys rejects while Authorize runs is
	// disconnected all the same: the connection counts as the key's from
	// the moment the key is proven.
	Authorize func(ctx context.Context, client curve.Key, remote string) error
}

// CurveClient makes a Dealer speak CURVE as the client.
type CurveClient struct {
	ServerKey curve.Key     // the server's long-term public key
	Keys      curve.KeyPair // the client's long-term key pair
}

// Why a CURVE handshake or session was refused, as counted in
// Stats.CurveRefused and named in the logs.
const (
	CurveServerKey  = "server_key"  // HELLO not sealed for this server's key
	CurveClientKey  = "client_key"  // the client's key is not allowed (Authorize)
	CurveNullClient = "null_client" // the client asked for another mechanism (NULL)
	CurveBadBox     = "bad_box"     // a box that does not open: forged, tampered, another session's
	CurveNonce      = "nonce"       // a short nonce replayed or out of order
	CurveMalformed  = "malformed"   // a command of the wrong size or layout, or too large
)

// curveReasons are the refusal reasons, in the order of counters.curveRefused.
var curveReasons = [...]string{CurveServerKey, CurveClientKey, CurveNullClient, CurveBadBox, CurveNonce, CurveMalformed}

// CurveReasons lists the reasons Stats.CurveRefused counts.
func CurveReasons() []string { return curveReasons[:] }

// curveRefusal is the error a CURVE refusal ends a connection with. It
// wraps ErrProtocol (and the curve package's error, when there is one).
type curveRefusal struct {
	reason  string
	client  string // the client's long-term key in Z85, when known
	claimed bool   // client is only what the client claimed: its vouch did not prove it
	err     error
}

func (e *curveRefusal) Error() string {
	if e.claimed {
		return fmt.Sprintf("curve %s (claimed client key %s): %v", e.reason, e.client, e.err)
	}
	if e.client != "" {
		return fmt.Sprintf("curve %s (client key %s): %v", e.reason, e.client, e.err)
	}
	return fmt.Sprintf("curve %s: %v", e.reason, e.err)
}

func (e *curveRefusal) Unwrap() []error { return []error{ErrProtocol, e.err} }

// refuseCurve classifies err (from the curve package, or a handshake
// read) as a curveRefusal; client is the client's key when known.
func refuseCurve(err error, client *curve.Key) error {
	var already *curveRefusal
	if errors.As(err, &already) {
		return err
	}
	reason := CurveMalformed
	switch {
	case errors.Is(err, curve.ErrServerKey):
		reason = CurveServerKey
	case errors.Is(err, curve.ErrBadBox):
		reason = CurveBadBox
	case errors.Is(err, curve.ErrNonce):
		reason = CurveNonce
	case errors.Is(err, curve.ErrMalformed), errors.Is(err, errHandshakeTooLarge), errors.Is(err, ErrProtocol):
	default:
		return err // the connection broke or timed out: not a refusal
	}
	r := &curveRefusal{reason: reason, err: err}
	if client != nil {
		r.client = client.String()
	}
	return r
}

// curveServerHandshake runs sd's server side of CURVE on c after the
// greetings: HELLO → WELCOME, INITIATE (vetted by Authorize, until
// deadline) → READY. The client's long-term key is stored in sd.proven as
// soon as the INITIATE proves it, before Authorize runs, so that
// RevokeKeys sees it. It returns the client's metadata and the session.
func curveServerHandshake(sd side, c net.Conn, deadline time.Time) (metadata []byte, s *curve.Session, err error) {
	cs := sd.curveServer
	hs := curve.NewServerHandshake(cs.Keys)
	body, err := readCommandBody(c)
	if err != nil {
		return nil, nil, refuseCurve(fmt.Errorf("receive HELLO: %w", err), nil)
	}
	welcome, err := hs.Hello(body)
	if err != nil {
		return nil, nil, refuseCurve(err, nil)
	}
	if _, err := c.Write(appendCommandBody(nil, welcome)); err != nil {
		return nil, nil, fmt.Errorf("send WELCOME: %w", err)
	}
	if body, err = readCommandBody(c); err != nil {
		return nil, nil, refuseCurve(fmt.Errorf("receive INITIATE: %w", err), nil)
	}
	client, metadata, err := hs.Initiate(body)
	if err != nil {
		err = refuseCurve(err, nil)
		var r *curveRefusal
		if errors.As(err, &r) && client != (curve.Key{}) {
			// The key the INITIATE named, which its vouch did not prove:
			// logged as claimed, never as the client's.
			r.client, r.claimed = client.String(), true
		}
		return nil, nil, err
	}
	sd.proven.Store(&client)
	if cs.Authorize != nil {
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		err := cs.Authorize(ctx, client, c.RemoteAddr().String())
		cancel()
		if err != nil {
			// libzmq's ZAP says 400 here; the client sees an ERROR, then EOF.
			_, _ = c.Write(appendCommand(nil, "ERROR", errorBody("Authentication failure")))
			return nil, nil, &curveRefusal{reason: CurveClientKey, client: client.String(), err: err}
		}
	}
	ready, s, err := hs.Ready(sd.readyMetadata())
	if err != nil {
		return nil, nil, refuseCurve(err, &client)
	}
	if _, err := c.Write(appendCommandBody(nil, ready)); err != nil {
		return nil, nil, fmt.Errorf("send READY: %w", err)
	}
	return metadata, s, nil
}

// curveClientHandshake runs sd's client side of CURVE on c after the
// greetings and returns the server's metadata and the session.
func curveClientHandshake(sd side, c net.Conn) (metadata []byte, s *curve.Session, err error) {
	hs, err := curve.NewClientHandshake(sd.curveClient.Keys, sd.curveClient.ServerKey)
	if err != nil {
		return nil, nil, err
	}
	if _, err := c.Write(appendCommandBody(nil, hs.Hello())); err != nil {
		return nil, nil, fmt.Errorf("send HELLO: %w", err)
	}
	body, err := readServerCommand(c, "WELCOME")
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		// A CURVE server closes without a word on a HELLO that is not
		// sealed for its key.
		return nil, nil, fmt.Errorf("%w: the server closed the connection at our HELLO: is the server key right? (%w)", ErrProtocol, err)
	}
	if err != nil {
		return nil, nil, err
	}
	if err := hs.Welcome(body); err != nil {
		return nil, nil, err
	}
	initiate, err := hs.Initiate(sd.readyMetadata())
	if err != nil {
		return nil, nil, err
	}
	if _, err := c.Write(appendCommandBody(nil, initiate)); err != nil {
		return nil, nil, fmt.Errorf("send INITIATE: %w", err)
	}
	if body, err = readServerCommand(c, "READY"); err != nil {
		return nil, nil, err
	}
	return hs.Ready(body)
}

// readServerCommand reads the server's next handshake command, turning an
// ERROR (the server refused us) into an error that says why.
func readServerCommand(c net.Conn, want string) ([]byte, error) {
	body, err := readCommandBody(c)
	if err != nil {
		return nil, fmt.Errorf("receive %s: %w", want, err)
	}
	if name, data, err := parseCommand(body); err == nil && name == "ERROR" {
		return nil, fmt.Errorf("%w: the server refused the CURVE handshake: %q", ErrProtocol, errorReason(data))
	}
	return body, nil
}

// errorBody is an ERROR command's data: a length byte and the reason.
func errorBody(reason string) []byte {
	return append([]byte{byte(len(reason))}, reason...)
}

// curveRefused counts and logs a refused CURVE handshake at INFO,
// rate-limited per address. Reader goroutine of p.
func (s *Server) curveRefused(p *peer, r *curveRefusal, handshake bool) {
	for i, reason := range curveReasons {
		if reason == r.reason {
			s.stats.curveRefused[i].Add(1)
		}
	}
	msg := "curve handshake refused"
	if !handshake {
		msg = "closing connection: curve message refused"
	}
	attrs := []any{"reason", r.reason, "err", r.err}
	switch {
	case r.claimed:
		attrs = append(attrs, "claimed_key", r.client)
	case r.client != "":
		attrs = append(attrs, "client_key", r.client)
	}
	s.lim.Log(p.log, slog.LevelInfo, "curve_"+r.reason, p.addrKey, msg, attrs...)
}

// RevokeKeys disconnects every CURVE peer whose client key keep rejects
// (an allow-list changed), counting each in Stats.CurveRevoked and logging
// it at INFO, and returns how many it disconnected. Queued replies are
// discarded: the client is no longer trusted. Any goroutine.
func (s *Server) RevokeKeys(keep func(curve.Key) bool) int {
	s.mu.RLock()
	var gone []*peer
	for p := range s.conns {
		if k := p.clientKey.Load(); k != nil && !keep(*k) {
			gone = append(gone, p)
		}
	}
	s.mu.RUnlock()
	n := 0
	for _, p := range gone {
		if p.shutdownCounting(fmt.Errorf("%w: its CURVE key is no longer allowed", ErrDisconnected), &s.stats.curveRevoked) {
			n++
			// Not p.log: its reader may still be in the handshake, adding to it.
			s.log.Info("disconnected: client key no longer allowed", "conn", p.serial, "remote", p.remote,
				"endpoint", p.endpoint, "client_key", p.clientKey.Load().String())
		}
	}
	return n
}

// buildSealed seals the frames of batch into w.sealed, one MESSAGE
// command frame each, and points w.bufs at them. Writer goroutine.
func (w *batchWriter) buildSealed(batch []outMsg) int {
	need := 0
	for _, m := range batch {
		for _, f := range m.envelope {
			need += maxHeaderLen + curve.SealedLen(len(f))
		}
		for _, f := range m.frames {
			need += maxHeaderLen + curve.SealedLen(len(f))
		}
	}
	if cap(w.sealed) < need {
		w.sealed = make([]byte, 0, need)
	}
	out := w.sealed[:0]
	bufs := w.bufs[:0]
	msgs := 0
	var hdr [maxHeaderLen]byte
	frame := func(flags byte, f []byte) {
		start := len(out)
		// As libzmq writes it: a frame without the command flag (RFC 25
		// calls MESSAGE a command; libzmq reads it either way).
		out = append(out, putHeader(hdr[:], 0, curve.SealedLen(len(f)))...)
		out = w.seal.AppendMessage(out, flags, f)
		bufs = append(bufs, out[start:]) // out never grows past need: the slices stay put
	}
	for _, m := range batch {
		if !m.command {
			msgs++
		}
		for _, f := range m.envelope {
			frame(curve.FlagMore, f)
		}
		for i, f := range m.frames {
			var flags byte
			if i < len(m.frames)-1 {
				flags |= curve.FlagMore
			}
			if m.command {
				flags |= curve.FlagCommand
			}
			frame(flags, f)
		}
	}
	w.bufs = bufs
	return msgs
}

// openFrame turns one wire frame of a CURVE connection (flags, body) into
// the frame it carries. Reader goroutine.
func openFrame(o *curve.Opener, wireFlags byte, body []byte) (flags byte, data []byte, err error) {
	if wireFlags&flagMore != 0 {
		// libzmq sends each MESSAGE as a frame of its own, without the
		// command flag; RFC 25 calls it a command: both are read.
		return 0, nil, refuseCurve(fmt.Errorf("%w: a MESSAGE frame with the MORE flag on a CURVE connection (flags 0x%02x)", curve.ErrMalformed, wireFlags), nil)
	}
	f, data, err := o.Open(body)
	if err != nil {
		return 0, nil, refuseCurve(err, nil)
	}
	if f&^(curve.FlagMore|curve.FlagCommand) != 0 {
		return 0, nil, refuseCurve(fmt.Errorf("%w: MESSAGE flags 0x%02x (only more and command are defined)", curve.ErrMalformed, f), nil)
	}
	if f&curve.FlagCommand != 0 {
		flags |= flagCommand
	}
	if f&curve.FlagMore != 0 {
		flags |= flagMore
	}
	return flags, data, nil
}
