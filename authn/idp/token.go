package idp

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/timstack/timstack/certs"
)

// Claim values fixed by gemSpec_IDP_Dienst.
const (
	acrHigh = "gematik-ehealth-loa-high"
	amrCard = "sc"
)

// Identity is what a verified ID token says about the user. The identity key is (TelematikID,
// ProfessionOID); Subject is pairwise per client and kept for audit only.
type Identity struct {
	// TelematikID and ProfessionOID are the idNummer and professionOID claims, read by the IDP from the card's
	// Admission extension (only the first profession OID of a card reaches us).
	TelematikID, ProfessionOID string
	// Kind is certs.ClassifyProfessionOID(ProfessionOID); KindUnknown passes verification but no CheckProfession.
	Kind certs.ProfessionKind
	// OrganizationName is the SMC-B's CN (empty for an HBA); DisplayName falls back to the names, then to it.
	OrganizationName, GivenName, FamilyName, DisplayName string
	// Subject (pairwise sub), Issuer, ClientID, JTI and ACR are kept for audit.
	Subject, Issuer, ClientID, JTI, ACR string
	AMR                                 []string
	AuthTime, IssuedAt, ExpiresAt       time.Time
}

// tokenResponse is the token endpoint's JSON answer.
type tokenResponse struct {
	TokenType   string `json:"token_type"`
	IDToken     string `json:"id_token"`
	AccessToken string `json:"access_token"`
	ExpiresIn   *int64 `json:"expires_in"`
}

// parseTokenResponse reads the token endpoint's answer: a JSON object with token_type Bearer (any case, RFC
// 6749 §5.1) and an id_token.
func parseTokenResponse(body []byte) (*tokenResponse, error) {
	var tr tokenResponse
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&tr); err != nil {
		return nil, fmt.Errorf("%w: token response: %w", ErrTokenInvalid, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: token response: trailing data", ErrTokenInvalid)
	}
	if !strings.EqualFold(tr.TokenType, "Bearer") {
		return nil, fmt.Errorf("%w: token_type %q, want Bearer", ErrTokenInvalid, truncate(tr.TokenType, 32))
	}
	if tr.IDToken == "" {
		return nil, fmt.Errorf("%w: token response without id_token", ErrTokenInvalid)
	}
	return &tr, nil
}

// decryptToken opens a token JWE (dir, A256GCM, cty NJWT) with token_key and returns the inner JWS.
func decryptToken(tokenKey []byte, what, compact string) ([]byte, error) {
	plain, hdr, err := certs.DecryptDir(tokenKey, []byte(compact))
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrTokenInvalid, what, err)
	}
	defer clear(plain)
	if hdr["alg"] != "dir" || hdr["enc"] != "A256GCM" || hdr["cty"] != "NJWT" {
		return nil, fmt.Errorf("%w: %s: JWE header alg %v enc %v cty %v, want dir/A256GCM/NJWT",
			ErrTokenInvalid, what, hdr["alg"], hdr["enc"], hdr["cty"])
	}
	inner, err := certs.UnwrapNJWT(plain)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrTokenInvalid, what, err)
	}
	return bytes.Clone(inner), nil
}

// finishTokenResponse decrypts both tokens and verifies the ID token. The caller zeroises tokenKey.
func (rp *RelyingParty) finishTokenResponse(ctx context.Context, tr *tokenResponse, tokenKey []byte, nonce string) (*Identity, error) {
	idInner, err := decryptToken(tokenKey, "id_token", tr.IDToken)
	if err != nil {
		return nil, err
	}
	var atInner []byte
	if tr.AccessToken != "" {
		if atInner, err = decryptToken(tokenKey, "access_token", tr.AccessToken); err != nil {
			return nil, err
		}
	}
	return rp.verifyIDToken(ctx, idInner, nonce, atInner)
}

// VerifyIDToken verifies an inner ID-token JWS (after njwt unwrap) presented directly by a headless client:
// the same checks as Complete, the nonce only when non-empty; a jti seen before is refused.
func (rp *RelyingParty) VerifyIDToken(ctx context.Context, idToken []byte, nonce string) (*Identity, error) {
	return rp.verifyIDToken(ctx, idToken, nonce, nil)
}

func (rp *RelyingParty) verifyIDToken(ctx context.Context, raw []byte, nonce string, accessToken []byte) (*Identity, error) {
	j, err := certs.ParseCompactJWS(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: id_token: %w", ErrTokenInvalid, err)
	}
	if err := checkIDTokenHeader(&j.Header); err != nil {
		return nil, err
	}
	k, err := rp.keys.get(ctx)
	if err != nil {
		return nil, err
	}
	if err := j.Verify(certs.AlgBP256R1, k.sig); err != nil {
		if !errors.Is(err, certs.ErrBadSignature) {
			return nil, fmt.Errorf("%w: id_token: %w", ErrTokenInvalid, err)
		}
		// puk_idp_sig keeps its kid across rotations, so a failure may mean a new key: reload once.
		k2, rerr := rp.keys.reload(ctx, k)
		if rerr != nil {
			rp.log.Warn("idp token signature failed and keys were not reloaded", "err", rerr)
			return nil, fmt.Errorf("%w: id_token: %w", ErrTokenInvalid, err)
		}
		if err := j.Verify(certs.AlgBP256R1, k2.sig); err != nil {
			return nil, fmt.Errorf("%w: id_token (after key reload): %w", ErrTokenInvalid, err)
		}
		k = k2
	}
	now := rp.now()
	id, err := validateClaims(j.Payload, claimExpectations{
		issuer: k.disc.Issuer, clientID: rp.cfg.ClientID, nonce: nonce, accessToken: accessToken, now: now,
	})
	if err != nil {
		return nil, err
	}
	switch rp.jtis.add(id.Issuer+"\x00"+id.JTI, id.ExpiresAt.Add(maxClockSkew), now) {
	case seenBefore:
		return nil, fmt.Errorf("%w: %w: id_token jti already used", ErrTokenInvalid, ErrReplay)
	case setFull:
		return nil, fmt.Errorf("%w: jti replay cache full", ErrTokenInvalid)
	}
	return id, nil
}

// checkIDTokenHeader enforces the header before any key is touched: certs.Verify checks alg as well, but an
// explicit refusal names the confusion attempt.
func checkIDTokenHeader(h *certs.JWSHeader) error {
	if h.Alg != certs.AlgBP256R1 {
		return fmt.Errorf("%w: id_token: %w: alg %q, want BP256R1", ErrTokenInvalid, certs.ErrAlgorithmMismatch, truncate(string(h.Alg), 32))
	}
	if h.Kid != kidIDPSig {
		return fmt.Errorf("%w: id_token: kid %q, want %s", ErrTokenInvalid, truncate(h.Kid, 64), kidIDPSig)
	}
	if h.Typ != "JWT" {
		return fmt.Errorf("%w: id_token: typ %q, want JWT", ErrTokenInvalid, truncate(h.Typ, 32))
	}
	return nil
}

// claimExpectations is what validateClaims compares against.
type claimExpectations struct {
	issuer, clientID string
	nonce            string // "" skips the nonce check (headless VerifyIDToken only)
	accessToken      []byte // inner access-token JWS; nil when none came with the ID token
	now              time.Time
}

// idClaims are the ID-token claims the RP reads. Times are json.Number so that strings are refused.
type idClaims struct {
	Iss              string          `json:"iss"`
	Sub              string          `json:"sub"`
	Aud              json.RawMessage `json:"aud"`
	Azp              *string         `json:"azp"`
	Exp              *json.Number    `json:"exp"`
	Iat              *json.Number    `json:"iat"`
	AuthTime         *json.Number    `json:"auth_time"`
	Nonce            *string         `json:"nonce"`
	ATHash           *string         `json:"at_hash"`
	ACR              string          `json:"acr"`
	AMR              []string        `json:"amr"`
	JTI              string          `json:"jti"`
	IDNummer         string          `json:"idNummer"`
	ProfessionOID    string          `json:"professionOID"`
	OrganizationName *string         `json:"organizationName"`
	GivenName        *string         `json:"given_name"`
	FamilyName       *string         `json:"family_name"`
	DisplayName      *string         `json:"display_name"`
}

// validateClaims checks a signature-verified ID-token payload (§7.2 step 8) and builds the Identity.
func validateClaims(payload []byte, want claimExpectations) (*Identity, error) {
	bad := func(format string, a ...any) (*Identity, error) {
		return nil, fmt.Errorf("%w: id_token: %s", ErrTokenInvalid, fmt.Sprintf(format, a...))
	}
	var c idClaims
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	if err := dec.Decode(&c); err != nil {
		return bad("claims: %v", err)
	}
	if c.Iss != want.issuer {
		return bad("iss %q, want %q", truncate(c.Iss, 128), want.issuer)
	}
	aud, err := audiences(c.Aud)
	if err != nil {
		return bad("aud: %v", err)
	}
	if !slices.Contains(aud, want.clientID) {
		return bad("aud %q does not contain client_id %q", aud, want.clientID)
	}
	if c.Azp != nil && *c.Azp != want.clientID {
		return bad("azp %q, want %q", truncate(*c.Azp, 128), want.clientID)
	}
	if c.Azp == nil && len(aud) > 1 {
		return bad("several audiences and no azp")
	}
	exp, err := numericDate(c.Exp)
	if err != nil {
		return bad("exp: %v", err)
	}
	iat, err := numericDate(c.Iat)
	if err != nil {
		return bad("iat: %v", err)
	}
	authTime, err := numericDate(c.AuthTime)
	if err != nil {
		return bad("auth_time: %v", err)
	}
	switch {
	case !want.now.Before(exp.Add(maxClockSkew)):
		return bad("expired at %s (now %s)", exp.UTC(), want.now.UTC())
	case !exp.After(iat):
		return bad("exp %s not after iat %s", exp.UTC(), iat.UTC())
	case exp.Sub(iat) > maxIDTokenLife:
		return bad("lifetime %s exceeds %s", exp.Sub(iat), maxIDTokenLife)
	case iat.After(want.now.Add(maxClockSkew)):
		return bad("iat %s in the future (now %s)", iat.UTC(), want.now.UTC())
	case authTime.After(want.now.Add(maxClockSkew)):
		return bad("auth_time %s in the future (now %s)", authTime.UTC(), want.now.UTC())
	}
	if want.nonce != "" {
		if c.Nonce == nil || subtle.ConstantTimeCompare([]byte(*c.Nonce), []byte(want.nonce)) != 1 {
			return bad("nonce does not match the login")
		}
	}
	if want.accessToken != nil {
		sum := sha256.Sum256(want.accessToken)
		expect := base64.RawURLEncoding.EncodeToString(sum[:16])
		if c.ATHash == nil || subtle.ConstantTimeCompare([]byte(*c.ATHash), []byte(expect)) != 1 {
			return bad("at_hash does not match the access token")
		}
	}
	if c.ACR != acrHigh {
		return bad("acr %q, want %s", truncate(c.ACR, 64), acrHigh)
	}
	if !slices.Contains(c.AMR, amrCard) {
		return bad("amr %q lacks %q (no smartcard)", c.AMR, amrCard)
	}
	if c.JTI == "" || len(c.JTI) > 256 {
		return bad("jti missing or too long")
	}
	if c.Sub == "" {
		return bad("sub missing")
	}
	if !printable(c.IDNummer) || len(c.IDNummer) > 128 {
		return bad("idNummer missing or malformed")
	}
	oid, err := certs.ParseOID(c.ProfessionOID)
	if err != nil || oid.String() != c.ProfessionOID {
		return bad("professionOID %q is not a dotted OID", truncate(c.ProfessionOID, 64))
	}
	kind, _ := certs.ClassifyProfessionOID(c.ProfessionOID)
	org := deref(c.OrganizationName)
	// The IDP fills organizationName from the SMC-B's CN and sends null for an HBA (A_20524): a token that
	// disagrees was not built from the card it claims.
	switch kind {
	case certs.KindInstitution:
		if strings.TrimSpace(org) == "" {
			return bad("organizationName missing for institution %s", c.ProfessionOID)
		}
	case certs.KindPerson:
		if org != "" {
			return bad("organizationName set for person profession %s", c.ProfessionOID)
		}
	}
	id := &Identity{
		TelematikID: c.IDNummer, ProfessionOID: c.ProfessionOID, Kind: kind,
		OrganizationName: org, GivenName: deref(c.GivenName), FamilyName: deref(c.FamilyName),
		DisplayName: deref(c.DisplayName),
		Subject:     c.Sub, Issuer: c.Iss, ClientID: want.clientID, JTI: c.JTI, ACR: c.ACR,
		AMR:      slices.Clone(c.AMR),
		AuthTime: authTime, IssuedAt: iat, ExpiresAt: exp,
	}
	if id.DisplayName == "" {
		id.DisplayName = strings.TrimSpace(id.GivenName + " " + id.FamilyName)
	}
	if id.DisplayName == "" {
		id.DisplayName = org
	}
	return id, nil
}

// audiences accepts aud as a string or an array of strings (RFC 7519 §4.1.3).
func audiences(raw json.RawMessage) ([]string, error) {
	if len(raw) == 0 {
		return nil, errors.New("missing")
	}
	var one string
	if err := json.Unmarshal(raw, &one); err == nil {
		return []string{one}, nil
	}
	var many []string
	if err := json.Unmarshal(raw, &many); err != nil {
		return nil, errors.New("neither a string nor an array of strings")
	}
	return many, nil
}

// numericDate reads a required NumericDate (RFC 7519 §2); fractions are allowed, strings are not.
func numericDate(n *json.Number) (time.Time, error) {
	if n == nil {
		return time.Time{}, errors.New("missing")
	}
	f, err := n.Float64()
	if err != nil || math.IsNaN(f) || f < 0 || f > 1<<40 {
		return time.Time{}, fmt.Errorf("not a plausible NumericDate: %q", truncate(n.String(), 32))
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)), nil
}

func printable(s string) bool {
	if strings.TrimSpace(s) == "" {
		return false
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
