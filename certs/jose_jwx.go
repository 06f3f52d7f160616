package certs

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
	"github.com/lestrrat-go/jwx/v2/jwt"
)

// CurveBP256 is the JWK "crv" name gematik uses for brainpoolP256r1. It is not IANA-registered; gematik,
// jwcrypto and the PHP web-token framework share it.
const CurveBP256 = "BP-256"

// joseRegisterOnce guards the one piece of process-wide state in certs: jwx v2's algorithm tables.
var joseRegisterOnce sync.Once

// RegisterJWXAlgorithms teaches jwx v2 the TI algorithms: BP256R1 signing and verification, the "BP-256"
// JWK curve name, and an ES256 verifier and signer of ours that, unlike jwx's, refuse keys on other curves
// (jwx's ES256 verifier accepts a brainpool key). It is idempotent; the helpers below call it themselves.
func RegisterJWXAlgorithms() {
	joseRegisterOnce.Do(func() {
		jwa.RegisterEllipticCurveAlgorithm(jwa.EllipticCurveAlgorithm(CurveBP256))
		for _, alg := range []JWSAlgorithm{AlgBP256R1, AlgES256} {
			a := alg
			jws.RegisterSigner(jwa.SignatureAlgorithm(a), jws.SignerFactoryFn(func() (jws.Signer, error) {
				return joseJWXSigner{alg: a}, nil
			}))
			jws.RegisterVerifier(jwa.SignatureAlgorithm(a), jws.VerifierFactoryFn(func() (jws.Verifier, error) {
				return joseJWXVerifier{alg: a}, nil
			}))
		}
	})
}

type joseJWXSigner struct{ alg JWSAlgorithm }

func (s joseJWXSigner) Algorithm() jwa.SignatureAlgorithm { return jwa.SignatureAlgorithm(s.alg) }

func (s joseJWXSigner) Sign(payload []byte, key any) ([]byte, error) {
	signer, err := joseJWXSignerKey(key)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s.alg, err)
	}
	return joseSign(signer, s.alg, payload)
}

func joseJWXSignerKey(key any) (crypto.Signer, error) {
	switch k := key.(type) {
	case ecdsa.PrivateKey:
		return &k, nil
	case jwk.Key:
		var raw any
		if err := k.Raw(&raw); err != nil {
			return nil, fmt.Errorf("jwk: %w", err)
		}
		if _, again := raw.(jwk.Key); again {
			return nil, errors.New("jwk: no raw key")
		}
		return joseJWXSignerKey(raw)
	case crypto.Signer:
		return k, nil
	}
	return nil, fmt.Errorf("unsupported signing key %T", key)
}

type joseJWXVerifier struct{ alg JWSAlgorithm }

func (v joseJWXVerifier) Verify(payload, sig []byte, key any) error {
	pub, err := joseJWXPublicKey(key)
	if err != nil {
		return fmt.Errorf("%s: %w", v.alg, err)
	}
	return joseVerify(v.alg, pub, payload, sig)
}

// joseJWXPublicKey turns whatever jwx hands a verifier into a public key. BP-256 JWKs need the manual path:
// jwx v2 has no public curve table, so jwk.Key.Raw fails for them.
func joseJWXPublicKey(key any) (crypto.PublicKey, error) {
	switch k := key.(type) {
	case *ecdsa.PublicKey, *rsa.PublicKey:
		return k, nil
	case ecdsa.PublicKey:
		return &k, nil
	case rsa.PublicKey:
		return &k, nil
	case jwk.ECDSAPrivateKey:
		pk, err := k.PublicKey()
		if err != nil {
			return nil, fmt.Errorf("jwk: %w", err)
		}
		return joseJWXPublicKey(pk)
	case jwk.ECDSAPublicKey:
		if string(k.Crv()) == CurveBP256 {
			return joseBP256FromCoordinates(k.X(), k.Y())
		}
		var raw ecdsa.PublicKey
		if err := k.Raw(&raw); err != nil {
			return nil, fmt.Errorf("jwk: %w", err)
		}
		return NewECPublicKey(raw.Curve, raw.X, raw.Y)
	case jwk.Key:
		pk, err := k.PublicKey()
		if err != nil {
			return nil, fmt.Errorf("jwk: %w", err)
		}
		var raw any
		if err := pk.Raw(&raw); err != nil {
			return nil, fmt.Errorf("jwk: %w", err)
		}
		if _, again := raw.(jwk.Key); again {
			return nil, errors.New("jwk: no raw key")
		}
		return joseJWXPublicKey(raw)
	case crypto.Signer:
		return k.Public(), nil
	}
	return nil, fmt.Errorf("unsupported verification key %T", key)
}

func joseBP256FromCoordinates(x, y []byte) (*ecdsa.PublicKey, error) {
	if len(x) == 0 || len(x) > 32 || len(y) == 0 || len(y) > 32 {
		return nil, errors.New("BP-256 coordinates have the wrong size")
	}
	pt := make([]byte, 65)
	pt[0] = 4
	copy(pt[33-len(x):33], x)
	copy(pt[65-len(y):], y)
	return UnmarshalECPoint(BrainpoolP256r1(), pt)
}

// JWXKeyProvider gives jwx exactly one key for exactly one algorithm, and first refuses a signature whose
// protected "alg" differs: jwx v2 verifies with the algorithm it is handed and never compares it with the
// header.
func JWXKeyProvider(alg JWSAlgorithm, pub crypto.PublicKey) jws.KeyProvider {
	RegisterJWXAlgorithms()
	return jws.KeyProviderFunc(func(_ context.Context, sink jws.KeySink, sig *jws.Signature, _ *jws.Message) error {
		if got := sig.ProtectedHeaders().Algorithm(); string(got) != string(alg) {
			return fmt.Errorf("%w: header alg %q, expected %q", ErrAlgorithmMismatch, got, alg)
		}
		sink.Key(jwa.SignatureAlgorithm(alg), pub)
		return nil
	})
}

// JWXVerifyOption is JWXKeyProvider as a jws.Verify option.
func JWXVerifyOption(alg JWSAlgorithm, pub crypto.PublicKey) jws.VerifyOption {
	return jws.WithKeyProvider(JWXKeyProvider(alg, pub))
}

// VerifyJWT verifies a compact JWT with pub under alg and lets jwx validate the claims. The token must first
// pass ParseCompactJWS (strict form, no alg "none", header alg == alg), so jwx only ever sees tokens we
// would accept ourselves. opts are for claim validation (jwt.WithClock, jwt.WithIssuer, jwt.WithAudience,
// jwt.WithRequiredClaim…); passing further keys would widen what verifies, so don't.
func VerifyJWT(token []byte, alg JWSAlgorithm, pub crypto.PublicKey, opts ...jwt.ParseOption) (jwt.Token, error) {
	j, err := ParseCompactJWS(token)
	if err != nil {
		return nil, fmt.Errorf("jwt: %w", err)
	}
	if j.Header.Alg != alg {
		return nil, fmt.Errorf("jwt: %w: header alg %q, expected %q", ErrAlgorithmMismatch, j.Header.Alg, alg)
	}
	all := append([]jwt.ParseOption{jwt.WithKeyProvider(JWXKeyProvider(alg, pub)), jwt.WithValidate(true)}, opts...)
	t, err := jwt.Parse(token, all...)
	if err != nil {
		return nil, fmt.Errorf("jwt: %w", err)
	}
	return t, nil
}

// ParseBP256JWK reads a public BP-256 JWK (as the gematik IDP publishes puk_idp_sig and puk_idp_enc). The
// point must lie on the curve; when the JWK carries x5c, the leaf certificate's key must be this very key,
// so the certificate can stand for the JWK in chain validation. The chain itself is not validated here.
func ParseBP256JWK(data []byte) (pub *ecdsa.PublicKey, kid, use string, x5c []*Certificate, err error) {
	members, err := joseHeaderMembers(data)
	if err != nil {
		return nil, "", "", nil, fmt.Errorf("jwk: %w", err)
	}
	var kty, crv, x, y, alg string
	for _, m := range []struct {
		name string
		dst  *string
	}{{"kty", &kty}, {"crv", &crv}, {"x", &x}, {"y", &y}, {"kid", &kid}, {"use", &use}, {"alg", &alg}} {
		if err := joseMember(members, m.name, m.dst); err != nil {
			return nil, "", "", nil, fmt.Errorf("jwk: %w", err)
		}
	}
	if kty != "EC" || crv != CurveBP256 {
		return nil, "", "", nil, fmt.Errorf(`jwk: want kty "EC" and crv %q, got %q and %q`, CurveBP256, kty, crv)
	}
	if _, ok := members["d"]; ok {
		return nil, "", "", nil, errors.New("jwk: private key material where a public key is expected")
	}
	if alg != "" && alg != string(AlgBP256R1) && alg != jweAlgECDHES {
		return nil, "", "", nil, fmt.Errorf("jwk: %w: alg %q on a BP-256 key", ErrAlgorithmMismatch, alg)
	}
	px, err := joseFixedBytes(x, 32)
	if err != nil {
		return nil, "", "", nil, fmt.Errorf("jwk: x: %w", err)
	}
	py, err := joseFixedBytes(y, 32)
	if err != nil {
		return nil, "", "", nil, fmt.Errorf("jwk: y: %w", err)
	}
	if pub, err = NewECPublicKey(BrainpoolP256r1(), px, py); err != nil {
		return nil, "", "", nil, fmt.Errorf("jwk: %w", err)
	}
	if x5c, err = joseParseX5C(members); err != nil {
		return nil, "", "", nil, fmt.Errorf("jwk: %w", err)
	}
	if len(x5c) > 0 && !joseSamePublicKey(pub, x5c[0].PublicKey) {
		return nil, "", "", nil, errors.New("jwk: x5c certificate holds a different key than x/y")
	}
	return pub, kid, use, x5c, nil
}

// BP256JWK encodes a brainpoolP256r1 public key as a JWK with crv "BP-256". With x5c (leaf first), the leaf
// must certify this key.
func BP256JWK(pub *ecdsa.PublicKey, kid, use string, x5c ...*Certificate) ([]byte, error) {
	if pub == nil || CurveName(pub.Curve) != "brainpoolP256r1" {
		return nil, errors.New("jwk: not a brainpoolP256r1 key")
	}
	if _, err := NewECPublicKey(pub.Curve, pub.X, pub.Y); err != nil {
		return nil, fmt.Errorf("jwk: %w", err)
	}
	if len(x5c) > 0 && !joseSamePublicKey(pub, x5c[0].PublicKey) {
		return nil, errors.New("jwk: x5c certificate holds a different key")
	}
	pt := MarshalECPoint(pub)
	return json.Marshal(struct {
		Kty string   `json:"kty"`
		Crv string   `json:"crv"`
		X   string   `json:"x"`
		Y   string   `json:"y"`
		Kid string   `json:"kid,omitempty"`
		Use string   `json:"use,omitempty"`
		X5C []string `json:"x5c,omitempty"`
	}{"EC", CurveBP256, joseB64(pt[1:33]), joseB64(pt[33:]), kid, use, X5CHeader(x5c...)})
}
