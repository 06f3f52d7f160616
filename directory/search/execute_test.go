package search

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/timstack/timstack/directory/index"
)

const base = "https://vzd.example/search"

func ref(param, typ, id string) index.Row {
	return index.Row{Param: param, Type: index.TypeReference, RefType: typ, RefID: id}
}

func tokRow(param, code string) index.Row {
	return index.Row{Param: param, Type: index.TypeToken, Code: code}
}

func strRow(param, v string) index.Row {
	return index.Row{Param: param, Type: index.TypeString, Value: v}
}

// directory is a small organisation directory: o1 active, o2 inactive, o3 hidden from insured users;
// h1 and h4 share o1 and e1, so includes must be deduplicated.
func directory() *fakeStore {
	res := func(typ, id string, rows ...index.Row) index.Resource {
		return index.Resource{Type: typ, ID: id, Rows: rows}
	}
	return newFake(
		res(index.Organization, "o1", tokRow("active", "true"), strRow("name", "praxis muster")),
		res(index.Organization, "o2", tokRow("active", "false"), strRow("name", "praxis alt")),
		res(index.Organization, "o3", tokRow("active", "true"), tokRow("organizationVisibility", "hide-versicherte")),
		res(index.Location, "l1", strRow("address-city", "berlin")),
		res(index.Endpoint, "e1", tokRow("status", "active")),
		res(index.Endpoint, "e2", tokRow("status", "off")),
		res(index.Endpoint, "e3", tokRow("status", "active"), tokRow("endpointVisibility", "hide-versicherte")),
		res(index.HealthcareService, "h1", ref("organization", index.Organization, "o1"), ref("location", index.Location, "l1"),
			ref("endpoint", index.Endpoint, "e1"), ref("endpoint", index.Endpoint, "e2"), tokRow("identifier", "hs-1")),
		res(index.HealthcareService, "h2", ref("organization", index.Organization, "o2"), ref("endpoint", index.Endpoint, "e1")),
		res(index.HealthcareService, "h3", ref("organization", index.Organization, "o3"), ref("endpoint", index.Endpoint, "e3"),
			ref("endpoint", index.Endpoint, "e1")),
		res(index.HealthcareService, "h4", ref("organization", index.Organization, "o1"), ref("endpoint", index.Endpoint, "e1")),
	)
}

// roles is a person directory of n roles of one active practitioner, for paging.
func roles(n int) *fakeStore {
	rs := []index.Resource{{Type: index.Practitioner, ID: "p1", Rows: []index.Row{tokRow("active", "true")}}}
	for i := 1; i <= n; i++ {
		rs = append(rs, index.Resource{Type: index.PractitionerRole, ID: fmt.Sprintf("r%03d", i),
			Rows: []index.Row{ref("practitioner", index.Practitioner, "p1")}})
	}
	return newFake(rs...)
}

func refsOf(rs []index.Resource) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Type+"/"+r.ID)
	}
	return out
}

func run(t *testing.T, st Searcher, typ, q string, opts Options) *Page {
	t.Helper()
	req, err := ParseQuery(typ, q, opts)
	if err != nil {
		t.Fatalf("ParseQuery(%q): %v", q, err)
	}
	page, err := Execute(context.Background(), st, req, base)
	if err != nil {
		t.Fatalf("Execute: %v", err)
	}
	return page
}

func TestExecuteIncludes(t *testing.T) {
	t.Parallel()
	mandatory := Options{Mandatory: true}
	tests := []struct {
		name     string
		typ      string
		q        string
		opts     Options
		matches  []string
		included []string
	}{
		{"inactive organisations are filtered and shared includes appear once", index.HealthcareService,
			"_include=HealthcareService:organization&_include=HealthcareService:endpoint", mandatory,
			[]string{"HealthcareService/h1", "HealthcareService/h3", "HealthcareService/h4"},
			[]string{"Organization/o1", "Organization/o3", "Endpoint/e1", "Endpoint/e2", "Endpoint/e3"}},
		{"endpoint.status=active filters roots but includes still carry inactive endpoints", index.HealthcareService,
			"endpoint.status=active&organization.name=praxis&_include=HealthcareService:endpoint", mandatory,
			[]string{"HealthcareService/h1", "HealthcareService/h4"},
			[]string{"Endpoint/e1", "Endpoint/e2"}},
		{"_include=* follows every reference parameter", index.HealthcareService,
			"_id=h1&_include=*", mandatory,
			[]string{"HealthcareService/h1"},
			[]string{"Endpoint/e1", "Endpoint/e2", "Location/l1", "Organization/o1"}},
		{"an include target type keeps only that type", index.HealthcareService,
			"_id=h1&_include=HealthcareService:endpoint:Endpoint&_include=HealthcareService:location:Location", mandatory,
			[]string{"HealthcareService/h1"},
			[]string{"Endpoint/e1", "Endpoint/e2", "Location/l1"}},
		{"revinclude of services for endpoints found by _has", index.Endpoint,
			"_revinclude=HealthcareService:endpoint&_has:HealthcareService:endpoint:identifier=hs-1", mandatory,
			[]string{"Endpoint/e1"},
			[]string{"HealthcareService/h1", "HealthcareService/h2", "HealthcareService/h3", "HealthcareService/h4"}},
		{"insured users see neither hidden matches nor hidden includes", index.HealthcareService,
			"_include=HealthcareService:endpoint", Options{Mandatory: true, Insured: true},
			[]string{"HealthcareService/h1", "HealthcareService/h4"},
			[]string{"Endpoint/e1", "Endpoint/e2"}},
		{"a match is never repeated as an include", index.Organization,
			"_include=Organization:partof", Options{},
			[]string{"Organization/o1", "Organization/o2", "Organization/o3"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			st := directory()
			if tc.typ == index.Organization { // o2 is part of o1: both are matches
				r := st.res[index.Ref{Type: index.Organization, ID: "o2"}]
				r.Rows = append(r.Rows, ref("partof", index.Organization, "o1"))
				st.res[index.Ref{Type: index.Organization, ID: "o2"}] = r
			}
			page := run(t, st, tc.typ, tc.q, tc.opts)
			if diff := cmp.Diff(tc.matches, refsOf(page.Matches)); diff != "" {
				t.Errorf("matches (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.included, refsOf(page.Included)); diff != "" {
				t.Errorf("included (-want +got):\n%s", diff)
			}
			if page.Total != len(tc.matches) {
				t.Errorf("total %d, want %d", page.Total, len(tc.matches))
			}
		})
	}
}

func TestExecutePaging(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		query string
		pages []int // matches per page, following next links
	}{
		{"default pages of 50 stop at the 100-hit window", "practitioner.active=true", []int{50, 50}},
		{"pages of 30 end with a short page at the window", "_count=30", []int{30, 30, 30, 10}},
		{"a clamped _count serves the window in one page", "_count=500", []int{100}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			st := roles(120)
			page := run(t, st, index.PractitionerRole, tc.query, Options{Mandatory: true})
			var got []int
			seen := map[string]bool{}
			for {
				got = append(got, len(page.Matches))
				if page.Total != 120 {
					t.Errorf("total %d on page %d, want a stable 120", page.Total, len(got))
				}
				for _, r := range page.Matches {
					if seen[r.ID] {
						t.Errorf("%s served twice", r.ID)
					}
					seen[r.ID] = true
				}
				if page.Next == "" {
					break
				}
				if !strings.HasPrefix(page.Next, base+"/PractitionerRole?") {
					t.Fatalf("next link %q not under the base", page.Next)
				}
				u, err := url.Parse(page.Next)
				if err != nil {
					t.Fatal(err)
				}
				page = run(t, st, index.PractitionerRole, u.RawQuery, Options{Mandatory: true})
				if len(got) > 10 {
					t.Fatal("paging does not end")
				}
			}
			if diff := cmp.Diff(tc.pages, got); diff != "" {
				t.Errorf("page sizes (-want +got):\n%s", diff)
			}
		})
	}
}

func TestExecuteLinks(t *testing.T) {
	t.Parallel()
	page := run(t, roles(60), index.PractitionerRole, "practitioner.name:exact=X&_count=20&_offset=20", Options{Mandatory: true})
	wantSelf := base + "/PractitionerRole?_count=20&_offset=20&practitioner.name%3Aexact=X"
	wantNext := base + "/PractitionerRole?_count=20&_offset=40&practitioner.name%3Aexact=X"
	if page.Self != wantSelf || page.Next != "" {
		// no role has a name row, so nothing matches: no next link
		t.Errorf("self %q next %q, want self %q and no next", page.Self, page.Next, wantSelf)
	}
	page = run(t, roles(60), index.PractitionerRole, "practitioner.active=true&_count=20&_offset=20", Options{Mandatory: true})
	if want := strings.Replace(wantNext, "practitioner.name%3Aexact=X", "practitioner.active=true", 1); page.Next != want {
		t.Errorf("next %q, want %q", page.Next, want)
	}
}

func TestExecuteSummaryCount(t *testing.T) {
	t.Parallel()
	for _, q := range []string{"_summary=count", "_count=0"} {
		page := run(t, roles(150), index.PractitionerRole, q+"&_include=PractitionerRole:practitioner", Options{Mandatory: true})
		if page.Total != 150 || len(page.Matches) != 0 || len(page.Included) != 0 || page.Next != "" {
			t.Errorf("%s: total %d, %d matches, %d included, next %q; want 150 and nothing else",
				q, page.Total, len(page.Matches), len(page.Included), page.Next)
		}
	}
}

func TestBundleJSON(t *testing.T) {
	t.Parallel()
	page := run(t, directory(), index.HealthcareService, "_id=h1&_include=HealthcareService:location", Options{Mandatory: true})
	raw, err := page.BundleJSON(base)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatalf("bundle is not JSON: %v\n%s", err, raw)
	}
	want := map[string]any{
		"resourceType": "Bundle", "type": "searchset", "total": 1.0,
		"link": []any{map[string]any{"relation": "self", "url": base + "/HealthcareService?_count=50&_id=h1&_include=HealthcareService%3Alocation"}},
		"entry": []any{
			map[string]any{"fullUrl": base + "/HealthcareService/h1", "search": map[string]any{"mode": "match"},
				"resource": map[string]any{"resourceType": "HealthcareService", "id": "h1"}},
			map[string]any{"fullUrl": base + "/Location/l1", "search": map[string]any{"mode": "include"},
				"resource": map[string]any{"resourceType": "Location", "id": "l1"}},
		},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("bundle (-want +got):\n%s", diff)
	}

	count := run(t, roles(3), index.PractitionerRole, "_summary=count", Options{Mandatory: true})
	raw, err = count.BundleJSON(base)
	if err != nil {
		t.Fatal(err)
	}
	if s := string(raw); !strings.Contains(s, `"SUBSETTED"`) || strings.Contains(s, `"entry"`) || !strings.Contains(s, `"total":3`) {
		t.Errorf("count bundle %s: want total 3, SUBSETTED and no entries", s)
	}
}

func TestExecuteCountsMatchesHiddenFromInsuredUsers(t *testing.T) {
	t.Parallel()
	insured := Options{Mandatory: true, Insured: true}
	tests := []struct {
		name            string
		typ, q          string
		opts            Options
		total, filtered int
	}{
		{"a service of a hide-versicherte organisation is counted", index.HealthcareService, "", insured, 2, 1},
		{"a summary count reports the removed matches too", index.HealthcareService, "_summary=count", insured, 2, 1},
		{"a hide-versicherte endpoint is counted", index.Endpoint, "", insured, 1, 1},
		{"only matches the client's filters select are counted", index.HealthcareService, "_id=h1,h4", insured, 2, 0},
		{"the inactive organisation's service is not counted as hidden", index.HealthcareService, "_id=h2,h3", insured, 0, 1},
		{"search users see everything and nothing is counted", index.HealthcareService, "", Options{Mandatory: true}, 3, 0},
		{"types without a visibility rule count nothing", index.Location, "", insured, 1, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			page := run(t, directory(), tc.typ, tc.q, tc.opts)
			if page.Total != tc.total || page.Filtered != tc.filtered {
				t.Errorf("total %d filtered %d, want %d and %d", page.Total, page.Filtered, tc.total, tc.filtered)
			}
			raw, err := page.BundleJSON(base)
			if err != nil {
				t.Fatal(err)
			}
			var b struct {
				Total  int `json:"total"`
				TotalX *struct {
					Extension []struct {
						URL       string `json:"url"`
						Extension []struct {
							URL          string `json:"url"`
							ValueInteger *int   `json:"valueInteger"`
							ValueString  string `json:"valueString"`
						} `json:"extension"`
					} `json:"extension"`
				} `json:"_total"`
			}
			if err := json.Unmarshal(raw, &b); err != nil {
				t.Fatal(err)
			}
			if tc.filtered == 0 {
				if b.TotalX != nil {
					t.Errorf("nothing was filtered but the bundle has _total: %s", raw)
				}
				return
			}
			if b.TotalX == nil || len(b.TotalX.Extension) != 1 {
				t.Fatalf("no results-filtered-ex on total: %s", raw)
			}
			ext := b.TotalX.Extension[0]
			if ext.URL != "https://gematik.de/fhir/directory/StructureDefinition/results-filtered-ex" || len(ext.Extension) != 2 ||
				ext.Extension[0].URL != "count" || ext.Extension[0].ValueInteger == nil || *ext.Extension[0].ValueInteger != tc.filtered ||
				ext.Extension[1].URL != "reason" || ext.Extension[1].ValueString != "Reason: hideVersicherte" {
				t.Errorf("results-filtered-ex: %s", raw)
			}
		})
	}
}
