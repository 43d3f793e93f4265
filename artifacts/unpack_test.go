package artifacts

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// treeEntry describes one thing in a directory tree.
type treeEntry struct {
	kind string // "file", "dir" or "link"
	mode fs.FileMode
	data string // file contents or link target
}

// sampleTree is a release tree: files with various modes, nested and empty
// directories, relative links to a file and to a directory, a setuid file.
var sampleTree = []struct {
	path string
	e    treeEntry
}{
	{"README", treeEntry{kind: "file", mode: 0o644, data: "read me\n"}},
	{"bin", treeEntry{kind: "dir", mode: 0o755}},
	{"bin/run.sh", treeEntry{kind: "file", mode: 0o755, data: "#!/bin/sh\nexec ../lib/tool.sh\n"}},
	{"bin/tool", treeEntry{kind: "link", data: "../lib/tool.sh"}},
	{"lib", treeEntry{kind: "dir", mode: 0o750}},
	{"lib/tool.sh", treeEntry{kind: "file", mode: 0o700, data: "#!/bin/sh\necho tool\n"}},
	{"conf", treeEntry{kind: "dir", mode: 0o700}},
	{"conf/app.toml", treeEntry{kind: "file", mode: 0o600, data: "port = 8080\n"}},
	{"conf/readonly", treeEntry{kind: "file", mode: 0o400, data: "ro"}},
	{"data", treeEntry{kind: "dir", mode: 0o755}},
	{"data/nested", treeEntry{kind: "dir", mode: 0o755}},
	{"data/nested/deep", treeEntry{kind: "dir", mode: 0o755}},
	{"data/nested/deep/empty.txt", treeEntry{kind: "file", mode: 0o644}},
	{"data/nested/deep/big.bin", treeEntry{kind: "file", mode: 0o640, data: strings.Repeat("0123456789abcdef", 70_000)}},
	{"empty-dir", treeEntry{kind: "dir", mode: 0o755}},
	{"current", treeEntry{kind: "link", data: "bin"}},
	{"setuid", treeEntry{kind: "file", mode: 0o755 | fs.ModeSetuid | fs.ModeSetgid, data: "suid"}},
}

// buildTree creates sampleTree under dir, with every time set to mtime.
func buildTree(t *testing.T, dir string, mtime time.Time) {
	t.Helper()
	for _, x := range sampleTree {
		p := filepath.Join(dir, x.path)
		var err error
		switch x.e.kind {
		case "dir":
			err = os.Mkdir(p, 0o700)
		case "file":
			err = os.WriteFile(p, []byte(x.e.data), 0o600)
		case "link":
			err = os.Symlink(x.e.data, p)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	// Modes and times last, in reverse, so read-only entries do not stop
	// the writes above and children's changes do not touch parents' times.
	for i := len(sampleTree) - 1; i >= 0; i-- {
		x := sampleTree[i]
		p := filepath.Join(dir, x.path)
		if x.e.kind == "link" {
			continue
		}
		if err := os.Chmod(p, x.e.mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
}

// readTree describes what is under dir.
func readTree(t *testing.T, dir string) map[string]treeEntry {
	t.Helper()
	got := map[string]treeEntry{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		info, err := os.Lstat(p)
		if err != nil {
			return err
		}
		var e treeEntry
		switch {
		case info.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			e = treeEntry{kind: "link", data: target}
		case info.IsDir():
			e = treeEntry{kind: "dir", mode: info.Mode() &^ fs.ModeDir}
		case info.Mode().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			e = treeEntry{kind: "file", mode: info.Mode(), data: string(b)}
		default:
			e = treeEntry{kind: info.Mode().String()}
		}
		got[filepath.ToSlash(rel)] = e
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func packTree(t *testing.T, dir string) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := Pack(dir, &buf); err != nil {
		t.Fatalf("Pack() error: %v", err)
	}
	return buf.Bytes()
}

func TestPackUnpackRoundTrip(t *testing.T) {
	src := t.TempDir()
	buildTree(t, src, time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC))
	archive := packTree(t, src)

	dest := t.TempDir()
	if err := Unpack(bytes.NewReader(archive), dest, DefaultUnpackLimits); err != nil {
		t.Fatalf("Unpack() error: %v", err)
	}
	got := readTree(t, dest)

	// What Unpack promises: permission bits kept (as the umask allows,
	// directories always writable by their owner), setuid/setgid dropped.
	mask := umask(t)
	want := map[string]treeEntry{}
	for _, x := range sampleTree {
		e := x.e
		switch e.kind {
		case "file":
			e.mode = (e.mode.Perm() | 0o400) &^ mask
		case "dir":
			e.mode = (e.mode.Perm() | 0o700) &^ mask
		}
		want[x.path] = e
	}
	for p, w := range want {
		g, ok := got[p]
		if !ok {
			t.Errorf("%s: missing after Unpack", p)
			continue
		}
		if g.kind != w.kind || g.mode != w.mode || g.data != w.data {
			t.Errorf("%s: got %s %v (%d bytes %.20q); want %s %v (%d bytes %.20q)", p, g.kind, g.mode, len(g.data), g.data, w.kind, w.mode, len(w.data), w.data)
		}
	}
	for p, g := range got {
		if _, ok := want[p]; !ok {
			t.Errorf("%s: unexpected %s after Unpack", p, g.kind)
		}
	}
	// The links work.
	if b, err := os.ReadFile(filepath.Join(dest, "bin", "tool")); err != nil || string(b) != want["lib/tool.sh"].data {
		t.Errorf("reading through bin/tool: %q, %v", b, err)
	}
	if b, err := os.ReadFile(filepath.Join(dest, "current", "run.sh")); err != nil || string(b) != want["bin/run.sh"].data {
		t.Errorf("reading through current/: %q, %v", b, err)
	}
}

func TestPackHeaders(t *testing.T) {
	src := t.TempDir()
	buildTree(t, src, time.Now())
	zr, err := gzip.NewReader(bytes.NewReader(packTree(t, src)))
	if err != nil {
		t.Fatal(err)
	}
	if !zr.ModTime.IsZero() || zr.Name != "" {
		t.Errorf("gzip header has name %q time %v; want neither", zr.Name, zr.ModTime)
	}
	tr := tar.NewReader(zr)
	var names []string
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, hdr.Name)
		if hdr.ModTime.Unix() != 0 || hdr.Uid != 0 || hdr.Gid != 0 || hdr.Uname != "" || hdr.Gname != "" || !hdr.AccessTime.IsZero() || !hdr.ChangeTime.IsZero() {
			t.Errorf("%s: header keeps mtime %v atime %v ctime %v uid %d gid %d uname %q gname %q; want all cleared",
				hdr.Name, hdr.ModTime, hdr.AccessTime, hdr.ChangeTime, hdr.Uid, hdr.Gid, hdr.Uname, hdr.Gname)
		}
		if hdr.Typeflag == tar.TypeDir && !strings.HasSuffix(hdr.Name, "/") {
			t.Errorf("directory %s does not end in /", hdr.Name)
		}
	}
	want := []string{"README", "bin/", "bin/run.sh", "bin/tool", "conf/", "conf/app.toml", "conf/readonly", "current",
		"data/", "data/nested/", "data/nested/deep/", "data/nested/deep/big.bin", "data/nested/deep/empty.txt",
		"empty-dir/", "lib/", "lib/tool.sh", "setuid"}
	if strings.Join(names, " ") != strings.Join(want, " ") {
		t.Errorf("archive entries = %q; want %q", names, want)
	}
}

func TestPackDeterministic(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	buildTree(t, a, time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC))
	buildTree(t, b, time.Date(2025, 12, 31, 23, 59, 59, 123, time.UTC))
	first := packTree(t, a)
	if again := packTree(t, a); !bytes.Equal(again, first) {
		t.Error("Pack() of the same tree twice gave different bytes")
	}
	if other := packTree(t, b); !bytes.Equal(other, first) {
		t.Error("Pack() of the same tree, built elsewhere at another time, gave different bytes")
	}
	// Touch every file and directory, then pack again.
	later := time.Now().Add(time.Hour)
	err := filepath.WalkDir(a, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.Type()&fs.ModeSymlink != 0 {
			return err
		}
		return os.Chtimes(p, later, later)
	})
	if err != nil {
		t.Fatal(err)
	}
	if touched := packTree(t, a); !bytes.Equal(touched, first) {
		t.Error("Pack() after touching mtimes gave different bytes")
	}
	if digestOf(first) != digestOf(packTree(t, a)) {
		t.Error("Pack() digests differ")
	}
	// And a change in content does change the bytes.
	if err := os.WriteFile(filepath.Join(a, "README"), []byte("changed\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if changed := packTree(t, a); bytes.Equal(changed, first) {
		t.Error("Pack() of a changed tree gave the same bytes")
	}
}

func TestPackRefusesSpecialFiles(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "ok"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("unix", filepath.Join(dir, "sock"))
	if err != nil {
		t.Skipf("cannot make a socket: %v", err)
	}
	defer ln.Close()
	if err := Pack(dir, io.Discard); !errors.Is(err, ErrUnsafeArchive) {
		t.Errorf("Pack() of a tree with a socket = %v; want %v", err, ErrUnsafeArchive)
	}
	if err := Pack(filepath.Join(dir, "missing"), io.Discard); err == nil {
		t.Error("Pack() of a missing directory = nil; want an error")
	}
}

// unpackInto unpacks archive into a fresh directory "dest" inside a fresh
// parent and returns both.
func unpackInto(t *testing.T, archive []byte, lim UnpackLimits) (parent, dest string, err error) {
	t.Helper()
	parent = t.TempDir()
	dest = filepath.Join(parent, "dest")
	if err := os.Mkdir(dest, 0o755); err != nil {
		t.Fatal(err)
	}
	return parent, dest, Unpack(bytes.NewReader(archive), dest, lim)
}

func TestUnpackRefuses(t *testing.T) {
	hdr := func(typ byte, name string) tarEntry {
		return tarEntry{hdr: tar.Header{Typeflag: typ, Name: name, Mode: 0o644}}
	}
	hardlink := tarEntry{hdr: tar.Header{Typeflag: tar.TypeLink, Name: "h", Linkname: "f", Mode: 0o644}}
	lim := UnpackLimits{MaxBytes: 10, MaxEntries: 4}
	tests := []struct {
		name    string
		entries []tarEntry
		want    error
	}{
		{"absolute path", []tarEntry{file("/etc/evil", "x", 0o644)}, ErrUnsafeArchive},
		{"absolute directory", []tarEntry{dir("/tmp/", 0o755)}, ErrUnsafeArchive},
		{"parent reference", []tarEntry{file("../evil", "x", 0o644)}, ErrUnsafeArchive},
		{"parent reference inside", []tarEntry{file("a/../../evil", "x", 0o644)}, ErrUnsafeArchive},
		{"parent reference that stays inside", []tarEntry{file("a/../b", "x", 0o644)}, ErrUnsafeArchive},
		{"parent directory entry", []tarEntry{dir("../", 0o755)}, ErrUnsafeArchive},
		{"link to absolute path", []tarEntry{symlink("l", "/etc/passwd")}, ErrUnsafeArchive},
		{"link to root", []tarEntry{symlink("l", "/")}, ErrUnsafeArchive},
		{"link to parent", []tarEntry{symlink("l", "..")}, ErrUnsafeArchive},
		{"link up and out", []tarEntry{symlink("a/b/l", "../../../x")}, ErrUnsafeArchive},
		{"link out and back", []tarEntry{symlink("a/l", "../../dest/x")}, ErrUnsafeArchive},
		{"link with empty target", []tarEntry{symlink("l", "")}, ErrUnsafeArchive},
		{"link named with parent reference", []tarEntry{symlink("../l", "x")}, ErrUnsafeArchive},
		// A link whose own directory is a link: lexically "a/l" -> "../x"
		// stays inside, but "a" is the root itself, so "l" lands in the
		// root pointing at the root's parent.
		{"link under a link to the root", []tarEntry{symlink("a", "."), symlink("a/l", "../outside")}, ErrUnsafeArchive},
		{"link under a link to an ancestor", []tarEntry{symlink("a/b", ".."), symlink("a/b/c/l", "../../outside")}, ErrUnsafeArchive},
		// A link whose target goes through a link and then up: lexically
		// "d/x/.." is "d", but d/x is the root, so d/x/.. is its parent.
		{"target climbs out through a link", []tarEntry{symlink("d/x", ".."), symlink("l", "d/x/..")}, ErrUnsafeArchive},
		{"target climbs through a link made later", []tarEntry{symlink("l", "d/x/.."), symlink("d/x", "..")}, ErrUnsafeArchive},
		{"target with .. after a name", []tarEntry{dir("a/", 0o755), symlink("l", "a/../x")}, ErrUnsafeArchive},
		{"hard link", []tarEntry{file("f", "x", 0o644), hardlink}, ErrUnsafeArchive},
		{"character device", []tarEntry{{hdr: tar.Header{Typeflag: tar.TypeChar, Name: "null", Mode: 0o666, Devmajor: 1, Devminor: 3}}}, ErrUnsafeArchive},
		{"block device", []tarEntry{{hdr: tar.Header{Typeflag: tar.TypeBlock, Name: "sda", Mode: 0o660, Devmajor: 8}}}, ErrUnsafeArchive},
		{"fifo", []tarEntry{hdr(tar.TypeFifo, "fifo")}, ErrUnsafeArchive},
		{"contiguous file", []tarEntry{hdr(tar.TypeCont, "c")}, ErrUnsafeArchive},
		{"too many entries", []tarEntry{dir("a/", 0o755), file("a/1", "", 0o644), file("a/2", "", 0o644), symlink("a/3", "1"), file("a/4", "", 0o644)}, ErrTooLarge},
		{"too many entries, with ./", []tarEntry{dir("./", 0o755), dir("./", 0o755), dir("./", 0o755), dir("./", 0o755), dir("./", 0o755)}, ErrTooLarge},
		{"too many bytes in one file", []tarEntry{file("big", "01234567890", 0o644)}, ErrTooLarge},
		{"too many bytes in all files", []tarEntry{file("a", "01234", 0o644), file("b", "012345", 0o644)}, ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			parent, dest, err := unpackInto(t, makeTarGz(t, tt.entries...), lim)
			if !errors.Is(err, tt.want) {
				t.Errorf("Unpack() = %v; want %v", err, tt.want)
			}
			if names := dirNames(t, parent); len(names) != 1 || names[0] != "dest" {
				t.Errorf("Unpack() created %q next to the release directory", names)
			}
			assertLinksInside(t, dest)
		})
	}
}

// assertLinksInside fails if any symbolic link under dir resolves, by the
// kernel's rules, to somewhere outside dir.
func assertLinksInside(t *testing.T, dir string) {
	t.Helper()
	root, err := filepath.EvalSymlinks(dir)
	if err != nil {
		t.Fatal(err)
	}
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.Type()&fs.ModeSymlink == 0 {
			return err
		}
		target, err := os.Readlink(p)
		if err != nil {
			return nil
		}
		// Resolve the link's directory physically, then the target as far
		// as it exists.
		parent, err := filepath.EvalSymlinks(filepath.Dir(p))
		if err != nil {
			return nil
		}
		resolved := resolveExisting(target, parent)
		if resolved != root && !strings.HasPrefix(resolved, root+string(filepath.Separator)) {
			t.Errorf("link %s -> %s resolves to %s, outside %s", p, target, resolved, root)
		}
		return nil
	})
}

// resolveExisting resolves target from dir component by component with
// the kernel's rules: symbolic links are followed before "..".
func resolveExisting(target, dir string) string {
	cur := dir
	parts := strings.Split(target, "/")
	for hops := 0; len(parts) > 0 && hops < 40; {
		part := parts[0]
		parts = parts[1:]
		switch part {
		case "", ".":
			continue
		case "..":
			cur = filepath.Dir(cur)
			continue
		}
		next := filepath.Join(cur, part)
		link, err := os.Readlink(next)
		if err != nil { // not a link, or missing: take the name as it is
			cur = next
			continue
		}
		hops++
		if strings.HasPrefix(link, "/") {
			cur = "/"
		}
		parts = append(strings.Split(link, "/"), parts...)
	}
	return cur
}

func TestUnpackAllows(t *testing.T) {
	lim := UnpackLimits{MaxBytes: 10, MaxEntries: 4}
	tests := []struct {
		name    string
		entries []tarEntry
		check   string // a path that must exist afterwards
	}{
		{"link within a subdirectory", []tarEntry{symlink("a/l", "../x")}, "a/l"},
		{"link down", []tarEntry{symlink("l", "a/b/c")}, "l"},
		{"link to the root", []tarEntry{symlink("a/l", "..")}, "a/l"},
		{"link to itself", []tarEntry{symlink("l", ".")}, "l"},
		{"link with dot components", []tarEntry{symlink("a/b/l", "./.././x")}, "a/b/l"},
		{"link through a link, downwards", []tarEntry{dir("x/y/", 0o755), symlink("a", "x"), symlink("l", "a/y")}, "l"},
		{"file through a link to a directory", []tarEntry{dir("x/", 0o755), symlink("a", "x"), file("a/f", "data", 0o644)}, "x/f"},
		{"exactly MaxEntries", []tarEntry{dir("a/", 0o755), file("a/1", "", 0o644), file("a/2", "", 0o644), symlink("a/3", "1")}, "a/3"},
		{"exactly MaxBytes", []tarEntry{file("a", "01234", 0o644), file("b", "56789", 0o644)}, "b"},
		{"file without its directory", []tarEntry{file("deep/er/f", "x", 0o644)}, "deep/er/f"},
		{"dot slash names", []tarEntry{dir("./", 0o755), file("./f", "x", 0o644)}, "f"},
		{"empty archive", nil, "."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, dest, err := unpackInto(t, makeTarGz(t, tt.entries...), lim)
			if err != nil {
				t.Fatalf("Unpack() = %v; want nil", err)
			}
			if _, err := os.Lstat(filepath.Join(dest, tt.check)); err != nil {
				t.Errorf("after Unpack(): %v", err)
			}
			assertLinksInside(t, dest)
		})
	}
}

func TestUnpackDropsSetuid(t *testing.T) {
	archive := makeTarGz(t,
		dir("sticky/", 0o1777),
		dir("setgid/", 0o2755),
		file("setuid", "x", 0o4755),
		file("setgid/file", "x", 0o2711),
		file("all", "x", 0o7777),
	)
	_, dest, err := unpackInto(t, archive, DefaultUnpackLimits)
	if err != nil {
		t.Fatalf("Unpack() error: %v", err)
	}
	mask := umask(t)
	want := map[string]fs.FileMode{
		"sticky":      fs.ModeDir | 0o777&^mask,
		"setgid":      fs.ModeDir | 0o755&^mask,
		"setuid":      0o755 &^ mask,
		"setgid/file": 0o711 &^ mask,
		"all":         0o777 &^ mask,
	}
	for name, mode := range want {
		st, err := os.Lstat(filepath.Join(dest, name))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode() != mode {
			t.Errorf("%s: mode %v; want %v", name, st.Mode(), mode)
		}
	}
}

func TestUnpackBadStreams(t *testing.T) {
	good := makeTarGz(t, file("a", strings.Repeat("a", 5000), 0o644), file("b", "b", 0o644))
	var plainTar bytes.Buffer
	tw := tar.NewWriter(&plainTar)
	_ = tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "a", Size: 1, Mode: 0o644})
	_, _ = tw.Write([]byte("a"))
	_ = tw.Close()
	var gzNotTar bytes.Buffer
	zw := gzip.NewWriter(&gzNotTar)
	_, _ = zw.Write(bytes.Repeat([]byte("not a tar archive "), 100))
	_ = zw.Close()

	tests := []struct {
		name string
		in   []byte
		want error // nil: any error
	}{
		{"empty", nil, ErrUnsafeArchive},
		{"text", []byte("hello, world"), ErrUnsafeArchive},
		{"zip", []byte("PK\x03\x04 not really"), ErrUnsafeArchive},
		{"gzip, not tar", gzNotTar.Bytes(), ErrUnsafeArchive},
		{"truncated gzip", good[:len(good)/2], nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := unpackInto(t, tt.in, DefaultUnpackLimits)
			if err == nil || (tt.want != nil && !errors.Is(err, tt.want)) {
				t.Errorf("Unpack() = %v; want %v", err, tt.want)
			}
		})
	}
	// An uncompressed tar is a payload format of its own.
	if _, _, err := unpackInto(t, plainTar.Bytes(), DefaultUnpackLimits); err != nil {
		t.Errorf("Unpack(plain tar) = %v; want nil", err)
	}
	if err := Unpack(bytes.NewReader(good), filepath.Join(t.TempDir(), "missing"), DefaultUnpackLimits); err == nil {
		t.Error("Unpack() into a missing directory = nil; want an error")
	}
	t.Run("duplicate file", func(t *testing.T) {
		_, dest, err := unpackInto(t, makeTarGz(t, file("f", "first", 0o644), file("f", "second", 0o644)), DefaultUnpackLimits)
		if err == nil {
			t.Fatal("Unpack() of a file named twice = nil; want an error")
		}
		if b, _ := os.ReadFile(filepath.Join(dest, "f")); string(b) != "first" {
			t.Errorf("first file was overwritten: %q", b)
		}
	})
	t.Run("file over a link", func(t *testing.T) {
		_, dest, err := unpackInto(t, makeTarGz(t, symlink("l", "x"), file("l", "data", 0o644)), DefaultUnpackLimits)
		if err == nil {
			t.Fatal("Unpack() of a file over a link = nil; want an error")
		}
		if _, err := os.Lstat(filepath.Join(dest, "x")); err == nil {
			t.Error("a file was written through the link")
		}
	})
}
