package fhir

import (
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/timstack/timstack/directory/index"
)

func TestNormalizeString(t *testing.T) {
	t.Parallel()
	cases := []struct{ in, want string }{
		{"Müller", "muller"},
		{"Straße", "strasse"},
		{"  Dr.  Hans ", "dr. hans"},
		{"ÄÖÜ äöü", "aou aou"},
		{"GROSSE STRASSE", "grosse strasse"},
		{"José Éclair", "jose eclair"},
		{"Łódź", "lodz"},
		{"Ærø", "aero"},
		{"Cafe\u0301", "cafe"}, // decomposed é
		{"a\tb\nc\u00a0d", "a b c d"},
		{"ẞ", "ss"},
		{"", ""},
		{"   ", ""},
		{"日本", "日本"},
	}
	for _, tc := range cases {
		if got := NormalizeString(tc.in); got != tc.want {
			t.Errorf("NormalizeString(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestSplitWords(t *testing.T) {
	t.Parallel()
	cases := []struct {
		in   string
		want []string
	}{
		{"Praxis Dr. Müller-Lüdenscheidt", []string{"praxis", "dr", "muller", "ludenscheidt"}},
		{"Schubertstr. 39, 45884 Gelsenkirchen", []string{"schubertstr", "39", "45884", "gelsenkirchen"}},
		{"Zahnärztin/Zahnarzt", []string{"zahnarztin", "zahnarzt"}},
		{"1-2arvtst-ap000052", []string{"1", "2arvtst", "ap000052"}},
		{" - , / . ", nil},
	}
	for _, tc := range cases {
		if diff := cmp.Diff(tc.want, SplitWords(tc.in)); diff != "" {
			t.Errorf("SplitWords(%q) (-want +got):\n%s", tc.in, diff)
		}
	}
}

func example(t *testing.T, name string) *Resource {
	t.Helper()
	return mustParse(t, readFile(t, filepath.Join(vzdDir, "fhir", name)))
}

func TestTextWordsOfAServiceWithOrganizationAndLocation(t *testing.T) {
	t.Parallel()
	hs := example(t, "HealthcareService-HealthcareServiceExample.json")
	org := example(t, "Organization-OrganizationExample.json")
	loc := example(t, "Location-LocationExample.json")
	unrelated := example(t, "Organization-PharmacyOrganizationExample.json")

	if diff := cmp.Diff([]index.Ref{{Type: "Organization", ID: "OrganizationExample"}, {Type: "Location", ID: "LocationExample"}}, Linked(hs)); diff != "" {
		t.Errorf("Linked (-want +got):\n%s", diff)
	}
	got := TextWords(hs, []*Resource{loc, org, unrelated})
	want := []string{
		// the service: name, type displays, TelematikID (split and whole)
		"zahnmedizin", "oralchirurgie", "2", "2.58.00000040", "2-2.58.00000040",
		// its Organization: name, alias, type display and code (TelematikID words already present)
		"zahnarztpraxis", "dr", "mustermann", "am", "bahnhof", "1.2.276.0.76.4.51",
		// its Location: line, city, postal code
		"hauptstrasse", "1", "berlin", "10117",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("TextWords (-want +got):\n%s", diff)
	}
	rows := TextRows(hs, []*Resource{org, loc})
	if len(rows) != len(want) || rows[0] != (index.Row{Param: "_text", Type: index.TypeText, Value: "zahnmedizin"}) {
		t.Errorf("TextRows = %+v", rows)
	}
	if got := TextWords(hs, nil); !cmp.Equal(got, []string{"zahnmedizin", "oralchirurgie", "2", "2.58.00000040", "2-2.58.00000040"}) {
		t.Errorf("TextWords without linked resources = %q", got)
	}
}

func TestTextWordsOfAPractitionerRole(t *testing.T) {
	t.Parallel()
	role := example(t, "PractitionerRole-PractitionerRoleExample.json")
	pract := example(t, "Practitioner-TIPractitionerExampleDentist.json")
	loc := example(t, "Location-LocationExample.json")
	got := TextWords(role, []*Resource{pract, loc})
	want := []string{
		"dr", "max", "manfred", "mustermann", "musterman", "zahnarztin", "zahnarzt", "2", "2.58.00000040", "2-2.58.00000040",
		"hauptstrasse", "1", "berlin", "10117",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("TextWords (-want +got):\n%s", diff)
	}
	if got := TextWords(loc, []*Resource{pract}); got != nil {
		t.Errorf("a Location has no _text document, got %q", got)
	}
}
