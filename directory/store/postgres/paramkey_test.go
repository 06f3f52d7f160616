package postgres_test

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
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
