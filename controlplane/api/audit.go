package api

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
)

// ComputeHash returns the hash of an audit entry: SHA-256 over the
// previous entry's hash and the entry's content (every field but Hash), as
// canonical JSON.
func (e AuditEntry) ComputeHash() string {
	e.Hash = ""
	b, err := json.Marshal(e)
	if err != nil {
		panic(err) // plain strings, numbers and times always encode
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// VerifyAudit checks a chain of audit entries from the first: sequence
// numbers without gaps, each entry's Prev the hash of the one before, and
// each Hash right. It names the first entry that breaks the chain.
func VerifyAudit(entries []AuditEntry) error {
	prev := ""
	for i, e := range entries {
		if e.Seq != uint64(i+1) {
			return fmt.Errorf("entry %d has sequence number %d: an entry is missing or out of place", i+1, e.Seq)
		}
		if e.Prev != prev {
			return fmt.Errorf("entry %d (%s %s) does not follow entry %d: the chain is broken", e.Seq, e.Action, e.Subject, e.Seq-1)
		}
		if e.ComputeHash() != e.Hash {
			return fmt.Errorf("entry %d (%s %s) was altered: its hash does not match its content", e.Seq, e.Action, e.Subject)
		}
		prev = e.Hash
	}
	return nil
}
