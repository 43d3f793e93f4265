package deploy

// HostState is where one host is in one rollout.
type HostState string

// Host states, in the order a host normally goes through them.
const (
	Pending          HostState = "pending"            // not yet instructed
	Instructed       HostState = "instructed"         // desired state published; agent has not reported yet
	WaitingForWindow HostState = "waiting-for-window" // staged, waiting for its maintenance window
	Downloading      HostState = "downloading"
	Staged           HostState = "staged"
	Activating       HostState = "activating"
	Probation        HostState = "probation"
	Succeeded        HostState = "succeeded"
	Reverted         HostState = "reverted" // activated, failed its checks, back on the previous version
	Failed           HostState = "failed"   // could not apply, or could not get back to a healthy version
	Skipped          HostState = "skipped"  // excluded, never started
)

var stateOrder = map[HostState]int{
	Pending: 0, Instructed: 1, Downloading: 2, Staged: 3, WaitingForWindow: 4,
	Activating: 5, Probation: 6, Succeeded: 7, Reverted: 7, Failed: 7, Skipped: 7,
}

// Known reports whether s is one of the defined states.
func (s HostState) Known() bool { _, ok := stateOrder[s]; return ok }

// Final reports whether the host is done with the rollout.
func (s HostState) Final() bool { return stateOrder[s] == 7 }

// InFlight reports whether the host was started and is not done.
func (s HostState) InFlight() bool { return s != Pending && !s.Final() }

// Failure reports whether the state counts against the failure threshold.
func (s HostState) Failure() bool { return s == Reverted || s == Failed }

// Advances reports whether moving from s to next is progress. Reports can
// arrive twice or out of order (retries); a host never moves backwards and
// never leaves a final state.
func (s HostState) Advances(next HostState) bool {
	if !next.Known() || s.Final() {
		return false
	}
	return stateOrder[next] > stateOrder[s]
}
