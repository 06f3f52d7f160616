package certs

import (
	"bytes"
	"crypto"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// OCSPResponseTemplate describes a BasicOCSPResponse for CreateOCSPResponse.
type OCSPResponseTemplate struct {
	ProducedAt time.Time
	Responses  []OCSPSingleResponse
	// ResponderByKey names the signer by key hash instead of by subject name (RFC 5019 prefers byKey;
	// gematik's responders use byName).
	ResponderByKey bool
	// Certificates are embedded so that relying parties can find a delegated signer; usually the signer's.
	Certificates []*Certificate
	// Nonce is the raw nonce extension value to echo, nil for none.
	Nonce []byte
}

// CreateOCSPResponse signs a successful OCSPResponse with signer, whose certificate signerCert names the
// responder. The signature is ecdsa-with-SHA256 for EC keys (brainpool or P-256) and sha256WithRSAEncryption
// for RSA, the algorithms TI relying parties accept. In SingleResponses, a RevocationReason ≤ 0 is omitted
// (RFC 5280 §5.3.1: use no reason code rather than "unspecified") and a zero NextUpdate is left out.
func CreateOCSPResponse(tmpl *OCSPResponseTemplate, signerCert *Certificate, signer crypto.Signer) ([]byte, error) {
	if tmpl == nil || signerCert == nil || signer == nil {
		return nil, errors.New("OCSP response: template, signer certificate and key are required")
	}
	spki, err := MarshalPKIXPublicKey(signer.Public())
	if err != nil {
		return nil, fmt.Errorf("OCSP response: signer key: %w", err)
	}
	if !bytes.Equal(spki, signerCert.RawSubjectPublicKeyInfo) {
		return nil, errors.New("OCSP response: signer key does not belong to the signer certificate")
	}
	alg, algID, err := caSignatureAlgorithm(signer.Public())
	if err != nil {
		return nil, fmt.Errorf("OCSP response: %w", err)
	}
	var tbs cryptobyte.Builder
	tbs.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		if tmpl.ResponderByKey {
			bits, err := ocspPublicKeyBits(signerCert.RawSubjectPublicKeyInfo)
			if err != nil {
				b.SetError(err)
				return
			}
			h := sha1.Sum(bits)
			b.AddASN1(cbasn1.Tag(2).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) { b.AddASN1OctetString(h[:]) })
		} else {
			b.AddASN1(cbasn1.Tag(1).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) { b.AddBytes(signerCert.RawSubject) })
		}
		b.AddASN1GeneralizedTime(tmpl.ProducedAt.UTC().Truncate(time.Second))
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			for _, sr := range tmpl.Responses {
				ocspAddSingleResponse(b, sr)
			}
		})
		if tmpl.Nonce != nil {
			b.AddASN1(cbasn1.Tag(1).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
				ocspAddNonceExtensions(b, tmpl.Nonce)
			})
		}
	})
	tbsDER, err := tbs.Bytes()
	if err != nil {
		return nil, fmt.Errorf("OCSP response: encode ResponseData: %w", err)
	}
	sig, err := signWithKey(signer, alg, tbsDER)
	if err != nil {
		return nil, fmt.Errorf("OCSP response: sign: %w", err)
	}
	var basic cryptobyte.Builder
	basic.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddBytes(tbsDER)
		b.AddBytes(algID)
		b.AddASN1BitString(sig)
		if len(tmpl.Certificates) > 0 {
			b.AddASN1(cbasn1.Tag(0).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
				b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
					for _, c := range tmpl.Certificates {
						b.AddBytes(c.Raw)
					}
				})
			})
		}
	})
	basicDER, err := basic.Bytes()
	if err != nil {
		return nil, fmt.Errorf("OCSP response: encode BasicOCSPResponse: %w", err)
	}
	var out cryptobyte.Builder
	out.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1Enum(int64(OCSPSuccessful))
		b.AddASN1(cbasn1.Tag(0).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				b.AddASN1ObjectIdentifier(OIDOCSPBasic)
				b.AddASN1OctetString(basicDER)
			})
		})
	})
	der, err := out.Bytes()
	if err != nil {
		return nil, fmt.Errorf("OCSP response: encode: %w", err)
	}
	return der, nil
}

func ocspAddSingleResponse(b *cryptobyte.Builder, sr OCSPSingleResponse) {
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		ocspAddCertID(b, sr.CertID)
		switch sr.Status {
		case OCSPGood:
			b.AddASN1(cbasn1.Tag(0).ContextSpecific(), func(*cryptobyte.Builder) {})
		case OCSPRevoked:
			b.AddASN1(cbasn1.Tag(1).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
				b.AddASN1GeneralizedTime(sr.RevokedAt.UTC().Truncate(time.Second))
				if sr.RevocationReason > 0 {
					b.AddASN1(cbasn1.Tag(0).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
						b.AddASN1Enum(int64(sr.RevocationReason))
					})
				}
			})
		case OCSPUnknown:
			b.AddASN1(cbasn1.Tag(2).ContextSpecific(), func(*cryptobyte.Builder) {})
		default:
			b.SetError(fmt.Errorf("unknown certificate status %d", sr.Status))
			return
		}
		b.AddASN1GeneralizedTime(sr.ThisUpdate.UTC().Truncate(time.Second))
		if !sr.NextUpdate.IsZero() {
			b.AddASN1(cbasn1.Tag(0).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
				b.AddASN1GeneralizedTime(sr.NextUpdate.UTC().Truncate(time.Second))
			})
		}
	})
}

// CreateOCSPErrorResponse returns the unsigned OCSPResponse for a non-successful status (RFC 6960 §2.3:
// error responses carry no signature).
func CreateOCSPErrorResponse(status OCSPResponseStatus) ([]byte, error) {
	if status == OCSPSuccessful {
		return nil, errors.New("OCSP response: a successful response needs CreateOCSPResponse")
	}
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { b.AddASN1Enum(int64(status)) })
	return b.Bytes()
}

// OCSPStatusEntry is what an OCSPResponder answers for one serial number.
type OCSPStatusEntry struct {
	Status    OCSPCertStatus
	RevokedAt time.Time
	// Reason is the CRLReason (1 keyCompromise, 4 superseded, …); 0 sends none.
	Reason int
}

// OCSPSerialKey is the key of OCSPResponder.Status for a serial: upper-case hex without leading zeros,
// close to how `openssl x509 -serial` prints it.
func OCSPSerialKey(serial *big.Int) string { return strings.ToUpper(serial.Text(16)) }

// DefaultOCSPValidity is the nextUpdate distance an OCSPResponder uses when Validity is zero.
const DefaultOCSPValidity = time.Hour

// OCSPResponder is a small RFC 6960 responder for test CAs and the dev stack. It answers POST requests
// (application/ocsp-request) and GET requests with the base64 request in the path, signs with Signer, and
// embeds SignerCert so relying parties can check a delegated signer.
//
// Fill the fields before serving; afterwards change statuses only through SetStatus.
type OCSPResponder struct {
	Signer     crypto.Signer
	SignerCert *Certificate
	// Issuers are the CAs this responder answers for; requests for other issuers get "unauthorized".
	Issuers []*Certificate
	// Status maps OCSPSerialKey(serial) to its status.
	Status map[string]OCSPStatusEntry
	// DefaultGood answers "good" for serials of a known issuer that are not in Status. By default they are
	// "unknown", so a forgotten entry never passes as good.
	DefaultGood bool
	// Now is the responder's clock; nil means time.Now. Tests set a fixed clock matching their cards.
	Now func() time.Time
	// Validity is the distance from thisUpdate to nextUpdate; zero means DefaultOCSPValidity, negative
	// omits nextUpdate.
	Validity time.Duration
	// ResponderByKey names the signer by key hash instead of by subject name.
	ResponderByKey bool

	mu sync.RWMutex
}

// SetStatus sets the status of serial; safe while serving.
func (r *OCSPResponder) SetStatus(serial *big.Int, e OCSPStatusEntry) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.Status == nil {
		r.Status = map[string]OCSPStatusEntry{}
	}
	r.Status[OCSPSerialKey(serial)] = e
}

// Respond answers one DER OCSPRequest with a DER OCSPResponse. It always returns a response: malformed
// requests get malformedRequest, unknown issuers unauthorized, signing failures internalError.
func (r *OCSPResponder) Respond(reqDER []byte) []byte {
	req, err := ParseOCSPRequest(reqDER)
	if err != nil {
		return ocspMustError(OCSPMalformedRequest)
	}
	now := time.Now()
	if r.Now != nil {
		now = r.Now()
	}
	validity := r.Validity
	if validity == 0 {
		validity = DefaultOCSPValidity
	}
	tmpl := &OCSPResponseTemplate{
		ProducedAt:     now,
		ResponderByKey: r.ResponderByKey,
		Certificates:   []*Certificate{r.SignerCert},
		Nonce:          req.Nonce,
	}
	known := false
	r.mu.RLock()
	for _, id := range req.CertIDs {
		sr := OCSPSingleResponse{CertID: id, Status: OCSPUnknown, ThisUpdate: now}
		if validity > 0 {
			sr.NextUpdate = now.Add(validity)
		}
		if r.knowsIssuer(id) {
			known = true
			e, ok := r.Status[OCSPSerialKey(id.SerialNumber)]
			switch {
			case ok:
				sr.Status, sr.RevokedAt, sr.RevocationReason = e.Status, e.RevokedAt, e.Reason
			case r.DefaultGood:
				sr.Status = OCSPGood
			}
		}
		tmpl.Responses = append(tmpl.Responses, sr)
	}
	r.mu.RUnlock()
	if !known {
		return ocspMustError(OCSPUnauthorized)
	}
	der, err := CreateOCSPResponse(tmpl, r.SignerCert, r.Signer)
	if err != nil {
		return ocspMustError(OCSPInternalError)
	}
	return der
}

func (r *OCSPResponder) knowsIssuer(id OCSPCertID) bool {
	for _, iss := range r.Issuers {
		if id.IssuedBy(iss) {
			return true
		}
	}
	return false
}

func ocspMustError(status OCSPResponseStatus) []byte {
	der, _ := CreateOCSPErrorResponse(status) // cannot fail for a non-successful status
	return der
}

const ocspMaxRequest = 64 << 10

// ServeHTTP implements the RFC 6960 Appendix A transport.
func (r *OCSPResponder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	var reqDER []byte
	switch req.Method {
	case http.MethodPost:
		body, err := io.ReadAll(io.LimitReader(req.Body, ocspMaxRequest+1))
		if err != nil || len(body) > ocspMaxRequest {
			http.Error(w, "request too large or unreadable", http.StatusBadRequest)
			return
		}
		reqDER = body
	case http.MethodGet:
		reqDER = ocspRequestFromPath(req.URL.EscapedPath())
	default:
		w.Header().Set("Allow", "GET, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	resp := r.Respond(reqDER)
	w.Header().Set("Content-Type", "application/ocsp-response")
	w.Header().Set("Content-Length", strconv.Itoa(len(resp)))
	_, _ = w.Write(resp)
}

// ocspRequestFromPath finds the base64 request in a GET path. The responder may be mounted under any
// prefix and clients differ in whether they escape the '/' of base64, so every suffix after a '/' is tried,
// longest first.
func ocspRequestFromPath(escaped string) []byte {
	// GET is meant for small requests (RFC 5019 §5: under 255 bytes); the bound also caps the suffix search.
	const maxGETPath = 4096
	if len(escaped) > maxGETPath {
		return nil
	}
	for i := 0; i < len(escaped); i++ {
		if escaped[i] != '/' {
			continue
		}
		s, err := url.PathUnescape(escaped[i+1:])
		if err != nil || s == "" {
			continue
		}
		der, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			continue
		}
		if _, err := ParseOCSPRequest(der); err == nil {
			return der
		}
	}
	return nil
}
