package matrixopenid

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// homeserver is a stub federation API: userinfo answers from a token → sub map and counts its calls.
type homeserver struct {
	srv   *httptest.Server
	calls atomic.Int64
	mu    sync.Mutex
	subs  map[string]string // token → sub
	// status, when non-zero, is answered instead of the map lookup; body replaces the JSON.
	status int
	body   string
	delay  time.Duration
	gate   chan struct{} // when set, requests wait for it
}

func newHomeserver(t testing.TB, tlsServer bool, subs map[string]string) *homeserver {
	t.Helper()
	hs := &homeserver{subs: subs}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/_matrix/federation/v1/openid/userinfo" {
			http.NotFound(w, r)
			return
		}
		hs.calls.Add(1)
		hs.mu.Lock()
		status, body, delay, gate := hs.status, hs.body, hs.delay, hs.gate
		sub, ok := hs.subs[r.URL.Query().Get("access_token")]
		hs.mu.Unlock()
		if gate != nil {
			<-gate
		}
		if delay > 0 {
			select {
			case <-time.After(delay):
			case <-r.Context().Done():
				return
			}
		}
		switch {
		case status != 0:
			w.WriteHeader(status)
			_, _ = w.Write([]byte(body))
		case !ok:
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"errcode":"M_UNKNOWN_TOKEN","error":"Unknown token"}`))
		default:
			_, _ = fmt.Fprintf(w, `{"sub":%q}`, sub)
		}
	})
	if tlsServer {
		hs.srv = httptest.NewTLSServer(h)
	} else {
		hs.srv = httptest.NewServer(h)
	}
	t.Cleanup(hs.srv.Close)
	return hs
}

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func federatedSet(names ...string) func(string) bool {
	m := map[string]bool{}
	for _, n := range names {
		m[n] = true
	}
	return func(s string) bool { return m[s] }
}

// fixedResolver maps server names to the stub's URL and counts its calls.
func fixedResolver(calls *atomic.Int64, m map[string]string) func(context.Context, string) (string, error) {
	return func(_ context.Context, name string) (string, error) {
		calls.Add(1)
		if u, ok := m[name]; ok {
			return u, nil
		}
		return "", fmt.Errorf("%q not in the resolver map", name)
	}
}

func TestValidate(t *testing.T) {
	hs1 := newHomeserver(t, false, map[string]string{
		"tok-alice": "@alice:hs1.test",
		"tok-other": "@mallory:hs2.test",
		"tok-bad":   "alice", // not an MXID
	})
	type want struct {
		mxid  string
		err   error
		calls int64 // userinfo calls made
	}
	tests := []struct {
		name     string
		token    string
		server   string
		wantMXID string
		setup    func(*homeserver)
		want     want
	}{
		{"a token of the user on the server asked is accepted", "tok-alice", "hs1.test", "", nil, want{mxid: "@alice:hs1.test", calls: 1}},
		{"the asserted MXID equal to sub is accepted", "tok-alice", "hs1.test", "@alice:hs1.test", nil, want{mxid: "@alice:hs1.test", calls: 1}},
		{"the server name is compared case-insensitively", "tok-alice", "HS1.test", "", nil, want{mxid: "@alice:hs1.test", calls: 1}},
		{"a sub other than the asserted MXID is refused", "tok-alice", "hs1.test", "@bob:hs1.test", nil, want{err: ErrRefused, calls: 1}},
		{"a sub of another server is refused", "tok-other", "hs1.test", "", nil, want{err: ErrRefused, calls: 1}},
		{"a sub that is no MXID is refused", "tok-bad", "hs1.test", "", nil, want{err: ErrRefused, calls: 1}},
		{"an unknown token (401) is refused", "tok-unknown", "hs1.test", "", nil, want{err: ErrRefused, calls: 1}},
		{"a 403 is a refusal", "tok-alice", "hs1.test", "", func(h *homeserver) { h.status = 403 }, want{err: ErrRefused, calls: 1}},
		{"a server not on the federation list is refused without any call", "tok-alice", "evil.test", "", nil, want{err: ErrNotFederated, calls: 0}},
		{"an empty server name is not federated", "tok-alice", "", "", nil, want{err: ErrNotFederated, calls: 0}},
		{"an asserted MXID on another server is refused without a call", "tok-alice", "hs1.test", "@alice:hs2.test", nil, want{err: ErrRefused, calls: 0}},
		{"an asserted MXID that does not parse is refused without a call", "tok-alice", "hs1.test", "alice", nil, want{err: ErrRefused, calls: 0}},
		{"an empty token is refused without a call", "", "hs1.test", "", nil, want{err: ErrRefused, calls: 0}},
		{"an absurdly long token is refused without a call", strings.Repeat("x", 5000), "hs1.test", "", nil, want{err: ErrRefused, calls: 0}},
		{"a 500 from the homeserver means unavailable", "tok-alice", "hs1.test", "", func(h *homeserver) { h.status = 500 }, want{err: ErrUnavailable, calls: 1}},
		{"a redirect from userinfo is not followed", "tok-alice", "hs1.test", "", func(h *homeserver) { h.status = 302 }, want{err: ErrUnavailable, calls: 1}},
		{"a 200 without sub is refused", "tok-alice", "hs1.test", "", func(h *homeserver) { h.status, h.body = 200, `{"foo":1}` }, want{err: ErrRefused, calls: 1}},
		{"a 200 that is not JSON is refused", "tok-alice", "hs1.test", "", func(h *homeserver) { h.status, h.body = 200, `<html>` }, want{err: ErrRefused, calls: 1}},
		{"an oversized answer is refused", "tok-alice", "hs1.test", "", func(h *homeserver) {
			h.status, h.body = 200, `{"sub":"@alice:hs1.test","pad":"`+strings.Repeat("a", maxUserInfoBytes)+`"}`
		}, want{err: ErrRefused, calls: 1}},
		{"a homeserver slower than the timeout means unavailable", "tok-alice", "hs1.test", "", func(h *homeserver) { h.delay = 2 * time.Second }, want{err: ErrUnavailable, calls: 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			hs1.mu.Lock()
			hs1.status, hs1.body, hs1.delay = 0, "", 0
			if tc.setup != nil {
				tc.setup(hs1)
			}
			hs1.mu.Unlock()
			hs1.calls.Store(0)
			var resolves atomic.Int64
			v, err := NewValidator(Config{
				Federated: federatedSet("hs1.test", "hs2.test"),
				Resolve:   fixedResolver(&resolves, map[string]string{"hs1.test": hs1.srv.URL, "evil.test": hs1.srv.URL}),
				Timeout:   300 * time.Millisecond,
			})
			if err != nil {
				t.Fatal(err)
			}
			got, err := v.Validate(context.Background(), tc.token, tc.server, tc.wantMXID)
			if tc.want.err == nil && err != nil {
				t.Fatalf("Validate: %v", err)
			}
			if tc.want.err != nil && !errors.Is(err, tc.want.err) {
				t.Fatalf("Validate error = %v, want %v", err, tc.want.err)
			}
			if got != tc.want.mxid {
				t.Errorf("mxid = %q, want %q", got, tc.want.mxid)
			}
			if n := hs1.calls.Load(); n != tc.want.calls {
				t.Errorf("userinfo calls = %d, want %d", n, tc.want.calls)
			}
			if tc.want.calls == 0 && resolves.Load() != 0 {
				t.Errorf("resolver called %d times, want none", resolves.Load())
			}
			if err != nil && tc.token != "" && strings.Contains(err.Error(), tc.token) {
				t.Errorf("error %q contains the token", err)
			}
		})
	}
}

func TestHomeserverDown(t *testing.T) {
	hs := newHomeserver(t, false, map[string]string{"tok": "@a:hs1.test"})
	url := hs.srv.URL
	hs.srv.Close()
	v, err := NewValidator(Config{
		Federated: federatedSet("hs1.test"),
		Resolve:   fixedResolver(new(atomic.Int64), map[string]string{"hs1.test": url}),
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = v.Validate(context.Background(), "secret-token-value", "hs1.test", "")
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("err = %v, want ErrUnavailable", err)
	}
	if strings.Contains(err.Error(), "secret-token-value") {
		t.Errorf("error %q contains the token", err)
	}
}

func TestCache(t *testing.T) {
	hs := newHomeserver(t, false, map[string]string{"tok-alice": "@alice:hs1.test"})
	clk := &clock{t: time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)}
	newV := func() *Validator {
		v, err := NewValidator(Config{
			Federated: federatedSet("hs1.test", "hs2.test"),
			Resolve:   fixedResolver(new(atomic.Int64), map[string]string{"hs1.test": hs.srv.URL, "hs2.test": hs.srv.URL}),
			Now:       clk.Now,
		})
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	ctx := context.Background()
	mustValidate := func(v *Validator, wantCalls int64, expiresIn time.Duration) {
		t.Helper()
		if _, err := v.ValidateExpiring(ctx, "tok-alice", "hs1.test", "", expiresIn); err != nil {
			t.Fatal(err)
		}
		if n := hs.calls.Load(); n != wantCalls {
			t.Fatalf("userinfo calls = %d, want %d", n, wantCalls)
		}
	}

	t.Run("a cached answer makes no call until the hour is over", func(t *testing.T) {
		hs.calls.Store(0)
		v := newV()
		mustValidate(v, 1, 0)
		clk.Add(59 * time.Minute)
		mustValidate(v, 1, 0)
		clk.Add(2 * time.Minute)
		mustValidate(v, 2, 0)
	})
	t.Run("a known expires_in shorter than the hour bounds the cache", func(t *testing.T) {
		hs.calls.Store(0)
		v := newV()
		mustValidate(v, 1, 60*time.Second)
		clk.Add(30 * time.Second)
		mustValidate(v, 1, 60*time.Second)
		clk.Add(31 * time.Second)
		mustValidate(v, 2, 60*time.Second)
	})
	t.Run("a cached answer still refuses another asserted MXID", func(t *testing.T) {
		hs.calls.Store(0)
		v := newV()
		mustValidate(v, 1, 0)
		if _, err := v.Validate(ctx, "tok-alice", "hs1.test", "@bob:hs1.test"); !errors.Is(err, ErrRefused) {
			t.Fatalf("err = %v, want ErrRefused", err)
		}
		if n := hs.calls.Load(); n != 1 {
			t.Fatalf("userinfo calls = %d, want 1 (cached)", n)
		}
	})
	t.Run("the same token asked of another server is not answered from the cache", func(t *testing.T) {
		hs.calls.Store(0)
		v := newV()
		mustValidate(v, 1, 0)
		if _, err := v.Validate(ctx, "tok-alice", "hs2.test", ""); !errors.Is(err, ErrRefused) {
			t.Fatalf("err = %v, want ErrRefused (sub is on hs1)", err)
		}
		if n := hs.calls.Load(); n != 2 {
			t.Fatalf("userinfo calls = %d, want 2", n)
		}
	})
	t.Run("refusals are not cached", func(t *testing.T) {
		hs.calls.Store(0)
		v := newV()
		for i := 1; i <= 2; i++ {
			if _, err := v.Validate(ctx, "tok-unknown", "hs1.test", ""); !errors.Is(err, ErrRefused) {
				t.Fatalf("err = %v", err)
			}
			if n := hs.calls.Load(); n != int64(i) {
				t.Fatalf("userinfo calls = %d, want %d", n, i)
			}
		}
	})
	t.Run("the cache stays within MaxCache", func(t *testing.T) {
		subs := map[string]string{}
		for i := range 50 {
			subs[fmt.Sprintf("t%d", i)] = fmt.Sprintf("@u%d:hs1.test", i)
		}
		hs.mu.Lock()
		old := hs.subs
		hs.subs = subs
		hs.mu.Unlock()
		defer func() { hs.mu.Lock(); hs.subs = old; hs.mu.Unlock() }()
		v, err := NewValidator(Config{Federated: federatedSet("hs1.test"), MaxCache: 10, Now: clk.Now, MaxLookupsPerSecond: -1,
			Resolve: fixedResolver(new(atomic.Int64), map[string]string{"hs1.test": hs.srv.URL})})
		if err != nil {
			t.Fatal(err)
		}
		for i := range 50 {
			if _, err := v.Validate(ctx, fmt.Sprintf("t%d", i), "hs1.test", ""); err != nil {
				t.Fatal(err)
			}
		}
		v.mu.Lock()
		n := len(v.tokens)
		v.mu.Unlock()
		if n > 10 {
			t.Fatalf("cache holds %d entries, want ≤ 10", n)
		}
	})
}

func TestSingleFlight(t *testing.T) {
	hs := newHomeserver(t, false, map[string]string{"tok": "@alice:hs1.test"})
	gate := make(chan struct{})
	hs.gate = gate
	v, err := NewValidator(Config{
		Federated: federatedSet("hs1.test"),
		Resolve:   fixedResolver(new(atomic.Int64), map[string]string{"hs1.test": hs.srv.URL}),
	})
	if err != nil {
		t.Fatal(err)
	}
	const n = 20
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mxid, err := v.Validate(context.Background(), "tok", "hs1.test", "@alice:hs1.test")
			if err == nil && mxid != "@alice:hs1.test" {
				err = fmt.Errorf("mxid %q", mxid)
			}
			errs <- err
		}()
	}
	// Wait until the one lookup is parked at the homeserver, then let it answer.
	deadline := time.Now().Add(5 * time.Second)
	for hs.calls.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond) // give the other goroutines time to join
	close(gate)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if c := hs.calls.Load(); c != 1 {
		t.Fatalf("userinfo calls = %d, want 1 for %d concurrent validations", c, n)
	}
}

func TestCancelledCallerDoesNotFailOthers(t *testing.T) {
	hs := newHomeserver(t, false, map[string]string{"tok": "@alice:hs1.test"})
	gate := make(chan struct{})
	hs.gate = gate
	v, err := NewValidator(Config{
		Federated: federatedSet("hs1.test"),
		Resolve:   fixedResolver(new(atomic.Int64), map[string]string{"hs1.test": hs.srv.URL}),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	first := make(chan error, 1)
	go func() { _, err := v.Validate(ctx, "tok", "hs1.test", ""); first <- err }()
	for hs.calls.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	second := make(chan error, 1)
	go func() { _, err := v.Validate(context.Background(), "tok", "hs1.test", ""); second <- err }()
	cancel()
	if err := <-first; !errors.Is(err, ErrUnavailable) || !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled caller: err = %v", err)
	}
	close(gate)
	if err := <-second; err != nil {
		t.Fatalf("second caller: %v", err)
	}
}

// tlsNet routes https://name:port to test servers, so the real .well-known resolution runs over TLS.
type tlsNet struct {
	routes map[string]string // "host:port" → listener address
	dials  sync.Map          // "host:port" → *atomic.Int64
}

func (n *tlsNet) client(t *testing.T, srv *httptest.Server) *http.Client {
	t.Helper()
	pool := srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
	return &http.Client{Transport: &http.Transport{
		// The httptest certificate names example.com; every stub host presents it.
		TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "example.com"},
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, _ := n.dials.LoadOrStore(addr, new(atomic.Int64))
			c.(*atomic.Int64).Add(1)
			to, ok := n.routes[addr]
			if !ok {
				return nil, fmt.Errorf("no route to %s", addr)
			}
			var d net.Dialer
			return d.DialContext(ctx, network, to)
		},
	}}
}

func (n *tlsNet) dialed(addr string) int64 {
	c, ok := n.dials.Load(addr)
	if !ok {
		return 0
	}
	return c.(*atomic.Int64).Load()
}

func TestWellKnownResolution(t *testing.T) {
	hs := newHomeserver(t, true, map[string]string{
		"tok1": "@alice:hs1.test", "tok1b": "@bob:hs1.test",
		"tok2": "@alice:hs2.test", "tok3": "@alice:hs3.test", "tok4": "@alice:hs4.test:8443",
		"tok5": "@alice:hs5.test", "tok6": "@alice:hs6.test",
	})
	var wkCalls sync.Map
	wk := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := r.Host
		c, _ := wkCalls.LoadOrStore(host, new(atomic.Int64))
		c.(*atomic.Int64).Add(1)
		switch host {
		case "hs1.test":
			_, _ = w.Write([]byte(`{"m.server":"fed.hs1.test:9448"}`))
		case "hs2.test":
			_, _ = w.Write([]byte(`{"m.server":"fed.hs2.test"}`))
		case "hs5.test":
			http.Redirect(w, r, "https://internal.evil/.well-known/matrix/server", http.StatusFound)
		case "hs6.test":
			http.Redirect(w, r, "https://hs1.test/.well-known/matrix/server", http.StatusFound)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(wk.Close)
	hsAddr, wkAddr := hs.srv.Listener.Addr().String(), wk.Listener.Addr().String()
	n := &tlsNet{routes: map[string]string{
		"hs1.test:443": wkAddr, "hs2.test:443": wkAddr, "hs3.test:443": wkAddr, "hs5.test:443": wkAddr,
		"hs6.test:443": wkAddr, "internal.evil:443": wkAddr,
		"fed.hs1.test:9448": hsAddr, // explicit delegated port
		"fed.hs2.test:8448": hsAddr, // delegated host without port: Matrix default 8448
		"hs3.test:8448":     hsAddr, // no .well-known: the server name on 8448
		"hs4.test:8443":     hsAddr, // explicit port in the server name: no .well-known
		"hs5.test:8448":     hsAddr, // redirect to an unlisted host refused: fallback
		"fed.hs1.test:443":  hsAddr,
	}}
	clk := &clock{t: time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)}
	v, err := NewValidator(Config{
		Federated:  federatedSet("hs1.test", "hs2.test", "hs3.test", "hs4.test:8443", "hs5.test", "hs6.test"),
		HTTPClient: n.client(t, hs.srv),
		Now:        clk.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	tests := []struct {
		name, token, server, dialAddr string
	}{
		{"m.server with a port is used as is", "tok1", "hs1.test", "fed.hs1.test:9448"},
		{"m.server without a port means 8448", "tok2", "hs2.test", "fed.hs2.test:8448"},
		{"a missing .well-known means the server name on 8448", "tok3", "hs3.test", "hs3.test:8448"},
		{"a server name with a port skips .well-known", "tok4", "hs4.test:8443", "hs4.test:8443"},
		{"a .well-known redirect to an unlisted host is not followed", "tok5", "hs5.test", "hs5.test:8448"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			mxid, err := v.Validate(ctx, tc.token, tc.server, "")
			if err != nil {
				t.Fatal(err)
			}
			if _, s, _ := ParseMXID(mxid); s != tc.server {
				t.Fatalf("mxid %q", mxid)
			}
			if n.dialed(tc.dialAddr) == 0 {
				t.Fatalf("%s was never dialled", tc.dialAddr)
			}
		})
	}
	if n.dialed("internal.evil:443") != 0 {
		t.Error("the redirect to an unlisted host was followed")
	}
	if n.dialed("hs4.test:443") != 0 {
		t.Error(".well-known was fetched for a server name with a port")
	}
	t.Run("a redirect to a listed host is followed", func(t *testing.T) {
		// hs6's .well-known redirects to hs1's (fed.hs1.test:9448); hs6.test:8448 has no route, so
		// success means the redirect was followed.
		if _, err := v.Validate(ctx, "tok6", "hs6.test", ""); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("the resolution is cached for 24 hours", func(t *testing.T) {
		c, _ := wkCalls.Load("hs1.test")
		before := c.(*atomic.Int64).Load()
		if _, err := v.Validate(ctx, "tok1b", "hs1.test", ""); err != nil {
			t.Fatal(err)
		}
		if got := c.(*atomic.Int64).Load(); got != before {
			t.Fatalf(".well-known fetched again within 24 h (%d → %d)", before, got)
		}
		clk.Add(25 * time.Hour)
		if _, err := v.Validate(ctx, "tok1b", "hs1.test", ""); err != nil {
			t.Fatal(err)
		}
		if got := c.(*atomic.Int64).Load(); got != before+1 {
			t.Fatalf(".well-known fetched %d times after 25 h, want %d", got, before+1)
		}
	})
	t.Run("with AllowHost only the registered delegation hosts are contacted", func(t *testing.T) {
		allowed := map[string][]string{"hs1.test": {"fed.hs1.test"}}
		va, err := NewValidator(Config{
			Federated:  federatedSet("hs1.test", "hs2.test", "hs6.test"),
			HTTPClient: n.client(t, hs.srv),
			AllowHost: func(server, host string) bool {
				for _, h := range allowed[server] {
					if h == host {
						return true
					}
				}
				return false
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := va.Validate(ctx, "tok1", "hs1.test", ""); err != nil {
			t.Fatalf("registered delegation: %v", err)
		}
		before := n.dialed("fed.hs2.test:8448")
		if _, err := va.Validate(ctx, "tok2", "hs2.test", ""); !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "not allowed") {
			t.Fatalf("unregistered delegation: err = %v, want ErrUnavailable (not allowed)", err)
		}
		if n.dialed("fed.hs2.test:8448") != before {
			t.Error("the unregistered delegation host was contacted")
		}
		// hs6 redirects to hs1.test, which is federated but not registered for hs6: the redirect is not
		// followed, and the fallback hs6.test:8448 has no route.
		if _, err := va.Validate(ctx, "tok6", "hs6.test", ""); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("redirect to an unregistered host: err = %v, want ErrUnavailable", err)
		}
	})
	t.Run("DefaultPort 443 mimics the VZD", func(t *testing.T) {
		v443, err := NewValidator(Config{Federated: federatedSet("hs1.test"), HTTPClient: n.client(t, hs.srv), DefaultPort: 443})
		if err != nil {
			t.Fatal(err)
		}
		// fed.hs1.test:9448 keeps its explicit port; only portless names take the default.
		if got := v443.hostURL("fed.hs1.test", 0); got != "https://fed.hs1.test:443" {
			t.Fatalf("hostURL = %q", got)
		}
	})
}

func TestNewValidatorRequiresFederationGate(t *testing.T) {
	if _, err := NewValidator(Config{}); err == nil {
		t.Fatal("a Validator without Federated was built")
	}
}

func TestRateLimitPerServer(t *testing.T) {
	subs := map[string]string{}
	for i := range 10 {
		subs[fmt.Sprintf("t%d", i)] = fmt.Sprintf("@u%d:hs1.test", i)
		subs[fmt.Sprintf("h2-%d", i)] = fmt.Sprintf("@u%d:hs2.test", i)
	}
	hs := newHomeserver(t, false, subs)
	clk := &clock{t: time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)}
	v, err := NewValidator(Config{
		Federated:           federatedSet("hs1.test", "hs2.test"),
		Resolve:             fixedResolver(new(atomic.Int64), map[string]string{"hs1.test": hs.srv.URL, "hs2.test": hs.srv.URL}),
		Now:                 clk.Now,
		MaxLookupsPerSecond: 1, // burst 2
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i, want := range []error{nil, nil, ErrUnavailable} {
		if _, err := v.Validate(ctx, fmt.Sprintf("t%d", i), "hs1.test", ""); !errors.Is(err, want) && !(want == nil && err == nil) {
			t.Fatalf("lookup %d: err = %v, want %v", i, err, want)
		}
	}
	if n := hs.calls.Load(); n != 2 {
		t.Fatalf("userinfo calls = %d, want 2 (the limited lookup makes none)", n)
	}
	t.Run("a cached token is answered while the server is limited", func(t *testing.T) {
		if _, err := v.Validate(ctx, "t0", "hs1.test", ""); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("another server has its own budget", func(t *testing.T) {
		if _, err := v.Validate(ctx, "h2-0", "hs2.test", ""); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("the budget refills with time", func(t *testing.T) {
		clk.Add(time.Second)
		if _, err := v.Validate(ctx, "t5", "hs1.test", ""); err != nil {
			t.Fatal(err)
		}
	})
}

func TestConcurrentLookupsShareOneWellKnownFetch(t *testing.T) {
	subs := map[string]string{}
	for i := range 8 {
		subs[fmt.Sprintf("t%d", i)] = fmt.Sprintf("@u%d:hs7.test", i)
	}
	hs := newHomeserver(t, true, subs)
	var fetches atomic.Int64
	gate := make(chan struct{})
	wk := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		<-gate
		_, _ = w.Write([]byte(`{"m.server":"fed.hs7.test:443"}`))
	}))
	t.Cleanup(wk.Close)
	n := &tlsNet{routes: map[string]string{"hs7.test:443": wk.Listener.Addr().String(), "fed.hs7.test:443": hs.srv.Listener.Addr().String()}}
	v, err := NewValidator(Config{Federated: federatedSet("hs7.test"), HTTPClient: n.client(t, hs.srv)})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, len(subs))
	for tok := range subs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := v.Validate(context.Background(), tok, "hs7.test", "")
			errs <- err
		}()
	}
	for fetches.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond)
	close(gate)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if f := fetches.Load(); f != 1 {
		t.Fatalf(".well-known fetched %d times for %d concurrent lookups, want 1", f, len(subs))
	}
	if c := hs.calls.Load(); c != int64(len(subs)) {
		t.Fatalf("userinfo calls = %d, want %d", c, len(subs))
	}
}
