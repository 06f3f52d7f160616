package certs

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"encoding/asn1"

	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// caTestClock is the fixed time of the OCSP and chain tests; the gematik cards used with it are valid then.
var caTestClock = time.Date(2025, 11, 10, 12, 0, 0, 0, time.UTC)

var (
	caTestNotBefore = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	caTestNotAfter  = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
)

// caTestPKI is a root → issuing CA hierarchy, like GEM.RCA → GEM.SMCB-CA.
type caTestPKI struct {
	root, inter *TestCA
}

func newCATestPKI(t testing.TB, alg KeyAlgorithm) caTestPKI {
	t.Helper()
	root, err := NewTestCA("timstack Root-CA "+string(alg), alg, caTestNotBefore, caTestNotAfter)
	if err != nil {
		t.Fatal(err)
	}
	inter, err := root.IssueSubCA(IssueRequest{CommonName: "timstack Issuing-CA " + string(alg), KeyAlgorithm: alg})
	if err != nil {
		t.Fatal(err)
	}
	return caTestPKI{root: root, inter: inter}
}

func mustIssue(t testing.TB, ca *TestCA, req IssueRequest) (*Certificate, crypto.Signer) {
	t.Helper()
	c, k, err := ca.Issue(req)
	if err != nil {
		t.Fatal(err)
	}
	return c, k
}

// certSummary is what the creation tests compare: the parsed fields a relying party looks at.
type certSummary struct {
	Subject     string
	Issuer      string
	Curve       string
	KeyAlg      string
	SigAlg      SignatureAlgorithm
	IsCA        bool
	MaxPathLen  int
	KeyUsage    KeyUsage
	ExtKeyUsage []string
	Policies    []string
	Type        CertificateType
	Admission   *Admission
	OCSP        []string
	NoCheck     bool
	AKIisSKI    bool
}

func summarise(c, issuer *Certificate) certSummary {
	s := certSummary{
		Subject: c.Subject.String(), Issuer: c.Issuer.String(), Curve: c.Curve(), KeyAlg: c.KeyAlgorithm(),
		SigAlg: c.SignatureAlgorithm, IsCA: c.IsCA, MaxPathLen: c.MaxPathLen, KeyUsage: c.KeyUsage,
		Type: c.CertificateType(), Admission: c.Admission, OCSP: c.OCSPServers, NoCheck: c.OCSPNoCheck,
		AKIisSKI: bytes.Equal(c.AuthorityKeyID, issuer.SubjectKeyID),
	}
	for _, e := range c.ExtKeyUsage {
		s.ExtKeyUsage = append(s.ExtKeyUsage, e.String())
	}
	for _, p := range c.Policies {
		s.Policies = append(s.Policies, p.String())
	}
	return s
}

func TestCreateCertificate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		issuerAlg KeyAlgorithm
		leafAlg   KeyAlgorithm
		wantSig   SignatureAlgorithm
		wantCurve string
	}{
		{"a brainpool CA signs a brainpool key with ecdsa-with-SHA256", KeyBrainpoolP256r1, KeyBrainpoolP256r1, ECDSAWithSHA256, "brainpoolP256r1"},
		{"a P-256 CA signs a P-256 key", KeyP256, KeyP256, ECDSAWithSHA256, "P-256"},
		{"an RSA CA signs a brainpool key with sha256WithRSA", KeyRSA2048, KeyBrainpoolP256r1, SHA256WithRSA, "brainpoolP256r1"},
		{"a brainpool CA signs an RSA key", KeyBrainpoolP256r1, KeyRSA2048, ECDSAWithSHA256, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ca, err := NewTestCA("Create "+string(tc.issuerAlg), tc.issuerAlg, caTestNotBefore, caTestNotAfter)
			if err != nil {
				t.Fatal(err)
			}
			key, err := GenerateKey(tc.leafAlg)
			if err != nil {
				t.Fatal(err)
			}
			adm := &Admission{Contents: []Admissions{{ProfessionInfos: []ProfessionInfo{{
				ProfessionItems: []string{"Betriebsstätte Kostenträger"}, ProfessionOIDs: []string{InstitutionKostentraeger},
				RegistrationNumber: "8-01-TEST-ONLY",
			}}}}}
			tmpl := &CertificateTemplate{
				SerialNumber: big.NewInt(4711),
				Subject: Name{Country: "DE", Locality: "Mühlhausen", PostalCode: "99974", Street: "Langensalzaer Str. 25",
					Organization: "8-01-TEST-ONLY NOT-VALID", SerialNumber: "80276883110000129068", Surname: "Blankenberg",
					GivenName: "Dominik", CommonName: "Kasse TEST-ONLY"},
				NotBefore: caTestNotBefore, NotAfter: caTestNotAfter,
				KeyUsage:    KeyUsageDigitalSignature,
				ExtKeyUsage: []asn1.ObjectIdentifier{OIDExtKeyUsageClientAuth},
				Policies:    []string{"1.2.276.0.76.4.163", "1.2.276.0.76.4.77"},
				Admission:   adm,
				OCSPServer:  "http://ocsp.test/ocsp",
				MaxPathLen:  -1,
			}
			c, err := CreateCertificate(tmpl, key.Public(), ca.Cert, ca.Key)
			if err != nil {
				t.Fatal(err)
			}
			want := certSummary{
				Subject:     "CN=Kasse TEST-ONLY,GN=Dominik,SN=Blankenberg,serialNumber=80276883110000129068,O=8-01-TEST-ONLY NOT-VALID,street=Langensalzaer Str. 25,postalCode=99974,L=Mühlhausen,C=DE",
				Issuer:      ca.Cert.Subject.String(),
				Curve:       tc.wantCurve,
				KeyAlg:      map[bool]string{true: "RSA", false: "EC"}[tc.leafAlg == KeyRSA2048],
				SigAlg:      tc.wantSig,
				MaxPathLen:  -1,
				KeyUsage:    KeyUsageDigitalSignature,
				ExtKeyUsage: []string{"1.3.6.1.5.5.7.3.2"},
				Policies:    []string{"1.2.276.0.76.4.163", "1.2.276.0.76.4.77"},
				Type:        CertHCIAUT,
				Admission:   adm,
				OCSP:        []string{"http://ocsp.test/ocsp"},
				AKIisSKI:    true,
			}
			if diff := cmp.Diff(want, summarise(c, ca.Cert)); diff != "" {
				t.Errorf("certificate (-want +got):\n%s", diff)
			}
			if c.SerialNumber.Int64() != 4711 || c.TelematikID() != "8-01-TEST-ONLY" {
				t.Errorf("serial %v, Telematik-ID %q", c.SerialNumber, c.TelematikID())
			}
			if err := c.CheckSignatureFrom(ca.Cert); err != nil {
				t.Errorf("signature: %v", err)
			}
			if len(c.UnhandledCriticalExtensions) != 0 {
				t.Errorf("unhandled critical extensions %v", c.UnhandledCriticalExtensions)
			}
		})
	}
}

func TestCreateCertificateRefusesBadInput(t *testing.T) {
	t.Parallel()
	ca, err := NewTestCA("Refuse", KeyP256, caTestNotBefore, caTestNotAfter)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := GenerateKey(KeyP256)
	good := CertificateTemplate{Subject: Name{CommonName: "x TEST-ONLY"}, NotBefore: caTestNotBefore, NotAfter: caTestNotAfter}
	tests := []struct {
		name   string
		mutate func(*CertificateTemplate)
		key    func() any
	}{
		{"an issuer key that is not the issuer certificate's key is refused", nil, func() any { return other }},
		{"a reversed validity is refused", func(t *CertificateTemplate) { t.NotAfter = caTestNotBefore.Add(-time.Hour) }, nil},
		{"a non-positive serial is refused", func(t *CertificateTemplate) { t.SerialNumber = big.NewInt(0) }, nil},
		{"a malformed policy OID is refused", func(t *CertificateTemplate) { t.Policies = []string{"1.2.x"} }, nil},
		{"a non-printable country is refused", func(t *CertificateTemplate) { t.Subject.Country = "DÉ" }, nil},
		{"a non-ASCII DNS name is refused", func(t *CertificateTemplate) { t.DNSNames = []string{"bücher.test"} }, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tmpl := good
			if tc.mutate != nil {
				tc.mutate(&tmpl)
			}
			signer := ca.Key
			if tc.key != nil {
				signer = other
			}
			if _, err := CreateCertificate(&tmpl, other.Public(), ca.Cert, signer); err == nil {
				t.Fatal("CreateCertificate succeeded")
			}
		})
	}
}

func TestIssueProfiles(t *testing.T) {
	t.Parallel()
	pki := newCATestPKI(t, KeyBrainpoolP256r1)
	store := NewTrustStore(pki.inter.Cert)
	tests := []struct {
		name     string
		req      IssueRequest
		opts     VerifyOptions
		wantType CertificateType
		wantKU   KeyUsage
		wantEKU  []string
		wantRole string
		wantTID  string
		wantOrg  string
		check    func(t *testing.T, c *Certificate)
	}{
		{
			name:     "flist-signer is a C.FD.SIG with role oid_vzd_ti and item Verzeichnisdienst-TI",
			req:      IssueRequest{Profile: IssueProfileFListSigner, SubjectSerialNumber: "00001-A"},
			opts:     VerifyOptions{KeyUsage: KeyUsageDigitalSignature, CertificateTypes: []CertificateType{CertFDSIG}, Role: RoleVZDTI},
			wantType: CertFDSIG, wantKU: KeyUsageDigitalSignature, wantRole: RoleVZDTI, wantOrg: "timstack NOT-VALID",
			check: func(t *testing.T, c *Certificate) {
				if diff := cmp.Diff([]string{"Verzeichnisdienst-TI"}, c.ProfessionItems()); diff != "" {
					t.Errorf("items (-want +got):\n%s", diff)
				}
				if !c.HasPolicy("1.2.276.0.76.4.163") || c.Subject.SerialNumber != "00001-A" {
					t.Errorf("policies %v, serialNumber %q", c.Policies, c.Subject.SerialNumber)
				}
			},
		},
		{
			name:     "flist-signer on P-256 is the same profile with a NIST key",
			req:      IssueRequest{Profile: IssueProfileFListSigner, KeyAlgorithm: KeyP256},
			opts:     VerifyOptions{CertificateTypes: []CertificateType{CertFDSIG}, Role: RoleVZDTI},
			wantType: CertFDSIG, wantKU: KeyUsageDigitalSignature, wantRole: RoleVZDTI, wantOrg: "timstack NOT-VALID",
			check: func(t *testing.T, c *Certificate) {
				if c.Curve() != "P-256" {
					t.Errorf("curve %q", c.Curve())
				}
			},
		},
		{
			name:     "fd-sig-tim is a C.FD.SIG with role oid_tim",
			req:      IssueRequest{Profile: IssueProfileFDSigTIM, Organization: "Messenger GmbH"},
			opts:     VerifyOptions{CertificateTypes: []CertificateType{CertFDSIG}, Role: RoleTIM},
			wantType: CertFDSIG, wantKU: KeyUsageDigitalSignature, wantRole: RoleTIM, wantOrg: "Messenger GmbH NOT-VALID",
		},
		{
			name: "smcb is a C.HCI.AUT with the Kostenträger OID and the Telematik-ID as registration number",
			req: IssueRequest{Profile: IssueProfileSMCB, CommonName: "Test-Kasse", ProfessionOIDs: []string{InstitutionKostentraeger},
				TelematikID: "8-01-0815", OCSPURL: "http://ocsp.test/"},
			opts:     VerifyOptions{CertificateTypes: []CertificateType{CertHCIAUT}, ProfessionKinds: []ProfessionKind{KindInstitution}},
			wantType: CertHCIAUT, wantKU: KeyUsageDigitalSignature, wantEKU: []string{"1.3.6.1.5.5.7.3.2"},
			wantRole: InstitutionKostentraeger, wantTID: "8-01-0815", wantOrg: "8-01-0815 NOT-VALID",
			check: func(t *testing.T, c *Certificate) {
				if diff := cmp.Diff([]string{"Betriebsstätte Kostenträger"}, c.ProfessionItems()); diff != "" {
					t.Errorf("items (-want +got):\n%s", diff)
				}
				if diff := cmp.Diff([]string{"http://ocsp.test/"}, c.OCSPServers); diff != "" {
					t.Errorf("OCSP (-want +got):\n%s", diff)
				}
			},
		},
		{
			name: "smcb with an RSA key adds keyEncipherment",
			req: IssueRequest{Profile: IssueProfileSMCB, CommonName: "Praxis", KeyAlgorithm: KeyRSA2048,
				ProfessionOIDs: []string{"1.2.276.0.76.4.50"}, TelematikID: "1-2-3"},
			wantType: CertHCIAUT, wantKU: KeyUsageDigitalSignature | KeyUsageKeyEncipherment, wantEKU: []string{"1.3.6.1.5.5.7.3.2"},
			wantRole: "1.2.276.0.76.4.50", wantTID: "1-2-3", wantOrg: "1-2-3 NOT-VALID",
		},
		{
			name: "hba is a C.HP.AUT for a physician",
			req: IssueRequest{Profile: IssueProfileHBA, CommonName: "Dr. Test", ProfessionOIDs: []string{ProfessionArzt},
				TelematikID: "1-HBA-Testkarte-1"},
			opts:     VerifyOptions{CertificateTypes: []CertificateType{CertHPAUT}, ProfessionKinds: []ProfessionKind{KindPerson}},
			wantType: CertHPAUT, wantKU: KeyUsageDigitalSignature | KeyUsageKeyAgreement,
			wantEKU:  []string{"1.3.6.1.5.5.7.3.2", "1.3.6.1.5.5.7.3.4"},
			wantRole: ProfessionArzt, wantTID: "1-HBA-Testkarte-1", wantOrg: "timstack NOT-VALID",
		},
		{
			name:   "ocsp-signer has OCSPSigning, digitalSignature and ocsp-nocheck",
			req:    IssueRequest{Profile: IssueProfileOCSPSigner},
			wantKU: KeyUsageDigitalSignature, wantEKU: []string{"1.3.6.1.5.5.7.3.9"}, wantOrg: "timstack NOT-VALID",
			check: func(t *testing.T, c *Certificate) {
				if !c.OCSPNoCheck {
					t.Error("no ocsp-nocheck")
				}
			},
		},
		{
			name:     "tls-server is a C.FD.TLS-S on P-256 with serverAuth",
			req:      IssueRequest{Profile: IssueProfileTLSServer, DNSNames: []string{"proxy.timstack.test"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}},
			opts:     VerifyOptions{CertificateTypes: []CertificateType{CertFDTLSS}},
			wantType: CertFDTLSS, wantKU: KeyUsageDigitalSignature, wantEKU: []string{"1.3.6.1.5.5.7.3.1"}, wantOrg: "timstack NOT-VALID",
			check: func(t *testing.T, c *Certificate) {
				if c.Curve() != "P-256" || c.Subject.CommonName != "proxy.timstack.test TEST-ONLY" {
					t.Errorf("curve %q, CN %q", c.Curve(), c.Subject.CommonName)
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, key, err := pki.inter.Issue(tc.req)
			if err != nil {
				t.Fatal(err)
			}
			if key == nil {
				t.Fatal("no key returned")
			}
			if !strings.Contains(c.Subject.CommonName, "TEST-ONLY") || c.Subject.Organization != tc.wantOrg {
				t.Errorf("subject %q, want TEST-ONLY in CN and O %q", c.Subject.String(), tc.wantOrg)
			}
			if c.CertificateType() != tc.wantType || c.KeyUsage != tc.wantKU || c.TelematikID() != tc.wantTID {
				t.Errorf("type %q KU %b Telematik-ID %q, want %q %b %q", c.CertificateType(), c.KeyUsage, c.TelematikID(), tc.wantType, tc.wantKU, tc.wantTID)
			}
			var ekus []string
			for _, e := range c.ExtKeyUsage {
				ekus = append(ekus, e.String())
			}
			if diff := cmp.Diff(tc.wantEKU, ekus); diff != "" {
				t.Errorf("EKU (-want +got):\n%s", diff)
			}
			if tc.wantRole != "" && !c.HasRole(tc.wantRole) {
				t.Errorf("role %s missing: %v", tc.wantRole, c.ProfessionOIDs())
			}
			if !c.IsCA && c.BasicConstraintsValid && c.MaxPathLen != -1 {
				t.Errorf("end entity with path length %d", c.MaxPathLen)
			}
			spki, _ := MarshalPKIXPublicKey(key.Public())
			if !bytes.Equal(spki, c.RawSubjectPublicKeyInfo) {
				t.Error("returned key does not match the certificate")
			}
			opts := tc.opts
			opts.At = caTestClock
			if _, err := store.Verify(context.Background(), c, opts); err != nil {
				t.Errorf("Verify: %v", err)
			}
			if tc.check != nil {
				tc.check(t, c)
			}
		})
	}
}

func TestIssueRefusesIncompleteRequests(t *testing.T) {
	t.Parallel()
	pki := newCATestPKI(t, KeyP256)
	tests := []struct {
		name string
		req  IssueRequest
	}{
		{"smcb without a Telematik-ID is refused", IssueRequest{Profile: IssueProfileSMCB, CommonName: "x", ProfessionOIDs: []string{InstitutionKostentraeger}}},
		{"smcb with a person OID is refused", IssueRequest{Profile: IssueProfileSMCB, CommonName: "x", ProfessionOIDs: []string{ProfessionArzt}, TelematikID: "1"}},
		{"hba with an insured-person OID is refused", IssueRequest{Profile: IssueProfileHBA, CommonName: "x", ProfessionOIDs: []string{ProfessionVersicherter}, TelematikID: "1"}},
		{"hba without a profession is refused", IssueRequest{Profile: IssueProfileHBA, CommonName: "x", TelematikID: "1"}},
		{"tls-server without subjectAltName is refused", IssueRequest{Profile: IssueProfileTLSServer}},
		{"a CA without a name is refused", IssueRequest{Profile: IssueProfileCA}},
		{"an unknown profile is refused", IssueRequest{Profile: "egk", CommonName: "x"}},
		{"validity beyond the CA's is refused", IssueRequest{Profile: IssueProfileFListSigner, NotAfter: caTestNotAfter.Add(time.Hour)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if c, _, err := pki.inter.Issue(tc.req); err == nil {
				t.Fatalf("Issue succeeded: %s", c.Subject.String())
			}
		})
	}
}

func TestTestCANamesSayTestOnly(t *testing.T) {
	t.Parallel()
	ca, err := NewTestCA("Dev", KeyP256, caTestNotBefore, caTestNotAfter)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := ca.Cert.Subject.String(), "CN=Dev TEST-ONLY,O=timstack NOT-VALID,C=DE"; got != want {
		t.Errorf("subject %q, want %q", got, want)
	}
	c, _, err := ca.Issue(IssueRequest{Profile: IssueProfileFDSigTIM, CommonName: "already TEST-ONLY", Organization: "Org TEST-ONLY"})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.Subject.String(), "CN=already TEST-ONLY,O=Org TEST-ONLY,C=DE"; got != want {
		t.Errorf("subject %q, want %q", got, want)
	}
	if !NewTrustStore(ca.Cert).HasTestOnlyAnchor() {
		t.Error("trust store does not see the TEST-ONLY anchor")
	}
}

func TestLoadTestCA(t *testing.T) {
	t.Parallel()
	pki := newCATestPKI(t, KeyBrainpoolP256r1)
	dir := filepath.Join(t.TempDir(), "inter")
	if err := WriteCertAndKey(dir, pki.inter.Cert, pki.inter.Key); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, "key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("key.pem mode %v, want 0600", fi.Mode().Perm())
	}
	loaded, err := LoadTestCA(mustReadFile(t, filepath.Join(dir, "cert.pem")), mustReadFile(t, filepath.Join(dir, "key.pem")))
	if err != nil {
		t.Fatal(err)
	}
	if !loaded.Cert.Equal(pki.inter.Cert) {
		t.Error("loaded certificate differs")
	}
	if _, _, err := loaded.Issue(IssueRequest{Profile: IssueProfileFListSigner}); err != nil {
		t.Errorf("issuing with the loaded CA: %v", err)
	}

	t.Run("a CA whose name lacks TEST-ONLY is refused", func(t *testing.T) {
		key, _ := GenerateKey(KeyP256)
		prod, err := CreateCertificate(&CertificateTemplate{Subject: Name{CommonName: "Production CA"}, NotBefore: caTestNotBefore,
			NotAfter: caTestNotAfter, IsCA: true, KeyUsage: KeyUsageCertSign}, key.Public(), nil, key)
		if err != nil {
			t.Fatal(err)
		}
		keyPEM, _ := MarshalPrivateKeyPEM(key)
		if _, err := LoadTestCA(prod.EncodePEM(), keyPEM); err == nil {
			t.Fatal("LoadTestCA accepted a CA without TEST-ONLY")
		}
	})
	t.Run("a key that does not match the certificate is refused", func(t *testing.T) {
		keyPEM, _ := MarshalPrivateKeyPEM(pki.root.Key)
		if _, err := LoadTestCA(pki.inter.Cert.EncodePEM(), keyPEM); err == nil {
			t.Fatal("LoadTestCA accepted a foreign key")
		}
	})
}

// requireOpenSSL returns the openssl binary or skips: the interoperability tests need it, the rest do not.
func requireOpenSSL(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("openssl")
	if err != nil {
		t.Fatal("openssl is required for the interop tests (make test installs it via scripts/tools.sh)")
	}
	return path
}

func runOpenSSL(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command(requireOpenSSL(t), args...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func writePEM(t *testing.T, dir, name string, certs ...*Certificate) string {
	t.Helper()
	var buf bytes.Buffer
	for _, c := range certs {
		buf.Write(c.EncodePEM())
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestIssuedCertificatesVerifyInOpenSSL(t *testing.T) {
	requireOpenSSL(t)
	attime := fmt.Sprint(caTestClock.Unix())
	for _, alg := range []KeyAlgorithm{KeyBrainpoolP256r1, KeyP256} {
		t.Run("a "+string(alg)+" chain is accepted by openssl verify", func(t *testing.T) {
			pki := newCATestPKI(t, alg)
			dir := t.TempDir()
			root := writePEM(t, dir, "root.pem", pki.root.Cert)
			inter := writePEM(t, dir, "inter.pem", pki.inter.Cert)
			smcb, _ := mustIssue(t, pki.inter, IssueRequest{Profile: IssueProfileSMCB, CommonName: "Test-Kasse", KeyAlgorithm: alg,
				ProfessionOIDs: []string{InstitutionKostentraeger}, TelematikID: "8-01-0815", OCSPURL: "http://ocsp.test/"})
			flist, _ := mustIssue(t, pki.inter, IssueRequest{Profile: IssueProfileFListSigner, KeyAlgorithm: alg})
			tls, _ := mustIssue(t, pki.inter, IssueRequest{Profile: IssueProfileTLSServer, KeyAlgorithm: alg,
				DNSNames: []string{"proxy.timstack.test"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1")}})
			ocspSigner, _ := mustIssue(t, pki.inter, IssueRequest{Profile: IssueProfileOCSPSigner, KeyAlgorithm: alg})
			for name, c := range map[string]*Certificate{"smcb": smcb, "flist": flist, "tls": tls, "ocsp": ocspSigner} {
				leaf := writePEM(t, dir, name+".pem", c)
				out := runOpenSSL(t, "verify", "-attime", attime, "-CAfile", root, "-untrusted", inter, leaf)
				if strings.TrimSpace(out) != leaf+": OK" {
					t.Errorf("%s: openssl verify said %q", name, out)
				}
			}
			out := runOpenSSL(t, "verify", "-attime", attime, "-CAfile", root, inter)
			if strings.TrimSpace(out) != inter+": OK" {
				t.Errorf("intermediate: openssl verify said %q", out)
			}

			text := runOpenSSL(t, "x509", "-noout", "-text", "-in", filepath.Join(dir, "smcb.pem"))
			for _, want := range []string{
				"Professional Information or basis for Admission",
				"registrationNumber: 8-01-0815",
				"(1.2.276.0.76.4.59)",
				"Policy: 1.2.276.0.76.4.77",
				"Policy: 1.2.276.0.76.4.163",
				"X509v3 Key Usage: critical",
				"Digital Signature",
				"X509v3 Basic Constraints: critical",
				"CA:FALSE",
				"OCSP - URI:http://ocsp.test/",
				"ecdsa-with-SHA256",
			} {
				if !strings.Contains(text, want) {
					t.Errorf("smcb: openssl -text lacks %q:\n%s", want, text)
				}
			}
			text = runOpenSSL(t, "x509", "-noout", "-text", "-in", filepath.Join(dir, "flist.pem"))
			for _, want := range []string{"Verzeichnisdienst-TI", "(1.2.276.0.76.4.171)", "Policy: 1.2.276.0.76.4.203"} {
				if !strings.Contains(text, want) {
					t.Errorf("flist: openssl -text lacks %q:\n%s", want, text)
				}
			}
			text = runOpenSSL(t, "x509", "-noout", "-text", "-in", filepath.Join(dir, "tls.pem"))
			for _, want := range []string{"DNS:proxy.timstack.test", "IP Address:127.0.0.1", "IP Address:0:0:0:0:0:0:0:1", "TLS Web Server Authentication"} {
				if !strings.Contains(text, want) {
					t.Errorf("tls: openssl -text lacks %q:\n%s", want, text)
				}
			}
			text = runOpenSSL(t, "x509", "-noout", "-text", "-in", filepath.Join(dir, "ocsp.pem"))
			for _, want := range []string{"OCSP Signing", "OCSP No Check"} {
				if !strings.Contains(text, want) {
					t.Errorf("ocsp signer: openssl -text lacks %q:\n%s", want, text)
				}
			}
		})
	}
}

func TestIssuedKeysAreUsable(t *testing.T) {
	t.Parallel()
	pki := newCATestPKI(t, KeyBrainpoolP256r1)
	for _, alg := range []KeyAlgorithm{KeyBrainpoolP256r1, KeyP256, KeyRSA2048} {
		c, key, err := pki.inter.Issue(IssueRequest{Profile: IssueProfileFDSigTIM, KeyAlgorithm: alg})
		if err != nil {
			t.Fatal(err)
		}
		alg2 := ECDSAWithSHA256
		switch key.Public().(type) {
		case *rsa.PublicKey:
			alg2 = SHA256WithRSA
		case *ecdsa.PublicKey:
		}
		sig, err := signWithKey(key, alg2, []byte("msg"))
		if err != nil {
			t.Fatal(err)
		}
		if err := verifyWithKey(c.PublicKey, alg2, []byte("msg"), sig); err != nil {
			t.Errorf("%s: signature by the issued key does not verify with the certificate: %v", alg, err)
		}
	}
}
