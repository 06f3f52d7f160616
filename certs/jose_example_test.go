package certs_test

import (
	"crypto/ecdsa"
	"errors"
	"fmt"

	"github.com/timstack/timstack/certs"
)

// A BP256R1 token is checked against the algorithm the caller expects, never the one the token names.
func ExampleCompactJWS_Verify() {
	key, _ := certs.GenerateKey(certs.KeyBrainpoolP256r1)
	tok, _ := certs.SignCompactJWS(key, certs.AlgBP256R1, map[string]any{"typ": "JWT", "kid": "puk_idp_sig"}, []byte(`{"sub":"x"}`))

	j, err := certs.ParseCompactJWS(tok)
	if err != nil {
		panic(err)
	}
	fmt.Println(j.Header.Alg, j.Header.Kid, string(j.Payload))
	fmt.Println("as BP256R1:", j.Verify(certs.AlgBP256R1, key.Public()))
	fmt.Println("as ES256 mismatch:", errors.Is(j.Verify(certs.AlgES256, key.Public()), certs.ErrAlgorithmMismatch))
	// Output:
	// BP256R1 puk_idp_sig {"sub":"x"}
	// as BP256R1: <nil>
	// as ES256 mismatch: true
}

// key_verifier goes to the IDP as ECDH-ES on BP-256; the tokens come back as dir JWEs under token_key.
func ExampleEncryptECDHES() {
	idpEnc, _ := certs.GenerateKey(certs.KeyBrainpoolP256r1)
	jwe, _ := certs.EncryptECDHES(idpEnc.Public().(*ecdsa.PublicKey), []byte(`{"token_key":"…","code_verifier":"…"}`), map[string]any{"cty": "JSON"})

	plain, header, err := certs.DecryptECDHES(idpEnc, jwe)
	if err != nil {
		panic(err)
	}
	fmt.Println(header["alg"], header["enc"], header["cty"], string(plain))
	// Output:
	// ECDH-ES A256GCM JSON {"token_key":"…","code_verifier":"…"}
}
