package transport

import (
	"log/slog"
	"time"
)

// Defaults for zero (or negative) Limits fields.
const (
	DefaultMaxMessageSize   = 1 << 20
	DefaultHandshakeTimeout = 5 * time.Second
	DefaultWriteTimeout     = 10 * time.Second
	DefaultSendQueue        = 1000
	DefaultSendQueueBytes   = 16 << 20
	DefaultMaxFrames        = 256
)

// Limits bound what one connection may cost. A Server's peers and a
// Dealer share them; zero (or negative) fields take the defaults.
type Limits struct {
	// MaxMessageSize limits one incoming message: the sum over its frames of
	// header plus body bytes. A frame that would exceed it closes the
	// connection before anything is allocated for it. Default 1 MiB.
	MaxMessageSize int64

	// MaxFrames limits how many frames one incoming message may have,
	// counted on the wire (a REQ peer's empty delimiter is one). The header
	// of the frame that would exceed it closes the connection before its
	// body is read, as for MaxMessageSize (on a Server it is counted in
	// Stats.Oversize and the Disconnected reason wraps ErrMessageTooLarge).
	// Without it a 1 MiB message could carry half a million empty frames.
	// Default 256.
	MaxFrames int

	// HandshakeTimeout bounds the ZMTP greeting and security handshake of
	// one connection (for a Dealer, connecting too). Default 5s.
	HandshakeTimeout time.Duration

	// WriteTimeout bounds how long a writer may stay stuck on its socket
	// before the connection is given up, so a peer that stops reading
	// cannot pin it forever. (The deadline is refreshed lazily: a stuck
	// write fails after between half and all of it.) Default 10s.
	WriteTimeout time.Duration

	// SendQueue is how many messages may wait to be written (not yet taken
	// by the writer): one more drops a Server's peer (ErrPeerDropped,
	// Stats.SlowDropped), or fails a Dealer's Send (ErrQueueFull). Default
	// 1000.
	SendQueue int

	// SendQueueBytes bounds the same queue in bytes: the sum of the frame
	// bodies waiting (frame headers and REQ delimiters are not counted). A
	// message that would take the sum over it is treated like one over
	// SendQueue. A single message larger than SendQueueBytes is still
	// accepted when the queue is empty, so that a large reply can always be
	// sent; a queue therefore holds at most max(SendQueueBytes, one
	// message) bytes. Default 16 MiB.
	SendQueueBytes int64
}

// withDefaults returns l with every unset field filled in.
func (l Limits) withDefaults() Limits {
	if l.MaxMessageSize <= 0 {
		l.MaxMessageSize = DefaultMaxMessageSize
	}
	if l.MaxFrames <= 0 {
		l.MaxFrames = DefaultMaxFrames
	}
	if l.HandshakeTimeout <= 0 {
		l.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if l.WriteTimeout <= 0 {
		l.WriteTimeout = DefaultWriteTimeout
	}
	if l.SendQueue <= 0 {
		l.SendQueue = DefaultSendQueue
	}
	if l.SendQueueBytes <= 0 {
		l.SendQueueBytes = DefaultSendQueueBytes
	}
	return l
}

// Config configures a Server. The zero value of every field except
// Endpoints means "use the default".
type Config struct {
	// Endpoints to bind: "tcp://host:port" (port 0 picks a free port; host
	// "*" means all interfaces), "ipc:///abs/path" or "ipc://rel/path".
	Endpoints []string

	// Limits bound each peer's connection.
	Limits

	// Handover decides duplicate identities: false (default) refuses the
	// newcomer; true closes the old connection and the newcomer takes the
	// identity.
	Handover bool

	// Logger receives the server's logs. Default slog.Default().
	Logger *slog.Logger
}

// withDefaults returns cfg with every unset field filled in.
func (cfg Config) withDefaults() Config {
	cfg.Limits = cfg.Limits.withDefaults()
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
	Oversize         uint64 // connections closed for a message over MaxMessageSize or MaxFrames
	SlowDropped      uint64 // peers dropped because their send queue overflowed (SendQueue or SendQueueBytes)
	DuplicateRefused uint64 // newcomers refused because their identity was in use
	ProtocolErrors   uint64 // connections closed for a ZMTP violation after the handshake
	MsgsIn           uint64 // messages delivered to the Handler
	MsgsOut          uint64 // messages written to peers (commands excluded)
}
