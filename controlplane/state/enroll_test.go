package state

import (
	"bytes"
	"maps"
	"testing"
	"time"

	"github.com/drover-dev/drover/controlplane/api"
)

func TestTokenCreate(t *testing.T) {
	expires := t0.Add(time.Hour)
	tests := []struct {
		name string
		body TokenCreate
		want api.Code
	}{
		{"valid", tokenBody("t2", 1, nil, expires), ""},
		{"no id", tokenBody("", 1, nil, expires), api.CodeInvalid},
		{"no secret hash", TokenCreate{ID: "t2", Uses: 1, ExpiresAt: expires}, api.CodeInvalid},
		{"zero uses", tokenBody("t2", 0, nil, expires), api.CodeInvalid},
		{"id taken", tokenBody("t1", 1, nil, expires), api.CodeConflict},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			h.must(CmdTokenCreate, tokenBody("t1", 1, nil, expires))
			if tt.want != "" {
				h.noChange(CmdTokenCreate, tt.body, tt.want)
				return
			}
			res := h.must(CmdTokenCreate, tt.body)
			tok := h.token(tt.body.ID)
			if tok.UsesLeft != tt.body.Uses || tok.CreatedBy != "tester" || !tok.CreatedAt.Equal(h.now) {
				t.Errorf("token = %+v; want %d uses, created by tester at %v", tok, tt.body.Uses, h.now)
			}
			if tok.CreateIndex != res.Index || tok.ModifyIndex != res.Index {
				t.Errorf("token meta = %+v; want create and modify index %d", tok.Meta, res.Index)
			}
		})
	}
}

func TestEnroll(t *testing.T) {
	labels := map[string]string{"env": "prod", "site": "berlin"}
	expires := t0.Add(time.Hour)
	tests := []struct {
		name  string
		prior []Enroll // applied first; each must succeed
		cmd   Enroll
		at    time.Time // of cmd; zero means one second after the last command
		want  api.Code
		// After cmd: uses left on the token of cmd (single-use "once", or "multi" with 3 uses).
		wantUses int
	}{
		{name: "valid enrollment spends one use",
			cmd: enrollBody("once", "h1"), wantUses: 0},
		{name: "multi-use token",
			prior: []Enroll{enrollBody("multi", "h1")}, cmd: enrollBody("multi", "h2"), wantUses: 1},
		{name: "retry of the same enrollment spends nothing",
			prior: []Enroll{enrollBody("multi", "h1")}, cmd: enrollBody("multi", "h1"), wantUses: 2},
		{name: "retry after the single use is spent",
			prior: []Enroll{enrollBody("once", "h1")}, cmd: enrollBody("once", "h1"), wantUses: 0},
		{name: "retry after the token expired",
			prior: []Enroll{enrollBody("once", "h1")}, cmd: enrollBody("once", "h1"), at: expires.Add(time.Minute), wantUses: 0},
		{name: "single-use token reused for another host",
			prior: []Enroll{enrollBody("once", "h1")}, cmd: enrollBody("once", "h2"), want: api.CodeForbidden, wantUses: 0},
		{name: "just before expiry",
			cmd: enrollBody("once", "h1"), at: expires.Add(-time.Nanosecond), wantUses: 0},
		{name: "at expiry",
			cmd: enrollBody("once", "h1"), at: expires, want: api.CodeForbidden, wantUses: 1},
		{name: "after expiry",
			cmd: enrollBody("once", "h1"), at: expires.Add(time.Second), want: api.CodeForbidden, wantUses: 1},
		{name: "unknown token",
			cmd: enrollBody("nosuch", "h1"), want: api.CodeForbidden, wantUses: -1},
		{name: "wrong secret hash",
			cmd: Enroll{TokenID: "once", SecretHash: secretHash("multi"), Host: "h1", KeyPin: keyPin("h1")}, want: api.CodeForbidden, wantUses: 1},
		{name: "empty secret hash",
			cmd: Enroll{TokenID: "once", Host: "h1", KeyPin: keyPin("h1")}, want: api.CodeForbidden, wantUses: 1},
		{name: "host name taken by a host with another key",
			prior: []Enroll{enrollBody("multi", "h1")},
			cmd:   Enroll{TokenID: "multi", SecretHash: secretHash("multi"), Host: "h1", KeyPin: keyPin("impostor")},
			want:  api.CodeConflict, wantUses: 2},
		{name: "host name taken through another token",
			prior: []Enroll{enrollBody("multi", "h1")}, cmd: enrollBody("once", "h1"), want: api.CodeConflict, wantUses: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			h.must(CmdTokenCreate, tokenBody("once", 1, labels, expires))
			h.must(CmdTokenCreate, tokenBody("multi", 3, labels, expires))
			for _, e := range tt.prior {
				h.must(CmdEnroll, e)
			}
			at := tt.at
			if at.IsZero() {
				at = h.now.Add(time.Second)
			}
			var res Result
			if tt.want != "" {
				before := objects(t, h.store)
				res = h.applyAt(at, CmdEnroll, "", tt.cmd)
				if after := objects(t, h.store); !bytes.Equal(after, before) {
					t.Errorf("refused enrollment changed the state:\n%s", diffLines(before, after))
				}
			} else {
				res = h.applyAt(at, CmdEnroll, "", tt.cmd)
			}
			if got := codeOf(res); got != tt.want {
				t.Fatalf("enroll: got code %q (%v); want %q", got, res.Err, tt.want)
			}
			if tok, ok := h.store.Token(tt.cmd.TokenID); ok && tok.UsesLeft != tt.wantUses {
				t.Errorf("uses left: got %d; want %d", tok.UsesLeft, tt.wantUses)
			} else if !ok && tt.wantUses != -1 {
				t.Errorf("token %s is missing", tt.cmd.TokenID)
			}
			if tt.want != "" {
				return
			}
			host := h.host(tt.cmd.Host)
			if !maps.Equal(host.Labels, labels) {
				t.Errorf("host labels: got %v; want %v", host.Labels, labels)
			}
			if host.TokenID != tt.cmd.TokenID || host.KeyPin != tt.cmd.KeyPin || len(host.Certs) != 1 || host.Certs[0] != tt.cmd.Cert {
				t.Errorf("host = %+v; want token %s, pin %s, cert %v", host, tt.cmd.TokenID, tt.cmd.KeyPin, tt.cmd.Cert)
			}
			if host.ModifyIndex != res.Index {
				t.Errorf("host modify index: got %d; want %d", host.ModifyIndex, res.Index)
			}
		})
	}
}

// TestEnrollRetryKeepsHost checks that a retried enrollment keeps what the
// first one recorded and only takes the new certificate serial.
func TestEnrollRetryKeepsHost(t *testing.T) {
	h := newHarness(t)
	h.must(CmdTokenCreate, tokenBody("t1", 1, map[string]string{"env": "prod"}, t0.Add(time.Hour)))
	first := h.must(CmdEnroll, enrollBody("t1", "h1"))
	enrolledAt := h.now
	retry := enrollBody("t1", "h1")
	retry.Cert.Serial = "serial-2"
	second := h.must(CmdEnroll, retry)

	host := h.host("h1")
	if host.CreateIndex != first.Index || host.ModifyIndex != second.Index {
		t.Errorf("host meta: got %+v; want create %d, modify %d", host.Meta, first.Index, second.Index)
	}
	if !host.EnrolledAt.Equal(enrolledAt) {
		t.Errorf("enrolled at: got %v; want %v", host.EnrolledAt, enrolledAt)
	}
	// Both certificates stay recorded (neither has expired), so that a
	// decommission revokes the one whose answer was lost as well.
	if len(host.Certs) != 2 || host.Certs[0].Serial != "serial-h1" || host.Certs[1].Serial != "serial-2" {
		t.Errorf("certs: got %v; want serial-h1 then serial-2", host.Certs)
	}
}
