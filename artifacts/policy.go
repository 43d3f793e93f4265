package artifacts

import (
	"fmt"
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
