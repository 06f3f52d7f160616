package idp

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/timstack/timstack/certs"
)

const offlineIssuer = "https://idp.example"

var fuzzNow = time.Unix(1795000000, 0)

// newOfflineRP has verified keys in place and no network: a forced reload is refused, so fuzzing exercises
// only parsing and verification.
func newOfflineRP(t testing.TB) *RelyingParty {
	t.Helper()
	sigCert, _ := loadIdentity(t, gematikPath("pki", "idp", "idp_sig"))
	encCert, _ := loadIdentity(t, gematikPath("pki", "idp", "idp_enc"))
	rp, err := New(Config{
		Issuer: offlineIssuer, ClientID: testClientID, RedirectURI: testRedirect, Trust: certs.NewTrustStore(),
		Now: func() time.Time { return fuzzNow },
		HTTPClient: &http.Client{Transport: roundTripFunc(func(*http.Request) (*http.Response, error) {
			return nil, errors.New("offline")
		})},
	})
	if err != nil {
		t.Fatal(err)
	}
	rp.keys.cur.Store(&idpKeys{
		disc: discoveryDoc{Issuer: offlineIssuer, AuthorizationEndpoint: offlineIssuer + "/auth", TokenEndpoint: offlineIssuer + "/token"},
		sig:  sigCert.PublicKey.(*ecdsa.PublicKey), enc: encCert.PublicKey.(*ecdsa.PublicKey),
		validUntil: fuzzNow.Add(time.Hour),
	})
	rp.keys.lastForced = fuzzNow
	return rp
}

// offlineIDToken signs a valid ID token for newOfflineRP with the gematik test idp_sig key.
func offlineIDToken(t testing.TB, edit func(map[string]any)) []byte {
	t.Helper()
	_, key := loadIdentity(t, gematikPath("pki", "idp", "idp_sig"))
	now := fuzzNow.Unix()
	claims := map[string]any{
		"iss": offlineIssuer, "sub": "s", "aud": testClientID, "azp": testClientID, "iat": now, "exp": now + 300,
		"auth_time": now, "acr": acrHigh, "amr": []string{"mfa", "sc", "pin"}, "jti": "j1",
		"idNummer": "1-HBA-Testkarte-883110000129084", "professionOID": "1.2.276.0.76.4.30", "organizationName": nil,
	}
	if edit != nil {
		edit(claims)
	}
	payload, _ := json.Marshal(claims)
	jws, err := certs.SignCompactJWS(key, certs.AlgBP256R1, map[string]any{"typ": "JWT", "kid": kidIDPSig}, payload)
	if err != nil {
		t.Fatal(err)
	}
	return jws
}

var fuzzTokenKey = bytes.Repeat([]byte{0x5a}, 32)

func FuzzParseTokenResponse(f *testing.F) {
	wrap := func(inner []byte) string {
		pt, _ := json.Marshal(map[string]string{"njwt": string(inner)})
		jwe, err := certs.EncryptDir(fuzzTokenKey, pt, map[string]any{"cty": "NJWT", "exp": fuzzNow.Unix() + 300})
		if err != nil {
			f.Fatal(err)
		}
		return string(jwe)
	}
	valid, _ := json.Marshal(map[string]any{"token_type": "Bearer", "expires_in": 300, "id_token": wrap(offlineIDToken(f, nil))})
	f.Add(valid)
	rp := newOfflineRP(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		tr, err := parseTokenResponse(body)
		if err != nil {
			if !errors.Is(err, ErrTokenInvalid) {
				t.Fatalf("parse error without ErrTokenInvalid: %v", err)
			}
			return
		}
		rp.jtis.reset()
		id, err := rp.finishTokenResponse(context.Background(), tr, bytes.Clone(fuzzTokenKey), "")
		if err != nil {
			if !errors.Is(err, ErrTokenInvalid) {
				t.Fatalf("error without ErrTokenInvalid: %v", err)
			}
			return
		}
		checkIdentityInvariants(t, id)
	})
}

func FuzzVerifyIDToken(f *testing.F) {
	f.Add(offlineIDToken(f, nil))
	f.Add(offlineIDToken(f, func(c map[string]any) { c["aud"] = []string{testClientID} }))
	f.Add(offlineIDToken(f, func(c map[string]any) { c["exp"] = 1.5e9 }))
	rp := newOfflineRP(f)
	f.Fuzz(func(t *testing.T, tok []byte) {
		rp.jtis.reset()
		id, err := rp.VerifyIDToken(context.Background(), tok, "")
		if err != nil {
			if !errors.Is(err, ErrTokenInvalid) {
				t.Fatalf("error without ErrTokenInvalid: %v", err)
			}
			return
		}
		checkIdentityInvariants(t, id)
	})
}

// checkIdentityInvariants states what any accepted token must give, whatever the fuzzer produced.
func checkIdentityInvariants(t *testing.T, id *Identity) {
	t.Helper()
	switch {
	case id.Issuer != offlineIssuer, id.ClientID != testClientID, id.TelematikID == "", id.JTI == "",
		id.ACR != acrHigh, !slices.Contains(id.AMR, amrCard), id.ExpiresAt.Sub(id.IssuedAt) > maxIDTokenLife,
		!fuzzNow.Before(id.ExpiresAt.Add(maxClockSkew)):
		t.Fatalf("accepted identity breaks an invariant: %+v", id)
	}
}

func TestOfflineFixturesVerify(t *testing.T) {
	t.Run("the fuzz seed ID token is accepted, so fuzzing starts from a valid token", func(t *testing.T) {
		rp := newOfflineRP(t)
		if _, err := rp.VerifyIDToken(context.Background(), offlineIDToken(t, nil), ""); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("a forged token on an offline RP fails without a reload", func(t *testing.T) {
		rp := newOfflineRP(t)
		tok := offlineIDToken(t, nil)
		_, err := rp.VerifyIDToken(context.Background(), tamper(tok, len(tok)-10), "")
		if !errors.Is(err, ErrTokenInvalid) || !errors.Is(err, certs.ErrBadSignature) {
			t.Errorf("got %v, want ErrTokenInvalid and ErrBadSignature", err)
		}
	})
}
