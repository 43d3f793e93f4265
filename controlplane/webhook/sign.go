package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// signaturePrefix names the algorithm in SignatureHeader.
const signaturePrefix = "sha256="

// Sign returns the value of SignatureHeader for one attempt: "sha256=" and
// the hex HMAC-SHA256, under secret, of timestamp + "." + body. Covering the
// timestamp lets a receiver refuse replays of old deliveries.
func Sign(secret []byte, timestamp string, body []byte) string {
	return signaturePrefix + hex.EncodeToString(mac(secret, timestamp, body))
}

// Verify reports whether sig is Sign(secret, timestamp, body), comparing in
// constant time. It fails closed: an empty secret never verifies. Verify does
// not judge the timestamp; a receiver should also reject timestamps far from
// its own clock (five minutes is usual).
func Verify(secret []byte, timestamp string, body []byte, sig string) bool {
	if len(secret) == 0 {
		return false
	}
	hexSig, ok := strings.CutPrefix(sig, signaturePrefix)
	if !ok {
		return false
	}
	got, err := hex.DecodeString(hexSig)
	if err != nil {
		return false
	}
	return hmac.Equal(got, mac(secret, timestamp, body))
}

func mac(secret []byte, timestamp string, body []byte) []byte {
	h := hmac.New(sha256.New, secret)
	h.Write([]byte(timestamp))
	h.Write([]byte{'.'})
	h.Write(body)
	return h.Sum(nil)
}
