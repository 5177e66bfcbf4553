package transport

// Envelope is a request's routing envelope, as libzmq's REP socket keeps
// it: the frames of a message up to and including its first empty frame
// (the delimiter). A REQ socket sends [delimiter, payload]; with
// ZMQ_REQ_CORRELATE, [request id, delimiter, payload]; through a
// ROUTER/DEALER proxy, [proxy's identities…, delimiter, payload]. Every
// reply to the request must carry the envelope back, in front of its own
// frames. A message with no empty frame among its first MaxEnvelopeFrames
// has no envelope (nil), and neither has one whose first empty frame is its
// last (there would be no payload): it is all payload. A message of one
// empty frame is a ZMQ_PROBE_ROUTER hello, all envelope.
type Envelope [][]byte

// MaxEnvelopeFrames bounds an envelope, delimiter included: past it, the
// message is taken as having none.
const MaxEnvelopeFrames = 32

// delimiter is the envelope of a plain REQ exchange: one empty frame.
var delimiter = Envelope{{}}

// splitEnvelope splits a message into its envelope and its payload.
func splitEnvelope(frames [][]byte) (env Envelope, payload [][]byte) {
	for i, f := range frames {
		if i == MaxEnvelopeFrames {
			break
		}
		if len(f) == 0 {
			if i > 0 && i == len(frames)-1 {
				break // nothing after it: not a delimiter
			}
			return Envelope(frames[: i+1 : i+1]), frames[i+1:]
		}
	}
	return nil, frames
}

// setLatestEnvelope records env as the envelope of p's latest message.
// Reader goroutine only.
func (p *peer) setLatestEnvelope(env Envelope) {
	old := p.latestEnv.Load()
	switch {
	case env == nil && old == nil:
	case env == nil:
		p.latestEnv.Store(nil)
	case old == nil || !sameEnvelope(*old, env):
		e := env // only this branch keeps it: env itself stays on the stack
		p.latestEnv.Store(&e)
	}
}

// latestEnvelope is the envelope of p's latest message. Any goroutine.
func (p *peer) latestEnvelope() Envelope {
	if e := p.latestEnv.Load(); e != nil {
		return *e
	}
	return nil
}

func sameEnvelope(a, b Envelope) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if string(a[i]) != string(b[i]) {
			return false
		}
	}
	return true
}
