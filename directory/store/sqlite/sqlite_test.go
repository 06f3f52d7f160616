package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/timstack/timstack/directory/store"
	"github.com/timstack/timstack/directory/store/sqlite"
	"github.com/timstack/timstack/directory/store/storetest"
)

func open(t testing.TB) store.Store {
	s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "directory.db"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return open(t) })
}

func TestOpenTwiceMigratesOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "directory.db")
	for i := 0; i < 2; i++ {
		s, err := store.Open(context.Background(), "sqlite:"+path)
		if err != nil {
			t.Fatalf("open %d: %v", i, err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func BenchmarkPutBulk(b *testing.B)           { storetest.BenchPutBulk(b, open) }
func BenchmarkSearchChainedName(b *testing.B) { storetest.BenchSearchChainedName(b, open) }
