package certs

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"unicode/utf8"
)

// JWSAlgorithm is a JOSE "alg" value. Every verification names the one it expects, so a token can never
// choose its own algorithm.
type JWSAlgorithm string

// The JWS algorithms of the TI: BP256R1 for the IDP-Dienst, the VZD and the card signatures of ECC cards,
// PS256 for RSA cards, ES256 for the Matrix/OIDC world outside the TI.
const (
	AlgBP256R1 JWSAlgorithm = "BP256R1"
	AlgES256   JWSAlgorithm = "ES256"
	AlgPS256   JWSAlgorithm = "PS256"
)

// ErrAlgorithmMismatch is returned (wrapped) when a token's header alg, or the key offered, is not what the
// caller expects. It is kept apart from ErrBadSignature so that algorithm-confusion attempts are visible.
var ErrAlgorithmMismatch = errors.New("algorithm mismatch")

// JWSHeader is the protected header of a compact JWS. The fields the TI uses are typed; Raw keeps every
// member so that callers can read profile-specific ones without a second parse.
type JWSHeader struct {
	Alg JWSAlgorithm
	Typ string
	Kid string
	Cty string
	// X5C is the parsed x5c chain, leaf first. It is not validated here: chain building is the caller's,
	// against its trust store and clock.
	X5C []*Certificate
	// Exp is the header "exp" some gematik tokens carry (0 when absent).
	Exp int64
	Raw map[string]json.RawMessage
}

// CompactJWS is a parsed, not yet verified, compact JWS. SigningInput is the exact byte range the signature
// covers, so verification never depends on re-encoding.
type CompactJWS struct {
	Raw          []byte
	Header       JWSHeader
	Payload      []byte
	SigningInput []byte
	Signature    []byte
}

// ParseCompactJWS parses a compact JWS strictly: exactly three unpadded base64url parts with no stray
// characters, a header that is a JSON object without duplicate members, no "crit" extensions we would have
// to understand, and never alg "none". It does not verify anything. It never panics (fuzzed).
func ParseCompactJWS(b []byte) (*CompactJWS, error) {
	parts := bytes.Split(b, []byte{'.'})
	if len(parts) != 3 {
		return nil, fmt.Errorf("jws: compact serialisation needs 3 parts, found %d", len(parts))
	}
	rawHeader, err := joseB64Decode(parts[0])
	if err != nil {
		return nil, fmt.Errorf("jws: header: %w", err)
	}
	payload, err := joseB64Decode(parts[1])
	if err != nil {
		return nil, fmt.Errorf("jws: payload: %w", err)
	}
	sig, err := joseB64Decode(parts[2])
	if err != nil {
		return nil, fmt.Errorf("jws: signature: %w", err)
	}
	if len(sig) == 0 {
		return nil, errors.New("jws: empty signature")
	}
	h, err := joseParseJWSHeader(rawHeader)
	if err != nil {
		return nil, fmt.Errorf("jws: header: %w", err)
	}
	raw := bytes.Clone(b)
	return &CompactJWS{
		Raw:          raw,
		Header:       *h,
		Payload:      payload,
		SigningInput: raw[:len(parts[0])+1+len(parts[1])],
		Signature:    sig,
	}, nil
}

func joseParseJWSHeader(raw []byte) (*JWSHeader, error) {
	members, err := joseHeaderMembers(raw)
	if err != nil {
		return nil, err
	}
	h := &JWSHeader{Raw: members}
	var alg string
	if err := joseMember(members, "alg", &alg); err != nil {
		return nil, err
	}
	switch {
	case alg == "":
		return nil, errors.New(`missing "alg"`)
	case strings.EqualFold(alg, "none"):
		return nil, fmt.Errorf(`%w: alg "none" is never accepted`, ErrAlgorithmMismatch)
	}
	h.Alg = JWSAlgorithm(alg)
	for _, m := range []struct {
		name string
		dst  *string
	}{{"typ", &h.Typ}, {"kid", &h.Kid}, {"cty", &h.Cty}} {
		if err := joseMember(members, m.name, m.dst); err != nil {
			return nil, err
		}
	}
	if err := joseMember(members, "exp", &h.Exp); err != nil {
		return nil, err
	}
	if b64, ok := members["b64"]; ok && string(b64) != "true" {
		// RFC 7797 unencoded payloads change what is signed; nothing in the TI uses them.
		return nil, errors.New(`"b64" other than true is not supported`)
	}
	if h.X5C, err = joseParseX5C(members); err != nil {
		return nil, err
	}
	return h, nil
}

// joseHeaderMembers decodes a JOSE header: one JSON object, valid UTF-8, no duplicate member names (which
// two parsers could resolve differently), and no "crit" extension we would be obliged to understand.
func joseHeaderMembers(raw []byte) (map[string]json.RawMessage, error) {
	if !utf8.Valid(raw) {
		return nil, errors.New("not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	tok, err := dec.Token()
	if err != nil || tok != json.Delim('{') {
		return nil, errors.New("not a JSON object")
	}
	members := map[string]json.RawMessage{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("malformed JSON: %w", err)
		}
		name, ok := tok.(string)
		if !ok {
			return nil, errors.New("malformed JSON member name")
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, fmt.Errorf("member %q: %w", name, err)
		}
		if _, dup := members[name]; dup {
			return nil, fmt.Errorf("duplicate member %q", name)
		}
		members[name] = v
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim('}') {
		return nil, errors.New("malformed JSON object")
	}
	if _, err := dec.Token(); err == nil {
		return nil, errors.New("trailing data after JSON object")
	}
	if crit, ok := members["crit"]; ok {
		var names []string
		if err := json.Unmarshal(crit, &names); err != nil || len(names) != 0 {
			return nil, fmt.Errorf(`"crit" extensions are not supported: %s`, crit)
		}
	}
	return members, nil
}

// joseMember decodes an optional member into dst, refusing a JSON type that does not fit (a null is a type
// error too: a header either carries a value or leaves the member out).
func joseMember(members map[string]json.RawMessage, name string, dst any) error {
	v, ok := members[name]
	if !ok {
		return nil
	}
	if string(v) == "null" {
		return fmt.Errorf("member %q is null", name)
	}
	if err := json.Unmarshal(v, dst); err != nil {
		return fmt.Errorf("member %q: %w", name, err)
	}
	return nil
}

func joseParseX5C(members map[string]json.RawMessage) ([]*Certificate, error) {
	var x5c []string
	if err := joseMember(members, "x5c", &x5c); err != nil {
		return nil, err
	}
	if _, ok := members["x5c"]; ok && len(x5c) == 0 {
		return nil, errors.New(`empty "x5c"`)
	}
	var chain []*Certificate
	for i, s := range x5c {
		// RFC 7515 §4.1.6: x5c uses standard base64 with padding, not base64url.
		der, err := base64.StdEncoding.Strict().DecodeString(s)
		if err != nil || strings.ContainsAny(s, "\r\n") {
			return nil, fmt.Errorf("x5c[%d]: not standard base64", i)
		}
		c, err := ParseCertificate(der)
		if err != nil {
			return nil, fmt.Errorf("x5c[%d]: %w", i, err)
		}
		chain = append(chain, c)
	}
	return chain, nil
}

// joseB64Decode decodes unpadded base64url. encoding/base64 silently skips CR and LF even in strict mode; a
// JOSE part with line breaks or padding is malformed, so the alphabet is checked first.
func joseB64Decode(s []byte) ([]byte, error) {
	for _, c := range s {
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return nil, errors.New("not unpadded base64url")
		}
	}
	out := make([]byte, base64.RawURLEncoding.DecodedLen(len(s)))
	n, err := base64.RawURLEncoding.Strict().Decode(out, s)
	if err != nil {
		return nil, errors.New("not unpadded base64url")
	}
	return out[:n], nil
}

func joseB64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// Verify checks the signature with pub, after requiring that the header names exactly alg and that pub is a
// key of that algorithm (brainpoolP256r1 for BP256R1, P-256 for ES256, RSA for PS256). Both checks stop a
// token from steering which verification runs.
func (j *CompactJWS) Verify(alg JWSAlgorithm, pub crypto.PublicKey) error {
	if j.Header.Alg != alg {
		return fmt.Errorf("jws: %w: header alg %q, expected %q", ErrAlgorithmMismatch, j.Header.Alg, alg)
	}
	if err := joseVerify(alg, pub, j.SigningInput, j.Signature); err != nil {
		return fmt.Errorf("jws: %w", err)
	}
	return nil
}

// VerifyX5C verifies with the key of x5c[0] and returns that certificate. It says only that the holder of
// the certificate's key signed; the caller must still validate the chain (TrustStore.Verify) and the role.
func (j *CompactJWS) VerifyX5C(alg JWSAlgorithm) (*Certificate, error) {
	if len(j.Header.X5C) == 0 {
		return nil, errors.New(`jws: no "x5c" header`)
	}
	leaf := j.Header.X5C[0]
	if err := j.Verify(alg, leaf.PublicKey); err != nil {
		return nil, err
	}
	return leaf, nil
}

// joseVerify checks a JOSE signature (raw r‖s for ECDSA) after matching the key to alg.
func joseVerify(alg JWSAlgorithm, pub crypto.PublicKey, msg, sig []byte) error {
	switch alg {
	case AlgBP256R1, AlgES256:
		ec, ok := pub.(*ecdsa.PublicKey)
		if !ok || ec == nil || CurveName(ec.Curve) != joseCurveFor(alg) {
			return fmt.Errorf("%w: %s needs a %s key, got %s", ErrAlgorithmMismatch, alg, joseCurveFor(alg), joseDescribeKey(pub))
		}
		if alg == AlgBP256R1 {
			return VerifyBP256R1(ec, msg, sig)
		}
		return VerifyES256(ec, msg, sig)
	case AlgPS256:
		k, ok := pub.(*rsa.PublicKey)
		if !ok || k == nil {
			return fmt.Errorf("%w: PS256 needs an RSA key, got %s", ErrAlgorithmMismatch, joseDescribeKey(pub))
		}
		if k.N.BitLen() < 2048 {
			return fmt.Errorf("%w: RSA key of %d bits is too short", ErrBadSignature, k.N.BitLen())
		}
		digest := sha256.Sum256(msg)
		if err := rsa.VerifyPSS(k, crypto.SHA256, digest[:], sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash}); err != nil {
			return fmt.Errorf("%w: %v", ErrBadSignature, err)
		}
		return nil
	}
	return fmt.Errorf("%w: unsupported algorithm %q", ErrAlgorithmMismatch, alg)
}

func joseCurveFor(alg JWSAlgorithm) string {
	switch alg {
	case AlgBP256R1:
		return "brainpoolP256r1"
	case AlgES256:
		return "P-256"
	}
	return ""
}

func joseDescribeKey(pub crypto.PublicKey) string {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if k == nil {
			return "nil"
		}
		if n := CurveName(k.Curve); n != "" {
			return "EC " + n
		}
		return "EC on an unknown curve"
	case *rsa.PublicKey:
		return "RSA"
	case nil:
		return "nil"
	}
	return fmt.Sprintf("%T", pub)
}

// SignCompactJWS signs payload and returns the compact JWS. header holds the other protected members (typ,
// kid, x5c from X5CHeader, …); "alg" is always set from alg. Members are emitted in sorted order.
func SignCompactJWS(signer crypto.Signer, alg JWSAlgorithm, header map[string]any, payload []byte) ([]byte, error) {
	h := make(map[string]any, len(header)+1)
	for k, v := range header {
		h[k] = v
	}
	h["alg"] = string(alg)
	hj, err := json.Marshal(h)
	if err != nil {
		return nil, fmt.Errorf("jws: header: %w", err)
	}
	input := joseB64(hj) + "." + joseB64(payload)
	sig, err := joseSign(signer, alg, []byte(input))
	if err != nil {
		return nil, fmt.Errorf("jws: %w", err)
	}
	return []byte(input + "." + joseB64(sig)), nil
}

func joseSign(signer crypto.Signer, alg JWSAlgorithm, msg []byte) ([]byte, error) {
	switch alg {
	case AlgBP256R1:
		return SignBP256R1(signer, msg)
	case AlgES256:
		return SignES256(signer, msg)
	case AlgPS256:
		if _, ok := signer.Public().(*rsa.PublicKey); !ok {
			return nil, fmt.Errorf("%w: PS256 signer is not an RSA key", ErrAlgorithmMismatch)
		}
		digest := sha256.Sum256(msg)
		return signer.Sign(rand.Reader, digest[:], &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: crypto.SHA256})
	}
	return nil, fmt.Errorf("%w: unsupported algorithm %q", ErrAlgorithmMismatch, alg)
}

// X5CHeader encodes a chain (leaf first) as the x5c header value: standard base64 DER, as RFC 7515 and the
// gematik parsers expect.
func X5CHeader(chain ...*Certificate) []string {
	out := make([]string, len(chain))
	for i, c := range chain {
		out[i] = base64.StdEncoding.EncodeToString(c.Raw)
	}
	return out
}

// UnwrapNJWT returns the compact JWS inside the gematik nesting {"njwt": "<JWS>"} that IDP token JWEs
// carry as plaintext (the JWS is not parsed or verified here).
func UnwrapNJWT(plaintext []byte) ([]byte, error) {
	members, err := joseHeaderMembers(plaintext)
	if err != nil {
		return nil, fmt.Errorf("njwt: %w", err)
	}
	var s string
	if err := joseMember(members, "njwt", &s); err != nil {
		return nil, fmt.Errorf("njwt: %w", err)
	}
	if len(members) != 1 || s == "" {
		return nil, errors.New(`njwt: want exactly one member "njwt"`)
	}
	return []byte(s), nil
}

// joseSamePublicKey reports whether two public keys are the same key (used to tie a JWK to its x5c).
func joseSamePublicKey(a, b crypto.PublicKey) bool {
	switch x := a.(type) {
	case *ecdsa.PublicKey:
		y, ok := b.(*ecdsa.PublicKey)
		return ok && x != nil && y != nil && CurveName(x.Curve) != "" && CurveName(x.Curve) == CurveName(y.Curve) &&
			x.X.Cmp(y.X) == 0 && x.Y.Cmp(y.Y) == 0
	case *rsa.PublicKey:
		y, ok := b.(*rsa.PublicKey)
		return ok && x != nil && y != nil && x.N.Cmp(y.N) == 0 && x.E == y.E
	}
	return false
}

// joseFixedBytes decodes a base64url JWK coordinate that must be exactly size bytes (RFC 7518 §6.2.1.2
// requires the full field length, which also rules out alternative encodings of the same number).
func joseFixedBytes(s string, size int) (*big.Int, error) {
	b, err := joseB64Decode([]byte(s))
	if err != nil {
		return nil, err
	}
	if len(b) != size {
		return nil, fmt.Errorf("coordinate has %d bytes, want %d", len(b), size)
	}
	return new(big.Int).SetBytes(b), nil
}
