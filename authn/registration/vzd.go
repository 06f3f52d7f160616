package registration

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Domain is the directory's `Domain` schema (I_VZD_TIM_Provider_Services). timAnbieter is read-only and
// only ever read.
type Domain struct {
	Domain          string   `json:"domain"`
	TelematikID     string   `json:"telematikID"`
	IsInsurance     bool     `json:"isInsurance"`
	IK              []string `json:"ik,omitempty"`
	TimAnbieter     *string  `json:"timAnbieter,omitempty"`
	RedirectDomains []string `json:"redirectDomains,omitempty"`
}

// DirectoryError is a refusal by the directory: its status and its own message (gematik's Error schema),
// which the registration API passes on to the Org-Admin.
type DirectoryError struct {
	Op      string
	Status  int
	Message string
}

func (e *DirectoryError) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("directory %s: HTTP %d", e.Op, e.Status)
	}
	return fmt.Sprintf("directory %s: HTTP %d: %s", e.Op, e.Status, e.Message)
}

// DirectoryClient speaks the VZD provider API as a TI-M provider: client credentials at the TI-Provider
// token endpoint, exchanged at /ti-provider-authenticate for the 24 h provider token, which is cached.
type DirectoryClient struct {
	// BaseURL is the directory, e.g. https://fhir-directory.vzd.ti-dienste.de.
	BaseURL string
	// TokenURL defaults to BaseURL + /auth/realms/TI-Provider/protocol/openid-connect/token.
	TokenURL     string
	ClientID     string
	ClientSecret string
	HTTP         *http.Client
	Now          func() time.Time
	// MaxBytes bounds every response body (default 8 MiB; the signed list is the big one).
	MaxBytes int64

	mu      sync.Mutex
	token   string
	expires time.Time
}

const defaultDirectoryMaxBytes = 8 << 20

func (c *DirectoryClient) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

func (c *DirectoryClient) httpClient() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return &http.Client{Timeout: 10 * time.Second}
}

func (c *DirectoryClient) base() string { return strings.TrimRight(c.BaseURL, "/") }

type tokenAnswer struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int64  `json:"expires_in"`
}

// providerToken returns the cached provider token, fetching a new one a minute before it runs out.
func (c *DirectoryClient) providerToken(ctx context.Context) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.token != "" && c.now().Before(c.expires.Add(-time.Minute)) {
		return c.token, nil
	}
	tokenURL := c.TokenURL
	if tokenURL == "" {
		tokenURL = c.base() + "/auth/realms/TI-Provider/protocol/openid-connect/token"
	}
	form := url.Values{"grant_type": {"client_credentials"}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, tokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return "", fmt.Errorf("directory client credentials: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	// Sent as they are: the directory compares them unescaped, and ids and secrets it issues are URL-safe.
	req.SetBasicAuth(c.ClientID, c.ClientSecret)
	var cc tokenAnswer
	if err := c.doJSON(req, "client credentials", &cc); err != nil {
		return "", err
	}
	if cc.AccessToken == "" {
		return "", errors.New("directory client credentials: no access_token")
	}
	req, err = http.NewRequestWithContext(ctx, http.MethodGet, c.base()+"/ti-provider-authenticate", nil)
	if err != nil {
		return "", fmt.Errorf("directory ti-provider-authenticate: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+cc.AccessToken)
	var pt tokenAnswer
	if err := c.doJSON(req, "ti-provider-authenticate", &pt); err != nil {
		return "", err
	}
	if pt.AccessToken == "" || !strings.EqualFold(pt.TokenType, "bearer") {
		return "", errors.New("directory ti-provider-authenticate: no bearer access_token")
	}
	life := time.Duration(pt.ExpiresIn) * time.Second
	if life <= 0 {
		life = 5 * time.Minute
	}
	c.token, c.expires = pt.AccessToken, c.now().Add(life)
	return c.token, nil
}

func (c *DirectoryClient) forgetToken(tok string) {
	c.mu.Lock()
	if c.token == tok {
		c.token = ""
	}
	c.mu.Unlock()
}

func (c *DirectoryClient) maxBytes() int64 {
	if c.MaxBytes > 0 {
		return c.MaxBytes
	}
	return defaultDirectoryMaxBytes
}

// do sends one request and returns status and body; bodies beyond MaxBytes are an error.
func (c *DirectoryClient) do(req *http.Request, op string) (int, []byte, error) {
	resp, err := c.httpClient().Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("directory %s: %w", op, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, c.maxBytes()+1))
	if err != nil {
		return 0, nil, fmt.Errorf("directory %s: %w", op, err)
	}
	if int64(len(body)) > c.maxBytes() {
		return 0, nil, fmt.Errorf("directory %s: response larger than %d bytes", op, c.maxBytes())
	}
	return resp.StatusCode, body, nil
}

func (c *DirectoryClient) doJSON(req *http.Request, op string, out any) error {
	status, body, err := c.do(req, op)
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		return directoryError(op, status, body)
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("directory %s: %w", op, err)
	}
	return nil
}

func directoryError(op string, status int, body []byte) error {
	var e struct {
		Message string `json:"message"`
		Error   string `json:"error"`
	}
	_ = json.Unmarshal(body, &e)
	msg := e.Message
	if msg == "" {
		msg = e.Error
	}
	if len(msg) > 500 {
		msg = msg[:500]
	}
	return &DirectoryError{Op: op, Status: status, Message: msg}
}

// provider sends a request to /tim-provider-services with the provider token; a 401 (token revoked or the
// directory's key rotated) fetches a new token once.
func (c *DirectoryClient) provider(ctx context.Context, method, path string, body any, op string) (int, []byte, error) {
	var payload []byte
	if body != nil {
		var err error
		if payload, err = json.Marshal(body); err != nil {
			return 0, nil, fmt.Errorf("directory %s: %w", op, err)
		}
	}
	for attempt := 0; ; attempt++ {
		tok, err := c.providerToken(ctx)
		if err != nil {
			return 0, nil, err
		}
		req, err := http.NewRequestWithContext(ctx, method, c.base()+"/tim-provider-services"+path, bytes.NewReader(payload))
		if err != nil {
			return 0, nil, fmt.Errorf("directory %s: %w", op, err)
		}
		req.Header.Set("Authorization", "Bearer "+tok)
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		status, b, err := c.do(req, op)
		if err != nil {
			return 0, nil, err
		}
		if status == http.StatusUnauthorized && attempt == 0 {
			c.forgetToken(tok)
			continue
		}
		return status, b, nil
	}
}

// AddDomain registers a domain (POST /federation).
func (c *DirectoryClient) AddDomain(ctx context.Context, d Domain) (Domain, error) {
	status, body, err := c.provider(ctx, http.MethodPost, "/federation", d, "add domain")
	if err != nil {
		return Domain{}, err
	}
	if status != http.StatusOK {
		return Domain{}, directoryError("add domain", status, body)
	}
	var out Domain
	if err := json.Unmarshal(body, &out); err != nil {
		return Domain{}, fmt.Errorf("directory add domain: %w", err)
	}
	return out, nil
}

// DeleteDomain removes a domain (DELETE /federation/{domain}).
func (c *DirectoryClient) DeleteDomain(ctx context.Context, domain string) error {
	status, body, err := c.provider(ctx, http.MethodDelete, "/federation/"+url.PathEscape(domain), nil, "delete domain")
	if err != nil {
		return err
	}
	if status != http.StatusNoContent && status != http.StatusOK {
		return directoryError("delete domain", status, body)
	}
	return nil
}

// Domains lists this provider's domains (GET /federation).
func (c *DirectoryClient) Domains(ctx context.Context) ([]Domain, error) {
	status, body, err := c.provider(ctx, http.MethodGet, "/federation", nil, "list domains")
	if err != nil {
		return nil, err
	}
	if status != http.StatusOK {
		return nil, directoryError("list domains", status, body)
	}
	var out []Domain
	if err := json.Unmarshal(body, &out); err != nil {
		return nil, fmt.Errorf("directory list domains: %w", err)
	}
	return out, nil
}

// FederationCheck returns this provider's domains whose organisation is no longer active
// (GET /federationCheck: 200 with the list, 204 when there are none).
func (c *DirectoryClient) FederationCheck(ctx context.Context) ([]Domain, error) {
	status, body, err := c.provider(ctx, http.MethodGet, "/federationCheck", nil, "federation check")
	if err != nil {
		return nil, err
	}
	switch status {
	case http.StatusNoContent:
		return nil, nil
	case http.StatusOK:
	default:
		return nil, directoryError("federation check", status, body)
	}
	var out struct {
		Inactive []Domain `json:"inactiveOrganizationDomains"`
	}
	if err := json.Unmarshal(body, &out); err != nil {
		return nil, fmt.Errorf("directory federation check: %w", err)
	}
	return out.Inactive, nil
}

// FederationList downloads the BP256R1 list when the directory has one newer than have (-1: none held);
// current is true on 204. The bytes are returned unverified and unchanged.
func (c *DirectoryClient) FederationList(ctx context.Context, have int64) (jws []byte, current bool, err error) {
	path := "/FederationList/federationList.jws?sigAlg=BP256R1"
	if have >= 0 {
		path += "&version=" + strconv.FormatInt(have, 10)
	}
	status, body, err := c.provider(ctx, http.MethodGet, path, nil, "federation list")
	if err != nil {
		return nil, false, err
	}
	switch status {
	case http.StatusNoContent:
		return nil, true, nil
	case http.StatusOK:
		if len(body) == 0 {
			return nil, false, errors.New("directory federation list: 200 with an empty body")
		}
		return body, false, nil
	default:
		return nil, false, directoryError("federation list", status, body)
	}
}
