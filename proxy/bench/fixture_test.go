package bench_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/timstack/timstack/proxy"
	"github.com/timstack/timstack/proxy/bench"
)

// The fixture must give a proxy that becomes ready and forwards to the upstream, or every number the
// harness prints would describe start-up failures.
func TestFixtureConfiguresAReadyProxy(t *testing.T) {
	up := httptest.NewServer(&bench.Upstream{Token: "tok", UserID: "@bench:bench.tim.test"})
	defer up.Close()
	fx, err := bench.WriteProxyFixture(t.TempDir(), "bench.tim.test", up.URL)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := proxy.LoadConfig(fx.ConfigFile)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p, err := proxy.New(ctx, cfg, proxy.Deps{Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	defer func() { cancel(); <-done }()
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := http.Get("http://" + fx.InternalAddr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("proxy not ready: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The known token passes (whoami at the upstream, a decision, the upstream's 200 {}); another token is
	// refused by the proxy after the upstream's whoami said no.
	for token, want := range map[string]int{"tok": http.StatusOK, "other": http.StatusUnauthorized} {
		req, _ := http.NewRequest(http.MethodPut, "http://"+fx.ClientAddr+"/_matrix/client/v3/presence/@bench:bench.tim.test/status",
			strings.NewReader(`{"presence":"online"}`))
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("token %s: status %d, want %d", token, resp.StatusCode, want)
		}
	}
}
