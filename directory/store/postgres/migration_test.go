package postgres_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/timstack/timstack/directory/index"
	"github.com/timstack/timstack/directory/store/storetest"
)

// indexMigration is a migration that redefines an index, for testIndexMigration.
type indexMigration struct {
	index string   // the index it redefines
	older []string // statements that take a current store back to before the migration
	want  string   // the end of the index's definition after it
	query index.Query
	rows  []index.Resource
	// olderWrites are run in the bulk-load case once the store went back: the older version's writes.
	// wantID is then an id the query must find.
	olderWrites []string
	wantID      string
}

// testIndexMigration takes a store written by the current version back to before the migration m, opens
// it (which migrates) and requires the new index definition and the same search answers as before: on a
// filled store, and on one in the middle of a bulk load, where the index is recreated at the end of the
// load from the recorded definition.
func testIndexMigration(t *testing.T, m indexMigration) {
	ctx := context.Background()
	indexDef := func(t *testing.T, dsn string) string {
		t.Helper()
		var def string
		if err := connect(t, dsn).QueryRow(ctx, `SELECT coalesce((SELECT pg_get_indexdef(to_regclass($1))), '')`, m.index).Scan(&def); err != nil {
			t.Fatal(err)
		}
		return def
	}
	for _, c := range []struct {
		name string
		bulk bool
	}{{"a filled store", false}, {"a store in a bulk load", true}} {
		t.Run(c.name, func(t *testing.T) {
			dsn := pg.DSN(t)
			s := openPG(t, dsn)
			if !c.bulk {
				if _, err := s.Put(ctx, m.rows...); err != nil {
					t.Fatal(err)
				}
			}
			want, err := s.Search(ctx, m.query)
			if err != nil {
				t.Fatal(err)
			}
			conn := connect(t, dsn)
			for _, q := range m.older {
				if _, err := conn.Exec(ctx, q); err != nil {
					t.Fatal(err)
				}
			}
			if c.bulk {
				if err := s.BeginBulkLoad(ctx); err != nil {
					t.Fatal(err)
				}
				for _, q := range m.olderWrites {
					if _, err := conn.Exec(ctx, q); err != nil {
						t.Fatal(err)
					}
				}
			}
			migrated := openPG(t, dsn)
			if c.bulk {
				if def := indexDef(t, dsn); def != "" {
					t.Fatalf("the migration built %q during the bulk load", def)
				}
				if _, err := migrated.Put(ctx, m.rows...); err != nil {
					t.Fatal(err)
				}
				if err := migrated.EndBulkLoad(ctx); err != nil {
					t.Fatal(err)
				}
				if want, err = migrated.Search(ctx, m.query); err != nil {
					t.Fatal(err)
				}
				if m.wantID != "" && !slices.Contains(want.IDs, m.wantID) {
					t.Errorf("%s, written before the migration, is not found: %v", m.wantID, want.IDs)
				}
			}
			if def := indexDef(t, dsn); !strings.HasSuffix(def, m.want) {
				t.Errorf("after the migration: %s", def)
			}
			got, err := migrated.Search(ctx, m.query)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(got.IDs, ",") != strings.Join(want.IDs, ",") || got.Total != want.Total || got.Total == 0 {
				t.Errorf("after the migration %v (total %d), before %v (total %d)", got.IDs, got.Total, want.IDs, want.Total)
			}
		})
	}
}

// Migration 7 turns the _text word index into (word, type, id).
func TestTextWordMigration(t *testing.T) {
	rows := storetest.Synthetic(50, 2)
	for i := range rows {
		rows[i].Rows = append(rows[i].Rows, index.Row{Type: index.TypeText, Value: "alpha" + rows[i].ID})
	}
	testIndexMigration(t, indexMigration{
		index: "idx_text_word",
		older: []string{`DROP INDEX idx_text_word`, `CREATE INDEX idx_text_word ON idx_text (type, word, id)`,
			`DELETE FROM schema_migrations WHERE version = 7`},
		want:  "USING btree (word, type, id)",
		query: index.Query{Type: index.PractitionerRole, Limit: 100, Total: true, Where: index.Text{Words: []string{"a"}}},
		rows:  rows,
	})
}

// Migration 8 gives the string rows their param_key and the value index its new definition.
func TestStringParamKeyMigration(t *testing.T) {
	testIndexMigration(t, indexMigration{
		index: "idx_string_value",
		older: []string{`ALTER TABLE idx_string DROP COLUMN param_key`,
			`CREATE INDEX idx_string_value ON idx_string (param, type, value, id)`,
			`DELETE FROM schema_migrations WHERE version = 8`},
		want:  "USING btree (param_key, value, id)",
		query: index.Query{Type: index.Practitioner, Limit: 100, Total: true, Where: index.String{Param: "name", Value: "a"}},
		rows:  storetest.Synthetic(50, 2),
		olderWrites: []string{ // no param_key
			`INSERT INTO idx_string (type, id, param, value) VALUES ('Practitioner', 'p-old', 'name', 'aaron')`,
			`INSERT INTO resources (type, id, version_id, last_updated, json) VALUES ('Practitioner', 'p-old', 1, now(), '{}')`,
		},
		wantID: "p-old",
	})
}
