package registration

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/timstack/timstack/authn/devidp"
	"github.com/timstack/timstack/authn/idp"
)

// TestSignUpWithARealCardThroughTheDevIDP runs the SMC-B sign-in end to end: the development IDP-Dienst
// (gematik TEST-ONLY keys), the real relying party of authn/idp, the headless Authenticator signing with
// gematik's test SMC-B, then TOTP and a domain registration at the real directory.
func TestSignUpWithARealCardThroughTheDevIDP(t *testing.T) {
	keys, err := devidp.EmbeddedTestKeys()
	if err != nil {
		t.Fatal(err)
	}
	trust, err := devidp.EmbeddedTestTrust()
	if err != nil {
		t.Fatal(err)
	}
	ocsp, err := devidp.NewTestOCSP(trust, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(nil)
	d, err := devidp.New(devidp.Config{Issuer: "http://" + srv.Listener.Addr().String(), Keys: keys, CardTrust: trust, Revocation: ocsp,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	srv.Config.Handler = d.Handler()
	srv.Start()
	t.Cleanup(srv.Close)

	e := newEnv(t, "pro")
	rp, err := idp.New(idp.Config{Issuer: d.Issuer(), ClientID: "timstack-regservice", RedirectURI: e.http.URL + "/registration/v1/callback",
		Trust: trust, HTTPClient: srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	e.svc.deps.IDP = rp
	ctx := context.Background()
	cards := filepath.Join("..", "..", "testdata", "gematik", "pki", "cards")

	signIn := func(cardDir string) response {
		card, err := devidp.LoadCard(filepath.Join(cards, cardDir))
		if err != nil {
			t.Fatal(err)
		}
		r := e.do("GET", "/registration/v1/login", "", "", "Accept", "application/json")
		if r.status != 200 {
			t.Fatalf("login: %d %s", r.status, r.body)
		}
		code, state, err := devidp.Authenticate(ctx, srv.Client(), r.json(t)["authURL"].(string), card)
		if err != nil {
			t.Fatalf("Authenticator: %v", err)
		}
		return e.do("GET", "/registration/v1/callback?code="+code+"&state="+state, "", "")
	}

	// An HBA (a person) cannot register an organisation.
	if r := signIn("80276883110000129083-2-C_HP_AUT_E256"); r.status != 403 {
		t.Fatalf("HBA sign-up: %d %s", r.status, r.body)
	}

	r := signIn("80276883110000129077-2-C_SMCB_HCI_AUT_E256")
	if r.status != 201 {
		t.Fatalf("SMC-B sign-up: %d %s", r.status, r.body)
	}
	m := r.json(t)
	tid := m["telematikID"].(string)
	secret, err := b32.DecodeString(m["totpEnrolment"].(map[string]any)["secret"].(string))
	if err != nil {
		t.Fatal(err)
	}
	tr := e.totp(m["pending"].(string), TOTPAt(secret, e.clock.Now()))
	if tr.status != 200 {
		t.Fatalf("totp: %d %s", tr.status, tr.body)
	}
	session := tr.json(t)["session"].(string)
	e.seedOrganization("card-org", tid, true)
	if r := e.do("POST", "/registration/v1/messenger-services", session, `{"domain":"praxis.tim.test"}`); r.status != 201 {
		t.Fatalf("register: %d %s", r.status, r.body)
	}
	if got := e.dir.Federation().Domains("", "praxis.tim.test"); len(got) != 1 || got[0].TelematikID != tid {
		t.Fatalf("directory: %+v", got)
	}
}
