package certs

import (
	"crypto"
	"os"
	"path/filepath"
	"testing"
)

// gematikPath returns a path below testdata/gematik (copied from gematik's published test material).
func gematikPath(parts ...string) string {
	return filepath.Join(append([]string{"..", "testdata", "gematik"}, parts...)...)
}

func mustReadFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustCert(t testing.TB, path string) *Certificate {
	t.Helper()
	c, err := ParseCertificatePEMOrDER(mustReadFile(t, path))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return c
}

func mustKey(t testing.TB, path string) crypto.Signer {
	t.Helper()
	k, err := ParsePrivateKeyPEM(mustReadFile(t, path))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return k
}

// gematikCAStore is a trust store with every CA certificate of testdata/gematik/pki/ca.
func gematikCAStore(t testing.TB) *TrustStore {
	t.Helper()
	s, err := LoadTrustStoreDir(gematikPath("pki", "ca"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}
