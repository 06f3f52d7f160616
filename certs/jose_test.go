package certs

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
)

const joseTestCard = "80276883110000129084-2-C_HP_AUT_E256"

// joseTestKeySet holds keys that are slow to generate (RSA) or read from the fixtures, made once per run.
type joseTestKeySet struct {
	bp, bp2, p256, rsa crypto.Signer
	card               crypto.Signer
	cardCert           *Certificate
}

var (
	joseKeysOnce sync.Once
	joseKeysVal  *joseTestKeySet
	joseKeysErr  error
)

func joseKeys(t testing.TB) *joseTestKeySet {
	t.Helper()
	joseKeysOnce.Do(func() {
		k := &joseTestKeySet{}
		for _, g := range []struct {
			dst *crypto.Signer
			alg KeyAlgorithm
		}{{&k.bp, KeyBrainpoolP256r1}, {&k.bp2, KeyBrainpoolP256r1}, {&k.p256, KeyP256}, {&k.rsa, KeyRSA2048}} {
			if *g.dst, joseKeysErr = GenerateKey(g.alg); joseKeysErr != nil {
				return
			}
		}
		var data []byte
		if data, joseKeysErr = os.ReadFile(gematikPath("pki", "cards", joseTestCard, "key.pem")); joseKeysErr != nil {
			return
		}
		if k.card, joseKeysErr = ParsePrivateKeyPEM(data); joseKeysErr != nil {
			return
		}
		if data, joseKeysErr = os.ReadFile(gematikPath("pki", "cards", joseTestCard, "cert.pem")); joseKeysErr != nil {
			return
		}
		if k.cardCert, joseKeysErr = ParseCertificatePEMOrDER(data); joseKeysErr != nil {
			return
		}
		joseKeysVal = k
	})
	if joseKeysErr != nil {
		t.Fatal(joseKeysErr)
	}
	return joseKeysVal
}

func mustSignJWS(t testing.TB, signer crypto.Signer, alg JWSAlgorithm, header map[string]any, payload string) []byte {
	t.Helper()
	tok, err := SignCompactJWS(signer, alg, header, []byte(payload))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func mustParseJWS(t testing.TB, tok []byte) *CompactJWS {
	t.Helper()
	j, err := ParseCompactJWS(tok)
	if err != nil {
		t.Fatalf("ParseCompactJWS: %v", err)
	}
	return j
}

// joseForge builds a compact JWS with an arbitrary header, signed with signer under the raw algorithm
// rawAlg regardless of what the header claims: the building block of algorithm-confusion attempts.
func joseForge(t testing.TB, header string, payload string, signer crypto.Signer, rawAlg JWSAlgorithm) []byte {
	t.Helper()
	input := joseB64([]byte(header)) + "." + joseB64([]byte(payload))
	var sig []byte
	var err error
	if signer != nil {
		if sig, err = joseSign(signer, rawAlg, []byte(input)); err != nil {
			t.Fatal(err)
		}
	} else {
		sig = []byte{0}
	}
	return []byte(input + "." + joseB64(sig))
}

func TestJWSSignVerifyRoundTrip(t *testing.T) {
	k := joseKeys(t)
	cases := []struct {
		name   string
		signer crypto.Signer
		alg    JWSAlgorithm
	}{
		{"a BP256R1 token signed with a fresh brainpool key verifies", k.bp, AlgBP256R1},
		{"a BP256R1 token signed with the gematik HBA test key verifies", k.card, AlgBP256R1},
		{"an ES256 token signed with a P-256 key verifies", k.p256, AlgES256},
		{"a PS256 token signed with an RSA key verifies", k.rsa, AlgPS256},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			header := map[string]any{"typ": "JWT", "kid": "k1", "cty": "NJWT", "exp": 1701342160}
			tok := mustSignJWS(t, tc.signer, tc.alg, header, `{"sub":"x"}`)
			j := mustParseJWS(t, tok)
			got := struct {
				Alg                JWSAlgorithm
				Typ, Kid, Cty, Pay string
				Exp                int64
				SigLen             int
			}{j.Header.Alg, j.Header.Typ, j.Header.Kid, j.Header.Cty, string(j.Payload), j.Header.Exp, len(j.Signature)}
			wantLen := 64
			if tc.alg == AlgPS256 {
				wantLen = 256
			}
			want := got
			want.Alg, want.Typ, want.Kid, want.Cty, want.Pay, want.Exp, want.SigLen = tc.alg, "JWT", "k1", "NJWT", `{"sub":"x"}`, 1701342160, wantLen
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("parsed token (-want +got):\n%s", diff)
			}
			if err := j.Verify(tc.alg, tc.signer.Public()); err != nil {
				t.Errorf("Verify: %v", err)
			}
		})
	}
}

func TestJWSX5CRoundTrip(t *testing.T) {
	k := joseKeys(t)
	tok := mustSignJWS(t, k.card, AlgBP256R1, map[string]any{"x5c": X5CHeader(k.cardCert)}, "challenge")
	j := mustParseJWS(t, tok)
	leaf, err := j.VerifyX5C(AlgBP256R1)
	if err != nil {
		t.Fatalf("VerifyX5C: %v", err)
	}
	if !leaf.Equal(k.cardCert) {
		t.Errorf("VerifyX5C returned %q, want the card certificate", leaf.Subject.String())
	}
	if got := leaf.TelematikID(); got != "1-HBA-Testkarte-883110000129084" {
		t.Errorf("TelematikID = %q", got)
	}
}

// TestJWSMalformedSignatures follows Wycheproof's ECDSA edge cases for the JOSE r‖s encoding.
func TestJWSMalformedSignatures(t *testing.T) {
	k := joseKeys(t)
	for _, alg := range []JWSAlgorithm{AlgBP256R1, AlgES256} {
		signer := k.bp
		if alg == AlgES256 {
			signer = k.p256
		}
		pub := signer.Public().(*ecdsa.PublicKey)
		n := pub.Curve.Params().N
		p := pub.Curve.Params().P
		msg := []byte("header.payload")
		sig, err := joseSign(signer, alg, msg)
		if err != nil {
			t.Fatal(err)
		}
		r, s := sig[:32], sig[32:]
		fixed := func(v *big.Int) []byte { return v.FillBytes(make([]byte, 32)) }
		cat := func(a, b []byte) []byte { return append(append([]byte{}, a...), b...) }
		flipped := bytes.Clone(sig)
		flipped[10] ^= 0x01
		der, _ := ECDSARawToDER(sig)
		cases := []struct {
			name string
			sig  []byte
			msg  []byte
		}{
			{"an empty signature is refused", nil, msg},
			{"a signature one byte short is refused", sig[:63], msg},
			{"a signature one byte long is refused", append(bytes.Clone(sig), 0), msg},
			{"a DER signature instead of r‖s is refused", der, msg},
			{"r = 0 is refused", cat(make([]byte, 32), s), msg},
			{"s = 0 is refused", cat(r, make([]byte, 32)), msg},
			{"r = n is refused", cat(fixed(n), s), msg},
			{"s = n is refused", cat(r, fixed(n)), msg},
			{"r = p (≥ n) is refused", cat(fixed(p), s), msg},
			{"r and s swapped are refused", cat(s, r), msg},
			{"a flipped signature bit is refused", flipped, msg},
			{"a signature over a different message is refused", sig, []byte("header.payloaD")},
		}
		if rn := new(big.Int).Add(new(big.Int).SetBytes(r), n); rn.BitLen() <= 256 {
			cases = append(cases, struct {
				name string
				sig  []byte
				msg  []byte
			}{"r + n in place of r is refused", cat(fixed(rn), s), msg})
		}
		for _, tc := range cases {
			t.Run(string(alg)+" "+tc.name, func(t *testing.T) {
				err := joseVerify(alg, pub, tc.msg, tc.sig)
				if !errors.Is(err, ErrBadSignature) {
					t.Errorf("got %v, want ErrBadSignature", err)
				}
			})
		}
		t.Run(string(alg)+" the unmodified signature verifies", func(t *testing.T) {
			if err := joseVerify(alg, pub, msg, sig); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestJWSAlgorithmConfusionRefused(t *testing.T) {
	k := joseKeys(t)
	bpPub := k.bp.Public()
	p256Pub := k.p256.Public()
	bpTok := mustSignJWS(t, k.bp, AlgBP256R1, nil, `{"a":1}`)
	esTok := mustSignJWS(t, k.p256, AlgES256, nil, `{"a":1}`)
	psTok := mustSignJWS(t, k.rsa, AlgPS256, nil, `{"a":1}`)
	// Header claims ES256 but the signature is BP256R1 with the brainpool key: jwx v2's own ES256 verifier
	// accepts this when handed the brainpool key.
	esHeaderBPSig := joseForge(t, `{"alg":"ES256"}`, `{"a":1}`, k.bp, AlgBP256R1)
	cases := []struct {
		name string
		tok  []byte
		alg  JWSAlgorithm
		pub  crypto.PublicKey
	}{
		{"a BP256R1 token verified where ES256 is expected is refused", bpTok, AlgES256, p256Pub},
		{"a BP256R1 token verified as ES256 with its own brainpool key is refused", bpTok, AlgES256, bpPub},
		{"an ES256 token verified where BP256R1 is expected is refused", esTok, AlgBP256R1, bpPub},
		{"an ES256 token verified as BP256R1 with its own P-256 key is refused", esTok, AlgBP256R1, p256Pub},
		{"a PS256 token verified where BP256R1 is expected is refused", psTok, AlgBP256R1, bpPub},
		{"a header saying ES256 over a brainpool signature is refused with the brainpool key", esHeaderBPSig, AlgES256, bpPub},
		{"a BP256R1 token checked with a P-256 key is refused", bpTok, AlgBP256R1, p256Pub},
		{"a BP256R1 token checked with an RSA key is refused", bpTok, AlgBP256R1, k.rsa.Public()},
		{"a PS256 token checked with an EC key is refused", psTok, AlgPS256, bpPub},
		{"a BP256R1 token checked with no key is refused", bpTok, AlgBP256R1, nil},
		{"an unsupported expected algorithm is refused", bpTok, JWSAlgorithm("HS256"), []byte("secret")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := mustParseJWS(t, tc.tok).Verify(tc.alg, tc.pub)
			if !errors.Is(err, ErrAlgorithmMismatch) {
				t.Errorf("got %v, want ErrAlgorithmMismatch", err)
			}
		})
	}

	t.Run("an x5c whose key is not the signing key is refused", func(t *testing.T) {
		tok := mustSignJWS(t, k.bp, AlgBP256R1, map[string]any{"x5c": X5CHeader(k.cardCert)}, "x")
		_, err := mustParseJWS(t, tok).VerifyX5C(AlgBP256R1)
		if !errors.Is(err, ErrBadSignature) {
			t.Errorf("got %v, want ErrBadSignature", err)
		}
	})
	t.Run("a token without x5c cannot be verified by x5c", func(t *testing.T) {
		if _, err := mustParseJWS(t, bpTok).VerifyX5C(AlgBP256R1); err == nil {
			t.Error("VerifyX5C succeeded without x5c")
		}
	})
	t.Run("a token signed by another brainpool key is refused", func(t *testing.T) {
		err := mustParseJWS(t, bpTok).Verify(AlgBP256R1, k.bp2.Public())
		if !errors.Is(err, ErrBadSignature) {
			t.Errorf("got %v, want ErrBadSignature", err)
		}
	})
	t.Run("signing BP256R1 with a P-256 key is refused", func(t *testing.T) {
		if _, err := SignCompactJWS(k.p256, AlgBP256R1, nil, nil); err == nil {
			t.Error("SignCompactJWS succeeded")
		}
	})
	t.Run("signing PS256 with an EC key is refused", func(t *testing.T) {
		if _, err := SignCompactJWS(k.bp, AlgPS256, nil, nil); !errors.Is(err, ErrAlgorithmMismatch) {
			t.Errorf("got %v, want ErrAlgorithmMismatch", err)
		}
	})
	t.Run("a caller-supplied alg header member cannot override the signing algorithm", func(t *testing.T) {
		tok := mustSignJWS(t, k.bp, AlgBP256R1, map[string]any{"alg": "none"}, "x")
		if got := mustParseJWS(t, tok).Header.Alg; got != AlgBP256R1 {
			t.Errorf("alg = %q", got)
		}
	})
}

func TestParseCompactJWSRefusesMalformed(t *testing.T) {
	k := joseKeys(t)
	good := string(mustSignJWS(t, k.bp, AlgBP256R1, map[string]any{"typ": "JWT"}, "p"))
	parts := strings.Split(good, ".")
	h := func(s string) string { return joseB64([]byte(s)) }
	cases := []struct {
		name string
		tok  string
	}{
		{"an empty input is refused", ""},
		{"two parts are refused", parts[0] + "." + parts[1]},
		{"four parts are refused", good + ".x"},
		{"a JWE-shaped input is refused", parts[0] + "..a.b.c"},
		{"padding in the header is refused", parts[0] + "=." + parts[1] + "." + parts[2]},
		{"standard base64 characters are refused", strings.Replace(good, parts[2], parts[2][:10]+"+"+parts[2][11:], 1)},
		{"a line break inside a part is refused", parts[0] + "." + parts[1] + "." + parts[2][:5] + "\n" + parts[2][5:]},
		{"trailing whitespace is refused", good + " "},
		{"an empty signature is refused", parts[0] + "." + parts[1] + "."},
		{"a header that is not JSON is refused", h("nope") + "." + parts[1] + "." + parts[2]},
		{"a header that is a JSON array is refused", h(`["alg"]`) + "." + parts[1] + "." + parts[2]},
		{"a header with trailing data is refused", h(`{"alg":"BP256R1"}{}`) + "." + parts[1] + "." + parts[2]},
		{"a header without alg is refused", h(`{"typ":"JWT"}`) + "." + parts[1] + "." + parts[2]},
		{"alg none is refused", h(`{"alg":"none"}`) + "." + parts[1] + "." + parts[2]},
		{"alg None in another case is refused", h(`{"alg":"None"}`) + "." + parts[1] + "." + parts[2]},
		{"a non-string alg is refused", h(`{"alg":1}`) + "." + parts[1] + "." + parts[2]},
		{"a null alg is refused", h(`{"alg":null}`) + "." + parts[1] + "." + parts[2]},
		{"duplicate alg members are refused", h(`{"alg":"ES256","alg":"BP256R1"}`) + "." + parts[1] + "." + parts[2]},
		{"duplicate kid members are refused", h(`{"alg":"BP256R1","kid":"a","kid":"b"}`) + "." + parts[1] + "." + parts[2]},
		{"a crit extension is refused", h(`{"alg":"BP256R1","crit":["exp"],"exp":1}`) + "." + parts[1] + "." + parts[2]},
		{"b64 false is refused", h(`{"alg":"BP256R1","b64":false}`) + "." + parts[1] + "." + parts[2]},
		{"an empty x5c is refused", h(`{"alg":"BP256R1","x5c":[]}`) + "." + parts[1] + "." + parts[2]},
		{"an x5c in base64url is refused", h(`{"alg":"BP256R1","x5c":["`+base64.RawURLEncoding.EncodeToString(k.cardCert.Raw)+`"]}`) + "." + parts[1] + "." + parts[2]},
		{"an x5c that is not a certificate is refused", h(`{"alg":"BP256R1","x5c":["AAAA"]}`) + "." + parts[1] + "." + parts[2]},
		{"a string exp is refused", h(`{"alg":"BP256R1","exp":"1"}`) + "." + parts[1] + "." + parts[2]},
		{"a header with invalid UTF-8 is refused", joseB64([]byte("{\"alg\":\"BP256R1\",\"kid\":\"\xff\"}")) + "." + parts[1] + "." + parts[2]},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if j, err := ParseCompactJWS([]byte(tc.tok)); err == nil {
				t.Errorf("parsed, header %+v", j.Header)
			}
		})
	}
	t.Run("an empty crit list is accepted", func(t *testing.T) {
		if _, err := ParseCompactJWS([]byte(h(`{"alg":"BP256R1","crit":[]}`) + "." + parts[1] + "." + parts[2])); err != nil {
			t.Error(err)
		}
	})
	t.Run("unknown header members are kept in Raw", func(t *testing.T) {
		j := mustParseJWS(t, []byte(h(`{"alg":"BP256R1","x-tim":{"a":1}}`)+"."+parts[1]+"."+parts[2]))
		if diff := cmp.Diff(`{"a":1}`, string(j.Header.Raw["x-tim"])); diff != "" {
			t.Errorf("Raw[x-tim] (-want +got):\n%s", diff)
		}
	})
	t.Run("the signing input is the first two parts as received", func(t *testing.T) {
		j := mustParseJWS(t, []byte(good))
		if diff := cmp.Diff(parts[0]+"."+parts[1], string(j.SigningInput)); diff != "" {
			t.Error(diff)
		}
	})
}

func TestJWSThroughJWX(t *testing.T) {
	k := joseKeys(t)
	RegisterJWXAlgorithms()
	bpPub := k.bp.Public().(*ecdsa.PublicKey)
	bpTok := mustSignJWS(t, k.bp, AlgBP256R1, map[string]any{"typ": "JWT"}, `{"iss":"https://idp.example","sub":"s"}`)

	t.Run("a BP256R1 token made here verifies through jws.Verify", func(t *testing.T) {
		payload, err := jws.Verify(bpTok, JWXVerifyOption(AlgBP256R1, bpPub))
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(`{"iss":"https://idp.example","sub":"s"}`, string(payload)); diff != "" {
			t.Error(diff)
		}
	})
	t.Run("a BP256R1 token signed by jwx verifies here", func(t *testing.T) {
		for _, key := range []any{k.bp, k.bp.(*SoftwareSigner).Key} {
			tok, err := jws.Sign([]byte("hello"), jws.WithKey(jwa.SignatureAlgorithm(AlgBP256R1), key))
			if err != nil {
				t.Fatalf("jws.Sign with %T: %v", key, err)
			}
			if err := mustParseJWS(t, tok).Verify(AlgBP256R1, bpPub); err != nil {
				t.Errorf("%T: %v", key, err)
			}
		}
	})
	t.Run("an ES256 token signed by jwx verifies here and the reverse", func(t *testing.T) {
		tok, err := jws.Sign([]byte("hello"), jws.WithKey(jwa.ES256, k.p256))
		if err != nil {
			t.Fatal(err)
		}
		if err := mustParseJWS(t, tok).Verify(AlgES256, k.p256.Public()); err != nil {
			t.Error(err)
		}
		ours := mustSignJWS(t, k.p256, AlgES256, nil, "hello")
		if _, err := jws.Verify(ours, jws.WithKey(jwa.ES256, k.p256.Public())); err != nil {
			t.Error(err)
		}
	})

	esHeaderBPSig := joseForge(t, `{"alg":"ES256"}`, `{"a":1}`, k.bp, AlgBP256R1)
	bpHeaderESSig := joseForge(t, `{"alg":"BP256R1"}`, `{"a":1}`, k.p256, AlgES256)
	refused := []struct {
		name string
		tok  []byte
		opt  jws.VerifyOption
	}{
		{"a BP256R1 token where ES256 is expected is refused by the key provider", bpTok, JWXVerifyOption(AlgES256, k.p256.Public())},
		{"a BP256R1 token where ES256 is expected with the brainpool key is refused by the key provider", bpTok, JWXVerifyOption(AlgES256, bpPub)},
		{"an ES256 header over a brainpool signature is refused even by plain jws.WithKey", esHeaderBPSig, jws.WithKey(jwa.ES256, bpPub)},
		{"an ES256 header over a brainpool signature is refused by the key provider", esHeaderBPSig, JWXVerifyOption(AlgES256, bpPub)},
		{"a BP256R1 header over a P-256 signature is refused by the key provider", bpHeaderESSig, JWXVerifyOption(AlgBP256R1, k.p256.Public())},
		{"a BP256R1 token with another brainpool key is refused", bpTok, JWXVerifyOption(AlgBP256R1, k.bp2.Public())},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := jws.Verify(tc.tok, tc.opt); err == nil {
				t.Error("jws.Verify succeeded")
			}
		})
	}

	t.Run("VerifyJWT refuses a header alg other than the expected one before jwx runs", func(t *testing.T) {
		esTok := mustSignJWS(t, k.p256, AlgES256, nil, `{"sub":"s"}`)
		_, err := VerifyJWT(esTok, AlgBP256R1, bpPub)
		if !errors.Is(err, ErrAlgorithmMismatch) {
			t.Errorf("got %v, want ErrAlgorithmMismatch", err)
		}
	})
	t.Run("VerifyJWT refuses alg none", func(t *testing.T) {
		none := joseB64([]byte(`{"alg":"none"}`)) + "." + joseB64([]byte(`{"sub":"s"}`)) + "."
		if _, err := VerifyJWT([]byte(none), AlgBP256R1, bpPub); err == nil {
			t.Error("VerifyJWT accepted alg none")
		}
	})
	t.Run("VerifyJWT accepts a good BP256R1 token", func(t *testing.T) {
		tok, err := VerifyJWT(bpTok, AlgBP256R1, bpPub)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff("https://idp.example", tok.Issuer()); diff != "" {
			t.Error(diff)
		}
	})
}

func TestBP256JWK(t *testing.T) {
	k := joseKeys(t)
	cardPub := k.cardCert.PublicKey.(*ecdsa.PublicKey)

	t.Run("a JWK made here parses back to the same key, kid, use and x5c", func(t *testing.T) {
		b, err := BP256JWK(cardPub, "puk_card", "sig", k.cardCert)
		if err != nil {
			t.Fatal(err)
		}
		pub, kid, use, x5c, err := ParseBP256JWK(b)
		if err != nil {
			t.Fatal(err)
		}
		if !joseSamePublicKey(pub, cardPub) || kid != "puk_card" || use != "sig" || len(x5c) != 1 || !x5c[0].Equal(k.cardCert) {
			t.Errorf("got kid %q use %q x5c %d", kid, use, len(x5c))
		}
	})
	t.Run("a JWK made here is read by jwx and verifies through it", func(t *testing.T) {
		RegisterJWXAlgorithms()
		b, err := BP256JWK(k.bp.Public().(*ecdsa.PublicKey), "k", "sig")
		if err != nil {
			t.Fatal(err)
		}
		key, err := jwk.ParseKey(b)
		if err != nil {
			t.Fatalf("jwk.ParseKey: %v", err)
		}
		tok := mustSignJWS(t, k.bp, AlgBP256R1, nil, "x")
		if _, err := jws.Verify(tok, JWXVerifyOption(AlgBP256R1, key)); err != nil {
			t.Error(err)
		}
	})
	t.Run("BP256JWK refuses an x5c of another key", func(t *testing.T) {
		if _, err := BP256JWK(k.bp.Public().(*ecdsa.PublicKey), "k", "sig", k.cardCert); err == nil {
			t.Error("BP256JWK succeeded")
		}
	})
	t.Run("BP256JWK refuses a P-256 key", func(t *testing.T) {
		if _, err := BP256JWK(k.p256.Public().(*ecdsa.PublicKey), "k", "sig"); err == nil {
			t.Error("BP256JWK succeeded")
		}
	})

	pt := MarshalECPoint(cardPub)
	x, y := joseB64(pt[1:33]), joseB64(pt[33:])
	offY := new(big.Int).Add(cardPub.Y, big.NewInt(1))
	offYb := joseB64(offY.FillBytes(make([]byte, 32)))
	pBytes := joseB64(BrainpoolP256r1().Params().P.FillBytes(make([]byte, 32)))
	x5cCard := base64.StdEncoding.EncodeToString(k.cardCert.Raw)
	otherPt := MarshalECPoint(k.bp.Public().(*ecdsa.PublicKey))
	refused := []struct {
		name string
		jwk  string
	}{
		{"an off-curve point is refused", `{"kty":"EC","crv":"BP-256","x":"` + x + `","y":"` + offYb + `"}`},
		{"a coordinate equal to p is refused", `{"kty":"EC","crv":"BP-256","x":"` + pBytes + `","y":"` + y + `"}`},
		{"a short coordinate is refused", `{"kty":"EC","crv":"BP-256","x":"` + joseB64(pt[2:33]) + `","y":"` + y + `"}`},
		{"a P-256 curve name is refused", `{"kty":"EC","crv":"P-256","x":"` + x + `","y":"` + y + `"}`},
		{"an RSA key type is refused", `{"kty":"RSA","crv":"BP-256","x":"` + x + `","y":"` + y + `"}`},
		{"a private key is refused", `{"kty":"EC","crv":"BP-256","x":"` + x + `","y":"` + y + `","d":"AAAA"}`},
		{"an ES256 alg on a BP-256 key is refused", `{"kty":"EC","crv":"BP-256","alg":"ES256","x":"` + x + `","y":"` + y + `"}`},
		{"duplicate members are refused", `{"kty":"EC","crv":"BP-256","x":"` + x + `","x":"` + x + `","y":"` + y + `"}`},
		{"an x5c of another key is refused", `{"kty":"EC","crv":"BP-256","x":"` + joseB64(otherPt[1:33]) + `","y":"` + joseB64(otherPt[33:]) + `","x5c":["` + x5cCard + `"]}`},
		{"a missing y is refused", `{"kty":"EC","crv":"BP-256","x":"` + x + `"}`},
		{"not JSON is refused", `kty=EC`},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			if _, _, _, _, err := ParseBP256JWK([]byte(tc.jwk)); err == nil {
				t.Error("ParseBP256JWK succeeded")
			}
		})
	}
	t.Run("an off-curve JWK is refused by the jwx verifier too", func(t *testing.T) {
		RegisterJWXAlgorithms()
		key, err := jwk.ParseKey([]byte(`{"kty":"EC","crv":"BP-256","x":"` + x + `","y":"` + offYb + `"}`))
		if err != nil {
			return // refusing it at parse time is fine too
		}
		tok := mustSignJWS(t, k.card, AlgBP256R1, nil, "x")
		if _, err := jws.Verify(tok, JWXVerifyOption(AlgBP256R1, key)); err == nil {
			t.Error("jws.Verify succeeded with an off-curve key")
		}
	})
}

func TestUnwrapNJWT(t *testing.T) {
	cases := []struct {
		name    string
		in      string
		want    string
		wantErr bool
	}{
		{"the njwt member is returned", `{"njwt":"a.b.c"}`, "a.b.c", false},
		{"extra members are refused", `{"njwt":"a.b.c","x":1}`, "", true},
		{"duplicate njwt members are refused", `{"njwt":"a.b.c","njwt":"d.e.f"}`, "", true},
		{"a non-string njwt is refused", `{"njwt":1}`, "", true},
		{"a missing njwt is refused", `{}`, "", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := UnwrapNJWT([]byte(tc.in))
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if diff := cmp.Diff(tc.want, string(got)); diff != "" {
				t.Error(diff)
			}
		})
	}
}

// --- OpenSSL interop ---

func joseOpenSSL(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("openssl")
	if err != nil {
		t.Fatal("openssl is required for the interop tests (make test installs it via scripts/tools.sh)")
	}
	return path
}

func joseRun(t *testing.T, name string, args ...string) ([]byte, error) {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return out, errors.New(strings.TrimSpace(string(out)) + ": " + err.Error())
	}
	return out, nil
}

func joseWrite(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func josePublicPEM(t *testing.T, pub crypto.PublicKey) []byte {
	t.Helper()
	der, err := MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

func TestBP256R1OpenSSLInterop(t *testing.T) {
	openssl := joseOpenSSL(t)
	k := joseKeys(t)
	freshPEM, err := MarshalPrivateKeyPEM(k.bp)
	if err != nil {
		t.Fatal(err)
	}
	keys := []struct {
		name    string
		signer  crypto.Signer
		keyFile func(dir string) string
	}{
		{"the gematik HBA test key", k.card, func(string) string { return gematikPath("pki", "cards", joseTestCard, "key.pem") }},
		{"a fresh key written with MarshalPrivateKeyPEM", k.bp, func(dir string) string { return joseWrite(t, dir, "fresh.pem", freshPEM) }},
	}
	for _, key := range keys {
		pub := key.signer.Public().(*ecdsa.PublicKey)
		t.Run("a BP256R1 signature made here verifies with openssl, "+key.name, func(t *testing.T) {
			dir := t.TempDir()
			msg := []byte("eyJhbGciOiJCUDI1NlIxIn0.eyJzdWIiOiJ4In0")
			raw, err := SignBP256R1(key.signer, msg)
			if err != nil {
				t.Fatal(err)
			}
			der, err := ECDSARawToDER(raw)
			if err != nil {
				t.Fatal(err)
			}
			pubFile := joseWrite(t, dir, "pub.pem", josePublicPEM(t, pub))
			sigFile := joseWrite(t, dir, "sig.der", der)
			msgFile := joseWrite(t, dir, "msg", msg)
			out, err := joseRun(t, openssl, "dgst", "-sha256", "-verify", pubFile, "-signature", sigFile, msgFile)
			if err != nil || !strings.Contains(string(out), "Verified OK") {
				t.Fatalf("openssl verify: %s %v", out, err)
			}
			badFile := joseWrite(t, dir, "bad", append(bytes.Clone(msg), '!'))
			if out, err := joseRun(t, openssl, "dgst", "-sha256", "-verify", pubFile, "-signature", sigFile, badFile); err == nil {
				t.Errorf("openssl verified a changed message: %s", out)
			}
		})
		t.Run("a signature made by openssl verifies here, "+key.name, func(t *testing.T) {
			dir := t.TempDir()
			msg := []byte("signed by openssl")
			msgFile := joseWrite(t, dir, "msg", msg)
			sigFile := filepath.Join(dir, "sig.der")
			if out, err := joseRun(t, openssl, "dgst", "-sha256", "-sign", key.keyFile(dir), "-out", sigFile, msgFile); err != nil {
				t.Fatalf("openssl sign: %s %v", out, err)
			}
			raw, err := ECDSADERToRaw(mustReadFile(t, sigFile), 32)
			if err != nil {
				t.Fatal(err)
			}
			if err := VerifyBP256R1(pub, msg, raw); err != nil {
				t.Errorf("VerifyBP256R1: %v", err)
			}
			if err := VerifyBP256R1(pub, []byte("signed by opensslX"), raw); !errors.Is(err, ErrBadSignature) {
				t.Errorf("changed message: got %v, want ErrBadSignature", err)
			}
		})
	}
}

func TestJWSGematikFederationListSample(t *testing.T) {
	j := mustParseJWS(t, mustReadFile(t, gematikPath("vzd", "samples", "federationList-TU-v1650.jws")))
	leaf, err := j.VerifyX5C(AlgBP256R1)
	if err != nil {
		t.Fatalf("VerifyX5C: %v", err)
	}
	if !leaf.HasRole(RoleVZDTI) {
		t.Errorf("federation-list signer %q lacks role oid_vzd_ti", leaf.Subject.String())
	}
	tj := mustParseJWS(t, joseTamper(j.Raw, len(j.SigningInput)-100))
	if _, err := tj.VerifyX5C(AlgBP256R1); !errors.Is(err, ErrBadSignature) {
		t.Errorf("tampered list: got %v, want ErrBadSignature", err)
	}
}
