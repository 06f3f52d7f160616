package devidp_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/timstack/timstack/authn/devidp"
	"github.com/timstack/timstack/authn/idp"
	"github.com/timstack/timstack/certs"
)

// rpEnv serves a dev IDP and a relying party of package authn/idp configured against it, both on the
// real clock (the embedded keys and the test cards are valid today).
func rpEnv(t *testing.T) (*httptest.Server, *idp.RelyingParty, *devidp.TestOCSP) {
	t.Helper()
	keys, err := devidp.EmbeddedTestKeys()
	if err != nil {
		t.Fatal(err)
	}
	cardTrust, err := devidp.EmbeddedTestTrust()
	if err != nil {
		t.Fatal(err)
	}
	ocsp, err := devidp.NewTestOCSP(cardTrust, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(nil)
	d, err := devidp.New(devidp.Config{Issuer: "http://" + srv.Listener.Addr().String(), Keys: keys, CardTrust: cardTrust,
		Revocation: ocsp, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	srv.Config.Handler = d.Handler()
	srv.Start()
	t.Cleanup(srv.Close)
	rpTrust, err := devidp.EmbeddedTestTrust()
	if err != nil {
		t.Fatal(err)
	}
	rp, err := idp.New(idp.Config{Issuer: d.Issuer(), ClientID: "timstack-regservice", RedirectURI: "http://127.0.0.1:9/cb",
		Trust: rpTrust, HTTPClient: srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	return srv, rp, ocsp
}

func card(t *testing.T, name string) *devidp.Card {
	t.Helper()
	c, err := devidp.LoadCard(filepath.Join("..", "..", "testdata", "gematik", "pki", "cards", name))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestRelyingPartyLogsInThroughTheDevIDP runs authn/idp's Begin and Complete around Authenticate: the
// production RP path (discovery chain, keys, key_verifier, token decryption, claims) against the dev IDP.
func TestRelyingPartyLogsInThroughTheDevIDP(t *testing.T) {
	tests := []struct {
		name, card, cardType, idNummer, org string
		kind                                certs.ProfessionKind
	}{
		{"an HBA logs in as a person", "80276883110000129084-2-C_HP_AUT_E256", idp.CardTypeHBA, "1-HBA-Testkarte-883110000129084", "", certs.KindPerson},
		{"an SMC-B logs in as an institution", "80276883110000129077-2-C_SMCB_HCI_AUT_E256", idp.CardTypeSMCB, "1-SMC-B-Testkarte-883110000129077", "Praxis Rainer Graf d' AgóstinoTEST-ONLY", certs.KindInstitution},
	}
	srv, rp, _ := rpEnv(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			authURL, state, err := rp.Begin(ctx, idp.BeginOptions{CardType: tc.cardType})
			if err != nil {
				t.Fatal(err)
			}
			code, gotState, err := devidp.Authenticate(ctx, srv.Client(), authURL, card(t, tc.card))
			if err != nil {
				t.Fatal(err)
			}
			if gotState != state {
				t.Fatalf("state %q, want %q", gotState, state)
			}
			id, err := rp.Complete(ctx, state, code)
			if err != nil {
				t.Fatalf("Complete: %v", err)
			}
			if id.TelematikID != tc.idNummer || id.Kind != tc.kind || id.OrganizationName != tc.org || id.ACR != devidp.ACR {
				t.Errorf("identity %+v", id)
			}
			if _, err := rp.Complete(ctx, state, code); err == nil {
				t.Error("a second Complete with the same state succeeded")
			}
		})
	}
}

// TestHeadlessLoginVerifiesAtTheRelyingParty is the path of `timstack idp login`: Login gets the tokens,
// the RP verifies the inner ID token, and refuses it the second time (jti replay).
func TestHeadlessLoginVerifiesAtTheRelyingParty(t *testing.T) {
	srv, rp, _ := rpEnv(t)
	ctx := context.Background()
	res, err := devidp.Login(ctx, devidp.LoginOptions{Issuer: srv.URL, ClientID: "timstack-regservice", RedirectURI: "http://127.0.0.1:9/cb",
		HTTPClient: srv.Client()}, card(t, "80276883110000129068-2-C_SMCB_HCI_AUT_E256"))
	if err != nil {
		t.Fatal(err)
	}
	id, err := rp.VerifyIDToken(ctx, res.IDToken, res.Nonce)
	if err != nil {
		t.Fatalf("VerifyIDToken: %v", err)
	}
	if id.TelematikID != "3-SMC-B-Testkarte-883110000129068" || id.ProfessionOID != "1.2.276.0.76.4.54" {
		t.Errorf("identity %+v", id)
	}
	if !id.ExpiresAt.Equal(id.IssuedAt.Add(300 * time.Second)) {
		t.Errorf("lifetime %v", id.ExpiresAt.Sub(id.IssuedAt))
	}
	if _, err := rp.VerifyIDToken(ctx, res.IDToken, res.Nonce); !errors.Is(err, idp.ErrReplay) {
		t.Errorf("second VerifyIDToken = %v, want ErrReplay", err)
	}
	if _, err := rp.VerifyIDToken(ctx, res.AccessToken, ""); err == nil {
		t.Error("the access token passed as an ID token")
	}
}

func TestHeadlessLoginOfARevokedCardFailsWithTheReason(t *testing.T) {
	srv, _, ocsp := rpEnv(t)
	c := card(t, "80276883110000129083-2-C_HP_AUT_E256")
	ocsp.Revoke(c.Cert)
	_, err := devidp.Login(context.Background(), devidp.LoginOptions{Issuer: srv.URL, ClientID: "c", RedirectURI: "http://127.0.0.1:9/cb",
		HTTPClient: srv.Client()}, c)
	var re *devidp.RefusalError
	if !errors.As(err, &re) || re.Code != "access_denied" {
		t.Fatalf("Login = %v, want access_denied", err)
	}
}
