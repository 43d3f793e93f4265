package testcluster

import (
	"context"
	"fmt"
	"net"
	"sync"

	"github.com/drover-dev/drover/controlplane"
)

// Net is a network between the servers of one test process that can be
// cut: Partition splits the servers into groups that cannot reach each
// other (Raft, gossip and API calls between servers all fail or drop),
// and Heal joins them again. Clients and agents are not affected.
type Net struct {
	mu    sync.Mutex
	owner map[string]string // address -> server ID
	cut   map[link]bool
	conns map[link]map[net.Conn]bool
	d     net.Dialer
}

type link struct{ a, b string } // a < b

func newLink(x, y string) link {
	if x > y {
		x, y = y, x
	}
	return link{x, y}
}

// NewNet returns a network with no cuts.
func NewNet() *Net {
	return &Net{owner: map[string]string{}, cut: map[link]bool{}, conns: map[link]map[net.Conn]bool{}}
}

// Own records that addr belongs to server id.
func (n *Net) Own(id string, addrs ...string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, a := range addrs {
		n.owner[a] = id
	}
}

// For returns the view of the network from server id.
func (n *Net) For(id string) controlplane.Network { return &endpoint{n: n, from: id} }

// Partition cuts every link between servers of different groups and
// closes the connections open across the cut.
func (n *Net) Partition(groups ...[]string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for i, g := range groups {
		for _, h := range groups[i+1:] {
			for _, x := range g {
				for _, y := range h {
					l := newLink(x, y)
					n.cut[l] = true
					for c := range n.conns[l] {
						c.Close()
					}
					delete(n.conns, l)
				}
			}
		}
	}
}

// Heal removes every cut.
func (n *Net) Heal() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.cut = map[link]bool{}
}

type endpoint struct {
	n    *Net
	from string
}

func (e *endpoint) blocked(addr string) (link, bool) {
	e.n.mu.Lock()
	defer e.n.mu.Unlock()
	to, ok := e.n.owner[addr]
	if !ok {
		return link{}, false
	}
	l := newLink(e.from, to)
	return l, e.n.cut[l]
}

func (e *endpoint) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	l, cut := e.blocked(addr)
	if cut {
		return nil, fmt.Errorf("dial %s: network partitioned (test)", addr)
	}
	c, err := e.n.d.DialContext(ctx, network, addr)
	if err != nil || l == (link{}) {
		return c, err
	}
	e.n.mu.Lock()
	defer e.n.mu.Unlock()
	if e.n.cut[l] { // cut while dialing
		c.Close()
		return nil, fmt.Errorf("dial %s: network partitioned (test)", addr)
	}
	if e.n.conns[l] == nil {
		e.n.conns[l] = map[net.Conn]bool{}
	}
	e.n.conns[l][c] = true
	return &trackedConn{Conn: c, n: e.n, l: l}, nil
}

func (e *endpoint) Reachable(addr string) bool {
	_, cut := e.blocked(addr)
	return !cut
}

type trackedConn struct {
	net.Conn
	n    *Net
	l    link
	once sync.Once
}

func (c *trackedConn) Close() error {
	c.once.Do(func() {
		c.n.mu.Lock()
		delete(c.n.conns[c.l], c.Conn)
		c.n.mu.Unlock()
	})
	return c.Conn.Close()
}
