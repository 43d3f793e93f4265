package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"
	"time"
)

// agentMetrics are the agent's counters, served in Prometheus' text format
// (written by hand: the agent stays small).
type agentMetrics struct {
	polls, pollErrors atomic.Int64
	applies           [4]atomic.Int64 // succeeded, reverted, failed, other
}

func (a *Agent) countApply(state string) {
	i := 3
	switch state {
	case "succeeded":
		i = 0
	case "reverted":
		i = 1
	case "failed":
		i = 2
	}
	a.metrics.applies[i].Add(1)
}

func (a *Agent) serveMetrics(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4")
	fmt.Fprintf(w, "# HELP drover_agent_polls_total Long polls for the desired state.\n# TYPE drover_agent_polls_total counter\ndrover_agent_polls_total %d\n", a.metrics.polls.Load())
	fmt.Fprintf(w, "# HELP drover_agent_poll_errors_total Long polls that failed.\n# TYPE drover_agent_poll_errors_total counter\ndrover_agent_poll_errors_total %d\n", a.metrics.pollErrors.Load())
	fmt.Fprintf(w, "# HELP drover_agent_downloaded_bytes_total Compressed chunk bytes downloaded.\n# TYPE drover_agent_downloaded_bytes_total counter\ndrover_agent_downloaded_bytes_total %d\n", a.downloaded.Load())
	fmt.Fprintf(w, "# HELP drover_agent_applies_total Applies finished, by result.\n# TYPE drover_agent_applies_total counter\n")
	for i, r := range []string{"succeeded", "reverted", "failed", "other"} {
		fmt.Fprintf(w, "drover_agent_applies_total{result=%q} %d\n", r, a.metrics.applies[i].Load())
	}
	last := a.contact()
	fmt.Fprintf(w, "# HELP drover_agent_last_contact_seconds Unix time a server last answered.\n# TYPE drover_agent_last_contact_seconds gauge\ndrover_agent_last_contact_seconds %d\n", last.Unix())
}

// runMetrics serves the metrics until ctx ends.
func (a *Agent) runMetrics(ctx context.Context) error {
	ln, err := net.Listen("tcp", a.cfg.MetricsAddr)
	if err != nil {
		return fmt.Errorf("cannot serve metrics on %s: %w", a.cfg.MetricsAddr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /metrics", a.serveMetrics)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.log.Warn("metrics server stopped", "err", err)
		}
	}()
	return nil
}
