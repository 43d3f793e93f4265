package pki

import (
	"crypto/x509"
	"net/url"
	"strings"
	"testing"
)

func TestParseRole(t *testing.T) {
	tests := []struct {
		in   string
		want Role
		ok   bool
	}{
		{"viewer", RoleViewer, true},
		{"deployer", RoleDeployer, true},
		{"approver", RoleApprover, true},
		{"admin", RoleAdmin, true},
		{"", "", false},
		{"Admin", "", false},
		{"root", "", false},
		{" admin", "", false},
	}
	for _, tt := range tests {
		got, err := ParseRole(tt.in)
		if tt.ok {
			if err != nil || got != tt.want {
				t.Errorf("ParseRole(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
			}
			continue
		}
		wantErr(t, err, ErrInvalidRole)
		if !strings.Contains(err.Error(), "viewer, deployer, approver, admin") {
			t.Errorf("ParseRole(%q) error %q does not list the roles", tt.in, err)
		}
	}
}

func TestRoleAllows(t *testing.T) {
	ladder := []Role{RoleViewer, RoleDeployer, RoleApprover, RoleAdmin}
	for i, have := range ladder {
		for j, need := range ladder {
			if got, want := have.Allows(need), i >= j; got != want {
				t.Errorf("%s.Allows(%s) = %v, want %v", have, need, got, want)
			}
		}
	}
	tests := []struct {
		have, need Role
		want       bool
	}{
		{"", RoleViewer, false},
		{"root", RoleViewer, false},
		{RoleAdmin, "", false},
		{RoleAdmin, "root", false},
		{"root", "root", false},
	}
	for _, tt := range tests {
		if got := tt.have.Allows(tt.need); got != tt.want {
			t.Errorf("%q.Allows(%q) = %v, want %v", tt.have, tt.need, got, tt.want)
		}
	}
}

func TestIdentityValidateString(t *testing.T) {
	tests := []struct {
		id   Identity
		ok   bool
		text string
	}{
		{Identity{Kind: KindAgent, Name: "web-1"}, true, "agent/web-1"},
		{Identity{Kind: KindServer, Name: "cp1.dc_2"}, true, "server/cp1.dc_2"},
		{Identity{Kind: KindOperator, Name: "alice", Role: RoleAdmin}, true, "operator/alice (admin)"},
		{Identity{Kind: KindAgent, Name: strings.Repeat("a", 63)}, true, "agent/" + strings.Repeat("a", 63)},
		{Identity{Kind: KindAgent, Name: strings.Repeat("a", 64)}, false, ""},
		{Identity{Kind: KindAgent, Name: ""}, false, ""},
		{Identity{Kind: KindAgent, Name: "-web"}, false, ""},
		{Identity{Kind: KindAgent, Name: ".web"}, false, ""},
		{Identity{Kind: KindAgent, Name: "web 1"}, false, ""},
		{Identity{Kind: KindAgent, Name: "web/1"}, false, ""},
		{Identity{Kind: KindAgent, Name: "wéb"}, false, ""},
		{Identity{Kind: "robot", Name: "r2"}, false, ""},
		{Identity{Kind: "", Name: "x"}, false, ""},
		{Identity{Kind: KindOperator, Name: "alice"}, false, ""},
		{Identity{Kind: KindOperator, Name: "alice", Role: "root"}, false, ""},
		{Identity{Kind: KindAgent, Name: "web", Role: RoleViewer}, false, ""},
	}
	for _, tt := range tests {
		err := tt.id.Validate()
		if tt.ok {
			wantErr(t, err, nil)
			if got := tt.id.String(); got != tt.text {
				t.Errorf("String() = %q, want %q", got, tt.text)
			}
			continue
		}
		wantErr(t, err, ErrInvalidIdentity)
	}
}

func TestIdentityFromCert(t *testing.T) {
	tests := []struct {
		name string
		uris []string
		want Identity
		err  error
	}{
		{"server", []string{"drover:server/cp-1"}, Identity{Kind: KindServer, Name: "cp-1"}, nil},
		{"agent", []string{"drover:agent/web-1"}, Identity{Kind: KindAgent, Name: "web-1"}, nil},
		{"operator", []string{"drover:operator/alice?role=approver"}, Identity{Kind: KindOperator, Name: "alice", Role: RoleApprover}, nil},
		{"other URIs ignored", []string{"spiffe://x/y", "drover:agent/db", "https://example.com"}, Identity{Kind: KindAgent, Name: "db"}, nil},
		{"scheme case folded", []string{"DROVER:agent/web"}, Identity{Kind: KindAgent, Name: "web"}, nil},
		{"missing URI", nil, Identity{}, ErrNoIdentity},
		{"only foreign URI", []string{"https://example.com/agent/web"}, Identity{}, ErrNoIdentity},
		{"two URIs", []string{"drover:agent/a", "drover:agent/b"}, Identity{}, ErrInvalidIdentity},
		{"two equal URIs", []string{"drover:agent/a", "drover:agent/a"}, Identity{}, ErrInvalidIdentity},
		{"bad kind", []string{"drover:robot/r2"}, Identity{}, ErrInvalidIdentity},
		{"no slash", []string{"drover:agent"}, Identity{}, ErrInvalidIdentity},
		{"empty name", []string{"drover:agent/"}, Identity{}, ErrInvalidIdentity},
		{"bad name", []string{"drover:agent/-web"}, Identity{}, ErrInvalidIdentity},
		{"long name", []string{"drover:agent/" + strings.Repeat("a", 64)}, Identity{}, ErrInvalidIdentity},
		{"nested path", []string{"drover:agent/a/b"}, Identity{}, ErrInvalidIdentity},
		{"escaped name", []string{"drover:agent/w%65b"}, Identity{}, ErrInvalidIdentity},
		{"host form", []string{"drover://agent/web"}, Identity{}, ErrInvalidIdentity},
		{"operator without role", []string{"drover:operator/alice"}, Identity{}, ErrInvalidIdentity},
		{"bad role", []string{"drover:operator/alice?role=root"}, Identity{}, ErrInvalidIdentity},
		{"role case", []string{"drover:operator/alice?role=Admin"}, Identity{}, ErrInvalidIdentity},
		{"two roles", []string{"drover:operator/alice?role=admin&role=viewer"}, Identity{}, ErrInvalidIdentity},
		{"extra query", []string{"drover:operator/alice?role=admin&x=1"}, Identity{}, ErrInvalidIdentity},
		{"agent with role", []string{"drover:agent/web?role=admin"}, Identity{}, ErrInvalidIdentity},
		{"empty query", []string{"drover:agent/web?"}, Identity{}, ErrInvalidIdentity},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &x509.Certificate{}
			for _, s := range tt.uris {
				u, err := url.Parse(s)
				if err != nil {
					t.Fatal(err)
				}
				c.URIs = append(c.URIs, u)
			}
			got, err := IdentityFromCert(c)
			wantErr(t, err, tt.err)
			if got != tt.want {
				t.Errorf("identity = %+v, want %+v", got, tt.want)
			}
		})
	}
	if _, err := IdentityFromCert(nil); err != ErrNoIdentity {
		t.Errorf("IdentityFromCert(nil) error = %v", err)
	}
}

// TestIdentityRoundTrip checks that issued certificates carry their identity
// exactly once, with the name also in the subject.
func TestIdentityRoundTrip(t *testing.T) {
	now := fixedNow()
	ca := mustCA(t, "prod", now)
	srv, _ := mustServer(t, ca, "cp-1", now, day)
	op, _ := mustOperator(t, ca, "alice", RoleDeployer, now, day)
	agent, _ := mustAgent(t, ca, "web-1", now)
	tests := []struct {
		pem  []byte
		want Identity
	}{
		{srv, Identity{Kind: KindServer, Name: "cp-1"}},
		{op, Identity{Kind: KindOperator, Name: "alice", Role: RoleDeployer}},
		{agent, Identity{Kind: KindAgent, Name: "web-1"}},
	}
	for _, tt := range tests {
		c := mustParseCert(t, tt.pem)
		got, err := IdentityFromCert(c)
		if err != nil || got != tt.want {
			t.Errorf("IdentityFromCert = %v, %v; want %v", got, err, tt.want)
		}
		if len(c.URIs) != 1 || c.Subject.CommonName != tt.want.Name {
			t.Errorf("%v: URIs %v, CN %q", tt.want, c.URIs, c.Subject.CommonName)
		}
	}
}
