package artifacts

import (
	"bytes"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"aead.dev/minisign"
)

func writeFile(t testing.TB, dir, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestGenerateKeyUnencrypted(t *testing.T) {
	pubFile, secretFile, err := GenerateKey("")
	if err != nil {
		t.Fatalf("GenerateKey() error: %v", err)
	}
	pubLines := strings.Split(strings.TrimSuffix(string(pubFile), "\n"), "\n")
	if len(pubLines) != 2 || !strings.HasPrefix(pubLines[0], "untrusted comment: ") || !strings.HasSuffix(string(pubFile), "\n") {
		t.Errorf("public key file = %q; want a comment line and a key line, ending in a newline", pubFile)
	}
	if minisign.IsEncrypted(secretFile) {
		t.Error("secret key made without a password is encrypted")
	}
	pub, err := ParsePublicKey(pubFile)
	if err != nil {
		t.Fatalf("ParsePublicKey(pub file) error: %v", err)
	}
	dir := t.TempDir()
	path := writeFile(t, dir, "drover.key", secretFile)
	for _, password := range []string{"", "ignored for a plain key"} {
		key, err := LoadSecretKey(path, password)
		if err != nil {
			t.Fatalf("LoadSecretKey(password %q) error: %v", password, err)
		}
		if !pub.Equal(key.Public()) {
			t.Errorf("LoadSecretKey(password %q) key does not match the public key", password)
		}
		msg := []byte("hello")
		if err := VerifySignature(pub, msg, Sign(key, msg, "c")); err != nil {
			t.Errorf("signature by the loaded key does not verify: %v", err)
		}
	}

	pub2, _, err := GenerateKey("")
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(pub2, pubFile) {
		t.Error("two GenerateKey calls returned the same key")
	}
}

// TestEncryptedSecretKey is the only test that encrypts a key: minisign's
// scrypt parameters cost 1 GiB of memory per encryption or decryption.
// It takes about 10 s (85 s under -race); -short skips it.
func TestEncryptedSecretKey(t *testing.T) {
	if testing.Short() {
		t.Skip("scrypt with 1 GiB of memory, three times; skipped with -short")
	}
	const password = "correct horse battery staple"
	pubFile, secretFile, err := GenerateKey(password)
	if err != nil {
		t.Fatalf("GenerateKey(password) error: %v", err)
	}
	if !minisign.IsEncrypted(secretFile) {
		t.Fatal("secret key made with a password is not encrypted")
	}
	pub, err := ParsePublicKey(pubFile)
	if err != nil {
		t.Fatal(err)
	}
	path := writeFile(t, t.TempDir(), "drover.key", secretFile)

	_, err = LoadSecretKey(path, "")
	if !errors.Is(err, ErrBadKey) || !strings.Contains(err.Error(), "password-protected") || !strings.Contains(err.Error(), path) {
		t.Errorf("LoadSecretKey() without a password = %v; want %v saying %s is password-protected", err, ErrBadKey, path)
	}
	if _, err := LoadSecretKey(path, "wrong password"); !errors.Is(err, ErrBadKey) {
		t.Errorf("LoadSecretKey() with a wrong password = %v; want %v", err, ErrBadKey)
	}
	key, err := LoadSecretKey(path, password)
	if err != nil {
		t.Fatalf("LoadSecretKey() with the password: %v", err)
	}
	if !pub.Equal(key.Public()) {
		t.Fatal("decrypted key does not match the public key")
	}
	msg := []byte("release")
	if err := VerifySignature(pub, msg, Sign(key, msg, "c")); err != nil {
		t.Errorf("signature by the decrypted key does not verify: %v", err)
	}
}

func TestLoadSecretKeyErrors(t *testing.T) {
	dir := t.TempDir()
	k := newTestKey(t)
	tests := map[string]string{
		"missing":    filepath.Join(dir, "missing.key"),
		"empty":      writeFile(t, dir, "empty.key", nil),
		"garbage":    writeFile(t, dir, "garbage.key", []byte("untrusted comment: x\nnot base64!!\n")),
		"public key": writeFile(t, dir, "pub.key", k.pubFile),
		"truncated":  writeFile(t, dir, "short.key", k.secretFile[:len(k.secretFile)/2]),
	}
	for name, path := range tests {
		t.Run(name, func(t *testing.T) {
			if _, err := LoadSecretKey(path, ""); !errors.Is(err, ErrBadKey) {
				t.Errorf("LoadSecretKey(%s) = %v; want %v", name, err, ErrBadKey)
			}
		})
	}
}

func TestParsePublicKey(t *testing.T) {
	k := newTestKey(t)
	good := map[string]string{
		"whole file":      string(k.pubFile),
		"key line":        k.line,
		"padded line":     "  \n" + k.line + "\n\n",
		"CRLF file":       strings.ReplaceAll(string(k.pubFile), "\n", "\r\n"),
		"file no newline": strings.TrimSpace(string(k.pubFile)),
	}
	for name, in := range good {
		pub, err := ParsePublicKey([]byte(in))
		if err != nil || !pub.Equal(k.pub) {
			t.Errorf("ParsePublicKey(%s) = %v, %v; want the key", name, pub.ID(), err)
		}
	}
	bad := map[string]string{
		"empty":      "",
		"garbage":    "hello",
		"truncated":  k.line[:20],
		"secret key": string(k.secretFile),
		"bad alg":    base64.StdEncoding.EncodeToString(append([]byte("XX"), make([]byte, 40)...)),
	}
	for name, in := range bad {
		if _, err := ParsePublicKey([]byte(in)); !errors.Is(err, ErrBadKey) {
			t.Errorf("ParsePublicKey(%s) = %v; want %v", name, err, ErrBadKey)
		}
	}
}

func TestSignIsPrehashed(t *testing.T) {
	k := newTestKey(t)
	msg := []byte(`{"name":"app"}`)
	sig := Sign(k.priv, msg, "drover release app@1")

	lines := strings.Split(string(sig), "\n")
	if len(lines) != 5 || lines[4] != "" {
		t.Fatalf("signature = %q; want four lines ending in a newline", sig)
	}
	raw, err := base64.StdEncoding.DecodeString(lines[1])
	if err != nil || len(raw) < 2 || string(raw[:2]) != "ED" {
		t.Errorf("signature algorithm = %q (%v); want \"ED\" (prehashed)", raw[:min(2, len(raw))], err)
	}
	if lines[2] != "trusted comment: drover release app@1" {
		t.Errorf("trusted comment line = %q; want %q", lines[2], "trusted comment: drover release app@1")
	}
	if want := "untrusted comment: signature from drover secret key " + idHex(k.pub.ID()); lines[0] != want {
		t.Errorf("untrusted comment line = %q; want %q", lines[0], want)
	}
	var s minisign.Signature
	if err := s.UnmarshalText(sig); err != nil {
		t.Fatal(err)
	}
	if s.Algorithm != minisign.HashEdDSA || s.KeyID != k.pub.ID() {
		t.Errorf("signature algorithm %#x key %X; want %#x key %X", s.Algorithm, s.KeyID, minisign.HashEdDSA, k.pub.ID())
	}
	if err := VerifySignature(k.pub, msg, sig); err != nil {
		t.Errorf("VerifySignature() = %v; want nil", err)
	}
	if !minisign.Verify(k.pub, msg, sig) {
		t.Error("minisign.Verify() = false; want true")
	}
	r := minisign.NewReader(bytes.NewReader(msg))
	if _, err := r.Read(make([]byte, len(msg)+1)); err != nil {
		t.Fatal(err)
	}
	if !r.Verify(k.pub, sig) {
		t.Error("minisign.Reader.Verify() = false; want true")
	}
	if again := Sign(k.priv, msg, "drover release app@1"); !bytes.Equal(again, sig) {
		t.Error("Sign() is not deterministic")
	}
}

func TestVerifyLegacySignature(t *testing.T) {
	k := newTestKey(t)
	msg := []byte("legacy message")
	sig := minisign.SignWithComments(k.priv, msg, "trusted", "untrusted")
	var s minisign.Signature
	if err := s.UnmarshalText(sig); err != nil || s.Algorithm != minisign.EdDSA {
		t.Fatalf("test bug: minisign.Sign made algorithm %#x, %v", s.Algorithm, err)
	}
	if err := VerifySignature(k.pub, msg, sig); err != nil {
		t.Errorf("VerifySignature(legacy) = %v; want nil", err)
	}
	if err := VerifySignature(k.pub, []byte("other"), sig); !errors.Is(err, ErrUntrusted) {
		t.Errorf("VerifySignature(legacy, other message) = %v; want %v", err, ErrUntrusted)
	}
}

// resign re-encodes a signature after changing it.
func resign(t *testing.T, sig []byte, change func(s *minisign.Signature)) []byte {
	t.Helper()
	var s minisign.Signature
	if err := s.UnmarshalText(sig); err != nil {
		t.Fatal(err)
	}
	change(&s)
	b, err := s.MarshalText()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestVerifySignatureRejects(t *testing.T) {
	k, other := newTestKey(t), newTestKey(t)
	msg := []byte("the manifest bytes")
	sig := Sign(k.priv, msg, "trusted")
	legacy := minisign.SignWithComments(k.priv, msg, "trusted", "untrusted")
	lines := strings.SplitAfter(string(sig), "\n")

	flipChar := func(s string, i int) string {
		b := []byte(s)
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		return string(b)
	}
	tests := []struct {
		name    string
		pub     minisign.PublicKey
		msg     []byte
		sig     []byte
		message string // part of the error
	}{
		{"other message", k.pub, []byte("the manifest bytes!"), sig, "does not match"},
		{"empty message", k.pub, nil, sig, "does not match"},
		{"legacy over other message", k.pub, []byte("x"), legacy, "does not match"},
		{"other key", other.pub, msg, sig, "not by"},
		{"signed by other key", k.pub, msg, Sign(other.priv, msg, "trusted"), "not by"},
		{"key ID forged", k.pub, msg, resign(t, Sign(other.priv, msg, "trusted"), func(s *minisign.Signature) { s.KeyID = k.pub.ID() }), "does not match"},
		{"prehashed relabelled legacy", k.pub, msg, resign(t, sig, func(s *minisign.Signature) { s.Algorithm = minisign.EdDSA }), "does not match"},
		{"legacy relabelled prehashed", k.pub, msg, resign(t, legacy, func(s *minisign.Signature) { s.Algorithm = minisign.HashEdDSA }), "does not match"},
		{"trusted comment changed", k.pub, msg, resign(t, sig, func(s *minisign.Signature) { s.TrustedComment = "trusted!" }), "does not match"},
		{"signature bytes flipped", k.pub, msg, resign(t, sig, func(s *minisign.Signature) { s.Signature[5] ^= 1 }), "does not match"},
		{"comment signature flipped", k.pub, msg, resign(t, sig, func(s *minisign.Signature) { s.CommentSignature[60] ^= 0x80 }), "does not match"},
		{"comment signature zero", k.pub, msg, resign(t, sig, func(s *minisign.Signature) { s.CommentSignature = [64]byte{} }), "does not match"},
		{"garbled signature line", k.pub, msg, []byte(lines[0] + flipChar(lines[1], 40) + lines[2] + lines[3]), "does not match"},
		{"garbled comment signature line", k.pub, msg, []byte(lines[0] + lines[1] + lines[2] + flipChar(lines[3], 10)), "does not match"},
		{"truncated to half", k.pub, msg, sig[:len(sig)/2], "malformed"},
		{"truncated by one line", k.pub, msg, []byte(lines[0] + lines[1] + lines[2]), "malformed"},
		{"comment signature truncated", k.pub, msg, []byte(lines[0] + lines[1] + lines[2] + lines[3][:40]), "malformed"},
		{"empty", k.pub, msg, nil, "malformed"},
		{"public key as signature", k.pub, msg, k.pubFile, "malformed"},
		{"not base64", k.pub, msg, []byte(lines[0] + "!!!!\n" + lines[2] + lines[3]), "malformed"},
		{"no untrusted comment", k.pub, msg, []byte(lines[1] + lines[2] + lines[3] + "\n"), "malformed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := VerifySignature(tt.pub, tt.msg, tt.sig)
			if !errors.Is(err, ErrUntrusted) {
				t.Fatalf("VerifySignature() = %v; want %v", err, ErrUntrusted)
			}
			if !strings.Contains(err.Error(), tt.message) {
				t.Errorf("VerifySignature() = %q; want it to mention %q", err, tt.message)
			}
		})
	}
}
