package transport

import (
	"errors"
	"fmt"
)

// Errors returned by Send, and reasons given to Handler.Disconnected. They
// are usually wrapped with context; test them with errors.Is.
var (
	// ErrUnknownPeer: no connected peer has that identity.
	ErrUnknownPeer = errors.New("transport: unknown peer")

	// ErrPeerDropped: the peer's send queue would have passed its byte
	// bound, or it was shed for the server-wide bound, so it was dropped.
	// errors.Is(ErrPeerDropped, ErrUnknownPeer) is true, so callers can
	// treat both as "client gone".
	ErrPeerDropped = fmt.Errorf("transport: peer dropped, its send queue over its bound: %w", ErrUnknownPeer)

	// ErrServerClosed: Close (or Shutdown) ended the connection.
	ErrServerClosed = errors.New("transport: server closed")

	// ErrDisconnected: Server.Disconnect ended the connection.
	ErrDisconnected = errors.New("transport: disconnected by server")

	// ErrReplaced: a newer connection with the same identity took over
	// (Config.Handover).
	ErrReplaced = errors.New("transport: replaced by a newer connection with the same identity")

	// ErrMessageTooLarge: a peer sent a message over Config.MaxMessageSize.
	ErrMessageTooLarge = errors.New("transport: message too large")

	// ErrProtocol: a peer broke ZMTP (bad greeting, metadata, flags, ...).
	ErrProtocol = errors.New("transport: ZMTP protocol error")

	// ErrNoFrames: Send was called without frames.
	ErrNoFrames = errors.New("transport: message has no frames")
)

// Internal reasons.
var (
	// errDuplicate: a newcomer claimed an identity in use (no Handover).
	errDuplicate = errors.New("transport: identity already in use")

	// errShed: a stuck peer dropped for the server-wide send bound.
	errShed = fmt.Errorf("%w (shed: all send queues together passed their bound)", ErrPeerDropped)

	// errReadTimeout: a peer stalled in the middle of a message.
	errReadTimeout = errors.New("transport: read timeout: the peer stalled in the middle of a message")

	// errHeartbeat: nothing arrived within the heartbeat timeout after a PING.
	errHeartbeat = errors.New("transport: heartbeat timeout: nothing arrived after a PING")

	// errConnEnded: fallback teardown reason when nothing more specific
	// was recorded.
	errConnEnded = errors.New("transport: connection ended")
)
