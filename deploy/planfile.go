package deploy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// PlanFile is a rollout plan as written in a YAML file:
//
//	release: web@1.2.0
//	selector: {env: prod}            # host labels; or "env=prod,site=berlin"
//	where: os=debian,memory_gib>=8   # labels and inventory facts (drover host list --where)
//	env: staging                     # a lifecycle environment (drover env list)
//	waves: [1, 10%, 50%, 100%]       # or "1,10%,50%,100%"
//	max_parallel: 10
//	max_failures: 5%                 # whole rollout: a count or a percentage
//	wave_max_failures: 1             # within each wave
//	bake_time: 30m
//	auto_promote: true               # false: each wave waits for `drover rollout promote`
//	on_failure: rollback             # or pause
//	not_before: 2026-12-01T22:00:00+01:00
//	deadline: 2026-12-02T06:00:00+01:00
//	host_timeout: 45m
//
// Every field but release is optional; a flag given on the command line
// wins over the file.
type PlanFile struct {
	Release  string
	Selector map[string]string
	Where    string
	Env      string
	Plan     Plan
}

// planYAML is the file's shape before validation.
type planYAML struct {
	Release         string    `yaml:"release"`
	Selector        yaml.Node `yaml:"selector"`
	Where           string    `yaml:"where"`
	Env             string    `yaml:"env"`
	Waves           yaml.Node `yaml:"waves"`
	MaxParallel     *int      `yaml:"max_parallel"`
	MaxFailures     string    `yaml:"max_failures"`
	WaveMaxFailures string    `yaml:"wave_max_failures"`
	BakeTime        string    `yaml:"bake_time"`
	AutoPromote     *bool     `yaml:"auto_promote"`
	OnFailure       string    `yaml:"on_failure"`
	NotBefore       string    `yaml:"not_before"`
	Deadline        string    `yaml:"deadline"`
	HostTimeout     string    `yaml:"host_timeout"`
}

// MaxPlanFileBytes bounds a plan file.
const MaxPlanFileBytes = 64 << 10

// DefaultWaves are a plan's waves when none are given.
const DefaultWaves = "1,10%,50%,100%"

// ParsePlanFile reads a plan file. Errors name the field and what it
// allows.
func ParsePlanFile(r io.Reader) (PlanFile, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxPlanFileBytes+1))
	if err != nil {
		return PlanFile{}, err
	}
	if len(data) > MaxPlanFileBytes {
		return PlanFile{}, fmt.Errorf("%w: the file is larger than %d bytes", ErrInvalidPlan, MaxPlanFileBytes)
	}
	var y planYAML
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&y); err != nil && !errors.Is(err, io.EOF) {
		return PlanFile{}, fmt.Errorf("%w: %v", ErrInvalidPlan, err)
	}
	var pf PlanFile
	pf.Release = strings.TrimSpace(y.Release)
	if pf.Release == "" {
		return pf, fmt.Errorf("%w: release: required, as NAME@VERSION", ErrInvalidPlan)
	}
	if pf.Selector, err = selectorNode(&y.Selector); err != nil {
		return pf, err
	}
	pf.Where, pf.Env = y.Where, y.Env
	p := &pf.Plan
	waves := DefaultWaves
	if y.Waves.Kind != 0 {
		if waves, err = wavesNode(&y.Waves); err != nil {
			return pf, err
		}
	}
	if p.Waves, err = ParseWaves(waves); err != nil {
		return pf, err
	}
	if y.MaxParallel != nil {
		p.MaxParallel = *y.MaxParallel
	}
	if y.MaxFailures != "" {
		if p.MaxFailures, err = ParseThreshold(y.MaxFailures); err != nil {
			return pf, err
		}
	}
	if y.WaveMaxFailures != "" {
		t, err := ParseThreshold(y.WaveMaxFailures)
		if err != nil {
			return pf, fmt.Errorf("wave_%w", err)
		}
		p.WaveMaxFailures = &t
	}
	durations := []struct {
		name string
		v    string
		dst  *time.Duration
	}{{"bake_time", y.BakeTime, &p.BakeTime}, {"host_timeout", y.HostTimeout, &p.HostTimeout}}
	for _, d := range durations {
		if d.v == "" {
			continue
		}
		if *d.dst, err = time.ParseDuration(d.v); err != nil {
			return pf, fmt.Errorf("%w: %s: %q is not a duration such as 30m or 2h", ErrInvalidPlan, d.name, d.v)
		}
	}
	if y.AutoPromote != nil {
		p.ManualPromote = !*y.AutoPromote
	}
	p.OnFailure = y.OnFailure
	times := []struct {
		name string
		v    string
		dst  *time.Time
	}{{"not_before", y.NotBefore, &p.NotBefore}, {"deadline", y.Deadline, &p.Deadline}}
	for _, t := range times {
		if t.v == "" {
			continue
		}
		if *t.dst, err = ParseTime(t.v); err != nil {
			return pf, fmt.Errorf("%w: %s: %v", ErrInvalidPlan, t.name, err)
		}
	}
	return pf, p.Validate()
}

// ParseTime reads a time as RFC 3339 (2026-12-01T22:00:00+01:00), or as
// "2026-12-01 22:00" in UTC.
func ParseTime(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339, "2006-01-02 15:04", "2006-01-02T15:04"} {
		if t, err := time.Parse(layout, strings.TrimSpace(s)); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%q: write a time as 2026-12-01T22:00:00+01:00", s)
}

// wavesNode accepts a list ([1, 10%, 100%]) or a string ("1,10%,100%").
func wavesNode(n *yaml.Node) (string, error) {
	switch n.Kind {
	case yaml.ScalarNode:
		return n.Value, nil
	case yaml.SequenceNode:
		parts := make([]string, len(n.Content))
		for i, c := range n.Content {
			if c.Kind != yaml.ScalarNode {
				return "", fmt.Errorf("%w: waves[%d]: a host count or a percentage such as 10%%", ErrInvalidPlan, i)
			}
			parts[i] = c.Value
		}
		return strings.Join(parts, ","), nil
	}
	return "", fmt.Errorf("%w: waves: a list such as [1, 10%%, 100%%] or a string \"1,10%%,100%%\"", ErrInvalidPlan)
}

// selectorNode accepts a mapping ({env: prod}) or a string ("env=prod").
func selectorNode(n *yaml.Node) (map[string]string, error) {
	switch n.Kind {
	case 0:
		return nil, nil
	case yaml.MappingNode:
		out := map[string]string{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Kind != yaml.ScalarNode || v.Kind != yaml.ScalarNode {
				return nil, fmt.Errorf("%w: selector: labels are key: value pairs", ErrInvalidPlan)
			}
			out[k.Value] = v.Value
		}
		return out, nil
	case yaml.ScalarNode:
		out := map[string]string{}
		for _, part := range strings.Split(n.Value, ",") {
			if part = strings.TrimSpace(part); part == "" {
				continue
			}
			k, v, ok := strings.Cut(part, "=")
			if !ok || k == "" {
				return nil, fmt.Errorf("%w: selector: %q: write key=value", ErrInvalidPlan, part)
			}
			out[k] = v
		}
		return out, nil
	}
	return nil, fmt.Errorf("%w: selector: a mapping such as {env: prod} or a string \"env=prod\"", ErrInvalidPlan)
}
