// Package state is the control plane's replicated state machine: the
// objects (hosts, tokens, releases, rollouts, per-host deployments, trust
// policies, blobs), the commands that change them, and the reads that serve
// them, all in a hashicorp/go-memdb database.
//
// Apply is deterministic: it reads no clock and no randomness (the leader
// stamps the time into each command), iterates only in index order, and
// every object records the Raft index of its last change (ModifyIndex), which
// gives blocking "changed since N" queries for free.
//
// Concurrency: Apply, Restore and the snapshot's Persist may run at the same
// time as any number of reads; memdb gives every read a consistent snapshot.
// Apply and Restore themselves are called by Raft one at a time.
package state
