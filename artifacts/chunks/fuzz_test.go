package chunks

import (
	"bytes"
	"testing"
)

func FuzzDecodeList(f *testing.F) {
	good := testList().Encode()
	f.Add([]byte{})
	f.Add(good)
	f.Add(good[:40])
	f.Add(good[:len(good)-1])
	f.Add(append(bytes.Clone(good), 0))
	f.Add(bytes.Repeat([]byte{0xff}, 80))
	f.Fuzz(func(t *testing.T, b []byte) {
		l, err := DecodeList(b)
		if err != nil {
			return
		}
		if err := l.Validate(); err != nil {
			t.Fatalf("DecodeList accepted a list that fails Validate: %v", err)
		}
		if again := l.Encode(); !bytes.Equal(again, b) {
			t.Fatalf("Encode(DecodeList(b)) = %x, want %x", again, b)
		}
		if l.Digest() != digestOf(b) {
			t.Fatalf("Digest() = %s, want %s", l.Digest(), digestOf(b))
		}
	})
}
