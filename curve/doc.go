// Package curve is CurveZMQ (RFC 26) as the ZMTP CURVE security mechanism
// (RFC 25), with Z85 keys (RFC 32) and CZMQ's certificate files.
//
// It owns the cryptography and the wire formats of the handshake commands
// (HELLO, WELCOME, INITIATE, READY) and of the MESSAGE boxes that carry
// every frame once the handshake is done. It does no I/O and starts no
// goroutines: a ServerHandshake or ClientHandshake takes a command's body
// and returns the command to send back, the way a state machine is fed;
// the transport reads and writes the bytes, enforces deadlines and sizes,
// and decides who may connect. It knows nothing of sockets, routing or
// handlers.
//
// The boxes are NaCl's crypto_box (Curve25519, XSalsa20, Poly1305) and
// crypto_secretbox, from golang.org/x/crypto.
package curve
