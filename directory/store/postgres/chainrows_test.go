package postgres_test

import (
	"context"
	"testing"

	"github.com/timstack/timstack/directory/store/postgres"
	"github.com/timstack/timstack/directory/store/storetest"
)

// Migration 0004 fills the chain rows of data written before it: run again on a store whose chain rows
// were removed, it must give exactly the rows the store keeps on writes.
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
