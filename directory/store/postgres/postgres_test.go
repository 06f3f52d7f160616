package postgres_test

import (
	"context"
	"os"
	"sync"
	"testing"

	"github.com/timstack/timstack/directory/store"
	"github.com/timstack/timstack/directory/store/pgtest"
	"github.com/timstack/timstack/directory/store/postgres"
	"github.com/timstack/timstack/directory/store/storetest"
)

var pg = pgtest.New()

func TestMain(m *testing.M) {
	code := m.Run()
	pg.Close()
	os.Exit(code)
}

func open(t testing.TB) store.Store {
	s, err := postgres.Open(context.Background(), pg.DSN(t))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return open(t) })
}

func TestConcurrentOpensMigrateOnce(t *testing.T) {
	dsn := pg.DSN(t) // already migrated from the template: the migrations must be recognised as applied
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := postgres.Open(context.Background(), dsn)
			if err != nil {
				errs <- err
				return
			}
			errs <- s.Close()
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

func BenchmarkPutBulk(b *testing.B)           { storetest.BenchPutBulk(b, open) }
func BenchmarkSearchChainedName(b *testing.B) { storetest.BenchSearchChainedName(b, open) }
