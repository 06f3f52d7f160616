package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/timstack/timstack/certs"
	"github.com/timstack/timstack/directory"
	"github.com/timstack/timstack/directory/store"
)

// The directory's /tim-authenticate against a real Synapse: a user asks their homeserver (through the proxy)
// for an OpenID token; the directory resolves the server's /.well-known/matrix/server and calls
// /_matrix/federation/v1/openid/userinfo — both answered through the proxy's federation listener, which
// must let them pass without X-Matrix — and issues a search token for the user.
func TestTimAuthenticateAgainstRealSynapseThroughTheProxy(t *testing.T) {
	hs1 := node1(t)
	ctx := ctxT(t)
	st, err := store.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "vzd.db"))
	must(t, err)
	t.Cleanup(func() { st.Close() })

	now := time.Now()
	signer, key, err := theStack.KompCA.Issue(certs.IssueRequest{Profile: certs.IssueProfileFListSigner, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour)})
	must(t, err)

	// The directory reaches hs1.tim.test (ports 443 and 8448) at hs1's proxy federation listener, trusting
	// the stack's TLS CA: the test-only resolver map, as in the proxies.
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(theStack.TLSCA.Cert.EncodePEM())
	fedAddr := hs1.Cfg.Listen.Federation
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool},
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			host, _, _ := net.SplitHostPort(addr)
			if host != hs1.Name {
				return nil, errors.New("test resolver: unknown host " + host)
			}
			return (&net.Dialer{}).DialContext(ctx, network, fedAddr)
		},
	}}
	srv, err := directory.New(ctx, directory.Config{BaseURL: "http://vzd.test"}, directory.Deps{
		Store: st, NotFound: func(err error) bool { return errors.Is(err, store.ErrNotFound) },
		ListSigners: []directory.ListSigner{{Alg: certs.AlgBP256R1, Signer: key, Chain: []*certs.Certificate{signer}}},
		OpenID:      &directory.MatrixOpenID{Client: client}, Log: slog.New(slog.DiscardHandler), Version: "e2e",
	})
	must(t, err)
	vzd := httptest.NewServer(srv.Handler())
	t.Cleanup(vzd.Close)

	// hs1 is on the directory's list (an active organisation carries its Telematik-ID); hs2 is not.
	org := `{"resourceType":"Organization","id":"org-hs1","meta":{"tag":[{"system":"https://gematik.de/fhir/directory/CodeSystem/Origin","code":"ldap"}]},` +
		`"active":true,"identifier":[{"system":"https://gematik.de/fhir/sid/telematik-id","value":"1-e2e-hs1"}],"name":"Praxis hs1"}`
	_, err = (&directory.Writer{Store: st}).Put(ctx, [][]byte{[]byte(org)})
	must(t, err)
	_, err = srv.Federation().Add(ctx, "e2e-provider", directory.Domain{Domain: hs1.Name, TelematikID: "1-e2e-hs1"})
	must(t, err)

	alice := newUser(t, hs1, "alice")
	openID := func(u *user) string {
		var tok struct {
			AccessToken string `json:"access_token"`
		}
		status, body, err := u.Raw(ctx, http.MethodPost, "/_matrix/client/v3/user/"+u.ID+"/openid/request_token", map[string]any{})
		must(t, err)
		if status != 200 {
			t.Fatalf("openid/request_token through the proxy: %d %s", status, body)
		}
		decode(t, body, &tok)
		return tok.AccessToken
	}
	authenticate := func(mxID, token string) (int, map[string]any) {
		req, _ := http.NewRequest(http.MethodGet, vzd.URL+"/tim-authenticate?mxId="+mxID, nil)
		req.Header.Set("X-Matrix-OpenID-Token", token)
		resp, err := http.DefaultClient.Do(req)
		must(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		return resp.StatusCode, m
	}

	tok := openID(alice)
	status, body := authenticate(hs1.Name, tok)
	if status != 200 || body["token_type"] != "Bearer" {
		t.Fatalf("tim-authenticate: %d %v, want 200 with a bearer search token", status, body)
	}
	claims, err := srv.Tokens().Verify(body["access_token"].(string), directory.TokenSearch)
	must(t, err)
	if claims.Subject != alice.ID {
		t.Errorf("search token subject %q, want %q", claims.Subject, alice.ID)
	}

	// Refusals: a domain not on the directory's list; a token the homeserver does not know.
	if status, _ := authenticate(node2(t).Name, tok); status != http.StatusUnauthorized {
		t.Errorf("domain not on the list: %d, want 401", status)
	}
	if status, _ := authenticate(hs1.Name, "not-a-token"); status != http.StatusUnauthorized {
		t.Errorf("unknown OpenID token: %d, want 401", status)
	}
}
