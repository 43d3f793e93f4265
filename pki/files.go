package pki

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
)

// WriteFileAtomic replaces path with data and mode perm so that readers see
// either the old or the new file, never a partial one, even across a crash:
// it writes a temporary file in the same directory, fsyncs it, renames it
// over path and fsyncs the directory.
func WriteFileAtomic(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := writeAndRename(f, path, data, perm); err != nil {
		_ = f.Close()
		_ = os.Remove(f.Name())
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("write %s: sync directory: %w", path, err)
	}
	return nil
}

// writeAndRename fills the temporary file f, makes it durable and renames
// it to path.
func writeAndRename(f *os.File, path string, data []byte, perm os.FileMode) error {
	// Chmod rather than relying on the create mode, which the umask alters.
	if err := f.Chmod(perm); err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

func syncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil // directories cannot be opened for sync there
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// LoadKeyPair reads a certificate, its private key and the CA certificate,
// and checks that they belong together: the key matches the certificate
// and the CA signed it (ErrNotSignedByCA). Like [LoadCA] it refuses a key
// file that group or others may access (ErrKeyPermissions).
func LoadKeyPair(certPath, keyPath, caPath string) (certPEM, keyPEM, caPEM []byte, err error) {
	if keyPEM, err = readKeyFile(keyPath); err != nil {
		return nil, nil, nil, fmt.Errorf("load key pair: %w", err)
	}
	if certPEM, err = os.ReadFile(certPath); err != nil {
		return nil, nil, nil, fmt.Errorf("load key pair: %w", err)
	}
	if caPEM, err = os.ReadFile(caPath); err != nil {
		return nil, nil, nil, fmt.Errorf("load key pair: %w", err)
	}
	cas, err := parseCertsPEM(caPEM)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("load key pair: %s: %w", caPath, err)
	}
	if _, _, err := loadCert(certPEM, keyPEM, cas); err != nil {
		return nil, nil, nil, fmt.Errorf("load key pair: %w", err)
	}
	return certPEM, keyPEM, caPEM, nil
}

// readKeyFile reads a private key file, refusing one whose permission bits
// let group or others in.
func readKeyFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 && runtime.GOOS != "windows" {
		return nil, fmt.Errorf("%w: %s has mode %#o; run chmod 600 %s", ErrKeyPermissions, path, perm, path)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxPEMLen+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxPEMLen {
		return nil, fmt.Errorf("%w: %s is larger than %d bytes", ErrInvalidPEM, path, maxPEMLen)
	}
	return data, nil
}
