package artifacts

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"aead.dev/minisign"
)

// These tests check drover's signatures against the stock minisign tool
// (https://jedisct1.github.io/minisign/), both ways. CI installs it with
//
//	apt-get install -y minisign
//
// Without the binary they fail when CI is set and are skipped otherwise.

// requireMinisign returns the path of the minisign binary.
func requireMinisign(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("minisign")
	if err == nil {
		return bin
	}
	msg := "the minisign tool is not on PATH; install it (Debian/Ubuntu: apt-get update && apt-get install -y minisign)"
	if os.Getenv("CI") != "" {
		t.Fatalf("%s: %v", msg, err)
	}
	t.Skip(msg)
	return ""
}

// runMinisign runs the tool in dir with no input (so it can never wait
// for a password) and returns its combined output.
func runMinisign(t *testing.T, bin, dir string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	cmd.Stdin = nil
	cmd.Env = append(os.Environ(), "HOME="+dir) // never touch the real ~/.minisign
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func mustRunMinisign(t *testing.T, bin, dir string, args ...string) string {
	t.Helper()
	out, err := runMinisign(t, bin, dir, args...)
	if err != nil {
		t.Fatalf("minisign %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func sigAlgorithm(t *testing.T, sig []byte) uint16 {
	t.Helper()
	var s minisign.Signature
	if err := s.UnmarshalText(sig); err != nil {
		t.Fatalf("cannot parse signature %q: %v", sig, err)
	}
	return s.Algorithm
}

func TestMinisignToolSignsDroverVerifies(t *testing.T) {
	bin := requireMinisign(t)
	dir := t.TempDir()
	mustRunMinisign(t, bin, dir, "-G", "-W", "-p", "tool.pub", "-s", "tool.key")

	msg, err := validManifest().Canonical()
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, dir, "manifest.json", msg)
	mustRunMinisign(t, bin, dir, "-S", "-s", "tool.key", "-m", "manifest.json", "-x", "prehashed.minisig", "-t", "release web-api")
	mustRunMinisign(t, bin, dir, "-S", "-l", "-s", "tool.key", "-m", "manifest.json", "-x", "legacy.minisig", "-t", "release web-api")

	pubFile := readFile(t, filepath.Join(dir, "tool.pub"))
	pub, err := ParsePublicKey(pubFile)
	if err != nil {
		t.Fatalf("ParsePublicKey(minisign .pub) error: %v", err)
	}
	pubLine := strings.Split(strings.TrimSpace(string(pubFile)), "\n")[1]
	other := newTestKey(t)

	for _, tc := range []struct {
		file string
		alg  uint16
	}{{"prehashed.minisig", minisign.HashEdDSA}, {"legacy.minisig", minisign.EdDSA}} {
		t.Run(tc.file, func(t *testing.T) {
			sig := readFile(t, filepath.Join(dir, tc.file))
			if got := sigAlgorithm(t, sig); got != tc.alg {
				t.Fatalf("minisign made algorithm %#x; want %#x", got, tc.alg)
			}
			if err := VerifySignature(pub, msg, sig); err != nil {
				t.Errorf("VerifySignature() = %v; want nil", err)
			}
			for _, key := range []string{pubLine, string(pubFile)} {
				p := Policy{App: "web-api", Keys: []string{other.line, key}, Threshold: 1}
				if err := p.Validate(); err != nil {
					t.Fatal(err)
				}
				if err := p.Verify(msg, [][]byte{sig}); err != nil {
					t.Errorf("Policy.Verify() = %v; want nil", err)
				}
			}
			if err := VerifySignature(pub, append(bytes.Clone(msg), ' '), sig); !errors.Is(err, ErrUntrusted) {
				t.Errorf("VerifySignature() of other bytes = %v; want %v", err, ErrUntrusted)
			}
			two := Policy{App: "web-api", Keys: []string{other.line, pubLine}, Threshold: 2}
			if err := two.Verify(msg, [][]byte{sig}); !errors.Is(err, ErrUntrusted) {
				t.Errorf("2-of-2 Policy.Verify() with one signature = %v; want %v", err, ErrUntrusted)
			}
		})
	}

	t.Run("tool key loaded by drover", func(t *testing.T) {
		key, err := LoadSecretKey(filepath.Join(dir, "tool.key"), "")
		if err != nil {
			t.Fatalf("LoadSecretKey(minisign -G -W key) error: %v", err)
		}
		if !pub.Equal(key.Public()) {
			t.Fatal("loaded key does not match minisign's public key")
		}
		writeFile(t, dir, "manifest.json.minisig", Sign(key, msg, "signed by drover"))
		out := mustRunMinisign(t, bin, dir, "-V", "-H", "-p", "tool.pub", "-m", "manifest.json")
		if !strings.Contains(out, "Trusted comment: signed by drover") {
			t.Errorf("minisign -V output = %q; want the trusted comment", out)
		}
	})
}

func TestDroverSignsMinisignToolVerifies(t *testing.T) {
	bin := requireMinisign(t)
	dir := t.TempDir()
	k := newTestKey(t)
	writeFile(t, dir, "drover.pub", k.pubFile)
	writeFile(t, dir, "drover.key", k.secretFile)

	msg, err := validManifest().Canonical()
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, dir, "manifest.json", msg)
	writeFile(t, dir, "manifest.json.minisig", Sign(k.priv, msg, "release web-api@1.4.2+build.7"))

	// -H: the tool must see a prehashed signature.
	out := mustRunMinisign(t, bin, dir, "-V", "-H", "-p", "drover.pub", "-m", "manifest.json")
	if !strings.Contains(out, "Trusted comment: release web-api@1.4.2+build.7") {
		t.Errorf("minisign -V output = %q; want the trusted comment", out)
	}
	mustRunMinisign(t, bin, dir, "-V", "-P", k.line, "-m", "manifest.json")

	// The tool refuses what drover would refuse.
	writeFile(t, dir, "tampered.json", append(bytes.Clone(msg), ' '))
	writeFile(t, dir, "tampered.json.minisig", Sign(k.priv, msg, "release"))
	if out, err := runMinisign(t, bin, dir, "-V", "-p", "drover.pub", "-m", "tampered.json"); err == nil {
		t.Errorf("minisign -V accepted a signature over other bytes:\n%s", out)
	}
	other := newTestKey(t)
	writeFile(t, dir, "other.json", msg)
	writeFile(t, dir, "other.json.minisig", Sign(other.priv, msg, "release"))
	if out, err := runMinisign(t, bin, dir, "-V", "-p", "drover.pub", "-m", "other.json"); err == nil {
		t.Errorf("minisign -V accepted a signature by another key:\n%s", out)
	}
}

func TestDroverSecretKeyWorksWithMinisignTool(t *testing.T) {
	bin := requireMinisign(t)
	dir := t.TempDir()
	pubFile, secretFile, err := GenerateKey("")
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, dir, "drover.pub", pubFile)
	writeFile(t, dir, "drover.key", secretFile)
	pub, err := ParsePublicKey(pubFile)
	if err != nil {
		t.Fatal(err)
	}
	msg := []byte("payload signed by the stock tool with a drover key\n")
	writeFile(t, dir, "payload", msg)

	mustRunMinisign(t, bin, dir, "-S", "-s", "drover.key", "-m", "payload", "-t", "from the tool")
	sig := readFile(t, filepath.Join(dir, "payload.minisig"))
	if got := sigAlgorithm(t, sig); got != minisign.HashEdDSA {
		t.Errorf("minisign -S made algorithm %#x; want prehashed %#x", got, minisign.HashEdDSA)
	}
	if err := VerifySignature(pub, msg, sig); err != nil {
		t.Errorf("VerifySignature() of the tool's signature = %v; want nil", err)
	}
	mustRunMinisign(t, bin, dir, "-V", "-p", "drover.pub", "-m", "payload")

	// The tool can also recreate the public key from drover's secret key.
	out := mustRunMinisign(t, bin, dir, "-R", "-s", "drover.key", "-p", "recreated.pub")
	recreated, err := ParsePublicKey(readFile(t, filepath.Join(dir, "recreated.pub")))
	if err != nil || !recreated.Equal(pub) {
		t.Errorf("minisign -R gave a different public key (%v):\n%s", err, out)
	}
}
