package certs

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// SignatureAlgorithm names an X.509/OCSP signature algorithm timstack verifies.
type SignatureAlgorithm string

// Signature algorithms found in TI certificates, OCSP responses and TSLs.
const (
	ECDSAWithSHA256  SignatureAlgorithm = "ecdsa-with-SHA256"
	ECDSAWithSHA384  SignatureAlgorithm = "ecdsa-with-SHA384"
	ECDSAWithSHA512  SignatureAlgorithm = "ecdsa-with-SHA512"
	SHA256WithRSA    SignatureAlgorithm = "sha256WithRSAEncryption"
	SHA384WithRSA    SignatureAlgorithm = "sha384WithRSAEncryption"
	SHA512WithRSA    SignatureAlgorithm = "sha512WithRSAEncryption"
	SHA256WithRSAPSS SignatureAlgorithm = "rsassa-pss-SHA256"
	SHA384WithRSAPSS SignatureAlgorithm = "rsassa-pss-SHA384"
	SHA512WithRSAPSS SignatureAlgorithm = "rsassa-pss-SHA512"
)

func (a SignatureAlgorithm) hash() crypto.Hash {
	switch a {
	case ECDSAWithSHA256, SHA256WithRSA, SHA256WithRSAPSS:
		return crypto.SHA256
	case ECDSAWithSHA384, SHA384WithRSA, SHA384WithRSAPSS:
		return crypto.SHA384
	case ECDSAWithSHA512, SHA512WithRSA, SHA512WithRSAPSS:
		return crypto.SHA512
	}
	return 0
}

func (a SignatureAlgorithm) isECDSA() bool {
	return a == ECDSAWithSHA256 || a == ECDSAWithSHA384 || a == ECDSAWithSHA512
}
func (a SignatureAlgorithm) isRSA() bool {
	return a == SHA256WithRSA || a == SHA384WithRSA || a == SHA512WithRSA
}
func (a SignatureAlgorithm) isPSS() bool {
	return a == SHA256WithRSAPSS || a == SHA384WithRSAPSS || a == SHA512WithRSAPSS
}

// KeyUsage is the X.509 key usage bit set, with the bit values of crypto/x509.
type KeyUsage int

// Key usage bits (RFC 5280 §4.2.1.3).
const (
	KeyUsageDigitalSignature KeyUsage = 1 << iota
	KeyUsageContentCommitment
	KeyUsageKeyEncipherment
	KeyUsageDataEncipherment
	KeyUsageKeyAgreement
	KeyUsageCertSign
	KeyUsageCRLSign
	KeyUsageEncipherOnly
	KeyUsageDecipherOnly
)

// Certificate is a parsed X.509 certificate of the TI PKI. Unlike crypto/x509 it accepts brainpool keys
// and exposes the TI extensions (Admission, certificate policies as certificate types).
type Certificate struct {
	Raw                     []byte // complete DER
	RawTBSCertificate       []byte // the signed part, as found
	RawSubjectPublicKeyInfo []byte
	RawSubject              []byte
	RawIssuer               []byte

	Version      int
	SerialNumber *big.Int
	Subject      Name
	Issuer       Name
	NotBefore    time.Time
	NotAfter     time.Time

	PublicKey          crypto.PublicKey // *ecdsa.PublicKey (brainpool or NIST) or *rsa.PublicKey
	SignatureAlgorithm SignatureAlgorithm
	Signature          []byte

	Extensions                  []pkix.Extension
	UnhandledCriticalExtensions []asn1.ObjectIdentifier

	KeyUsage              KeyUsage
	HasKeyUsage           bool
	ExtKeyUsage           []asn1.ObjectIdentifier
	BasicConstraintsValid bool
	IsCA                  bool
	MaxPathLen            int // -1 when absent
	Policies              []asn1.ObjectIdentifier
	Admission             *Admission // nil when the certificate has no Admission extension
	OCSPServers           []string
	IssuingCertificateURL []string
	SubjectKeyID          []byte
	AuthorityKeyID        []byte
	OCSPNoCheck           bool
}

// ParseCertificate parses one DER certificate. It never panics on malformed input (fuzzed).
func ParseCertificate(der []byte) (*Certificate, error) {
	c, err := parseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("certificate: %w", err)
	}
	return c, nil
}

// ParseCertificatesPEM parses every CERTIFICATE block in data; other blocks are skipped.
func ParseCertificatesPEM(data []byte) ([]*Certificate, error) {
	var out []*Certificate
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := ParseCertificate(b.Bytes)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, errors.New("certificate: no PEM CERTIFICATE block found")
	}
	return out, nil
}

// ParseCertificatePEMOrDER accepts one certificate as PEM or DER (what `pki inspect` reads).
func ParseCertificatePEMOrDER(data []byte) (*Certificate, error) {
	if bytes.Contains(data, []byte("-----BEGIN")) {
		cs, err := ParseCertificatesPEM(data)
		if err != nil {
			return nil, err
		}
		return cs[0], nil
	}
	return ParseCertificate(data)
}

// EncodePEM returns the certificate as a PEM block.
func (c *Certificate) EncodePEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}

func parseCertificate(der []byte) (*Certificate, error) {
	c := &Certificate{Raw: der, MaxPathLen: -1}
	input := cryptobyte.String(der)
	var cert cryptobyte.String
	if !input.ReadASN1(&cert, cbasn1.SEQUENCE) || !input.Empty() {
		return nil, errors.New("malformed certificate")
	}
	var tbs cryptobyte.String
	if !cert.ReadASN1Element(&tbs, cbasn1.SEQUENCE) {
		return nil, errors.New("malformed tbsCertificate")
	}
	c.RawTBSCertificate = tbs
	if !tbs.ReadASN1(&tbs, cbasn1.SEQUENCE) {
		return nil, errors.New("malformed tbsCertificate")
	}
	c.Version = 1
	if tbs.PeekASN1Tag(cbasn1.Tag(0).Constructed().ContextSpecific()) {
		var v cryptobyte.String
		var version int64
		if !tbs.ReadASN1(&v, cbasn1.Tag(0).Constructed().ContextSpecific()) || !v.ReadASN1Integer(&version) || !v.Empty() {
			return nil, errors.New("malformed version")
		}
		if version < 0 || version > 2 {
			return nil, fmt.Errorf("invalid version %d", version)
		}
		c.Version = int(version) + 1
	}
	c.SerialNumber = new(big.Int)
	if !tbs.ReadASN1Integer(c.SerialNumber) {
		return nil, errors.New("malformed serial number")
	}
	var innerSigAlg cryptobyte.String
	if !tbs.ReadASN1Element(&innerSigAlg, cbasn1.SEQUENCE) {
		return nil, errors.New("malformed signature algorithm")
	}
	var issuer, validity, subject, spki cryptobyte.String
	if !tbs.ReadASN1Element(&issuer, cbasn1.SEQUENCE) {
		return nil, errors.New("malformed issuer")
	}
	c.RawIssuer = issuer
	if !tbs.ReadASN1(&validity, cbasn1.SEQUENCE) {
		return nil, errors.New("malformed validity")
	}
	var err error
	if c.NotBefore, err = readTime(&validity); err != nil {
		return nil, fmt.Errorf("notBefore: %w", err)
	}
	if c.NotAfter, err = readTime(&validity); err != nil {
		return nil, fmt.Errorf("notAfter: %w", err)
	}
	if !tbs.ReadASN1Element(&subject, cbasn1.SEQUENCE) {
		return nil, errors.New("malformed subject")
	}
	c.RawSubject = subject
	if !tbs.ReadASN1Element(&spki, cbasn1.SEQUENCE) {
		return nil, errors.New("malformed subjectPublicKeyInfo")
	}
	c.RawSubjectPublicKeyInfo = spki
	if c.Issuer, err = ParseName(issuer); err != nil {
		return nil, fmt.Errorf("issuer: %w", err)
	}
	if c.Subject, err = ParseName(subject); err != nil {
		return nil, fmt.Errorf("subject: %w", err)
	}
	if c.PublicKey, err = ParsePKIXPublicKey(spki); err != nil {
		return nil, err
	}
	// Skip issuerUniqueID [1] and subjectUniqueID [2].
	for _, tag := range []cbasn1.Tag{cbasn1.Tag(1).ContextSpecific(), cbasn1.Tag(2).ContextSpecific()} {
		if !tbs.SkipOptionalASN1(tag) {
			return nil, errors.New("malformed unique identifier")
		}
	}
	if tbs.PeekASN1Tag(cbasn1.Tag(3).Constructed().ContextSpecific()) {
		if c.Version != 3 {
			return nil, errors.New("extensions in a non-v3 certificate")
		}
		var exts cryptobyte.String
		if !tbs.ReadASN1(&exts, cbasn1.Tag(3).Constructed().ContextSpecific()) || !exts.ReadASN1(&exts, cbasn1.SEQUENCE) {
			return nil, errors.New("malformed extensions")
		}
		if err := c.parseExtensions(exts); err != nil {
			return nil, err
		}
	}
	if !tbs.Empty() {
		return nil, errors.New("trailing data in tbsCertificate")
	}

	var outerSigAlg cryptobyte.String
	if !cert.ReadASN1Element(&outerSigAlg, cbasn1.SEQUENCE) {
		return nil, errors.New("malformed outer signature algorithm")
	}
	if !bytes.Equal(innerSigAlg, outerSigAlg) {
		return nil, errors.New("inner and outer signature algorithms differ")
	}
	// An unknown signature algorithm is not a parse error: the certificate can still be inspected, but
	// CheckSignatureFrom will refuse it.
	c.SignatureAlgorithm, _ = parseSignatureAlgorithm(outerSigAlg)
	var sig asn1.BitString
	var sigBytes cryptobyte.String
	if !cert.ReadASN1Element(&sigBytes, cbasn1.BIT_STRING) || !cert.Empty() {
		return nil, errors.New("malformed signature")
	}
	if rest, err := asn1.Unmarshal(sigBytes, &sig); err != nil || len(rest) != 0 || sig.BitLength%8 != 0 {
		return nil, errors.New("malformed signature")
	}
	c.Signature = sig.Bytes
	return c, nil
}

func readTime(s *cryptobyte.String) (time.Time, error) {
	var t time.Time
	switch {
	case s.PeekASN1Tag(cbasn1.UTCTime):
		if !s.ReadASN1UTCTime(&t) {
			return t, errors.New("malformed UTCTime")
		}
	case s.PeekASN1Tag(cbasn1.GeneralizedTime):
		if !s.ReadASN1GeneralizedTime(&t) {
			return t, errors.New("malformed GeneralizedTime")
		}
	default:
		return t, errors.New("unsupported time type")
	}
	return t, nil
}

type pssParameters struct {
	Hash         pkix.AlgorithmIdentifier `asn1:"explicit,tag:0,optional"`
	MGF          pkix.AlgorithmIdentifier `asn1:"explicit,tag:1,optional"`
	SaltLength   int                      `asn1:"explicit,tag:2,optional,default:20"`
	TrailerField int                      `asn1:"optional,explicit,tag:3,default:1"`
}

func parseSignatureAlgorithm(der []byte) (SignatureAlgorithm, error) {
	var ai pkix.AlgorithmIdentifier
	if rest, err := asn1.Unmarshal(der, &ai); err != nil || len(rest) != 0 {
		return "", errors.New("malformed algorithm identifier")
	}
	switch {
	case ai.Algorithm.Equal(OIDSignatureECDSAWithSHA256):
		return ECDSAWithSHA256, nil
	case ai.Algorithm.Equal(OIDSignatureECDSAWithSHA384):
		return ECDSAWithSHA384, nil
	case ai.Algorithm.Equal(OIDSignatureECDSAWithSHA512):
		return ECDSAWithSHA512, nil
	case ai.Algorithm.Equal(OIDSignatureSHA256WithRSA):
		return SHA256WithRSA, nil
	case ai.Algorithm.Equal(OIDSignatureSHA384WithRSA):
		return SHA384WithRSA, nil
	case ai.Algorithm.Equal(OIDSignatureSHA512WithRSA):
		return SHA512WithRSA, nil
	case ai.Algorithm.Equal(OIDSignatureRSAPSS):
		var p pssParameters
		if rest, err := asn1.Unmarshal(ai.Parameters.FullBytes, &p); err != nil || len(rest) != 0 {
			return "", errors.New("malformed RSASSA-PSS parameters")
		}
		var mgfHash pkix.AlgorithmIdentifier
		if !p.MGF.Algorithm.Equal(OIDMGF1) {
			return "", errors.New("RSASSA-PSS: unsupported mask generation function")
		}
		if _, err := asn1.Unmarshal(p.MGF.Parameters.FullBytes, &mgfHash); err != nil || !mgfHash.Algorithm.Equal(p.Hash.Algorithm) || p.TrailerField != 1 {
			return "", errors.New("RSASSA-PSS: unsupported parameters")
		}
		switch {
		case p.Hash.Algorithm.Equal(OIDDigestSHA256) && p.SaltLength == 32:
			return SHA256WithRSAPSS, nil
		case p.Hash.Algorithm.Equal(OIDDigestSHA384) && p.SaltLength == 48:
			return SHA384WithRSAPSS, nil
		case p.Hash.Algorithm.Equal(OIDDigestSHA512) && p.SaltLength == 64:
			return SHA512WithRSAPSS, nil
		}
		return "", errors.New("RSASSA-PSS: unsupported hash or salt length")
	}
	return "", fmt.Errorf("unsupported signature algorithm %s", ai.Algorithm)
}

func (c *Certificate) parseExtensions(exts cryptobyte.String) error {
	seen := map[string]bool{}
	for !exts.Empty() {
		var ext cryptobyte.String
		var e pkix.Extension
		if !exts.ReadASN1(&ext, cbasn1.SEQUENCE) || !ext.ReadASN1ObjectIdentifier(&e.Id) {
			return errors.New("malformed extension")
		}
		if ext.PeekASN1Tag(cbasn1.BOOLEAN) && !ext.ReadASN1Boolean(&e.Critical) {
			return errors.New("malformed extension criticality")
		}
		var val cryptobyte.String
		if !ext.ReadASN1(&val, cbasn1.OCTET_STRING) || !ext.Empty() {
			return errors.New("malformed extension value")
		}
		e.Value = val
		if seen[e.Id.String()] {
			return fmt.Errorf("duplicate extension %s", e.Id)
		}
		seen[e.Id.String()] = true
		c.Extensions = append(c.Extensions, e)
		handled, err := c.applyExtension(e)
		if err != nil {
			return fmt.Errorf("extension %s: %w", e.Id, err)
		}
		if e.Critical && !handled {
			c.UnhandledCriticalExtensions = append(c.UnhandledCriticalExtensions, e.Id)
		}
	}
	return nil
}

func (c *Certificate) applyExtension(e pkix.Extension) (bool, error) {
	v := cryptobyte.String(e.Value)
	switch {
	case e.Id.Equal(OIDExtKeyUsage):
		var bits asn1.BitString
		if rest, err := asn1.Unmarshal(e.Value, &bits); err != nil || len(rest) != 0 {
			return false, errors.New("malformed key usage")
		}
		for i := 0; i < 9; i++ {
			if bits.At(i) != 0 {
				c.KeyUsage |= 1 << uint(i)
			}
		}
		c.HasKeyUsage = true
	case e.Id.Equal(OIDExtBasicConstraints):
		var bc cryptobyte.String
		if !v.ReadASN1(&bc, cbasn1.SEQUENCE) || !v.Empty() {
			return false, errors.New("malformed basic constraints")
		}
		if bc.PeekASN1Tag(cbasn1.BOOLEAN) && !bc.ReadASN1Boolean(&c.IsCA) {
			return false, errors.New("malformed basic constraints")
		}
		if bc.PeekASN1Tag(cbasn1.INTEGER) {
			var pl int64
			if !bc.ReadASN1Integer(&pl) || pl < 0 {
				return false, errors.New("malformed path length")
			}
			c.MaxPathLen = int(pl)
		}
		if !bc.Empty() {
			return false, errors.New("malformed basic constraints")
		}
		c.BasicConstraintsValid = true
	case e.Id.Equal(OIDExtCertificatePolicies):
		var seq cryptobyte.String
		if !v.ReadASN1(&seq, cbasn1.SEQUENCE) || !v.Empty() {
			return false, errors.New("malformed certificate policies")
		}
		for !seq.Empty() {
			var pi cryptobyte.String
			var oid asn1.ObjectIdentifier
			if !seq.ReadASN1(&pi, cbasn1.SEQUENCE) || !pi.ReadASN1ObjectIdentifier(&oid) {
				return false, errors.New("malformed policy information")
			}
			c.Policies = append(c.Policies, oid)
		}
	case e.Id.Equal(OIDExtExtendedKeyUsage):
		var seq cryptobyte.String
		if !v.ReadASN1(&seq, cbasn1.SEQUENCE) || !v.Empty() {
			return false, errors.New("malformed extended key usage")
		}
		for !seq.Empty() {
			var oid asn1.ObjectIdentifier
			if !seq.ReadASN1ObjectIdentifier(&oid) {
				return false, errors.New("malformed extended key usage")
			}
			c.ExtKeyUsage = append(c.ExtKeyUsage, oid)
		}
	case e.Id.Equal(OIDExtAuthorityInfoAccess):
		var seq cryptobyte.String
		if !v.ReadASN1(&seq, cbasn1.SEQUENCE) || !v.Empty() {
			return false, errors.New("malformed authority information access")
		}
		for !seq.Empty() {
			var ad cryptobyte.String
			var method asn1.ObjectIdentifier
			var uri cryptobyte.String
			var tag cbasn1.Tag
			if !seq.ReadASN1(&ad, cbasn1.SEQUENCE) || !ad.ReadASN1ObjectIdentifier(&method) || !ad.ReadAnyASN1(&uri, &tag) {
				return false, errors.New("malformed access description")
			}
			if tag != cbasn1.Tag(6).ContextSpecific() { // uniformResourceIdentifier
				continue
			}
			switch {
			case method.Equal(OIDAccessMethodOCSP):
				c.OCSPServers = append(c.OCSPServers, string(uri))
			case method.Equal(OIDAccessMethodCAIssuers):
				c.IssuingCertificateURL = append(c.IssuingCertificateURL, string(uri))
			}
		}
	case e.Id.Equal(OIDExtSubjectKeyID):
		var id cryptobyte.String
		if !v.ReadASN1(&id, cbasn1.OCTET_STRING) || !v.Empty() {
			return false, errors.New("malformed subject key identifier")
		}
		c.SubjectKeyID = id
	case e.Id.Equal(OIDExtAuthorityKeyID):
		var seq cryptobyte.String
		if !v.ReadASN1(&seq, cbasn1.SEQUENCE) || !v.Empty() {
			return false, errors.New("malformed authority key identifier")
		}
		if seq.PeekASN1Tag(cbasn1.Tag(0).ContextSpecific()) {
			var id cryptobyte.String
			if !seq.ReadASN1(&id, cbasn1.Tag(0).ContextSpecific()) {
				return false, errors.New("malformed authority key identifier")
			}
			c.AuthorityKeyID = id
		}
	case e.Id.Equal(OIDExtAdmission):
		a, err := ParseAdmission(e.Value)
		if err != nil {
			return false, err
		}
		c.Admission = a
	case e.Id.Equal(OIDExtOCSPNoCheck):
		c.OCSPNoCheck = true
	case e.Id.Equal(OIDExtSubjectAltName):
		// Not interpreted; accepted so a critical SAN (empty-subject certificates) is not "unhandled".
	default:
		return false, nil
	}
	return true, nil
}

// CertificateType returns the TI certificate type named by the first recognised policy OID, or "".
func (c *Certificate) CertificateType() CertificateType {
	for _, p := range c.Policies {
		if t, ok := certificateTypeOIDs[p.String()]; ok {
			return t
		}
	}
	return ""
}

// HasPolicy reports whether the certificate carries the policy OID.
func (c *Certificate) HasPolicy(oid string) bool {
	for _, p := range c.Policies {
		if p.String() == oid {
			return true
		}
	}
	return false
}

// TelematikID returns the registration number of the first ProfessionInfo (how the gematik IDP reads it),
// or "" when there is none.
func (c *Certificate) TelematikID() string {
	if pi := c.Admission.first(); pi != nil {
		return pi.RegistrationNumber
	}
	return ""
}

// ProfessionOIDs returns every profession OID of the first ProfessionInfo (the IDP passes only the first).
func (c *Certificate) ProfessionOIDs() []string {
	if pi := c.Admission.first(); pi != nil {
		return pi.ProfessionOIDs
	}
	return nil
}

// ProfessionItems returns the profession items of the first ProfessionInfo.
func (c *Certificate) ProfessionItems() []string {
	if pi := c.Admission.first(); pi != nil {
		return pi.ProfessionItems
	}
	return nil
}

// HasRole reports whether any ProfessionInfo of the Admission lists the role OID.
func (c *Certificate) HasRole(oid string) bool {
	if c.Admission == nil {
		return false
	}
	for _, adm := range c.Admission.Contents {
		for _, pi := range adm.ProfessionInfos {
			for _, o := range pi.ProfessionOIDs {
				if o == oid {
					return true
				}
			}
		}
	}
	return false
}

// KeyAlgorithm returns "EC" or "RSA".
func (c *Certificate) KeyAlgorithm() string {
	switch c.PublicKey.(type) {
	case *ecdsa.PublicKey:
		return "EC"
	case *rsa.PublicKey:
		return "RSA"
	}
	return ""
}

// Curve returns the curve name of an EC key ("brainpoolP256r1", "P-256"), or "" for RSA.
func (c *Certificate) Curve() string {
	if k, ok := c.PublicKey.(*ecdsa.PublicKey); ok {
		return CurveName(k.Curve)
	}
	return ""
}

// CheckSignatureFrom verifies that issuer's key signed this certificate. It checks the signature only; chain
// rules (CA flag, key usage, validity) are the trust store's job.
func (c *Certificate) CheckSignatureFrom(issuer *Certificate) error {
	if c.SignatureAlgorithm == "" {
		return fmt.Errorf("%w: unsupported signature algorithm", ErrBadSignature)
	}
	return verifyWithKey(issuer.PublicKey, c.SignatureAlgorithm, c.RawTBSCertificate, c.Signature)
}

// Equal reports whether both certificates have the same DER encoding.
func (c *Certificate) Equal(o *Certificate) bool { return o != nil && bytes.Equal(c.Raw, o.Raw) }

// Fingerprint is the SHA-256 of the DER encoding.
func (c *Certificate) Fingerprint() [32]byte { return sha256.Sum256(c.Raw) }

// ValidAt reports whether t lies within [NotBefore, NotAfter].
func (c *Certificate) ValidAt(t time.Time) bool {
	return !t.Before(c.NotBefore) && !t.After(c.NotAfter)
}
