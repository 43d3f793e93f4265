package agent

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"time"
)

// Status writes what an agent's directory says about the host: who it is,
// the apply in progress, whether it is halted, the releases installed and
// the last health check results. It reads files only; it works whether or
// not the agent runs.
func Status(dir string, w io.Writer) error {
	l := layout{dir}
	b, err := os.ReadFile(l.config())
	if err != nil {
		return fmt.Errorf("%w: %s: %v", ErrNotEnrolled, dir, err)
	}
	var id identity
	if err := json.Unmarshal(b, &id); err != nil {
		return err
	}
	j, err := loadJournal(l.journal())
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "host      %s\nservers   %v\n", id.Name, id.Servers)
	if j.Halted != "" {
		fmt.Fprintf(w, "HALTED    %s\n          (the agent leaves this host alone; fix it, then run drover-agent clear-halt)\n", j.Halted)
	}
	if a := j.Active; a != nil {
		fmt.Fprintf(w, "applying  %s@%s for rollout %s: %s (previous %q)\n", a.App, a.Version, a.Rollout, a.Step, a.Previous)
	} else {
		fmt.Fprintf(w, "applying  nothing\n")
	}
	fmt.Fprintf(w, "outbox    %d report(s) waiting for a server\n", len(j.Outbox))
	installed, _ := l.Installed()
	apps := make([]string, 0, len(installed))
	for app := range installed {
		apps = append(apps, app)
	}
	sort.Strings(apps)
	fmt.Fprintln(w, "\nreleases")
	for _, app := range apps {
		entries, _ := os.ReadDir(l.releases(app))
		for _, e := range entries {
			if !e.IsDir() || e.Name()[0] == '.' {
				continue
			}
			mark := " "
			if e.Name() == installed[app] {
				mark = "*"
			}
			fmt.Fprintf(w, "  %s %s@%s\n", mark, app, e.Name())
		}
	}
	if len(j.LastChecks) > 0 {
		fmt.Fprintln(w, "\nlast health checks")
		for _, c := range j.LastChecks {
			res := "pass"
			if !c.OK {
				res = "FAIL"
			}
			fmt.Fprintf(w, "  %s %-20s %s\n", res, c.Name, c.At.Format(time.RFC3339))
			if !c.OK && c.Output != "" {
				fmt.Fprintf(w, "      %s\n", c.Output)
			}
		}
	}
	if n := len(j.Done); n > 0 {
		fmt.Fprintln(w, "\nrecent rollouts")
		for _, d := range j.Done[max(0, n-5):] {
			fmt.Fprintf(w, "  %s: %s\n", d.Rollout, d.State)
		}
	}
	return nil
}

// ClearHalt lets a halted agent act again, after an operator has made the
// host healthy. It leaves a note in the agent's directory, which the agent
// (running or started later) takes up within one poll.
func ClearHalt(dir string) error {
	l := layout{dir}
	j, err := loadJournal(l.journal())
	if err != nil {
		return err
	}
	if j.Halted == "" {
		return fmt.Errorf("the agent in %s is not halted", dir)
	}
	return os.WriteFile(l.clearHalt(), []byte("cleared\n"), 0o600)
}

// takeClearHalt clears the halt if an operator asked for it.
func (a *Agent) takeClearHalt() {
	if _, err := os.Stat(a.files.clearHalt()); err != nil {
		return
	}
	if a.journal.Halted != "" {
		a.log.Warn("halt cleared by an operator", "was", a.journal.Halted)
		a.journal.Halted = ""
		if err := a.journal.save(a.files.journal()); err != nil {
			a.log.Error("cannot save journal", "err", err)
			return
		}
	}
	_ = os.Remove(a.files.clearHalt())
}
