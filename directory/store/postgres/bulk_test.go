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

// autovacuumOptions lists the tables of the database dsn names with their autovacuum settings, sorted and
// comma-separated ("" when they have none).
func autovacuumOptions(t *testing.T, dsn string) map[string]string {
	t.Helper()
	ctx := context.Background()
	conn := connect(t, dsn)
	rows, err := conn.Query(ctx, `SELECT relname, coalesce((SELECT string_agg(o, ',' ORDER BY o) FROM unnest(reloptions) o WHERE o LIKE 'autovacuum%'), '')
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

	t.Run("a load turns autovacuum off for the index tables it does not read, insert vacuums for the others, and its end turns them back on", func(t *testing.T) {
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
			"idx_geo":       "autovacuum_enabled=true",
			"idx_reference": "autovacuum_vacuum_insert_threshold=-1", "resources": "autovacuum_vacuum_insert_threshold=-1",
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
	var targets, roots, dangling []index.Resource
	for _, r := range storetest.ChainRowsData() {
		switch {
		case r.ID == "r-dangling":
			dangling = append(dangling, r)
		case r.Type == index.PractitionerRole || r.Type == index.HealthcareService:
			roots = append(roots, r)
		default:
			targets = append(targets, r)
		}
	}
	var firstPractitioner string
	for _, r := range targets {
		if r.Type == index.Practitioner {
			firstPractitioner = r.ID
			break
		}
	}
	put := func(rs ...[]index.Resource) func(context.Context, *postgres.Store) error {
		return func(ctx context.Context, s *postgres.Store) error {
			for _, batch := range rs {
				if _, err := s.Put(ctx, batch...); err != nil {
					return err
				}
			}
			return nil
		}
	}
	all := append(append(append([]index.Resource(nil), targets...), roots...), dangling...)
	// the first ten targets again, renamed and with active flipped
	var changed []index.Resource
	for _, r := range targets[:10] {
		c := r
		c.Rows = nil
		for _, row := range r.Rows {
			switch {
			case row.Type == index.TypeString:
				row.Value = "renamed" + row.Value
			case row.Param == "active":
				row.Code = map[string]string{"true": "false", "false": "true"}[row.Code]
			}
			c.Rows = append(c.Rows, row)
		}
		changed = append(changed, c)
	}
	for _, c := range []struct {
		name  string
		write func(context.Context, *postgres.Store) error
		stale bool // EndBulkLoad has to recompute the chain rows
	}{
		{"targets before their roots: the load's writes keep the chain rows", put(targets, roots), false},
		{"targets and roots in one write", put(append(append([]index.Resource(nil), roots...), targets...)), false},
		{"targets changed before their roots are written are recomputed at the end", put(targets, changed, roots), true},
		{"roots before their targets are recomputed at the end", put(roots, targets), true},
		{"a root linking to a target never stored is recomputed at the end", put(all), true},
		{"targets written again after their roots are recomputed at the end", put(targets, roots, targets[:10]), true},
		{"a target deleted after its roots is recomputed at the end", func(ctx context.Context, s *postgres.Store) error {
			if err := put(targets, roots)(ctx, s); err != nil {
				return err
			}
			return s.Delete(ctx, index.Practitioner, firstPractitioner)
		}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			plainDSN, bulkDSN := pg.DSN(t), pg.DSN(t)
			if err := c.write(ctx, openPG(t, plainDSN)); err != nil {
				t.Fatal(err)
			}
			want := chainRows(t, plainDSN)
			if len(want) < 100 {
				t.Fatalf("only %d chain rows in the plain import", len(want))
			}
			bulk := openPG(t, bulkDSN)
			if err := bulk.BeginBulkLoad(ctx); err != nil {
				t.Fatal(err)
			}
			if err := c.write(ctx, bulk); err != nil {
				t.Fatal(err)
			}
			var stale bool
			if err := connect(t, bulkDSN).QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM kv WHERE key LIKE '%chain-rows-stale')`).Scan(&stale); err != nil {
				t.Fatal(err)
			}
			if stale != c.stale {
				t.Errorf("chain rows marked stale: %v, want %v", stale, c.stale)
			}
			if !c.stale {
				if diff := cmp.Diff(want, chainRows(t, bulkDSN)); diff != "" {
					t.Errorf("chain rows written during the load (-plain +bulk):\n%s", diff)
				}
			}
			if err := bulk.EndBulkLoad(ctx); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, chainRows(t, bulkDSN)); diff != "" {
				t.Errorf("chain rows after the bulk load (-plain +bulk):\n%s", diff)
			}
		})
	}
	t.Run("a load resumed by another process reads the targets written before from the database", func(t *testing.T) {
		plainDSN, bulkDSN := pg.DSN(t), pg.DSN(t)
		if err := put(targets, roots)(ctx, openPG(t, plainDSN)); err != nil {
			t.Fatal(err)
		}
		first := openPG(t, bulkDSN)
		if err := first.BeginBulkLoad(ctx); err != nil {
			t.Fatal(err)
		}
		if err := put(targets)(ctx, first); err != nil {
			t.Fatal(err)
		}
		resumed := openPG(t, bulkDSN) // remembers nothing of first's writes
		if err := put(roots)(ctx, resumed); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(chainRows(t, plainDSN), chainRows(t, bulkDSN)); diff != "" {
			t.Errorf("chain rows written during the load (-plain +bulk):\n%s", diff)
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
