// Package chunks cuts payloads into content-defined chunks (restic/chunker),
// stores them by the SHA-256 of their bytes, compressed with zstd, and puts
// payloads back together with every byte verified.
//
// Chunk boundaries depend only on the uncompressed bytes around them, so a
// new version of a payload shares most chunks with the old one and an agent
// downloads only the chunks it does not hold yet. A payload is described by
// its [List] of chunk refs; a signed manifest names the list by
// [List.Digest] and the whole payload by its SHA-256 and size, and
// [Assemble] checks all three while it writes the payload out.
package chunks

import (
	"errors"

	"github.com/restic/chunker"
)

// Pol is the fixed Rabin polynomial every drover component chunks with; it
// must never change, or deduplication across versions finds nothing. It was
// drawn once with chunker.RandomPolynomial (degree 53, irreducible).
const Pol = chunker.Pol(0x386269D54677FD)

// Limits on chunks and lists. Changing MinSize, MaxSize or averageBits moves
// every boundary, which, like changing Pol, loses all deduplication.
const (
	// MinSize is the smallest chunk Split cuts, except for a payload's last.
	MinSize = 256 << 10
	// MaxSize is the largest chunk Split cuts and any ref may name.
	MaxSize = 4 << 20
	// MaxChunks is the most chunks a list may hold: 16 GiB of MinSize chunks.
	MaxChunks = 1 << 16
	// MaxCompressedSize bounds a compressed chunk, for callers that read one
	// from the network: zstd adds a few bytes per 128 KiB block to data it
	// cannot compress, far less than this margin.
	MaxCompressedSize = MaxSize + 64<<10

	// averageBits makes the average chunk about 1 MiB past MinSize.
	averageBits = 20
)

// Errors returned by this package. Callers match them with errors.Is.
var (
	// ErrBadList: a chunk list or ref that is malformed, breaks a limit, or
	// does not describe the payload it is used with.
	ErrBadList = errors.New("bad chunk list")
	// ErrCorrupt: chunk bytes that do not decompress, or whose SHA-256 or
	// size differs from their ref.
	ErrCorrupt = errors.New("corrupt chunk")
	// ErrNotFound: a chunk the store does not hold.
	ErrNotFound = errors.New("chunk not found")
	// ErrTooLarge: more bytes or chunks than a limit allows.
	ErrTooLarge = errors.New("larger than allowed")
)
