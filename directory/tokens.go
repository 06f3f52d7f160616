package directory

import (
	"context"
	"crypto"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/timstack/timstack/certs"
)

// TokenKind says which interface a directory token opens. Each kind has its own audience, so a token
// issued for /search never opens /owner or /tim-provider-services.
type TokenKind string

// Token kinds, as gematik's auth endpoints issue them.
const (
	TokenSearch   TokenKind = "search"   // /tim-authenticate, non-insurance domain: /search
	TokenFdV      TokenKind = "fdv"      // /tim-authenticate of an insurance domain: /fdv/search
	TokenOwner    TokenKind = "owner"    // /owner-authenticate: /owner
	TokenProvider TokenKind = "provider" // /ti-provider-authenticate: /tim-provider-services
	// TokenClientCredentials is the short-lived token of the client-credentials step we host in place of
	// gematik's Keycloak; it only opens /ti-provider-authenticate.
	TokenClientCredentials TokenKind = "client-credentials"
)

// Token lifetimes: 24 h for directory tokens (gematik's examples: expires_in 86400), 300 s for the
// client-credentials token (Keycloak's default in the VZD deployment).
const (
	DirectoryTokenLifetime         = 24 * time.Hour
	ClientCredentialsTokenLifetime = 300 * time.Second
)

// ErrTokenInvalid is returned (wrapped) for every token that must not be accepted.
var ErrTokenInvalid = errors.New("token invalid")

// Claims are the claims of a directory token.
type Claims struct {
	Issuer        string `json:"iss"`
	Subject       string `json:"sub"`
	Audience      string `json:"aud"`
	IssuedAt      int64  `json:"iat"`
	Expires       int64  `json:"exp"`
	ID            string `json:"jti"`
	Kind          string `json:"token_kind"`
	ClientID      string `json:"clientId,omitempty"`
	TelematikID   string `json:"telematikID,omitempty"`
	ProfessionOID string `json:"professionOID,omitempty"`
}

// Tokens issues and verifies the directory's bearer tokens: compact JWS, ES256 (gematik's own examples use
// ES256 for search tokens; the OpenAPI text also allows BP256R1), signed by a key that lives with the data.
type Tokens struct {
	base string // public base URL, e.g. https://vzd.example (no trailing slash)
	key  crypto.Signer
	now  func() time.Time
}

// NewTokens returns a token service for base with the ES256 key.
func NewTokens(base string, key crypto.Signer, now func() time.Time) (*Tokens, error) {
	if _, err := certs.SignES256(key, []byte("probe")); err != nil {
		return nil, fmt.Errorf("directory tokens: %w", err)
	}
	if now == nil {
		now = time.Now
	}
	return &Tokens{base: strings.TrimRight(base, "/"), key: key, now: now}, nil
}

// Audience returns the audience URL of a token kind.
func (t *Tokens) Audience(kind TokenKind) string {
	switch kind {
	case TokenSearch:
		return t.base + "/search"
	case TokenFdV:
		return t.base + "/fdv/search"
	case TokenOwner:
		return t.base + "/owner"
	case TokenProvider:
		return t.base + "/tim-provider-services"
	case TokenClientCredentials:
		return t.base + "/ti-provider-authenticate"
	}
	return ""
}

func (t *Tokens) issuer(kind TokenKind) string {
	switch kind {
	case TokenSearch, TokenFdV:
		return t.base + "/tim-authenticate"
	case TokenOwner:
		return t.base + "/owner-authenticate"
	case TokenProvider:
		return t.base + "/ti-provider-authenticate"
	}
	return t.base + "/auth"
}

// Issue signs a token of kind for subject; extra fields (TelematikID, ProfessionOID, ClientID) come from
// claims. It returns the token and its lifetime.
func (t *Tokens) Issue(kind TokenKind, subject string, claims Claims) (string, time.Duration, error) {
	aud := t.Audience(kind)
	if aud == "" {
		return "", 0, fmt.Errorf("directory tokens: unknown kind %q", kind)
	}
	life := DirectoryTokenLifetime
	if kind == TokenClientCredentials {
		life = ClientCredentialsTokenLifetime
	}
	now := t.now()
	var jti [16]byte
	if _, err := rand.Read(jti[:]); err != nil {
		return "", 0, err
	}
	claims.Issuer, claims.Subject, claims.Audience = t.issuer(kind), subject, aud
	claims.IssuedAt, claims.Expires = now.Unix(), now.Add(life).Unix()
	claims.ID = base64.RawURLEncoding.EncodeToString(jti[:])
	claims.Kind = string(kind)
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", 0, err
	}
	tok, err := certs.SignCompactJWS(t.key, certs.AlgES256, map[string]any{"typ": "JWT"}, payload)
	if err != nil {
		return "", 0, fmt.Errorf("directory tokens: %w", err)
	}
	return string(tok), life, nil
}

// Verify checks a bearer token for kind: ES256 signature by our key (the algorithm is enforced, whatever
// the header says), audience, kind, expiry (no leeway beyond 60 s of clock skew).
func (t *Tokens) Verify(token string, kind TokenKind) (*Claims, error) {
	j, err := certs.ParseCompactJWS([]byte(token))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrTokenInvalid, err)
	}
	if err := j.Verify(certs.AlgES256, t.key.Public()); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrTokenInvalid, err)
	}
	var c Claims
	if err := json.Unmarshal(j.Payload, &c); err != nil {
		return nil, fmt.Errorf("%w: claims: %v", ErrTokenInvalid, err)
	}
	now := t.now().Unix()
	switch {
	case c.Kind != string(kind) || c.Audience != t.Audience(kind):
		return nil, fmt.Errorf("%w: token is for %q, not %q", ErrTokenInvalid, c.Audience, t.Audience(kind))
	case c.Expires <= now-60:
		return nil, fmt.Errorf("%w: expired", ErrTokenInvalid)
	case c.IssuedAt > now+60:
		return nil, fmt.Errorf("%w: issued in the future", ErrTokenInvalid)
	case c.Subject == "":
		return nil, fmt.Errorf("%w: no subject", ErrTokenInvalid)
	}
	return &c, nil
}

// KV is the small key/value part of the store the directory keeps its own state in.
type KV interface {
	GetKV(ctx context.Context, key string) ([]byte, error)
	PutKV(ctx context.Context, key string, value []byte) error
}

const tokenKeyName = "directory/token-signing-key"

// LoadOrCreateTokenKey returns the ES256 token key stored with the data, creating it on first use, so that
// `timstack directory token` and a server started on the same database accept each other's tokens.
// notFound tells whether a KV error means "absent".
func LoadOrCreateTokenKey(ctx context.Context, kv KV, notFound func(error) bool) (crypto.Signer, error) {
	pemKey, err := kv.GetKV(ctx, tokenKeyName)
	switch {
	case err == nil:
		k, err := certs.ParsePrivateKeyPEM(pemKey)
		if err != nil {
			return nil, fmt.Errorf("directory token key: %w", err)
		}
		return k, nil
	case !notFound(err):
		return nil, fmt.Errorf("directory token key: %w", err)
	}
	k, err := certs.GenerateKey(certs.KeyP256)
	if err != nil {
		return nil, err
	}
	pemKey, err = certs.MarshalPrivateKeyPEM(k)
	if err != nil {
		return nil, err
	}
	if err := kv.PutKV(ctx, tokenKeyName, pemKey); err != nil {
		return nil, fmt.Errorf("directory token key: %w", err)
	}
	// Read back, so that two processes creating the key at once end up using the same stored one.
	stored, err := kv.GetKV(ctx, tokenKeyName)
	if err != nil {
		return nil, fmt.Errorf("directory token key: %w", err)
	}
	return certs.ParsePrivateKeyPEM(stored)
}
