// Package controlplane is a drover server: one member of the Raft group
// (hashicorp/raft, log on disk in raft-wal, file snapshots, traffic over
// mutual TLS) that holds the fleet's replicated state, serves the HTTPS API
// to agents and operators, stores payload blobs, and — while it is the
// leader — drives rollouts.
//
// Writes go through the leader: a follower forwards the encoded command to
// the leader's API, which stamps the time into it and proposes it to Raft.
// Reads are served by any server from its local state; blocking queries
// (?index=N&wait=D) wait on go-memdb watch channels for the exact objects
// they read.
package controlplane
