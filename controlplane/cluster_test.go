package controlplane

import (
	"fmt"
	"testing"

	"github.com/hashicorp/raft"
)

func TestRemovableKeepsQuorumSafe(t *testing.T) {
	servers := func(voters, nonvoters int) []raft.Server {
		var out []raft.Server
		for i := range voters {
			out = append(out, raft.Server{ID: raft.ServerID(fmt.Sprintf("v%d", i+1)), Suffrage: raft.Voter})
		}
		for i := range nonvoters {
			out = append(out, raft.Server{ID: raft.ServerID(fmt.Sprintf("n%d", i+1)), Suffrage: raft.Nonvoter})
		}
		return out
	}
	aliveExcept := func(dead ...string) map[string]bool {
		m := map[string]bool{}
		for _, id := range []string{"v1", "v2", "v3", "v4", "v5", "n1"} {
			m[id] = true
		}
		for _, d := range dead {
			m[d] = false
		}
		return m
	}
	tests := []struct {
		name      string
		servers   []raft.Server
		dead      string
		alive     map[string]bool
		minVoters int
		want      bool
	}{
		{"3 voters, 1 dead, min 3: keep (quorum is the same either way)", servers(3, 0), "v3", aliveExcept("v3"), 3, false},
		{"5 voters, 1 dead, min 3: remove", servers(5, 0), "v5", aliveExcept("v5"), 3, true},
		{"5 voters, 2 dead, min 3: remove the first", servers(5, 0), "v5", aliveExcept("v4", "v5"), 3, true},
		{"4 voters, 2 dead: removing one leaves 3 with 2 alive, a quorum", servers(4, 0), "v4", aliveExcept("v3", "v4"), 3, true},
		{"3 voters, 2 dead: keep (no quorum either way)", servers(3, 0), "v3", aliveExcept("v2", "v3"), 1, false},
		{"5 voters, 3 dead (no quorum): keep", servers(5, 0), "v5", aliveExcept("v3", "v4", "v5"), 3, false},
		{"dead non-voter: remove", servers(3, 1), "n1", aliveExcept("n1"), 3, true},
		{"min 1: a 2-voter cluster may shrink to 1 live voter", servers(2, 0), "v2", aliveExcept("v2"), 1, true},
	}
	for _, tt := range tests {
		var dead raft.Server
		for _, s := range tt.servers {
			if string(s.ID) == tt.dead {
				dead = s
			}
		}
		if got := removable(dead, tt.servers, tt.alive, tt.minVoters); got != tt.want {
			t.Errorf("%s: removable = %v; want %v", tt.name, got, tt.want)
		}
	}
}
