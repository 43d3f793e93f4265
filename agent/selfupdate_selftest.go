package agent

import "errors"

// SelfTest is what "drover-agent selftest" runs, and what an agent asks
// of a new binary before swapping it in: open the agent's directory as
// the agent would — its configuration, credentials, trust policies,
// journal and chunk cache — and report whether that works. It changes
// nothing in the directory, so it is safe while another agent runs there.
func SelfTest(dir string) error {
	a, err := New(Config{Dir: dir})
	if err != nil {
		return err
	}
	a.Close()
	if buildFault != "" && faultIn(dir) == faultSelfTest {
		return errors.New("this test build fails its self-test on purpose")
	}
	return nil
}
