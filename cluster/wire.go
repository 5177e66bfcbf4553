package cluster

import (
	"encoding/binary"
	"errors"
	"strings"
)

// What crosses NATS, under the subject prefix "moebius.<cluster name>.":
//
//	bcast            an unfiltered broadcast: the frame; header Origin
//	send.<instance>  a message for a client of that instance: encodeSend
//	presence         this instance's clients: header Origin, Kind and Seq;
//	                 Kind "+" or "-" (a client connected or left; data: its
//	                 id), "snapshot" (data: encodeIDs of them all, or of the
//	                 first of them, "snapshot+" bringing the rest), "beat"
//	                 (alive, at delta Seq), "hello" (just joined: everyone
//	                 answers with a snapshot), "resync" (data: the name of
//	                 an instance asked for its snapshot)
//	app.<subject>    cluster.publish: the payload; header Origin
//
// Presence travels on one subject so that one subscription sees an
// instance's deltas, snapshots and beats in the order it sent them.
const (
	hdrOrigin = "Origin"
	hdrNonce  = "Nonce" // the sending process's, beside its name
	hdrMore   = "More"  // on a snapshot's part: more parts follow
	hdrKind   = "Kind"
	hdrSeq    = "Seq"

	kindAdd          = "+"
	kindRemove       = "-"
	kindSnapshot     = "snapshot"
	kindSnapshotMore = "snapshot+"
	kindBeat         = "beat"
	kindHello        = "hello"
	kindResync       = "resync"
)

var errMalformed = errors.New("cluster: malformed message")

// token turns a name into one NATS subject token: the characters a token
// cannot hold ('.', '*', '>', white space) become '_'.
func token(name string) string {
	return strings.Map(func(r rune) rune {
		switch r {
		case '.', '*', '>', ' ', '\t', '\r', '\n':
			return '_'
		}
		return r
	}, name)
}

// encodeSend lays out a message for one client: the id's length (one
// byte), the id, then each frame as a 4-byte length and its bytes.
func encodeSend(id string, frames [][]byte) []byte {
	n := 1 + len(id)
	for _, f := range frames {
		n += 4 + len(f)
	}
	b := make([]byte, 0, n)
	b = append(b, byte(len(id)))
	b = append(b, id...)
	for _, f := range frames {
		b = binary.BigEndian.AppendUint32(b, uint32(len(f)))
		b = append(b, f...)
	}
	return b
}

func decodeSend(b []byte) (id string, frames [][]byte, err error) {
	if len(b) < 1 || len(b) < 1+int(b[0]) {
		return "", nil, errMalformed
	}
	id, b = string(b[1:1+int(b[0])]), b[1+int(b[0]):]
	for len(b) > 0 {
		if len(b) < 4 {
			return "", nil, errMalformed
		}
		n := binary.BigEndian.Uint32(b)
		if uint64(n) > uint64(len(b)-4) {
			return "", nil, errMalformed
		}
		frames = append(frames, b[4:4+n])
		b = b[4+n:]
	}
	if len(frames) == 0 {
		return "", nil, errMalformed
	}
	return id, frames, nil
}

// encodeIDs lays out client ids, each behind its length (one byte: an id
// has at most 255 bytes).
func encodeIDs(ids []string) []byte {
	n := 0
	for _, id := range ids {
		n += 1 + len(id)
	}
	b := make([]byte, 0, n)
	for _, id := range ids {
		b = append(b, byte(len(id)))
		b = append(b, id...)
	}
	return b
}

func decodeIDs(b []byte) ([]string, error) {
	var ids []string
	for len(b) > 0 {
		n := int(b[0])
		if len(b) < 1+n {
			return nil, errMalformed
		}
		ids = append(ids, string(b[1:1+n]))
		b = b[1+n:]
	}
	return ids, nil
}
