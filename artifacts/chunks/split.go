package chunks

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"

	"github.com/restic/chunker"
)

// Split reads r to the end and calls fn for every chunk, in order, with its
// ref and its bytes (valid only during the call). It also returns the SHA-256
// (hex) and size of the whole stream, so a caller chunks and digests in one
// pass. An error from fn stops Split and is returned as it is; a stream of
// more than MaxChunks chunks is refused (ErrTooLarge).
func Split(r io.Reader, fn func(ref Ref, data []byte) error) (payloadSHA256 string, size int64, err error) {
	c := chunker.NewWithBoundaries(r, Pol, MinSize, MaxSize)
	c.SetAverageBits(averageBits)
	whole := sha256.New()
	buf := make([]byte, MaxSize)
	for n := 0; ; n++ {
		chunk, err := c.Next(buf)
		if err == io.EOF {
			break
		}
		if err != nil {
			return "", 0, fmt.Errorf("cannot read payload: %w", err)
		}
		if n == MaxChunks {
			return "", 0, fmt.Errorf("%w: payload has more than %d chunks", ErrTooLarge, MaxChunks)
		}
		sum := sha256.Sum256(chunk.Data)
		whole.Write(chunk.Data)
		size += int64(len(chunk.Data))
		if err := fn(Ref{SHA256: hex.EncodeToString(sum[:]), Size: int64(len(chunk.Data))}, chunk.Data); err != nil {
			return "", 0, err
		}
	}
	return hex.EncodeToString(whole.Sum(nil)), size, nil
}
