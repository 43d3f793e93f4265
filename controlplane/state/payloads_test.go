package state

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/drover-dev/drover/artifacts"
	"github.com/drover-dev/drover/artifacts/chunks"
	"github.com/drover-dev/drover/controlplane/api"
)

// TestPayloadRegister checks a payload's first registration: its chunk
// list is decoded and checked against its size, and recorded with its
// digest; the holders are deduplicated and sorted.
func TestPayloadRegister(t *testing.T) {
	d := payloadDigest("web", "1.0.0")
	list := chunkList("web@1.0.0", 600, 400)
	body := func(edit func(b *PayloadRegister)) PayloadRegister {
		b := PayloadRegister{SHA256: d, Size: 1000, Format: artifacts.FormatTar, List: list.Encode(), Holders: []string{"s1"}}
		if edit != nil {
			edit(&b)
		}
		return b
	}
	tooBig := chunks.List{{SHA256: sha("big chunk"), Size: chunks.MaxSize}}.Encode()
	tooBig[len(tooBig)-1]++ // one byte over the largest chunk size
	tests := []struct {
		name        string
		body        PayloadRegister
		want        api.Code
		wantMsg     string // part of the error message
		wantHolders []string
	}{
		{name: "tar", body: body(nil), wantHolders: []string{"s1"}},
		{name: "tar.gz", body: body(func(b *PayloadRegister) { b.Format = artifacts.FormatTarGz }), wantHolders: []string{"s1"}},
		{name: "one chunk", body: body(func(b *PayloadRegister) { b.List = chunkList("one", 1000).Encode() }), wantHolders: []string{"s1"}},
		{name: "holders deduplicated and sorted",
			body: body(func(b *PayloadRegister) { b.Holders = []string{"s3", "s1", "s3", "s2"} }), wantHolders: []string{"s1", "s2", "s3"}},
		{name: "no holder yet", body: body(func(b *PayloadRegister) { b.Holders = nil }), wantHolders: []string{}},

		{name: "upper-case digest", body: body(func(b *PayloadRegister) { b.SHA256 = strings.ToUpper(d) }),
			want: api.CodeInvalid, wantMsg: "lower-case hex"},
		{name: "short digest", body: body(func(b *PayloadRegister) { b.SHA256 = d[:10] }),
			want: api.CodeInvalid, wantMsg: "64 hex characters"},
		{name: "no digest", body: body(func(b *PayloadRegister) { b.SHA256 = "" }),
			want: api.CodeInvalid, wantMsg: "64 hex characters"},
		{name: "digest that is not hex", body: body(func(b *PayloadRegister) { b.SHA256 = strings.Repeat("g", 64) }),
			want: api.CodeInvalid, wantMsg: "lower-case hex"},
		{name: "zip format", body: body(func(b *PayloadRegister) { b.Format = "zip" }),
			want: api.CodeInvalid, wantMsg: `payload format "zip"`},
		{name: "no format", body: body(func(b *PayloadRegister) { b.Format = "" }),
			want: api.CodeInvalid, wantMsg: "allowed values are tar, tar.gz"},
		{name: "format in upper case", body: body(func(b *PayloadRegister) { b.Format = "TAR" }),
			want: api.CodeInvalid, wantMsg: "allowed values are tar, tar.gz"},
		{name: "list cut short", body: body(func(b *PayloadRegister) { b.List = b.List[:len(b.List)-1] }),
			want: api.CodeInvalid, wantMsg: "not a whole number"},
		{name: "list of garbage", body: body(func(b *PayloadRegister) { b.List = []byte("not a chunk list") }),
			want: api.CodeInvalid, wantMsg: "bad chunk list"},
		{name: "list with a chunk of size 0",
			body: body(func(b *PayloadRegister) { b.List = bytes.Repeat([]byte{0}, 40) }),
			want: api.CodeInvalid, wantMsg: "size 0"},
		{name: "list with a chunk over the largest size",
			body: body(func(b *PayloadRegister) { b.List, b.Size = tooBig, chunks.MaxSize+1 }),
			want: api.CodeInvalid, wantMsg: "not within"},
		{name: "chunks add up to less", body: body(func(b *PayloadRegister) { b.Size = 1001 }),
			want: api.CodeInvalid, wantMsg: "its chunks add up to 1000 bytes, not 1001"},
		{name: "chunks add up to more", body: body(func(b *PayloadRegister) { b.Size = 999 }),
			want: api.CodeInvalid, wantMsg: "its chunks add up to 1000 bytes, not 999"},
		{name: "no list", body: body(func(b *PayloadRegister) { b.List = nil }),
			want: api.CodeInvalid, wantMsg: "add up to 0 bytes, not 1000"},
		{name: "empty list and size 0", body: body(func(b *PayloadRegister) { b.List, b.Size = nil, 0 }),
			want: api.CodeInvalid, wantMsg: "add up to 0 bytes, not 0"},
		{name: "negative size", body: body(func(b *PayloadRegister) { b.Size = -1000 }),
			want: api.CodeInvalid, wantMsg: "not -1000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			if tt.want != "" {
				res := h.noChange(CmdPayloadRegister, tt.body, tt.want)
				if res.Err != nil && !strings.Contains(res.Err.Message, tt.wantMsg) {
					t.Errorf("error: got %q; want it to contain %q", res.Err.Message, tt.wantMsg)
				}
				return
			}
			ws := memdb.NewWatchSet()
			h.store.Payloads(ws)
			res := h.must(CmdPayloadRegister, tt.body)
			p, ok := h.store.Payload(d)
			if !ok {
				t.Fatalf("payload %s not stored", d)
			}
			decoded, err := chunks.DecodeList(tt.body.List)
			if err != nil {
				t.Fatal(err)
			}
			if p.SHA256 != d || p.Size != tt.body.Size || p.Format != tt.body.Format || p.Chunks != decoded.Digest() ||
				!bytes.Equal(p.List, tt.body.List) || p.CreateIndex != res.Index || p.ModifyIndex != res.Index {
				t.Errorf("payload = %+v; want %s, %d bytes, %s, chunks %s, the list, index %d",
					p, d, tt.body.Size, tt.body.Format, decoded.Digest(), res.Index)
			}
			if !slices.Equal(p.Holders, tt.wantHolders) {
				t.Errorf("holders: got %q; want %q", p.Holders, tt.wantHolders)
			}
			all, index := h.store.Payloads(nil)
			if len(all) != 1 || all[0] != p || index != res.Index {
				t.Errorf("Payloads: got %d payloads, index %d; want this one, index %d", len(all), index, res.Index)
			}
			if !fires(ws, mustFire) {
				t.Errorf("the watch on payloads did not fire")
			}
		})
	}
}

// TestPayloadRegisterAgain checks registering a known payload again: the
// same chunk list, size and format merge the holders; anything else is a
// conflict that changes nothing.
func TestPayloadRegisterAgain(t *testing.T) {
	d := payloadDigest("web", "1.0.0")
	list := chunkList("web@1.0.0", 600, 400)
	first := PayloadRegister{SHA256: d, Size: 1000, Format: artifacts.FormatTar, List: list.Encode(), Holders: []string{"s1", "s3"}}
	again := func(edit func(b *PayloadRegister)) PayloadRegister {
		b := first
		b.Holders = nil
		edit(&b)
		return b
	}
	tests := []struct {
		name        string
		body        PayloadRegister
		want        api.Code
		wantHolders []string
	}{
		{"new holders merged in order", again(func(b *PayloadRegister) { b.Holders = []string{"s4", "s0", "s2"} }), "", []string{"s0", "s1", "s2", "s3", "s4"}},
		{"known and new holders", again(func(b *PayloadRegister) { b.Holders = []string{"s3", "s2", "s1"} }), "", []string{"s1", "s2", "s3"}},
		{"known holder again", again(func(b *PayloadRegister) { b.Holders = []string{"s1"} }), "", []string{"s1", "s3"}},
		{"no holders", again(func(b *PayloadRegister) {}), "", []string{"s1", "s3"}},
		{"another list of the same size",
			again(func(b *PayloadRegister) { b.List, b.Holders = chunkList("other", 600, 400).Encode(), []string{"s2"} }), api.CodeConflict, nil},
		{"the same chunks cut differently",
			again(func(b *PayloadRegister) { b.List = chunkList("web@1.0.0", 500, 500).Encode() }), api.CodeConflict, nil},
		{"another size",
			again(func(b *PayloadRegister) { b.List, b.Size = chunkList("web@1.0.0", 600, 400, 1).Encode(), 1001 }), api.CodeConflict, nil},
		{"another format", again(func(b *PayloadRegister) { b.Format = artifacts.FormatTarGz }), api.CodeConflict, nil},
		{"invalid besides", again(func(b *PayloadRegister) { b.Size = 1 }), api.CodeInvalid, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			created := h.must(CmdPayloadRegister, first)
			h.addHosts(nil, "h1") // so that the table index of payloads is not the last index
			if tt.want != "" {
				res := h.noChange(CmdPayloadRegister, tt.body, tt.want)
				if tt.want == api.CodeConflict && (res.Err == nil || !strings.Contains(res.Err.Message, "is recorded with another chunk list, size or format")) {
					t.Errorf("error: got %v; want a conflict naming the recorded payload", res.Err)
				}
				return
			}
			res := h.must(CmdPayloadRegister, tt.body)
			p, _ := h.store.Payload(d)
			if !slices.Equal(p.Holders, tt.wantHolders) {
				t.Errorf("holders: got %q; want %q", p.Holders, tt.wantHolders)
			}
			if p.Size != 1000 || p.Format != artifacts.FormatTar || p.Chunks != list.Digest() || !bytes.Equal(p.List, first.List) {
				t.Errorf("payload = %+v; want the first registration's size, format and list", p)
			}
			if p.CreateIndex != created.Index || p.ModifyIndex != res.Index {
				t.Errorf("meta: got %+v; want created at %d, modified at %d", p.Meta, created.Index, res.Index)
			}
		})
	}
}

// TestPayloadHoldersAreNotShared checks that merging holders into a
// payload does not change a version read before, which readers share.
func TestPayloadHoldersAreNotShared(t *testing.T) {
	h := newHarness(t)
	b := payloadBody("web", "1.0.0", 1000, "s1", "s3")
	h.must(CmdPayloadRegister, b)
	before, _ := h.store.Payload(b.SHA256)
	b.Holders = []string{"s2"}
	h.must(CmdPayloadRegister, b)
	if !slices.Equal(before.Holders, []string{"s1", "s3"}) {
		t.Errorf("holders of the payload read before: got %q; want [s1 s3]", before.Holders)
	}
	if after, _ := h.store.Payload(b.SHA256); !slices.Equal(after.Holders, []string{"s1", "s2", "s3"}) {
		t.Errorf("holders: got %q; want [s1 s2 s3]", after.Holders)
	}
}
