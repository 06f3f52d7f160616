// Package sso logs smartcard holders into any homeserver through the Messenger-Proxy: the proxy is the
// login edge, speaks Matrix v1.11 SSO towards the client and the gematik IDP-Dienst protocol towards the
// IDP (authn/idp), and obtains the homeserver session through the application service. The homeserver
// needs no SSO module and no OIDC configuration.
//
// The flow, top to bottom:
//
//  1. GET /login advertises m.login.sso (identity providers "gematik IDP" for the eHBA, "gematik IDP
//     (SMC-B)" for institutions), m.login.token and, when enabled, the direct type for headless clients;
//  2. GET /login/sso/redirect/{idpId}?redirectUrl= checks redirectUrl against the configured prefixes, binds
//     the login to the browser with a cookie and redirects to the IDP's authorization endpoint;
//  3. the IDP redirects the browser to the callback; the relying party verifies the ID token (PKCE, state,
//     nonce, signature, claims); the profession policy admits the card;
//  4. the Matrix account comes from the configured mapping of (Telematik-ID, profession OID) — never from
//     sub — and is created through the application service when new, display name "Name, Vorname";
//  5. the browser goes back to redirectUrl with a single-use loginToken valid for at most two minutes;
//  6. POST /login {"type":"m.login.token"} redeems it: the proxy logs the user in with
//     m.login.application_service and returns the homeserver's access token.
//
// Headless clients (bots, the conformance suite) skip the browser: POST /login with the direct type and a
// fresh IDP ID token issued to the proxy's client_id (TypeIDPToken).
package sso

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/timstack/timstack/authn/idp"
	"github.com/timstack/timstack/proxy/appservice"
	"github.com/timstack/timstack/proxy/mxerr"
)

// Login types.
const (
	TypeSSO   = "m.login.sso"
	TypeToken = "m.login.token"
	// TypeIDPToken is the direct login of headless clients: {"type": TypeIDPToken, "token": "<ID token JWS>"}.
	TypeIDPToken = "de.timstack.login.gematik_idp"
)

// Identity provider IDs announced in m.login.sso.
const (
	IDPPractitioner = "gematik"
	IDPInstitution  = "gematik-smcb"
)

// CallbackPath is where the IDP sends the browser back; it is outside /_matrix so no client route can
// collide with it.
const CallbackPath = "/_timstack/sso/callback"

// MaxLoginTokenTTL caps the loginToken's validity (the issue and Synapse's default: two minutes).
const MaxLoginTokenTTL = 2 * time.Minute

const (
	pendingTTL = 10 * time.Minute
	// maxPending bounds logins in flight; when full the oldest is dropped (an unauthenticated client can
	// start logins, so refusing new ones when full would let it lock everyone out).
	maxPending = 10000
	// maxTokens bounds issued loginTokens (each needs a verified IDP login): 100 000 ≈ 800 logins a second
	// for two minutes.
	maxTokens    = 100000
	cookiePrefix = "timstack_sso_"
)

// RelyingParty is the IDP-Dienst relying party (*idp.RelyingParty).
type RelyingParty interface {
	Begin(ctx context.Context, opts idp.BeginOptions) (authURL, state string, err error)
	Complete(ctx context.Context, state, code string) (*idp.Identity, error)
	VerifyIDToken(ctx context.Context, idToken []byte, nonce string) (*idp.Identity, error)
}

// Homeserver is what the bridge needs from the application service (*appservice.Client).
type Homeserver interface {
	EnsureUser(ctx context.Context, localpart string) (created bool, err error)
	SetDisplayName(ctx context.Context, userID, name string) error
	LoginAs(ctx context.Context, userID, deviceID string) (*appservice.Login, error)
}

// Config is the sso section of the proxy configuration.
type Config struct {
	Enabled bool `yaml:"enabled"`
	// PublicURL is the client listener's URL as browsers reach it; the IDP redirects to PublicURL +
	// CallbackPath, which must be the redirect_uri registered for ClientID.
	PublicURL string `yaml:"public_url"`
	// AllowedRedirects are URL prefixes a client's redirectUrl must start with. A loginToken is a session
	// for whoever receives it, so an open redirect would hand sessions to any page; empty refuses all.
	AllowedRedirects []string `yaml:"allowed_redirects"`
	// LoginTokenTTL is the loginToken's validity (default and maximum 2m).
	LoginTokenTTL time.Duration `yaml:"login_token_ttl"`
	// DirectLogin enables TypeIDPToken for headless clients.
	DirectLogin bool `yaml:"direct_login"`
	// PasswordLogin keeps the homeserver's own login types (password) next to the smartcard; off, the proxy
	// refuses them so every session starts at a card.
	PasswordLogin bool          `yaml:"password_login"`
	Mapping       MappingConfig `yaml:"mapping"`
	// IDP configures the relying party (built by the proxy).
	IDP IDPConfig `yaml:"idp"`
}

// IDPConfig configures the IDP-Dienst relying party.
type IDPConfig struct {
	Issuer   string `yaml:"issuer"`
	ClientID string `yaml:"client_id"`
	// TrustDir holds the PEM CA certificates the IDP's signer certificates chain to (KOMP-CA).
	TrustDir string `yaml:"trust_dir"`
	// OCSP is "require" (default) or "off" for the IDP's signer certificates; off is for the dev IDP
	// (whose gematik test certificates name responders that cannot be reached here) and refused in
	// production.
	OCSP string `yaml:"ocsp"`
	// Production refuses TEST-ONLY trust anchors and a loopback or plain-HTTP issuer.
	Production bool `yaml:"production"`
}

// Validate checks the section and fills defaults; errors name the field.
func (c *Config) Validate() error {
	if !c.Enabled {
		return nil
	}
	u, err := url.Parse(c.PublicURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" {
		return fmt.Errorf("sso.public_url: %q is not an absolute http(s) URL", c.PublicURL)
	}
	c.PublicURL = strings.TrimRight(c.PublicURL, "/")
	for i, p := range c.AllowedRedirects {
		if u, err := url.Parse(p); err != nil || u.Scheme == "" || u.Host == "" {
			return fmt.Errorf("sso.allowed_redirects[%d]: %q is not an absolute URL prefix", i, p)
		}
	}
	switch {
	case c.LoginTokenTTL == 0:
		c.LoginTokenTTL = MaxLoginTokenTTL
	case c.LoginTokenTTL < 0 || c.LoginTokenTTL > MaxLoginTokenTTL:
		return fmt.Errorf("sso.login_token_ttl: must be in (0, %s]", MaxLoginTokenTTL)
	}
	if err := c.Mapping.Validate(); err != nil {
		return fmt.Errorf("sso.%w", err)
	}
	if c.IDP.Issuer == "" {
		return errors.New("sso.idp.issuer: required")
	}
	if c.IDP.ClientID == "" {
		return errors.New("sso.idp.client_id: required")
	}
	if c.IDP.TrustDir == "" {
		return errors.New("sso.idp.trust_dir: required")
	}
	switch c.IDP.OCSP {
	case "":
		c.IDP.OCSP = "require"
	case "require":
	case "off":
		if c.IDP.Production {
			return errors.New("sso.idp.ocsp: off is refused with production: true")
		}
	default:
		return fmt.Errorf("sso.idp.ocsp: %q is neither require nor off", c.IDP.OCSP)
	}
	return nil
}

// CallbackURL is the redirect_uri registered at the IDP.
func (c *Config) CallbackURL() string { return c.PublicURL + CallbackPath }

// Bridge runs the smartcard login. Safe for concurrent use; login state lives in memory (a restart only
// aborts logins in flight, which the user retries).
type Bridge struct {
	cfg        Config
	rp         RelyingParty
	hs         Homeserver
	serverName string
	log        *slog.Logger
	now        func() time.Time

	mu      sync.Mutex
	pending map[string]*pendingLogin // by IDP state
	tokens  map[[32]byte]*loginToken // by SHA-256 of the loginToken
	// Both kinds of entries live a fixed time, so insertion order is expiry order: sweeping pops expired
	// entries off the front instead of scanning the maps.
	pendingOrder []expiring[string]
	tokenOrder   []expiring[[32]byte]
}

type expiring[K comparable] struct {
	key     K
	expires time.Time
}

// popExpired deletes the expired front of order from m and returns the rest.
func popExpired[K comparable, V any](order []expiring[K], m map[K]V, now time.Time) []expiring[K] {
	i := 0
	for ; i < len(order) && now.After(order[i].expires); i++ {
		delete(m, order[i].key)
	}
	// Reslicing drops the expired prefix without copying the rest; the next append that outgrows the array
	// copies only live entries, so memory stays within twice the live entries.
	return order[i:]
}

type pendingLogin struct {
	redirect   string
	cookieHash [32]byte
	expires    time.Time
}

type loginToken struct {
	userID  string
	expires time.Time
	used    bool
}

// New builds a bridge; cfg must be validated.
func New(cfg Config, rp RelyingParty, hs Homeserver, serverName string, log *slog.Logger, now func() time.Time) *Bridge {
	if log == nil {
		log = slog.Default()
	}
	if now == nil {
		now = time.Now
	}
	return &Bridge{
		cfg: cfg, rp: rp, hs: hs, serverName: serverName, log: log, now: now,
		pending: map[string]*pendingLogin{}, tokens: map[[32]byte]*loginToken{},
	}
}

// Flows is the answer to GET /login.
func (b *Bridge) Flows() map[string]any {
	flows := []map[string]any{
		{"type": TypeSSO, "identity_providers": []map[string]string{
			{"id": IDPPractitioner, "name": "gematik IDP"},
			{"id": IDPInstitution, "name": "gematik IDP (SMC-B)"},
		}},
		{"type": TypeToken},
	}
	if b.cfg.DirectLogin {
		flows = append(flows, map[string]any{"type": TypeIDPToken})
	}
	if b.cfg.PasswordLogin {
		flows = append(flows, map[string]any{"type": "m.login.password"})
	}
	return map[string]any{"flows": flows}
}

// Redirect starts a login: GET /login/sso/redirect[/{idpId}]?redirectUrl=…
func (b *Bridge) Redirect(w http.ResponseWriter, r *http.Request, idpID string) error {
	cardType := "HBA"
	switch idpID {
	case "", IDPPractitioner:
	case IDPInstitution:
		cardType = "SMC-B"
	default:
		return mxerr.New(http.StatusNotFound, "M_NOT_FOUND", "Unknown identity provider")
	}
	redirect := r.URL.Query().Get("redirectUrl")
	if !b.redirectAllowed(redirect) {
		b.log.Info("sso redirect refused: redirectUrl not allowed", "redirect_url", redirect)
		return mxerr.New(http.StatusBadRequest, "M_INVALID_PARAM", "redirectUrl is missing or not an allowed client URL")
	}
	authURL, state, err := b.rp.Begin(r.Context(), idp.BeginOptions{CardType: cardType})
	if err != nil {
		b.log.Warn("sso: cannot start IDP login", "err", err)
		return mxerr.New(http.StatusServiceUnavailable, "M_UNKNOWN", "The identity provider is not available").Wrap(err)
	}
	cookie := randomToken()
	now := b.now()
	b.mu.Lock()
	b.sweepLocked(now)
	for len(b.pending) >= maxPending && len(b.pendingOrder) > 0 {
		delete(b.pending, b.pendingOrder[0].key)
		b.pendingOrder = b.pendingOrder[1:]
	}
	b.pending[state] = &pendingLogin{redirect: redirect, cookieHash: sha256.Sum256([]byte(cookie)), expires: now.Add(pendingTTL)}
	b.pendingOrder = append(b.pendingOrder, expiring[string]{state, now.Add(pendingTTL)})
	b.mu.Unlock()
	http.SetCookie(w, &http.Cookie{
		Name: cookieName(state), Value: cookie, Path: CallbackPath, MaxAge: int(pendingTTL / time.Second),
		HttpOnly: true, Secure: strings.HasPrefix(b.cfg.PublicURL, "https://"), SameSite: http.SameSiteLaxMode,
	})
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, authURL, http.StatusFound)
	return nil
}

// Callback finishes the IDP part: GET CallbackPath?code=…&state=… (or error=…).
func (b *Bridge) Callback(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	state := q.Get("state")
	b.mu.Lock()
	p := b.pending[state]
	delete(b.pending, state) // single use, whatever happens next
	b.mu.Unlock()
	if p == nil || b.now().After(p.expires) {
		return mxerr.Forbidden("Unknown or expired login attempt; start the login again")
	}
	c, err := r.Cookie(cookieName(state))
	if err != nil || subtle.ConstantTimeCompare(hashOf(c.Value), p.cookieHash[:]) != 1 {
		// The code arrived in a browser that did not start this login (login CSRF).
		b.log.Warn("sso callback refused: browser binding cookie missing or wrong")
		return mxerr.Forbidden("This login was started in another browser")
	}
	if e := q.Get("error"); e != "" {
		b.log.Info("sso: IDP refused the card", "error", e, "description", q.Get("error_description"))
		return mxerr.Forbidden("The identity provider refused the login: " + sanitize(q.Get("error_description"), e))
	}
	id, err := b.rp.Complete(r.Context(), state, q.Get("code"))
	if err != nil {
		b.log.Warn("sso: IDP token refused", "err", err)
		return mxerr.Forbidden("The login could not be verified").Wrap(err)
	}
	userID, err := b.account(r.Context(), id)
	if err != nil {
		return err
	}
	token, err := b.issueLoginToken(userID)
	if err != nil {
		return err
	}
	target, _ := url.Parse(p.redirect) // checked by redirectAllowed
	tq := target.Query()
	tq.Set("loginToken", token)
	target.RawQuery = tq.Encode()
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, target.String(), http.StatusFound)
	return nil
}

// LoginResponse is the body of a successful POST /login.
type LoginResponse struct {
	UserID      string `json:"user_id"`
	AccessToken string `json:"access_token"`
	DeviceID    string `json:"device_id"`
	HomeServer  string `json:"home_server"`
}

// Login handles POST /login. handled is false for login types the bridge leaves to the homeserver (only
// when PasswordLogin is on).
func (b *Bridge) Login(ctx context.Context, body []byte) (resp *LoginResponse, handled bool, err error) {
	var req struct {
		Type     string `json:"type"`
		Token    string `json:"token"`
		DeviceID string `json:"device_id"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, true, mxerr.BadJSON("Login body is not valid JSON")
	}
	var userID string
	switch req.Type {
	case TypeToken:
		if userID, err = b.redeem(req.Token); err != nil {
			return nil, true, err
		}
	case TypeIDPToken:
		if !b.cfg.DirectLogin {
			return nil, true, mxerr.New(http.StatusBadRequest, "M_UNKNOWN", "Unknown login type")
		}
		id, err := b.rp.VerifyIDToken(ctx, []byte(req.Token), "")
		if err != nil {
			b.log.Info("sso: direct IDP token refused", "err", err)
			return nil, true, mxerr.Forbidden("The IDP token could not be verified").Wrap(err)
		}
		if userID, err = b.account(ctx, id); err != nil {
			return nil, true, err
		}
	case "m.login.application_service":
		// Only the proxy itself logs in this way, with the as_token; a client never needs to.
		return nil, true, mxerr.Forbidden("Login type not available through the proxy")
	default:
		if b.cfg.PasswordLogin {
			return nil, false, nil
		}
		return nil, true, mxerr.Forbidden("Log in with your smartcard (m.login.sso)")
	}
	l, err := b.hs.LoginAs(ctx, userID, req.DeviceID)
	if err != nil {
		b.log.Warn("sso: homeserver login through the application service failed", "user_id", userID, "err", err)
		return nil, true, mxerr.New(http.StatusBadGateway, "M_UNKNOWN", "The homeserver did not open a session").Wrap(err)
	}
	b.log.Info("sso login", "user_id", l.UserID, "device_id", l.DeviceID, "type", req.Type)
	return &LoginResponse{UserID: l.UserID, AccessToken: l.AccessToken, DeviceID: l.DeviceID, HomeServer: b.serverName}, true, nil
}

// account admits a verified card identity and returns its Matrix user, creating it when new.
func (b *Bridge) account(ctx context.Context, id *idp.Identity) (string, error) {
	if err := idp.CheckProfession(id, idp.UseMatrixLogin); err != nil {
		b.log.Info("sso: profession refused", "profession_oid", id.ProfessionOID, "err", err)
		return "", mxerr.Forbidden("This card's profession may not log in here").Wrap(err)
	}
	lp, err := b.cfg.Mapping.Localpart(id.TelematikID, id.ProfessionOID)
	if err != nil {
		b.log.Info("sso: card not mapped to an account", "telematik_id", id.TelematikID, "profession_oid", id.ProfessionOID)
		return "", mxerr.Forbidden("No Matrix account is mapped to this card").Wrap(err)
	}
	userID := "@" + lp + ":" + b.serverName
	created, err := b.hs.EnsureUser(ctx, lp)
	if err != nil {
		return "", mxerr.New(http.StatusBadGateway, "M_UNKNOWN", "The homeserver could not provide the account").Wrap(err)
	}
	if created {
		// Set once, at creation: later the user owns the display name.
		if name := DisplayName(id); name != "" {
			if err := b.hs.SetDisplayName(ctx, userID, name); err != nil {
				b.log.Warn("sso: display name not set", "user_id", userID, "err", err)
			}
		}
		b.log.Info("sso: account created", "user_id", userID, "telematik_id", id.TelematikID)
	}
	return userID, nil
}

// DisplayName is "Name, Vorname" for a person's card and the organisation name for an institution's.
func DisplayName(id *idp.Identity) string {
	switch {
	case id.FamilyName != "" && id.GivenName != "":
		return id.FamilyName + ", " + id.GivenName
	case id.FamilyName != "":
		return id.FamilyName
	case id.OrganizationName != "":
		return id.OrganizationName
	}
	return id.DisplayName
}

func (b *Bridge) issueLoginToken(userID string) (string, error) {
	token := randomToken()
	now := b.now()
	b.mu.Lock()
	defer b.mu.Unlock()
	b.sweepLocked(now)
	if len(b.tokens) >= maxTokens {
		return "", mxerr.New(http.StatusTooManyRequests, "M_LIMIT_EXCEEDED", "Too many logins in progress")
	}
	key := sha256.Sum256([]byte(token))
	b.tokens[key] = &loginToken{userID: userID, expires: now.Add(b.cfg.LoginTokenTTL)}
	b.tokenOrder = append(b.tokenOrder, expiring[[32]byte]{key, now.Add(b.cfg.LoginTokenTTL)})
	return token, nil
}

// redeem consumes a loginToken. A used token stays known until it expires, so a replay gets its own
// message rather than "unknown".
func (b *Bridge) redeem(token string) (string, error) {
	if token == "" {
		return "", mxerr.New(http.StatusBadRequest, "M_MISSING_PARAM", "token is required")
	}
	now := b.now()
	b.mu.Lock()
	defer b.mu.Unlock()
	t := b.tokens[sha256.Sum256([]byte(token))]
	switch {
	case t == nil:
		return "", mxerr.Forbidden("Invalid login token")
	case t.used:
		b.log.Warn("sso: login token replayed", "user_id", t.userID)
		return "", mxerr.Forbidden("Login token already used")
	case now.After(t.expires):
		return "", mxerr.Forbidden("Login token expired")
	}
	t.used = true
	return t.userID, nil
}

func (b *Bridge) sweepLocked(now time.Time) {
	b.pendingOrder = popExpired(b.pendingOrder, b.pending, now)
	b.tokenOrder = popExpired(b.tokenOrder, b.tokens, now)
}

// redirectAllowed: an absolute http(s) URL starting with a configured prefix, no fragment, no userinfo.
func (b *Bridge) redirectAllowed(raw string) bool {
	u, err := url.Parse(raw)
	if raw == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		u.User != nil || u.Fragment != "" {
		return false
	}
	for _, p := range b.cfg.AllowedRedirects {
		if strings.HasPrefix(raw, p) {
			return true
		}
	}
	return false
}

func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func hashOf(s string) []byte { h := sha256.Sum256([]byte(s)); return h[:] }

func cookieName(state string) string {
	h := sha256.Sum256([]byte(state))
	return cookiePrefix + hex.EncodeToString(h[:6])
}

// sanitize keeps an IDP's error text printable and short before it reaches a client.
func sanitize(desc, fallback string) string {
	if desc == "" {
		desc = fallback
	}
	desc = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, desc)
	if len(desc) > 200 {
		desc = desc[:200]
	}
	return desc
}
