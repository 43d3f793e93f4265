package artifacts

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
)

// UnpackLimits bound what an archive may expand to.
type UnpackLimits struct {
	MaxBytes   int64 // total size of the regular files
	MaxEntries int
}

// DefaultUnpackLimits are generous for applications and still finite.
var DefaultUnpackLimits = UnpackLimits{MaxBytes: 8 << 30, MaxEntries: 200_000}

// Unpack extracts a tar or tar.gz stream (told apart by gzip's magic
// bytes) into dir, which must exist and be empty.
// It allows regular files, directories and relative symbolic links that
// stay inside dir; it refuses absolute paths, "..", devices, hard links and
// anything past the limits. Permission bits are kept except setuid, setgid
// and sticky. All writes go through an os.Root, so no entry can reach
// outside dir whatever its name.
func Unpack(r io.Reader, dir string, lim UnpackLimits) error {
	br := bufio.NewReader(r)
	if _, err := br.Peek(1); err != nil {
		return fmt.Errorf("%w: empty archive", ErrUnsafeArchive)
	}
	var src io.Reader = br
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return fmt.Errorf("%w: bad gzip stream: %v", ErrUnsafeArchive, err)
		}
		defer zr.Close()
		src = zr
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return fmt.Errorf("cannot open release directory: %w", err)
	}
	defer root.Close()

	tr := tar.NewReader(src)
	var total int64
	for entries := 0; ; entries++ {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%w: %v", ErrUnsafeArchive, err)
		}
		if entries >= lim.MaxEntries {
			return fmt.Errorf("%w: more than %d entries", ErrTooLarge, lim.MaxEntries)
		}
		name, err := cleanEntryName(hdr.Name)
		if err != nil {
			return err
		}
		if name == "." {
			continue
		}
		mode := os.FileMode(hdr.Mode) & os.ModePerm
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := root.MkdirAll(name, mode|0o700); err != nil {
				return fmt.Errorf("cannot create %s: %w", name, err)
			}
		case tar.TypeReg:
			total += hdr.Size
			if hdr.Size < 0 || total > lim.MaxBytes {
				return fmt.Errorf("%w: archive expands past %d bytes", ErrTooLarge, lim.MaxBytes)
			}
			if err := writeEntry(root, name, mode, tr, hdr.Size); err != nil {
				return err
			}
		case tar.TypeSymlink:
			if err := checkLinkTarget(name, hdr.Linkname); err != nil {
				return err
			}
			if err := checkLinkParents(root, name); err != nil {
				return err
			}
			if err := mkParent(root, name); err != nil {
				return err
			}
			if err := root.Symlink(hdr.Linkname, name); err != nil {
				return fmt.Errorf("cannot create link %s: %w", name, err)
			}
		default:
			return fmt.Errorf("%w: %s: entry type %q is not allowed", ErrUnsafeArchive, hdr.Name, hdr.Typeflag)
		}
	}
}

func writeEntry(root *os.Root, name string, mode os.FileMode, r io.Reader, size int64) error {
	if err := mkParent(root, name); err != nil {
		return err
	}
	f, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode|0o400)
	if err != nil {
		return fmt.Errorf("cannot create %s: %w", name, err)
	}
	n, err := io.Copy(f, io.LimitReader(r, size))
	if err == nil && n != size {
		err = io.ErrUnexpectedEOF
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("cannot write %s: %w", name, err)
	}
	return nil
}

func mkParent(root *os.Root, name string) error {
	if dir := path.Dir(name); dir != "." {
		if err := root.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("cannot create %s: %w", dir, err)
		}
	}
	return nil
}

// cleanEntryName turns an archive name into a clean relative path.
func cleanEntryName(name string) (string, error) {
	if name == "" || len(name) > 4096 || strings.ContainsRune(name, 0) {
		return "", fmt.Errorf("%w: bad name %q", ErrUnsafeArchive, name)
	}
	if strings.HasPrefix(name, "/") {
		return "", fmt.Errorf("%w: %s: absolute path", ErrUnsafeArchive, name)
	}
	for _, part := range strings.Split(name, "/") {
		if part == ".." {
			return "", fmt.Errorf("%w: %s: parent directory reference", ErrUnsafeArchive, name)
		}
	}
	return path.Clean(name), nil
}

// checkLinkTarget refuses a link that is absolute or leads above the root.
// The check is lexical, so ".." may only lead the target: after a name,
// which may itself be a link, ".." climbs from wherever that link points.
func checkLinkTarget(name, target string) error {
	if target == "" || strings.HasPrefix(target, "/") {
		return fmt.Errorf("%w: %s: link target %q must be relative", ErrUnsafeArchive, name, target)
	}
	named := false
	for _, part := range strings.Split(target, "/") {
		switch part {
		case "", ".":
		case "..":
			if named {
				return fmt.Errorf("%w: %s: link target %q has \"..\" after a name", ErrUnsafeArchive, name, target)
			}
		default:
			named = true
		}
	}
	resolved := path.Join(path.Dir(name), target)
	if resolved == ".." || strings.HasPrefix(resolved, "../") {
		return fmt.Errorf("%w: %s: link target %q leaves the release directory", ErrUnsafeArchive, name, target)
	}
	return nil
}

// checkLinkParents refuses a link in a directory reached through another
// link: checkLinkTarget resolves the target from the directory the name
// says, and the link would be somewhere else.
func checkLinkParents(root *os.Root, name string) error {
	parts := strings.Split(name, "/")
	for i := 1; i < len(parts); i++ {
		dir := strings.Join(parts[:i], "/")
		info, err := root.Lstat(dir)
		if errors.Is(err, fs.ErrNotExist) {
			return nil // the rest will be made as directories
		}
		if err != nil {
			return fmt.Errorf("cannot create link %s: %w", name, err)
		}
		if info.Mode()&fs.ModeSymlink != 0 {
			return fmt.Errorf("%w: %s: %s is a link", ErrUnsafeArchive, name, dir)
		}
	}
	return nil
}
