package chunks

import (
	"bytes"
	"encoding/binary"
	"errors"
	"slices"
	"strings"
	"testing"
)

func testList() List {
	return List{refOf([]byte("one")), refOf(bytes.Repeat([]byte("two"), 1000)), refOf([]byte("three"))}
}

func TestListEncodeDecode(t *testing.T) {
	l := testList()
	b := l.Encode()
	if len(b) != len(l)*40 {
		t.Fatalf("Encode() gave %d bytes, want %d", len(b), len(l)*40)
	}
	if want := []byte{0, 0, 0, 0, 0, 0, 0, 3}; !bytes.Equal(b[32:40], want) {
		t.Errorf("size of chunk 0 encodes as %x, want %x", b[32:40], want)
	}
	got, err := DecodeList(b)
	if err != nil || !slices.Equal(got, l) {
		t.Fatalf("DecodeList(Encode()) = %v, %v; want %v", got, err, l)
	}
	if l.Size() != 3+3000+5 {
		t.Errorf("Size() = %d, want %d", l.Size(), 3+3000+5)
	}
	if d := l.Digest(); d != digestOf(b) {
		t.Errorf("Digest() = %s, want the sha256 of Encode() %s", d, digestOf(b))
	}
	empty, err := DecodeList(nil)
	if err != nil || len(empty) != 0 || List(nil).Digest() != digestOf(nil) {
		t.Errorf("empty list: DecodeList = %v, %v; Digest = %s", empty, err, List(nil).Digest())
	}
}

func TestListDigestChanges(t *testing.T) {
	base := testList()
	tests := []struct {
		name   string
		change func(List) List
	}{
		{"digest of a chunk", func(l List) List { l[1].SHA256 = refOf([]byte("other")).SHA256; return l }},
		{"size of a chunk", func(l List) List { l[2].Size++; return l }},
		{"order", func(l List) List { l[0], l[2] = l[2], l[0]; return l }},
		{"chunk dropped", func(l List) List { return l[:2] }},
		{"chunk added", func(l List) List { return append(l, l[0]) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := tt.change(slices.Clone(base))
			if err := l.Validate(); err != nil {
				t.Fatalf("changed list is invalid: %v", err)
			}
			if l.Digest() == base.Digest() {
				t.Error("Digest() did not change")
			}
		})
	}
}

func TestListInvalid(t *testing.T) {
	ok := testList()[0]
	tests := []struct {
		name string
		list List
	}{
		{"upper-case digest", List{{strings.ToUpper(ok.SHA256), 3}}},
		{"short digest", List{{ok.SHA256[:62], 3}}},
		{"not hex", List{{strings.Repeat("g", 64), 3}}},
		{"zero size", List{{ok.SHA256, 0}}},
		{"negative size", List{{ok.SHA256, -1}}},
		{"oversized chunk", List{{ok.SHA256, MaxSize + 1}}},
		{"too many chunks", slices.Repeat(List{ok}, MaxChunks+1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.list.Validate(); !errors.Is(err, ErrBadList) {
				t.Errorf("Validate() error = %v, want ErrBadList", err)
			}
			if b, d := tt.list.Encode(), tt.list.Digest(); b != nil || d != "" {
				t.Errorf("Encode(), Digest() = %d bytes, %q; want nil, empty", len(b), d)
			}
		})
	}
	if err := slices.Repeat(List{ok}, MaxChunks).Validate(); err != nil {
		t.Errorf("Validate(MaxChunks chunks) error: %v", err)
	}
}

func TestDecodeListRefuses(t *testing.T) {
	good := testList().Encode()
	withSize := func(size uint64) []byte {
		b := bytes.Clone(good)
		binary.BigEndian.PutUint64(b[72:80], size)
		return b
	}
	tests := []struct {
		name string
		b    []byte
	}{
		{"truncated", good[:len(good)-1]},
		{"truncated ref", good[:39]},
		{"trailing bytes", append(bytes.Clone(good), 0)},
		{"zero size", withSize(0)},
		{"oversized chunk", withSize(MaxSize + 1)},
		{"size with the top bit set", withSize(1 << 63)},
		{"too many chunks", bytes.Repeat(good[:40], MaxChunks+1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if l, err := DecodeList(tt.b); !errors.Is(err, ErrBadList) {
				t.Errorf("DecodeList() = %d refs, %v; want ErrBadList", len(l), err)
			}
		})
	}
	if _, err := DecodeList(bytes.Repeat(good[:40], MaxChunks)); err != nil {
		t.Errorf("DecodeList(MaxChunks refs) error: %v", err)
	}
}
