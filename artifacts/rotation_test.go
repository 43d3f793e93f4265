package artifacts

import (
	"errors"
	"testing"

	"aead.dev/minisign"
)

func TestPolicyRotation(t *testing.T) {
	keys := make([]minisign.PrivateKey, 4)
	pubs := make([]string, 4)
	for i := range keys {
		pub, priv, err := minisign.GenerateKey(nil)
		if err != nil {
			t.Fatal(err)
		}
		keys[i], pubs[i] = priv, pub.String()
	}
	v1 := SignedPolicy{Policy: Policy{App: "web", Keys: pubs[:3], Threshold: 2}, Serial: 1}
	next := func(signers ...int) SignedPolicy {
		p := SignedPolicy{Policy: Policy{App: "web", Keys: []string{pubs[3]}, Threshold: 1}, Serial: 2}
		for _, i := range signers {
			p.Signatures = append(p.Signatures, Sign(keys[i], p.Document(), "rotate"))
		}
		return p
	}
	if err := v1.VerifySuccessor(next(0, 1)); err != nil {
		t.Fatalf("2 of 3 old keys: %v", err)
	}
	for name, p := range map[string]SignedPolicy{
		"one signature below threshold": next(0),
		"same key twice":                next(1, 1),
		"signed by the new key only":    next(3),
	} {
		if err := v1.VerifySuccessor(p); !errors.Is(err, ErrUntrusted) {
			t.Errorf("%s: got %v; want ErrUntrusted", name, err)
		}
	}
	skip := next(0, 1)
	skip.Serial = 3
	if err := v1.VerifySuccessor(skip); !errors.Is(err, ErrInvalidPolicy) {
		t.Errorf("serial jump: got %v; want ErrInvalidPolicy", err)
	}
	tampered := next(0, 1)
	tampered.Threshold = 0 // changed after signing
	if err := v1.VerifySuccessor(tampered); err == nil {
		t.Error("a policy changed after signing was accepted")
	}

	// Advance follows the chain, skipping what the agent already has.
	v2 := next(0, 1)
	v3 := SignedPolicy{Policy: Policy{App: "web", Keys: pubs[:2], Threshold: 1}, Serial: 3}
	v3.Signatures = [][]byte{Sign(keys[3], v3.Document(), "rotate")}
	got, err := Advance(v1, []SignedPolicy{v3, v1, v2})
	if err != nil || got.Serial != 3 {
		t.Errorf("Advance from v1 = serial %d, %v; want serial 3", got.Serial, err)
	}
	bad := v3
	bad.Signatures = [][]byte{Sign(keys[0], v3.Document(), "rotate")} // v2 trusts only key 3
	got, err = Advance(v1, []SignedPolicy{v2, bad})
	if err == nil || got.Serial != 2 {
		t.Errorf("Advance over a bad link = serial %d, %v; want serial 2 and an error", got.Serial, err)
	}

	// The document round-trips and refuses non-canonical input.
	doc := v2.Document()
	parsed, err := ParsePolicyDocument(doc)
	if err != nil || parsed.Serial != 2 || parsed.App != "web" {
		t.Errorf("ParsePolicyDocument = %+v, %v", parsed, err)
	}
	if _, err := ParsePolicyDocument([]byte(`{"threshold":1,"app":"web","keys":[],"serial":2}`)); err == nil {
		t.Error("a non-canonical document was accepted")
	}
}
