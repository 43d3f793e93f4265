package agent

import (
	"os"
	"path/filepath"
	"strings"
	"time"
)

// buildFault breaks a test build of the agent on purpose. The self-update
// tests need real agent binaries that fail in particular ways; they build
// them with
//
//	go build -ldflags "-X github.com/drover-dev/drover/agent.buildFault=NAME"
//
// where NAME is one of the faults below, or "from-file": the fault is then
// named by the file test-fault in the agent's directory, so that one broken
// build serves every case. Every other build leaves buildFault empty, and
// then none of the faults exists.
var buildFault string

// The faults a test build may carry.
const (
	faultSelfTest     = "selftest-fails" // SelfTest fails: the preflight must refuse the binary
	faultCrashAtStart = "crash-at-start" // Boot panics after counting the start: a crash loop
	faultNoServer     = "no-server"      // the agent talks to no server: its deadline must pass
	faultHang         = "hang-at-start"  // the agent hangs after Boot: the watchdog must act
	faultFromFile     = "from-file"
	faultFile         = "test-fault"
)

// faultIn is the fault a test build carries in the agent directory dir.
func faultIn(dir string) string {
	if buildFault != faultFromFile {
		return buildFault
	}
	b, _ := os.ReadFile(filepath.Join(dir, faultFile))
	return strings.TrimSpace(string(b))
}

// hangIfBuiltTo blocks forever in a test build made to hang at start.
func hangIfBuiltTo(dir string) {
	for buildFault != "" && faultIn(dir) == faultHang {
		time.Sleep(time.Hour)
	}
}
