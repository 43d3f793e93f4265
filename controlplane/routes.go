package controlplane

import (
	"net/http"
	"net/http/pprof"
	"strings"

	"github.com/drover-dev/drover/pki"

	"github.com/drover-dev/drover/artifacts"
	"github.com/drover-dev/drover/inventory"
)

// Body limits per endpoint kind.
const (
	smallBody     = 64 << 10
	manifestBody  = 4 * artifacts.MaxManifestBytes
	inventoryBody = inventory.MaxSystemBytes + 1
	chunkListBody = 8 << 20 // a chunk list of chunks.MaxChunks, as JSON
)

// routeTable lists every endpoint with its access rule. Tests walk this
// table to check every role against every endpoint.
func (s *Server) routeTable() []route {
	return []route{
		{"GET /v1/ca", anyone, 0, s.getCA},
		{"POST /v1/enroll", anyone, smallBody, s.enroll},

		{"GET /v1/agent/desired", agentsOnly, 0, s.desired},
		{"POST /v1/agent/renew", agentsOnly, smallBody, s.renew},
		{"POST /v1/agent/report", agentsOnly, smallBody, s.report},
		{"PUT /v1/agent/inventory", agentsOnly, inventoryBody, s.putInventory},
		{"POST /v1/agent/job", agentsOnly, smallBody, s.jobReport},

		{"POST /v1/chunks/missing", deployers, chunkListBody, s.missingChunks},
		{"GET /v1/chunks/{digest}", readers, 0, s.getChunk},
		{"PUT /v1/chunks/{digest}", deployers, 0, s.putChunk}, // bounded by readChunkBody
		{"POST /v1/internal/chunks/missing", serversOnly, chunkListBody, s.missingChunks},
		{"GET /v1/internal/chunks/{digest}", serversOnly, 0, s.getLocalChunk},
		{"PUT /v1/internal/chunks/{digest}", serversOnly, 0, s.putLocalChunk},
		{"POST /v1/payloads", deployers, chunkListBody, s.registerPayload},
		{"GET /v1/payloads", viewers, 0, s.listPayloads},
		{"GET /v1/payloads/{digest}", viewers, 0, s.getPayload},
		{"PUT /v1/payloads/{digest}/provenance", deployers, artifacts.MaxProvenanceBytes, s.setProvenance},
		{"POST /v1/internal/apply", serversOnly, maxCommandBytes, s.internalApply},
		{"GET /v1/internal/health", serversOnly, 0, s.getHealth},
		{"POST /v1/internal/checkins", serversOnly, 16 << 20, s.receiveCheckins},

		{"GET /v1/releases", viewers, 0, s.listReleases},
		{"GET /v1/releases/{id}", viewers, 0, s.getRelease},
		{"POST /v1/releases", deployers, manifestBody, s.createRelease},
		{"POST /v1/releases/{id}/approve", approvers, smallBody, s.approveRelease},
		{"GET /v1/rollouts", viewers, 0, s.listRollouts},
		{"POST /v1/rollouts", deployers, smallBody, s.createRollout},
		{"GET /v1/rollouts/{id}", viewers, 0, s.getRollout},
		{"POST /v1/rollouts/{id}/start", deployers, smallBody, s.startRollout},
		{"POST /v1/rollouts/{id}/control", deployers, smallBody, s.controlRollout},
		{"GET /v1/rollouts/{id}/readiness", viewers, 0, s.reviewRollout},
		{"POST /v1/readiness", viewers, smallBody, s.reviewPlan},
		{"GET /v1/audit", viewers, 0, s.listAudit},
		{"GET /v1/calendar.ics", viewers, 0, s.calendar},
		{"GET /v1/hosts", viewers, 0, s.listHosts},
		{"GET /v1/hosts/{id}", viewers, 0, s.getHost},
		{"POST /v1/hosts/{id}/decommission", admins, smallBody, s.decommissionHost},
		{"GET /v1/inventory/export", viewers, 0, s.exportInventory},

		{"POST /v1/tokens", admins, smallBody, s.createToken},
		{"POST /v1/operators", admins, smallBody, s.issueOperator},
		{"GET /v1/operators", admins, 0, s.listOperators},
		{"POST /v1/operators/{name}/revoke", admins, smallBody, s.revokeOperator},
		{"GET /v1/windows", viewers, 0, s.listWindows},
		{"PUT /v1/windows/{name}", admins, smallBody, s.setWindow},
		{"DELETE /v1/windows/{name}", admins, 0, s.deleteWindow},
		{"GET /v1/environments", viewers, 0, s.listEnvironments},
		{"PUT /v1/environments/{name}", admins, smallBody, s.setEnvironment},
		{"DELETE /v1/environments/{name}", admins, 0, s.deleteEnvironment},
		{"GET /v1/lifecycles", viewers, 0, s.listLifecycles},
		{"PUT /v1/lifecycles/{name}", admins, smallBody, s.setLifecycle},
		{"DELETE /v1/lifecycles/{name}", admins, 0, s.deleteLifecycle},
		{"GET /v1/releases/{id}/lineage", viewers, 0, s.releaseLineage},
		{"GET /v1/freezes", viewers, 0, s.listFreezes},
		{"PUT /v1/freezes/{name}", admins, smallBody, s.setFreeze},
		{"DELETE /v1/freezes/{name}", admins, 0, s.deleteFreeze},
		{"GET /v1/settings", viewers, 0, s.getSettings},
		{"PUT /v1/settings", admins, smallBody, s.setSettings},
		{"GET /v1/trust", viewers, 0, s.getTrust},
		{"PUT /v1/trust", admins, smallBody, s.setTrust},
		{"GET /v1/cluster/status", viewers, 0, s.clusterStatus},
		{"GET /metrics", viewers, 0, s.serveMetrics},
		{"GET /debug/pprof/{profile...}", admins, 0, servePprof},
	}
}

// servePprof serves Go's profiles to admins (`go tool pprof` with the
// admin's certificate, or curl --cert).
func servePprof(w http.ResponseWriter, r *http.Request, _ pki.Identity) error {
	switch name := r.PathValue("profile"); name {
	case "":
		pprof.Index(w, r)
	case "profile":
		pprof.Profile(w, r)
	case "trace":
		pprof.Trace(w, r)
	default:
		pprof.Handler(name).ServeHTTP(w, r)
	}
	return nil
}

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	for _, rt := range s.routeTable() {
		s.handle(mux, rt)
	}
	return mux
}

// EndpointAccess says who may call one endpoint.
type EndpointAccess struct {
	Method, Path string
	Anonymous    bool     // no client certificate needed
	Agents       bool     // enrolled agents (each only about its own host)
	Servers      bool     // other control-plane servers
	MinRole      pki.Role // operators with at least this role; "" for none
}

// Endpoints lists every endpoint with its access rule, in the order they
// are registered. The security documentation and the access tests are
// built from it.
func (s *Server) Endpoints() []EndpointAccess {
	var out []EndpointAccess
	for _, rt := range s.routeTable() {
		method, path, _ := strings.Cut(rt.pattern, " ")
		out = append(out, EndpointAccess{Method: method, Path: path, Anonymous: rt.access.anonymous,
			Agents: rt.access.agent, Servers: rt.access.server, MinRole: rt.access.operator})
	}
	return out
}
