package inventory

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

const (
	// rpmTimeout bounds an rpm query when ctx sets no earlier deadline: a
	// stale database lock must not hang the agent.
	rpmTimeout = 2 * time.Minute
	// rpmQueryFormat is rpm's --qf: name TAB version-release.
	rpmQueryFormat = `%{NAME}\t%{VERSION}-%{RELEASE}\n`
	// maxLine bounds one line of a package database.
	maxLine = 1 << 20
)

// collectPackages lists the packages of every package manager present
// under root. A database that cannot be read contributes nothing.
func collectPackages(ctx context.Context, root string) []Package {
	var pkgs []Package
	for _, db := range [...]struct {
		path  string
		parse func(io.Reader) ([]Package, error)
	}{
		{filepath.Join(root, "var", "lib", "dpkg", "status"), parseDpkgStatus},
		{filepath.Join(root, "lib", "apk", "db", "installed"), parseAPKInstalled},
	} {
		if p, err := parseFile(db.path, db.parse); err == nil {
			pkgs = append(pkgs, p...)
		}
	}
	if p, err := queryRPM(ctx, root); err == nil {
		pkgs = append(pkgs, p...)
	}
	return pkgs
}

func parseFile(path string, parse func(io.Reader) ([]Package, error)) ([]Package, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return parse(f)
}

// forEachStanza calls fn with the "Key: value" fields of each blank-line
// separated stanza of r, as in dpkg's status file and apk's installed
// database ("P:name"). Keys are lower-cased if fold is set: dpkg's are
// case-insensitive, apk's are not ("P" is the name, "p" what it provides).
// Continuation lines, which begin with a space or tab, are ignored.
func forEachStanza(r io.Reader, fold bool, fn func(fields map[string]string)) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxLine)
	fields := make(map[string]string)
	flush := func() {
		if len(fields) > 0 {
			fn(fields)
			clear(fields)
		}
	}
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		switch {
		case strings.TrimSpace(line) == "":
			flush()
		case line[0] == ' ' || line[0] == '\t':
			// continuation of the previous field
		default:
			if k, v, ok := strings.Cut(line, ":"); ok {
				if fold {
					k = strings.ToLower(k)
				}
				fields[k] = strings.TrimSpace(v)
			}
		}
	}
	flush()
	return sc.Err()
}

// parseDpkgStatus reads dpkg's status file and returns the installed
// packages: those whose Status says the package is installed and not
// broken ("install ok installed", and also "hold ok installed" for a
// package held at its version).
func parseDpkgStatus(r io.Reader) ([]Package, error) {
	var pkgs []Package
	err := forEachStanza(r, true, func(f map[string]string) {
		st := strings.Fields(f["status"])
		if len(st) != 3 || st[1] != "ok" || st[2] != "installed" {
			return
		}
		if f["package"] != "" && f["version"] != "" {
			pkgs = append(pkgs, Package{Name: f["package"], Version: f["version"], Manager: "dpkg"})
		}
	})
	return pkgs, err
}

// parseAPKInstalled reads apk's installed database (P: name, V: version).
func parseAPKInstalled(r io.Reader) ([]Package, error) {
	var pkgs []Package
	err := forEachStanza(r, false, func(f map[string]string) {
		if f["P"] != "" && f["V"] != "" {
			pkgs = append(pkgs, Package{Name: f["P"], Version: f["V"], Manager: "apk"})
		}
	})
	return pkgs, err
}

// queryRPM lists rpm's packages if an rpm binary is installed.
func queryRPM(ctx context.Context, root string) ([]Package, error) {
	bin, err := exec.LookPath("rpm")
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, rpmTimeout)
	defer cancel()
	args := []string{"-qa", "--qf", rpmQueryFormat}
	if filepath.Clean(root) != "/" {
		args = append([]string{"--root", root}, args...)
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.Output()
	if err != nil {
		return nil, err
	}
	return parseRPMOutput(out), nil
}

// parseRPMOutput reads lines of "name TAB version-release". The
// gpg-pubkey entries rpm lists are signing keys, not packages.
func parseRPMOutput(out []byte) []Package {
	var pkgs []Package
	for line := range bytes.Lines(out) {
		name, version, ok := strings.Cut(strings.TrimRight(string(line), "\r\n"), "\t")
		if !ok || name == "" || version == "" || name == "gpg-pubkey" {
			continue
		}
		pkgs = append(pkgs, Package{Name: name, Version: version, Manager: "rpm"})
	}
	return pkgs
}
