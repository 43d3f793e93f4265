package main

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// What the bench commands read about processes: CPU time and memory from
// /proc (Linux), and the open-file limit they raise.

// clockTicks is the kernel's USER_HZ, the unit of CPU times in
// /proc/PID/stat: 100 on every Linux architecture Go supports.
const clockTicks = 100

// procSample is a process's CPU time used so far, at a moment.
type procSample struct {
	pid   int
	name  string
	ticks uint64
	at    time.Time
}

// sampleProc reads pid's CPU time (user and system).
func sampleProc(name string, pid int) procSample {
	s := procSample{pid: pid, name: name, at: time.Now()}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return s
	}
	// The command name (field 2) is in parentheses and may hold spaces:
	// count fields from the last ')'.
	if i := bytes.LastIndexByte(b, ')'); i >= 0 {
		f := strings.Fields(string(b[i+1:]))
		// f[0] is field 3 (state); utime and stime are fields 14 and 15.
		if len(f) > 12 {
			u, _ := strconv.ParseUint(f[11], 10, 64)
			st, _ := strconv.ParseUint(f[12], 10, 64)
			s.ticks = u + st
		}
	}
	return s
}

// procUsage is what a process used over a phase.
type procUsage struct {
	Name string `json:"name"`
	// CPUPercent is CPU time over wall time, in percent of one core.
	CPUPercent float64 `json:"cpu_percent"`
	RSSMiB     float64 `json:"rss_mib"`
	PeakRSSMiB float64 `json:"peak_rss_mib"`
}

// usageSince is what the process of sample before used until now.
func usageSince(before procSample) procUsage {
	now := sampleProc(before.name, before.pid)
	u := procUsage{Name: before.name}
	if wall := now.at.Sub(before.at).Seconds(); wall > 0 && now.ticks >= before.ticks {
		u.CPUPercent = round1(float64(now.ticks-before.ticks) / clockTicks / wall * 100)
	}
	u.RSSMiB, u.PeakRSSMiB = procMemory(before.pid)
	return u
}

// procMemory returns a process's resident and peak resident set in MiB.
func procMemory(pid int) (rss, peak float64) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0
	}
	kib := func(line string) float64 {
		f := strings.Fields(line)
		if len(f) < 2 {
			return 0
		}
		n, _ := strconv.ParseFloat(f[1], 64)
		return round1(n / 1024)
	}
	for _, line := range strings.Split(string(b), "\n") {
		switch {
		case strings.HasPrefix(line, "VmRSS:"):
			rss = kib(line)
		case strings.HasPrefix(line, "VmHWM:"):
			peak = kib(line)
		}
	}
	return rss, peak
}

// raiseFileLimit raises this process's soft limit on open files to its
// hard limit (processes it starts inherit it) and returns the new soft
// limit.
func raiseFileLimit() (uint64, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, err
	}
	if lim.Cur < lim.Max {
		lim.Cur = lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			return 0, fmt.Errorf("cannot raise the open-file limit to %d: %w", lim.Max, err)
		}
	}
	return lim.Cur, nil
}

func round1(f float64) float64 { return float64(int64(f*10+0.5)) / 10 }

// ms is a duration in milliseconds, as the bench reports write them.
type ms float64

func toMS(d time.Duration) ms { return ms(float64(d.Microseconds()) / 1000) }

func (m ms) String() string {
	d := time.Duration(float64(m) * float64(time.Millisecond))
	switch {
	case d >= 10*time.Second:
		return d.Round(100 * time.Millisecond).String()
	case d >= 10*time.Millisecond:
		return d.Round(time.Millisecond).String()
	default:
		return d.Round(10 * time.Microsecond).String()
	}
}
