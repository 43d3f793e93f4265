package chunks

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"slices"
	"testing"
)

// tarFile is one file of a generated tar: its name and the seed of its bytes.
type tarFile struct {
	name string
	seed uint64
	size int
}

// tarStream streams the tar of files, generating each file's bytes on the
// way, so that no payload is held in memory.
func tarStream(files []tarFile) io.Reader {
	pr, pw := io.Pipe()
	go func() {
		tw := tar.NewWriter(pw)
		for _, f := range files {
			hdr := &tar.Header{Name: f.name, Mode: 0o644, Size: int64(f.size), Format: tar.FormatPAX}
			if err := tw.WriteHeader(hdr); err != nil {
				pw.CloseWithError(err)
				return
			}
			if _, err := tw.Write(randomBytes(f.seed, f.size)); err != nil {
				pw.CloseWithError(err)
				return
			}
		}
		pw.CloseWithError(tw.Close())
	}()
	return pr
}

// smallFiles is a ~100 MiB payload of 400 incompressible files of 256 KiB.
func smallFiles() []tarFile {
	files := make([]tarFile, 400)
	for i := range files {
		files[i] = tarFile{fmt.Sprintf("app/lib/part-%03d.bin", i), uint64(i), 256 << 10}
	}
	return files
}

// freshBytes returns the bytes of the chunks of list that are not in have.
func freshBytes(list List, have map[string]bool) (n int64, chunks int) {
	for _, r := range list {
		if !have[r.SHA256] {
			n += r.Size
			chunks++
		}
	}
	return n, chunks
}

func digestSet(list List) map[string]bool {
	have := make(map[string]bool, len(list))
	for _, r := range list {
		have[r.SHA256] = true
	}
	return have
}

// TestDelta measures how much of a new version of a tar payload an agent
// that holds the old one has to download. The zero bytes of every tar header
// have fingerprint 0, which is a cut point, so once past MinSize chunks end
// at file boundaries and a rewritten file costs about its own size.
func TestDelta(t *testing.T) {
	t.Parallel()
	rewritten := func(idx ...int) []tarFile {
		files := smallFiles()
		for _, i := range idx {
			files[i].seed += 1 << 32 // new content, same name and size
		}
		return files
	}
	inserted := slices.Insert(smallFiles(), 200, tarFile{"app/lib/inserted.bin", 1 << 40, 1 << 20})
	tests := []struct {
		name  string
		files []tarFile
	}{
		{"4 adjacent files rewritten", rewritten(200, 201, 202, 203)},
		{"4 scattered files rewritten", rewritten(50, 150, 250, 350)},
		{"1 MiB file inserted in the middle", inserted},
	}
	old, _, _, oldSize := split(t, tarStream(smallFiles()), false)
	have := digestSet(old)
	t.Logf("old payload: %d bytes in %d chunks", oldSize, len(old))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			list, _, _, size := split(t, tarStream(tt.files), false)
			fresh, n := freshBytes(list, have)
			share := 100 * float64(fresh) / float64(size)
			t.Logf("%d of %d chunks new: %d of %d bytes, %.2f%%", n, len(list), fresh, size, share)
			if share > 5 {
				t.Errorf("%.2f%% of the payload is new, want at most 5%%", share)
			}
		})
	}
}

// TestDeltaInsideFile measures the cost of 1 MiB changed inside one large
// file, where boundaries come from the content alone: the changed MiB plus
// the chunks it touches, which depends on where it falls. Chunks of other
// files stay the same, so the cost is given as a share of a 100 MiB payload,
// averaged over several positions.
func TestDeltaInsideFile(t *testing.T) {
	t.Parallel()
	const payload = 100 << 20
	base := randomBytes(77, 12<<20)
	have := digestSet(must(split(t, bytes.NewReader(base), false)))
	for _, shift := range []bool{false, true} {
		name := map[bool]string{false: "1 MiB rewritten", true: "1 MiB inserted"}[shift]
		t.Run(name, func(t *testing.T) {
			const positions = 8
			var sum, worst float64
			for k := range positions {
				at := 2<<20 + k*(1<<20+54321) // away from the ends of the file
				patch := randomBytes(1<<41+uint64(k), 1<<20)
				b := slices.Clone(base)
				if shift {
					b = slices.Insert(b, at, patch...)
				} else {
					copy(b[at:], patch)
				}
				fresh, _ := freshBytes(must(split(t, bytes.NewReader(b), false)), have)
				share := 100 * float64(fresh) / payload
				sum += share
				worst = max(worst, share)
			}
			mean := sum / positions
			t.Logf("new bytes per change: mean %.2f%%, worst %.2f%% of a 100 MiB payload", mean, worst)
			if mean > 5 {
				t.Errorf("mean %.2f%% of the payload is new, want at most 5%%", mean)
			}
		})
	}
}

func must(list List, _ [][]byte, _ string, _ int64) List { return list }
