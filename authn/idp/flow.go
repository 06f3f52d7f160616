package idp

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/timstack/timstack/certs"
)

// BeginOptions tune one login.
type BeginOptions struct {
	// CardType is "HBA", "SMC-B" or empty. The gematik Authenticator (since 4.4) reads it from the
	// authorization URL to pick the card.
	CardType string
}

// Card types the Authenticator understands.
const (
	CardTypeHBA  = "HBA"
	CardTypeSMCB = "SMC-B"
)

// maxCodeLen bounds the authorization code we forward: the real one is a JWE of about 2 KB.
const maxCodeLen = 16 << 10

// Begin creates state, nonce and PKCE verifier (kept server-side, single use, 10 min) and returns the
// authorization URL built from the verified discovery document's authorization_endpoint.
func (rp *RelyingParty) Begin(ctx context.Context, opts BeginOptions) (authURL, state string, err error) {
	switch opts.CardType {
	case "", CardTypeHBA, CardTypeSMCB:
	default:
		return "", "", fmt.Errorf("%w: card type %q (want HBA or SMC-B)", ErrConfig, opts.CardType)
	}
	k, err := rp.keys.get(ctx)
	if err != nil {
		return "", "", err
	}
	var vals [3]string
	for i := range vals {
		if vals[i], err = rp.randomString(32); err != nil {
			return "", "", err
		}
	}
	state, nonce, verifier := vals[0], vals[1], vals[2]
	now := rp.now()
	if !rp.pending.put(state, pending{nonce: nonce, verifier: verifier, expires: now.Add(loginTTL)}, now) {
		return "", "", fmt.Errorf("%w: too many logins in progress", ErrState)
	}
	u, err := url.Parse(k.disc.AuthorizationEndpoint)
	if err != nil {
		return "", "", fmt.Errorf("%w: authorization_endpoint: %w", ErrDiscovery, err)
	}
	q := url.Values{}
	q.Set("client_id", rp.cfg.ClientID)
	q.Set("response_type", "code")
	q.Set("redirect_uri", rp.cfg.RedirectURI)
	q.Set("state", state)
	q.Set("code_challenge", pkceChallenge(verifier))
	q.Set("code_challenge_method", "S256")
	q.Set("scope", rp.cfg.Scope)
	q.Set("nonce", nonce)
	if opts.CardType != "" {
		q.Set("cardType", opts.CardType)
	}
	u.RawQuery = q.Encode()
	return u.String(), state, nil
}

func pkceChallenge(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

func (rp *RelyingParty) randomString(n int) (string, error) {
	b := make([]byte, n)
	if _, err := io.ReadFull(rp.rand, b); err != nil {
		return "", fmt.Errorf("idp: random: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// Complete consumes state, exchanges the code with key_verifier, decrypts, verifies and validates the ID
// token, and returns the identity. Profession policy is the caller's (CheckProfession).
func (rp *RelyingParty) Complete(ctx context.Context, state, code string) (*Identity, error) {
	now := rp.now()
	if state == "" {
		return nil, fmt.Errorf("%w: no state", ErrState)
	}
	p, ok := rp.pending.take(state)
	if !ok {
		if rp.usedStates.contains(state, now) {
			return nil, fmt.Errorf("%w: %w: state already used", ErrState, ErrReplay)
		}
		return nil, fmt.Errorf("%w: state unknown or expired", ErrState)
	}
	rp.usedStates.add(state, p.expires, now) // best effort: a full set only loses the "replay" wording
	if !now.Before(p.expires) {
		return nil, fmt.Errorf("%w: login older than %s", ErrState, loginTTL)
	}
	if code == "" || len(code) > maxCodeLen {
		return nil, fmt.Errorf("%w: authorization code missing or longer than %d bytes", ErrTokenInvalid, maxCodeLen)
	}
	switch rp.usedCodes.add(code, now.Add(loginTTL), now) {
	case seenBefore:
		return nil, fmt.Errorf("%w: authorization code already used", ErrReplay)
	case setFull:
		return nil, fmt.Errorf("%w: code replay cache full", ErrState)
	}

	k, err := rp.keys.get(ctx)
	if err != nil {
		return nil, err
	}
	tokenKey := make([]byte, 32)
	defer clear(tokenKey)
	if _, err := io.ReadFull(rp.rand, tokenKey); err != nil {
		return nil, fmt.Errorf("idp: random: %w", err)
	}
	kv, err := keyVerifier(k, tokenKey, p.verifier)
	if err != nil {
		return nil, err
	}
	body, err := rp.postToken(ctx, k.disc.TokenEndpoint, url.Values{
		"grant_type":   {"authorization_code"},
		"client_id":    {rp.cfg.ClientID},
		"code":         {code},
		"redirect_uri": {rp.cfg.RedirectURI},
		"key_verifier": {string(kv)},
	})
	if err != nil {
		return nil, err
	}
	tr, err := parseTokenResponse(body)
	if err != nil {
		return nil, err
	}
	return rp.finishTokenResponse(ctx, tr, tokenKey, p.nonce)
}

// keyVerifier encrypts {"token_key","code_verifier"} to puk_idp_enc (ECDH-ES, A256GCM, cty JSON).
func keyVerifier(k *idpKeys, tokenKey []byte, verifier string) ([]byte, error) {
	plain, err := json.Marshal(struct {
		TokenKey     string `json:"token_key"`
		CodeVerifier string `json:"code_verifier"`
	}{base64.RawURLEncoding.EncodeToString(tokenKey), verifier})
	if err != nil {
		return nil, fmt.Errorf("idp: key_verifier: %w", err)
	}
	defer clear(plain)
	kv, err := certs.EncryptECDHES(k.enc, plain, map[string]any{"cty": "JSON"})
	if err != nil {
		return nil, fmt.Errorf("idp: key_verifier: %w", err)
	}
	return kv, nil
}

func (rp *RelyingParty) postToken(ctx context.Context, endpoint string, form url.Values) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrTokenEndpoint, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", userAgent)
	resp, err := rp.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrTokenEndpoint, err)
	}
	defer resp.Body.Close()
	body, err := readBounded(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrTokenEndpoint, err)
	}
	if resp.StatusCode != http.StatusOK {
		// The OAuth error code says why (invalid_grant for a bad code or PKCE mismatch); the description is
		// free text from the IDP and is left out.
		var e struct {
			Error string `json:"error"`
		}
		_ = json.Unmarshal(body, &e)
		return nil, fmt.Errorf("%w: status %d, error %q", ErrTokenEndpoint, resp.StatusCode, truncate(e.Error, 64))
	}
	return body, nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
