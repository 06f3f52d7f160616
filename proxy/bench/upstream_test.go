package bench

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

func TestUpstreamAnswers(t *testing.T) {
	up := &Upstream{Token: "good", UserID: "@bench:bench.tim.test"}
	srv := httptest.NewServer(up)
	defer srv.Close()
	cases := []struct {
		name, method, path, token string
		wantStatus                int
		wantBody                  string
	}{
		{"whoami knows the one token", "GET", "/_matrix/client/v3/account/whoami", "good", 200, `"user_id":"@bench:bench.tim.test"`},
		{"whoami refuses any other token", "GET", "/_matrix/client/v3/account/whoami", "bad", 401, "M_UNKNOWN_TOKEN"},
		{"account data is absent, so the server default applies", "GET", "/_matrix/client/v3/user/@a:x/account_data/t", "good", 404, "M_NOT_FOUND"},
		{"a sync without timeout answers at once", "GET", "/_matrix/client/v3/sync?timeout=0", "good", 200, "next_batch"},
		{"anything else is 200 {}", "PUT", "/_matrix/client/v3/presence/@a:x/status", "good", 200, "{}"},
		{"the held count is reported", "GET", HeldPath, "", 200, `{"held":0}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, srv.URL+tc.path, strings.NewReader("{}"))
			req.Header.Set("Authorization", "Bearer "+tc.token)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.wantStatus || !strings.Contains(string(b), tc.wantBody) {
				t.Fatalf("%d %s, want %d with %s", resp.StatusCode, b, tc.wantStatus, tc.wantBody)
			}
		})
	}
}

func TestBareProxyForwardsPathQueryAndBody(t *testing.T) {
	var got struct {
		Path, Query, Body, Forwarded string
	}
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got.Path, got.Query, got.Body, got.Forwarded = r.URL.Path, r.URL.RawQuery, string(b), r.Header.Get("X-Forwarded-For")
		_ = json.NewEncoder(w).Encode(map[string]bool{"ok": true})
	}))
	defer upstream.Close()
	u, _ := url.Parse(upstream.URL)
	front := httptest.NewServer(NewBareProxy(u))
	defer front.Close()
	resp, err := http.Post(front.URL+"/_matrix/client/v3/sync?timeout=0", "application/json", strings.NewReader(`{"x":1}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || got.Path != "/_matrix/client/v3/sync" || got.Query != "timeout=0" || got.Body != `{"x":1}` || got.Forwarded == "" {
		t.Fatalf("status %d, upstream saw %+v", resp.StatusCode, got)
	}
}
