package postgres_test

import (
	"context"
	"strings"
	"testing"

	"github.com/timstack/timstack/directory/index"
	"github.com/timstack/timstack/directory/store/storetest"
)

// TestTextWordMigration: migration 7 turns the _text word index of a store written by an older version
// into (word, type, id), also when that store is in the middle of a bulk load (the index is then
// recreated at its end, from the recorded definition), and searches answer as before.
func TestTextWordMigration(t *testing.T) {
	ctx := context.Background()
	const oldDef = `CREATE INDEX idx_text_word ON idx_text (type, word, id)`
	textDef := func(t *testing.T, dsn string) string {
		t.Helper()
		var def string
		if err := connect(t, dsn).QueryRow(ctx, `SELECT coalesce((SELECT pg_get_indexdef(to_regclass('idx_text_word'))), '')`).Scan(&def); err != nil {
			t.Fatal(err)
		}
		return def
	}
	query := index.Query{Type: index.PractitionerRole, Limit: 100, Total: true, Where: index.Text{Words: []string{"a"}}}
	for _, c := range []struct {
		name string
		bulk bool
	}{{"a filled store", false}, {"a store in a bulk load", true}} {
		t.Run(c.name, func(t *testing.T) {
			dsn := pg.DSN(t)
			s := openPG(t, dsn)
			rows := storetest.Synthetic(50, 2)
			for i := range rows {
				rows[i].Rows = append(rows[i].Rows, index.Row{Type: index.TypeText, Value: "alpha" + rows[i].ID})
			}
			if !c.bulk {
				if _, err := s.Put(ctx, rows...); err != nil {
					t.Fatal(err)
				}
			}
			want, err := s.Search(ctx, query)
			if err != nil {
				t.Fatal(err)
			}
			conn := connect(t, dsn)
			for _, q := range []string{`DROP INDEX idx_text_word`, oldDef, `DELETE FROM schema_migrations WHERE version = 7`} {
				if _, err := conn.Exec(ctx, q); err != nil {
					t.Fatal(err)
				}
			}
			if c.bulk {
				if err := s.BeginBulkLoad(ctx); err != nil {
					t.Fatal(err)
				}
				if _, err := s.Put(ctx, rows...); err != nil {
					t.Fatal(err)
				}
			}
			migrated := openPG(t, dsn)
			if c.bulk {
				if def := textDef(t, dsn); def != "" {
					t.Fatalf("the migration built %q during the bulk load", def)
				}
				if err := migrated.EndBulkLoad(ctx); err != nil {
					t.Fatal(err)
				}
				if want, err = migrated.Search(ctx, query); err != nil {
					t.Fatal(err)
				}
			}
			if def := textDef(t, dsn); !strings.HasSuffix(def, "USING btree (word, type, id)") {
				t.Errorf("after the migration: %s", def)
			}
			got, err := migrated.Search(ctx, query)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(got.IDs, ",") != strings.Join(want.IDs, ",") || got.Total != want.Total || got.Total == 0 {
				t.Errorf("after the migration %v (total %d), before %v (total %d)", got.IDs, got.Total, want.IDs, want.Total)
			}
		})
	}
}
