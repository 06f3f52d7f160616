package devidp

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/timstack/timstack/certs"
)

// Card is a test smartcard identity: its AUT certificate and private key.
type Card struct {
	Cert *certs.Certificate
	Key  crypto.Signer
}

// LoadCard reads dir/cert.pem and dir/key.pem (the layout of testdata/gematik/pki/cards/*).
func LoadCard(dir string) (*Card, error) {
	certPEM, err := os.ReadFile(filepath.Join(dir, "cert.pem"))
	if err != nil {
		return nil, fmt.Errorf("devidp: card: %w", err)
	}
	keyPEM, err := os.ReadFile(filepath.Join(dir, "key.pem"))
	if err != nil {
		return nil, fmt.Errorf("devidp: card: %w", err)
	}
	kp, err := parseKeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("devidp: card %s: %w", dir, err)
	}
	return &Card{Cert: kp.Cert, Key: kp.Key}, nil
}

// ErrRefused is wrapped by every RefusalError: the IDP said no.
var ErrRefused = errors.New("IDP refused the login")

// RefusalError is the IDP's refusal of a signed challenge, with the reason it gave.
type RefusalError struct {
	// Status is the HTTP status (302 when the refusal came as a redirect to redirect_uri).
	Status      int
	Code        string
	Description string
}

func (e *RefusalError) Error() string {
	return fmt.Sprintf("%v: %s: %s", ErrRefused, e.Code, e.Description)
}

// Unwrap makes errors.Is(err, ErrRefused) true.
func (e *RefusalError) Unwrap() error { return ErrRefused }

// userAgent is sent on every request: the IDP-Dienst requires one.
const userAgent = "timstack-devidp-authenticator/1"

// maxResponseBytes bounds what the Authenticator reads from the IDP.
const maxResponseBytes = 1 << 20

// Authenticate plays the gematik Authenticator and Konnektor for card: GET authURL → challenge; sign it
// with the card (BP256R1 for ECC cards, PS256 for RSA cards; header typ JWT, cty NJWT, x5c); encrypt
// {"njwt": …} ECDH-ES to puk_idp_enc (from the IDP's discovery document, header exp = challenge exp);
// POST it to the authorization endpoint and return code and state from the 302. A refusal is a
// *RefusalError carrying the IDP's reason.
//
// Like the real Authenticator, it checks the challenge's signature against puk_idp_sig but does not
// validate the IDP's certificate chain: that is the relying party's job.
func Authenticate(ctx context.Context, hc *http.Client, authURL string, card *Card) (code, state string, err error) {
	if hc == nil {
		hc = http.DefaultClient
	}
	if card == nil || card.Cert == nil || card.Key == nil {
		return "", "", errors.New("authenticate: no card")
	}
	au, err := url.Parse(authURL)
	if err != nil || (au.Scheme != "http" && au.Scheme != "https") || au.Host == "" {
		return "", "", fmt.Errorf("authenticate: bad authorization URL %q", authURL)
	}
	var ch struct {
		Challenge string `json:"challenge"`
	}
	if err := getJSON(ctx, hc, authURL, &ch); err != nil {
		return "", "", fmt.Errorf("authenticate: challenge: %w", err)
	}
	cj, err := certs.ParseCompactJWS([]byte(ch.Challenge))
	if err != nil {
		return "", "", fmt.Errorf("authenticate: challenge: %w", err)
	}
	var claims struct {
		Iss string `json:"iss"`
		Exp int64  `json:"exp"`
	}
	if err := json.Unmarshal(cj.Payload, &claims); err != nil || claims.Exp == 0 {
		return "", "", fmt.Errorf("authenticate: challenge claims without exp")
	}
	// The challenge names the IDP; it must be the one we asked, so a redirect cannot point us elsewhere.
	iu, err := url.Parse(claims.Iss)
	if err != nil || iu.Scheme != au.Scheme || iu.Host != au.Host {
		return "", "", fmt.Errorf("authenticate: challenge issuer %q is not the host asked (%s://%s)", claims.Iss, au.Scheme, au.Host)
	}
	sigKey, encKey, err := fetchIDPKeys(ctx, hc, strings.TrimRight(claims.Iss, "/"))
	if err != nil {
		return "", "", fmt.Errorf("authenticate: %w", err)
	}
	if err := cj.Verify(certs.AlgBP256R1, sigKey); err != nil {
		return "", "", fmt.Errorf("authenticate: challenge signature: %w", err)
	}
	signed, err := SignChallenge(card, []byte(ch.Challenge))
	if err != nil {
		return "", "", fmt.Errorf("authenticate: %w", err)
	}
	jwe, err := EncryptSignedChallenge(encKey, signed, claims.Exp)
	if err != nil {
		return "", "", fmt.Errorf("authenticate: %w", err)
	}
	post := *au
	post.RawQuery = ""
	return postSignedChallenge(ctx, hc, post.String(), string(jwe))
}

// SignChallenge is the Konnektor's ExternalAuthenticate: the card signs {"njwt": challenge} with header
// typ JWT, cty NJWT, x5c [card certificate] and alg BP256R1 (ECC) or PS256 (RSA).
func SignChallenge(card *Card, challenge []byte) ([]byte, error) {
	alg := certs.AlgBP256R1
	if card.Cert.KeyAlgorithm() == "RSA" {
		alg = certs.AlgPS256
	}
	payload, err := json.Marshal(map[string]string{"njwt": string(challenge)})
	if err != nil {
		return nil, err
	}
	return certs.SignCompactJWS(card.Key, alg, map[string]any{"typ": "JWT", "cty": "NJWT", "x5c": certs.X5CHeader(card.Cert)}, payload)
}

// EncryptSignedChallenge wraps the card-signed JWS as {"njwt": …} in an ECDH-ES/A256GCM JWE to
// puk_idp_enc with cty NJWT and exp (which the IDP compares with the challenge's exp).
func EncryptSignedChallenge(encKey *ecdsa.PublicKey, signed []byte, exp int64) ([]byte, error) {
	plain, err := json.Marshal(map[string]string{"njwt": string(signed)})
	if err != nil {
		return nil, err
	}
	return certs.EncryptECDHES(encKey, plain, map[string]any{"cty": "NJWT", "exp": exp})
}

// fetchIDPKeys reads the discovery document of issuer and the puk_idp_sig and puk_idp_enc JWKs it names.
// The discovery signature is checked against its own x5c only (no chain: the RP does that).
func fetchIDPKeys(ctx context.Context, hc *http.Client, issuer string) (sig, enc *ecdsa.PublicKey, err error) {
	raw, err := get(ctx, hc, issuer+PathDiscovery)
	if err != nil {
		return nil, nil, fmt.Errorf("discovery: %w", err)
	}
	dj, err := certs.ParseCompactJWS(raw)
	if err != nil {
		return nil, nil, fmt.Errorf("discovery: %w", err)
	}
	if _, err := dj.VerifyX5C(certs.AlgBP256R1); err != nil {
		return nil, nil, fmt.Errorf("discovery: %w", err)
	}
	var disc struct {
		Sig string `json:"uri_puk_idp_sig"`
		Enc string `json:"uri_puk_idp_enc"`
	}
	if err := json.Unmarshal(dj.Payload, &disc); err != nil {
		return nil, nil, fmt.Errorf("discovery: %w", err)
	}
	for _, k := range []struct {
		uri, kid string
		dst      **ecdsa.PublicKey
	}{{disc.Sig, "puk_idp_sig", &sig}, {disc.Enc, "puk_idp_enc", &enc}} {
		raw, err := get(ctx, hc, k.uri)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", k.kid, err)
		}
		pub, kid, _, _, err := certs.ParseBP256JWK(raw)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", k.kid, err)
		}
		if kid != k.kid {
			return nil, nil, fmt.Errorf("%s: JWK kid %q", k.kid, kid)
		}
		*k.dst = pub
	}
	return sig, enc, nil
}

// postSignedChallenge POSTs the signed challenge without following the redirect and reads code and state
// (or the refusal) from it.
func postSignedChallenge(ctx context.Context, hc *http.Client, endpoint, jwe string) (code, state string, err error) {
	noRedirect := *hc
	noRedirect.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(url.Values{"signed_challenge": {jwe}}.Encode()))
	if err != nil {
		return "", "", fmt.Errorf("authenticate: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("User-Agent", userAgent)
	resp, err := noRedirect.Do(req)
	if err != nil {
		return "", "", fmt.Errorf("authenticate: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if resp.StatusCode != http.StatusFound && resp.StatusCode != http.StatusSeeOther {
		var eb errorBody
		if json.Unmarshal(body, &eb) == nil && eb.Error != "" {
			return "", "", &RefusalError{Status: resp.StatusCode, Code: eb.Error, Description: eb.ErrorDescription}
		}
		return "", "", fmt.Errorf("authenticate: signed challenge answered %s", resp.Status)
	}
	loc, err := resp.Location()
	if err != nil {
		return "", "", fmt.Errorf("authenticate: redirect: %w", err)
	}
	q := loc.Query()
	if e := q.Get("error"); e != "" {
		return "", "", &RefusalError{Status: resp.StatusCode, Code: e, Description: q.Get("error_description")}
	}
	if q.Get("code") == "" {
		return "", "", errors.New("authenticate: redirect without code")
	}
	return q.Get("code"), q.Get("state"), nil
}

func get(ctx context.Context, hc *http.Client, u string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("User-Agent", userAgent)
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		var eb errorBody
		if json.Unmarshal(body, &eb) == nil && eb.Error != "" {
			return nil, &RefusalError{Status: resp.StatusCode, Code: eb.Error, Description: eb.ErrorDescription}
		}
		return nil, fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	return body, nil
}

func getJSON(ctx context.Context, hc *http.Client, u string, dst any) error {
	body, err := get(ctx, hc, u)
	if err != nil {
		return err
	}
	return json.Unmarshal(body, dst)
}
