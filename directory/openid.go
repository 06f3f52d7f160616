package directory

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// OpenIDVerifier validates a Matrix OpenID token (from POST /_matrix/client/v3/user/{userId}/openid/
// request_token) with the homeserver of serverName and returns the user it belongs to. /tim-authenticate
// uses it; the authn issue may replace it with its shared validator, hence the interface.
type OpenIDVerifier interface {
	UserInfo(ctx context.Context, serverName, token string) (userID string, err error)
}

// ErrOpenIDRefused means the homeserver did not vouch for the token (401 for the caller); any other error
// means the homeserver could not be asked (503).
var ErrOpenIDRefused = errors.New("openid token refused by homeserver")

// Federated reports whether a server name is on our federation list and not deactivated. cmd hands it to
// the shared Matrix OpenID validator (authn/matrixopenid), whose gate must come before any network access.
func (f *Federation) Federated(serverName string) bool {
	d, ok := f.snap.Load().domains[strings.ToLower(serverName)]
	return ok && d.DeactivatedAt.IsZero()
}

// AllowsHost reports whether the federation API of a listed server name may be reached on host: its own
// name or one of the redirectDomains its provider registered (the VZD adds those to its firewall
// allow-list; everything else stays unreachable, so a delegation cannot point us at internal hosts).
func (f *Federation) AllowsHost(serverName, host string) bool {
	d, ok := f.snap.Load().domains[strings.ToLower(serverName)]
	if !ok || !d.DeactivatedAt.IsZero() {
		return false
	}
	if strings.EqualFold(host, d.Domain.Domain) {
		return true
	}
	for _, r := range d.RedirectDomains {
		if strings.EqualFold(host, r) {
			return true
		}
	}
	return false
}

// MatrixOpenID asks the homeserver's federation API: /.well-known/matrix/server of the server name, then
// GET /_matrix/federation/v1/openid/userinfo?access_token=… on the delegated host.
//
// cmd/timstack wires authn/matrixopenid's Validator instead (federation gate, caches, single-flight,
// Matrix default port 8448); this small client stays for tests and embedders that need no caching. Its
// default port 443 follows the VZD HOWTO.
type MatrixOpenID struct {
	Client *http.Client
	// Resolve maps a server name to the base URL of its federation API. Nil means the .well-known lookup
	// over HTTPS with port 443 by default, as the VZD does (HOWTO Authenticate); tests and the dev stack
	// override it with a resolver map.
	Resolve func(ctx context.Context, serverName string) (string, error)
	Timeout time.Duration
}

// UserInfo implements OpenIDVerifier.
func (m *MatrixOpenID) UserInfo(ctx context.Context, serverName, token string) (string, error) {
	timeout := m.Timeout
	if timeout == 0 {
		timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	base, err := m.resolve(ctx, serverName)
	if err != nil {
		return "", fmt.Errorf("openid: resolve %s: %w", serverName, err)
	}
	u := strings.TrimRight(base, "/") + "/_matrix/federation/v1/openid/userinfo?access_token=" + url.QueryEscape(token)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return "", err
	}
	resp, err := m.client().Do(req)
	if err != nil {
		return "", fmt.Errorf("openid: userinfo: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return "", fmt.Errorf("openid: userinfo: %w", err)
	}
	switch {
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return "", ErrOpenIDRefused
	case resp.StatusCode != http.StatusOK:
		return "", fmt.Errorf("openid: userinfo: status %d", resp.StatusCode)
	}
	var info struct {
		Sub string `json:"sub"`
	}
	if err := json.Unmarshal(body, &info); err != nil || info.Sub == "" {
		return "", fmt.Errorf("%w: userinfo has no sub", ErrOpenIDRefused)
	}
	return info.Sub, nil
}

func (m *MatrixOpenID) client() *http.Client {
	if m.Client != nil {
		return m.Client
	}
	return http.DefaultClient
}

func (m *MatrixOpenID) resolve(ctx context.Context, serverName string) (string, error) {
	if m.Resolve != nil {
		return m.Resolve(ctx, serverName)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+serverName+"/.well-known/matrix/server", nil)
	if err != nil {
		return "", err
	}
	resp, err := m.client().Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "https://" + hostWithPort(serverName), nil // no delegation: the server name itself
	}
	var wk struct {
		Server string `json:"m.server"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&wk); err != nil || wk.Server == "" {
		return "", fmt.Errorf("well-known: no m.server")
	}
	return "https://" + hostWithPort(wk.Server), nil
}

// hostWithPort adds the VZD's default port 443 when the name has none.
func hostWithPort(s string) string {
	if _, _, err := net.SplitHostPort(s); err == nil {
		return s
	}
	return net.JoinHostPort(s, "443")
}

// ServerNameOf returns the server name of a Matrix user ID (@localpart:server.name[:port]).
func ServerNameOf(userID string) (string, bool) {
	if !strings.HasPrefix(userID, "@") {
		return "", false
	}
	i := strings.IndexByte(userID, ':')
	if i < 2 || i == len(userID)-1 {
		return "", false
	}
	return userID[i+1:], true
}
