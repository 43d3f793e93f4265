package pki

import (
	"bytes"
	"encoding/base64"
	"errors"
	"io"
	"strings"
	"testing"
)

// validToken is a well-formed token string for tables.
const (
	tokID     = "abcdefghij27"
	tokSecret = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"
	tokPin    = "n4bQgYhMfWWaL-qgxVrQFaO_TxsrC4Is0V1sFbDwCgg"
	validTok  = "drv1." + tokID + "." + tokSecret + "." + tokPin
)

func TestJoinTokenRoundTrip(t *testing.T) {
	ca := mustCA(t, "prod", fixedNow())
	tok, err := NewJoinToken(ca.Pin(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if tok.CAPin != ca.Pin() || len(tok.ID) != 12 || len(tok.Secret) != 43 {
		t.Fatalf("token %+v", tok)
	}
	s := tok.String()
	if !strings.HasPrefix(s, "drv1.") || strings.Contains(s, "sha256:") || len(s) > 256 {
		t.Fatalf("String() = %q", s)
	}
	got, err := ParseJoinToken(s)
	if err != nil {
		t.Fatal(err)
	}
	if got != tok {
		t.Fatalf("ParseJoinToken(String()) = %+v, want %+v", got, tok)
	}
	if !got.Matches(HashSecret(tok.Secret)) {
		t.Error("parsed token does not match its hash")
	}
	other, err := NewJoinToken(ca.Pin(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if other.ID == tok.ID || other.Secret == tok.Secret {
		t.Error("two tokens share an ID or secret")
	}
}

func TestNewJoinTokenDeterministic(t *testing.T) {
	random := make([]byte, 44)
	for i := range random {
		random[i] = byte(i)
	}
	tok, err := NewJoinToken(tokPin, bytes.NewReader(random))
	if err != nil {
		t.Fatal(err)
	}
	want := JoinToken{ID: "abcdefghijkl", Secret: base64.RawURLEncoding.EncodeToString(random[12:]), CAPin: "sha256:" + tokPin}
	if tok != want {
		t.Fatalf("token %+v, want %+v", tok, want)
	}
	// High bits of the random bytes do not escape the alphabet.
	for i := range random {
		random[i] = 0xff
	}
	tok, err = NewJoinToken("sha256:"+tokPin, bytes.NewReader(random))
	if err != nil || tok.ID != "777777777777" {
		t.Fatalf("token %+v, %v", tok, err)
	}

	tests := []struct {
		name   string
		pin    string
		random io.Reader
		err    error
	}{
		{"short random", tokPin, bytes.NewReader(random[:20]), io.ErrUnexpectedEOF},
		{"empty pin", "", nil, ErrMalformedToken},
		{"bad pin", "sha256:" + tokPin[1:], nil, ErrMalformedToken},
		{"double prefix", "sha256:sha256:" + tokPin, nil, ErrMalformedToken},
		{"other hash", "sha1:" + tokPin, nil, ErrMalformedToken},
	}
	for _, tt := range tests {
		if _, err := NewJoinToken(tt.pin, tt.random); !errors.Is(err, tt.err) {
			t.Errorf("%s: error = %v, want %v", tt.name, err, tt.err)
		}
	}
}

func TestParseJoinTokenMalformed(t *testing.T) {
	tests := []struct {
		name, in, msg string
	}{
		{"empty", "", "parts"},
		{"too long", validTok + strings.Repeat("A", 200), "longer than 256"},
		{"three parts", "drv1." + tokID + "." + tokSecret, "got 3"},
		{"five parts", validTok + ".x", "got 5"},
		{"version", "drv2." + tokID + "." + tokSecret + "." + tokPin, "drv1"},
		{"version case", "DRV1." + tokID + "." + tokSecret + "." + tokPin, "drv1"},
		{"id short", "drv1." + tokID[1:] + "." + tokSecret + "." + tokPin, "id"},
		{"id long", "drv1." + tokID + "a." + tokSecret + "." + tokPin, "id"},
		{"id upper", "drv1.ABCDEFGHIJ27." + tokSecret + "." + tokPin, "id"},
		{"id digit 1", "drv1.abcdefghij21." + tokSecret + "." + tokPin, "id"},
		{"id digit 8", "drv1.abcdefghij28." + tokSecret + "." + tokPin, "id"},
		{"empty id", "drv1.." + tokSecret + "." + tokPin, "id"},
		{"secret short", "drv1." + tokID + "." + tokSecret[1:] + "." + tokPin, "secret"},
		{"secret long", "drv1." + tokID + "." + tokSecret + "A." + tokPin, "secret"},
		{"secret std alphabet", "drv1." + tokID + ".+" + tokSecret[1:] + "." + tokPin, "secret"},
		{"secret padded", "drv1." + tokID + "." + tokSecret[1:] + "=." + tokPin, "secret"},
		{"secret newline", "drv1." + tokID + "." + tokSecret[:42] + "\n." + tokPin, "secret"},
		{"secret non-canonical", "drv1." + tokID + "." + tokSecret[:42] + "9." + tokPin, "secret"},
		{"pin short", "drv1." + tokID + "." + tokSecret + "." + tokPin[1:], "pin"},
		{"pin prefixed", "drv1." + tokID + "." + tokSecret + ".sha256:" + tokPin, "pin"},
		{"pin non-canonical", "drv1." + tokID + "." + tokSecret + "." + tokPin[:42] + "h", "pin"},
		{"trailing newline", validTok + "\n", "pin"},
		{"leading space", " " + validTok, "drv1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseJoinToken(tt.in)
			wantErr(t, err, ErrMalformedToken)
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %q does not mention %q", err, tt.msg)
			}
			if strings.Contains(err.Error(), tokSecret[:20]) {
				t.Errorf("error %q leaks the secret", err)
			}
		})
	}
	if _, err := ParseJoinToken(validTok); err != nil {
		t.Fatalf("valid token refused: %v", err)
	}
}

func TestJoinTokenMatches(t *testing.T) {
	tok, err := ParseJoinToken(validTok)
	if err != nil {
		t.Fatal(err)
	}
	hash := HashSecret(tokSecret)
	if len(hash) != 64 || hash != strings.ToLower(hash) {
		t.Fatalf("HashSecret = %q", hash)
	}
	tests := []struct {
		name string
		tok  JoinToken
		hash string
		want bool
	}{
		{"right", tok, hash, true},
		{"upper-case hash", tok, strings.ToUpper(hash), true},
		{"other secret", tok, HashSecret(tokSecret[1:] + "A"), false},
		{"short hash", tok, hash[:62], false},
		{"odd hash", tok, hash[:63], false},
		{"non-hex", tok, "zz" + hash[2:], false},
		{"empty hash", tok, "", false},
		{"hash of the secret, not the secret", tok, tokSecret, false},
		{"empty secret", JoinToken{ID: tokID}, HashSecret(""), false},
	}
	for _, tt := range tests {
		if got := tt.tok.Matches(tt.hash); got != tt.want {
			t.Errorf("%s: Matches = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func FuzzParseJoinToken(f *testing.F) {
	f.Add(validTok)
	f.Add("")
	f.Add("drv1...")
	f.Add("drv1." + tokID + "." + tokSecret + "." + tokPin[:42] + "h")
	f.Add(validTok + "\n")
	f.Add(strings.Repeat(".", 300))
	f.Fuzz(func(t *testing.T, s string) {
		tok, err := ParseJoinToken(s)
		if err != nil {
			if !errors.Is(err, ErrMalformedToken) {
				t.Fatalf("error %v does not wrap ErrMalformedToken", err)
			}
			if tok != (JoinToken{}) {
				t.Fatalf("error with non-zero token %+v", tok)
			}
			return
		}
		// Accepted tokens are canonical: exactly one spelling each.
		if got := tok.String(); got != s {
			t.Fatalf("String() = %q, input %q", got, s)
		}
		if len(s) > 256 || !strings.HasPrefix(tok.CAPin, "sha256:") {
			t.Fatalf("accepted %q as %+v", s, tok)
		}
		if again, err := ParseJoinToken(tok.String()); err != nil || again != tok {
			t.Fatalf("reparse: %+v, %v", again, err)
		}
		if _, err := NewJoinToken(tok.CAPin, bytes.NewReader(make([]byte, 44))); err != nil {
			t.Fatalf("parsed pin refused by NewJoinToken: %v", err)
		}
	})
}
