package transport

import (
	"log/slog"
	"time"
)

// Defaults applied by Listen to zero (or negative) Config fields.
const (
	DefaultMaxMessageSize   = 1 << 20
	DefaultHandshakeTimeout = 5 * time.Second
	DefaultWriteTimeout     = 10 * time.Second
	DefaultSendQueue        = 1000
)

// Config configures a Server. The zero value of every field except
// Endpoints means "use the default".
type Config struct {
	// Endpoints to bind: "tcp://host:port" (port 0 picks a free port; host
	// "*" means all interfaces), "ipc:///abs/path" or "ipc://rel/path".
	Endpoints []string

	// MaxMessageSize limits one incoming message: the sum over its frames of
	// header plus body bytes. A frame that would exceed it closes the
	// connection before anything is allocated for it. Default 1 MiB.
	MaxMessageSize int64

	// HandshakeTimeout bounds the ZMTP greeting and security handshake of
	// one connection. Default 5s.
	HandshakeTimeout time.Duration

	// WriteTimeout bounds how long a peer's writer may stay stuck on its
	// socket before the peer is dropped, so a peer that stops reading cannot
	// pin it forever. (The deadline is refreshed lazily: a stuck write
	// fails after between half and all of it.) Default 10s.
	WriteTimeout time.Duration

	// SendQueue is how many messages may wait (not yet taken by the writer)
	// for one peer; one more drops that peer. Default 1000.
	SendQueue int

	// Handover decides duplicate identities: false (default) refuses the
	// newcomer; true closes the old connection and the newcomer takes the
	// identity.
	Handover bool

	// Logger receives the server's logs. Default slog.Default().
	Logger *slog.Logger
}

// withDefaults returns cfg with every unset field filled in.
func (cfg Config) withDefaults() Config {
	if cfg.MaxMessageSize <= 0 {
		cfg.MaxMessageSize = DefaultMaxMessageSize
	}
	if cfg.HandshakeTimeout <= 0 {
		cfg.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = DefaultWriteTimeout
	}
	if cfg.SendQueue <= 0 {
		cfg.SendQueue = DefaultSendQueue
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return cfg
}

// Stats is a snapshot of a Server's counters. Peers and Conns are gauges;
// the other fields count since Listen.
type Stats struct {
	Peers            int    // registered peers (handshake done, identity owned)
	Conns            int    // open connections, including those still handshaking
	Accepted         uint64 // connections accepted
	HandshakeFailed  uint64 // connections closed during the handshake
	Oversize         uint64 // connections closed for a message over MaxMessageSize
	SlowDropped      uint64 // peers dropped because their send queue overflowed
	DuplicateRefused uint64 // newcomers refused because their identity was in use
	ProtocolErrors   uint64 // connections closed for a ZMTP violation after the handshake
	MsgsIn           uint64 // messages delivered to the Handler
	MsgsOut          uint64 // messages written to peers (commands excluded)
}
