package certs

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/big"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// ErrBadSignature is returned (wrapped) whenever a signature does not verify.
var ErrBadSignature = errors.New("signature verification failed")

// SignBP256R1 signs msg with SHA-256 and a brainpoolP256r1 key and returns the JOSE encoding: the 64-byte
// r‖s. Any crypto.Signer returning ASN.1 DER ECDSA signatures works (HSM, KMS, SoftwareSigner).
func SignBP256R1(signer crypto.Signer, msg []byte) ([]byte, error) {
	pub, ok := signer.Public().(*ecdsa.PublicKey)
	if !ok || CurveName(pub.Curve) != "brainpoolP256r1" {
		return nil, errors.New("BP256R1: signer is not a brainpoolP256r1 key")
	}
	return signECDSARaw(signer, crypto.SHA256, msg)
}

// SignES256 is SignBP256R1 for P-256 keys (JOSE ES256).
func SignES256(signer crypto.Signer, msg []byte) ([]byte, error) {
	pub, ok := signer.Public().(*ecdsa.PublicKey)
	if !ok || CurveName(pub.Curve) != "P-256" {
		return nil, errors.New("ES256: signer is not a P-256 key")
	}
	return signECDSARaw(signer, crypto.SHA256, msg)
}

func signECDSARaw(signer crypto.Signer, h crypto.Hash, msg []byte) ([]byte, error) {
	hh := h.New()
	hh.Write(msg)
	der, err := signer.Sign(rand.Reader, hh.Sum(nil), h)
	if err != nil {
		return nil, fmt.Errorf("ecdsa sign: %w", err)
	}
	pub := signer.Public().(*ecdsa.PublicKey)
	return ECDSADERToRaw(der, (pub.Curve.Params().BitSize+7)/8)
}

// VerifyBP256R1 checks a JOSE-encoded (64-byte r‖s) BP256R1 signature over msg.
func VerifyBP256R1(pub *ecdsa.PublicKey, msg, sig []byte) error {
	if pub == nil || CurveName(pub.Curve) != "brainpoolP256r1" {
		return fmt.Errorf("BP256R1: %w: key is not on brainpoolP256r1", ErrBadSignature)
	}
	return verifyECDSARaw(pub, msg, sig)
}

// VerifyES256 checks a JOSE-encoded (64-byte r‖s) ES256 signature; the key must be P-256.
func VerifyES256(pub *ecdsa.PublicKey, msg, sig []byte) error {
	if pub == nil || CurveName(pub.Curve) != "P-256" {
		return fmt.Errorf("ES256: %w: key is not on P-256", ErrBadSignature)
	}
	return verifyECDSARaw(pub, msg, sig)
}

func verifyECDSARaw(pub *ecdsa.PublicKey, msg, sig []byte) error {
	size := (pub.Curve.Params().BitSize + 7) / 8
	if len(sig) != 2*size {
		return fmt.Errorf("%w: signature has %d bytes, want %d", ErrBadSignature, len(sig), 2*size)
	}
	r := new(big.Int).SetBytes(sig[:size])
	s := new(big.Int).SetBytes(sig[size:])
	digest := sha256.Sum256(msg)
	if !verifyECDSA(pub, digest[:], r, s) {
		return ErrBadSignature
	}
	return nil
}

// verifyECDSA range-checks r and s before handing them to crypto/ecdsa, so zero or oversized values are a
// clean failure on every curve. brainpoolP256r1 goes to bp256Verify (same result, ~20× faster than
// crypto/ecdsa's generic big.Int path for custom curves; see bp256.go).
func verifyECDSA(pub *ecdsa.PublicKey, digest []byte, r, s *big.Int) bool {
	n := pub.Curve.Params().N
	if r.Sign() <= 0 || s.Sign() <= 0 || r.Cmp(n) >= 0 || s.Cmp(n) >= 0 {
		return false
	}
	if CurveName(pub.Curve) == "brainpoolP256r1" {
		return bp256Verify(pub, digest, r, s)
	}
	der, err := encodeECDSADER(r, s)
	if err != nil {
		return false
	}
	return ecdsa.VerifyASN1(pub, digest, der)
}

// ECDSADERToRaw converts an ASN.1 DER ECDSA signature to the fixed-size r‖s form used by JOSE.
func ECDSADERToRaw(der []byte, size int) ([]byte, error) {
	r, s, err := decodeECDSADER(der)
	if err != nil {
		return nil, err
	}
	if r.BitLen() > 8*size || s.BitLen() > 8*size {
		return nil, errors.New("ecdsa signature: integer too large for curve")
	}
	out := make([]byte, 2*size)
	r.FillBytes(out[:size])
	s.FillBytes(out[size:])
	return out, nil
}

// ECDSARawToDER converts a JOSE r‖s signature to ASN.1 DER, as X.509, OCSP and OpenSSL expect.
func ECDSARawToDER(raw []byte) ([]byte, error) {
	if len(raw) == 0 || len(raw)%2 != 0 {
		return nil, errors.New("ecdsa signature: raw form must have an even, non-zero length")
	}
	h := len(raw) / 2
	return encodeECDSADER(new(big.Int).SetBytes(raw[:h]), new(big.Int).SetBytes(raw[h:]))
}

func encodeECDSADER(r, s *big.Int) ([]byte, error) {
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1BigInt(r)
		b.AddASN1BigInt(s)
	})
	return b.Bytes()
}

func decodeECDSADER(der []byte) (r, s *big.Int, err error) {
	r, s = new(big.Int), new(big.Int)
	var inner cryptobyte.String
	in := cryptobyte.String(der)
	if !in.ReadASN1(&inner, cbasn1.SEQUENCE) || !in.Empty() ||
		!inner.ReadASN1Integer(r) || !inner.ReadASN1Integer(s) || !inner.Empty() {
		return nil, nil, errors.New("ecdsa signature: malformed DER")
	}
	return r, s, nil
}

// verifyWithKey checks a signature made with one of the X.509/OCSP signature algorithms timstack accepts.
// ECDSA signatures arrive DER-encoded here.
func verifyWithKey(pub crypto.PublicKey, alg SignatureAlgorithm, signed, sig []byte) error {
	h := alg.hash()
	if h == 0 {
		return fmt.Errorf("%w: unsupported signature algorithm %s", ErrBadSignature, alg)
	}
	hh := h.New()
	hh.Write(signed)
	digest := hh.Sum(nil)
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if !alg.isECDSA() {
			return fmt.Errorf("%w: %s signature with an EC key", ErrBadSignature, alg)
		}
		r, s, err := decodeECDSADER(sig)
		if err != nil {
			return fmt.Errorf("%w: %v", ErrBadSignature, err)
		}
		if !verifyECDSA(k, digest, r, s) {
			return ErrBadSignature
		}
		return nil
	case *rsa.PublicKey:
		switch {
		case alg.isPSS():
			if err := rsa.VerifyPSS(k, h, digest, sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash}); err != nil {
				return fmt.Errorf("%w: %v", ErrBadSignature, err)
			}
			return nil
		case alg.isRSA():
			if err := rsa.VerifyPKCS1v15(k, h, digest, sig); err != nil {
				return fmt.Errorf("%w: %v", ErrBadSignature, err)
			}
			return nil
		}
		return fmt.Errorf("%w: %s signature with an RSA key", ErrBadSignature, alg)
	}
	return fmt.Errorf("%w: unsupported public key type %T", ErrBadSignature, pub)
}

// signWithKey produces an X.509-style signature (DER for ECDSA) for alg with signer.
func signWithKey(signer crypto.Signer, alg SignatureAlgorithm, msg []byte) ([]byte, error) {
	h := alg.hash()
	hh := h.New()
	hh.Write(msg)
	var opts crypto.SignerOpts = h
	if alg.isPSS() {
		opts = &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: h}
	}
	return signer.Sign(rand.Reader, hh.Sum(nil), opts)
}
