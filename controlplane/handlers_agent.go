package controlplane

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/drover-dev/drover/artifacts"
	"github.com/drover-dev/drover/controlplane/api"
	"github.com/drover-dev/drover/controlplane/state"
	"github.com/drover-dev/drover/inventory"
	"github.com/drover-dev/drover/pki"
)

func (s *Server) getCA(w http.ResponseWriter, _ *http.Request, _ pki.Identity) error {
	w.Header().Set("Content-Type", "application/x-pem-file")
	_, err := w.Write(s.caPEM)
	return err
}

// enroll exchanges a join token and a CSR for a client certificate. The
// certificate is signed first and handed out only after the token's use is
// committed, so a refused or unacknowledged enrollment leaves nothing
// usable behind.
func (s *Server) enroll(w http.ResponseWriter, r *http.Request, _ pki.Identity) error {
	var req api.EnrollRequest
	if err := readJSON(r, &req); err != nil {
		return err
	}
	tok, err := pki.ParseJoinToken(req.Token)
	if err != nil {
		return api.Errorf(api.CodeForbidden, "join token is not valid: %v", err)
	}
	id := pki.Identity{Kind: pki.KindAgent, Name: req.Host}
	if err := id.Validate(); err != nil {
		return api.Errorf(api.CodeInvalid, "host: %v", err)
	}
	// Refuse a wrong secret before spending a signature on it. (A token
	// this server does not know yet may just not have reached it: the
	// state machine decides, with expiry and uses, when it commits.)
	if known, ok := s.store.Token(tok.ID); ok && !tok.Matches(known.SecretHash) {
		return api.Errorf(api.CodeForbidden, "join token is not valid")
	}
	certPEM, cert, err := s.signCSR(req.CSR, id, s.cfg.AgentCertTTL)
	if err != nil {
		return err
	}
	pin := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	_, err = result(s.command(r, id, state.CmdEnroll, state.Enroll{
		TokenID: tok.ID, SecretHash: pki.HashSecret(tok.Secret), Host: req.Host,
		KeyPin: hex.EncodeToString(pin[:]), Cert: issued(cert),
	}))
	if err != nil {
		return err
	}
	s.log.Info("agent enrolled", "host", req.Host, "token", tok.ID, "serial", pki.SerialString(cert))
	var labels map[string]string
	if h, ok := s.store.Host(nil, req.Host); ok {
		labels = h.Labels
	}
	return writeJSON(w, http.StatusOK, api.EnrollResponse{
		Certificate: certPEM, CA: s.caPEM, Trust: currentPolicies(s.store), Labels: labels, Servers: s.serverURLs(),
	})
}

// renew gives an agent a new certificate for a new key before its current
// one expires. The identity is the current certificate's; the CSR only
// carries the new public key (and must name the same host).
func (s *Server) renew(w http.ResponseWriter, r *http.Request, caller pki.Identity) error {
	var req api.RenewRequest
	if err := readJSON(r, &req); err != nil {
		return err
	}
	if _, ok := s.store.Host(nil, caller.Name); !ok {
		return api.Errorf(api.CodeForbidden, "host %s is not enrolled", caller.Name)
	}
	certPEM, cert, err := s.signCSR(req.CSR, caller, s.cfg.AgentCertTTL)
	if err != nil {
		return err
	}
	if _, err := result(s.command(r, caller, state.CmdCertIssued, state.CertIssued{Kind: "agent", Name: caller.Name, Cert: issued(cert)})); err != nil {
		return err
	}
	s.log.Info("agent certificate renewed", "host", caller.Name, "serial", pki.SerialString(cert), "not_after", cert.NotAfter)
	return writeJSON(w, http.StatusOK, api.EnrollResponse{Certificate: certPEM, CA: s.caPEM, Servers: s.serverURLs()})
}

// signCSR signs a certificate request for id with the cluster CA.
func (s *Server) signCSR(csr []byte, id pki.Identity, ttl time.Duration) ([]byte, *x509.Certificate, error) {
	certPEM, err := s.ca.SignCSR(csr, id, s.clock.Now(), ttl)
	if err != nil {
		return nil, nil, api.Errorf(api.CodeInvalid, "csr: %v", err)
	}
	block, _ := pem.Decode(certPEM)
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, nil, err
	}
	return certPEM, cert, nil
}

func issued(c *x509.Certificate) api.IssuedCert {
	return api.IssuedCert{Serial: pki.SerialString(c), NotAfter: c.NotAfter.UTC()}
}

// currentPolicies returns the current version of every trust policy.
func currentPolicies(st *state.Store) []artifacts.SignedPolicy {
	ps, _ := st.TrustPolicies(nil)
	out := make([]artifacts.SignedPolicy, len(ps))
	for i, p := range ps {
		out[i] = p.SignedPolicy
	}
	return out
}

// desired is the agents' long poll: it returns when the host's in-flight
// deployments or the trust policies change, or when the wait runs out.
// An agent reads only its own desired state: the host is its certificate.
func (s *Server) desired(w http.ResponseWriter, r *http.Request, caller pki.Identity) error {
	if _, ok := s.store.Host(nil, caller.Name); !ok {
		return api.Errorf(api.CodeForbidden, "host %s is not enrolled", caller.Name)
	}
	s.noteCheckin(caller.Name)
	s.metrics.blocking.Inc()
	defer s.metrics.blocking.Dec()
	var d state.Desired
	index, err := s.blockingIndex(w, r, func(ws memdb.WatchSet) uint64 {
		d = s.store.DesiredFor(ws, caller.Name)
		return d.Index
	})
	if err != nil {
		return err
	}
	out := api.DesiredState{Host: caller.Name, Index: index, Servers: s.serverURLs(), Instructions: []api.Instruction{}}
	for _, dep := range d.Deployments {
		rel, ok := s.store.Release(dep.Release)
		if !ok {
			continue
		}
		payload, ok := s.store.Payload(rel.Payload)
		if !ok {
			continue
		}
		out.Instructions = append(out.Instructions, api.Instruction{
			Rollout: dep.Rollout, App: rel.App, Version: rel.Version, Manifest: rel.Manifest, Signatures: rel.Signatures,
			Chunks: payload.List, ExpiresAt: dep.StartedAt.Add(instructionTTL), Windows: d.Windows,
		})
	}
	for _, run := range d.Jobs {
		app, _, _ := strings.Cut(run.Release, "@")
		out.Jobs = append(out.Jobs, api.JobInstruction{ID: run.ID, App: app, Command: run.Command, Timeout: run.Timeout})
	}
	out.Trust = s.store.TrustHistory(nil)
	return writeJSON(w, http.StatusOK, out)
}

// jobReport records the result of a verification job the caller ran.
func (s *Server) jobReport(w http.ResponseWriter, r *http.Request, caller pki.Identity) error {
	s.noteCheckin(caller.Name)
	var rep api.JobReport
	if err := readJSON(r, &rep); err != nil {
		return err
	}
	if len(rep.ID) > 256 || rep.Duration < 0 || len(rep.Error) > 2048 {
		return api.Errorf(api.CodeInvalid, "job report: id, error or duration out of bounds")
	}
	if j := rep.JUnit; j != nil && (j.Tests < 0 || j.Failures < 0 || j.Errors < 0 || j.Skipped < 0) {
		return api.Errorf(api.CodeInvalid, "job report: junit counts must not be negative")
	}
	rep.Output = cleanText(rep.Output, api.MaxJobOutput)
	rep.Error = cleanText(rep.Error, 2048)
	if _, err := result(s.command(r, caller, state.CmdJobResult, state.JobResult{Host: caller.Name, Report: rep})); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// report records how a host's part of a rollout goes. The host is the
// caller's certificate, never a field of the request.
func (s *Server) report(w http.ResponseWriter, r *http.Request, caller pki.Identity) error {
	s.noteCheckin(caller.Name)
	var rep api.Report
	if err := readJSON(r, &rep); err != nil {
		return err
	}
	if len(rep.Rollout) > 64 || len(rep.Current) > 64 || len(rep.Reason) > 2048 {
		return api.Errorf(api.CodeInvalid, "report: rollout, current or reason too long")
	}
	_, err := result(s.command(r, caller, state.CmdAgentReport, state.AgentReport{
		Host: caller.Name, Rollout: rep.Rollout, State: rep.State,
		Reason: cleanText(rep.Reason, 2048), Output: cleanText(rep.Output, api.MaxReportOutput), Current: rep.Current,
	}))
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// instructionTTL is how long after a host is instructed it may still start
// the instruction: an agent that comes back later does not act on stale
// orders (TUF's indefinite-freeze and fast-forward attacks).
const instructionTTL = 24 * time.Hour

// cleanText keeps the last max bytes of s as valid UTF-8.
func cleanText(s string, max int) string {
	if len(s) > max {
		s = s[len(s)-max:]
		for len(s) > 0 && !utf8.RuneStart(s[0]) {
			s = s[1:]
		}
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

// putInventory stores a host's inventory, validated and normalized.
func (s *Server) putInventory(w http.ResponseWriter, r *http.Request, caller pki.Identity) error {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		return err
	}
	sys, err := inventory.Parse(b)
	if err != nil {
		return api.Errorf(api.CodeInvalid, "%v", err)
	}
	sys.Normalize()
	raw, err := json.Marshal(sys)
	if err != nil {
		return err
	}
	_, err = result(s.command(r, caller, state.CmdInventory, state.Inventory{Host: caller.Name, System: raw, Digest: sys.Digest()}))
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// command builds a command from a request and writes it. The client's
// Idempotency-Key, when given, is scoped to the caller.
func (s *Server) command(r *http.Request, caller pki.Identity, t state.CmdType, body any) (state.Result, error) {
	return s.commandStep(r, caller, "", t, body)
}

// commandStep is command for the second and later commands of one request:
// step tells their idempotency keys apart.
func (s *Server) commandStep(r *http.Request, caller pki.Identity, step string, t state.CmdType, body any) (state.Result, error) {
	if err := s.diskError(); err != nil {
		return state.Result{}, err
	}
	key := ""
	if k := r.Header.Get(api.HeaderIdempotencyKey); k != "" {
		if len(k) > 128 {
			return state.Result{}, api.Errorf(api.CodeInvalid, "%s: longer than 128 bytes", api.HeaderIdempotencyKey)
		}
		key = caller.Principal() + "|" + k + step
	}
	cmd, err := state.NewCommand(t, caller.Principal(), key, body)
	if err != nil {
		return state.Result{}, err
	}
	return s.write(r.Context(), cmd)
}
