package pki

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	steps := []struct {
		data []byte
		perm fs.FileMode
	}{
		{[]byte("first"), 0o600},
		{[]byte("second, longer"), 0o644},
		{nil, 0o640},
	}
	for _, s := range steps {
		if err := WriteFileAtomic(path, s.data, s.perm); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, s.data) || fi.Mode().Perm() != s.perm {
			t.Errorf("file %q mode %v, want %q mode %v", got, fi.Mode().Perm(), s.data, s.perm)
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries, want 1 (temp files left behind?)", len(entries))
	}

	if err := WriteFileAtomic(filepath.Join(dir, "missing", "f"), []byte("x"), 0o600); err == nil {
		t.Error("write into a missing directory succeeded")
	}
	// Renaming over a directory fails and leaves no temp file.
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := WriteFileAtomic(filepath.Join(dir, "sub"), []byte("x"), 0o600); err == nil {
		t.Error("write over a directory succeeded")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 2 {
		t.Errorf("directory holds %d entries after failure, want 2", len(entries))
	}
}

func TestLoadKeyPair(t *testing.T) {
	now := fixedNow()
	ca, foreign := mustCA(t, "prod", now), mustCA(t, "prod", now)
	cert, key := mustOperator(t, ca, "alice", RoleAdmin, now, day)
	_, otherKey := mustOperator(t, ca, "bob", RoleAdmin, now, day)
	foreignCert, foreignKey := mustOperator(t, foreign, "alice", RoleAdmin, now, day)

	tests := []struct {
		name          string
		cert, key, ca []byte
		keyPerm       fs.FileMode
		err           error
		msg           string
	}{
		{"good", cert, key, ca.CertPEM, 0o600, nil, ""},
		{"key readable by others", cert, key, ca.CertPEM, 0o644, ErrKeyPermissions, "chmod 600"},
		{"key readable by group", cert, key, ca.CertPEM, 0o640, ErrKeyPermissions, "chmod 600"},
		{"other CA", foreignCert, foreignKey, ca.CertPEM, 0o600, ErrNotSignedByCA, ""},
		{"key of another cert", cert, otherKey, ca.CertPEM, 0o600, errAny, "private key does not match"},
		{"garbage CA", cert, key, []byte("nope"), 0o600, ErrInvalidPEM, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			paths := [3]string{filepath.Join(dir, "c.crt"), filepath.Join(dir, "c.key"), filepath.Join(dir, "ca.crt")}
			for i, data := range [][]byte{tt.cert, tt.key, tt.ca} {
				perm := fs.FileMode(0o644)
				if i == 1 {
					perm = tt.keyPerm
				}
				if err := WriteFileAtomic(paths[i], data, perm); err != nil {
					t.Fatal(err)
				}
			}
			c, k, a, err := LoadKeyPair(paths[0], paths[1], paths[2])
			switch {
			case tt.err == errAny:
				if err == nil {
					t.Fatal("no error")
				}
			default:
				wantErr(t, err, tt.err)
			}
			if err != nil {
				if !strings.Contains(err.Error(), tt.msg) {
					t.Errorf("error %q does not mention %q", err, tt.msg)
				}
				return
			}
			if !bytes.Equal(c, tt.cert) || !bytes.Equal(k, tt.key) || !bytes.Equal(a, tt.ca) {
				t.Error("LoadKeyPair returned different bytes")
			}
		})
	}
	if _, _, _, err := LoadKeyPair("/nonexistent/c", "/nonexistent/k", "/nonexistent/ca"); err == nil {
		t.Error("missing files loaded")
	}
}
