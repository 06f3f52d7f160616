package idp

import (
	"context"
	"crypto/ecdsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"sync/atomic"
	"time"

	"github.com/timstack/timstack/certs"
)

// Names fixed by gemSpec_IDP_Dienst.
const (
	kidDiscovery = "puk_disc_sig"
	kidIDPSig    = "puk_idp_sig"
	kidIDPEnc    = "puk_idp_enc"
)

// discoveryDoc holds the members of the discovery document the RP uses.
type discoveryDoc struct {
	Issuer                string   `json:"issuer"`
	AuthorizationEndpoint string   `json:"authorization_endpoint"`
	TokenEndpoint         string   `json:"token_endpoint"`
	JWKSURI               string   `json:"jwks_uri"`
	URIPukIDPEnc          string   `json:"uri_puk_idp_enc"`
	URIPukIDPSig          string   `json:"uri_puk_idp_sig"`
	IssuedAt              *int64   `json:"iat"`
	Expires               *int64   `json:"exp"`
	IDTokenAlgs           []string `json:"id_token_signing_alg_values_supported"`
	CodeChallengeMethods  []string `json:"code_challenge_methods_supported"`
}

// idpKeys is one verified discovery document with its keys. It is immutable; a reload swaps the whole value.
type idpKeys struct {
	disc       discoveryDoc
	sig        *ecdsa.PublicKey
	enc        *ecdsa.PublicKey
	validUntil time.Time
}

// keyCache holds the current idpKeys and serialises loads: one load runs at a time (single flight), and forced
// reloads after a signature failure happen at most once per forcedReloadGap, so a stream of forged tokens
// cannot turn the RP into a request amplifier against the IDP.
type keyCache struct {
	rp  *RelyingParty
	cur atomic.Pointer[idpKeys]
	sem chan struct{} // capacity 1: the load lock, waitable with a context

	// Guarded by sem.
	lastForced time.Time
	lastErr    error
	lastErrAt  time.Time
}

// failedLoadBackoff keeps a down IDP from being asked once per login attempt.
const failedLoadBackoff = 5 * time.Second

func (c *keyCache) lock(ctx context.Context) error {
	select {
	case c.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%w: waiting for discovery load: %w", ErrDiscovery, ctx.Err())
	}
}

func (c *keyCache) unlock() { <-c.sem }

// get returns keys valid now, loading them when there are none or they passed the discovery exp.
func (c *keyCache) get(ctx context.Context) (*idpKeys, error) {
	if k := c.cur.Load(); k != nil && c.rp.now().Before(k.validUntil) {
		return k, nil
	}
	if err := c.lock(ctx); err != nil {
		return nil, err
	}
	defer c.unlock()
	now := c.rp.now()
	if k := c.cur.Load(); k != nil && now.Before(k.validUntil) {
		return k, nil // another caller loaded while we waited
	}
	if c.lastErr != nil && now.Sub(c.lastErrAt) < failedLoadBackoff && now.Sub(c.lastErrAt) >= 0 {
		return nil, c.lastErr
	}
	return c.loadLocked(ctx, now)
}

// reload is the key-rotation path: seen is the key set a signature just failed with. If another caller has
// swapped in a newer set meanwhile, that one is returned without a request; otherwise one forced reload runs,
// unless the last one was less than forcedReloadGap ago.
func (c *keyCache) reload(ctx context.Context, seen *idpKeys) (*idpKeys, error) {
	if err := c.lock(ctx); err != nil {
		return nil, err
	}
	defer c.unlock()
	now := c.rp.now()
	if k := c.cur.Load(); k != nil && k != seen && now.Before(k.validUntil) {
		return k, nil
	}
	if !c.lastForced.IsZero() && now.Sub(c.lastForced) < forcedReloadGap && now.Sub(c.lastForced) >= 0 {
		return nil, fmt.Errorf("%w: forced key reload refused: the last one was %s ago (at most one per %s)",
			ErrDiscovery, now.Sub(c.lastForced).Round(time.Second), forcedReloadGap)
	}
	c.lastForced = now
	return c.loadLocked(ctx, now)
}

func (c *keyCache) loadLocked(ctx context.Context, now time.Time) (*idpKeys, error) {
	k, err := c.rp.loadKeys(ctx, now)
	if err != nil {
		c.lastErr, c.lastErrAt = err, now
		c.rp.log.Warn("idp discovery refused", "issuer", c.rp.cfg.Issuer, "err", err)
		return nil, err
	}
	c.lastErr = nil
	c.cur.Store(k)
	c.rp.log.Info("idp discovery loaded", "issuer", k.disc.Issuer, "valid_until", k.validUntil)
	return k, nil
}

// loadKeys fetches and verifies the discovery document and both IDP keys (§7.2 steps 2–3).
func (rp *RelyingParty) loadKeys(ctx context.Context, now time.Time) (*idpKeys, error) {
	body, err := rp.get(ctx, rp.cfg.DiscoveryURL, "application/jwt", true)
	if err != nil {
		return nil, fmt.Errorf("%w: discovery: %w", ErrDiscovery, err)
	}
	disc, signer, err := rp.verifyDiscovery(ctx, body, now)
	if err != nil {
		return nil, fmt.Errorf("%w: discovery: %w", ErrDiscovery, err)
	}
	k := &idpKeys{disc: *disc}
	var sigCert *certs.Certificate
	if k.sig, k.enc, sigCert, err = rp.fetchIDPKeys(ctx, disc, now); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrDiscovery, err)
	}
	// Keep the set no longer than the discovery exp, 24 h, or either certificate's validity.
	k.validUntil = time.Unix(*disc.Expires, 0)
	for _, limit := range []time.Time{now.Add(maxDiscoveryLife), signer.NotAfter, sigCert.NotAfter} {
		if k.validUntil.After(limit) {
			k.validUntil = limit
		}
	}
	return k, nil
}

// verifyDiscovery checks the discovery JWS: header, signer certificate, signature, then the content.
func (rp *RelyingParty) verifyDiscovery(ctx context.Context, raw []byte, now time.Time) (*discoveryDoc, *certs.Certificate, error) {
	j, err := certs.ParseCompactJWS(raw)
	if err != nil {
		return nil, nil, err
	}
	// jwx would verify with whatever algorithm it is handed; the header must name BP256R1 before anything else.
	if j.Header.Alg != certs.AlgBP256R1 {
		return nil, nil, fmt.Errorf("%w: alg %q, want BP256R1", certs.ErrAlgorithmMismatch, j.Header.Alg)
	}
	if j.Header.Kid != kidDiscovery {
		return nil, nil, fmt.Errorf("kid %q, want %s", j.Header.Kid, kidDiscovery)
	}
	if len(j.Header.X5C) != 1 {
		return nil, nil, fmt.Errorf("x5c holds %d certificates, want exactly the signer", len(j.Header.X5C))
	}
	// Signature first: it is local, while the chain check may ask an OCSP responder — garbage costs us nothing.
	signer, err := j.VerifyX5C(certs.AlgBP256R1)
	if err != nil {
		return nil, nil, err
	}
	if err := rp.verifyIDPCertificate(ctx, "discovery signer", []*certs.Certificate{signer}, now); err != nil {
		return nil, nil, err
	}
	var d discoveryDoc
	if err := json.Unmarshal(j.Payload, &d); err != nil {
		return nil, nil, fmt.Errorf("payload: %w", err)
	}
	if d.Issuer != rp.cfg.Issuer {
		return nil, nil, fmt.Errorf("issuer %q, want %q", d.Issuer, rp.cfg.Issuer)
	}
	if d.IssuedAt == nil || d.Expires == nil {
		return nil, nil, errors.New("iat or exp missing")
	}
	iat, exp := time.Unix(*d.IssuedAt, 0), time.Unix(*d.Expires, 0)
	if iat.After(now.Add(maxClockSkew)) {
		return nil, nil, fmt.Errorf("issued in the future (iat %s, now %s)", iat.UTC(), now.UTC())
	}
	if now.After(exp) {
		return nil, nil, fmt.Errorf("expired at %s (now %s)", exp.UTC(), now.UTC())
	}
	if !slices.Contains(d.IDTokenAlgs, string(certs.AlgBP256R1)) {
		return nil, nil, fmt.Errorf("id_token_signing_alg_values_supported %q lacks BP256R1", d.IDTokenAlgs)
	}
	if !slices.Contains(d.CodeChallengeMethods, "S256") {
		return nil, nil, fmt.Errorf("code_challenge_methods_supported %q lacks S256", d.CodeChallengeMethods)
	}
	for _, e := range []struct{ name, url string }{
		{"authorization_endpoint", d.AuthorizationEndpoint}, {"token_endpoint", d.TokenEndpoint},
	} {
		if e.url == "" {
			return nil, nil, fmt.Errorf("%s missing", e.name)
		}
		if err := checkEndpointURL(e.url, rp.cfg.Production); err != nil {
			return nil, nil, fmt.Errorf("%s: %w", e.name, err)
		}
	}
	return &d, signer, nil
}

// fetchIDPKeys loads puk_idp_sig and puk_idp_enc from their own URIs, or from jwks_uri when the discovery
// document names no per-key URIs.
func (rp *RelyingParty) fetchIDPKeys(ctx context.Context, d *discoveryDoc, now time.Time) (sig, enc *ecdsa.PublicKey, sigCert *certs.Certificate, err error) {
	var sigJWK, encJWK []byte
	if d.URIPukIDPSig != "" && d.URIPukIDPEnc != "" {
		if sigJWK, err = rp.getKeyDoc(ctx, "uri_puk_idp_sig", d.URIPukIDPSig); err != nil {
			return nil, nil, nil, err
		}
		if encJWK, err = rp.getKeyDoc(ctx, "uri_puk_idp_enc", d.URIPukIDPEnc); err != nil {
			return nil, nil, nil, err
		}
	} else {
		if d.JWKSURI == "" {
			return nil, nil, nil, errors.New("discovery names neither uri_puk_idp_sig/uri_puk_idp_enc nor jwks_uri")
		}
		set, err := rp.getKeyDoc(ctx, "jwks_uri", d.JWKSURI)
		if err != nil {
			return nil, nil, nil, err
		}
		if sigJWK, encJWK, err = pickJWKs(set); err != nil {
			return nil, nil, nil, fmt.Errorf("jwks_uri: %w", err)
		}
	}
	if sig, sigCert, err = rp.checkJWK(ctx, sigJWK, kidIDPSig, "sig", true, now); err != nil {
		return nil, nil, nil, err
	}
	if enc, _, err = rp.checkJWK(ctx, encJWK, kidIDPEnc, "enc", false, now); err != nil {
		return nil, nil, nil, err
	}
	return sig, enc, sigCert, nil
}

func (rp *RelyingParty) getKeyDoc(ctx context.Context, what, url string) ([]byte, error) {
	if err := checkEndpointURL(url, rp.cfg.Production); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	b, err := rp.get(ctx, url, "application/json", false)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return b, nil
}

// pickJWKs finds the two IDP keys in a JWK set; a kid listed twice is refused rather than guessed.
func pickJWKs(set []byte) (sig, enc []byte, err error) {
	var s struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(set, &s); err != nil {
		return nil, nil, err
	}
	for _, raw := range s.Keys {
		var k struct {
			Kid string `json:"kid"`
		}
		if json.Unmarshal(raw, &k) != nil {
			continue
		}
		dst := map[string]*[]byte{kidIDPSig: &sig, kidIDPEnc: &enc}[k.Kid]
		if dst == nil {
			continue
		}
		if *dst != nil {
			return nil, nil, fmt.Errorf("kid %q listed twice", k.Kid)
		}
		*dst = raw
	}
	if sig == nil || enc == nil {
		return nil, nil, fmt.Errorf("need %s and %s", kidIDPSig, kidIDPEnc)
	}
	return sig, enc, nil
}

// checkJWK parses one IDP JWK. puk_idp_sig must carry x5c (the reference IDP publishes it, and without it the
// key would be trusted only through the transport); its certificate passes the same check as the discovery
// signer and certifies exactly x/y (ParseBP256JWK compares them). puk_idp_enc needs no x5c, but one present
// is checked too.
func (rp *RelyingParty) checkJWK(ctx context.Context, raw []byte, wantKid, wantUse string, needX5C bool, now time.Time) (*ecdsa.PublicKey, *certs.Certificate, error) {
	pub, kid, use, x5c, err := certs.ParseBP256JWK(raw)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", wantKid, err)
	}
	if kid != wantKid {
		return nil, nil, fmt.Errorf("%s: kid %q", wantKid, kid)
	}
	if use != wantUse && !(use == "" && wantUse == "sig") {
		return nil, nil, fmt.Errorf("%s: use %q, want %q", wantKid, use, wantUse)
	}
	if needX5C && len(x5c) == 0 {
		return nil, nil, fmt.Errorf("%s: no x5c: the key cannot be tied to an IDP-Dienst certificate", wantKid)
	}
	if len(x5c) == 0 {
		return pub, nil, nil
	}
	if err := rp.verifyIDPCertificate(ctx, wantKid, x5c, now); err != nil {
		return nil, nil, err
	}
	return pub, x5c[0], nil
}

// get performs a bounded GET. With strictType, the response's media type must equal accept.
func (rp *RelyingParty) get(ctx context.Context, url, accept string, strictType bool) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", accept)
	req.Header.Set("User-Agent", userAgent)
	resp, err := rp.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: status %d", url, resp.StatusCode)
	}
	if strictType {
		mt, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type"))
		if err != nil || mt != accept {
			return nil, fmt.Errorf("GET %s: content type %q, want %s", url, resp.Header.Get("Content-Type"), accept)
		}
	}
	return readBounded(resp.Body)
}

func readBounded(r io.Reader) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxBodyBytes+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxBodyBytes {
		return nil, fmt.Errorf("response larger than %d bytes", maxBodyBytes)
	}
	return b, nil
}
