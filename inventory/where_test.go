package inventory

import (
	"encoding/json"
	"errors"
	"maps"
	"reflect"
	"strings"
	"testing"
)

// whereHost returns an inventory with every attribute that Attributes reads.
func whereHost() *System {
	return &System{
		HostName:         "web-1",
		SerialNumber:     "SN123",
		Manufacturer:     "Dell Inc.",
		Model:            "PowerEdge R650",
		ProcessorSummary: ProcessorSummary{LogicalProcessorCount: 64},
		MemorySummary:    MemorySummary{TotalSystemMemoryGiB: 15.62},
		OperatingSystem:  OperatingSystem{Name: "debian", Version: "12.7", Family: "debian", Kernel: "6.1.0-25-amd64", Architecture: "x86_64"},
		Packages: []Package{
			{Name: "openssh-client", Version: "1:9.2p1-2+deb12u3", Manager: "dpkg"},
			{Name: "openssl", Version: "3.0.14-1~deb12u2", Manager: "dpkg"},
		},
		Releases:     map[string]string{"api": "1.4.2", "worker": "v1.10.0-rc1"},
		AgentVersion: "0.9.3",
		Facts:        map[string]string{"rack": "b12", "gpu": "", "weight_kg": "heavy"},
	}
}

func TestAttributes(t *testing.T) {
	got := Attributes(map[string]string{"env": "prod", "site": "berlin"}, whereHost())
	want := map[string]string{
		"env": "prod", "site": "berlin",
		"hostname": "web-1", "serial": "SN123", "manufacturer": "Dell Inc.", "model": "PowerEdge R650",
		"os": "debian", "os_version": "12.7", "os_family": "debian", "kernel": "6.1.0-25-amd64", "arch": "x86_64",
		"cpus": "64", "memory_gib": "15.62", "agent_version": "0.9.3",
		"release.api": "1.4.2", "release.worker": "v1.10.0-rc1",
		"fact.rack": "b12", "fact.weight_kg": "heavy", // the empty fact.gpu is left out
		"package.openssh-client": "1:9.2p1-2+deb12u3", "package.openssl": "3.0.14-1~deb12u2",
	}
	if !maps.Equal(got, want) {
		t.Errorf("got %v; want %v", got, want)
	}
}

func TestAttributesNilSystem(t *testing.T) {
	labels := map[string]string{"env": "prod"}
	if got := Attributes(labels, nil); !maps.Equal(got, labels) {
		t.Errorf("got %v; want %v", got, labels)
	}
	if got := Attributes(nil, nil); len(got) != 0 {
		t.Errorf("got %v; want an empty map", got)
	}
	if got := Attributes(nil, &System{}); len(got) != 0 {
		t.Errorf("empty System: got %v; want an empty map", got)
	}
}

func TestAttributesLabelsWin(t *testing.T) {
	labels := map[string]string{"os": "custom", "release.api": "9.9", "fact.rack": "", "arch": ""}
	got := Attributes(labels, whereHost())
	for k, want := range labels {
		if got[k] != want {
			t.Errorf("%s = %q; want the label's %q", k, got[k], want)
		}
	}
	if w := mustParse(t, "os=custom,release.api>=9,!fact.rack,!arch"); !w.Match(got) {
		t.Errorf("%v does not match the labels that shadow facts", w)
	}
}

func TestAttributesDuplicatePackage(t *testing.T) {
	pkgs := []Package{
		{Name: "libc6", Version: "2.36-9+deb12u8", Manager: "dpkg"},
		{Name: "libc6", Version: "2.36-9+deb12u10", Manager: "dpkg"},
		{Name: "libc6", Version: "2.36-9", Manager: "dpkg"},
	}
	for range 3 { // every order gives the highest version
		pkgs = append(pkgs[1:], pkgs[0])
		got := Attributes(nil, &System{Packages: pkgs})["package.libc6"]
		if got != "2.36-9+deb12u10" {
			t.Errorf("%v: package.libc6 = %q; want 2.36-9+deb12u10", pkgs, got)
		}
	}
}

func mustParse(t *testing.T, s string) Where {
	t.Helper()
	w, err := ParseWhere(s)
	if err != nil {
		t.Fatalf("ParseWhere(%q): %v", s, err)
	}
	return w
}

func TestParseWhere(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"  \t ", ""},
		{"os=debian", "os=debian"},
		{"os=debian,memory_gib>=8", "memory_gib>=8,os=debian"},
		{" os = debian ,  memory_gib >= 8 ", "memory_gib>=8,os=debian"},
		{"env!=prod", "env!=prod"},
		{"cpus>4,cpus<=64,cpus<128,cpus>=-1.5e0", "cpus>4,cpus>=-1.5e0,cpus<128,cpus<=64"},
		{"hostname~web-*", "hostname~web-*"},
		{"hostname ~ web-[0-9]", "hostname~web-[0-9]"},
		{"fact.gpu", "fact.gpu"},
		{"! fact.gpu", "!fact.gpu"},
		{"!fact.gpu,fact.gpu", "fact.gpu,!fact.gpu"},
		{"b=1,a=2,a=1,b=1", "a=1,a=2,b=1"}, // sorted, duplicates dropped
		{"model=PowerEdge R650", "model=PowerEdge R650"},
		{"site/rack=b12", "site/rack=b12"},
		{"x=a=b", "x=a=b"},
		{"x=caf\u00e9", "x=caf\u00e9"},
		{"release.api>=v1.4", "release.api>=v1.4"},
		{"package.openssh-client<1:9.3", "package.openssh-client<1:9.3"},
		{"os_version>=12", "os_version>=12"},
		{"a" + strings.Repeat("b", 127) + "=" + strings.Repeat("v", 256), "a" + strings.Repeat("b", 127) + "=" + strings.Repeat("v", 256)},
		{strings.Repeat("a,", 31) + "a", "a"},
	}
	for _, tt := range tests {
		w, err := ParseWhere(tt.in)
		if err != nil {
			t.Errorf("ParseWhere(%q): %v", tt.in, err)
			continue
		}
		if got := w.String(); got != tt.want {
			t.Errorf("ParseWhere(%q).String() = %q; want %q", tt.in, got, tt.want)
		}
		if again := mustParse(t, w.String()); !reflect.DeepEqual(again, w) {
			t.Errorf("ParseWhere(%q) = %#v; after a round trip %#v", tt.in, w, again)
		}
	}
}

func TestParseWhereErrors(t *testing.T) {
	tests := []struct{ in, want string }{
		{"memory_gib>>8", `where: "memory_gib>>8": unknown operator; use =, !=, >, >=, <, <=, ~ (glob), key or !key`},
		{"os==debian", `"os==debian": unknown operator`},
		{"os=>debian", `"os=>debian": unknown operator`},
		{"os<>debian", `"os<>debian": unknown operator`},
		{"os debian", `"os debian": no operator after "os"; use =`},
		{"OS=debian", `"OS=debian": a key is a lower-case letter then a-z, 0-9`},
		{"os.Name=debian", `"os.Name=debian": a key is a lower-case letter`},
		{"1os=debian", `"1os=debian": a key is a lower-case letter`},
		{"_os", `"_os": a key is a lower-case letter`},
		{"=debian", `"=debian": missing key`},
		{"!", `"!": missing key`},
		{"!os=debian", `"!os=debian": ! goes only before a bare key, as in !os; to exclude a value write key!=value`},
		{"!OS", `"!OS": a key is`},
		{"os=", `"os=": missing value; to select hosts without os write !os`},
		{"os!=", `"os!=": missing value; to select hosts with os write os`},
		{"cpus>", `"cpus>": missing value`},
		{"os= =debian", `"os= =debian": value must not begin with '='`},
		{"x=a\tb", `value must be printable UTF-8`},
		{"x=a\xffb", `value must be printable UTF-8`},
		{"memory_gib>=lots", `"memory_gib>=lots": >= needs a number, as in memory_gib>=8`},
		{"cpus<0x10", `< needs a number`},
		{"cpus<1_000", `< needs a number`},
		{"cpus<Inf", `< needs a number`},
		{"cpus<NaN", `< needs a number`},
		{"cpus<1e999", `< needs a number`},
		{"os_version>=bookworm", `"os_version>=bookworm": >= compares versions on os_version; give one that begins with a digit`},
		{"release.api<v", `< compares versions on release.api`},
		{"hostname~web-[", `"hostname~web-[": bad glob`},
		{"hostname~web\\", `bad glob`},
		{"os=debian,", `where: term 2 is empty; separate terms with single commas`},
		{",os=debian", `term 1 is empty`},
		{"a,,b", `term 2 is empty`},
		{"a" + strings.Repeat("b", 128), `key is 129 bytes; at most 128`},
		{"a=" + strings.Repeat("v", 257), `value is 257 bytes; at most 256`},
		{strings.Repeat("a,", 32) + "a", `where: 33 terms; at most 32`},
		{strings.Repeat(" ", 4097), `where: expression is 4097 bytes; at most 4096`},
	}
	for _, tt := range tests {
		w, err := ParseWhere(tt.in)
		if err == nil {
			t.Errorf("ParseWhere(%q) = %v; want an error with %q", tt.in, w, tt.want)
			continue
		}
		if !errors.Is(err, ErrBadWhere) {
			t.Errorf("ParseWhere(%q): %v does not wrap ErrBadWhere", tt.in, err)
		}
		if msg := err.Error(); !strings.HasPrefix(msg, "where: ") || !strings.Contains(msg, tt.want) {
			t.Errorf("ParseWhere(%q): got %q; want it to contain %q", tt.in, msg, tt.want)
		}
		if !w.IsZero() {
			t.Errorf("ParseWhere(%q) returned %v with its error", tt.in, w)
		}
	}
}

func TestParseWhereErrorIsShort(t *testing.T) {
	_, err := ParseWhere("x=" + strings.Repeat("\u00e9", 1000))
	if err == nil || len(err.Error()) > 200 {
		t.Errorf("got %v; want a short error", err)
	}
}

func TestWhereMatch(t *testing.T) {
	host := Attributes(map[string]string{"env": "prod", "site": "berlin", "tier": ""}, whereHost())
	tests := []struct {
		where string
		want  bool
	}{
		{"", true},
		// labels
		{"env=prod", true},
		{"env=prod,site=berlin", true},
		{"env=prod,site=paris", false},
		{"env=Prod", false}, // values are case sensitive
		{"env!=staging", true},
		{"env!=prod", false},
		{"zone!=eu", true}, // absent differs from every value
		{"zone=eu", false},
		// facts
		{"os=debian", true},
		{"hostname=web-1,model=PowerEdge R650", true},
		{"fact.rack=b12", true},
		{"fact.role=web", false},
		// presence and absence; empty counts as absent
		{"env", true},
		{"zone", false},
		{"tier", false},
		{"!tier", true},
		{"!zone", true},
		{"!env", false},
		{"fact.gpu", false},
		{"!fact.gpu", true},
		// numbers
		{"memory_gib>=8", true},
		{"memory_gib>=15.62", true},
		{"memory_gib>15.62", false},
		{"memory_gib<16", true},
		{"memory_gib<=15.6", false},
		{"cpus>=64,cpus<=64", true},
		{"cpus>64", false},
		{"cpus>-1e3", true},
		{"fact.weight_kg>0", false}, // not a number: never matches
		{"fact.weight_kg<0", false},
		{"zone<1", false}, // absent: never matches
		{"hostname>0", false},
		// versions
		{"os_version>=12", true},
		{"os_version>=12.7", true},
		{"os_version>12.7", false},
		{"os_version<12.10", true}, // 7 < 10 as versions, not as decimals
		{"os_version<13", true},
		{"kernel>=6.1", true},
		{"kernel<6.1.0-26", true},
		{"kernel>=5.15.0-91", true},
		{"agent_version>=0.9", true},
		{"agent_version<0.10", true},
		{"agent_version>=v0.9.3", true},
		{"agent_version>0.9.3", false},
		{"release.api>=1.4", true},
		{"release.api>=1.4.2", true},
		{"release.api<1.4.10", true},
		{"release.api>1.4.2", false},
		{"release.worker>=1.9", true},        // v1.10.0-rc1
		{"release.worker<1.10.0", true},      // a pre-release comes before its release
		{"release.worker>=1.10.0-rc1", true}, // equal
		{"release.worker>1.10.0-beta", true}, // rc > beta
		{"release.missing<9", false},
		{"package.openssh-client>=9.2", true}, // epoch 1: ignored when one side has none
		{"package.openssh-client<9.3", true},
		{"package.openssh-client>=1:9.2", true},
		{"package.openssh-client>=2:1", false},
		{"package.openssl<3.0.14-1", true}, // ~ sorts before
		{"package.openssl>=3.0.14", true},
		// globs
		{"hostname~web-*", true},
		{"hostname~web-?", true},
		{"hostname~web-[0-9]", true},
		{"hostname~db-*", false},
		{"hostname~web", false}, // the whole value
		{"model~*R6*", true},
		{"zone~*", false}, // absent never matches a glob
		{"tier~*", false},
		{"!zone,env~p*,os=debian,memory_gib>8,release.api>=1", true},
		{"!zone,env~p*,os=debian,memory_gib>16,release.api>=1", false},
	}
	for _, tt := range tests {
		w := mustParse(t, tt.where)
		if got := w.Match(host); got != tt.want {
			t.Errorf("%q.Match(host) = %v; want %v", tt.where, got, tt.want)
		}
	}
}

func TestWhereMatchNilInventory(t *testing.T) {
	attrs := Attributes(map[string]string{"env": "prod"}, nil)
	tests := []struct {
		where string
		want  bool
	}{
		{"env=prod", true},
		{"!os", true},
		{"os!=debian", true},
		{"os=debian", false},
		{"memory_gib<8", false},
		{"release.api<1", false},
	}
	for _, tt := range tests {
		if got := mustParse(t, tt.where).Match(attrs); got != tt.want {
			t.Errorf("%q.Match(no inventory) = %v; want %v", tt.where, got, tt.want)
		}
	}
	if !mustParse(t, "").Match(nil) || mustParse(t, "os").Match(nil) {
		t.Error("Match(nil) is not an empty host")
	}
}

func TestCompareVersions(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"1.2.3", "1.2.3", 0},
		{"1.2", "1.10", -1},
		{"1.02", "1.2", 0},
		{"v1.2.3", "1.2.3", 0},
		{"1.2", "1.2.0", -1},
		{"1.2.0", "1.2.0-1", -1},
		{"1.2.0-rc1", "1.2.0", -1},
		{"1.2.0-rc.2", "1.2.0-rc.10", -1},
		{"1.2.0-alpha", "1.2.0-beta", -1},
		{"1.2.0-rc1", "1.2.0-rc2", -1},
		{"1.2.0-rc2", "1.2.0-rc10", -1},
		{"9.2", "9.2p1", -1},
		{"1.0~rc1", "1.0", -1},
		{"3.0.14-1~deb12u2", "3.0.14-1", -1},
		{"2.36-9+deb12u8", "2.36-9+deb12u10", -1},
		{"1:1.0", "2.0", -1}, // an epoch counts only on both sides
		{"1:1.0", "0:2.0", +1},
		{"01:1.0", "1:1.0", 0},
		{"99999999999999999999999.1", "99999999999999999999999.2", -1},
		{"1.0", "1.a", +1},
		{"5.15.0-91-generic", "6.1.0-25-amd64", -1},
		{"2024.05.01-3", "2024.10.01-1", -1},
	}
	for _, tt := range tests {
		if got := compareVersions(tt.a, tt.b); got != tt.want {
			t.Errorf("compareVersions(%q, %q) = %d; want %d", tt.a, tt.b, got, tt.want)
		}
		if got := compareVersions(tt.b, tt.a); got != -tt.want {
			t.Errorf("compareVersions(%q, %q) = %d; want %d", tt.b, tt.a, got, -tt.want)
		}
	}
}

func TestWhereLabels(t *testing.T) {
	tests := []struct {
		where string
		want  map[string]string // nil: not a label selector
	}{
		{"", map[string]string{}},
		{"env=prod", map[string]string{"env": "prod"}},
		{"site=berlin, env=prod", map[string]string{"env": "prod", "site": "berlin"}},
		{"env=prod,env=prod", map[string]string{"env": "prod"}},
		{"env=prod,env=staging", nil},
		{"env=prod,site!=berlin", nil},
		{"env", nil},
		{"!env", nil},
		{"cpus>=8", nil},
		{"env~p*", nil},
	}
	for _, tt := range tests {
		got, ok := mustParse(t, tt.where).Labels()
		if ok != (tt.want != nil) || !maps.Equal(got, tt.want) {
			t.Errorf("%q.Labels() = %v, %v; want %v, %v", tt.where, got, ok, tt.want, tt.want != nil)
		}
	}
}

func TestWhereIsZero(t *testing.T) {
	var zero Where
	if !zero.IsZero() || zero.String() != "" || !zero.Match(map[string]string{"a": "b"}) {
		t.Error("the zero Where is not empty")
	}
	if mustParse(t, "a").IsZero() {
		t.Error(`ParseWhere("a").IsZero()`)
	}
}

func TestWhereJSON(t *testing.T) {
	type record struct {
		Target Where `json:"target"`
	}
	for _, in := range []string{"", "os=debian,memory_gib>=8,!fact.gpu,hostname~web-*"} {
		want := record{Target: mustParse(t, in)}
		b, err := json.Marshal(want)
		if err != nil {
			t.Fatal(err)
		}
		if exp := `{"target":` + jsonString(want.Target.String()) + `}`; string(b) != exp {
			t.Errorf("Marshal = %s; want %s", b, exp)
		}
		var got record
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("Unmarshal(%s): %v", b, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("Unmarshal(%s) = %#v; want %#v", b, got, want)
		}
	}
	var got record
	err := json.Unmarshal([]byte(`{"target":"memory_gib>>8"}`), &got)
	if !errors.Is(err, ErrBadWhere) || !strings.Contains(err.Error(), "unknown operator") {
		t.Errorf("Unmarshal of a bad filter: got %v; want ErrBadWhere", err)
	}
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func FuzzParseWhere(f *testing.F) {
	for _, seed := range []string{
		"", "os=debian,memory_gib>=8", " os = debian , !fact.gpu ", "env!=prod,hostname~web-[0-9]*",
		"release.api>=v1.4.2-rc1", "package.openssl<1:3.0~rc1", "a=b=c", "a,a,b", "!a=b", "a>>8",
		"a= =b", "a~[", "x=caf\u00e9", "x=\u00a0y\u00a0", "cpus>-1e3", ",", "A=b", "a=\xff",
	} {
		f.Add(seed)
	}
	host := Attributes(map[string]string{"env": "prod"}, whereHost())
	f.Fuzz(func(t *testing.T, s string) {
		w, err := ParseWhere(s)
		if err != nil {
			if !errors.Is(err, ErrBadWhere) || !strings.HasPrefix(err.Error(), "where: ") {
				t.Fatalf("ParseWhere(%q): error %q does not wrap ErrBadWhere", s, err)
			}
			return
		}
		w.Match(host)
		canonical := w.String()
		again, err := ParseWhere(canonical)
		if err != nil {
			t.Fatalf("ParseWhere(%q).String() = %q, which fails: %v", s, canonical, err)
		}
		if !reflect.DeepEqual(again, w) || again.String() != canonical {
			t.Fatalf("ParseWhere(%q) = %#v; after a round trip through %q: %#v", s, w, canonical, again)
		}
		if len(canonical) > len(s) {
			t.Fatalf("canonical %q is longer than input %q", canonical, s)
		}
		if labels, ok := w.Labels(); ok && !w.Match(labels) {
			t.Fatalf("%q does not match its own labels %v", canonical, labels)
		}
	})
}
