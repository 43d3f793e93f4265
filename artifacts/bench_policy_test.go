package artifacts

import "testing"

// BenchmarkVerifyThreshold measures checking a manifest signed by 3 of a
// policy's 5 keys (threshold 3): what every agent does for every
// instruction of an application whose releases need several signers.
func BenchmarkVerifyThreshold(b *testing.B) {
	msg := manifestOfSize(b, 2<<10)
	var keys []string
	var sigs [][]byte
	for i := range 5 {
		k := seededKey(b, byte(10+i))
		keys = append(keys, k.line)
		if i < 3 {
			sigs = append(sigs, Sign(k.priv, msg, "release web-api"))
		}
	}
	policy := Policy{App: "web-api", Keys: keys, Threshold: 3}
	if err := policy.Verify(msg, sigs); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := policy.Verify(msg, sigs); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseManifest measures parsing and validating a 2 KiB signed
// manifest, which an agent does before it checks anything else.
func BenchmarkParseManifest(b *testing.B) {
	msg := manifestOfSize(b, 2<<10)
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseManifest(msg); err != nil {
			b.Fatal(err)
		}
	}
}
