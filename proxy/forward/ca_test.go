package forward

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"sync"
	"testing"
	"time"
)

func TestCertificateForMintsVerifiableLeaves(t *testing.T) {
	t.Parallel()
	ca, roots := newTestCA(t, "test proxy CA")
	cases := []struct {
		name  string
		host  string
		check func(*x509.Certificate) error
	}{
		{"DNS name gets a DNS SAN", "hs2.tim.test", func(c *x509.Certificate) error {
			if len(c.DNSNames) != 1 || c.DNSNames[0] != "hs2.tim.test" || len(c.IPAddresses) != 0 {
				return fmt.Errorf("SANs %v %v", c.DNSNames, c.IPAddresses)
			}
			return c.VerifyHostname("hs2.tim.test")
		}},
		{"upper case name with trailing dot is normalised", "HS2.Tim.Test.", func(c *x509.Certificate) error {
			return c.VerifyHostname("hs2.tim.test")
		}},
		{"IPv4 literal gets an IP SAN", "192.0.2.7", func(c *x509.Certificate) error {
			if len(c.DNSNames) != 0 || len(c.IPAddresses) != 1 {
				return fmt.Errorf("SANs %v %v", c.DNSNames, c.IPAddresses)
			}
			return c.VerifyHostname("192.0.2.7")
		}},
		{"IPv6 literal gets an IP SAN", "2001:db8::1", func(c *x509.Certificate) error {
			return c.VerifyHostname("2001:db8::1")
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cert, err := ca.CertificateFor(tc.host)
			if err != nil {
				t.Fatal(err)
			}
			leaf := cert.Leaf
			if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
				t.Fatalf("chain: %v", err)
			}
			if err := tc.check(leaf); err != nil {
				t.Error(err)
			}
			if life := leaf.NotAfter.Sub(leaf.NotBefore); life != leafValidity+leafBackdate {
				t.Errorf("lifetime %v", life)
			}
			if time.Until(leaf.NotBefore) > -50*time.Minute {
				t.Errorf("NotBefore %v is not backdated", leaf.NotBefore)
			}
		})
	}
}

func TestCertificateForRefusesInvalidHosts(t *testing.T) {
	t.Parallel()
	ca, _ := newTestCA(t, "test proxy CA")
	for _, h := range []string{"", "a..b", "-a.test", "a_b.test", "*.test", "fe80::1%eth0", "1.2.3", "a.test:443"} {
		if _, err := ca.CertificateFor(h); err == nil {
			t.Errorf("minted a certificate for %q", h)
		}
	}
}

func TestConcurrentCallersForOneHostMintOnce(t *testing.T) {
	t.Parallel()
	ca, _ := newTestCA(t, "test proxy CA")
	const n = 50
	var wg sync.WaitGroup
	serials := make([]*big.Int, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := ca.CertificateFor("hs2.tim.test")
			if err != nil {
				t.Error(err)
				return
			}
			serials[i] = c.Leaf.SerialNumber
		}()
	}
	wg.Wait()
	for i, s := range serials {
		if s == nil || s.Cmp(serials[0]) != 0 {
			t.Fatalf("caller %d got serial %v, caller 0 got %v", i, s, serials[0])
		}
	}
}

func TestLeafCacheRenewsAndEvicts(t *testing.T) {
	t.Parallel()
	ca, _ := newTestCA(t, "test proxy CA")
	now := time.Now()
	ca.now = func() time.Time { return now }
	ca.max = 2
	first, _ := ca.CertificateFor("a.test")
	if again, _ := ca.CertificateFor("a.test"); again != first {
		t.Error("cached leaf not reused")
	}
	now = now.Add(leafValidity - leafRenewLead + time.Minute)
	renewed, _ := ca.CertificateFor("a.test")
	if renewed == first {
		t.Error("leaf close to expiry was not re-minted")
	}
	_, _ = ca.CertificateFor("b.test")
	_, _ = ca.CertificateFor("c.test") // evicts a.test, the least recently used
	ca.mu.Lock()
	_, hasA := ca.cache["a.test"]
	size := ca.lru.Len()
	ca.mu.Unlock()
	if hasA || size != 2 {
		t.Errorf("after eviction: a.test cached=%v, size=%d", hasA, size)
	}
}

func TestLeafNeverOutlivesTheCA(t *testing.T) {
	t.Parallel()
	certPEM, keyPEM, err := GenerateCA("short CA", 2*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := LoadCA(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	c, err := ca.CertificateFor("hs2.tim.test")
	if err != nil {
		t.Fatal(err)
	}
	if c.Leaf.NotAfter.After(ca.Certificate().NotAfter) {
		t.Errorf("leaf NotAfter %v after CA NotAfter %v", c.Leaf.NotAfter, ca.Certificate().NotAfter)
	}
	ca.now = func() time.Time { return time.Now().Add(3 * time.Hour) }
	if _, err := ca.CertificateFor("other.tim.test"); err == nil {
		t.Error("minted under an expired CA")
	}
}

func TestGeneratedCAProfile(t *testing.T) {
	t.Parallel()
	ca, _ := newTestCA(t, "profile CA")
	c := ca.Certificate()
	if !c.IsCA || c.MaxPathLen != 0 || !c.MaxPathLenZero {
		t.Errorf("IsCA=%v MaxPathLen=%d zero=%v", c.IsCA, c.MaxPathLen, c.MaxPathLenZero)
	}
	if pub, ok := c.PublicKey.(*ecdsa.PublicKey); !ok || pub.Curve != elliptic.P256() {
		t.Errorf("key %T, want P-256", c.PublicKey)
	}
	if c.KeyUsage&x509.KeyUsageCertSign == 0 || len(c.ExtKeyUsage) != 1 || c.ExtKeyUsage[0] != x509.ExtKeyUsageServerAuth {
		t.Errorf("usages %v %v", c.KeyUsage, c.ExtKeyUsage)
	}
}

func TestLoadCARejectsUnusableMaterial(t *testing.T) {
	t.Parallel()
	certPEM, keyPEM, err := GenerateCA("a", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	_, otherKey, err := GenerateCA("b", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	leafCertPEM, leafKeyPEM := nonCACert(t)
	cases := []struct {
		name      string
		cert, key []byte
	}{
		{"key of another CA is refused", certPEM, otherKey},
		{"non-CA certificate is refused", leafCertPEM, leafKeyPEM},
		{"missing certificate is refused", nil, keyPEM},
		{"key in the certificate slot is refused", keyPEM, keyPEM},
		{"garbage key is refused", certPEM, []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := LoadCA(tc.cert, tc.key); err == nil {
				t.Error("accepted")
			}
		})
	}
	t.Run("SEC 1 EC key is accepted", func(t *testing.T) {
		b, _ := pem.Decode(keyPEM)
		k, _ := x509.ParsePKCS8PrivateKey(b.Bytes)
		der, err := x509.MarshalECPrivateKey(k.(*ecdsa.PrivateKey))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := LoadCA(certPEM, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})); err != nil {
			t.Error(err)
		}
	})
}

func nonCACert(t *testing.T) (certPEM, keyPEM []byte) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "leaf"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.Public(), k)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalPKCS8PrivateKey(k)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})
}

func BenchmarkMintCertificate(b *testing.B) {
	ca, _ := newTestCA(b, "bench CA")
	now := time.Now()
	i := 0
	for b.Loop() {
		if _, err := ca.mint(fmt.Sprintf("h%d.tim.test", i), now); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func BenchmarkCertificateForCached(b *testing.B) {
	ca, _ := newTestCA(b, "bench CA")
	if _, err := ca.CertificateFor("hs2.tim.test"); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := ca.CertificateFor("hs2.tim.test"); err != nil {
			b.Fatal(err)
		}
	}
}
