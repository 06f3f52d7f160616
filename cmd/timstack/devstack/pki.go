package devstack

import (
	"crypto"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/timstack/timstack/certs"
)

// devPKI is the stack's own test PKI, kept in Dir/pki so a restarted stack keeps its identities (the
// homeservers trust the proxy CAs and the TLS CA across restarts):
//   - tls: a P-256 CA for the proxies' federation listeners (Go's TLS has no brainpool);
//   - komp: a brainpool component CA standing in for GEM.KOMP-CA, issuing the directory's federation-list
//     signer and the registration service's C.FD.SIG (role oid_tim) token signer.
type devPKI struct {
	tls, komp             *certs.TestCA
	listSigner, regSigner *certs.Certificate
	listKey, regKey       crypto.Signer
	tlsCAFile, kompCAFile string
	kompTrustDir          string
}

const pkiValidity = 365 * 24 * time.Hour

func loadOrCreatePKI(dir string, now time.Time) (*devPKI, error) {
	p := &devPKI{}
	var err error
	if p.tls, err = loadOrCreateCA(filepath.Join(dir, "tls-ca"), "timstack dev TLS CA", certs.KeyP256, now); err != nil {
		return nil, err
	}
	if p.komp, err = loadOrCreateCA(filepath.Join(dir, "komp-ca"), "timstack dev KOMP-CA", certs.KeyBrainpoolP256r1, now); err != nil {
		return nil, err
	}
	if p.listSigner, p.listKey, err = loadOrIssue(filepath.Join(dir, "flist-signer"), p.komp, certs.IssueRequest{
		Profile: certs.IssueProfileFListSigner, CommonName: "VZD-FHIR-FList-Signer", SubjectSerialNumber: "00001-A",
	}); err != nil {
		return nil, err
	}
	if p.regSigner, p.regKey, err = loadOrIssue(filepath.Join(dir, "regservice-signer"), p.komp, certs.IssueRequest{
		Profile: certs.IssueProfileFDSigTIM, CommonName: "timstack Registrierungsdienst",
	}); err != nil {
		return nil, err
	}
	p.tlsCAFile = filepath.Join(dir, "tls-ca", "cert.pem")
	p.kompCAFile = filepath.Join(dir, "komp-ca", "cert.pem")
	// Trust directories hold exactly one CA each: LoadPEMDir trusts every PEM in a folder.
	p.kompTrustDir = filepath.Join(dir, "trust-komp")
	if err := writeOnly(p.kompTrustDir, "komp-ca.pem", p.komp.Cert.EncodePEM()); err != nil {
		return nil, err
	}
	return p, nil
}

func loadOrCreateCA(dir, name string, alg certs.KeyAlgorithm, now time.Time) (*certs.TestCA, error) {
	certPEM, err1 := os.ReadFile(filepath.Join(dir, "cert.pem"))
	keyPEM, err2 := os.ReadFile(filepath.Join(dir, "key.pem"))
	if err1 == nil && err2 == nil {
		ca, err := certs.LoadTestCA(certPEM, keyPEM)
		if err == nil && now.Before(ca.Cert.NotAfter.Add(-24*time.Hour)) {
			return ca, nil
		}
	} else if !errors.Is(err1, os.ErrNotExist) && err1 != nil {
		return nil, err1
	}
	ca, err := certs.NewTestCA(name, alg, now.Add(-time.Hour), now.Add(pkiValidity))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if err := certs.WriteCertAndKey(dir, ca.Cert, ca.Key); err != nil {
		return nil, err
	}
	return ca, nil
}

func loadOrIssue(dir string, ca *certs.TestCA, req certs.IssueRequest) (*certs.Certificate, crypto.Signer, error) {
	certPEM, err1 := os.ReadFile(filepath.Join(dir, "cert.pem"))
	keyPEM, err2 := os.ReadFile(filepath.Join(dir, "key.pem"))
	if err1 == nil && err2 == nil {
		cert, err := certs.ParseCertificatePEMOrDER(certPEM)
		key, kerr := certs.ParsePrivateKeyPEM(keyPEM)
		if err == nil && kerr == nil && cert.Issuer.String() == ca.Cert.Subject.String() {
			return cert, key, nil
		}
	}
	cert, key, err := ca.Issue(req)
	if err != nil {
		return nil, nil, fmt.Errorf("issue %s: %w", req.CommonName, err)
	}
	if err := certs.WriteCertAndKey(dir, cert, key); err != nil {
		return nil, nil, err
	}
	return cert, key, nil
}

func writeOnly(dir, name string, data []byte) error {
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, name), data, 0o644)
}
