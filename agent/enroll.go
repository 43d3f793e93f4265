package agent

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/drover-dev/drover/artifacts"
	"github.com/drover-dev/drover/controlplane/api"
	"github.com/drover-dev/drover/controlplane/client"
	"github.com/drover-dev/drover/pki"
)

// identity is what enrollment leaves in the agent's directory.
type identity struct {
	Name    string            `json:"name"`
	Servers []string          `json:"servers"`
	Labels  map[string]string `json:"labels,omitempty"` // from the join token, to check releases' targets
}

// EnrollOptions says how to enroll.
type EnrollOptions struct {
	Dir    string // the agent's directory
	Server string // base URL of any server, e.g. https://10.0.0.1:7400
	Token  string // join token from `drover token create`
	Name   string // host name to enroll as
}

// Enroll joins the cluster: it fetches the CA over a connection checked
// against the pin in the token, generates the host's key (which never
// leaves the host), sends a certificate request with the token, and
// stores the certificate, the CA and the trust policies it receives.
// Enrolling again an already enrolled directory is an error; retrying an
// enrollment whose answer was lost is not (the key and request are kept).
func Enroll(ctx context.Context, o EnrollOptions) error {
	l := layout{o.Dir}
	if _, err := os.Stat(l.config()); err == nil {
		return fmt.Errorf("%s is already enrolled (remove %s to enroll again)", o.Dir, l.config())
	}
	tok, err := pki.ParseJoinToken(strings.TrimSpace(o.Token))
	if err != nil {
		return fmt.Errorf("join token: %w", err)
	}
	if err := (pki.Identity{Kind: pki.KindAgent, Name: o.Name}).Validate(); err != nil {
		return fmt.Errorf("host name: %w", err)
	}
	server := strings.TrimSuffix(o.Server, "/")
	caPEM, err := fetchCA(ctx, server, tok.CAPin)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(l.tls(""), 0o700); err != nil {
		return err
	}
	keyPEM, csrDER, err := loadOrMakeKey(l, o.Name)
	if err != nil {
		return err
	}
	tlsCfg, err := pki.ClientTLS(nil, nil, caPEM)
	if err != nil {
		return err
	}
	c := client.New([]string{server}, tlsCfg)
	defer c.Close()
	var resp api.EnrollResponse
	key := fmt.Sprintf("enroll-%x", csrDER[len(csrDER)-16:]) // same request, same key
	if _, err := c.Do(ctx, client.Request{Method: http.MethodPost, Path: api.PathEnroll, Key: key,
		JSON: api.EnrollRequest{Token: tok.String(), Host: o.Name, CSR: csrDER}}, &resp); err != nil {
		return fmt.Errorf("enrollment refused: %w", err)
	}
	if _, err := pki.ClientTLS(resp.Certificate, keyPEM, caPEM); err != nil {
		return fmt.Errorf("the server sent an unusable certificate: %w", err)
	}
	if err := writeFiles(l, resp, caPEM, keyPEM, o.Name); err != nil {
		return err
	}
	return nil
}

// fetchCA downloads the cluster CA over a TLS connection that is accepted
// only if the server's chain contains the pinned CA certificate.
func fetchCA(ctx context.Context, server, pin string) ([]byte, error) {
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: pki.PinnedTLS(pin)}, Timeout: 30 * time.Second}
	defer hc.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, server+api.PathCA, nil)
	if err != nil {
		return nil, fmt.Errorf("server URL %q: %w", server, err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cannot fetch the cluster CA from %s: %w", server, err)
	}
	defer resp.Body.Close()
	caPEM, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil || resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("cannot fetch the cluster CA from %s: %s %v", server, resp.Status, err)
	}
	block, _ := pem.Decode(caPEM)
	if block == nil {
		return nil, fmt.Errorf("%s sent a CA that is not PEM", server)
	}
	if _, err := x509.ParseCertificate(block.Bytes); err != nil || pki.PinOf(block.Bytes) != withPinPrefix(pin) {
		return nil, fmt.Errorf("%s sent a CA that does not match the token's pin", server)
	}
	return caPEM, nil
}

// withPinPrefix normalizes a pin to carry its "sha256:" prefix.
func withPinPrefix(pin string) string {
	if strings.HasPrefix(pin, "sha256:") {
		return pin
	}
	return "sha256:" + pin
}

// loadOrMakeKey returns the host's key and certificate request, making
// them on the first attempt and reusing them on a retry.
func loadOrMakeKey(l layout, name string) (keyPEM, csrDER []byte, err error) {
	keyPath, csrPath := l.tls("pending.key"), l.tls("pending.csr")
	keyPEM, kerr := os.ReadFile(keyPath)
	csrDER, cerr := os.ReadFile(csrPath)
	if kerr == nil && cerr == nil {
		if csr, err := x509.ParseCertificateRequest(csrDER); err == nil && csr.Subject.CommonName == name {
			return keyPEM, csrDER, nil
		}
	}
	if kerr != nil && !errors.Is(kerr, fs.ErrNotExist) {
		return nil, nil, kerr
	}
	keyPEM, csrDER, err = pki.NewKeyAndCSR(name)
	if err != nil {
		return nil, nil, err
	}
	if err := pki.WriteFileAtomic(keyPath, keyPEM, 0o600); err != nil {
		return nil, nil, err
	}
	if err := pki.WriteFileAtomic(csrPath, csrDER, 0o600); err != nil {
		return nil, nil, err
	}
	return keyPEM, csrDER, nil
}

func writeFiles(l layout, resp api.EnrollResponse, caPEM, keyPEM []byte, name string) error {
	if err := pki.WriteFileAtomic(l.tls("ca.crt"), caPEM, 0o644); err != nil {
		return err
	}
	if err := writeGeneration(l, keyPEM, resp.Certificate); err != nil {
		return err
	}
	_ = os.Remove(l.tls("pending.key"))
	_ = os.Remove(l.tls("pending.csr"))
	if err := saveTrust(l, resp.Trust); err != nil {
		return err
	}
	b, _ := json.MarshalIndent(identity{Name: name, Servers: resp.Servers, Labels: resp.Labels}, "", "  ")
	// Written last: its presence means the enrollment is complete.
	return pki.WriteFileAtomic(l.config(), b, 0o644)
}

func saveTrust(l layout, policies []artifacts.SignedPolicy) error {
	if policies == nil {
		policies = []artifacts.SignedPolicy{}
	}
	b, _ := json.MarshalIndent(policies, "", "  ")
	return pki.WriteFileAtomic(l.trust(), b, 0o644)
}

func loadTrust(l layout) ([]artifacts.SignedPolicy, error) {
	b, err := os.ReadFile(l.trust())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var ps []artifacts.SignedPolicy
	if err := json.Unmarshal(b, &ps); err != nil {
		return nil, fmt.Errorf("trust policy file %s is corrupt: %w", l.trust(), err)
	}
	return ps, nil
}
