package registration

import (
	"context"
	"path/filepath"
	"testing"
	"time"
)

func openTestStore(t *testing.T) Store {
	t.Helper()
	st, err := OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "reg.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func TestSQLiteStoreMigratesOnceAndReopens(t *testing.T) {
	path := filepath.Join(t.TempDir(), "reg.db")
	st, err := OpenSQLite(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.CreateOrganisation(context.Background(), "A", TelematikID{ID: "t1", ProfessionOID: "p"}, []byte("s"), time.Now()); err != nil {
		t.Fatal(err)
	}
	st.Close()
	st, err = OpenSQLite(context.Background(), path)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer st.Close()
	if _, err := st.OrganisationByTelematikID(context.Background(), "t1"); err != nil {
		t.Fatalf("data lost on reopen: %v", err)
	}
}
