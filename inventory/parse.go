package inventory

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"unicode/utf8"
)

// Parse decodes an inventory received from the network. It refuses input
// longer than MaxSystemBytes, input that is not valid UTF-8 (which the JSON
// decoder would otherwise silently replace), and anything but exactly one
// JSON object whose field names are the System's own, spelled exactly
// (encoding/json alone would match them case-insensitively) and each given
// once. The result is then checked with Validate and normalised.
func Parse(b []byte) (*System, error) {
	if len(b) > MaxSystemBytes {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(b), MaxSystemBytes)
	}
	if !utf8.Valid(b) {
		return nil, fmt.Errorf("%w: input at byte %d", ErrInvalidUTF8, firstInvalid(b))
	}
	var s System
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSyntax, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: data after the JSON object", ErrSyntax)
	}
	if err := checkNames(b); err != nil {
		return nil, err
	}
	if err := s.Validate(); err != nil {
		return nil, err
	}
	s.Normalize()
	return &s, nil
}

func firstInvalid(b []byte) int {
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n <= 1 {
			return i
		}
		i += n
	}
	return len(b)
}

// quoteShort quotes a key from the input for an error message, cut short so
// that a hostile key cannot make the message huge.
func quoteShort(key string) string {
	const limit = 64
	if len(key) <= limit {
		return strconv.Quote(key)
	}
	return strconv.Quote(cutUTF8(key, limit)) + "..."
}
