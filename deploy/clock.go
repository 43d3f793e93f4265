package deploy

import "time"

// Clock tells the time. Components take one so that tests can drive time;
// nothing in this package reads it.
type Clock interface {
	Now() time.Time
}

// SystemClock is the real clock.
type SystemClock struct{}

// Now returns the current time.
func (SystemClock) Now() time.Time { return time.Now() }
