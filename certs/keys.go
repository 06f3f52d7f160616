package certs

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"

	"github.com/ProtonMail/go-crypto/brainpool"
)

// BrainpoolP256r1 returns the RFC 5639 curve brainpoolP256r1 used throughout the TI PKI.
//
// The implementation (ProtonMail go-crypto) runs on crypto/elliptic's generic big.Int arithmetic: it is
// correct but not constant-time. That is fine for public-key operations (verification) and test keys;
// production long-term signing keys belong in an HSM behind crypto.Signer.
func BrainpoolP256r1() elliptic.Curve { return brainpool.P256r1() }

// CurveName returns the name timstack prints for a curve ("brainpoolP256r1", "P-256", …), or "" when unknown.
func CurveName(c elliptic.Curve) string {
	if c == nil {
		return ""
	}
	switch c.Params().Name {
	case "brainpoolP256r1":
		return "brainpoolP256r1"
	case "brainpoolP384r1":
		return "brainpoolP384r1"
	case "brainpoolP512r1":
		return "brainpoolP512r1"
	}
	switch c {
	case elliptic.P256():
		return "P-256"
	case elliptic.P384():
		return "P-384"
	case elliptic.P521():
		return "P-521"
	}
	return ""
}

func isBrainpool(c elliptic.Curve) bool {
	switch CurveName(c) {
	case "brainpoolP256r1", "brainpoolP384r1", "brainpoolP512r1":
		return true
	}
	return false
}

var curveByOID = []struct {
	oid   asn1.ObjectIdentifier
	curve func() elliptic.Curve
}{
	{OIDCurveBrainpoolP256r1, brainpool.P256r1},
	{OIDCurveBrainpoolP384r1, brainpool.P384r1},
	{OIDCurveBrainpoolP512r1, brainpool.P512r1},
	{OIDCurveP256, elliptic.P256},
	{OIDCurveP384, elliptic.P384},
	{OIDCurveP521, elliptic.P521},
}

func curveFromOID(oid asn1.ObjectIdentifier) (elliptic.Curve, bool) {
	for _, c := range curveByOID {
		if c.oid.Equal(oid) {
			return c.curve(), true
		}
	}
	return nil, false
}

func oidFromCurve(curve elliptic.Curve) (asn1.ObjectIdentifier, bool) {
	name := CurveName(curve)
	for _, c := range curveByOID {
		if CurveName(c.curve()) == name && name != "" {
			return c.oid, true
		}
	}
	return nil, false
}

// KeyAlgorithm names a key type timstack can generate.
type KeyAlgorithm string

// Key algorithms for GenerateKey.
const (
	KeyBrainpoolP256r1 KeyAlgorithm = "brainpoolP256r1"
	KeyP256            KeyAlgorithm = "P-256"
	KeyRSA2048         KeyAlgorithm = "RSA-2048"
)

// GenerateKey creates an in-memory key. Brainpool keys are wrapped in a SoftwareSigner.
func GenerateKey(alg KeyAlgorithm) (crypto.Signer, error) {
	switch alg {
	case KeyBrainpoolP256r1:
		k, err := ecdsa.GenerateKey(BrainpoolP256r1(), rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("generate brainpoolP256r1 key: %w", err)
		}
		return &SoftwareSigner{Key: k}, nil
	case KeyP256:
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case KeyRSA2048:
		return rsa.GenerateKey(rand.Reader, 2048)
	}
	return nil, fmt.Errorf("generate key: unsupported algorithm %q", alg)
}

// SoftwareSigner is an in-memory ECDSA key on a brainpool curve implementing crypto.Signer.
//
// SECURITY: signing runs on crypto/ecdsa's legacy big.Int path for custom curves, which is
// variable-time and may leak the private scalar through timing. Use it for test identities, the dev IDP
// and short-lived ephemeral keys only; a production long-term key (federation-list signer, RegService token
// signer) must be an HSM or KMS signer behind the same crypto.Signer interface.
type SoftwareSigner struct {
	Key *ecdsa.PrivateKey
}

// Public returns the *ecdsa.PublicKey.
func (s *SoftwareSigner) Public() crypto.PublicKey { return &s.Key.PublicKey }

// Sign returns an ASN.1 DER ECDSA signature over digest, like *ecdsa.PrivateKey.
func (s *SoftwareSigner) Sign(_ io.Reader, digest []byte, _ crypto.SignerOpts) ([]byte, error) {
	return ecdsa.SignASN1(rand.Reader, s.Key, digest)
}

// ParsePrivateKeyPEM reads the first private key block (PKCS#8 "PRIVATE KEY", SEC1 "EC PRIVATE KEY" or
// PKCS#1 "RSA PRIVATE KEY") from PEM data.
func ParsePrivateKeyPEM(data []byte) (crypto.Signer, error) {
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return nil, errors.New("private key: no PEM private key block found")
		}
		switch b.Type {
		case "PRIVATE KEY":
			return ParsePKCS8PrivateKey(b.Bytes)
		case "EC PRIVATE KEY":
			return parseECPrivateKey(b.Bytes, nil)
		case "RSA PRIVATE KEY":
			return x509.ParsePKCS1PrivateKey(b.Bytes)
		}
	}
}

type pkcs8 struct {
	Version    int
	Algo       pkix.AlgorithmIdentifier
	PrivateKey []byte
}

type ecPrivateKey struct {
	Version       int
	PrivateKey    []byte
	NamedCurveOID asn1.ObjectIdentifier `asn1:"optional,explicit,tag:0"`
	PublicKey     asn1.BitString        `asn1:"optional,explicit,tag:1"`
}

// ParsePKCS8PrivateKey parses a DER PKCS#8 key: EC on brainpool or NIST curves, RSA.
// crypto/x509 refuses brainpool keys, so EC keys are decoded here.
func ParsePKCS8PrivateKey(der []byte) (crypto.Signer, error) {
	var p pkcs8
	rest, err := asn1.Unmarshal(der, &p)
	if err != nil {
		return nil, fmt.Errorf("pkcs8: %w", err)
	}
	if len(rest) != 0 {
		return nil, errors.New("pkcs8: trailing data")
	}
	switch {
	case p.Algo.Algorithm.Equal(OIDPublicKeyECDSA):
		var curveOID asn1.ObjectIdentifier
		if _, err := asn1.Unmarshal(p.Algo.Parameters.FullBytes, &curveOID); err != nil {
			return nil, fmt.Errorf("pkcs8: EC parameters: %w", err)
		}
		if c, ok := curveFromOID(curveOID); ok && !isBrainpool(c) {
			return parseStdPKCS8(der)
		}
		return parseECPrivateKey(p.PrivateKey, curveOID)
	case p.Algo.Algorithm.Equal(OIDPublicKeyRSA):
		return parseStdPKCS8(der)
	}
	return nil, fmt.Errorf("pkcs8: unsupported key algorithm %s", p.Algo.Algorithm)
}

func parseStdPKCS8(der []byte) (crypto.Signer, error) {
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("pkcs8: %w", err)
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, errors.New("pkcs8: key is not a signer")
	}
	return s, nil
}

func parseECPrivateKey(der []byte, curveOID asn1.ObjectIdentifier) (crypto.Signer, error) {
	var k ecPrivateKey
	if _, err := asn1.Unmarshal(der, &k); err != nil {
		return nil, fmt.Errorf("ec private key: %w", err)
	}
	if k.Version != 1 {
		return nil, fmt.Errorf("ec private key: unknown version %d", k.Version)
	}
	if curveOID == nil {
		curveOID = k.NamedCurveOID
	}
	curve, ok := curveFromOID(curveOID)
	if !ok {
		return nil, fmt.Errorf("ec private key: unsupported curve %s", curveOID)
	}
	if !isBrainpool(curve) {
		// crypto/x509 builds NIST keys with the constant-time implementation.
		return x509.ParseECPrivateKey(der)
	}
	n := curve.Params().N
	d := new(big.Int).SetBytes(k.PrivateKey)
	if d.Sign() <= 0 || d.Cmp(n) >= 0 {
		return nil, errors.New("ec private key: scalar out of range")
	}
	priv := &ecdsa.PrivateKey{D: d}
	priv.Curve = curve
	priv.X, priv.Y = curve.ScalarBaseMult(d.FillBytes(make([]byte, (n.BitLen()+7)/8)))
	return &SoftwareSigner{Key: priv}, nil
}

// MarshalPKCS8PrivateKey encodes a SoftwareSigner, *ecdsa.PrivateKey or *rsa.PrivateKey as DER PKCS#8.
func MarshalPKCS8PrivateKey(key crypto.Signer) ([]byte, error) {
	var ec *ecdsa.PrivateKey
	switch k := key.(type) {
	case *SoftwareSigner:
		ec = k.Key
	case *ecdsa.PrivateKey:
		ec = k
	default:
		return x509.MarshalPKCS8PrivateKey(key)
	}
	if !isBrainpool(ec.Curve) {
		return x509.MarshalPKCS8PrivateKey(ec)
	}
	oid, _ := oidFromCurve(ec.Curve)
	size := (ec.Curve.Params().BitSize + 7) / 8
	inner, err := asn1.Marshal(ecPrivateKey{
		Version:    1,
		PrivateKey: ec.D.FillBytes(make([]byte, size)),
		PublicKey:  asn1.BitString{Bytes: marshalPoint(ec.Curve, ec.X, ec.Y), BitLength: 8 * (1 + 2*size)},
	})
	if err != nil {
		return nil, err
	}
	params, _ := asn1.Marshal(oid)
	return asn1.Marshal(pkcs8{
		Algo:       pkix.AlgorithmIdentifier{Algorithm: OIDPublicKeyECDSA, Parameters: asn1.RawValue{FullBytes: params}},
		PrivateKey: inner,
	})
}

// MarshalPrivateKeyPEM returns the PKCS#8 PEM encoding of key.
func MarshalPrivateKeyPEM(key crypto.Signer) ([]byte, error) {
	der, err := MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

type subjectPublicKeyInfo struct {
	Algorithm pkix.AlgorithmIdentifier
	PublicKey asn1.BitString
}

// MarshalPKIXPublicKey encodes an ECDSA (brainpool or NIST) or RSA public key as SubjectPublicKeyInfo.
func MarshalPKIXPublicKey(pub crypto.PublicKey) ([]byte, error) {
	ec, ok := pub.(*ecdsa.PublicKey)
	if !ok || !isBrainpool(ec.Curve) {
		return x509.MarshalPKIXPublicKey(pub)
	}
	oid, _ := oidFromCurve(ec.Curve)
	params, _ := asn1.Marshal(oid)
	pt := marshalPoint(ec.Curve, ec.X, ec.Y)
	return asn1.Marshal(subjectPublicKeyInfo{
		Algorithm: pkix.AlgorithmIdentifier{Algorithm: OIDPublicKeyECDSA, Parameters: asn1.RawValue{FullBytes: params}},
		PublicKey: asn1.BitString{Bytes: pt, BitLength: 8 * len(pt)},
	})
}

// ParsePKIXPublicKey decodes a SubjectPublicKeyInfo holding an EC key (brainpool or NIST, checked to be on
// the curve) or an RSA key.
func ParsePKIXPublicKey(der []byte) (crypto.PublicKey, error) {
	var spki subjectPublicKeyInfo
	rest, err := asn1.Unmarshal(der, &spki)
	if err != nil {
		return nil, fmt.Errorf("public key: %w", err)
	}
	if len(rest) != 0 {
		return nil, errors.New("public key: trailing data")
	}
	switch {
	case spki.Algorithm.Algorithm.Equal(OIDPublicKeyECDSA):
		var curveOID asn1.ObjectIdentifier
		if _, err := asn1.Unmarshal(spki.Algorithm.Parameters.FullBytes, &curveOID); err != nil {
			return nil, fmt.Errorf("public key: EC parameters: %w", err)
		}
		curve, ok := curveFromOID(curveOID)
		if !ok {
			return nil, fmt.Errorf("public key: unsupported curve %s", curveOID)
		}
		return UnmarshalECPoint(curve, spki.PublicKey.RightAlign())
	case spki.Algorithm.Algorithm.Equal(OIDPublicKeyRSA):
		k, err := x509.ParsePKIXPublicKey(der)
		if err != nil {
			return nil, fmt.Errorf("public key: %w", err)
		}
		return k, nil
	}
	return nil, fmt.Errorf("public key: unsupported algorithm %s", spki.Algorithm.Algorithm)
}

// UnmarshalECPoint decodes an uncompressed point (0x04‖X‖Y) and checks that it lies on curve.
func UnmarshalECPoint(curve elliptic.Curve, b []byte) (*ecdsa.PublicKey, error) {
	size := (curve.Params().BitSize + 7) / 8
	if len(b) != 1+2*size || b[0] != 4 {
		return nil, errors.New("ec point: not an uncompressed point of the right size")
	}
	x := new(big.Int).SetBytes(b[1 : 1+size])
	y := new(big.Int).SetBytes(b[1+size:])
	return NewECPublicKey(curve, x, y)
}

// NewECPublicKey builds a public key after checking the coordinates lie on the curve (invalid-curve
// attacks on ECDH and garbage keys on verification both start with an off-curve point).
func NewECPublicKey(curve elliptic.Curve, x, y *big.Int) (*ecdsa.PublicKey, error) {
	p := curve.Params().P
	if x.Sign() < 0 || y.Sign() < 0 || x.Cmp(p) >= 0 || y.Cmp(p) >= 0 || !curve.IsOnCurve(x, y) {
		return nil, errors.New("ec point: not on curve")
	}
	return &ecdsa.PublicKey{Curve: curve, X: x, Y: y}, nil
}

func marshalPoint(curve elliptic.Curve, x, y *big.Int) []byte {
	size := (curve.Params().BitSize + 7) / 8
	out := make([]byte, 1+2*size)
	out[0] = 4
	x.FillBytes(out[1 : 1+size])
	y.FillBytes(out[1+size:])
	return out
}

// MarshalECPoint returns the uncompressed encoding 0x04‖X‖Y of an EC public key.
func MarshalECPoint(pub *ecdsa.PublicKey) []byte { return marshalPoint(pub.Curve, pub.X, pub.Y) }
