package certs

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"math/big"
	"strings"
	"testing"
)

// FuzzParseCompactJWS feeds the JWS parser (the first thing every federation list, discovery document and
// IDP token meets) with mutations of real tokens. The committed corpus under
// testdata/fuzz/FuzzParseCompactJWS holds the gematik federation list, the recorded discovery document and
// ID/access tokens, and a card-signed challenge response with x5c.
func FuzzParseCompactJWS(f *testing.F) {
	f.Add([]byte("eyJhbGciOiJub25lIn0.e30."))
	f.Add([]byte("eyJhbGciOiJCUDI1NlIxIiwiY3JpdCI6WyJleHAiXX0.e30.AA"))
	// An arbitrary on-curve P-256 key: verification of fuzzed ES256 tokens runs in the fast constant-time
	// implementation, and BP256R1 ones stop at the key check, so the fuzzer spends its time in the parser.
	x, y := elliptic.P256().ScalarBaseMult(big.NewInt(7).Bytes())
	pub := &ecdsa.PublicKey{Curve: elliptic.P256(), X: x, Y: y}
	f.Fuzz(func(t *testing.T, data []byte) {
		j, err := ParseCompactJWS(data)
		if err != nil {
			if j != nil {
				t.Fatal("error with a non-nil result")
			}
			return
		}
		if !bytes.Equal(j.Raw, data) || !bytes.HasPrefix(j.Raw, j.SigningInput) || len(j.Signature) == 0 {
			t.Fatalf("inconsistent parse of %q", data)
		}
		if j.Header.Alg == "" || strings.EqualFold(string(j.Header.Alg), "none") {
			t.Fatalf("accepted alg %q", j.Header.Alg)
		}
		if bytes.Count(j.SigningInput, []byte{'.'}) != 1 {
			t.Fatalf("signing input %q", j.SigningInput)
		}
		_ = j.Verify(j.Header.Alg, pub)
		_, _ = j.VerifyX5C(AlgBP256R1)
	})
}

// FuzzDecryptJWE feeds both JWE decoders. Seeds: the recorded IDP token JWEs (which decrypt under the
// recorded token_key used here) and an ECDH-ES JWE to the HBA test key.
func FuzzDecryptJWE(f *testing.F) {
	flow := joseLoadRecordedFlow(f)
	f.Add(flow.IDToken)
	f.Add(flow.AccessToken)
	card := mustKey(f, gematikPath("pki", "cards", joseTestCard, "key.pem")).(*SoftwareSigner)
	ec, err := EncryptECDHES(&card.Key.PublicKey, []byte(`{"token_key":"x"}`), map[string]any{"cty": "JSON"})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(ec)
	f.Fuzz(func(t *testing.T, data []byte) {
		if _, h, err := DecryptDir(flow.TokenKey, data); err == nil && h["alg"] != "dir" {
			t.Fatalf("DecryptDir accepted header %v", h)
		}
		if _, h, err := DecryptECDHES(card, data); err == nil && h["alg"] != "ECDH-ES" {
			t.Fatalf("DecryptECDHES accepted header %v", h)
		}
	})
}
