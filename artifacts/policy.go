package artifacts

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"aead.dev/minisign"
)

// AnyApp is the application name of a policy that covers every application
// without a policy of its own.
const AnyApp = "*"

const maxPolicyKeys = 32

// Policy says whose signatures a release of App needs: at least Threshold
// valid signatures, each by a distinct key of Keys.
type Policy struct {
	App       string   `json:"app"`
	Keys      []string `json:"keys"` // minisign public keys, base64 as in the .pub file's second line
	Threshold int      `json:"threshold"`
	// Provenance, when set, makes releases carry build provenance from
	// one of its builders and repositories.
	Provenance *ProvenanceRule `json:"provenance,omitempty"`
}

// ProvenanceRule names the builders and source repositories a release's
// provenance must come from; an empty list allows any.
type ProvenanceRule struct {
	Builders     []string `json:"builders,omitempty"`
	Repositories []string `json:"repositories,omitempty"`
}

// CheckProvenance reports whether a release with manifest provenance p
// satisfies the policy: nil when the policy requires none.
func (pol Policy) CheckProvenance(p *Provenance) error {
	r := pol.Provenance
	if r == nil {
		return nil
	}
	if p == nil || p.Statement == "" {
		return fmt.Errorf("the trust policy of %s requires build provenance (an in-toto statement given to drover artifact push --provenance); this release has none", pol.App)
	}
	if len(r.Builders) > 0 && !slices.Contains(r.Builders, p.Builder) {
		return fmt.Errorf("built by %q, which the trust policy of %s does not allow (allowed: %s)", p.Builder, pol.App, strings.Join(r.Builders, ", "))
	}
	if len(r.Repositories) > 0 && !slices.Contains(r.Repositories, p.Repository) {
		return fmt.Errorf("built from %q, which the trust policy of %s does not allow (allowed: %s)", p.Repository, pol.App, strings.Join(r.Repositories, ", "))
	}
	return nil
}

// Validate checks the policy's shape and that every key parses.
func (p Policy) Validate() error {
	if p.App != AnyApp && !nameRE.MatchString(p.App) {
		return fmt.Errorf("%w: app %q must be an application name or %q", ErrInvalidPolicy, p.App, AnyApp)
	}
	if len(p.Keys) == 0 || len(p.Keys) > maxPolicyKeys {
		return fmt.Errorf("%w: keys: need 1-%d keys, got %d", ErrInvalidPolicy, maxPolicyKeys, len(p.Keys))
	}
	seen := map[uint64]bool{}
	for i, k := range p.Keys {
		pub, err := ParsePublicKey([]byte(k))
		if err != nil {
			return fmt.Errorf("%w: keys[%d]: %v", ErrInvalidPolicy, i, err)
		}
		if seen[pub.ID()] {
			return fmt.Errorf("%w: keys[%d]: key %X listed twice", ErrInvalidPolicy, i, pub.ID())
		}
		seen[pub.ID()] = true
	}
	if p.Threshold < 1 || p.Threshold > len(p.Keys) {
		return fmt.Errorf("%w: threshold: must be between 1 and the number of keys (%d), got %d", ErrInvalidPolicy, len(p.Keys), p.Threshold)
	}
	if r := p.Provenance; r != nil {
		if len(r.Builders) > maxPolicyKeys || len(r.Repositories) > maxPolicyKeys {
			return fmt.Errorf("%w: provenance: at most %d builders and %d repositories", ErrInvalidPolicy, maxPolicyKeys, maxPolicyKeys)
		}
		for _, v := range append(slices.Clone(r.Builders), r.Repositories...) {
			if v == "" || len(v) > 1024 {
				return fmt.Errorf("%w: provenance: builders and repositories are 1-1024 bytes", ErrInvalidPolicy)
			}
		}
	}
	return nil
}

// Verify checks that message carries at least Threshold valid signatures by
// distinct keys of the policy. The error says how many were found and why
// the others failed.
func (p Policy) Verify(message []byte, sigs [][]byte) error {
	// Fail closed on a policy that never went through Validate: with a
	// threshold of 0, even no signature at all would be enough.
	if err := p.Validate(); err != nil {
		return err
	}
	keys := make([]minisign.PublicKey, 0, len(p.Keys))
	for _, k := range p.Keys {
		pub, err := ParsePublicKey([]byte(k))
		if err != nil {
			return fmt.Errorf("%w: policy key: %v", ErrInvalidPolicy, err)
		}
		keys = append(keys, pub)
	}
	valid := map[uint64]bool{}
	var problems []string
	for _, sig := range sigs {
		var s minisign.Signature
		if err := s.UnmarshalText(sig); err != nil {
			problems = append(problems, "malformed signature")
			continue
		}
		matched := false
		for _, pub := range keys {
			if pub.ID() != s.KeyID {
				continue
			}
			matched = true
			if err := VerifySignature(pub, message, sig); err != nil {
				problems = append(problems, fmt.Sprintf("bad signature by key %X", s.KeyID))
			} else {
				valid[s.KeyID] = true
			}
		}
		if !matched {
			problems = append(problems, fmt.Sprintf("key %X is not in the %q policy", s.KeyID, p.App))
		}
	}
	if len(valid) >= p.Threshold {
		return nil
	}
	detail := ""
	if len(problems) > 0 {
		detail = " (" + strings.Join(problems, "; ") + ")"
	}
	return fmt.Errorf("%w: %d valid signature(s) from distinct policy keys, %d required%s",
		ErrUntrusted, len(valid), p.Threshold, detail)
}

// PolicyFor picks the policy for app: its own, else the AnyApp policy.
func PolicyFor(policies []Policy, app string) (Policy, bool) {
	var fallback *Policy
	for i := range policies {
		switch policies[i].App {
		case app:
			return policies[i], true
		case AnyApp:
			fallback = &policies[i]
		}
	}
	if fallback != nil {
		return *fallback, true
	}
	return Policy{}, false
}

// SignedPolicy is one version of an application's trust policy. Serial 1
// is the first, set by an admin; every later version carries the
// signatures of at least Threshold keys of the version before it over its
// Document, so that only the holders of the current keys can change who
// signs releases — not the control plane, and not an admin alone.
type SignedPolicy struct {
	Policy
	Serial     uint64   `json:"serial"`
	Signatures [][]byte `json:"signatures,omitempty"`
}

// policyDocument is what a rotation signs: the new policy with its serial,
// in canonical (sorted-key) JSON.
type policyDocument struct {
	App       string   `json:"app"`
	Keys      []string `json:"keys"`
	Serial    uint64   `json:"serial"`
	Threshold int      `json:"threshold"`
}

// Document returns the bytes a rotation to p is signed over.
func (p SignedPolicy) Document() []byte {
	b, err := json.Marshal(policyDocument{App: p.App, Keys: p.Keys, Serial: p.Serial, Threshold: p.Threshold})
	if err != nil {
		panic(err) // strings and numbers always encode
	}
	return b
}

// ParsePolicyDocument reads a document written by Document.
func ParsePolicyDocument(b []byte) (SignedPolicy, error) {
	if len(b) > 64<<10 {
		return SignedPolicy{}, fmt.Errorf("%w: document larger than 64 KiB", ErrInvalidPolicy)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var d policyDocument
	if err := dec.Decode(&d); err != nil {
		return SignedPolicy{}, fmt.Errorf("%w: %v", ErrInvalidPolicy, err)
	}
	p := SignedPolicy{Policy: Policy{App: d.App, Keys: d.Keys, Threshold: d.Threshold}, Serial: d.Serial}
	if !bytes.Equal(p.Document(), bytes.TrimSpace(b)) {
		return SignedPolicy{}, fmt.Errorf("%w: document is not in canonical form", ErrInvalidPolicy)
	}
	return p, p.Validate()
}

// VerifySuccessor checks that next may replace p: same application, the
// next serial, a valid policy, and at least p.Threshold valid signatures
// by distinct keys of p over next's document.
func (p SignedPolicy) VerifySuccessor(next SignedPolicy) error {
	if next.App != p.App {
		return fmt.Errorf("%w: policy for %q cannot replace the policy for %q", ErrInvalidPolicy, next.App, p.App)
	}
	if next.Serial != p.Serial+1 {
		return fmt.Errorf("%w: serial %d cannot follow serial %d", ErrInvalidPolicy, next.Serial, p.Serial)
	}
	if err := next.Validate(); err != nil {
		return err
	}
	if err := p.Policy.Verify(next.Document(), next.Signatures); err != nil {
		return fmt.Errorf("rotation of the %q policy to serial %d: %w", p.App, next.Serial, err)
	}
	return nil
}

// Advance follows a chain of rotations from the pinned policy: it returns
// the newest version reachable from pinned by valid rotations. Versions at
// or below pinned's serial are skipped; a broken link stops the walk with
// an error (and the newest version verified so far).
func Advance(pinned SignedPolicy, chain []SignedPolicy) (SignedPolicy, error) {
	sorted := slices.Clone(chain)
	slices.SortFunc(sorted, func(a, b SignedPolicy) int { return cmpInt(a.Serial, b.Serial) })
	cur := pinned
	for _, next := range sorted {
		if next.App != pinned.App || next.Serial <= cur.Serial {
			continue
		}
		if err := cur.VerifySuccessor(next); err != nil {
			return cur, err
		}
		cur = next
	}
	return cur, nil
}
