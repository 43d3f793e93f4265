// Package test holds drover's integration tests: real servers (Raft on
// disk, mutual TLS) and real agents in one process, driven through the
// same API the CLI uses. Multi-process and container tests live in e2e/.
package test
