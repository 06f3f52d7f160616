package sqlite_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"

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
	storetest.MigrationRefillsChainRows(t, 2, rows,
		func(q string) error { _, err := db.ExecContext(ctx, q); return err },
		func() error {
			s, err := sqlite.Open(ctx, path) // migrates again
			if err != nil {
				return err
			}
			return s.Close()
		})
}
