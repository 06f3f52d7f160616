package devidp

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/timstack/timstack/certs"
)

// testClock is a settable clock shared by the IDP and its OCSP responder.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// testEnv is one dev IDP served on loopback with the embedded keys, test CAs and a test OCSP responder.
type testEnv struct {
	idp   *IDP
	srv   *httptest.Server
	clock *testClock
	ocsp  *TestOCSP
	trust *certs.TrustStore // what an RP trusts (a separate store from the IDP's card trust)
}

const (
	testClient   = "timstack-test-client"
	testRedirect = "http://127.0.0.1:9/callback"
)

func newEnv(t *testing.T) *testEnv {
	t.Helper()
	cardTrust, err := EmbeddedTestTrust()
	if err != nil {
		t.Fatal(err)
	}
	return newEnvWith(t, cardTrust)
}

// newEnvWith serves a dev IDP whose cards must chain to cardTrust.
func newEnvWith(t *testing.T, cardTrust *certs.TrustStore) *testEnv {
	t.Helper()
	clock := &testClock{t: time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)}
	keys, err := EmbeddedTestKeys()
	if err != nil {
		t.Fatal(err)
	}
	ocsp, err := NewTestOCSP(cardTrust, clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(nil)
	idp, err := New(Config{Issuer: "http://" + srv.Listener.Addr().String(), Keys: keys, CardTrust: cardTrust,
		Revocation: ocsp, Now: clock.Now, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	srv.Config.Handler = idp.Handler()
	srv.Start()
	t.Cleanup(srv.Close)
	rpTrust, err := EmbeddedTestTrust()
	if err != nil {
		t.Fatal(err)
	}
	return &testEnv{idp: idp, srv: srv, clock: clock, ocsp: ocsp, trust: rpTrust}
}

func gematikDir(parts ...string) string {
	return filepath.Join(append([]string{"..", "..", "testdata", "gematik", "pki"}, parts...)...)
}

func mustCard(t *testing.T, parts ...string) *Card {
	t.Helper()
	c, err := LoadCard(gematikDir(parts...))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// pkce is the client's PKCE, state and nonce for one login.
type pkce struct{ verifier, state, nonce string }

func newPKCE() pkce {
	return pkce{verifier: randomID(32), state: randomID(16), nonce: randomID(16)}
}

func (e *testEnv) authURL(p pkce) string {
	q := url.Values{"client_id": {testClient}, "response_type": {"code"}, "redirect_uri": {testRedirect}, "state": {p.state},
		"code_challenge": {S256(p.verifier)}, "code_challenge_method": {"S256"}, "scope": {"openid ti-messenger"}, "nonce": {p.nonce}}
	return e.srv.URL + PathAuth + "?" + q.Encode()
}

// idpKeys fetches discovery and the JWKs as a relying party would, checking the discovery signature and
// that both IDP signers chain to GEM.KOMP-CA51 as C.FD.SIG with role IDP-Dienst.
func (e *testEnv) idpKeys(t *testing.T) (sig, enc *ecdsa.PublicKey) {
	t.Helper()
	resp, err := e.srv.Client().Get(e.srv.URL + PathDiscovery)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "application/jwt" {
		t.Fatalf("discovery Content-Type %q", ct)
	}
	dj, err := certs.ParseCompactJWS(raw)
	if err != nil {
		t.Fatal(err)
	}
	if dj.Header.Kid != "puk_disc_sig" || dj.Header.Typ != "JWT" || dj.Header.Alg != certs.AlgBP256R1 {
		t.Fatalf("discovery header %+v", dj.Header)
	}
	discCert, err := dj.VerifyX5C(certs.AlgBP256R1)
	if err != nil {
		t.Fatal(err)
	}
	e.verifySigner(t, discCert)
	var disc map[string]any
	if err := json.Unmarshal(dj.Payload, &disc); err != nil {
		t.Fatal(err)
	}
	if disc["issuer"] != e.srv.URL || disc["jwks_uri"] != e.srv.URL+PathJWKS {
		t.Errorf("discovery issuer/jwks_uri: %v %v", disc["issuer"], disc["jwks_uri"])
	}
	if exp, iat := disc["exp"].(float64), disc["iat"].(float64); exp-iat != 24*3600 || int64(iat) != e.clock.Now().Unix() {
		t.Errorf("discovery exp-iat = %v, iat %v", exp-iat, iat)
	}
	get := func(u string) []byte {
		resp, err := e.srv.Client().Get(u)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return b
	}
	sig, kid, use, x5c, err := certs.ParseBP256JWK(get(disc["uri_puk_idp_sig"].(string)))
	if err != nil || kid != "puk_idp_sig" || use != "sig" || len(x5c) != 1 {
		t.Fatalf("puk_idp_sig: %v %q %q %d", err, kid, use, len(x5c))
	}
	e.verifySigner(t, x5c[0])
	enc, kid, use, x5c, err = certs.ParseBP256JWK(get(disc["uri_puk_idp_enc"].(string)))
	if err != nil || kid != "puk_idp_enc" || use != "enc" || len(x5c) != 0 {
		t.Fatalf("puk_idp_enc: %v %q %q %d", err, kid, use, len(x5c))
	}
	var jwks struct{ Keys []json.RawMessage }
	if err := json.Unmarshal(get(e.srv.URL+PathJWKS), &jwks); err != nil || len(jwks.Keys) != 2 {
		t.Fatalf("jwks: %v, %d keys", err, len(jwks.Keys))
	}
	return sig, enc
}

func (e *testEnv) verifySigner(t *testing.T, c *certs.Certificate) {
	t.Helper()
	if _, err := e.trust.Verify(context.Background(), c, certs.VerifyOptions{At: e.clock.Now(), KeyUsage: certs.KeyUsageDigitalSignature,
		CertificateTypes: []certs.CertificateType{certs.CertFDSIG}, Role: certs.RoleIDPDienst}); err != nil {
		t.Fatalf("IDP signer %s: %v", c.Subject.String(), err)
	}
}

// tokenRequest is the client's token request; fields are overridable per test.
type tokenRequest struct {
	clientID, code, redirect, verifier string
	tokenKey                           []byte
}

func (e *testEnv) postToken(t *testing.T, enc *ecdsa.PublicKey, tr tokenRequest) (*http.Response, []byte) {
	t.Helper()
	kv, _ := json.Marshal(KeyVerifier{TokenKey: base64.RawURLEncoding.EncodeToString(tr.tokenKey), CodeVerifier: tr.verifier})
	kvJWE, err := certs.EncryptECDHES(enc, kv, map[string]any{"cty": "JSON"})
	if err != nil {
		t.Fatal(err)
	}
	form := url.Values{"grant_type": {"authorization_code"}, "client_id": {tr.clientID}, "code": {tr.code},
		"redirect_uri": {tr.redirect}, "key_verifier": {string(kvJWE)}}
	resp, err := e.srv.Client().PostForm(e.srv.URL+PathToken, form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, body
}

// openToken decrypts a token JWE with token_key, unwraps njwt and verifies the inner JWS with puk_idp_sig.
func openToken(t *testing.T, tokenKey []byte, jwe string, sig *ecdsa.PublicKey, typ string) ([]byte, map[string]any, int64) {
	t.Helper()
	plain, hdr, err := certs.DecryptDir(tokenKey, []byte(jwe))
	if err != nil {
		t.Fatal(err)
	}
	if hdr["cty"] != "NJWT" {
		t.Errorf("JWE cty %v", hdr["cty"])
	}
	hexp, ok := numberClaim(hdr["exp"])
	if !ok {
		t.Errorf("JWE header without exp")
	}
	inner, err := certs.UnwrapNJWT(plain)
	if err != nil {
		t.Fatal(err)
	}
	j, err := certs.ParseCompactJWS(inner)
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Verify(certs.AlgBP256R1, sig); err != nil {
		t.Fatalf("token signature: %v", err)
	}
	if j.Header.Typ != typ || j.Header.Kid != "puk_idp_sig" {
		t.Errorf("token header typ %q kid %q", j.Header.Typ, j.Header.Kid)
	}
	var claims map[string]any
	dec := json.NewDecoder(bytes.NewReader(j.Payload))
	dec.UseNumber()
	if err := dec.Decode(&claims); err != nil {
		t.Fatal(err)
	}
	return inner, claims, hexp
}

// login runs the whole flow with card and returns the verified inner ID token, its claims and the access
// token's claims.
func (e *testEnv) login(t *testing.T, card *Card) (idJWS []byte, id, at map[string]any) {
	t.Helper()
	sig, enc := e.idpKeys(t)
	p := newPKCE()
	code, state, err := Authenticate(context.Background(), e.srv.Client(), e.authURL(p), card)
	if err != nil {
		t.Fatalf("Authenticate: %v", err)
	}
	if state != p.state {
		t.Fatalf("state %q, want %q", state, p.state)
	}
	tk := sha256.Sum256([]byte(randomID(16)))
	tokenKey := tk[:]
	resp, body := e.postToken(t, enc, tokenRequest{clientID: testClient, code: code, redirect: testRedirect, verifier: p.verifier, tokenKey: tokenKey})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("token: %s %s", resp.Status, body)
	}
	var tr TokenResponse
	if err := json.Unmarshal(body, &tr); err != nil {
		t.Fatal(err)
	}
	if tr.ExpiresIn != 300 || tr.TokenType != "Bearer" {
		t.Errorf("token response %d %q", tr.ExpiresIn, tr.TokenType)
	}
	idJWS, id, idHdrExp := openToken(t, tokenKey, tr.IDToken, sig, "JWT")
	atJWS, at, _ := openToken(t, tokenKey, tr.AccessToken, sig, "at+JWT")
	if idHdrExp != num(t, id["exp"]) {
		t.Errorf("ID token JWE exp %d != claim exp %v", idHdrExp, id["exp"])
	}
	h := sha256.Sum256(atJWS)
	if id["at_hash"] != base64.RawURLEncoding.EncodeToString(h[:16]) {
		t.Errorf("at_hash %v does not cover the inner access token", id["at_hash"])
	}
	if id["nonce"] != p.nonce {
		t.Errorf("nonce %v, want %q", id["nonce"], p.nonce)
	}
	return idJWS, id, at
}

func num(t *testing.T, v any) int64 {
	t.Helper()
	n, ok := numberClaim(v)
	if !ok {
		t.Fatalf("%v is not an integer", v)
	}
	return n
}

func TestLoginRoundTrip(t *testing.T) {
	tests := []struct {
		name, dir                      string
		idNummer, professionOID        string
		organizationName               any
		givenName, familyName, display string
	}{
		{"an HBA (ECC) logs in as Arzt with organizationName null", "80276883110000129084-2-C_HP_AUT_E256",
			"1-HBA-Testkarte-883110000129084", "1.2.276.0.76.4.30", nil, "Günther Graf", "Otís", "Günther Graf Otís"},
		{"an SMC-B logs in as Praxis with its CN as organizationName", "80276883110000129077-2-C_SMCB_HCI_AUT_E256",
			"1-SMC-B-Testkarte-883110000129077", "1.2.276.0.76.4.50", "Praxis Rainer Graf d' AgóstinoTEST-ONLY", "Rainer", "Agóstino", "Rainer Agóstino"},
		{"an eGK logs in as insured with the KVNR as idNummer", "80276883110000129089-2-C_CH_AUT_E256",
			"X110506918", "1.2.276.0.76.4.49", nil, "Sam", "Dåmmer-Meningham", "Sam Dåmmer-Meningham"},
		{"an RSA HBA signs with PS256 and logs in", "80276883110000139364-C_HP_AUT_R2048",
			"10-HBA-Testkarte-883110000139364", "1.2.276.0.76.4.232", nil, "Alexander Freiherr", "Wesseltoft", "Alexander Freiherr Wesseltoft"},
	}
	e := newEnv(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, id, at := e.login(t, mustCard(t, "cards", tc.dir))
			now := e.clock.Now().Unix()
			for _, c := range []struct {
				claim string
				want  any
			}{
				{"iss", e.srv.URL}, {"aud", testClient}, {"azp", testClient}, {"idNummer", tc.idNummer},
				{"professionOID", tc.professionOID}, {"organizationName", tc.organizationName}, {"acr", ACR},
				{"given_name", tc.givenName}, {"family_name", tc.familyName}, {"display_name", tc.display},
			} {
				if got := id[c.claim]; got != c.want {
					t.Errorf("ID token %s = %#v, want %#v", c.claim, got, c.want)
				}
			}
			if _, ok := id["organizationName"]; !ok {
				t.Error("ID token lacks organizationName (must be present, null for persons)")
			}
			if num(t, id["iat"]) != now || num(t, id["exp"]) != now+300 || num(t, id["auth_time"]) != now {
				t.Errorf("iat/exp/auth_time %v %v %v, want %d, +300, %d", id["iat"], id["exp"], id["auth_time"], now, now)
			}
			if amr, _ := json.Marshal(id["amr"]); string(amr) != `["mfa","sc","pin"]` {
				t.Errorf("amr %s", amr)
			}
			wantSub := e.idp.pairwiseSub(testClient, tc.idNummer)
			if id["sub"] != wantSub || at["sub"] != wantSub {
				t.Errorf("sub %v / %v, want %s", id["sub"], at["sub"], wantSub)
			}
			if id["jti"] == "" || id["jti"] == at["jti"] {
				t.Errorf("jti %v / %v: want distinct non-empty", id["jti"], at["jti"])
			}
			if at["client_id"] != testClient || at["scope"] != "openid ti-messenger" || at["idNummer"] != tc.idNummer {
				t.Errorf("access token claims %v", at)
			}
		})
	}
}

func TestPairwiseSubDiffersPerClient(t *testing.T) {
	e := newEnv(t)
	if a, b := e.idp.pairwiseSub("a", "1-x"), e.idp.pairwiseSub("b", "1-x"); a == b {
		t.Fatal("sub is the same for two clients")
	}
}

// refusedBy runs Authenticate with card and returns the refusal.
func refusedBy(t *testing.T, e *testEnv, card *Card) *RefusalError {
	t.Helper()
	_, _, err := Authenticate(context.Background(), e.srv.Client(), e.authURL(newPKCE()), card)
	var re *RefusalError
	if !errors.As(err, &re) || !errors.Is(err, ErrRefused) {
		t.Fatalf("Authenticate = %v, want a refusal", err)
	}
	return re
}

func TestInvalidCardsAreRefusedWithTheReason(t *testing.T) {
	tests := []struct {
		name, dir, reason string
		revoke            bool
	}{
		{"an expired SMC-B is refused as expired", "smcb-idp-expired-ecc", "certificate expired", false},
		{"a revoked SMC-B is refused after the OCSP answer", "smcb-idp-revoked-2-ecc", "certificate revoked", true},
		{"a self-signed SMC-B is refused as self-signed", "smcb-idp-selfsigned", "self-signed", false},
		{"an HBA of an unknown CA is refused as unknown issuer", "hba-idp-unknown-issuer-2-ecc", "issuer not in trust store", false},
		{"an eGK with a broken CA signature is refused for its signature", "versicherter-idp-invalidSignature-ecc-2", "signature verification failed", false},
		{"an eGK with an unknown profession OID is refused", "egk-idp-profid-invoid1-ecc-2", "profession", false},
	}
	e := newEnv(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			card := mustCard(t, "cards-invalid", tc.dir)
			if tc.revoke {
				e.ocsp.Revoke(card.Cert)
			}
			re := refusedBy(t, e, card)
			t.Logf("refusal: %s", re.Description)
			if re.Status != http.StatusFound || re.Code != "access_denied" || !strings.Contains(re.Description, tc.reason) {
				t.Errorf("refusal %d %s %q, want 302 access_denied naming %q", re.Status, re.Code, re.Description, tc.reason)
			}
		})
	}
}

func TestRevocationMattersForAValidCard(t *testing.T) {
	e := newEnv(t)
	card := mustCard(t, "cards", "80276883110000129068-2-C_SMCB_HCI_AUT_E256")
	e.login(t, card)
	e.ocsp.Revoke(card.Cert)
	if re := refusedBy(t, e, card); !strings.Contains(re.Description, "revoked") {
		t.Errorf("after revocation: %q", re.Description)
	}
}

func TestACardWithoutIDNummerIsRefused(t *testing.T) {
	e := newEnv(t)
	re := refusedBy(t, e, mustCard(t, "cards", "egk-idp-idnumber-missing1-ecc-2"))
	if !strings.Contains(re.Description, "no idNummer") {
		t.Errorf("refusal %q", re.Description)
	}
}

// challengeFor fetches a challenge and returns it with its exp.
func (e *testEnv) challengeFor(t *testing.T, p pkce) ([]byte, int64) {
	t.Helper()
	resp, err := e.srv.Client().Get(e.authURL(p))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Challenge   string         `json:"challenge"`
		UserConsent map[string]any `json:"user_consent"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("challenge: %s %v", resp.Status, err)
	}
	if body.UserConsent["requested_claims"] == nil {
		t.Error("challenge without user_consent.requested_claims")
	}
	j, err := certs.ParseCompactJWS([]byte(body.Challenge))
	if err != nil {
		t.Fatal(err)
	}
	var c challengeClaims
	if err := json.Unmarshal(j.Payload, &c); err != nil {
		t.Fatal(err)
	}
	return []byte(body.Challenge), c.Exp
}

// postSigned POSTs a raw signed_challenge and returns the refusal or the code.
func (e *testEnv) postSigned(t *testing.T, jwe string) (code string, err error) {
	t.Helper()
	code, _, err = postSignedChallenge(context.Background(), e.srv.Client(), e.srv.URL+PathAuth, jwe)
	return code, err
}

func TestSignedChallengeRefusals(t *testing.T) {
	card := mustCard(t, "cards", "80276883110000129084-2-C_HP_AUT_E256")
	tests := []struct {
		name   string
		status int
		reason string
		// build returns the signed_challenge to send; it may advance the clock or use the challenge first.
		build func(t *testing.T, e *testEnv, enc *ecdsa.PublicKey, ch []byte, exp int64) string
	}{
		{"a tampered JWE does not decrypt", http.StatusBadRequest, "cannot decrypt",
			func(t *testing.T, e *testEnv, enc *ecdsa.PublicKey, ch []byte, exp int64) string {
				jwe := string(mustEncrypt(t, enc, mustSign(t, card, ch), exp))
				parts := strings.Split(jwe, ".")
				ct := []byte(parts[3])
				flipB64(ct, 5)
				parts[3] = string(ct)
				return strings.Join(parts, ".")
			}},
		{"a tampered card signature is refused as a bad signature", http.StatusFound, "bad signature",
			func(t *testing.T, e *testEnv, enc *ecdsa.PublicKey, ch []byte, exp int64) string {
				s := mustSign(t, card, ch)
				flipB64(s, len(s)-10)
				return string(mustEncrypt(t, enc, s, exp))
			}},
		{"a challenge signed by someone else is not ours", http.StatusBadRequest, "not issued by this IDP",
			func(t *testing.T, e *testEnv, enc *ecdsa.PublicKey, ch []byte, exp int64) string {
				j, _ := certs.ParseCompactJWS(ch)
				forged, err := certs.SignCompactJWS(card.Key, certs.AlgBP256R1, map[string]any{"typ": "JWT", "kid": "puk_idp_sig"}, j.Payload)
				if err != nil {
					t.Fatal(err)
				}
				return string(mustEncrypt(t, enc, mustSign(t, card, forged), exp))
			}},
		{"an expired challenge is refused", http.StatusFound, "challenge expired",
			func(t *testing.T, e *testEnv, enc *ecdsa.PublicKey, ch []byte, exp int64) string {
				e.clock.Advance(ChallengeLifetime + time.Second)
				return string(mustEncrypt(t, enc, mustSign(t, card, ch), exp))
			}},
		{"a reused challenge is refused", http.StatusFound, "already used",
			func(t *testing.T, e *testEnv, enc *ecdsa.PublicKey, ch []byte, exp int64) string {
				jwe := string(mustEncrypt(t, enc, mustSign(t, card, ch), exp))
				if _, err := e.postSigned(t, jwe); err != nil {
					t.Fatalf("first use: %v", err)
				}
				return jwe
			}},
		{"a JWE header exp other than the challenge's is refused", http.StatusFound, "does not equal the challenge's exp",
			func(t *testing.T, e *testEnv, enc *ecdsa.PublicKey, ch []byte, exp int64) string {
				return string(mustEncrypt(t, enc, mustSign(t, card, ch), exp+1))
			}},
		{"a JWE without cty NJWT is refused", http.StatusBadRequest, "want NJWT",
			func(t *testing.T, e *testEnv, enc *ecdsa.PublicKey, ch []byte, exp int64) string {
				plain, _ := json.Marshal(map[string]string{"njwt": string(mustSign(t, card, ch))})
				jwe, err := certs.EncryptECDHES(enc, plain, map[string]any{"exp": exp})
				if err != nil {
					t.Fatal(err)
				}
				return string(jwe)
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			_, enc := e.idpKeys(t)
			ch, exp := e.challengeFor(t, newPKCE())
			_, err := e.postSigned(t, tc.build(t, e, enc, ch, exp))
			var re *RefusalError
			if !errors.As(err, &re) || re.Status != tc.status || !strings.Contains(re.Description, tc.reason) {
				t.Fatalf("got %v, want a %d refusal naming %q", err, tc.status, tc.reason)
			}
		})
	}
}

// flipB64 replaces the base64url character at i by another one, so the encoding stays valid and only the
// decoded bytes change (a middle character: the last one may carry padding bits).
func flipB64(b []byte, i int) {
	if b[i] == 'A' {
		b[i] = 'B'
	} else {
		b[i] = 'A'
	}
}

func mustSign(t *testing.T, card *Card, ch []byte) []byte {
	t.Helper()
	s, err := SignChallenge(card, ch)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mustEncrypt(t *testing.T, enc *ecdsa.PublicKey, signed []byte, exp int64) []byte {
	t.Helper()
	jwe, err := EncryptSignedChallenge(enc, signed, exp)
	if err != nil {
		t.Fatal(err)
	}
	return jwe
}

func TestTokenRequestRefusals(t *testing.T) {
	card := mustCard(t, "cards", "80276883110000129077-2-C_SMCB_HCI_AUT_E256")
	tests := []struct {
		name   string
		reason string
		// mutate changes the token request; it may redeem the code first or advance the clock.
		mutate func(t *testing.T, e *testEnv, enc *ecdsa.PublicKey, tr *tokenRequest)
	}{
		{"a wrong code_verifier fails PKCE", "PKCE", func(_ *testing.T, _ *testEnv, _ *ecdsa.PublicKey, tr *tokenRequest) {
			tr.verifier = randomID(32)
		}},
		{"a replayed code is refused", "already redeemed", func(t *testing.T, e *testEnv, enc *ecdsa.PublicKey, tr *tokenRequest) {
			if resp, body := e.postToken(t, enc, *tr); resp.StatusCode != http.StatusOK {
				t.Fatalf("first redemption: %s %s", resp.Status, body)
			}
		}},
		{"a different redirect_uri is refused", "redirect_uri", func(_ *testing.T, _ *testEnv, _ *ecdsa.PublicKey, tr *tokenRequest) {
			tr.redirect = "http://127.0.0.1:9/other"
		}},
		{"a different client_id is refused", "client_id", func(_ *testing.T, _ *testEnv, _ *ecdsa.PublicKey, tr *tokenRequest) {
			tr.clientID = "someone-else"
		}},
		{"an expired code is refused", "code expired", func(_ *testing.T, e *testEnv, _ *ecdsa.PublicKey, _ *tokenRequest) {
			e.clock.Advance(CodeLifetime + time.Second)
		}},
		{"a tampered code is refused", "tampered", func(_ *testing.T, _ *testEnv, _ *ecdsa.PublicKey, tr *tokenRequest) {
			b := []byte(tr.code)
			flipB64(b, len(b)-10)
			tr.code = string(b)
		}},
		{"a short token_key is refused", "token_key", func(_ *testing.T, _ *testEnv, _ *ecdsa.PublicKey, tr *tokenRequest) {
			tr.tokenKey = tr.tokenKey[:16]
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			_, enc := e.idpKeys(t)
			p := newPKCE()
			code, _, err := Authenticate(context.Background(), e.srv.Client(), e.authURL(p), card)
			if err != nil {
				t.Fatal(err)
			}
			tr := tokenRequest{clientID: testClient, code: code, redirect: testRedirect, verifier: p.verifier, tokenKey: bytes.Repeat([]byte{7}, 32)}
			tc.mutate(t, e, enc, &tr)
			resp, body := e.postToken(t, enc, tr)
			var eb errorBody
			if resp.StatusCode != http.StatusBadRequest || json.Unmarshal(body, &eb) != nil || !strings.Contains(eb.ErrorDescription, tc.reason) {
				t.Fatalf("token: %s %s, want 400 naming %q", resp.Status, body, tc.reason)
			}
		})
	}
}

func TestAuthorizationRequestRefusals(t *testing.T) {
	e := newEnv(t)
	base := func() url.Values {
		u, _ := url.Parse(e.authURL(newPKCE()))
		return u.Query()
	}
	tests := []struct {
		name, param, value, reason string
	}{
		{"plain PKCE is refused", "code_challenge_method", "plain", "S256"},
		{"a missing code_challenge is refused", "code_challenge", "", "code_challenge missing"},
		{"a scope without ti-messenger is refused", "scope", "openid", "ti-messenger"},
		{"a scope without openid is refused", "scope", "ti-messenger", "openid"},
		{"an unknown scope is refused", "scope", "openid ti-messenger e-rezept", "e-rezept"},
		{"response_type token is refused", "response_type", "token", "response_type"},
		{"a relative redirect_uri is refused", "redirect_uri", "/cb", "redirect_uri"},
		{"a missing state is refused", "state", "", "state missing"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q := base()
			q.Set(tc.param, tc.value)
			resp, err := e.srv.Client().Get(e.srv.URL + PathAuth + "?" + q.Encode())
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var eb errorBody
			if err := json.NewDecoder(resp.Body).Decode(&eb); err != nil || resp.StatusCode != http.StatusBadRequest || !strings.Contains(eb.ErrorDescription, tc.reason) {
				t.Fatalf("%s %+v, want 400 naming %q", resp.Status, eb, tc.reason)
			}
		})
	}
}

func TestNewRefusesWhatIsNotADevSetup(t *testing.T) {
	keys, err := EmbeddedTestKeys()
	if err != nil {
		t.Fatal(err)
	}
	trust, _ := EmbeddedTestTrust()
	// A production-looking key pair: self-signed, no TEST-ONLY anywhere.
	key, err := certs.GenerateKey(certs.KeyBrainpoolP256r1)
	if err != nil {
		t.Fatal(err)
	}
	prod, err := certs.CreateCertificate(&certs.CertificateTemplate{Subject: certs.Name{CommonName: "IDP Sig 1", Organization: "gematik GmbH", Country: "DE"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), KeyUsage: certs.KeyUsageDigitalSignature, MaxPathLen: -1}, key.Public(), nil, key)
	if err != nil {
		t.Fatal(err)
	}
	prodKeys := *keys
	prodKeys.IDPSig = KeyPair{Cert: prod, Key: key}
	mismatched := *keys
	mismatched.IDPEnc.Key = keys.IDPSig.Key
	tests := []struct {
		name   string
		cfg    Config
		reason string
	}{
		{"keys whose certificate is not TEST-ONLY are refused", Config{Issuer: "http://127.0.0.1:8580", Keys: &prodKeys, CardTrust: trust}, "not TEST-ONLY"},
		{"a key that does not belong to its certificate is refused", Config{Issuer: "http://127.0.0.1:8580", Keys: &mismatched, CardTrust: trust}, "does not belong"},
		{"a public issuer is refused", Config{Issuer: "https://idp.example.org", Keys: keys, CardTrust: trust}, "loopback"},
		{"an issuer with a path is refused", Config{Issuer: "http://127.0.0.1:8580/idp", Keys: keys, CardTrust: trust}, "scheme://host:port"},
		{"keys outside their validity are refused", Config{Issuer: "http://127.0.0.1:8580", Keys: keys, CardTrust: trust,
			Now: func() time.Time { return time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC) }}, "not valid at"},
		{"a missing card trust store is refused", Config{Issuer: "http://localhost:8580", Keys: keys}, "trust"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := New(tc.cfg); err == nil || !strings.Contains(err.Error(), tc.reason) {
				t.Fatalf("New = %v, want an error naming %q", err, tc.reason)
			}
		})
	}
}

func TestNewLogsABanner(t *testing.T) {
	keys, _ := EmbeddedTestKeys()
	trust, _ := EmbeddedTestTrust()
	var buf bytes.Buffer
	if _, err := New(Config{Issuer: "http://[::1]:8580", Keys: keys, CardTrust: trust, Logger: slog.New(slog.NewTextHandler(&buf, nil))}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "NOT FOR PRODUCTION") || !strings.Contains(buf.String(), "revocation is NOT checked") {
		t.Errorf("log lacks the banner or the OCSP warning:\n%s", buf.String())
	}
}

func TestLoadKeysReadsTheRepositoryCopy(t *testing.T) {
	keys, err := LoadKeys(gematikDir("idp"))
	if err != nil {
		t.Fatal(err)
	}
	emb, _ := EmbeddedTestKeys()
	if !keys.IDPSig.Cert.Equal(emb.IDPSig.Cert) || !keys.IDPEnc.Cert.Equal(emb.IDPEnc.Cert) || !keys.DiscSig.Cert.Equal(emb.DiscSig.Cert) {
		t.Error("embedded keys differ from testdata/gematik/pki/idp")
	}
}

// TestEveryGematikTestCardLogsIn runs the whole flow with every card of testdata/gematik/pki/cards against
// the CAs of the verified test TSL (it lists GEM.HBA-CA44 and GEM.EGK-CA41, which pki/ca lacks). Only the
// eGKs without an insurance number are refused, for the missing idNummer.
func TestEveryGematikTestCardLogsIn(t *testing.T) {
	trust := certs.NewTrustStore()
	// The TSL signer is checked while the (long stale) list was current; freshness is waived for test data.
	if err := trust.AddTSLFile(gematikDir("tsl", "TSL_default.xml"), gematikDir("ca"), time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), time.Now(), true); err != nil {
		t.Fatal(err)
	}
	e := newEnvWith(t, trust)
	entries, err := os.ReadDir(gematikDir("cards"))
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range entries {
		t.Run(d.Name(), func(t *testing.T) {
			card := mustCard(t, "cards", d.Name())
			if strings.Contains(d.Name(), "idnumber-missing") {
				if re := refusedBy(t, e, card); !strings.Contains(re.Description, "no idNummer") {
					t.Errorf("refusal %q, want the missing idNummer", re.Description)
				}
				return
			}
			_, id, _ := e.login(t, card)
			want := card.Cert.TelematikID()
			if card.Cert.CertificateType() == certs.CertCHAUT {
				want = card.Cert.KVNR()
			}
			if id["idNummer"] != want || id["professionOID"] != card.Cert.ProfessionOIDs()[0] {
				t.Errorf("idNummer %v professionOID %v, want %s %s", id["idNummer"], id["professionOID"], want, card.Cert.ProfessionOIDs()[0])
			}
		})
	}
}

func TestDevIdentityCompletesTheLoginWithoutAnAuthenticator(t *testing.T) {
	cards, err := EmbeddedTestCards()
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t)
	e.idp.devCards = cards
	noFollow := *e.srv.Client()
	noFollow.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	get := func(name string) (*http.Response, pkce) {
		p := newPKCE()
		resp, err := noFollow.Get(e.authURL(p) + "&dev_identity=" + url.QueryEscape(name))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp, p
	}
	tests := []struct{ name, idNummer, professionOID string }{
		{"hba-arzt", "1-HBA-Testkarte-883110000129084", "1.2.276.0.76.4.30"},
		{"smcb-praxis", "1-SMC-B-Testkarte-883110000129077", "1.2.276.0.76.4.50"},
		{"smcb-apotheke", "3-SMC-B-Testkarte-883110000129068", "1.2.276.0.76.4.54"},
		{"smcb-krankenhaus", "5-SMC-B-Testkarte-883110000129071", "1.2.276.0.76.4.53"},
	}
	if len(cards) != len(tests) {
		t.Errorf("%d embedded cards, want %d", len(cards), len(tests))
	}
	_, enc := e.idpKeys(t)
	for _, tc := range tests {
		t.Run("dev identity "+tc.name+" logs in as "+tc.professionOID, func(t *testing.T) {
			resp, p := get(tc.name)
			loc, err := resp.Location()
			if resp.StatusCode != http.StatusFound || err != nil || loc.Query().Get("code") == "" || loc.Query().Get("state") != p.state {
				t.Fatalf("%s, Location %v", resp.Status, loc)
			}
			tokenKey := bytes.Repeat([]byte{3}, 32)
			tresp, body := e.postToken(t, enc, tokenRequest{clientID: testClient, code: loc.Query().Get("code"), redirect: testRedirect, verifier: p.verifier, tokenKey: tokenKey})
			if tresp.StatusCode != http.StatusOK {
				t.Fatalf("token: %s %s", tresp.Status, body)
			}
			var tr TokenResponse
			_ = json.Unmarshal(body, &tr)
			sig, _ := e.idpKeys(t)
			_, id, _ := openToken(t, tokenKey, tr.IDToken, sig, "JWT")
			if id["idNummer"] != tc.idNummer || id["professionOID"] != tc.professionOID {
				t.Errorf("claims %v", id)
			}
		})
	}
	t.Run("an unknown dev identity is refused", func(t *testing.T) {
		if resp, _ := get("egk"); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s", resp.Status)
		}
	})
	t.Run("dev identities are off unless configured", func(t *testing.T) {
		e.idp.devCards = nil
		if resp, _ := get("hba-arzt"); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s", resp.Status)
		}
	})
}

func TestANonCardCertificateIsRefusedForItsType(t *testing.T) {
	e := newEnv(t)
	keys, _ := EmbeddedTestKeys()
	// The IDP's own signer chains to a trusted CA (GEM.KOMP-CA51) but is a C.FD.SIG, not a card.
	re := refusedBy(t, e, &Card{Cert: keys.IDPSig.Cert, Key: keys.IDPSig.Key})
	if !strings.Contains(re.Description, `"C.FD.SIG" not accepted`) {
		t.Errorf("refusal %q", re.Description)
	}
}
