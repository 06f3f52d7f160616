package e2e

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/timstack/timstack/certs"
	"github.com/timstack/timstack/proxy/e2e/stack"
	"github.com/timstack/timstack/proxy/matrix"
)

// federationClient talks to a node's inbound federation listener over TLS, as a remote server would.
func federationClient(t *testing.T, nd *stack.Node) (*http.Client, string) {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(theStack.TLSCA.Cert.EncodePEM())
	addr := nd.Cfg.Listen.Federation
	tr := &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: nd.Name},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		},
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}, "https://" + nd.Name + ":8448"
}

// signedRequest builds a federation request signed as origin with key.
func signedRequest(t *testing.T, method, base, uri, origin, destination, keyID string, key ed25519.PrivateKey, body []byte) *http.Request {
	t.Helper()
	var content json.RawMessage
	if body != nil {
		content = body
	}
	hdr, err := matrix.SignRequest(method, uri, origin, destination, content, keyID, key)
	if err != nil {
		t.Fatal(err)
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, base+uri, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", hdr)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return req
}

func send(t *testing.T, c *http.Client, req *http.Request) (int, string) {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var e struct {
		ErrCode string `json:"errcode"`
	}
	_ = json.Unmarshal(b, &e)
	return resp.StatusCode, e.ErrCode
}

// Inbound X-Matrix verification at hs2's proxy: only requests signed by hs1's real key, over the exact bytes
// hs1 signed, get through. A_26331: /version needs X-Matrix.
func TestInboundXMatrixVerification(t *testing.T) {
	hs1, hs2 := node1(t), node2(t)
	c, base := federationClient(t, hs2)
	realKey, err := hs1.HS.SigningPrivateKey()
	must(t, err)
	realKeyID := hs1.HS.SigningKeyID()
	_, forged, _ := ed25519.GenerateKey(rand.Reader)
	txn := "/_matrix/federation/v1/send/sec-" + strconv.FormatInt(time.Now().UnixNano(), 10)
	body := []byte(`{"origin":"hs1.tim.test","origin_server_ts":1700000000000,"pdus":[],"edus":[]}`)

	cases := []struct {
		name       string
		req        func() *http.Request
		wantStatus int
		wantCode   string
	}{
		{"a request signed by hs1's real key passes", func() *http.Request {
			return signedRequest(t, "GET", base, "/_matrix/federation/v1/version", "hs1.tim.test", "hs2.tim.test", realKeyID, realKey, nil)
		}, 200, ""},
		{"A_26331 /version without X-Matrix is 401", func() *http.Request {
			r, _ := http.NewRequest("GET", base+"/_matrix/federation/v1/version", nil)
			return r
		}, 401, "M_UNAUTHORIZED"},
		{"a forged origin (unknown key id) is 401", func() *http.Request {
			return signedRequest(t, "GET", base, "/_matrix/federation/v1/version", "hs1.tim.test", "hs2.tim.test", "ed25519:forged", forged, nil)
		}, 401, "M_UNAUTHORIZED"},
		{"the right key id signed with the wrong key is 401", func() *http.Request {
			return signedRequest(t, "GET", base, "/_matrix/federation/v1/version", "hs1.tim.test", "hs2.tim.test", realKeyID, forged, nil)
		}, 401, "M_UNAUTHORIZED"},
		{"a destination other than us is 401", func() *http.Request {
			return signedRequest(t, "GET", base, "/_matrix/federation/v1/version", "hs1.tim.test", "hs3.tim.test", realKeyID, realKey, nil)
		}, 401, "M_UNAUTHORIZED"},
		{"an origin outside the federation is 403", func() *http.Request {
			return signedRequest(t, "GET", base, "/_matrix/federation/v1/version", "matrix.org", "hs2.tim.test", "ed25519:x", forged, nil)
		}, 403, "M_FORBIDDEN"},
		{"a transaction signed over its body passes", func() *http.Request {
			return signedRequest(t, "PUT", base, txn, "hs1.tim.test", "hs2.tim.test", realKeyID, realKey, body)
		}, 200, ""},
		{"an altered transaction body is 401", func() *http.Request {
			r := signedRequest(t, "PUT", base, txn+"x", "hs1.tim.test", "hs2.tim.test", realKeyID, realKey, body)
			altered := bytes.Replace(body, []byte("1700000000000"), []byte("1700000000001"), 1)
			r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(altered)), int64(len(altered))
			return r
		}, 401, "M_UNAUTHORIZED"},
		{"an altered request path is 401", func() *http.Request {
			r := signedRequest(t, "GET", base, "/_matrix/federation/v1/version", "hs1.tim.test", "hs2.tim.test", realKeyID, realKey, nil)
			r2, _ := http.NewRequest("GET", base+"/_matrix/federation/v1/query/profile?user_id=%40x%3Ahs2.tim.test", nil)
			r2.Header = r.Header
			return r2
		}, 401, "M_UNAUTHORIZED"},
		{"the federation room directory is 403 even when signed (A_26520)", func() *http.Request {
			return signedRequest(t, "GET", base, "/_matrix/federation/v1/publicRooms", "hs1.tim.test", "hs2.tim.test", realKeyID, realKey, nil)
		}, 403, "M_FORBIDDEN"},
		{"key endpoints stay reachable without X-Matrix", func() *http.Request {
			r, _ := http.NewRequest("GET", base+"/_matrix/key/v2/server", nil)
			return r
		}, 200, ""},
		{"openid/userinfo stays reachable without X-Matrix", func() *http.Request {
			r, _ := http.NewRequest("GET", base+"/_matrix/federation/v1/openid/userinfo?access_token=nope", nil)
			return r
		}, 401, "M_UNKNOWN_TOKEN"},
		{"/.well-known/matrix/server names the federation port", func() *http.Request {
			r, _ := http.NewRequest("GET", base+"/.well-known/matrix/server", nil)
			return r
		}, 200, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, code := send(t, c, tc.req())
			if status != tc.wantStatus || (tc.wantCode != "" && code != tc.wantCode) {
				t.Fatalf("got %d %s, want %d %s", status, code, tc.wantStatus, tc.wantCode)
			}
		})
	}
}

// A forward-proxy denial stops delivery: once hs1's proxy no longer lists hs3, messages from hs1 to a room
// shared with hs3 never arrive, and the egress decision log says why — proof that federation really passes
// the proxies. hs3 serves only this test, so its federation backoff cannot disturb others.
func TestEgressDenialStopsDelivery(t *testing.T) {
	hs1, hs3 := node1(t), mustNode(t, "hs3.tim.test")
	alice, carol := newUser(t, hs1, "alice"), newUser(t, hs3, "carol")
	roomID := connectedPair(t, alice, carol)
	_, err := alice.SendText(ctxT(t), roomID, "before")
	must(t, err)
	if err := waitMessage(t, carol, roomID, "before", 30*time.Second); err != nil {
		t.Fatalf("the allowed twin failed: %v", err)
	}

	// hs1's proxy gets a list without hs3 (hs3 keeps the full list, so the refusal is hs1's egress).
	var without []certs.FederationDomain
	for _, d := range theStack.Domains() {
		if d.Domain != "hs3.tim.test" {
			without = append(without, d)
		}
	}
	must(t, theStack.PublishList(without, hs1.Name))
	must(t, hs1.Proxy.RefreshFederationList(ctxT(t)))
	t.Cleanup(func() {
		_ = theStack.PublishList(theStack.Domains(), hs1.Name)
		_ = hs1.Proxy.RefreshFederationList(context.Background())
	})

	_, err = alice.SendText(ctxT(t), roomID, "after")
	must(t, err)
	if err := waitMessage(t, carol, roomID, "after", 10*time.Second); err == nil {
		t.Fatal("a message reached hs3 although hs1's proxy no longer federates with it")
	}
	if !hs1.HasDecision("egress", "federation_outbound", "hs3.tim.test", false) {
		t.Error("hs1's proxy logged no egress denial towards hs3.tim.test")
	}
}

// Permission configurations live in account data, so they survive a restart of the proxy; the federation
// list comes back from the proxy's disk cache, verified again.
func TestPermissionsPersistAcrossProxyRestart(t *testing.T) {
	hs1 := node1(t)
	inviter, invitee := newUser(t, hs1, "inviter"), newUser(t, hs1, "invitee")
	setPermissions(t, invitee, map[string]any{"defaultSetting": "block all"})
	must(t, hs1.RestartProxy())
	roomID, err := inviter.CreateRoom(ctxT(t), privateRoom())
	must(t, err)
	wantErr(t, inviter.Invite(ctxT(t), roomID, invitee.ID), http.StatusForbidden, "M_FORBIDDEN")
	noInvite(t, invitee, roomID, 3*time.Second)
}
