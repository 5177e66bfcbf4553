package transport

// PeerInfo is one registered peer as an operator sees it.
type PeerInfo struct {
	Peer
	Remote    string // the peer's address, ip:port (or the socket's name)
	Endpoint  string // the endpoint it connected to
	SendBytes int64  // bytes waiting in its send queue (queued, or being written)
}

// Peers lists the registered peers (handshake done, identity owned), in
// no particular order. Any goroutine.
func (s *Server) Peers() []PeerInfo {
	s.mu.RLock()
	peers := make([]*peer, 0, len(s.peers))
	for _, p := range s.peers {
		peers = append(peers, p)
	}
	s.mu.RUnlock()
	out := make([]PeerInfo, len(peers))
	for i, p := range peers {
		out[i] = PeerInfo{Peer: p.public(), Remote: p.remote, Endpoint: p.endpoint, SendBytes: p.q.heldBytes()}
	}
	return out
}
