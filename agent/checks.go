package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/drover-dev/drover/artifacts"
	"github.com/drover-dev/drover/controlplane/api"
)

// defaultCheckTimeout applies to a health check or hook that names none.
const defaultCheckTimeout = 30 * time.Second

// checkEnv is what a health check or hook learns about its release.
type checkEnv struct {
	App, Version, ReleaseDir, Host, HostDir string
}

func (e checkEnv) environ() []string {
	return append(os.Environ(),
		"DROVER_APP="+e.App,
		"DROVER_VERSION="+e.Version,
		"DROVER_RELEASE_DIR="+e.ReleaseDir,
		"DROVER_HOST="+e.Host,
		"DROVER_HOST_DIR="+e.HostDir,
	)
}

// checkFailure is a health check or hook that did not pass, with its output.
type checkFailure struct {
	What   string // e.g. health check "http", hook activate
	Err    error
	Output string
}

func (f *checkFailure) Error() string { return fmt.Sprintf("%s failed: %v", f.What, f.Err) }

// runChecks runs every check once, in order, and returns their results and
// the first failure.
func runChecks(ctx context.Context, checks []artifacts.HealthCheck, env checkEnv, now func() time.Time) ([]checkResult, error) {
	var results []checkResult
	var first error
	for _, hc := range checks {
		out, err := runCheck(ctx, hc, env)
		results = append(results, checkResult{Name: hc.Name, OK: err == nil, Output: out, At: now()})
		if err != nil && first == nil {
			first = &checkFailure{What: fmt.Sprintf("health check %q", hc.Name), Err: err, Output: out}
		}
	}
	return results, first
}

func timeoutOf(d artifacts.Duration) time.Duration {
	if d == 0 {
		return defaultCheckTimeout
	}
	return time.Duration(d)
}

// runCheck runs one check with its timeout and returns its output.
func runCheck(ctx context.Context, hc artifacts.HealthCheck, env checkEnv) (string, error) {
	timeout := timeoutOf(hc.Timeout)
	switch hc.Kind() {
	case artifacts.CheckHTTP:
		return checkHTTP(ctx, hc, timeout)
	case artifacts.CheckTCP:
		d := net.Dialer{Timeout: timeout}
		conn, err := d.DialContext(ctx, "tcp", hc.Address)
		if err != nil {
			return "", err
		}
		conn.Close()
		return "connected to " + hc.Address, nil
	case artifacts.CheckProcess:
		return checkProcess(hc.Process)
	default:
		return runCommand(ctx, hc.Command, env, timeout)
	}
}

func checkHTTP(ctx context.Context, hc artifacts.HealthCheck, timeout time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, hc.URL, nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, api.MaxReportOutput))
	out := fmt.Sprintf("%s\n%s", resp.Status, body)
	want := hc.ExpectStatus
	if want == 0 {
		want = http.StatusOK
	}
	if resp.StatusCode != want {
		return out, fmt.Errorf("status %d, want %d", resp.StatusCode, want)
	}
	if hc.BodyContains != "" && !bytes.Contains(body, []byte(hc.BodyContains)) {
		return out, fmt.Errorf("body does not contain %q", hc.BodyContains)
	}
	return out, nil
}

// checkProcess looks for a running process whose name (/proc/PID/comm) is
// name.
func checkProcess(name string) (string, error) {
	comms, _ := filepath.Glob("/proc/[0-9]*/comm")
	for _, c := range comms {
		b, err := os.ReadFile(c)
		if err == nil && strings.TrimSpace(string(b)) == name {
			return fmt.Sprintf("process %s runs (pid %s)", name, filepath.Base(filepath.Dir(c))), nil
		}
	}
	return "", fmt.Errorf("no process named %q", name)
}

// runHook runs a hook, if there is one.
func runHook(ctx context.Context, what string, h *artifacts.Hook, env checkEnv) error {
	if h == nil {
		return nil
	}
	out, err := runCommand(ctx, h.Command, env, timeoutOf(h.Timeout))
	if err != nil {
		return &checkFailure{What: what, Err: err, Output: out}
	}
	return nil
}

// runCommand runs argv with a timeout and returns the tail of its combined
// output. Its process group is killed when the timeout passes, so a check
// or hook (and its children) cannot hang the agent.
func runCommand(ctx context.Context, argv []string, env checkEnv, timeout time.Duration) (string, error) {
	return runCommandEnv(ctx, argv, env, timeout)
}

// runCommandEnv is runCommand with extra environment variables.
func runCommandEnv(ctx context.Context, argv []string, env checkEnv, timeout time.Duration, extra ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = env.ReleaseDir
	cmd.Env = append(env.environ(), extra...)
	var out tailBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	setProcessGroup(cmd)
	cmd.WaitDelay = time.Second
	err := cmd.Run()
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		err = fmt.Errorf("timed out after %v", timeout)
	}
	return out.String(), err
}

// tailBuffer keeps the last api.MaxReportOutput bytes written to it.
type tailBuffer struct{ b bytes.Buffer }

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.b.Write(p)
	if over := t.b.Len() - api.MaxReportOutput; over > 0 {
		t.b.Next(over)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string { return t.b.String() }
