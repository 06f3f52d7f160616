package directory_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/timstack/timstack/directory"
	"github.com/timstack/timstack/directory/search"
	"github.com/timstack/timstack/directory/store"
)

// The seeded fixture of the typical messenger-client queries (vzd-directory-spec §3.5): a hand-made set of
// practitioners, roles, organisations, services, locations and endpoints in testdata/queries/fixture.ndjson,
// plus a generated broad set of roles that pushes the broadest query past the 100-match window. The
// expectations in testdata/queries/expected.json were written from the fixture, each with its reason.

const (
	queriesDir = "testdata/queries"
	// bulkRoles roles of one active practitioner, each with its own active TIM endpoint; their ids sort
	// after every fixture role, so the window of a broad query serves the fixture matches first.
	bulkRoles = 110
)

type queryCase struct {
	N            string   `json:"n"`
	Intent       string   `json:"intent"`
	Query        string   `json:"query"`
	Reason       string   `json:"reason"`
	Read         string   `json:"read"`
	FdV          bool     `json:"fdv"`
	Bulk         bool     `json:"bulk"`
	BulkIncludes []string `json:"bulkIncludes"`
	SummaryCount bool     `json:"summaryCount"`
	Total        int      `json:"total"`
	Filtered     int      `json:"filtered"`
	Match        []string `json:"match"`
	Include      []string `json:"include"`
	Pages        int      `json:"pages"`
	SameAs       string   `json:"sameAs"`
}

func loadQueryCases(t *testing.T) []queryCase {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(queriesDir, "expected.json"))
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Queries []queryCase `json:"queries"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&f); err != nil {
		t.Fatal(err)
	}
	byN := map[string]queryCase{}
	for i, q := range f.Queries {
		if _, dup := byN[q.N]; dup {
			t.Fatalf("expected.json: query %q twice", q.N)
		}
		if q.SameAs != "" {
			src, ok := byN[q.SameAs]
			if !ok {
				t.Fatalf("expected.json: %q is sameAs unknown or later query %q", q.N, q.SameAs)
			}
			q.Match, q.Include, q.Pages = src.Match, src.Include, src.Pages
			f.Queries[i] = q
		}
		byN[q.N] = q
	}
	return f.Queries
}

// fixtureDocs returns the fixture's resources and the generated broad set.
func fixtureDocs(t *testing.T) [][]byte {
	t.Helper()
	f, err := os.Open(filepath.Join(queriesDir, "fixture.ndjson"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var docs [][]byte
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		if line := bytes.TrimSpace(sc.Bytes()); len(line) > 0 {
			docs = append(docs, append([]byte(nil), line...))
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	const tag = `"meta":{"tag":[{"system":"https://gematik.de/fhir/directory/CodeSystem/Origin","code":"owner"}]}`
	docs = append(docs, []byte(`{"resourceType":"Practitioner","id":"pr-zz-bulk",`+tag+`,"active":true,`+
		`"identifier":[{"system":"https://gematik.de/fhir/sid/telematik-id","value":"1-1arvtst-bulk0001"}],`+
		`"name":[{"text":"Sammel Praxisrolle","family":"Praxisrolle","given":["Sammel"]}]}`))
	for i := range bulkRoles {
		n := fmt.Sprintf("%03d", i)
		docs = append(docs,
			[]byte(`{"resourceType":"Endpoint","id":"ep-zz-bulk-`+n+`",`+tag+`,"status":"active",`+
				`"connectionType":{"system":"https://gematik.de/fhir/directory/CodeSystem/EndpointDirectoryConnectionType","code":"tim"},`+
				`"name":"MatrixId von bulk-`+n+`","payloadType":[{"coding":[{"system":"https://gematik.de/fhir/directory/CodeSystem/EndpointDirectoryPayloadType","code":"tim-chat","display":"TI-Messenger chat"}]}],`+
				`"address":"matrix:u/bulk-`+n+`:bulk.tim.test"}`),
			[]byte(`{"resourceType":"PractitionerRole","id":"role-zz-bulk-`+n+`",`+tag+`,`+
				`"practitioner":{"reference":"Practitioner/pr-zz-bulk"},"endpoint":[{"reference":"Endpoint/ep-zz-bulk-`+n+`"}]}`))
	}
	return docs
}

// expected returns the served matches and includes of q: with bulk, the generated roles join the fixture
// matches and only the first MaxResults by id are served, bringing their includes.
func (q queryCase) expected() (matches, includes []string) {
	matches = slices.Clone(q.Match)
	includes = slices.Clone(q.Include)
	if q.Bulk {
		for i := range bulkRoles {
			matches = append(matches, fmt.Sprintf("PractitionerRole/role-zz-bulk-%03d", i))
		}
		sort.Strings(matches)
		matches = matches[:min(len(matches), search.MaxResults)]
		bulkPractitioner := false
		for _, m := range matches {
			n, ok := strings.CutPrefix(m, "PractitionerRole/role-zz-bulk-")
			if !ok {
				continue
			}
			if slices.Contains(q.BulkIncludes, "practitioner") && !bulkPractitioner {
				includes = append(includes, "Practitioner/pr-zz-bulk")
				bulkPractitioner = true
			}
			if slices.Contains(q.BulkIncludes, "endpoint") {
				includes = append(includes, "Endpoint/ep-zz-bulk-"+n)
			}
		}
	}
	sort.Strings(matches)
	sort.Strings(includes)
	return matches, includes
}

// encodeQuery percent-encodes a query written as in the spec table (raw spaces, '|', quotes).
func encodeQuery(raw string) string {
	var parts []string
	for seg := range strings.SplitSeq(raw, "&") {
		k, v, _ := strings.Cut(seg, "=")
		parts = append(parts, url.QueryEscape(k)+"="+url.QueryEscape(v))
	}
	return strings.Join(parts, "&")
}

type searchPage struct {
	ResourceType string `json:"resourceType"`
	Type         string `json:"type"`
	Meta         *struct {
		Tag []struct{ System, Code string } `json:"tag"`
	} `json:"meta"`
	Total      *int `json:"total"`
	TotalElems *struct {
		Extension []struct {
			URL       string `json:"url"`
			Extension []struct {
				URL          string `json:"url"`
				ValueInteger *int   `json:"valueInteger"`
				ValueString  string `json:"valueString"`
			} `json:"extension"`
		} `json:"extension"`
	} `json:"_total"`
	Link []struct {
		Relation string `json:"relation"`
		URL      string `json:"url"`
	} `json:"link"`
	Entry []struct {
		FullURL  string          `json:"fullUrl"`
		Resource json.RawMessage `json:"resource"`
		Search   struct {
			Mode string `json:"mode"`
		} `json:"search"`
	} `json:"entry"`
}

func (p searchPage) link(rel string) string {
	for _, l := range p.Link {
		if l.Relation == rel {
			return l.URL
		}
	}
	return ""
}

// filtered returns the results-filtered-ex count and reason on Bundle.total (0, "" when absent).
func (p searchPage) filtered(t *testing.T) (int, string) {
	t.Helper()
	if p.TotalElems == nil {
		return 0, ""
	}
	if len(p.TotalElems.Extension) != 1 || p.TotalElems.Extension[0].URL != "https://gematik.de/fhir/directory/StructureDefinition/results-filtered-ex" {
		t.Fatalf("unexpected extensions on total: %+v", p.TotalElems)
	}
	count, reason := -1, ""
	for _, e := range p.TotalElems.Extension[0].Extension {
		switch e.URL {
		case "count":
			if e.ValueInteger != nil {
				count = *e.ValueInteger
			}
		case "reason":
			reason = e.ValueString
		}
	}
	return count, reason
}

func TestTypicalClientQueriesOverSeededFixture(t *testing.T) {
	cases := loadQueryCases(t)
	docs := fixtureDocs(t)
	engines(t, func(t *testing.T, st store.Store) {
		e := newEnv(t, st)
		if _, err := (&directory.Writer{Store: st}).Put(context.Background(), docs); err != nil {
			t.Fatalf("load fixture: %v", err)
		}
		tokens := map[bool]string{
			false: e.token(directory.TokenSearch, "@alice:hs1.tim.test", directory.Claims{}),
			true:  e.token(directory.TokenFdV, "@v123:kasse.tim.test", directory.Claims{}),
		}
		fixture := map[string]json.RawMessage{}
		for _, d := range docs {
			var r struct{ ResourceType, ID string }
			if err := json.Unmarshal(d, &r); err != nil {
				t.Fatal(err)
			}
			fixture[r.ResourceType+"/"+r.ID] = d
		}
		for _, q := range cases {
			t.Run(q.N, func(t *testing.T) {
				if q.Read != "" {
					checkRead(t, e, tokens[false], q.Read, fixture[q.Read])
					return
				}
				checkQuery(t, e, tokens[q.FdV], q)
			})
		}
	})
}

// checkRead is #13: a read by id serves the resource as stored, whatever its status.
func checkRead(t *testing.T, e *env, token, ref string, want json.RawMessage) {
	if want == nil {
		t.Fatalf("%s is not in the fixture", ref)
	}
	status, body, hdr := e.do("GET", "/search/"+ref, token, nil)
	if status != 200 || hdr.Get("Content-Type") != "application/fhir+json" {
		t.Fatalf("read %s: %d %s", ref, status, body)
	}
	var got, exp any
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(want, &exp); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(exp, got); diff != "" {
		t.Errorf("read %s (-fixture +served):\n%s", ref, diff)
	}
}

// checkQuery sends q, follows next links to the end and compares the union of the pages with q.
func checkQuery(t *testing.T, e *env, token string, q queryCase) {
	typ, raw, _ := strings.Cut(q.Query, "?")
	prefix := "/search/"
	if q.FdV {
		prefix = "/fdv/search/"
	}
	pageSize := search.DefaultCount
	if v, err := url.ParseQuery(encodeQuery(raw)); err == nil && v.Get("_count") != "" {
		pageSize, _ = strconv.Atoi(v.Get("_count"))
	}
	path := prefix + typ + "?" + encodeQuery(raw)
	var matches, includes []string
	seen := map[string]string{}
	pages := 0
	for path != "" {
		pages++
		if pages > 10 {
			t.Fatal("paging does not end")
		}
		status, body, hdr := e.do("GET", path, token, nil)
		if status != 200 || hdr.Get("Content-Type") != "application/fhir+json" {
			t.Fatalf("page %d %s: %d %s", pages, path, status, body)
		}
		var p searchPage
		if err := json.Unmarshal(body, &p); err != nil {
			t.Fatalf("page %d: %v", pages, err)
		}
		if p.ResourceType != "Bundle" || p.Type != "searchset" || p.Total == nil {
			t.Fatalf("page %d: not a searchset with total: %s", pages, body)
		}
		if *p.Total != q.Total {
			t.Errorf("page %d: total %d, want %d (stable over pages)", pages, *p.Total, q.Total)
		}
		count, reason := p.filtered(t)
		if count != q.Filtered || (count > 0 && reason != "Reason: hideVersicherte") {
			t.Errorf("page %d: results-filtered-ex count %d reason %q, want %d", pages, count, reason, q.Filtered)
		}
		if p.link("self") == "" {
			t.Errorf("page %d: no self link", pages)
		}
		if q.SummaryCount {
			subsetted := p.Meta != nil && slices.ContainsFunc(p.Meta.Tag, func(c struct{ System, Code string }) bool {
				return c.Code == "SUBSETTED" && c.System == "http://terminology.hl7.org/CodeSystem/v3-ObservationValue"
			})
			if len(p.Entry) != 0 || !subsetted || p.link("next") != "" {
				t.Errorf("_summary=count: want total only with SUBSETTED and no next link: %s", body)
			}
			return
		}
		pageMatches := 0
		for _, en := range p.Entry {
			var r struct{ ResourceType, ID string }
			if err := json.Unmarshal(en.Resource, &r); err != nil {
				t.Fatal(err)
			}
			ref := r.ResourceType + "/" + r.ID
			if !strings.HasSuffix(en.FullURL, "/"+ref) {
				t.Errorf("page %d: fullUrl %q for %s", pages, en.FullURL, ref)
			}
			switch en.Search.Mode {
			case "match":
				pageMatches++
				if r.ResourceType != typ {
					t.Errorf("page %d: match %s is not a %s", pages, ref, typ)
				}
				if prev, dup := seen[ref]; dup {
					t.Errorf("page %d: match %s already served as %s", pages, ref, prev)
				}
				seen[ref] = "match"
				matches = append(matches, ref)
			case "include":
				switch seen[ref] {
				case "match":
					t.Errorf("page %d: %s is both match and include", pages, ref)
				case "":
					seen[ref] = "include"
					includes = append(includes, ref)
				}
			default:
				t.Errorf("page %d: %s has search.mode %q", pages, ref, en.Search.Mode)
			}
		}
		if pageMatches > pageSize {
			t.Errorf("page %d: %d matches, more than _count %d", pages, pageMatches, pageSize)
		}
		path = ""
		if next := p.link("next"); next != "" {
			u, err := url.Parse(next)
			if err != nil || !strings.HasPrefix(next, e.http.URL+prefix+typ+"?") {
				t.Fatalf("page %d: next link %q not under %s", pages, next, prefix)
			}
			path = u.RequestURI()
		}
	}
	if len(matches) != min(q.Total, search.MaxResults) {
		t.Errorf("%d matches served over %d pages, want min(total, %d) = %d", len(matches), pages, search.MaxResults, min(q.Total, search.MaxResults))
	}
	if q.Pages != 0 && pages != q.Pages {
		t.Errorf("%d pages, want %d", pages, q.Pages)
	}
	wantMatches, wantIncludes := q.expected()
	sort.Strings(matches)
	sort.Strings(includes)
	if diff := cmp.Diff(wantMatches, matches); diff != "" {
		t.Errorf("matches (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(wantIncludes, includes); diff != "" {
		t.Errorf("includes (-want +got):\n%s", diff)
	}
}
