package state

import (
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/drover-dev/drover/controlplane/api"

	memdb "github.com/hashicorp/go-memdb"
)

// idempotencyTTL is how long a command's idempotency key is remembered.
// Clients retry within seconds; a day leaves a wide margin.
const idempotencyTTL = 24 * time.Hour

// Store holds the state. The zero value is not usable; call NewStore.
type Store struct {
	mu sync.RWMutex // guards db and abandon, swapped by Restore
	db *memdb.MemDB
	// abandon is closed when Restore replaces the database, waking every
	// blocking query that watches the old one.
	abandon chan struct{}
	// applied is the index of the last command applied (or restored).
	applied atomic.Uint64
}

// AppliedIndex is the Raft index of the last command this store applied
// or restored. Raft's own applied index runs ahead of it while entries
// wait in Raft's apply queue.
func (s *Store) AppliedIndex() uint64 { return s.applied.Load() }

// NewStore returns an empty store.
func NewStore() *Store {
	db, err := memdb.NewMemDB(schema())
	if err != nil {
		panic(fmt.Sprintf("state: invalid schema: %v", err)) // a programming error
	}
	return &Store{db: db, abandon: make(chan struct{})}
}

func (s *Store) current() (*memdb.MemDB, chan struct{}) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.db, s.abandon
}

// read opens a read transaction and makes ws (which may be nil) watch for
// a Restore.
func (s *Store) read(ws memdb.WatchSet) *memdb.Txn {
	db, abandon := s.current()
	ws.Add(abandon)
	return db.Txn(false)
}

// Apply applies one Raft log entry at index. An entry that cannot be
// decoded means the log is corrupt or written by an incompatible version:
// Apply panics rather than let this server's state silently diverge.
func (s *Store) Apply(index uint64, data []byte) Result {
	cmd, err := DecodeCommand(data)
	if err != nil {
		panic(fmt.Sprintf("state: raft entry %d: %v", index, err))
	}
	db, _ := s.current()
	tx := db.Txn(true)
	defer tx.Abort()
	w := &writer{reader: reader{tx}, index: index, cmd: cmd}

	if cmd.Key != "" {
		if prev, _ := tx.First(tabIdempotent, "id", cmd.Key); prev != nil {
			return prev.(*idempotent).Result
		}
	}
	res := w.apply()
	res.Index = index
	if res.Err != nil {
		// A refused command changes nothing but its idempotency record.
		tx.Abort()
		tx = db.Txn(true)
		defer tx.Abort()
		w.tx = tx
	}
	if cmd.Key != "" {
		w.insert(tabIdempotent, &idempotent{Key: cmd.Key, Result: res, Time: cmd.Time})
	}
	if index%1024 == 0 {
		w.pruneIdempotent(cmd.Time.Add(-idempotencyTTL))
		w.pruneRevocations(cmd.Time)
	}
	tx.Commit()
	s.applied.Store(index)
	return res
}

// reader reads inside a transaction: the state machine's write
// transaction, or a read transaction for reviews.
type reader struct{ tx *memdb.Txn }

// writer applies one command inside one write transaction.
type writer struct {
	reader
	index uint64
	cmd   *Command
}

func (w *writer) apply() Result {
	var (
		id  string
		err *api.Error
	)
	switch w.cmd.Type {
	case CmdTokenCreate:
		err = decodeAnd(w, w.tokenCreate)
	case CmdEnroll:
		err = decodeAnd(w, w.enroll)
	case CmdTrustSet:
		err = decodeAnd(w, w.trustSet)
	case CmdPayloadRegister:
		err = decodeAnd(w, w.payloadRegister)
	case CmdReleaseCreate:
		err = decodeAnd(w, func(b ReleaseCreate) *api.Error { id, err = w.releaseCreate(b); return err })
	case CmdRolloutCreate:
		err = decodeAnd(w, func(b RolloutCreate) *api.Error { id, err = w.rolloutCreate(b); return err })
	case CmdRolloutStep:
		err = decodeAnd(w, w.rolloutStep)
	case CmdRolloutControl:
		err = decodeAnd(w, w.rolloutControl)
	case CmdAgentReport:
		err = decodeAnd(w, w.agentReport)
	case CmdInventory:
		err = decodeAnd(w, w.inventory)
	case CmdHostStatus:
		err = decodeAnd(w, w.hostStatus)
	case CmdCertIssued:
		err = decodeAnd(w, w.certIssued)
	case CmdRevoke:
		err = decodeAnd(w, w.revokeOperator)
	case CmdDecommission:
		err = decodeAnd(w, w.decommission)
	case CmdApprove:
		err = decodeAnd(w, w.approve)
	case CmdWindowSet:
		err = decodeAnd(w, w.windowSet)
	case CmdWindowDelete:
		err = decodeAnd(w, w.windowDelete)
	case CmdRolloutStart:
		err = decodeAnd(w, w.rolloutStart)
	case CmdFreezeSet:
		err = decodeAnd(w, w.freezeSet)
	case CmdFreezeDelete:
		err = decodeAnd(w, w.freezeDelete)
	case CmdSettingsSet:
		err = decodeAnd(w, w.settingsSet)
	case CmdWebhookAck:
		err = decodeAnd(w, w.webhookAck)
	case CmdEnvSet:
		err = decodeAnd(w, w.envSet)
	case CmdEnvDelete:
		err = decodeAnd(w, w.envDelete)
	case CmdLifecycleSet:
		err = decodeAnd(w, w.lifecycleSet)
	case CmdLifecycleDelete:
		err = decodeAnd(w, w.lifecycleDelete)
	case CmdJobResult:
		err = decodeAnd(w, w.jobResult)
	case CmdProvenance:
		err = decodeAnd(w, w.provenanceSet)
	default:
		panic(fmt.Sprintf("state: raft entry %d: unknown command type %d", w.index, w.cmd.Type))
	}
	return Result{ID: id, Err: err}
}

// decodeAnd decodes the command body into B and calls fn with it.
func decodeAnd[B any](w *writer, fn func(B) *api.Error) *api.Error {
	var b B
	if err := json.Unmarshal(w.cmd.Body, &b); err != nil {
		panic(fmt.Sprintf("state: raft entry %d: %s body: %v", w.index, w.cmd.Type, err))
	}
	return fn(b)
}

// insert writes obj and records the table's last index.
func (w *writer) insert(table string, obj any) {
	if err := w.tx.Insert(table, obj); err != nil {
		panic(fmt.Sprintf("state: insert into %s: %v", table, err)) // schema mismatch: a bug
	}
	if table != tabIndex {
		if err := w.tx.Insert(tabIndex, &tableIndex{Table: table, Index: w.index}); err != nil {
			panic(fmt.Sprintf("state: update index table: %v", err))
		}
	}
}

func (w reader) first(table string, id string) any {
	obj, err := w.tx.First(table, "id", id)
	if err != nil {
		panic(fmt.Sprintf("state: read %s: %v", table, err))
	}
	return obj
}

func (w *writer) meta(m *api.Meta) {
	if m.CreateIndex == 0 {
		m.CreateIndex = w.index
	}
	m.ModifyIndex = w.index
}

func (w *writer) pruneIdempotent(before time.Time) {
	it, err := w.tx.Get(tabIdempotent, "id")
	if err != nil {
		panic(err)
	}
	var old []any
	for obj := it.Next(); obj != nil; obj = it.Next() {
		if obj.(*idempotent).Time.Before(before) {
			old = append(old, obj)
		}
	}
	for _, obj := range old {
		_ = w.tx.Delete(tabIdempotent, obj)
	}
}
