package controlplane

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/drover-dev/drover/controlplane/api"
	"github.com/drover-dev/drover/controlplane/state"
	"github.com/drover-dev/drover/controlplane/webhook"
)

// DefaultWebhookEvents are the audit actions sent to a webhook that names
// none: a rollout's life, its failures and its back-out.
var DefaultWebhookEvents = []string{
	state.AuditRolloutStart, state.AuditWavePromoted, state.AuditRolloutPromote, state.AuditRolloutPause,
	state.AuditThreshold, state.AuditHostsReverted, state.AuditHostsTimedOut, state.AuditRolloutAbort,
	state.AuditRollbackStart, state.AuditRolledBack, state.AuditRolloutComplete,
}

// WebhookBody is the JSON a webhook receives for one event.
type WebhookBody struct {
	ID      string       `json:"id"` // the audit entry's sequence number: the same on every retry
	Event   string       `json:"event"`
	Time    time.Time    `json:"time"`
	Actor   string       `json:"actor"`
	Subject string       `json:"subject"`
	Detail  string       `json:"detail,omitempty"`
	Rollout *api.Rollout `json:"rollout,omitempty"` // the rollout as it is when sent
}

// runWebhooks delivers audit events to the webhooks in the settings while
// this server leads: one worker per webhook, each from the last entry it
// was acknowledged (a cursor kept in the replicated state), so a new
// leader resumes where the old one left off. Delivery is at least once;
// receivers drop duplicates by the event ID.
func (s *Server) runWebhooks(ctx context.Context) {
	log := s.log.With("component", "webhooks")
	workers := map[string]context.CancelFunc{} // by URL and secret
	defer func() {
		for _, cancel := range workers {
			cancel()
		}
	}()
	for ctx.Err() == nil {
		ws := memdb.NewWatchSet()
		hooks := s.store.Settings(ws).Webhooks
		want := map[string]api.Webhook{}
		for _, h := range hooks {
			want[h.URL+"\x00"+h.Secret+"\x00"+strings.Join(h.Events, ",")] = h
		}
		for key, cancel := range workers {
			if _, ok := want[key]; !ok {
				cancel()
				delete(workers, key)
			}
		}
		for key, h := range want {
			if workers[key] == nil {
				wctx, cancel := context.WithCancel(ctx)
				workers[key] = cancel
				log.Info("webhook worker started", "webhook", h.URL)
				go s.webhookWorker(wctx, log.With("webhook", h.URL), h)
			}
		}
		_ = ws.WatchCtx(ctx)
	}
}

// webhookWorker sends one webhook its events in order.
func (s *Server) webhookWorker(ctx context.Context, log *slog.Logger, h api.Webhook) {
	sender := &webhook.Sender{Client: s.webhookClient, Backoff: s.webhookBackoff, Log: log}
	events := h.Events
	if len(events) == 0 {
		events = DefaultWebhookEvents
	}
	cursor := s.store.WebhookCursor(h.URL)
	for ctx.Err() == nil {
		ws := memdb.NewWatchSet()
		entries, _ := s.store.Audit(ws, cursor, 100)
		if len(entries) == 0 {
			_ = ws.WatchCtx(ctx)
			continue
		}
		for _, e := range entries {
			if slices.Contains(events, e.Action) {
				err := sender.Deliver(ctx, h.URL, []byte(h.Secret), webhook.Event{ID: strconv.FormatUint(e.Seq, 10), Action: e.Action, Body: s.webhookBody(e)})
				if ctx.Err() != nil {
					return
				}
				if err != nil {
					s.metrics.webhookFailures.Inc()
					log.Warn("webhook event dropped after retries", "event", e.Action, "seq", e.Seq, "err", err)
				} else {
					s.metrics.webhookSent.Inc()
				}
			}
			cursor = e.Seq
		}
		// One acknowledgement per batch: a new leader resends at most one
		// batch, which receivers drop by ID.
		cmd, err := state.NewCommand(state.CmdWebhookAck, "webhooks@"+s.cfg.ID, "", state.WebhookAck{URL: h.URL, Seq: cursor})
		if err == nil && s.IsLeader() {
			if _, err := s.applyLocal(cmd); err != nil {
				log.Warn("cannot record webhook progress", "err", err)
			}
		}
	}
}

func (s *Server) webhookBody(e api.AuditEntry) []byte {
	body := WebhookBody{ID: strconv.FormatUint(e.Seq, 10), Event: e.Action, Time: e.Time, Actor: e.Actor, Subject: e.Subject, Detail: e.Detail}
	if r, ok := s.store.Rollout(nil, e.Subject); ok {
		rc := *r
		rc.Gates = nil // keep the body small; the API has the rest
		body.Rollout = &rc
	}
	b, err := json.Marshal(body)
	if err != nil {
		panic(err) // plain data always encodes
	}
	return b
}

// newWebhookClient is the HTTP client for webhooks: the system's roots,
// short timeouts, no redirects (a redirect could lead the signed body
// somewhere else).
func newWebhookClient() *http.Client {
	return &http.Client{
		Timeout:       15 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Transport: &http.Transport{
			Proxy: http.ProxyFromEnvironment, TLSHandshakeTimeout: 10 * time.Second,
			ResponseHeaderTimeout: 10 * time.Second, MaxIdleConnsPerHost: 2, IdleConnTimeout: time.Minute,
		},
	}
}
