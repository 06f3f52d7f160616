package certs

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwe"
)

func TestJWEECDHESRoundTrip(t *testing.T) {
	k := joseKeys(t)
	cases := []struct {
		name  string
		extra map[string]any
		priv  any
		pub   *ecdsa.PublicKey
	}{
		{"a key_verifier-shaped JWE to a fresh key decrypts with the SoftwareSigner", map[string]any{"cty": "JSON"}, k.bp, k.bp.Public().(*ecdsa.PublicKey)},
		{"a signed-challenge-shaped JWE with exp decrypts with the bare ecdsa key", map[string]any{"cty": "NJWT", "exp": int64(1701341915)}, k.bp.(*SoftwareSigner).Key, k.bp.Public().(*ecdsa.PublicKey)},
		{"a JWE with apu and apv decrypts", map[string]any{"apu": joseB64([]byte("Alice")), "apv": joseB64([]byte("Bob"))}, k.card, k.card.Public().(*ecdsa.PublicKey)},
		{"a JWE without extra headers decrypts", nil, k.card, k.card.Public().(*ecdsa.PublicKey)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			plain := []byte(`{"token_key":"x","code_verifier":"y"}`)
			c, err := EncryptECDHES(tc.pub, plain, tc.extra)
			if err != nil {
				t.Fatal(err)
			}
			got, h, err := DecryptECDHES(tc.priv, c)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(plain, got); diff != "" {
				t.Errorf("plaintext (-want +got):\n%s", diff)
			}
			if h["alg"] != "ECDH-ES" || h["enc"] != "A256GCM" {
				t.Errorf("header %v", h)
			}
			for name, v := range tc.extra {
				want, _ := json.Marshal(v)
				have, _ := json.Marshal(h[name])
				if !bytes.Equal(want, have) {
					t.Errorf("header %s = %s, want %s", name, have, want)
				}
			}
		})
	}
}

func TestJWEDirRoundTripAndJWXInterop(t *testing.T) {
	key := make([]byte, 32)
	rand.Read(key)
	plain := []byte(`{"njwt":"a.b.c"}`)

	t.Run("a dir JWE made here decrypts here with its headers", func(t *testing.T) {
		c, err := EncryptDir(key, plain, map[string]any{"cty": "NJWT", "exp": 1701342160})
		if err != nil {
			t.Fatal(err)
		}
		got, h, err := DecryptDir(key, c)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(plain, got); diff != "" {
			t.Error(diff)
		}
		want := map[string]any{"alg": "dir", "enc": "A256GCM", "cty": "NJWT", "exp": json.Number("1701342160")}
		if diff := cmp.Diff(want, h); diff != "" {
			t.Errorf("header (-want +got):\n%s", diff)
		}
	})
	t.Run("a dir JWE made here decrypts with jwx", func(t *testing.T) {
		c, err := EncryptDir(key, plain, map[string]any{"cty": "NJWT"})
		if err != nil {
			t.Fatal(err)
		}
		got, err := jwe.Decrypt(c, jwe.WithKey(jwa.DIRECT, key))
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(plain, got); diff != "" {
			t.Error(diff)
		}
	})
	t.Run("a dir JWE made by jwx decrypts here", func(t *testing.T) {
		hdr := jwe.NewHeaders()
		hdr.Set("cty", "NJWT")
		c, err := jwe.Encrypt(plain, jwe.WithKey(jwa.DIRECT, key), jwe.WithContentEncryption(jwa.A256GCM), jwe.WithProtectedHeaders(hdr))
		if err != nil {
			t.Fatal(err)
		}
		got, h, err := DecryptDir(key, c)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(plain, got); diff != "" {
			t.Error(diff)
		}
		if h["cty"] != "NJWT" {
			t.Errorf("cty = %v", h["cty"])
		}
	})
	t.Run("a dir JWE with A128GCM made by jwx is refused", func(t *testing.T) {
		c, err := jwe.Encrypt(plain, jwe.WithKey(jwa.DIRECT, key[:16]), jwe.WithContentEncryption(jwa.A128GCM))
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := DecryptDir(key, c); !errors.Is(err, ErrAlgorithmMismatch) {
			t.Errorf("got %v, want ErrAlgorithmMismatch", err)
		}
	})
	t.Run("a dir JWE with deflate made by jwx is refused", func(t *testing.T) {
		c, err := jwe.Encrypt(plain, jwe.WithKey(jwa.DIRECT, key), jwe.WithContentEncryption(jwa.A256GCM), jwe.WithCompress(jwa.Deflate))
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := DecryptDir(key, c); err == nil {
			t.Error("DecryptDir accepted zip")
		}
	})
}

func TestJWERefusesMalformedAndTampered(t *testing.T) {
	k := joseKeys(t)
	key := bytes.Repeat([]byte{7}, 32)
	dirTok, err := EncryptDir(key, []byte("secret"), map[string]any{"cty": "NJWT"})
	if err != nil {
		t.Fatal(err)
	}
	ecTok, err := EncryptECDHES(k.bp.Public().(*ecdsa.PublicKey), []byte("secret"), nil)
	if err != nil {
		t.Fatal(err)
	}
	dp := strings.Split(string(dirTok), ".")
	ep := strings.Split(string(ecTok), ".")
	h := func(s string) string { return joseB64([]byte(s)) }
	flip := func(s string) string {
		b, _ := joseB64Decode([]byte(s))
		b[len(b)/2] ^= 1
		return joseB64(b)
	}
	join := func(p ...string) []byte { return []byte(strings.Join(p, ".")) }
	epkHeader := func(x, y string) string {
		return h(`{"alg":"ECDH-ES","enc":"A256GCM","epk":{"kty":"EC","crv":"BP-256","x":"` + x + `","y":"` + y + `"}}`)
	}
	var hdr struct {
		EPK struct{ X, Y string } `json:"epk"`
	}
	hb, _ := joseB64Decode([]byte(ep[0]))
	json.Unmarshal(hb, &hdr)
	yb, _ := joseB64Decode([]byte(hdr.EPK.Y))
	yb[31] ^= 1
	offCurveY := joseB64(yb)

	dirCases := []struct {
		name string
		tok  []byte
		key  []byte
	}{
		{"a flipped ciphertext bit is refused", join(dp[0], dp[1], dp[2], flip(dp[3]), dp[4]), key},
		{"a flipped tag bit is refused", join(dp[0], dp[1], dp[2], dp[3], flip(dp[4])), key},
		{"a flipped IV bit is refused", join(dp[0], dp[1], flip(dp[2]), dp[3], dp[4]), key},
		{"a changed protected header (AAD) is refused", join(h(`{"alg":"dir","enc":"A256GCM","cty":"JSON"}`), dp[1], dp[2], dp[3], dp[4]), key},
		{"the wrong key is refused", dirTok, bytes.Repeat([]byte{8}, 32)},
		{"a 16-byte key is refused", dirTok, key[:16]},
		{"four parts are refused", join(dp[0], dp[1], dp[2], dp[3]), key},
		{"a non-empty encrypted key is refused", join(dp[0], h("k"), dp[2], dp[3], dp[4]), key},
		{"a short IV is refused", join(dp[0], dp[1], h("short"), dp[3], dp[4]), key},
		{"a short tag is refused", join(dp[0], dp[1], dp[2], dp[3], h("short")), key},
		{"padding is refused", join(dp[0]+"=", dp[1], dp[2], dp[3], dp[4]), key},
		{"an ECDH-ES token is refused by DecryptDir", ecTok, key},
		{"alg A256KW is refused", join(h(`{"alg":"A256KW","enc":"A256GCM"}`), dp[1], dp[2], dp[3], dp[4]), key},
		{"enc A256CBC-HS512 is refused", join(h(`{"alg":"dir","enc":"A256CBC-HS512"}`), dp[1], dp[2], dp[3], dp[4]), key},
		{"a crit header is refused", join(h(`{"alg":"dir","enc":"A256GCM","crit":["x"],"x":1}`), dp[1], dp[2], dp[3], dp[4]), key},
		{"duplicate alg members are refused", join(h(`{"alg":"A256KW","alg":"dir","enc":"A256GCM"}`), dp[1], dp[2], dp[3], dp[4]), key},
	}
	for _, tc := range dirCases {
		t.Run("dir: "+tc.name, func(t *testing.T) {
			if _, _, err := DecryptDir(tc.key, tc.tok); err == nil {
				t.Error("DecryptDir succeeded")
			}
		})
	}
	ecCases := []struct {
		name string
		tok  []byte
		priv any
	}{
		{"an off-curve epk is refused", join(epkHeader(hdr.EPK.X, offCurveY), ep[1], ep[2], ep[3], ep[4]), k.bp},
		{"an epk on P-256 is refused", join(h(`{"alg":"ECDH-ES","enc":"A256GCM","epk":{"kty":"EC","crv":"P-256","x":"`+hdr.EPK.X+`","y":"`+hdr.EPK.Y+`"}}`), ep[1], ep[2], ep[3], ep[4]), k.bp},
		{"a missing epk is refused", join(h(`{"alg":"ECDH-ES","enc":"A256GCM"}`), ep[1], ep[2], ep[3], ep[4]), k.bp},
		{"a flipped ciphertext bit is refused", join(ep[0], ep[1], ep[2], flip(ep[3]), ep[4]), k.bp},
		{"the wrong recipient key is refused", ecTok, k.bp2},
		{"a P-256 recipient key is refused", ecTok, k.p256},
		{"an RSA recipient key is refused", ecTok, k.rsa},
		{"a dir token is refused by DecryptECDHES", dirTok, k.bp},
		{"ECDH-ES+A256KW is refused", join(h(`{"alg":"ECDH-ES+A256KW","enc":"A256GCM"}`), ep[1], ep[2], ep[3], ep[4]), k.bp},
		{"a non-string apu is refused", join(h(`{"alg":"ECDH-ES","enc":"A256GCM","apu":1,"epk":{"kty":"EC","crv":"BP-256","x":"`+hdr.EPK.X+`","y":"`+hdr.EPK.Y+`"}}`), ep[1], ep[2], ep[3], ep[4]), k.bp},
	}
	for _, tc := range ecCases {
		t.Run("ECDH-ES: "+tc.name, func(t *testing.T) {
			if _, _, err := DecryptECDHES(tc.priv, tc.tok); err == nil {
				t.Error("DecryptECDHES succeeded")
			}
		})
	}
	t.Run("encrypting to a P-256 key is refused", func(t *testing.T) {
		if _, err := EncryptECDHES(k.p256.Public().(*ecdsa.PublicKey), nil, nil); !errors.Is(err, ErrAlgorithmMismatch) {
			t.Errorf("got %v", err)
		}
	})
	t.Run("an extra header that would override alg is refused", func(t *testing.T) {
		if _, err := EncryptDir(key, nil, map[string]any{"alg": "none"}); err == nil {
			t.Error("EncryptDir accepted alg")
		}
		if _, err := EncryptECDHES(k.bp.Public().(*ecdsa.PublicKey), nil, map[string]any{"epk": "x"}); err == nil {
			t.Error("EncryptECDHES accepted epk")
		}
	})
}

// --- Independent ECDH-ES implementation: OpenSSL for the ECDH, the test's own Concat KDF and AES-GCM. ---

// joseTestSPKIPrefix is the DER SubjectPublicKeyInfo header of an uncompressed brainpoolP256r1 point, so
// the test builds the epk's PEM without the package's own encoders.
const joseTestSPKIPrefix = "305a301406072a8648ce3d020106092b2403030208010107034200"

func joseTestEPKPEM(t *testing.T, x, y []byte) []byte {
	t.Helper()
	prefix, _ := hex.DecodeString(joseTestSPKIPrefix)
	der := append(append(append(prefix, 4), x...), y...)
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

func joseTestKDF(z []byte) []byte {
	var buf bytes.Buffer
	u32 := func(v int) { binary.Write(&buf, binary.BigEndian, uint32(v)) }
	u32(1)
	buf.Write(z)
	u32(len("A256GCM"))
	buf.WriteString("A256GCM")
	u32(0) // apu
	u32(0) // apv
	u32(256)
	sum := sha256.Sum256(buf.Bytes())
	return sum[:]
}

func joseTestB64(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		t.Fatalf("%q: %v", s, err)
	}
	return b
}

func TestJWEECDHESOpenSSLInterop(t *testing.T) {
	openssl := joseOpenSSL(t)
	k := joseKeys(t)
	recipientKeyFile := gematikPath("pki", "cards", joseTestCard, "key.pem")
	recipientPub := k.card.Public().(*ecdsa.PublicKey)

	t.Run("an ECDH-ES BP-256 JWE made here decrypts with OpenSSL ECDH and the test's own KDF and AES-GCM", func(t *testing.T) {
		dir := t.TempDir()
		plain := []byte(`{"token_key":"cJE8jDE1c_RUgvBDPXekhUlPam9DJiyr6dGc5h8CPbg","code_verifier":"v"}`)
		c, err := EncryptECDHES(recipientPub, plain, map[string]any{"cty": "JSON"})
		if err != nil {
			t.Fatal(err)
		}
		parts := strings.Split(string(c), ".")
		if len(parts) != 5 || parts[1] != "" {
			t.Fatalf("unexpected compact form %q", c)
		}
		var hdr struct {
			Alg, Enc, Cty string
			EPK           struct{ Kty, Crv, X, Y string }
		}
		if err := json.Unmarshal(joseTestB64(t, parts[0]), &hdr); err != nil {
			t.Fatal(err)
		}
		want := "ECDH-ES A256GCM JSON EC BP-256"
		if got := strings.Join([]string{hdr.Alg, hdr.Enc, hdr.Cty, hdr.EPK.Kty, hdr.EPK.Crv}, " "); got != want {
			t.Fatalf("header %q, want %q", got, want)
		}
		epkFile := joseWrite(t, dir, "epk.pem", joseTestEPKPEM(t, joseTestB64(t, hdr.EPK.X), joseTestB64(t, hdr.EPK.Y)))
		zFile := filepath.Join(dir, "z.bin")
		if out, err := joseRun(t, openssl, "pkeyutl", "-derive", "-inkey", recipientKeyFile, "-peerkey", epkFile, "-out", zFile); err != nil {
			t.Fatalf("openssl derive: %s %v", out, err)
		}
		z := mustReadFile(t, zFile)
		if len(z) != 32 {
			t.Fatalf("Z has %d bytes", len(z))
		}
		block, _ := aes.NewCipher(joseTestKDF(z))
		gcm, _ := cipher.NewGCM(block)
		ct := append(joseTestB64(t, parts[3]), joseTestB64(t, parts[4])...)
		got, err := gcm.Open(nil, joseTestB64(t, parts[2]), ct, []byte(parts[0]))
		if err != nil {
			t.Fatalf("independent decryption: %v", err)
		}
		if diff := cmp.Diff(string(plain), string(got)); diff != "" {
			t.Errorf("plaintext (-want +got):\n%s", diff)
		}
	})

	t.Run("a JWE built with an OpenSSL ephemeral key and the test's own KDF decrypts here", func(t *testing.T) {
		dir := t.TempDir()
		ephFile := filepath.Join(dir, "eph.pem")
		if out, err := joseRun(t, openssl, "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:brainpoolP256r1", "-out", ephFile); err != nil {
			t.Fatalf("openssl genpkey: %s %v", out, err)
		}
		ephPubDER := filepath.Join(dir, "eph.der")
		if out, err := joseRun(t, openssl, "pkey", "-in", ephFile, "-pubout", "-outform", "DER", "-out", ephPubDER); err != nil {
			t.Fatalf("openssl pkey: %s %v", out, err)
		}
		spki := mustReadFile(t, ephPubDER)
		if len(spki) != 92 || hex.EncodeToString(spki[:27]) != joseTestSPKIPrefix {
			t.Fatalf("unexpected SPKI %x", spki)
		}
		pt := spki[27:]
		recipientPubFile := joseWrite(t, dir, "recipient.pem", joseTestEPKPEM(t, MarshalECPoint(recipientPub)[1:33], MarshalECPoint(recipientPub)[33:]))
		zFile := filepath.Join(dir, "z.bin")
		if out, err := joseRun(t, openssl, "pkeyutl", "-derive", "-inkey", ephFile, "-peerkey", recipientPubFile, "-out", zFile); err != nil {
			t.Fatalf("openssl derive: %s %v", out, err)
		}
		header := `{"alg":"ECDH-ES","enc":"A256GCM","cty":"NJWT","exp":1701341915,"epk":{"kty":"EC","crv":"BP-256","x":"` +
			base64.RawURLEncoding.EncodeToString(pt[1:33]) + `","y":"` + base64.RawURLEncoding.EncodeToString(pt[33:]) + `"}}`
		hb64 := base64.RawURLEncoding.EncodeToString([]byte(header))
		block, _ := aes.NewCipher(joseTestKDF(mustReadFile(t, zFile)))
		gcm, _ := cipher.NewGCM(block)
		iv := make([]byte, 12)
		rand.Read(iv)
		plain := []byte(`{"njwt":"signed.challenge.jws"}`)
		sealed := gcm.Seal(nil, iv, plain, []byte(hb64))
		enc := base64.RawURLEncoding.EncodeToString
		compact := hb64 + ".." + enc(iv) + "." + enc(sealed[:len(sealed)-16]) + "." + enc(sealed[len(sealed)-16:])

		got, h, err := DecryptECDHES(k.card, []byte(compact))
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(string(plain), string(got)); diff != "" {
			t.Errorf("plaintext (-want +got):\n%s", diff)
		}
		if h["exp"] != json.Number("1701341915") || h["cty"] != "NJWT" {
			t.Errorf("header %v", h)
		}
	})
}
