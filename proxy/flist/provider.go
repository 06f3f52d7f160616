package flist

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Paths of the directory's provider API (vzd-directory-spec §1.6, §4.1).
const (
	providerTokenPath        = "/auth/realms/TI-Provider/protocol/openid-connect/token"
	providerAuthenticatePath = "/ti-provider-authenticate"
	providerListPath         = "/tim-provider-services/FederationList/federationList.jws"
)

// tokenRenewMargin: a cached provider token is renewed this long before it expires, so a request never
// leaves with a token that dies on the way.
const tokenRenewMargin = time.Minute

// maxTokenResponse bounds a token endpoint's JSON answer.
const maxTokenResponse = 64 << 10

// ProviderAPISource fetches the list from the directory's provider API (I_VZD_TIM_Provider_Services), as a
// registration service does: client credentials (realm TI-Provider) → GET /ti-provider-authenticate →
// provider token → GET /tim-provider-services/FederationList/federationList.jws?version=N&sigAlg=….
//
// The provider token is cached until a minute before it expires; a 401 on the list drops it and retries
// once with a fresh one. Create it with the fields below; do not copy it after first use.
type ProviderAPISource struct {
	// BaseURL is the directory's base, e.g. https://vzd.example (no trailing path).
	BaseURL string
	// TokenURL is the client-credentials token endpoint; empty means BaseURL + the Keycloak realm path,
	// which is where our directory serves it.
	TokenURL     string
	ClientID     string
	ClientSecret string
	// SigAlg is BP256R1 (default) or ES256.
	SigAlg string
	HTTP   *http.Client
	// Timeout bounds each HTTP call (default DefaultHTTPTimeout); MaxBytes the list (default
	// DefaultMaxListBytes).
	Timeout  time.Duration
	MaxBytes int64
	// Now is the clock for token expiry; nil means time.Now.
	Now func() time.Time

	mu      sync.Mutex
	token   string
	expires time.Time
}

// Fetch implements Source.
func (s *ProviderAPISource) Fetch(ctx context.Context, haveVersion int64) ([]byte, bool, error) {
	sigAlg := s.SigAlg
	if sigAlg == "" {
		sigAlg = "BP256R1"
	}
	if sigAlg != "BP256R1" && sigAlg != "ES256" {
		return nil, false, fmt.Errorf("provider API: sigAlg must be BP256R1 or ES256, got %q", sigAlg)
	}
	u, err := withVersion(strings.TrimRight(s.BaseURL, "/")+providerListPath, haveVersion, sigAlg)
	if err != nil {
		return nil, false, fmt.Errorf("provider API: %w", err)
	}
	for attempt := 0; ; attempt++ {
		tok, err := s.providerToken(ctx)
		if err != nil {
			return nil, false, fmt.Errorf("provider API: %w", err)
		}
		jws, current, err := s.getList(ctx, u, tok)
		var se *StatusError
		if attempt == 0 && errors.As(err, &se) && se.Code == http.StatusUnauthorized {
			// The directory may have restarted with new signing keys or revoked the token: one retry with a
			// fresh token, never a loop.
			s.dropToken(tok)
			continue
		}
		if err != nil {
			return nil, false, fmt.Errorf("provider API: %w", err)
		}
		return jws, current, nil
	}
}

func (s *ProviderAPISource) getList(ctx context.Context, u, token string) ([]byte, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout(s.Timeout))
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, false, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", "application/octet-stream, application/jose")
	resp, err := client(s.HTTP).Do(req)
	if err != nil {
		return nil, false, err
	}
	defer drain(resp.Body)
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNoContent:
		return nil, true, nil
	default:
		return nil, false, &StatusError{Op: "federation list", Code: resp.StatusCode}
	}
	body, err := readLimited(resp.Body, maxBytes(s.MaxBytes))
	if err != nil {
		return nil, false, fmt.Errorf("federation list: %w", err)
	}
	if len(body) == 0 {
		return nil, false, errors.New("federation list: 200 with an empty body")
	}
	return body, false, nil
}

func (s *ProviderAPISource) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// providerToken returns the cached provider token or obtains a new one. The lock is held across the two
// token calls on purpose: concurrent fetches then share one token instead of each logging in.
func (s *ProviderAPISource) providerToken(ctx context.Context) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.token != "" && s.now().Before(s.expires) {
		return s.token, nil
	}
	s.token = ""
	base := strings.TrimRight(s.BaseURL, "/")
	tokenURL := s.TokenURL
	if tokenURL == "" {
		tokenURL = base + providerTokenPath
	}
	cc, err := s.clientCredentials(ctx, tokenURL)
	if err != nil {
		return "", err
	}
	start := s.now()
	pt, err := s.tokenCall(ctx, "ti-provider-authenticate", func(ctx context.Context) (*http.Request, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+providerAuthenticatePath, nil)
		if err == nil {
			req.Header.Set("Authorization", "Bearer "+cc.AccessToken)
		}
		return req, err
	})
	if err != nil {
		return "", err
	}
	s.token = pt.AccessToken
	// Measured from before the call, so network time never extends the token's life.
	s.expires = start.Add(time.Duration(pt.ExpiresIn)*time.Second - tokenRenewMargin)
	return s.token, nil
}

func (s *ProviderAPISource) clientCredentials(ctx context.Context, tokenURL string) (*tokenResponse, error) {
	if s.ClientID == "" || s.ClientSecret == "" {
		return nil, errors.New("client credentials: client id and secret are required")
	}
	form := url.Values{"grant_type": {"client_credentials"}}.Encode()
	return s.tokenCall(ctx, "client credentials", func(ctx context.Context) (*http.Request, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, tokenURL, strings.NewReader(form))
		if err == nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			// Sent as they are, not form-encoded first (RFC 6749 §2.3.1): our directory compares the raw Basic
			// values, and Keycloak decodes only what needs it. A secret read from a file loses its newline.
			req.SetBasicAuth(s.ClientID, strings.TrimSpace(s.ClientSecret))
		}
		return req, err
	})
}

func (s *ProviderAPISource) tokenCall(ctx context.Context, op string, build func(context.Context) (*http.Request, error)) (*tokenResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout(s.Timeout))
	defer cancel()
	req, err := build(ctx)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := client(s.HTTP).Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	defer drain(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return nil, &StatusError{Op: op, Code: resp.StatusCode}
	}
	body, err := readLimited(resp.Body, maxTokenResponse)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	t, err := parseTokenResponse(body)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	return t, nil
}

func (s *ProviderAPISource) dropToken(tok string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.token == tok {
		s.token = ""
	}
}

// tokenResponse is the part of an OAuth token answer we use.
type tokenResponse struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int64  `json:"expires_in"`
}

// parseTokenResponse decodes a token endpoint's answer. A token without a lifetime (or an absurd one) is
// used for this call only, never cached.
func parseTokenResponse(body []byte) (*tokenResponse, error) {
	var t tokenResponse
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&t); err != nil {
		return nil, fmt.Errorf("token response: %w", err)
	}
	if dec.More() {
		return nil, errors.New("token response: trailing data")
	}
	if t.AccessToken == "" {
		return nil, errors.New("token response: no access_token")
	}
	if strings.ContainsAny(t.AccessToken, " \t\r\n") {
		return nil, errors.New("token response: access_token contains whitespace")
	}
	if t.TokenType != "" && !strings.EqualFold(t.TokenType, "bearer") {
		return nil, fmt.Errorf("token response: token_type %q is not Bearer", t.TokenType)
	}
	const maxLife = 7 * 24 * 3600
	if t.ExpiresIn < 0 || t.ExpiresIn > maxLife {
		t.ExpiresIn = 0
	}
	return &t, nil
}
