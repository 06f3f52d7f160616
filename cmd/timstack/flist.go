package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/timstack/timstack/certs"
)

func runFlist(args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case "verify":
			return runFlistVerify(args[1:], stdout, stderr)
		case "sign":
			return runFlistSign(args[1:], stdout, stderr)
		}
	}
	return usageError("usage: timstack flist verify FILE --trust DIR [--at RFC3339] [--ocsp off|require] | timstack flist sign --signer DIR --domains FILE --version N [--alg BP256R1|ES256] --out FILE")
}

type flistVerifyResult struct {
	Valid   bool   `json:"valid"`
	Version int64  `json:"version"`
	Domains int    `json:"domains"`
	Signer  string `json:"signer"`
}

// runFlistVerify implements `timstack flist verify FILE --trust DIR [--at RFC3339] [--ocsp off|require]`.
func runFlistVerify(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("flist verify", stderr)
	trustDir := fs.String("trust", "", "directory of trusted CA certificates (PEM/DER), e.g. GEM.KOMP-CA50")
	tslFile := fs.String("tsl", "", "gematik TSL XML whose CA services are trusted (its signature is verified against --tsl-anchor)")
	tslAnchor := fs.String("tsl-anchor", "", "directory with the TSL signer's CA (GEM.TSL-CA…) for --tsl")
	tslAllowStale := fs.Bool("tsl-allow-stale", false, "TEST ONLY: accept a TSL past its NextUpdate (gematik's test TSL expired 2025-03-12)")
	at := fs.String("at", "", "check the signer chain at this time (RFC 3339); default: now")
	ocsp := fs.String("ocsp", string(certs.OCSPRequire), "OCSP policy for the signer: require (fail closed) or off")
	timeout := fs.Duration("timeout", 10*time.Second, "OCSP timeout")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return usageError("%v", err)
	}
	if len(pos) != 1 {
		return usageError("flist verify: exactly one FILE expected")
	}
	if *trustDir == "" && *tslFile == "" {
		return usageError("flist verify: --trust DIR (or --tsl FILE) is required")
	}
	when := time.Now()
	if *at != "" {
		if when, err = time.Parse(time.RFC3339, *at); err != nil {
			return usageError("flist verify: --at: %v", err)
		}
	}
	policy := certs.OCSPPolicy(*ocsp)
	if policy != certs.OCSPRequire && policy != certs.OCSPOff {
		return usageError("flist verify: --ocsp must be off or require")
	}
	data, err := os.ReadFile(pos[0])
	if err != nil {
		return usageError("flist verify: %v", err)
	}
	trust, err := loadTrust(*trustDir, *tslFile, *tslAnchor, when, *tslAllowStale)
	if err != nil {
		return failure("%v", err)
	}
	var rev certs.RevocationChecker
	if policy == certs.OCSPRequire {
		rev = &certs.OCSPChecker{Trust: trust, Policy: policy, Timeout: *timeout}
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout+5*time.Second)
	defer cancel()
	l, err := certs.VerifyFederationList(ctx, data, certs.FederationListOptions{Trust: trust, At: when, Revocation: rev})
	if err != nil {
		return failure("%s", flistReason(err))
	}
	return writeJSON(stdout, flistVerifyResult{Valid: true, Version: l.Version, Domains: l.Len(), Signer: l.Signer.Subject.String()})
}

// flistReason turns a verification error into the one-line reason the CLI prints: the failing check first,
// then the detail.
func flistReason(err error) string {
	var ce *certs.ChainError
	switch {
	case errors.Is(err, certs.ErrExpired):
		return "signer expired: " + err.Error()
	case errors.Is(err, certs.ErrNotYetValid):
		return "signer not yet valid: " + err.Error()
	case errors.Is(err, certs.ErrRole):
		return "wrong role: " + err.Error()
	case errors.Is(err, certs.ErrUnknownIssuer), errors.Is(err, certs.ErrSelfSigned):
		return "untrusted chain: " + err.Error()
	case errors.Is(err, certs.ErrRevoked):
		return "signer revoked: " + err.Error()
	case errors.Is(err, certs.ErrFederationListSignature):
		return "bad signature: " + err.Error()
	case errors.As(err, &ce):
		return ce.Check + " check failed: " + err.Error()
	}
	return err.Error()
}

// loadTrust builds the trust store from a PEM directory and/or a verified TSL. The TSL's signer chain is
// checked at the same time as the list; its freshness (NextUpdate) against the wall clock, because a stale
// TSL is stale whatever historical time a chain is checked at.
func loadTrust(dir, tslFile, tslAnchorDir string, at time.Time, allowStale bool) (*certs.TrustStore, error) {
	trust := certs.NewTrustStore()
	if dir != "" {
		if err := trust.LoadPEMDir(dir); err != nil {
			return nil, err
		}
	}
	if tslFile != "" {
		if tslAnchorDir == "" {
			return nil, fmt.Errorf("--tsl needs --tsl-anchor")
		}
		if err := trust.AddTSLFile(tslFile, tslAnchorDir, at, time.Now(), allowStale); err != nil {
			if errors.Is(err, certs.ErrTSLStale) {
				return nil, fmt.Errorf("%w (use --tsl-allow-stale for gematik's test TSL)", err)
			}
			return nil, err
		}
	}
	return trust, nil
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// runFlistSign implements `timstack flist sign`: a federation list signed by a test signer
// (pki issue --profile flist-signer), for the dev stack and tests. The directory service signs its own
// lists in production code paths; this is the operator's and tester's tool.
func runFlistSign(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("flist sign", stderr)
	signerDir := fs.String("signer", "", "directory with the signer's cert.pem and key.pem")
	domainsFile := fs.String("domains", "", `JSON array of {"domain","telematikID","isInsurance","ik","timAnbieter"}`)
	version := fs.Int64("version", 0, "list version (monotonically increasing)")
	alg := fs.String("alg", string(certs.AlgBP256R1), "BP256R1 (brainpool signer) or ES256 (P-256 signer)")
	out := fs.String("out", "", "output file for the compact JWS")
	var chainFiles stringList
	fs.Var(&chainFiles, "chain", "intermediate certificate to add to x5c after the signer (repeatable)")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return usageError("%v", err)
	}
	if len(pos) != 0 || *signerDir == "" || *domainsFile == "" || *out == "" || *version <= 0 {
		return usageError("flist sign: --signer, --domains, --version (> 0) and --out are required")
	}
	signer, err := loadKeyPair(*signerDir)
	if err != nil {
		return failure("flist sign: %v", err)
	}
	chain := []*certs.Certificate{signer.Cert}
	for _, f := range chainFiles {
		data, err := os.ReadFile(f)
		if err != nil {
			return usageError("flist sign: %v", err)
		}
		c, err := certs.ParseCertificatePEMOrDER(data)
		if err != nil {
			return failure("flist sign: %s: %v", f, err)
		}
		chain = append(chain, c)
	}
	data, err := os.ReadFile(*domainsFile)
	if err != nil {
		return usageError("flist sign: %v", err)
	}
	var domains []certs.FederationDomain
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&domains); err != nil {
		return usageError("flist sign: %s: %v", *domainsFile, err)
	}
	jws, err := certs.SignFederationList(signer.Key, certs.JWSAlgorithm(*alg), chain, *version, domains)
	if err != nil {
		return failure("flist sign: %v", err)
	}
	if err := os.WriteFile(*out, jws, 0o644); err != nil {
		return failure("flist sign: %v", err)
	}
	return writeJSON(stdout, map[string]any{"version": *version, "domains": len(domains), "alg": *alg, "out": *out})
}
