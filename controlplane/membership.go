package controlplane

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
)

// Membership: servers find each other with hashicorp/memberlist. Gossip is
// encrypted with the cluster's gossip key; each server's node metadata
// carries its Raft and API addresses. A gossip name is not an identity:
// before the leader adds a server to Raft it checks, over mutual TLS, that
// the server's certificate names the same ID.

// nodeMeta is what a server tells the others about itself.
type nodeMeta struct {
	API  string `json:"api"`
	Raft string `json:"raft"`
	// Boot is true once the server has Raft state: it is part of a
	// cluster, so nobody should bootstrap a new one with it.
	Boot bool `json:"boot"`
}

// member is a server as gossip sees it.
type member struct {
	ID     string
	Gossip string
	API    string
	Raft   string
	Boot   bool
	State  memberlist.NodeStateType
	Since  time.Time // when State last changed
}

// Alive reports whether gossip currently sees the server alive.
func (m member) Alive() bool { return m.State == memberlist.StateAlive }

type membership struct {
	log     *slog.Logger
	list    *memberlist.Memberlist
	changed chan struct{} // signalled (never blocking) on every change

	mu      sync.Mutex
	meta    nodeMeta
	members map[string]member
}

// startMembership joins the gossip pool. Joining the seed addresses is
// retried in the background until one answers, so servers can start in
// any order.
func startMembership(cfg *Config, key []byte, netw Network, meta nodeMeta, log *slog.Logger) (*membership, error) {
	m := &membership{log: log.With("component", "gossip"), changed: make(chan struct{}, 1), meta: meta, members: map[string]member{}}
	host, portStr, err := net.SplitHostPort(cfg.GossipAddr)
	if err != nil {
		return nil, fmt.Errorf("gossip_addr: %w", err)
	}
	port, _ := strconv.Atoi(portStr)
	stdlog := slog.NewLogLogger(m.log.Handler(), slog.LevelDebug)
	nt, err := memberlist.NewNetTransport(&memberlist.NetTransportConfig{BindAddrs: []string{host}, BindPort: port, Logger: stdlog})
	if err != nil {
		return nil, fmt.Errorf("cannot listen for gossip on %s: %w", cfg.GossipAddr, err)
	}
	mc := memberlist.DefaultLANConfig()
	mc.Name = cfg.ID
	mc.BindAddr, mc.BindPort = host, port
	mc.AdvertiseAddr, mc.AdvertisePort = host, port
	mc.SecretKey = key
	mc.Transport = &gossipTransport{NetTransport: nt, net: netw}
	mc.Delegate = m
	mc.Events = m
	mc.Logger = stdlog
	if m.list, err = memberlist.Create(mc); err != nil {
		nt.Shutdown()
		return nil, fmt.Errorf("cannot start gossip: %w", err)
	}
	return m, nil
}

// join contacts the seeds until one answers or stop is closed.
func (m *membership) join(seeds []string, stop <-chan struct{}) {
	if len(seeds) == 0 {
		return
	}
	for attempt := 0; ; attempt++ {
		n, err := m.list.Join(seeds)
		if err == nil && n > 0 {
			m.log.Info("joined the server pool", "contacted", n)
			return
		}
		if attempt%10 == 0 {
			m.log.Info("cannot join the server pool yet; retrying", "seeds", seeds, "err", err)
		}
		select {
		case <-stop:
			return
		case <-time.After(backoff(attempt)):
		}
	}
}

// setBoot announces that this server has Raft state.
func (m *membership) setBoot() {
	m.mu.Lock()
	if m.meta.Boot {
		m.mu.Unlock()
		return
	}
	m.meta.Boot = true
	m.mu.Unlock()
	if err := m.list.UpdateNode(5 * time.Second); err != nil {
		m.log.Warn("cannot announce raft state", "err", err)
	}
}

// lookup returns a server by ID.
func (m *membership) lookup(id string) (member, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	mem, ok := m.members[id]
	return mem, ok
}

// all returns every server gossip knows, in ID order.
func (m *membership) all() []member {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]member, 0, len(m.members))
	for _, mem := range m.members {
		out = append(out, mem)
	}
	slices.SortFunc(out, func(a, b member) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// alive returns the servers gossip sees alive, in ID order.
func (m *membership) alive() []member {
	var out []member
	for _, mem := range m.all() {
		if mem.Alive() {
			out = append(out, mem)
		}
	}
	return out
}

func (m *membership) shutdown() {
	if m.list != nil {
		_ = m.list.Shutdown()
	}
}

// memberlist.Delegate. These run on memberlist's goroutines: they never
// block and never call back into memberlist.

func (m *membership) NodeMeta(limit int) []byte {
	m.mu.Lock()
	b, _ := json.Marshal(m.meta)
	m.mu.Unlock()
	if len(b) > limit {
		m.log.Error("node metadata too large", "bytes", len(b), "limit", limit)
		return nil
	}
	return b
}

func (*membership) NotifyMsg([]byte)                           {}
func (*membership) GetBroadcasts(overhead, limit int) [][]byte { return nil }
func (*membership) LocalState(join bool) []byte                { return nil }
func (*membership) MergeRemoteState(buf []byte, join bool)     {}

// memberlist.EventDelegate.

func (m *membership) NotifyJoin(n *memberlist.Node)   { m.record(n) }
func (m *membership) NotifyLeave(n *memberlist.Node)  { m.record(n) }
func (m *membership) NotifyUpdate(n *memberlist.Node) { m.record(n) }

func (m *membership) record(n *memberlist.Node) {
	var meta nodeMeta
	if err := json.Unmarshal(n.Meta, &meta); err != nil {
		m.log.Warn("ignoring server with unreadable metadata", "node", n.Name)
		return
	}
	mem := member{ID: n.Name, Gossip: n.Address(), API: meta.API, Raft: meta.Raft, Boot: meta.Boot, State: n.State, Since: time.Now()}
	m.mu.Lock()
	if old, ok := m.members[n.Name]; ok && old.State == n.State {
		mem.Since = old.Since
	}
	m.members[n.Name] = mem
	m.mu.Unlock()
	m.log.Debug("server pool changed", "server", n.Name, "state", stateName(n.State))
	select {
	case m.changed <- struct{}{}:
	default:
	}
}

func stateName(st memberlist.NodeStateType) string {
	switch st {
	case memberlist.StateAlive:
		return "alive"
	case memberlist.StateSuspect:
		return "suspect"
	case memberlist.StateDead:
		return "failed"
	case memberlist.StateLeft:
		return "left"
	}
	return "unknown"
}
