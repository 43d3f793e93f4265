package controlplane

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadConfigNamesTheField(t *testing.T) {
	valid := `id: s1
data_dir: data
api_addr: 127.0.0.1:7400
raft_addr: 127.0.0.1:7401
gossip_addr: 127.0.0.1:7402
bootstrap_expect: 3
gossip_key_file: gossip.key
tls: {ca: ca.crt, cert: s.crt, key: s.key}
ca_dir: ca
`
	tests := []struct {
		name, yaml, want string
	}{
		{"valid", valid, ""},
		{"unknown key", valid + "peers: []\n", "field peers not found"},
		{"missing id", strings.Replace(valid, "id: s1\n", "", 1), "id: required"},
		{"bad address", strings.Replace(valid, "127.0.0.1:7401", "7401", 1), "raft_addr:"},
		{"even bootstrap", strings.Replace(valid, "bootstrap_expect: 3", "bootstrap_expect: 2", 1), "bootstrap_expect: 2: allowed values are 1, 3, 5"},
		{"bad join", valid + "join: [nohost]\n", "join[0]:"},
		{"no tls", strings.Replace(valid, "tls: {ca: ca.crt, cert: s.crt, key: s.key}\n", "", 1), "tls: ca, cert and key are required"},
		{"bad log level", valid + "log_level: loud\n", `log_level: "loud": allowed values are debug, info, warn, error`},
		{"short cert ttl", valid + "agent_cert_ttl: 1m\n", "agent_cert_ttl: must be at least 1h"},
		{"bad duration", valid + "host_down_after: soon\n", "line 10: cannot unmarshal !!str `soon` into time.Duration"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "server.yaml")
			if err := os.WriteFile(path, []byte(tt.yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			cfg, err := LoadConfig(path)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("LoadConfig: %v", err)
				}
				if !filepath.IsAbs(cfg.DataDir) || cfg.AgentCertTTL == 0 || cfg.MinFreeBytes == 0 {
					t.Errorf("relative paths or defaults not resolved: %+v", cfg)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("LoadConfig error = %v; want it to contain %q", err, tt.want)
			}
		})
	}
}
