package certs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
)

// Chain-validation failures. Every error from Validate wraps exactly one of these, so callers and the CLI
// can name the check that failed.
var (
	ErrExpired           = errors.New("certificate expired")
	ErrNotYetValid       = errors.New("certificate not yet valid")
	ErrUnknownIssuer     = errors.New("issuer not in trust store")
	ErrSelfSigned        = errors.New("self-signed certificate is not a trust anchor")
	ErrIssuerNotCA       = errors.New("issuer is not a CA")
	ErrKeyUsage          = errors.New("key usage does not permit this use")
	ErrCertificateType   = errors.New("certificate type not permitted")
	ErrRole              = errors.New("required admission role missing")
	ErrProfession        = errors.New("profession OID not permitted")
	ErrUnhandledCritical = errors.New("unhandled critical extension")
	ErrRevoked           = errors.New("certificate revoked")
	ErrRevocationUnknown = errors.New("revocation status unknown")
	ErrAnchorRevoked     = errors.New("issuing CA service revoked in TSL")
	ErrChainTooLong      = errors.New("certificate chain too long")
)

// Anchor is a trusted issuing CA. In the TI model (TUC_PKI_018) trust is anchored on the issuing CA
// certificates listed in a verified TSL (or configured as PEM), not on a root.
type Anchor struct {
	Cert *Certificate
	// Source says where the anchor came from ("pem:FILE", "tsl:SEQ").
	Source string
	// PermittedTypes lists the certificate-type policy OIDs the TSL allows this CA to issue
	// (ServiceInformationExtensions). Empty means "not restricted" (PEM anchors).
	PermittedTypes []string
	// RevokedSince is set when the TSL service status is revoked: certificates issued (notBefore) after it
	// are refused, earlier ones stay valid (TUC_PKI_018).
	RevokedSince time.Time
	// OCSPURLs are the TSL ServiceSupplyPoints of the CA, preferred over the certificate's AIA.
	OCSPURLs []string
}

// TrustStore holds trust anchors (issuing CAs) and trusted OCSP responder certificates. It is safe for
// concurrent reads; build it fully before sharing.
type TrustStore struct {
	mu         sync.RWMutex
	anchors    []*Anchor
	bySubject  map[string][]*Anchor
	responders []*Certificate
}

// NewTrustStore returns a store holding the given CA certificates as anchors.
func NewTrustStore(cas ...*Certificate) *TrustStore {
	s := &TrustStore{bySubject: map[string][]*Anchor{}}
	for _, c := range cas {
		s.AddAnchor(&Anchor{Cert: c, Source: "config"})
	}
	return s
}

// AddAnchor adds a trust anchor; a certificate already present is not added twice.
func (s *TrustStore) AddAnchor(a *Anchor) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.bySubject == nil {
		s.bySubject = map[string][]*Anchor{}
	}
	key := string(a.Cert.RawSubject)
	for _, have := range s.bySubject[key] {
		if have.Cert.Equal(a.Cert) {
			return
		}
	}
	s.anchors = append(s.anchors, a)
	s.bySubject[key] = append(s.bySubject[key], a)
}

// AddOCSPResponder trusts cert to sign OCSP responses (TSL service type Certstatus/OCSP, or a configured
// test responder).
func (s *TrustStore) AddOCSPResponder(cert *Certificate) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.responders = append(s.responders, cert)
}

// Anchors returns a copy of the anchor list.
func (s *TrustStore) Anchors() []*Anchor {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return append([]*Anchor(nil), s.anchors...)
}

// IsTrustedOCSPResponder reports whether cert was added as a trusted OCSP responder.
func (s *TrustStore) IsTrustedOCSPResponder(cert *Certificate) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, r := range s.responders {
		if r.Equal(cert) {
			return true
		}
	}
	return false
}

// HasTestOnlyAnchor reports whether any anchor says TEST-ONLY in its subject; production configurations
// refuse such a store.
func (s *TrustStore) HasTestOnlyAnchor() bool {
	for _, a := range s.Anchors() {
		if strings.Contains(a.Cert.Subject.String(), "TEST-ONLY") {
			return true
		}
	}
	return false
}

// LoadPEMDir adds every certificate in *.pem, *.crt, *.cer and *.der files of dir as an anchor.
func (s *TrustStore) LoadPEMDir(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("trust store: %w", err)
	}
	n := 0
	for _, e := range entries {
		ext := strings.ToLower(filepath.Ext(e.Name()))
		if e.IsDir() || (ext != ".pem" && ext != ".crt" && ext != ".cer" && ext != ".der") {
			continue
		}
		path := filepath.Join(dir, e.Name())
		data, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("trust store: %w", err)
		}
		var cs []*Certificate
		if bytes.Contains(data, []byte("-----BEGIN")) {
			cs, err = ParseCertificatesPEM(data)
		} else {
			var c *Certificate
			c, err = ParseCertificate(data)
			cs = []*Certificate{c}
		}
		if err != nil {
			return fmt.Errorf("trust store: %s: %w", path, err)
		}
		for _, c := range cs {
			s.AddAnchor(&Anchor{Cert: c, Source: "pem:" + e.Name()})
			n++
		}
	}
	if n == 0 {
		return fmt.Errorf("trust store: no certificates in %s", dir)
	}
	return nil
}

// LoadTrustStoreDir returns a new store with the anchors from dir.
func LoadTrustStoreDir(dir string) (*TrustStore, error) {
	s := NewTrustStore()
	if err := s.LoadPEMDir(dir); err != nil {
		return nil, err
	}
	return s, nil
}

// issuersOf returns the anchors whose subject equals c's issuer, best match (authority key ID) first.
func (s *TrustStore) issuersOf(c *Certificate) []*Anchor {
	s.mu.RLock()
	cands := append([]*Anchor(nil), s.bySubject[string(c.RawIssuer)]...)
	s.mu.RUnlock()
	if len(c.AuthorityKeyID) > 0 {
		sort.SliceStable(cands, func(i, j int) bool {
			return bytes.Equal(cands[i].Cert.SubjectKeyID, c.AuthorityKeyID) && !bytes.Equal(cands[j].Cert.SubjectKeyID, c.AuthorityKeyID)
		})
	}
	return cands
}

// ChainError names the check that failed and the certificate it failed on.
type ChainError struct {
	Check   string // "validity", "issuer", "signature", "ca", "key-usage", "type", "role", "profession", "ocsp", …
	Subject string
	Err     error
}

func (e *ChainError) Error() string {
	return fmt.Sprintf("%s check failed for %q: %v", e.Check, e.Subject, e.Err)
}

func (e *ChainError) Unwrap() error { return e.Err }

func chainErr(check string, c *Certificate, err error) error {
	return &ChainError{Check: check, Subject: c.Subject.String(), Err: err}
}

// RevocationChecker answers whether cert (issued by issuer) is revoked at time at. The OCSP checker
// implements it; a nil checker means revocation is not checked (OCSP policy "off").
type RevocationChecker interface {
	CheckRevocation(ctx context.Context, cert, issuer *Certificate, at time.Time) error
}

// VerifyOptions say what a certificate must satisfy.
type VerifyOptions struct {
	// At is the time at which the chain is checked. Required: there is no implicit "now", so that the
	// clock of every decision is explicit (test cards and TSLs are only valid in narrow windows).
	At time.Time
	// Intermediates are extra certificates (x5c[1:]) that may link the leaf to an anchor.
	Intermediates []*Certificate
	// KeyUsage lists bits the leaf must have (e.g. KeyUsageDigitalSignature for a signer).
	KeyUsage KeyUsage
	// CertificateTypes, when set, restricts the leaf's certificate type (C.FD.SIG, C.HP.AUT, …).
	CertificateTypes []CertificateType
	// Role, when set, is an admission OID the leaf must carry (e.g. RoleVZDTI for the federation list).
	Role string
	// ProfessionKinds, when set, requires the leaf's first profession OID to be of one of these kinds.
	ProfessionKinds []ProfessionKind
	// Revocation checks each certificate of the chain below the anchor; nil = not checked.
	Revocation RevocationChecker
}

const maxChainLength = 4

// Verify validates leaf against the store and returns the chain leaf → … → anchor.
//
// The checks, in order: the leaf's own profile (critical extensions, key usage, type, role, profession),
// then per link: validity at opts.At, issuer lookup, the issuer being a CA with keyCertSign, the issuer's
// signature, the TSL's permitted types and service status, and revocation.
func (s *TrustStore) Verify(ctx context.Context, leaf *Certificate, opts VerifyOptions) ([]*Certificate, error) {
	if opts.At.IsZero() {
		return nil, errors.New("verify: no time given")
	}
	if err := checkLeafProfile(leaf, opts); err != nil {
		return nil, err
	}
	chain := []*Certificate{leaf}
	cur := leaf
	for depth := 0; ; depth++ {
		if depth >= maxChainLength {
			return nil, chainErr("chain", leaf, ErrChainTooLong)
		}
		if err := checkValidity(cur, opts.At); err != nil {
			return nil, err
		}
		if len(cur.UnhandledCriticalExtensions) > 0 {
			return nil, chainErr("extensions", cur, fmt.Errorf("%w: %v", ErrUnhandledCritical, cur.UnhandledCriticalExtensions))
		}
		// Anchors first: a certificate issued directly by a trusted CA ends the chain.
		var lastErr error
		for _, a := range s.issuersOf(cur) {
			if err := checkIssuer(cur, a.Cert, opts.At); err != nil {
				lastErr = err
				continue
			}
			if err := checkAnchorPolicy(cur, a); err != nil {
				return nil, err
			}
			if err := checkValidity(a.Cert, opts.At); err != nil {
				return nil, err
			}
			if err := revocation(ctx, opts.Revocation, cur, a.Cert, opts.At); err != nil {
				return nil, err
			}
			return append(chain, a.Cert), nil
		}
		if lastErr != nil {
			return nil, lastErr
		}
		next := findIntermediate(cur, opts.Intermediates, chain)
		if next == nil {
			if bytes.Equal(cur.RawIssuer, cur.RawSubject) && cur.CheckSignatureFrom(cur) == nil {
				return nil, chainErr("issuer", cur, ErrSelfSigned)
			}
			return nil, chainErr("issuer", cur, fmt.Errorf("%w: %s", ErrUnknownIssuer, cur.Issuer.String()))
		}
		if err := checkIssuer(cur, next, opts.At); err != nil {
			return nil, err
		}
		if err := revocation(ctx, opts.Revocation, cur, next, opts.At); err != nil {
			return nil, err
		}
		chain = append(chain, next)
		cur = next
	}
}

func findIntermediate(c *Certificate, pool, chain []*Certificate) *Certificate {
	for _, cand := range pool {
		if !bytes.Equal(cand.RawSubject, c.RawIssuer) {
			continue
		}
		used := false
		for _, x := range chain {
			if x.Equal(cand) {
				used = true
			}
		}
		if !used {
			return cand
		}
	}
	return nil
}

func checkValidity(c *Certificate, at time.Time) error {
	if at.Before(c.NotBefore) {
		return chainErr("validity", c, fmt.Errorf("%w: notBefore %s is after %s", ErrNotYetValid, c.NotBefore.UTC().Format(time.RFC3339), at.UTC().Format(time.RFC3339)))
	}
	if at.After(c.NotAfter) {
		return chainErr("validity", c, fmt.Errorf("%w: notAfter %s is before %s", ErrExpired, c.NotAfter.UTC().Format(time.RFC3339), at.UTC().Format(time.RFC3339)))
	}
	return nil
}

func checkIssuer(c, issuer *Certificate, at time.Time) error {
	if !issuer.BasicConstraintsValid || !issuer.IsCA {
		return chainErr("ca", issuer, ErrIssuerNotCA)
	}
	if issuer.HasKeyUsage && issuer.KeyUsage&KeyUsageCertSign == 0 {
		return chainErr("key-usage", issuer, fmt.Errorf("%w: issuer lacks keyCertSign", ErrKeyUsage))
	}
	if err := c.CheckSignatureFrom(issuer); err != nil {
		return chainErr("signature", c, err)
	}
	return nil
}

func checkAnchorPolicy(c *Certificate, a *Anchor) error {
	if !a.RevokedSince.IsZero() && !c.NotBefore.Before(a.RevokedSince) {
		return chainErr("tsl-status", c, ErrAnchorRevoked)
	}
	if len(a.PermittedTypes) == 0 {
		return nil
	}
	for _, p := range c.Policies {
		for _, allowed := range a.PermittedTypes {
			if p.String() == allowed {
				return nil
			}
		}
	}
	return chainErr("type", c, fmt.Errorf("%w: issuing CA may not issue %q", ErrCertificateType, c.CertificateType()))
}

func checkLeafProfile(leaf *Certificate, opts VerifyOptions) error {
	if opts.KeyUsage != 0 && (!leaf.HasKeyUsage || leaf.KeyUsage&opts.KeyUsage != opts.KeyUsage) {
		return chainErr("key-usage", leaf, ErrKeyUsage)
	}
	if len(opts.CertificateTypes) > 0 {
		ok := false
		for _, t := range opts.CertificateTypes {
			if leaf.HasPolicy(CertificateTypeOID(t)) {
				ok = true
			}
		}
		if !ok {
			return chainErr("type", leaf, fmt.Errorf("%w: have %q, want one of %v", ErrCertificateType, leaf.CertificateType(), opts.CertificateTypes))
		}
	}
	if opts.Role != "" && !leaf.HasRole(opts.Role) {
		return chainErr("role", leaf, fmt.Errorf("%w: %s", ErrRole, opts.Role))
	}
	if len(opts.ProfessionKinds) > 0 {
		oids := leaf.ProfessionOIDs()
		if len(oids) == 0 {
			return chainErr("profession", leaf, fmt.Errorf("%w: none present", ErrProfession))
		}
		kind, _ := ClassifyProfessionOID(oids[0])
		ok := false
		for _, k := range opts.ProfessionKinds {
			if k == kind {
				ok = true
			}
		}
		if !ok {
			return chainErr("profession", leaf, fmt.Errorf("%w: %s is %s", ErrProfession, oids[0], kind))
		}
	}
	return nil
}

func revocation(ctx context.Context, rc RevocationChecker, c, issuer *Certificate, at time.Time) error {
	if rc == nil || c.OCSPNoCheck {
		return nil
	}
	if err := rc.CheckRevocation(ctx, c, issuer, at); err != nil {
		var ce *ChainError
		if errors.As(err, &ce) {
			return err
		}
		return chainErr("ocsp", c, err)
	}
	return nil
}
