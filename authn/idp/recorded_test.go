package idp

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"html"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/timstack/timstack/certs"
)

// The recorded HBA login against ref-IDP 25.0.4 (2023-11-30, testdata/gematik/pki/recorded/tokenFlowPs.html).
// These are real gematik tokens: if the fake IDP of these tests and the RP ever agreed on a shared mistake,
// this recording would disagree.
const (
	recordedIssuer   = "https://idp.zentral.idp.splitdns.ti-dienste.de"
	recordedClientID = "gematikTestPs"
	recordedRedirect = "http://test-ps.gematik.de/erezept"
	recordedDiscURL  = "http://url.des.idp/.well-known/openid-configuration"
)

var recordedNow = time.Unix(1701341870, 0) // 10 s after the tokens' iat

type recordedFlow struct {
	Discovery     []byte // compact JWS, kid puk_disc_sig
	SigJWK        []byte // puk_idp_sig with x5c
	EncJWK        []byte // puk_idp_enc
	TokenKey      []byte // from the decrypted key_verifier
	TokenResponse []byte // the token endpoint's JSON
	Nonce         string // from the challenge
}

var (
	recHTMLTag    = regexp.MustCompile(`<[^>]*>`)
	recCompactJWS = regexp.MustCompile(`^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$`)
)

// loadRecordedFlow reads the RbelLogger HTML the way certs/jose_recorded_test.go does: tags dropped, entities
// decoded, message bodies picked by their shape.
func loadRecordedFlow(t testing.TB) *recordedFlow {
	t.Helper()
	page := string(mustRead(t, gematikPath("pki", "recorded", "tokenFlowPs.html")))
	text := html.UnescapeString(recHTMLTag.ReplaceAllString(page, "\n"))
	f := &recordedFlow{}
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case f.Discovery == nil && recCompactJWS.MatchString(line):
			if j, err := certs.ParseCompactJWS([]byte(line)); err == nil && j.Header.Kid == kidDiscovery {
				f.Discovery = []byte(line)
			}
		case strings.HasPrefix(line, "{"):
			var m map[string]json.RawMessage
			if json.Unmarshal([]byte(line), &m) != nil {
				continue
			}
			var kid, tokenKey, idToken, tokenType, nonce string
			json.Unmarshal(m["kid"], &kid)
			json.Unmarshal(m["token_key"], &tokenKey)
			json.Unmarshal(m["id_token"], &idToken)
			json.Unmarshal(m["token_type"], &tokenType)
			json.Unmarshal(m["nonce"], &nonce)
			switch {
			case f.SigJWK == nil && kid == kidIDPSig && m["x5c"] != nil:
				f.SigJWK = []byte(line)
			case f.EncJWK == nil && kid == kidIDPEnc:
				f.EncJWK = []byte(line)
			case f.TokenKey == nil && tokenKey != "":
				k, err := base64.RawURLEncoding.DecodeString(tokenKey)
				if err != nil {
					t.Fatalf("token_key: %v", err)
				}
				f.TokenKey = k
			case f.TokenResponse == nil && idToken != "":
				f.TokenResponse = []byte(line)
			case f.Nonce == "" && tokenType == "challenge":
				f.Nonce = nonce
			}
		}
	}
	if f.Discovery == nil || f.SigJWK == nil || f.EncJWK == nil || len(f.TokenKey) != 32 || f.TokenResponse == nil || f.Nonce == "" {
		t.Fatalf("recorded flow incomplete: discovery %t, sig %t, enc %t, token_key %d bytes, token response %t, nonce %q",
			f.Discovery != nil, f.SigJWK != nil, f.EncJWK != nil, len(f.TokenKey), f.TokenResponse != nil, f.Nonce)
	}
	return f
}

// roundTripFunc serves HTTP in-process.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func respond(status int, contentType string, body []byte) *http.Response {
	return &http.Response{StatusCode: status, Header: http.Header{"Content-Type": {contentType}},
		Body: io.NopCloser(bytes.NewReader(body))}
}

// recordedIDP replays the recorded discovery document and JWKs whatever host the RP asks (the recording
// names both localhost:38157 and url.des.idp).
func recordedIDP(f *recordedFlow) *http.Client {
	return &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		switch r.URL.Path {
		case "/.well-known/openid-configuration":
			return respond(200, "application/jwt;charset=UTF-8", f.Discovery), nil
		case "/idpSig/jwk.json":
			return respond(200, "application/json", f.SigJWK), nil
		case "/idpEnc/jwk.json":
			return respond(200, "application/json", f.EncJWK), nil
		}
		return respond(404, "text/plain", nil), nil
	})}
}

func newRecordedRP(t testing.TB, f *recordedFlow, now func() time.Time) *RelyingParty {
	t.Helper()
	rp, err := New(Config{
		Issuer: recordedIssuer, DiscoveryURL: recordedDiscURL, ClientID: recordedClientID, RedirectURI: recordedRedirect,
		Trust: gematikTrust(t), HTTPClient: recordedIDP(f), Now: now,
	})
	if err != nil {
		t.Fatal(err)
	}
	return rp
}

func TestRecordedGematikFlow(t *testing.T) {
	ctx := context.Background()
	f := loadRecordedFlow(t)
	rp := newRecordedRP(t, f, func() time.Time { return recordedNow })

	tr, err := parseTokenResponse(f.TokenResponse)
	if err != nil {
		t.Fatalf("parseTokenResponse: %v", err)
	}
	t.Run("the recorded token response passes discovery, key checks, decryption and every claim check", func(t *testing.T) {
		id, err := rp.finishTokenResponse(ctx, tr, bytes.Clone(f.TokenKey), f.Nonce)
		if err != nil {
			t.Fatal(err)
		}
		want := &Identity{
			TelematikID: "1-HBA-Testkarte-883110000129084", ProfessionOID: "1.2.276.0.76.4.30", Kind: certs.KindPerson,
			GivenName: "Günther Graf", FamilyName: "Otís", DisplayName: "Günther Graf Otís",
			Subject: "xmNyEt0qGzSOs8CGNEtCRCZkW-mndvuqWhEX7fSQN80", Issuer: recordedIssuer, ClientID: recordedClientID,
			JTI: "501d58737bbd837d", ACR: acrHigh, AMR: []string{"mfa", "sc", "pin"},
			AuthTime: time.Unix(1701341855, 0), IssuedAt: time.Unix(1701341860, 0), ExpiresAt: time.Unix(1701342160, 0),
		}
		if diff := cmp.Diff(want, id); diff != "" {
			t.Errorf("identity (-want +got):\n%s", diff)
		}
		if err := CheckProfession(id, UsePractitionerOwner); err != nil {
			t.Errorf("recorded Arzt refused as practitioner: %v", err)
		}
		if err := CheckProfession(id, UseOrgRegistrationPro); !errors.Is(err, ErrProfessionRefused) {
			t.Errorf("recorded Arzt accepted for organisation registration: %v", err)
		}
	})
	t.Run("the recorded token response presented a second time is refused as a jti replay", func(t *testing.T) {
		_, err := rp.finishTokenResponse(ctx, tr, bytes.Clone(f.TokenKey), f.Nonce)
		if !errors.Is(err, ErrReplay) {
			t.Errorf("got %v, want ErrReplay", err)
		}
	})
	t.Run("the recorded token response does not open with another token_key", func(t *testing.T) {
		fresh := newRecordedRP(t, f, func() time.Time { return recordedNow })
		key := bytes.Clone(f.TokenKey)
		key[0] ^= 1
		if _, err := fresh.finishTokenResponse(ctx, tr, key, f.Nonce); !errors.Is(err, ErrTokenInvalid) {
			t.Errorf("got %v, want ErrTokenInvalid", err)
		}
	})
	t.Run("with today's clock the recorded flow is refused", func(t *testing.T) {
		today := newRecordedRP(t, f, time.Now)
		_, err := today.finishTokenResponse(ctx, tr, bytes.Clone(f.TokenKey), f.Nonce)
		if !errors.Is(err, ErrDiscovery) || !strings.Contains(err.Error(), "expired") {
			t.Errorf("got %v, want ErrDiscovery (expired)", err)
		}
	})

	idInner, err := decryptToken(f.TokenKey, "id_token", tr.IDToken)
	if err != nil {
		t.Fatal(err)
	}
	atInner, err := decryptToken(f.TokenKey, "access_token", tr.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	j, err := certs.ParseCompactJWS(idInner)
	if err != nil {
		t.Fatal(err)
	}
	base := claimExpectations{issuer: recordedIssuer, clientID: recordedClientID, nonce: f.Nonce, accessToken: atInner, now: recordedNow}
	for _, tc := range []struct {
		name  string
		edit  func(*claimExpectations)
		words string // "" = accepted
	}{
		{"the recorded claims pass with the recording's clock", func(*claimExpectations) {}, ""},
		{"the recorded claims pass 60 s after exp (clock skew)", func(e *claimExpectations) { e.now = time.Unix(1701342160+59, 0) }, ""},
		{"the recorded claims are expired with today's clock", func(e *claimExpectations) { e.now = time.Now() }, "expired"},
		{"the recorded claims are refused for another client", func(e *claimExpectations) { e.clientID = "GEMgematTIM4HkPrd8SR" }, "aud"},
		{"the recorded claims are refused for the serving URL as issuer", func(e *claimExpectations) { e.issuer = "http://url.des.idp" }, "iss"},
		{"the recorded claims are refused with another nonce", func(e *claimExpectations) { e.nonce = "x" + f.Nonce[1:] }, "nonce"},
		{"the recorded at_hash does not fit another access token", func(e *claimExpectations) { e.accessToken = idInner }, "at_hash"},
		{"the recorded claims are refused before they were issued", func(e *claimExpectations) { e.now = time.Unix(1701341860-120, 0) }, "future"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := base
			tc.edit(&e)
			_, err := validateClaims(j.Payload, e)
			switch {
			case tc.words == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tc.words != "" && (!errors.Is(err, ErrTokenInvalid) || !strings.Contains(err.Error(), tc.words)):
				t.Errorf("got %v, want ErrTokenInvalid saying %q", err, tc.words)
			}
		})
	}

	t.Run("the recorded inner ID token verifies headless with the recorded nonce", func(t *testing.T) {
		fresh := newRecordedRP(t, f, func() time.Time { return recordedNow })
		if _, err := fresh.VerifyIDToken(ctx, idInner, f.Nonce); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("the recorded access token is not accepted as an ID token", func(t *testing.T) {
		fresh := newRecordedRP(t, f, func() time.Time { return recordedNow })
		if _, err := fresh.VerifyIDToken(ctx, atInner, ""); !errors.Is(err, ErrTokenInvalid) || !strings.Contains(err.Error(), "typ") {
			t.Errorf("got %v, want ErrTokenInvalid (typ)", err)
		}
	})
}
