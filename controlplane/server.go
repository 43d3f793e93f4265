package controlplane

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/drover-dev/drover/controlplane/state"
	"github.com/drover-dev/drover/controlplane/webhook"
	"github.com/drover-dev/drover/deploy"
	"github.com/drover-dev/drover/pki"
)

// Options are what a server takes besides its configuration: the parts a
// test or an embedding program injects.
type Options struct {
	Logger *slog.Logger // default: discard
	Clock  deploy.Clock // default: the system clock
	// Network carries all server-to-server traffic. Default: the real one.
	Network Network
	// Registerer receives the server's metrics. Default: a new registry,
	// served at /metrics.
	Registerer prometheus.Registerer
	Gatherer   prometheus.Gatherer
	// WebhookClient sends webhooks. Default: the system's TLS roots, short
	// timeouts, no redirects.
	WebhookClient *http.Client
	// WebhookBackoff is how webhook deliveries are retried. Default:
	// webhook.DefaultBackoff().
	WebhookBackoff *webhook.Backoff
}

// Server is one running control-plane server.
type Server struct {
	cfg     *Config
	log     *slog.Logger
	clock   deploy.Clock
	store   *state.Store
	raft    *raftParts
	members *membership
	chunks  *chunkServer
	ca      *pki.CA
	caPEM   []byte
	peers   *http.Client // to other servers' APIs, with this server's certificate
	http    *http.Server
	apiLn   net.Listener
	metrics *metrics
	live    *liveness
	disk    diskWatch
	leader  *leaderWatch
	// webhookClient and webhookBackoff deliver webhooks (Options).
	webhookClient  *http.Client
	webhookBackoff webhook.Backoff
	cancel         context.CancelFunc
	wg             sync.WaitGroup
	closed         sync.Once
}

// New opens the data directory, joins the server pool, starts Raft and
// serves the API. It returns once the server is listening; forming or
// joining a cluster goes on in the background.
func New(config *Config, opts Options) (_ *Server, err error) {
	cfg := *config
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid server config: %w", err)
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Clock == nil {
		opts.Clock = deploy.SystemClock{}
	}
	if opts.Network == nil {
		opts.Network = &realNetwork{}
	}
	if opts.WebhookClient == nil {
		opts.WebhookClient = newWebhookClient()
	}
	if opts.WebhookBackoff == nil {
		b := webhook.DefaultBackoff()
		opts.WebhookBackoff = &b
	}
	if opts.Registerer == nil {
		reg := prometheus.NewRegistry()
		opts.Registerer, opts.Gatherer = reg, reg
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{cfg: &cfg, log: opts.Logger.With("server", cfg.ID), clock: opts.Clock, store: state.NewStore(),
		leader: newLeaderWatch(), cancel: cancel, webhookClient: opts.WebhookClient, webhookBackoff: *opts.WebhookBackoff}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("cannot create data directory: %w", err)
	}
	if problem := checkDisk(cfg.DataDir, 0); problem != "" {
		return nil, errors.New(problem)
	}
	certPEM, keyPEM, caPEM, err := pki.LoadKeyPair(cfg.TLS.Cert, cfg.TLS.Key, cfg.TLS.CA)
	if err != nil {
		return nil, fmt.Errorf("cannot load server certificate: %w", err)
	}
	s.caPEM = caPEM
	if s.ca, err = pki.LoadCA(cfg.CADir); err != nil {
		return nil, fmt.Errorf("cannot load cluster CA: %w", err)
	}
	gossipKey, err := LoadGossipKey(cfg.GossipKeyFile)
	if err != nil {
		return nil, err
	}
	if s.chunks, err = openChunkServer(cfg.DataDir); err != nil {
		return nil, err
	}
	apiTLS, err := pki.ServerTLS(certPEM, keyPEM, caPEM)
	if err != nil {
		return nil, err
	}
	peerServer, peerClient, err := pki.PeerTLS(certPEM, keyPEM, caPEM)
	if err != nil {
		return nil, err
	}
	// http.Transport writes to its TLS config on first use, and the Raft
	// stream layer clones peerClient concurrently: each gets its own copy.
	s.peers = &http.Client{Transport: &http.Transport{
		TLSClientConfig: peerClient.Clone(), ForceAttemptHTTP2: true, MaxIdleConnsPerHost: 16,
		DialContext: opts.Network.DialContext, TLSHandshakeTimeout: 5 * time.Second,
	}}

	raftLn, err := net.Listen("tcp", cfg.RaftAddr)
	if err != nil {
		return nil, fmt.Errorf("cannot listen for raft on %s: %w", cfg.RaftAddr, err)
	}
	var hasState bool
	s.raft, hasState, err = startRaft(&cfg, &fsm{store: s.store}, newTLSStream(raftLn, peerServer, peerClient, opts.Network), s.log)
	if err != nil {
		raftLn.Close()
		return nil, err
	}
	meta := nodeMeta{API: cfg.APIAddr, Raft: cfg.RaftAddr, Boot: hasState}
	if s.members, err = startMembership(&cfg, gossipKey, opts.Network, meta, s.log); err != nil {
		return nil, err
	}
	s.metrics = newMetrics(s, opts.Registerer, opts.Gatherer)
	s.live = newLiveness()

	if s.apiLn, err = net.Listen("tcp", cfg.APIAddr); err != nil {
		return nil, fmt.Errorf("cannot listen for the API on %s: %w", cfg.APIAddr, err)
	}
	s.http = &http.Server{
		Handler:           s.routes(),
		TLSConfig:         apiTLS,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       5 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
		BaseContext:       func(net.Listener) context.Context { return ctx },
		// Go's HTTP/2 server lets a client have only 1 MiB of request
		// bodies in flight per connection, which serializes chunk uploads
		// (and server-to-server copies) behind round trips. 16 MiB per
		// connection keeps a dozen 1 MiB chunks moving at once.
		HTTP2: &http.HTTP2Config{MaxReceiveBufferPerConnection: 16 << 20, MaxReceiveBufferPerStream: 4 << 20},
	}
	s.goRun(func() {
		// ServeTLS (not Serve over a TLS listener) so that HTTP/2 is offered:
		// agents and clients multiplex their requests over one connection
		// instead of paying a mutual-TLS handshake for each.
		if err := s.http.ServeTLS(s.apiLn, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("api server stopped", "err", err)
		}
	})
	s.goRun(func() { s.members.join(cfg.Join, ctx.Done()) })
	if !hasState {
		s.goRun(func() { s.bootstrapWhenReady(ctx) })
	}
	s.goRun(func() { s.watchLeadership(ctx) })
	s.goRun(func() { s.observeLeader(ctx) })
	s.goRun(func() { s.forwardCheckins(ctx) })
	s.goRun(func() { s.watchDisk(ctx) })
	s.goRun(func() { s.syncChunks(ctx) })
	s.log.Info("server started", "api", cfg.APIAddr, "raft", cfg.RaftAddr, "gossip", cfg.GossipAddr, "existing_state", hasState)
	return s, nil
}

func (s *Server) goRun(fn func()) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		fn()
	}()
}

// Close stops serving, stops the leader's loops and shuts Raft and gossip
// down. It does not leave the cluster: a server that stops is expected
// back. It is safe to call more than once.
func (s *Server) Close() error {
	var err error
	s.closed.Do(func() {
		s.cancel()
		if s.http != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_ = s.http.Shutdown(ctx)
			cancel()
		}
		if s.raft != nil {
			err = s.raft.close()
		}
		if s.members != nil {
			s.members.shutdown()
		}
		s.wg.Wait()
		s.log.Info("server stopped")
	})
	return err
}

// ID is the server's ID.
func (s *Server) ID() string { return s.cfg.ID }

// RaftAddr is the address Raft listens on.
func (s *Server) RaftAddr() string { return s.cfg.RaftAddr }

// APIAddr is the address the API listens on.
func (s *Server) APIAddr() string { return s.cfg.APIAddr }

// IsLeader reports whether this server is the Raft leader now.
func (s *Server) IsLeader() bool { return s.raft.raft.State() == raft.Leader }

// Store gives read access to this server's copy of the state.
func (s *Server) Store() *state.Store { return s.store }

// AppliedIndex is the last Raft index applied to this server's state.
func (s *Server) AppliedIndex() uint64 { return s.raft.raft.AppliedIndex() }

// Raft exposes the Raft node, for tests and the cluster status.
func (s *Server) Raft() *raft.Raft { return s.raft.raft }

// watchLeadership runs the leader's loops exactly while this server leads.
func (s *Server) watchLeadership(ctx context.Context) {
	var loops *leaderRun
	defer func() { loops.stop() }()
	for {
		select {
		case <-ctx.Done():
			return
		case leader := <-s.raft.raft.LeaderCh():
			loops.stop()
			loops = nil
			if !leader {
				s.log.Info("lost leadership")
				continue
			}
			s.log.Info("gained leadership")
			loops = s.startLeaderLoops(ctx)
		}
	}
}

// leaderRun is one term of leadership's background work.
type leaderRun struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// startLeaderLoops starts, after a barrier that makes this server's state
// include everything the previous leader committed, the rollout engine,
// membership reconciliation, host liveness and webhook delivery.
func (s *Server) startLeaderLoops(ctx context.Context) *leaderRun {
	lctx, cancel := context.WithCancel(ctx)
	run := &leaderRun{cancel: cancel}
	run.wg.Add(1)
	go func() {
		defer run.wg.Done()
		if err := s.raft.raft.Barrier(applyTimeout).Error(); err != nil {
			s.log.Warn("leader loops not started: barrier failed", "err", err)
			return
		}
		for _, loop := range []func(context.Context){s.runEngine, s.reconcileMembers, s.monitorLiveness, s.runWebhooks} {
			run.wg.Add(1)
			go func() {
				defer run.wg.Done()
				loop(lctx)
			}()
		}
	}()
	return run
}

// stop ends the run and waits for its loops; a nil run is already stopped.
func (r *leaderRun) stop() {
	if r != nil {
		r.cancel()
		r.wg.Wait()
	}
}
