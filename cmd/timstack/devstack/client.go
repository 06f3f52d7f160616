package devstack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"time"

	"github.com/timstack/timstack/authn/devidp"
	"github.com/timstack/timstack/proxy/e2e/mxclient"
	"github.com/timstack/timstack/proxy/sso"
)

// ClientRedirect is where the walkthrough's headless client asks to be sent with its loginToken; it never
// serves anything: the client reads the loginToken from the redirect itself.
const ClientRedirect = "http://127.0.0.1/timstack-client/done"

// browser is a cookie-keeping HTTP client that does not follow redirects, so each hop can be inspected.
func browser() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}
}

// SmartcardLogin logs a card holder into the node's homeserver through the proxy's SSO bridge, exactly as a
// Matrix client with a browser would: /login/sso/redirect → IDP (the dev IDP's Authenticator signs the
// challenge with the card) → proxy callback → redirectUrl?loginToken → POST /login m.login.token.
func SmartcardLogin(ctx context.Context, nd *Node, card *devidp.Card, idpID string) (*mxclient.Client, error) {
	b := browser()
	start := nd.ClientURL + "/_matrix/client/v3/login/sso/redirect/" + idpID + "?redirectUrl=" + url.QueryEscape(ClientRedirect)
	authURL, err := redirectOf(ctx, b, start)
	if err != nil {
		return nil, fmt.Errorf("sso redirect: %w", err)
	}
	code, state, err := devidp.Authenticate(ctx, b, authURL, card)
	if err != nil {
		return nil, fmt.Errorf("IDP: %w", err)
	}
	cb := nd.ClientURL + sso.CallbackPath + "?code=" + url.QueryEscape(code) + "&state=" + url.QueryEscape(state)
	done, err := redirectOf(ctx, b, cb)
	if err != nil {
		return nil, fmt.Errorf("sso callback: %w", err)
	}
	u, err := url.Parse(done)
	if err != nil || !strings.HasPrefix(done, ClientRedirect) || u.Query().Get("loginToken") == "" {
		return nil, fmt.Errorf("sso callback redirected to %q, want %s?loginToken=…", done, ClientRedirect)
	}
	c := &mxclient.Client{BaseURL: nd.ClientURL}
	status, body, err := c.Raw(ctx, http.MethodPost, "/_matrix/client/v3/login",
		map[string]any{"type": "m.login.token", "token": u.Query().Get("loginToken")})
	if err != nil {
		return nil, fmt.Errorf("login: %w", err)
	}
	if status != http.StatusOK {
		return nil, fmt.Errorf("login: %d %s", status, body)
	}
	var lr struct {
		UserID      string `json:"user_id"`
		AccessToken string `json:"access_token"`
		DeviceID    string `json:"device_id"`
	}
	if err := json.Unmarshal(body, &lr); err != nil || lr.AccessToken == "" {
		return nil, fmt.Errorf("login: unexpected answer %s", body)
	}
	c.UserID, c.AccessToken, c.DeviceID = lr.UserID, lr.AccessToken, lr.DeviceID
	return c, nil
}

// redirectOf GETs target and returns the Location of its 302/303; any other answer is an error quoting the
// body (a Matrix error from the proxy says why).
func redirectOf(ctx context.Context, hc *http.Client, target string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return "", err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusFound && resp.StatusCode != http.StatusSeeOther {
		return "", &HTTPError{Status: resp.StatusCode, Body: string(body)}
	}
	loc := resp.Header.Get("Location")
	if loc == "" {
		return "", errors.New("redirect without Location")
	}
	return loc, nil
}

// HTTPError is a non-redirect, non-success answer.
type HTTPError struct {
	Status int
	Body   string
}

func (e *HTTPError) Error() string {
	return fmt.Sprintf("HTTP %d: %s", e.Status, strings.TrimSpace(e.Body))
}
