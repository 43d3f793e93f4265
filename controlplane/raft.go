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
	"github.com/hashicorp/raft-wal/metadb"
)

// tlsStream is a raft.StreamLayer over mutual TLS: both ends must present
// a certificate of the cluster CA that names a server.
type tlsStream struct {
	net.Listener
	client  *tls.Config
	network Network
}

func newTLSStream(ln net.Listener, server, client *tls.Config, network Network) *tlsStream {
	return &tlsStream{Listener: tls.NewListener(ln, server), client: client, network: network}
}

// Dial opens a TLS connection to another server's Raft address.
func (s *tlsStream) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	raw, err := s.network.DialContext(ctx, "tcp", string(addr))
	if err != nil {
		return nil, fmt.Errorf("raft dial %s: %w", addr, err)
	}
	cfg := s.client.Clone()
	if host, _, err := net.SplitHostPort(string(addr)); err == nil {
		cfg.ServerName = host
	}
	conn := tls.Client(raw, cfg)
	if err := conn.HandshakeContext(ctx); err != nil {
		raw.Close()
		return nil, fmt.Errorf("raft dial %s: %w", addr, err)
	}
	return conn, nil
}

// raftParts are the pieces of a Raft node that must be closed together.
type raftParts struct {
	raft      *raft.Raft
	wal       *raftwal.WAL
	meta      *metadb.BoltMetaDB
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
	// raft-wal v0.4.0's Close leaves its metadata database open (and
	// locked), so a server restarted in the same process would block on
	// it: close it here, after the WAL.
	if p.meta != nil {
		errs = append(errs, p.meta.Close())
	}
	return errors.Join(errs...)
}

// startRaft opens the on-disk log and snapshots and starts Raft. It does
// not bootstrap: a new server waits until gossip shows enough servers (see
// bootstrapWhenReady) or a leader adds it. hasState reports whether the
// server already belongs to a cluster.
func startRaft(cfg *Config, fsm raft.FSM, stream *tlsStream, logger *slog.Logger) (parts *raftParts, hasState bool, err error) {
	dir := filepath.Join(cfg.DataDir, "raft")
	if err := os.MkdirAll(filepath.Join(dir, "wal"), 0o700); err != nil {
		return nil, false, fmt.Errorf("cannot create raft directory: %w", err)
	}
	hlog := hclogAdapter(logger.With("component", "raft"))
	parts = &raftParts{}
	defer func() {
		if err != nil {
			parts.close()
		}
	}()
	parts.meta = &metadb.BoltMetaDB{}
	segment := cfg.Raft.SegmentBytes
	if segment == 0 {
		segment = 64 << 20 // raft-wal's default
	}
	wal, err := raftwal.Open(filepath.Join(dir, "wal"), raftwal.WithLogger(hlog),
		raftwal.WithMetaStore(parts.meta), raftwal.WithSegmentSize(segment))
	if err != nil {
		return nil, false, fmt.Errorf("cannot open raft log: %w", err)
	}
	parts.wal = wal
	snaps, err := raft.NewFileSnapshotStoreWithLogger(dir, 3, hlog)
	if err != nil {
		return nil, false, fmt.Errorf("cannot open snapshot store: %w", err)
	}
	parts.transport = raft.NewNetworkTransportWithLogger(stream, 5, 10*time.Second, hlog)

	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(cfg.ID)
	rc.Logger = hlog
	// Let Raft take up to MaxAppendEntries proposals at once from its
	// apply channel, so that concurrent writes share one disk sync.
	rc.BatchApplyCh = true
	if cfg.Raft.SnapshotThreshold > 0 {
		rc.SnapshotThreshold = cfg.Raft.SnapshotThreshold
	}
	if cfg.Raft.TrailingLogs > 0 {
		rc.TrailingLogs = cfg.Raft.TrailingLogs
	}
	if err := raft.ValidateConfig(rc); err != nil {
		return nil, false, fmt.Errorf("invalid raft config: %w", err)
	}
	if hasState, err = raft.HasExistingState(wal, wal, snaps); err != nil {
		return nil, false, fmt.Errorf("cannot read raft state: %w", err)
	}
	if parts.raft, err = raft.NewRaft(rc, fsm, wal, wal, snaps, parts.transport); err != nil {
		return nil, false, fmt.Errorf("cannot start raft: %w", err)
	}
	return parts, hasState, nil
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
