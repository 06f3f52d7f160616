package forward

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// recorded is what the fake remote homeserver saw.
type recorded struct {
	Method     string
	RequestURI string
	Host       string
	Header     http.Header
	Body       []byte
}

// remote is a fake remote homeserver with a certificate from its own test CA.
type remote struct {
	srv   *httptest.Server
	roots *x509.CertPool
	mu    sync.Mutex
	reqs  []recorded
}

func (r *remote) requests() []recorded {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]recorded(nil), r.reqs...)
}

func (r *remote) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	r.reqs = append(r.reqs, recorded{req.Method, req.RequestURI, req.Host, req.Header.Clone(), body})
	r.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_, _ = fmt.Fprintf(w, `{"seen":%d}`, len(body))
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// newTestCA generates a CA with GenerateCA and loads it.
func newTestCA(t testing.TB, name string) (*CA, *x509.CertPool) {
	t.Helper()
	certPEM, keyPEM, err := GenerateCA(name, 30*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := LoadCA(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(certPEM) {
		t.Fatal("append CA")
	}
	return ca, pool
}

// newRemote starts a TLS server whose certificate names certHost, issued by a fresh test CA.
func newRemote(t testing.TB, certHost string) *remote {
	t.Helper()
	ca, pool := newTestCA(t, "remote test CA")
	cert, err := ca.CertificateFor(certHost)
	if err != nil {
		t.Fatal(err)
	}
	r := &remote{roots: pool}
	r.srv = httptest.NewUnstartedServer(r)
	r.srv.TLS = &tls.Config{Certificates: []tls.Certificate{*cert}}
	r.srv.StartTLS()
	t.Cleanup(r.srv.Close)
	return r
}

// env is a forward proxy in front of an egress, with the handler the test chose.
type env struct {
	proxy    *Proxy
	proxyURL *url.URL
	proxyCA  *x509.CertPool
	connects atomic.Int64
}

// startProxy serves p on a fresh listener through p.Server() and counts CONNECTs.
func startProxy(t testing.TB, cfg Config, handler http.Handler) *env {
	t.Helper()
	ca, pool := newTestCA(t, "timstack test proxy CA")
	e := &env{proxyCA: pool}
	// The test machine is shared and slow under -race; only tests about timeouts set short ones.
	if cfg.HandshakeTimeout == 0 {
		cfg.HandshakeTimeout = time.Minute
	}
	if cfg.ReadHeaderTimeout == 0 {
		cfg.ReadHeaderTimeout = time.Minute
	}
	e.proxy = New(cfg, ca, handler, discardLogger())
	srv := e.proxy.Server()
	inner := srv.Handler
	srv.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodConnect {
			e.connects.Add(1)
		}
		inner.ServeHTTP(w, r)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() {
		_ = srv.Close()
		_ = e.proxy.Close()
	})
	e.proxyURL = &url.URL{Scheme: "http", Host: ln.Addr().String()}
	return e
}

// client returns an HTTP client that uses the forward proxy and trusts the proxy CA, as Synapse does.
func (e *env) client() *http.Client {
	return &http.Client{Transport: &http.Transport{
		Proxy:             http.ProxyURL(e.proxyURL),
		TLSClientConfig:   &tls.Config{RootCAs: e.proxyCA},
		ForceAttemptHTTP2: false,
	}, Timeout: 90 * time.Second}
}

// egressTo returns an Egress that resolves host:8448 to the remote and trusts its CA.
func egressTo(t testing.TB, r *remote, host string) *Egress {
	t.Helper()
	eg, err := NewEgress(EgressConfig{
		Resolve:     map[string]string{host + ":8448": r.srv.Listener.Addr().String()},
		RootCAs:     r.roots,
		Timeout:     time.Minute,
		DialTimeout: time.Minute,
	}, discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(eg.CloseIdleConnections)
	return eg
}

// seen records what the egress handler observed about each request.
type seen struct {
	mu      sync.Mutex
	targets []Target
	urls    []string
	hosts   []string
}

func (s *seen) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t, ok := TargetFrom(r.Context())
		if !ok {
			http.Error(w, "no target", http.StatusInternalServerError)
			return
		}
		s.mu.Lock()
		s.targets = append(s.targets, t)
		s.urls = append(s.urls, r.URL.String())
		s.hosts = append(s.hosts, r.Host)
		s.mu.Unlock()
		next.ServeHTTP(w, r)
	})
}

// badGateway is the error handler the tests give the ReverseProxy.
func badGateway(w http.ResponseWriter, _ *http.Request, err error) {
	http.Error(w, "bad gateway: "+err.Error(), http.StatusBadGateway)
}

// rawTunnel opens a CONNECT tunnel by hand and returns the TLS connection (or the CONNECT status).
func rawConnect(t testing.TB, proxyAddr, authority string) (net.Conn, *bufio.Reader, int) {
	t.Helper()
	c, err := net.DialTimeout("tcp", proxyAddr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", authority, authority); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
	if err != nil {
		t.Fatalf("read CONNECT response: %v", err)
	}
	_ = c.SetDeadline(time.Time{})
	return c, br, resp.StatusCode
}

// rawRequest writes raw bytes through an established TLS tunnel and reads one response.
func rawRequest(t testing.TB, tc *tls.Conn, br *bufio.Reader, raw string) (*http.Response, []byte) {
	t.Helper()
	_ = tc.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(tc, raw); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	return resp, body
}

// tlsTunnel opens a CONNECT tunnel and completes TLS with the given SNI.
func tlsTunnel(t testing.TB, e *env, authority, sni string) (*tls.Conn, *bufio.Reader, error) {
	t.Helper()
	c, br, code := rawConnect(t, e.proxyURL.Host, authority)
	if code != http.StatusOK {
		t.Fatalf("CONNECT %s: status %d", authority, code)
	}
	if br.Buffered() > 0 {
		t.Fatal("bytes after CONNECT response")
	}
	tc := tls.Client(c, &tls.Config{ServerName: sni, RootCAs: e.proxyCA})
	_ = tc.SetDeadline(time.Now().Add(5 * time.Second))
	err := tc.Handshake()
	return tc, bufio.NewReader(tc), err
}

func x509VerifyOpts(e *env, host string) x509.VerifyOptions {
	return x509.VerifyOptions{Roots: e.proxyCA, DNSName: host}
}
