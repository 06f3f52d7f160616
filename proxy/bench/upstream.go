package bench

import (
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/timstack/timstack/proxy/bufpool"
)

// HeldPath is where an Upstream reports how many long-polls it holds, as {"held": n}.
const HeldPath = "/_bench/held"

// Upstream is the trivial homeserver: 200 {} for everything, plus the few answers the proxy needs to take
// decisions (whoami for the one known token, 404 for account data so permission lookups fall back to the
// server default) and /sync long-polls that are held open for their timeout, as Synapse does when nothing
// happens.
type Upstream struct {
	// Token is the one access token whoami knows; it belongs to UserID.
	Token  string
	UserID string
	held   atomic.Int64
}

// Held is the number of /sync requests currently held open.
func (u *Upstream) Held() int64 { return u.held.Load() }

// ServeHTTP answers like a homeserver with nothing to say.
func (u *Upstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	path := r.URL.Path
	h := w.Header()
	h.Set("Content-Type", "application/json")
	switch {
	case path == HeldPath:
		_, _ = w.Write([]byte(`{"held":` + strconv.FormatInt(u.held.Load(), 10) + `}`))
	case strings.HasSuffix(path, "/account/whoami"):
		if r.Header.Get("Authorization") != "Bearer "+u.Token {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"errcode":"M_UNKNOWN_TOKEN","error":"unknown token"}`))
			return
		}
		_, _ = w.Write([]byte(`{"user_id":` + strconv.Quote(u.UserID) + `,"device_id":"BENCH"}`))
	case strings.Contains(path, "/account_data/") && r.Method == http.MethodGet:
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte(`{"errcode":"M_NOT_FOUND","error":"not found"}`))
	case strings.HasSuffix(path, "/sync"):
		ms, _ := strconv.Atoi(r.URL.Query().Get("timeout"))
		if ms > 0 {
			u.held.Add(1)
			t := time.NewTimer(time.Duration(ms) * time.Millisecond)
			select {
			case <-t.C:
			case <-r.Context().Done():
				t.Stop()
			}
			u.held.Add(-1)
		}
		_, _ = w.Write([]byte(`{"next_batch":"s1"}`))
	default:
		_, _ = w.Write([]byte(`{}`))
	}
}

// NewBareProxy is the baseline: an httputil.ReverseProxy to upstream with the same transport settings and
// streaming behaviour as the timstack proxy's own upstream hop, and nothing else (no routing, no token
// check, no policy, no metrics).
func NewBareProxy(upstream *url.URL) *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(upstream)
			pr.Out.Host = pr.In.Host
			pr.SetXForwarded()
		},
		Transport: &http.Transport{
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:        1024,
			MaxIdleConnsPerHost: 1024,
			IdleConnTimeout:     90 * time.Second,
			DisableCompression:  true,
		},
		BufferPool: &bufpool.Pool{},
	}
}

// NewServer wraps h the way the timstack proxy configures its listeners, so neither side of a comparison
// gets different server limits.
func NewServer(h http.Handler) *http.Server {
	return &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second, MaxHeaderBytes: 64 << 10}
}
