package forward

import (
	"bytes"
	"container/list"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha1" //nolint:gosec // RFC 5280 §4.2.1.2 method 1 key identifier, not a security function
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net/netip"
	"sync"
	"time"
)

// Leaf certificate parameters. Short lifetimes keep a leaked leaf harmless soon; the backdating absorbs clock
// skew between the proxy and the homeserver host.
const (
	leafValidity  = 24 * time.Hour
	leafBackdate  = time.Hour
	leafRenewLead = 6 * time.Hour // re-mint a cached leaf when less than this remains
	leafCacheSize = 4096
)

// CA is the proxy's interception CA: it mints a server certificate for every host the homeserver opens a
// tunnel to. The homeserver trusts it through federation_custom_ca_list only (tim-proxy-spec.md §3.1).
//
// All leaves share one P-256 key generated at load time. A per-host key would buy no isolation: the leaf keys
// and the CA key live in the same process memory, so whoever reads one reads all. Sharing it removes key
// generation from the tunnel set-up path and keeps minting down to one ECDSA signature. The key is never
// persisted; a restart rotates it.
type CA struct {
	cert    *x509.Certificate
	key     crypto.Signer
	leafKey *ecdsa.PrivateKey
	now     func() time.Time

	mu    sync.Mutex
	cache map[string]*list.Element // host → element whose Value is *leafEntry
	lru   *list.List               // front = most recently used
	max   int
}

// leafEntry is one cached (or being minted) leaf. ready is closed once cert/err are set; concurrent callers
// for the same host wait on it, so a burst of tunnels to one host signs once.
type leafEntry struct {
	host  string
	ready chan struct{}
	cert  *tls.Certificate
	err   error
}

// LoadCA parses a PEM CA certificate and its PEM private key (PKCS#8, SEC 1 "EC PRIVATE KEY" or PKCS#1)
// and checks that they belong together and that the certificate may sign certificates.
func LoadCA(certPEM, keyPEM []byte) (*CA, error) {
	cb, _ := pem.Decode(certPEM)
	if cb == nil || cb.Type != "CERTIFICATE" {
		return nil, errors.New("proxy CA: no CERTIFICATE PEM block")
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("proxy CA: parse certificate: %w", err)
	}
	if !cert.BasicConstraintsValid || !cert.IsCA {
		return nil, errors.New("proxy CA: certificate is not a CA")
	}
	if cert.KeyUsage != 0 && cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, errors.New("proxy CA: certificate lacks keyCertSign")
	}
	key, err := parsePrivateKey(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("proxy CA: %w", err)
	}
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(cert.PublicKey) {
		return nil, errors.New("proxy CA: private key does not match certificate")
	}
	leafKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("proxy CA: leaf key: %w", err)
	}
	return &CA{
		cert:    cert,
		key:     key,
		leafKey: leafKey,
		now:     time.Now,
		cache:   make(map[string]*list.Element),
		lru:     list.New(),
		max:     leafCacheSize,
	}, nil
}

func parsePrivateKey(keyPEM []byte) (crypto.Signer, error) {
	kb, _ := pem.Decode(keyPEM)
	if kb == nil {
		return nil, errors.New("no private key PEM block")
	}
	var (
		k   any
		err error
	)
	switch kb.Type {
	case "PRIVATE KEY":
		k, err = x509.ParsePKCS8PrivateKey(kb.Bytes)
	case "EC PRIVATE KEY":
		k, err = x509.ParseECPrivateKey(kb.Bytes)
	case "RSA PRIVATE KEY":
		k, err = x509.ParsePKCS1PrivateKey(kb.Bytes)
	default:
		return nil, fmt.Errorf("unsupported private key PEM type %q", kb.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("parse private key: %w", err)
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("private key type %T cannot sign", k)
	}
	return s, nil
}

// GenerateCA creates a self-signed P-256 proxy CA: CA:TRUE with pathlen 0 (it only ever signs leaves) and
// extended key usage serverAuth, which Go, OpenSSL and hence Python/Twisted honour on CA certificates, so the
// CA cannot vouch for client or code-signing certificates.
//
// It carries no name constraints: the homeserver federates with whatever domains the federation list holds,
// and that list changes at runtime. The containment is instead where the CA is trusted: only the homeserver's
// federation client (federation_custom_ca_list), never a system trust store.
func GenerateCA(commonName string, validity time.Duration) (certPEM, keyPEM []byte, err error) {
	if validity <= 0 {
		return nil, nil, errors.New("generate proxy CA: validity must be positive")
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generate proxy CA: key: %w", err)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, nil, fmt.Errorf("generate proxy CA: %w", err)
	}
	skid, err := keyID(key.Public())
	if err != nil {
		return nil, nil, fmt.Errorf("generate proxy CA: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: commonName},
		NotBefore:             now.Add(-leafBackdate),
		NotAfter:              now.Add(validity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            0,
		MaxPathLenZero:        true,
		SubjectKeyId:          skid,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, nil, fmt.Errorf("generate proxy CA: sign: %w", err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("generate proxy CA: marshal key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), nil
}

// Certificate returns the CA certificate, e.g. to write the file the homeserver trusts.
func (c *CA) Certificate() *x509.Certificate { return c.cert }

// CertificateFor returns a leaf certificate for host (a DNS name or IP literal), minting it on first use.
// Leaves are cached in a bounded LRU and re-minted once they come within six hours of expiry.
func (c *CA) CertificateFor(host string) (*tls.Certificate, error) {
	h, err := normaliseHost(host)
	if err != nil {
		return nil, fmt.Errorf("proxy CA: %w", err)
	}
	now := c.now()
	c.mu.Lock()
	if el, ok := c.cache[h]; ok {
		e := el.Value.(*leafEntry)
		select {
		case <-e.ready:
			if e.err == nil && now.Add(leafRenewLead).Before(e.cert.Leaf.NotAfter) {
				c.lru.MoveToFront(el)
				c.mu.Unlock()
				return e.cert, nil
			}
			// Stale or failed: replace below.
			c.lru.Remove(el)
			delete(c.cache, h)
		default:
			c.lru.MoveToFront(el)
			c.mu.Unlock()
			<-e.ready
			return e.cert, e.err
		}
	}
	e := &leafEntry{host: h, ready: make(chan struct{})}
	c.cache[h] = c.lru.PushFront(e)
	for c.lru.Len() > c.max {
		old := c.lru.Back()
		c.lru.Remove(old)
		delete(c.cache, old.Value.(*leafEntry).host)
	}
	c.mu.Unlock()

	e.cert, e.err = c.mint(h, now)
	close(e.ready)
	if e.err != nil {
		c.mu.Lock()
		if el, ok := c.cache[h]; ok && el.Value == e {
			c.lru.Remove(el)
			delete(c.cache, h)
		}
		c.mu.Unlock()
	}
	return e.cert, e.err
}

func (c *CA) mint(host string, now time.Time) (*tls.Certificate, error) {
	serial, err := randomSerial()
	if err != nil {
		return nil, fmt.Errorf("proxy CA: mint %s: %w", host, err)
	}
	notAfter := now.Add(leafValidity)
	if notAfter.After(c.cert.NotAfter) {
		notAfter = c.cert.NotAfter
	}
	if !notAfter.After(now) {
		return nil, fmt.Errorf("proxy CA: mint %s: CA certificate expired at %s", host, c.cert.NotAfter.Format(time.RFC3339))
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: host},
		NotBefore:             now.Add(-leafBackdate),
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	if a, err := netip.ParseAddr(host); err == nil {
		tmpl.IPAddresses = append(tmpl.IPAddresses, a.AsSlice())
	} else {
		tmpl.DNSNames = []string{host}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.cert, c.leafKey.Public(), c.key)
	if err != nil {
		return nil, fmt.Errorf("proxy CA: mint %s: %w", host, err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("proxy CA: mint %s: reparse: %w", host, err)
	}
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: c.leafKey, Leaf: leaf}, nil
}

func randomSerial() (*big.Int, error) {
	s, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("serial: %w", err)
	}
	return s.Add(s, big.NewInt(1)), nil
}

func keyID(pub crypto.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("key id: %w", err)
	}
	// RFC 5280 §4.2.1.2 (1): SHA-1 of the subjectPublicKey BIT STRING; hashing the whole SPKI is an accepted
	// variant and what matters is only that AKI of leaves equals this value, which x509 copies itself.
	sum := sha1.Sum(der) //nolint:gosec // identifier, not a security function
	return bytes.Clone(sum[:]), nil
}
