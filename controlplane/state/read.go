package state

import (
	"github.com/drover-dev/drover/artifacts"
	"github.com/drover-dev/drover/controlplane/api"
	"github.com/drover-dev/drover/deploy"
	memdb "github.com/hashicorp/go-memdb"
)

// Reads take a memdb.WatchSet, which may be nil. When it is not, every
// channel that fires on a change to what the read returned is added to it,
// so a blocking query can wait for exactly the changes that matter to it.
// Objects returned are shared with the store: never modify them.

func getAll[T any](s *Store, ws memdb.WatchSet, table, index string, args ...any) []T {
	tx := s.read(ws)
	it, err := tx.Get(table, index, args...)
	if err != nil {
		panic(err) // unknown table or index: a bug
	}
	ws.Add(it.WatchCh())
	var out []T
	for obj := it.Next(); obj != nil; obj = it.Next() {
		out = append(out, obj.(T))
	}
	return out
}

func getOne[T any](s *Store, ws memdb.WatchSet, table, id string) (T, bool) {
	tx := s.read(ws)
	ch, obj, err := tx.FirstWatch(table, "id", id)
	if err != nil {
		panic(err)
	}
	ws.Add(ch)
	v, ok := obj.(T)
	return v, ok
}

// TableIndex returns the last Raft index that changed any of tables.
func (s *Store) TableIndex(ws memdb.WatchSet, tables ...string) uint64 {
	var max uint64
	for _, t := range tables {
		if ti, ok := getOne[*tableIndex](s, ws, tabIndex, t); ok && ti.Index > max {
			max = ti.Index
		}
	}
	return max
}

// Host returns one host.
func (s *Store) Host(ws memdb.WatchSet, id string) (*api.Host, bool) {
	return getOne[*api.Host](s, ws, tabHosts, id)
}

// Hosts returns every host in ID order and the index of the last change.
func (s *Store) Hosts(ws memdb.WatchSet) ([]*api.Host, uint64) {
	return getAll[*api.Host](s, ws, tabHosts, "id"), s.TableIndex(nil, tabHosts)
}

// HostHistory returns a host's configuration history, oldest first, and
// the index of the last change to any history.
func (s *Store) HostHistory(ws memdb.WatchSet, host string) ([]*api.HostChange, uint64) {
	return getAll[*api.HostChange](s, ws, tabHostChanges, "id_prefix", host+"/"), s.TableIndex(nil, tabHostChanges)
}

// Environments returns every environment by name and the table's index.
func (s *Store) Environments(ws memdb.WatchSet) ([]*api.Environment, uint64) {
	return getAll[*api.Environment](s, ws, tabEnvs, "id"), s.TableIndex(nil, tabEnvs)
}

// Lifecycles returns every lifecycle by name and the table's index.
func (s *Store) Lifecycles(ws memdb.WatchSet) ([]*api.Lifecycle, uint64) {
	return getAll[*api.Lifecycle](s, ws, tabLifecycles, "id"), s.TableIndex(nil, tabLifecycles)
}

// Evidence returns the verification job runs of a release.
func (s *Store) Evidence(ws memdb.WatchSet, release string) []*api.JobRun {
	return getAll[*api.JobRun](s, ws, tabJobs, "release", release)
}

// Token returns one join token.
func (s *Store) Token(id string) (*api.Token, bool) { return getOne[*api.Token](s, nil, tabTokens, id) }

// Payload returns one payload's record.
func (s *Store) Payload(digest string) (*api.Payload, bool) {
	return getOne[*api.Payload](s, nil, tabPayloads, digest)
}

// Payloads returns every payload and the index of the last change.
func (s *Store) Payloads(ws memdb.WatchSet) ([]*api.Payload, uint64) {
	return getAll[*api.Payload](s, ws, tabPayloads, "id"), s.TableIndex(nil, tabPayloads)
}

// TrustHistory returns every version of every trust policy, by
// application and serial.
func (s *Store) TrustHistory(ws memdb.WatchSet) []artifacts.SignedPolicy {
	var out []artifacts.SignedPolicy
	for _, v := range getAll[*trustVersion](s, ws, tabTrustLog, "id") {
		out = append(out, v.Policy)
	}
	return out
}

// Release returns one release.
func (s *Store) Release(id string) (*api.Release, bool) {
	return getOne[*api.Release](s, nil, tabReleases, id)
}

// Releases returns every release in ID order and the index of the last change.
func (s *Store) Releases(ws memdb.WatchSet) ([]*api.Release, uint64) {
	return getAll[*api.Release](s, ws, tabReleases, "id"), s.TableIndex(nil, tabReleases)
}

// Rollout returns one rollout.
func (s *Store) Rollout(ws memdb.WatchSet, id string) (*api.Rollout, bool) {
	return getOne[*api.Rollout](s, ws, tabRollouts, id)
}

// Rollouts returns every rollout in ID order and the index of the last change.
func (s *Store) Rollouts(ws memdb.WatchSet) ([]*api.Rollout, uint64) {
	return getAll[*api.Rollout](s, ws, tabRollouts, "id"), s.TableIndex(nil, tabRollouts)
}

// RunningRollouts returns the rollouts the engine must drive: running
// ones, and rolling-back ones whose hosts in flight must finish before
// their rollback is created.
func (s *Store) RunningRollouts(ws memdb.WatchSet) []*api.Rollout {
	out := getAll[*api.Rollout](s, ws, tabRollouts, "state", api.RolloutRunning)
	for _, r := range getAll[*api.Rollout](s, ws, tabRollouts, "state", api.RolloutRollingBack) {
		if r.RollbackID == "" {
			out = append(out, r)
		}
	}
	return out
}

// QueuedRollouts returns the rollouts queued behind others.
func (s *Store) QueuedRollouts(ws memdb.WatchSet) []*api.Rollout {
	return getAll[*api.Rollout](s, ws, tabRollouts, "state", api.RolloutQueued)
}

// RolloutHosts returns a rollout's deployments in target order.
func (s *Store) RolloutHosts(ws memdb.WatchSet, r *api.Rollout) []*api.Deployment {
	byHost := map[string]*api.Deployment{}
	for _, d := range getAll[*api.Deployment](s, ws, tabDeployments, "rollout", r.ID) {
		byHost[d.Host] = d
	}
	out := make([]*api.Deployment, 0, len(r.Targets))
	for _, h := range r.Targets {
		if d := byHost[h]; d != nil {
			out = append(out, d)
		}
	}
	return out
}

// HostDeployments returns every deployment of a host, oldest first.
func (s *Store) HostDeployments(ws memdb.WatchSet, host string) []*api.Deployment {
	return getAll[*api.Deployment](s, ws, tabDeployments, "host", host)
}

// TrustPolicies returns every trust policy and the index of the last change.
func (s *Store) TrustPolicies(ws memdb.WatchSet) ([]*api.TrustPolicy, uint64) {
	return getAll[*api.TrustPolicy](s, ws, tabTrust, "id"), s.TableIndex(nil, tabTrust)
}

// Windows returns every maintenance window and the index of the last change.
func (s *Store) Windows(ws memdb.WatchSet) ([]*api.Window, uint64) {
	return getAll[*api.Window](s, ws, tabWindows, "id"), s.TableIndex(nil, tabWindows)
}

// HostWindows returns the windows that apply to a host with labels.
func HostWindows(all []*api.Window, labels map[string]string) []deploy.Window {
	var out []deploy.Window
	for _, w := range all {
		if deploy.MatchLabels(labels, w.Selector) {
			out = append(out, w.Window)
		}
	}
	return out
}

// Desired is what one host should be doing: its deployments in flight,
// under its maintenance windows.
type Desired struct {
	Index       uint64
	Deployments []*api.Deployment
	Jobs        []*api.JobRun // pending verification jobs
	Trust       []*api.TrustPolicy
	Windows     []deploy.Window
}

// DesiredFor returns a host's desired state. Its Index is the highest
// ModifyIndex among the host's deployments and the trust policies, so it
// changes exactly when something the agent acts on changes.
func (s *Store) DesiredFor(ws memdb.WatchSet, host string) Desired {
	var d Desired
	for _, dep := range s.HostDeployments(ws, host) {
		d.Index = max(d.Index, dep.ModifyIndex)
		if dep.State.InFlight() {
			d.Deployments = append(d.Deployments, dep)
		}
	}
	for _, run := range getAll[*api.JobRun](s, ws, tabJobs, "host", host) {
		d.Index = max(d.Index, run.ModifyIndex)
		if run.State == api.JobPending {
			d.Jobs = append(d.Jobs, run)
		}
	}
	d.Trust, _ = s.TrustPolicies(ws)
	for _, p := range d.Trust {
		d.Index = max(d.Index, p.ModifyIndex)
	}
	if len(d.Deployments) > 0 {
		// Windows matter only while there is something to apply; a window
		// change then wakes the host.
		windows, index := s.Windows(ws)
		d.Index = max(d.Index, index)
		if h, ok := s.Host(ws, host); ok {
			d.Windows = HostWindows(windows, h.Labels)
		}
	}
	return d
}

// Count returns the number of objects in a table (for metrics).
func (s *Store) Count(table string) int {
	tx := s.read(nil)
	it, err := tx.Get(table, "id")
	if err != nil {
		return 0
	}
	n := 0
	for obj := it.Next(); obj != nil; obj = it.Next() {
		n++
	}
	return n
}

// Revoked reports whether a certificate serial is revoked. It is on the
// path of every authenticated request: one index lookup.
func (s *Store) Revoked(serial string) bool {
	_, ok := getOne[*api.Revocation](s, nil, tabRevocations, serial)
	return ok
}

// Operators returns every operator.
func (s *Store) Operators(ws memdb.WatchSet) ([]*api.Operator, uint64) {
	return getAll[*api.Operator](s, ws, tabOperators, "id"), s.TableIndex(nil, tabOperators)
}
