package fhir

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/timstack/timstack/directory/index"
)

const vzdDir = "../../testdata/gematik/vzd"

func readFileErr(path string) ([]byte, error) { return os.ReadFile(path) }

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func mustParse(t *testing.T, data []byte) *Resource {
	t.Helper()
	r, err := Parse(data)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return r
}

// errorsOnly drops warnings and information.
func errorsOnly(issues []Issue) []Issue {
	var out []Issue
	for _, is := range issues {
		if is.Severity == SeverityError || is.Severity == SeverityFatal {
			out = append(out, is)
		}
	}
	return out
}

// missingRows returns the rows of want that are not in got.
func missingRows(got, want []index.Row) []index.Row {
	var missing []index.Row
	for _, w := range want {
		found := false
		for _, g := range got {
			if cmp.Equal(g, w) {
				found = true
				break
			}
		}
		if !found {
			missing = append(missing, w)
		}
	}
	return missing
}

func tok(param, system, code, display string) index.Row {
	return index.Row{Param: param, Type: index.TypeToken, System: system, Code: code, Display: display}
}

func str(param, value string) index.Row {
	return index.Row{Param: param, Type: index.TypeString, Value: value}
}

func ref(param, typ, id string) index.Row {
	return index.Row{Param: param, Type: index.TypeReference, RefType: typ, RefID: id}
}

var originLDAP = tok("_tag", SystemOrigin, "ldap", "")

// TestGematikExamples covers every example resource of the six types in gematik's package: each parses,
// passes write validation and yields the key index rows.
func TestGematikExamples(t *testing.T) {
	t.Parallel()
	want := map[string][]index.Row{
		"Practitioner-TIPractitionerExample001.json": {
			originLDAP,
			tok("identifier", SystemTelematikID, "1-1.58.00000040", ""),
			tok("identifier", SystemLANR, "123456789", ""),
			str("name", "dr. max manfred mustermann"), str("name", "musterman"), str("name", "manfred"),
			str("family", "musterman"), str("given", "max"),
			tok("qualification", "https://gematik.de/fhir/directory/CodeSystem/PractitionerProfessionOID", "1.2.276.0.76.4.31", ""),
		},
		"Practitioner-TIPractitionerExampleDentist.json": {
			tok("identifier", SystemTelematikID, "2-2.58.00000040", ""),
			tok("qualification", "https://gematik.de/fhir/directory/CodeSystem/PractitionerProfessionOID", "1.2.276.0.76.4.31", "zahnarztin/zahnarzt"),
		},
		"PractitionerRole-PractitionerRoleExample.json": {
			originLDAP,
			ref("practitioner", "Practitioner", "TIPractitionerExampleDentist"),
			ref("location", "Location", "LocationExample"),
			ref("endpoint", "Endpoint", "MessengerEndpointWithVisibility"),
		},
		"Organization-OrganizationExample.json": {
			tok("_tag", SystemResourceTag, "fdv-relevant", "relevant for epa fdv"),
			tok("identifier", SystemTelematikID, "2-2.58.00000040", ""),
			tok("active", "", "true", ""),
			str("name", "zahnarztpraxis dr. mustermann"), str("name", "zahnarztpraxis am bahnhof"),
			str("alias", "zahnarztpraxis am bahnhof"),
			tok("type", "https://gematik.de/fhir/directory/CodeSystem/OrganizationProfessionOID", "1.2.276.0.76.4.51", "zahnarztpraxis"),
			str("type-display", "zahnarztpraxis"),
		},
		"Organization-OrganizationExample001.json": {
			tok("organizationVisibility", "https://gematik.de/fhir/directory/CodeSystem/OrganizationVisibilityCS", "hide-versicherte", ""),
			str("address", "friedrichstr. 136"), str("address-city", "berlin"), str("address-postalcode", "10117"),
			str("address-state", "berlin"), str("address-country", "de"),
		},
		"Organization-PharmacyOrganizationExample.json": {
			tok("type", "https://gematik.de/fhir/directory/CodeSystem/OrganizationProfessionOID", "1.2.276.0.76.4.54", "offentliche apotheke"),
			str("type-display", "offentliche apotheke"),
			str("address-city", "frankfurt am main"),
		},
		"Organization-NCPeHOrganizationExample.json": {
			tok("ncpeh-country", "urn:iso:std:iso:3166", "PT", "portugal"),
		},
		"HealthcareService-HealthcareServiceExample.json": {
			tok("holder-id", SystemHolder, "dtrust", ""),
			tok("identifier", SystemTelematikID, "2-2.58.00000040", ""),
			ref("organization", "Organization", "OrganizationExample"),
			ref("location", "Location", "LocationExample"),
			ref("endpoint", "Endpoint", "MessengerEndpointWithVisibility"),
			tok("service-type", "urn:oid:1.3.6.1.4.1.19376.3.276.1.5.4", "MZKH", "zahnmedizin"),
			str("name", "zahnmedizin"),
		},
		"HealthcareService-PharmacyHealthCareServiceExample.json": {
			tok("characteristic", "https://gematik.de/fhir/directory/CodeSystem/physicalFeatures", "parkmoeglichkeit", "parkmoglichkeit"),
			tok("specialty", "https://gematik.de/fhir/directory/CodeSystem/HealthcareServiceSpecialtyCS", "allergietest", "allergietest"),
			str("coverageAreaPostalCode", "60596"), str("coverageAreaPostalCode", "60598"),
			tok("service-type", "https://gematik.de/fhir/directory/CodeSystem/PharmacyTypeCS", "offizin-apotheke", "offizin-apotheke"),
		},
		"HealthcareService-NCPeHHealthcareServiceExample.json": {
			tok("service-category", "https://gematik.de/fhir/directory/CodeSystem/OrganizationProfessionOID", "1.2.276.0.76.4.292", "ncpeh fachdienst"),
			tok("specialty", "http://loinc.org", "60591-5", "patientenubersicht"),
			ref("organization", "Organization", "NCPeHOrganizationExample"),
		},
		"Location-LocationExample.json": {
			str("name", "praxis am rathaus"), str("address", "hauptstrasse 1"), str("address", "hauptstrasse 1, 10117 berlin"),
			str("address-city", "berlin"), str("address-postalcode", "10117"),
			ref("organization", "Organization", "OrganizationExample001"),
		},
		"Location-PharmacyLocationExample.json": {
			{Param: "near", Type: index.TypeGeo, Lat: 50.097, Lon: 8.6648},
			str("address-city", "frankfurt am main"), str("address-state", "hessen"),
		},
		"Endpoint-MessengerEndpointWithVisibility.json": {
			tok("_tag", SystemOrigin, "owner", ""),
			tok("status", "", "active", ""),
			tok("connection-type", SystemConnectionType, "tim", "ti-messenger endpoint"),
			tok("payload-type", SystemPayloadType, "tim-chat", "ti-messenger chat"),
			str("name", "messenger"),
			str("address", "matrix:u/74c1fecc710ce4c8a8bbe310fbc5954c2a5e1e9ef5f70d651da1bfc4c9abe43f:example-domain.de"),
			tok("endpointVisibility", "https://gematik.de/fhir/directory/CodeSystem/EndpointVisibilityCS", "hide-versicherte", ""),
		},
		"Endpoint-OrganizationExample001-Endpoint-TIM.json": {
			tok("connection-type", SystemConnectionType, "tim", ""),
			tok("payload-type", SystemPayloadType, "tim-chat", ""),
			str("address", "matrix:u/systemsengineering:tim.gematik.de"),
		},
		"Endpoint-PharmacyEndpointTIMExample.json": {
			tok("connection-type", SystemConnectionType, "tim", "ti-messenger endpoint"),
		},
		"Endpoint-KIMEndpointExample.json": {
			tok("connection-type", SystemConnectionType, "kim", "kim endpoint"),
			tok("payload-type", "https://gematik.de/fhir/directory/CodeSystem/EndpointDirectoryKIMappTags", "Arztbrief", "earztbrief"),
			str("address", "dr.mustermann@praxis-mustermann.kim.telematik"),
			tok("owner-telematik-id", SystemTelematikID, "1-1.58.00000040", ""),
		},
		"Endpoint-PharmacyEndpointErpReservationExample.json": {
			tok("connection-type", SystemConnectionType, "eRP-onPremise", "reservierung"),
			tok("payload-type", "http://terminology.hl7.org/CodeSystem/data-absent-reason", "not-applicable", ""),
			str("address", "https://be-305314293.adv-erezept.de/gematik/onpremise/ti_id/transactionid"),
		},
		"Endpoint-PharmacyEndpointOnlineAppointmentBookingExample.json": {
			tok("connection-type", SystemConnectionType, "terminbuchung-online", "online terminbuchung"),
			str("address", "https://rathausapotheke.de/terminbuchung"),
		},
	}

	files, err := filepath.Glob(filepath.Join(vzdDir, "fhir", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	seen := 0
	for _, f := range files {
		base := filepath.Base(f)
		typ, _, _ := strings.Cut(base, "-")
		if newView(typ) == nil {
			continue // conformance resources and the Bundle
		}
		seen++
		t.Run(base+" parses, validates and yields its key rows", func(t *testing.T) {
			t.Parallel()
			data := readFile(t, f)
			r := mustParse(t, data)
			if r.ResourceType != typ {
				t.Errorf("ResourceType = %q, want %q", r.ResourceType, typ)
			}
			if issues := errorsOnly(Validate(r, ValidateOptions{})); len(issues) != 0 {
				t.Errorf("Validate: %+v", issues)
			}
			rows := Extract(r)
			if len(rows) == 0 {
				t.Fatal("no rows")
			}
			rowsWant, ok := want[base]
			if !ok {
				t.Fatalf("no expected rows listed for %s", base)
			}
			if m := missingRows(rows, rowsWant); len(m) != 0 {
				t.Errorf("missing rows %+v\ngot %+v", m, rows)
			}
		})
	}
	if seen != len(want) {
		t.Errorf("found %d example resources, expected rows for %d", seen, len(want))
	}
}

// TestRecordedSamples parses every resource of gematik's recorded TU search responses. They predate the
// Origin tag, so write validation refuses them while legacy validation only warns; everything else passes.
func TestRecordedSamples(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob(filepath.Join(vzdDir, "samples", "Search_*.json"))
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, f := range files {
		var sample struct {
			Response struct {
				Entry []struct {
					Resource json.RawMessage `json:"resource"`
				} `json:"entry"`
			} `json:"response"`
		}
		if err := json.Unmarshal(readFile(t, f), &sample); err != nil {
			t.Fatal(err)
		}
		for i, e := range sample.Response.Entry {
			total++
			r := mustParse(t, e.Resource)
			name := filepath.Base(f) + " entry " + r.ResourceType + "/" + r.ID
			if issues := errorsOnly(Validate(r, ValidateOptions{Legacy: true})); len(issues) != 0 {
				t.Errorf("%s (#%d): legacy validation: %+v", name, i, issues)
			}
			strict := errorsOnly(Validate(r, ValidateOptions{}))
			if diff := cmp.Diff([]Issue{NewIssue(CodeRequired, r.ResourceType+".meta.tag", strict[0].Diagnostics)}, strict); diff != "" {
				t.Errorf("%s: write validation (-want +got):\n%s", name, diff)
			}
			if len(Extract(r)) == 0 {
				t.Errorf("%s: no rows", name)
			}
		}
	}
	if total < 90 {
		t.Errorf("only %d sample resources found", total)
	}
}

// TestSampleEndpointsNormalise: the TU endpoints carry legacy @localpart:server addresses; Normalize turns
// them into Matrix URIs in the stored bytes and the address row finds them under either form.
func TestSampleEndpointsNormalise(t *testing.T) {
	t.Parallel()
	var sample struct {
		Response struct {
			Entry []struct {
				Resource json.RawMessage `json:"resource"`
			} `json:"entry"`
		} `json:"response"`
	}
	if err := json.Unmarshal(readFile(t, filepath.Join(vzdDir, "samples", "Search_PractitionerRole_complex.json")), &sample); err != nil {
		t.Fatal(err)
	}
	var ep *Resource
	for _, e := range sample.Response.Entry {
		if r := mustParse(t, e.Resource); r.ResourceType == index.Endpoint {
			ep = r
		}
	}
	if ep == nil {
		t.Fatal("no endpoint in sample")
	}
	before := append([]byte(nil), ep.JSON...)
	changed, err := Normalize(ep)
	if err != nil || !changed {
		t.Fatalf("Normalize = %v, %v", changed, err)
	}
	wantJSON := strings.Replace(string(before), `"@1-1arvtst-tip041941:tim.test.gematik.de"`, `"matrix:u/1-1arvtst-tip041941:tim.test.gematik.de"`, 1)
	if diff := cmp.Diff(wantJSON, string(ep.JSON)); diff != "" {
		t.Errorf("normalised JSON (-want +got):\n%s", diff)
	}
	again := mustParse(t, ep.JSON)
	if m := missingRows(Extract(again), []index.Row{str("address", "matrix:u/1-1arvtst-tip041941:tim.test.gematik.de")}); len(m) != 0 {
		t.Errorf("missing %+v", m)
	}
	if got, want := NormalizeAddress("@1-1arvtst-tip041941:TIM.test.gematik.de"), "matrix:u/1-1arvtst-tip041941:tim.test.gematik.de"; got != want {
		t.Errorf("NormalizeAddress = %q, want %q", got, want)
	}
}

// TestEveryRegistryParameterHasExtractor keeps the registry (index.Params) and Extract in step.
func TestEveryRegistryParameterHasExtractor(t *testing.T) {
	t.Parallel()
	for _, typ := range index.ResourceTypes {
		for _, p := range index.Params(typ) {
			if noRows[p.Code] {
				continue
			}
			if !hasExtractor(typ, p.Code) {
				t.Errorf("%s:%s (%s) has no extractor", typ, p.Code, p.Source)
			}
		}
		if set, ok := extractors[typ].(interface{ has(string) bool }); !ok || set == nil {
			t.Errorf("%s has no extractor set", typ)
		}
	}
	// And no extractor for a parameter the registry does not know (it would produce rows nobody queries).
	for typ, set := range extractors {
		codes := map[string]bool{}
		for _, p := range index.Params(typ) {
			codes[p.Code] = true
		}
		var keys []string
		switch s := set.(type) {
		case typed[*HealthcareService]:
			keys = mapKeys(s)
		case typed[*PractitionerRole]:
			keys = mapKeys(s)
		case typed[*Practitioner]:
			keys = mapKeys(s)
		case typed[*Organization]:
			keys = mapKeys(s)
		case typed[*Location]:
			keys = mapKeys(s)
		case typed[*Endpoint]:
			keys = mapKeys(s)
		}
		for _, k := range keys {
			if !codes[k] {
				t.Errorf("%s: extractor for unregistered parameter %q", typ, k)
			}
		}
	}
}

func mapKeys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
