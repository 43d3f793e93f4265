package test

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/drover-dev/drover/agent"
	"github.com/drover-dev/drover/controlplane"
	"github.com/drover-dev/drover/controlplane/api"
	"github.com/drover-dev/drover/controlplane/client"
	"github.com/drover-dev/drover/controlplane/testcluster"
	"github.com/drover-dev/drover/pki"
)

// caller is one identity the access test tries every endpoint with.
type caller struct {
	name   string
	client *client.Client
	kind   pki.Kind // "" for no valid identity
	role   pki.Role
	// badCert: it presents a certificate the cluster refuses (foreign,
	// revoked); that refusal holds even on the anonymous endpoints.
	badCert bool
}

// allowed is the access rule the test expects, written out independently
// of the server's table: for each endpoint, who may call it.
func (c caller) allowed(e controlplane.EndpointAccess) bool {
	switch {
	case c.badCert:
		return false
	case e.Anonymous:
		return true
	case c.kind == pki.KindAgent:
		return e.Agents
	case c.kind == pki.KindServer:
		return e.Servers
	case c.kind == pki.KindOperator:
		return e.MinRole != "" && c.role.Allows(e.MinRole)
	}
	return false
}

// denied reports whether err is an access refusal (as opposed to the
// handler refusing a meaningless request body).
func denied(err error) bool {
	var apiErr *api.Error
	if !errors.As(err, &apiErr) {
		var ce *client.ConnError
		return errors.As(err, &ce) // the TLS handshake itself was refused
	}
	return apiErr.Code == api.CodeUnauthenticated ||
		(apiErr.Code == api.CodeForbidden && strings.Contains(apiErr.Message, "may not"))
}

func fillPath(p string) string {
	r := strings.NewReplacer("{id}", "nosuch", "{name}", "nosuch", "{digest}", strings.Repeat("ab", 32), "{profile...}", "")
	return r.Replace(p)
}

// TestEveryRoleAgainstEveryEndpoint walks the server's endpoint table and
// calls each endpoint as every kind of caller. It fails if any endpoint
// lets in someone it should not, or keeps out someone it should let in.
func TestEveryRoleAgainstEveryEndpoint(t *testing.T) {
	c := testcluster.Start(t, 3)
	token := c.Token(nil, 1)
	ag := c.StartAgent("h1", "", token)
	testcluster.WaitFor(t, 10*time.Second, "h1 to enroll", func() bool {
		hosts, err := c.Admin.Hosts(context.Background(), client.HostQuery{})
		return err == nil && len(hosts) == 1
	})
	agentCert, agentKey := readAgentIdentity(t, ag.Dir)
	serverCert, err := os.ReadFile(filepath.Join(c.Dir, "servers/s2/tls/server.crt"))
	if err != nil {
		t.Fatal(err)
	}
	serverKey, err := os.ReadFile(filepath.Join(c.Dir, "servers/s2/tls/server.key"))
	if err != nil {
		t.Fatal(err)
	}
	callers := []caller{
		{name: "no certificate", client: c.ClientWith(nil, nil)},
		{name: "agent", client: c.ClientWith(agentCert, agentKey), kind: pki.KindAgent},
		{name: "server", client: c.ClientWith(serverCert, serverKey), kind: pki.KindServer},
	}
	for _, role := range []pki.Role{pki.RoleViewer, pki.RoleDeployer, pki.RoleApprover, pki.RoleAdmin} {
		cl := c.Operator("op-"+string(role), role)
		callers = append(callers, caller{name: string(role), client: cl, kind: pki.KindOperator, role: role})
	}
	callers = append(callers, caller{name: "admin of another CA", client: foreignAdmin(t, c), badCert: true})
	revoked := c.Operator("gone", pki.RoleAdmin)
	if _, err := c.Admin.Do(context.Background(), client.Request{Method: "POST", Path: api.PathOperators + "/gone/revoke", JSON: api.RevokeRequest{}}, nil); err != nil {
		t.Fatal(err)
	}
	callers = append(callers, caller{name: "revoked admin", client: revoked, badCert: true})
	c.WaitConverged(10 * time.Second) // every server knows the revocation

	endpoints := c.Servers[0].Endpoints()
	checkEndpointTable(t, endpoints)
	for _, e := range endpoints {
		for _, cl := range callers {
			req := client.Request{Method: e.Method, Path: fillPath(e.Path)}
			if e.Method != "GET" {
				req.JSON = map[string]any{}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			resp, err := cl.client.Send(ctx, req)
			cancel()
			if err == nil {
				resp.Body.Close()
			}
			want := cl.allowed(e)
			if got := !denied(err); got != want {
				t.Errorf("%s %s as %s: allowed %v (err %v); want allowed %v", e.Method, e.Path, cl.name, got, err, want)
			}
		}
	}
}

// expectedAccess is who may call each endpoint, written out here by hand:
// a new endpoint, or a changed rule, must be added here too, or the test
// fails. Values: "anyone", "agents", "servers", "readers" (agents, servers,
// viewers), or the lowest operator role.
var expectedAccess = map[string]string{
	"GET /v1/ca":                           "anyone",
	"POST /v1/enroll":                      "anyone",
	"GET /v1/agent/desired":                "agents",
	"POST /v1/agent/renew":                 "agents",
	"POST /v1/agent/report":                "agents",
	"PUT /v1/agent/inventory":              "agents",
	"POST /v1/agent/job":                   "agents",
	"POST /v1/chunks/missing":              "deployer",
	"GET /v1/chunks/{digest}":              "readers",
	"PUT /v1/chunks/{digest}":              "deployer",
	"POST /v1/internal/chunks/missing":     "servers",
	"GET /v1/internal/chunks/{digest}":     "servers",
	"PUT /v1/internal/chunks/{digest}":     "servers",
	"POST /v1/payloads":                    "deployer",
	"GET /v1/payloads":                     "viewer",
	"GET /v1/payloads/{digest}":            "viewer",
	"PUT /v1/payloads/{digest}/provenance": "deployer",
	"GET /v1/releases/{id}/lineage":        "viewer",
	"GET /v1/environments":                 "viewer",
	"PUT /v1/environments/{name}":          "admin",
	"DELETE /v1/environments/{name}":       "admin",
	"GET /v1/lifecycles":                   "viewer",
	"PUT /v1/lifecycles/{name}":            "admin",
	"DELETE /v1/lifecycles/{name}":         "admin",
	"GET /v1/releases/{id}":                "viewer",
	"POST /v1/internal/apply":              "servers",
	"GET /v1/internal/health":              "servers",
	"POST /v1/internal/checkins":           "servers",
	"GET /v1/releases":                     "viewer",
	"POST /v1/releases":                    "deployer",
	"POST /v1/releases/{id}/approve":       "approver",
	"GET /v1/rollouts":                     "viewer",
	"POST /v1/rollouts":                    "deployer",
	"GET /v1/rollouts/{id}":                "viewer",
	"POST /v1/rollouts/{id}/control":       "deployer",
	"POST /v1/rollouts/{id}/start":         "deployer",
	"GET /v1/rollouts/{id}/readiness":      "viewer",
	"POST /v1/readiness":                   "viewer",
	"GET /v1/audit":                        "viewer",
	"GET /v1/calendar.ics":                 "viewer",
	"GET /v1/freezes":                      "viewer",
	"PUT /v1/freezes/{name}":               "admin",
	"DELETE /v1/freezes/{name}":            "admin",
	"GET /v1/settings":                     "viewer",
	"PUT /v1/settings":                     "admin",
	"GET /v1/hosts":                        "viewer",
	"GET /v1/hosts/{id}":                   "viewer",
	"POST /v1/hosts/{id}/decommission":     "admin",
	"GET /v1/inventory/export":             "viewer",
	"POST /v1/tokens":                      "admin",
	"POST /v1/operators":                   "admin",
	"GET /v1/operators":                    "admin",
	"POST /v1/operators/{name}/revoke":     "admin",
	"GET /v1/windows":                      "viewer",
	"PUT /v1/windows/{name}":               "admin",
	"DELETE /v1/windows/{name}":            "admin",
	"GET /v1/trust":                        "viewer",
	"PUT /v1/trust":                        "admin",
	"GET /v1/cluster/status":               "viewer",
	"GET /metrics":                         "viewer",
	"GET /debug/pprof/{profile...}":        "admin",
}

// checkEndpointTable compares the server's table with expectedAccess.
func checkEndpointTable(t *testing.T, endpoints []controlplane.EndpointAccess) {
	t.Helper()
	seen := map[string]bool{}
	for _, e := range endpoints {
		key := e.Method + " " + e.Path
		seen[key] = true
		want, ok := expectedAccess[key]
		if !ok {
			t.Errorf("endpoint %s is not in the access test's table: add it, with who may call it", key)
			continue
		}
		var got string
		switch {
		case e.Anonymous:
			got = "anyone"
		case e.Agents && e.Servers && e.MinRole == pki.RoleViewer:
			got = "readers"
		case e.Agents && !e.Servers && e.MinRole == "":
			got = "agents"
		case e.Servers && !e.Agents && e.MinRole == "":
			got = "servers"
		case !e.Agents && !e.Servers:
			got = string(e.MinRole)
		default:
			got = fmt.Sprintf("%+v", e)
		}
		if got != want {
			t.Errorf("endpoint %s is open to %s; the access table says %s", key, got, want)
		}
	}
	for key := range expectedAccess {
		if !seen[key] {
			t.Errorf("endpoint %s is in the access test's table but the server does not serve it", key)
		}
	}
}

func readAgentIdentity(t *testing.T, dir string) (certPEM, keyPEM []byte) {
	t.Helper()
	cert, err := os.ReadFile(filepath.Join(dir, "tls/current/agent.crt"))
	if err != nil {
		t.Fatal(err)
	}
	key, err := os.ReadFile(filepath.Join(dir, "tls/current/agent.key"))
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}

// foreignAdmin is a client with an admin certificate from another CA.
func foreignAdmin(t *testing.T, c *testcluster.Cluster) *client.Client {
	other, err := pki.NewCA("other", time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cert, key, err := other.IssueOperator("admin", pki.RoleAdmin, time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return insistingClient(t, c, cert, key)
}

// insistingClient presents its certificate whatever the server asks for,
// as an attacker would (Go's client otherwise keeps back a certificate the
// server's CA list does not cover).
func insistingClient(t *testing.T, c *testcluster.Cluster, certPEM, keyPEM []byte) *client.Client {
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	caPEM, err := os.ReadFile(filepath.Join(c.Boot.CADir, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(caPEM)
	cfg := &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS13,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &pair, nil }}
	cl := client.New([]string{"https://" + c.ServerAPI(0)}, cfg)
	t.Cleanup(cl.Close)
	return cl
}

func enrollErr(c *testcluster.Cluster, name, token string) error {
	dir := filepath.Join(c.Dir, "hosts", name)
	return agent.Enroll(context.Background(), agent.EnrollOptions{Dir: dir, Server: "https://" + c.ServerAPI(0), Token: token, Name: name})
}

func TestEnrollmentRefusesBadTokens(t *testing.T) {
	c := testcluster.Start(t, 3)
	once := c.Token(map[string]string{"env": "prod"}, 1)
	if err := enrollErr(c, "h1", once); err != nil {
		t.Fatalf("first use of a token: %v", err)
	}
	tok, err := pki.ParseJoinToken(once)
	if err != nil {
		t.Fatal(err)
	}
	unknown, err := pki.NewJoinToken(tok.CAPin, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tampered := tok
	tampered.Secret = strings.Repeat("A", len(tok.Secret))
	wrongPin := tok
	wrongPin.CAPin = "sha256:" + strings.Repeat("B", 43)

	var granted api.TokenResponse
	if _, err := c.Admin.Do(context.Background(), client.Request{Method: "POST", Path: api.PathTokens,
		JSON: api.TokenRequest{TTL: "1h", Uses: 1, Host: "web-1"}}, &granted); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, host, token, want string
	}{
		{"reused single-use token", "h2", once, "has been used up"},
		{"unknown token", "h3", unknown.String(), "join token is not valid"},
		{"tampered secret", "h4", tampered.String(), "join token is not valid"},
		{"token for another cluster", "h5", wrongPin.String(), "pin"},
		{"name differs from the token's grant", "web-2", granted.Token, "granted to host web-1, not web-2"},
		{"malformed token", "h6", "drv1.nonsense", "join token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := enrollErr(c, tt.host, tt.token)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("enroll: got %v; want an error containing %q", err, tt.want)
			}
		})
	}
	if err := enrollErr(c, "web-1", granted.Token); err != nil {
		t.Errorf("enroll with the granted name: %v", err)
	}
	testcluster.WaitFor(t, 5*time.Second, "h1 and web-1 enrolled, nobody else", func() bool {
		hosts, _ := c.Admin.Hosts(context.Background(), client.HostQuery{})
		return len(hosts) == 2 && hosts[0].ID == "h1" && hosts[1].ID == "web-1"
	})
}

func TestExpiredTokenIsRefused(t *testing.T) {
	clock := &offsetClock{}
	c := testcluster.StartWith(t, testcluster.Options{Servers: 1, Clock: clock})
	var tok api.TokenResponse
	if _, err := c.Admin.Do(context.Background(), client.Request{Method: "POST", Path: api.PathTokens,
		JSON: api.TokenRequest{TTL: "1m", Uses: 5}}, &tok); err != nil {
		t.Fatal(err)
	}
	if err := enrollErr(c, "h1", tok.Token); err != nil {
		t.Fatalf("enroll before expiry: %v", err)
	}
	clock.advance(2 * time.Minute) // the leader stamps this time into the enrollment
	if err := enrollErr(c, "h2", tok.Token); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("enroll after expiry: got %v; want the token refused as expired", err)
	}
}

func TestCertificatesFromElsewhereAreRefused(t *testing.T) {
	c := testcluster.Start(t, 1)
	ca := c.CA()
	// Expired, though signed by the cluster CA.
	cert, key, err := ca.IssueOperator("old", pki.RoleAdmin, time.Now().Add(-48*time.Hour), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]*client.Client{
		"expired certificate":       insistingClient(t, c, cert, key),
		"certificate of another CA": foreignAdmin(t, c),
	}
	for name, cl := range cases {
		_, err := cl.Hosts(context.Background(), client.HostQuery{})
		if !denied(err) {
			t.Errorf("%s: listing hosts gave %v; want a refusal", name, err)
		}
	}
}

func TestRevocationAndDecommission(t *testing.T) {
	c := testcluster.Start(t, 3)
	bobCert, bobKey := c.OperatorCert("bob", pki.RoleDeployer)
	bob := c.ClientWith(bobCert, bobKey)
	if _, err := bob.Hosts(context.Background(), client.HostQuery{}); err != nil {
		t.Fatalf("bob before revocation: %v", err)
	}
	if _, err := c.Admin.Do(context.Background(), client.Request{Method: "POST", Path: api.PathOperators + "/bob/revoke",
		JSON: api.RevokeRequest{Reason: "left"}}, nil); err != nil {
		t.Fatal(err)
	}
	// Revocation is replicated: every server refuses bob.
	for i, id := range c.IDs {
		only := c.ClientWith(bobCert, bobKey, i)
		testcluster.WaitFor(t, 5*time.Second, "server "+id+" to refuse bob", func() bool {
			_, err := only.Hosts(context.Background(), client.HostQuery{})
			return denied(err)
		})
	}

	token := c.Token(nil, 1)
	ag := c.StartAgent("h1", "", token)
	testcluster.WaitFor(t, 10*time.Second, "h1 to enroll", func() bool {
		hosts, err := c.Admin.Hosts(context.Background(), client.HostQuery{})
		return err == nil && len(hosts) == 1
	})
	cert, key := readAgentIdentity(t, ag.Dir)
	h1 := c.ClientWith(cert, key)
	c.WaitConverged(10 * time.Second) // every server knows h1
	if _, err := h1.Do(context.Background(), client.Request{Method: "GET", Path: api.PathDesired}, nil); err != nil {
		t.Fatalf("h1 before decommission: %v", err)
	}
	// An agent cannot call an operator endpoint.
	if _, err := h1.Hosts(context.Background(), client.HostQuery{}); !denied(err) {
		t.Errorf("agent listing hosts: %v; want a refusal", err)
	}
	// An agent cannot speak for another host: a report carries no host.
	_, err := h1.Do(context.Background(), client.Request{Method: "POST", Path: api.PathReport,
		JSON: map[string]any{"host": "h2", "rollout": "r-1", "state": "succeeded"}}, nil)
	var apiErr *api.Error
	if !errors.As(err, &apiErr) || apiErr.Code != api.CodeInvalid || !strings.Contains(apiErr.Message, "unknown field \"host\"") {
		t.Errorf("report naming another host: %v; want the field refused", err)
	}
	ag.Stop()
	if _, err := c.Admin.Do(context.Background(), client.Request{Method: "POST", Path: api.PathHosts + "/h1/decommission",
		JSON: api.DecommissionRequest{Reason: "retired"}}, nil); err != nil {
		t.Fatal(err)
	}
	testcluster.WaitFor(t, 5*time.Second, "h1's certificate to be refused", func() bool {
		_, err := h1.Do(context.Background(), client.Request{Method: "GET", Path: api.PathDesired}, nil)
		return denied(err)
	})
}

func TestAgentRenewsItsCertificate(t *testing.T) {
	c := testcluster.Start(t, 3)
	clock := &offsetClock{}
	c.AgentClock = clock
	c.AgentPollWait = time.Second
	token := c.Token(nil, 1)
	ag := c.StartAgent("h1", "", token)
	testcluster.WaitFor(t, 10*time.Second, "h1 to enroll", func() bool {
		hosts, err := c.Admin.Hosts(context.Background(), client.HostQuery{})
		return err == nil && len(hosts) == 1
	})
	before, _ := readAgentIdentity(t, ag.Dir)
	clock.advance(5 * 24 * time.Hour) // past two thirds of the 7-day certificate
	testcluster.WaitFor(t, 20*time.Second, "h1 to renew its certificate", func() bool {
		hosts, err := c.Admin.Hosts(context.Background(), client.HostQuery{})
		return err == nil && len(hosts) == 1 && len(hosts[0].Certs) == 2
	})
	testcluster.WaitFor(t, 10*time.Second, "the new certificate on disk", func() bool {
		after, _ := readAgentIdentity(t, ag.Dir)
		return string(before) != string(after)
	})
	clock.advance(-5 * 24 * time.Hour)
	// The renewed agent keeps working: it still polls with its new certificate.
	if err := c.Admin.ControlRollout(context.Background(), "nosuch", "pause", ""); err == nil {
		t.Fatal("expected an error for an unknown rollout")
	}
	testcluster.WaitFor(t, 10*time.Second, "h1 to report with its new certificate", func() bool {
		hosts, err := c.Admin.Hosts(context.Background(), client.HostQuery{})
		return err == nil && len(hosts) == 1 && hosts[0].Status == api.HostUp
	})
}

// offsetClock is the system clock shifted by an adjustable offset.
type offsetClock struct {
	mu     sync.Mutex
	offset time.Duration
}

func (c *offsetClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

func (c *offsetClock) advance(d time.Duration) {
	c.mu.Lock()
	c.offset += d
	c.mu.Unlock()
}

// TestSecurityDocListsEveryEndpoint keeps docs/security.md's table true.
func TestSecurityDocListsEveryEndpoint(t *testing.T) {
	doc, err := os.ReadFile("../docs/security.md")
	if err != nil {
		t.Fatal(err)
	}
	for key := range expectedAccess {
		if !strings.Contains(string(doc), "| `"+key+"` |") {
			t.Errorf("docs/security.md does not list %s", key)
		}
	}
}
