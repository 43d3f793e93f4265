package report

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// WriteMarkdown renders the report as Markdown.
func (r Report) WriteMarkdown(w io.Writer) error {
	p := &printer{w: w}
	r.markdown(p, "#")
	return p.err
}

type printer struct {
	w   io.Writer
	err error
}

func (p *printer) f(format string, args ...any) {
	if p.err == nil {
		_, p.err = fmt.Fprintf(p.w, format, args...)
	}
}

// cell escapes text for a Markdown table cell.
func cell(s string) string {
	if s == "" {
		return "-"
	}
	s = strings.ReplaceAll(s, "|", `\|`)
	return strings.Join(strings.Fields(s), " ")
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}

func (r Report) markdown(p *printer, h string) {
	title := "Rollout"
	if r.Kind == "rollback" {
		title = "Rollback"
	}
	p.f("%s %s %s: %s\n\n", h, title, r.Rollout, r.Release)
	if r.Env != "" {
		p.f("- **Environment:** %s\n", r.Env)
	}
	p.f("- **State:** %s", r.State)
	if r.Reason != "" {
		p.f(" (%s)", cell(r.Reason))
	}
	p.f("\n- **Created:** %s by %s\n", stamp(r.CreatedAt), r.CreatedBy)
	p.f("- **Started:** %s by %s\n", stamp(r.StartedAt), cell(r.StartedBy))
	p.f("- **Ended:** %s", stamp(r.EndedAt))
	if r.Duration != "" {
		p.f(" (took %s)", r.Duration)
	}
	p.f("\n")
	if r.Kind != "rollback" {
		a := r.Artifact
		p.f("- **Artifact:** payload sha256:%s, %d bytes, chunk list sha256:%s, %d signature(s)\n", a.PayloadSHA256, a.PayloadSize, a.ChunkList, a.Signatures)
		if a.SourceCommit != "" || a.BuildID != "" || a.Builder != "" {
			p.f("- **Provenance:** commit %s, build %s, builder %s\n", cell(a.SourceCommit), cell(a.BuildID), cell(a.Builder))
		}
		if len(r.Approvals) == 0 {
			p.f("- **Approvals:** none\n")
		}
		for _, ap := range r.Approvals {
			p.f("- **Approved** by %s at %s: %s\n", ap.By, stamp(ap.At), cell(ap.Comment))
		}
		if len(r.PromotedBy) > 0 {
			p.f("- **Promoted by:** %s\n", strings.Join(r.PromotedBy, ", "))
		}
	}
	pl := r.Plan
	promote := "automatic"
	if pl.ManualPromote {
		promote = "manual"
	}
	p.f("- **Plan:** waves %s, max_parallel %d, max_failures %s, bake time %v, promotion %s, on_failure %s",
		pl.Waves, pl.MaxParallel, pl.MaxFailures, pl.BakeTime, promote, dashIfEmpty(pl.OnFailure, "pause"))
	if !pl.NotBefore.IsZero() {
		p.f(", not before %s", stamp(pl.NotBefore))
	}
	if !pl.Deadline.IsZero() {
		p.f(", deadline %s", stamp(pl.Deadline))
	}
	p.f("\n\n")

	p.f("%s# Waves\n\n| Wave | Hosts | Succeeded | Reverted | Failed | Skipped | Unfinished | Start | End | Duration | Waiting for windows |\n", h)
	p.f("|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, w := range r.Waves {
		p.f("| %d | %d | %d | %d | %d | %d | %d | %s | %s | %s | %s |\n", w.Wave, w.Hosts, w.Succeeded, w.Reverted, w.Failed, w.Skipped,
			w.Unfinished, stamp(w.Start), stamp(w.End), cell(w.Duration), w.WindowWait)
	}
	if len(r.Evidence) > 0 {
		p.f("%s# Verification\n\n| Job | Host | Result | Exit | Duration | Tests | Failed |\n|---|---|---|---|---|---|---|\n", h)
		for _, e := range r.Evidence {
			tests, failed := "-", "-"
			if e.JUnit != nil {
				tests, failed = fmt.Sprint(e.JUnit.Tests), fmt.Sprint(e.JUnit.Failures+e.JUnit.Errors)
			}
			p.f("| %s | %s | %s | %d | %s | %s | %s |\n", cell(e.Job), e.Host, e.State, e.ExitCode, cell(e.Duration), tests, failed)
		}
		p.f("\n")
	}
	p.f("\n%s# Hosts\n\n| Host | Wave | State | From | To | Start | End | Duration | Waiting for windows | Reason |\n", h)
	p.f("|---|---|---|---|---|---|---|---|---|---|\n")
	for _, x := range r.Hosts {
		p.f("| %s | %d | %s | %s | %s | %s | %s | %s | %s | %s |\n", cell(x.Host), x.Wave, x.State, cell(x.From), cell(x.To),
			stamp(x.Start), stamp(x.End), cell(x.Duration), x.WindowWait, cell(x.Reason))
	}
	p.f("\n%s# Deviations from the plan\n\n", h)
	if len(r.Deviations) == 0 {
		p.f("None.\n")
	}
	for _, d := range r.Deviations {
		p.f("- %s\n", cell(d))
	}
	p.f("\n%s# Timeline\n\n| Time | Who | What | Detail |\n|---|---|---|---|\n", h)
	for _, e := range r.Timeline {
		p.f("| %s | %s | %s | %s |\n", stamp(e.Time), cell(e.Actor), e.Action, cell(e.Detail))
	}
	p.f("\n")
	if r.Rollback != nil {
		r.Rollback.markdown(p, h+"#")
	}
	if h == "#" {
		p.f("_Generated %s from the replicated record._\n", stamp(r.GeneratedAt))
	}
}

func dashIfEmpty(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
