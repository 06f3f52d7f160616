package registration

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/timstack/timstack/proxy/flist"
)

// The Messenger-Proxy's own source reads I_internVerification as this service serves it.
func TestProxyRegServiceSourceReadsTheBackend(t *testing.T) {
	e := newEnv(t, "pro")
	ctx := context.Background()
	e.svc.deps.ProxyTokens = []string{"proxy-token"}
	src := &flist.RegServiceSource{URL: e.http.URL + "/backend/federation", BearerToken: "proxy-token"}

	if _, _, err := src.Fetch(ctx, -1); !isStatus(err, 503) {
		t.Fatalf("before the first list: %v, want 503", err)
	}
	if err := e.svc.Keeper().Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	jws, current, err := src.Fetch(ctx, -1)
	if err != nil || current || !bytes.Equal(jws, e.directoryList()) {
		t.Fatalf("first fetch: current %v, err %v, same bytes %v", current, err, bytes.Equal(jws, e.directoryList()))
	}
	st, _ := e.st.FederationList(ctx)
	if _, current, err := src.Fetch(ctx, st.Version); err != nil || !current {
		t.Fatalf("current version: %v %v", current, err)
	}
	e.clock.Add(73 * time.Hour)
	if _, current, err := src.Fetch(ctx, st.Version); !isStatus(err, 503) || current {
		t.Fatalf("outdated: current %v, err %v: the proxy must not count this as contact", current, err)
	}
	src.BearerToken = "wrong"
	if _, _, err := src.Fetch(ctx, -1); !isStatus(err, 401) {
		t.Fatalf("wrong proxy token: %v", err)
	}
}

func isStatus(err error, code int) bool {
	var se *flist.StatusError
	return errors.As(err, &se) && se.Code == code
}
