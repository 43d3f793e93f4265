package controlplane

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/raft"

	"github.com/drover-dev/drover/controlplane/api"
	"github.com/drover-dev/drover/pki"
)

// Cluster formation and upkeep. A new cluster forms when BootstrapExpect
// servers without Raft state see each other in gossip; afterwards the
// leader adds servers that appear as non-voters, promotes them once they
// have caught up, and removes dead ones while quorum stays safe.

const (
	reconcileInterval = 2 * time.Second
	// A non-voter is promoted when it has been within maxPromoteLag
	// entries of the leader for stableFor.
	maxPromoteLag = 256
	stableFor     = 3 * time.Second
)

// peerURL is the HTTPS base URL of a server's API.
func peerURL(m member) string { return "https://" + m.API }

// serverURLs lists the APIs of the servers gossip sees alive, for agents
// and clients to fail over between.
func (s *Server) serverURLs() []string {
	var out []string
	for _, m := range s.members.alive() {
		out = append(out, peerURL(m))
	}
	if len(out) == 0 {
		out = []string{"https://" + s.cfg.APIAddr}
	}
	return out
}

// raftConfig returns the latest Raft configuration this server knows.
func (s *Server) raftConfig() ([]raft.Server, error) {
	f := s.raft.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, err
	}
	return f.Configuration().Servers, nil
}

// voters counts the voters of the latest configuration.
func (s *Server) voters() int {
	servers, _ := s.raftConfig()
	n := 0
	for _, sv := range servers {
		if sv.Suffrage == raft.Voter {
			n++
		}
	}
	return n
}

// bootstrapWhenReady forms a new cluster once BootstrapExpect servers
// without Raft state see each other. Each of them bootstraps with the same
// BootstrapExpect servers (the lowest IDs), which Raft allows. A server
// that learns of an existing cluster (a server with state) waits to be
// added by its leader instead.
func (s *Server) bootstrapWhenReady(ctx context.Context) {
	for {
		if servers, err := s.raftConfig(); err == nil && len(servers) > 0 {
			s.members.setBoot() // bootstrapped here, or added by a leader
			return
		}
		alive := s.members.alive()
		existing := slices.ContainsFunc(alive, func(m member) bool { return m.Boot && m.ID != s.cfg.ID })
		if !existing && len(alive) >= s.cfg.BootstrapExpect {
			chosen := alive[:s.cfg.BootstrapExpect]
			if slices.ContainsFunc(chosen, func(m member) bool { return m.ID == s.cfg.ID }) {
				var servers []raft.Server
				for _, m := range chosen {
					servers = append(servers, raft.Server{ID: raft.ServerID(m.ID), Address: raft.ServerAddress(m.Raft), Suffrage: raft.Voter})
				}
				if err := s.raft.raft.BootstrapCluster(raft.Configuration{Servers: servers}).Error(); err != nil {
					s.log.Warn("bootstrap failed", "err", err)
				} else {
					s.log.Info("bootstrapped a new cluster", "servers", len(servers))
				}
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-s.members.changed:
		case <-time.After(time.Second):
		}
	}
}

// reconcileMembers runs on the leader: it brings Raft's configuration in
// line with the gossip pool.
func (s *Server) reconcileMembers(ctx context.Context) {
	log := s.log.With("component", "membership")
	healthySince := map[string]time.Time{}
	for {
		if err := s.reconcileOnce(ctx, log, healthySince); err != nil {
			log.Warn("membership reconciliation failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-s.members.changed:
		case <-time.After(reconcileInterval):
		}
	}
}

func (s *Server) reconcileOnce(ctx context.Context, log *slog.Logger, healthySince map[string]time.Time) error {
	servers, err := s.raftConfig()
	if err != nil {
		return err
	}
	inRaft := map[string]raft.Server{}
	for _, sv := range servers {
		inRaft[string(sv.ID)] = sv
	}
	members := s.members.all()
	now := time.Now()
	for _, m := range members {
		sv, known := inRaft[m.ID]
		switch {
		case m.Alive() && !known:
			if err := s.addNonvoter(ctx, m); err != nil {
				return err
			}
			log.Info("added server as non-voter", "server", m.ID)
		case m.Alive() && known && sv.Suffrage == raft.Nonvoter:
			if !s.caughtUp(ctx, m) {
				delete(healthySince, m.ID)
				continue
			}
			if healthySince[m.ID].IsZero() {
				healthySince[m.ID] = now
			}
			if now.Sub(healthySince[m.ID]) >= stableFor {
				if err := s.raft.raft.AddVoter(sv.ID, sv.Address, 0, applyTimeout).Error(); err != nil {
					return fmt.Errorf("promote %s: %w", m.ID, err)
				}
				log.Info("promoted server to voter", "server", m.ID)
			}
		case !m.Alive() && known && m.ID != s.cfg.ID:
			if s.mayRemove(m, sv, servers, members, now) {
				if err := s.raft.raft.RemoveServer(sv.ID, 0, applyTimeout).Error(); err != nil {
					return fmt.Errorf("remove %s: %w", m.ID, err)
				}
				log.Info("removed dead server", "server", m.ID, "gossip_state", stateName(m.State))
				return nil // one removal per round: the next one sees the new configuration
			}
		}
	}
	return nil
}

// mayRemove decides whether a server gossip sees dead or gone can leave
// the Raft configuration (see removable).
func (s *Server) mayRemove(m member, sv raft.Server, servers []raft.Server, members []member, now time.Time) bool {
	if now.Sub(m.Since) < s.cfg.DeadServerCleanup {
		return false
	}
	alive := map[string]bool{}
	for _, mm := range members {
		alive[mm.ID] = mm.Alive()
	}
	return removable(sv, servers, alive, s.cfg.BootstrapExpect)
}

// removable is the quorum rule for removing a dead server: a non-voter can
// always go; a voter only if, after its removal, the voters still number at
// least minVoters and those alive are a quorum of them.
func removable(dead raft.Server, servers []raft.Server, alive map[string]bool, minVoters int) bool {
	if dead.Suffrage != raft.Voter {
		return true
	}
	voters, aliveVoters := 0, 0
	for _, other := range servers {
		if other.Suffrage != raft.Voter || other.ID == dead.ID {
			continue
		}
		voters++
		if alive[string(other.ID)] {
			aliveVoters++
		}
	}
	return voters >= minVoters && aliveVoters >= voters/2+1
}

// addNonvoter adds a server to Raft after checking, over mutual TLS, that
// the server at its API address holds a certificate for its gossip name.
func (s *Server) addNonvoter(ctx context.Context, m member) error {
	h, err := s.peerHealth(ctx, m)
	if err != nil {
		return fmt.Errorf("cannot verify server %s before adding it: %w", m.ID, err)
	}
	if h.ID != m.ID {
		return fmt.Errorf("server at %s claims ID %s in gossip but %s in its health", m.API, m.ID, h.ID)
	}
	return s.raft.raft.AddNonvoter(raft.ServerID(m.ID), raft.ServerAddress(m.Raft), 0, applyTimeout).Error()
}

// caughtUp reports whether a server is in the leader's term and within
// maxPromoteLag entries of the leader's log.
func (s *Server) caughtUp(ctx context.Context, m member) bool {
	h, err := s.peerHealth(ctx, m)
	if err != nil {
		return false
	}
	last := s.raft.raft.LastIndex()
	return h.Term == currentTerm(s.raft.raft) && h.LastIndex+maxPromoteLag >= last
}

func currentTerm(r *raft.Raft) uint64 {
	var t uint64
	fmt.Sscan(r.Stats()["term"], &t)
	return t
}

// health is this server's own view, for its peers and operators.
func (s *Server) health() api.ServerHealth {
	r := s.raft.raft
	_, leader := r.LeaderWithID()
	return api.ServerHealth{ID: s.cfg.ID, State: r.State().String(), Leader: string(leader), Term: currentTerm(r),
		LastIndex: r.LastIndex(), CommitIndex: r.CommitIndex(), AppliedIndex: r.AppliedIndex()}
}

func (s *Server) getHealth(w http.ResponseWriter, _ *http.Request, _ pki.Identity) error {
	return writeJSON(w, http.StatusOK, s.health())
}

// peerHealth asks a server for its health and checks that its certificate
// names the server it claims to be.
func (s *Server) peerHealth(ctx context.Context, m member) (*api.ServerHealth, error) {
	if m.ID == s.cfg.ID {
		h := s.health()
		return &h, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, peerURL(m)+api.PathInternalHealth, nil)
	if err != nil {
		return nil, err
	}
	resp, err := s.peers.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s", resp.Status)
	}
	id, err := pki.PeerIdentity(resp.TLS)
	if err != nil || id.Kind != pki.KindServer || id.Name != m.ID {
		return nil, fmt.Errorf("the certificate at %s does not name server %s", m.API, m.ID)
	}
	var h api.ServerHealth
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&h); err != nil {
		return nil, err
	}
	return &h, nil
}

// clusterStatus shows every server known to Raft or gossip with its
// suffrage, gossip state and how far it lags behind the leader.
func (s *Server) clusterStatus(w http.ResponseWriter, r *http.Request, _ pki.Identity) error {
	servers, err := s.raftConfig()
	if err != nil {
		return err
	}
	self := s.health()
	out := api.ClusterStatus{Leader: self.Leader, Term: self.Term, AnsweredBy: s.cfg.ID}
	seen := map[string]bool{}
	byID := map[string]member{}
	for _, m := range s.members.all() {
		byID[m.ID] = m
	}
	add := func(id, raftAddr, suffrage string) {
		seen[id] = true
		m, known := byID[id]
		st := api.ServerStatus{ID: id, Raft: raftAddr, API: m.API, Suffrage: suffrage, Leader: id == self.Leader, Gossip: "unknown"}
		if known {
			st.Gossip = stateName(m.State)
			if m.Alive() {
				if h, err := s.peerHealth(r.Context(), m); err == nil {
					st.Health = h
				}
			}
		}
		out.Servers = append(out.Servers, st)
	}
	for _, sv := range servers {
		suffrage := "voter"
		if sv.Suffrage != raft.Voter {
			suffrage = "non-voter"
		}
		add(string(sv.ID), string(sv.Address), suffrage)
	}
	for id, m := range byID {
		if !seen[id] {
			add(id, m.Raft, "none")
		}
	}
	slices.SortFunc(out.Servers, func(a, b api.ServerStatus) int { return strings.Compare(a.ID, b.ID) })
	var leaderLast uint64
	for _, st := range out.Servers {
		if st.Leader && st.Health != nil {
			leaderLast = st.Health.LastIndex
		}
	}
	for i, st := range out.Servers {
		if st.Health != nil && leaderLast >= st.Health.AppliedIndex {
			out.Servers[i].Lag = leaderLast - st.Health.AppliedIndex
		}
	}
	return writeJSON(w, http.StatusOK, out)
}
