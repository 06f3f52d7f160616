package devidp

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/timstack/timstack/certs"
)

// tokenError is a refused token request: 400 JSON (RFC 6749 §5.2).
type tokenError struct{ code, desc string }

func (e *tokenError) Error() string { return e.code + ": " + e.desc }

func invalidGrant(format string, args ...any) *tokenError {
	return &tokenError{"invalid_grant", fmt.Sprintf(format, args...)}
}

func invalidRequest(format string, args ...any) *tokenError {
	return &tokenError{"invalid_request", fmt.Sprintf(format, args...)}
}

// TokenResponse is the body of a successful token response (§1.3 step 9).
type TokenResponse struct {
	ExpiresIn   int    `json:"expires_in"`
	TokenType   string `json:"token_type"`
	IDToken     string `json:"id_token"`
	AccessToken string `json:"access_token"`
}

// KeyVerifier is the plaintext of the key_verifier JWE a client sends to the token endpoint.
type KeyVerifier struct {
	TokenKey     string `json:"token_key"`
	CodeVerifier string `json:"code_verifier"`
}

func (i *IDP) serveToken(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request", "form: "+err.Error())
		return
	}
	resp, err := i.token(r.PostForm)
	if err != nil {
		var te *tokenError
		if !errors.As(err, &te) {
			i.log.Error("devidp: token", "err", err)
			writeError(w, http.StatusInternalServerError, "server_error", "could not issue tokens")
			return
		}
		i.log.Info("devidp: token request refused", "reason", te.desc)
		writeError(w, http.StatusBadRequest, te.code, te.desc)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

// ParseTokenRequest checks the form of a token request and returns its parameters. It does not decrypt
// anything.
func ParseTokenRequest(form url.Values) (clientID, code, redirectURI, keyVerifier string, err error) {
	for _, p := range []struct {
		name  string
		limit int
	}{{"grant_type", maxParamLen}, {"client_id", maxParamLen}, {"code", maxJWELen}, {"redirect_uri", maxParamLen}, {"key_verifier", maxJWELen}} {
		vs := form[p.name]
		if len(vs) != 1 || vs[0] == "" {
			return "", "", "", "", invalidRequest("parameter %s missing or repeated", p.name)
		}
		if len(vs[0]) > p.limit {
			return "", "", "", "", invalidRequest("parameter %s longer than %d bytes", p.name, p.limit)
		}
	}
	if gt := form.Get("grant_type"); gt != "authorization_code" {
		return "", "", "", "", &tokenError{"unsupported_grant_type", fmt.Sprintf("grant_type %q not supported", gt)}
	}
	return form.Get("client_id"), form.Get("code"), form.Get("redirect_uri"), form.Get("key_verifier"), nil
}

// parseKeyVerifier decodes the key_verifier plaintext strictly.
func parseKeyVerifier(plain []byte) (tokenKey []byte, verifier string, err error) {
	dec := json.NewDecoder(bytes.NewReader(plain))
	dec.DisallowUnknownFields()
	var kv KeyVerifier
	if err := dec.Decode(&kv); err != nil {
		return nil, "", fmt.Errorf("key_verifier plaintext: %w", err)
	}
	if dec.More() {
		return nil, "", errors.New("key_verifier plaintext: trailing data")
	}
	tokenKey, err = base64.RawURLEncoding.DecodeString(kv.TokenKey)
	if err != nil || len(tokenKey) != 32 {
		return nil, "", errors.New("key_verifier: token_key is not base64url of 32 bytes")
	}
	if !isCodeVerifier(kv.CodeVerifier) {
		return nil, "", errors.New("key_verifier: code_verifier is not 43–128 unreserved characters (RFC 7636)")
	}
	return tokenKey, kv.CodeVerifier, nil
}

// isCodeVerifier checks RFC 7636 §4.1.
func isCodeVerifier(s string) bool {
	if len(s) < 43 || len(s) > 128 {
		return false
	}
	for _, c := range s {
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || strings.ContainsRune("-._~", c)) {
			return false
		}
	}
	return true
}

// S256 returns BASE64URL(SHA-256(verifier)), the PKCE code_challenge.
func S256(verifier string) string {
	h := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(h[:])
}

// token runs the token endpoint: code authenticity, expiry and single use, client binding, PKCE, then the
// ID and access tokens encrypted under the client's token_key.
func (i *IDP) token(form url.Values) (*TokenResponse, error) {
	clientID, code, redirectURI, keyVerifier, err := ParseTokenRequest(form)
	if err != nil {
		return nil, err
	}
	plain, hdr, err := certs.DecryptDir(i.codeKey, []byte(code))
	if err != nil {
		return nil, invalidGrant("code not issued by this IDP or tampered with: %v", err)
	}
	var cc codeClaims
	inner, err := certs.UnwrapNJWT(plain)
	if err != nil {
		return nil, invalidGrant("code: %v", err)
	}
	if err := i.verifyOwnJWT(inner, "JWT", &cc); err != nil {
		return nil, invalidGrant("code: %v", err)
	}
	if hexp, ok := numberClaim(hdr["exp"]); !ok || hexp != cc.Exp || cc.TokenType != "code" || cc.Iss != i.issuer {
		return nil, invalidGrant("code: not an authorization code of this IDP")
	}
	now := i.now()
	if now.Unix() > cc.Exp {
		return nil, invalidGrant("code expired at %s", time.Unix(cc.Exp, 0).UTC().Format(time.RFC3339))
	}
	if err := i.consumeCode(cc.JTI, time.Unix(cc.Exp, 0)); err != nil {
		return nil, invalidGrant("%v", err)
	}
	if clientID != cc.ClientID {
		return nil, invalidGrant("client_id %q does not match the code's client", clientID)
	}
	if redirectURI != cc.RedirectURI {
		return nil, invalidGrant("redirect_uri %q does not match the authorization request", redirectURI)
	}
	kvPlain, kvHdr, err := certs.DecryptECDHES(i.keys.IDPEnc.Key, []byte(keyVerifier))
	if err != nil {
		return nil, invalidRequest("key_verifier: cannot decrypt for puk_idp_enc: %v", err)
	}
	if cty, present := kvHdr["cty"]; present && cty != "JSON" {
		return nil, invalidRequest("key_verifier: JWE header cty %v, want JSON", cty)
	}
	tokenKey, verifier, err := parseKeyVerifier(kvPlain)
	if err != nil {
		return nil, invalidRequest("%v", err)
	}
	if subtle.ConstantTimeCompare([]byte(S256(verifier)), []byte(cc.CodeChallenge)) != 1 {
		return nil, invalidGrant("PKCE: code_verifier does not match code_challenge")
	}
	return i.issueTokens(&cc, tokenKey, now)
}

// issueTokens builds, signs and encrypts the ID and access tokens (§1.5).
func (i *IDP) issueTokens(cc *codeClaims, tokenKey []byte, now time.Time) (*TokenResponse, error) {
	exp := now.Add(TokenLifetime).Unix()
	sub := i.pairwiseSub(cc.ClientID, cc.IDNummer)
	identity := func(m map[string]any) map[string]any {
		m["iss"], m["sub"], m["iat"], m["exp"], m["auth_time"] = i.issuer, sub, now.Unix(), exp, cc.AuthTime
		m["acr"], m["amr"], m["azp"], m["jti"] = ACR, AMR, cc.ClientID, randomHex(8)
		m["idNummer"], m["professionOID"], m["organizationName"] = cc.IDNummer, cc.ProfessionOID, cc.OrganizationName
		for k, v := range map[string]string{"given_name": cc.GivenName, "family_name": cc.FamilyName, "display_name": cc.DisplayName, "organizationIK": cc.OrganizationIK} {
			if v != "" {
				m[k] = v
			}
		}
		return m
	}
	at, err := i.signJWT("at+JWT", identity(map[string]any{"client_id": cc.ClientID, "aud": i.atAudience, "scope": cc.Scope}))
	if err != nil {
		return nil, err
	}
	atHash := sha256.Sum256(at)
	idClaims := identity(map[string]any{"aud": cc.ClientID, "at_hash": base64.RawURLEncoding.EncodeToString(atHash[:16])})
	if cc.Nonce != "" {
		idClaims["nonce"] = cc.Nonce
	}
	id, err := i.signJWT("JWT", idClaims)
	if err != nil {
		return nil, err
	}
	idJWE, err := encryptNJWT(tokenKey, id, exp)
	if err != nil {
		return nil, err
	}
	atJWE, err := encryptNJWT(tokenKey, at, exp)
	if err != nil {
		return nil, err
	}
	return &TokenResponse{ExpiresIn: int(TokenLifetime / time.Second), TokenType: "Bearer", IDToken: string(idJWE), AccessToken: string(atJWE)}, nil
}

// pairwiseSub is base64url(SHA-256(aud ‖ idNummer ‖ salt)), pairwise per client (§1.4).
func (i *IDP) pairwiseSub(aud, idNummer string) string {
	h := sha256.New()
	h.Write([]byte(aud))
	h.Write([]byte(idNummer))
	h.Write(i.salt)
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil))
}
