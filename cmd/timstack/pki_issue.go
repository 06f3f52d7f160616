package main

import (
	"crypto"
	"io"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/timstack/timstack/certs"
)

// runPKIIssue implements `timstack pki issue`: the test CA. It writes cert.pem and PKCS#8 key.pem into --out
// and prints the issued certificate as `pki inspect` would.
func runPKIIssue(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("pki issue", stderr)
	profile := fs.String("profile", "", "root (new self-signed test CA), ca, ocsp-signer, flist-signer, fd-sig-tim, smcb, hba, tls-server, or custom")
	caDir := fs.String("ca", "", "directory with the issuing CA's cert.pem and key.pem (not for --profile root)")
	out := fs.String("out", "", "output directory for cert.pem and key.pem (required)")
	keyAlg := fs.String("key", string(certs.KeyBrainpoolP256r1), "key algorithm: brainpoolP256r1, P-256 or RSA-2048")
	cn := fs.String("cn", "", "subject common name (TEST-ONLY is appended when missing)")
	org := fs.String("org", "", "subject organisation")
	subjectSerial := fs.String("serial-number", "", "subject serialNumber attribute")
	telematikID := fs.String("telematik-id", "", "Telematik-ID, written as the Admission registrationNumber")
	var professionOIDs, professionItems, policies, dnsNames, ips stringList
	fs.Var(&professionOIDs, "profession-oid", "Admission profession or role OID (repeatable), e.g. 1.2.276.0.76.4.59")
	fs.Var(&professionItems, "profession-item", "Admission profession item (repeatable)")
	fs.Var(&policies, "policy", "extra certificate policy OID (repeatable)")
	fs.Var(&dnsNames, "dns", "subjectAltName DNS name (repeatable, tls-server)")
	fs.Var(&ips, "ip", "subjectAltName IP address (repeatable, tls-server)")
	ocspURL := fs.String("ocsp-url", "", "OCSP responder URL written into the AIA extension")
	notBefore := fs.String("not-before", "", "validity start (RFC 3339); default: now minus one hour")
	notAfter := fs.String("not-after", "", "validity end (RFC 3339); default: --days after the start")
	days := fs.Int("days", 0, "validity in days when --not-after is not given (default 365, root 3650)")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return usageError("%v", err)
	}
	if len(pos) != 0 {
		return usageError("pki issue: unexpected argument %q", pos[0])
	}
	if *out == "" {
		return usageError("pki issue: --out DIR is required")
	}
	start := time.Now().Add(-time.Hour).UTC().Truncate(time.Second)
	if *notBefore != "" {
		if start, err = time.Parse(time.RFC3339, *notBefore); err != nil {
			return usageError("pki issue: --not-before: %v", err)
		}
	}
	validDays := *days
	if validDays == 0 {
		validDays = 365
		if *profile == "root" {
			validDays = 3650
		}
	}
	end := start.AddDate(0, 0, validDays)
	if *notAfter != "" {
		if end, err = time.Parse(time.RFC3339, *notAfter); err != nil {
			return usageError("pki issue: --not-after: %v", err)
		}
	}
	alg := certs.KeyAlgorithm(*keyAlg)

	if *profile == "root" {
		if *caDir != "" {
			return usageError("pki issue: --profile root creates a self-signed CA; drop --ca")
		}
		name := *cn
		if name == "" {
			name = "timstack Test Root CA"
		}
		ca, err := certs.NewTestCA(name, alg, start, end)
		if err != nil {
			return failure("pki issue: %v", err)
		}
		return writeIssued(stdout, *out, ca.Cert, ca.Key)
	}
	if *caDir == "" {
		return usageError("pki issue: --ca DIR is required (or --profile root)")
	}
	ca, err := loadTestCA(*caDir)
	if err != nil {
		return failure("pki issue: %v", err)
	}
	req := certs.IssueRequest{
		Profile:             certs.IssueProfile(*profile),
		CommonName:          *cn,
		Organization:        *org,
		SubjectSerialNumber: *subjectSerial,
		KeyAlgorithm:        alg,
		ProfessionOIDs:      professionOIDs,
		ProfessionItems:     professionItems,
		TelematikID:         *telematikID,
		Policies:            policies,
		NotBefore:           start,
		NotAfter:            end,
		OCSPURL:             *ocspURL,
		DNSNames:            dnsNames,
	}
	if *profile == "custom" {
		req.Profile = certs.IssueProfileCustom
	}
	for _, s := range ips {
		ip := net.ParseIP(s)
		if ip == nil {
			return usageError("pki issue: --ip %q is not an IP address", s)
		}
		req.IPAddresses = append(req.IPAddresses, ip)
	}
	cert, key, err := ca.Issue(req)
	if err != nil {
		return failure("pki issue: %v", err)
	}
	return writeIssued(stdout, *out, cert, key)
}

func loadTestCA(dir string) (*certs.TestCA, error) {
	certPEM, keyPEM, err := readKeyPair(dir)
	if err != nil {
		return nil, err
	}
	return certs.LoadTestCA(certPEM, keyPEM)
}

// readKeyPair reads DIR/cert.pem and DIR/key.pem, the layout `pki issue` writes and gematik's test cards use.
func readKeyPair(dir string) (certPEM, keyPEM []byte, err error) {
	if certPEM, err = os.ReadFile(filepath.Join(dir, "cert.pem")); err != nil {
		return nil, nil, err
	}
	if keyPEM, err = os.ReadFile(filepath.Join(dir, "key.pem")); err != nil {
		return nil, nil, err
	}
	return certPEM, keyPEM, nil
}

func writeIssued(stdout io.Writer, dir string, cert *certs.Certificate, key crypto.Signer) error {
	if err := certs.WriteCertAndKey(dir, cert, key); err != nil {
		return failure("pki issue: %v", err)
	}
	return writeJSON(stdout, inspect(cert))
}
