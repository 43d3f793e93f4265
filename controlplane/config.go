package controlplane

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"go.yaml.in/yaml/v3"
)

// Config is a server's configuration, read from YAML.
type Config struct {
	// ID names this server in the Raft group and in its certificate. It
	// must be unique in the cluster and stable across restarts.
	ID string `yaml:"id"`

	// DataDir holds the Raft log, snapshots and blobs. It must survive
	// restarts: losing it loses this server's copy of the state.
	DataDir string `yaml:"data_dir"`

	// APIAddr is host:port where the HTTPS API listens, and the address
	// other servers and clients use to reach it.
	APIAddr string `yaml:"api_addr"`

	// RaftAddr is host:port for Raft traffic between servers.
	RaftAddr string `yaml:"raft_addr"`

	// Peers lists every server of the initial cluster, this one included.
	// A server that starts with an empty DataDir bootstraps the cluster
	// with exactly these voters; every server must list the same peers.
	Peers []Peer `yaml:"peers"`

	// TLS names this server's certificate files (PEM).
	TLS TLSFiles `yaml:"tls"`

	// CADir holds the cluster CA (ca.crt, ca.key with mode 0600), used to
	// sign agents' certificates at enrollment.
	CADir string `yaml:"ca_dir"`

	// AgentCertTTL is the lifetime of an agent certificate. Default 7 days.
	AgentCertTTL time.Duration `yaml:"agent_cert_ttl,omitempty"`

	// LogLevel is debug, info, warn or error. Default info.
	LogLevel string `yaml:"log_level,omitempty"`
}

// Peer is one server of the cluster.
type Peer struct {
	ID       string `yaml:"id"`
	RaftAddr string `yaml:"raft_addr"`
	APIAddr  string `yaml:"api_addr"`
}

// TLSFiles are paths to PEM files.
type TLSFiles struct {
	CA   string `yaml:"ca"`
	Cert string `yaml:"cert"`
	Key  string `yaml:"key"`
}

// LoadConfig reads a YAML configuration file. Relative paths in it are
// taken relative to the file's directory. Unknown keys are errors.
func LoadConfig(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read server config: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	var c Config
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	base := filepath.Dir(path)
	for _, p := range []*string{&c.DataDir, &c.TLS.CA, &c.TLS.Cert, &c.TLS.Key, &c.CADir} {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(base, *p)
		}
	}
	c.setDefaults()
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &c, nil
}

func (c *Config) setDefaults() {
	if c.AgentCertTTL == 0 {
		c.AgentCertTTL = 7 * 24 * time.Hour
	}
	if c.LogLevel == "" {
		c.LogLevel = "info"
	}
}

// Validate checks the configuration and names the field at fault.
func (c *Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
	}
	if c.ID == "" {
		bad("id", "required: a unique name for this server, such as s1")
	}
	if c.DataDir == "" {
		bad("data_dir", "required: a directory that survives restarts")
	}
	for field, addr := range map[string]string{"api_addr": c.APIAddr, "raft_addr": c.RaftAddr} {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			bad(field, "%q must be host:port", addr)
		}
	}
	if len(c.Peers) == 0 {
		bad("peers", "required: every server of the cluster, this one included")
	}
	self := false
	ids := map[string]bool{}
	for i, p := range c.Peers {
		if p.ID == "" || p.RaftAddr == "" || p.APIAddr == "" {
			bad(fmt.Sprintf("peers[%d]", i), "id, raft_addr and api_addr are required")
		}
		if ids[p.ID] {
			bad(fmt.Sprintf("peers[%d].id", i), "%q listed twice", p.ID)
		}
		ids[p.ID] = true
		self = self || p.ID == c.ID
	}
	if len(c.Peers) > 0 && !self {
		bad("peers", "must include this server (id %q)", c.ID)
	}
	if c.TLS.CA == "" || c.TLS.Cert == "" || c.TLS.Key == "" {
		bad("tls", "ca, cert and key are required: drover serves only mutual TLS")
	}
	if c.CADir == "" {
		bad("ca_dir", "required: the directory holding ca.crt and ca.key")
	}
	if c.AgentCertTTL < time.Hour {
		bad("agent_cert_ttl", "must be at least 1h, got %v", c.AgentCertTTL)
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		bad("log_level", "%q: allowed values are debug, info, warn, error", c.LogLevel)
	}
	return errors.Join(errs...)
}

func (c *Config) peer(id string) (Peer, bool) {
	for _, p := range c.Peers {
		if p.ID == id {
			return p, true
		}
	}
	return Peer{}, false
}
