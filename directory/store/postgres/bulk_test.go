package postgres_test

import (
	"context"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"github.com/timstack/timstack/directory/index"
	"github.com/timstack/timstack/directory/store"
	"github.com/timstack/timstack/directory/store/postgres"
	"github.com/timstack/timstack/directory/store/storetest"
)

func openPG(t testing.TB, dsn string) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// indexDefs lists the definitions of the index tables' indexes of the database dsn names.
func indexDefs(t *testing.T, dsn string) []string {
	t.Helper()
	ctx := context.Background()
	conn := connect(t, dsn)
	rows, err := conn.Query(ctx, `SELECT indexdef FROM pg_indexes WHERE schemaname = current_schema() AND tablename LIKE 'idx\_%' ORDER BY indexname`)
	if err != nil {
		t.Fatal(err)
	}
	defs, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return defs
}

// autovacuumOptions lists the tables of the database dsn names with their autovacuum_enabled setting
// ("" when they have none).
func autovacuumOptions(t *testing.T, dsn string) map[string]string {
	t.Helper()
	ctx := context.Background()
	conn := connect(t, dsn)
	rows, err := conn.Query(ctx, `SELECT relname, coalesce((SELECT o FROM unnest(reloptions) o WHERE o LIKE 'autovacuum_enabled=%'), '')
FROM pg_class WHERE relnamespace = current_schema()::regnamespace AND relkind = 'r'`)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	var name, opt string
	if _, err := pgx.ForEachRow(rows, []any{&name, &opt}, func() error {
		out[name] = opt
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// The conformance suite run against stores in an unfinished bulk load: without the value indexes every
// search must still give the same answers, only slower.
func TestConformanceDuringBulkLoad(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s, err := postgres.Open(context.Background(), pg.DSN(t))
		if err != nil {
			t.Fatal(err)
		}
		if err := s.BeginBulkLoad(context.Background()); err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestBulkLoad(t *testing.T) {
	ctx := context.Background()
	prac := func(id, name string) index.Resource {
		return index.Resource{Type: index.Practitioner, ID: id, JSON: []byte(`{}`), Rows: []index.Row{
			{Param: "name", Type: index.TypeString, Value: name},
			{Param: "active", Type: index.TypeToken, Code: "true"},
		}}
	}
	nameSearch := func(t *testing.T, s *postgres.Store) index.Result {
		t.Helper()
		res, err := s.Search(ctx, index.Query{Type: index.Practitioner, Limit: 10, Total: true,
			Where: index.And{index.String{Param: "name", Value: "lehm", Mode: index.StringPrefix}, index.Token{Param: "active", AnySystem: true, Code: "true"}}})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	want := index.Result{IDs: []string{"p1", "p3"}, Total: 2}

	t.Run("a load drops the value indexes and its end restores exactly the indexes there were", func(t *testing.T) {
		dsn := pg.DSN(t)
		before := indexDefs(t, dsn)
		s := openPG(t, dsn)
		if err := s.BeginBulkLoad(ctx); err != nil {
			t.Fatal(err)
		}
		during := indexDefs(t, dsn)
		if len(during) >= len(before) {
			t.Fatalf("bulk load kept all %d indexes", len(before))
		}
		if _, err := s.Put(ctx, prac("p1", "lehmann"), prac("p2", "schulz"), prac("p3", "lehmer")); err != nil {
			t.Fatal(err)
		}
		if got := nameSearch(t, s); !cmp.Equal(got, want) {
			t.Errorf("search during the load = %+v, want %+v", got, want)
		}
		if err := s.EndBulkLoad(ctx); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(before, indexDefs(t, dsn)); diff != "" {
			t.Errorf("indexes after the load differ (-before +after):\n%s", diff)
		}
		if got := nameSearch(t, s); !cmp.Equal(got, want) {
			t.Errorf("search after the load = %+v, want %+v", got, want)
		}
		if err := s.EndBulkLoad(ctx); err != nil {
			t.Errorf("a second EndBulkLoad: %v", err)
		}
	})

	t.Run("a load turns autovacuum off for the index tables it does not read and its end turns it back on", func(t *testing.T) {
		dsn := pg.DSN(t)
		s := openPG(t, dsn)
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		// an operator's own setting is left alone
		if _, err := conn.Exec(ctx, `ALTER TABLE idx_geo SET (autovacuum_enabled = true)`); err != nil {
			t.Fatal(err)
		}
		before := autovacuumOptions(t, dsn)
		if err := s.BeginBulkLoad(ctx); err != nil {
			t.Fatal(err)
		}
		during := autovacuumOptions(t, dsn)
		for table, want := range map[string]string{
			"idx_token": "autovacuum_enabled=false", "idx_string": "autovacuum_enabled=false",
			"idx_geo": "autovacuum_enabled=true", "idx_reference": "", "resources": "",
		} {
			if during[table] != want {
				t.Errorf("during the load %s has %q, want %q", table, during[table], want)
			}
		}
		if err := s.EndBulkLoad(ctx); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(before, autovacuumOptions(t, dsn)); diff != "" {
			t.Errorf("autovacuum settings after the load differ (-before +after):\n%s", diff)
		}
	})

	t.Run("a store that holds resources is refused", func(t *testing.T) {
		dsn := pg.DSN(t)
		s := openPG(t, dsn)
		if _, err := s.Put(ctx, prac("p1", "lehmann")); err != nil {
			t.Fatal(err)
		}
		before := indexDefs(t, dsn)
		if err := s.BeginBulkLoad(ctx); !errors.Is(err, postgres.ErrNotEmpty) {
			t.Fatalf("BeginBulkLoad = %v, want ErrNotEmpty", err)
		}
		if diff := cmp.Diff(before, indexDefs(t, dsn)); diff != "" {
			t.Errorf("a refused bulk load changed the indexes:\n%s", diff)
		}
	})

	t.Run("an interrupted load is continued by the next process and finished once", func(t *testing.T) {
		dsn := pg.DSN(t)
		before := indexDefs(t, dsn)
		first := openPG(t, dsn)
		if err := first.BeginBulkLoad(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := first.Put(ctx, prac("p1", "lehmann")); err != nil {
			t.Fatal(err)
		}
		_ = first.Close()
		second := openPG(t, dsn)
		if err := second.BeginBulkLoad(ctx); err != nil {
			t.Fatalf("resuming the load: %v", err)
		}
		if _, err := second.Put(ctx, prac("p2", "schulz"), prac("p3", "lehmer")); err != nil {
			t.Fatal(err)
		}
		if err := second.EndBulkLoad(ctx); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(before, indexDefs(t, dsn)); diff != "" {
			t.Errorf("indexes after the load differ (-before +after):\n%s", diff)
		}
		if got := nameSearch(t, second); !cmp.Equal(got, want) {
			t.Errorf("search after the load = %+v, want %+v", got, want)
		}
	})
}

// chainRows lists the chain rows of the database dsn names (storetest.ChainRowsQuery).
func chainRows(t *testing.T, dsn string) [][]string {
	t.Helper()
	return connChainRows(t, connect(t, dsn))
}

// connChainRows lists the chain rows (storetest.ChainRowsQuery) conn sees.
func connChainRows(t *testing.T, conn *pgx.Conn) [][]string {
	t.Helper()
	r, err := conn.Query(context.Background(), storetest.ChainRowsQuery)
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(r, func(row pgx.CollectableRow) ([]string, error) {
		var a, b, c, d string
		err := row.Scan(&a, &b, &c, &d)
		return []string{a, b, c, d}, err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// connect opens a connection to the database dsn names, closed when t ends.
func connect(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close(ctx) })
	return conn
}

func TestBulkLoadChainRows(t *testing.T) {
	ctx := context.Background()
	t.Run("a bulk load ends with the chain rows a plain import keeps", func(t *testing.T) {
		plainDSN, bulkDSN := pg.DSN(t), pg.DSN(t)
		plain := openPG(t, plainDSN)
		if _, err := plain.Put(ctx, storetest.ChainRowsData()...); err != nil {
			t.Fatal(err)
		}
		bulk := openPG(t, bulkDSN)
		if err := bulk.BeginBulkLoad(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := bulk.Put(ctx, storetest.ChainRowsData()...); err != nil {
			t.Fatal(err)
		}
		if n := len(chainRows(t, bulkDSN)); n != 0 {
			t.Errorf("%d chain rows written during the load, want none (EndBulkLoad computes them)", n)
		}
		if err := bulk.EndBulkLoad(ctx); err != nil {
			t.Fatal(err)
		}
		want := chainRows(t, plainDSN)
		if len(want) < 100 {
			t.Fatalf("only %d chain rows in the plain import", len(want))
		}
		if diff := cmp.Diff(want, chainRows(t, bulkDSN)); diff != "" {
			t.Errorf("chain rows after the bulk load (-plain +bulk):\n%s", diff)
		}
	})
	t.Run("a store opened during another's bulk load keeps chain rows once it has ended", func(t *testing.T) {
		dsn := pg.DSN(t)
		loader := openPG(t, dsn)
		if err := loader.BeginBulkLoad(ctx); err != nil {
			t.Fatal(err)
		}
		other := openPG(t, dsn) // sees the mark
		if err := loader.EndBulkLoad(ctx); err != nil {
			t.Fatal(err)
		}
		prac := index.Resource{Type: index.Practitioner, ID: "p", JSON: []byte(`{}`), Rows: []index.Row{
			{Param: "name", Type: index.TypeString, Value: "lehmann"}, {Param: "active", Type: index.TypeToken, Code: "true"}}}
		role := index.Resource{Type: index.PractitionerRole, ID: "r", JSON: []byte(`{}`), Rows: []index.Row{
			{Param: "practitioner", Type: index.TypeReference, RefType: index.Practitioner, RefID: "p"}}}
		if _, err := other.Put(ctx, prac, role); err != nil {
			t.Fatal(err)
		}
		if n := len(chainRows(t, dsn)); n != 2 {
			t.Errorf("%d chain rows, want 2 (the name and the active marker)", n)
		}
	})
}
