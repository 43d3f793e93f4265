package state

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/drover-dev/drover/controlplane/api"

	memdb "github.com/hashicorp/go-memdb"
)

// snapshotVersion is written first in every snapshot; Restore refuses others.
const snapshotVersion = 1

// snapshotHeader opens every snapshot.
type snapshotHeader struct {
	Version int    `json:"drover_snapshot"`
	Index   uint64 `json:"index"`
}

// record is one object in a snapshot stream.
type record struct {
	Table string          `json:"t"`
	Value json.RawMessage `json:"v"`
}

// Snapshot is a point-in-time copy of the state, cheap to take (memdb is
// immutable underneath) and written out later, off the Apply path.
type Snapshot struct {
	tx    *memdb.Txn
	index uint64
}

// Snapshot captures the current state.
func (s *Store) Snapshot() *Snapshot {
	db, _ := s.current()
	return &Snapshot{tx: db.Snapshot().Txn(false), index: s.applied.Load()}
}

// Persist streams the snapshot as JSON lines: a header, then one record per
// object, table by table in a fixed order.
func (sn *Snapshot) Persist(w io.Writer) error {
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	if err := enc.Encode(snapshotHeader{Version: snapshotVersion, Index: sn.index}); err != nil {
		return err
	}
	for _, table := range snapshotTables {
		it, err := sn.tx.Get(table, "id")
		if err != nil {
			return fmt.Errorf("cannot read table %s: %w", table, err)
		}
		for obj := it.Next(); obj != nil; obj = it.Next() {
			v, err := json.Marshal(obj)
			if err != nil {
				return fmt.Errorf("cannot encode %s object: %w", table, err)
			}
			if err := enc.Encode(record{Table: table, Value: v}); err != nil {
				return err
			}
		}
	}
	return bw.Flush()
}

// Restore replaces the whole state with a snapshot written by Persist. The
// new state is built aside and swapped in at once; blocking queries on the
// old state are woken.
func (s *Store) Restore(r io.Reader) error {
	dec := json.NewDecoder(bufio.NewReader(r))
	var header snapshotHeader
	if err := dec.Decode(&header); err != nil {
		return fmt.Errorf("cannot read snapshot header: %w", err)
	}
	if header.Version != snapshotVersion {
		return fmt.Errorf("snapshot version %d is not supported (want %d)", header.Version, snapshotVersion)
	}
	fresh := NewStore()
	tx := fresh.db.Txn(true)
	defer tx.Abort()
	for {
		var rec record
		err := dec.Decode(&rec)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("cannot read snapshot record: %w", err)
		}
		obj, err := decodeObject(rec)
		if err != nil {
			return err
		}
		if err := tx.Insert(rec.Table, obj); err != nil {
			return fmt.Errorf("cannot restore %s object: %w", rec.Table, err)
		}
	}
	tx.Commit()

	s.mu.Lock()
	old := s.abandon
	s.db, s.abandon = fresh.db, fresh.abandon
	s.applied.Store(header.Index)
	s.mu.Unlock()
	close(old)
	return nil
}

func decodeObject(rec record) (any, error) {
	var obj any
	switch rec.Table {
	case tabHosts:
		obj = new(api.Host)
	case tabTokens:
		obj = new(api.Token)
	case tabPayloads:
		obj = new(api.Payload)
	case tabTrustLog:
		obj = new(trustVersion)
	case tabReleases:
		obj = new(api.Release)
	case tabRollouts:
		obj = new(api.Rollout)
	case tabDeployments:
		obj = new(api.Deployment)
	case tabTrust:
		obj = new(api.TrustPolicy)
	case tabIdempotent:
		obj = new(idempotent)
	case tabIndex:
		obj = new(tableIndex)
	case tabWindows:
		obj = new(api.Window)
	case tabOperators:
		obj = new(api.Operator)
	case tabRevocations:
		obj = new(api.Revocation)
	case tabFreezes:
		obj = new(api.Freeze)
	case tabSettings:
		obj = new(settingsRow)
	case tabAudit:
		obj = new(auditRow)
	case tabCursors:
		obj = new(webhookCursor)
	case tabHostChanges:
		obj = new(api.HostChange)
	case tabEnvs:
		obj = new(api.Environment)
	case tabLifecycles:
		obj = new(api.Lifecycle)
	case tabJobs:
		obj = new(api.JobRun)
	default:
		return nil, fmt.Errorf("snapshot has unknown table %q", rec.Table)
	}
	if err := json.Unmarshal(rec.Value, obj); err != nil {
		return nil, fmt.Errorf("cannot decode %s object: %w", rec.Table, err)
	}
	return obj, nil
}
