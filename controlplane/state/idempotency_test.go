package state

import (
	"bytes"
	"reflect"
	"testing"
	"time"

	"github.com/drover-dev/drover/controlplane/api"
)

// TestIdempotentRetry applies a keyed command, then the same command with
// the same key again: the retry returns the first result, index included,
// and changes nothing.
func TestIdempotentRetry(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(h *harness)
		typ     CmdType
		body    func(h *harness) any
		wantErr api.Code // of the first application
		wantID  bool
	}{
		{name: "token create",
			typ:  CmdTokenCreate,
			body: func(h *harness) any { return tokenBody("t1", 1, nil, t0.Add(time.Hour)) }},
		{name: "enrollment",
			setup: func(h *harness) { h.must(CmdTokenCreate, tokenBody("t1", 2, nil, t0.Add(time.Hour))) },
			typ:   CmdEnroll,
			body:  func(h *harness) any { return enrollBody("t1", "h1") }},
		{name: "rollout create returns the same rollout",
			setup: func(h *harness) { h.addHosts(nil, "h1", "h2") },
			typ:   CmdRolloutCreate,
			body: func(h *harness) any {
				return RolloutCreate{Release: h.addRelease("web", "1.0.0"), Plan: plan(h.tb, "1,100%", 0)}
			},
			wantID: true},
		{name: "refused rollout step",
			setup: func(h *harness) { h.addHosts(nil, "h1") },
			typ:   CmdRolloutStep,
			body: func(h *harness) any {
				r := h.addRollout(h.addRelease("web", "1.0.0"), nil, "100%", 0)
				return h.stepBody(r, 0, "no-such-outcome", "h1")
			},
			wantErr: api.CodeInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			if tt.setup != nil {
				tt.setup(h)
			}
			body := tt.body(h)
			first := h.applyKey(tt.typ, "key-1", body)
			if got := codeOf(first); got != tt.wantErr {
				t.Fatalf("first: got code %q (%v); want %q", got, first.Err, tt.wantErr)
			}
			if got := first.ID != ""; got != tt.wantID {
				t.Errorf("first: got ID %q; want an ID: %v", first.ID, tt.wantID)
			}
			before := objects(t, h.store)
			h.index += 5 // Raft indexes only need to increase
			again := h.retryAt(h.now.Add(time.Minute), tt.typ, "key-1", body)
			if !reflect.DeepEqual(again, first) {
				t.Errorf("retry: got %+v; want the first result %+v", again, first)
			}
			if after := objects(t, h.store); !bytes.Equal(before, after) {
				t.Errorf("retry changed the state:\n%s", diffLines(before, after))
			}
		})
	}
}

// TestIdempotentRefusalIsRemembered checks that a refused keyed command is
// remembered too: retrying it after the cause went away still returns the
// refusal, and does not act.
func TestIdempotentRefusalIsRemembered(t *testing.T) {
	h := newHarness(t)
	first := h.applyKey(CmdEnroll, "enroll-h1", enrollBody("t1", "h1"))
	if got := codeOf(first); got != api.CodeForbidden {
		t.Fatalf("enroll with no token: got code %q; want %q", got, api.CodeForbidden)
	}
	h.must(CmdTokenCreate, tokenBody("t1", 1, nil, t0.Add(time.Hour)))
	again := h.retry(CmdEnroll, "enroll-h1", enrollBody("t1", "h1"))
	if !reflect.DeepEqual(again, first) {
		t.Errorf("retry: got %+v; want the first result %+v", again, first)
	}
	if _, ok := h.store.Host(nil, "h1"); ok {
		t.Errorf("host h1 exists; want the retry to do nothing")
	}
	if got := h.token("t1").UsesLeft; got != 1 {
		t.Errorf("uses left: got %d; want 1", got)
	}
	// The same body with another key is a new command.
	if res := h.applyKey(CmdEnroll, "enroll-h1-b", enrollBody("t1", "h1")); res.Err != nil {
		t.Errorf("enroll under a new key: got %v; want success", res.Err)
	}
}

// TestIdempotencyPrune checks that keys are forgotten once older than 24 h,
// and only by an entry whose index is a multiple of 1024.
func TestIdempotencyPrune(t *testing.T) {
	tests := []struct {
		name       string
		age        time.Duration // of the key when the later entry is applied
		index      uint64        // of the later entry
		wantPruned bool
	}{
		{"older than 24h at index 1024", idempotencyTTL + time.Second, 1024, true},
		{"older than 24h at index 2048", idempotencyTTL + time.Nanosecond, 2048, true},
		{"exactly 24h at index 1024", idempotencyTTL, 1024, false},
		{"23h at index 1024", 23 * time.Hour, 1024, false},
		{"older than 24h at index 1023", idempotencyTTL + time.Hour, 1023, false},
		{"older than 24h at index 1025", idempotencyTTL + time.Hour, 1025, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			keyed := tokenBody("t1", 1, nil, t0.Add(time.Hour))
			first := h.applyAt(t0, CmdTokenCreate, "k1", keyed)
			if first.Err != nil {
				t.Fatal(first.Err)
			}
			fresh := h.applyAt(t0.Add(tt.age-time.Minute), CmdTokenCreate, "k2", tokenBody("t2", 1, nil, t0.Add(time.Hour)))

			h.index = tt.index - 1
			res := h.applyAt(t0.Add(tt.age), CmdTokenCreate, "", tokenBody("t3", 1, nil, t0.Add(time.Hour)))
			if res.Err != nil {
				t.Fatal(res.Err)
			}

			// Retry past the next entries so that no retry lands on a multiple
			// of 1024 itself. A remembered key returns the first result; a
			// forgotten one runs the command again, which now collides with
			// the token it made.
			h.index += 10
			again := h.retry(CmdTokenCreate, "k1", keyed)
			wantCode := api.Code("")
			if tt.wantPruned {
				wantCode = api.CodeConflict
			}
			if got := codeOf(again); got != wantCode {
				t.Errorf("retry of the old key: got code %q (%v); want %q", got, again.Err, wantCode)
			}
			if !tt.wantPruned && again.Index != first.Index {
				t.Errorf("retry of the old key: got index %d; want %d", again.Index, first.Index)
			}
			// A younger key is always kept.
			if got := h.retry(CmdTokenCreate, "k2", tokenBody("t2", 1, nil, t0.Add(time.Hour))); !reflect.DeepEqual(got, fresh) {
				t.Errorf("retry of the recent key: got %+v; want %+v", got, fresh)
			}
		})
	}
}
