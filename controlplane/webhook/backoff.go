package webhook

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// jitter is the largest fraction taken off a retry delay, so that senders
// that failed together do not retry together.
const jitter = 0.2

// Backoff says how often and how patiently a Sender retries.
type Backoff struct {
	// Initial is the delay before the first retry. Each further retry
	// waits twice as long as the one before, up to Max.
	Initial time.Duration

	// Max caps every delay, including one asked for by Retry-After.
	Max time.Duration

	// Attempts is the total number of requests made for one event,
	// the first included. 1 means never retry.
	Attempts int
}

// DefaultBackoff returns the Backoff a Sender uses when its own is zero:
// 1s, doubling to at most 5m, over 8 attempts (about two minutes of waiting
// in all).
func DefaultBackoff() Backoff {
	return Backoff{Initial: time.Second, Max: 5 * time.Minute, Attempts: 8}
}

// Validate reports the first field of b that is out of range.
func (b Backoff) Validate() error {
	switch {
	case b.Attempts < 1:
		return errors.New("webhook backoff: Attempts must be at least 1")
	case b.Initial <= 0:
		return errors.New("webhook backoff: Initial must be positive")
	case b.Max < b.Initial:
		return errors.New("webhook backoff: Max must be at least Initial")
	}
	return nil
}

// delay returns the wait before retry number retry (1 for the first
// retry): Initial doubled retry-1 times, capped at Max, less up to 20%
// according to r in [0, 1). Taking jitter off, rather than adding it, keeps
// Max a true maximum.
func (b Backoff) delay(retry int, r float64) time.Duration {
	d := b.Initial
	for i := 1; i < retry && d < b.Max; i++ {
		if d > b.Max/2 {
			d = b.Max // doubling would pass Max, or overflow
			break
		}
		d *= 2
	}
	d = min(d, b.Max)
	return d - time.Duration(float64(d)*jitter*r) // not d*(1-…): float64(d) may round past MaxInt64
}

// retryAfter returns the wait asked for by a Retry-After header given in
// seconds, capped at max. ok is false when the header is absent or is not a
// number of seconds (the HTTP-date form is not honoured).
func retryAfter(h http.Header, max time.Duration) (d time.Duration, ok bool) {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0, false
	}
	secs, err := strconv.ParseInt(v, 10, 64)
	if err != nil || secs < 0 {
		return 0, false
	}
	if secs >= int64(max/time.Second) {
		return max, true
	}
	return time.Duration(secs) * time.Second, true
}
