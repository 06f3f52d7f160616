package proxy

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// writeCountingConn counts the writes a connection to the homeserver makes: each is a syscall and, with
// TCP_NODELAY, a packet of its own.
type writeCountingConn struct {
	net.Conn
	writes *atomic.Int64
}

func (c writeCountingConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

// A request body the proxy already read (for a decision) goes to the homeserver together with the headers,
// in one write; ReverseProxy's own handling needs two. The twin without useBufferedBody shows that the
// count measures what it claims to.
func TestBufferedBodyGoesOutInOneWrite(t *testing.T) {
	const body = `{"presence":"online","status_msg":"in the practice until 18:00"}`
	var got sync.Map // case name -> body the upstream read
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got.Store(r.Header.Get("X-Case"), string(b))
		w.WriteHeader(http.StatusOK)
	}))
	defer upstream.Close()
	u, _ := url.Parse(upstream.URL)

	for _, tc := range []struct {
		name       string
		useBuffer  bool
		wantWrites int64
	}{
		{"with the buffered body", true, 1},
		{"with ReverseProxy's wrapper", false, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var writes atomic.Int64
			dialer := &net.Dialer{}
			rp := &httputil.ReverseProxy{
				Rewrite: func(pr *httputil.ProxyRequest) {
					pr.SetURL(u)
					if tc.useBuffer {
						useBufferedBody(pr)
					}
				},
				Transport: &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
					c, err := dialer.DialContext(ctx, network, addr)
					if err != nil {
						return nil, err
					}
					return writeCountingConn{Conn: c, writes: &writes}, nil
				}},
			}
			in := httptest.NewRequest(http.MethodPut, "/_matrix/client/v3/presence/@a:hs1.tim.test/status", strings.NewReader(body))
			in.Header.Set("X-Case", tc.name)
			// As the client flow does: the body was read for the decision and is handed on from memory.
			out := withBody(in, []byte(body))
			rec := httptest.NewRecorder()
			rp.ServeHTTP(rec, out)
			if rec.Code != http.StatusOK {
				t.Fatalf("status %d", rec.Code)
			}
			if v, _ := got.Load(tc.name); v != body {
				t.Fatalf("upstream read body %q, want %q", v, body)
			}
			if n := writes.Load(); n != tc.wantWrites {
				t.Fatalf("request written in %d writes, want %d", n, tc.wantWrites)
			}
		})
	}
}

// A streamed body (one the proxy did not read, such as a media upload) keeps ReverseProxy's handling.
func TestStreamedBodyIsNotReplaced(t *testing.T) {
	in := httptest.NewRequest(http.MethodPost, "/_matrix/media/v3/upload", strings.NewReader("bytes"))
	outBody := io.NopCloser(strings.NewReader("wrapper"))
	pr := &httputil.ProxyRequest{In: in, Out: in.Clone(context.Background())}
	pr.Out.Body = outBody
	useBufferedBody(pr)
	if pr.Out.Body != outBody {
		t.Fatal("a streamed body was replaced")
	}
}
