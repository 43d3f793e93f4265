package controlplane

import (
	"net/http"
	"time"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/drover-dev/drover/pki"
)

// metrics are the server's Prometheus collectors, all named here.
type metrics struct {
	gatherer        prometheus.Gatherer
	writes          *prometheus.HistogramVec // by command type, on the leader
	checkins        prometheus.Counter
	blocking        prometheus.Gauge
	engineRuns      prometheus.Counter
	diskOK          prometheus.Gauge
	chunkRepairs    prometheus.Counter
	webhookSent     prometheus.Counter
	webhookFailures prometheus.Counter
}

func newMetrics(s *Server, reg prometheus.Registerer, gatherer prometheus.Gatherer) *metrics {
	m := &metrics{
		gatherer: gatherer,
		writes: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "drover_raft_apply_seconds",
			Help:    "Time from proposing a command on the leader to its result, by command type.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}, []string{"command"}),
		checkins: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "drover_agent_checkins_total", Help: "Agent requests served by this server (polls, reports, inventories).",
		}),
		blocking: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "drover_blocking_queries", Help: "Blocking queries waiting on this server.",
		}),
		engineRuns: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "drover_rollout_decisions_total", Help: "Rollout engine decisions committed by this server as leader.",
		}),
		diskOK: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "drover_data_dir_ok", Help: "1 while the data directory has space and is writable; 0 while the server refuses writes.",
		}),
	}
	m.diskOK.Set(1)
	m.chunkRepairs = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "drover_chunk_repairs_total", Help: "Stored chunks found corrupt and replaced from another server.",
	})
	m.webhookSent = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "drover_webhook_events_sent_total", Help: "Rollout events a webhook acknowledged (2xx).",
	})
	m.webhookFailures = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "drover_webhook_events_failed_total", Help: "Rollout events dropped after every retry failed.",
	})
	r := s.raft.raft
	gauge := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f)
	}
	reg.MustRegister(m.writes, m.checkins, m.blocking, m.engineRuns, m.diskOK, m.chunkRepairs, m.webhookSent, m.webhookFailures,
		gauge("drover_raft_leader", "1 if this server is the Raft leader.", func() float64 { return boolFloat(r.State() == raft.Leader) }),
		gauge("drover_raft_last_index", "Last index in this server's Raft log.", func() float64 { return float64(r.LastIndex()) }),
		gauge("drover_raft_commit_index", "Raft commit index known to this server.", func() float64 { return float64(r.CommitIndex()) }),
		gauge("drover_raft_applied_index", "Last Raft index applied to this server's state.", func() float64 { return float64(r.AppliedIndex()) }),
		gauge("drover_raft_voters", "Voters in the Raft configuration.", func() float64 { return float64(s.voters()) }),
		gauge("drover_gossip_servers_alive", "Servers gossip sees alive.", func() float64 { return float64(len(s.members.alive())) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "drover_fsm_objects", Help: "Objects in the replicated state.", ConstLabels: prometheus.Labels{"table": "hosts"}},
			func() float64 { return float64(s.store.Count("hosts")) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "drover_fsm_objects", Help: "Objects in the replicated state.", ConstLabels: prometheus.Labels{"table": "deployments"}},
			func() float64 { return float64(s.store.Count("deployments")) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "drover_fsm_objects", Help: "Objects in the replicated state.", ConstLabels: prometheus.Labels{"table": "releases"}},
			func() float64 { return float64(s.store.Count("releases")) }),
	)
	return m
}

func (m *metrics) observeWrite(cmd string, start time.Time) {
	m.writes.WithLabelValues(cmd).Observe(time.Since(start).Seconds())
}

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// serveMetrics serves the Prometheus exposition to viewers (a scraper
// presents an operator certificate with the viewer role).
func (s *Server) serveMetrics(w http.ResponseWriter, r *http.Request, _ pki.Identity) error {
	promhttp.HandlerFor(s.metrics.gatherer, promhttp.HandlerOpts{}).ServeHTTP(w, r)
	return nil
}
