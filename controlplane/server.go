package controlplane

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/drover-dev/drover/artifacts"
	"github.com/drover-dev/drover/controlplane/state"
	"github.com/drover-dev/drover/deploy"
	"github.com/drover-dev/drover/pki"
)

// Options are what a server takes besides its configuration: the parts a
// test or an embedding program injects.
type Options struct {
	Logger *slog.Logger // default: discard
	Clock  deploy.Clock // default: the system clock
	// APIListener and RaftListener, when set, are used instead of
	// listening on the configured addresses (tests pass port-0 listeners).
	APIListener  net.Listener
	RaftListener net.Listener
}

// Server is one running control-plane server.
type Server struct {
	cfg    *Config
	log    *slog.Logger
	clock  deploy.Clock
	store  *state.Store
	raft   *raftParts
	blobs  *artifacts.BlobStore
	ca     *pki.CA
	caPEM  []byte
	peers  *http.Client // to other servers' APIs, with this server's certificate
	http   *http.Server
	apiLn  net.Listener
	cancel context.CancelFunc
	wg     sync.WaitGroup
	closed sync.Once
}

// New opens the data directory, starts Raft and serves the API. It returns
// once the server is listening; the cluster may still be electing a leader.
func New(cfg *Config, opts Options) (_ *Server, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid server config: %w", err)
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Clock == nil {
		opts.Clock = deploy.SystemClock{}
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{cfg: cfg, log: opts.Logger.With("server", cfg.ID), clock: opts.Clock, store: state.NewStore(), cancel: cancel}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("cannot create data directory: %w", err)
	}
	certPEM, keyPEM, caPEM, err := pki.LoadKeyPair(cfg.TLS.Cert, cfg.TLS.Key, cfg.TLS.CA)
	if err != nil {
		return nil, fmt.Errorf("cannot load server certificate: %w", err)
	}
	s.caPEM = caPEM
	if s.ca, err = pki.LoadCA(cfg.CADir); err != nil {
		return nil, fmt.Errorf("cannot load cluster CA: %w", err)
	}
	if s.blobs, err = artifacts.OpenBlobStore(filepath.Join(cfg.DataDir, "blobs")); err != nil {
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
	s.peers = &http.Client{Transport: &http.Transport{TLSClientConfig: peerClient, ForceAttemptHTTP2: true, MaxIdleConnsPerHost: 16}}

	raftLn := opts.RaftListener
	if raftLn == nil {
		if raftLn, err = net.Listen("tcp", cfg.RaftAddr); err != nil {
			return nil, fmt.Errorf("cannot listen for raft on %s: %w", cfg.RaftAddr, err)
		}
	}
	if s.raft, err = startRaft(cfg, &fsm{store: s.store}, newTLSStream(raftLn, peerServer, peerClient), s.log); err != nil {
		raftLn.Close()
		return nil, err
	}

	s.apiLn = opts.APIListener
	if s.apiLn == nil {
		if s.apiLn, err = net.Listen("tcp", cfg.APIAddr); err != nil {
			return nil, fmt.Errorf("cannot listen for the API on %s: %w", cfg.APIAddr, err)
		}
	}
	s.http = &http.Server{
		Handler:           s.routes(),
		TLSConfig:         apiTLS,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       5 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	s.wg.Add(2)
	go func() {
		defer s.wg.Done()
		if err := s.http.Serve(tls.NewListener(s.apiLn, apiTLS)); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("api server stopped", "err", err)
		}
	}()
	go func() {
		defer s.wg.Done()
		s.watchLeadership(ctx)
	}()
	s.log.Info("server started", "api", s.apiLn.Addr().String(), "raft", raftLn.Addr().String())
	return s, nil
}

// Close stops serving, stops the rollout engine and shuts Raft down. It is
// safe to call more than once.
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
		s.wg.Wait()
		s.log.Info("server stopped")
	})
	return err
}

// ID is the server's ID.
func (s *Server) ID() string { return s.cfg.ID }

// APIAddr is the address the API listens on.
func (s *Server) APIAddr() string { return s.apiLn.Addr().String() }

// IsLeader reports whether this server is the Raft leader now.
func (s *Server) IsLeader() bool { return s.raft.raft.State() == raft.Leader }

// Store gives read access to this server's copy of the state.
func (s *Server) Store() *state.Store { return s.store }

// AppliedIndex is the last Raft index applied to this server's state.
func (s *Server) AppliedIndex() uint64 { return s.raft.raft.AppliedIndex() }

// watchLeadership runs the rollout engine exactly while this server leads.
func (s *Server) watchLeadership(ctx context.Context) {
	var engine *engineRun
	defer func() { engine.stop() }()
	for {
		select {
		case <-ctx.Done():
			return
		case leader := <-s.raft.raft.LeaderCh():
			engine.stop()
			engine = nil
			if !leader {
				s.log.Info("lost leadership")
				continue
			}
			s.log.Info("gained leadership")
			engine = s.startEngine(ctx)
		}
	}
}

// engineRun is one run of the rollout engine.
type engineRun struct {
	cancel context.CancelFunc
	done   chan struct{}
}

func (s *Server) startEngine(ctx context.Context) *engineRun {
	ectx, cancel := context.WithCancel(ctx)
	e := &engineRun{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(e.done)
		s.runEngine(ectx)
	}()
	return e
}

// stop ends the run and waits for it; a nil run is already stopped.
func (e *engineRun) stop() {
	if e != nil {
		e.cancel()
		<-e.done
	}
}

// peerURL is the HTTPS base URL of a server's API.
func peerURL(p Peer) string { return "https://" + p.APIAddr }

// serverURLs lists every server's API, for agents to fail over between.
func (s *Server) serverURLs() []string {
	out := make([]string, 0, len(s.cfg.Peers))
	for _, p := range s.cfg.Peers {
		out = append(out, peerURL(p))
	}
	return out
}
