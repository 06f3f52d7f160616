package proxy

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/timstack/timstack/proxy/matrix"
)

// The egress flow through the real forward listener (CONNECT + TLS interception): only federation, key and
// media requests to federated destinations leave; well-known only from federated hosts; everything else is
// refused before anything is dialled. A request that passes the policy but cannot be delivered (no such host
// here) answers 502, which proves it got past the checks.
func TestEgressDecisions(t *testing.T) {
	env := newTestEnv(t, "pro")
	fwd := httptest.NewServer(env.p.ForwardHandler())
	t.Cleanup(fwd.Close)
	pki, _ := testPKI()
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pki.fwdCA)
	proxyURL, _ := url.Parse(fwd.URL)
	client := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(proxyURL), TLSClientConfig: &tls.Config{RootCAs: pool}}}
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	signed := func(method, rawURL, origin, destination string) *http.Request {
		u, _ := url.Parse(rawURL)
		hdr, err := matrix.SignRequest(method, u.RequestURI(), origin, destination, nil, "ed25519:k", key)
		if err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequest(method, rawURL, nil)
		req.Header.Set("Authorization", hdr)
		return req
	}
	plain := func(method, rawURL string) *http.Request {
		req, _ := http.NewRequest(method, rawURL, nil)
		return req
	}
	cases := []struct {
		name       string
		req        *http.Request
		wantStatus int
		wantCode   string
	}{
		{"well-known of a host outside the federation is 403", plain("GET", "https://matrix.org/.well-known/matrix/server"), 403, "M_FORBIDDEN"},
		{"a federation request to a destination outside the federation is 403",
			signed("GET", "https://matrix.org:8448/_matrix/federation/v1/version", "hs1.tim.test", "matrix.org"), 403, "M_FORBIDDEN"},
		{"a federation request whose origin is not us is refused",
			signed("GET", "https://hs2.tim.test:8448/_matrix/federation/v1/version", "hs2.tim.test", "hs2.tim.test"), 401, "M_UNAUTHORIZED"},
		{"a client-API request to another server is 404", plain("GET", "https://hs2.tim.test/_matrix/client/v3/sync"), 404, "M_UNRECOGNIZED"},
		{"an arbitrary web request is 404", plain("GET", "https://example.org/"), 404, "M_UNRECOGNIZED"},
		{"a federated destination passes the checks (502: nothing listens here)",
			signed("GET", "https://hs2.tim.test:8448/_matrix/federation/v1/version", "hs1.tim.test", "hs2.tim.test"), 502, "M_UNKNOWN"},
		{"a federated host's well-known passes the checks (502: nothing listens here)", plain("GET", "https://hs2.tim.test/.well-known/matrix/server"), 502, "M_UNKNOWN"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := client.Do(tc.req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			var e struct {
				ErrCode string `json:"errcode"`
			}
			_ = json.Unmarshal(b, &e)
			if resp.StatusCode != tc.wantStatus || e.ErrCode != tc.wantCode {
				t.Fatalf("got %d %s, want %d %s (%s)", resp.StatusCode, e.ErrCode, tc.wantStatus, tc.wantCode, b)
			}
		})
	}
	if !strings.Contains(env.decisions.String(), `"surface":"egress","action":"federation_outbound","route":"egress.federation","origin":"hs1.tim.test","destination":"matrix.org","allow":false`) {
		t.Errorf("no egress denial in the decision log:\n%s", env.decisions.String())
	}
}
