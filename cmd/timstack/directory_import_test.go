package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/timstack/timstack/certs"
	"github.com/timstack/timstack/directory"
	"github.com/timstack/timstack/directory/store"
	"github.com/timstack/timstack/directory/store/pgtest"
)

var pg = pgtest.New()

func TestMain(m *testing.M) {
	code := m.Run()
	pg.Close()
	os.Exit(code)
}

var queryFixture = filepath.Join("..", "..", "directory", "testdata", "queries", "fixture.ndjson")

// `directory import --bulk` loads an empty PostgreSQL store without its value indexes and rebuilds them:
// the same resources are then found as after a plain import.
func TestDirectoryImportBulk(t *testing.T) {
	plain, bulk := pg.DSN(t), pg.DSN(t)
	for _, tc := range []struct {
		dsn  string
		args []string
	}{{plain, nil}, {bulk, []string{"--bulk"}}} {
		args := append([]string{"directory", "import", "--db", tc.dsn}, tc.args...)
		stdout, stderr, code := runCLI(t, append(args, queryFixture)...)
		if code != 0 {
			t.Fatalf("import %v: %s", tc.args, stderr)
		}
		var res struct{ Imported int }
		if err := json.Unmarshal([]byte(stdout), &res); err != nil || res.Imported == 0 {
			t.Fatalf("import %v printed %q", tc.args, stdout)
		}
	}
	// The bulk load ends with the same indexes as a plain import.
	if a, b := indexNames(t, plain), indexNames(t, bulk); a != b || !strings.Contains(a, ",") {
		t.Fatalf("indexes after the bulk load differ:\nplain %s\nbulk  %s", a, b)
	}
	// Every typical client query of the directory suite answers the same from both stores.
	raw, err := os.ReadFile(filepath.Join("..", "..", "directory", "testdata", "queries", "expected.json"))
	if err != nil {
		t.Fatal(err)
	}
	var expected struct {
		Queries []struct{ N, Query string }
	}
	if err := json.Unmarshal(raw, &expected); err != nil || len(expected.Queries) < 10 {
		t.Fatalf("expected.json: %v", err)
	}
	a, b := searchServer(t, plain), searchServer(t, bulk)
	for _, q := range expected.Queries {
		if q.Query == "" {
			continue
		}
		if got, want := a(q.Query), b(q.Query); got != want {
			t.Errorf("query %s answers differently after the bulk load:\nplain %s\nbulk  %s", q.N, got, want)
		}
	}

	// A second bulk load into the now filled store is refused: it would drop a serving store's indexes.
	_, stderr, code := runCLI(t, "directory", "import", "--db", bulk, "--bulk", queryFixture)
	if code != 1 || !strings.Contains(stderr, "not empty") {
		t.Fatalf("bulk load into a filled store: exit %d, %s", code, stderr)
	}
}

// indexNames lists the index names of the database's current schema.
func indexNames(t *testing.T, dsn string) string {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(context.Background(), "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() ORDER BY indexname")
	if err != nil {
		t.Fatal(err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return strings.Join(names, ",")
}

// searchServer serves the directory on dsn in-process and returns a function answering a search query with
// the total and the sorted entry ids.
func searchServer(t *testing.T, dsn string) func(query string) string {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	now := time.Now()
	ca, err := certs.NewTestCA("import test KOMP-CA", certs.KeyBrainpoolP256r1, now.Add(-time.Hour), now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	cert, key, err := ca.Issue(certs.IssueRequest{Profile: certs.IssueProfileFListSigner})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := directory.New(ctx, directory.Config{BaseURL: "http://vzd.test"}, directory.Deps{Store: st, NotFound: notFound,
		ListSigners: []directory.ListSigner{{Alg: certs.AlgBP256R1, Signer: key, Chain: []*certs.Certificate{cert}}}})
	if err != nil {
		t.Fatal(err)
	}
	tok, _, err := srv.Tokens().Issue(directory.TokenSearch, "@t:hs.test", directory.Claims{})
	if err != nil {
		t.Fatal(err)
	}
	h := srv.Handler()
	return func(query string) string {
		path, rawQuery, _ := strings.Cut(query, "?")
		values, err := url.ParseQuery(rawQuery)
		if err != nil {
			t.Fatalf("%s: %v", query, err)
		}
		req := httptest.NewRequest("GET", (&url.URL{Path: "/search/" + path, RawQuery: values.Encode()}).RequestURI(), nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		var bundle struct {
			Total int `json:"total"`
			Entry []struct {
				Resource struct{ ResourceType, ID string } `json:"resource"`
			} `json:"entry"`
		}
		if rec.Code != 200 || json.Unmarshal(rec.Body.Bytes(), &bundle) != nil {
			t.Fatalf("%s: %d %s", query, rec.Code, rec.Body.String())
		}
		var ids []string
		for _, e := range bundle.Entry {
			ids = append(ids, e.Resource.ResourceType+"/"+e.Resource.ID)
		}
		sort.Strings(ids)
		return fmt.Sprintf("total %d: %v", bundle.Total, ids)
	}
}

func TestDirectoryImportBulkNeedsPostgreSQL(t *testing.T) {
	_, stderr, code := runCLI(t, "directory", "import", "--db", "sqlite:"+filepath.Join(t.TempDir(), "d.db"), "--bulk", queryFixture)
	if code != 2 || !strings.Contains(stderr, "PostgreSQL") {
		t.Fatalf("exit %d, %s", code, stderr)
	}
}

func TestMayBeBundle(t *testing.T) {
	for _, tc := range []struct {
		name string
		doc  string
		want bool
	}{
		{"a Bundle", `{"resourceType":"Bundle","entry":[]}`, true},
		{"a resource that names no Bundle", `{"resourceType":"Practitioner","id":"p"}`, false},
		{"a resourceType spelt with an escape may be one", `{"resourceType":"\u0042undle"}`, true},
		{"a resource with the word in a value is decoded to make sure", `{"resourceType":"Organization","name":"Bundle GmbH"}`, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := mayBeBundle([]byte(tc.doc)); got != tc.want {
				t.Errorf("mayBeBundle(%s) = %v, want %v", tc.doc, got, tc.want)
			}
		})
	}
}
