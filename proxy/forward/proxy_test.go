package forward

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

const federationBody = `{"origin":"hs1.tim.test","pdus":[{"content":{"body":"\u00e4 caf\u00e9"}}],"edus":[]}`

// federationSetup wires client → forward proxy → (seen → ReverseProxy → Egress) → remote hs2.tim.test:8448.
func federationSetup(t *testing.T, cfg Config) (*env, *remote, *seen) {
	t.Helper()
	r := newRemote(t, "hs2.tim.test")
	eg := egressTo(t, r, "hs2.tim.test")
	s := &seen{}
	e := startProxy(t, cfg, s.wrap(eg.ReverseProxy(badGateway)))
	return e, r, s
}

func TestTunnelledFederationRequestArrivesUnchanged(t *testing.T) {
	t.Parallel()
	e, r, s := federationSetup(t, Config{})
	const uri = "/_matrix/federation/v1/send/1700000000000?x=%2Fy"
	req, err := http.NewRequest(http.MethodPut, "https://hs2.tim.test:8448"+uri, strings.NewReader(federationBody))
	if err != nil {
		t.Fatal(err)
	}
	const auth = `X-Matrix origin="hs1.tim.test",destination="hs2.tim.test",key="ed25519:a",sig="c2ln"`
	req.Header.Set("Authorization", auth)
	req.Header.Set("Content-Type", "application/json")
	req.Host = "hs2.tim.test"
	resp, err := e.client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	if want := fmt.Sprintf(`{"seen":%d}`, len(federationBody)); string(body) != want {
		t.Errorf("response body %q, want %q", body, want)
	}
	got := r.requests()
	if len(got) != 1 {
		t.Fatalf("remote saw %d requests, want 1", len(got))
	}
	g := got[0]
	if diff := cmp.Diff([]string{http.MethodPut, uri, "hs2.tim.test", federationBody, auth, ""},
		[]string{g.Method, g.RequestURI, g.Host, string(g.Body), g.Header.Get("Authorization"), g.Header.Get("X-Forwarded-For")}); diff != "" {
		t.Errorf("remote request (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]Target{{Host: "hs2.tim.test", Port: 8448}}, s.targets); diff != "" {
		t.Errorf("handler targets (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"https://hs2.tim.test:8448" + uri}, s.urls); diff != "" {
		t.Errorf("handler URLs (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"hs2.tim.test"}, s.hosts); diff != "" {
		t.Errorf("handler Host (-want +got):\n%s", diff)
	}
}

func TestLargeBodiesStreamThroughUnchanged(t *testing.T) {
	t.Parallel()
	e, r, _ := federationSetup(t, Config{})
	body := make([]byte, 8<<20)
	if _, err := rand.Read(body); err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPut, "https://hs2.tim.test:8448/_matrix/media/v3/upload", io.NopCloser(bytes.NewReader(body)))
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = -1 // chunked: the proxy cannot know the length up front and must stream
	resp, err := e.client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	got := r.requests()
	if len(got) != 1 || !bytes.Equal(got[0].Body, body) {
		t.Fatalf("remote body differs (%d requests)", len(got))
	}
}

func TestKeepAliveCarriesSeveralRequestsInOneTunnel(t *testing.T) {
	t.Parallel()
	e, r, s := federationSetup(t, Config{})
	// One TLS connection written by hand: net/http's client may open a spare connection under load, which
	// would make a CONNECT count say nothing about the proxy.
	tc, br, err := tlsTunnel(t, e, "hs2.tim.test:8448", "hs2.tim.test")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		body := fmt.Sprintf(`{"txn":%d}`, i)
		raw := fmt.Sprintf("PUT /_matrix/federation/v1/send/%d HTTP/1.1\r\nHost: hs2.tim.test\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", i, len(body), body)
		resp, got := rawRequest(t, tc, br, raw)
		if want := fmt.Sprintf(`{"seen":%d}`, len(body)); resp.StatusCode != http.StatusOK || string(got) != want {
			t.Fatalf("request %d: %d %s", i, resp.StatusCode, got)
		}
	}
	if n := e.connects.Load(); n != 1 {
		t.Errorf("%d CONNECTs, want 1", n)
	}
	if n := len(r.requests()); n != 5 {
		t.Errorf("remote saw %d requests, want 5", n)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, u := range s.urls {
		if want := fmt.Sprintf("https://hs2.tim.test:8448/_matrix/federation/v1/send/%d", i); u != want {
			t.Errorf("request %d URL %q, want %q", i, u, want)
		}
	}
}

func TestRawRequestTargetBytesArePreserved(t *testing.T) {
	t.Parallel()
	e, r, _ := federationSetup(t, Config{})
	tc, br, err := tlsTunnel(t, e, "hs2.tim.test:8448", "hs2.tim.test")
	if err != nil {
		t.Fatal(err)
	}
	// Lower-case escapes and a literal '{' are re-encoded by net/url; the remote must see the client's bytes.
	const uri = "/_matrix/federation/v1/state/%21room%3ahs1/{x}?event_id=%24ev"
	resp, body := rawRequest(t, tc, br, "GET "+uri+" HTTP/1.1\r\nHost: hs2.tim.test:8448\r\n\r\n")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	got := r.requests()
	if len(got) != 1 || got[0].RequestURI != uri {
		t.Fatalf("remote saw %+v, want request-target %q", got, uri)
	}
	if ua, ok := got[0].Header["User-Agent"]; ok {
		t.Errorf("egress added User-Agent %q", ua)
	}
}

func TestRemoteCertificateProblemsGive502(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		remote func(t *testing.T) (*remote, *Egress)
	}{
		{"remote presenting a certificate for another host gives 502", func(t *testing.T) (*remote, *Egress) {
			r := newRemote(t, "other.tim.test")
			return r, egressTo(t, r, "hs2.tim.test")
		}},
		{"remote presenting a certificate from an untrusted CA gives 502", func(t *testing.T) (*remote, *Egress) {
			r := newRemote(t, "hs2.tim.test")
			_, otherRoots := newTestCA(t, "unrelated CA")
			eg, err := NewEgress(EgressConfig{
				Resolve: map[string]string{"hs2.tim.test:8448": r.srv.Listener.Addr().String()},
				RootCAs: otherRoots,
			}, discardLogger())
			if err != nil {
				t.Fatal(err)
			}
			return r, eg
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r, eg := tc.remote(t)
			e := startProxy(t, Config{}, eg.ReverseProxy(badGateway))
			resp, err := e.client().Get("https://hs2.tim.test:8448/_matrix/federation/v1/version")
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode != http.StatusBadGateway {
				t.Fatalf("status %d, want 502: %s", resp.StatusCode, body)
			}
			if !strings.Contains(string(body), "certificate") {
				t.Errorf("error %q does not mention the certificate", body)
			}
			if n := len(r.requests()); n != 0 {
				t.Errorf("remote served %d requests over an unverified connection", n)
			}
		})
	}
}

func TestDeniedRequestNeverReachesRemote(t *testing.T) {
	t.Parallel()
	r := newRemote(t, "hs2.tim.test")
	eg := egressTo(t, r, "hs2.tim.test")
	fwd := eg.ReverseProxy(badGateway)
	deny := http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if t, _ := TargetFrom(req.Context()); t.Host == "hs2.tim.test" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusForbidden)
			_, _ = io.WriteString(w, `{"errcode":"M_FORBIDDEN","error":"not part of federation"}`)
			return
		}
		fwd.ServeHTTP(w, req)
	})
	e := startProxy(t, Config{}, deny)
	resp, err := e.client().Post("https://hs2.tim.test:8448/_matrix/federation/v1/send/1", "application/json", strings.NewReader(federationBody))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), "M_FORBIDDEN") {
		t.Errorf("got %d %s, want 403 M_FORBIDDEN", resp.StatusCode, body)
	}
	if n := len(r.requests()); n != 0 {
		t.Errorf("remote saw %d requests after a denial", n)
	}
}

func TestProxyRefusesBadForms(t *testing.T) {
	t.Parallel()
	e, r, _ := federationSetup(t, Config{AllowedPorts: []int{443, 8448}})
	cases := []struct {
		name    string
		request string
		want    int
	}{
		{"CONNECT without a port is refused", "CONNECT hs2.tim.test HTTP/1.1\r\nHost: hs2.tim.test\r\n\r\n", 400},
		{"CONNECT with port 0 is refused", "CONNECT hs2.tim.test:0 HTTP/1.1\r\nHost: x\r\n\r\n", 400},
		{"CONNECT with port 65536 is refused", "CONNECT hs2.tim.test:65536 HTTP/1.1\r\nHost: x\r\n\r\n", 400},
		{"CONNECT with a signed port is refused", "CONNECT hs2.tim.test:+443 HTTP/1.1\r\nHost: x\r\n\r\n", 400},
		{"CONNECT with userinfo is refused", "CONNECT user@hs2.tim.test:443 HTTP/1.1\r\nHost: x\r\n\r\n", 400},
		{"CONNECT with an underscore host is refused", "CONNECT hs_2.tim.test:443 HTTP/1.1\r\nHost: x\r\n\r\n", 400},
		{"CONNECT with a numeric non-IP host is refused", "CONNECT 1.2.3:443 HTTP/1.1\r\nHost: x\r\n\r\n", 400},
		{"CONNECT with an unbracketed IPv6 literal is refused", "CONNECT ::1:443 HTTP/1.1\r\nHost: x\r\n\r\n", 400},
		{"CONNECT with a zoned IPv6 literal is refused", "CONNECT [fe80::1%25eth0]:443 HTTP/1.1\r\nHost: x\r\n\r\n", 400},
		{"CONNECT with a path is refused", "CONNECT /hs2.tim.test:443 HTTP/1.1\r\nHost: x\r\n\r\n", 400},
		{"CONNECT with an absolute URI is refused", "CONNECT https://hs2.tim.test:443/ HTTP/1.1\r\nHost: x\r\n\r\n", 400},
		{"CONNECT to a port outside the allow-list is refused", "CONNECT hs2.tim.test:22 HTTP/1.1\r\nHost: x\r\n\r\n", 403},
		{"origin-form request to the proxy itself is refused", "GET /_matrix/federation/v1/version HTTP/1.1\r\nHost: hs2.tim.test\r\n\r\n", 400},
		{"asterisk-form request is refused", "OPTIONS * HTTP/1.1\r\nHost: hs2.tim.test\r\n\r\n", 400},
		{"absolute-form https request without CONNECT is refused", "GET https://hs2.tim.test:8448/ HTTP/1.1\r\nHost: hs2.tim.test\r\n\r\n", 400},
		{"absolute-form http request to a port outside the allow-list is refused", "GET http://push.tim.test:8080/ HTTP/1.1\r\nHost: push.tim.test\r\n\r\n", 403},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, err := net.Dial("tcp", e.proxyURL.Host)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(5 * time.Second))
			if _, err := io.WriteString(c, tc.request); err != nil {
				t.Fatal(err)
			}
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatal(err)
			}
			_ = resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Errorf("status %d, want %d", resp.StatusCode, tc.want)
			}
		})
	}
	t.Cleanup(func() {
		if n := len(r.requests()); n != 0 {
			t.Errorf("remote saw %d requests from refused forms", n)
		}
	})
}

func TestTunnelRefusesMismatchedNames(t *testing.T) {
	t.Parallel()
	e, r, _ := federationSetup(t, Config{})
	t.Run("TLS with an SNI other than the CONNECT host fails the handshake", func(t *testing.T) {
		c, _, code := rawConnect(t, e.proxyURL.Host, "hs2.tim.test:8448")
		if code != http.StatusOK {
			t.Fatalf("CONNECT status %d", code)
		}
		// The client skips verification so that only the proxy's refusal can fail the handshake.
		tc := tls.Client(c, &tls.Config{ServerName: "evil.tim.test", InsecureSkipVerify: true}) //nolint:gosec // see above
		_ = tc.SetDeadline(time.Now().Add(5 * time.Second))
		err := tc.Handshake()
		if err == nil {
			t.Fatalf("handshake succeeded, certificate for %v", tc.ConnectionState().PeerCertificates[0].DNSNames)
		}
		if !strings.Contains(err.Error(), "remote error") {
			t.Errorf("handshake failed locally, not by the proxy: %v", err)
		}
	})
	t.Run("TLS without SNI gets a certificate for the CONNECT host", func(t *testing.T) {
		c, _, code := rawConnect(t, e.proxyURL.Host, "hs2.tim.test:8448")
		if code != http.StatusOK {
			t.Fatalf("CONNECT status %d", code)
		}
		// Go omits SNI for IP literals only, so verify by hand against the CONNECT host.
		tc := tls.Client(c, &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // verified below
		_ = tc.SetDeadline(time.Now().Add(5 * time.Second))
		if err := tc.Handshake(); err != nil {
			t.Fatal(err)
		}
		leaf := tc.ConnectionState().PeerCertificates[0]
		if _, err := leaf.Verify(x509VerifyOpts(e, "hs2.tim.test")); err != nil {
			t.Errorf("leaf does not verify for the CONNECT host: %v", err)
		}
	})
	hostCases := []struct {
		name string
		host string
		want int
	}{
		{"Host naming another server inside the tunnel gives 400", "evil.tim.test", 400},
		{"Host with another port inside the tunnel gives 400", "hs2.tim.test:443", 400},
		{"Host in other case and with trailing dot is the same host", "HS2.tim.test.:8448", 200},
		{"Host without a port is the tunnel host", "hs2.tim.test", 200},
	}
	for _, tc := range hostCases {
		t.Run(tc.name, func(t *testing.T) {
			conn, br, err := tlsTunnel(t, e, "hs2.tim.test:8448", "hs2.tim.test")
			if err != nil {
				t.Fatal(err)
			}
			resp, body := rawRequest(t, conn, br, "GET /_matrix/federation/v1/version HTTP/1.1\r\nHost: "+tc.host+"\r\n\r\n")
			if resp.StatusCode != tc.want {
				t.Errorf("status %d, want %d: %s", resp.StatusCode, tc.want, body)
			}
		})
	}
	t.Run("CONNECT inside a tunnel gives 405", func(t *testing.T) {
		conn, br, err := tlsTunnel(t, e, "hs2.tim.test:8448", "hs2.tim.test")
		if err != nil {
			t.Fatal(err)
		}
		resp, _ := rawRequest(t, conn, br, "CONNECT internal.tim.test:443 HTTP/1.1\r\nHost: hs2.tim.test:8448\r\n\r\n")
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("status %d, want 405", resp.StatusCode)
		}
	})
	t.Run("upgrade request inside a tunnel gives 501", func(t *testing.T) {
		conn, br, err := tlsTunnel(t, e, "hs2.tim.test:8448", "hs2.tim.test")
		if err != nil {
			t.Fatal(err)
		}
		resp, _ := rawRequest(t, conn, br, "GET /ws HTTP/1.1\r\nHost: hs2.tim.test:8448\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
		if resp.StatusCode != http.StatusNotImplemented {
			t.Errorf("status %d, want 501", resp.StatusCode)
		}
	})
	t.Run("absolute-form request inside a tunnel gives 400", func(t *testing.T) {
		conn, br, err := tlsTunnel(t, e, "hs2.tim.test:8448", "hs2.tim.test")
		if err != nil {
			t.Fatal(err)
		}
		resp, _ := rawRequest(t, conn, br, "GET https://evil.tim.test/x HTTP/1.1\r\nHost: hs2.tim.test:8448\r\n\r\n")
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("status %d, want 400", resp.StatusCode)
		}
	})
	if n := len(r.requests()); n != 2 {
		t.Errorf("remote saw %d requests, want 2 (the two matching Host cases)", n)
	}
}

func TestSilentClientsAreDisconnected(t *testing.T) {
	t.Parallel()
	// Handshake-phase limits are short on one proxy; in-tunnel limits on another whose TLS handshake may take
	// its time on a loaded machine.
	early, _, _ := federationSetup(t, Config{HandshakeTimeout: 300 * time.Millisecond})
	late, _, _ := federationSetup(t, Config{ReadHeaderTimeout: 300 * time.Millisecond, IdleTimeout: 300 * time.Millisecond})
	cases := []struct {
		name  string
		setup func(t *testing.T) net.Conn
	}{
		{"client sending half a CONNECT line is cut off", func(t *testing.T) net.Conn {
			c, err := net.Dial("tcp", early.proxyURL.Host)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.WriteString(c, "CONNECT hs2.tim")
			return c
		}},
		{"client never starting TLS after CONNECT is cut off", func(t *testing.T) net.Conn {
			c, _, code := rawConnect(t, early.proxyURL.Host, "hs2.tim.test:8448")
			if code != 200 {
				t.Fatalf("CONNECT status %d", code)
			}
			return c
		}},
		{"client sending half a request header in the tunnel is cut off", func(t *testing.T) net.Conn {
			tc, _, err := tlsTunnel(t, late, "hs2.tim.test:8448", "hs2.tim.test")
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.WriteString(tc, "GET /_matrix/federation/v1/version HTTP/1.1\r\nHost: hs2")
			return tc
		}},
		{"client idling in an established tunnel is cut off", func(t *testing.T) net.Conn {
			tc, br, err := tlsTunnel(t, late, "hs2.tim.test:8448", "hs2.tim.test")
			if err != nil {
				t.Fatal(err)
			}
			resp, _ := rawRequest(t, tc, br, "GET / HTTP/1.1\r\nHost: hs2.tim.test:8448\r\n\r\n")
			if resp.StatusCode != 200 {
				t.Fatalf("status %d", resp.StatusCode)
			}
			return &readerConn{Conn: tc, r: br}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := tc.setup(t)
			defer c.Close()
			start := time.Now()
			_ = c.SetDeadline(time.Now().Add(10 * time.Second))
			_, err := io.Copy(io.Discard, c)
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatalf("proxy kept the connection open for %v", time.Since(start))
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("disconnect took %v", d)
			}
		})
	}
}

type readerConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *readerConn) Read(p []byte) (int, error) { return c.r.Read(p) }

func TestHundredParallelTunnels(t *testing.T) {
	t.Parallel()
	e, r, s := federationSetup(t, Config{})
	const n = 100
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := e.client() // own transport, hence own tunnel
			defer c.CloseIdleConnections()
			body := fmt.Sprintf(`{"txn":%d}`, i)
			resp, err := c.Post(fmt.Sprintf("https://hs2.tim.test:8448/_matrix/federation/v1/send/%d", i), "application/json", strings.NewReader(body))
			if err != nil {
				errs <- err
				return
			}
			got, _ := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			if want := fmt.Sprintf(`{"seen":%d}`, len(body)); resp.StatusCode != 200 || string(got) != want {
				errs <- fmt.Errorf("request %d: %d %s", i, resp.StatusCode, got)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := e.connects.Load(); got != n {
		t.Errorf("%d CONNECTs, want %d", got, n)
	}
	if got := len(r.requests()); got != n {
		t.Errorf("remote saw %d requests, want %d", got, n)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.targets) != n {
		t.Errorf("handler saw %d requests, want %d", len(s.targets), n)
	}
}

func TestTunnelLimitAnswers503(t *testing.T) {
	t.Parallel()
	e, _, _ := federationSetup(t, Config{MaxTunnels: 2})
	for range 2 {
		if _, _, err := tlsTunnel(t, e, "hs2.tim.test:8448", "hs2.tim.test"); err != nil {
			t.Fatal(err)
		}
	}
	_, _, code := rawConnect(t, e.proxyURL.Host, "hs2.tim.test:8448")
	if code != http.StatusServiceUnavailable {
		t.Errorf("third CONNECT got %d, want 503", code)
	}
}

func TestCloseEndsOpenTunnels(t *testing.T) {
	t.Parallel()
	e, _, _ := federationSetup(t, Config{})
	tc, _, err := tlsTunnel(t, e, "hs2.tim.test:8448", "hs2.tim.test")
	if err != nil {
		t.Fatal(err)
	}
	_ = e.proxy.Close()
	_ = tc.SetReadDeadline(time.Now().Add(3 * time.Second))
	if _, err := tc.Read(make([]byte, 1)); err == nil {
		t.Fatal("read succeeded on a closed tunnel")
	} else if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
		t.Fatal("tunnel still open after Close")
	}
}

func TestPlainHTTPAbsoluteFormGoesToHandler(t *testing.T) {
	t.Parallel()
	var got []recorded
	var mu sync.Mutex
	push := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, recorded{Method: r.Method, RequestURI: r.RequestURI, Host: r.Host, Body: b})
		mu.Unlock()
		_, _ = io.WriteString(w, `{"rejected":[]}`)
	}))
	t.Cleanup(push.Close)
	eg, err := NewEgress(EgressConfig{Resolve: map[string]string{"push.tim.test:8080": push.Listener.Addr().String()}}, discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	s := &seen{}
	e := startProxy(t, Config{}, s.wrap(eg.ReverseProxy(badGateway)))
	const body = `{"notification":{"counts":{"unread":1}}}`
	resp, err := e.client().Post("http://push.tim.test:8080/_matrix/push/v1/notify?a=%2f", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	want := []recorded{{Method: "POST", RequestURI: "/_matrix/push/v1/notify?a=%2f", Host: "push.tim.test:8080", Body: []byte(body)}}
	mu.Lock()
	defer mu.Unlock()
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("push gateway saw (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]Target{{Host: "push.tim.test", Port: 8080}}, s.targets); diff != "" {
		t.Errorf("targets (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"http://push.tim.test:8080/_matrix/push/v1/notify?a=%2f"}, s.urls); diff != "" {
		t.Errorf("urls (-want +got):\n%s", diff)
	}
}

func TestEgressRefusesPrivateAddressesOutsideTheResolverMap(t *testing.T) {
	t.Parallel()
	r := newRemote(t, "127.0.0.1")
	addr := r.srv.Listener.Addr().String()
	cases := []struct {
		name    string
		cfg     EgressConfig
		url     string
		wantErr error
	}{
		{"loopback IP literal is refused", EgressConfig{RootCAs: r.roots}, "https://" + addr + "/", ErrForbiddenAddress},
		{"private IP literal is refused", EgressConfig{RootCAs: r.roots}, "https://10.1.2.3:8448/", ErrForbiddenAddress},
		{"IPv4-mapped loopback is refused", EgressConfig{RootCAs: r.roots}, "https://[::ffff:127.0.0.1]:8448/", ErrForbiddenAddress},
		{"name resolving to loopback is refused", EgressConfig{RootCAs: r.roots}, "https://localhost:8448/", ErrForbiddenAddress},
		{"loopback is reached when private addresses are allowed", EgressConfig{RootCAs: r.roots, AllowPrivate: true}, "https://" + addr + "/", nil},
		{"loopback is reached through the resolver map", EgressConfig{RootCAs: r.roots, Resolve: map[string]string{"127.0.0.1:8448": addr}}, "https://127.0.0.1:8448/", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			eg, err := NewEgress(tc.cfg, discardLogger())
			if err != nil {
				t.Fatal(err)
			}
			defer eg.CloseIdleConnections()
			req := httptest.NewRequestWithContext(context.Background(), http.MethodGet, tc.url, nil)
			resp, err := eg.RoundTrip(req)
			if resp != nil {
				_ = resp.Body.Close()
			}
			if tc.wantErr == nil {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("error %v, want %v", err, tc.wantErr)
			}
		})
	}
}

func TestNewEgressRejectsBadResolverEntries(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		m    map[string]string
	}{
		{"host entry with a port in the value is refused", map[string]string{"a.test": "127.0.0.1:80"}},
		{"host:port entry without a port in the value is refused", map[string]string{"a.test:443": "127.0.0.1"}},
		{"name as value is refused", map[string]string{"a.test": "b.test"}},
		{"invalid key is refused", map[string]string{"a_b.test": "127.0.0.1"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := NewEgress(EgressConfig{Resolve: tc.m}, discardLogger()); err == nil {
				t.Error("accepted")
			}
		})
	}
}
