package devidp

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/timstack/timstack/certs"
)

// LoginOptions configure a headless login (Login).
type LoginOptions struct {
	// Issuer is the IDP's base URL; its discovery document names the endpoints.
	Issuer string
	// ClientID and RedirectURI identify the client the ID token is issued to (aud).
	ClientID, RedirectURI string
	// Scope defaults to "openid ti-messenger".
	Scope string
	// CardType is sent as cardType ("HBA", "SMC-B" or empty).
	CardType string
	// HTTPClient talks to the IDP; nil means http.DefaultClient.
	HTTPClient *http.Client
}

// LoginResult holds the inner (njwt-unwrapped) tokens of a headless login and the nonce the ID token
// must carry.
type LoginResult struct {
	IDToken, AccessToken []byte
	Nonce                string
}

// Login is a headless client of the IDP-Dienst for tools and tests: it creates PKCE verifier, state and
// nonce, runs Authenticate with card, exchanges the code with a key_verifier (ECDH-ES to puk_idp_enc) and
// decrypts the tokens with its token_key. It checks the tokens' signatures against puk_idp_sig as
// published by the IDP, but it does not validate the IDP's certificate chain or the ID-token claims:
// a relying party does that (authn/idp RelyingParty.VerifyIDToken with LoginResult.Nonce).
func Login(ctx context.Context, opts LoginOptions, card *Card) (*LoginResult, error) {
	hc := opts.HTTPClient
	if hc == nil {
		hc = http.DefaultClient
	}
	scope := opts.Scope
	if scope == "" {
		scope = "openid ti-messenger"
	}
	issuer := strings.TrimRight(opts.Issuer, "/")
	raw, err := get(ctx, hc, issuer+PathDiscovery)
	if err != nil {
		return nil, fmt.Errorf("login: discovery: %w", err)
	}
	dj, err := certs.ParseCompactJWS(raw)
	if err != nil {
		return nil, fmt.Errorf("login: discovery: %w", err)
	}
	if _, err := dj.VerifyX5C(certs.AlgBP256R1); err != nil {
		return nil, fmt.Errorf("login: discovery: %w", err)
	}
	var disc struct {
		Auth  string `json:"authorization_endpoint"`
		Token string `json:"token_endpoint"`
	}
	if err := json.Unmarshal(dj.Payload, &disc); err != nil || disc.Auth == "" || disc.Token == "" {
		return nil, fmt.Errorf("login: discovery lacks authorization_endpoint or token_endpoint")
	}
	sigKey, encKey, err := fetchIDPKeys(ctx, hc, issuer)
	if err != nil {
		return nil, fmt.Errorf("login: %w", err)
	}
	verifier, state, nonce := randomID(32), randomID(16), randomID(16)
	q := url.Values{"client_id": {opts.ClientID}, "response_type": {"code"}, "redirect_uri": {opts.RedirectURI}, "state": {state},
		"code_challenge": {S256(verifier)}, "code_challenge_method": {"S256"}, "scope": {scope}, "nonce": {nonce}}
	if opts.CardType != "" {
		q.Set("cardType", opts.CardType)
	}
	code, gotState, err := Authenticate(ctx, hc, disc.Auth+"?"+q.Encode(), card)
	if err != nil {
		return nil, err
	}
	if gotState != state {
		return nil, errors.New("login: the IDP returned another state")
	}
	tokenKey := make([]byte, 32)
	if _, err := rand.Read(tokenKey); err != nil {
		return nil, err
	}
	tr, err := exchangeCode(ctx, hc, disc.Token, encKey, opts.ClientID, opts.RedirectURI, code, verifier, tokenKey)
	if err != nil {
		return nil, err
	}
	res := &LoginResult{Nonce: nonce}
	for _, t := range []struct {
		jwe, typ string
		dst      *[]byte
	}{{tr.IDToken, "JWT", &res.IDToken}, {tr.AccessToken, "at+JWT", &res.AccessToken}} {
		inner, err := openNJWT(tokenKey, t.jwe, sigKey, t.typ)
		if err != nil {
			return nil, fmt.Errorf("login: %w", err)
		}
		*t.dst = inner
	}
	return res, nil
}

// exchangeCode POSTs the token request with a key_verifier encrypted to puk_idp_enc.
func exchangeCode(ctx context.Context, hc *http.Client, endpoint string, enc *ecdsa.PublicKey, clientID, redirect, code, verifier string, tokenKey []byte) (*TokenResponse, error) {
	kv, err := json.Marshal(KeyVerifier{TokenKey: base64.RawURLEncoding.EncodeToString(tokenKey), CodeVerifier: verifier})
	if err != nil {
		return nil, err
	}
	kvJWE, err := certs.EncryptECDHES(enc, kv, map[string]any{"cty": "JSON"})
	if err != nil {
		return nil, fmt.Errorf("login: key_verifier: %w", err)
	}
	form := url.Values{"grant_type": {"authorization_code"}, "client_id": {clientID}, "code": {code}, "redirect_uri": {redirect}, "key_verifier": {string(kvJWE)}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("User-Agent", userAgent)
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("login: token: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return nil, fmt.Errorf("login: token: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		var eb errorBody
		if json.Unmarshal(body, &eb) == nil && eb.Error != "" {
			return nil, &RefusalError{Status: resp.StatusCode, Code: eb.Error, Description: eb.ErrorDescription}
		}
		return nil, fmt.Errorf("login: token endpoint answered %s", resp.Status)
	}
	var tr TokenResponse
	if err := json.Unmarshal(body, &tr); err != nil {
		return nil, fmt.Errorf("login: token response: %w", err)
	}
	if tr.TokenType != "Bearer" {
		return nil, fmt.Errorf("login: token_type %q", tr.TokenType)
	}
	return &tr, nil
}

// openNJWT decrypts a token JWE (dir/A256GCM, cty NJWT), unwraps njwt and verifies the inner JWS.
func openNJWT(tokenKey []byte, jwe string, sig *ecdsa.PublicKey, typ string) ([]byte, error) {
	plain, hdr, err := certs.DecryptDir(tokenKey, []byte(jwe))
	if err != nil {
		return nil, err
	}
	if hdr["cty"] != "NJWT" {
		return nil, fmt.Errorf("token JWE cty %v, want NJWT", hdr["cty"])
	}
	inner, err := certs.UnwrapNJWT(plain)
	if err != nil {
		return nil, err
	}
	j, err := certs.ParseCompactJWS(inner)
	if err != nil {
		return nil, err
	}
	if j.Header.Typ != typ || j.Header.Kid != "puk_idp_sig" {
		return nil, fmt.Errorf("token header typ %q kid %q, want %s and puk_idp_sig", j.Header.Typ, j.Header.Kid, typ)
	}
	if err := j.Verify(certs.AlgBP256R1, sig); err != nil {
		return nil, err
	}
	return inner, nil
}
