package transport

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync/atomic"

	"github.com/moebius-js/moebius-js/curve"
	"github.com/moebius-js/moebius-js/flow"
)

// ZMTP 3.x frame flags (https://rfc.zeromq.org/spec/23/).
const (
	flagMore     = 0x01
	flagLong     = 0x02
	flagCommand  = 0x04
	flagReserved = ^byte(flagMore | flagLong | flagCommand)

	shortHeaderLen = 2 // flags + 1-byte size
	longHeaderLen  = 9 // flags + 8-byte big-endian size
	maxHeaderLen   = longHeaderLen
	maxShortSize   = 255

	// readBufferSize is the per-connection read buffer. Small on purpose:
	// a server may hold ten thousand peers.
	readBufferSize = 4 << 10

	// eagerBodyAlloc is the largest frame body allocated up front. Larger
	// bodies grow as their bytes actually arrive, so a peer that claims a
	// big (but allowed) frame and then stalls costs little memory.
	eagerBodyAlloc = 64 << 10
)

// frameReader reads whole ZMTP messages and commands from one connection,
// enforcing a per-message size budget and frame count before allocating
// anything. It is used by one goroutine only (the server peer's or the
// Dealer's reader).
type frameReader struct {
	r         *bufio.Reader
	max       int64 // budget per message: sum of header+body bytes
	maxFrames int   // frames per message
	hdr       [8]byte

	// Optional (a server peer's reader sets them): acct is reserved every
	// message frame before its body is read; pause hears when a
	// reservation has to wait and when it is over; partial is true while a
	// frame or message is partly read.
	acct    *flow.Account
	pause   func(paused bool)
	partial *atomic.Bool

	// open, on a CURVE connection, opens each wire frame (a MESSAGE
	// command) into the frame it carries; the size limits apply to the
	// carried frames, and each box is checked against them before it is
	// read. box is the scratch a box is read into.
	open *curve.Opener
	box  []byte
}

// newFrameReader reads from r messages of at most maxMessage bytes
// (headers included) and maxFrames frames.
func newFrameReader(r io.Reader, maxMessage int64, maxFrames int) *frameReader {
	return &frameReader{r: bufio.NewReaderSize(r, readBufferSize), max: maxMessage, maxFrames: maxFrames}
}

// next reads one message (frames != nil, with what it holds on fr.acct)
// or one command (command != nil, the raw command frame body). At a
// message boundary a clean end of stream yields io.EOF; in the middle of
// one, io.ErrUnexpectedEOF. Errors wrapping ErrMessageTooLarge (over the
// byte budget or the frame count) or ErrProtocol mean the peer misbehaved;
// flow.ErrClosed, that the account was closed while a reservation waited.
func (fr *frameReader) next() (frames [][]byte, command []byte, hold flow.Hold, err error) {
	var reserved int64
	frames, command, err = fr.read(&reserved)
	if fr.partial != nil {
		fr.partial.Store(false)
	}
	if err != nil {
		if reserved > 0 {
			fr.acct.Release(reserved, true)
		}
		return nil, nil, flow.Hold{}, err
	}
	if frames != nil && fr.acct != nil {
		hold = flow.NewHold(fr.acct, reserved)
	}
	return frames, command, hold, nil
}

// reserve takes n bytes on the account (and a message slot for the first
// frame of a message), waiting while they do not fit.
func (fr *frameReader) reserve(n int64, first bool, reserved *int64) error {
	if fr.acct == nil {
		return nil
	}
	if !fr.acct.TryReserve(n, first) {
		if fr.pause != nil {
			fr.pause(true)
		}
		err := fr.acct.Reserve(n, first)
		if fr.pause != nil {
			fr.pause(false)
		}
		if err != nil {
			return err
		}
	}
	*reserved += n
	return nil
}

func (fr *frameReader) read(reserved *int64) (frames [][]byte, command []byte, err error) {
	budget := fr.max
	for {
		flags, err := fr.r.ReadByte()
		if err != nil {
			if len(frames) > 0 && errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return nil, nil, fmt.Errorf("read frame header: %w", err)
		}
		if fr.partial != nil {
			fr.partial.Store(true)
		}
		if flags&flagReserved != 0 {
			return nil, nil, fmt.Errorf("%w: reserved flag bits set (flags 0x%02x)", ErrProtocol, flags)
		}

		var size uint64
		headerLen := int64(shortHeaderLen)
		if flags&flagLong != 0 {
			headerLen = longHeaderLen
			if _, err := io.ReadFull(fr.r, fr.hdr[:]); err != nil {
				return nil, nil, fmt.Errorf("read long frame size: %w", unexpectedEOF(err))
			}
			size = binary.BigEndian.Uint64(fr.hdr[:])
		} else {
			b, err := fr.r.ReadByte()
			if err != nil {
				return nil, nil, fmt.Errorf("read frame size: %w", unexpectedEOF(err))
			}
			size = uint64(b)
		}

		var body []byte
		if fr.open != nil {
			if flags, body, err = fr.readSealed(flags, size, headerLen, &budget, len(frames), reserved); err != nil {
				return nil, nil, err
			}
		} else {
			// Every check before the body is read (and allocated).
			if err := fr.spend(&budget, headerLen, size); err != nil {
				return nil, nil, err
			}
			if err := fr.checkFrame(flags, len(frames)); err != nil {
				return nil, nil, err
			}
			if flags&flagCommand == 0 {
				if err := fr.reserve(headerLen+int64(size), len(frames) == 0, reserved); err != nil {
					return nil, nil, err
				}
			}
			if body, err = readBody(fr.r, int(size)); err != nil {
				return nil, nil, fmt.Errorf("read frame body: %w", err)
			}
		}
		if flags&flagCommand != 0 {
			return nil, body, nil
		}
		frames = append(frames, body)
		if flags&flagMore == 0 {
			return frames, nil, nil
		}
	}
}

// spend takes a frame of size bytes (and its header) from what is left of
// the message's budget, or refuses it. Comparing in uint64 also refuses
// sizes of 2^63 and more.
func (fr *frameReader) spend(budget *int64, headerLen int64, size uint64) error {
	if *budget < headerLen || size > uint64(*budget-headerLen) {
		return fmt.Errorf("%w: frame of %d bytes (+%d header) exceeds the %d bytes left of the %d-byte message limit",
			ErrMessageTooLarge, size, headerLen, max(*budget, 0), fr.max)
	}
	*budget -= headerLen + int64(size)
	return nil
}

// checkFrame refuses a frame with flags that cannot come after nFrames
// frames of a message: a command with MORE or inside a message, or a MORE
// on the last frame allowed (one too many announced).
func (fr *frameReader) checkFrame(flags byte, nFrames int) error {
	switch {
	case flags&flagCommand != 0 && flags&flagMore != 0:
		return fmt.Errorf("%w: command frame with MORE flag", ErrProtocol)
	case flags&flagCommand != 0 && nFrames > 0:
		return fmt.Errorf("%w: command frame inside a multipart message", ErrProtocol)
	case flags&flagMore != 0 && nFrames+1 >= fr.maxFrames:
		return fmt.Errorf("%w: more than %d frames in one message", ErrMessageTooLarge, fr.maxFrames)
	}
	return nil
}

// smallSealed is the largest frame a CURVE box may carry to be opened
// before its room is reserved: enough for any PING or PONG (a name, a TTL
// and 16 bytes of context).
const smallSealed = 64

// readSealed reads the body of a CURVE connection's wire frame (its
// header read: flags, size, headerLen), opens it, and returns the frame
// it carries: its flags (more, command) and data. The carried frame is
// checked against what is left of the message budget from the box's size,
// before the box is read, and against the frame count once the box is
// open (MORE is inside it). The box's wire bytes are reserved on the flow
// account like a message frame's: before it is read, or, for a box small
// enough to be a command, once it shows a message frame, so that a PING is
// answered while the connection is out of room (as on NULL). nFrames is
// how many frames of the message came before it.
func (fr *frameReader) readSealed(flags byte, size uint64, headerLen int64, budget *int64, nFrames int, reserved *int64) (inner byte, data []byte, err error) {
	if size < curve.MessageOverhead {
		return 0, nil, refuseCurve(fmt.Errorf("%w: a %d-byte frame cannot hold a MESSAGE", curve.ErrMalformed, size), nil)
	}
	carried := size - curve.MessageOverhead
	carriedHeader := int64(shortHeaderLen)
	if carried > maxShortSize {
		carriedHeader = longHeaderLen
	}
	if err := fr.spend(budget, carriedHeader, carried); err != nil {
		return 0, nil, err
	}
	wire, first, small := headerLen+int64(size), nFrames == 0, carried <= smallSealed
	if !small {
		if err := fr.reserve(wire, first, reserved); err != nil {
			return 0, nil, err
		}
	}
	box, err := fr.readBox(int(size))
	if err != nil {
		return 0, nil, fmt.Errorf("read MESSAGE body: %w", err)
	}
	if inner, data, err = openFrame(fr.open, flags, box); err != nil {
		return 0, nil, err
	}
	if err := fr.checkFrame(inner, nFrames); err != nil {
		return 0, nil, err
	}
	switch command := inner&flagCommand != 0; {
	case small && !command:
		err = fr.reserve(wire, first, reserved)
	case !small && command && fr.acct != nil:
		fr.acct.Release(wire, first)
		*reserved -= wire
	}
	return inner, data, err
}

// readBox reads a box of size bytes: into the reader's scratch, which the
// next box reuses (what the box carries is opened into a slice of its
// own), or, past eagerBodyAlloc, as readBody reads a body.
func (fr *frameReader) readBox(size int) ([]byte, error) {
	if size > eagerBodyAlloc {
		return readBody(fr.r, size)
	}
	if cap(fr.box) < size {
		fr.box = make([]byte, size, max(size, 512))
	}
	b := fr.box[:size]
	if _, err := io.ReadFull(fr.r, b); err != nil {
		return nil, unexpectedEOF(err)
	}
	return b, nil
}

// readBody reads exactly size bytes. Bodies up to eagerBodyAlloc are
// allocated at once; larger ones grow (doubling) as bytes arrive, so memory
// follows what the peer really sent, not what it claimed.
func readBody(r io.Reader, size int) ([]byte, error) {
	if size <= eagerBodyAlloc {
		b := make([]byte, size)
		if _, err := io.ReadFull(r, b); err != nil {
			return nil, unexpectedEOF(err)
		}
		return b, nil
	}
	b := make([]byte, 0, eagerBodyAlloc)
	for len(b) < size {
		if len(b) == cap(b) {
			grown := make([]byte, len(b), min(2*cap(b), size))
			copy(grown, b)
			b = grown
		}
		n, err := io.ReadFull(r, b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err != nil {
			return nil, unexpectedEOF(err)
		}
	}
	return b, nil
}

// unexpectedEOF turns io.EOF into io.ErrUnexpectedEOF: inside a frame the
// stream must not end.
func unexpectedEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// putHeader writes a frame header for a body of size bytes into dst (which
// must have room for maxHeaderLen bytes) and returns the written part.
func putHeader(dst []byte, flags byte, size int) []byte {
	if size > maxShortSize {
		dst[0] = flags | flagLong
		binary.BigEndian.PutUint64(dst[1:longHeaderLen], uint64(size))
		return dst[:longHeaderLen]
	}
	dst[0] = flags
	dst[1] = byte(size)
	return dst[:shortHeaderLen]
}

// ZMTP command names this package speaks after the handshake.
const (
	cmdReady = "READY"
	cmdPing  = "PING"
	cmdPong  = "PONG"

	// maxPingContext is the longest PING context ZMTP 3.1 allows.
	maxPingContext = 16
)

// parseCommand splits a command frame body into name and data:
// name-length byte, name, data.
func parseCommand(body []byte) (name string, data []byte, err error) {
	if len(body) == 0 {
		return "", nil, fmt.Errorf("%w: empty command frame", ErrProtocol)
	}
	n := int(body[0])
	if n == 0 || n > len(body)-1 {
		return "", nil, fmt.Errorf("%w: command name length %d in a %d-byte command frame", ErrProtocol, n, len(body))
	}
	return string(body[1 : 1+n]), body[1+n:], nil
}

// pingBody is the PING command a server heartbeat sends: TTL 0 (the peer
// sets no timeout of its own from it) and no context.
var pingBody = []byte("\x04PING\x00\x00")

// pongFor builds the PONG command body answering a PING's data: 2-byte TTL
// then up to 16 bytes of context, which the PONG echoes. A PING too short
// to carry a TTL gets a PONG with an empty context.
func pongFor(pingData []byte) []byte {
	var context []byte
	if len(pingData) > 2 {
		context = pingData[2:]
		if len(context) > maxPingContext {
			context = context[:maxPingContext]
		}
	}
	body := make([]byte, 0, 1+len(cmdPong)+len(context))
	body = append(body, byte(len(cmdPong)))
	body = append(body, cmdPong...)
	return append(body, context...)
}
