package chunks

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
)

// Assemble writes the payload described by list to w, reading each chunk from
// get, and checks the whole stream's SHA-256 and size against payloadSHA256
// and size. Each chunk is checked against its ref before it is written
// (ErrCorrupt); a list that does not add up to the payload is ErrBadList.
// The whole-stream digest is known only at the end, so on error the caller
// throws away what w received.
func Assemble(w io.Writer, list List, payloadSHA256 string, size int64, get func(Ref) ([]byte, error)) error {
	if err := list.Validate(); err != nil {
		return err
	}
	if !validDigest(payloadSHA256) {
		return fmt.Errorf("%w: payload sha256 %q is not 64 lower-case hex characters", ErrBadList, payloadSHA256)
	}
	if got := list.Size(); got != size {
		return fmt.Errorf("%w: chunks add up to %d bytes, payload has %d", ErrBadList, got, size)
	}
	whole := sha256.New()
	for i, ref := range list {
		data, err := get(ref)
		if err != nil {
			return fmt.Errorf("cannot get chunk %d: %w", i, err)
		}
		if err := verify(data, ref); err != nil {
			return fmt.Errorf("chunk %d: %w", i, err)
		}
		whole.Write(data)
		if _, err := w.Write(data); err != nil {
			return fmt.Errorf("cannot write payload: %w", err)
		}
	}
	if got := hex.EncodeToString(whole.Sum(nil)); got != payloadSHA256 {
		return fmt.Errorf("%w: chunks make a payload with sha256 %s, expected %s", ErrBadList, got, payloadSHA256)
	}
	return nil
}
