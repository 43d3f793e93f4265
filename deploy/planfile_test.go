package deploy

import (
	"strings"
	"testing"
	"time"
)

func TestParsePlanFile(t *testing.T) {
	full := `
release: web@1.2.0
selector: {env: prod, site: berlin}
where: os=debian
waves: [1, 10%, 100%]
max_parallel: 10
max_failures: 5%
wave_max_failures: 1
bake_time: 30m
auto_promote: false
on_failure: rollback
not_before: 2026-12-01T22:00:00+01:00
deadline: 2026-12-02T06:00:00+01:00
host_timeout: 45m
`
	pf, err := ParsePlanFile(strings.NewReader(full))
	if err != nil {
		t.Fatal(err)
	}
	p := pf.Plan
	if pf.Release != "web@1.2.0" || pf.Selector["site"] != "berlin" || pf.Where != "os=debian" || p.Waves.String() != "1,10%,100%" || p.MaxParallel != 10 ||
		p.MaxFailures.Percent != 5 || p.WaveMaxFailures.Count != 1 || p.BakeTime != 30*time.Minute || !p.ManualPromote ||
		p.OnFailure != OnFailureRollback || p.HostTimeout != 45*time.Minute ||
		!p.NotBefore.Equal(time.Date(2026, 12, 1, 21, 0, 0, 0, time.UTC)) || !p.Deadline.Equal(time.Date(2026, 12, 2, 5, 0, 0, 0, time.UTC)) {
		t.Errorf("parsed %+v %+v", pf, p)
	}

	minimal, err := ParsePlanFile(strings.NewReader("release: web@1\nselector: env=prod,site=paris\nwaves: \"1,100%\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if minimal.Selector["site"] != "paris" || minimal.Plan.Waves.String() != "1,100%" || minimal.Plan.ManualPromote {
		t.Errorf("minimal: %+v", minimal)
	}

	bad := []struct{ name, yaml, want string }{
		{"no release", "waves: [1]", "release: required"},
		{"unknown field", "release: a@1\nwavez: [1]", "field wavez not found"},
		{"bad waves", "release: a@1\nwaves: [1, x]", "wave"},
		{"bad threshold", "release: a@1\nmax_failures: lots", "max_failures"},
		{"bad duration", "release: a@1\nbake_time: soon", "bake_time: \"soon\" is not a duration"},
		{"bad time", "release: a@1\ndeadline: friday", "deadline: \"friday\""},
		{"bad on_failure", "release: a@1\non_failure: panic", "on_failure: \"panic\": allowed values are pause, rollback"},
		{"deadline before not_before", "release: a@1\nnot_before: 2026-12-02T00:00:00Z\ndeadline: 2026-12-01T00:00:00Z", "deadline: must be after not_before"},
		{"nested selector", "release: a@1\nselector: {env: [prod]}", "selector"},
		{"too large", "release: a@1\n#" + strings.Repeat("x", MaxPlanFileBytes), "larger than"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParsePlanFile(strings.NewReader(tt.yaml))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v; want an error containing %q", err, tt.want)
			}
		})
	}
}
