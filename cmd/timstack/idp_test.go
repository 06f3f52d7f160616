package main

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/timstack/timstack/certs"
)

// startDevIDP builds the server `idp serve` would run (on a free loopback port) and serves it for the test.
func startDevIDP(t *testing.T, o idpServeOptions) string {
	t.Helper()
	o.listen = "127.0.0.1:0"
	s, err := newDevIDPServer(o, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		if err := s.srv.Serve(s.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("serve: %v", err)
		}
	}()
	t.Cleanup(func() { s.srv.Close() })
	return s.issuer
}

func TestIDPLoginPrintsTheVerifiedIDToken(t *testing.T) {
	issuer := startDevIDP(t, idpServeOptions{})
	tests := []struct {
		name, card, idNummer, professionOID string
		organizationName                    any
	}{
		{"an HBA login prints the Arzt's Telematik-ID", "80276883110000129084-2-C_HP_AUT_E256", "1-HBA-Testkarte-883110000129084", "1.2.276.0.76.4.30", nil},
		{"an SMC-B login prints the institution with its name", "80276883110000129071-2-C_SMCB_HCI_AUT_E256", "5-SMC-B-Testkarte-883110000129071", "1.2.276.0.76.4.53", "Universitätsklinik MitteTEST-ONLY"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, stderr, code := runCLI(t, "idp", "login", "--issuer", issuer, "--card", gematik("pki", "cards", tc.card), "--client-id", "regservice")
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			var got struct {
				IDToken string         `json:"id_token"`
				Claims  map[string]any `json:"claims"`
			}
			if err := json.Unmarshal([]byte(out), &got); err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			j, err := certs.ParseCompactJWS([]byte(got.IDToken))
			if err != nil || j.Header.Alg != certs.AlgBP256R1 || j.Header.Kid != "puk_idp_sig" {
				t.Fatalf("id_token: %v %+v", err, j)
			}
			if got.Claims["idNummer"] != tc.idNummer || got.Claims["professionOID"] != tc.professionOID ||
				got.Claims["organizationName"] != tc.organizationName || got.Claims["aud"] != "regservice" || got.Claims["iss"] != issuer {
				t.Errorf("claims %v", got.Claims)
			}
		})
	}
}

func TestIDPLoginFailsWithTheIDPsReason(t *testing.T) {
	revoked := gematik("pki", "cards", "80276883110000129080-2-C_SMCB_HCI_AUT_E256")
	issuer := startDevIDP(t, idpServeOptions{revoke: []string{revoked + "/cert.pem"}})
	tests := []struct{ name, card, reason string }{
		{"an expired card is refused as expired", gematik("pki", "cards-invalid", "smcb-idp-expired-ecc"), "certificate expired"},
		{"a card of an unknown CA is refused for its issuer", gematik("pki", "cards-invalid", "hba-idp-unknown-issuer-2-ecc"), "issuer not in trust store"},
		{"a card revoked at the built-in OCSP responder is refused as revoked", revoked, "certificate revoked"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, stderr, code := runCLI(t, "idp", "login", "--issuer", issuer, "--card", tc.card)
			if code != 1 || out != "" || !strings.Contains(stderr, "IDP refused the card") || !strings.Contains(stderr, tc.reason) {
				t.Fatalf("exit %d, stdout %q, stderr %q; want exit 1 naming %q", code, out, stderr, tc.reason)
			}
		})
	}
}

func TestIDPServeRefusesNonLoopbackAndBadUsage(t *testing.T) {
	tests := []struct {
		name   string
		args   []string
		code   int
		reason string
	}{
		{"a public listen address is refused", []string{"idp", "serve", "--listen", "0.0.0.0:8580"}, 2, "loopback"},
		{"a public issuer is refused", []string{"idp", "serve", "--listen", "127.0.0.1:0", "--issuer", "https://idp.example.org"}, 1, "loopback"},
		{"login without a card is a usage error", []string{"idp", "login", "--issuer", "http://127.0.0.1:1"}, 2, "usage"},
		{"an unknown subcommand is a usage error", []string{"idp", "token"}, 2, "unknown subcommand"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, stderr, code := runCLI(t, tc.args...)
			if code != tc.code || !strings.Contains(stderr, tc.reason) {
				t.Fatalf("exit %d, stderr %q; want %d naming %q", code, stderr, tc.code, tc.reason)
			}
		})
	}
}
