package search

import (
	"encoding/json"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/timstack/timstack/directory/index"
)

func tok(param, code string) index.Token {
	return index.Token{Param: param, Code: code, AnySystem: true}
}

func chain(ref, typ string, c index.Cond) index.Chain {
	return index.Chain{Param: ref, TargetType: typ, Where: c}
}

func str(param, v string) index.String { return index.String{Param: param, Value: v} }

func orgActive() index.Cond { return chain("organization", index.Organization, tok("active", "true")) }
func prActive() index.Cond  { return chain("practitioner", index.Practitioner, tok("active", "true")) }

func inc(src, param string) Include { return Include{SourceType: src, Param: param} }

func prIncludes(params ...string) []Include {
	var out []Include
	for _, p := range params {
		out = append(out, inc(index.PractitionerRole, p))
	}
	return out
}

func hsIncludes(params ...string) []Include {
	var out []Include
	for _, p := range params {
		out = append(out, inc(index.HealthcareService, p))
	}
	return out
}

// splitURL turns "Type?query" into its parts.
func splitURL(s string) (string, string) {
	typ, q, _ := strings.Cut(s, "?")
	return typ, q
}

// TestParseTypicalClientQueries checks the typical messenger-client queries of vzd-directory-spec §3.5 compile
// to the expected trees, with the mandatory filters of §3.4.
func TestParseTypicalClientQueries(t *testing.T) {
	t.Parallel()
	const telematik = "https://gematik.de/fhir/sid/telematik-id"
	tests := []struct {
		name string
		url  string
		want Request
	}{
		{
			name: "#1 colleague by name with TIM address",
			url:  "PractitionerRole?practitioner.active=true&practitioner.name=Timjamin&_include=PractitionerRole:practitioner&_include=PractitionerRole:location&_include=PractitionerRole:endpoint&endpoint.status=active",
			want: Request{Where: index.And{prActive(),
				chain("practitioner", index.Practitioner, str("name", "timjamin")),
				chain("endpoint", index.Endpoint, tok("status", "active"))},
				Includes: prIncludes("practitioner", "location", "endpoint")},
		},
		{
			name: "#2 free text name and city is an AND of normalised word prefixes",
			url:  "PractitionerRole?practitioner.active=true&_text=Müller Berlin&_include=PractitionerRole:practitioner&_include=PractitionerRole:location&_include=PractitionerRole:endpoint",
			want: Request{Where: index.And{prActive(), index.Text{Words: []string{"muller", "berlin"}}},
				Includes: prIncludes("practitioner", "location", "endpoint")},
		},
		{
			name: "#3 only people reachable via TI-M",
			url:  "PractitionerRole?practitioner.active=true&endpoint.payload-type=tim-chat&endpoint.status=active&_include=PractitionerRole:practitioner&_include=PractitionerRole:endpoint",
			want: Request{Where: index.And{prActive(),
				chain("endpoint", index.Endpoint, tok("payload-type", "tim-chat")),
				chain("endpoint", index.Endpoint, tok("status", "active"))},
				Includes: prIncludes("practitioner", "endpoint")},
		},
		{
			name: "#3 variant with :text on the payload type",
			url:  "PractitionerRole?practitioner.active=true&endpoint.payload-type:text=TI-Messenger chat&endpoint.status=active",
			want: Request{Where: index.And{prActive(),
				chain("endpoint", index.Endpoint, index.Token{Param: "payload-type", Text: "ti-messenger chat"}),
				chain("endpoint", index.Endpoint, tok("status", "active"))}},
		},
		{
			name: "#3 variant with the uplifted refchain code payloadType",
			url:  "PractitionerRole?endpoint.payloadType=tim-chat",
			want: Request{Where: index.And{prActive(), chain("endpoint", index.Endpoint, tok("payload-type", "tim-chat"))}},
		},
		{
			name: "#4 profession and place",
			url:  "PractitionerRole?practitioner.active=true&practitioner.qualification=1.2.276.0.76.4.241&location.address-city=Gelsenkirchen&location.address=45884&endpoint.payload-type=tim-chat&endpoint.status=active&_include=PractitionerRole:practitioner&_include=PractitionerRole:location&_include=PractitionerRole:endpoint",
			want: Request{Where: index.And{prActive(),
				chain("practitioner", index.Practitioner, tok("qualification", "1.2.276.0.76.4.241")),
				chain("location", index.Location, str("address-city", "gelsenkirchen")),
				chain("location", index.Location, str("address", "45884")),
				chain("endpoint", index.Endpoint, tok("payload-type", "tim-chat")),
				chain("endpoint", index.Endpoint, tok("status", "active"))},
				Includes: prIncludes("practitioner", "location", "endpoint")},
		},
		{
			name: "#5 person by TelematikID with system",
			url:  "PractitionerRole?practitioner.active=true&practitioner.identifier=https://gematik.de/fhir/sid/telematik-id|1-1arvtst-tip041941&_include=PractitionerRole:practitioner&_include=PractitionerRole:location&_include=PractitionerRole:endpoint",
			want: Request{Where: index.And{prActive(),
				chain("practitioner", index.Practitioner, index.Token{Param: "identifier", System: telematik, Code: "1-1arvtst-tip041941"})},
				Includes: prIncludes("practitioner", "location", "endpoint")},
		},
		{
			name: "#6 practice by name",
			url:  "HealthcareService?organization.active=true&organization.name=Praxis Dr. Muster&_include=HealthcareService:organization&_include=HealthcareService:location&_include=HealthcareService:endpoint",
			want: Request{Where: index.And{orgActive(), chain("organization", index.Organization, str("name", "praxis dr. muster"))},
				Includes: hsIncludes("organization", "location", "endpoint")},
		},
		{
			name: "#7 practice full text",
			url:  "HealthcareService?organization.active=true&_text=Zahnarzt Gelsenkirchen&_include=HealthcareService:organization&_include=HealthcareService:location",
			want: Request{Where: index.And{orgActive(), index.Text{Words: []string{"zahnarzt", "gelsenkirchen"}}},
				Includes: hsIncludes("organization", "location")},
		},
		{
			name: "#8 organisation by TelematikID with _include=*",
			url:  "HealthcareService?organization.active=true&organization.identifier=1-2arvtst-ap000052&endpoint.status=active&_include=*",
			want: Request{Where: index.And{orgActive(),
				chain("organization", index.Organization, tok("identifier", "1-2arvtst-ap000052")),
				chain("endpoint", index.Endpoint, tok("status", "active"))},
				Includes: []Include{{SourceType: index.HealthcareService, Wildcard: true}}},
		},
		{
			name: "#8 variant: quoted TelematikID in _text splits at dashes",
			url:  `HealthcareService?organization.active=true&_text="1-2arvtst-ap000052"`,
			want: Request{Where: index.And{orgActive(), index.Text{Words: []string{"1", "2arvtst", "ap000052"}}}},
		},
		{
			name: "#9 organisations of a kind near a postcode",
			url:  "HealthcareService?organization.active=true&organization.type=https://gematik.de/fhir/directory/CodeSystem/OrganizationProfessionOID|1.2.276.0.76.4.50&location.address-postalcode=10117&_include=HealthcareService:organization&_include=HealthcareService:location&_include=HealthcareService:endpoint",
			want: Request{Where: index.And{orgActive(),
				chain("organization", index.Organization, index.Token{Param: "type", System: "https://gematik.de/fhir/directory/CodeSystem/OrganizationProfessionOID", Code: "1.2.276.0.76.4.50"}),
				chain("location", index.Location, str("address-postalcode", "10117"))},
				Includes: hsIncludes("organization", "location", "endpoint")},
		},
		{
			name: "#10 geo radius",
			url:  "HealthcareService?organization.active=true&location.near=50.1503|8.6168|10|km&_include=HealthcareService:location",
			want: Request{Where: index.And{orgActive(),
				chain("location", index.Location, index.Near{Param: "near", Lat: 50.1503, Lon: 8.6168, Km: 10})},
				Includes: hsIncludes("location")},
		},
		{
			name: "#11 reverse lookup of an MXID among roles",
			url:  "PractitionerRole?practitioner.active=true&endpoint.address=matrix:u/alice:tim.example.de&_include=PractitionerRole:practitioner",
			want: Request{Where: index.And{prActive(), chain("endpoint", index.Endpoint, index.String{Param: "address", Value: "matrix:u/alice:tim.example.de", Mode: index.StringExact})},
				Includes: prIncludes("practitioner")},
		},
		{
			name: "#11 reverse lookup of an MXID among services, given as @alice:server",
			url:  "HealthcareService?organization.active=true&endpoint.address=%40Alice%3Atim.example.de&_include=HealthcareService:organization",
			want: Request{Where: index.And{orgActive(), chain("endpoint", index.Endpoint, index.String{Param: "address", Value: "matrix:u/alice:tim.example.de", Mode: index.StringExact})},
				Includes: hsIncludes("organization")},
		},
		{
			name: "#12 active endpoints of a known service",
			url:  "Endpoint?status=active&_revinclude=HealthcareService:endpoint&_has:HealthcareService:endpoint:identifier=hs-4711",
			want: Request{Where: index.And{tok("status", "active"),
				index.Has{SourceType: index.HealthcareService, SourceParam: "endpoint", Where: tok("identifier", "hs-4711")}},
				RevIncludes: []Include{inc(index.HealthcareService, "endpoint")}},
		},
		{
			name: "#13 lazy load by id as a search",
			url:  "Endpoint?_id=c6ca0089-6f8a-4b4e-9d1e-0a1b2c3d4e5f",
			want: Request{Where: index.And{tok("status", "active"), index.IDs{IDs: []string{"c6ca0089-6f8a-4b4e-9d1e-0a1b2c3d4e5f"}}}},
		},
		{
			name: "#14 count only",
			url:  "PractitionerRole?practitioner.active=true&_summary=count",
			want: Request{Where: index.And{prActive()}, SummaryCount: true},
		},
		{
			name: "#15 next page as written by Execute",
			url:  "PractitionerRole?_count=20&_offset=40&practitioner.active=true&practitioner.name=Timjamin",
			want: Request{Where: index.And{prActive(), chain("practitioner", index.Practitioner, str("name", "timjamin"))},
				Count: 20, Offset: 40},
		},
		{
			name: "name only, no includes",
			url:  "PractitionerRole?practitioner.active=true&practitioner.name=Timjamin",
			want: Request{Where: index.And{prActive(), chain("practitioner", index.Practitioner, str("name", "timjamin"))}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			typ, q := splitURL(tc.url)
			got, err := ParseQuery(typ, q, Options{Mandatory: true})
			if err != nil {
				t.Fatalf("ParseQuery: %v", err)
			}
			want := tc.want
			want.Type = typ
			if want.Count == 0 {
				want.Count = DefaultCount
			}
			if diff := cmp.Diff(want, *got, cmpopts.IgnoreFields(Request{}, "Self")); diff != "" {
				t.Errorf("request (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseRecordedRequests(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("../../testdata/gematik/vzd/samples/Search_*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no recorded samples: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			raw, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			var sample struct {
				Request []string `json:"request"`
			}
			if err := json.Unmarshal(raw, &sample); err != nil || len(sample.Request) == 0 {
				t.Fatalf("sample: %v", err)
			}
			u, err := url.Parse(sample.Request[0])
			if err != nil {
				t.Fatal(err)
			}
			req, err := ParseQuery(filepath.Base(u.Path), u.RawQuery, Options{Mandatory: true})
			if err != nil {
				t.Fatalf("ParseQuery(%s): %v", sample.Request[0], err)
			}
			if len(req.Where.(index.And)) < 1 {
				t.Errorf("no filters compiled from %s", sample.Request[0])
			}
		})
	}
}

func TestParseValues(t *testing.T) {
	t.Parallel()
	ts := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	tests := []struct {
		name string
		typ  string
		q    string
		opts Options
		want index.Cond
	}{
		{"comma is an OR within one parameter", index.Endpoint, "status=active,test",
			Options{}, index.And{index.Or{tok("status", "active"), tok("status", "test")}}},
		{"a repeated parameter is an AND", index.Organization, "name=a&name=b",
			Options{}, index.And{str("name", "a"), str("name", "b")}},
		{"token forms |code and system|", index.Organization, "identifier=|x&identifier=sys|",
			Options{}, index.And{index.Token{Param: "identifier", Code: "x"}, index.Token{Param: "identifier", System: "sys"}}},
		{"escaped comma and bar stay in the value", index.Organization, `identifier=a\,b\|c`,
			Options{}, index.And{tok("identifier", "a,b|c")}},
		{"string modifiers exact and contains", index.Organization, "name:exact=Praxis  Süd&alias:contains=ärzt",
			Options{}, index.And{index.String{Param: "name", Value: "praxis sud", Mode: index.StringExact},
				index.String{Param: "alias", Value: "arzt", Mode: index.StringContains}}},
		{"references by id, Type/id and absolute URL", index.HealthcareService,
			"organization=o1&location=Location/l1&endpoint=https://h/search/Endpoint/e1",
			Options{}, index.And{index.Reference{Param: "organization", ID: "o1"},
				index.Reference{Param: "location", Type: index.Location, ID: "l1"},
				index.Reference{Param: "endpoint", Type: index.Endpoint, ID: "e1"}}},
		{"explicit chain target type", index.HealthcareService, "organization:Organization._id=o1,o2",
			Options{}, index.And{chain("organization", index.Organization, index.IDs{IDs: []string{"o1", "o2"}})}},
		{"_lastUpdated with a day's precision", index.Endpoint, "_lastUpdated=ge2024-03-01",
			Options{}, index.And{index.Date{Param: "_lastUpdated", Cmp: index.DateGe,
				Low: ts("2024-03-01T00:00:00Z"), High: ts("2024-03-01T23:59:59.999999999Z")}}},
		{"_lastUpdated with minutes and a zone", index.Endpoint, "_lastUpdated=lt2024-03-01T10:30%2B01:00",
			Options{}, index.And{index.Date{Param: "_lastUpdated", Cmp: index.DateLt,
				Low: ts("2024-03-01T09:30:00Z"), High: ts("2024-03-01T09:30:59.999999999Z")}}},
		{"_lastUpdated with a year", index.Endpoint, "_lastUpdated=2024",
			Options{}, index.And{index.Date{Param: "_lastUpdated", Cmp: index.DateEq,
				Low: ts("2024-01-01T00:00:00Z"), High: ts("2024-12-31T23:59:59.999999999Z")}}},
		{"_tag with :text", index.HealthcareService, "_tag:text=LDAP",
			Options{}, index.And{index.Token{Param: "_tag", Text: "ldap"}}},
		{"_text drops trailing dots, slashes and commas split words", index.HealthcareService, "_text:contains=Dr. Müller/Schulze,Straße",
			Options{}, index.And{index.Text{Words: []string{"dr", "muller", "schulze", "strasse"}}}},
		{"near on Location", index.Location, "near=52.5|13.4|100|km",
			Options{}, index.And{index.Near{Param: "near", Lat: 52.5, Lon: 13.4, Km: 100}}},
		{"the client's copy of the mandatory filter is not repeated", index.HealthcareService, "organization.active=true",
			Options{Mandatory: true}, index.And{orgActive()}},
		{"insured users never see hide-versicherte organisations", index.HealthcareService, "name=x",
			Options{Mandatory: true, Insured: true}, index.And{orgActive(),
				index.Not{Cond: chain("organization", index.Organization, tok("organizationVisibility", "hide-versicherte"))},
				str("name", "x")}},
		{"without Mandatory nothing is added", index.Endpoint, "",
			Options{}, index.And(nil)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseQuery(tc.typ, tc.q, tc.opts)
			if err != nil {
				t.Fatalf("ParseQuery: %v", err)
			}
			if diff := cmp.Diff(tc.want, got.Where); diff != "" {
				t.Errorf("Where (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseControls(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		q             string
		count, offset int
		includes      []Include
		revIncludes   []Include
		self          url.Values
	}{
		{name: "no _count means the default of 50", q: "", count: 50, self: url.Values{}},
		{name: "_count above 100 is clamped to 100", q: "_count=1000", count: 100, self: url.Values{}},
		{name: "_count=0 is allowed", q: "_count=0", count: 0, self: url.Values{}},
		{name: "_offset is kept but left out of Self", q: "_offset=20&name=a", count: 50, offset: 20,
			self: url.Values{"name": {"a"}}},
		{name: "explicit include target type and duplicate includes", q: "_include=HealthcareService:location:Location&_include=HealthcareService:location:Location,HealthcareService:endpoint",
			count: 50, includes: []Include{{SourceType: index.HealthcareService, Param: "location", TargetType: index.Location}, inc(index.HealthcareService, "endpoint")},
			self: url.Values{"_include": {"HealthcareService:location:Location", "HealthcareService:location:Location,HealthcareService:endpoint"}}},
		{name: "generic revinclude of roles pointing at a service", q: "_revinclude=PractitionerRole:service", count: 50,
			revIncludes: []Include{inc(index.PractitionerRole, "service")}, self: url.Values{"_revinclude": {"PractitionerRole:service"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseQuery(index.HealthcareService, tc.q, Options{})
			if err != nil {
				t.Fatalf("ParseQuery: %v", err)
			}
			want := Request{Type: index.HealthcareService, Where: got.Where, Count: tc.count, Offset: tc.offset,
				Includes: tc.includes, RevIncludes: tc.revIncludes, Self: tc.self}
			if diff := cmp.Diff(want, *got); diff != "" {
				t.Errorf("request (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseRefusals(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		typ   string
		q     string
		code  string
		param string
	}{
		{"unknown resource type", "Patient", "name=x", CodeNotSupported, ""},
		{"unknown parameter", index.PractitionerRole, "foo=bar", CodeNotSupported, "foo"},
		{"unknown parameter in a chain", index.PractitionerRole, "practitioner.birthdate=2000", CodeNotSupported, "practitioner.birthdate"},
		{"unknown modifier on a string", index.Organization, "name:missing=true", CodeNotSupported, "name:missing"},
		{":not on a token", index.Endpoint, "status:not=off", CodeNotSupported, "status:not"},
		{":text on a string", index.Organization, "name:text=x", CodeNotSupported, "name:text"},
		{"empty modifier", index.Organization, "name:=x", CodeNotSupported, "name:"},
		{"chain on a non-reference parameter", index.PractitionerRole, "specialty.name=x", CodeInvalid, "specialty.name"},
		{"two-level chain", index.PractitionerRole, "location.organization.name=x", CodeNotSupported, "location.organization.name"},
		{"chain with a wrong target type", index.PractitionerRole, "location:Endpoint.name=x", CodeInvalid, "location:Endpoint.name"},
		{"_include of an unknown parameter", index.PractitionerRole, "_include=PractitionerRole:foo", CodeNotSupported, "_include"},
		{"_include of a non-reference parameter", index.PractitionerRole, "_include=PractitionerRole:role", CodeInvalid, "_include"},
		{"_include from another type", index.PractitionerRole, "_include=HealthcareService:endpoint", CodeInvalid, "_include"},
		{"_include:iterate", index.PractitionerRole, "_include:iterate=PractitionerRole:location", CodeNotSupported, "_include:iterate"},
		{"_revinclude that does not point at the searched type", index.Endpoint, "_revinclude=HealthcareService:location", CodeInvalid, "_revinclude"},
		{"location.near with three parts", index.HealthcareService, "location.near=50.1|8.6|10", CodeInvalid, "location.near"},
		{"location.near beyond 100 km", index.HealthcareService, "location.near=50.1|8.6|150|km", CodeTooCostly, "location.near"},
		{"location.near in miles", index.HealthcareService, "location.near=50.1|8.6|10|mi", CodeNotSupported, "location.near"},
		{"location.near with a latitude out of range", index.HealthcareService, "location.near=91|8.6|10|km", CodeInvalid, "location.near"},
		{"_count that is no number", index.HealthcareService, "_count=lots", CodeInvalid, "_count"},
		{"_count given twice", index.HealthcareService, "_count=10&_count=20", CodeInvalid, "_count"},
		{"_offset past the 100-hit window", index.HealthcareService, "_offset=100", CodeTooCostly, "_offset"},
		{"malformed _lastUpdated", index.HealthcareService, "_lastUpdated=yesterday", CodeInvalid, "_lastUpdated"},
		{"_lastUpdated with a bad month", index.HealthcareService, "_lastUpdated=2024-13", CodeInvalid, "_lastUpdated"},
		{"_lastUpdated with the ap prefix", index.HealthcareService, "_lastUpdated=ap2024", CodeNotSupported, "_lastUpdated"},
		{"_complexSearch=true", index.HealthcareService, "_text=x&_complexSearch=true", CodeNotSupported, "_complexSearch"},
		{"_content", index.HealthcareService, "_content=x", CodeNotSupported, "_content"},
		{"_sort", index.HealthcareService, "_sort=name", CodeNotSupported, "_sort"},
		{"_summary=true", index.HealthcareService, "_summary=true", CodeNotSupported, "_summary"},
		{"_text on a type without full text", index.Organization, "_text=x", CodeNotSupported, "_text"},
		{"_text with only separators", index.HealthcareService, "_text=-/-", CodeInvalid, "_text"},
		{"empty value", index.HealthcareService, "name=", CodeInvalid, "name"},
		{"active that is no boolean", index.HealthcareService, "active=yes", CodeInvalid, "active"},
		{"malformed _id", index.HealthcareService, "_id=a/b", CodeInvalid, "_id"},
		{"reference to the wrong type", index.HealthcareService, "organization=Location/1", CodeInvalid, "organization"},
		{"_has on a parameter that does not reference the searched type", index.Endpoint, "_has:HealthcareService:location:name=x", CodeInvalid, "_has:HealthcareService:location:name"},
		{"nested _has", index.Endpoint, "_has:HealthcareService:endpoint:_has:PractitionerRole:service:role=x", CodeNotSupported, "_has:HealthcareService:endpoint:_has:PractitionerRole:service:role"},
		{"malformed percent-encoding", index.HealthcareService, "name=%zz", CodeInvalid, "name"},
		{"invalid UTF-8", index.HealthcareService, "name=%ff", CodeInvalid, "name"},
		{"too many alternatives", index.HealthcareService, "identifier=" + strings.Repeat("a,", 100) + "a", CodeTooCostly, "identifier"},
		{"too many parameters", index.HealthcareService, strings.Repeat("name=a&", 65), CodeTooCostly, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := ParseQuery(tc.typ, tc.q, Options{Mandatory: true})
			var se *Error
			if !errors.As(err, &se) {
				t.Fatalf("ParseQuery(%q) = %v, want *Error", tc.q, err)
			}
			if se.Code != tc.code || se.Param != tc.param {
				t.Errorf("error %+v, want code %q param %q", se, tc.code, tc.param)
			}
		})
	}
}

func TestNormalize(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"  Müller   Lüdenscheid ": "muller ludenscheid",
		"Straße":                  "strasse",
		"ÉCOLE\tçà":               "ecole ca",
		"Dr. med.":                "dr. med.",
	} {
		if got := normalize(in); got != want {
			t.Errorf("normalize(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestEveryRegistryParameterParses keeps the compiler in step with index's registry: every parameter of
// every type accepts a value of its type, every reference parameter chains to each of its targets and can
// be included.
func TestEveryRegistryParameterParses(t *testing.T) {
	t.Parallel()
	sample := map[index.Type]string{
		index.TypeToken:     "sys|code",
		index.TypeString:    "Müller",
		index.TypeReference: "x1",
		index.TypeDate:      "ge2024-01-01",
		index.TypeGeo:       "52.5|13.4|5|km",
		index.TypeText:      "Zahnarzt Berlin",
	}
	for _, typ := range index.ResourceTypes {
		for _, p := range index.Params(typ) {
			v, ok := sample[p.Type]
			if !ok {
				t.Errorf("%s.%s: no sample for type %s", typ, p.Code, p.Type)
				continue
			}
			switch p.Code {
			case "active":
				v = "true"
			case "_id":
				v = "x1"
			}
			if _, err := ParseQuery(typ, url.Values{p.Code: {v}}.Encode(), Options{Mandatory: true}); err != nil {
				t.Errorf("%s?%s=%s: %v", typ, p.Code, v, err)
			}
			if p.Type != index.TypeReference {
				continue
			}
			for _, target := range p.Targets {
				q := url.Values{p.Code + ":" + target + "._id": {"x1"}, "_include": {typ + ":" + p.Code + ":" + target}}
				if _, err := ParseQuery(typ, q.Encode(), Options{Mandatory: true}); err != nil {
					t.Errorf("%s?%s: %v", typ, q.Encode(), err)
				}
			}
		}
	}
}

// A complete MXID in endpoint.address is an exact lookup, so a longer server name never matches (spec
// §3.5 #11: 0 or 1 owner of an MXID).
func TestEndpointAddressMXIDIsExact(t *testing.T) {
	t.Parallel()
	for _, q := range []string{"address=matrix:u/alice:tim.example.de", "address=@alice:tim.example.de"} {
		req, err := ParseQuery(index.Endpoint, q, Options{})
		if err != nil {
			t.Fatal(err)
		}
		want := index.String{Param: "address", Value: "matrix:u/alice:tim.example.de", Mode: index.StringExact}
		found := false
		for _, c := range req.Where.(index.And) {
			if c == index.Cond(want) {
				found = true
			}
		}
		if !found {
			t.Errorf("%s: tree %#v lacks %#v", q, req.Where, want)
		}
	}
	req, err := ParseQuery(index.Endpoint, "address=kim", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if s, ok := req.Where.(index.And)[0].(index.String); !ok || s.Mode != index.StringPrefix {
		t.Errorf("a non-MXID address stays a prefix search: %#v", req.Where)
	}
}
