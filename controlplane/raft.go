package controlplane

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftwal "github.com/hashicorp/raft-wal"
)

// tlsStream is a raft.StreamLayer over mutual TLS: both ends must present
// a certificate of the cluster CA that names a server.
type tlsStream struct {
	net.Listener
	client *tls.Config
}

func newTLSStream(ln net.Listener, server, client *tls.Config) *tlsStream {
	return &tlsStream{Listener: tls.NewListener(ln, server), client: client}
}

// Dial opens a TLS connection to another server's Raft address.
func (s *tlsStream) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	d := &net.Dialer{Timeout: timeout}
	conn, err := tls.DialWithDialer(d, "tcp", string(addr), s.client)
	if err != nil {
		return nil, fmt.Errorf("raft dial %s: %w", addr, err)
	}
	return conn, nil
}

// raftParts are the pieces of a Raft node that must be closed together.
type raftParts struct {
	raft      *raft.Raft
	wal       *raftwal.WAL
	transport *raft.NetworkTransport
}

func (p *raftParts) close() error {
	var errs []error
	if p.raft != nil {
		errs = append(errs, p.raft.Shutdown().Error())
	}
	if p.transport != nil {
		errs = append(errs, p.transport.Close())
	}
	if p.wal != nil {
		errs = append(errs, p.wal.Close())
	}
	return errors.Join(errs...)
}

// startRaft opens the on-disk log and snapshots, and starts Raft. A server
// with no Raft state yet bootstraps the cluster from the configured peers;
// every peer doing the same with the same list is safe.
func startRaft(cfg *Config, fsm raft.FSM, stream *tlsStream, logger *slog.Logger) (*raftParts, error) {
	dir := filepath.Join(cfg.DataDir, "raft")
	if err := os.MkdirAll(filepath.Join(dir, "wal"), 0o700); err != nil {
		return nil, fmt.Errorf("cannot create raft directory: %w", err)
	}
	hlog := hclogAdapter(logger.With("component", "raft"))
	parts := &raftParts{}
	wal, err := raftwal.Open(filepath.Join(dir, "wal"), raftwal.WithLogger(hlog))
	if err != nil {
		return nil, fmt.Errorf("cannot open raft log: %w", err)
	}
	parts.wal = wal
	snaps, err := raft.NewFileSnapshotStoreWithLogger(dir, 3, hlog)
	if err != nil {
		parts.close()
		return nil, fmt.Errorf("cannot open snapshot store: %w", err)
	}
	parts.transport = raft.NewNetworkTransportWithLogger(stream, 5, 10*time.Second, hlog)

	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(cfg.ID)
	rc.Logger = hlog
	if err := raft.ValidateConfig(rc); err != nil {
		parts.close()
		return nil, fmt.Errorf("invalid raft config: %w", err)
	}
	has, err := raft.HasExistingState(wal, wal, snaps)
	if err != nil {
		parts.close()
		return nil, fmt.Errorf("cannot read raft state: %w", err)
	}
	if !has {
		var servers []raft.Server
		for _, p := range cfg.Peers {
			servers = append(servers, raft.Server{ID: raft.ServerID(p.ID), Address: raft.ServerAddress(p.RaftAddr), Suffrage: raft.Voter})
		}
		if err := raft.BootstrapCluster(rc, wal, wal, snaps, parts.transport, raft.Configuration{Servers: servers}); err != nil {
			parts.close()
			return nil, fmt.Errorf("cannot bootstrap raft: %w", err)
		}
	}
	r, err := raft.NewRaft(rc, fsm, wal, wal, snaps, parts.transport)
	if err != nil {
		parts.close()
		return nil, fmt.Errorf("cannot start raft: %w", err)
	}
	parts.raft = r
	return parts, nil
}

// hclogAdapter routes hashicorp libraries' hclog output into slog.
func hclogAdapter(logger *slog.Logger) hclog.Logger {
	l := hclog.NewInterceptLogger(&hclog.LoggerOptions{Output: io.Discard, Level: hclog.Trace})
	l.RegisterSink(slogSink{logger})
	return l
}

type slogSink struct{ logger *slog.Logger }

func (s slogSink) Accept(name string, level hclog.Level, msg string, args ...any) {
	lvl := slog.LevelInfo
	switch {
	case level <= hclog.Debug:
		lvl = slog.LevelDebug
	case level == hclog.Warn:
		lvl = slog.LevelWarn
	case level >= hclog.Error:
		lvl = slog.LevelError
	}
	s.logger.Log(context.Background(), lvl, msg, args...)
}
