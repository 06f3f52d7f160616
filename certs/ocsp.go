package certs

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha1"
	"encoding/asn1"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"sync"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// OCSP (RFC 6960) for the TI PKI, TUC_PKI_006.
//
// golang.org/x/crypto/ocsp cannot be used: it parses embedded responder certificates with crypto/x509, which
// refuses brainpool keys, and it hashes the whole SubjectPublicKeyInfo where RFC 6960 wants only the key bits.

// OCSPTimeTolerance is the clock skew TUC_PKI_006 allows between the responder and us for producedAt,
// thisUpdate and nextUpdate.
const OCSPTimeTolerance = 37500 * time.Millisecond

// OCSPDefaultTimeout bounds one OCSP request (GemLibPki's default), so a hanging responder cannot hold a login.
const OCSPDefaultTimeout = 10 * time.Second

// ErrOCSPInvalid is wrapped by every error that comes from a response we refuse to believe: bad signature,
// unauthorised signer, wrong CertID, stale or future times, malformed encoding.
var ErrOCSPInvalid = errors.New("OCSP response invalid")

// Further OCSP identifiers.
var (
	OIDOCSPBasic = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 48, 1, 1}
	OIDOCSPNonce = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 48, 1, 2}
)

// OCSPResponseStatus is the outer responseStatus of an OCSPResponse.
type OCSPResponseStatus int

// Response statuses (RFC 6960 §4.2.1); 4 is unused.
const (
	OCSPSuccessful       OCSPResponseStatus = 0
	OCSPMalformedRequest OCSPResponseStatus = 1
	OCSPInternalError    OCSPResponseStatus = 2
	OCSPTryLater         OCSPResponseStatus = 3
	OCSPSigRequired      OCSPResponseStatus = 5
	OCSPUnauthorized     OCSPResponseStatus = 6
)

func (s OCSPResponseStatus) String() string {
	switch s {
	case OCSPSuccessful:
		return "successful"
	case OCSPMalformedRequest:
		return "malformedRequest"
	case OCSPInternalError:
		return "internalError"
	case OCSPTryLater:
		return "tryLater"
	case OCSPSigRequired:
		return "sigRequired"
	case OCSPUnauthorized:
		return "unauthorized"
	}
	return fmt.Sprintf("status(%d)", int(s))
}

// OCSPCertStatus is a certificate's status in a SingleResponse; the values are the CHOICE tags.
type OCSPCertStatus int

// Certificate statuses.
const (
	OCSPGood    OCSPCertStatus = 0
	OCSPRevoked OCSPCertStatus = 1
	OCSPUnknown OCSPCertStatus = 2
)

func (s OCSPCertStatus) String() string {
	switch s {
	case OCSPGood:
		return "good"
	case OCSPRevoked:
		return "revoked"
	case OCSPUnknown:
		return "unknown"
	}
	return fmt.Sprintf("certStatus(%d)", int(s))
}

// OCSPCertID identifies a certificate to a responder: hashes of its issuer's name and key, plus the serial.
type OCSPCertID struct {
	HashAlgorithm  crypto.Hash // crypto.SHA1 or crypto.SHA256
	IssuerNameHash []byte
	IssuerKeyHash  []byte
	SerialNumber   *big.Int
}

// NewOCSPCertID computes the CertID of cert. The key hash covers only the issuer's subjectPublicKey BIT
// STRING contents (RFC 6960 §4.1.1), not the whole SubjectPublicKeyInfo.
func NewOCSPCertID(cert, issuer *Certificate, h crypto.Hash) (OCSPCertID, error) {
	if cert == nil || issuer == nil {
		return OCSPCertID{}, errors.New("OCSP CertID: certificate and issuer are required")
	}
	nameHash, keyHash, err := ocspIssuerHashes(issuer, h)
	if err != nil {
		return OCSPCertID{}, err
	}
	return OCSPCertID{HashAlgorithm: h, IssuerNameHash: nameHash, IssuerKeyHash: keyHash, SerialNumber: new(big.Int).Set(cert.SerialNumber)}, nil
}

// Matches reports whether the CertID names cert as issued by issuer, recomputing the hashes with the
// CertID's own hash algorithm.
func (id OCSPCertID) Matches(cert, issuer *Certificate) bool {
	if id.SerialNumber == nil || cert == nil || id.SerialNumber.Cmp(cert.SerialNumber) != 0 {
		return false
	}
	return id.IssuedBy(issuer)
}

// IssuedBy reports whether the CertID's issuer hashes belong to issuer (a responder uses it to pick the CA).
func (id OCSPCertID) IssuedBy(issuer *Certificate) bool {
	if issuer == nil {
		return false
	}
	nameHash, keyHash, err := ocspIssuerHashes(issuer, id.HashAlgorithm)
	return err == nil && bytes.Equal(nameHash, id.IssuerNameHash) && bytes.Equal(keyHash, id.IssuerKeyHash)
}

func (id OCSPCertID) key() string {
	serial := ""
	if id.SerialNumber != nil {
		serial = id.SerialNumber.Text(16)
	}
	return fmt.Sprintf("%d/%x/%x/%s", id.HashAlgorithm, id.IssuerNameHash, id.IssuerKeyHash, serial)
}

func ocspIssuerHashes(issuer *Certificate, h crypto.Hash) (nameHash, keyHash []byte, err error) {
	if h != crypto.SHA1 && h != crypto.SHA256 {
		return nil, nil, fmt.Errorf("OCSP CertID: unsupported hash %v", h)
	}
	bits, err := ocspPublicKeyBits(issuer.RawSubjectPublicKeyInfo)
	if err != nil {
		return nil, nil, fmt.Errorf("OCSP CertID: issuer key: %w", err)
	}
	hn := h.New()
	hn.Write(issuer.RawSubject)
	hk := h.New()
	hk.Write(bits)
	return hn.Sum(nil), hk.Sum(nil), nil
}

// ocspPublicKeyBits returns the contents of the subjectPublicKey BIT STRING of a SubjectPublicKeyInfo.
func ocspPublicKeyBits(spki []byte) ([]byte, error) {
	in := cryptobyte.String(spki)
	var seq cryptobyte.String
	var bits asn1.BitString
	if !in.ReadASN1(&seq, cbasn1.SEQUENCE) || !seq.SkipASN1(cbasn1.SEQUENCE) || !seq.ReadASN1BitString(&bits) || !seq.Empty() {
		return nil, errors.New("malformed subjectPublicKeyInfo")
	}
	return bits.RightAlign(), nil
}

func ocspHashOID(h crypto.Hash) (asn1.ObjectIdentifier, bool) {
	switch h {
	case crypto.SHA1:
		return OIDDigestSHA1, true
	case crypto.SHA256:
		return OIDDigestSHA256, true
	}
	return nil, false
}

func ocspAddCertID(b *cryptobyte.Builder, id OCSPCertID) {
	oid, ok := ocspHashOID(id.HashAlgorithm)
	if !ok || id.SerialNumber == nil {
		b.SetError(errors.New("OCSP CertID: unsupported hash or missing serial"))
		return
	}
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1ObjectIdentifier(oid)
			b.AddASN1NULL() // RFC 6960 examples and OpenSSL write NULL parameters; both forms are read.
		})
		b.AddASN1OctetString(id.IssuerNameHash)
		b.AddASN1OctetString(id.IssuerKeyHash)
		b.AddASN1BigInt(id.SerialNumber)
	})
}

func ocspReadCertID(s *cryptobyte.String) (OCSPCertID, error) {
	var id OCSPCertID
	var seq, alg cryptobyte.String
	var oid asn1.ObjectIdentifier
	var nameHash, keyHash cryptobyte.String
	id.SerialNumber = new(big.Int)
	if !s.ReadASN1(&seq, cbasn1.SEQUENCE) || !seq.ReadASN1(&alg, cbasn1.SEQUENCE) || !alg.ReadASN1ObjectIdentifier(&oid) {
		return id, errors.New("malformed CertID")
	}
	if !alg.Empty() && (!alg.SkipASN1(cbasn1.NULL) || !alg.Empty()) {
		return id, errors.New("malformed CertID hash parameters")
	}
	if !seq.ReadASN1(&nameHash, cbasn1.OCTET_STRING) || !seq.ReadASN1(&keyHash, cbasn1.OCTET_STRING) ||
		!seq.ReadASN1Integer(id.SerialNumber) || !seq.Empty() {
		return id, errors.New("malformed CertID")
	}
	switch {
	case oid.Equal(OIDDigestSHA1):
		id.HashAlgorithm = crypto.SHA1
	case oid.Equal(OIDDigestSHA256):
		id.HashAlgorithm = crypto.SHA256
	default:
		return id, fmt.Errorf("CertID: unsupported hash algorithm %s", oid)
	}
	if len(nameHash) != id.HashAlgorithm.Size() || len(keyHash) != id.HashAlgorithm.Size() {
		return id, errors.New("CertID: hash length does not match its algorithm")
	}
	id.IssuerNameHash = bytes.Clone(nameHash)
	id.IssuerKeyHash = bytes.Clone(keyHash)
	return id, nil
}

// CreateOCSPRequest returns a DER OCSPRequest for cert with a SHA-1 CertID. SHA-1 is what RFC 5019
// responders (and the TI's) are guaranteed to understand; it is an identifier here, not a signature.
func CreateOCSPRequest(cert, issuer *Certificate) ([]byte, error) {
	return CreateOCSPRequestWithHash(cert, issuer, crypto.SHA1)
}

// CreateOCSPRequestWithHash is CreateOCSPRequest with a chosen CertID hash (crypto.SHA1 or crypto.SHA256).
func CreateOCSPRequestWithHash(cert, issuer *Certificate, h crypto.Hash) ([]byte, error) {
	id, err := NewOCSPCertID(cert, issuer, h)
	if err != nil {
		return nil, err
	}
	return ocspMarshalRequest([]OCSPCertID{id}, nil)
}

func ocspMarshalRequest(ids []OCSPCertID, nonce []byte) ([]byte, error) {
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // OCSPRequest
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // TBSRequest
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // requestList
				for _, id := range ids {
					b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { ocspAddCertID(b, id) })
				}
			})
			if nonce != nil {
				b.AddASN1(cbasn1.Tag(2).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
					ocspAddNonceExtensions(b, nonce)
				})
			}
		})
	})
	der, err := b.Bytes()
	if err != nil {
		return nil, fmt.Errorf("OCSP request: %w", err)
	}
	return der, nil
}

func ocspAddNonceExtensions(b *cryptobyte.Builder, nonce []byte) {
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1ObjectIdentifier(OIDOCSPNonce)
			b.AddASN1OctetString(nonce)
		})
	})
}

// OCSPRequest is a parsed OCSP request (what a responder needs of it).
type OCSPRequest struct {
	CertIDs []OCSPCertID
	// Nonce is the raw value of the nonce extension (as the client sent it), nil when absent.
	Nonce []byte
}

// ParseOCSPRequest decodes a DER OCSPRequest. Signed requests are accepted but their signature is ignored:
// the TI does not use them and a status answer reveals nothing secret.
func ParseOCSPRequest(der []byte) (*OCSPRequest, error) {
	in := cryptobyte.String(der)
	var req, tbs, list cryptobyte.String
	if !in.ReadASN1(&req, cbasn1.SEQUENCE) || !in.Empty() || !req.ReadASN1(&tbs, cbasn1.SEQUENCE) ||
		!req.SkipOptionalASN1(cbasn1.Tag(0).Constructed().ContextSpecific()) || !req.Empty() {
		return nil, errors.New("OCSP request: malformed OCSPRequest")
	}
	if !tbs.SkipOptionalASN1(cbasn1.Tag(0).Constructed().ContextSpecific()) ||
		!tbs.SkipOptionalASN1(cbasn1.Tag(1).Constructed().ContextSpecific()) ||
		!tbs.ReadASN1(&list, cbasn1.SEQUENCE) {
		return nil, errors.New("OCSP request: malformed TBSRequest")
	}
	out := &OCSPRequest{}
	for !list.Empty() {
		var one cryptobyte.String
		if !list.ReadASN1(&one, cbasn1.SEQUENCE) {
			return nil, errors.New("OCSP request: malformed Request")
		}
		id, err := ocspReadCertID(&one)
		if err != nil {
			return nil, fmt.Errorf("OCSP request: %w", err)
		}
		if !one.SkipOptionalASN1(cbasn1.Tag(0).Constructed().ContextSpecific()) || !one.Empty() {
			return nil, errors.New("OCSP request: malformed singleRequestExtensions")
		}
		out.CertIDs = append(out.CertIDs, id)
	}
	if len(out.CertIDs) == 0 {
		return nil, errors.New("OCSP request: empty requestList")
	}
	if tbs.PeekASN1Tag(cbasn1.Tag(2).Constructed().ContextSpecific()) {
		var exts cryptobyte.String
		if !tbs.ReadASN1(&exts, cbasn1.Tag(2).Constructed().ContextSpecific()) {
			return nil, errors.New("OCSP request: malformed requestExtensions")
		}
		nonce, err := ocspFindNonce(exts)
		if err != nil {
			return nil, fmt.Errorf("OCSP request: %w", err)
		}
		out.Nonce = nonce
	}
	if !tbs.Empty() {
		return nil, errors.New("OCSP request: trailing data in TBSRequest")
	}
	return out, nil
}

// ocspFindNonce reads an [n]-wrapped Extensions value and returns the nonce extension's value, if any.
func ocspFindNonce(wrapped cryptobyte.String) ([]byte, error) {
	var exts cryptobyte.String
	if !wrapped.ReadASN1(&exts, cbasn1.SEQUENCE) || !wrapped.Empty() {
		return nil, errors.New("malformed extensions")
	}
	var nonce []byte
	for !exts.Empty() {
		var ext, val cryptobyte.String
		var oid asn1.ObjectIdentifier
		if !exts.ReadASN1(&ext, cbasn1.SEQUENCE) || !ext.ReadASN1ObjectIdentifier(&oid) ||
			!ext.SkipOptionalASN1(cbasn1.BOOLEAN) || !ext.ReadASN1(&val, cbasn1.OCTET_STRING) || !ext.Empty() {
			return nil, errors.New("malformed extension")
		}
		if oid.Equal(OIDOCSPNonce) {
			nonce = bytes.Clone(val)
		}
	}
	return nonce, nil
}

// OCSPSingleResponse is the status of one certificate.
type OCSPSingleResponse struct {
	CertID OCSPCertID
	Status OCSPCertStatus
	// RevokedAt and RevocationReason are set for OCSPRevoked; RevocationReason is -1 when absent.
	RevokedAt        time.Time
	RevocationReason int
	ThisUpdate       time.Time
	// NextUpdate is zero when the responder gave none.
	NextUpdate time.Time
}

// OCSPResponse is a parsed OCSPResponse with its BasicOCSPResponse. Nothing in it is trusted until Verify.
type OCSPResponse struct {
	Raw    []byte
	Status OCSPResponseStatus

	// RawResponseData is the DER tbsResponseData, the signed part.
	RawResponseData []byte
	// Exactly one of ResponderName (DER Name) and ResponderKeyHash (SHA-1 of the signer's key bits) is set.
	ResponderName      []byte
	ResponderKeyHash   []byte
	ProducedAt         time.Time
	Responses          []OCSPSingleResponse
	Nonce              []byte
	SignatureAlgorithm SignatureAlgorithm // "" when the algorithm is unsupported; Verify then refuses
	Signature          []byte
	// Certificates are the embedded certificates, normally the delegated responder's.
	Certificates []*Certificate
}

// ParseOCSPResponse decodes a DER OCSPResponse. A non-successful status is returned without error and
// without a body, so callers can tell "tryLater" from garbage. It never panics on malformed input (fuzzed).
func ParseOCSPResponse(der []byte) (*OCSPResponse, error) {
	r, err := ocspParseResponse(der)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrOCSPInvalid, err)
	}
	return r, nil
}

func ocspParseResponse(der []byte) (*OCSPResponse, error) {
	r := &OCSPResponse{Raw: der}
	in := cryptobyte.String(der)
	var resp cryptobyte.String
	var status int
	if !in.ReadASN1(&resp, cbasn1.SEQUENCE) || !in.Empty() || !resp.ReadASN1Enum(&status) {
		return nil, errors.New("malformed OCSPResponse")
	}
	r.Status = OCSPResponseStatus(status)
	if r.Status != OCSPSuccessful {
		if !resp.SkipOptionalASN1(cbasn1.Tag(0).Constructed().ContextSpecific()) || !resp.Empty() {
			return nil, errors.New("malformed OCSPResponse")
		}
		return r, nil
	}
	var rb, rbSeq, basicDER cryptobyte.String
	var rtype asn1.ObjectIdentifier
	if !resp.ReadASN1(&rb, cbasn1.Tag(0).Constructed().ContextSpecific()) || !resp.Empty() ||
		!rb.ReadASN1(&rbSeq, cbasn1.SEQUENCE) || !rb.Empty() ||
		!rbSeq.ReadASN1ObjectIdentifier(&rtype) || !rbSeq.ReadASN1(&basicDER, cbasn1.OCTET_STRING) || !rbSeq.Empty() {
		return nil, errors.New("malformed responseBytes")
	}
	if !rtype.Equal(OIDOCSPBasic) {
		return nil, fmt.Errorf("unsupported response type %s", rtype)
	}
	var basic, tbs, sigAlg cryptobyte.String
	var sig asn1.BitString
	if !basicDER.ReadASN1(&basic, cbasn1.SEQUENCE) || !basicDER.Empty() ||
		!basic.ReadASN1Element(&tbs, cbasn1.SEQUENCE) ||
		!basic.ReadASN1Element(&sigAlg, cbasn1.SEQUENCE) ||
		!basic.ReadASN1BitString(&sig) || sig.BitLength%8 != 0 {
		return nil, errors.New("malformed BasicOCSPResponse")
	}
	r.RawResponseData = tbs
	r.SignatureAlgorithm, _ = parseSignatureAlgorithm(sigAlg)
	r.Signature = sig.Bytes
	if basic.PeekASN1Tag(cbasn1.Tag(0).Constructed().ContextSpecific()) {
		var wrapped, certs cryptobyte.String
		if !basic.ReadASN1(&wrapped, cbasn1.Tag(0).Constructed().ContextSpecific()) ||
			!wrapped.ReadASN1(&certs, cbasn1.SEQUENCE) || !wrapped.Empty() {
			return nil, errors.New("malformed certs")
		}
		for !certs.Empty() {
			var certDER cryptobyte.String
			if !certs.ReadASN1Element(&certDER, cbasn1.SEQUENCE) {
				return nil, errors.New("malformed embedded certificate")
			}
			c, err := ParseCertificate(certDER)
			if err != nil {
				return nil, fmt.Errorf("embedded %w", err)
			}
			r.Certificates = append(r.Certificates, c)
		}
	}
	if !basic.Empty() {
		return nil, errors.New("trailing data in BasicOCSPResponse")
	}
	if err := r.parseResponseData(tbs); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *OCSPResponse) parseResponseData(tbs cryptobyte.String) error {
	var data cryptobyte.String
	if !tbs.ReadASN1(&data, cbasn1.SEQUENCE) || !tbs.Empty() {
		return errors.New("malformed ResponseData")
	}
	if data.PeekASN1Tag(cbasn1.Tag(0).Constructed().ContextSpecific()) {
		var v cryptobyte.String
		var version int64
		if !data.ReadASN1(&v, cbasn1.Tag(0).Constructed().ContextSpecific()) || !v.ReadASN1Integer(&version) || !v.Empty() || version != 0 {
			return errors.New("unsupported ResponseData version")
		}
	}
	switch {
	case data.PeekASN1Tag(cbasn1.Tag(1).Constructed().ContextSpecific()):
		var byName, name cryptobyte.String
		if !data.ReadASN1(&byName, cbasn1.Tag(1).Constructed().ContextSpecific()) ||
			!byName.ReadASN1Element(&name, cbasn1.SEQUENCE) || !byName.Empty() {
			return errors.New("malformed responderID byName")
		}
		r.ResponderName = name
	case data.PeekASN1Tag(cbasn1.Tag(2).Constructed().ContextSpecific()):
		var byKey, hash cryptobyte.String
		if !data.ReadASN1(&byKey, cbasn1.Tag(2).Constructed().ContextSpecific()) ||
			!byKey.ReadASN1(&hash, cbasn1.OCTET_STRING) || !byKey.Empty() || len(hash) != sha1.Size {
			return errors.New("malformed responderID byKey")
		}
		r.ResponderKeyHash = hash
	default:
		return errors.New("malformed responderID")
	}
	if !data.ReadASN1GeneralizedTime(&r.ProducedAt) {
		return errors.New("malformed producedAt")
	}
	var list cryptobyte.String
	if !data.ReadASN1(&list, cbasn1.SEQUENCE) {
		return errors.New("malformed responses")
	}
	for !list.Empty() {
		sr, err := ocspReadSingleResponse(&list)
		if err != nil {
			return err
		}
		r.Responses = append(r.Responses, sr)
	}
	if data.PeekASN1Tag(cbasn1.Tag(1).Constructed().ContextSpecific()) {
		var exts cryptobyte.String
		if !data.ReadASN1(&exts, cbasn1.Tag(1).Constructed().ContextSpecific()) {
			return errors.New("malformed responseExtensions")
		}
		nonce, err := ocspFindNonce(exts)
		if err != nil {
			return fmt.Errorf("responseExtensions: %w", err)
		}
		r.Nonce = nonce
	}
	if !data.Empty() {
		return errors.New("trailing data in ResponseData")
	}
	return nil
}

func ocspReadSingleResponse(s *cryptobyte.String) (OCSPSingleResponse, error) {
	sr := OCSPSingleResponse{RevocationReason: -1}
	var one cryptobyte.String
	if !s.ReadASN1(&one, cbasn1.SEQUENCE) {
		return sr, errors.New("malformed SingleResponse")
	}
	var err error
	if sr.CertID, err = ocspReadCertID(&one); err != nil {
		return sr, err
	}
	var status cryptobyte.String
	var tag cbasn1.Tag
	if !one.ReadAnyASN1(&status, &tag) {
		return sr, errors.New("malformed certStatus")
	}
	switch tag {
	case cbasn1.Tag(0).ContextSpecific():
		sr.Status = OCSPGood
		if !status.Empty() {
			return sr, errors.New("malformed certStatus good")
		}
	case cbasn1.Tag(1).Constructed().ContextSpecific():
		sr.Status = OCSPRevoked
		if !status.ReadASN1GeneralizedTime(&sr.RevokedAt) {
			return sr, errors.New("malformed revocationTime")
		}
		if status.PeekASN1Tag(cbasn1.Tag(0).Constructed().ContextSpecific()) {
			var reason cryptobyte.String
			var code int
			if !status.ReadASN1(&reason, cbasn1.Tag(0).Constructed().ContextSpecific()) || !reason.ReadASN1Enum(&code) || !reason.Empty() || code < 0 || code > 10 {
				return sr, errors.New("malformed revocationReason")
			}
			sr.RevocationReason = code
		}
		if !status.Empty() {
			return sr, errors.New("malformed RevokedInfo")
		}
	case cbasn1.Tag(2).ContextSpecific():
		sr.Status = OCSPUnknown
		if !status.Empty() {
			return sr, errors.New("malformed certStatus unknown")
		}
	default:
		return sr, errors.New("unknown certStatus choice")
	}
	if !one.ReadASN1GeneralizedTime(&sr.ThisUpdate) {
		return sr, errors.New("malformed thisUpdate")
	}
	if one.PeekASN1Tag(cbasn1.Tag(0).Constructed().ContextSpecific()) {
		var nu cryptobyte.String
		if !one.ReadASN1(&nu, cbasn1.Tag(0).Constructed().ContextSpecific()) || !nu.ReadASN1GeneralizedTime(&sr.NextUpdate) || !nu.Empty() {
			return sr, errors.New("malformed nextUpdate")
		}
	}
	if !one.SkipOptionalASN1(cbasn1.Tag(1).Constructed().ContextSpecific()) || !one.Empty() {
		return sr, errors.New("trailing data in SingleResponse")
	}
	return sr, nil
}

// OCSPRevokedError reports a revoked certificate; it wraps ErrRevoked and keeps the revocation time and
// reason, which a signature validator needs to judge signatures made before the revocation.
type OCSPRevokedError struct {
	RevokedAt time.Time
	Reason    int // CRLReason, -1 when the responder gave none
}

func (e *OCSPRevokedError) Error() string {
	if e.Reason >= 0 {
		return fmt.Sprintf("%v since %s (reason %d)", ErrRevoked, e.RevokedAt.UTC().Format(time.RFC3339), e.Reason)
	}
	return fmt.Sprintf("%v since %s", ErrRevoked, e.RevokedAt.UTC().Format(time.RFC3339))
}

func (e *OCSPRevokedError) Unwrap() error { return ErrRevoked }

// Verify checks the response for cert (issued by issuer) at time at, following TUC_PKI_006, and returns nil
// for good, an *OCSPRevokedError (wrapping ErrRevoked) for revoked, and ErrRevocationUnknown for unknown.
// Any other error wraps ErrOCSPInvalid: the response is not evidence either way.
//
// The signer must be the issuing CA itself, a responder certificate trusted in trust (the TSL's
// Certstatus/OCSP services, or a configured test responder), or a delegated responder certificate the issuer
// signed with the OCSPSigning extended key usage. Times are checked with OCSPTimeTolerance: producedAt and
// thisUpdate must not lie in the future, nextUpdate (when present) not in the past. A revoked status counts
// regardless of the revocation time; callers that need the time get it from OCSPRevokedError.
func (r *OCSPResponse) Verify(cert, issuer *Certificate, trust *TrustStore, at time.Time) error {
	if r.Status != OCSPSuccessful {
		return fmt.Errorf("%w: responder answered %s", ErrOCSPInvalid, r.Status)
	}
	if cert == nil || issuer == nil {
		return errors.New("OCSP verify: certificate and issuer are required")
	}
	single, err := r.find(cert, issuer)
	if err != nil {
		return err
	}
	if _, err := r.verifySigner(issuer, trust, at); err != nil {
		return err
	}
	if err := ocspCheckTimes(r.ProducedAt, single, at); err != nil {
		return err
	}
	return single.result()
}

func (r *OCSPResponse) find(cert, issuer *Certificate) (*OCSPSingleResponse, error) {
	for i := range r.Responses {
		if r.Responses[i].CertID.Matches(cert, issuer) {
			return &r.Responses[i], nil
		}
	}
	return nil, fmt.Errorf("%w: no SingleResponse for serial %X of %q", ErrOCSPInvalid, cert.SerialNumber, issuer.Subject.String())
}

func ocspCheckTimes(producedAt time.Time, s *OCSPSingleResponse, at time.Time) error {
	latest := at.Add(OCSPTimeTolerance)
	switch {
	case producedAt.After(latest):
		return fmt.Errorf("%w: producedAt %s is after %s", ErrOCSPInvalid, producedAt.UTC().Format(time.RFC3339), at.UTC().Format(time.RFC3339))
	case s.ThisUpdate.After(latest):
		return fmt.Errorf("%w: thisUpdate %s is after %s", ErrOCSPInvalid, s.ThisUpdate.UTC().Format(time.RFC3339), at.UTC().Format(time.RFC3339))
	case !s.NextUpdate.IsZero() && s.NextUpdate.Before(at.Add(-OCSPTimeTolerance)):
		return fmt.Errorf("%w: stale: nextUpdate %s is before %s", ErrOCSPInvalid, s.NextUpdate.UTC().Format(time.RFC3339), at.UTC().Format(time.RFC3339))
	}
	return nil
}

func (s *OCSPSingleResponse) result() error {
	switch s.Status {
	case OCSPGood:
		return nil
	case OCSPRevoked:
		return &OCSPRevokedError{RevokedAt: s.RevokedAt, Reason: s.RevocationReason}
	}
	return ErrRevocationUnknown
}

// verifySigner finds the certificate that signed the response, checks that it may sign for issuer and that
// its signature over tbsResponseData holds, and returns it.
func (r *OCSPResponse) verifySigner(issuer *Certificate, trust *TrustStore, at time.Time) (*Certificate, error) {
	if r.SignatureAlgorithm == "" {
		return nil, fmt.Errorf("%w: unsupported signature algorithm", ErrOCSPInvalid)
	}
	candidates := append([]*Certificate{issuer}, r.Certificates...)
	candidates = append(candidates, ocspKnownResponders(trust)...)
	var lastErr error
	for _, c := range candidates {
		if !r.namesResponder(c) {
			continue
		}
		if err := ocspAuthorized(c, issuer, trust, at); err != nil {
			lastErr = err
			continue
		}
		if err := verifyWithKey(c.PublicKey, r.SignatureAlgorithm, r.RawResponseData, r.Signature); err != nil {
			lastErr = fmt.Errorf("%w: signature by %q: %w", ErrOCSPInvalid, c.Subject.String(), err)
			continue
		}
		return c, nil
	}
	if lastErr != nil {
		return nil, lastErr
	}
	return nil, fmt.Errorf("%w: responder certificate not found", ErrOCSPInvalid)
}

func ocspKnownResponders(trust *TrustStore) []*Certificate {
	if trust == nil {
		return nil
	}
	trust.mu.RLock()
	defer trust.mu.RUnlock()
	return append([]*Certificate(nil), trust.responders...)
}

func (r *OCSPResponse) namesResponder(c *Certificate) bool {
	if r.ResponderName != nil {
		return bytes.Equal(r.ResponderName, c.RawSubject)
	}
	bits, err := ocspPublicKeyBits(c.RawSubjectPublicKeyInfo)
	if err != nil {
		return false
	}
	h := sha1.Sum(bits)
	return bytes.Equal(h[:], r.ResponderKeyHash)
}

// ocspAuthorized decides whether signer may answer for certificates of issuer (RFC 6960 §4.2.2.2 plus the
// TI's TSL model).
func ocspAuthorized(signer, issuer *Certificate, trust *TrustStore, at time.Time) error {
	if signer.Equal(issuer) || (bytes.Equal(signer.RawSubject, issuer.RawSubject) && bytes.Equal(signer.RawSubjectPublicKeyInfo, issuer.RawSubjectPublicKeyInfo)) {
		return nil
	}
	if !ocspValidAt(signer, at) {
		return fmt.Errorf("%w: responder certificate %q is not valid at %s", ErrOCSPInvalid, signer.Subject.String(), at.UTC().Format(time.RFC3339))
	}
	if trust != nil && trust.IsTrustedOCSPResponder(signer) {
		return nil
	}
	hasEKU := false
	for _, eku := range signer.ExtKeyUsage {
		if eku.Equal(OIDExtKeyUsageOCSPSigning) {
			hasEKU = true
		}
	}
	switch {
	case !hasEKU:
		return fmt.Errorf("%w: responder %q is neither trusted nor a delegated OCSP signer", ErrOCSPInvalid, signer.Subject.String())
	case !bytes.Equal(signer.RawIssuer, issuer.RawSubject) || signer.CheckSignatureFrom(issuer) != nil:
		return fmt.Errorf("%w: delegated responder %q was not issued by %q", ErrOCSPInvalid, signer.Subject.String(), issuer.Subject.String())
	case signer.HasKeyUsage && signer.KeyUsage&KeyUsageDigitalSignature == 0:
		return fmt.Errorf("%w: responder %q lacks digitalSignature", ErrOCSPInvalid, signer.Subject.String())
	}
	return nil
}

func ocspValidAt(c *Certificate, at time.Time) bool {
	return !at.Add(OCSPTimeTolerance).Before(c.NotBefore) && !at.Add(-OCSPTimeTolerance).After(c.NotAfter)
}

// OCSPPolicy says what the OCSPChecker does.
type OCSPPolicy string

// OCSP policies.
const (
	// OCSPRequire (the default) fails closed: an unreachable responder, a bad signature, an unknown status
	// or a missing URL all refuse the certificate. This is the production setting (gemSpec_PKI hard-fail).
	OCSPRequire OCSPPolicy = "require"
	// OCSPOff skips revocation checking without any network access. It exists for the offline dev stack and
	// for test cards whose real responders are unreachable; a production configuration must not use it.
	OCSPOff OCSPPolicy = "off"
)

// OCSPChecker implements RevocationChecker with OCSP over HTTP (TUC_PKI_006). Create it with the fields
// below; it must not be copied after first use. Verified responses are cached until their nextUpdate, so a
// busy login path asks the responder once per certificate and validity period.
type OCSPChecker struct {
	// Trust supplies trusted responder certificates and the anchors' TSL OCSP URLs; may be nil.
	Trust *TrustStore
	// Policy is OCSPRequire when empty.
	Policy OCSPPolicy
	// Client sends the requests; nil uses a client with OCSPDefaultTimeout.
	Client *http.Client
	// Timeout bounds each request on top of the caller's context; zero means OCSPDefaultTimeout.
	Timeout time.Duration
	// URLOverride, when set and returning non-empty, names the responder for cert instead of the TSL supply
	// point or AIA (the dev stack and tests point at a local responder this way).
	URLOverride func(cert, issuer *Certificate) string
	// MaxCacheTTL caps how long a verified response is reused (e.g. 1 h for IDP signers). Zero means until
	// its nextUpdate; a response without nextUpdate is then not cached at all.
	MaxCacheTTL time.Duration

	mu    sync.Mutex
	cache map[string]ocspCacheEntry
}

type ocspCacheEntry struct {
	single     OCSPSingleResponse
	producedAt time.Time
	expires    time.Time
}

const ocspMaxCacheEntries = 10000

// CheckRevocation asks the responder for cert's status at time at and verifies the answer.
func (c *OCSPChecker) CheckRevocation(ctx context.Context, cert, issuer *Certificate, at time.Time) error {
	if c.Policy == OCSPOff {
		return nil
	}
	if c.Policy != "" && c.Policy != OCSPRequire {
		return fmt.Errorf("OCSP: unknown policy %q", c.Policy)
	}
	if cert == nil || issuer == nil {
		return errors.New("OCSP: certificate and issuer are required")
	}
	id, err := NewOCSPCertID(cert, issuer, crypto.SHA1)
	if err != nil {
		return fmt.Errorf("OCSP: %w", err)
	}
	if single, ok := c.cached(id, at); ok {
		return single.result()
	}
	url := c.responderURL(cert, issuer)
	if url == "" {
		return fmt.Errorf("OCSP: %w: no responder URL for %q", ErrRevocationUnknown, cert.Subject.String())
	}
	reqDER, err := ocspMarshalRequest([]OCSPCertID{id}, nil)
	if err != nil {
		return fmt.Errorf("OCSP: %w", err)
	}
	respDER, err := c.post(ctx, url, reqDER)
	if err != nil {
		return fmt.Errorf("OCSP: %w: %w", ErrRevocationUnknown, err)
	}
	resp, err := ParseOCSPResponse(respDER)
	if err != nil {
		return fmt.Errorf("OCSP %s: %w", url, err)
	}
	if err := resp.Verify(cert, issuer, c.Trust, at); err != nil {
		if errors.Is(err, ErrRevoked) || errors.Is(err, ErrRevocationUnknown) {
			// A verified revoked or unknown status is evidence to cache, just like good.
			c.store(resp, cert, issuer)
			return err
		}
		return fmt.Errorf("OCSP %s: %w", url, err)
	}
	c.store(resp, cert, issuer)
	return nil
}

func (c *OCSPChecker) responderURL(cert, issuer *Certificate) string {
	if c.URLOverride != nil {
		if u := c.URLOverride(cert, issuer); u != "" {
			return u
		}
	}
	if c.Trust != nil {
		for _, a := range c.Trust.Anchors() {
			if a.Cert.Equal(issuer) && len(a.OCSPURLs) > 0 {
				return a.OCSPURLs[0]
			}
		}
	}
	if len(cert.OCSPServers) > 0 {
		return cert.OCSPServers[0]
	}
	return ""
}

func (c *OCSPChecker) post(ctx context.Context, url string, body []byte) ([]byte, error) {
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = OCSPDefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("request to %s: %w", url, err)
	}
	req.Header.Set("Content-Type", "application/ocsp-request")
	req.Header.Set("Accept", "application/ocsp-response")
	client := c.Client
	if client == nil {
		client = &http.Client{Timeout: OCSPDefaultTimeout}
	}
	res, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("responder %s: %w", url, err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("responder %s: HTTP %d", url, res.StatusCode)
	}
	const maxResponse = 1 << 20
	der, err := io.ReadAll(io.LimitReader(res.Body, maxResponse+1))
	if err != nil {
		return nil, fmt.Errorf("responder %s: read: %w", url, err)
	}
	if len(der) > maxResponse {
		return nil, fmt.Errorf("responder %s: response larger than %d bytes", url, maxResponse)
	}
	return der, nil
}

func (c *OCSPChecker) cached(id OCSPCertID, at time.Time) (*OCSPSingleResponse, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.cache[id.key()]
	if !ok || !at.Before(e.expires) || ocspCheckTimes(e.producedAt, &e.single, at) != nil {
		return nil, false
	}
	return &e.single, true
}

func (c *OCSPChecker) store(resp *OCSPResponse, cert, issuer *Certificate) {
	single, err := resp.find(cert, issuer)
	if err != nil {
		return
	}
	expires := single.NextUpdate
	if expires.IsZero() {
		if c.MaxCacheTTL <= 0 {
			return
		}
		expires = single.ThisUpdate.Add(c.MaxCacheTTL)
	} else if c.MaxCacheTTL > 0 && single.ThisUpdate.Add(c.MaxCacheTTL).Before(expires) {
		expires = single.ThisUpdate.Add(c.MaxCacheTTL)
	}
	id, err := NewOCSPCertID(cert, issuer, crypto.SHA1)
	if err != nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cache == nil {
		c.cache = map[string]ocspCacheEntry{}
	}
	if len(c.cache) >= ocspMaxCacheEntries {
		for k, e := range c.cache {
			if !e.expires.After(single.ThisUpdate) {
				delete(c.cache, k)
			}
		}
		if len(c.cache) >= ocspMaxCacheEntries {
			clear(c.cache)
		}
	}
	c.cache[id.key()] = ocspCacheEntry{single: *single, producedAt: resp.ProducedAt, expires: expires}
}
