package certs

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
	"net"
	"sort"
	"time"
	"unicode/utf8"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// CertificateTemplate describes a certificate for CreateCertificate.
//
// crypto/x509.CreateCertificate cannot be used in the TI PKI: it refuses brainpool subject keys and brainpool
// issuer keys alike, and it cannot write the Admission extension. This template covers exactly what TI
// profiles need and nothing more.
type CertificateTemplate struct {
	// SerialNumber must be positive; nil draws a random 127-bit serial.
	SerialNumber *big.Int
	// Subject is encoded from RDNs when set, otherwise from the named fields in the order gematik's CAs use
	// (C, L, postalCode, street, O, OU, serialNumber, SN, GN, CN).
	Subject   Name
	NotBefore time.Time
	NotAfter  time.Time
	// KeyUsage is written as a critical extension (the TI profiles require critical key usage); zero omits it.
	KeyUsage    KeyUsage
	ExtKeyUsage []asn1.ObjectIdentifier
	// IsCA and MaxPathLen form the critical basicConstraints. MaxPathLen < 0 omits pathLenConstraint; it is
	// ignored for end-entity certificates.
	IsCA       bool
	MaxPathLen int
	// Policies are certificate policy OIDs in dotted form; TI software detects the certificate type from them.
	Policies  []string
	Admission *Admission
	// OCSPServer becomes the AIA OCSP URL that relying parties ask when no TSL supply point is configured.
	OCSPServer string
	// OCSPNoCheck marks a delegated OCSP signer whose own status is not to be checked (RFC 6960 §4.2.2.2.1).
	OCSPNoCheck bool
	// DNSNames and IPAddresses become the subjectAltName, which TLS clients match instead of the CN.
	DNSNames    []string
	IPAddresses []net.IP
}

// CreateCertificate builds, signs and re-parses a certificate for pub, issued by issuer with issuerKey, or
// self-signed with issuerKey when issuer is nil.
//
// Subject keys may be brainpoolP256r1, NIST P-256 or RSA; the signature is ecdsa-with-SHA256 for any EC
// issuer key and sha256WithRSAEncryption for RSA. The subject and authority key identifiers are derived from
// the keys (RFC 5280 §4.2.1.2 method 1, as OpenSSL does). The result has passed ParseCertificate and its
// signature has been checked against the issuer, so a key that does not match its certificate is caught
// here and not at the relying party.
func CreateCertificate(tmpl *CertificateTemplate, pub crypto.PublicKey, issuer *Certificate, issuerKey crypto.Signer) (*Certificate, error) {
	if tmpl == nil || pub == nil || issuerKey == nil {
		return nil, errors.New("create certificate: template, public key and issuer key are required")
	}
	if tmpl.NotBefore.IsZero() || tmpl.NotAfter.IsZero() || !tmpl.NotAfter.After(tmpl.NotBefore) {
		return nil, errors.New("create certificate: NotBefore and NotAfter must be set and ordered")
	}
	spki, err := MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("create certificate: subject key: %w", err)
	}
	issuerSPKI, err := MarshalPKIXPublicKey(issuerKey.Public())
	if err != nil {
		return nil, fmt.Errorf("create certificate: issuer key: %w", err)
	}
	subject, err := caMarshalName(tmpl.Subject)
	if err != nil {
		return nil, fmt.Errorf("create certificate: subject: %w", err)
	}
	issuerName := subject
	authorityKeyID, err := caKeyID(issuerSPKI)
	if err != nil {
		return nil, fmt.Errorf("create certificate: %w", err)
	}
	if issuer != nil {
		if !bytes.Equal(issuer.RawSubjectPublicKeyInfo, issuerSPKI) {
			return nil, errors.New("create certificate: issuer key does not belong to the issuer certificate")
		}
		issuerName = issuer.RawSubject
		if len(issuer.SubjectKeyID) > 0 {
			authorityKeyID = issuer.SubjectKeyID
		}
	}
	subjectKeyID, err := caKeyID(spki)
	if err != nil {
		return nil, fmt.Errorf("create certificate: %w", err)
	}
	alg, algID, err := caSignatureAlgorithm(issuerKey.Public())
	if err != nil {
		return nil, fmt.Errorf("create certificate: %w", err)
	}
	serial := tmpl.SerialNumber
	if serial == nil {
		if serial, err = caRandomSerial(); err != nil {
			return nil, fmt.Errorf("create certificate: %w", err)
		}
	}
	if serial.Sign() <= 0 {
		return nil, errors.New("create certificate: serial number must be positive")
	}
	exts, err := caExtensions(tmpl, subjectKeyID, authorityKeyID)
	if err != nil {
		return nil, fmt.Errorf("create certificate: %w", err)
	}

	var tbs cryptobyte.Builder
	tbs.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.Tag(0).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) { b.AddASN1Int64(2) })
		b.AddASN1BigInt(serial)
		b.AddBytes(algID)
		b.AddBytes(issuerName)
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			caAddTime(b, tmpl.NotBefore)
			caAddTime(b, tmpl.NotAfter)
		})
		b.AddBytes(subject)
		b.AddBytes(spki)
		b.AddASN1(cbasn1.Tag(3).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { b.AddBytes(exts) })
		})
	})
	tbsDER, err := tbs.Bytes()
	if err != nil {
		return nil, fmt.Errorf("create certificate: encode tbsCertificate: %w", err)
	}
	sig, err := signWithKey(issuerKey, alg, tbsDER)
	if err != nil {
		return nil, fmt.Errorf("create certificate: sign: %w", err)
	}
	var cert cryptobyte.Builder
	cert.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddBytes(tbsDER)
		b.AddBytes(algID)
		b.AddASN1BitString(sig)
	})
	der, err := cert.Bytes()
	if err != nil {
		return nil, fmt.Errorf("create certificate: encode: %w", err)
	}
	c, err := ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("create certificate: re-parse: %w", err)
	}
	signer := issuer
	if signer == nil {
		signer = c
	}
	if err := c.CheckSignatureFrom(signer); err != nil {
		return nil, fmt.Errorf("create certificate: self-check: %w", err)
	}
	return c, nil
}

// caSignatureAlgorithm picks the signature algorithm for an issuer key and returns its DER AlgorithmIdentifier.
// ECDSA identifiers carry no parameters (RFC 5758); RSA PKCS#1 v1.5 ones carry NULL (RFC 4055).
func caSignatureAlgorithm(pub crypto.PublicKey) (SignatureAlgorithm, []byte, error) {
	var b cryptobyte.Builder
	var alg SignatureAlgorithm
	switch pub.(type) {
	case *ecdsa.PublicKey:
		alg = ECDSAWithSHA256
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { b.AddASN1ObjectIdentifier(OIDSignatureECDSAWithSHA256) })
	case *rsa.PublicKey:
		alg = SHA256WithRSA
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1ObjectIdentifier(OIDSignatureSHA256WithRSA)
			b.AddASN1NULL()
		})
	default:
		return "", nil, fmt.Errorf("unsupported issuer key type %T", pub)
	}
	der, err := b.Bytes()
	return alg, der, err
}

// caKeyID is the SHA-1 of the subjectPublicKey BIT STRING contents (RFC 5280 §4.2.1.2 method 1). OpenSSL
// computes the same value, so its chain building by key identifier finds our issuers.
func caKeyID(spki []byte) ([]byte, error) {
	bits, err := ocspPublicKeyBits(spki)
	if err != nil {
		return nil, err
	}
	h := sha1.Sum(bits)
	return h[:], nil
}

func caRandomSerial() (*big.Int, error) {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("serial number: %w", err)
	}
	return n.Add(n, big.NewInt(1)), nil
}

// caAddTime writes UTCTime before 2050 and GeneralizedTime from 2050 on, as RFC 5280 §4.1.2.5 demands.
func caAddTime(b *cryptobyte.Builder, t time.Time) {
	t = t.UTC().Truncate(time.Second)
	if t.Year() >= 1950 && t.Year() < 2050 {
		b.AddASN1UTCTime(t)
		return
	}
	b.AddASN1GeneralizedTime(t)
}

// caMarshalName encodes a Name. Values that fit PrintableString are written as such and everything else as
// UTF8String, which is what gematik's CAs do; countryCode and serialNumber must be printable (X.520).
func caMarshalName(n Name) ([]byte, error) {
	type attr struct {
		oid asn1.ObjectIdentifier
		val string
	}
	var rdns [][]attr
	if len(n.RDNs) > 0 {
		for _, rdn := range n.RDNs {
			var set []attr
			for _, atv := range rdn {
				v, ok := atv.Value.(string)
				if !ok {
					return nil, fmt.Errorf("attribute %s is not a string", atv.Type)
				}
				set = append(set, attr{atv.Type, v})
			}
			rdns = append(rdns, set)
		}
	} else {
		add := func(oid asn1.ObjectIdentifier, v string) {
			if v != "" {
				rdns = append(rdns, []attr{{oid, v}})
			}
		}
		add(oidAttrCountry, n.Country)
		add(oidAttrLocality, n.Locality)
		add(oidAttrPostalCode, n.PostalCode)
		add(oidAttrStreet, n.Street)
		add(oidAttrOrganization, n.Organization)
		for _, ou := range n.OrganizationalUnit {
			add(oidAttrOrgUnit, ou)
		}
		add(oidAttrSerialNumber, n.SerialNumber)
		add(oidAttrSurname, n.Surname)
		add(oidAttrGivenName, n.GivenName)
		add(oidAttrCommonName, n.CommonName)
	}
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		for _, rdn := range rdns {
			var encoded [][]byte
			for _, a := range rdn {
				der, err := caMarshalAttribute(a.oid, a.val)
				if err != nil {
					b.SetError(err)
					return
				}
				encoded = append(encoded, der)
			}
			// DER orders the members of a SET OF (multi-valued RDNs, as on HBAs) by their encoding.
			sort.Slice(encoded, func(i, j int) bool { return bytes.Compare(encoded[i], encoded[j]) < 0 })
			b.AddASN1(cbasn1.SET, func(b *cryptobyte.Builder) {
				for _, der := range encoded {
					b.AddBytes(der)
				}
			})
		}
	})
	return b.Bytes()
}

func caMarshalAttribute(oid asn1.ObjectIdentifier, val string) ([]byte, error) {
	mustPrint := oid.Equal(oidAttrCountry) || oid.Equal(oidAttrSerialNumber)
	if mustPrint && !caIsPrintable(val) {
		return nil, fmt.Errorf("attribute %s must be a PrintableString: %q", oid, val)
	}
	if !utf8.ValidString(val) {
		return nil, fmt.Errorf("attribute %s is not valid UTF-8", oid)
	}
	tag := cbasn1.UTF8String
	if caIsPrintable(val) {
		tag = cbasn1.PrintableString
	}
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1ObjectIdentifier(oid)
		b.AddASN1(tag, func(b *cryptobyte.Builder) { b.AddBytes([]byte(val)) })
	})
	return b.Bytes()
}

func caIsPrintable(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case bytes.IndexByte([]byte(" '()+,-./:=?"), c) >= 0:
		default:
			return false
		}
	}
	return true
}

func caExtensions(tmpl *CertificateTemplate, subjectKeyID, authorityKeyID []byte) ([]byte, error) {
	var b cryptobyte.Builder
	ext := func(oid asn1.ObjectIdentifier, critical bool, value func(*cryptobyte.Builder)) {
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1ObjectIdentifier(oid)
			if critical {
				b.AddASN1Boolean(true)
			}
			b.AddASN1(cbasn1.OCTET_STRING, value)
		})
	}
	ext(OIDExtSubjectKeyID, false, func(b *cryptobyte.Builder) { b.AddASN1OctetString(subjectKeyID) })
	ext(OIDExtAuthorityKeyID, false, func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1(cbasn1.Tag(0).ContextSpecific(), func(b *cryptobyte.Builder) { b.AddBytes(authorityKeyID) })
		})
	})
	if tmpl.KeyUsage != 0 {
		ext(OIDExtKeyUsage, true, func(b *cryptobyte.Builder) {
			b.AddASN1(cbasn1.BIT_STRING, func(b *cryptobyte.Builder) { b.AddBytes(caKeyUsageBits(tmpl.KeyUsage)) })
		})
	}
	ext(OIDExtBasicConstraints, true, func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			if tmpl.IsCA {
				b.AddASN1Boolean(true)
				if tmpl.MaxPathLen >= 0 {
					b.AddASN1Int64(int64(tmpl.MaxPathLen))
				}
			}
		})
	})
	if len(tmpl.ExtKeyUsage) > 0 {
		ext(OIDExtExtendedKeyUsage, false, func(b *cryptobyte.Builder) {
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				for _, oid := range tmpl.ExtKeyUsage {
					b.AddASN1ObjectIdentifier(oid)
				}
			})
		})
	}
	if len(tmpl.Policies) > 0 {
		var oids []asn1.ObjectIdentifier
		for _, p := range tmpl.Policies {
			oid, err := ParseOID(p)
			if err != nil {
				return nil, fmt.Errorf("policy: %w", err)
			}
			oids = append(oids, oid)
		}
		ext(OIDExtCertificatePolicies, false, func(b *cryptobyte.Builder) {
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				for _, oid := range oids {
					b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { b.AddASN1ObjectIdentifier(oid) })
				}
			})
		})
	}
	if tmpl.OCSPServer != "" {
		ext(OIDExtAuthorityInfoAccess, false, func(b *cryptobyte.Builder) {
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
					b.AddASN1ObjectIdentifier(OIDAccessMethodOCSP)
					b.AddASN1(cbasn1.Tag(6).ContextSpecific(), func(b *cryptobyte.Builder) { b.AddBytes([]byte(tmpl.OCSPServer)) })
				})
			})
		})
	}
	if len(tmpl.DNSNames) > 0 || len(tmpl.IPAddresses) > 0 {
		var sanErr error
		ext(OIDExtSubjectAltName, false, func(b *cryptobyte.Builder) {
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				for _, d := range tmpl.DNSNames {
					if d == "" || !caIsIA5(d) {
						sanErr = fmt.Errorf("subjectAltName: invalid DNS name %q", d)
						return
					}
					b.AddASN1(cbasn1.Tag(2).ContextSpecific(), func(b *cryptobyte.Builder) { b.AddBytes([]byte(d)) })
				}
				for _, ip := range tmpl.IPAddresses {
					raw := ip.To4()
					if raw == nil {
						raw = ip.To16()
					}
					if raw == nil {
						sanErr = fmt.Errorf("subjectAltName: invalid IP address %v", ip)
						return
					}
					b.AddASN1(cbasn1.Tag(7).ContextSpecific(), func(b *cryptobyte.Builder) { b.AddBytes(raw) })
				}
			})
		})
		if sanErr != nil {
			return nil, sanErr
		}
	}
	if tmpl.Admission != nil {
		adm, err := MarshalAdmission(tmpl.Admission)
		if err != nil {
			return nil, fmt.Errorf("admission: %w", err)
		}
		ext(OIDExtAdmission, false, func(b *cryptobyte.Builder) { b.AddBytes(adm) })
	}
	if tmpl.OCSPNoCheck {
		ext(OIDExtOCSPNoCheck, false, func(b *cryptobyte.Builder) { b.AddASN1NULL() })
	}
	return b.Bytes()
}

func caIsIA5(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// caKeyUsageBits returns the DER BIT STRING contents for the key usage: the bits in RFC 5280 order with
// trailing zero bits removed, as DER requires for named bit lists.
func caKeyUsageBits(ku KeyUsage) []byte {
	var bits [2]byte
	n := 0
	for i := 0; i < 9; i++ {
		if ku&(1<<uint(i)) != 0 {
			bits[i/8] |= 0x80 >> uint(i%8)
			n = i + 1
		}
	}
	nbytes := (n + 7) / 8
	unused := nbytes*8 - n
	return append([]byte{byte(unused)}, bits[:nbytes]...)
}
