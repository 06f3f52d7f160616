package idp

import (
	"context"
	"fmt"
	"time"

	"github.com/timstack/timstack/certs"
)

// idpSignerOptions is THE place that says which certificates may stand for the IDP-Dienst: the discovery
// signer (puk_disc_sig), puk_idp_sig and, when it carries x5c, puk_idp_enc. gemSpec_IDP_Dienst issues all
// three as C.FD.SIG (1.2.276.0.76.4.203) with the Admission role "IDP-Dienst" (1.2.276.0.76.4.260) and key usage
// digitalSignature, under a GEM.KOMP-CA. Anything else — a card certificate, a federation-list signer
// (oid_vzd_ti), a RegService signer (oid_tim), a TLS certificate — is refused even if it chains.
func idpSignerOptions(at time.Time, intermediates []*certs.Certificate, rev certs.RevocationChecker) certs.VerifyOptions {
	return certs.VerifyOptions{
		At:               at,
		Intermediates:    intermediates,
		KeyUsage:         certs.KeyUsageDigitalSignature,
		CertificateTypes: []certs.CertificateType{certs.CertFDSIG},
		Role:             certs.RoleIDPDienst,
		Revocation:       rev,
	}
}

// verifyIDPCertificate validates an IDP key certificate (x5c[0], further x5c entries as intermediates) at at.
func (rp *RelyingParty) verifyIDPCertificate(ctx context.Context, what string, x5c []*certs.Certificate, at time.Time) error {
	if len(x5c) == 0 {
		return fmt.Errorf("%s: no x5c certificate", what)
	}
	var rev certs.RevocationChecker
	if !isNilChecker(rp.cfg.Revocation) {
		rev = rp.cfg.Revocation
	}
	if _, err := rp.cfg.Trust.Verify(ctx, x5c[0], idpSignerOptions(at, x5c[1:], rev)); err != nil {
		return fmt.Errorf("%s certificate %q: %w", what, x5c[0].Subject.CommonName, err)
	}
	return nil
}
