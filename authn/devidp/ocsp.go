package devidp

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/timstack/timstack/certs"
)

// TestOCSP is a card OCSP responder for tests and the dev stack. gematik's test cards name responders we
// cannot reach, so it stands in for them: its TEST-ONLY signer is trusted in the card trust store like a
// TSL Certstatus/OCSP service, it answers good for every card of a trusted CA unless marked revoked, and
// every answer runs through the real OCSP codec (request, signed response, certs.OCSPResponse.Verify).
type TestOCSP struct {
	// Responder is the RFC 6960 responder; it is an http.Handler for use with certs.OCSPChecker.
	Responder *certs.OCSPResponder
	trust     *certs.TrustStore
	now       func() time.Time
}

// NewTestOCSP creates a responder signing with a fresh TEST-ONLY OCSP signer, answering for every anchor
// of trust, and registers the signer in trust (AddOCSPResponder). Call it before trust is shared. now is
// the responder's clock (nil: time.Now); it must agree with the clock of the verifier.
func NewTestOCSP(trust *certs.TrustStore, now func() time.Time) (*TestOCSP, error) {
	if now == nil {
		now = time.Now
	}
	t := now().UTC().Truncate(time.Second)
	from, until := t.AddDate(-1, 0, 0), t.AddDate(1, 0, 0)
	ca, err := certs.NewTestCA("timstack devidp OCSP CA", certs.KeyBrainpoolP256r1, from, until)
	if err != nil {
		return nil, fmt.Errorf("devidp: test OCSP CA: %w", err)
	}
	cert, key, err := ca.Issue(certs.IssueRequest{Profile: certs.IssueProfileOCSPSigner, CommonName: "devidp card OCSP signer",
		KeyAlgorithm: certs.KeyBrainpoolP256r1, NotBefore: from, NotAfter: until})
	if err != nil {
		return nil, fmt.Errorf("devidp: test OCSP signer: %w", err)
	}
	r := &certs.OCSPResponder{Signer: key, SignerCert: cert, DefaultGood: true, Now: now}
	for _, a := range trust.Anchors() {
		r.Issuers = append(r.Issuers, a.Cert)
	}
	trust.AddOCSPResponder(cert)
	return &TestOCSP{Responder: r, trust: trust, now: now}, nil
}

// Revoke makes the responder answer revoked (key compromise, an hour ago) for cert.
func (o *TestOCSP) Revoke(cert *certs.Certificate) {
	o.Responder.SetStatus(cert.SerialNumber, certs.OCSPStatusEntry{Status: certs.OCSPRevoked, RevokedAt: o.now().Add(-time.Hour).UTC().Truncate(time.Second), Reason: 1})
}

// CheckRevocation implements certs.RevocationChecker in-process: it builds the OCSP request, lets the
// responder sign an answer and verifies that answer like a remote one.
func (o *TestOCSP) CheckRevocation(_ context.Context, cert, issuer *certs.Certificate, at time.Time) error {
	req, err := certs.CreateOCSPRequest(cert, issuer)
	if err != nil {
		return fmt.Errorf("test OCSP: %w", err)
	}
	resp, err := certs.ParseOCSPResponse(o.Responder.Respond(req))
	if err != nil {
		return fmt.Errorf("test OCSP: %w", err)
	}
	if resp.Status != certs.OCSPSuccessful {
		return fmt.Errorf("test OCSP: %w: responder said %s", certs.ErrRevocationUnknown, resp.Status)
	}
	return resp.Verify(cert, issuer, o.trust, at)
}

// Checker returns a certs.OCSPChecker asking the responder over HTTP at url (where Responder is served),
// for a dev stack that wants the network path too.
func (o *TestOCSP) Checker(url string, client *http.Client) *certs.OCSPChecker {
	return &certs.OCSPChecker{Trust: o.trust, Policy: certs.OCSPRequire, Client: client,
		URLOverride: func(_, _ *certs.Certificate) string { return url }}
}
