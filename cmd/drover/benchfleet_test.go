package main

import (
	"testing"
	"time"
)

func TestCountMarkedDown(t *testing.T) {
	log := `time=2026-12-02T14:00:00Z level=INFO msg="server started" server=s1
time=2026-12-02T14:01:00Z level=INFO msg="host status changed" server=s1 up=[] down="[sim-00001 sim-00002]"
time=2026-12-02T14:02:00Z level=INFO msg="host status changed" server=s1 up="[sim-00001 sim-00002]" down=[]
time=2026-12-02T14:03:00Z level=INFO msg="host status changed" server=s1 up=[] down=[sim-00003]
time=2026-12-02T14:04:00Z level=WARN msg="cannot record host status" server=s1 down=[sim-00009]`
	if got := countMarkedDown(log); got != 3 {
		t.Errorf("countMarkedDown = %d; want 3 (two hosts, then one; ups and other messages ignored)", got)
	}
	if got := countMarkedDown(""); got != 0 {
		t.Errorf("countMarkedDown(empty) = %d; want 0", got)
	}
}

func TestWriteStats(t *testing.T) {
	before, after := writeStats{}, writeStats{}
	before.add(`drover_raft_apply_seconds_sum{command="agent-report"} 2
drover_raft_apply_seconds_count{command="agent-report"} 10
drover_raft_apply_seconds_bucket{command="agent-report",le="0.001"} 3`)
	// Two servers' metrics (two leaders in turn) add up.
	after.add(`drover_raft_apply_seconds_sum{command="agent-report"} 3
drover_raft_apply_seconds_count{command="agent-report"} 15
drover_raft_apply_seconds_sum{command="rollout-step"} 0.5
drover_raft_apply_seconds_count{command="rollout-step"} 2`)
	after.add(`drover_raft_apply_seconds_sum{command="agent-report"} 1
drover_raft_apply_seconds_count{command="agent-report"} 5`)
	got := after.since(before)
	if r := got["agent-report"]; r.Count != 10 || r.MeanMS != 200 {
		t.Errorf("agent-report = %+v; want 10 commands, mean 200 ms", r)
	}
	if r := got["rollout-step"]; r.Count != 2 || r.MeanMS != 250 {
		t.Errorf("rollout-step = %+v; want 2 commands, mean 250 ms", r)
	}
}

func TestMSString(t *testing.T) {
	for _, tt := range []struct {
		d    time.Duration
		want string
	}{
		{1234567 * time.Nanosecond, "1.23ms"},
		{25 * time.Millisecond, "25ms"},
		{12345 * time.Millisecond, "12.3s"},
	} {
		if got := toMS(tt.d).String(); got != tt.want {
			t.Errorf("toMS(%v).String() = %q; want %q", tt.d, got, tt.want)
		}
	}
}
