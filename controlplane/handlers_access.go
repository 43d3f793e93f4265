package controlplane

import (
	"fmt"
	"net/http"
	"time"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/drover-dev/drover/controlplane/api"
	"github.com/drover-dev/drover/controlplane/state"
	"github.com/drover-dev/drover/deploy"
	"github.com/drover-dev/drover/pki"
)

// defaultOperatorTTL is the lifetime of an operator certificate.
const defaultOperatorTTL = 90 * 24 * time.Hour

// issueOperator signs an operator's CSR with a role. The private key was
// made on the operator's machine and never travels.
func (s *Server) issueOperator(w http.ResponseWriter, r *http.Request, caller pki.Identity) error {
	var req api.OperatorRequest
	if err := readJSON(r, &req); err != nil {
		return err
	}
	role, err := pki.ParseRole(req.Role)
	if err != nil {
		return api.Errorf(api.CodeInvalid, "role: %v", err)
	}
	id := pki.Identity{Kind: pki.KindOperator, Name: req.Name, Role: role}
	if err := id.Validate(); err != nil {
		return api.Errorf(api.CodeInvalid, "name: %v", err)
	}
	ttl := defaultOperatorTTL
	if req.TTL != "" {
		if ttl, err = time.ParseDuration(req.TTL); err != nil || ttl < time.Hour || ttl > 2*365*24*time.Hour {
			return api.Errorf(api.CodeInvalid, "ttl: %q must be a duration between 1h and 17520h", req.TTL)
		}
	}
	certPEM, cert, err := s.signCSR(req.CSR, id, ttl)
	if err != nil {
		return err
	}
	if _, err := result(s.command(r, caller, state.CmdCertIssued, state.CertIssued{
		Kind: "operator", Name: req.Name, Role: string(role), Cert: issued(cert),
	})); err != nil {
		return err
	}
	s.log.Info("operator certificate issued", "operator", req.Name, "role", role, "by", caller.String(), "not_after", cert.NotAfter)
	return writeJSON(w, http.StatusOK, api.EnrollResponse{Certificate: certPEM, CA: s.caPEM, Servers: s.serverURLs()})
}

func (s *Server) listOperators(w http.ResponseWriter, r *http.Request, _ pki.Identity) error {
	var out []*api.Operator
	err := s.blocking(w, r, func(ws memdb.WatchSet) (index uint64) {
		out, index = s.store.Operators(ws)
		return index
	})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, nonNil(out))
}

func (s *Server) revokeOperator(w http.ResponseWriter, r *http.Request, caller pki.Identity) error {
	name, err := pathID(r, "name")
	if err != nil {
		return err
	}
	var req api.RevokeRequest
	if err := readJSON(r, &req); err != nil {
		return err
	}
	if name == caller.Name {
		return api.Errorf(api.CodeConflict, "an admin cannot revoke their own certificate; ask another admin")
	}
	res, err := result(s.command(r, caller, state.CmdRevoke, state.Revoke{Operator: name, Reason: req.Reason}))
	if err != nil {
		return err
	}
	s.log.Info("operator revoked", "operator", name, "by", caller.String())
	return writeJSON(w, http.StatusOK, api.Created{ID: name, Index: res.Index})
}

func (s *Server) decommissionHost(w http.ResponseWriter, r *http.Request, caller pki.Identity) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	var req api.DecommissionRequest
	if err := readJSON(r, &req); err != nil {
		return err
	}
	res, err := result(s.command(r, caller, state.CmdDecommission, state.Decommission{Host: id, Reason: req.Reason}))
	if err != nil {
		return err
	}
	s.log.Info("host decommissioned", "host", id, "by", caller.String())
	return writeJSON(w, http.StatusOK, api.Created{ID: id, Index: res.Index})
}

func (s *Server) approveRelease(w http.ResponseWriter, r *http.Request, caller pki.Identity) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	var req api.ApproveRequest
	if err := readJSON(r, &req); err != nil {
		return err
	}
	if len(req.Comment) > 1024 {
		return api.Errorf(api.CodeInvalid, "comment: at most 1024 bytes")
	}
	res, err := result(s.command(r, caller, state.CmdApprove, state.Approve{Release: id, Comment: req.Comment}))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, api.Created{ID: id, Index: res.Index})
}

// checkRevoked refuses a certificate the cluster has revoked.
func (s *Server) checkRevoked(r *http.Request) *api.Error {
	leaf := r.TLS.PeerCertificates[0]
	if serial := pki.SerialString(leaf); s.store.Revoked(serial) {
		return &api.Error{Code: api.CodeUnauthenticated, Message: fmt.Sprintf("certificate %s has been revoked", serial)}
	}
	return nil
}

func (s *Server) listWindows(w http.ResponseWriter, r *http.Request, _ pki.Identity) error {
	var out []*api.Window
	err := s.blocking(w, r, func(ws memdb.WatchSet) (index uint64) {
		out, index = s.store.Windows(ws)
		return index
	})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, nonNil(out))
}

func (s *Server) setWindow(w http.ResponseWriter, r *http.Request, caller pki.Identity) error {
	name, err := pathID(r, "name")
	if err != nil {
		return err
	}
	var win deploy.Window
	if err := readJSON(r, &win); err != nil {
		return err
	}
	if win.Name != name {
		return api.Errorf(api.CodeInvalid, "name: the body names %q, the path %q", win.Name, name)
	}
	if err := win.Validate(); err != nil {
		return api.Errorf(api.CodeInvalid, "%v", err)
	}
	if err := api.ValidateLabels(win.Selector); err != nil {
		return err
	}
	res, err := result(s.command(r, caller, state.CmdWindowSet, state.WindowSet{Window: win}))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, api.Created{ID: name, Index: res.Index})
}

func (s *Server) deleteWindow(w http.ResponseWriter, r *http.Request, caller pki.Identity) error {
	return s.deleteNamed(w, r, caller, state.CmdWindowDelete, func(name string) any { return state.WindowDelete{Name: name} })
}
