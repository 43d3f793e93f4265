package controlplane

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/drover-dev/drover/controlplane/api"
	"github.com/drover-dev/drover/pki"
)

// access says who may call an endpoint. Every route names one; there is no
// default, so an endpoint cannot forget its check.
type access struct {
	anonymous bool     // no certificate needed (enrollment only)
	agent     bool     // any enrolled agent (handlers restrict it to its own host)
	server    bool     // another control-plane server
	operator  pki.Role // an operator with at least this role; "" for none
}

var (
	anyone      = access{anonymous: true}
	agentsOnly  = access{agent: true}
	serversOnly = access{server: true}
	viewers     = access{operator: pki.RoleViewer}
	deployers   = access{operator: pki.RoleDeployer}
	approvers   = access{operator: pki.RoleApprover}
	admins      = access{operator: pki.RoleAdmin}
	// readers: operators, agents and servers may all fetch payloads.
	readers = access{agent: true, server: true, operator: pki.RoleViewer}
)

// permits reports whether the caller may use an endpoint, and if not why.
func (a access) permits(id pki.Identity, authenticated bool) *api.Error {
	if a.anonymous {
		return nil
	}
	if !authenticated {
		return &api.Error{Code: api.CodeUnauthenticated, Message: "a client certificate of this cluster is required"}
	}
	switch id.Kind {
	case pki.KindAgent:
		if a.agent {
			return nil
		}
	case pki.KindServer:
		if a.server {
			return nil
		}
	case pki.KindOperator:
		if a.operator != "" && id.Role.Allows(a.operator) {
			return nil
		}
		if a.operator != "" {
			return api.Errorf(api.CodeForbidden, "%s may not do this: role %s or higher is required", id, a.operator)
		}
	}
	return api.Errorf(api.CodeForbidden, "%s may not call this endpoint", id)
}

// handlerFunc is an endpoint. It returns an error instead of writing one.
type handlerFunc func(w http.ResponseWriter, r *http.Request, caller pki.Identity) error

// route registers an endpoint with its access rule. Every request body is
// bounded by maxBody.
type route struct {
	pattern string
	access  access
	maxBody int64
	h       handlerFunc
}

func (s *Server) handle(mux *http.ServeMux, rt route) {
	mux.HandleFunc(rt.pattern, func(w http.ResponseWriter, r *http.Request) {
		if leader := s.leaderURL(); leader != "" {
			w.Header().Set(api.HeaderLeader, leader) // clients send writes there first
		}
		var caller pki.Identity
		authenticated := false
		if r.TLS != nil && len(r.TLS.VerifiedChains) > 0 {
			id, err := pki.PeerIdentity(r.TLS)
			if err != nil {
				s.writeError(w, r, &api.Error{Code: api.CodeUnauthenticated, Message: "client certificate: " + err.Error()})
				return
			}
			if err := s.checkRevoked(r); err != nil {
				s.writeError(w, r, err)
				return
			}
			caller, authenticated = id, true
		}
		if err := rt.access.permits(caller, authenticated); err != nil {
			s.writeError(w, r, err)
			return
		}
		// A client that asks to be served by the leader (operators, who must
		// read what they just wrote, even from a new process) is sent there.
		if r.Header.Get(api.HeaderRead) == api.ReadLeader && !s.IsLeader() {
			if leader := s.leaderURL(); leader != "" {
				_ = writeJSON(w, http.StatusMisdirectedRequest, api.Errorf(api.CodeUnavailable, "server %s is not the leader; ask %s", s.cfg.ID, leader))
				return
			}
		}
		if rt.maxBody > 0 {
			r.Body = http.MaxBytesReader(w, r.Body, rt.maxBody)
		}
		if err := rt.h(w, r, caller); err != nil {
			s.writeError(w, r, err)
		}
	})
}

func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var apiErr *api.Error
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &apiErr):
	case errors.As(err, &tooBig):
		apiErr = api.Errorf(api.CodeInvalid, "request body larger than %d bytes", tooBig.Limit)
	default:
		s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		apiErr = &api.Error{Code: api.CodeInternal, Message: "internal error on server " + s.cfg.ID + "; see its log"}
	}
	_ = writeJSON(w, apiErr.Code.Status(), apiErr)
}

func writeJSON(w http.ResponseWriter, status int, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	return json.NewEncoder(w).Encode(v)
}

// readJSON decodes a request body strictly: unknown fields are an error.
func readJSON(r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return err
		}
		return api.Errorf(api.CodeInvalid, "malformed request body: %v", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return api.Errorf(api.CodeInvalid, "malformed request body: trailing data")
	}
	return nil
}

// Blocking queries: ?index=N&wait=D. The wait is capped and given a little
// jitter, so that thousands of agents polling together spread out.
const (
	defaultWait = 60 * time.Second
	maxWait     = 5 * time.Minute
)

// blocking runs read until it returns an index greater than the request's
// ?index, or the wait runs out, and sets the index header. read must add to
// ws every watch channel of what it reads, and store its result itself.
func (s *Server) blocking(w http.ResponseWriter, r *http.Request, read func(ws memdb.WatchSet) uint64) error {
	_, err := s.blockingIndex(w, r, read)
	return err
}

// blockingIndex is blocking that also returns the index it answered with.
func (s *Server) blockingIndex(w http.ResponseWriter, r *http.Request, read func(ws memdb.WatchSet) uint64) (uint64, error) {
	q := r.URL.Query()
	var minIndex uint64
	if v := q.Get("index"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return 0, api.Errorf(api.CodeInvalid, "index: %q is not a number", v)
		}
		minIndex = n
	}
	wait := defaultWait
	if v := q.Get("wait"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return 0, api.Errorf(api.CodeInvalid, "wait: %q is not a duration such as 30s", v)
		}
		wait = min(d, maxWait)
	}
	wait += jitter(wait / 16)
	ctx, cancel := context.WithTimeout(r.Context(), wait)
	defer cancel()
	for {
		ws := memdb.NewWatchSet()
		index := max(read(ws), 1) // never 0, so a client never spins on index=0
		if index > minIndex || minIndex == 0 {
			w.Header().Set(api.HeaderIndex, strconv.FormatUint(index, 10))
			return index, nil
		}
		if ws.WatchCtx(ctx) != nil {
			w.Header().Set(api.HeaderIndex, strconv.FormatUint(index, 10))
			return index, nil
		}
	}
}

func jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return rand.N(d)
}

func pathID(r *http.Request, name string) (string, error) {
	v := r.PathValue(name)
	if v == "" || len(v) > 256 {
		return "", api.Errorf(api.CodeInvalid, "%s: missing or too long", name)
	}
	return v, nil
}

// leaderURL is the leader's API URL, or "" when unknown.
func (s *Server) leaderURL() string {
	_, id := s.raft.raft.LeaderWithID()
	if m, ok := s.members.lookup(string(id)); ok && id != "" {
		return peerURL(m)
	}
	return ""
}
