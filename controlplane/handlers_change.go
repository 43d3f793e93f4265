package controlplane

import (
	"net/http"
	"strconv"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/drover-dev/drover/controlplane/api"
	"github.com/drover-dev/drover/controlplane/state"
	"github.com/drover-dev/drover/deploy"
	"github.com/drover-dev/drover/inventory"
	"github.com/drover-dev/drover/pki"
)

// maxReason bounds override and control reasons.
const maxReason = 1024

// requireAdminFor refuses an override by anyone but an admin.
func requireAdminFor(caller pki.Identity, override string) error {
	if len(override) > maxReason {
		return api.Errorf(api.CodeInvalid, "override: at most %d bytes", maxReason)
	}
	if override != "" && !caller.Role.Allows(pki.RoleAdmin) {
		return api.Errorf(api.CodeForbidden, "%s may not override: role admin is required", caller)
	}
	return nil
}

// createRollout plans a rollout and, when asked, starts it. A start that a
// readiness gate refuses leaves the rollout pending, and says so.
func (s *Server) createRollout(w http.ResponseWriter, r *http.Request, caller pki.Identity) error {
	var req api.RolloutRequest
	if err := readJSON(r, &req); err != nil {
		return err
	}
	if err := req.Plan.Validate(); err != nil {
		return api.Errorf(api.CodeInvalid, "%v", err)
	}
	if err := api.ValidateLabels(req.Selector); err != nil {
		return err
	}
	if err := requireAdminFor(caller, req.Override); err != nil {
		return err
	}
	if _, err := inventory.ParseWhere(req.Where); err != nil {
		return api.Errorf(api.CodeInvalid, "%v", err)
	}
	res, err := result(s.command(r, caller, state.CmdRolloutCreate, state.RolloutCreate{
		Release: req.Release, Env: req.Env, Selector: req.Selector, Where: req.Where, Plan: req.Plan, Queue: req.Queue, Override: req.Override,
	}))
	if err != nil {
		return err
	}
	s.log.Info("rollout created", "rollout", res.ID, "release", req.Release, "by", caller.String())
	if req.Start {
		if ro, ok := s.store.Rollout(nil, res.ID); ok && ro.State == api.RolloutPending {
			start, err := result(s.commandStep(r, caller, "|start", state.CmdRolloutStart, state.RolloutStart{Rollout: res.ID, Override: req.Override}))
			if err != nil {
				return api.Errorf(api.CodeOf(err), "rollout %s was created but not started: %v", res.ID, err)
			}
			res.Index = start.Index
		}
	}
	return writeJSON(w, http.StatusCreated, api.Created{ID: res.ID, Index: res.Index})
}

func (s *Server) startRollout(w http.ResponseWriter, r *http.Request, caller pki.Identity) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	var req api.RolloutStartRequest
	if err := readJSON(r, &req); err != nil {
		return err
	}
	if err := requireAdminFor(caller, req.Override); err != nil {
		return err
	}
	res, err := result(s.command(r, caller, state.CmdRolloutStart, state.RolloutStart{Rollout: id, Override: req.Override}))
	if err != nil {
		return err
	}
	s.log.Info("rollout started", "rollout", id, "by", caller.String(), "override", req.Override != "")
	return writeJSON(w, http.StatusOK, api.Created{ID: id, Index: res.Index})
}

func (s *Server) controlRollout(w http.ResponseWriter, r *http.Request, caller pki.Identity) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	var req api.RolloutControlRequest
	if err := readJSON(r, &req); err != nil {
		return err
	}
	if len(req.Reason) > maxReason {
		return api.Errorf(api.CodeInvalid, "reason: at most %d bytes", maxReason)
	}
	res, err := result(s.command(r, caller, state.CmdRolloutControl, state.RolloutControl{Rollout: id, Action: req.Action, Reason: req.Reason}))
	if err != nil {
		return err
	}
	s.log.Info("rollout "+req.Action, "rollout", id, "by", caller.String())
	return writeJSON(w, http.StatusOK, api.Created{ID: id, Index: res.Index})
}

// reviewPlan is the readiness review of a rollout not yet created.
func (s *Server) reviewPlan(w http.ResponseWriter, r *http.Request, caller pki.Identity) error {
	var req api.RolloutRequest
	if err := readJSON(r, &req); err != nil {
		return err
	}
	if err := api.ValidateLabels(req.Selector); err != nil {
		return err
	}
	rv, err := s.store.ReviewPlan(req.Release, req.Selector, req.Where, req.Env, req.Plan, caller.Principal(), s.clock.Now())
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, rv)
}

// reviewRollout is the readiness review of a created rollout, now.
func (s *Server) reviewRollout(w http.ResponseWriter, r *http.Request, _ pki.Identity) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	rv, err := s.store.ReviewRollout(id, s.clock.Now())
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, rv)
}

func (s *Server) listFreezes(w http.ResponseWriter, r *http.Request, _ pki.Identity) error {
	var out []*api.Freeze
	err := s.blocking(w, r, func(ws memdb.WatchSet) (index uint64) {
		out, index = s.store.Freezes(ws)
		return index
	})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, nonNil(out))
}

func (s *Server) setFreeze(w http.ResponseWriter, r *http.Request, caller pki.Identity) error {
	name, err := pathID(r, "name")
	if err != nil {
		return err
	}
	var f deploy.Freeze
	if err := readJSON(r, &f); err != nil {
		return err
	}
	if f.Name != name {
		return api.Errorf(api.CodeInvalid, "name: the body names %q, the path %q", f.Name, name)
	}
	if err := f.Validate(); err != nil {
		return api.Errorf(api.CodeInvalid, "%v", err)
	}
	if err := api.ValidateLabels(f.Selector); err != nil {
		return err
	}
	res, err := result(s.command(r, caller, state.CmdFreezeSet, state.FreezeSet{Freeze: f}))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, api.Created{ID: name, Index: res.Index})
}

func (s *Server) deleteFreeze(w http.ResponseWriter, r *http.Request, caller pki.Identity) error {
	return s.deleteNamed(w, r, caller, state.CmdFreezeDelete, func(name string) any { return state.FreezeDelete{Name: name} })
}

// redacted replaces webhook secrets in what the API returns.
const redacted = "(redacted)"

func (s *Server) getSettings(w http.ResponseWriter, _ *http.Request, _ pki.Identity) error {
	out := s.store.Settings(nil)
	out.Webhooks = append([]api.Webhook(nil), out.Webhooks...)
	for i := range out.Webhooks {
		out.Webhooks[i].Secret = redacted
	}
	return writeJSON(w, http.StatusOK, out)
}

// setSettings replaces the settings. A webhook given with its secret
// redacted or empty keeps the secret it has, so that what GET returns can
// be edited and sent back.
func (s *Server) setSettings(w http.ResponseWriter, r *http.Request, caller pki.Identity) error {
	var in api.Settings
	if err := readJSON(r, &in); err != nil {
		return err
	}
	old := s.store.Settings(nil)
	for i, h := range in.Webhooks {
		if h.Secret != "" && h.Secret != redacted {
			continue
		}
		in.Webhooks[i].Secret = ""
		for _, o := range old.Webhooks {
			if o.URL == h.URL {
				in.Webhooks[i].Secret = o.Secret
			}
		}
	}
	for _, rule := range in.Approvals {
		if err := api.ValidateLabels(rule.Selector); err != nil {
			return err
		}
	}
	res, err := result(s.command(r, caller, state.CmdSettingsSet, state.SettingsSet{Settings: in}))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, api.Created{ID: "settings", Index: res.Index})
}

// maxAuditPage bounds one page of the audit trail.
const maxAuditPage = 10000

// listAudit returns audit entries after ?after=N (default 0), at most
// ?limit=M (default and maximum 10000), or with ?subject=S the entries
// about one subject (a rollout ID, say); with ?index it blocks for new
// ones.
func (s *Server) listAudit(w http.ResponseWriter, r *http.Request, _ pki.Identity) error {
	q := r.URL.Query()
	if subject := q.Get("subject"); subject != "" {
		if len(subject) > 256 {
			return api.Errorf(api.CodeInvalid, "subject: at most 256 bytes")
		}
		var out api.AuditPage
		err := s.blocking(w, r, func(ws memdb.WatchSet) uint64 {
			out.Entries = s.store.AuditFor(ws, subject)
			out.Head = s.store.AuditHead()
			return s.store.TableIndex(nil, "audit")
		})
		if err != nil {
			return err
		}
		out.Entries = nonNil(out.Entries)
		return writeJSON(w, http.StatusOK, out)
	}
	after, err := queryUint(q.Get("after"), 0)
	if err != nil {
		return api.Errorf(api.CodeInvalid, "after: %v", err)
	}
	limit, err := queryUint(q.Get("limit"), maxAuditPage)
	if err != nil || limit == 0 || limit > maxAuditPage {
		return api.Errorf(api.CodeInvalid, "limit: between 1 and %d", maxAuditPage)
	}
	var out api.AuditPage
	err = s.blocking(w, r, func(ws memdb.WatchSet) (index uint64) {
		out.Entries, index = s.store.Audit(ws, after, int(limit))
		out.Head = s.store.AuditHead()
		return index
	})
	if err != nil {
		return err
	}
	out.Entries = nonNil(out.Entries)
	return writeJSON(w, http.StatusOK, out)
}

func queryUint(v string, def uint64) (uint64, error) {
	if v == "" {
		return def, nil
	}
	return strconv.ParseUint(v, 10, 64)
}
