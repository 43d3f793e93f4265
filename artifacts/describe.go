package artifacts

import (
	"fmt"
	"io"
	"os"

	"github.com/drover-dev/drover/artifacts/chunks"
)

// DescribePayload reads a payload file and returns what a manifest says of
// it — SHA-256, size, chunk list digest, and format (tar.gz when it starts
// with gzip's magic bytes, tar otherwise) — and its chunk list.
func DescribePayload(path string) (Payload, chunks.List, error) {
	f, err := os.Open(path)
	if err != nil {
		return Payload{}, nil, err
	}
	defer f.Close()
	magic := make([]byte, 2)
	n, _ := io.ReadFull(f, magic)
	format := FormatTar
	if n == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		format = FormatTarGz
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return Payload{}, nil, err
	}
	var list chunks.List
	sha, size, err := chunks.Split(f, func(ref chunks.Ref, _ []byte) error {
		list = append(list, ref)
		return nil
	})
	if err != nil {
		return Payload{}, nil, fmt.Errorf("cannot read payload %s: %w", path, err)
	}
	return Payload{Chunks: list.Digest(), Format: format, SHA256: sha, Size: size}, list, nil
}
