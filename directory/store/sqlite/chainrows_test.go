package sqlite_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/timstack/timstack/directory/store/sqlite"
	"github.com/timstack/timstack/directory/store/storetest"
)

// Migration 0002 fills the chain rows of data written before it: run again on a store whose chain rows
// were removed, it must give exactly the rows the store keeps on writes.
func TestChainRowsMigrationFillsWhatWritesKeep(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "directory.db")
	s, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(ctx, storetest.ChainRowsData()...); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows := func() [][]string {
		t.Helper()
		r, err := db.QueryContext(ctx, storetest.ChainRowsQuery)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		var out [][]string
		for r.Next() {
			var a, b, c, d string
			if err := r.Scan(&a, &b, &c, &d); err != nil {
				t.Fatal(err)
			}
			out = append(out, []string{a, b, c, d})
		}
		if err := r.Err(); err != nil {
			t.Fatal(err)
		}
		return out
	}
	kept := rows()
	if len(kept) < 100 {
		t.Fatalf("only %d chain rows after the writes", len(kept))
	}
	for _, q := range []string{
		`DELETE FROM idx_string WHERE param LIKE '%.%'`,
		`DELETE FROM idx_token WHERE param LIKE '%.%'`,
		`DELETE FROM schema_migrations WHERE version = 2`,
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(rows()); n != 0 {
		t.Fatalf("%d chain rows left", n)
	}
	s, err = sqlite.Open(ctx, path) // migrates again
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(kept, rows()); diff != "" {
		t.Errorf("chain rows filled by the migration differ from the kept ones (-kept +migrated):\n%s", diff)
	}
}
