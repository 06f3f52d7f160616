// Package matrixopenid validates Matrix OpenID tokens (POST /_matrix/client/v3/user/{userId}/openid/
// request_token) by asking the issuing homeserver's federation API, GET /_matrix/federation/v1/openid/
// userinfo. The directory's /tim-authenticate, the registration service and /tim-information share it
// (smartcard-auth-spec.md §3.4, §7.7).
//
// Order of checks: the claimed server must be on the federation list before any network access (the token
// names an arbitrary host, so this gate is the SSRF protection); then its federation base URL is resolved
// through /.well-known/matrix/server; then userinfo must answer with a sub on exactly that server (and the
// MXID the caller asserted, if any).
//
// Default port. The Matrix specification's server-name resolution uses port 8448 when neither the server
// name nor the m.server delegation names a port. The VZD HOWTO describes 443 instead. We follow the Matrix
// specification: userinfo is a federation endpoint, and a homeserver whose m.server carries no port is
// reached by every federating peer on 8448, so 8448 is where its federation API demonstrably is; a
// homeserver that only listens on 443 must say so in m.server (the tim-ref proxy always writes the port).
// Config.DefaultPort overrides this for a deployment that must mimic the VZD. SRV records
// (_matrix-fed._tcp) are not consulted: the TI-M homeservers publish .well-known.
package matrixopenid

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Errors of Validate. Every returned error wraps exactly one of them and says why.
var (
	// ErrNotFederated: the claimed server is not on the federation list; nothing was sent anywhere.
	ErrNotFederated = errors.New("matrix openid: server not on the federation list")
	// ErrRefused: the homeserver did not vouch for the token, or vouched for a user other than the one
	// claimed (other server, other MXID). The caller answers 401.
	ErrRefused = errors.New("matrix openid: token refused")
	// ErrUnavailable: the homeserver could not be asked (resolution, network, timeout, unexpected status).
	// The caller answers 503.
	ErrUnavailable = errors.New("matrix openid: homeserver unavailable")
)

// Limits and defaults.
const (
	// MaxCacheTTL caps how long a positive answer is reused: a token revoked at the homeserver (logout)
	// stays accepted here at most this long.
	MaxCacheTTL = time.Hour
	// WellKnownTTL is how long a resolved federation base URL is reused (the VZD re-discovers every 24 h).
	WellKnownTTL = 24 * time.Hour
	// wellKnownFallbackTTL applies when .well-known was absent or invalid and the server name itself is
	// used: shorter, so a homeserver that fixes its delegation is picked up within the hour.
	wellKnownFallbackTTL = time.Hour
	// wellKnownDownTTL applies when .well-known could not be fetched at all (connection error).
	wellKnownDownTTL = 2 * time.Minute
	// DefaultTimeout bounds one validation's network work (resolution plus userinfo).
	DefaultTimeout = 5 * time.Second
	// DefaultMaxCache is the number of cached tokens and resolved servers kept by default.
	DefaultMaxCache = 10000
	// DefaultMaxLookupsPerSecond is the default per-server rate of userinfo calls.
	DefaultMaxLookupsPerSecond = 20
	// MatrixFederationPort is the Matrix specification's default federation port.
	MatrixFederationPort = 8448
	// maxTokenLength refuses absurd tokens before they reach a URL (Synapse's are 24 characters).
	maxTokenLength = 1024
	maxRedirects   = 3
)

// Config configures a Validator.
type Config struct {
	// Federated reports whether a server name is on the TI-Messenger federation list. Required: a
	// Validator without it would call any host a token names.
	Federated func(serverName string) bool
	// Resolve maps a federated server name to the base URL of its federation API ("https://host:port").
	// Nil means Matrix server-name resolution through https://<server>/.well-known/matrix/server, cached
	// for WellKnownTTL. Tests and the dev stack pass a fixed map.
	Resolve func(ctx context.Context, serverName string) (baseURL string, err error)
	// AllowHost reports whether the federation API of serverName may be reached on host, a host other
	// than serverName's own that an m.server delegation or a .well-known redirect names. The directory
	// answers it from the domain's registered redirectDomains, as the VZD's firewall allow-list does.
	// Nil: any delegation is followed (Matrix behaviour) and redirects only to federated hosts.
	AllowHost func(serverName, host string) bool
	// HTTPClient makes the .well-known and userinfo calls (default http.DefaultClient). Redirects are
	// followed only for .well-known (see AllowHost); userinfo redirects are refused.
	HTTPClient *http.Client
	// Timeout bounds the network work of one lookup (default DefaultTimeout).
	Timeout time.Duration
	// Now is the clock of the caches (default time.Now).
	Now func() time.Time
	// MaxCache bounds each cache (tokens, resolved servers); default DefaultMaxCache.
	MaxCache int
	// DefaultPort is used when neither the server name nor m.server names a port (default 8448, see the
	// package documentation).
	DefaultPort int
	// MaxLookupsPerSecond bounds the userinfo calls made to one server (cache hits and joined lookups do
	// not count), so a flood of invented tokens at our endpoint does not become a flood at the homeserver.
	// The burst is twice the rate (at least 1). 0 means DefaultMaxLookupsPerSecond; negative means unlimited.
	MaxLookupsPerSecond float64
	// Logger receives resolution fallbacks and refusals (never a token). Default: discard.
	Logger *slog.Logger
}

// Validator validates Matrix OpenID tokens. It is safe for concurrent use.
type Validator struct {
	federated   func(string) bool
	allowHost   func(string, string) bool
	resolve     func(context.Context, string) (string, error)
	client      *http.Client // userinfo: no redirects
	wkClient    *http.Client // .well-known: redirects to federated hosts only
	timeout     time.Duration
	now         func() time.Time
	maxCache    int
	defaultPort int
	log         *slog.Logger

	rate float64 // lookups per second per server; ≤ 0 unlimited

	mu       sync.Mutex
	buckets  map[string]*bucket
	tokens   map[tokenKey]tokenEntry
	servers  map[string]serverEntry
	inflight map[tokenKey]*call
	// resolving holds the .well-known resolutions in flight, by server name.
	resolving map[string]*resolveCall
}

// resolveCall is one server-name resolution in flight.
type resolveCall struct {
	done chan struct{}
	base string
	err  error
}

type tokenKey struct {
	hash   [sha256.Size]byte
	server string
}

type tokenEntry struct {
	mxid    string
	expires time.Time
}

type serverEntry struct {
	base    string
	expires time.Time
}

// bucket is a token bucket of userinfo calls to one server.
type bucket struct {
	tokens float64
	last   time.Time
}

// call is one userinfo lookup in flight; concurrent validations of the same token wait for it.
type call struct {
	done chan struct{}
	mxid string
	err  error
}

// NewValidator checks cfg and returns a Validator.
func NewValidator(cfg Config) (*Validator, error) {
	if cfg.Federated == nil {
		return nil, errors.New("matrix openid: Config.Federated is required")
	}
	v := &Validator{
		federated:   cfg.Federated,
		allowHost:   cfg.AllowHost,
		resolve:     cfg.Resolve,
		timeout:     cfg.Timeout,
		now:         cfg.Now,
		maxCache:    cfg.MaxCache,
		defaultPort: cfg.DefaultPort,
		log:         cfg.Logger,
		rate:        cfg.MaxLookupsPerSecond,
		buckets:     map[string]*bucket{},
		tokens:      map[tokenKey]tokenEntry{},
		servers:     map[string]serverEntry{},
		inflight:    map[tokenKey]*call{},
		resolving:   map[string]*resolveCall{},
	}
	if v.timeout <= 0 {
		v.timeout = DefaultTimeout
	}
	if v.now == nil {
		v.now = time.Now
	}
	if v.rate == 0 {
		v.rate = DefaultMaxLookupsPerSecond
	}
	if v.maxCache <= 0 {
		v.maxCache = DefaultMaxCache
	}
	if v.defaultPort == 0 {
		v.defaultPort = MatrixFederationPort
	}
	if v.defaultPort < 1 || v.defaultPort > 65535 {
		return nil, fmt.Errorf("matrix openid: default port %d out of range", v.defaultPort)
	}
	if v.log == nil {
		v.log = slog.New(slog.DiscardHandler)
	}
	base := cfg.HTTPClient
	if base == nil {
		base = http.DefaultClient
	}
	// Copies, so the caller's client keeps its own redirect policy.
	uc := *base
	uc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	v.client = &uc
	wc := *base
	wc.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if len(via) >= maxRedirects {
			return errors.New("too many redirects")
		}
		if req.URL.Scheme != "https" {
			return fmt.Errorf("redirect to a non-https URL")
		}
		// via[0] asked the server name's own host (names with a port never fetch .well-known).
		if server, h := strings.ToLower(via[0].URL.Hostname()), strings.ToLower(req.URL.Hostname()); !v.hostAllowed(server, h) {
			return fmt.Errorf("redirect to %q, which is not allowed for %s", h, server)
		}
		return nil
	}
	v.wkClient = &wc
	return v, nil
}

// Validate checks token with the homeserver of serverName and returns the user it belongs to. When
// wantMXID is non-empty the token must belong to exactly that user. A positive answer is cached for at most
// MaxCacheTTL.
func (v *Validator) Validate(ctx context.Context, token, serverName, wantMXID string) (string, error) {
	return v.ValidateExpiring(ctx, token, serverName, wantMXID, 0)
}

// ValidateExpiring is Validate for a caller that knows the token's expires_in (from the request_token
// answer): the positive answer is cached no longer than that. expiresIn ≤ 0 means unknown.
func (v *Validator) ValidateExpiring(ctx context.Context, token, serverName, wantMXID string, expiresIn time.Duration) (string, error) {
	serverName = strings.ToLower(strings.TrimSpace(serverName))
	// The federation gate comes before anything else, even grammar checks, so that nothing about an
	// unlisted host is ever looked at or contacted.
	if serverName == "" || !v.federated(serverName) {
		return "", fmt.Errorf("%w: %q", ErrNotFederated, serverName)
	}
	if _, _, err := ParseServerName(serverName); err != nil {
		return "", fmt.Errorf("%w: %v", ErrNotFederated, err)
	}
	if token == "" || len(token) > maxTokenLength {
		return "", fmt.Errorf("%w: token empty or longer than %d bytes", ErrRefused, maxTokenLength)
	}
	var wantLocal, wantServer string
	if wantMXID != "" {
		var err error
		if wantLocal, wantServer, err = ParseMXID(wantMXID); err != nil {
			return "", fmt.Errorf("%w: claimed user ID: %v", ErrRefused, err)
		}
		if !sameServer(wantServer, serverName) {
			return "", fmt.Errorf("%w: claimed user %s is not on %s", ErrRefused, wantMXID, serverName)
		}
	}
	mxid, err := v.lookup(ctx, tokenKey{hash: sha256.Sum256([]byte(token)), server: serverName}, token, expiresIn)
	if err != nil {
		return "", err
	}
	if wantMXID != "" {
		local, _, _ := ParseMXID(mxid) // checked by lookup
		if local != wantLocal {
			return "", fmt.Errorf("%w: token belongs to %s, not %s", ErrRefused, mxid, wantMXID)
		}
	}
	return mxid, nil
}

// lookup answers from the cache, joins a lookup in flight, or asks the homeserver.
func (v *Validator) lookup(ctx context.Context, key tokenKey, token string, expiresIn time.Duration) (string, error) {
	v.mu.Lock()
	if e, ok := v.tokens[key]; ok {
		if v.now().Before(e.expires) {
			v.mu.Unlock()
			return e.mxid, nil
		}
		delete(v.tokens, key)
	}
	c, joined := v.inflight[key]
	if !joined {
		if !v.takeLocked(key.server) {
			v.mu.Unlock()
			return "", fmt.Errorf("%w: too many lookups at %s, try again shortly", ErrUnavailable, key.server)
		}
		c = &call{done: make(chan struct{})}
		v.inflight[key] = c
	}
	v.mu.Unlock()

	if !joined {
		// The lookup runs detached from this caller's cancellation (but under our own timeout), so that
		// one impatient caller does not fail the others waiting for the same answer.
		go v.run(context.WithoutCancel(ctx), key, token, expiresIn, c)
	}
	select {
	case <-c.done:
		return c.mxid, c.err
	case <-ctx.Done():
		return "", fmt.Errorf("%w: %w", ErrUnavailable, ctx.Err())
	}
}

// takeLocked takes one lookup from server's bucket. Only federated servers get here, so the map is
// bounded by the federation list.
func (v *Validator) takeLocked(server string) bool {
	if v.rate <= 0 {
		return true
	}
	now, burst := v.now(), max(1, 2*v.rate)
	b, ok := v.buckets[server]
	if !ok {
		b = &bucket{tokens: burst, last: now}
		v.buckets[server] = b
	}
	if d := now.Sub(b.last); d > 0 {
		b.tokens = min(burst, b.tokens+d.Seconds()*v.rate)
	}
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

func (v *Validator) run(ctx context.Context, key tokenKey, token string, expiresIn time.Duration, c *call) {
	ctx, cancel := context.WithTimeout(ctx, v.timeout)
	defer cancel()
	started := v.now()
	c.mxid, c.err = v.ask(ctx, key.server, token)
	v.mu.Lock()
	delete(v.inflight, key)
	if c.err == nil {
		ttl := MaxCacheTTL
		if expiresIn > 0 && expiresIn < ttl {
			ttl = expiresIn
		}
		// The lifetime counts from the moment we asked, not from when the answer came.
		makeRoom(v.tokens, v.maxCache, v.now(), func(e tokenEntry) time.Time { return e.expires })
		v.tokens[key] = tokenEntry{mxid: c.mxid, expires: started.Add(ttl)}
	}
	v.mu.Unlock()
	close(c.done)
}

// makeRoom makes room for one entry in a cache: first expired entries go, then arbitrary ones (map order),
// so a flood of distinct tokens or server names cannot grow memory without bound.
func makeRoom[K comparable, E any](m map[K]E, max int, now time.Time, expires func(E) time.Time) {
	if len(m) < max {
		return
	}
	for k, e := range m {
		if !now.Before(expires(e)) {
			delete(m, k)
		}
	}
	for k := range m {
		if len(m) < max {
			return
		}
		delete(m, k)
	}
}

// ask performs resolution and the userinfo call.
func (v *Validator) ask(ctx context.Context, serverName, token string) (string, error) {
	base, err := v.baseURL(ctx, serverName)
	if err != nil {
		return "", fmt.Errorf("%w: resolve %s: %v", ErrUnavailable, serverName, err)
	}
	u := strings.TrimRight(base, "/") + "/_matrix/federation/v1/openid/userinfo?access_token=" + url.QueryEscape(token)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return "", fmt.Errorf("%w: userinfo request for %s: invalid base URL", ErrUnavailable, serverName)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := v.client.Do(req)
	if err != nil {
		// The error text of net/http contains the URL, and the URL the token: report only the kind.
		return "", fmt.Errorf("%w: userinfo of %s: %s", ErrUnavailable, serverName, redactErr(err))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxUserInfoBytes+1))
	if err != nil {
		return "", fmt.Errorf("%w: userinfo of %s: reading the answer: %s", ErrUnavailable, serverName, redactErr(err))
	}
	switch {
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return "", fmt.Errorf("%w: %s answered %d", ErrRefused, serverName, resp.StatusCode)
	case resp.StatusCode != http.StatusOK:
		return "", fmt.Errorf("%w: userinfo of %s: status %d", ErrUnavailable, serverName, resp.StatusCode)
	case len(body) > maxUserInfoBytes:
		return "", fmt.Errorf("%w: userinfo of %s larger than %d bytes", ErrRefused, serverName, maxUserInfoBytes)
	}
	sub, err := parseUserInfo(body)
	if err != nil {
		return "", fmt.Errorf("%w: %s: %v", ErrRefused, serverName, err)
	}
	_, subServer, _ := ParseMXID(sub)
	if !sameServer(subServer, serverName) {
		return "", fmt.Errorf("%w: %s vouched for %s, a user of another server", ErrRefused, serverName, sub)
	}
	return sub, nil
}

// redactErr reduces a client error to text without the request URL (which carries the token).
func redactErr(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "timeout"
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "timeout"
	}
	return err.Error()
}

// baseURL returns the federation base URL of serverName, from Config.Resolve or the cached well-known
// resolution.
func (v *Validator) baseURL(ctx context.Context, serverName string) (string, error) {
	if v.resolve != nil {
		return v.resolve(ctx, serverName)
	}
	v.mu.Lock()
	if e, ok := v.servers[serverName]; ok && v.now().Before(e.expires) {
		v.mu.Unlock()
		return e.base, nil
	}
	// Lookups of different tokens for a server not yet resolved share one .well-known fetch.
	rc, joined := v.resolving[serverName]
	if !joined {
		rc = &resolveCall{done: make(chan struct{})}
		v.resolving[serverName] = rc
	}
	v.mu.Unlock()
	if joined {
		select {
		case <-rc.done:
			return rc.base, rc.err
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
	base, ttl, err := v.discover(ctx, serverName)
	v.mu.Lock()
	delete(v.resolving, serverName)
	if err == nil {
		makeRoom(v.servers, v.maxCache, v.now(), func(e serverEntry) time.Time { return e.expires })
		v.servers[serverName] = serverEntry{base: base, expires: v.now().Add(ttl)}
	}
	rc.base, rc.err = base, err
	v.mu.Unlock()
	close(rc.done)
	return base, err
}

// discover implements Matrix server-name resolution without SRV: an IP literal or an explicit port is
// used as is; otherwise .well-known/matrix/server delegates; when that is absent or invalid, the server
// name itself on the default port.
func (v *Validator) discover(ctx context.Context, serverName string) (base string, ttl time.Duration, err error) {
	host, port, err := ParseServerName(serverName)
	if err != nil {
		return "", 0, err
	}
	if port != 0 || net.ParseIP(host) != nil {
		return v.hostURL(host, port), WellKnownTTL, nil
	}
	dhost, dport, answered, err := v.fetchWellKnown(ctx, host)
	if err != nil {
		if ctx.Err() != nil {
			return "", 0, ctx.Err()
		}
		// An answer without a usable delegation is a statement of the server (cache it an hour); no
		// answer at all may be a passing outage, so the fallback is retried soon.
		ttl := wellKnownFallbackTTL
		if !answered {
			ttl = wellKnownDownTTL
		}
		v.log.Info("matrix openid: no usable .well-known/matrix/server, using the server name", "server_name", serverName, "reason", err.Error())
		return v.hostURL(host, 0), ttl, nil
	}
	if v.allowHost != nil && !v.hostAllowed(serverName, strings.ToLower(dhost)) {
		return "", 0, fmt.Errorf("m.server delegates to %q, which is not allowed for %s", dhost, serverName)
	}
	return v.hostURL(dhost, dport), WellKnownTTL, nil
}

func (v *Validator) hostURL(host string, port int) string {
	if port == 0 {
		port = v.defaultPort
	}
	return "https://" + net.JoinHostPort(host, strconv.Itoa(port))
}

// hostAllowed decides whether serverName's federation traffic may go to host: its own host always;
// another host if AllowHost says so, or, without AllowHost, for redirects when the host is federated.
func (v *Validator) hostAllowed(serverName, host string) bool {
	if strings.EqualFold(serverName, host) {
		return true
	}
	if v.allowHost != nil {
		return v.allowHost(serverName, host)
	}
	return v.federated(host)
}

func (v *Validator) fetchWellKnown(ctx context.Context, host string) (dhost string, dport int, answered bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+host+"/.well-known/matrix/server", nil)
	if err != nil {
		return "", 0, false, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := v.wkClient.Do(req)
	if err != nil {
		return "", 0, false, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		// 5xx is an outage, not a statement about delegation.
		return "", 0, resp.StatusCode < 500, fmt.Errorf("status %d", resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxWellKnownBytes+1))
	if err != nil {
		return "", 0, false, err
	}
	if len(body) > maxWellKnownBytes {
		return "", 0, true, fmt.Errorf("larger than %d bytes", maxWellKnownBytes)
	}
	dhost, dport, err = parseWellKnown(body)
	return dhost, dport, true, err
}
