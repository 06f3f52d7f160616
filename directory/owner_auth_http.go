package directory

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/timstack/timstack/certs"
)

// /owner-authenticate (I_VZD_Owner v1.0.2) issues owner tokens in two ways:
//
//   - with "Authorization: Bearer <RegService-OpenID-Token>": a registration service vouches for an
//     Org-Admin (vzd-directory-spec.md §1.6). The token is a compact JWS, alg BP256R1, whose x5c leaf is a
//     C.FD.SIG certificate with the technical role oid_tim (1.2.276.0.76.4.294) chaining to RegServiceTrust;
//   - without that header: a 302 to the gematik IDP-Dienst (OwnerLogin); the IDP sends the browser back to
//     /signin-gematik-idp-dienst?code&state, which answers the owner token.
//
// Both answer {access_token, token_type: "Bearer", expires_in} or 401 {message} with WWW-Authenticate.

// OwnerLogin is the gematik IDP-Dienst login behind /owner-authenticate without a header. cmd plugs in
// authn/idp; the directory only sees this interface.
type OwnerLogin interface {
	// Begin starts a login for cardType ("HBA" or "SMC-B") and returns the IDP authorization URL.
	Begin(ctx context.Context, cardType string) (authURL string, err error)
	// Complete consumes the IDP's code and state and returns the verified identity. It applies the
	// profession policy: an error wrapping ErrOwnerLoginRefused is the caller's fault (401), any other
	// error means the IDP could not be used (503).
	Complete(ctx context.Context, state, code string) (OwnerIdentity, error)
}

// OwnerIdentity is who an IDP login proved to be: the owner token's Telematik-ID and profession.
type OwnerIdentity struct {
	TelematikID, ProfessionOID string
	// Subject is the IDP's pairwise subject (audit only).
	Subject string
}

// ErrOwnerLoginRefused marks an IDP login the caller failed (bad state or code, token refused, profession
// not allowed to own a directory entry).
var ErrOwnerLoginRefused = errors.New("owner login refused")

// RegService token limits. The registration service issues tokens for minutes (authn/registration caps
// them at 1 h); a longer lifetime would be a bearer token we cannot revoke.
const (
	MaxRegServiceTokenLifetime = time.Hour
	// regServiceClockSkew tolerates clocks a little apart for iat (never for exp).
	regServiceClockSkew = 60 * time.Second
	maxRegServiceToken  = 16 << 10
)

// ownerAuthAPI serves /owner-authenticate and /signin-gematik-idp-dienst.
type ownerAuthAPI struct {
	base       string // our public base URL: the RegService token's aud is base + "/owner-authenticate"
	tokens     *Tokens
	trust      *certs.TrustStore
	revocation certs.RevocationChecker
	login      OwnerLogin
	now        func() time.Time
	log        *slog.Logger
}

func (a *ownerAuthAPI) refuse(w http.ResponseWriter, reason, message string) {
	a.log.Info("owner-authenticate refused", "reason", reason)
	w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
	writeJSON(w, http.StatusUnauthorized, providerError{Message: message})
}

func (a *ownerAuthAPI) issue(w http.ResponseWriter, subject, telematikID, professionOID string) {
	tok, life, err := a.tokens.Issue(TokenOwner, subject, Claims{TelematikID: telematikID, ProfessionOID: professionOID})
	if err != nil {
		writeProviderError(w, a.log, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, tokenResponse{AccessToken: tok, TokenType: "Bearer", ExpiresIn: int64(life.Seconds())})
}

// ownerAuthenticate: GET /owner-authenticate.
func (a *ownerAuthAPI) ownerAuthenticate(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") == "" {
		a.beginLogin(w, r)
		return
	}
	raw := bearer(r)
	if raw == "" {
		a.refuse(w, "authorization header is not a bearer token", "the Authorization header must carry a RegService-OpenID-Token as Bearer")
		return
	}
	if a.trust == nil {
		a.refuse(w, "no RegService trust configured", "RegService-OpenID-Tokens are not accepted here (no trust store configured)")
		return
	}
	c, err := a.verifyRegServiceToken(r.Context(), raw)
	if err != nil {
		a.refuse(w, err.Error(), err.Error())
		return
	}
	subject := c.Subject
	if subject == "" {
		subject = c.IDNummer
	}
	a.log.Info("owner token issued", "via", "regservice", "iss", c.Issuer, "telematik_id", c.IDNummer, "profession_oid", c.ProfessionOID)
	a.issue(w, subject, c.IDNummer, c.ProfessionOID)
}

// regServiceClaims are the claims of a RegService-OpenID-Token. The times stay raw so that a string "exp"
// or a fraction is refused instead of being read leniently.
type regServiceClaims struct {
	Issuer        string          `json:"iss"`
	Subject       string          `json:"sub"`
	Audience      json.RawMessage `json:"aud"`
	IssuedAt      json.RawMessage `json:"iat"`
	Expires       json.RawMessage `json:"exp"`
	NotBefore     json.RawMessage `json:"nbf"`
	IDNummer      string          `json:"idNummer"`
	ProfessionOID string          `json:"professionOID"`
}

// regServiceError is a refusal of a RegService token; its text is safe to show the caller (it never
// contains the token or unverified claim values).
type regServiceError string

func (e regServiceError) Error() string { return string(e) }

func regErr(format string, args ...any) error { return regServiceError(fmt.Sprintf(format, args...)) }

// verifyRegServiceToken checks a RegService-OpenID-Token: signature and certificate first, claims only
// once the signer is trusted.
func (a *ownerAuthAPI) verifyRegServiceToken(ctx context.Context, raw string) (*regServiceClaims, error) {
	if len(raw) > maxRegServiceToken {
		return nil, regErr("RegService token longer than %d bytes", maxRegServiceToken)
	}
	j, err := certs.ParseCompactJWS([]byte(raw))
	if err != nil {
		return nil, regErr("RegService token is not a compact JWS")
	}
	// The algorithm is fixed by the profile, never taken from the header: ES256, HS256 or none with a
	// BP256R1 certificate would be algorithm confusion.
	if j.Header.Alg != certs.AlgBP256R1 {
		return nil, regErr("RegService token algorithm %q refused: BP256R1 required", j.Header.Alg)
	}
	if j.Header.Typ != "" && !strings.EqualFold(j.Header.Typ, "JWT") {
		return nil, regErr("RegService token typ %q refused: JWT required", j.Header.Typ)
	}
	if len(j.Header.X5C) == 0 {
		return nil, regErr("RegService token has no x5c signer certificate")
	}
	leaf, err := j.VerifyX5C(certs.AlgBP256R1)
	if err != nil {
		return nil, regErr("RegService token signature invalid")
	}
	now := a.now()
	if _, err := a.trust.Verify(ctx, leaf, certs.VerifyOptions{
		At:               now,
		Intermediates:    j.Header.X5C[1:],
		KeyUsage:         certs.KeyUsageDigitalSignature,
		CertificateTypes: []certs.CertificateType{certs.CertFDSIG},
		Role:             certs.RoleTIM,
		Revocation:       a.revocation,
	}); err != nil {
		return nil, regErr("RegService token signer not accepted (C.FD.SIG with role oid_tim from a trusted CA required): %v", err)
	}
	return checkRegServiceClaims(j.Payload, now, a.base+"/owner-authenticate")
}

// checkRegServiceClaims validates the claims of a RegService token whose signer is already trusted.
func checkRegServiceClaims(payload []byte, now time.Time, want string) (*regServiceClaims, error) {
	var c regServiceClaims
	if err := json.Unmarshal(payload, &c); err != nil {
		return nil, regErr("RegService token claims are not a JSON object")
	}
	num := func(name string, raw json.RawMessage) (time.Time, bool, error) {
		if len(raw) == 0 || string(raw) == "null" {
			return time.Time{}, false, nil
		}
		v, err := strconv.ParseInt(string(raw), 10, 64)
		if err != nil || v <= 0 {
			return time.Time{}, false, regErr("RegService token %s is not a positive integer", name)
		}
		return time.Unix(v, 0), true, nil
	}
	exp, hasExp, err := num("exp", c.Expires)
	if err != nil {
		return nil, err
	}
	iat, hasIat, err := num("iat", c.IssuedAt)
	if err != nil {
		return nil, err
	}
	nbf, hasNbf, err := num("nbf", c.NotBefore)
	if err != nil {
		return nil, err
	}
	switch {
	case !hasExp:
		return nil, regErr("RegService token has no exp")
	case !now.Before(exp):
		return nil, regErr("RegService token expired")
	case !hasIat:
		return nil, regErr("RegService token has no iat")
	case iat.After(now.Add(regServiceClockSkew)):
		return nil, regErr("RegService token issued in the future")
	case exp.Sub(iat) > MaxRegServiceTokenLifetime:
		return nil, regErr("RegService token lifetime exceeds %s", MaxRegServiceTokenLifetime)
	case !exp.After(iat):
		return nil, regErr("RegService token expires before it was issued")
	case hasNbf && nbf.After(now.Add(regServiceClockSkew)):
		return nil, regErr("RegService token not yet valid")
	}
	if !audienceContains(c.Audience, want) {
		return nil, regErr("RegService token audience is not %s", want)
	}
	if strings.TrimSpace(c.Issuer) == "" {
		return nil, regErr("RegService token has no iss")
	}
	if strings.TrimSpace(c.IDNummer) == "" {
		return nil, regErr("RegService token has no idNummer")
	}
	if strings.TrimSpace(c.ProfessionOID) == "" {
		return nil, regErr("RegService token has no professionOID")
	}
	if kind, _ := certs.ClassifyProfessionOID(c.ProfessionOID); kind == certs.KindInsured || c.ProfessionOID == certs.ProfessionVersicherter {
		return nil, regErr("RegService token names an insured person, who owns no directory entry")
	}
	return &c, nil
}

// audienceContains accepts aud as a string or an array of strings (RFC 7519 §4.1.3).
func audienceContains(raw json.RawMessage, want string) bool {
	var one string
	if err := json.Unmarshal(raw, &one); err == nil {
		return one == want
	}
	var many []string
	if err := json.Unmarshal(raw, &many); err != nil {
		return false
	}
	for _, a := range many {
		if a == want {
			return true
		}
	}
	return false
}

// beginLogin: GET /owner-authenticate without Authorization → 302 to the IDP. The card is an HBA
// (Practitioner owners); ?cardType=SMC-B asks for an institution card instead (Organization owners, per
// the VZD's "HBA → Practitioner entry, SMC-B → Organization entry"), a parameter of ours that gematik's
// Authenticator reads from the authorization URL.
func (a *ownerAuthAPI) beginLogin(w http.ResponseWriter, r *http.Request) {
	if a.login == nil {
		a.refuse(w, "no IDP login configured", "the gematik IDP login is not configured on this directory; present a RegService-OpenID-Token as Bearer")
		return
	}
	card := "HBA"
	switch ct := r.URL.Query().Get("cardType"); ct {
	case "", "HBA":
	case "SMC-B":
		card = ct
	default:
		a.refuse(w, "unknown cardType", "cardType must be HBA or SMC-B")
		return
	}
	authURL, err := a.login.Begin(r.Context(), card)
	if err != nil {
		a.log.Warn("owner-authenticate: IDP login could not start", "err", err)
		writeJSON(w, http.StatusServiceUnavailable, providerError{Message: "the gematik IDP could not be used"})
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, authURL, http.StatusFound)
}

// signinGematikIDP: GET /signin-gematik-idp-dienst?code&state, where the IDP sends the browser back.
func (a *ownerAuthAPI) signinGematikIDP(w http.ResponseWriter, r *http.Request) {
	if a.login == nil {
		a.refuse(w, "no IDP login configured", "the gematik IDP login is not configured on this directory")
		return
	}
	q := r.URL.Query()
	if e := q.Get("error"); e != "" {
		// The IDP's error code is a fixed OAuth vocabulary word; anything else is not echoed.
		a.refuse(w, "IDP answered an error", "the gematik IDP refused the login")
		return
	}
	code, state := q.Get("code"), q.Get("state")
	if code == "" || state == "" {
		a.refuse(w, "code or state missing", "code and state are required")
		return
	}
	id, err := a.login.Complete(r.Context(), state, code)
	switch {
	case errors.Is(err, ErrOwnerLoginRefused):
		a.refuse(w, err.Error(), "the gematik IDP login was not accepted")
		return
	case err != nil:
		a.log.Warn("signin-gematik-idp-dienst: IDP unavailable", "err", err)
		writeJSON(w, http.StatusServiceUnavailable, providerError{Message: "the gematik IDP could not be used"})
		return
	}
	if strings.TrimSpace(id.TelematikID) == "" || strings.TrimSpace(id.ProfessionOID) == "" {
		a.refuse(w, "identity without Telematik-ID or profession", "the login carried no Telematik-ID or profession")
		return
	}
	subject := id.Subject
	if subject == "" {
		subject = id.TelematikID
	}
	a.log.Info("owner token issued", "via", "idp", "telematik_id", id.TelematikID, "profession_oid", id.ProfessionOID)
	a.issue(w, subject, id.TelematikID, id.ProfessionOID)
}
