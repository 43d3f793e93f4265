// Package webhook delivers rollout events to HTTP endpoints as JSON signed
// with HMAC-SHA256, retrying with backoff.
package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"
)

// Header names.
const (
	SignatureHeader = "X-Drover-Signature" // "sha256=" + hex HMAC-SHA256, under the secret, of timestamp + "." + body
	EventHeader     = "X-Drover-Event"     // the event's action, e.g. rollout.started
	DeliveryHeader  = "X-Drover-Delivery"  // the event's ID; the same on every retry, so receivers can drop duplicates
	TimestampHeader = "X-Drover-Timestamp" // unix seconds when this attempt was sent; also covered by the signature (see Sign)
)

const (
	userAgent      = "drover-webhook/1"
	attemptTimeout = 10 * time.Second
	maxBody        = 1 << 20  // largest Event.Body sent
	maxResponse    = 64 << 10 // most of a response body read before closing it
	maxSnippet     = 200      // most of a response body quoted in an error
)

// Errors a caller may test for with errors.Is.
var (
	// ErrBadURL means the endpoint URL is not an http or https URL with a
	// host. Nothing was sent.
	ErrBadURL = errors.New("bad webhook url")

	// ErrBodyTooLarge means Event.Body is over 1 MiB. Nothing was sent.
	ErrBodyTooLarge = errors.New("body is over 1 MiB")

	// ErrRejected means the endpoint answered with a status that retrying
	// will not change (a 4xx other than 408 and 429, or a 3xx the client
	// did not follow). The receiver's configuration needs fixing.
	ErrRejected = errors.New("endpoint rejected the delivery")
)

// Event is one rollout event to deliver.
type Event struct {
	// ID identifies the event. It is sent as DeliveryHeader on every
	// attempt, so receivers can drop duplicates. Required.
	ID string

	// Action names what happened, e.g. rollout.started. It is sent as
	// EventHeader. Required.
	Action string

	// Body is the JSON document to send, at most 1 MiB.
	Body []byte
}

// Sender delivers events. Its fields are set before first use and not
// changed afterwards; a Sender may then be used by many goroutines at once.
type Sender struct {
	// Client sends the requests. It must be set; the caller configures
	// TLS, proxies, redirects and overall timeouts on it. Each attempt is
	// in any case limited to 10 seconds.
	Client *http.Client

	// Backoff says how often to retry. The zero value means
	// DefaultBackoff().
	Backoff Backoff

	// Sleep waits between attempts, returning early with an error when ctx
	// ends. Default: a timer or ctx, whichever comes first.
	Sleep func(ctx context.Context, d time.Duration) error

	// Now is the clock that stamps TimestampHeader. Default: time.Now.
	Now func() time.Time

	// Rand draws the jitter taken off each retry delay. Default: the
	// math/rand/v2 global source. Sender serialises its use of Rand.
	Rand *rand.Rand

	// Log receives a line per failed attempt and per delivery. Default:
	// discard. The secret and the signature are never logged, nor the
	// URL's path or query, which may carry a token; only its host is.
	Log *slog.Logger

	randMu sync.Mutex // guards Rand
}

// Deliver POSTs ev.Body to endpoint, signed with secret, until the endpoint
// answers 2xx. It retries on network errors, 5xx, 408 and 429, waiting as
// Backoff says or as a Retry-After header (in seconds, capped at
// Backoff.Max) asks. It stops at once on any other status, returning an
// error wrapping ErrRejected, and when ctx ends. After the last attempt it
// returns an error wrapping the last failure.
func (s *Sender) Deliver(ctx context.Context, endpoint string, secret []byte, ev Event) error {
	u, err := checkURL(endpoint)
	if err != nil {
		return err
	}
	if err := checkEvent(ev); err != nil {
		return err
	}
	if len(secret) == 0 {
		return errors.New("webhook secret is empty; set one so receivers can tell real deliveries from forged ones")
	}
	if s.Client == nil {
		return errors.New("webhook sender has no http.Client")
	}
	b := s.Backoff
	if b == (Backoff{}) {
		b = DefaultBackoff()
	} else if err := b.Validate(); err != nil {
		return err
	}
	log := s.logger().With("delivery", ev.ID, "action", ev.Action, "host", u.Host)

	var last error
	for attempt := 1; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return stopped(ev.ID, attempt-1, err, last)
		}
		start := s.now()
		out := s.attempt(ctx, u.String(), secret, ev)
		if out.err == nil {
			log.Debug("delivered", "attempt", attempt, "status", out.status, "took", s.now().Sub(start))
			return nil
		}
		if err := ctx.Err(); err != nil {
			return stopped(ev.ID, attempt, err, out.err)
		}
		if !out.retry {
			return fmt.Errorf("webhook delivery %s: %w", ev.ID, out.err)
		}
		last = out.err
		if attempt >= b.Attempts {
			return fmt.Errorf("webhook delivery %s failed after %d attempts: %w", ev.ID, attempt, last)
		}

		wait, ok := retryAfter(out.header, b.Max)
		if !ok {
			wait = b.delay(attempt, s.float64())
		}
		log.Warn("delivery attempt failed", "attempt", attempt, "err", out.err, "retry_in", wait)
		if err := s.sleep(ctx, wait); err != nil {
			return stopped(ev.ID, attempt, err, last)
		}
	}
}

// outcome is the result of one attempt.
type outcome struct {
	err    error       // nil on 2xx
	retry  bool        // whether another attempt may succeed
	status int         // 0 when no response came
	header http.Header // the response's, for Retry-After
}

// attempt makes one signed request and reads what came back.
func (s *Sender) attempt(ctx context.Context, target string, secret []byte, ev Event) outcome {
	ctx, cancel := context.WithTimeout(ctx, attemptTimeout)
	defer cancel()

	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(ev.Body))
	if err != nil {
		return outcome{err: fmt.Errorf("cannot build request: %w", err)}
	}
	ts := strconv.FormatInt(s.now().Unix(), 10)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", userAgent)
	req.Header.Set(EventHeader, ev.Action)
	req.Header.Set(DeliveryHeader, ev.ID)
	req.Header.Set(TimestampHeader, ts)
	req.Header.Set(SignatureHeader, Sign(secret, ts, ev.Body))

	resp, err := s.Client.Do(req)
	if err != nil {
		// url.Error quotes the whole URL, whose path or query may carry a
		// token; keep what went wrong and drop the URL.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return outcome{err: fmt.Errorf("cannot reach endpoint: %w", err), retry: true}
	}
	// Read (a bounded part of) the body before closing it, so the
	// connection can be reused, and before cancel runs.
	data, _ := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	resp.Body.Close()

	out := outcome{status: resp.StatusCode, header: resp.Header}
	code := resp.StatusCode
	switch {
	case code >= 200 && code < 300:
		return out
	case code >= 500, code == http.StatusRequestTimeout, code == http.StatusTooManyRequests:
		out.err = fmt.Errorf("endpoint answered %s%s", statusText(code), snippet(data))
		out.retry = true
	default:
		out.err = fmt.Errorf("%w: %s%s", ErrRejected, statusText(code), snippet(data))
	}
	return out
}

// stopped is the error for a delivery cut short by ctx after n attempts.
func stopped(id string, n int, ctxErr, last error) error {
	if last == nil {
		return fmt.Errorf("webhook delivery %s stopped after %d attempts: %w", id, n, ctxErr)
	}
	return fmt.Errorf("webhook delivery %s stopped after %d attempts: %w (last failure: %w)", id, n, ctxErr, last)
}

// checkURL parses raw and insists on http or https with a host.
func checkURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		// url.Error quotes raw, which may carry a token; say only what is wrong.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("%w: cannot parse it: %w", ErrBadURL, err)
	}
	if u.Scheme == "" {
		return nil, fmt.Errorf("%w: no scheme; write it as https://host/path", ErrBadURL)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("%w: scheme is %q; use http or https", ErrBadURL, u.Scheme)
	}
	if u.Hostname() == "" {
		return nil, fmt.Errorf("%w: no host; write it as https://host/path", ErrBadURL)
	}
	return u, nil
}

// checkEvent refuses an event that could not be sent as it stands.
func checkEvent(ev Event) error {
	if !isToken(ev.ID) {
		return fmt.Errorf("webhook event ID %q must be non-empty printable ASCII without spaces", ev.ID)
	}
	if !isToken(ev.Action) {
		return fmt.Errorf("webhook event %s: action %q must be non-empty printable ASCII without spaces", ev.ID, ev.Action)
	}
	if len(ev.Body) > maxBody {
		return fmt.Errorf("webhook event %s: %w (%d bytes); send a smaller summary", ev.ID, ErrBodyTooLarge, len(ev.Body))
	}
	if !json.Valid(ev.Body) {
		return fmt.Errorf("webhook event %s: body is not valid JSON", ev.ID)
	}
	return nil
}

// isToken reports whether v is non-empty and safe as a header value
// without quoting: printable ASCII, no spaces.
func isToken(v string) bool {
	if v == "" {
		return false
	}
	for i := 0; i < len(v); i++ {
		if v[i] <= ' ' || v[i] > '~' {
			return false
		}
	}
	return true
}

func statusText(code int) string {
	if t := http.StatusText(code); t != "" {
		return strconv.Itoa(code) + " " + t
	}
	return strconv.Itoa(code)
}

// snippet quotes the start of a response body for an error message.
func snippet(data []byte) string {
	data = bytes.TrimSpace(data)
	if len(data) == 0 {
		return ""
	}
	if len(data) > maxSnippet {
		return fmt.Sprintf(": %q…", data[:maxSnippet])
	}
	return fmt.Sprintf(": %q", data)
}

func (s *Sender) float64() float64 {
	if s.Rand == nil {
		return rand.Float64()
	}
	s.randMu.Lock()
	defer s.randMu.Unlock()
	return s.Rand.Float64()
}

func (s *Sender) now() time.Time {
	if s.Now == nil {
		return time.Now()
	}
	return s.Now()
}

func (s *Sender) sleep(ctx context.Context, d time.Duration) error {
	if s.Sleep != nil {
		return s.Sleep(ctx, d)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func (s *Sender) logger() *slog.Logger {
	if s.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Log.With("component", "webhook")
}
