package certs

import (
	"bytes"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
)

// The only JWE algorithms the TI uses. ECDH-ES on BP-256 carries key_verifier and the signed challenge to
// the IDP; dir carries tokens back under the relying party's token_key. Anything else is refused rather
// than half-supported.
const (
	jweAlgECDHES  = "ECDH-ES"
	jweAlgDir     = "dir"
	jweEncA256GCM = "A256GCM"
)

const (
	jweKeySize = 32 // AES-256
	jweIVSize  = 12 // 96-bit GCM nonce
	jweTagSize = 16 // 128-bit GCM tag
)

// EncryptECDHES encrypts plaintext to a brainpoolP256r1 public key as compact JWE "ECDH-ES" + "A256GCM",
// the form the gematik IDP accepts for key_verifier and the signed challenge. extraHeaders adds protected
// members such as "cty" or "exp" (the IDP checks exp against the challenge); "apu"/"apv" (base64url) are
// fed into the key derivation. A fresh ephemeral key is made per call.
//
// SECURITY: the ephemeral scalar multiplication runs on the variable-time brainpool implementation; the key
// lives for one message only.
func EncryptECDHES(pub *ecdsa.PublicKey, plaintext []byte, extraHeaders map[string]any) ([]byte, error) {
	if pub == nil || CurveName(pub.Curve) != "brainpoolP256r1" {
		return nil, fmt.Errorf("jwe: %w: ECDH-ES recipient must be a brainpoolP256r1 key", ErrAlgorithmMismatch)
	}
	if _, err := NewECPublicKey(pub.Curve, pub.X, pub.Y); err != nil {
		return nil, fmt.Errorf("jwe: recipient: %w", err)
	}
	h, err := jweHeaderWith(extraHeaders)
	if err != nil {
		return nil, err
	}
	apu, apv, err := jwePartyInfo(h)
	if err != nil {
		return nil, err
	}
	eph, err := ecdsa.GenerateKey(BrainpoolP256r1(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("jwe: ephemeral key: %w", err)
	}
	z, err := jweSharedSecret(eph, pub)
	if err != nil {
		return nil, err
	}
	pt := MarshalECPoint(&eph.PublicKey)
	h["alg"] = jweAlgECDHES
	h["enc"] = jweEncA256GCM
	h["epk"] = map[string]string{"kty": "EC", "crv": CurveBP256, "x": joseB64(pt[1:33]), "y": joseB64(pt[33:])}
	return jweSeal(jweConcatKDF(z, apu, apv), h, plaintext)
}

// DecryptECDHES decrypts a compact "ECDH-ES" + "A256GCM" JWE with a brainpoolP256r1 private key
// (*ecdsa.PrivateKey or *SoftwareSigner). The sender's ephemeral key must lie on the curve: an off-curve
// epk is the classic invalid-curve attack on the recipient's key. It returns the plaintext and the
// protected header (numbers as json.Number).
func DecryptECDHES(priv crypto.PrivateKey, compact []byte) ([]byte, map[string]any, error) {
	var d *ecdsa.PrivateKey
	switch k := priv.(type) {
	case *ecdsa.PrivateKey:
		d = k
	case *SoftwareSigner:
		if k != nil {
			d = k.Key
		}
	}
	if d == nil || d.D == nil || CurveName(d.Curve) != "brainpoolP256r1" {
		return nil, nil, fmt.Errorf("jwe: %w: ECDH-ES needs a brainpoolP256r1 private key, got %T", ErrAlgorithmMismatch, priv)
	}
	p, err := jweParse(compact, jweAlgECDHES)
	if err != nil {
		return nil, nil, err
	}
	var epk map[string]json.RawMessage
	if err := joseMember(p.members, "epk", &epk); err != nil || epk == nil {
		return nil, nil, errors.New(`jwe: missing or malformed "epk"`)
	}
	var kty, crv, x, y string
	for _, m := range []struct {
		name string
		dst  *string
	}{{"kty", &kty}, {"crv", &crv}, {"x", &x}, {"y", &y}} {
		if err := joseMember(epk, m.name, m.dst); err != nil {
			return nil, nil, fmt.Errorf("jwe: epk: %w", err)
		}
	}
	if kty != "EC" || crv != CurveBP256 {
		return nil, nil, fmt.Errorf("jwe: epk: want kty EC and crv %q, got %q and %q", CurveBP256, kty, crv)
	}
	ex, err := joseFixedBytes(x, 32)
	if err != nil {
		return nil, nil, fmt.Errorf("jwe: epk x: %w", err)
	}
	ey, err := joseFixedBytes(y, 32)
	if err != nil {
		return nil, nil, fmt.Errorf("jwe: epk y: %w", err)
	}
	peer, err := NewECPublicKey(BrainpoolP256r1(), ex, ey)
	if err != nil {
		return nil, nil, fmt.Errorf("jwe: epk: %w", err)
	}
	apu, apv, err := jwePartyInfo(p.header)
	if err != nil {
		return nil, nil, err
	}
	z, err := jweSharedSecret(d, peer)
	if err != nil {
		return nil, nil, err
	}
	plain, err := jweOpen(jweConcatKDF(z, apu, apv), p)
	if err != nil {
		return nil, nil, err
	}
	return plain, p.header, nil
}

// EncryptDir encrypts plaintext under a 32-byte shared key as compact JWE "dir" + "A256GCM" (how the IDP
// returns tokens under token_key, and how a dev IDP must answer). extra adds protected members such as
// "cty": "NJWT" and "exp".
func EncryptDir(key, plaintext []byte, extra map[string]any) ([]byte, error) {
	if len(key) != jweKeySize {
		return nil, fmt.Errorf("jwe: dir A256GCM needs a %d-byte key, got %d", jweKeySize, len(key))
	}
	h, err := jweHeaderWith(extra)
	if err != nil {
		return nil, err
	}
	h["alg"] = jweAlgDir
	h["enc"] = jweEncA256GCM
	return jweSeal(key, h, plaintext)
}

// DecryptDir decrypts a compact "dir" + "A256GCM" JWE with a 32-byte key and returns the plaintext and the
// protected header (numbers as json.Number). Written by hand rather than through jwx's jwe package so that
// both JWE modes share one strict parser, and "zip" (decompression of attacker data) is refused outright.
func DecryptDir(key, compact []byte) ([]byte, map[string]any, error) {
	if len(key) != jweKeySize {
		return nil, nil, fmt.Errorf("jwe: dir A256GCM needs a %d-byte key, got %d", jweKeySize, len(key))
	}
	p, err := jweParse(compact, jweAlgDir)
	if err != nil {
		return nil, nil, err
	}
	plain, err := jweOpen(key, p)
	if err != nil {
		return nil, nil, err
	}
	return plain, p.header, nil
}

// jweHeaderWith copies the caller's extra members, refusing the ones this codec owns.
func jweHeaderWith(extra map[string]any) (map[string]any, error) {
	h := make(map[string]any, len(extra)+3)
	for k, v := range extra {
		switch k {
		case "alg", "enc", "epk", "zip", "crit":
			return nil, fmt.Errorf("jwe: header member %q is set by the codec or unsupported", k)
		}
		h[k] = v
	}
	return h, nil
}

// jwePartyInfo decodes optional apu/apv (base64url) from a header built by us or parsed from the wire.
func jwePartyInfo(h map[string]any) (apu, apv []byte, err error) {
	for _, m := range []struct {
		name string
		dst  *[]byte
	}{{"apu", &apu}, {"apv", &apv}} {
		v, ok := h[m.name]
		if !ok {
			continue
		}
		s, ok := v.(string)
		if !ok {
			return nil, nil, fmt.Errorf("jwe: %q must be a base64url string", m.name)
		}
		if *m.dst, err = joseB64Decode([]byte(s)); err != nil {
			return nil, nil, fmt.Errorf("jwe: %q: %w", m.name, err)
		}
	}
	return apu, apv, nil
}

// jweSharedSecret is the ECDH x-coordinate Z (RFC 7518 §4.6.2), 32 bytes.
func jweSharedSecret(priv *ecdsa.PrivateKey, peer *ecdsa.PublicKey) ([]byte, error) {
	curve := priv.Curve
	size := (curve.Params().BitSize + 7) / 8
	x, y := curve.ScalarMult(peer.X, peer.Y, priv.D.FillBytes(make([]byte, size)))
	if x == nil || y == nil || (x.Sign() == 0 && y.Sign() == 0) {
		return nil, errors.New("jwe: ECDH produced the point at infinity")
	}
	return x.FillBytes(make([]byte, size)), nil
}

// jweConcatKDF is the single-round Concat KDF of RFC 7518 §4.6.2 / NIST SP 800-56A with SHA-256, for
// ECDH-ES direct key agreement with enc A256GCM (AlgorithmID "A256GCM", keydatalen 256).
func jweConcatKDF(z, apu, apv []byte) []byte {
	h := sha256.New()
	var n [4]byte
	lenPrefixed := func(b []byte) {
		binary.BigEndian.PutUint32(n[:], uint32(len(b)))
		h.Write(n[:])
		h.Write(b)
	}
	binary.BigEndian.PutUint32(n[:], 1) // round counter
	h.Write(n[:])
	h.Write(z)
	lenPrefixed([]byte(jweEncA256GCM))
	lenPrefixed(apu)
	lenPrefixed(apv)
	binary.BigEndian.PutUint32(n[:], 8*jweKeySize) // SuppPubInfo: keydatalen in bits
	h.Write(n[:])
	return h.Sum(nil)
}

func jweSeal(key []byte, header map[string]any, plaintext []byte) ([]byte, error) {
	hj, err := json.Marshal(header)
	if err != nil {
		return nil, fmt.Errorf("jwe: header: %w", err)
	}
	aead, err := jweAEAD(key)
	if err != nil {
		return nil, err
	}
	iv := make([]byte, jweIVSize)
	if _, err := rand.Read(iv); err != nil {
		return nil, fmt.Errorf("jwe: iv: %w", err)
	}
	hb64 := joseB64(hj)
	sealed := aead.Seal(nil, iv, plaintext, []byte(hb64))
	ct, tag := sealed[:len(sealed)-jweTagSize], sealed[len(sealed)-jweTagSize:]
	return []byte(hb64 + ".." + joseB64(iv) + "." + joseB64(ct) + "." + joseB64(tag)), nil
}

func jweAEAD(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("jwe: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("jwe: %w", err)
	}
	return aead, nil
}

type jweParts struct {
	rawHeader []byte // the base64url header exactly as received: the AAD
	members   map[string]json.RawMessage
	header    map[string]any
	iv        []byte
	ct        []byte
	tag       []byte
}

// jweParse splits and checks a compact JWE for one alg: five strict base64url parts, an empty encrypted
// key (both dir and ECDH-ES agree the key directly), enc A256GCM, no zip, no crit, 96-bit IV, 128-bit tag.
func jweParse(compact []byte, alg string) (*jweParts, error) {
	parts := bytes.Split(compact, []byte{'.'})
	if len(parts) != 5 {
		return nil, fmt.Errorf("jwe: compact serialisation needs 5 parts, found %d", len(parts))
	}
	dec := make([][]byte, 5)
	for i, part := range parts {
		b, err := joseB64Decode(part)
		if err != nil {
			return nil, fmt.Errorf("jwe: part %d: %w", i+1, err)
		}
		dec[i] = b
	}
	members, err := joseHeaderMembers(dec[0])
	if err != nil {
		return nil, fmt.Errorf("jwe: header: %w", err)
	}
	var gotAlg, gotEnc string
	if err := joseMember(members, "alg", &gotAlg); err != nil {
		return nil, fmt.Errorf("jwe: header: %w", err)
	}
	if err := joseMember(members, "enc", &gotEnc); err != nil {
		return nil, fmt.Errorf("jwe: header: %w", err)
	}
	if gotAlg != alg || gotEnc != jweEncA256GCM {
		return nil, fmt.Errorf("jwe: %w: alg %q enc %q, expected %q and %q", ErrAlgorithmMismatch, gotAlg, gotEnc, alg, jweEncA256GCM)
	}
	if _, ok := members["zip"]; ok {
		return nil, errors.New(`jwe: "zip" is not supported`)
	}
	if len(dec[1]) != 0 {
		return nil, fmt.Errorf("jwe: %s must have an empty encrypted key", alg)
	}
	if len(dec[2]) != jweIVSize || len(dec[4]) != jweTagSize {
		return nil, fmt.Errorf("jwe: A256GCM needs a %d-byte IV and a %d-byte tag", jweIVSize, jweTagSize)
	}
	d := json.NewDecoder(bytes.NewReader(dec[0]))
	d.UseNumber()
	var header map[string]any
	if err := d.Decode(&header); err != nil {
		return nil, fmt.Errorf("jwe: header: %w", err)
	}
	return &jweParts{rawHeader: parts[0], members: members, header: header, iv: dec[2], ct: dec[3], tag: dec[4]}, nil
}

func jweOpen(key []byte, p *jweParts) ([]byte, error) {
	aead, err := jweAEAD(key)
	if err != nil {
		return nil, err
	}
	sealed := make([]byte, 0, len(p.ct)+len(p.tag))
	sealed = append(append(sealed, p.ct...), p.tag...)
	plain, err := aead.Open(nil, p.iv, sealed, p.rawHeader)
	if err != nil {
		return nil, errors.New("jwe: decryption failed")
	}
	return plain, nil
}
