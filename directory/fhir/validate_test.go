package fhir

import (
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// mutate returns a gematik example with one top-level element replaced (value nil deletes it).
func mutate(t *testing.T, file string, set map[string]any) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(readFile(t, filepath.Join(vzdDir, "fhir", file)), &m); err != nil {
		t.Fatal(err)
	}
	for k, v := range set {
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
	}
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

const (
	timEndpoint  = "Endpoint-OrganizationExample001-Endpoint-TIM.json"
	practitioner = "Practitioner-TIPractitionerExample001.json"
)

func TestValidateRefuses(t *testing.T) {
	t.Parallel()
	coding := func(system, code string) map[string]any { return map[string]any{"system": system, "code": code} }
	cases := []struct {
		name string
		data []byte
		code IssueCode
		expr string
	}{
		{"a resource without Origin tag is refused", mutate(t, timEndpoint, map[string]any{"meta": map[string]any{}}), CodeRequired, "Endpoint.meta.tag"},
		{"an Origin tag with an unknown code is refused",
			mutate(t, timEndpoint, map[string]any{"meta": map[string]any{"tag": []any{coding(SystemOrigin, "guess")}}}), CodeCodeInvalid, "Endpoint.meta.tag[0].code"},
		{"a TIM endpoint without tim-chat payload type is refused", mutate(t, timEndpoint, map[string]any{"payloadType": nil}), CodeRequired, "Endpoint.payloadType"},
		{"a TIM endpoint with a KIM payload type only is refused",
			mutate(t, timEndpoint, map[string]any{"payloadType": []any{map[string]any{"coding": []any{coding("https://gematik.de/fhir/directory/CodeSystem/EndpointDirectoryKIMappTags", "Arztbrief")}}}}),
			CodeRequired, "Endpoint.payloadType"},
		{"a TIM endpoint with an empty server name is refused", mutate(t, timEndpoint, map[string]any{"address": "matrix:u/7a9ga9:"}), CodeValue, "Endpoint.address"},
		{"a TIM endpoint with an e-mail address is refused", mutate(t, timEndpoint, map[string]any{"address": "alice@example.de"}), CodeValue, "Endpoint.address"},
		{"a tim-bot endpoint with an empty localpart is refused",
			mutate(t, timEndpoint, map[string]any{"address": "matrix:u/:tim.example.de", "connectionType": coding(SystemConnectionType, "tim-bot")}), CodeValue, "Endpoint.address"},
		{"an unknown gematik connection type is refused",
			mutate(t, timEndpoint, map[string]any{"connectionType": coding(SystemConnectionType, "fax")}), CodeCodeInvalid, "Endpoint.connectionType.code"},
		{"a connection type from a foreign code system is refused",
			mutate(t, timEndpoint, map[string]any{"connectionType": coding("http://example.org/cs", "tim")}), CodeCodeInvalid, "Endpoint.connectionType.system"},
		{"an endpoint without connection type is refused", mutate(t, timEndpoint, map[string]any{"connectionType": nil}), CodeRequired, "Endpoint.connectionType"},
		{"an endpoint without name is refused", mutate(t, timEndpoint, map[string]any{"name": nil}), CodeRequired, "Endpoint.name"},
		{"an endpoint without address is refused", mutate(t, timEndpoint, map[string]any{"address": nil}), CodeRequired, "Endpoint.address"},
		{"an endpoint without status is refused", mutate(t, timEndpoint, map[string]any{"status": nil}), CodeRequired, "Endpoint.status"},
		{"an endpoint status outside the value set is refused", mutate(t, timEndpoint, map[string]any{"status": "on"}), CodeCodeInvalid, "Endpoint.status"},
		{"an address of the wrong JSON type names the element", mutate(t, timEndpoint, map[string]any{"address": 42}), CodeStructure, "Endpoint.address"},
		{"a nested element of the wrong JSON type names its path",
			mutate(t, timEndpoint, map[string]any{"payloadType": []any{map[string]any{"coding": []any{map[string]any{"code": true}}}}}), CodeStructure, "Endpoint.payloadType.coding.code"},
		{"an id of the wrong JSON type names the element", mutate(t, timEndpoint, map[string]any{"id": 7}), CodeStructure, "Endpoint.id"},
		{"an id with forbidden characters is refused", mutate(t, timEndpoint, map[string]any{"id": "a/b"}), CodeValue, "Endpoint.id"},
		{"a Practitioner without TelematikID is refused",
			mutate(t, practitioner, map[string]any{"identifier": []any{map[string]any{"system": SystemLANR, "value": "123456789"}}}), CodeRequired, "Practitioner.identifier"},
		{"a TelematikID identifier without value is refused",
			mutate(t, practitioner, map[string]any{"identifier": []any{map[string]any{"system": SystemTelematikID, "value": " "}}}), CodeRequired, "Practitioner.identifier[0].value"},
		{"an Organization without TelematikID is refused", mutate(t, "Organization-OrganizationExample.json", map[string]any{"identifier": nil}), CodeRequired, "Organization.identifier"},
		{"a PractitionerRole without practitioner is refused", mutate(t, "PractitionerRole-PractitionerRoleExample.json", map[string]any{"practitioner": nil}), CodeRequired, "PractitionerRole.practitioner"},
		{"a PractitionerRole pointing at an Organization as practitioner is refused",
			mutate(t, "PractitionerRole-PractitionerRoleExample.json", map[string]any{"practitioner": map[string]any{"reference": "Organization/x"}}), CodeValue, "PractitionerRole.practitioner.reference"},
		{"a HealthcareService without providedBy is refused", mutate(t, "HealthcareService-HealthcareServiceExample.json", map[string]any{"providedBy": nil}), CodeRequired, "HealthcareService.providedBy"},
		{"a Location without address is refused", mutate(t, "Location-LocationExample.json", map[string]any{"address": nil}), CodeRequired, "Location.address"},
		{"a Location with latitude out of range is refused",
			mutate(t, "Location-PharmacyLocationExample.json", map[string]any{"position": map[string]any{"latitude": 91, "longitude": 8}}), CodeValue, "Location.position.latitude"},
		{"an unknown resource type is not supported", []byte(`{"resourceType":"Patient","id":"p"}`), CodeNotSupported, "resourceType"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := mustParse(t, tc.data)
			issues := errorsOnly(Validate(r, ValidateOptions{}))
			for _, is := range issues {
				if is.Code == tc.code && is.Expression == tc.expr {
					if is.Diagnostics == "" || strings.Contains(is.Diagnostics, "json:") {
						t.Errorf("diagnostics %q must be set and carry no Go error text", is.Diagnostics)
					}
					return
				}
			}
			t.Errorf("want issue %s at %s, got %+v", tc.code, tc.expr, issues)
		})
	}
}

func TestValidateAccepts(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		data []byte
	}{
		{"a TIM endpoint with a legacy @localpart:server address is accepted", mutate(t, timEndpoint, map[string]any{"address": "@alice:tim.example.de"})},
		{"a tim-fa endpoint is accepted", mutate(t, timEndpoint, map[string]any{"connectionType": map[string]any{"system": SystemConnectionType, "code": "tim-fa"}})},
		{"a develop-branch kim-2.0 endpoint is accepted",
			mutate(t, "Endpoint-KIMEndpointExample.json", map[string]any{"connectionType": map[string]any{"system": SystemConnectionType, "code": "kim-2.0"}})},
		{"an HL7 connection type is accepted",
			mutate(t, "Endpoint-PharmacyEndpointOnlineAppointmentBookingExample.json", map[string]any{"connectionType": map[string]any{"system": SystemHL7ConnType, "code": "hl7-fhir-rest"}})},
		{"a TIM endpoint on an IPv6 server with port is accepted", mutate(t, timEndpoint, map[string]any{"address": "matrix:u/bob:[2001:db8::1]:8448"})},
		{"a HealthcareService with an absolute providedBy URL is accepted",
			mutate(t, "HealthcareService-HealthcareServiceExample.json", map[string]any{"providedBy": map[string]any{"reference": "https://vzd.example/search/Organization/OrganizationExample"}})},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if issues := errorsOnly(Validate(mustParse(t, tc.data), ValidateOptions{})); len(issues) != 0 {
				t.Errorf("unexpected issues %+v", issues)
			}
		})
	}
}

func TestLegacyValidationOnlyWarnsAboutOrigin(t *testing.T) {
	t.Parallel()
	r := mustParse(t, mutate(t, timEndpoint, map[string]any{"meta": nil}))
	got := Validate(r, ValidateOptions{Legacy: true})
	want := []Issue{{Severity: SeverityWarning, Code: CodeRequired, Expression: "Endpoint.meta.tag", Diagnostics: got[0].Diagnostics}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if HasErrors(got) {
		t.Error("HasErrors = true for a warning")
	}
}

func TestParseRefuses(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		data string
		expr string
	}{
		{"an array is not a resource", `[{"resourceType":"Endpoint"}]`, ""},
		{"a string is not a resource", `"Endpoint"`, ""},
		{"empty input is refused", ``, ""},
		{"broken JSON is refused", `{"resourceType":"Endpoint",`, ""},
		{"trailing data after the object is refused", `{"resourceType":"Endpoint"} {}`, ""},
		{"invalid UTF-8 is refused", "{\"resourceType\":\"Endpoint\",\"name\":\"\xff\"}", ""},
		{"duplicate top-level members are refused", `{"resourceType":"Endpoint","address":"matrix:u/a:b.de","address":"matrix:u/evil:c.de"}`, "Endpoint.address"},
		{"duplicate nested members are refused", `{"resourceType":"Endpoint","meta":{"tag":[{"code":"ldap","code":"owner"}]}}`, "Endpoint.meta.tag[0].code"},
		{"a case variant of a known element is refused", `{"resourceType":"Endpoint","Address":"matrix:u/evil:c.de"}`, "Endpoint.Address"},
		{"members differing only in case are refused", `{"resourceType":"Endpoint","foo":1,"FOO":2}`, "Endpoint.FOO"},
		{"a missing resourceType is refused", `{"id":"x"}`, "resourceType"},
		{"a numeric resourceType is refused", `{"resourceType":5}`, "resourceType"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r, err := Parse([]byte(tc.data))
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("Parse = %v, %v; want *ParseError", r, err)
			}
			if pe.Issue.Expression != tc.expr {
				t.Errorf("expression = %q, want %q", pe.Issue.Expression, tc.expr)
			}
			if strings.Contains(pe.Issue.Diagnostics, "json:") || strings.Contains(pe.Issue.Diagnostics, "invalid character") {
				t.Errorf("diagnostics leak a Go error: %q", pe.Issue.Diagnostics)
			}
		})
	}
}

// TestUnknownElementsSurvive: the stored bytes are the received bytes, so elements the views do not know
// (other profiles' extensions, primitive extensions, narrative, contained resources) are served unchanged,
// also after Normalize rewrote the address.
func TestUnknownElementsSurvive(t *testing.T) {
	t.Parallel()
	in := `{
  "resourceType": "Endpoint",
  "id": "e1",
  "meta": {"tag": [{"system": "https://gematik.de/fhir/directory/CodeSystem/Origin", "code": "owner"}], "x-vendor": {"keep": [1, 2.50, true]}},
  "text": {"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">Hallo Wörld &amp; co</div>"},
  "contained": [{"resourceType": "Organization", "id": "o"}],
  "futureElement": {"nested": ["a", null, {"deep": "ü"}]},
  "status": "active",
  "connectionType": {"system": "https://gematik.de/fhir/directory/CodeSystem/EndpointDirectoryConnectionType", "code": "tim"},
  "name": "Alice",
  "payloadType": [{"coding": [{"system": "https://gematik.de/fhir/directory/CodeSystem/EndpointDirectoryPayloadType", "code": "tim-chat"}]}],
  "address": "@Alice:TIM.Example.de",
  "_address": {"extension": [{"url": "http://example.org/note", "valueString": "legacy"}]}
}
`
	r := mustParse(t, []byte(in))
	if string(r.JSON) != in {
		t.Fatal("Parse changed the bytes")
	}
	if issues := errorsOnly(Validate(r, ValidateOptions{})); len(issues) != 0 {
		t.Fatalf("Validate: %+v", issues)
	}
	bundle := SearchSet{Total: 1, Entries: []Entry{{FullURL: "https://x/Endpoint/e1", Resource: r.JSON}}}.JSON()
	if !strings.Contains(string(bundle), strings.TrimSpace(in)) {
		t.Error("Bundle does not carry the stored bytes verbatim")
	}
	changed, err := Normalize(r)
	if err != nil || !changed {
		t.Fatalf("Normalize = %v, %v", changed, err)
	}
	want := strings.Replace(in, `"@Alice:TIM.Example.de"`, `"matrix:u/Alice:tim.example.de"`, 1)
	if diff := cmp.Diff(want, string(r.JSON)); diff != "" {
		t.Errorf("Normalize must only touch the address (-want +got):\n%s", diff)
	}
	if changed, _ := Normalize(r); changed {
		t.Error("Normalize is not idempotent")
	}
}

func TestNormalizeMXID(t *testing.T) {
	t.Parallel()
	cases := []struct {
		in, want string // want "" = refused
	}{
		{"matrix:u/alice:tim.example.de", "matrix:u/alice:tim.example.de"},
		{"@alice:tim.example.de", "matrix:u/alice:tim.example.de"},
		{"matrix:user/alice:tim.example.de", "matrix:u/alice:tim.example.de"},
		{"@1-1arvtst-tip041941:tim.test.gematik.de", "matrix:u/1-1arvtst-tip041941:tim.test.gematik.de"},
		{"matrix:u/SystemsEngineering:TIM.gematik.de", "matrix:u/SystemsEngineering:tim.gematik.de"},
		{"@bob:example.de:8448", "matrix:u/bob:example.de:8448"},
		{"@bob:127.0.0.1:8448", "matrix:u/bob:127.0.0.1:8448"},
		{"@bob:[2001:DB8::1]", "matrix:u/bob:[2001:db8::1]"},
		{"@bob:[::1]:443", "matrix:u/bob:[::1]:443"},
		{"@bob:localhost", "matrix:u/bob:localhost"},
		{"@a.b_c=d-e/f:x.de", ""}, // "/" would split the URI path
		{"matrix:u/7a9ga9:", ""},
		{"matrix:u/:tim.example.de", ""},
		{"@:tim.example.de", ""},
		{"@alice", ""},
		{"alice:tim.example.de", ""},
		{"matrix:r/room:tim.example.de", ""},
		{"matrix:u/alice:tim.example.de?action=chat", ""},
		{"matrix:u/alice:tim..example.de", ""},
		{"matrix:u/alice:-tim.example.de", ""},
		{"matrix:u/alice:tim.example.de:", ""},
		{"matrix:u/alice:tim.example.de:99999", ""},
		{"matrix:u/alice:tim.example.de:+80", ""},
		{"matrix:u/alice:999.1.1.1", ""},
		{"matrix:u/alice:[fe80::1%eth0]", ""},
		{"matrix:u/alice:[127.0.0.1]", ""},
		{"matrix:u/al ice:tim.example.de", ""},
		{"matrix:u/alice:tim_example.de", ""},
		{"", ""},
	}
	for _, tc := range cases {
		got, err := NormalizeMXID(tc.in)
		switch {
		case tc.want == "" && err == nil:
			t.Errorf("NormalizeMXID(%q) = %q, want refusal", tc.in, got)
		case tc.want == "" && !errors.Is(err, ErrInvalidMXID):
			t.Errorf("NormalizeMXID(%q) error %v is not ErrInvalidMXID", tc.in, err)
		case tc.want != "" && (err != nil || got != tc.want):
			t.Errorf("NormalizeMXID(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestParseReference(t *testing.T) {
	t.Parallel()
	cases := []struct {
		in       string
		typ, id  string
		resolved bool
	}{
		{"Organization/OrganizationExample", "Organization", "OrganizationExample", true},
		{"https://fhir-directory-test.vzd.ti-dienste.de/search/Organization/2665941", "Organization", "2665941", true},
		{"Endpoint/abc/_history/3", "Endpoint", "abc", true},
		{"#contained", "", "", false},
		{"urn:uuid:4f1c", "", "", false},
		{"Organization", "", "", false},
		{"a/b/Organization/x", "", "", false},
		{"organization/x", "", "", false},
		{"Organization/x y", "", "", false},
		{"Organization/", "", "", false},
	}
	for _, tc := range cases {
		got, ok := ParseReference(tc.in)
		if ok != tc.resolved || got.Type != tc.typ || got.ID != tc.id {
			t.Errorf("ParseReference(%q) = %+v, %v", tc.in, got, ok)
		}
	}
}

// TestScannerAgreesWithEncodingJSON: the hand-written scanner accepts exactly the JSON objects
// encoding/json accepts (apart from its own duplicate-name and case rules).
func TestScannerAgreesWithEncodingJSON(t *testing.T) {
	t.Parallel()
	for _, in := range []string{
		`{"resourceType":"Endpoint","a":[1,-0,0.5,1e5,1E+5,-1.5e-3,true,false,null,"\u00fc\n\"",{},[]]}`,
		`{"resourceType":"Endpoint","a":01}`, `{"resourceType":"Endpoint","a":1.}`, `{"resourceType":"Endpoint","a":.5}`,
		`{"resourceType":"Endpoint","a":+1}`, `{"resourceType":"Endpoint","a":1e}`, `{"resourceType":"Endpoint","a":tru}`,
		`{"resourceType":"Endpoint","a":"\x"}`, `{"resourceType":"Endpoint","a":"\u12"}`, "{\"resourceType\":\"Endpoint\",\"a\":\"\t\"}",
		`{"resourceType":"Endpoint",}`, `{"resourceType":"Endpoint","a":[1,]}`, `{"resourceType":"Endpoint" "a":1}`,
		`{"resourceType":"Endpoint","a":[1 2]}`, `{"resourceType":"Endpoint","a"}`, `{"resourceType":"Endpoint","a":}`,
		` {"resourceType":"Endpoint"} `, `{"resourceType":"Endpoint","\u0061":1}`, `{"resourceType":"Endpoint","a":[[[[]]]]}`,
	} {
		_, err := Parse([]byte(in))
		if valid := json.Valid([]byte(in)); valid != (err == nil) {
			t.Errorf("%s: json.Valid = %v, Parse error = %v", in, valid, err)
		}
	}
	deep := strings.Repeat("[", maxDepth+2) + strings.Repeat("]", maxDepth+2)
	if _, err := Parse([]byte(`{"resourceType":"Endpoint","a":` + deep + `}`)); err == nil {
		t.Error("nesting beyond maxDepth accepted")
	}
}
