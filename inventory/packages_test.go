package inventory

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"
)

const dpkgStatus = `Package: bash
Essential: yes
Status: install ok installed
Priority: required
Architecture: amd64
Version: 5.2.15-2+b7
Description: GNU Bourne Again SHell
 Bash is an sh-compatible command language interpreter.
 .
 Version: 9.9 (a continuation line, not a field)

Package: removed-but-configured
Status: deinstall ok config-files
Version: 1.0-1

Package: half-installed
Status: install reinstreq half-installed
Version: 2.0-1

package: held
status: hold ok installed
version: 3.1-2

Package: libc6
Status: install ok installed
Multi-Arch: same
Version: 2.36-9+deb12u8
Description: GNU C Library: Shared libraries`

const apkInstalled = `C:Q1abc=
P:musl
V:1.2.5-r0
A:x86_64
p:so:libc.musl-x86_64.so.1=1

C:Q1def=
P:busybox
V:1.36.1-r29
T:Size optimized toolbox

P:no-version
`

// fakeRoot lays out files (slash-separated path -> content) under a new
// temporary directory and returns it.
func fakeRoot(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for name, content := range files {
		path := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func TestCollectPackages(t *testing.T) {
	t.Setenv("PATH", t.TempDir()) // no rpm binary
	dpkg := []Package{
		{Name: "bash", Version: "5.2.15-2+b7", Manager: "dpkg"},
		{Name: "held", Version: "3.1-2", Manager: "dpkg"},
		{Name: "libc6", Version: "2.36-9+deb12u8", Manager: "dpkg"},
	}
	apk := []Package{
		{Name: "musl", Version: "1.2.5-r0", Manager: "apk"},
		{Name: "busybox", Version: "1.36.1-r29", Manager: "apk"},
	}
	tests := []struct {
		name  string
		files map[string]string
		want  []Package
	}{
		{"dpkg", map[string]string{"var/lib/dpkg/status": dpkgStatus}, dpkg},
		{"dpkg with CRLF", map[string]string{"var/lib/dpkg/status": strings.ReplaceAll(dpkgStatus, "\n", "\r\n")}, dpkg},
		{"apk", map[string]string{"lib/apk/db/installed": apkInstalled}, apk},
		{"both", map[string]string{"var/lib/dpkg/status": dpkgStatus, "lib/apk/db/installed": apkInstalled}, slices.Concat(dpkg, apk)},
		{"none", nil, nil},
		{"empty files", map[string]string{"var/lib/dpkg/status": "", "lib/apk/db/installed": "\n\n"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := collectPackages(context.Background(), fakeRoot(t, tt.files))
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("collectPackages =\n%v\nwant\n%v", got, tt.want)
			}
		})
	}
}

func TestParseDpkgStatusLongLine(t *testing.T) {
	status := "Package: a\nStatus: install ok installed\nVersion: 1\nDescription: " + strings.Repeat("x", maxLine) + "\n"
	if _, err := parseDpkgStatus(strings.NewReader(status)); err == nil {
		t.Error("line longer than maxLine: no error")
	}
}

func TestParseRPMOutput(t *testing.T) {
	out := "bash\t5.1.8-9.el9\ngpg-pubkey\tfd431d51-4ae0493b\n\nkernel-core\t5.14.0-427.el9\r\nbroken line\n"
	want := []Package{
		{Name: "bash", Version: "5.1.8-9.el9", Manager: "rpm"},
		{Name: "kernel-core", Version: "5.14.0-427.el9", Manager: "rpm"},
	}
	if got := parseRPMOutput([]byte(out)); !reflect.DeepEqual(got, want) {
		t.Errorf("parseRPMOutput = %v, want %v", got, want)
	}
}

// TestQueryRPM runs a stand-in rpm that records its arguments.
func TestQueryRPM(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("needs a shell script as rpm")
	}
	bin := t.TempDir()
	argsFile := filepath.Join(bin, "args")
	script := "#!/bin/sh\nprintf '%s\\n' \"$@\" > " + argsFile + "\nprintf 'zlib\\t1.2.11-40.el9\\nbash\\t5.1.8-9.el9\\n'\n"
	if err := os.WriteFile(filepath.Join(bin, "rpm"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin)
	root := t.TempDir()
	got := collectPackages(context.Background(), root)
	want := []Package{
		{Name: "zlib", Version: "1.2.11-40.el9", Manager: "rpm"},
		{Name: "bash", Version: "5.1.8-9.el9", Manager: "rpm"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("collectPackages = %v, want %v", got, want)
	}
	args, err := os.ReadFile(argsFile)
	if err != nil {
		t.Fatal(err)
	}
	wantArgs := "--root\n" + root + "\n-qa\n--qf\n%{NAME}\\t%{VERSION}-%{RELEASE}\\n\n"
	if string(args) != wantArgs {
		t.Errorf("rpm arguments = %q, want %q", args, wantArgs)
	}
}
