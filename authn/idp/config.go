package idp

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/timstack/timstack/certs"
)

// DefaultScope is the scope a TI-Messenger RP asks for: the ti-messenger claims idNummer, professionOID and
// organizationName.
const DefaultScope = "openid ti-messenger"

// Lifetimes and bounds. They are constants rather than options because each follows from the protocol: the
// IDP's challenge lives 3 min and the code 1 min, so 10 min covers any honest login; the ID token may live at
// most 24 h (gemSpec_IDP_Dienst), and 60 s is the clock skew we tolerate against the IDP.
const (
	loginTTL         = 10 * time.Minute
	maxClockSkew     = 60 * time.Second
	maxIDTokenLife   = 24 * time.Hour
	maxDiscoveryLife = 24 * time.Hour
	forcedReloadGap  = 5 * time.Minute
	maxPending       = 10000
	maxReplayEntries = 100000
	maxBodyBytes     = 1 << 20
	httpTimeout      = 15 * time.Second
	userAgent        = "timstack-idp-rp/1"
)

// Config configures a RelyingParty. Issuer, ClientID, RedirectURI and Trust are required.
type Config struct {
	// Issuer is the IDP's issuer as it appears in the discovery document and in every ID token's iss.
	Issuer string
	// DiscoveryURL defaults to Issuer + "/.well-known/openid-configuration".
	DiscoveryURL string
	// ClientID and RedirectURI are registered with gematik (idp-registrierung@gematik.de).
	ClientID, RedirectURI string
	// Scope defaults to DefaultScope; it must contain "openid".
	Scope string
	// Trust holds the component CAs (GEM.KOMP-CA…) the discovery and puk_idp_sig certificates chain to.
	Trust *certs.TrustStore
	// Revocation checks the IDP's signer certificates (OCSP). nil is allowed only when !Production.
	Revocation certs.RevocationChecker
	// Production refuses TEST-ONLY anchors, http:// and loopback issuers and a missing Revocation.
	Production bool
	// HTTPClient talks to the IDP. nil uses a client with a 15 s timeout that does not follow redirects.
	HTTPClient *http.Client
	// Now is the clock of every decision; nil means time.Now.
	Now func() time.Time
	// Logger receives refusals (never tokens); nil discards.
	Logger *slog.Logger
}

// RelyingParty runs logins against one IDP-Dienst. It is safe for concurrent use.
type RelyingParty struct {
	cfg  Config
	log  *slog.Logger
	now  func() time.Time
	hc   *http.Client
	rand io.Reader // crypto/rand.Reader; tests make it deterministic to precompute IDP answers

	keys *keyCache

	pending    *pendingStore
	usedStates *ttlSet // consumed states, so a second use says "replay" rather than "unknown"
	usedCodes  *ttlSet
	jtis       *ttlSet
}

// New validates cfg and returns a RelyingParty. Discovery is loaded lazily on first use, so a temporarily
// unreachable IDP does not stop the service from starting.
func New(cfg Config) (*RelyingParty, error) {
	if err := cfg.normalize(); err != nil {
		return nil, err
	}
	rp := &RelyingParty{
		cfg:        cfg,
		log:        cfg.Logger,
		now:        cfg.Now,
		hc:         cfg.HTTPClient,
		rand:       rand.Reader,
		pending:    newPendingStore(maxPending),
		usedStates: newTTLSet(maxPending),
		usedCodes:  newTTLSet(maxPending),
		jtis:       newTTLSet(maxReplayEntries),
	}
	rp.keys = &keyCache{rp: rp, sem: make(chan struct{}, 1)}
	return rp, nil
}

// normalize fills defaults and collects every problem, so one failed start names all of them.
func (c *Config) normalize() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }

	if c.Scope == "" {
		c.Scope = DefaultScope
	}
	if !containsWord(c.Scope, "openid") {
		bad("scope %q lacks openid", c.Scope)
	}
	if c.ClientID == "" {
		bad("client_id is required")
	}
	if c.Issuer == "" {
		bad("issuer is required")
	} else if err := checkEndpointURL(c.Issuer, c.Production); err != nil {
		bad("issuer: %w", err)
	}
	if c.DiscoveryURL == "" && c.Issuer != "" {
		c.DiscoveryURL = strings.TrimSuffix(c.Issuer, "/") + "/.well-known/openid-configuration"
	}
	if c.DiscoveryURL != "" {
		if err := checkEndpointURL(c.DiscoveryURL, c.Production); err != nil {
			bad("discovery URL: %w", err)
		}
	}
	if c.RedirectURI == "" {
		bad("redirect_uri is required")
	} else if u, err := url.Parse(c.RedirectURI); err != nil || !u.IsAbs() || u.Fragment != "" {
		bad("redirect_uri %q is not an absolute URI without fragment", c.RedirectURI)
	} else if c.Production && u.Scheme != "https" {
		bad("redirect_uri %q: production requires https", c.RedirectURI)
	}
	if c.Trust == nil {
		bad("trust store is required (GEM.KOMP-CA anchors for the IDP signers)")
	} else if c.Production && c.Trust.HasTestOnlyAnchor() {
		bad("production configuration with a TEST-ONLY trust anchor")
	}
	if c.Production && isNilChecker(c.Revocation) {
		bad("production configuration without revocation checking")
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %w", ErrConfig, errors.Join(errs...))
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{
			Timeout: httpTimeout,
			// The IDP answers directly; following a redirect would let a network attacker point us elsewhere.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// checkEndpointURL accepts an absolute http(s) URL; production demands https and a non-loopback host, which
// keeps a dev IDP (http://127.0.0.1:…) out of a production configuration.
func checkEndpointURL(raw string, production bool) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("%q: %w", raw, err)
	}
	if u.Scheme != "https" && u.Scheme != "http" {
		return fmt.Errorf("%q: scheme must be https", raw)
	}
	if u.Host == "" || u.User != nil || u.Fragment != "" || u.RawQuery != "" {
		return fmt.Errorf("%q: need a plain absolute URL (host, no user info, query or fragment)", raw)
	}
	if !production {
		return nil
	}
	if u.Scheme != "https" {
		return fmt.Errorf("%q: production requires https", raw)
	}
	if isLoopbackHost(u.Hostname()) {
		return fmt.Errorf("%q: production refuses a loopback host", raw)
	}
	return nil
}

func isLoopbackHost(host string) bool {
	h := strings.TrimSuffix(strings.ToLower(host), ".")
	if h == "localhost" || strings.HasSuffix(h, ".localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && (ip.IsLoopback() || ip.IsUnspecified())
}

// isNilChecker also catches a typed nil pointer inside the interface, which would otherwise look configured.
func isNilChecker(c certs.RevocationChecker) bool {
	if c == nil {
		return true
	}
	if o, ok := c.(*certs.OCSPChecker); ok && o == nil {
		return true
	}
	return false
}

func containsWord(list, word string) bool {
	for _, w := range strings.Fields(list) {
		if w == word {
			return true
		}
	}
	return false
}
