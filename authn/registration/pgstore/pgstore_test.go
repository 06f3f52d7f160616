package pgstore_test

import (
	"context"
	"os"
	"testing"

	"github.com/timstack/timstack/authn/registration"
	"github.com/timstack/timstack/authn/registration/pgstore"
	"github.com/timstack/timstack/authn/registration/storetest"
	"github.com/timstack/timstack/directory/store/pgtest"
)

var pg = pgtest.New()

func TestMain(m *testing.M) {
	code := m.Run()
	pg.Close()
	os.Exit(code)
}

func TestPostgresStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) registration.Store {
		st, err := pgstore.Open(context.Background(), pg.DSN(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	})
}

func TestPostgresStoreMigratesOnce(t *testing.T) {
	dsn := pg.DSN(t)
	for range 2 {
		st, err := pgstore.Open(context.Background(), dsn)
		if err != nil {
			t.Fatalf("open: %v", err)
		}
		st.Close()
	}
}
