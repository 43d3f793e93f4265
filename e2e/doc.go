// Package e2e holds drover's multi-host fault tests: a real cluster of three
// `drover server` containers and twelve `drover-agent` containers on a
// private Docker network, driven through the drover CLI while the tests
// kill, partition, pause and restart them, then check what the cluster
// recorded against what every host really runs.
//
// The tests run only with DROVER_E2E=1 (`make e2e`), as root on a machine
// with Docker; under `make test` only the history checker's own unit tests
// run. Images are built FROM scratch with static binaries and a static
// busybox; nothing is pulled from a registry. Every container, network and
// image a run creates carries the label drover-e2e=RUN and is removed at
// the end, on failure and on Ctrl-C too. docs/e2e.md describes the
// scenarios and the invariants.
package e2e
