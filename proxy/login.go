package proxy

import (
	"fmt"
	"net/http"
	"time"

	"github.com/timstack/timstack/authn/idp"
	"github.com/timstack/timstack/certs"
	"github.com/timstack/timstack/proxy/sso"
)

// newSSO builds the smartcard login bridge when cfg.SSO is enabled: the IDP-Dienst relying party with the
// configured trust, and the application service as the way into the homeserver.
func (p *Proxy) newSSO(cfg *Config) error {
	if !cfg.SSO.Enabled {
		return nil
	}
	c := cfg.SSO.IDP
	trust := certs.NewTrustStore()
	if err := trust.LoadPEMDir(c.TrustDir); err != nil {
		return fmt.Errorf("sso.idp.trust_dir: %w", err)
	}
	var rc certs.RevocationChecker
	switch c.OCSP {
	case "require":
		rc = &certs.OCSPChecker{Trust: trust, Policy: certs.OCSPRequire, MaxCacheTTL: time.Hour}
	default:
		p.log.Warn("sso: OCSP of the IDP's signer certificates is OFF (dev IDP only)")
	}
	rp, err := idp.New(idp.Config{
		Issuer: c.Issuer, ClientID: c.ClientID, RedirectURI: cfg.SSO.CallbackURL(),
		Trust: trust, Revocation: rc, Production: c.Production,
		HTTPClient: &http.Client{Timeout: 15 * time.Second}, Now: p.now, Logger: p.log.With("component", "idp"),
	})
	if err != nil {
		return fmt.Errorf("sso.idp: %w", err)
	}
	p.sso = sso.New(cfg.SSO, rp, p.as, cfg.ServerName, p.log.With("component", "sso"), p.now)
	return nil
}

// login answers the login endpoints when the proxy is the login edge. handled is false when the request
// goes on to the homeserver (login types the bridge leaves to it).
func (p *Proxy) login(w http.ResponseWriter, cr *clientRequest) (handled bool, err error) {
	r := cr.r
	switch {
	case cr.match.Route.ID == "client.login.sso.redirect":
		return true, p.sso.Redirect(w, r, cr.match.Params["idpId"])
	case r.Method == http.MethodGet:
		return true, p.writeJSON(w, http.StatusOK, p.sso.Flows())
	}
	body, err := readJSONBody(r, p.cfg.Limits.MaxJSONBody)
	if err != nil {
		return true, err
	}
	resp, handled, err := p.sso.Login(r.Context(), body)
	if !handled {
		cr.body = body
		return false, nil
	}
	if err != nil {
		return true, err
	}
	return true, p.writeJSON(w, http.StatusOK, resp)
}
