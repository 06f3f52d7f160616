package fhir

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite golden files")

// golden compares got (which must be valid JSON) with testdata/golden/name, indented for reviewable diffs.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	if !json.Valid(got) {
		t.Fatalf("%s: output is not valid JSON:\n%s", name, got)
	}
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, got, "", "  "); err != nil {
		t.Fatal(err)
	}
	pretty.WriteByte('\n')
	path := filepath.Join("testdata", "golden", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, pretty.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create)", err)
	}
	if diff := cmp.Diff(string(want), pretty.String()); diff != "" {
		t.Errorf("%s (-want +got):\n%s", name, diff)
	}
}

func TestBundleGolden(t *testing.T) {
	t.Parallel()
	role := readFile(t, filepath.Join(vzdDir, "fhir", "PractitionerRole-PractitionerRoleExample.json"))
	ep := readFile(t, filepath.Join(vzdDir, "fhir", "Endpoint-MessengerEndpointWithVisibility.json"))
	cases := []struct {
		name string
		b    SearchSet
	}{
		{"bundle-searchset.json", SearchSet{
			ID: "b1", LastUpdated: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC), Total: 42,
			SelfURL: "https://vzd.example/search/PractitionerRole?_count=1", NextURL: "https://vzd.example/search/PractitionerRole?_count=1&_page=p2",
			Entries: []Entry{
				{FullURL: "https://vzd.example/search/PractitionerRole/PractitionerRoleExample", Resource: role, Mode: ModeMatch},
				{FullURL: "https://vzd.example/search/Endpoint/MessengerEndpointWithVisibility", Resource: ep, Mode: ModeInclude},
			},
		}},
		{"bundle-filtered.json", SearchSet{Total: 3, Filtered: &Filtered{Count: 15, Reason: "Reason: hideVersicherte"}}},
		{"bundle-count.json", SearchSet{Total: 297019, Subsetted: true}},
		{"bundle-no-total.json", SearchSet{Total: -1}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			golden(t, tc.name, tc.b.JSON())
		})
	}
}

// TestFilteredTotalMatchesGematik pins the results-filtered-ex shape to gematik's example Bundle.
func TestFilteredTotalMatchesGematik(t *testing.T) {
	t.Parallel()
	var ex, got struct {
		Total  int             `json:"total"`
		XTotal json.RawMessage `json:"_total"`
	}
	if err := json.Unmarshal(readFile(t, filepath.Join(vzdDir, "fhir", "Bundle-FilteredSearchSetBundle.json")), &ex); err != nil {
		t.Fatal(err)
	}
	out := SearchSet{Total: 3, Filtered: &Filtered{Count: 15, Reason: "Reason: hideVersicherte"}}.JSON()
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	var a, b any
	_ = json.Unmarshal(ex.XTotal, &a)
	_ = json.Unmarshal(got.XTotal, &b)
	if diff := cmp.Diff(a, b); diff != "" || ex.Total != got.Total {
		t.Errorf("_total differs from gematik's example (-want +got):\n%s", diff)
	}
}

func TestOperationOutcomeGolden(t *testing.T) {
	t.Parallel()
	r := mustParse(t, mutate(t, timEndpoint, map[string]any{"meta": nil, "address": "matrix:u/7a9ga9:"}))
	golden(t, "operationoutcome-endpoint.json", OperationOutcome(Validate(r, ValidateOptions{})))
	golden(t, "operationoutcome-empty.json", OperationOutcome(nil))
	_, err := Parse([]byte(`{"resourceType":"Endpoint","name":"a","name":"b"}`))
	pe, _ := err.(*ParseError)
	if pe == nil {
		t.Fatal("no ParseError")
	}
	golden(t, "operationoutcome-parse.json", OperationOutcome([]Issue{pe.Issue}))
}

func TestCapabilityStatementGolden(t *testing.T) {
	t.Parallel()
	cs := CapabilityStatement(CapabilityOptions{
		SoftwareName: "timstack", SoftwareVersion: "test", BaseURL: "https://vzd.example/search",
		Date: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC),
		Includes: map[string][]string{
			"PractitionerRole":  {"*", "PractitionerRole:practitioner", "PractitionerRole:location", "PractitionerRole:endpoint"},
			"HealthcareService": {"*", "HealthcareService:organization", "HealthcareService:location", "HealthcareService:endpoint"},
		},
		RevIncludes: map[string][]string{"Endpoint": {"HealthcareService:endpoint"}},
	})
	golden(t, "capabilitystatement.json", cs)
}
