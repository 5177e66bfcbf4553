package transport

import (
	"log/slog"
	"time"

	"github.com/moebius-js/moebius-js/flow"
	"github.com/moebius-js/moebius-js/internal/lograte"
)

// Defaults for zero (or negative) Limits fields.
const (
	DefaultMaxMessageSize   = 1 << 20
	DefaultHandshakeTimeout = 5 * time.Second
	DefaultWriteTimeout     = 10 * time.Second
	DefaultSendHWM          = 1000
	DefaultSendHWMBytes     = 4 << 20
	DefaultSendQueueBytes   = 16 << 20
	DefaultMaxFrames        = 256

	DefaultMaxConnections           = 10_000
	DefaultMaxConnectionsPerAddress = 5_000
	DefaultMaxHandshakes            = 1_000
	DefaultReadTimeout              = 30 * time.Second
	DefaultHeartbeatInterval        = 30 * time.Second
	DefaultHeartbeatTimeout         = 30 * time.Second
	DefaultMaxSendBytes             = 256 << 20
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

	// WriteTimeout bounds how long a writer may make no progress on its
	// socket before the connection is given up, so a peer that stops
	// reading cannot pin it forever (a Server counts it in
	// Stats.WriteTimeouts). Writes go out in chunks of at most 256 KiB,
	// each under the deadline, so a peer that reads slowly but steadily
	// is not mistaken for one that stopped. Default 10s.
	WriteTimeout time.Duration

	// SendHWM and SendHWMBytes are the send queue's high-water mark: a
	// queue holding more messages or bytes than either (queued, or taken by
	// the writer and not yet written) is backlogged until it falls below
	// half of both. A backlogged peer makes Send report it (so a producer
	// that can wait does), and broadcasts skip it. Defaults 1000 and 4 MiB.
	SendHWM      int
	SendHWMBytes int64

	// SendQueueBytes bounds what one send queue may hold, in bytes of frame
	// bodies plus a small overhead per message and frame (so that it bounds
	// the number of messages too). The Send that would take it past the
	// bound drops a Server's peer (ErrPeerDropped, Stats.SlowDropped), or
	// fails a Dealer's Send (ErrQueueFull). A message alone is never too
	// big: on an empty queue any size is accepted, so that any reply can be
	// sent. Default 16 MiB.
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
	if l.SendHWM <= 0 {
		l.SendHWM = DefaultSendHWM
	}
	if l.SendHWMBytes <= 0 {
		l.SendHWMBytes = DefaultSendHWMBytes
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

	// CurveEndpoints are bound like Endpoints but speak CURVE (RFC 25)
	// with the Curve settings, which they need: a client asking for
	// another mechanism (NULL) is refused.
	CurveEndpoints []string
	Curve          *CurveServer

	// Limits bound each peer's connection.
	Limits

	// Handover decides duplicate identities: false (default) refuses the
	// newcomer; true closes the old connection and the newcomer takes the
	// identity. On CURVE, a client never takes a live identity over from
	// a client that proved another key: it is refused.
	Handover bool

	// Inbound bounds what peers have delivered and the Handler not yet
	// released (see Handler.Message): each connection's reader reserves
	// every frame body on it before reading it, and waits while it cannot,
	// so the connection is not read. Nil: a budget without a byte bound.
	Inbound *flow.Budget

	// QueueLimit is how many delivered messages one connection may hold
	// (not yet released) before its reader waits, as libzmq's ZMQ_RCVHWM.
	// 0: no bound.
	QueueLimit int

	// MaxSendBytes bounds the bytes held in all peers' send queues
	// together (a broadcast's frame counts once). Past it, peers whose
	// writer is stuck are dropped, the largest first (Stats.Shed). Default
	// 256 MiB.
	MaxSendBytes int64

	// MaxConnections bounds open connections (handshaking or not),
	// MaxConnectionsPerAddress those from one remote IP address, and
	// MaxHandshakes those still in their handshake (and, per address,
	// half of it, unless MaxConnectionsPerAddress is off: behind a
	// balancer every client has one address). A connection past any of
	// them is closed as soon as it
	// is accepted, before any handshake (Stats.Refused). Defaults 10,000,
	// 5,000 and 1,000; MaxConnections is lowered to fit the process's
	// file descriptor limit. A negative MaxConnectionsPerAddress turns that
	// bound off (behind a balancer every connection comes from one
	// address).
	MaxConnections           int
	MaxConnectionsPerAddress int
	MaxHandshakes            int

	// ReadTimeout closes a connection that stops in the middle of a
	// message: no byte for that long while a message is partly read
	// (Stats.ReadTimeouts). Time during which the server itself does not
	// read (flow control) does not count. Default 30s.
	ReadTimeout time.Duration

	// HeartbeatInterval and HeartbeatTimeout are server-side heartbeats
	// in the manner of libzmq's ZMQ_HEARTBEAT_IVL/ZMQ_HEARTBEAT_TIMEOUT:
	// a peer from which nothing arrived for the interval is sent a PING,
	// and closed when nothing arrives within the timeout after it
	// (Stats.HeartbeatTimeouts), so half-open connections go away without
	// TCP keepalive. A negative interval turns them off. Defaults 30s and
	// 30s.
	HeartbeatInterval time.Duration
	HeartbeatTimeout  time.Duration

	// Logger receives the server's logs. Default slog.Default().
	Logger *slog.Logger

	// LogLimiter rate-limits the warnings one peer (or address) can cause
	// again and again. Default: a limiter of the server's own.
	LogLimiter *lograte.Limiter
}

// withDefaults returns cfg with every unset field filled in.
func (cfg Config) withDefaults() Config {
	cfg.Limits = cfg.Limits.withDefaults()
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Inbound == nil {
		cfg.Inbound = flow.NewBudget(0, nil)
	}
	if cfg.MaxSendBytes <= 0 {
		cfg.MaxSendBytes = DefaultMaxSendBytes
	}
	if cfg.MaxConnections <= 0 {
		cfg.MaxConnections = DefaultMaxConnections
	}
	if cfg.MaxConnectionsPerAddress == 0 {
		cfg.MaxConnectionsPerAddress = DefaultMaxConnectionsPerAddress
	}
	if cfg.MaxHandshakes <= 0 {
		cfg.MaxHandshakes = DefaultMaxHandshakes
	}
	if cfg.ReadTimeout <= 0 {
		cfg.ReadTimeout = DefaultReadTimeout
	}
	if cfg.HeartbeatInterval == 0 {
		cfg.HeartbeatInterval = DefaultHeartbeatInterval
	}
	if cfg.HeartbeatTimeout <= 0 {
		cfg.HeartbeatTimeout = DefaultHeartbeatTimeout
	}
	return cfg
}

// Stats is a snapshot of a Server's counters. Peers and Conns are gauges;
// the other fields count since Listen.
type Stats struct {
	Peers              int    // registered peers (handshake done, identity owned)
	Conns              int    // open connections, including those still handshaking
	Accepted           uint64 // connections accepted
	HandshakeFailed    uint64 // connections closed during the handshake
	HandshakeAbandoned uint64 // connections their peer closed during the handshake (a TCP health check), not in HandshakeFailed
	VersionRefused     uint64 // of those, peers speaking a ZMTP older than 3.0
	MechanismRefused   uint64 // of those, peers asking for a security mechanism the endpoint does not offer
	Oversize           uint64 // connections closed for a message over MaxMessageSize or MaxFrames
	SlowDropped        uint64 // peers dropped because their send queue would pass SendQueueBytes
	WriteTimeouts      uint64 // peers dropped because their writer made no progress for WriteTimeout
	Shed               uint64 // peers dropped to bring all send queues back under MaxSendBytes
	DuplicateRefused   uint64 // newcomers refused because their identity was in use
	ProtocolErrors     uint64 // connections closed for a ZMTP violation after the handshake
	ReadTimeouts       uint64 // connections closed for stalling in the middle of a message
	Heartbeats         uint64 // PINGs sent to silent peers
	HeartbeatTimeout   uint64 // connections closed because nothing arrived after a PING
	BroadcastSkipped   uint64 // broadcast copies not queued because the peer was backlogged
	MsgsIn             uint64 // messages delivered to the Handler
	MsgsOut            uint64 // messages written to peers (commands excluded)
	SendBytes          int64  // bytes held in all send queues now

	// Refused counts connections closed at accept, by the bound that
	// refused them.
	RefusedMaxConnections, RefusedPerAddress, RefusedHandshakes uint64

	// CurveRefused counts CURVE connections closed for a refusal, in the
	// handshake or after it, by reason (CurveServerKey, CurveClientKey,
	// CurveNullClient, CurveBadBox, CurveNonce, CurveMalformed); the
	// handshake ones are in HandshakeFailed too, the later ones in
	// ProtocolErrors. CurveRevoked counts clients disconnected by
	// RevokeKeys.
	CurveRefused map[string]uint64
	CurveRevoked uint64
}
