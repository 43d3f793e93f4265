package controlplane

import (
	"context"
	"net"
	"time"

	"github.com/hashicorp/memberlist"
)

// Network is how a server reaches the other servers: Raft connections,
// gossip, and API calls to peers all go through it. The default is the
// real network; tests substitute one that can cut links, to partition a
// cluster inside one process.
type Network interface {
	// DialContext opens a connection to addr.
	DialContext(ctx context.Context, network, addr string) (net.Conn, error)
	// Reachable reports whether a datagram to addr may be sent now.
	Reachable(addr string) bool
}

type realNetwork struct{ d net.Dialer }

func (n *realNetwork) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	return n.d.DialContext(ctx, network, addr)
}

func (*realNetwork) Reachable(string) bool { return true }

// gossipTransport is memberlist's UDP/TCP transport with every outgoing
// packet and connection passed through the Network.
type gossipTransport struct {
	*memberlist.NetTransport
	net Network
}

func (t *gossipTransport) WriteTo(b []byte, addr string) (time.Time, error) {
	if !t.net.Reachable(addr) {
		return time.Now(), nil // dropped on the way, as a real network would
	}
	return t.NetTransport.WriteTo(b, addr)
}

func (t *gossipTransport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return t.net.DialContext(ctx, "tcp", addr)
}
