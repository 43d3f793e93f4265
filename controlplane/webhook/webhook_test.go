package webhook

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	testSecret = []byte("topsecret")
	testEvent  = Event{ID: "evt-0001", Action: "rollout.started", Body: []byte(`{"rollout":"r1"}`)}
	testEpoch  = time.Unix(1700000000, 0)
)

func TestSignKnownAnswer(t *testing.T) {
	// Computed independently: HMAC-SHA256("topsecret", "1700000000." + body).
	const want = "sha256=3e29ccab13c434b1ca256f2a9876af8269f82eb0807f50187378af99f307f952"
	if got := Sign(testSecret, "1700000000", testEvent.Body); got != want {
		t.Fatalf("Sign = %s; want %s", got, want)
	}
}

func TestVerify(t *testing.T) {
	body := testEvent.Body
	sig := Sign(testSecret, "1700000000", body)
	tests := []struct {
		name   string
		secret []byte
		ts     string
		body   []byte
		sig    string
		want   bool
	}{
		{"valid", testSecret, "1700000000", body, sig, true},
		{"changed body", testSecret, "1700000000", []byte(`{"rollout":"r2"}`), sig, false},
		{"changed timestamp", testSecret, "1700000001", body, sig, false},
		{"wrong secret", []byte("othersecret"), "1700000000", body, sig, false},
		{"empty secret", nil, "1700000000", body, Sign(nil, "1700000000", body), false},
		{"no prefix", testSecret, "1700000000", body, strings.TrimPrefix(sig, "sha256="), false},
		{"other algorithm", testSecret, "1700000000", body, "sha1=" + strings.TrimPrefix(sig, "sha256="), false},
		{"not hex", testSecret, "1700000000", body, "sha256=zz" + sig[9:], false},
		{"truncated", testSecret, "1700000000", body, sig[:len(sig)-2], false},
		{"upper-case hex", testSecret, "1700000000", body, "sha256=" + strings.ToUpper(sig[7:]), true},
		{"empty", testSecret, "1700000000", body, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Verify(tt.secret, tt.ts, tt.body, tt.sig); got != tt.want {
				t.Errorf("Verify = %v; want %v", got, tt.want)
			}
		})
	}
}

func TestDeliverSucceedsFirstTime(t *testing.T) {
	ep := serve(t, reply{status: http.StatusNoContent})
	s, rec := newSender(t)

	if err := s.Deliver(context.Background(), ep.URL, testSecret, testEvent); err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	reqs := ep.requests()
	if len(reqs) != 1 {
		t.Fatalf("got %d requests; want 1", len(reqs))
	}
	r := reqs[0]
	checks := []struct{ name, got, want string }{
		{"method", r.method, http.MethodPost},
		{"Content-Type", r.header.Get("Content-Type"), "application/json"},
		{"User-Agent", r.header.Get("User-Agent"), "drover-webhook/1"},
		{EventHeader, r.header.Get(EventHeader), testEvent.Action},
		{DeliveryHeader, r.header.Get(DeliveryHeader), testEvent.ID},
		{TimestampHeader, r.header.Get(TimestampHeader), "1700000000"},
		{"body", string(r.body), string(testEvent.Body)},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %q; want %q", c.name, c.got, c.want)
		}
	}
	if !Verify(testSecret, r.header.Get(TimestampHeader), r.body, r.header.Get(SignatureHeader)) {
		t.Errorf("signature %q does not verify", r.header.Get(SignatureHeader))
	}
	if d := rec.recorded(); len(d) != 0 {
		t.Errorf("slept %v; want no sleeps", d)
	}
}

func TestDeliverRetriesServerErrorThenSucceeds(t *testing.T) {
	ep := serve(t,
		reply{status: http.StatusInternalServerError},
		reply{status: http.StatusInternalServerError},
		reply{status: http.StatusInternalServerError},
		reply{status: http.StatusOK},
	)
	s, rec := newSender(t)
	var logs bytes.Buffer
	s.Log = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))

	if err := s.Deliver(context.Background(), ep.URL, testSecret, testEvent); err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	if n := len(ep.requests()); n != 4 {
		t.Fatalf("got %d requests; want 4", n)
	}
	delays := rec.recorded()
	checkBackoff(t, delays, s.Backoff)

	// The same seed gives the same jitter.
	ep2 := serve(t, ep.replies...)
	s2, rec2 := newSender(t)
	if err := s2.Deliver(context.Background(), ep2.URL, testSecret, testEvent); err != nil {
		t.Fatalf("second Deliver: %v", err)
	}
	if got := rec2.recorded(); !equalDurations(got, delays) {
		t.Errorf("same seed gave delays %v, then %v", delays, got)
	}

	out := logs.String()
	if strings.Contains(out, string(testSecret)) || strings.Contains(out, "sha256=") {
		t.Errorf("log reveals the secret or a signature:\n%s", out)
	}
	if strings.Count(out, "delivery attempt failed") != 3 {
		t.Errorf("want 3 failed-attempt lines in log:\n%s", out)
	}
}

func TestDeliverRetriesRetryableStatuses(t *testing.T) {
	for _, code := range []int{http.StatusRequestTimeout, http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, 599} {
		t.Run(strconv.Itoa(code), func(t *testing.T) {
			ep := serve(t, reply{status: code}, reply{status: http.StatusAccepted})
			s, _ := newSender(t)
			if err := s.Deliver(context.Background(), ep.URL, testSecret, testEvent); err != nil {
				t.Fatalf("Deliver: %v", err)
			}
			if n := len(ep.requests()); n != 2 {
				t.Errorf("got %d requests; want 2", n)
			}
		})
	}
}

func TestDeliverDoesNotRetryClientError(t *testing.T) {
	tests := []struct {
		code int
		want string
	}{
		{http.StatusBadRequest, "400 Bad Request"},
		{http.StatusUnauthorized, "401 Unauthorized"},
		{http.StatusNotFound, "404 Not Found"},
		{http.StatusUnprocessableEntity, "422 Unprocessable Entity"},
		{http.StatusNotModified, "304 Not Modified"},
	}
	for _, tt := range tests {
		t.Run(strconv.Itoa(tt.code), func(t *testing.T) {
			ep := serve(t, reply{status: tt.code, body: "signature mismatch"}, reply{status: http.StatusOK})
			s, rec := newSender(t)
			err := s.Deliver(context.Background(), ep.URL, testSecret, testEvent)
			if !errors.Is(err, ErrRejected) {
				t.Fatalf("Deliver = %v; want ErrRejected", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not name status %q", err, tt.want)
			}
			if n := len(ep.requests()); n != 1 {
				t.Errorf("got %d requests; want 1", n)
			}
			if d := rec.recorded(); len(d) != 0 {
				t.Errorf("slept %v; want no sleeps", d)
			}
		})
	}
}

func TestDeliverHonoursRetryAfter(t *testing.T) {
	tests := []struct {
		name       string
		retryAfter string
		want       time.Duration // 0: ordinary backoff
	}{
		{"seconds", "7", 7 * time.Second},
		{"zero", "0", 0},
		{"capped at Max", "3600", time.Minute},
		{"huge", "99999999999999999", time.Minute},
		{"http date falls back", "Wed, 21 Oct 2015 07:28:00 GMT", -1},
		{"negative falls back", "-5", -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ep := serve(t,
				reply{status: http.StatusTooManyRequests, header: http.Header{"Retry-After": {tt.retryAfter}}},
				reply{status: http.StatusOK},
			)
			s, rec := newSender(t)
			if err := s.Deliver(context.Background(), ep.URL, testSecret, testEvent); err != nil {
				t.Fatalf("Deliver: %v", err)
			}
			got := rec.recorded()
			if len(got) != 1 {
				t.Fatalf("slept %v; want one sleep", got)
			}
			if tt.want < 0 {
				checkBackoff(t, got, s.Backoff)
			} else if got[0] != tt.want {
				t.Errorf("slept %v; want %v", got[0], tt.want)
			}
		})
	}
}

func TestDeliverGivesUpAfterAttempts(t *testing.T) {
	ep := serve(t, reply{status: http.StatusServiceUnavailable, body: "down for maintenance"})
	s, rec := newSender(t)

	err := s.Deliver(context.Background(), ep.URL, testSecret, testEvent)
	if err == nil {
		t.Fatal("Deliver succeeded; want an error")
	}
	for _, want := range []string{"after 4 attempts", "503 Service Unavailable", "down for maintenance", testEvent.ID} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
	if errors.Is(err, ErrRejected) {
		t.Errorf("error %q wraps ErrRejected; want only for non-retryable statuses", err)
	}
	if n := len(ep.requests()); n != 4 {
		t.Errorf("got %d requests; want 4", n)
	}
	checkBackoff(t, rec.recorded(), s.Backoff)
}

func TestDeliverRetriesNetworkErrors(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL + "/hooks/drover?token=hunter2"
	srv.Close() // nothing listens there now
	s, rec := newSender(t)
	var logs bytes.Buffer
	s.Log = slog.New(slog.NewTextHandler(&logs, nil))

	err := s.Deliver(context.Background(), url, testSecret, testEvent)
	if err == nil || !strings.Contains(err.Error(), "cannot reach endpoint") || !strings.Contains(err.Error(), "after 4 attempts") {
		t.Fatalf("Deliver = %v; want unreachable after 4 attempts", err)
	}
	if strings.Contains(err.Error(), "hunter2") || strings.Contains(logs.String(), "hunter2") {
		t.Errorf("error or log repeats the URL's token:\n%v\n%s", err, logs.String())
	}
	if d := rec.recorded(); len(d) != 3 {
		t.Errorf("slept %v; want 3 sleeps", d)
	}
}

func TestDeliverStopsWhenContextEnds(t *testing.T) {
	t.Run("during sleep", func(t *testing.T) {
		ep := serve(t, reply{status: http.StatusInternalServerError})
		s, _ := newSender(t)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		s.Sleep = func(ctx context.Context, d time.Duration) error {
			cancel()
			return ctx.Err()
		}
		err := s.Deliver(ctx, ep.URL, testSecret, testEvent)
		if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "after 1 attempts") {
			t.Fatalf("Deliver = %v; want canceled after 1 attempt", err)
		}
		if !strings.Contains(err.Error(), "500 Internal Server Error") {
			t.Errorf("error %q does not carry the last failure", err)
		}
		if n := len(ep.requests()); n != 1 {
			t.Errorf("got %d requests; want 1", n)
		}
	})
	t.Run("sleep ignores ctx", func(t *testing.T) {
		ep := serve(t, reply{status: http.StatusInternalServerError})
		s, _ := newSender(t)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		s.Sleep = func(context.Context, time.Duration) error { cancel(); return nil }
		if err := s.Deliver(ctx, ep.URL, testSecret, testEvent); !errors.Is(err, context.Canceled) {
			t.Fatalf("Deliver = %v; want context.Canceled", err)
		}
		if n := len(ep.requests()); n != 1 {
			t.Errorf("got %d requests; want 1", n)
		}
	})
	t.Run("during request", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			cancel() // before answering, so Deliver sees ctx end with the attempt
			w.WriteHeader(http.StatusInternalServerError)
		}))
		t.Cleanup(srv.Close)
		s, rec := newSender(t)
		s.Client = srv.Client()
		if err := s.Deliver(ctx, srv.URL, testSecret, testEvent); !errors.Is(err, context.Canceled) {
			t.Fatalf("Deliver = %v; want context.Canceled", err)
		}
		if d := rec.recorded(); len(d) != 0 {
			t.Errorf("slept %v; want no sleeps", d)
		}
	})
	t.Run("before start", func(t *testing.T) {
		ep := serve(t, reply{status: http.StatusOK})
		s, _ := newSender(t)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := s.Deliver(ctx, ep.URL, testSecret, testEvent); !errors.Is(err, context.Canceled) {
			t.Fatalf("Deliver = %v; want context.Canceled", err)
		}
		if n := len(ep.requests()); n != 0 {
			t.Errorf("got %d requests; want 0", n)
		}
	})
}

func TestDeliveryIDStableAcrossRetries(t *testing.T) {
	ep := serve(t,
		reply{status: http.StatusBadGateway},
		reply{status: http.StatusBadGateway},
		reply{status: http.StatusOK},
	)
	s, _ := newSender(t)
	now := testEpoch
	s.Now = func() time.Time { now = now.Add(90 * time.Second); return now } // only Deliver's goroutine calls it

	if err := s.Deliver(context.Background(), ep.URL, testSecret, testEvent); err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	reqs := ep.requests()
	if len(reqs) != 3 {
		t.Fatalf("got %d requests; want 3", len(reqs))
	}
	seen := map[string]bool{}
	for i, r := range reqs {
		if id := r.header.Get(DeliveryHeader); id != testEvent.ID {
			t.Errorf("attempt %d: %s = %q; want %q", i+1, DeliveryHeader, id, testEvent.ID)
		}
		ts := r.header.Get(TimestampHeader)
		if seen[ts] {
			t.Errorf("attempt %d: timestamp %s reused; want each attempt stamped afresh", i+1, ts)
		}
		seen[ts] = true
		if !Verify(testSecret, ts, r.body, r.header.Get(SignatureHeader)) {
			t.Errorf("attempt %d: signature does not verify", i+1)
		}
	}
}

func TestDeliverRefusesBadInput(t *testing.T) {
	ep := serve(t, reply{status: http.StatusOK})
	big := []byte(`"` + strings.Repeat("x", maxBody-1) + `"`) // 1 MiB + 1 byte of valid JSON
	tests := []struct {
		name     string
		url      string
		secret   []byte
		ev       Event
		noClient bool
		wantIs   error
		want     string
	}{
		{name: "ftp scheme", url: "ftp://example.com/hook", wantIs: ErrBadURL, want: `scheme is "ftp"`},
		{name: "no scheme", url: "example.com/hook", wantIs: ErrBadURL, want: "no scheme"},
		{name: "no host", url: "http:///hook", wantIs: ErrBadURL, want: "no host"},
		{name: "port only", url: "https://:8443/hook", wantIs: ErrBadURL, want: "no host"},
		{name: "opaque", url: "https:example.com", wantIs: ErrBadURL, want: "no host"},
		{name: "unparsable", url: "http://exa mple.com/?token=hunter2", wantIs: ErrBadURL, want: "cannot parse"},
		{name: "empty", url: "", wantIs: ErrBadURL},
		{name: "body over 1 MiB", ev: Event{ID: "e", Action: "a", Body: big}, wantIs: ErrBodyTooLarge},
		{name: "body not JSON", ev: Event{ID: "e", Action: "a", Body: []byte("{")}, want: "not valid JSON"},
		{name: "no ID", ev: Event{Action: "a", Body: []byte("{}")}, want: "event ID"},
		{name: "action with newline", ev: Event{ID: "e", Action: "a\r\nX-Evil: 1", Body: []byte("{}")}, want: "action"},
		{name: "empty secret", secret: []byte{}, want: "secret is empty"},
		{name: "no client", noClient: true, want: "no http.Client"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := newSender(t)
			if tt.noClient {
				s.Client = nil
			}
			url := ep.URL
			if tt.url != "" || tt.name == "empty" {
				url = tt.url
			}
			secret := testSecret
			if tt.secret != nil {
				secret = tt.secret
			}
			ev := testEvent
			if tt.ev.ID != "" || tt.ev.Action != "" {
				ev = tt.ev
			}
			err := s.Deliver(context.Background(), url, secret, ev)
			if err == nil {
				t.Fatal("Deliver succeeded; want an error")
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("Deliver = %v; want %v", err, tt.wantIs)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error %q repeats a token from the URL", err)
			}
		})
	}
	if n := len(ep.requests()); n != 0 {
		t.Errorf("got %d requests; want none", n)
	}
}

func TestBackoffDelay(t *testing.T) {
	b := Backoff{Initial: time.Second, Max: 10 * time.Second, Attempts: 8}
	tests := []struct {
		retry int
		r     float64
		want  time.Duration
	}{
		{1, 0, time.Second},
		{2, 0, 2 * time.Second},
		{3, 0, 4 * time.Second},
		{4, 0, 8 * time.Second},
		{5, 0, 10 * time.Second},
		{60, 0, 10 * time.Second},
		{1, 0.5, 900 * time.Millisecond},
		{5, 0.5, 9 * time.Second},
	}
	for _, tt := range tests {
		if got := b.delay(tt.retry, tt.r); got != tt.want {
			t.Errorf("delay(%d, %v) = %v; want %v", tt.retry, tt.r, got, tt.want)
		}
	}
	huge := Backoff{Initial: time.Hour, Max: time.Duration(1<<63 - 1), Attempts: 100}
	if got := huge.delay(100, 0); got <= 0 {
		t.Errorf("delay with huge Max = %v; want positive (no overflow)", got)
	}
}

func TestBackoffValidate(t *testing.T) {
	tests := []struct {
		b    Backoff
		want string
	}{
		{DefaultBackoff(), ""},
		{Backoff{Initial: time.Second, Max: time.Second, Attempts: 1}, ""},
		{Backoff{Initial: time.Second, Max: time.Minute}, "Attempts"},
		{Backoff{Max: time.Minute, Attempts: 3}, "Initial"},
		{Backoff{Initial: time.Minute, Max: time.Second, Attempts: 3}, "Max"},
	}
	for _, tt := range tests {
		err := tt.b.Validate()
		if (err == nil) != (tt.want == "") || (err != nil && !strings.Contains(err.Error(), tt.want)) {
			t.Errorf("%+v.Validate() = %v; want error naming %q", tt.b, err, tt.want)
		}
	}
}

func TestDeliverZeroBackoffUsesDefault(t *testing.T) {
	ep := serve(t, reply{status: http.StatusInternalServerError})
	s, rec := newSender(t)
	s.Backoff = Backoff{}
	err := s.Deliver(context.Background(), ep.URL, testSecret, testEvent)
	if err == nil || !strings.Contains(err.Error(), "after 8 attempts") {
		t.Fatalf("Deliver = %v; want failure after 8 attempts", err)
	}
	checkBackoff(t, rec.recorded(), DefaultBackoff())
}

func TestDefaultSleepHonoursContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var s Sender
	if err := s.sleep(ctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Fatalf("sleep = %v; want context.Canceled at once", err)
	}
}

func FuzzVerify(f *testing.F) {
	f.Add(testSecret, "1700000000", testEvent.Body, Sign(testSecret, "1700000000", testEvent.Body))
	f.Add([]byte{}, "", []byte{}, "")
	f.Add([]byte("k"), "1", []byte("{}"), "sha256=")
	f.Add([]byte("k"), "1", []byte("{}"), "sha256=0")
	f.Fuzz(func(t *testing.T, secret []byte, ts string, body []byte, sig string) {
		Verify(secret, ts, body, sig)
		good := Sign(secret, ts, body)
		if got := Verify(secret, ts, body, good); got != (len(secret) > 0) {
			t.Errorf("Verify(own signature) = %v with %d-byte secret", got, len(secret))
		}
		if sig != good && strings.ToLower(sig) != good && Verify(secret, ts, body, sig) {
			t.Errorf("Verify accepted %q; only %q is right", sig, good)
		}
	})
}

// newSender returns a Sender with a fixed clock, seeded jitter, a 4-attempt
// backoff, logs sent to t.Log, and a Sleep that records its delays.
func newSender(t *testing.T) (*Sender, *sleepRecorder) {
	t.Helper()
	rec := &sleepRecorder{}
	return &Sender{
		Client:  http.DefaultClient,
		Backoff: Backoff{Initial: time.Second, Max: time.Minute, Attempts: 4},
		Sleep:   rec.sleep,
		Now:     func() time.Time { return testEpoch },
		Rand:    rand.New(rand.NewPCG(1, 2)),
		Log:     slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}, rec
}

// checkBackoff checks that delays double from b.Initial, capped at b.Max,
// each less at most 20% jitter.
func checkBackoff(t *testing.T, delays []time.Duration, b Backoff) {
	t.Helper()
	if len(delays) == 0 {
		t.Fatal("no delays recorded")
	}
	base := b.Initial
	for i, d := range delays {
		lo := time.Duration(float64(base) * (1 - jitter))
		if d < lo || d > base {
			t.Errorf("delay %d = %v; want in [%v, %v]", i+1, d, lo, base)
		}
		base = min(2*base, b.Max)
	}
}

func equalDurations(a, b []time.Duration) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// sleepRecorder is a Sleep that returns at once, remembering each delay.
type sleepRecorder struct {
	mu     sync.Mutex
	delays []time.Duration
}

func (r *sleepRecorder) sleep(ctx context.Context, d time.Duration) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.delays = append(r.delays, d)
	return ctx.Err()
}

func (r *sleepRecorder) recorded() []time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]time.Duration(nil), r.delays...)
}

// reply is one scripted response from a test endpoint.
type reply struct {
	status int
	header http.Header
	body   string
}

// received is what a test endpoint saw of one request.
type received struct {
	method string
	header http.Header
	body   []byte
}

// endpoint is an httptest server that answers with scripted replies, the
// last one repeated, and records every request.
type endpoint struct {
	URL     string
	replies []reply

	mu   sync.Mutex
	reqs []received
}

func serve(t *testing.T, replies ...reply) *endpoint {
	t.Helper()
	ep := &endpoint{replies: replies}
	srv := httptest.NewServer(http.HandlerFunc(ep.handle))
	t.Cleanup(srv.Close)
	ep.URL = srv.URL + "/hooks/drover?token=hunter2"
	return ep
}

func (ep *endpoint) handle(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	ep.mu.Lock()
	ep.reqs = append(ep.reqs, received{method: r.Method, header: r.Header.Clone(), body: body})
	rep := ep.replies[min(len(ep.reqs), len(ep.replies))-1]
	ep.mu.Unlock()
	for k, v := range rep.header {
		w.Header()[k] = v
	}
	w.WriteHeader(rep.status)
	io.WriteString(w, rep.body)
}

func (ep *endpoint) requests() []received {
	ep.mu.Lock()
	defer ep.mu.Unlock()
	return append([]received(nil), ep.reqs...)
}

// testWriter sends log lines to t.Log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
