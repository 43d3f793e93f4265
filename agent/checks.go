package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"time"

	"github.com/drover-dev/drover/artifacts"
	"github.com/drover-dev/drover/controlplane/api"
)

// defaultCheckTimeout applies to a health check that names none.
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

// checkFailure is a health check that did not pass, with its output.
type checkFailure struct {
	Name   string
	Err    error
	Output string
}

func (f *checkFailure) Error() string {
	return fmt.Sprintf("health check %q failed: %v", f.Name, f.Err)
}

// runChecks runs the checks in order in the release directory and returns
// the first failure. Every check has a timeout; its process group is killed
// when it runs out, so a check cannot hang the agent.
func runChecks(ctx context.Context, checks []artifacts.HealthCheck, env checkEnv) error {
	for _, hc := range checks {
		timeout := time.Duration(hc.Timeout)
		if timeout == 0 {
			timeout = defaultCheckTimeout
		}
		out, err := runCommand(ctx, hc.Command, env, timeout)
		if err != nil {
			return &checkFailure{Name: hc.Name, Err: err, Output: out}
		}
	}
	return nil
}

// runCommand runs argv with a timeout and returns the tail of its combined
// output.
func runCommand(ctx context.Context, argv []string, env checkEnv, timeout time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = env.ReleaseDir
	cmd.Env = env.environ()
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
