package directory_test

import (
	"context"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/timstack/timstack/directory"
	"github.com/timstack/timstack/directory/index"
	"github.com/timstack/timstack/directory/store/sqlite"
)

// Large batches are prepared on several goroutines; the refusal must still name the first bad resource
// and store nothing, as a resource-by-resource run would.
func TestWriterPutReportsTheFirstInvalidResourceOfALargeBatch(t *testing.T) {
	valid := fixtureDocs(t)
	if len(valid) < 200 {
		t.Fatalf("fixture has %d resources, the test needs a batch that is prepared in parallel", len(valid))
	}
	broken := []byte(`{"resourceType":"Practitioner","id":`)
	for _, tc := range []struct {
		name      string
		badAt     []int
		wantIndex string
	}{
		{"one invalid resource in the second half", []int{150}, "resource 150:"},
		{"two invalid resources: the earlier one is reported", []int{170, 71}, "resource 71:"},
		{"the very first resource invalid", []int{0, 199}, "resource 0:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "w.db"))
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			docs := append([][]byte(nil), valid[:200]...)
			for _, i := range tc.badAt {
				docs[i] = broken
			}
			_, err = (&directory.Writer{Store: st}).Put(context.Background(), docs)
			if err == nil || !strings.HasPrefix(err.Error(), tc.wantIndex) {
				t.Fatalf("Put error = %v, want one starting with %q", err, tc.wantIndex)
			}
			for _, typ := range index.ResourceTypes {
				if n, err := st.Count(context.Background(), typ); err != nil || n != 0 {
					t.Errorf("%s: %d stored (err %v) after a refused batch", typ, n, err)
				}
			}
		})
	}
}

// PrepareBatch and PutPrepared are Put split in two (so an importer can prepare the next batch while one
// is stored): the stored result must be the same, and a batch is stored only once.
func TestPreparedBatchIsStoredLikePutAndOnlyOnce(t *testing.T) {
	ctx := context.Background()
	docs := fixtureDocs(t)
	viaPut, viaPrepared := openSQLite(t, "put.db"), openSQLite(t, "prepared.db")
	if _, err := (&directory.Writer{Store: viaPut}).Put(ctx, docs); err != nil {
		t.Fatal(err)
	}
	w := &directory.Writer{Store: viaPrepared}
	b, err := w.PrepareBatch(docs)
	if err != nil {
		t.Fatal(err)
	}
	if b.Len() != len(docs) {
		t.Fatalf("Len = %d, want %d", b.Len(), len(docs))
	}
	if _, err := w.PutPrepared(ctx, b); err != nil {
		t.Fatal(err)
	}
	if again, err := w.PutPrepared(ctx, b); err != nil || len(again) != 0 {
		t.Fatalf("second PutPrepared = %d resources, %v; want none", len(again), err)
	}
	searchesAgree(t, viaPrepared, "prepared batch", viaPut)
	r, err := viaPrepared.Get(ctx, index.Practitioner, "pr-zz-bulk")
	if err != nil {
		t.Fatal(err)
	}
	if r.VersionID != 1 {
		t.Errorf("versionId = %d after storing the batch once, want 1", r.VersionID)
	}
}

// Prefetch reads the stored resources a batch's roles link to ahead of PutPrepared; a resource changed
// in between must give the role the words of its stored version, as without Prefetch.
func TestPrefetchedLinkedResourcesAreReadAgainWhenChanged(t *testing.T) {
	ctx := context.Background()
	const tag = `"meta":{"tag":[{"system":"https://gematik.de/fhir/directory/CodeSystem/Origin","code":"owner"}]}`
	prac := func(family string) []byte {
		return []byte(`{"resourceType":"Practitioner","id":"pr-prefetch",` + tag + `,"active":true,` +
			`"identifier":[{"system":"https://gematik.de/fhir/sid/telematik-id","value":"1-1arvtst-prefetch1"}],` +
			`"name":[{"text":"Anna ` + family + `","family":"` + family + `","given":["Anna"]}]}`)
	}
	role := []byte(`{"resourceType":"PractitionerRole","id":"role-prefetch",` + tag + `,` +
		`"practitioner":{"reference":"Practitioner/pr-prefetch"}}`)
	for _, tc := range []struct {
		name       string
		changeTo   string // family name written between Prefetch and PutPrepared; "" = none
		want, gone string
	}{
		{"an unchanged practitioner's prefetched words are used", "", "zwischenahn", ""},
		{"a practitioner changed after the prefetch gives its new words", "tegernsee", "tegernsee", "zwischenahn"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "p.db"))
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			w := &directory.Writer{Store: st}
			if _, err := w.Put(ctx, [][]byte{prac("Zwischenahn")}); err != nil {
				t.Fatal(err)
			}
			b, err := w.PrepareBatch([][]byte{role})
			if err != nil {
				t.Fatal(err)
			}
			if err := w.Prefetch(ctx, b); err != nil {
				t.Fatal(err)
			}
			if tc.changeTo != "" {
				if _, err := w.Put(ctx, [][]byte{prac(tc.changeTo)}); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := w.PutPrepared(ctx, b); err != nil {
				t.Fatal(err)
			}
			for word, wantTotal := range map[string]int{tc.want: 1, tc.gone: 0} {
				if word == "" {
					continue
				}
				res, err := st.Search(ctx, index.Query{Type: index.PractitionerRole, Limit: 10, Total: true, Where: index.Text{Words: []string{word}}})
				if err != nil {
					t.Fatal(err)
				}
				if res.Total != wantTotal {
					t.Errorf("_text %q matches %d roles, want %d", word, res.Total, wantTotal)
				}
			}
		})
	}
}

// openSQLite opens a SQLite store in a new file of t's temporary directory, closed when t ends.
func openSQLite(t *testing.T, name string) *sqlite.Store {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), name))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// searchesAgree checks that a few searches the fixture answers give the same result on got (stored
// the way gotName says) as on want (stored by Put).
func searchesAgree(t *testing.T, got *sqlite.Store, gotName string, want *sqlite.Store) {
	t.Helper()
	ctx := context.Background()
	for _, q := range []index.Query{
		{Type: index.PractitionerRole, Limit: 1000, Total: true, Where: index.Text{Words: []string{"berlin"}}},
		{Type: index.HealthcareService, Limit: 1000, Total: true, Where: index.Text{Words: []string{"praxis"}}},
		{Type: index.Practitioner, Limit: 1000, Total: true},
	} {
		w, err := want.Search(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		if w.Total == 0 {
			t.Fatalf("%s search matches nothing in the fixture: the comparison would prove nothing", q.Type)
		}
		g, err := got.Search(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(g, w) {
			t.Errorf("%s search: %s gives %+v, Put gives %+v", q.Type, gotName, g, w)
		}
	}
}
