package devidp

import (
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/timstack/timstack/certs"
)

// challengeClaims are the claims of a CHALLENGE_TOKEN (§1.3 step 3), in the reference server's order.
type challengeClaims struct {
	Iss                 string `json:"iss"`
	ResponseType        string `json:"response_type"`
	Snc                 string `json:"snc"`
	CodeChallengeMethod string `json:"code_challenge_method"`
	TokenType           string `json:"token_type"`
	Nonce               string `json:"nonce,omitempty"`
	ClientID            string `json:"client_id"`
	Scope               string `json:"scope"`
	State               string `json:"state"`
	RedirectURI         string `json:"redirect_uri"`
	Exp                 int64  `json:"exp"`
	Iat                 int64  `json:"iat"`
	CodeChallenge       string `json:"code_challenge"`
	JTI                 string `json:"jti"`
}

// CardClaims are the claims the IDP derives from a card certificate (A_20524, X509ClaimExtraction).
type CardClaims struct {
	IDNummer      string `json:"idNummer"`
	ProfessionOID string `json:"professionOID"`
	// OrganizationName is the SMC-B's CN; null for HBA and eGK.
	OrganizationName *string `json:"organizationName"`
	GivenName        string  `json:"given_name,omitempty"`
	FamilyName       string  `json:"family_name,omitempty"`
	DisplayName      string  `json:"display_name,omitempty"`
	// OrganizationIK is the insurer's IK number (eGK only).
	OrganizationIK string `json:"organizationIK,omitempty"`
}

// codeClaims are the claims of the signed authorization code inside the code JWE (§1.3 step 7).
type codeClaims struct {
	CardClaims
	AMR                 []string `json:"amr"`
	Iss                 string   `json:"iss"`
	ResponseType        string   `json:"response_type"`
	Snc                 string   `json:"snc"`
	CodeChallengeMethod string   `json:"code_challenge_method"`
	TokenType           string   `json:"token_type"`
	Nonce               string   `json:"nonce,omitempty"`
	ClientID            string   `json:"client_id"`
	Scope               string   `json:"scope"`
	AuthTime            int64    `json:"auth_time"`
	RedirectURI         string   `json:"redirect_uri"`
	State               string   `json:"state"`
	Exp                 int64    `json:"exp"`
	Iat                 int64    `json:"iat"`
	CodeChallenge       string   `json:"code_challenge"`
	JTI                 string   `json:"jti"`
}

// Bounds on request parameters: generous for real clients, small enough to keep signed tokens small.
const (
	maxParamLen = 512
	maxJWELen   = 32 << 10
)

// userConsent is what the Authenticator shows the user before the card signs (scope ti-messenger).
var userConsent = map[string]any{
	"requested_scopes": map[string]string{
		"openid":       "Zugriff auf den ID-Token.",
		"ti-messenger": "Zugriff auf den TI-Messenger.",
	},
	"requested_claims": map[string]string{
		"idNummer":         "Zustimmung zur Verarbeitung der Id (z.B. Krankenversichertennummer, Telematik-Id)",
		"professionOID":    "Zustimmung zur Verarbeitung der Rolle",
		"organizationName": "Zustimmung zur Verarbeitung der Organisationszugehörigkeit",
		"given_name":       "Zustimmung zur Verarbeitung des Vornamens",
		"family_name":      "Zustimmung zur Verarbeitung des Nachnamens",
		"display_name":     "Zustimmung zur Verarbeitung des Vornamens und des Nachnamens",
	},
}

// serveChallenge answers GET /auth with a challenge. Parameter errors are a 400 JSON body, never a
// redirect: before validation, redirect_uri is not trustworthy (RFC 6749 §4.1.2.1).
func (i *IDP) serveChallenge(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	cc, err := i.checkAuthRequest(q)
	if err != nil {
		i.log.Info("devidp: authorization request refused", "reason", err.Error(), "client_id", trunc(q.Get("client_id")))
		writeError(w, http.StatusBadRequest, "invalid_request", err.Error())
		return
	}
	now := i.now()
	cc.Iss, cc.TokenType, cc.Snc, cc.JTI = i.issuer, "challenge", randomID(32), randomHex(8)
	cc.Iat, cc.Exp = now.Unix(), now.Add(ChallengeLifetime).Unix()
	if err := i.rememberChallenge(cc.JTI, time.Unix(cc.Exp, 0)); err != nil {
		writeError(w, http.StatusServiceUnavailable, "temporarily_unavailable", err.Error())
		return
	}
	jws, err := i.signJWT("JWT", cc)
	if err != nil {
		i.log.Error("devidp: signing challenge", "err", err)
		writeError(w, http.StatusInternalServerError, "server_error", "could not sign the challenge")
		return
	}
	if name, ok := q["dev_identity"]; ok {
		i.serveDevIdentity(w, r, name[0], jws, cc.Exp)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"challenge": string(jws), "user_consent": userConsent})
}

// serveDevIdentity completes a login with a built-in card: the IDP plays Authenticator and Konnektor for
// itself and then runs exactly the checks a POSTed signed challenge gets.
func (i *IDP) serveDevIdentity(w http.ResponseWriter, r *http.Request, name string, challenge []byte, exp int64) {
	card, ok := i.devCards[name]
	if !ok {
		names := make([]string, 0, len(i.devCards))
		for n := range i.devCards {
			names = append(names, n)
		}
		slices.Sort(names)
		writeError(w, http.StatusBadRequest, "invalid_request", fmt.Sprintf("dev_identity %q unknown (enabled: %v)", name, names))
		return
	}
	signed, err := SignChallenge(card, challenge)
	if err == nil {
		signed, err = EncryptSignedChallenge(i.keys.IDPEnc.Cert.PublicKey.(*ecdsa.PublicKey), signed, exp)
	}
	if err != nil {
		i.log.Error("devidp: dev_identity signing", "err", err)
		writeError(w, http.StatusInternalServerError, "server_error", "could not sign with the dev identity")
		return
	}
	i.log.Warn("devidp: dev_identity login (no Authenticator, no PIN)", "dev_identity", name)
	i.answerSignedChallenge(w, r, string(signed))
}

// checkAuthRequest validates the authorization request parameters.
func (i *IDP) checkAuthRequest(q url.Values) (*challengeClaims, error) {
	for _, name := range []string{"client_id", "response_type", "redirect_uri", "state", "code_challenge", "code_challenge_method", "scope"} {
		if q.Get(name) == "" {
			return nil, fmt.Errorf("parameter %s missing", name)
		}
	}
	for name, vs := range q {
		if len(vs) != 1 {
			return nil, fmt.Errorf("parameter %s given %d times", name, len(vs))
		}
		if len(vs[0]) > maxParamLen {
			return nil, fmt.Errorf("parameter %s longer than %d bytes", name, maxParamLen)
		}
	}
	if rt := q.Get("response_type"); rt != "code" {
		return nil, fmt.Errorf("response_type %q not supported (want code)", rt)
	}
	if m := q.Get("code_challenge_method"); m != "S256" {
		return nil, fmt.Errorf("code_challenge_method %q not supported (want S256)", m)
	}
	if !isS256Challenge(q.Get("code_challenge")) {
		return nil, errors.New("code_challenge is not a base64url SHA-256 value (43 characters)")
	}
	if err := checkScope(q.Get("scope")); err != nil {
		return nil, err
	}
	clientID, redirect := q.Get("client_id"), q.Get("redirect_uri")
	if err := i.checkClient(clientID, redirect); err != nil {
		return nil, err
	}
	if ct := q.Get("cardType"); ct != "" && ct != "HBA" && ct != "SMC-B" {
		return nil, fmt.Errorf("cardType %q not supported (HBA or SMC-B)", ct)
	}
	return &challengeClaims{
		ResponseType: "code", CodeChallengeMethod: "S256", Nonce: q.Get("nonce"), ClientID: clientID,
		Scope: q.Get("scope"), State: q.Get("state"), RedirectURI: redirect, CodeChallenge: q.Get("code_challenge"),
	}, nil
}

func checkScope(scope string) error {
	fields := strings.Fields(scope)
	for _, want := range supportedScopes {
		if !slices.Contains(fields, want) {
			return fmt.Errorf("scope %q lacks %q (want \"openid ti-messenger\")", scope, want)
		}
	}
	for _, f := range fields {
		if !slices.Contains(supportedScopes, f) {
			return fmt.Errorf("scope %q not supported by the development IDP", f)
		}
	}
	return nil
}

func (i *IDP) checkClient(clientID, redirect string) error {
	u, err := url.Parse(redirect)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Fragment != "" {
		return fmt.Errorf("redirect_uri %q is not an absolute http(s) URL without fragment", redirect)
	}
	if i.clients == nil {
		return nil
	}
	allowed, ok := i.clients[clientID]
	if !ok {
		return fmt.Errorf("client_id %q is not registered", clientID)
	}
	if !slices.Contains(allowed, redirect) {
		return fmt.Errorf("redirect_uri %q is not registered for client %q", redirect, clientID)
	}
	return nil
}

// isS256Challenge reports whether s has the shape of BASE64URL(SHA-256(verifier)).
func isS256Challenge(s string) bool {
	b, err := base64.RawURLEncoding.DecodeString(s)
	return err == nil && len(b) == sha256.Size && len(s) == 43
}

// signJWT signs claims with puk_idp_sig (BP256R1, kid puk_idp_sig).
func (i *IDP) signJWT(typ string, claims any) ([]byte, error) {
	body, err := json.Marshal(claims)
	if err != nil {
		return nil, err
	}
	return certs.SignCompactJWS(i.keys.IDPSig.Key, certs.AlgBP256R1, map[string]any{"typ": typ, "kid": "puk_idp_sig"}, body)
}

// verifyOwnJWT verifies a JWS this IDP signed with puk_idp_sig and decodes its claims.
func (i *IDP) verifyOwnJWT(raw []byte, typ string, dst any) error {
	j, err := certs.ParseCompactJWS(raw)
	if err != nil {
		return err
	}
	if j.Header.Kid != "puk_idp_sig" || j.Header.Typ != typ {
		return fmt.Errorf("header kid %q typ %q, want puk_idp_sig and %s", j.Header.Kid, j.Header.Typ, typ)
	}
	if err := j.Verify(certs.AlgBP256R1, i.keys.IDPSig.Cert.PublicKey.(*ecdsa.PublicKey)); err != nil {
		return err
	}
	if err := json.Unmarshal(j.Payload, dst); err != nil {
		return fmt.Errorf("claims: %w", err)
	}
	return nil
}

// refusal is a refused signed challenge. Once the inner challenge is verified as ours, its redirect_uri
// and state are trustworthy and the refusal goes back to the client as a redirect (RFC 6749 §4.1.2.1);
// before that it is a 400 JSON body, as there is nowhere safe to redirect to.
type refusal struct {
	status      int
	code, desc  string
	redirectURI string
	state       string
}

func badRequest(format string, args ...any) *refusal {
	return &refusal{status: http.StatusBadRequest, code: "invalid_request", desc: fmt.Sprintf(format, args...)}
}

// serveSignedChallenge answers POST /auth: verify the card-signed challenge, then 302 with a code.
func (i *IDP) serveSignedChallenge(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request", "form: "+err.Error())
		return
	}
	i.answerSignedChallenge(w, r, r.PostForm.Get("signed_challenge"))
}

// answerSignedChallenge verifies a signed challenge and answers with the redirect or the refusal.
func (i *IDP) answerSignedChallenge(w http.ResponseWriter, r *http.Request, signed string) {
	loc, ref := i.handleSignedChallenge(r, signed)
	if ref != nil {
		i.log.Info("devidp: card login refused", "reason", ref.desc)
		if ref.redirectURI == "" {
			writeError(w, ref.status, ref.code, ref.desc)
			return
		}
		q := url.Values{"error": {ref.code}, "error_description": {ref.desc}, "state": {ref.state}}
		http.Redirect(w, r, withQuery(ref.redirectURI, q), http.StatusFound)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, loc, http.StatusFound)
}

// withQuery adds q to the query of a redirect URI, keeping any query it already has.
func withQuery(redirect string, q url.Values) string {
	u, err := url.Parse(redirect)
	if err != nil {
		return redirect
	}
	all := u.Query()
	for k, v := range q {
		all[k] = v
	}
	u.RawQuery = all.Encode()
	return u.String()
}

// handleSignedChallenge runs the checks of §1.3 step 6 and returns the redirect location with the code.
func (i *IDP) handleSignedChallenge(r *http.Request, signed string) (string, *refusal) {
	cj, hdrExp, ref := i.openSignedChallenge(signed)
	if ref != nil {
		return "", ref
	}
	var cc challengeClaims
	inner, err := certs.UnwrapNJWT(cj.Payload)
	if err != nil {
		return "", badRequest("card-signed JWS payload: %v", err)
	}
	if err := i.verifyOwnJWT(inner, "JWT", &cc); err != nil {
		return "", badRequest("challenge not issued by this IDP: %v", err)
	}
	if cc.Iss != i.issuer || cc.TokenType != "challenge" {
		return "", badRequest("challenge not issued by this IDP: iss %q token_type %q", cc.Iss, cc.TokenType)
	}
	// From here on the challenge is ours: refusals go back to its redirect_uri with its state.
	deny := func(format string, args ...any) (string, *refusal) {
		return "", &refusal{status: http.StatusFound, code: "access_denied", desc: fmt.Sprintf(format, args...), redirectURI: cc.RedirectURI, state: cc.State}
	}
	now := i.now()
	if now.Unix() > cc.Exp {
		return deny("challenge expired at %s", time.Unix(cc.Exp, 0).UTC().Format(time.RFC3339))
	}
	if err := i.consumeChallenge(cc.JTI); err != nil {
		return deny("%v", err)
	}
	if hdrExp != cc.Exp {
		return deny("JWE header exp %d does not equal the challenge's exp %d", hdrExp, cc.Exp)
	}
	card, err := i.verifyCard(r, cj, now)
	if err != nil {
		return deny("%v", err)
	}
	claims, err := ExtractCardClaims(card)
	if err != nil {
		return deny("%v", err)
	}
	code, err := i.issueCode(&cc, claims, now)
	if err != nil {
		i.log.Error("devidp: issuing code", "err", err)
		return "", &refusal{status: http.StatusInternalServerError, code: "server_error", desc: "could not issue the code"}
	}
	i.log.Info("devidp: card login", "idNummer", claims.IDNummer, "professionOID", claims.ProfessionOID, "client_id", cc.ClientID)
	return withQuery(cc.RedirectURI, url.Values{"code": {string(code)}, "state": {cc.State}}), nil
}

// openSignedChallenge decrypts the JWE to puk_idp_enc and parses the card-signed JWS inside.
func (i *IDP) openSignedChallenge(signed string) (*certs.CompactJWS, int64, *refusal) {
	if signed == "" {
		return nil, 0, badRequest("parameter signed_challenge missing")
	}
	if len(signed) > maxJWELen {
		return nil, 0, badRequest("signed_challenge longer than %d bytes", maxJWELen)
	}
	plain, hdr, err := certs.DecryptECDHES(i.keys.IDPEnc.Key, []byte(signed))
	if err != nil {
		return nil, 0, badRequest("signed_challenge: cannot decrypt for puk_idp_enc: %v", err)
	}
	if cty, _ := hdr["cty"].(string); cty != "NJWT" {
		return nil, 0, badRequest("signed_challenge: JWE header cty %q, want NJWT", hdr["cty"])
	}
	hdrExp, ok := numberClaim(hdr["exp"])
	if !ok {
		return nil, 0, badRequest("signed_challenge: JWE header exp missing or not an integer")
	}
	raw, err := certs.UnwrapNJWT(plain)
	if err != nil {
		return nil, 0, badRequest("signed_challenge plaintext: %v", err)
	}
	cj, err := certs.ParseCompactJWS(raw)
	if err != nil {
		return nil, 0, badRequest("card-signed JWS: %v", err)
	}
	if cj.Header.Cty != "NJWT" || cj.Header.Typ != "JWT" {
		return nil, 0, badRequest("card-signed JWS: header typ %q cty %q, want JWT and NJWT", cj.Header.Typ, cj.Header.Cty)
	}
	return cj, hdrExp, nil
}

// numberClaim reads an integer JSON number (json.Number from the certs JWE parser).
func numberClaim(v any) (int64, bool) {
	n, ok := v.(json.Number)
	if !ok {
		return 0, false
	}
	i, err := n.Int64()
	return i, err == nil
}

// acceptedCardTypes are the card profiles TUC_PKI_018 runs with at the IDP-Dienst.
var acceptedCardTypes = []certs.CertificateType{certs.CertHPAUT, certs.CertHCIAUT, certs.CertCHAUT}

// verifyCard checks the card signature (BP256R1 for ECC cards, PS256 for RSA cards) and the card
// certificate chain, type, profession and revocation.
func (i *IDP) verifyCard(r *http.Request, cj *certs.CompactJWS, now time.Time) (*certs.Certificate, error) {
	if len(cj.Header.X5C) == 0 {
		return nil, errors.New("card-signed JWS has no x5c card certificate")
	}
	leaf := cj.Header.X5C[0]
	var alg certs.JWSAlgorithm
	switch leaf.KeyAlgorithm() {
	case "EC":
		alg = certs.AlgBP256R1
	case "RSA":
		alg = certs.AlgPS256
	default:
		return nil, errors.New("card certificate key is neither EC nor RSA")
	}
	if _, err := cj.VerifyX5C(alg); err != nil {
		return nil, fmt.Errorf("card signature invalid (bad signature): %w", err)
	}
	typ := leaf.CertificateType()
	var kinds []certs.ProfessionKind
	switch typ {
	case certs.CertHPAUT:
		kinds = []certs.ProfessionKind{certs.KindPerson}
	case certs.CertHCIAUT:
		kinds = []certs.ProfessionKind{certs.KindInstitution}
	case certs.CertCHAUT:
		kinds = []certs.ProfessionKind{certs.KindInsured}
	default:
		return nil, fmt.Errorf("card certificate type %q not accepted (want C.HP.AUT, C.HCI.AUT or C.CH.AUT)", typ)
	}
	if _, err := i.cardTrust.Verify(r.Context(), leaf, certs.VerifyOptions{
		At:               now,
		Intermediates:    cj.Header.X5C[1:],
		KeyUsage:         certs.KeyUsageDigitalSignature,
		CertificateTypes: acceptedCardTypes,
		ProfessionKinds:  kinds,
		Revocation:       i.revocation,
	}); err != nil {
		return nil, fmt.Errorf("card certificate refused: %w", err)
	}
	return leaf, nil
}

// ExtractCardClaims derives the token claims from a card certificate as the IDP-Dienst does: the first
// professionOID and the registrationNumber (Telematik-ID; the KVNR for an eGK) of the first Admission
// entry, the SMC-B's CN as organizationName (null otherwise), and the names from the subject DN.
func ExtractCardClaims(c *certs.Certificate) (*CardClaims, error) {
	oids := c.ProfessionOIDs()
	if len(oids) == 0 {
		return nil, errors.New("card certificate carries no professionOID in its Admission")
	}
	cl := &CardClaims{ProfessionOID: oids[0], GivenName: c.Subject.GivenName, FamilyName: c.Subject.Surname}
	switch c.CertificateType() {
	case certs.CertCHAUT:
		cl.IDNummer = c.KVNR()
		for _, ou := range c.Subject.OrganizationalUnit {
			if len(ou) == 9 && strings.Trim(ou, "0123456789") == "" {
				cl.OrganizationIK = ou
			}
		}
	case certs.CertHCIAUT:
		cl.IDNummer = c.TelematikID()
		org := c.Subject.CommonName
		cl.OrganizationName = &org
	default:
		cl.IDNummer = c.TelematikID()
	}
	if cl.IDNummer == "" {
		return nil, errors.New("card certificate carries no idNummer (Telematik-ID or KVNR)")
	}
	cl.DisplayName = strings.TrimSpace(cl.GivenName + " " + cl.FamilyName)
	return cl, nil
}

// issueCode returns the authorization code: dir/A256GCM JWE under the IDP-internal key over
// {"njwt": <signed code JWT>}, header exp, living CodeLifetime.
func (i *IDP) issueCode(cc *challengeClaims, cl *CardClaims, now time.Time) ([]byte, error) {
	exp := now.Add(CodeLifetime).Unix()
	code := codeClaims{
		CardClaims: *cl, AMR: AMR, Iss: i.issuer, ResponseType: "code", Snc: randomID(24),
		CodeChallengeMethod: "S256", TokenType: "code", Nonce: cc.Nonce, ClientID: cc.ClientID, Scope: cc.Scope,
		AuthTime: now.Unix(), RedirectURI: cc.RedirectURI, State: cc.State, Exp: exp, Iat: now.Unix(),
		CodeChallenge: cc.CodeChallenge, JTI: randomHex(8),
	}
	jws, err := i.signJWT("JWT", code)
	if err != nil {
		return nil, err
	}
	return encryptNJWT(i.codeKey, jws, exp)
}

// encryptNJWT wraps a JWS as {"njwt": …} in a dir/A256GCM JWE with cty NJWT and exp.
func encryptNJWT(key, jws []byte, exp int64) ([]byte, error) {
	plain, err := json.Marshal(map[string]string{"njwt": string(jws)})
	if err != nil {
		return nil, err
	}
	return certs.EncryptDir(key, plain, map[string]any{"cty": "NJWT", "exp": exp})
}

// trunc shortens a value for a log line.
func trunc(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
