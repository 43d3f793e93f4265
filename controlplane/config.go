package controlplane

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
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

	// GossipAddr is host:port (TCP and UDP) for the servers' gossip pool.
	GossipAddr string `yaml:"gossip_addr"`

	// Join lists gossip addresses of other servers; reaching any one of
	// them is enough. It is retried until one answers.
	Join []string `yaml:"join,omitempty"`

	// BootstrapExpect is the number of servers that form a new cluster:
	// once that many servers without Raft state see each other, they
	// bootstrap it together. Servers that join later are added by the
	// leader as non-voters and promoted once caught up. Also the fewest
	// voters the leader will shrink the cluster to when it removes dead
	// servers. 1, 3 or 5.
	BootstrapExpect int `yaml:"bootstrap_expect"`

	// GossipKeyFile holds the gossip encryption key: 32 random bytes,
	// base64. Every server must use the same key. Mode 0600.
	GossipKeyFile string `yaml:"gossip_key_file"`

	// TLS names this server's certificate files (PEM).
	TLS TLSFiles `yaml:"tls"`

	// CADir holds the cluster CA (ca.crt, ca.key with mode 0600), used to
	// sign agents' certificates at enrollment.
	CADir string `yaml:"ca_dir"`

	// AgentCertTTL is the lifetime of an agent certificate. Default 7 days.
	AgentCertTTL time.Duration `yaml:"agent_cert_ttl,omitempty"`

	// LogLevel is debug, info, warn or error. Default info.
	LogLevel string `yaml:"log_level,omitempty"`

	// Raft holds tuning knobs; the defaults are hashicorp/raft's.
	Raft RaftTuning `yaml:"raft,omitempty"`

	// Chunks holds the schedule of payload chunk upkeep.
	Chunks ChunkTuning `yaml:"chunks,omitempty"`

	// DeadServerCleanup is how long a server must be unreachable before
	// the leader removes it from Raft — and only if quorum stays safe.
	// Default 5m.
	DeadServerCleanup time.Duration `yaml:"dead_server_cleanup,omitempty"`

	// MinFreeBytes is the free space the data directory must keep: below
	// it the server refuses writes and leadership. Default 256 MiB (four
	// raft-wal segments).
	MinFreeBytes uint64 `yaml:"min_free_bytes,omitempty"`

	// HostDownAfter is how long an agent may go without checking in before
	// its host is marked down. Default 3m (agents poll every 60s).
	HostDownAfter time.Duration `yaml:"host_down_after,omitempty"`
}

// ChunkTuning schedules the upkeep of stored payload chunks.
type ChunkTuning struct {
	// AntiEntropyEvery is how often a server fetches the chunks of
	// registered payloads it lacks. Default 30s.
	AntiEntropyEvery time.Duration `yaml:"anti_entropy_every,omitempty"`
	// GCEvery is how often unreferenced chunks are removed. Default 10m.
	GCEvery time.Duration `yaml:"gc_every,omitempty"`
	// GCGrace is how old an unreferenced chunk must be to go, so that an
	// upload in progress keeps its chunks. Default 1h.
	GCGrace time.Duration `yaml:"gc_grace,omitempty"`
}

// RaftTuning are advanced Raft settings.
type RaftTuning struct {
	// SnapshotThreshold is how many new log entries trigger a snapshot.
	SnapshotThreshold uint64 `yaml:"snapshot_threshold,omitempty"`
	// TrailingLogs is how many entries are kept after a snapshot, for
	// followers that fall behind; one further behind gets the snapshot.
	TrailingLogs uint64 `yaml:"trailing_logs,omitempty"`
	// SegmentBytes is the size of one raft-wal segment file (default
	// 64 MiB). The log is trimmed a whole segment at a time.
	SegmentBytes int `yaml:"segment_bytes,omitempty"`
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
	for _, p := range []*string{&c.DataDir, &c.TLS.CA, &c.TLS.Cert, &c.TLS.Key, &c.CADir, &c.GossipKeyFile} {
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
	if c.DeadServerCleanup == 0 {
		c.DeadServerCleanup = 5 * time.Minute
	}
	if c.HostDownAfter == 0 {
		c.HostDownAfter = 3 * time.Minute
	}
	if c.MinFreeBytes == 0 {
		c.MinFreeBytes = 256 << 20
	}
	if c.Chunks.AntiEntropyEvery == 0 {
		c.Chunks.AntiEntropyEvery = 30 * time.Second
	}
	if c.Chunks.GCEvery == 0 {
		c.Chunks.GCEvery = 10 * time.Minute
	}
	if c.Chunks.GCGrace == 0 {
		c.Chunks.GCGrace = time.Hour
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
	for _, a := range []struct{ field, addr string }{{"api_addr", c.APIAddr}, {"raft_addr", c.RaftAddr}, {"gossip_addr", c.GossipAddr}} {
		if host, _, err := net.SplitHostPort(a.addr); err != nil || host == "" {
			bad(a.field, "%q must be host:port with an address the other servers can reach", a.addr)
		}
	}
	for i, j := range c.Join {
		if _, _, err := net.SplitHostPort(j); err != nil {
			bad(fmt.Sprintf("join[%d]", i), "%q must be host:port (another server's gossip_addr)", j)
		}
	}
	switch c.BootstrapExpect {
	case 1, 3, 5:
	default:
		bad("bootstrap_expect", "%d: allowed values are 1, 3, 5", c.BootstrapExpect)
	}
	if c.GossipKeyFile == "" {
		bad("gossip_key_file", "required: a file with the cluster's 32-byte gossip key, base64")
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
	if c.DeadServerCleanup < 10*time.Second {
		bad("dead_server_cleanup", "must be at least 10s, got %v", c.DeadServerCleanup)
	}
	if c.HostDownAfter < 5*time.Second {
		bad("host_down_after", "must be at least 5s, got %v", c.HostDownAfter)
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		bad("log_level", "%q: allowed values are debug, info, warn, error", c.LogLevel)
	}
	return errors.Join(errs...)
}

// LoadGossipKey reads the gossip key file.
func LoadGossipKey(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read gossip key: %w", err)
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(key) != 32 {
		return nil, fmt.Errorf("gossip key %s: must be 32 bytes, base64", path)
	}
	return key, nil
}
