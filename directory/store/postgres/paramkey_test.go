package postgres_test

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/timstack/timstack/directory/index"
	"github.com/timstack/timstack/directory/store/internal/core"
	"github.com/timstack/timstack/directory/store/storetest"
)

// Every string row the store holds carries the param_key of its (param, type), whichever way it was
// written: COPY (large batches), INSERT (small ones), the chain rows' SQL, or migration 0008's SQL.
func TestStringRowsCarryTheirParamKey(t *testing.T) {
	ctx := context.Background()
	dsn := pg.DSN(t)
	s := openPG(t, dsn)
	if _, err := s.Put(ctx, storetest.ChainRowsData()...); err != nil { // one large batch: COPY
		t.Fatal(err)
	}
	small := storetest.Synthetic(3, 9)
	for i := range small {
		small[i].ID = "small-" + small[i].ID
	}
	if _, err := s.Put(ctx, small...); err != nil { // INSERT
		t.Fatal(err)
	}
	conn := connect(t, dsn)
	type group struct {
		typ, param string
		key, n     int32
	}
	rows, err := conn.Query(ctx, `SELECT type, param, param_key, count(*)::int4 FROM idx_string GROUP BY 1, 2, 3`)
	if err != nil {
		t.Fatal(err)
	}
	var groups []group
	var g group
	if _, err := pgx.ForEachRow(rows, []any{&g.typ, &g.param, &g.key, &g.n}, func() error {
		groups = append(groups, g)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	pairs, chain := 0, 0
	for _, g := range groups {
		pairs++
		if strings.Contains(g.param, ".") {
			chain++
		}
		if want := core.ParamKey(g.typ, g.param); g.key != want {
			t.Errorf("%d string rows of %s.%s have param_key %d, want %d", g.n, g.typ, g.param, g.key, want)
		}
		var sqlKey int32
		if err := conn.QueryRow(ctx, `SELECT `+core.ParamKeySQL("$1::text", "$2::text"), g.typ, g.param).Scan(&sqlKey); err != nil {
			t.Fatal(err)
		}
		if sqlKey != g.key {
			t.Errorf("ParamKeySQL(%s, %s) = %d, ParamKey = %d", g.typ, g.param, sqlKey, g.key)
		}
	}
	if pairs < 10 || chain == 0 {
		t.Fatalf("only %d (param, type) pairs, %d of chain rows: the data did not reach every path", pairs, chain)
	}
}

// TestStringParamKeyMigration: migration 8 gives the string rows of a store written by an older version
// their param_key and the value index its new definition, also when that store is in the middle of a
// bulk load (the index is then recreated at its end, from the recorded definition), and searches answer
// as before.
func TestStringParamKeyMigration(t *testing.T) {
	ctx := context.Background()
	indexDef := func(t *testing.T, dsn string) string {
		t.Helper()
		var def string
		if err := connect(t, dsn).QueryRow(ctx, `SELECT coalesce((SELECT pg_get_indexdef(to_regclass('idx_string_value'))), '')`).Scan(&def); err != nil {
			t.Fatal(err)
		}
		return def
	}
	query := index.Query{Type: index.Practitioner, Limit: 100, Total: true, Where: index.String{Param: "name", Value: "a"}}
	for _, c := range []struct {
		name string
		bulk bool
	}{{"a filled store", false}, {"a store in a bulk load", true}} {
		t.Run(c.name, func(t *testing.T) {
			dsn := pg.DSN(t)
			s := openPG(t, dsn)
			rows := storetest.Synthetic(50, 2)
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
			old := []string{`ALTER TABLE idx_string DROP COLUMN param_key`,
				`CREATE INDEX idx_string_value ON idx_string (param, type, value, id)`,
				`DELETE FROM schema_migrations WHERE version = 8`}
			for _, q := range old {
				if _, err := conn.Exec(ctx, q); err != nil {
					t.Fatal(err)
				}
			}
			if c.bulk {
				if err := s.BeginBulkLoad(ctx); err != nil {
					t.Fatal(err)
				}
				// the older version's writes: no param_key
				if _, err := conn.Exec(ctx, `INSERT INTO idx_string (type, id, param, value) VALUES ('Practitioner', 'p-old', 'name', 'aaron')`); err != nil {
					t.Fatal(err)
				}
				if _, err := conn.Exec(ctx, `INSERT INTO resources (type, id, version_id, last_updated, json) VALUES ('Practitioner', 'p-old', 1, now(), '{}')`); err != nil {
					t.Fatal(err)
				}
			}
			migrated := openPG(t, dsn)
			if c.bulk {
				if def := indexDef(t, dsn); def != "" {
					t.Fatalf("the migration built %q during the bulk load", def)
				}
				if _, err := migrated.Put(ctx, rows...); err != nil {
					t.Fatal(err)
				}
				if err := migrated.EndBulkLoad(ctx); err != nil {
					t.Fatal(err)
				}
				if want, err = s.Search(ctx, query); err != nil {
					t.Fatal(err)
				}
				if !containsID(want.IDs, "p-old") {
					t.Errorf("the row written before the migration is not found: %v", want.IDs)
				}
			}
			if def := indexDef(t, dsn); !strings.HasSuffix(def, "USING btree (param_key, value, id)") {
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

func containsID(ids []string, id string) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}
