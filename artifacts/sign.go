package artifacts

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"os"

	"aead.dev/minisign"
)

// GenerateKey makes a minisign key pair and returns the contents of the
// public key file and of the secret key file. The secret key is encrypted
// with password (scrypt, as the stock minisign tool does) unless password is
// empty.
func GenerateKey(password string) (pubFile, secretFile []byte, err error) {
	pub, priv, err := minisign.GenerateKey(rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("cannot generate key: %w", err)
	}
	if password == "" {
		secretFile, err = priv.MarshalText()
	} else {
		secretFile, err = minisign.EncryptKey(password, priv)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("cannot encode secret key: %w", err)
	}
	pubFile, _ = pub.MarshalText()
	return append(pubFile, '\n'), append(secretFile, '\n'), nil
}

// LoadSecretKey reads a minisign secret key file, decrypting it with
// password when it is encrypted.
func LoadSecretKey(path, password string) (minisign.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return minisign.PrivateKey{}, fmt.Errorf("%w: %v", ErrBadKey, err)
	}
	var key minisign.PrivateKey
	if minisign.IsEncrypted(b) {
		if password == "" {
			return key, fmt.Errorf("%w: %s is password-protected; set DROVER_KEY_PASSWORD or use --password-file", ErrBadKey, path)
		}
		key, err = minisign.DecryptKey(password, b)
	} else {
		err = key.UnmarshalText(b)
	}
	if err != nil {
		return key, fmt.Errorf("%w: %s: %v", ErrBadKey, path, err)
	}
	return key, nil
}

// ParsePublicKey reads a minisign public key, either a whole .pub file or
// just its base64 line.
func ParsePublicKey(text []byte) (minisign.PublicKey, error) {
	var key minisign.PublicKey
	if err := key.UnmarshalText(bytes.TrimSpace(text)); err != nil {
		return key, fmt.Errorf("%w: %v", ErrBadKey, err)
	}
	return key, nil
}

// Sign signs message with key in minisign's prehashed (ED) form, the
// default of current minisign releases, and returns the .minisig contents.
func Sign(key minisign.PrivateKey, message []byte, trustedComment string) []byte {
	r := minisign.NewReader(bytes.NewReader(message))
	_, _ = io.Copy(io.Discard, r) // a bytes.Reader cannot fail
	untrusted := fmt.Sprintf("signature from drover secret key %X", key.ID())
	return r.SignWithComments(key, trustedComment, untrusted)
}

// VerifySignature checks one .minisig (either variant) over message with pub.
func VerifySignature(pub minisign.PublicKey, message, sig []byte) error {
	var s minisign.Signature
	if err := s.UnmarshalText(sig); err != nil {
		return fmt.Errorf("%w: malformed signature: %v", ErrUntrusted, err)
	}
	if s.KeyID != pub.ID() {
		return fmt.Errorf("%w: signature made by key %X, not by %X", ErrUntrusted, s.KeyID, pub.ID())
	}
	if !minisign.Verify(pub, message, sig) {
		return fmt.Errorf("%w: signature by key %X does not match the data", ErrUntrusted, s.KeyID)
	}
	return nil
}
