package e2e

import (
	"context"
	"debug/elf"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// busyboxPath is where Debian's busybox-static puts its binary.
const busyboxPath = "/bin/busybox"

// moduleRoot finds the directory of go.mod above the test's directory.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("no go.mod above %s", dir)
		}
	}
}

// goTool is the go command: on PATH, else where the project installs it.
func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return "/usr/local/go/bin/go"
}

// buildBinaries builds static, stripped drover and drover-agent into dir.
func buildBinaries(ctx context.Context, root, dir string) error {
	cmd := exec.CommandContext(ctx, goTool(), "build", "-trimpath", "-ldflags", "-s -w -X main.version=e2e",
		"-o", dir+string(filepath.Separator), "./cmd/drover", "./cmd/drover-agent")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=-buildvcs=false")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build of the static binaries: %w\n%s", err, out)
	}
	for _, b := range []string{"drover", "drover-agent"} {
		if err := requireStatic(filepath.Join(dir, b)); err != nil {
			return err
		}
	}
	return nil
}

// requireStatic fails unless path is an ELF executable without a program
// interpreter: one that runs in an image with nothing else in it.
func requireStatic(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("%s is dynamically linked; the images hold nothing but static binaries", path)
		}
	}
	return nil
}

// findBusybox returns a static busybox for hooks and health checks:
// $DROVER_E2E_BUSYBOX, else Debian's busybox-static, installed with apt-get
// when it is missing and we run as root (as CI does on a clean clone).
func findBusybox(ctx context.Context, logf func(string, ...any)) (string, error) {
	if p := os.Getenv("DROVER_E2E_BUSYBOX"); p != "" {
		return p, requireStatic(p)
	}
	if requireStatic(busyboxPath) == nil {
		return busyboxPath, nil
	}
	if os.Geteuid() != 0 {
		return "", fmt.Errorf("no static busybox at %s: install it with `apt-get install busybox-static` (as root), or set DROVER_E2E_BUSYBOX", busyboxPath)
	}
	logf("installing busybox-static with apt-get")
	for _, args := range [][]string{{"update", "-qq"}, {"install", "-y", "-qq", "busybox-static"}} {
		cmd := exec.CommandContext(ctx, "apt-get", args...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		if out, err := cmd.CombinedOutput(); err != nil {
			return "", fmt.Errorf("apt-get %s: %w\n%s", strings.Join(args, " "), err, out)
		}
	}
	return busyboxPath, requireStatic(busyboxPath)
}

// buildImage builds the one image every container runs, FROM scratch: the
// two drover binaries, busybox with a link per applet (for hooks and
// health checks, which run `sh -c`), and the few directories they need.
// The image carries the run's label.
func buildImage(ctx context.Context, dir, binDir, busybox, run string) (string, error) {
	root := filepath.Join(dir, "rootfs")
	for _, d := range []string{"bin", "tmp", "srv", "root", "var/lib/drover", "etc/drover/facts.d"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			return "", err
		}
	}
	if err := os.Chmod(filepath.Join(root, "tmp"), 0o777|os.ModeSticky); err != nil {
		return "", err
	}
	for src, dst := range map[string]string{
		filepath.Join(binDir, "drover"):       "bin/drover",
		filepath.Join(binDir, "drover-agent"): "bin/drover-agent",
		busybox:                               "bin/busybox",
	} {
		if err := copyFile(src, filepath.Join(root, dst), 0o755); err != nil {
			return "", err
		}
	}
	applets, err := exec.CommandContext(ctx, busybox, "--list").Output()
	if err != nil {
		return "", fmt.Errorf("%s --list: %w", busybox, err)
	}
	for _, a := range strings.Fields(string(applets)) {
		if a == "busybox" || strings.Contains(a, "/") {
			continue
		}
		if err := os.Symlink("busybox", filepath.Join(root, "bin", a)); err != nil && !os.IsExist(err) {
			return "", err
		}
	}
	files := map[string]string{
		"etc/os-release": "ID=drover-e2e\nNAME=\"drover e2e\"\nVERSION_ID=1\n",
		"etc/passwd":     "root:x:0:0:root:/root:/bin/sh\n",
		"etc/group":      "root:x:0:\n",
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(root, name), []byte(body), 0o644); err != nil {
			return "", err
		}
	}
	dockerfile := "FROM scratch\nCOPY rootfs/ /\nENV PATH=/bin\n"
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(dockerfile), 0o644); err != nil {
		return "", err
	}
	tag := "drover-e2e:" + run
	if _, err := docker(ctx, "build", "-q", "--label", labelKey+"="+run, "-t", tag, dir); err != nil {
		return "", err
	}
	return tag, nil
}

func copyFile(src, dst string, perm os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, perm)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
