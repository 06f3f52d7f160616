// Package devidp is a development IDP speaking the gematik IDP-Dienst protocol (gemSpec_IDP_Dienst, as the
// reference server does) with the real cryptography — BP256R1 JWS, BP-256 ECDH-ES, dir/A256GCM, njwt
// nesting, a signed discovery document — and gematik's published TEST-ONLY keys. It also plays the gematik
// Authenticator and Konnektor for test cards (Authenticate), so the relying-party code of package
// authn/idp runs end to end offline, in CI and in the dev stack.
//
// It refuses to start with keys that are not TEST-ONLY and serves loopback issuers only. It is not an
// IDP for anything but development.
package devidp

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/timstack/timstack/certs"
)

// Lifetimes of the reference server (§1.6).
const (
	DiscoveryLifetime = 24 * time.Hour
	ChallengeLifetime = 3 * time.Minute
	CodeLifetime      = time.Minute
	TokenLifetime     = 300 * time.Second
)

// ACR and AMR the IDP-Dienst asserts for a card login with PIN.
const ACR = "gematik-ehealth-loa-high"

// AMR is the authentication-methods reference of a smartcard login with PIN.
var AMR = []string{"mfa", "sc", "pin"}

// maxPending bounds the challenge and code replay stores, so a client looping on GET /auth cannot grow
// memory without limit; beyond it the IDP answers 503 until entries expire.
const maxPending = 100000

// Config configures the development IDP.
type Config struct {
	// Issuer is the IDP's base URL, http(s)://127.0.0.1:PORT (or localhost, [::1]); loopback only, no path.
	Issuer string
	// Keys are disc_sig, idp_sig and idp_enc (LoadKeys or EmbeddedTestKeys); their certificates must be
	// TEST-ONLY.
	Keys *Keys
	// CardTrust holds the CAs the card certificates must chain to (the test CAs). Required.
	CardTrust *certs.TrustStore
	// Revocation checks the card certificates (OCSP, e.g. a TestOCSP); nil = not checked, logged loudly.
	Revocation certs.RevocationChecker
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger receives the start banner and one line per refusal; nil discards.
	Logger *slog.Logger

	// RedirectURIs, when non-nil, registers clients: client_id → allowed redirect URIs. Nil accepts any
	// client_id with any absolute http(s) redirect_uri (the dev default).
	RedirectURIs map[string][]string
	// AccessTokenAudience is the access token's aud (the real IDP uses the resource server configured for
	// the scope); empty means Issuer + "/ti-messenger".
	AccessTokenAudience string
	// DevIdentities, when non-nil, enables the convenience login GET /auth?…&dev_identity=NAME: the IDP
	// signs its own challenge with the named card (EmbeddedTestCards), runs the same checks as for a
	// card-signed challenge and redirects, so a plain browser logs in without an Authenticator.
	DevIdentities map[string]*Card
	// SubjectSalt salts the pairwise sub; nil derives a fixed salt from the idp_sig certificate, so subs are
	// stable across restarts with the same keys.
	SubjectSalt []byte
}

// IDP is the development IDP. Create it with New; it is safe for concurrent use.
type IDP struct {
	issuer     string
	keys       *Keys
	cardTrust  *certs.TrustStore
	revocation certs.RevocationChecker
	now        func() time.Time
	log        *slog.Logger
	clients    map[string][]string
	devCards   map[string]*Card
	atAudience string
	salt       []byte
	// codeKey encrypts authorization codes (dir/A256GCM); codes die with the process, as they live 1 min.
	codeKey []byte

	mu         sync.Mutex
	challenges map[string]time.Time // jti → exp of challenges issued and not yet presented
	usedChal   map[string]time.Time // jti → exp of challenges already presented
	usedCodes  map[string]time.Time // jti → exp of codes already redeemed
}

// New checks the configuration and returns the IDP. It refuses keys whose certificates are not TEST-ONLY
// and non-loopback issuers, and logs a warning banner.
func New(cfg Config) (*IDP, error) {
	issuer, err := checkIssuer(cfg.Issuer)
	if err != nil {
		return nil, err
	}
	if cfg.Keys == nil {
		return nil, errors.New("devidp: no keys (use EmbeddedTestKeys or LoadKeys)")
	}
	if err := cfg.Keys.check(); err != nil {
		return nil, err
	}
	if cfg.CardTrust == nil {
		return nil, errors.New("devidp: no card trust store")
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	// An expired IDP certificate would make every relying party refuse the discovery document with a
	// chain error far from the cause; say it here.
	for _, kp := range []KeyPair{cfg.Keys.DiscSig, cfg.Keys.IDPSig, cfg.Keys.IDPEnc} {
		if t := now(); !kp.Cert.ValidAt(t) {
			return nil, fmt.Errorf("devidp: key certificate %q is not valid at %s (valid %s – %s)", kp.Cert.Subject.String(),
				t.UTC().Format(time.RFC3339), kp.Cert.NotBefore.Format(time.RFC3339), kp.Cert.NotAfter.Format(time.RFC3339))
		}
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	salt := cfg.SubjectSalt
	if salt == nil {
		s := sha256.Sum256(append([]byte("timstack devidp subject salt\x00"), cfg.Keys.IDPSig.Cert.Raw...))
		salt = s[:]
	}
	aud := cfg.AccessTokenAudience
	if aud == "" {
		aud = issuer + "/ti-messenger"
	}
	codeKey := make([]byte, 32)
	if _, err := rand.Read(codeKey); err != nil {
		return nil, fmt.Errorf("devidp: code key: %w", err)
	}
	i := &IDP{
		issuer: issuer, keys: cfg.Keys, cardTrust: cfg.CardTrust, revocation: cfg.Revocation, now: now, log: log,
		clients: cfg.RedirectURIs, devCards: cfg.DevIdentities, atAudience: aud, salt: salt, codeKey: codeKey,
		challenges: map[string]time.Time{}, usedChal: map[string]time.Time{}, usedCodes: map[string]time.Time{},
	}
	log.Warn("DEVELOPMENT IDP — NOT FOR PRODUCTION",
		"banner", "********************************************************************************\n"+
			"*  timstack DEVELOPMENT IDP with gematik's PUBLISHED TEST-ONLY keys.            *\n"+
			"*  Anyone can sign as this IDP. Never point a production relying party at it.  *\n"+
			"********************************************************************************",
		"issuer", issuer, "idp_sig", cfg.Keys.IDPSig.Cert.Subject.String())
	if cfg.Revocation == nil {
		log.Warn("devidp: card revocation is NOT checked (no OCSP); revoked cards will be accepted")
	}
	return i, nil
}

// Issuer returns the issuer URL tokens carry.
func (i *IDP) Issuer() string { return i.issuer }

// checkIssuer requires an absolute http(s) URL on a loopback host without path, query or fragment.
func checkIssuer(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil {
		return "", fmt.Errorf("devidp: issuer: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", fmt.Errorf("devidp: issuer %q: want http or https", s)
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", fmt.Errorf("devidp: issuer %q: want scheme://host:port only", s)
	}
	if !IsLoopbackHost(u.Hostname()) {
		return "", fmt.Errorf("devidp: issuer %q: the development IDP serves loopback addresses only", s)
	}
	return u.Scheme + "://" + u.Host, nil
}

// IsLoopbackHost reports whether host (without port) is localhost or a loopback IP address.
func IsLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// randomID returns n random bytes as base64url.
func randomID(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		// crypto/rand never fails on supported platforms (Go 1.24+ crashes instead); keep the signature
		// simple for callers.
		panic(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// randomHex returns n random bytes as hex (the reference server's jti shape).
func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

// sweep drops expired entries; the caller holds mu.
func (i *IDP) sweep(now time.Time) {
	for _, m := range []map[string]time.Time{i.challenges, i.usedChal, i.usedCodes} {
		for k, exp := range m {
			if now.After(exp) {
				delete(m, k)
			}
		}
	}
}

var errBusy = errors.New("too many pending logins; try again in a few minutes")

// rememberChallenge records an issued challenge.
func (i *IDP) rememberChallenge(jti string, exp time.Time) error {
	i.mu.Lock()
	defer i.mu.Unlock()
	now := i.now()
	if len(i.challenges) >= maxPending {
		i.sweep(now)
		if len(i.challenges) >= maxPending {
			return errBusy
		}
	}
	i.challenges[jti] = exp
	return nil
}

// consumeChallenge marks a challenge as presented; a second presentation is refused.
func (i *IDP) consumeChallenge(jti string) error {
	i.mu.Lock()
	defer i.mu.Unlock()
	if _, used := i.usedChal[jti]; used {
		return errors.New("challenge already used (single use)")
	}
	exp, ok := i.challenges[jti]
	if !ok {
		return errors.New("challenge unknown to this IDP (issued before a restart, or never)")
	}
	delete(i.challenges, jti)
	if len(i.usedChal) >= maxPending {
		i.sweep(i.now())
	}
	i.usedChal[jti] = exp
	return nil
}

// consumeCode marks an authorization code as redeemed.
func (i *IDP) consumeCode(jti string, exp time.Time) error {
	i.mu.Lock()
	defer i.mu.Unlock()
	if _, used := i.usedCodes[jti]; used {
		return errors.New("authorization code already redeemed (single use)")
	}
	if len(i.usedCodes) >= maxPending {
		i.sweep(i.now())
		if len(i.usedCodes) >= maxPending {
			return errBusy
		}
	}
	i.usedCodes[jti] = exp
	return nil
}
