package proxy

// Benchmarks of the proxy's own hot paths, run by make bench-proxy next to the load-generator numbers:
// the access-token cache hit, decide() answered from the decision cache (and missing it), and the whole
// client flow for a forwarded GET and a decided PUT against a trivial in-process upstream, each next to a
// bare httputil.ReverseProxy doing the same hop. cpu-ns/op is the process's CPU time per operation (GC and
// the in-process upstream included), which a shared machine does not inflate the way it inflates ns/op.

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/timstack/timstack/certs"
	"github.com/timstack/timstack/policy"
	"github.com/timstack/timstack/proxy/appservice"
)

const (
	benchToken = "bench-token"
	benchUser  = "@bench:hs1.tim.test"
)

// benchUpstream is the trivial homeserver: whoami for benchToken, 200 {} for everything else. Unlike
// proxytest.Upstream it records nothing, so millions of iterations do not grow memory.
func benchUpstream(tb testing.TB) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		if strings.HasSuffix(r.URL.Path, "/account/whoami") {
			if r.Header.Get("Authorization") != "Bearer "+benchToken {
				w.WriteHeader(http.StatusUnauthorized)
				_, _ = w.Write([]byte(`{"errcode":"M_UNKNOWN_TOKEN"}`))
				return
			}
			_, _ = w.Write([]byte(`{"user_id":"` + benchUser + `","device_id":"DEV"}`))
			return
		}
		_, _ = w.Write([]byte(`{}`))
	}))
	tb.Cleanup(srv.Close)
	return srv
}

// newBenchProxy is newTestEnv's proxy for benchmarks: same PKI and federation list, the trivial upstream,
// and a decision log that is encoded (as in production) but not stored.
func newBenchProxy(tb testing.TB, upstream string) *Proxy {
	tb.Helper()
	pki, err := testPKI()
	if err != nil {
		tb.Fatal(err)
	}
	dir := tb.TempDir()
	write := func(name string, b []byte) string {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(path, b, 0o600); err != nil {
			tb.Fatal(err)
		}
		return path
	}
	reg, err := appservice.NewRegistration("hs1.tim.test", "http://127.0.0.1:1")
	if err != nil {
		tb.Fatal(err)
	}
	regYAML, _ := reg.YAML()
	jws, err := certs.SignFederationList(pki.signerKey, certs.AlgBP256R1, []*certs.Certificate{pki.signer}, 1, testDomains)
	if err != nil {
		tb.Fatal(err)
	}
	tlsKeyPEM, _ := certs.MarshalPrivateKeyPEM(pki.tlsKey)
	cfg := &Config{
		ServerName: "hs1.tim.test", Variant: "pro",
		Listen: ListenConfig{Client: "127.0.0.1:0", Federation: "127.0.0.1:0", Forward: "127.0.0.1:0", Internal: "127.0.0.1:0",
			FederationTLS: TLSConfig{CertFile: write("tls/cert.pem", pki.tlsCert.EncodePEM()), KeyFile: write("tls/key.pem", tlsKeyPEM)}},
		Homeserver:     HomeserverConfig{URL: upstream, AppServiceRegistration: write("as.yaml", regYAML)},
		Forward:        ForwardConfig{CACertFile: write("fwd/ca.pem", pki.fwdCA), CAKeyFile: write("fwd/ca.key", pki.fwdKey)},
		FederationList: FederationListConfig{Source: "file", File: write("list.jws", jws), TrustDir: filepath.Dir(write("trust/komp.pem", pki.komp.Cert.EncodePEM())), OCSP: "off", AllowTestTrust: true},
	}
	cfg.FederationList.Keeper.CacheDir = filepath.Join(dir, "cache")
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		tb.Fatal(err)
	}
	p, err := New(context.Background(), cfg, Deps{Log: slog.New(slog.DiscardHandler), DecisionLog: io.Discard})
	if err != nil {
		tb.Fatal(err)
	}
	if err := p.flist.Refresh(context.Background()); err != nil {
		tb.Fatal(err)
	}
	if err := p.Ready(); err != nil {
		tb.Fatalf("bench proxy not ready: %v", err)
	}
	return p
}

// cpuTime is the process's user+system CPU time (getrusage).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// loopCPU runs op under b.Loop and reports CPU time per operation next to wall time.
func loopCPU(b *testing.B, op func()) {
	b.Helper()
	b.ReportAllocs()
	start, n := cpuTime(), 0
	for b.Loop() {
		op()
		n++
	}
	if n > 0 {
		b.ReportMetric(float64(cpuTime()-start)/float64(n), "cpu-ns/op")
	}
}

var errNoWhoami = errors.New("whoami called on the cache-hit path")

// BenchmarkTokenCacheHit: resolving a known access token (SHA-256 of the token, map lookup, LRU move).
func BenchmarkTokenCacheHit(b *testing.B) {
	c := newTokenCache(100_000, time.Hour, time.Now)
	ctx := context.Background()
	for i := range 10_000 {
		_, _, _ = c.user(ctx, "token-"+strconv.Itoa(i), func(context.Context, string) (string, string, error) { return "@u:hs1.tim.test", "D", nil })
	}
	_, _, _ = c.user(ctx, benchToken, func(context.Context, string) (string, string, error) { return benchUser, "DEV", nil })
	fail := func(context.Context, string) (string, string, error) { return "", "", errNoWhoami }
	b.Run("serial", func(b *testing.B) {
		loopCPU(b, func() {
			if u, _, err := c.user(ctx, benchToken, fail); err != nil || u != benchUser {
				b.Fatalf("%q %v", u, err)
			}
		})
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if u, _, err := c.user(ctx, benchToken, fail); err != nil || u != benchUser {
					b.Errorf("%q %v", u, err)
					return
				}
			}
		})
	})
}

// BenchmarkDecide: decide() for a presence update — policy evaluation, decision-log line, metrics — with
// the decision in the cache (target ≤ 1 µs for the cache) and with a new input every time.
func BenchmarkDecide(b *testing.B) {
	p := newBenchProxy(b, "http://127.0.0.1:1")
	ctx := context.Background()
	presence := func(n int) *policy.Input {
		return &policy.Input{Action: policy.ActionPresence, Origin: "hs1.tim.test", Actor: p.user(benchUser),
			Request: &policy.Request{StatusMsgLength: n, Authenticated: true}}
	}
	b.Run("cached", func(b *testing.B) {
		in := presence(20)
		if _, err := p.decide(ctx, "client", "client.presence.status", in); err != nil {
			b.Fatal(err)
		}
		loopCPU(b, func() {
			dec, err := p.decide(ctx, "client", "client.presence.status", in)
			if err != nil || !dec.Allow || !dec.Cached {
				b.Fatalf("%+v %v, want a cached allow", dec, err)
			}
		})
	})
	b.Run("uncached", func(b *testing.B) {
		// More distinct inputs than the cache holds, cycled: every evaluation misses.
		ins := make([]*policy.Input, 50_000)
		for i := range ins {
			ins[i] = presence(i % 251)
			ins[i].Actor = p.user("@u" + strings.Repeat("x", i/251) + ":hs1.tim.test")
		}
		i := 0
		loopCPU(b, func() {
			dec, err := p.decide(ctx, "client", "client.presence.status", ins[i%len(ins)])
			i++
			if err != nil || dec.Cached {
				b.Fatalf("%+v %v, want an uncached decision", dec, err)
			}
		})
	})
}

// BenchmarkClientFlow: one request through the client handler to the trivial upstream over loopback,
// next to a bare httputil.ReverseProxy. timstack − bare is the proxy's own cost per request (routing,
// token cache, policy, decision log, metrics).
func BenchmarkClientFlow(b *testing.B) {
	up := benchUpstream(b)
	p := newBenchProxy(b, up.URL)
	u, _ := url.Parse(up.URL)
	bare := &httputil.ReverseProxy{
		Rewrite:   func(pr *httputil.ProxyRequest) { pr.SetURL(u); pr.Out.Host = pr.In.Host; pr.SetXForwarded() },
		Transport: &http.Transport{MaxIdleConns: 64, MaxIdleConnsPerHost: 64, DisableCompression: true},
	}
	presenceBody := []byte(`{"presence":"online","status_msg":"in the practice until 18:00"}`)
	cases := []struct {
		name   string
		h      http.Handler
		method string
		target string
		body   []byte
	}{
		{"GET sync/bare", bare, http.MethodGet, "/_matrix/client/v3/sync?timeout=0", nil},
		{"GET sync/timstack", p.ClientHandler(), http.MethodGet, "/_matrix/client/v3/sync?timeout=0", nil},
		{"PUT presence/bare", bare, http.MethodPut, "/_matrix/client/v3/presence/" + benchUser + "/status", presenceBody},
		{"PUT presence/timstack (decided)", p.ClientHandler(), http.MethodPut, "/_matrix/client/v3/presence/" + benchUser + "/status", presenceBody},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			do := func() {
				var body io.Reader
				if tc.body != nil {
					body = bytes.NewReader(tc.body)
				}
				req := httptest.NewRequest(tc.method, tc.target, body)
				req.Header.Set("Authorization", "Bearer "+benchToken)
				rec := httptest.NewRecorder()
				tc.h.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK || rec.Body.String() != "{}" {
					b.Fatalf("%d %s", rec.Code, rec.Body.String())
				}
			}
			do() // token cache and connection warm
			loopCPU(b, do)
		})
	}
}

// The benchmarks' set-up must itself be right, or their numbers describe a refusal path: every case
// answers 200 {} from the upstream, and the presence update is decided (and allowed) by the policy.
func TestBenchFixturesTakeTheIntendedPath(t *testing.T) {
	up := benchUpstream(t)
	p := newBenchProxy(t, up.URL)
	dl := &syncBuffer{}
	p.decisions = &decisionLog{w: dl}
	for _, tc := range []struct {
		name, method, target, body string
		wantDecision               bool
	}{
		{"a sync is forwarded without a decision", http.MethodGet, "/_matrix/client/v3/sync?timeout=0", "", false},
		{"a presence update is decided and forwarded", http.MethodPut, "/_matrix/client/v3/presence/" + benchUser + "/status", `{"presence":"online"}`, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := strings.Count(dl.String(), "\n")
			req := httptest.NewRequest(tc.method, tc.target, strings.NewReader(tc.body))
			req.Header.Set("Authorization", "Bearer "+benchToken)
			rec := httptest.NewRecorder()
			p.ClientHandler().ServeHTTP(rec, req)
			if rec.Code != http.StatusOK || rec.Body.String() != "{}" {
				t.Fatalf("%d %s, want 200 {} from the upstream", rec.Code, rec.Body.String())
			}
			decided := strings.Count(dl.String(), "\n") > before
			if decided != tc.wantDecision {
				t.Fatalf("decision logged: %v, want %v (%s)", decided, tc.wantDecision, dl.String())
			}
			if decided && !strings.Contains(dl.String(), `"allow":true`) {
				t.Fatalf("decision was not an allow: %s", dl.String())
			}
		})
	}
}
