package registration_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/timstack/timstack/authn/registration"
	"github.com/timstack/timstack/authn/registration/storetest"
)

func TestSQLiteStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) registration.Store {
		st, err := registration.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "reg.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	})
}
