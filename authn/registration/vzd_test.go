package registration

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/timstack/timstack/directory"
)

func TestDirectoryClientCachesTheProviderTokenAndRenewsItOnce(t *testing.T) {
	e := newEnv(t, "pro")
	secret, err := directory.KVClients{KV: e.dirSt}.Register(context.Background(), "client-cache")
	if err != nil {
		t.Fatal(err)
	}
	var tokenCalls, authCalls, refuseNext atomic.Int32
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasSuffix(r.URL.Path, "/openid-connect/token"):
			tokenCalls.Add(1)
		case r.URL.Path == "/ti-provider-authenticate":
			authCalls.Add(1)
		case refuseNext.CompareAndSwap(1, 0):
			w.WriteHeader(http.StatusUnauthorized) // as if the directory's key had rotated
			return
		}
		e.dirHTTP.Config.Handler.ServeHTTP(w, r)
	}))
	t.Cleanup(proxy.Close)
	c := &DirectoryClient{BaseURL: proxy.URL, ClientID: "client-cache", ClientSecret: secret}
	ctx := context.Background()
	for range 3 {
		if _, err := c.Domains(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if tokenCalls.Load() != 1 || authCalls.Load() != 1 {
		t.Fatalf("token chain ran %d/%d times for three calls, want once", tokenCalls.Load(), authCalls.Load())
	}
	refuseNext.Store(1)
	if _, err := c.Domains(ctx); err != nil {
		t.Fatalf("after a 401: %v", err)
	}
	if tokenCalls.Load() != 2 {
		t.Fatalf("a 401 did not renew the token: %d", tokenCalls.Load())
	}

	bad := &DirectoryClient{BaseURL: proxy.URL, ClientID: "client-cache", ClientSecret: "wrong"}
	_, err = bad.Domains(ctx)
	var de *DirectoryError
	if !errors.As(err, &de) || de.Status != 401 || de.Op != "client credentials" {
		t.Fatalf("wrong secret: %v", err)
	}
	if _, err := c.FederationCheck(ctx); err != nil {
		t.Fatalf("federation check with nothing inactive: %v", err)
	}
	if err := c.DeleteDomain(ctx, "unknown.tim.test"); !errors.As(err, &de) || de.Status != 404 || !strings.Contains(de.Message, "not registered") {
		t.Fatalf("delete unknown: %v", err)
	}
}
