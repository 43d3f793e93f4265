package client

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

const twoContexts = `current_context: prod
contexts:
  - name: prod
    servers: [https://10.0.0.1:7400, 10.0.0.2:7400]
    ca: prod/ca.crt
    cert: prod/alice.crt
    key: /abs/alice.key
  - name: lab
    servers: [https://192.168.1.5:7400/]
    ca: lab/ca.crt
    cert: lab/bob.crt
    key: lab/bob.key
`

func TestResolveLayersFlagsOverEnvironmentOverFile(t *testing.T) {
	path := writeConfig(t, twoContexts)
	dir := filepath.Dir(path)
	cwd, _ := os.Getwd()
	set := func(v, from string) Setting { return Setting{Value: v, From: from} }
	tests := []struct {
		name        string
		flags, env  Overrides
		wantContext string
		wantServers []string
		wantCA      string
		wantFrom    map[string]string
	}{
		{
			name:        "the file's current context; relative paths from the file; bare host:port is https",
			wantContext: "prod", wantServers: []string{"https://10.0.0.1:7400", "https://10.0.0.2:7400"},
			wantCA:   filepath.Join(dir, "prod/ca.crt"),
			wantFrom: map[string]string{SettingContext: path, SettingServers: path + ", context prod"},
		},
		{
			name:        "the environment chooses another context",
			env:         Overrides{Context: set("lab", "$DROVER_CONTEXT")},
			wantContext: "lab", wantServers: []string{"https://192.168.1.5:7400"}, wantCA: filepath.Join(dir, "lab/ca.crt"),
			wantFrom: map[string]string{SettingContext: "$DROVER_CONTEXT"},
		},
		{
			name:        "a flag wins over the environment",
			flags:       Overrides{Context: set("prod", "--context")},
			env:         Overrides{Context: set("lab", "$DROVER_CONTEXT")},
			wantContext: "prod", wantServers: []string{"https://10.0.0.1:7400", "https://10.0.0.2:7400"}, wantCA: filepath.Join(dir, "prod/ca.crt"),
			wantFrom: map[string]string{SettingContext: "--context"},
		},
		{
			name:        "each setting on its own: servers from the environment, CA from a flag (relative to the working directory)",
			flags:       Overrides{CA: set("my/ca.crt", "--ca-cert")},
			env:         Overrides{Servers: set("https://10.9.9.9:7400, 10.9.9.8:7400", "$DROVER_SERVERS"), CA: set("/env/ca.crt", "$DROVER_CA_CERT")},
			wantContext: "prod", wantServers: []string{"https://10.9.9.9:7400", "https://10.9.9.8:7400"}, wantCA: filepath.Join(cwd, "my/ca.crt"),
			wantFrom: map[string]string{SettingServers: "$DROVER_SERVERS", SettingCA: "--ca-cert", SettingKey: path + ", context prod"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Resolve(path, tt.flags, tt.env)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Context != tt.wantContext || !reflect.DeepEqual(cfg.Servers, tt.wantServers) || cfg.CA != tt.wantCA {
				t.Errorf("got context %q servers %v ca %q; want %q %v %q", cfg.Context, cfg.Servers, cfg.CA, tt.wantContext, tt.wantServers, tt.wantCA)
			}
			for k, want := range tt.wantFrom {
				if got := cfg.From[k]; got != want {
					t.Errorf("From[%s] = %q; want %q", k, got, want)
				}
			}
		})
	}
}

func TestSingleClusterFileIsTheDefaultContext(t *testing.T) {
	// The form drover cluster init, drover dev and drover operator issue
	// write (Config.Save) must keep working.
	dir := t.TempDir()
	path := filepath.Join(dir, "admin.yaml")
	if err := (&Config{Servers: []string{"https://127.0.0.1:7400"}, CA: "ca.crt", Cert: "admin.crt", Key: "admin.key"}).Save(path); err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Context != DefaultContext || cfg.Cert != filepath.Join(dir, "admin.crt") || cfg.Path() != path {
		t.Errorf("got context %q cert %q path %q", cfg.Context, cfg.Cert, cfg.Path())
	}
	f, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// Adding a context keeps the old one as "default", current.
	if err := f.SetContext(Context{Name: "prod", Servers: []string{"https://10.0.0.1:7400"}, CA: "/p/ca.crt", Cert: "/p/a.crt", Key: "/p/a.key"}); err != nil {
		t.Fatal(err)
	}
	if err := f.Write(path); err != nil {
		t.Fatal(err)
	}
	f, err = ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := f.Names(); !reflect.DeepEqual(got, []string{"default", "prod"}) || f.Current() != "default" {
		t.Errorf("contexts %v current %q; want [default prod] and default", got, f.Current())
	}
	if cfg, err := LoadConfig(path); err != nil || cfg.Cert != filepath.Join(dir, "admin.crt") {
		t.Errorf("the default context after rewriting: %+v, %v", cfg, err)
	}
	if err := f.Use("prod"); err != nil {
		t.Fatal(err)
	}
	if err := f.DeleteContext("default"); err != nil {
		t.Fatal(err)
	}
	if got := f.Names(); !reflect.DeepEqual(got, []string{"prod"}) || f.Current() != "prod" {
		t.Errorf("after delete: contexts %v current %q", got, f.Current())
	}
}

func TestConfigErrorsNameWhatIsWrong(t *testing.T) {
	path := writeConfig(t, twoContexts)
	missing := filepath.Join(t.TempDir(), "none.yaml")
	tests := []struct {
		name   string
		path   string
		layers []Overrides
		is     error
		want   []string
	}{
		{"unknown context", path, []Overrides{{Context: Setting{"staging", "--context"}}}, ErrNoContext,
			[]string{`"staging"`, "prod, lab", path}},
		{"no file at all", missing, nil, ErrNoConfigFile, []string{missing, "does not exist"}},
		{"no file and only some settings", missing, []Overrides{{Servers: Setting{"10.0.0.1:7400", "$DROVER_SERVERS"}}}, ErrIncomplete,
			[]string{"ca (--ca-cert or DROVER_CA_CERT)", "cert (--client-cert", "key (--client-key"}},
		{"a context asked for with no file", missing, []Overrides{{Context: Setting{"prod", "$DROVER_CONTEXT"}}}, ErrNoConfigFile,
			[]string{"$DROVER_CONTEXT", `"prod"`}},
		{"a server that is not an https URL", path, []Overrides{{Servers: Setting{"http://10.0.0.1:7400", "--server"}}}, nil,
			[]string{"servers[0]", "http://10.0.0.1:7400", "--server", "https URL"}},
		{"several contexts, none current", writeConfig(t, strings.Replace(twoContexts, "current_context: prod\n", "", 1)), nil, nil,
			[]string{"prod, lab", "use-context"}},
		{"an unknown field", writeConfig(t, "servers: [a]\nsever: b\n"), nil, nil, []string{"sever"}},
		{"a duplicate context", writeConfig(t, "contexts:\n  - {name: a, servers: [x], ca: c, cert: c, key: k}\n  - {name: a, servers: [x], ca: c, cert: c, key: k}\n"), nil, nil,
			[]string{"contexts[1].name", `"a" is used twice`}},
		{"current_context names no context", writeConfig(t, "current_context: b\ncontexts:\n  - {name: a, servers: [x], ca: c, cert: c, key: k}\n"), nil, nil,
			[]string{"current_context", `"b"`, "(a)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Resolve(tt.path, tt.layers...)
			if err == nil {
				t.Fatal("no error")
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error %v is not %v", err, tt.is)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not name %q", err, w)
				}
			}
		})
	}
}

func TestEnvironmentAloneNeedsNoFile(t *testing.T) {
	env := Overrides{Servers: Setting{"10.0.0.1:7400", "$DROVER_SERVERS"}, CA: Setting{"/c/ca.crt", "$DROVER_CA_CERT"},
		Cert: Setting{"/c/a.crt", "$DROVER_CLIENT_CERT"}, Key: Setting{"/c/a.key", "$DROVER_CLIENT_KEY"}}
	cfg, err := Resolve(filepath.Join(t.TempDir(), "none.yaml"), Overrides{}, env)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Context != "" || cfg.Servers[0] != "https://10.0.0.1:7400" || cfg.Key != "/c/a.key" || cfg.From[SettingKey] != "$DROVER_CLIENT_KEY" {
		t.Errorf("got %+v", cfg)
	}
}
