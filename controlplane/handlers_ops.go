package controlplane

import (
	"crypto/rand"
	"net/http"
	"strconv"
	"time"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/drover-dev/drover/artifacts"
	"github.com/drover-dev/drover/controlplane/api"
	"github.com/drover-dev/drover/controlplane/state"
	"github.com/drover-dev/drover/pki"
)

func (s *Server) listReleases(w http.ResponseWriter, r *http.Request, _ pki.Identity) error {
	var out []*api.Release
	err := s.blocking(w, r, func(ws memdb.WatchSet) (index uint64) {
		out, index = s.store.Releases(ws)
		return index
	})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, nonNil(out))
}

func (s *Server) getRelease(w http.ResponseWriter, r *http.Request, _ pki.Identity) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	rel, ok := s.store.Release(id)
	if !ok {
		return api.Errorf(api.CodeNotFound, "release %s does not exist", id)
	}
	return writeJSON(w, http.StatusOK, rel)
}

// createRelease records a signed manifest. The signatures are checked here
// for a quick answer, and again by the state machine against the trust
// policy as committed.
func (s *Server) createRelease(w http.ResponseWriter, r *http.Request, caller pki.Identity) error {
	var req api.ReleaseRequest
	if err := readJSON(r, &req); err != nil {
		return err
	}
	if len(req.Signatures) == 0 || len(req.Signatures) > 32 {
		return api.Errorf(api.CodeInvalid, "signatures: between 1 and 32 required")
	}
	if _, err := artifacts.ParseManifest(req.Manifest); err != nil {
		return api.Errorf(api.CodeInvalid, "%v", err)
	}
	res, err := result(s.command(r, caller, state.CmdReleaseCreate, state.ReleaseCreate(req)))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, api.Created{ID: res.ID, Index: res.Index})
}

func (s *Server) listRollouts(w http.ResponseWriter, r *http.Request, _ pki.Identity) error {
	var out []*api.Rollout
	err := s.blocking(w, r, func(ws memdb.WatchSet) (index uint64) {
		out, index = s.store.Rollouts(ws)
		return index
	})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, nonNil(out))
}

// getRollout returns a rollout and its hosts; with ?index it blocks until
// either changes.
func (s *Server) getRollout(w http.ResponseWriter, r *http.Request, _ pki.Identity) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	var out api.RolloutStatus
	err = s.blocking(w, r, func(ws memdb.WatchSet) uint64 {
		ro, ok := s.store.Rollout(ws, id)
		if !ok {
			out = api.RolloutStatus{}
			return 0
		}
		out = api.RolloutStatus{Rollout: ro, Hosts: s.store.RolloutHosts(ws, ro)}
		index := ro.ModifyIndex
		for _, d := range out.Hosts {
			index = max(index, d.ModifyIndex)
		}
		return index
	})
	if err != nil {
		return err
	}
	if out.Rollout == nil {
		return api.Errorf(api.CodeNotFound, "rollout %s does not exist", id)
	}
	return writeJSON(w, http.StatusOK, out)
}

func (s *Server) createToken(w http.ResponseWriter, r *http.Request, caller pki.Identity) error {
	var req api.TokenRequest
	if err := readJSON(r, &req); err != nil {
		return err
	}
	ttl, err := time.ParseDuration(req.TTL)
	if err != nil || ttl < time.Minute || ttl > 365*24*time.Hour {
		return api.Errorf(api.CodeInvalid, "ttl: %q must be a duration between 1m and 8760h, such as 24h", req.TTL)
	}
	if req.Uses < 1 || req.Uses > 100000 {
		return api.Errorf(api.CodeInvalid, "uses: must be between 1 and 100000, got %d", req.Uses)
	}
	if err := api.ValidateLabels(req.Labels); err != nil {
		return err
	}
	if req.Host != "" {
		if err := (pki.Identity{Kind: pki.KindAgent, Name: req.Host}).Validate(); err != nil {
			return api.Errorf(api.CodeInvalid, "host: %v", err)
		}
	}
	tok, err := pki.NewJoinToken(s.ca.Pin(), rand.Reader)
	if err != nil {
		return err
	}
	expires := s.clock.Now().Add(ttl).UTC()
	if _, err := result(s.command(r, caller, state.CmdTokenCreate, state.TokenCreate{
		ID: tok.ID, SecretHash: pki.HashSecret(tok.Secret), Labels: req.Labels, ExpiresAt: expires, Uses: req.Uses, Host: req.Host,
	})); err != nil {
		return err
	}
	s.log.Info("join token created", "token", tok.ID, "by", caller.String(), "expires", expires) // never the secret
	return writeJSON(w, http.StatusCreated, api.TokenResponse{Token: tok.String(), ID: tok.ID, ExpiresAt: expires.Format(time.RFC3339)})
}

func (s *Server) getTrust(w http.ResponseWriter, r *http.Request, _ pki.Identity) error {
	_, index := s.store.TrustPolicies(nil)
	w.Header().Set(api.HeaderIndex, strconv.FormatUint(index, 10))
	return writeJSON(w, http.StatusOK, currentPolicies(s.store))
}

// setTrust sets an application's first trust policy (serial 1) or rotates
// it (the next serial, signed by the current keys).
func (s *Server) setTrust(w http.ResponseWriter, r *http.Request, caller pki.Identity) error {
	var p artifacts.SignedPolicy
	if err := readJSON(r, &p); err != nil {
		return err
	}
	if err := p.Validate(); err != nil {
		return api.Errorf(api.CodeInvalid, "%v", err)
	}
	res, err := result(s.command(r, caller, state.CmdTrustSet, state.TrustSet{Policy: p}))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, api.Created{ID: p.App, Index: res.Index})
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
