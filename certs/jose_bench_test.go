package certs

import (
	"crypto/ecdsa"
	"testing"
)

// Brainpool runs on the generic big.Int path: these numbers decide where verified tokens and keys must be
// cached (per login or list refresh is fine, per request is not).

func BenchmarkSignBP256R1(b *testing.B) {
	k := joseKeys(b)
	msg := []byte("eyJhbGciOiJCUDI1NlIxIn0.eyJzdWIiOiJ4In0")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := SignBP256R1(k.card, msg); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyBP256R1(b *testing.B) {
	k := joseKeys(b)
	msg := []byte("eyJhbGciOiJCUDI1NlIxIn0.eyJzdWIiOiJ4In0")
	sig, err := SignBP256R1(k.card, msg)
	if err != nil {
		b.Fatal(err)
	}
	pub := k.card.Public().(*ecdsa.PublicKey)
	b.ReportAllocs()
	for b.Loop() {
		if err := VerifyBP256R1(pub, msg, sig); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseCompactJWSFederationList(b *testing.B) {
	data := mustReadFile(b, gematikPath("vzd", "samples", "federationList-TU-v1650.jws"))
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseCompactJWS(data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecryptECDHES(b *testing.B) {
	k := joseKeys(b)
	c, err := EncryptECDHES(k.card.Public().(*ecdsa.PublicKey), []byte(`{"token_key":"x"}`), nil)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := DecryptECDHES(k.card, c); err != nil {
			b.Fatal(err)
		}
	}
}
