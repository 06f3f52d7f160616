package e2e

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

// A_26263: deprecated unauthenticated media download keeps working (200) within and across homeservers —
// across means hs2's homeserver fetches the file from hs1 through both proxies. A_26328: the server name in a
// media path must be federated. Authenticated v1 media is forwarded.
func TestMediaWithinAndAcrossServers(t *testing.T) {
	alice, bob := newUser(t, node1(t), "alice"), newUser(t, node2(t), "bob")
	ctx := ctxT(t)
	content := []byte("TI-M attachment " + alice.ID)
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, alice.BaseURL+"/_matrix/media/v3/upload?filename=a.txt", bytes.NewReader(content))
	req.Header.Set("Authorization", "Bearer "+alice.AccessToken)
	req.Header.Set("Content-Type", "text/plain")
	resp, err := http.DefaultClient.Do(req)
	must(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("upload: %d %s", resp.StatusCode, body)
	}
	var up struct {
		ContentURI string `json:"content_uri"`
	}
	decode(t, body, &up)
	serverAndID := strings.TrimPrefix(up.ContentURI, "mxc://")

	get := func(base, path, token string) (int, []byte) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		must(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	cases := []struct {
		name       string
		base, path string
		token      string
		wantStatus int
		wantBody   bool
	}{
		{"deprecated download on the same server without a token is 200", alice.BaseURL, "/_matrix/media/v3/download/" + serverAndID, "", 200, true},
		{"deprecated download from the other server without a token is 200", bob.BaseURL, "/_matrix/media/v3/download/" + serverAndID, "", 200, true},
		{"authenticated download from the other server is 200", bob.BaseURL, "/_matrix/client/v1/media/download/" + serverAndID, bob.AccessToken, 200, true},
		{"a media server outside the federation is 403", bob.BaseURL, "/_matrix/client/v1/media/download/matrix.org/abcdef", bob.AccessToken, 403, false},
		{"key backup routes are forwarded (the homeserver answers)", alice.BaseURL, "/_matrix/client/v3/room_keys/version", alice.AccessToken, 404, false},
		{"dehydrated-device routes are forwarded (MSC3814)", alice.BaseURL, "/_matrix/client/unstable/org.matrix.msc3814.v1/dehydrated_device", alice.AccessToken, 404, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, b := get(tc.base, tc.path, tc.token)
			if status != tc.wantStatus {
				t.Fatalf("status %d, want %d: %.200s", status, tc.wantStatus, b)
			}
			if tc.wantBody && !bytes.Equal(b, content) {
				t.Fatalf("body %q, want the uploaded bytes", b)
			}
			if status == 404 {
				// Forwarded means the homeserver answered M_NOT_FOUND, not the proxy's M_UNRECOGNIZED.
				var e struct {
					ErrCode string `json:"errcode"`
				}
				_ = json.Unmarshal(b, &e)
				if e.ErrCode != "M_NOT_FOUND" {
					t.Fatalf("errcode %q, want the homeserver's M_NOT_FOUND", e.ErrCode)
				}
			}
		})
	}
}
