package transport

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moebius-js/moebius-js/flow"
)

// FuzzHandshakeAndFrames feeds arbitrary bytes, as the remote side of a
// connection, through the real handshake and frame reader (Server.startConn
// over a net.Pipe). It asserts: no panic (including none swallowed by the
// handshake's refusals, which never log at Error), nothing allocated
// beyond what the limits allow, and every connection fully reaped.
//
// Seeds live in testdata/fuzz/FuzzHandshakeAndFrames and are replayed by a
// plain `go test`.
func FuzzHandshakeAndFrames(f *testing.F) {
	const maxMessage = 64 << 10
	f.Fuzz(func(t *testing.T, data []byte) {
		errs := &errorCounter{}
		h := &fuzzHandler{}
		s := newServer(Config{
			Limits: Limits{
				MaxMessageSize:   maxMessage,
				HandshakeTimeout: 2 * time.Second,
				WriteTimeout:     2 * time.Second,
				SendHWM:          16,
			},
			Logger: slog.New(errs),
		}, h)
		h.srv = s

		before := totalAlloc()
		client, server := net.Pipe()
		drained := make(chan struct{})
		go func() { // the server's greeting, READY, PONGs and echoes
			_, _ = io.Copy(io.Discard, client)
			close(drained)
		}()
		s.startConn(server, "pipe", nil)
		_, _ = client.Write(data) // returns once the server has read it all, or closed
		_ = client.Close()
		<-drained
		if err := s.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}

		// Legitimate allocations: one message of up to maxMessage (twice,
		// for incremental growth), the 64 KiB handshake cap, per-frame
		// slice headers, and fixed per-connection overhead.
		if grew, limit := totalAlloc()-before, uint64(8<<20+64*len(data)); grew > limit {
			t.Fatalf("allocated %d bytes for a %d-byte input (limit %d)", grew, len(data), limit)
		}
		if n := errs.n.Load(); n > 0 {
			t.Fatalf("%d error logs (a recovered panic?)", n)
		}
		if st := s.Stats(); st.Conns != 0 || st.Peers != 0 {
			t.Fatalf("after Close: %+v", st)
		}
		if c, d := h.connected.Load(), h.disconnected.Load(); c != d {
			t.Fatalf("Connected %d, Disconnected %d", c, d)
		}
	})
}

func totalAlloc() uint64 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.TotalAlloc
}

// fuzzHandler echoes every message, to drive the writer too.
type fuzzHandler struct {
	srv                     *Server
	connected, disconnected atomic.Int64
}

func (h *fuzzHandler) Connected(Peer)           { h.connected.Add(1) }
func (h *fuzzHandler) Disconnected(Peer, error) { h.disconnected.Add(1) }
func (h *fuzzHandler) Message(p Peer, _ Envelope, frames [][]byte, hold flow.Hold) {
	hold.Release()
	_ = h.srv.Send(p.ID, frames...)
}

// errorCounter is a slog.Handler that counts records at Error level.
type errorCounter struct{ n atomic.Int64 }

func (e *errorCounter) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelError }
func (e *errorCounter) Handle(context.Context, slog.Record) error    { e.n.Add(1); return nil }
func (e *errorCounter) WithAttrs([]slog.Attr) slog.Handler           { return e }
func (e *errorCounter) WithGroup(string) slog.Handler                { return e }

// TestFrameReaderBudget checks message-size and frame-count accounting at
// the boundary.
func TestFrameReaderBudget(t *testing.T) {
	emptyFrames := func(n int) []byte { // n empty frames: one message
		b := bytes.Repeat([]byte{flagMore, 0}, n)
		b[len(b)-2] = 0
		return b
	}
	cases := []struct {
		name      string
		max       int64
		maxFrames int
		data      []byte
		wantErr   error
		wantRead  int // bytes consumed when the error is reported (-1: don't check)
	}{
		{"two frames exactly at the limit", 2 + 3 + 2 + 3, 256, []byte{1, 3, 'a', 'b', 'c', 0, 3, 'd', 'e', 'f'}, nil, -1},
		{"two frames one over", 2 + 3 + 2 + 2, 256, []byte{1, 3, 'a', 'b', 'c', 0, 3, 'd', 'e', 'f'}, ErrMessageTooLarge, -1},
		{"long header counts 9 bytes", 9 + 1, 256, []byte{2, 0, 0, 0, 0, 0, 0, 0, 2, 'a', 'b'}, ErrMessageTooLarge, -1},
		{"max uint64 size", 1 << 20, 256, []byte{2, 255, 255, 255, 255, 255, 255, 255, 255}, ErrMessageTooLarge, -1},
		{"reserved bit", 1 << 20, 256, []byte{0x08, 0}, ErrProtocol, -1},
		{"truncated", 1 << 20, 256, []byte{0, 5, 'a'}, io.ErrUnexpectedEOF, -1},
		{"clean end", 1 << 20, 256, nil, io.EOF, -1},
		{"frames exactly at the frame limit", 1 << 20, 4, emptyFrames(4), nil, -1},
		{"one frame over the frame limit", 1 << 20, 4, emptyFrames(5), ErrMessageTooLarge, -1},
		{"half a million empty frames in 1 MiB", 1 << 20, 256, emptyFrames(1 << 19), ErrMessageTooLarge, -1},
		{"refused at the header announcing one too many, before its body", 1 << 20, 2,
			[]byte{flagMore, 1, 'a', flagMore, 3, 'b', 'c', 'd', 0, 0}, ErrMessageTooLarge, 5},
		{"a single-frame limit still reads commands", 1 << 20, 1, zmtpCommand("PING"), nil, -1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := bytes.NewReader(tc.data)
			fr := newFrameReader(r, tc.max, tc.maxFrames)
			frames, _, _, err := fr.next()
			if tc.wantErr == nil && err != nil || tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if err == nil && len(frames) > tc.maxFrames {
				t.Fatalf("read %d frames, limit %d", len(frames), tc.maxFrames)
			}
			if read := len(tc.data) - r.Len() - fr.r.Buffered(); tc.wantRead >= 0 && read != tc.wantRead {
				t.Fatalf("consumed %d bytes before failing, want %d", read, tc.wantRead)
			}
		})
	}
}

// zmtpCommand encodes a short command frame with no data.
func zmtpCommand(name string) []byte {
	return append([]byte{flagCommand, byte(1 + len(name)), byte(len(name))}, name...)
}
