package controlplane

import (
	"io"
	"net/http"
	"slices"
	"strings"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/drover-dev/drover/artifacts"
	"github.com/drover-dev/drover/controlplane/api"
	"github.com/drover-dev/drover/controlplane/state"
	"github.com/drover-dev/drover/pki"
)

// deleteNamed removes the object the path's {name} names with the command
// t, whose body del makes from the name.
func (s *Server) deleteNamed(w http.ResponseWriter, r *http.Request, caller pki.Identity, t state.CmdType, del func(name string) any) error {
	name, err := pathID(r, "name")
	if err != nil {
		return err
	}
	res, err := result(s.command(r, caller, t, del(name)))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, api.Created{ID: name, Index: res.Index})
}

func (s *Server) listEnvironments(w http.ResponseWriter, r *http.Request, _ pki.Identity) error {
	var out []*api.Environment
	err := s.blocking(w, r, func(ws memdb.WatchSet) (index uint64) {
		out, index = s.store.Environments(ws)
		return index
	})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, nonNil(out))
}

func (s *Server) setEnvironment(w http.ResponseWriter, r *http.Request, caller pki.Identity) error {
	name, err := pathID(r, "name")
	if err != nil {
		return err
	}
	var e api.Environment
	if err := readJSON(r, &e); err != nil {
		return err
	}
	if e.Name != name {
		return api.Errorf(api.CodeInvalid, "name: the body names %q, the path %q", e.Name, name)
	}
	if err := e.Validate(); err != nil {
		return api.Errorf(api.CodeInvalid, "environment: %v", err)
	}
	res, err := result(s.command(r, caller, state.CmdEnvSet, state.EnvSet{Env: api.Environment{Name: e.Name, Where: e.Where}}))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, api.Created{ID: name, Index: res.Index})
}

func (s *Server) deleteEnvironment(w http.ResponseWriter, r *http.Request, caller pki.Identity) error {
	return s.deleteNamed(w, r, caller, state.CmdEnvDelete, func(name string) any { return state.EnvDelete{Name: name} })
}

func (s *Server) listLifecycles(w http.ResponseWriter, r *http.Request, _ pki.Identity) error {
	var out []*api.Lifecycle
	err := s.blocking(w, r, func(ws memdb.WatchSet) (index uint64) {
		out, index = s.store.Lifecycles(ws)
		return index
	})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, nonNil(out))
}

func (s *Server) setLifecycle(w http.ResponseWriter, r *http.Request, caller pki.Identity) error {
	name, err := pathID(r, "name")
	if err != nil {
		return err
	}
	var l api.Lifecycle
	if err := readJSON(r, &l); err != nil {
		return err
	}
	if l.Name != name {
		return api.Errorf(api.CodeInvalid, "name: the body names %q, the path %q", l.Name, name)
	}
	if err := l.Validate(); err != nil {
		return api.Errorf(api.CodeInvalid, "lifecycle: %v", err)
	}
	l.Meta, l.CreatedBy = api.Meta{}, ""
	res, err := result(s.command(r, caller, state.CmdLifecycleSet, state.LifecycleSet{Lifecycle: l}))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, api.Created{ID: name, Index: res.Index})
}

func (s *Server) deleteLifecycle(w http.ResponseWriter, r *http.Request, caller pki.Identity) error {
	return s.deleteNamed(w, r, caller, state.CmdLifecycleDelete, func(name string) any { return state.LifecycleDelete{Name: name} })
}

// releaseLineage traces a release: its source and build (from the signed
// manifest), its payload, the environments it was rolled out to, its
// verification evidence, and the hosts running it now.
func (s *Server) releaseLineage(w http.ResponseWriter, r *http.Request, _ pki.Identity) error {
	id := r.PathValue("id")
	rel, ok := s.store.Release(id)
	if !ok {
		return api.Errorf(api.CodeNotFound, "release %s does not exist", id)
	}
	out := api.Lineage{Release: rel.ID, Payload: rel.Payload, Stages: []api.LineageStage{}, Hosts: []string{}}
	if m, err := artifacts.ParseManifest(rel.Manifest); err == nil {
		out.Provenance = m.Provenance
	}
	if p, ok := s.store.Payload(rel.Payload); ok && len(p.Provenance) > 0 {
		out.Statement, _ = artifacts.ParseProvenance(p.Provenance)
	}
	rollouts, _ := s.store.Rollouts(nil)
	for _, ro := range rollouts {
		if ro.Release != id || ro.Kind != api.KindRelease || ro.StartedAt.IsZero() {
			continue // never started: it changed nothing
		}
		env := ro.Env
		if env == "" {
			env = "(no environment: " + strings.TrimPrefix(describeTargets(ro), " ") + ")"
		}
		out.Stages = append(out.Stages, api.LineageStage{Env: env, Rollout: ro.ID, State: ro.State, StartedAt: ro.StartedAt, EndedAt: ro.EndedAt})
	}
	slices.SortStableFunc(out.Stages, func(a, b api.LineageStage) int { return a.StartedAt.Compare(b.StartedAt) })
	out.Evidence = nonNil(s.store.Evidence(nil, id))
	hosts, _ := s.store.Hosts(nil)
	for _, h := range hosts {
		if h.Releases[rel.App] == rel.Version {
			out.Hosts = append(out.Hosts, h.ID)
		}
	}
	return writeJSON(w, http.StatusOK, out)
}

func describeTargets(ro *api.Rollout) string {
	parts := []string{}
	if len(ro.Selector) > 0 {
		parts = append(parts, api.FormatLabels(ro.Selector))
	}
	if ro.Where != "" {
		parts = append(parts, "where "+ro.Where)
	}
	if len(parts) == 0 {
		return "all hosts"
	}
	return strings.Join(parts, " ")
}

// setProvenance attaches an in-toto statement (the request body) to the
// payload it is about; the state machine checks the binding.
func (s *Server) setProvenance(w http.ResponseWriter, r *http.Request, caller pki.Identity) error {
	digest := r.PathValue("digest")
	if artifacts.ValidateDigest(digest) != nil {
		return api.Errorf(api.CodeInvalid, "digest: a lower-case hex SHA-256 is required")
	}
	statement, err := io.ReadAll(r.Body)
	if err != nil {
		return err
	}
	prov, err := artifacts.ParseProvenance(statement)
	if err == nil {
		err = prov.Check(digest)
	}
	if err != nil {
		return api.Errorf(api.CodeInvalid, "%v", err)
	}
	res, err := result(s.command(r, caller, state.CmdProvenance, state.ProvenanceSet{Payload: digest, Statement: statement}))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, api.Created{ID: digest, Index: res.Index})
}
