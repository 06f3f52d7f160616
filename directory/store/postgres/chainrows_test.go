package postgres_test

import (
	"context"
	"testing"

	"github.com/timstack/timstack/directory/store/postgres"
	"github.com/timstack/timstack/directory/store/storetest"
)

// Migration 0004 fills the chain rows of data written before it: run again on a store whose chain rows
// were removed, it must give exactly the rows the store keeps on writes (and 0008 their param_key).
func TestChainRowsMigrationFillsWhatWritesKeep(t *testing.T) {
	ctx := context.Background()
	dsn := pg.DSN(t)
	s, err := postgres.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(ctx, storetest.ChainRowsData()...); err != nil {
		t.Fatal(err)
	}
	s.Close()
	conn := connect(t, dsn)
	// Migration 0004 ran on stores without param_key (0008 added it): take the store back there, so that
	// 0004 and then 0008 run again.
	for _, q := range []string{
		`ALTER TABLE idx_string DROP COLUMN param_key`,
		`CREATE INDEX idx_string_value ON idx_string (param, type, value, id)`,
		`DELETE FROM schema_migrations WHERE version = 8`,
	} {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	rows := func() [][]string { return connChainRows(t, conn) }
	storetest.MigrationRefillsChainRows(t, 4, rows,
		func(q string) error { _, err := conn.Exec(ctx, q); return err },
		func() error {
			s, err := postgres.Open(ctx, dsn) // migrates again
			if err == nil {
				s.Close()
			}
			return err
		})
}
