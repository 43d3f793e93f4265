package artifacts

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"aead.dev/minisign"
)

func TestPolicyValidate(t *testing.T) {
	k1, k2, k3 := newTestKey(t), newTestKey(t), newTestKey(t)
	many := make([]string, 33)
	for i := range many {
		many[i] = seededKey(t, byte(i+1)).line
	}
	tests := []struct {
		name   string
		policy Policy
		want   string // part of the error; empty: valid
	}{
		{"1 of 1", Policy{App: "web", Keys: []string{k1.line}, Threshold: 1}, ""},
		{"2 of 3", Policy{App: "web", Keys: []string{k1.line, k2.line, k3.line}, Threshold: 2}, ""},
		{"3 of 3", Policy{App: "web", Keys: []string{k1.line, k2.line, k3.line}, Threshold: 3}, ""},
		{"any app", Policy{App: AnyApp, Keys: []string{k1.line}, Threshold: 1}, ""},
		{"whole pub file as key", Policy{App: "web", Keys: []string{string(k1.pubFile)}, Threshold: 1}, ""},
		{"32 keys", Policy{App: "web", Keys: many[:32], Threshold: 32}, ""},

		{"app empty", Policy{App: "", Keys: []string{k1.line}, Threshold: 1}, "app"},
		{"app upper case", Policy{App: "Web", Keys: []string{k1.line}, Threshold: 1}, "app"},
		{"app with space", Policy{App: "web api", Keys: []string{k1.line}, Threshold: 1}, "app"},
		{"app glob", Policy{App: "web*", Keys: []string{k1.line}, Threshold: 1}, "app"},
		{"app too long", Policy{App: strings.Repeat("a", 64), Keys: []string{k1.line}, Threshold: 1}, "app"},
		{"no keys", Policy{App: "web", Threshold: 1}, "keys: need 1-32 keys, got 0"},
		{"empty key list", Policy{App: "web", Keys: []string{}, Threshold: 0}, "keys: need 1-32 keys, got 0"},
		{"33 keys", Policy{App: "web", Keys: many, Threshold: 1}, "got 33"},
		{"unparsable key", Policy{App: "web", Keys: []string{k1.line, "not a key"}, Threshold: 1}, "keys[1]"},
		{"secret key as key", Policy{App: "web", Keys: []string{string(k1.secretFile)}, Threshold: 1}, "keys[0]"},
		{"duplicate key", Policy{App: "web", Keys: []string{k1.line, k2.line, k1.line}, Threshold: 2}, "keys[2]: key " + idHex(k1.pub.ID()) + " listed twice"},
		{"duplicate key, file and line", Policy{App: "web", Keys: []string{string(k1.pubFile), k1.line}, Threshold: 1}, "listed twice"},
		{"threshold 0", Policy{App: "web", Keys: []string{k1.line, k2.line}, Threshold: 0}, "threshold"},
		{"threshold negative", Policy{App: "web", Keys: []string{k1.line}, Threshold: -1}, "threshold"},
		{"threshold above keys", Policy{App: "web", Keys: []string{k1.line, k2.line, k3.line}, Threshold: 4}, "threshold"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.policy.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Validate() = %v; want nil", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidPolicy) {
				t.Fatalf("Validate() = %v; want %v", err, ErrInvalidPolicy)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Validate() = %q; want it to mention %q", err, tt.want)
			}
		})
	}
}

func TestPolicyVerify(t *testing.T) {
	k1, k2, k3, outsider := newTestKey(t), newTestKey(t), newTestKey(t), newTestKey(t)
	policy := Policy{App: "web", Keys: []string{k1.line, k2.line, k3.line}, Threshold: 2}
	if err := policy.Validate(); err != nil {
		t.Fatal(err)
	}
	msg, err := validManifest().Canonical()
	if err != nil {
		t.Fatal(err)
	}
	sig := func(k testKey) []byte { return Sign(k.priv, msg, "release web") }
	garbled := []byte(strings.Replace(string(sig(k2)), "\ntrusted comment: ", "\ntrusted comment: x", 1))
	overOther := Sign(k2.priv, []byte("another manifest"), "release web")

	tests := []struct {
		name string
		sigs [][]byte
		want []string // parts of the error; nil: trusted
	}{
		{"two distinct keys", [][]byte{sig(k1), sig(k2)}, nil},
		{"the other two keys", [][]byte{sig(k3), sig(k2)}, nil},
		{"all three keys", [][]byte{sig(k1), sig(k2), sig(k3)}, nil},
		{"prehashed and legacy", [][]byte{sig(k1), minisign.Sign(k3.priv, msg)}, nil},
		{"two valid among bad ones", [][]byte{[]byte("junk"), sig(outsider), sig(k1), garbled, sig(k3)}, nil},

		{"no signatures", nil, []string{"0 valid signature(s)", "2 required"}},
		{"one valid", [][]byte{sig(k1)}, []string{"1 valid signature(s)", "2 required"}},
		{"same signature twice", [][]byte{sig(k1), sig(k1)}, []string{"1 valid signature(s)", "2 required"}},
		{"same key, two signatures", [][]byte{sig(k1), Sign(k1.priv, msg, "another comment")}, []string{"1 valid signature(s)", "2 required"}},
		{"same key, prehashed and legacy", [][]byte{sig(k1), minisign.Sign(k1.priv, msg)}, []string{"1 valid signature(s)", "2 required"}},
		{"one valid, one garbled", [][]byte{sig(k1), garbled}, []string{"1 valid signature(s)", "2 required", "bad signature by key " + idHex(k2.pub.ID())}},
		{"one valid, one malformed", [][]byte{sig(k1), sig(k2)[:50]}, []string{"1 valid signature(s)", "2 required", "malformed signature"}},
		{"one valid, one over another message", [][]byte{sig(k1), overOther}, []string{"1 valid signature(s)", "bad signature by key " + idHex(k2.pub.ID())}},
		{"one valid, one outsider", [][]byte{sig(k1), sig(outsider)}, []string{"1 valid signature(s)", "key " + idHex(outsider.pub.ID()) + ` is not in the "web" policy`}},
		{"outsiders only", [][]byte{sig(outsider), Sign(outsider.priv, msg, "again")}, []string{"0 valid signature(s)", idHex(outsider.pub.ID())}},
		{"outsider claiming a policy key ID", [][]byte{sig(k1), resign(t, sig(outsider), func(s *minisign.Signature) { s.KeyID = k2.pub.ID() })},
			[]string{"1 valid signature(s)", "bad signature by key " + idHex(k2.pub.ID())}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := policy.Verify(msg, tt.sigs)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Verify() = %v; want nil", err)
				}
				return
			}
			if !errors.Is(err, ErrUntrusted) {
				t.Fatalf("Verify() = %v; want %v", err, ErrUntrusted)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Verify() = %q; want it to mention %q", err, w)
				}
			}
		})
	}

	t.Run("other message", func(t *testing.T) {
		if err := policy.Verify(append(msg, ' '), [][]byte{sig(k1), sig(k2)}); !errors.Is(err, ErrUntrusted) {
			t.Errorf("Verify() of other bytes = %v; want %v", err, ErrUntrusted)
		}
	})
	// Verify must fail closed on a policy that was never validated, such as
	// the zero Policy PolicyFor returns with false, or one read from disk.
	t.Run("unvalidated policy", func(t *testing.T) {
		for name, p := range map[string]Policy{
			"zero":               {},
			"threshold 0":        {App: "web", Keys: []string{k1.line}, Threshold: 0},
			"negative threshold": {App: "web", Keys: []string{k1.line}, Threshold: -2},
			"no keys":            {App: "web", Threshold: 1},
			"threshold > keys":   {App: "web", Keys: []string{k1.line}, Threshold: 2},
		} {
			for _, sigs := range [][][]byte{nil, {sig(k1)}} {
				if err := p.Verify(msg, sigs); err == nil {
					t.Errorf("%s policy: Verify() with %d signature(s) = nil; want an error", name, len(sigs))
				}
			}
		}
	})
	t.Run("bad policy key", func(t *testing.T) {
		bad := Policy{App: "web", Keys: []string{k1.line, "junk"}, Threshold: 1}
		if err := bad.Verify(msg, [][]byte{sig(k1)}); !errors.Is(err, ErrInvalidPolicy) {
			t.Errorf("Verify() with an unparsable policy key = %v; want %v", err, ErrInvalidPolicy)
		}
	})
}

func TestPolicyFor(t *testing.T) {
	k := newTestKey(t)
	anyApp := Policy{App: AnyApp, Keys: []string{k.line}, Threshold: 1}
	web := Policy{App: "web", Keys: []string{k.line}, Threshold: 1}
	db := Policy{App: "db", Keys: []string{k.line}, Threshold: 1}
	tests := []struct {
		policies []Policy
		app      string
		want     string // App of the policy picked; empty: none
	}{
		{[]Policy{anyApp, web}, "web", "web"},
		{[]Policy{web, anyApp}, "web", "web"},
		{[]Policy{anyApp, db, web}, "web", "web"},
		{[]Policy{anyApp, web}, "db", AnyApp},
		{[]Policy{web, anyApp, db}, "cache", AnyApp},
		{[]Policy{web, db}, "cache", ""},
		{[]Policy{web}, "*", ""},
		{nil, "web", ""},
	}
	for i, tt := range tests {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			got, ok := PolicyFor(tt.policies, tt.app)
			if ok != (tt.want != "") || got.App != tt.want {
				t.Errorf("PolicyFor(%s) = %q, %v; want %q, %v", tt.app, got.App, ok, tt.want, tt.want != "")
			}
		})
	}
}
