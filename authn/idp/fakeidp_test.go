package idp

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/timstack/timstack/certs"
)

func gematikPath(parts ...string) string {
	return filepath.Join(append([]string{"..", "..", "testdata", "gematik"}, parts...)...)
}

func mustRead(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// loadIdentity reads cert.pem and key.pem of a gematik test identity directory.
func loadIdentity(t testing.TB, dir string) (*certs.Certificate, crypto.Signer) {
	t.Helper()
	cert, err := certs.ParseCertificatePEMOrDER(mustRead(t, filepath.Join(dir, "cert.pem")))
	if err != nil {
		t.Fatal(err)
	}
	key, err := certs.ParsePrivateKeyPEM(mustRead(t, filepath.Join(dir, "key.pem")))
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}

func gematikTrust(t testing.TB) *certs.TrustStore {
	t.Helper()
	s, err := certs.LoadTrustStoreDir(gematikPath("pki", "ca"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// testClock is a settable clock shared by the fake IDP and the RP.
type testClock struct{ ns atomic.Int64 }

func newTestClock(t time.Time) *testClock {
	c := &testClock{}
	c.ns.Store(t.UnixNano())
	return c
}
func (c *testClock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *testClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// fakeIDP is a minimal IDP-Dienst for the RP tests, written from gemSpec_IDP_Dienst as summarised in
// smartcard-auth-spec.md §1.2–1.6. It skips the card part (the RP never sees it): GET /auth redirects at once.
// It checks PKCE S256 and decrypts key_verifier like the real service. Knobs let tests break one thing at a
// time.
type fakeIDP struct {
	t       testing.TB
	srv     *httptest.Server
	handler http.Handler
	issuer  string
	clock   *testClock

	discCert, sigCert, encCert *certs.Certificate
	discKey, sigKey, encKey    crypto.Signer

	mu    sync.Mutex
	codes map[string]fakeCode

	// Knobs, set before the request they affect (guarded by mu).
	discPayload   func(map[string]any)      // edits the discovery body
	discHeader    func(map[string]any)      // edits the discovery JWS header
	discSigner    crypto.Signer             // signs the discovery instead of discKey
	discX5C       []*certs.Certificate      // x5c instead of [discCert]
	discType      string                    // Content-Type instead of application/jwt
	claims        func(map[string]any)      // edits ID-token claims
	idHeader      func(map[string]any)      // edits the ID-token header
	idSigner      crypto.Signer             // signs the ID token instead of sigKey (not published)
	idAlg         certs.JWSAlgorithm        // alg for idSigner (default BP256R1)
	idRaw         func(inner []byte) []byte // rewrites the finished inner ID-token JWS
	tokenType     string                    // token_type instead of Bearer
	sigNoX5C      bool                      // publish puk_idp_sig without x5c
	jweHeader     map[string]any            // replaces the id_token JWE's extra header
	noAccessToken bool

	discoveryHits atomic.Int32
	tokenHits     atomic.Int32
}

type fakeCode struct {
	challenge, nonce, clientID, redirectURI string
}

func newFakeIDP(t testing.TB, clock *testClock) *fakeIDP {
	t.Helper()
	f := &fakeIDP{t: t, clock: clock, codes: map[string]fakeCode{}}
	f.discCert, f.discKey = loadIdentity(t, gematikPath("pki", "idp", "disc_sig"))
	f.sigCert, f.sigKey = loadIdentity(t, gematikPath("pki", "idp", "idp_sig"))
	f.encCert, f.encKey = loadIdentity(t, gematikPath("pki", "idp", "idp_enc"))
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", f.discovery)
	mux.HandleFunc("GET /certs/puk_idp_sig", f.jwk(func() ([]byte, error) {
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.sigNoX5C {
			return certs.BP256JWK(f.sigKey.Public().(*ecdsa.PublicKey), kidIDPSig, "sig")
		}
		return certs.BP256JWK(f.sigKey.Public().(*ecdsa.PublicKey), kidIDPSig, "sig", f.sigCert)
	}))
	mux.HandleFunc("GET /certs/puk_idp_enc", f.jwk(func() ([]byte, error) {
		return certs.BP256JWK(f.encKey.Public().(*ecdsa.PublicKey), kidIDPEnc, "enc")
	}))
	mux.HandleFunc("GET /certs", f.jwk(func() ([]byte, error) {
		f.mu.Lock()
		defer f.mu.Unlock()
		sig, err := certs.BP256JWK(f.sigKey.Public().(*ecdsa.PublicKey), kidIDPSig, "sig", f.sigCert)
		if err != nil {
			return nil, err
		}
		enc, err := certs.BP256JWK(f.encKey.Public().(*ecdsa.PublicKey), kidIDPEnc, "enc")
		if err != nil {
			return nil, err
		}
		return json.Marshal(map[string][]json.RawMessage{"keys": {sig, enc}})
	}))
	mux.HandleFunc("GET /auth", f.auth)
	mux.HandleFunc("POST /token", f.token)
	f.handler = mux
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	f.issuer = f.srv.URL
	return f
}

func (f *fakeIDP) set(edit func(f *fakeIDP)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	edit(f)
}

func (f *fakeIDP) discovery(w http.ResponseWriter, _ *http.Request) {
	f.discoveryHits.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.clock.Now().Unix()
	body := map[string]any{
		"issuer":                                f.issuer,
		"authorization_endpoint":                f.srv.URL + "/auth",
		"token_endpoint":                        f.srv.URL + "/token",
		"jwks_uri":                              f.srv.URL + "/certs",
		"uri_puk_idp_sig":                       f.srv.URL + "/certs/puk_idp_sig",
		"uri_puk_idp_enc":                       f.srv.URL + "/certs/puk_idp_enc",
		"iat":                                   now,
		"exp":                                   now + 86400,
		"id_token_signing_alg_values_supported": []string{"BP256R1"},
		"code_challenge_methods_supported":      []string{"S256"},
		"response_types_supported":              []string{"code"},
		"scopes_supported":                      []string{"openid", "ti-messenger"},
	}
	if f.discPayload != nil {
		f.discPayload(body)
	}
	x5c := f.discX5C
	if x5c == nil {
		x5c = []*certs.Certificate{f.discCert}
	}
	hdr := map[string]any{"typ": "JWT", "kid": kidDiscovery, "x5c": certs.X5CHeader(x5c...)}
	if f.discHeader != nil {
		f.discHeader(hdr)
	}
	signer := f.discKey
	if f.discSigner != nil {
		signer = f.discSigner
	}
	payload, _ := json.Marshal(body)
	jws, err := certs.SignCompactJWS(signer, certs.AlgBP256R1, hdr, payload)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	ct := "application/jwt;charset=UTF-8"
	if f.discType != "" {
		ct = f.discType
	}
	w.Header().Set("Content-Type", ct)
	w.Write(jws)
}

func (f *fakeIDP) jwk(make func() ([]byte, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		b, err := make()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(b)
	}
}

// auth plays IDP, Authenticator and card in one step: it checks the request and redirects with a code.
func (f *fakeIDP) auth(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	for k, v := range map[string]string{"response_type": "code", "code_challenge_method": "S256"} {
		if q.Get(k) != v {
			http.Error(w, "bad "+k, http.StatusBadRequest)
			return
		}
	}
	for _, k := range []string{"client_id", "redirect_uri", "state", "nonce", "code_challenge", "scope"} {
		if q.Get(k) == "" {
			http.Error(w, "missing "+k, http.StatusBadRequest)
			return
		}
	}
	code := randomB64(f.t, 24)
	f.mu.Lock()
	f.codes[code] = fakeCode{challenge: q.Get("code_challenge"), nonce: q.Get("nonce"),
		clientID: q.Get("client_id"), redirectURI: q.Get("redirect_uri")}
	f.mu.Unlock()
	to, _ := url.Parse(q.Get("redirect_uri"))
	to.RawQuery = url.Values{"code": {code}, "state": {q.Get("state")}}.Encode()
	http.Redirect(w, r, to.String(), http.StatusFound)
}

func (f *fakeIDP) token(w http.ResponseWriter, r *http.Request) {
	f.tokenHits.Add(1)
	oauthErr := func(code string) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, `{"error":%q}`, code)
	}
	if err := r.ParseForm(); err != nil || r.PostForm.Get("grant_type") != "authorization_code" {
		oauthErr("invalid_request")
		return
	}
	f.mu.Lock()
	c, ok := f.codes[r.PostForm.Get("code")]
	delete(f.codes, r.PostForm.Get("code"))
	f.mu.Unlock()
	if !ok || c.clientID != r.PostForm.Get("client_id") || c.redirectURI != r.PostForm.Get("redirect_uri") {
		oauthErr("invalid_grant")
		return
	}
	plain, hdr, err := certs.DecryptECDHES(f.encKey, []byte(r.PostForm.Get("key_verifier")))
	if err != nil || hdr["cty"] != "JSON" {
		oauthErr("invalid_request")
		return
	}
	var kv struct {
		TokenKey     string `json:"token_key"`
		CodeVerifier string `json:"code_verifier"`
	}
	if json.Unmarshal(plain, &kv) != nil {
		oauthErr("invalid_request")
		return
	}
	sum := sha256.Sum256([]byte(kv.CodeVerifier))
	if base64.RawURLEncoding.EncodeToString(sum[:]) != c.challenge {
		oauthErr("invalid_grant") // PKCE mismatch
		return
	}
	tokenKey, err := base64.RawURLEncoding.DecodeString(kv.TokenKey)
	if err != nil || len(tokenKey) != 32 {
		oauthErr("invalid_request")
		return
	}
	body, err := f.tokenResponse(c.clientID, c.nonce, tokenKey)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(body)
}

// defaultClaims are an SMC-B login (Betriebsstätte Arzt) as the IDP would issue them for ti-messenger.
func (f *fakeIDP) defaultClaims(clientID, nonce string) map[string]any {
	now := f.clock.Now().Unix()
	return map[string]any{
		"iss": f.issuer, "sub": "pairwise-" + clientID, "aud": clientID, "azp": clientID,
		"iat": now, "exp": now + 300, "auth_time": now, "nonce": nonce,
		"acr": acrHigh, "amr": []string{"mfa", "sc", "pin"}, "scope": "openid ti-messenger",
		"jti":              randomB64(f.t, 12),
		"idNummer":         "1-SMC-B-Testkarte-883110000129077",
		"professionOID":    "1.2.276.0.76.4.50",
		"organizationName": "Praxis Dr. Test TEST-ONLY",
	}
}

// tokenResponse builds the token endpoint's JSON for one login (also used by the benchmark to precompute it).
func (f *fakeIDP) tokenResponse(clientID, nonce string, tokenKey []byte) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	claims := f.defaultClaims(clientID, nonce)
	atClaims := map[string]any{}
	for k, v := range claims {
		atClaims[k] = v
	}
	atClaims["aud"] = "https://tim.example/"
	atPayload, _ := json.Marshal(atClaims)
	atInner, err := certs.SignCompactJWS(f.sigKey, certs.AlgBP256R1, map[string]any{"typ": "at+JWT", "kid": kidIDPSig}, atPayload)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(atInner)
	claims["at_hash"] = base64.RawURLEncoding.EncodeToString(sum[:16])
	if f.claims != nil {
		f.claims(claims)
	}
	hdr := map[string]any{"typ": "JWT", "kid": kidIDPSig}
	if f.idHeader != nil {
		f.idHeader(hdr)
	}
	signer, alg := f.sigKey, certs.AlgBP256R1
	if f.idSigner != nil {
		signer = f.idSigner
		if f.idAlg != "" {
			alg = f.idAlg
		}
	}
	payload, _ := json.Marshal(claims)
	idInner, err := certs.SignCompactJWS(signer, alg, hdr, payload)
	if err != nil {
		return nil, err
	}
	if f.idRaw != nil {
		idInner = f.idRaw(idInner)
	}
	exp := f.clock.Now().Unix() + 300
	wrap := func(inner []byte, extra map[string]any) (string, error) {
		pt, _ := json.Marshal(map[string]string{"njwt": string(inner)})
		if extra == nil {
			extra = map[string]any{"cty": "NJWT", "exp": exp}
		}
		jwe, err := certs.EncryptDir(tokenKey, pt, extra)
		return string(jwe), err
	}
	idJWE, err := wrap(idInner, f.jweHeader)
	if err != nil {
		return nil, err
	}
	resp := map[string]any{"expires_in": 300, "token_type": "Bearer", "id_token": idJWE}
	if f.tokenType != "" {
		resp["token_type"] = f.tokenType
	}
	if !f.noAccessToken {
		if resp["access_token"], err = wrap(atInner, nil); err != nil {
			return nil, err
		}
	}
	return json.Marshal(resp)
}

// signIDToken returns an inner ID-token JWS as the IDP would sign it (for VerifyIDToken tests).
func (f *fakeIDP) signIDToken(clientID, nonce string, edit func(map[string]any)) []byte {
	f.t.Helper()
	claims := f.defaultClaims(clientID, nonce)
	if edit != nil {
		edit(claims)
	}
	payload, _ := json.Marshal(claims)
	jws, err := certs.SignCompactJWS(f.sigKey, certs.AlgBP256R1, map[string]any{"typ": "JWT", "kid": kidIDPSig}, payload)
	if err != nil {
		f.t.Fatal(err)
	}
	return jws
}

func randomB64(t testing.TB, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

const (
	testClientID = "timstack-test-client"
	testRedirect = "https://rp.example/callback"
)

// newTestRP returns an RP configured for f (non-production; the fake IDP is on loopback http).
func newTestRP(t testing.TB, f *fakeIDP, edit func(*Config)) *RelyingParty {
	t.Helper()
	cfg := Config{
		Issuer: f.issuer, ClientID: testClientID, RedirectURI: testRedirect,
		Trust: gematikTrust(t), Now: f.clock.Now, HTTPClient: f.srv.Client(),
	}
	if edit != nil {
		edit(&cfg)
	}
	rp, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return rp
}

// authorize follows authURL like a browser plus Authenticator would, and returns code and state from the
// redirect to the RP.
func authorize(t testing.TB, f *fakeIDP, authURL string) (code, state string) {
	t.Helper()
	hc := f.srv.Client()
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := hc.Get(authURL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("auth: status %d", resp.StatusCode)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	return loc.Query().Get("code"), loc.Query().Get("state")
}

func b64url(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
