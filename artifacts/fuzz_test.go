package artifacts

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"

	"aead.dev/minisign"
)

// normalized returns m with an empty health check list as nil: both
// encode to nothing, so they are the same manifest.
func normalized(m *Manifest) *Manifest {
	c := *m
	if len(c.HealthChecks) == 0 {
		c.HealthChecks = nil
	}
	return &c
}

func FuzzParseManifest(f *testing.F) {
	canon, err := validManifest().Canonical()
	if err != nil {
		f.Fatal(err)
	}
	minimal := validManifest()
	minimal.HealthChecks, minimal.Provenance = nil, nil
	small, _ := minimal.Canonical()
	for _, seed := range []string{
		string(canon),
		string(small),
		string(canon) + "\n",
		string(canon) + "}",
		strings.Replace(string(small), `"name"`, `"NAME"`, 1),
		strings.Replace(string(small), `"name":"web-api"`, `"name":"web-api","name":"other"`, 1),
		strings.Replace(string(small), `"schema":1`, `"health_checks":[],"provenance":{},"schema":1`, 1),
		strings.Replace(string(canon), `"5s"`, `"1h0m0.000000001s"`, 1),
		strings.Replace(string(canon), `"ready"`, `"\ud800\u0000\ufffd"`, 1),
		`{"health_checks":null,"provenance":null}`,
		`{}`, `null`, `[]`, `""`, ``, `{"schema":1e0}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseManifest(data)
		if err != nil {
			if m != nil || !errors.Is(err, ErrInvalidManifest) {
				t.Fatalf("ParseManifest() = %v, %v; want nil and an error wrapping %v", m, err, ErrInvalidManifest)
			}
			return
		}
		if err := m.Validate(); err != nil {
			t.Fatalf("accepted manifest does not validate: %v", err)
		}
		canon, err := m.Canonical()
		if err != nil {
			t.Fatalf("Canonical() of an accepted manifest: %v", err)
		}
		m2, err := ParseManifest(canon)
		if err != nil {
			t.Fatalf("ParseManifest(Canonical()) error: %v\ninput: %q\ncanonical: %q", err, data, canon)
		}
		if !reflect.DeepEqual(normalized(m2), normalized(m)) {
			t.Fatalf("round trip changed the manifest:\n got %+v\nwant %+v", m2, m)
		}
		again, err := m2.Canonical()
		if err != nil || !bytes.Equal(again, canon) {
			t.Fatalf("Canonical() is not stable: %q then %q (%v)", canon, again, err)
		}
		if len(canon) > MaxManifestBytes {
			t.Fatalf("canonical form is %d bytes, over the parse limit", len(canon))
		}
	})
}

func FuzzVerifySignature(f *testing.F) {
	// Fixed keys, so the corpus means the same thing on every run.
	k1, k2, outsider := seededKey(f, 1), seededKey(f, 2), seededKey(f, 3)
	policy := Policy{App: "web", Keys: []string{k1.line, k2.line}, Threshold: 1}
	if err := policy.Validate(); err != nil {
		f.Fatal(err)
	}
	message := []byte(`{"name":"web","schema":1}`)
	// Seeds are real signatures, but over other bytes: none may verify.
	other := []byte(`{"name":"web","schema":2}`)
	for _, seed := range [][]byte{
		Sign(k1.priv, other, "release web"),
		Sign(k2.priv, other, ""),
		minisign.SignWithComments(k1.priv, other, "legacy", "untrusted"),
		Sign(outsider.priv, message, "outsider"),
		minisign.SignWithComments(outsider.priv, message, "outsider legacy", ""),
		[]byte("untrusted comment: x\n\ntrusted comment: \n\n"),
		[]byte("untrusted comment: \r\nRUQ=\r\ntrusted comment: \r\n=\r\n"),
		{},
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, sig []byte) {
		for _, k := range []testKey{k1, k2} {
			if err := VerifySignature(k.pub, message, sig); !errors.Is(err, ErrUntrusted) {
				t.Fatalf("VerifySignature(key %X) = %v; want %v", k.pub.ID(), err, ErrUntrusted)
			}
		}
		if err := policy.Verify(message, [][]byte{sig}); !errors.Is(err, ErrUntrusted) {
			t.Fatalf("Policy.Verify() = %v; want %v", err, ErrUntrusted)
		}
		if err := policy.Verify(message, [][]byte{sig, sig, nil}); !errors.Is(err, ErrUntrusted) {
			t.Fatalf("Policy.Verify() of the signature twice = %v; want %v", err, ErrUntrusted)
		}
	})
}
