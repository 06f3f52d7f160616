package directory_test

import (
	"context"
	"crypto"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/timstack/timstack/certs"
	"github.com/timstack/timstack/directory"
	"github.com/timstack/timstack/directory/store"
)

// ownerAuthEnv is a directory with a RegService trust store and a fake IDP login.
type ownerAuthEnv struct {
	t     *testing.T
	now   time.Time
	srv   *directory.Server
	http  *httptest.Server
	root  *certs.TestCA
	cert  *certs.Certificate // good signer: C.FD.SIG, role oid_tim
	key   crypto.Signer
	login *fakeLogin
}

// fakeLogin stands in for authn/idp: state "good-hba" / "good-smcb" succeed, "refused" is the caller's
// fault, anything else means the IDP is down.
type fakeLogin struct{ cards []string }

func (f *fakeLogin) Begin(_ context.Context, cardType string) (string, error) {
	f.cards = append(f.cards, cardType)
	return "https://idp.test/auth?cardType=" + cardType + "&state=s1", nil
}

func (f *fakeLogin) Complete(_ context.Context, state, code string) (directory.OwnerIdentity, error) {
	switch state {
	case "good-hba":
		return directory.OwnerIdentity{TelematikID: "1-HBA-Testkarte-883110000129068", ProfessionOID: certs.ProfessionArzt, Subject: "pairwise-1"}, nil
	case "good-smcb":
		return directory.OwnerIdentity{TelematikID: "5-2-KH-APO-Waldesrand-01", ProfessionOID: "1.2.276.0.76.4.54"}, nil
	case "no-tid":
		return directory.OwnerIdentity{ProfessionOID: certs.ProfessionArzt}, nil
	case "profession":
		return directory.OwnerIdentity{}, errors.Join(directory.ErrOwnerLoginRefused, errors.New("idp: profession not permitted"))
	}
	return directory.OwnerIdentity{}, errors.New("idp: discovery unavailable")
}

func newOwnerAuthEnv(t *testing.T, withTrust, withLogin bool, hooks ...func(*ownerAuthEnv, *directory.Deps)) *ownerAuthEnv {
	t.Helper()
	now := time.Now().Truncate(time.Second)
	e := &ownerAuthEnv{t: t, now: now}
	root, err := certs.NewTestCA("regservice root", certs.KeyBrainpoolP256r1, now.Add(-24*time.Hour), now.Add(48*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	e.root = root
	e.cert, e.key, err = root.Issue(certs.IssueRequest{Profile: certs.IssueProfileFDSigTIM, CommonName: "regservice.test"})
	if err != nil {
		t.Fatal(err)
	}
	flist, flistKey, err := root.Issue(certs.IssueRequest{Profile: certs.IssueProfileFListSigner})
	if err != nil {
		t.Fatal(err)
	}
	deps := directory.Deps{
		ListSigners: []directory.ListSigner{{Alg: certs.AlgBP256R1, Signer: flistKey, Chain: []*certs.Certificate{flist}}},
		Store:       mustSQLite(t), NotFound: func(err error) bool { return errors.Is(err, store.ErrNotFound) },
		Now: func() time.Time { return now }, Version: "test",
	}
	if withTrust {
		deps.RegServiceTrust = certs.NewTrustStore(root.Cert)
	}
	if withLogin {
		e.login = &fakeLogin{}
		deps.OwnerLogin = e.login
	}
	for _, h := range hooks {
		h(e, &deps)
	}
	e.http = httptest.NewUnstartedServer(nil)
	e.srv, err = directory.New(context.Background(), directory.Config{BaseURL: "http://" + e.http.Listener.Addr().String()}, deps)
	if err != nil {
		t.Fatal(err)
	}
	e.http.Config.Handler = e.srv.Handler()
	e.http.Start()
	t.Cleanup(e.http.Close)
	return e
}

func (e *ownerAuthEnv) aud() string { return e.http.URL + "/owner-authenticate" }

// claims are the claims of a good RegService token; tests change them.
func (e *ownerAuthEnv) claims() map[string]any {
	return map[string]any{
		"iss": "https://regservice.test/regservice", "sub": "@orgadmin:hs1.test", "aud": e.aud(),
		"idNummer": "5-2-KH-APO-Waldesrand-01", "professionOID": "1.2.276.0.76.4.54",
		"iat": e.now.Add(-time.Minute).Unix(), "exp": e.now.Add(4 * time.Minute).Unix(),
	}
}

func (e *ownerAuthEnv) sign(key crypto.Signer, alg certs.JWSAlgorithm, header map[string]any, claims map[string]any) string {
	e.t.Helper()
	payload, err := json.Marshal(claims)
	if err != nil {
		e.t.Fatal(err)
	}
	tok, err := certs.SignCompactJWS(key, alg, header, payload)
	if err != nil {
		e.t.Fatal(err)
	}
	return string(tok)
}

func (e *ownerAuthEnv) regToken(claims map[string]any) string {
	return e.sign(e.key, certs.AlgBP256R1, map[string]any{"typ": "JWT", "x5c": certs.X5CHeader(e.cert)}, claims)
}

// get sends GET path with an optional Authorization header, without following redirects.
func (e *ownerAuthEnv) get(path, authorization string) (int, http.Header, []byte) {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodGet, e.http.URL+path, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, body
}

// ownerTokenClaims checks a 200 token answer and returns the owner token's claims.
func (e *ownerAuthEnv) ownerTokenClaims(body []byte) *directory.Claims {
	e.t.Helper()
	var tr struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
		ExpiresIn   int64  `json:"expires_in"`
	}
	if err := json.Unmarshal(body, &tr); err != nil || tr.AccessToken == "" || tr.TokenType != "Bearer" || tr.ExpiresIn != 86400 {
		e.t.Fatalf("token answer %s", body)
	}
	c, err := e.srv.Tokens().Verify(tr.AccessToken, directory.TokenOwner)
	if err != nil {
		e.t.Fatalf("owner token does not verify as an owner token: %v", err)
	}
	// The existing owner API accepts it.
	if status, _, b := e.get("/owner/Organization?identifier="+c.TelematikID, "Bearer "+tr.AccessToken); status != 200 {
		e.t.Fatalf("owner API refused the issued token: %d %s", status, b)
	}
	return c
}

func TestOwnerAuthenticateWithRegServiceToken(t *testing.T) {
	e := newOwnerAuthEnv(t, true, false)
	t.Run("a valid RegService token yields an owner token with its Telematik-ID and profession", func(t *testing.T) {
		status, h, body := e.get("/owner-authenticate", "Bearer "+e.regToken(e.claims()))
		if status != 200 {
			t.Fatalf("status %d: %s", status, body)
		}
		if h.Get("Cache-Control") != "no-store" {
			t.Errorf("Cache-Control %q", h.Get("Cache-Control"))
		}
		c := e.ownerTokenClaims(body)
		if c.TelematikID != "5-2-KH-APO-Waldesrand-01" || c.ProfessionOID != "1.2.276.0.76.4.54" || c.Subject != "@orgadmin:hs1.test" {
			t.Errorf("claims %+v", c)
		}
	})
	t.Run("an audience array containing our URL is accepted", func(t *testing.T) {
		c := e.claims()
		c["aud"] = []string{"https://other.test", e.aud()}
		if status, _, body := e.get("/owner-authenticate", "Bearer "+e.regToken(c)); status != 200 {
			t.Fatalf("status %d: %s", status, body)
		}
	})

	other, err := certs.NewTestCA("unknown root", certs.KeyBrainpoolP256r1, e.now.Add(-time.Hour), e.now.Add(48*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	issue := func(ca *certs.TestCA, req certs.IssueRequest) (*certs.Certificate, crypto.Signer) {
		t.Helper()
		cert, key, err := ca.Issue(req)
		if err != nil {
			t.Fatal(err)
		}
		return cert, key
	}
	flistCert, flistKey := issue(e.root, certs.IssueRequest{Profile: certs.IssueProfileFListSigner})
	smcbCert, smcbKey := issue(e.root, certs.IssueRequest{Profile: certs.IssueProfileCustom, CommonName: "not an FD.SIG",
		Policies: []string{certs.CertificateTypeOID(certs.CertHCIAUT)}, ProfessionOIDs: []string{certs.RoleTIM}, KeyUsage: certs.KeyUsageDigitalSignature})
	unknownCert, unknownKey := issue(other, certs.IssueRequest{Profile: certs.IssueProfileFDSigTIM})
	expiredCert, expiredKey := issue(e.root, certs.IssueRequest{Profile: certs.IssueProfileFDSigTIM, NotBefore: e.now.Add(-2 * time.Hour), NotAfter: e.now.Add(-time.Minute)})
	p256Cert, p256Key := issue(e.root, certs.IssueRequest{Profile: certs.IssueProfileFDSigTIM, KeyAlgorithm: certs.KeyP256})

	withCert := func(cert *certs.Certificate, key crypto.Signer) string {
		return e.sign(key, certs.AlgBP256R1, map[string]any{"typ": "JWT", "x5c": certs.X5CHeader(cert)}, e.claims())
	}
	change := func(k string, v any) string {
		c := e.claims()
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
		return e.regToken(c)
	}
	// hmacToken is the classic confusion: HS256 keyed with public material.
	hmacToken := func() string {
		enc := base64.RawURLEncoding
		h, _ := json.Marshal(map[string]any{"alg": "HS256", "typ": "JWT", "x5c": certs.X5CHeader(e.cert)})
		p, _ := json.Marshal(e.claims())
		in := enc.EncodeToString(h) + "." + enc.EncodeToString(p)
		m := hmac.New(sha256.New, e.cert.Raw)
		m.Write([]byte(in))
		return in + "." + enc.EncodeToString(m.Sum(nil))
	}
	noneToken := func() string {
		enc := base64.RawURLEncoding
		h, _ := json.Marshal(map[string]any{"alg": "none", "typ": "JWT"})
		p, _ := json.Marshal(e.claims())
		return enc.EncodeToString(h) + "." + enc.EncodeToString(p) + "."
	}
	tampered := func() string {
		parts := strings.Split(e.regToken(e.claims()), ".")
		c := e.claims()
		c["idNummer"] = "1-OTHER"
		p, _ := json.Marshal(c)
		parts[1] = base64.RawURLEncoding.EncodeToString(p)
		return strings.Join(parts, ".")
	}

	ownerTok, _, err := e.srv.Tokens().Issue(directory.TokenOwner, "x", directory.Claims{TelematikID: "1-X"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, authorization, wantMessage string
	}{
		{"a signer with another role (oid_vzd_ti) is refused", "Bearer " + withCert(flistCert, flistKey), "signer not accepted"},
		{"a signer of another certificate type (C.HCI.AUT) is refused", "Bearer " + withCert(smcbCert, smcbKey), "signer not accepted"},
		{"a signer from an unknown CA is refused", "Bearer " + withCert(unknownCert, unknownKey), "signer not accepted"},
		{"an expired signer certificate is refused", "Bearer " + withCert(expiredCert, expiredKey), "signer not accepted"},
		{"ES256 is refused even with an oid_tim certificate (alg confusion)", "Bearer " + e.sign(p256Key, certs.AlgES256, map[string]any{"typ": "JWT", "x5c": certs.X5CHeader(p256Cert)}, e.claims()), "BP256R1 required"},
		{"HS256 keyed with the certificate is refused (alg confusion)", "Bearer " + hmacToken(), "BP256R1 required"},
		{"alg none is refused", "Bearer " + noneToken(), "not a compact JWS"},
		{"a changed payload fails the signature", "Bearer " + tampered(), "signature invalid"},
		{"a token without x5c is refused", "Bearer " + e.sign(e.key, certs.AlgBP256R1, map[string]any{"typ": "JWT"}, e.claims()), "no x5c"},
		{"a typ other than JWT is refused", "Bearer " + e.sign(e.key, certs.AlgBP256R1, map[string]any{"typ": "at+jwt", "x5c": certs.X5CHeader(e.cert)}, e.claims()), "JWT required"},
		{"an expired token is refused", "Bearer " + change("exp", e.now.Add(-time.Second).Unix()), "expired"},
		{"a token without exp is refused", "Bearer " + change("exp", nil), "no exp"},
		{"a string exp is refused", "Bearer " + change("exp", "9999999999"), "exp is not a positive integer"},
		{"a token without iat is refused", "Bearer " + change("iat", nil), "no iat"},
		{"a token issued in the future is refused", "Bearer " + change("iat", e.now.Add(10*time.Minute).Unix()), "issued in the future"},
		{"a token living longer than an hour is refused", "Bearer " + change("exp", e.now.Add(2*time.Hour).Unix()), "lifetime exceeds"},
		{"a token for another audience is refused", "Bearer " + change("aud", "https://fhir-directory.vzd.ti-dienste.de/owner-authenticate"), "audience"},
		{"a token for our /owner (not /owner-authenticate) is refused", "Bearer " + change("aud", e.http.URL+"/owner"), "audience"},
		{"a token without iss is refused", "Bearer " + change("iss", nil), "no iss"},
		{"a token without idNummer is refused", "Bearer " + change("idNummer", ""), "no idNummer"},
		{"a token without professionOID is refused", "Bearer " + change("professionOID", nil), "no professionOID"},
		{"a token naming an insured person is refused", "Bearer " + change("professionOID", certs.ProfessionVersicherter), "insured"},
		{"a Basic Authorization header is refused", "Basic dXNlcjpwYXNz", "Bearer"},
		{"garbage is refused", "Bearer not.a.token", "not a compact JWS"},
		{"a directory owner token is not a RegService token", "Bearer " + ownerTok, "BP256R1 required"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, h, body := e.get("/owner-authenticate", tc.authorization)
			if status != http.StatusUnauthorized {
				t.Fatalf("status %d, want 401: %s", status, body)
			}
			if !strings.Contains(h.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("WWW-Authenticate %q", h.Get("WWW-Authenticate"))
			}
			var pe struct{ Message string }
			if err := json.Unmarshal(body, &pe); err != nil || !strings.Contains(pe.Message, tc.wantMessage) {
				t.Errorf("message %q, want it to contain %q", body, tc.wantMessage)
			}
		})
	}
}

func TestOwnerAuthenticateWithoutRegServiceTrust(t *testing.T) {
	e := newOwnerAuthEnv(t, false, false)
	status, _, body := e.get("/owner-authenticate", "Bearer "+e.regToken(e.claims()))
	if status != 401 || !strings.Contains(string(body), "no trust store configured") {
		t.Fatalf("status %d: %s", status, body)
	}
	status, _, body = e.get("/owner-authenticate", "")
	if status != 401 || !strings.Contains(string(body), "IDP login is not configured") {
		t.Fatalf("without header and IDP: status %d: %s", status, body)
	}
	status, _, body = e.get("/signin-gematik-idp-dienst?code=c&state=good-hba", "")
	if status != 401 || !strings.Contains(string(body), "not configured") {
		t.Fatalf("signin without IDP: status %d: %s", status, body)
	}
}

func TestOwnerAuthenticateThroughIDP(t *testing.T) {
	e := newOwnerAuthEnv(t, true, true)
	t.Run("without a header the caller is sent to the IDP with an HBA", func(t *testing.T) {
		status, h, body := e.get("/owner-authenticate", "")
		if status != http.StatusFound || h.Get("Location") != "https://idp.test/auth?cardType=HBA&state=s1" {
			t.Fatalf("status %d Location %q: %s", status, h.Get("Location"), body)
		}
	})
	t.Run("cardType=SMC-B asks the IDP for an institution card", func(t *testing.T) {
		status, h, _ := e.get("/owner-authenticate?cardType=SMC-B", "")
		if status != http.StatusFound || !strings.Contains(h.Get("Location"), "cardType=SMC-B") {
			t.Fatalf("status %d Location %q", status, h.Get("Location"))
		}
	})
	t.Run("an unknown cardType is refused", func(t *testing.T) {
		if status, _, body := e.get("/owner-authenticate?cardType=eGK", ""); status != 401 {
			t.Fatalf("status %d: %s", status, body)
		}
	})
	t.Run("the IDP callback of a practitioner yields an owner token", func(t *testing.T) {
		status, _, body := e.get("/signin-gematik-idp-dienst?code=abc&state=good-hba", "")
		if status != 200 {
			t.Fatalf("status %d: %s", status, body)
		}
		c := e.ownerTokenClaims(body)
		if c.TelematikID != "1-HBA-Testkarte-883110000129068" || c.ProfessionOID != certs.ProfessionArzt || c.Subject != "pairwise-1" {
			t.Errorf("claims %+v", c)
		}
	})
	t.Run("the IDP callback of an institution yields an owner token for its Telematik-ID", func(t *testing.T) {
		status, _, body := e.get("/signin-gematik-idp-dienst?code=abc&state=good-smcb", "")
		if status != 200 {
			t.Fatalf("status %d: %s", status, body)
		}
		if c := e.ownerTokenClaims(body); c.TelematikID != "5-2-KH-APO-Waldesrand-01" || c.Subject != "5-2-KH-APO-Waldesrand-01" {
			t.Errorf("claims %+v", c)
		}
	})
	for _, tc := range []struct {
		name, query string
		want        int
	}{
		{"a refused login is a 401", "code=abc&state=profession", 401},
		{"an identity without Telematik-ID is a 401", "code=abc&state=no-tid", 401},
		{"an IDP error answer is a 401", "error=access_denied&state=good-hba", 401},
		{"a callback without code is a 401", "state=good-hba", 401},
		{"a callback without state is a 401", "code=abc", 401},
		{"an unreachable IDP is a 503", "code=abc&state=down", 503},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, _, body := e.get("/signin-gematik-idp-dienst?"+tc.query, "")
			if status != tc.want {
				t.Fatalf("status %d, want %d: %s", status, tc.want, body)
			}
			if strings.Contains(string(body), "access_token") {
				t.Fatalf("a token was issued: %s", body)
			}
		})
	}
}

func TestOwnerAuthenticateChecksRevocation(t *testing.T) {
	var revokedCert *certs.Certificate
	var revokedKey crypto.Signer
	var unknownCert *certs.Certificate
	var unknownKey crypto.Signer
	e := newOwnerAuthEnv(t, true, false, func(e *ownerAuthEnv, deps *directory.Deps) {
		issue := func(req certs.IssueRequest) (*certs.Certificate, crypto.Signer) {
			cert, key, err := e.root.Issue(req)
			if err != nil {
				t.Fatal(err)
			}
			return cert, key
		}
		revokedCert, revokedKey = issue(certs.IssueRequest{Profile: certs.IssueProfileFDSigTIM})
		unknownCert, unknownKey = issue(certs.IssueRequest{Profile: certs.IssueProfileFDSigTIM})
		signerCert, signer := issue(certs.IssueRequest{Profile: certs.IssueProfileOCSPSigner})
		r := &certs.OCSPResponder{Signer: signer, SignerCert: signerCert, Issuers: []*certs.Certificate{e.root.Cert}, Now: func() time.Time { return e.now }}
		r.SetStatus(e.cert.SerialNumber, certs.OCSPStatusEntry{Status: certs.OCSPGood})
		r.SetStatus(revokedCert.SerialNumber, certs.OCSPStatusEntry{Status: certs.OCSPRevoked, RevokedAt: e.now.Add(-time.Hour), Reason: 1})
		ocsp := httptest.NewServer(r)
		t.Cleanup(ocsp.Close)
		deps.RegServiceRevocation = &certs.OCSPChecker{Trust: deps.RegServiceTrust, URLOverride: func(*certs.Certificate, *certs.Certificate) string { return ocsp.URL }}
	})
	sign := func(cert *certs.Certificate, key crypto.Signer) string {
		return "Bearer " + e.sign(key, certs.AlgBP256R1, map[string]any{"typ": "JWT", "x5c": certs.X5CHeader(cert)}, e.claims())
	}
	for _, tc := range []struct {
		name, authorization string
		want                int
	}{
		{"a signer the responder calls good is accepted", sign(e.cert, e.key), 200},
		{"a revoked signer is refused", sign(revokedCert, revokedKey), 401},
		{"a signer the responder does not know is refused", sign(unknownCert, unknownKey), 401},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, _, body := e.get("/owner-authenticate", tc.authorization)
			if status != tc.want {
				t.Fatalf("status %d, want %d: %s", status, tc.want, body)
			}
			if status == 401 && !strings.Contains(string(body), "signer not accepted") {
				t.Fatalf("refused for another reason: %s", body)
			}
		})
	}
}

// TestOwnerAuthenticateMatchesGematikSpec validates every kind of answer of /owner-authenticate and
// /signin-gematik-idp-dienst against gematik's I_VZD_Owner.yaml.
func TestOwnerAuthenticateMatchesGematikSpec(t *testing.T) {
	e := newOwnerAuthEnv(t, true, true)
	router := specRouter(t, loadGematikSpec(t, "I_VZD_Owner.yaml"), e.http.URL)
	for _, c := range []struct {
		name, path, authorization string
		status                    int
		operation                 string
	}{
		{"RegService token → owner token", "/owner-authenticate", "Bearer " + e.regToken(e.claims()), 200, "getOwnerAuthenticate"},
		{"refused RegService token", "/owner-authenticate", "Bearer x.y.z", 401, "getOwnerAuthenticate"},
		{"redirect to the IDP", "/owner-authenticate", "", 302, "getOwnerAuthenticate"},
		{"IDP callback → owner token", "/signin-gematik-idp-dienst?code=c&state=good-hba", "", 200, "getSignInGematikIdpDienst"},
		{"refused IDP callback", "/signin-gematik-idp-dienst?code=c&state=profession", "", 401, "getSignInGematikIdpDienst"},
		{"IDP unavailable", "/signin-gematik-idp-dienst?code=c&state=down", "", 503, "getSignInGematikIdpDienst"},
	} {
		t.Run(c.name, func(t *testing.T) {
			status, hdr, body := e.get(c.path, c.authorization)
			if status != c.status {
				t.Fatalf("status %d, want %d: %s", status, c.status, body)
			}
			req, err := http.NewRequest(http.MethodGet, e.http.URL+c.path, http.NoBody)
			if err != nil {
				t.Fatal(err)
			}
			if c.authorization != "" {
				req.Header.Set("Authorization", c.authorization)
			}
			if route, _, err := router.FindRoute(req); err != nil || route.Operation.OperationID != c.operation {
				t.Fatalf("route %v, want operation %s (%v)", route, c.operation, err)
			}
			reqErr, respErr := validateExchange(t, router, req, status, hdr, body)
			if reqErr != nil || respErr != nil {
				t.Fatalf("does not validate: request %v, response %v", reqErr, respErr)
			}
		})
	}
}
