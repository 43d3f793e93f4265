package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"github.com/drover-dev/drover/controlplane/api"
	"github.com/drover-dev/drover/pki"
)

// Steps of an apply, as the journal records them. Each is written durably
// before the agent acts on it:
//
//	downloading → verifying → staged → [waiting] → activating → probation → (done)
//	                                      activating | probation → reverting → (done)
const (
	stepDownloading = "downloading" // fetching chunks into the cache
	stepVerifying   = "verifying"   // unpacking the verified payload beside the running release
	stepStaged      = "staged"      // ready; activation may wait for a window
	stepWaiting     = "waiting"     // waiting for a maintenance window
	stepActivating  = "activating"  // switching current and running the activation hooks
	stepProbation   = "probation"   // the new release runs; its health decides
	stepReverting   = "reverting"   // switching back to the previous release
)

// maxDone bounds how many finished rollouts the journal remembers.
const maxDone = 256

// journal is the agent's durable memory.
type journal struct {
	// Active is the apply in progress, if any.
	Active *applyRecord `json:"active,omitempty"`
	// Done maps a rollout to how this host finished it, oldest first.
	Done []doneRecord `json:"done,omitempty"`
	// Outbox holds reports not yet acknowledged by a server, in order.
	Outbox []api.Report `json:"outbox,omitempty"`
	// InventoryDigest is the digest of the last inventory a server accepted.
	InventoryDigest string `json:"inventory_digest,omitempty"`
	// Halted is set, with the reason, when neither the new release nor the
	// previous one could be made healthy: the agent then leaves the host
	// alone until an operator runs drover-agent clear-halt.
	Halted string `json:"halted,omitempty"`
	// LastChecks are the results of the last round of health checks.
	LastChecks []checkResult `json:"last_checks,omitempty"`
	// SelfUpdate is the replacement of the agent's own binary, from the
	// swap until the new binary is confirmed or the old one restored; it
	// holds the boot counter (see selfupdate.go).
	SelfUpdate *selfUpdateState `json:"self_update,omitempty"`
}

// checkResult is one health check's outcome.
type checkResult struct {
	Name   string    `json:"name"`
	OK     bool      `json:"ok"`
	Output string    `json:"output,omitempty"`
	At     time.Time `json:"at"`
}

type applyRecord struct {
	Rollout  string `json:"rollout"`
	App      string `json:"app"`
	Version  string `json:"version"`
	Previous string `json:"previous"`
	Step     string `json:"step"`
	// Manifest is the verified manifest, kept to re-run its checks after
	// a crash during probation.
	Manifest []byte `json:"manifest"`
	// StartAt is when activation may begin: a random moment early in the
	// window the apply waited for, so that hosts do not all restart at once.
	StartAt time.Time `json:"start_at,omitempty"`
	// ActivatedAt is when the switch happened; probation counts from it.
	ActivatedAt time.Time `json:"activated_at,omitempty"`
	// Reason and Output say why a revert began.
	Reason string `json:"reason,omitempty"`
	Output string `json:"output,omitempty"`
	// BinarySHA256 is, for a release of the agent itself, the SHA-256 of
	// its binary as unpacked from the verified payload.
	BinarySHA256 string `json:"binary_sha256,omitempty"`
}

type doneRecord struct {
	Rollout string `json:"rollout"`
	State   string `json:"state"`
}

func loadJournal(path string) (*journal, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return &journal{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cannot read journal: %w", err)
	}
	var j journal
	if err := json.Unmarshal(b, &j); err != nil {
		return nil, fmt.Errorf("journal %s is corrupt: %w", path, err)
	}
	return &j, nil
}

// save writes the journal durably: temporary file, fsync, rename, fsync
// of the directory. Only then may the agent act on what it records.
func (j *journal) save(path string) error {
	b, err := json.MarshalIndent(j, "", "  ")
	if err != nil {
		return err
	}
	if err := pki.WriteFileAtomic(path, b, 0o600); err != nil {
		return fmt.Errorf("cannot write journal: %w", err)
	}
	return nil
}

func (j *journal) done(rollout string) (string, bool) {
	for _, d := range j.Done {
		if d.Rollout == rollout {
			return d.State, true
		}
	}
	return "", false
}

func (j *journal) finish(rollout, state string) {
	j.Active = nil
	j.Done = append(j.Done, doneRecord{Rollout: rollout, State: state})
	if len(j.Done) > maxDone {
		j.Done = j.Done[len(j.Done)-maxDone:]
	}
}
