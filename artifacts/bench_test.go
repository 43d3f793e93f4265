package artifacts

import (
	"bytes"
	"fmt"
	"io"
	"testing"
)

// manifestOfSize returns a valid canonical manifest of about n bytes.
func manifestOfSize(b *testing.B, n int) []byte {
	b.Helper()
	m := validManifest()
	for i := 0; ; i++ {
		canon, err := m.Canonical()
		if err != nil {
			b.Fatal(err)
		}
		if len(canon) >= n {
			return canon
		}
		m.HealthChecks = append(m.HealthChecks, HealthCheck{
			Name:    fmt.Sprintf("check-%d", i),
			Command: []string{"curl", "-fsS", "--max-time", "5", fmt.Sprintf("http://127.0.0.1:8080/health/%d?verbose=true&deep=true&timeout=5s", i)},
		})
		if len(m.HealthChecks) == maxHealthChecks {
			b.Fatalf("cannot reach %d bytes with %d health checks", n, maxHealthChecks)
		}
	}
}

func BenchmarkVerifyRelease(b *testing.B) {
	k := seededKey(b, 1)
	msg := manifestOfSize(b, 2<<10)
	sigs := [][]byte{Sign(k.priv, msg, "release web-api")}
	policy := Policy{App: "web-api", Keys: []string{k.line}, Threshold: 1}
	if err := policy.Verify(msg, sigs); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := policy.Verify(msg, sigs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(msg)), "manifest-bytes")
}

func BenchmarkCopyVerified(b *testing.B) {
	const size = 64 << 20
	data := bytes.Repeat([]byte("drover payload \x00\xff"), size/17+1)[:size]
	digest := digestOf(data)
	b.SetBytes(size)
	b.ReportAllocs()
	for b.Loop() {
		if err := CopyVerified(io.Discard, bytes.NewReader(data), digest, size); err != nil {
			b.Fatal(err)
		}
	}
}
