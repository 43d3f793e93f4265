package pki

import (
	"crypto/x509"
	"fmt"
	"net/url"
	"strings"
)

// Kind of principal a certificate names.
type Kind string

// The kinds of principal.
const (
	KindServer   Kind = "server"
	KindAgent    Kind = "agent"
	KindOperator Kind = "operator"
)

func (k Kind) valid() bool {
	switch k {
	case KindServer, KindAgent, KindOperator:
		return true
	}
	return false
}

// Role of an operator. Roles form a strict ladder,
// viewer < deployer < approver < admin: each role grants everything the
// roles below it grant.
type Role string

// The operator roles, lowest first.
const (
	RoleViewer   Role = "viewer"
	RoleDeployer Role = "deployer"
	RoleApprover Role = "approver"
	RoleAdmin    Role = "admin"
)

// rank is r's position on the ladder, starting at 1; 0 for an unknown role.
func (r Role) rank() int {
	switch r {
	case RoleViewer:
		return 1
	case RoleDeployer:
		return 2
	case RoleApprover:
		return 3
	case RoleAdmin:
		return 4
	}
	return 0
}

// ParseRole returns the role named s exactly (lower case).
func ParseRole(s string) (Role, error) {
	r := Role(s)
	if r.rank() == 0 {
		return "", fmt.Errorf("%w %q: want one of viewer, deployer, approver, admin", ErrInvalidRole, s)
	}
	return r, nil
}

// Allows reports whether r grants at least need on the strict ladder
// viewer < deployer < approver < admin. An unknown role allows nothing and
// is allowed by nothing.
func (r Role) Allows(need Role) bool {
	have, want := r.rank(), need.rank()
	return have > 0 && want > 0 && have >= want
}

// Identity is who a certificate speaks for. Role is set for operators only.
type Identity struct {
	Kind Kind
	Name string
	Role Role
}

// Principal names who id is, without its role: the name that goes on the
// record (creator, approver, audit actor). A role can change when a new
// certificate is issued; the person does not, so separation of duties
// compares principals.
func (id Identity) Principal() string { return string(id.Kind) + "/" + id.Name }

// String renders id for logs and messages, e.g. "agent/web-1" or
// "operator/alice (admin)".
func (id Identity) String() string {
	s := string(id.Kind) + "/" + id.Name
	if id.Role != "" {
		s += " (" + string(id.Role) + ")"
	}
	return s
}

const nameRule = "must be 1-63 characters of A-Z a-z 0-9 . _ - starting with a letter or digit"

// validName reports whether s is a valid principal or cluster name.
func validName(s string) bool {
	if len(s) == 0 || len(s) > 63 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !alnum && (i == 0 || c != '.' && c != '_' && c != '-') {
			return false
		}
	}
	return true
}

// Validate reports whether id is well formed: a known kind, a valid name,
// and a valid role if and only if the kind is operator.
func (id Identity) Validate() error {
	if !id.Kind.valid() {
		return fmt.Errorf("%w: unknown kind %q", ErrInvalidIdentity, id.Kind)
	}
	if !validName(id.Name) {
		return fmt.Errorf("%w: name %q %s", ErrInvalidIdentity, id.Name, nameRule)
	}
	if id.Kind == KindOperator && id.Role.rank() == 0 {
		return fmt.Errorf("%w: operator %q has invalid role %q", ErrInvalidIdentity, id.Name, id.Role)
	}
	if id.Kind != KindOperator && id.Role != "" {
		return fmt.Errorf("%w: %s %q cannot have a role", ErrInvalidIdentity, id.Kind, id.Name)
	}
	return nil
}

const uriScheme = "drover"

// uri is the URI SAN that carries id.
func (id Identity) uri() *url.URL {
	u := &url.URL{Scheme: uriScheme, Opaque: string(id.Kind) + "/" + id.Name}
	if id.Kind == KindOperator {
		u.RawQuery = "role=" + string(id.Role)
	}
	return u
}

// IdentityFromCert returns the identity c speaks for. c must carry exactly
// one drover: URI SAN, in canonical form, naming a valid identity; other URI
// SANs are ignored. The certificate's signature and validity are not checked
// here.
func IdentityFromCert(c *x509.Certificate) (Identity, error) {
	if c == nil {
		return Identity{}, ErrNoIdentity
	}
	var found *url.URL
	for _, u := range c.URIs {
		if u.Scheme != uriScheme {
			continue
		}
		if found != nil {
			return Identity{}, fmt.Errorf("%w: more than one drover URI SAN", ErrInvalidIdentity)
		}
		found = u
	}
	if found == nil {
		return Identity{}, ErrNoIdentity
	}
	return parseIdentityURI(found)
}

func parseIdentityURI(u *url.URL) (Identity, error) {
	kind, name, ok := strings.Cut(u.Opaque, "/")
	if !ok {
		return Identity{}, fmt.Errorf("%w: URI SAN %q is not drover:KIND/NAME", ErrInvalidIdentity, u)
	}
	id := Identity{Kind: Kind(kind), Name: name}
	if id.Kind == KindOperator {
		q, err := url.ParseQuery(u.RawQuery)
		if err != nil || len(q) != 1 || len(q["role"]) != 1 {
			return Identity{}, fmt.Errorf("%w: operator URI SAN %q needs exactly one role", ErrInvalidIdentity, u)
		}
		id.Role = Role(q["role"][0])
	}
	if err := id.Validate(); err != nil {
		return Identity{}, err
	}
	// Anything not reproduced by the canonical form (host, user, stray
	// query, escapes) is refused rather than ignored.
	if got, want := u.String(), id.uri().String(); got != want {
		return Identity{}, fmt.Errorf("%w: URI SAN %q is not canonical (want %q)", ErrInvalidIdentity, got, want)
	}
	return id, nil
}
