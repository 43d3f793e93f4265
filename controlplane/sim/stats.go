package sim

import (
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Stats is what the simulated agents observed. It is safe for concurrent
// use; the Take methods hand over what was recorded since the last call, so
// a benchmark can measure one phase at a time.
type Stats struct {
	// Counters since the fleet was created.
	Polls           atomic.Int64 // long polls answered
	PollErrors      atomic.Int64 // long polls that failed (connection lost, server error)
	Checkins        atomic.Int64 // timed check-ins (Config.Probe)
	Reports         atomic.Int64 // reports delivered
	ReportErrors    atomic.Int64 // report attempts that failed (and were retried)
	Inventories     atomic.Int64 // inventories delivered
	InventoryErrors atomic.Int64 // inventory attempts that failed (and were retried)
	Applies         atomic.Int64 // simulated applies finished
	Failures        atomic.Int64 // of which ended reverted or failed

	mu       sync.Mutex
	checkins []time.Duration
	received map[string][]Receipt // rollout -> first sight of its instruction, per host
	outages  []Outage
}

// Counters is a snapshot of Stats' counters.
type Counters struct {
	Polls, PollErrors, Checkins, Reports, ReportErrors int64
	Inventories, InventoryErrors, Applies, Failures    int64
}

// Counters returns the counters' values now.
func (s *Stats) Counters() Counters {
	return Counters{Polls: s.Polls.Load(), PollErrors: s.PollErrors.Load(), Checkins: s.Checkins.Load(),
		Reports: s.Reports.Load(), ReportErrors: s.ReportErrors.Load(), Inventories: s.Inventories.Load(),
		InventoryErrors: s.InventoryErrors.Load(), Applies: s.Applies.Load(), Failures: s.Failures.Load()}
}

// Add returns the sum of two snapshots (of several fleets).
func (c Counters) Add(o Counters) Counters {
	return Counters{Polls: c.Polls + o.Polls, PollErrors: c.PollErrors + o.PollErrors, Checkins: c.Checkins + o.Checkins,
		Reports: c.Reports + o.Reports, ReportErrors: c.ReportErrors + o.ReportErrors, Inventories: c.Inventories + o.Inventories,
		InventoryErrors: c.InventoryErrors + o.InventoryErrors, Applies: c.Applies + o.Applies, Failures: c.Failures + o.Failures}
}

// Errors is the number of failed requests of every kind.
func (c Counters) Errors() int64 { return c.PollErrors + c.ReportErrors + c.InventoryErrors }

// Receipt is when a host first saw its instruction for a rollout.
type Receipt struct {
	Host string
	At   time.Time
}

// Outage is a stretch during which an agent could not reach its server:
// from the first failed request to the first answer from any server.
type Outage struct {
	Host      string
	Server    string // the server that failed
	Failed    time.Time
	Recovered time.Time
	NewServer string // the server that answered
}

func newStats() *Stats {
	return &Stats{received: map[string][]Receipt{}}
}

func (s *Stats) checkin(d time.Duration) {
	s.Checkins.Add(1)
	s.mu.Lock()
	s.checkins = append(s.checkins, d)
	s.mu.Unlock()
}

func (s *Stats) receive(rollout, host string, at time.Time) {
	s.mu.Lock()
	s.received[rollout] = append(s.received[rollout], Receipt{Host: host, At: at})
	s.mu.Unlock()
}

func (s *Stats) outage(o Outage) {
	s.mu.Lock()
	s.outages = append(s.outages, o)
	s.mu.Unlock()
}

// TakeCheckins returns the check-in latencies recorded since the last call.
func (s *Stats) TakeCheckins() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.checkins
	s.checkins = nil
	return out
}

// Received returns when each host first saw its instruction for a rollout.
func (s *Stats) Received(rollout string) []Receipt {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.received[rollout])
}

// TakeOutages returns the outages that ended since the last call.
func (s *Stats) TakeOutages() []Outage {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.outages
	s.outages = nil
	return out
}

// Percentile returns the q-th percentile (0 < q <= 100) of ds by the
// nearest-rank method, or 0 for none. ds is not modified.
func Percentile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	rank := int(q/100*float64(len(s)) + 0.999999)
	return s[min(max(rank, 1), len(s))-1]
}
