package main

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"time"

	"github.com/timstack/timstack/certs"
)

func runPKI(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usageError("usage: timstack pki inspect FILE | timstack pki issue [flags]")
	}
	switch args[0] {
	case "inspect":
		return runPKIInspect(args[1:], stdout, stderr)
	case "issue":
		return runPKIIssue(args[1:], stdout, stderr)
	case "ocsp-responder":
		return runPKIOCSPResponder(args[1:], stdout, stderr)
	}
	return usageError("pki: unknown subcommand %q (inspect, issue, ocsp-responder)", args[0])
}

// inspectResult is the stable JSON of `timstack pki inspect`; tools parse it, so fields are only ever added.
type inspectResult struct {
	Subject         string   `json:"subject"`
	Issuer          string   `json:"issuer"`
	Serial          string   `json:"serial"`
	NotBefore       string   `json:"notBefore"`
	NotAfter        string   `json:"notAfter"`
	KeyAlgorithm    string   `json:"keyAlgorithm"`
	Curve           string   `json:"curve"`
	CertificateType string   `json:"certificateType"`
	TelematikID     string   `json:"telematikID"`
	KVNR            string   `json:"kvnr,omitempty"` // eGK only: the insured person's number (idNummer of eGK logins)
	ProfessionOIDs  []string `json:"professionOIDs"`
	ProfessionItems []string `json:"professionItems"`
	Policies        []string `json:"policies"`
	IsCA            bool     `json:"isCA"`
	OCSPServers     []string `json:"ocspServers"`
	SHA256          string   `json:"sha256"`
}

func inspect(c *certs.Certificate) inspectResult {
	fp := sha256.Sum256(c.Raw)
	r := inspectResult{
		Subject:         c.Subject.String(),
		Issuer:          c.Issuer.String(),
		Serial:          c.SerialNumber.String(),
		NotBefore:       c.NotBefore.UTC().Format(time.RFC3339),
		NotAfter:        c.NotAfter.UTC().Format(time.RFC3339),
		KeyAlgorithm:    c.KeyAlgorithm(),
		Curve:           c.Curve(),
		CertificateType: string(c.CertificateType()),
		TelematikID:     c.TelematikID(),
		KVNR:            c.KVNR(),
		ProfessionOIDs:  nonNil(c.ProfessionOIDs()),
		ProfessionItems: nonNil(c.ProfessionItems()),
		Policies:        []string{},
		IsCA:            c.IsCA,
		OCSPServers:     nonNil(c.OCSPServers),
		SHA256:          hex.EncodeToString(fp[:]),
	}
	for _, p := range c.Policies {
		r.Policies = append(r.Policies, p.String())
	}
	return r
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// runPKIInspect implements `timstack pki inspect FILE` (PEM or DER).
func runPKIInspect(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("pki inspect", stderr)
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return usageError("%v", err)
	}
	if len(pos) != 1 {
		return usageError("pki inspect: exactly one FILE expected")
	}
	data, err := os.ReadFile(pos[0])
	if err != nil {
		return usageError("pki inspect: %v", err)
	}
	c, err := certs.ParseCertificatePEMOrDER(data)
	if err != nil {
		return failure("pki inspect: %s: %v", pos[0], err)
	}
	return writeJSON(stdout, inspect(c))
}
