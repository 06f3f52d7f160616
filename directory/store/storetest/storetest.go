// Package storetest is the conformance suite every store engine runs: store/sqlite and store/postgres call
// Run from their tests, so a query that works on one engine only fails here, not in production. Cases use
// hand-built index rows; they do not depend on the FHIR extractor.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/timstack/timstack/directory/index"
	"github.com/timstack/timstack/directory/store"
)

// Run runs the whole suite; open must return a new, empty store for each call (it may register cleanups
// on t). Subtests run in parallel.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	openStore := func(t *testing.T) store.Store {
		t.Helper()
		s := open(t)
		t.Cleanup(func() {
			if err := s.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
		return s
	}
	for _, c := range basicCases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			c.run(t, openStore(t))
		})
	}
	for _, c := range chainRowCases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			c.run(t, openStore(t))
		})
	}
	t.Run("searches over one directory", func(t *testing.T) {
		t.Parallel()
		s := openStore(t)
		mustPut(t, s, directory()...)
		for _, c := range searchCases() {
			t.Run(c.name, func(t *testing.T) {
				t.Parallel()
				got, err := s.Search(context.Background(), index.Query{Type: c.typ, Where: c.where, Limit: 100, Total: true})
				if err != nil {
					t.Fatalf("Search: %v", err)
				}
				want := c.want
				if want == nil {
					want = []string{}
				}
				if got.IDs == nil {
					got.IDs = []string{}
				}
				if diff := cmp.Diff(want, got.IDs); diff != "" {
					t.Errorf("ids (-want +got):\n%s", diff)
				}
				if got.Total != len(c.want) {
					t.Errorf("Total = %d, want %d", got.Total, len(c.want))
				}
			})
		}
		for _, c := range linkCases {
			t.Run(c.name, func(t *testing.T) {
				t.Parallel()
				c.run(t, s)
			})
		}
	})
}

// --- building blocks -------------------------------------------------------------------------------------

const (
	sysTelematik = "https://gematik.de/fhir/sid/telematik-id"
	sysIKNR      = "http://fhir.de/sid/arge-ik/iknr"
	sysOrgType   = "https://gematik.de/fhir/directory/CodeSystem/OrganizationProfessionOID"
	sysPayload   = "https://gematik.de/fhir/directory/CodeSystem/EndpointDirectoryPayloadType"
	sysHSID      = "https://example.org/hs-id"
)

func res(typ, id string, rows ...index.Row) index.Resource {
	return index.Resource{Type: typ, ID: id, JSON: []byte(fmt.Sprintf(`{"resourceType":%q,"id":%q}`, typ, id)), Rows: rows}
}

func tok(param, system, code string) index.Row {
	return index.Row{Param: param, Type: index.TypeToken, System: system, Code: code}
}

func tokd(param, system, code, display string) index.Row {
	return index.Row{Param: param, Type: index.TypeToken, System: system, Code: code, Display: display}
}

func str(param, v string) index.Row { return index.Row{Param: param, Type: index.TypeString, Value: v} }

func ref(param, typ, id string) index.Row {
	return index.Row{Param: param, Type: index.TypeReference, RefType: typ, RefID: id}
}

func date(param string, low, high time.Time) index.Row {
	return index.Row{Param: param, Type: index.TypeDate, Low: low, High: high}
}

func geo(param string, lat, lon float64) index.Row {
	return index.Row{Param: param, Type: index.TypeGeo, Lat: lat, Lon: lon}
}

func num(param string, v float64) index.Row {
	return index.Row{Param: param, Type: index.TypeNumber, Number: v}
}

func text(words ...string) []index.Row {
	rows := make([]index.Row, len(words))
	for i, w := range words {
		rows[i] = index.Row{Param: "_text", Type: index.TypeText, Value: w}
	}
	return rows
}

func day(s string) time.Time {
	t, err := time.Parse("2006-01-02", s)
	if err != nil {
		panic(err)
	}
	return t
}

// dayRange is a whole UTC day as the closed range the search package produces for "2021-06-15".
func dayRange(s string) (time.Time, time.Time) {
	lo := day(s)
	return lo, lo.Add(24*time.Hour - time.Microsecond)
}

func mustPut(t *testing.T, s store.Store, rs ...index.Resource) []index.Resource {
	t.Helper()
	out, err := s.Put(context.Background(), rs...)
	if err != nil {
		t.Fatalf("Put: %v", err)
	}
	if len(out) != len(rs) {
		t.Fatalf("Put returned %d resources for %d", len(out), len(rs))
	}
	return out
}

func search(t *testing.T, s store.Store, q index.Query) index.Result {
	t.Helper()
	r, err := s.Search(context.Background(), q)
	if err != nil {
		t.Fatalf("Search(%+v): %v", q, err)
	}
	return r
}

func ids(t *testing.T, s store.Store, typ string, where index.Cond) []string {
	t.Helper()
	r := search(t, s, index.Query{Type: typ, Where: where, Limit: 10000})
	if r.IDs == nil {
		return []string{}
	}
	return r.IDs
}

func refs(pairs ...string) []index.Ref {
	out := []index.Ref{}
	for i := 0; i+1 < len(pairs); i += 2 {
		out = append(out, index.Ref{Type: pairs[i], ID: pairs[i+1]})
	}
	return out
}

func eq[T any](t *testing.T, what string, want, got T) {
	t.Helper()
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("%s (-want +got):\n%s", what, diff)
	}
}

// --- the directory the search cases run against ----------------------------------------------------------

// Places: Berlin centre, Potsdam (about 27 km south-west of it) and Gelsenkirchen (about 430 km west).
const (
	berlinLat, berlinLon   = 52.5200, 13.4050
	potsdamLat, potsdamLon = 52.3906, 13.0645
	gelsenLat, gelsenLon   = 51.5177, 7.0857
)

func directory() []index.Resource {
	active := tok("active", "", "true")
	inactive := tok("active", "", "false")
	return []index.Resource{
		res(index.Organization, "o1", str("name", "praxis dr muster"), str("name", "muster praxis"), active,
			tok("identifier", sysTelematik, "1-2arvtst-ap000052"),
			tokd("type", sysOrgType, "1.2.276.0.76.4.50", "betriebsstatte arzt"), str("address-city", "berlin")),
		res(index.Organization, "o2", str("name", "zahnarztpraxis muller"), inactive,
			tokd("type", sysOrgType, "1.2.276.0.76.4.51", "zahnarztpraxis"), str("address-city", "gelsenkirchen")),
		res(index.Organization, "o3", str("name", "50% rabatt apotheke"), active,
			tok("identifier", sysIKNR, "123456789"), str("address-city", "ärztehaus potsdam")),
		res(index.Organization, "o4", str("name", "500 euro apotheke"), active),
		res(index.Organization, "o5", str("name", "a_b klinik")),
		res(index.Organization, "o6", str("name", "axb klinik")),

		res(index.Location, "l1", geo("near", berlinLat, berlinLon), str("address-city", "berlin"), ref("organization", index.Organization, "o1")),
		res(index.Location, "l2", geo("near", gelsenLat, gelsenLon), str("address-city", "gelsenkirchen")),
		res(index.Location, "l3", geo("near", potsdamLat, potsdamLon), str("address-city", "potsdam")),

		res(index.Endpoint, "e1", tok("status", "", "active"), tokd("payload-type", sysPayload, "tim-chat", "ti-messenger chat"),
			str("address", "matrix:u/alice:tim.example.de"), str("name", "alice")),
		res(index.Endpoint, "e2", tok("status", "", "off"), tokd("payload-type", sysPayload, "tim-chat", "ti-messenger chat")),
		res(index.Endpoint, "e3", tok("status", "", "active"), tokd("payload-type", sysPayload, "kim", "kim mail")),

		res(index.HealthcareService, "h1", append([]index.Row{ref("organization", index.Organization, "o1"),
			ref("location", index.Location, "l1"), ref("endpoint", index.Endpoint, "e1"), str("name", "hausarztpraxis"),
			tok("identifier", sysHSID, "hs-1"), date("period", day("2020-01-01"), day("2020-12-31")), num("rank", 1)},
			text("praxis", "dr", "muster", "berlin", "10117")...)...),
		res(index.HealthcareService, "h2", append([]index.Row{ref("organization", index.Organization, "o2"),
			ref("location", index.Location, "l2"), ref("endpoint", index.Endpoint, "e2"), str("name", "zahnarzt"),
			tok("identifier", sysHSID, "hs-2"), date("period", day("2021-06-15").Add(9*time.Hour), time.Time{})},
			text("zahnarztpraxis", "muller", "gelsenkirchen", "45884")...)...),
		res(index.HealthcareService, "h3", append([]index.Row{ref("organization", index.Organization, "o3"),
			ref("location", index.Location, "l3"), ref("endpoint", index.Endpoint, "e3"), ref("endpoint", index.Endpoint, "e1"),
			str("name", "apotheke am park"), tok("identifier", sysHSID, "hs-3"), date("period", day("2019-01-01"), day("2019-01-01"))},
			text("apotheke", "potsdam", "50%")...)...),
		res(index.HealthcareService, "h4", ref("organization", index.Organization, "missing"), str("name", "verwaist")),

		res(index.Practitioner, "p1", str("name", "timjamin muller"), tok("active", "", "true"), tok("qualification", "urn:oid:1.2.276.0.76.5.514", "1.2.276.0.76.4.241")),
		res(index.Practitioner, "p2", str("name", "tim berger"), tok("active", "", "false")),
		res(index.PractitionerRole, "r1", ref("practitioner", index.Practitioner, "p1"), ref("endpoint", index.Endpoint, "e1"), ref("location", index.Location, "l1")),
		res(index.PractitionerRole, "r2", ref("practitioner", index.Practitioner, "p2")),
	}
}

type searchCase struct {
	name  string
	typ   string
	where index.Cond
	want  []string
}

func searchCases() []searchCase {
	activeTrue := index.Token{Param: "active", Code: "true"}
	near := func(km float64) index.Near {
		return index.Near{Param: "near", Lat: berlinLat, Lon: berlinLon, Km: km}
	}
	dq := func(cmp index.DateCmp, d string) index.Date {
		lo, hi := dayRange(d)
		return index.Date{Param: "period", Cmp: cmp, Low: lo, High: hi}
	}
	org := index.Organization
	hs := index.HealthcareService
	return []searchCase{
		// tokens
		{"token system|code matches that identifier", org, index.Token{Param: "identifier", System: sysTelematik, Code: "1-2arvtst-ap000052"}, []string{"o1"}},
		{"token system|code with another system matches nothing", org, index.Token{Param: "identifier", System: sysIKNR, Code: "1-2arvtst-ap000052"}, nil},
		{"token code in any system matches", org, index.Token{Param: "identifier", Code: "123456789", AnySystem: true}, []string{"o3"}},
		{"token system| matches every code of the system", org, index.Token{Param: "identifier", System: sysIKNR}, []string{"o3"}},
		{"token |code matches only rows without a system", org, index.Token{Param: "type", Code: "1.2.276.0.76.4.50"}, nil},
		{"token |code matches system-less booleans", org, activeTrue, []string{"o1", "o3", "o4"}},
		{"token :text matches the display by prefix", index.Endpoint, index.Token{Param: "payload-type", Text: "ti-messenger"}, []string{"e1", "e2"}},
		{"token :text matches the whole display", index.Endpoint, index.Token{Param: "payload-type", Text: "ti-messenger chat", System: "ignored"}, []string{"e1", "e2"}},
		{"token :text does not match inside the display", index.Endpoint, index.Token{Param: "payload-type", Text: "messenger"}, nil},
		{"token on another parameter does not match", org, index.Token{Param: "type", System: sysTelematik, Code: "1-2arvtst-ap000052"}, nil},

		// strings
		{"string prefix matches the start of a value", org, index.String{Param: "name", Value: "praxis"}, []string{"o1"}},
		{"string prefix matches any of several values", org, index.String{Param: "name", Value: "muster"}, []string{"o1"}},
		{"string prefix with % is literal", org, index.String{Param: "name", Value: "50%"}, []string{"o3"}},
		{"string prefix with _ is literal", org, index.String{Param: "name", Value: "a_b"}, []string{"o5"}},
		{"string prefix with a multibyte letter", org, index.String{Param: "address-city", Value: "ä"}, []string{"o3"}},
		{"string prefix compares bytes, accents are the caller's normalisation", org, index.String{Param: "address-city", Value: "a"}, nil},
		{"string prefix is case-sensitive (the caller lower-cases)", org, index.String{Param: "name", Value: "Praxis"}, nil},
		{"string exact matches the whole value", org, index.String{Param: "name", Value: "praxis dr muster", Mode: index.StringExact}, []string{"o1"}},
		{"string exact does not match a prefix", org, index.String{Param: "name", Value: "praxis", Mode: index.StringExact}, nil},
		{"string contains matches inside values", org, index.String{Param: "name", Value: "apotheke", Mode: index.StringContains}, []string{"o3", "o4"}},
		{"string contains with % is literal", org, index.String{Param: "name", Value: "%", Mode: index.StringContains}, []string{"o3"}},
		{"string contains with _ is literal", org, index.String{Param: "name", Value: "_", Mode: index.StringContains}, []string{"o5"}},
		{"string empty prefix matches every value of the parameter", org, index.String{Param: "address-city", Value: ""}, []string{"o1", "o2", "o3"}},

		// references
		{"reference matches the target", hs, index.Reference{Param: "organization", Type: org, ID: "o1"}, []string{"h1"}},
		{"reference without a type matches any type", hs, index.Reference{Param: "endpoint", ID: "e1"}, []string{"h1", "h3"}},
		{"reference with the wrong type matches nothing", hs, index.Reference{Param: "organization", Type: index.Location, ID: "o1"}, nil},
		{"reference to a missing resource still matches", hs, index.Reference{Param: "organization", Type: org, ID: "missing"}, []string{"h4"}},

		// dates (FHIR R4 range semantics against [low, high])
		{"date eq matches rows inside the day", hs, dq(index.DateEq, "2021-06-15"), []string{"h2"}},
		{"date eq does not match a range wider than the day", hs, dq(index.DateEq, "2020-06-01"), nil},
		{"date gt matches ranges reaching past the day", hs, dq(index.DateGt, "2020-06-01"), []string{"h1", "h2"}},
		{"date lt matches ranges starting before the day", hs, dq(index.DateLt, "2020-06-01"), []string{"h1", "h3"}},
		{"date ge includes the day itself", hs, dq(index.DateGe, "2021-06-15"), []string{"h2"}},
		{"date le includes the day itself", hs, dq(index.DateLe, "2019-01-01"), []string{"h3"}},
		{"date lt of the first day matches nothing", hs, dq(index.DateLt, "2019-01-01"), nil},

		// near
		{"near 20 km of Berlin finds Berlin", index.Location, near(20), []string{"l1"}},
		{"near 30 km of Berlin finds Potsdam too", index.Location, near(30), []string{"l1", "l3"}},
		{"near 1000 km finds all", index.Location, near(1000), []string{"l1", "l2", "l3"}},
		{"near 0 km finds the exact point", index.Location, near(0), []string{"l1"}},
		{"near far from everything finds nothing", index.Location, index.Near{Param: "near", Lat: -33.86, Lon: 151.2, Km: 100}, nil},
		{"not near 20 km finds the others", index.Location, index.Not{Cond: near(20)}, []string{"l2", "l3"}},
		{"near over the whole globe finds all", index.Location, index.Near{Param: "near", Lat: -80, Lon: 179, Km: 30000}, []string{"l1", "l2", "l3"}},

		// _text
		{"text words are ANDed prefixes", hs, index.Text{Words: []string{"praxis", "berl"}}, []string{"h1"}},
		{"text words may come from different fields", hs, index.Text{Words: []string{"zahn", "45884"}}, []string{"h2"}},
		{"text with one unmatched word matches nothing", hs, index.Text{Words: []string{"praxis", "gelsen"}}, nil},
		{"text prefix with % is literal", hs, index.Text{Words: []string{"50%"}}, []string{"h3"}},
		{"text does not match inside words", hs, index.Text{Words: []string{"arzt"}}, nil},
		{"text without words matches everything", hs, index.Text{}, []string{"h1", "h2", "h3", "h4"}},

		// chains
		{"chain on the organization's name", hs, index.Chain{Param: "organization", TargetType: org, Where: index.String{Param: "name", Value: "zahn"}}, []string{"h2"}},
		{"chain on the organization's active flag skips dangling references", hs, index.Chain{Param: "organization", TargetType: org, Where: activeTrue}, []string{"h1", "h3"}},
		{"chain with a negated condition needs the target to exist", hs, index.Chain{Param: "organization", TargetType: org, Where: index.Not{Cond: activeTrue}}, []string{"h2"}},
		{"chain with no condition matches existing targets", hs, index.Chain{Param: "organization", TargetType: org}, []string{"h1", "h2", "h3"}},
		{"chains on two endpoint parameters", hs, index.And{
			index.Chain{Param: "endpoint", TargetType: index.Endpoint, Where: index.Token{Param: "payload-type", Text: "ti-messenger"}},
			index.Chain{Param: "endpoint", TargetType: index.Endpoint, Where: index.Token{Param: "status", Code: "active"}},
		}, []string{"h1", "h3"}},
		{"chain on the practitioner's name", index.PractitionerRole, index.Chain{Param: "practitioner", TargetType: index.Practitioner, Where: index.String{Param: "name", Value: "timj"}}, []string{"r1"}},
		{"mandatory filter with the practitioner's name", index.PractitionerRole, byName("name", "timj"), []string{"r1"}},
		{"mandatory filter with an inactive practitioner's name", index.PractitionerRole, byName("name", "tim b"), nil},
		{"mandatory filter alone", index.PractitionerRole, activeRoles, []string{"r1"}},
		{"mandatory filter with the organization's name", hs, servicesByOrgName("muster"), []string{"h1"}},
		{"mandatory filter with an inactive organization's name", hs, servicesByOrgName("zahn"), nil},
		{"chain through two levels", hs, index.Chain{Param: "location", TargetType: index.Location, Where: index.Chain{Param: "organization", TargetType: org, Where: index.String{Param: "name", Value: "praxis"}}}, []string{"h1"}},
		{"chain to a location near Berlin", hs, index.Chain{Param: "location", TargetType: index.Location, Where: near(30)}, []string{"h1", "h3"}},
		{"chain by target id", hs, index.Chain{Param: "organization", TargetType: org, Where: index.IDs{IDs: []string{"o2", "missing"}}}, []string{"h2"}},

		// _has
		{"has matches endpoints of a service by identifier", index.Endpoint, index.Has{SourceType: hs, SourceParam: "endpoint", Where: index.Token{Param: "identifier", System: sysHSID, Code: "hs-2"}}, []string{"e2"}},
		{"has matches organizations by their service's name", org, index.Has{SourceType: hs, SourceParam: "organization", Where: index.String{Param: "name", Value: "haus"}}, []string{"o1"}},
		{"has without a condition matches every referenced target", index.Endpoint, index.Has{SourceType: hs, SourceParam: "endpoint"}, []string{"e1", "e2", "e3"}},
		{"has with a chained source condition", index.Endpoint, index.Has{SourceType: hs, SourceParam: "endpoint", Where: index.Chain{Param: "organization", TargetType: org, Where: index.String{Param: "name", Value: "zahn"}}}, []string{"e2"}},

		// boolean composition and ids
		{"or of two prefixes", org, index.Or{index.String{Param: "name", Value: "praxis"}, index.String{Param: "name", Value: "zahn"}}, []string{"o1", "o2"}},
		{"and with a negation", org, index.And{activeTrue, index.Not{Cond: index.String{Param: "name", Value: "apotheke", Mode: index.StringContains}}}, []string{"o1"}},
		{"not matches resources without the row", org, index.Not{Cond: activeTrue}, []string{"o2", "o5", "o6"}},
		{"ids select resources that exist", org, index.IDs{IDs: []string{"o3", "o1", "nope"}}, []string{"o1", "o3"}},
		{"empty ids match nothing", org, index.IDs{}, nil},
		{"ids and a token", org, index.And{index.IDs{IDs: []string{"o1", "o2"}}, activeTrue}, []string{"o1"}},
		{"empty and matches everything", index.Location, index.And{}, []string{"l1", "l2", "l3"}},
		{"nil condition matches everything", index.Location, nil, []string{"l1", "l2", "l3"}},
		{"empty or matches nothing", index.Location, index.Or{}, nil},
		{"not of nothing matches everything", index.Location, index.Not{Cond: index.Or{}}, []string{"l1", "l2", "l3"}},
		{"conditions never cross resource types", index.Practitioner, index.String{Param: "name", Value: "zahn"}, nil},
	}
}

// --- cases over the shared directory that are not plain searches ----------------------------------------

var linkCases = []struct {
	name string
	run  func(t *testing.T, s store.Store)
}{
	{"References lists the targets of every reference parameter", func(t *testing.T, s store.Store) {
		got, err := s.References(context.Background(), index.HealthcareService, []string{"h2", "h1"}, "")
		if err != nil {
			t.Fatal(err)
		}
		eq(t, "refs", refs("Endpoint", "e1", "Endpoint", "e2", "Location", "l1", "Location", "l2", "Organization", "o1", "Organization", "o2"), got)
	}},
	{"References of one parameter", func(t *testing.T, s store.Store) {
		got, err := s.References(context.Background(), index.HealthcareService, []string{"h1", "h3", "h4"}, "endpoint")
		if err != nil {
			t.Fatal(err)
		}
		eq(t, "refs", refs("Endpoint", "e1", "Endpoint", "e3"), got)
	}},
	{"References of no ids is empty", func(t *testing.T, s store.Store) {
		got, err := s.References(context.Background(), index.HealthcareService, nil, "")
		if err != nil {
			t.Fatal(err)
		}
		eq(t, "refs", refs(), got)
	}},
	{"ReferencedBy finds the sources of one parameter", func(t *testing.T, s store.Store) {
		got, err := s.ReferencedBy(context.Background(), index.HealthcareService, "endpoint", refs("Endpoint", "e1", "Endpoint", "e2"))
		if err != nil {
			t.Fatal(err)
		}
		eq(t, "refs", refs("HealthcareService", "h1", "HealthcareService", "h2", "HealthcareService", "h3"), got)
	}},
	{"ReferencedBy with any parameter and mixed target types", func(t *testing.T, s store.Store) {
		got, err := s.ReferencedBy(context.Background(), index.HealthcareService, "", refs("Organization", "o3", "Location", "l1", "Endpoint", "o3"))
		if err != nil {
			t.Fatal(err)
		}
		eq(t, "refs", refs("HealthcareService", "h1", "HealthcareService", "h3"), got)
	}},
	{"ReferencedBy of no targets is empty", func(t *testing.T, s store.Store) {
		got, err := s.ReferencedBy(context.Background(), index.PractitionerRole, "endpoint", nil)
		if err != nil {
			t.Fatal(err)
		}
		eq(t, "refs", refs(), got)
	}},
	{"Count counts one type", func(t *testing.T, s store.Store) {
		for typ, want := range map[string]int{index.Organization: 6, index.HealthcareService: 4, "Unknown": 0} {
			n, err := s.Count(context.Background(), typ)
			if err != nil {
				t.Fatal(err)
			}
			if n != want {
				t.Errorf("Count(%s) = %d, want %d", typ, n, want)
			}
		}
	}},
	{"GetMany keeps the order of refs and skips missing ones", func(t *testing.T, s store.Store) {
		got, err := s.GetMany(context.Background(), refs("Organization", "o3", "Organization", "missing", "Endpoint", "e1", "Organization", "o1"))
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, r := range got {
			names = append(names, r.Type+"/"+r.ID)
			if want := fmt.Sprintf(`{"resourceType":%q,"id":%q}`, r.Type, r.ID); string(r.JSON) != want {
				t.Errorf("%s/%s JSON = %s, want %s", r.Type, r.ID, r.JSON, want)
			}
			if r.VersionID != 1 || r.LastUpdated.IsZero() {
				t.Errorf("%s/%s: version %d, lastUpdated %v", r.Type, r.ID, r.VersionID, r.LastUpdated)
			}
		}
		eq(t, "resources", []string{"Organization/o3", "Endpoint/e1", "Organization/o1"}, names)
	}},
	{"a cancelled context fails the search", func(t *testing.T, s store.Store) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := s.Search(ctx, index.Query{Type: index.Organization, Limit: 10}); err == nil {
			t.Error("Search with a cancelled context succeeded")
		}
	}},
	{"a search without a type is an error", func(t *testing.T, s store.Store) {
		if _, err := s.Search(context.Background(), index.Query{Limit: 10}); err == nil {
			t.Error("Search without a type succeeded")
		}
	}},
	{"a bad near condition is an error", func(t *testing.T, s store.Store) {
		if _, err := s.Search(context.Background(), index.Query{Type: index.Location, Where: index.Near{Param: "near", Lat: 91, Km: 1}, Limit: 10}); err == nil {
			t.Error("Search with latitude 91 succeeded")
		}
	}},
}

// --- cases that need a store of their own ---------------------------------------------------------------

var basicCases = []struct {
	name string
	run  func(t *testing.T, s store.Store)
}{
	{"put assigns version 1 and the store clock, get returns the JSON without rows", func(t *testing.T, s store.Store) {
		before := time.Now().Add(-time.Second)
		out := mustPut(t, s, res(index.Organization, "o1", str("name", "praxis")))
		after := time.Now().Add(time.Second)
		if out[0].VersionID != 1 || out[0].LastUpdated.Before(before) || out[0].LastUpdated.After(after) {
			t.Errorf("Put returned version %d, lastUpdated %v", out[0].VersionID, out[0].LastUpdated)
		}
		got, err := s.Get(context.Background(), index.Organization, "o1")
		if err != nil {
			t.Fatal(err)
		}
		want := index.Resource{Type: index.Organization, ID: "o1", VersionID: 1, LastUpdated: out[0].LastUpdated,
			JSON: []byte(`{"resourceType":"Organization","id":"o1"}`)}
		eq(t, "Get", want, got)
		if got.LastUpdated.Location() != time.UTC {
			t.Errorf("LastUpdated is in %v, want UTC", got.LastUpdated.Location())
		}
	}},
	{"put replaces a resource, increments its version and replaces its rows", func(t *testing.T, s store.Store) {
		mustPut(t, s, res(index.Organization, "o1", str("name", "alt"), tok("active", "", "true")))
		out := mustPut(t, s, index.Resource{Type: index.Organization, ID: "o1", JSON: []byte(`{"v":2}`), Rows: []index.Row{str("name", "neu")}})
		if out[0].VersionID != 2 {
			t.Errorf("version after replace = %d, want 2", out[0].VersionID)
		}
		out = mustPut(t, s, index.Resource{Type: index.Organization, ID: "o1", JSON: []byte(`{"v":3}`), Rows: []index.Row{str("name", "neu")}})
		if out[0].VersionID != 3 {
			t.Errorf("version after second replace = %d, want 3", out[0].VersionID)
		}
		got, err := s.Get(context.Background(), index.Organization, "o1")
		if err != nil {
			t.Fatal(err)
		}
		if string(got.JSON) != `{"v":3}` || got.VersionID != 3 {
			t.Errorf("Get = %s version %d", got.JSON, got.VersionID)
		}
		eq(t, "old name", []string{}, ids(t, s, index.Organization, index.String{Param: "name", Value: "alt"}))
		eq(t, "old token", []string{}, ids(t, s, index.Organization, index.Token{Param: "active", Code: "true"}))
		eq(t, "new name", []string{"o1"}, ids(t, s, index.Organization, index.String{Param: "name", Value: "neu"}))
	}},
	{"the same resource twice in one put is written twice, the last one wins", func(t *testing.T, s store.Store) {
		out := mustPut(t, s, res(index.Endpoint, "e", str("name", "eins")), res(index.Endpoint, "x"), res(index.Endpoint, "e", str("name", "zwei")))
		eq(t, "versions", []int64{1, 1, 2}, []int64{out[0].VersionID, out[1].VersionID, out[2].VersionID})
		eq(t, "first name", []string{}, ids(t, s, index.Endpoint, index.String{Param: "name", Value: "eins"}))
		eq(t, "second name", []string{"e"}, ids(t, s, index.Endpoint, index.String{Param: "name", Value: "zwei"}))
	}},
	{"put keeps _lastUpdated itself and ignores the caller's", func(t *testing.T, s store.Store) {
		old := day("2001-01-01")
		out := mustPut(t, s, res(index.Location, "l", date("_lastUpdated", old, old)))
		lu := out[0].LastUpdated
		eq(t, "old date", []string{}, ids(t, s, index.Location, index.Date{Param: "_lastUpdated", Cmp: index.DateEq, Low: old, High: old}))
		eq(t, "lastUpdated eq", []string{"l"}, ids(t, s, index.Location, index.Date{Param: "_lastUpdated", Cmp: index.DateEq, Low: lu, High: lu}))
		eq(t, "lastUpdated ge", []string{"l"}, ids(t, s, index.Location, index.Date{Param: "_lastUpdated", Cmp: index.DateGe, Low: lu.Add(-time.Hour), High: lu.Add(-time.Hour)}))
		eq(t, "lastUpdated gt", []string{}, ids(t, s, index.Location, index.Date{Param: "_lastUpdated", Cmp: index.DateGt, Low: lu, High: lu}))
	}},
	{"put rejects a resource without an id and writes nothing", func(t *testing.T, s store.Store) {
		if _, err := s.Put(context.Background(), res(index.Endpoint, "ok"), res(index.Endpoint, "")); err == nil {
			t.Error("Put without an id succeeded")
		}
		if n, _ := s.Count(context.Background(), index.Endpoint); n != 0 {
			t.Errorf("Count = %d after a failed Put, want 0", n)
		}
	}},
	{"put rejects a row of unknown type", func(t *testing.T, s store.Store) {
		if _, err := s.Put(context.Background(), res(index.Endpoint, "e", index.Row{Param: "x", Type: "blob"})); err == nil {
			t.Error("Put with an unknown row type succeeded")
		}
	}},
	{"put of nothing does nothing", func(t *testing.T, s store.Store) {
		out, err := s.Put(context.Background())
		if err != nil || len(out) != 0 {
			t.Errorf("Put() = %v, %v", out, err)
		}
	}},
	{"get of a missing resource is ErrNotFound", func(t *testing.T, s store.Store) {
		mustPut(t, s, res(index.Organization, "o1"))
		for _, r := range refs("Organization", "o2", "Location", "o1") {
			if _, err := s.Get(context.Background(), r.Type, r.ID); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("Get(%s/%s) error = %v, want ErrNotFound", r.Type, r.ID, err)
			}
		}
	}},
	{"delete removes the resource and its index rows", func(t *testing.T, s store.Store) {
		mustPut(t, s, res(index.Organization, "o1", str("name", "weg"), ref("partof", index.Organization, "o2")), res(index.Organization, "o2", str("name", "wegweiser")))
		if err := s.Delete(context.Background(), index.Organization, "o1"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Get(context.Background(), index.Organization, "o1"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Get after Delete: %v, want ErrNotFound", err)
		}
		eq(t, "search", []string{"o2"}, ids(t, s, index.Organization, index.String{Param: "name", Value: "weg"}))
		got, err := s.ReferencedBy(context.Background(), index.Organization, "partof", refs("Organization", "o2"))
		if err != nil {
			t.Fatal(err)
		}
		eq(t, "ReferencedBy", refs(), got)
		if err := s.Delete(context.Background(), index.Organization, "o1"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("second Delete: %v, want ErrNotFound", err)
		}
		if n, _ := s.Count(context.Background(), index.Organization); n != 1 {
			t.Errorf("Count = %d, want 1", n)
		}
		out := mustPut(t, s, res(index.Organization, "o1"))
		if out[0].VersionID != 1 {
			t.Errorf("version after delete and re-create = %d, want 1", out[0].VersionID)
		}
	}},
	{"paging by limit and offset is stable, in byte order of ids, with a total", func(t *testing.T, s store.Store) {
		var all []string
		var rs []index.Resource
		for i := 0; i < 23; i++ {
			id := fmt.Sprintf("p%02d", i)
			all = append(all, id)
			rs = append(rs, res(index.Practitioner, id, tok("_tag", "", "ldap")))
		}
		// upper case sorts before lower case, '-' before digits, 'ä' after 'z' (byte order, not a locale's)
		for _, id := range []string{"Z", "A-1", "a-1", "ä", "z", "A1"} {
			all = append(all, id)
			rs = append(rs, res(index.Practitioner, id, tok("_tag", "", "ldap")))
		}
		mustPut(t, s, rs...)
		mustPut(t, s, res(index.Practitioner, "untagged"))
		sort.Strings(all)
		tag := index.Token{Param: "_tag", Code: "ldap"}
		var got []string
		for off := 0; off < 40; off += 10 {
			r := search(t, s, index.Query{Type: index.Practitioner, Where: tag, Limit: 10, Offset: off, Total: true})
			if r.Total != len(all) {
				t.Errorf("offset %d: Total = %d, want %d", off, r.Total, len(all))
			}
			got = append(got, r.IDs...)
		}
		eq(t, "pages", all, got)
		r := search(t, s, index.Query{Type: index.Practitioner, Where: tag, Limit: 0, Total: true})
		if len(r.IDs) != 0 || r.Total != len(all) {
			t.Errorf("limit 0: %d ids, Total %d", len(r.IDs), r.Total)
		}
		r = search(t, s, index.Query{Type: index.Practitioner, Where: tag, Limit: 5})
		if r.Total != -1 {
			t.Errorf("Total without asking = %d, want -1", r.Total)
		}
		eq(t, "first page", all[:5], r.IDs)
		r = search(t, s, index.Query{Type: index.Practitioner, Where: tag, Limit: 5, Offset: 100, Total: true})
		if len(r.IDs) != 0 || r.Total != len(all) {
			t.Errorf("offset past the end: %v, Total %d", r.IDs, r.Total)
		}
	}},
	{"key-value pairs are stored, replaced and missing keys are ErrNotFound", func(t *testing.T, s store.Store) {
		ctx := context.Background()
		if _, err := s.GetKV(ctx, "signing-key"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("GetKV of a missing key: %v, want ErrNotFound", err)
		}
		bin := []byte{0, 1, 2, 0xff, 0xfe}
		if err := s.PutKV(ctx, "signing-key", bin); err != nil {
			t.Fatal(err)
		}
		if err := s.PutKV(ctx, "empty", nil); err != nil {
			t.Fatal(err)
		}
		got, err := s.GetKV(ctx, "signing-key")
		if err != nil {
			t.Fatal(err)
		}
		eq(t, "value", bin, got)
		if err := s.PutKV(ctx, "signing-key", []byte("v2")); err != nil {
			t.Fatal(err)
		}
		got, _ = s.GetKV(ctx, "signing-key")
		eq(t, "replaced value", "v2", string(got))
		got, err = s.GetKV(ctx, "empty")
		if err != nil || len(got) != 0 {
			t.Errorf("GetKV(empty) = %q, %v", got, err)
		}
	}},
	{"concurrent puts of one resource lose no version", func(t *testing.T, s store.Store) {
		const writers, each = 6, 8
		var mu sync.Mutex
		seen := map[int64]bool{}
		var wg sync.WaitGroup
		errs := make(chan error, writers)
		for w := 0; w < writers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < each; i++ {
					out, err := s.Put(context.Background(), res(index.Endpoint, "shared", str("name", fmt.Sprintf("w%d", w))),
						res(index.Endpoint, fmt.Sprintf("own-%d-%d", w, i)))
					if err != nil {
						errs <- err
						return
					}
					mu.Lock()
					seen[out[0].VersionID] = true
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("concurrent Put: %v", err)
		}
		if len(seen) != writers*each {
			t.Errorf("%d distinct versions returned, want %d", len(seen), writers*each)
		}
		got, err := s.Get(context.Background(), index.Endpoint, "shared")
		if err != nil {
			t.Fatal(err)
		}
		if got.VersionID != writers*each {
			t.Errorf("final version %d, want %d", got.VersionID, writers*each)
		}
		if n, _ := s.Count(context.Background(), index.Endpoint); n != writers*each+1 {
			t.Errorf("Count = %d, want %d", n, writers*each+1)
		}
		eq(t, "rows of the last write only", []string{"shared"}, ids(t, s, index.Endpoint, index.String{Param: "name", Value: "w"}))
	}},
	{"a bulk put of 5000 resources in one call", func(t *testing.T, s store.Store) {
		n := 5000
		if raceEnabled {
			n = 1000
		}
		rs := Synthetic(n, 0)
		mustPut(t, s, rs...)
		if got, _ := s.Count(context.Background(), index.PractitionerRole); got != n/5 {
			t.Errorf("Count(PractitionerRole) = %d, want %d", got, n/5)
		}
		r := search(t, s, index.Query{Type: index.Practitioner, Where: index.Token{Param: "active", Code: "true"}, Total: true})
		if r.Total != n/5 {
			t.Errorf("active practitioners = %d, want %d", r.Total, n/5)
		}
		// replace them all: versions go to 2 and the old rows are gone
		for i := range rs {
			for j := range rs[i].Rows {
				if rs[i].Rows[j].Param == "active" {
					rs[i].Rows[j].Code = "false"
				}
			}
		}
		out := mustPut(t, s, rs...)
		for _, o := range out {
			if o.VersionID != 2 {
				t.Fatalf("%s/%s version %d after replace, want 2", o.Type, o.ID, o.VersionID)
			}
		}
		r = search(t, s, index.Query{Type: index.Practitioner, Where: index.Token{Param: "active", Code: "true"}, Total: true})
		if r.Total != 0 {
			t.Errorf("active practitioners after replace = %d, want 0", r.Total)
		}
		r = search(t, s, index.Query{Type: index.PractitionerRole, Where: index.Chain{Param: "practitioner", TargetType: index.Practitioner,
			Where: index.String{Param: "name", Value: "muller"}}, Total: true})
		if r.Total == 0 {
			t.Error("chained name search over the bulk set found nothing")
		}
	}},
}
