package certs

import (
	"bytes"
	"crypto"
	"crypto/rsa"
	"encoding/asn1"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// TestCA is a certificate authority for tests and the offline dev stack. It stands in for gematik's CAs,
// whose keys we do not have, so that timstack can issue realistic TI certificates (SMC-B, HBA, federation
// list signer, OCSP signer) of its own.
//
// Every name it writes says TEST-ONLY (and its organisations NOT-VALID), like gematik's test PKI, so that
// TrustStore.HasTestOnlyAnchor and humans can tell its certificates from production ones.
type TestCA struct {
	Cert *Certificate
	Key  crypto.Signer
}

// testOnlyMarker is what every name issued by a TestCA contains.
const testOnlyMarker = "TEST-ONLY"

// NewTestCA creates a self-signed root CA named "CN=<name> TEST-ONLY, O=timstack NOT-VALID, C=DE". Its path
// length allows one intermediate, matching the TI's root → issuing CA → end entity shape.
func NewTestCA(name string, alg KeyAlgorithm, notBefore, notAfter time.Time) (*TestCA, error) {
	if strings.TrimSpace(name) == "" {
		return nil, errors.New("test CA: name is required")
	}
	key, err := GenerateKey(alg)
	if err != nil {
		return nil, fmt.Errorf("test CA: %w", err)
	}
	cert, err := CreateCertificate(&CertificateTemplate{
		Subject:    Name{Country: "DE", Organization: caNotValid("timstack"), CommonName: caTestOnly(name)},
		NotBefore:  notBefore,
		NotAfter:   notAfter,
		KeyUsage:   KeyUsageCertSign | KeyUsageCRLSign,
		IsCA:       true,
		MaxPathLen: 1,
	}, key.Public(), nil, key)
	if err != nil {
		return nil, fmt.Errorf("test CA: %w", err)
	}
	return &TestCA{Cert: cert, Key: key}, nil
}

// LoadTestCA reads a CA certificate and its private key (PEM). It refuses certificates whose subject does
// not say TEST-ONLY, so a production CA key can never be loaded as a test CA by mistake.
func LoadTestCA(certPEM, keyPEM []byte) (*TestCA, error) {
	certs, err := ParseCertificatesPEM(certPEM)
	if err != nil {
		return nil, fmt.Errorf("test CA: %w", err)
	}
	key, err := ParsePrivateKeyPEM(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("test CA: %w", err)
	}
	cert := certs[0]
	spki, err := MarshalPKIXPublicKey(key.Public())
	if err != nil {
		return nil, fmt.Errorf("test CA: %w", err)
	}
	switch {
	case !bytes.Equal(spki, cert.RawSubjectPublicKeyInfo):
		return nil, errors.New("test CA: key does not belong to the certificate")
	case !cert.BasicConstraintsValid || !cert.IsCA:
		return nil, errors.New("test CA: certificate is not a CA")
	case !strings.Contains(cert.Subject.String(), testOnlyMarker):
		return nil, fmt.Errorf("test CA: subject %q does not say %s", cert.Subject.String(), testOnlyMarker)
	}
	return &TestCA{Cert: cert, Key: key}, nil
}

// IssueProfile names a TI certificate profile a TestCA can issue.
type IssueProfile string

// Issue profiles. Each yields the extensions the TI profile prescribes (gemSpec_PKI), so the certificates
// exercise the same checks as real ones.
const (
	// IssueProfileCustom uses only what the request says.
	IssueProfileCustom IssueProfile = ""
	// IssueProfileCA is an issuing (intermediate) CA: keyCertSign, cRLSign, pathLen 0.
	IssueProfileCA IssueProfile = "ca"
	// IssueProfileOCSPSigner is a delegated OCSP responder: EKU OCSPSigning, id-pkix-ocsp-nocheck.
	IssueProfileOCSPSigner IssueProfile = "ocsp-signer"
	// IssueProfileFListSigner is the VZD federation-list signer (C.FD.SIG, role oid_vzd_ti).
	IssueProfileFListSigner IssueProfile = "flist-signer"
	// IssueProfileFDSigTIM is the RegService-OpenID-Token signer (C.FD.SIG, role oid_tim).
	IssueProfileFDSigTIM IssueProfile = "fd-sig-tim"
	// IssueProfileSMCB is an SMC-B authentication certificate (C.HCI.AUT) with an institution OID.
	IssueProfileSMCB IssueProfile = "smcb"
	// IssueProfileHBA is an eHBA authentication certificate (C.HP.AUT) with a profession OID.
	IssueProfileHBA IssueProfile = "hba"
	// IssueProfileTLSServer is a Fachdienst TLS server certificate (C.FD.TLS-S) with subjectAltNames.
	IssueProfileTLSServer IssueProfile = "tls-server"
)

// Policy OIDs the profiles write besides the certificate type.
const (
	caPolicyGematikCP = "1.2.276.0.76.4.163" // gematik certificate policy
	caPolicySMCBExtra = "1.2.276.0.76.4.101"
	caPolicyHBAExtra  = "1.2.276.0.76.4.145"
)

// IssueRequest asks a TestCA for a certificate. Zero fields take the profile's defaults.
type IssueRequest struct {
	Profile IssueProfile
	// CommonName and Organization get " TEST-ONLY" / " NOT-VALID" appended when they lack the marker.
	CommonName   string
	Organization string
	// SubjectSerialNumber is the subject's serialNumber attribute (card number, "00001-A" on VZD signers).
	SubjectSerialNumber string
	// KeyAlgorithm defaults to brainpoolP256r1, except P-256 for tls-server (Go's TLS stack has no brainpool).
	KeyAlgorithm KeyAlgorithm
	// PublicKey, when set, is certified instead of a new key; Issue then returns no signer.
	PublicKey crypto.PublicKey
	// ProfessionOIDs are the Admission's profession or role OIDs; they replace the profile's default role.
	ProfessionOIDs []string
	// ProfessionItems default to the names ClassifyProfessionOID gives the OIDs.
	ProfessionItems []string
	// TelematikID becomes the Admission's registrationNumber (required for smcb and hba).
	TelematikID string
	// Policies are added to the profile's policies.
	Policies []string
	// NotBefore and NotAfter default to the CA's validity and must lie within it.
	NotBefore time.Time
	NotAfter  time.Time
	// OCSPURL is written as the AIA OCSP responder.
	OCSPURL string
	// IsCA, KeyUsage and ExtKeyUsage override the profile when set (IsCA only for the custom profile).
	IsCA        bool
	KeyUsage    KeyUsage
	ExtKeyUsage []asn1.ObjectIdentifier
	// DNSNames and IPAddresses become the subjectAltName (required for tls-server).
	DNSNames    []string
	IPAddresses []net.IP
}

// Issue creates a certificate for req, signed by the CA. It returns the new key unless req.PublicKey was
// given.
func (ca *TestCA) Issue(req IssueRequest) (*Certificate, crypto.Signer, error) {
	if ca == nil || ca.Cert == nil || ca.Key == nil {
		return nil, nil, errors.New("issue: test CA has no certificate or key")
	}
	alg := req.KeyAlgorithm
	if alg == "" {
		alg = KeyBrainpoolP256r1
		if req.Profile == IssueProfileTLSServer {
			alg = KeyP256
		}
	}
	var key crypto.Signer
	pub := req.PublicKey
	if pub == nil {
		var err error
		if key, err = GenerateKey(alg); err != nil {
			return nil, nil, fmt.Errorf("issue %s: %w", req.Profile, err)
		}
		pub = key.Public()
	}
	_, isRSA := pub.(*rsa.PublicKey)
	tmpl, err := ca.template(req, isRSA)
	if err != nil {
		return nil, nil, fmt.Errorf("issue %s: %w", req.Profile, err)
	}
	cert, err := CreateCertificate(tmpl, pub, ca.Cert, ca.Key)
	if err != nil {
		return nil, nil, fmt.Errorf("issue %s: %w", req.Profile, err)
	}
	return cert, key, nil
}

// IssueSubCA issues an intermediate CA (profile "ca" unless req says otherwise) and returns it ready to
// issue in turn.
func (ca *TestCA) IssueSubCA(req IssueRequest) (*TestCA, error) {
	if req.Profile == IssueProfileCustom {
		req.Profile = IssueProfileCA
	}
	if req.PublicKey != nil {
		return nil, errors.New("issue sub-CA: a sub-CA needs a new key, not PublicKey")
	}
	cert, key, err := ca.Issue(req)
	if err != nil {
		return nil, err
	}
	if !cert.IsCA {
		return nil, fmt.Errorf("issue sub-CA: profile %q does not make a CA", req.Profile)
	}
	return &TestCA{Cert: cert, Key: key}, nil
}

func (ca *TestCA) template(req IssueRequest, isRSA bool) (*CertificateTemplate, error) {
	t := &CertificateTemplate{
		NotBefore:   req.NotBefore,
		NotAfter:    req.NotAfter,
		OCSPServer:  req.OCSPURL,
		DNSNames:    req.DNSNames,
		IPAddresses: req.IPAddresses,
		MaxPathLen:  -1,
	}
	if t.NotBefore.IsZero() {
		t.NotBefore = ca.Cert.NotBefore
	}
	if t.NotAfter.IsZero() {
		t.NotAfter = ca.Cert.NotAfter
	}
	if t.NotBefore.Before(ca.Cert.NotBefore) || t.NotAfter.After(ca.Cert.NotAfter) {
		return nil, fmt.Errorf("validity %s – %s lies outside the CA's %s – %s",
			t.NotBefore.UTC().Format(time.RFC3339), t.NotAfter.UTC().Format(time.RFC3339),
			ca.Cert.NotBefore.UTC().Format(time.RFC3339), ca.Cert.NotAfter.UTC().Format(time.RFC3339))
	}
	cn, org := req.CommonName, req.Organization
	oids, items := req.ProfessionOIDs, req.ProfessionItems
	var wantKind ProfessionKind
	switch req.Profile {
	case IssueProfileCustom:
		t.IsCA = req.IsCA
		if t.IsCA {
			t.MaxPathLen = 0
		}
	case IssueProfileCA:
		t.IsCA, t.MaxPathLen = true, 0
		t.KeyUsage = KeyUsageCertSign | KeyUsageCRLSign
		t.Policies = []string{caPolicyGematikCP}
		if cn == "" {
			return nil, errors.New("a CA needs a CommonName")
		}
	case IssueProfileOCSPSigner:
		t.KeyUsage = KeyUsageDigitalSignature
		t.ExtKeyUsage = []asn1.ObjectIdentifier{OIDExtKeyUsageOCSPSigning}
		t.OCSPNoCheck = true
		t.OCSPServer = "" // a responder with no-check has no status of its own to ask for
		cn = caDefault(cn, "OCSP-Signer")
	case IssueProfileFListSigner, IssueProfileFDSigTIM:
		t.KeyUsage = KeyUsageDigitalSignature
		t.Policies = []string{caPolicyGematikCP, CertificateTypeOID(CertFDSIG)}
		if req.Profile == IssueProfileFListSigner {
			cn = caDefault(cn, "VZD-FHIR-FList-Signer")
			if len(oids) == 0 {
				// The VZD's signer says "Verzeichnisdienst-TI", not the short gemSpec_OID name.
				oids = []string{RoleVZDTI}
				items = caDefaultItems(items, "Verzeichnisdienst-TI")
			}
		} else {
			cn = caDefault(cn, "TIM-RegService-Token-Signer")
			if len(oids) == 0 {
				oids = []string{RoleTIM}
			}
		}
		wantKind = KindTechnical
	case IssueProfileSMCB:
		t.KeyUsage = KeyUsageDigitalSignature
		if isRSA {
			t.KeyUsage |= KeyUsageKeyEncipherment
		}
		t.ExtKeyUsage = []asn1.ObjectIdentifier{OIDExtKeyUsageClientAuth}
		t.Policies = []string{caPolicyGematikCP, CertificateTypeOID(CertHCIAUT), caPolicySMCBExtra}
		wantKind = KindInstitution
		org = caDefault(org, req.TelematikID)
	case IssueProfileHBA:
		t.KeyUsage = KeyUsageDigitalSignature | KeyUsageKeyAgreement
		if isRSA {
			t.KeyUsage = KeyUsageDigitalSignature | KeyUsageKeyEncipherment
		}
		t.ExtKeyUsage = []asn1.ObjectIdentifier{OIDExtKeyUsageClientAuth, OIDExtKeyUsageEmailProtect}
		t.Policies = []string{caPolicyGematikCP, CertificateTypeOID(CertHPAUT), caPolicyHBAExtra}
		wantKind = KindPerson
	case IssueProfileTLSServer:
		t.KeyUsage = KeyUsageDigitalSignature
		if isRSA {
			t.KeyUsage |= KeyUsageKeyEncipherment
		}
		t.ExtKeyUsage = []asn1.ObjectIdentifier{OIDExtKeyUsageServerAuth}
		t.Policies = []string{caPolicyGematikCP, CertificateTypeOID(CertFDTLSS)}
		if len(req.DNSNames) == 0 && len(req.IPAddresses) == 0 {
			return nil, errors.New("a TLS server certificate needs DNSNames or IPAddresses")
		}
		if len(req.DNSNames) > 0 {
			cn = caDefault(cn, req.DNSNames[0])
		} else {
			cn = caDefault(cn, req.IPAddresses[0].String())
		}
	default:
		return nil, fmt.Errorf("unknown profile %q", req.Profile)
	}
	if wantKind != "" {
		if len(oids) == 0 {
			return nil, fmt.Errorf("profile %q needs ProfessionOIDs (%s)", req.Profile, wantKind)
		}
		if kind, _ := ClassifyProfessionOID(oids[0]); kind != wantKind {
			return nil, fmt.Errorf("profession OID %s is %s, profile %q needs %s", oids[0], kind, req.Profile, wantKind)
		}
		if (req.Profile == IssueProfileSMCB || req.Profile == IssueProfileHBA) && req.TelematikID == "" {
			return nil, fmt.Errorf("profile %q needs a TelematikID", req.Profile)
		}
	}
	if len(oids) > 0 || req.TelematikID != "" {
		if len(items) == 0 {
			for _, o := range oids {
				if _, name := ClassifyProfessionOID(o); name != "" {
					items = append(items, name)
				}
			}
		}
		t.Admission = &Admission{Contents: []Admissions{{ProfessionInfos: []ProfessionInfo{{
			ProfessionItems:    items,
			ProfessionOIDs:     oids,
			RegistrationNumber: req.TelematikID,
		}}}}}
	}
	if cn == "" {
		return nil, errors.New("a CommonName is required")
	}
	t.Subject = Name{
		Country:      "DE",
		Organization: caNotValid(caDefault(org, "timstack")),
		SerialNumber: req.SubjectSerialNumber,
		CommonName:   caTestOnly(cn),
	}
	t.Policies = append(t.Policies, req.Policies...)
	if req.KeyUsage != 0 {
		t.KeyUsage = req.KeyUsage
	}
	if req.ExtKeyUsage != nil {
		t.ExtKeyUsage = req.ExtKeyUsage
	}
	return t, nil
}

func caDefaultItems(items []string, def string) []string {
	if len(items) == 0 {
		return []string{def}
	}
	return items
}

func caDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// caTestOnly appends the TEST-ONLY marker unless the name already carries it.
func caTestOnly(cn string) string {
	if strings.Contains(cn, testOnlyMarker) {
		return cn
	}
	return cn + " " + testOnlyMarker
}

// caNotValid appends gematik's NOT-VALID organisation marker unless the name already carries a marker.
func caNotValid(o string) string {
	if strings.Contains(o, "NOT-VALID") || strings.Contains(o, testOnlyMarker) {
		return o
	}
	return o + " NOT-VALID"
}

// WriteCertAndKey writes cert.pem and, when key is not nil, a PKCS#8 key.pem readable only by the owner,
// into dir (created if missing). This is the layout the dev stack and `timstack pki` commands read.
func WriteCertAndKey(dir string, cert *Certificate, key crypto.Signer) error {
	if cert == nil {
		return errors.New("write certificate: no certificate")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("write certificate: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "cert.pem"), cert.EncodePEM(), 0o644); err != nil {
		return fmt.Errorf("write certificate: %w", err)
	}
	if key == nil {
		return nil
	}
	pemKey, err := MarshalPrivateKeyPEM(key)
	if err != nil {
		return fmt.Errorf("write key: %w", err)
	}
	path := filepath.Join(dir, "key.pem")
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("write key: %w", err)
	}
	// An existing file keeps its mode on open; tighten it before the key is written.
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return fmt.Errorf("write key: %w", err)
	}
	if _, err := f.Write(pemKey); err != nil {
		f.Close()
		return fmt.Errorf("write key: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write key: %w", err)
	}
	return nil
}
