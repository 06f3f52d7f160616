package dirfacts

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/timstack/timstack/directory"
	"github.com/timstack/timstack/policy"
)

// The shipped operator example, fed with facts from a real directory the way the proxy resolves them:
// remote domain → Telematik-ID from the federation list → organisation types from the directory.
func TestOperatorExampleWithDirectoryFacts(t *testing.T) {
	d := newTestDirectory(t)
	r, _ := newResolver(t, d.http.URL, d.token(directory.TokenSearch), newClock(), nil)

	opDir := t.TempDir()
	src, err := os.ReadFile(filepath.Join("..", "..", "policy", "examples", "operator", "organization_type.rego"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(opDir, "organization_type.rego"), src, 0o600); err != nil {
		t.Fatal(err)
	}
	const us = "hs1.tim.test"
	fed := policy.Federation{Version: 7, Status: policy.StatusFresh, Domains: map[string]policy.Domain{
		us:                  {TelematikID: "1-e2e-hs1"},
		"praxis.tim.test":   {TelematikID: practiceTID},
		"apotheke.tim.test": {TelematikID: pharmacyTID},
		"gematik.tim.test":  {TelematikID: gematikTID},
		"neu.tim.test":      {TelematikID: unknownTID},
	}}

	cases := []struct {
		name     string
		peer     string
		settings map[string]any
		want     []policy.Reason
	}{
		{name: "a practice is an allowed organisation type", peer: "praxis.tim.test"},
		{name: "a pharmacy is an allowed organisation type", peer: "apotheke.tim.test"},
		{name: "a gematik site with a TI-M provider type is not an allowed type", peer: "gematik.tim.test",
			want: []policy.Reason{policy.ReasonOrganizationTypeNotAllowed}},
		{name: "a domain whose organisation is not in the directory is not judged by type", peer: "neu.tim.test"},
		{name: "operator_settings can admit the gematik site", peer: "gematik.tim.test",
			settings: map[string]any{"allowed_organization_types": []any{codeGematik}}},
		{name: "operator_settings replace the default list", peer: "praxis.tim.test",
			settings: map[string]any{"allowed_organization_types": []any{codeGematik}},
			want:     []policy.Reason{policy.ReasonOrganizationTypeNotAllowed}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := policy.Config{Variant: "pro", ServerName: us, OperatorDir: opDir, OperatorSettings: tc.settings}
			cfg.Defaults()
			e, err := policy.New(cfg, slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			if loaded, err := e.OperatorStatus(); err != nil || len(loaded) != 1 {
				t.Fatalf("operator modules: %v, %v", loaded, err)
			}
			e.SetFederation(fed)

			types, err := r.OrganizationTypes(context.Background(), fed.Domains[tc.peer].TelematikID)
			if err != nil {
				t.Fatal(err)
			}
			peer := &policy.Peer{Domain: tc.peer, OrganizationTypes: types}
			for _, in := range []*policy.Input{
				{Action: policy.ActionFederationInbound, Origin: tc.peer, Destination: us, Peer: peer},
				{Action: policy.ActionFederationOutbound, Origin: us, Destination: tc.peer, Peer: peer},
			} {
				dec, err := e.Eval(context.Background(), in)
				if err != nil {
					t.Fatal(err)
				}
				if dec.Allow != (len(tc.want) == 0) || !slices.Equal(dec.Reasons, tc.want) {
					t.Errorf("%s with types %q: allow=%v reasons=%q, want reasons %q", in.Action, types, dec.Allow, dec.Reasons, tc.want)
				}
			}
		})
	}
}
