package devstack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/timstack/timstack/authn/devidp"
	"github.com/timstack/timstack/proxy/e2e/mxclient"
	"github.com/timstack/timstack/proxy/e2e/synapse"
	"github.com/timstack/timstack/proxy/sso"
)

var cardsDir = filepath.Join("..", "..", "..", "testdata", "gematik", "pki", "cards")

// startDemoStack brings up the demo's two Synapse homeservers behind the full dev stack.
func startDemoStack(t *testing.T) *Stack {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	venv, tmpl, err := synapse.InstallOrFind(ctx)
	if err != nil {
		if os.Getenv("TIMSTACK_TEST_REQUIRE_HS") == "1" {
			t.Fatalf("Synapse unavailable and TIMSTACK_TEST_REQUIRE_HS=1: %v", err)
		}
		t.Skipf("Synapse unavailable: %v", err)
	}
	dir := t.TempDir()
	if os.Getenv("TIMSTACK_E2E_KEEP") == "1" {
		dir, _ = os.MkdirTemp("", "timstack-devstack-")
		t.Logf("stack directory kept: %s", dir)
	}
	hsAddr := map[string]string{}
	used := map[int]bool{}
	for _, n := range []string{PracticeDomain, PharmacyDomain} {
		p, err := freePort("127.0.0.1", used)
		if err != nil {
			t.Fatal(err)
		}
		hsAddr[n] = "127.0.0.1:" + strconv.Itoa(p)
	}
	st, err := Prepare(Config{
		Dir: dir, Nodes: DemoNodes(func(n string) string { return "http://" + hsAddr[n] }),
		Organizations: DemoOrganizations(), Log: testLogger(t, dir), reservedPorts: used,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Start(ctx); err != nil {
		st.Stop()
		t.Fatal(err)
	}
	t.Cleanup(st.Stop)
	var wg sync.WaitGroup
	errs := make(chan error, len(st.Nodes))
	for _, nd := range st.Nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			hs, err := synapse.Start(ctx, synapse.Config{
				ServerName: nd.Spec.ServerName, Addr: hsAddr[nd.Spec.ServerName], DataDir: filepath.Join(dir, nd.Spec.ServerName, "synapse"),
				Venv: venv, Template: tmpl, AppServiceFiles: []string{nd.Homeserver.AppServiceFile},
				HTTPSProxy: nd.Homeserver.HTTPSProxy, FederationCAFile: nd.Homeserver.FederationCAFile,
				PublicBaseURL: nd.Homeserver.PublicBaseURL,
			})
			if err != nil {
				errs <- fmt.Errorf("%s: %w", nd.Spec.ServerName, err)
				return
			}
			t.Cleanup(func() { _ = hs.Stop() })
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	return st
}

func testLogger(t *testing.T, dir string) *slog.Logger {
	t.Helper()
	f, err := os.Create(filepath.Join(dir, "stack.log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return slog.New(slog.NewJSONHandler(f, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func loadCard(t *testing.T, name string) *devidp.Card {
	t.Helper()
	c, err := devidp.LoadCard(filepath.Join(cardsDir, name))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestSmartcardChainEndToEnd is issue 5's acceptance: SMC-B onboarding (active Organization seeded) → the
// proxies verify the grown list's new JWS → eHBA login via SSO → /tim-authenticate → directory search →
// invite → delivered message; an invite to a non-federated server is refused with the reason in the
// decision log; permission enforcement still holds after a proxy restart; and the login refusals a user
// would meet.
func TestSmartcardChainEndToEnd(t *testing.T) {
	st := startDemoStack(t)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	var out strings.Builder
	res, err := st.RunDemo(ctx, &out, cardsDir)
	t.Log(out.String())
	if err != nil {
		t.Fatalf("walkthrough: %v", err)
	}
	if !slices.Contains(res.DenialReasons, "invitee_not_federated") {
		t.Errorf("denial reasons %v, want invitee_not_federated", res.DenialReasons)
	}
	practice, pharmacy := st.Node(PracticeDomain), st.Node(PharmacyDomain)

	t.Run("permission enforcement holds after a proxy restart", func(t *testing.T) {
		if err := res.Pharmacist.SetAccountData(ctx, "de.gematik.tim.account.permissionconfig.pro.v1",
			map[string]any{"defaultSetting": "block all"}); err != nil {
			t.Fatal(err)
		}
		if err := st.RestartProxy(ctx, pharmacy); err != nil {
			t.Fatal(err)
		}
		room, err := res.Doctor.CreateRoom(ctx, privateRoom())
		if err != nil {
			t.Fatal(err)
		}
		err = res.Doctor.Invite(ctx, room, res.Pharmacist.UserID)
		if !mxclient.IsErr(err, http.StatusForbidden, "M_FORBIDDEN") {
			t.Fatalf("invite to a user blocking everyone after the restart: %v, want 403 M_FORBIDDEN", err)
		}
	})

	// ownerGet reads the owner API with an owner token and returns the ids of the resources it may edit.
	ownerGet := func(t *testing.T, token, typ string) string {
		t.Helper()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, st.DirectoryURL+"/owner/"+typ, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("GET /owner/%s: %d %s", typ, resp.StatusCode, b)
		}
		return string(b)
	}

	t.Run("the Org-Admin reaches the owner API with a RegService-OpenID-Token", func(t *testing.T) {
		tok, err := st.OwnerTokenViaRegService(ctx, res.Onboardings[PharmacyDomain], res.Pharmacist)
		if err != nil {
			t.Fatal(err)
		}
		if body := ownerGet(t, tok, "Organization"); !strings.Contains(body, "3-SMC-B-Testkarte-883110000129068") {
			t.Fatalf("the owner API does not offer the pharmacy's Organization: %s", body)
		}
	})

	t.Run("an Org-Admin cannot bind a user of another organisation's server", func(t *testing.T) {
		_, err := st.OwnerTokenViaRegService(ctx, res.Onboardings[PracticeDomain], res.Pharmacist)
		var he *HTTPError
		if !errors.As(err, &he) || he.Status != http.StatusForbidden {
			t.Fatalf("binding another organisation's user: %v, want 403", err)
		}
	})

	t.Run("a RegService token is refused for a user who is not the Org-Admin", func(t *testing.T) {
		openID, err := OpenIDToken(ctx, res.Doctor)
		if err != nil {
			t.Fatal(err)
		}
		target := st.RegistrationURL + "/regservice/openid/user/" + url.PathEscape(res.Doctor.UserID) + "/requesttoken?request_token=" + url.QueryEscape(openID)
		err = callJSON(ctx, http.MethodPost, target, "", nil, nil)
		var he *HTTPError
		if !errors.As(err, &he) || he.Status != http.StatusBadRequest || !strings.Contains(he.Body, "unauthorized") {
			t.Fatalf("RegService token for a non-admin: %v, want 400 unauthorized", err)
		}
	})

	t.Run("a practitioner reaches the owner API with the eHBA through the IDP", func(t *testing.T) {
		tok, err := st.OwnerTokenViaIDP(ctx, loadCard(t, CardDoctorHBA))
		if err != nil {
			t.Fatal(err)
		}
		if body := ownerGet(t, tok, "Practitioner"); !strings.Contains(body, "1-HBA-Testkarte-883110000129084") {
			t.Fatalf("the owner API does not offer the doctor's Practitioner entry: %s", body)
		}
	})

	t.Run("a second smartcard login reuses the account", func(t *testing.T) {
		c, err := SmartcardLogin(ctx, practice, loadCard(t, CardDoctorHBA), sso.IDPPractitioner)
		if err != nil {
			t.Fatal(err)
		}
		if c.UserID != res.Doctor.UserID || c.AccessToken == res.Doctor.AccessToken {
			t.Fatalf("second login: %s (token reused: %v)", c.UserID, c.AccessToken == res.Doctor.AccessToken)
		}
	})

	refusals := []struct {
		name, card, want string
		prepare          func(t *testing.T)
	}{
		{"an eGK may not log in where a professional is required", "80276883110000129089-2-C_CH_AUT_E256", "profession", nil},
		{"a card without a mapped account is refused", "80276883110000129083-2-C_HP_AUT_E256", "No Matrix account", nil},
		{"a revoked card is refused by the IDP", "80276883110000129077-2-C_SMCB_HCI_AUT_E256", "revoked", func(t *testing.T) {
			st.CardOCSP().Revoke(loadCard(t, "80276883110000129077-2-C_SMCB_HCI_AUT_E256").Cert)
		}},
	}
	for _, tc := range refusals {
		t.Run(tc.name, func(t *testing.T) {
			if tc.prepare != nil {
				tc.prepare(t)
			}
			_, err := SmartcardLogin(ctx, practice, loadCard(t, tc.card), sso.IDPPractitioner)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("login: %v, want a refusal mentioning %q", err, tc.want)
			}
		})
	}

	t.Run("a headless client logs in with a fresh IDP token, once", func(t *testing.T) {
		lr, err := devidp.Login(ctx, devidp.LoginOptions{Issuer: st.IDPURL, ClientID: practice.Cfg.SSO.IDP.ClientID,
			RedirectURI: practice.Cfg.SSO.CallbackURL()}, loadCard(t, CardDoctorHBA))
		if err != nil {
			t.Fatal(err)
		}
		c := &mxclient.Client{BaseURL: practice.ClientURL}
		body := map[string]any{"type": sso.TypeIDPToken, "token": string(lr.IDToken)}
		status, b, err := c.Raw(ctx, http.MethodPost, "/_matrix/client/v3/login", body)
		if err != nil || status != 200 || !strings.Contains(string(b), res.Doctor.UserID) {
			t.Fatalf("direct login: %d %s %v", status, b, err)
		}
		status, b, err = c.Raw(ctx, http.MethodPost, "/_matrix/client/v3/login", body)
		if err != nil || status != http.StatusForbidden {
			t.Fatalf("replayed IDP token: %d %s %v, want 403", status, b, err)
		}
	})

	t.Run("an IDP token issued to another client is refused", func(t *testing.T) {
		lr, err := devidp.Login(ctx, devidp.LoginOptions{Issuer: st.IDPURL, ClientID: "some-other-client",
			RedirectURI: "http://127.0.0.1/cb"}, loadCard(t, CardDoctorHBA))
		if err != nil {
			t.Fatal(err)
		}
		c := &mxclient.Client{BaseURL: practice.ClientURL}
		status, b, err := c.Raw(ctx, http.MethodPost, "/_matrix/client/v3/login", map[string]any{"type": sso.TypeIDPToken, "token": string(lr.IDToken)})
		if err != nil || status != http.StatusForbidden {
			t.Fatalf("foreign audience: %d %s %v, want 403", status, b, err)
		}
	})

	t.Run("a loginToken is single use", func(t *testing.T) {
		tok := loginToken(t, ctx, practice, loadCard(t, CardDoctorHBA))
		c := &mxclient.Client{BaseURL: practice.ClientURL}
		body := map[string]any{"type": "m.login.token", "token": tok}
		if status, b, err := c.Raw(ctx, http.MethodPost, "/_matrix/client/v3/login", body); err != nil || status != 200 {
			t.Fatalf("first use: %d %s %v", status, b, err)
		}
		status, b, err := c.Raw(ctx, http.MethodPost, "/_matrix/client/v3/login", body)
		if err != nil || status != http.StatusForbidden || !strings.Contains(string(b), "already used") {
			t.Fatalf("replay: %d %s %v, want 403 already used", status, b, err)
		}
	})
}

// loginToken runs the SSO flow up to the redirect with the loginToken.
func loginToken(t *testing.T, ctx context.Context, nd *Node, card *devidp.Card) string {
	t.Helper()
	b := browser()
	authURL, err := redirectOf(ctx, b, nd.ClientURL+"/_matrix/client/v3/login/sso/redirect/gematik?redirectUrl="+ClientRedirect)
	if err != nil {
		t.Fatal(err)
	}
	code, state, err := devidp.Authenticate(ctx, b, authURL, card)
	if err != nil {
		t.Fatal(err)
	}
	done, err := redirectOf(ctx, b, nd.ClientURL+sso.CallbackPath+"?code="+code+"&state="+state)
	if err != nil {
		t.Fatal(err)
	}
	_, q, _ := strings.Cut(done, "loginToken=")
	if q == "" {
		t.Fatalf("no loginToken in %s", done)
	}
	return q
}
