package agent

import (
	"context"
	"encoding/xml"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"time"

	"github.com/drover-dev/drover/controlplane/api"
	"github.com/drover-dev/drover/controlplane/client"
)

// Verification jobs: integration or smoke tests that a lifecycle runs on
// designated hosts after a rollout completes in an environment. A job runs
// in the background (the long poll, and so the host's liveness, goes on)
// in the application's current release directory, with the environment of
// a health check plus DROVER_JUNIT_FILE, a path where it may write a JUnit
// XML report; the agent sums that report and sends the result until a
// server takes it. A job is at least once: after a crash before its result
// was delivered, it runs again.

// maxJUnitBytes bounds the JUnit report the agent reads.
const maxJUnitBytes = 8 << 20

// jobRunner tracks the jobs running on this host.
type jobRunner struct {
	mu      sync.Mutex
	running map[string]bool
}

// startJobs starts each job of the desired state not already running.
func (a *Agent) startJobs(ctx context.Context, jobs []api.JobInstruction) {
	a.jobs.mu.Lock()
	defer a.jobs.mu.Unlock()
	if a.jobs.running == nil {
		a.jobs.running = map[string]bool{}
	}
	for _, j := range jobs {
		if a.jobs.running[j.ID] {
			continue
		}
		a.jobs.running[j.ID] = true
		go func() {
			res := a.runJob(ctx, j)
			a.deliverJob(ctx, api.JobReport{ID: j.ID, JobResult: res})
			a.jobs.mu.Lock()
			delete(a.jobs.running, j.ID)
			a.jobs.mu.Unlock()
		}()
	}
}

// runJob runs one job and returns its result.
func (a *Agent) runJob(ctx context.Context, j api.JobInstruction) api.JobResult {
	var res api.JobResult
	if len(j.Command) == 0 {
		res.ExitCode, res.Error = -1, "the job has no command"
		return res
	}
	version, err := a.files.Current(j.App)
	if err != nil || version == "" {
		res.ExitCode, res.Error = -1, "application "+j.App+" is not installed on this host"
		return res
	}
	dir, err := os.MkdirTemp("", "drover-job-")
	if err != nil {
		res.ExitCode, res.Error = -1, "cannot make a temporary directory: "+err.Error()
		return res
	}
	defer os.RemoveAll(dir)
	junit := filepath.Join(dir, "junit.xml")
	env := a.env(j.App, version)
	env.ReleaseDir = a.files.current(j.App)
	timeout := j.Timeout
	if timeout <= 0 {
		timeout = api.DefaultJobTimeout
	}
	a.log.Info("verification job started", "job", j.ID, "timeout", timeout)
	start := a.cfg.Clock.Now()
	out, err := runCommandEnv(ctx, j.Command, env, timeout, "DROVER_JUNIT_FILE="+junit)
	res.Duration = a.cfg.Clock.Now().Sub(start)
	res.Output = tail(out, api.MaxJobOutput)
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit):
		res.ExitCode = exit.ExitCode()
	default:
		res.ExitCode, res.Error = -1, err.Error()
	}
	if sum, err := readJUnit(junit); err != nil {
		res.Error = joinText(res.Error, "JUnit report: "+err.Error())
	} else {
		res.JUnit = sum
	}
	a.log.Info("verification job ended", "job", j.ID, "exit", res.ExitCode, "took", res.Duration.Round(time.Millisecond))
	return res
}

// deliverJob sends a job's result until a server takes it, or refuses it
// for good, or ctx ends.
func (a *Agent) deliverJob(ctx context.Context, rep api.JobReport) {
	for failures := 0; ctx.Err() == nil; failures++ {
		_, err := a.client.Do(ctx, client.Request{Method: http.MethodPost, Path: api.PathJobReport, JSON: rep}, nil)
		var apiErr *api.Error
		if err == nil || errors.As(err, &apiErr) && apiErr.Code.Status() < 500 {
			if err != nil {
				a.log.Warn("verification result refused", "job", rep.ID, "err", err)
			}
			return
		}
		sleep(ctx, retryDelay(failures+1))
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func joinText(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}

// readJUnit sums a JUnit XML report: a <testsuites> of <testsuite>s, or a
// single <testsuite>. No file is no report (nil, nil).
func readJUnit(path string) (*api.JUnitSummary, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return parseJUnit(io.LimitReader(f, maxJUnitBytes))
}

type junitSuite struct {
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Errors   int          `xml:"errors,attr"`
	Skipped  int          `xml:"skipped,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

func parseJUnit(r io.Reader) (*api.JUnitSummary, error) {
	var root junitSuite
	if err := xml.NewDecoder(r).Decode(&root); err != nil {
		return nil, err
	}
	var sum api.JUnitSummary
	var add func(s junitSuite, depth int)
	add = func(s junitSuite, depth int) {
		if len(s.Suites) == 0 || depth > 8 {
			sum.Tests += max(0, s.Tests)
			sum.Failures += max(0, s.Failures)
			sum.Errors += max(0, s.Errors)
			sum.Skipped += max(0, s.Skipped)
			return
		}
		for _, c := range s.Suites {
			add(c, depth+1)
		}
	}
	add(root, 0)
	return &sum, nil
}
