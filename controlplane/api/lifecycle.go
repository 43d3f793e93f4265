package api

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/drover-dev/drover/artifacts"
	"github.com/drover-dev/drover/inventory"
)

// Environment is a named set of hosts — test, staging, prod — given as a
// filter over their labels and inventory facts (inventory.ParseWhere).
type Environment struct {
	Name      string    `json:"name"`
	Where     string    `json:"where"`
	CreatedBy string    `json:"created_by,omitempty"`
	UpdatedAt time.Time `json:"updated_at,omitempty"`
	Meta
}

// Lifecycle is the order in which releases of its applications go through
// environments: a release is rolled out to a stage only once it has
// completed in the stage before, soaked there, and passed that stage's
// verification jobs.
type Lifecycle struct {
	Name string `json:"name"`
	// Apps are the applications it governs; "*" governs every application
	// that no other lifecycle names.
	Apps      []string  `json:"apps"`
	Stages    []Stage   `json:"stages"`
	CreatedBy string    `json:"created_by,omitempty"`
	UpdatedAt time.Time `json:"updated_at,omitempty"`
	Meta
}

// Stage is one environment of a lifecycle.
type Stage struct {
	Env string `json:"env"`
	// Soak is how long a release must have run here, from the end of its
	// rollout, before the next stage.
	Soak artifacts.Duration `json:"soak,omitempty"`
	// Verify are the jobs run when a rollout completes here.
	Verify []VerifyJob `json:"verify,omitempty"`
}

// VerifyJob is a command — integration or smoke tests — that the agents of
// designated hosts run after a rollout completes in a stage. It runs in the
// release's directory; it may write a JUnit XML file to $DROVER_JUNIT_FILE.
type VerifyJob struct {
	Name    string   `json:"name"`
	Command []string `json:"command"`
	// Hosts selects the hosts that run it among the rollout's targets
	// (inventory.ParseWhere); empty means the first target.
	Hosts   string             `json:"hosts,omitempty"`
	Timeout artifacts.Duration `json:"timeout,omitempty"` // default DefaultJobTimeout
}

// DefaultJobTimeout is a verification job's timeout when it names none.
const DefaultJobTimeout = 10 * time.Minute

// Bounds on lifecycles.
const (
	maxStages      = 16
	maxJobsInStage = 16
	maxCommandArgs = 64
	maxArgBytes    = 4096
	maxApps        = 64
	maxJobTimeout  = 24 * time.Hour
)

var envNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)

// Validate checks an environment's name and filter.
func (e Environment) Validate() error {
	if !envNameRE.MatchString(e.Name) {
		return fmt.Errorf("name %q: use 1-63 characters of a-z, 0-9, '.', '_', '-', starting with a letter or digit", e.Name)
	}
	if strings.TrimSpace(e.Where) == "" {
		return fmt.Errorf("where: an environment needs a host filter, such as env=staging")
	}
	if _, err := inventory.ParseWhere(e.Where); err != nil {
		return fmt.Errorf("where: %w", err)
	}
	return nil
}

// Validate checks a lifecycle's shape; that its environments exist is the
// state machine's to check.
func (l Lifecycle) Validate() error {
	if !envNameRE.MatchString(l.Name) {
		return fmt.Errorf("name %q: use 1-63 characters of a-z, 0-9, '.', '_', '-', starting with a letter or digit", l.Name)
	}
	if len(l.Apps) == 0 || len(l.Apps) > maxApps {
		return fmt.Errorf("apps: name 1-%d applications, or *", maxApps)
	}
	for _, a := range l.Apps {
		if a != artifacts.AnyApp && !artifacts.ValidName(a) {
			return fmt.Errorf("apps: %q is not an application name", a)
		}
	}
	if len(l.Stages) < 2 || len(l.Stages) > maxStages {
		return fmt.Errorf("stages: a lifecycle has 2-%d stages, such as test, staging, prod", maxStages)
	}
	var seen []string
	for i, s := range l.Stages {
		if slices.Contains(seen, s.Env) {
			return fmt.Errorf("stages[%d]: environment %s appears twice", i, s.Env)
		}
		seen = append(seen, s.Env)
		if s.Soak < 0 || time.Duration(s.Soak) > 365*24*time.Hour {
			return fmt.Errorf("stages[%d] (%s): soak must be between 0 and 8760h", i, s.Env)
		}
		if len(s.Verify) > maxJobsInStage {
			return fmt.Errorf("stages[%d] (%s): at most %d verification jobs", i, s.Env, maxJobsInStage)
		}
		var jobs []string
		for j, job := range s.Verify {
			at := fmt.Sprintf("stages[%d].verify[%d]", i, j)
			if !envNameRE.MatchString(job.Name) || slices.Contains(jobs, job.Name) {
				return fmt.Errorf("%s: name %q must be a unique lower-case name", at, job.Name)
			}
			jobs = append(jobs, job.Name)
			if len(job.Command) == 0 || len(job.Command) > maxCommandArgs {
				return fmt.Errorf("%s (%s): command: give the program and its arguments (1-%d)", at, job.Name, maxCommandArgs)
			}
			for _, arg := range job.Command {
				if len(arg) > maxArgBytes || strings.ContainsRune(arg, 0) {
					return fmt.Errorf("%s (%s): command: an argument is longer than %d bytes or holds a NUL", at, job.Name, maxArgBytes)
				}
			}
			if job.Hosts != "" {
				if _, err := inventory.ParseWhere(job.Hosts); err != nil {
					return fmt.Errorf("%s (%s): hosts: %w", at, job.Name, err)
				}
			}
			if job.Timeout < 0 || time.Duration(job.Timeout) > maxJobTimeout {
				return fmt.Errorf("%s (%s): timeout must be between 0 (the default, %s) and 24h", at, job.Name, DefaultJobTimeout)
			}
		}
	}
	return nil
}

// Governs reports whether the lifecycle names app itself (not through "*").
func (l *Lifecycle) Governs(app string) bool { return slices.Contains(l.Apps, app) }

// Describe gives the stages in order, each with its soak time and its
// verification jobs: "test → staging (24h0m0s) [smoke] → prod".
func (l *Lifecycle) Describe() string {
	parts := make([]string, len(l.Stages))
	for i, s := range l.Stages {
		parts[i] = s.Env
		if s.Soak > 0 {
			parts[i] += fmt.Sprintf(" (%s)", time.Duration(s.Soak))
		}
		for _, j := range s.Verify {
			parts[i] += " [" + j.Name + "]"
		}
	}
	return strings.Join(parts, " → ")
}

// Stage returns the index of env among the stages, or -1.
func (l *Lifecycle) Stage(env string) int {
	return slices.IndexFunc(l.Stages, func(s Stage) bool { return s.Env == env })
}

// JobRun is one verification job on one host, for one rollout: evidence
// attached to the release.
type JobRun struct {
	ID        string        `json:"id"` // rollout/job/host
	Rollout   string        `json:"rollout"`
	Release   string        `json:"release"`
	Env       string        `json:"env"`
	Job       string        `json:"job"`
	Host      string        `json:"host"`
	Command   []string      `json:"command"`
	Timeout   time.Duration `json:"timeout"`
	State     string        `json:"state"` // pending, passed, failed
	CreatedAt time.Time     `json:"created_at"`
	EndedAt   time.Time     `json:"ended_at,omitempty"`
	JobResult
	Meta
}

// Job run states.
const (
	JobPending = "pending"
	JobPassed  = "passed"
	JobFailed  = "failed"
)

// JobResult is what an agent reports of a verification job it ran.
type JobResult struct {
	ExitCode int           `json:"exit_code"`
	Duration time.Duration `json:"duration"`
	Output   string        `json:"output,omitempty"` // the tail, at most MaxJobOutput bytes
	Error    string        `json:"error,omitempty"`  // why it could not run, or timed out
	JUnit    *JUnitSummary `json:"junit,omitempty"`
}

// MaxJobOutput bounds the output tail a job result keeps.
const MaxJobOutput = 4096

// JUnitSummary sums a JUnit XML report.
type JUnitSummary struct {
	Tests    int `json:"tests"`
	Failures int `json:"failures"`
	Errors   int `json:"errors"`
	Skipped  int `json:"skipped"`
}

// JobInstruction tells an agent to run a verification job.
type JobInstruction struct {
	ID      string        `json:"id"`
	App     string        `json:"app"` // runs in apps/APP/current
	Command []string      `json:"command"`
	Timeout time.Duration `json:"timeout"`
}

// JobReport is an agent's result of a job it was given.
type JobReport struct {
	ID string `json:"id"`
	JobResult
}

// Lineage traces a release from its source to the hosts running it now.
type Lineage struct {
	Release    string                     `json:"release"`
	Payload    string                     `json:"payload_sha256"`
	Provenance *artifacts.Provenance      `json:"provenance,omitempty"`
	Stages     []LineageStage             `json:"environments"`
	Evidence   []*JobRun                  `json:"evidence"`
	Hosts      []string                   `json:"hosts"` // running it now
	Statement  *artifacts.BuildProvenance `json:"statement,omitempty"`
}

// LineageStage is one environment a release was rolled out to.
type LineageStage struct {
	Env       string    `json:"env"`
	Rollout   string    `json:"rollout"`
	State     string    `json:"state"`
	StartedAt time.Time `json:"started_at,omitempty"`
	EndedAt   time.Time `json:"ended_at,omitempty"`
}
