package chunks

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"runtime"

	"github.com/restic/chunker"
)

// Split reads r to the end and calls fn for every chunk, in order, with its
// ref and its bytes (valid only during the call). It also returns the SHA-256
// (hex) and size of the whole stream, so a caller chunks and digests in one
// pass. An error from fn stops Split and is returned as it is; a stream of
// more than MaxChunks chunks is refused (ErrTooLarge).
//
// Finding boundaries is sequential, but the chunks' digests are not: they
// are computed on other goroutines while the next boundaries are found,
// and fn still sees the chunks in order, on the caller's goroutine.
func Split(r io.Reader, fn func(ref Ref, data []byte) error) (payloadSHA256 string, size int64, err error) {
	workers := max(1, min(4, runtime.GOMAXPROCS(0)))
	type piece struct {
		data []byte
		ref  Ref
		done chan struct{}
	}
	// order carries pieces in stream order to this goroutine; hash carries
	// them to the hashers. Both are bounded, which bounds memory.
	order := make(chan *piece, 2*workers)
	hash := make(chan *piece, 2*workers)
	stop := make(chan struct{})
	var cutErr error
	go func() {
		defer close(order)
		defer close(hash)
		c := chunker.NewWithBoundaries(r, Pol, MinSize, MaxSize)
		c.SetAverageBits(averageBits)
		buf := make([]byte, MaxSize)
		for n := 0; ; n++ {
			chunk, err := c.Next(buf)
			if errors.Is(err, io.EOF) {
				return
			}
			if err != nil {
				cutErr = fmt.Errorf("cannot read payload: %w", err)
				return
			}
			if n == MaxChunks {
				cutErr = fmt.Errorf("%w: payload has more than %d chunks", ErrTooLarge, MaxChunks)
				return
			}
			p := &piece{data: append([]byte(nil), chunk.Data...), done: make(chan struct{})}
			select {
			case order <- p:
			case <-stop:
				return
			}
			hash <- p
		}
	}()
	for range workers {
		go func() {
			for p := range hash {
				sum := sha256.Sum256(p.data)
				p.ref = Ref{SHA256: hex.EncodeToString(sum[:]), Size: int64(len(p.data))}
				close(p.done)
			}
		}()
	}
	whole := sha256.New()
	for p := range order {
		<-p.done
		whole.Write(p.data)
		size += p.ref.Size
		if err := fn(p.ref, p.data); err != nil {
			close(stop)
			for q := range order { // let the cutter and hashers finish
				<-q.done
			}
			return "", 0, err
		}
	}
	if cutErr != nil { // written before order was closed
		return "", 0, cutErr
	}
	return hex.EncodeToString(whole.Sum(nil)), size, nil
}
