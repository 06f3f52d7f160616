package devstack

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base32"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/timstack/timstack/authn/devidp"
	"github.com/timstack/timstack/authn/registration"
	"github.com/timstack/timstack/proxy/e2e/mxclient"
)

// Onboarding is what a practice's Org-Admin gets at the registration service.
type Onboarding struct {
	Session     string
	TelematikID string
	TOTPSecret  []byte
}

// Onboard signs an organisation's Org-Admin in with its SMC-B (first sign-in: account + TOTP enrolment),
// completes the second factor and registers the Messenger-Service domain; the directory's signed list
// grows by the domain.
func (s *Stack) Onboard(ctx context.Context, smcb *devidp.Card, domain string) (*Onboarding, error) {
	reg := s.RegistrationURL
	var login struct {
		AuthURL string `json:"authURL"`
	}
	if err := callJSON(ctx, http.MethodGet, reg+"/registration/v1/login", "", nil, &login); err != nil {
		return nil, fmt.Errorf("registration login: %w", err)
	}
	code, state, err := devidp.Authenticate(ctx, nil, login.AuthURL, smcb)
	if err != nil {
		return nil, fmt.Errorf("IDP: %w", err)
	}
	var cb struct {
		Pending       string `json:"pending"`
		TelematikID   string `json:"telematikID"`
		TOTPEnrolment *struct {
			Secret string `json:"secret"`
		} `json:"totpEnrolment"`
	}
	q := url.Values{"code": {code}, "state": {state}}
	if err := callJSON(ctx, http.MethodGet, reg+"/registration/v1/callback?"+q.Encode(), "", nil, &cb); err != nil {
		return nil, fmt.Errorf("registration callback: %w", err)
	}
	if cb.TOTPEnrolment == nil {
		return nil, fmt.Errorf("registration callback: %s already has an Org-Admin (no TOTP enrolment offered)", cb.TelematikID)
	}
	secret, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(cb.TOTPEnrolment.Secret)
	if err != nil {
		return nil, fmt.Errorf("TOTP secret: %w", err)
	}
	var sess struct {
		Session string `json:"session"`
	}
	if err := callJSON(ctx, http.MethodPost, reg+"/registration/v1/totp", "",
		map[string]string{"pending": cb.Pending, "code": registration.TOTPAt(secret, s.now())}, &sess); err != nil {
		return nil, fmt.Errorf("TOTP: %w", err)
	}
	if err := callJSON(ctx, http.MethodPost, reg+"/registration/v1/messenger-services", sess.Session,
		map[string]any{"domain": domain, "isInsurance": false}, nil); err != nil {
		return nil, fmt.Errorf("register %s: %w", domain, err)
	}
	return &Onboarding{Session: sess.Session, TelematikID: cb.TelematikID, TOTPSecret: secret}, nil
}

// PropagateList makes the new list travel now instead of at the next poll: registration service ← directory,
// then every proxy ← registration service. Each hop verifies the JWS itself.
func (s *Stack) PropagateList(ctx context.Context) error {
	if err := s.central.Registry.Keeper().Refresh(ctx); err != nil {
		return fmt.Errorf("registration service list refresh: %w", err)
	}
	for _, nd := range s.Nodes {
		if err := nd.Proxy.RefreshFederationList(ctx); err != nil {
			return fmt.Errorf("%s: list refresh: %w", nd.Spec.ServerName, err)
		}
	}
	return nil
}

// SearchToken exchanges the user's Matrix OpenID token at the directory's /tim-authenticate.
func (s *Stack) SearchToken(ctx context.Context, c *mxclient.Client) (string, error) {
	_, server, _ := strings.Cut(c.UserID, ":")
	openID, err := OpenIDToken(ctx, c)
	if err != nil {
		return "", err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.DirectoryURL+"/tim-authenticate?mxId="+url.QueryEscape(server), nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("X-Matrix-OpenID-Token", openID)
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := doJSON(req, &tok); err != nil {
		return "", fmt.Errorf("tim-authenticate: %w", err)
	}
	return tok.AccessToken, nil
}

// OpenIDToken asks the user's homeserver for a Matrix OpenID token (what the directory, the registration
// service and /tim-information accept as proof of the user).
func OpenIDToken(ctx context.Context, c *mxclient.Client) (string, error) {
	status, body, err := c.Raw(ctx, http.MethodPost, "/_matrix/client/v3/user/"+url.PathEscape(c.UserID)+"/openid/request_token", map[string]any{})
	if err != nil || status != http.StatusOK {
		return "", fmt.Errorf("openid request_token: %d %s %v", status, body, err)
	}
	var ot struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(body, &ot); err != nil || ot.AccessToken == "" {
		return "", fmt.Errorf("openid request_token: unexpected answer %s", body)
	}
	return ot.AccessToken, nil
}

// FindPractitionerMXID searches the directory like a TI-M client: PractitionerRole by the practitioner's
// family name, with the endpoints included; returns the MXID of the first TI-Messenger endpoint.
func (s *Stack) FindPractitionerMXID(ctx context.Context, searchToken, family string) (string, error) {
	q := url.Values{"practitioner.family": {family}, "_include": {"PractitionerRole:endpoint"}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.DirectoryURL+"/search/PractitionerRole?"+q.Encode(), nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", "Bearer "+searchToken)
	var bundle struct {
		Entry []struct {
			Resource struct {
				ResourceType   string `json:"resourceType"`
				Address        string `json:"address"`
				ConnectionType struct {
					Code string `json:"code"`
				} `json:"connectionType"`
			} `json:"resource"`
		} `json:"entry"`
	}
	if err := doJSON(req, &bundle); err != nil {
		return "", fmt.Errorf("directory search: %w", err)
	}
	for _, e := range bundle.Entry {
		r := e.Resource
		if r.ResourceType == "Endpoint" && strings.HasPrefix(r.ConnectionType.Code, "tim") {
			return MXIDFromEndpoint(r.Address)
		}
	}
	return "", fmt.Errorf("no TI-Messenger endpoint for %q in the directory", family)
}

// MXIDFromEndpoint turns an Endpoint address (matrix:u/localpart:domain, or the legacy @localpart:domain)
// into an MXID.
func MXIDFromEndpoint(addr string) (string, error) {
	switch {
	case strings.HasPrefix(addr, "matrix:u/"):
		return "@" + strings.TrimPrefix(addr, "matrix:u/"), nil
	case strings.HasPrefix(addr, "@"):
		return addr, nil
	}
	return "", fmt.Errorf("endpoint address %q is not a Matrix user", addr)
}

// LastDenial returns the reasons of the node's newest denied decision for action (from its decision log).
func (nd *Node) LastDenial(action string) ([]string, error) {
	f, err := os.Open(nd.Cfg.Log.DecisionLog)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var reasons []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var ev struct {
			Action  string   `json:"action"`
			Allow   bool     `json:"allow"`
			Reasons []string `json:"reasons"`
		}
		if json.Unmarshal(sc.Bytes(), &ev) == nil && ev.Action == action && !ev.Allow {
			reasons = ev.Reasons
		}
	}
	if reasons == nil {
		return nil, fmt.Errorf("no denied %s decision in %s", action, filepath.Base(nd.Cfg.Log.DecisionLog))
	}
	return reasons, sc.Err()
}

// callJSON sends body (JSON) with an optional bearer token and decodes a 2xx answer into out.
func callJSON(ctx context.Context, method, target, bearer string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, target, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	return doJSON(req, out)
}

func doJSON(req *http.Request, out any) error {
	hc := &http.Client{Timeout: 30 * time.Second}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		return &HTTPError{Status: resp.StatusCode, Body: string(b)}
	}
	if out == nil || len(b) == 0 {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("answer is not the expected JSON: %w", err)
	}
	return nil
}

// OwnerTokenViaRegService is the Org-Admin's way to the directory's owner API: bind the admin's Matrix
// account at the registration service, exchange a Matrix OpenID token for a RegService-OpenID-Token
// (BP256R1, C.FD.SIG role oid_tim) and that at the directory's /owner-authenticate for an owner token.
func (s *Stack) OwnerTokenViaRegService(ctx context.Context, ob *Onboarding, admin *mxclient.Client) (string, error) {
	if err := callJSON(ctx, http.MethodPut, s.RegistrationURL+"/registration/v1/org-admin/mxid", ob.Session,
		map[string]string{"user_id": admin.UserID}, nil); err != nil {
		return "", fmt.Errorf("bind Org-Admin MXID: %w", err)
	}
	openID, err := OpenIDToken(ctx, admin)
	if err != nil {
		return "", err
	}
	var reg struct {
		AccessToken string `json:"access_token"`
	}
	target := s.RegistrationURL + "/regservice/openid/user/" + url.PathEscape(admin.UserID) + "/requesttoken?request_token=" + url.QueryEscape(openID)
	if err := callJSON(ctx, http.MethodPost, target, "", nil, &reg); err != nil {
		return "", fmt.Errorf("RegService token: %w", err)
	}
	var owner struct {
		AccessToken string `json:"access_token"`
	}
	if err := callJSON(ctx, http.MethodGet, s.DirectoryURL+"/owner-authenticate", reg.AccessToken, nil, &owner); err != nil {
		return "", fmt.Errorf("owner-authenticate: %w", err)
	}
	return owner.AccessToken, nil
}

// OwnerTokenViaIDP is the practitioner's way: /owner-authenticate without a token sends the browser to the
// IDP; the eHBA signs the challenge; /signin-gematik-idp-dienst answers the owner token.
func (s *Stack) OwnerTokenViaIDP(ctx context.Context, hba *devidp.Card) (string, error) {
	b := browser()
	authURL, err := redirectOf(ctx, b, s.DirectoryURL+"/owner-authenticate")
	if err != nil {
		return "", fmt.Errorf("owner-authenticate: %w", err)
	}
	code, state, err := devidp.Authenticate(ctx, b, authURL, hba)
	if err != nil {
		return "", fmt.Errorf("IDP: %w", err)
	}
	var owner struct {
		AccessToken string `json:"access_token"`
	}
	q := url.Values{"code": {code}, "state": {state}}
	if err := callJSON(ctx, http.MethodGet, s.DirectoryURL+"/signin-gematik-idp-dienst?"+q.Encode(), "", nil, &owner); err != nil {
		return "", fmt.Errorf("signin-gematik-idp-dienst: %w", err)
	}
	return owner.AccessToken, nil
}
