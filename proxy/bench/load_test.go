package bench

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func addrOf(t *testing.T, srv *httptest.Server) string {
	t.Helper()
	u, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	return u.Host
}

func TestClosedLoop(t *testing.T) {
	var closeEvery atomic.Bool
	cases := []struct {
		name       string
		handler    http.HandlerFunc
		req        Request
		wantErrors bool
	}{
		{"every 200 answer is counted and none is an error", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("{}")) },
			Request{Target: "/x"}, false},
		{"answers outside 2xx are errors", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusInternalServerError) },
			Request{Target: "/x"}, true},
		{"a body and headers reach the server", func(w http.ResponseWriter, r *http.Request) {
			b := make([]byte, 16)
			n, _ := r.Body.Read(b)
			if r.Method != http.MethodPut || string(b[:n]) != `{"a":1}` || r.Header.Get("Authorization") != "Bearer t" {
				w.WriteHeader(http.StatusBadRequest)
			}
		}, Request{Method: http.MethodPut, Target: "/x", Header: http.Header{"Authorization": {"Bearer t"}}, Body: []byte(`{"a":1}`)}, false},
		{"a server closing every connection is reconnected to", func(w http.ResponseWriter, r *http.Request) {
			closeEvery.Store(true)
			w.Header().Set("Connection", "close")
		}, Request{Target: "/x"}, false},
		{"a chunked answer is read to its end", func(w http.ResponseWriter, r *http.Request) {
			_, _ = w.Write([]byte("{"))
			w.(http.Flusher).Flush()
			_, _ = w.Write([]byte("}"))
		}, Request{Target: "/x"}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(tc.handler)
			defer srv.Close()
			res, err := Run(context.Background(), Load{Addr: addrOf(t, srv), Request: tc.req, Conns: 4, Duration: 300 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			if res.Requests < 10 {
				t.Fatalf("only %d requests in 300 ms", res.Requests)
			}
			if got := res.Errors > 0; got != tc.wantErrors {
				t.Fatalf("errors %d of %d (status %v), want errors: %v", res.Errors, res.Requests, res.Status, tc.wantErrors)
			}
			if tc.wantErrors && res.Errors != res.Requests {
				t.Fatalf("errors %d of %d, want all", res.Errors, res.Requests)
			}
			if !slices.IsSorted(res.Latencies) || len(res.Latencies) != res.Requests {
				t.Fatal("latencies are not one sorted sample per request")
			}
			if res.RPS() <= 0 || res.Percentile(0.5) <= 0 || res.Percentile(0.99) < res.Percentile(0.5) {
				t.Fatalf("rps %.0f p50 %s p99 %s", res.RPS(), res.Percentile(0.5), res.Percentile(0.99))
			}
		})
	}
}

func TestOpenLoopKeepsItsRate(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	res, err := Run(context.Background(), Load{Addr: addrOf(t, srv), Request: Request{Target: "/"}, Conns: 4, Duration: time.Second, Rate: 200})
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests < 180 || res.Requests > 201 {
		t.Fatalf("%d requests at 200/s for 1 s", res.Requests)
	}
}

// A server that takes 40 ms per answer cannot serve 100/s on one connection: the open loop must charge
// the queueing to the server (latency from the intended start), where a closed loop would report 40 ms.
func TestOpenLoopChargesAStalledServerFromTheIntendedStart(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { time.Sleep(40 * time.Millisecond) }))
	defer srv.Close()
	res, err := Run(context.Background(), Load{Addr: addrOf(t, srv), Request: Request{Target: "/"}, Conns: 1, Duration: time.Second, Rate: 100})
	if err != nil {
		t.Fatal(err)
	}
	if res.Late == 0 {
		t.Fatal("no request was late although the server is 4× too slow")
	}
	if p99 := res.Percentile(0.99); p99 < 200*time.Millisecond {
		t.Fatalf("p99 %s: the wait behind the stalled answers was not counted", p99)
	}
}

func TestRunFailsWithoutAnyConnection(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	addr := addrOf(t, srv)
	srv.Close()
	start := time.Now()
	_, err := Run(context.Background(), Load{Addr: addr, Request: Request{Target: "/"}, Conns: 2, Duration: 200 * time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), "no connection") {
		t.Fatalf("err %v, want no connection", err)
	}
	if time.Since(start) > 2*time.Second {
		t.Fatal("a refused port kept the run going")
	}
}

func TestRunRejectsBadParameters(t *testing.T) {
	for _, l := range []Load{{}, {Addr: "x:1", Conns: 0, Duration: time.Second}, {Addr: "x:1", Conns: 1}, {Addr: "x:1", Conns: 1, Duration: time.Second, Rate: -1}} {
		if _, err := Run(context.Background(), l); err == nil {
			t.Errorf("%+v accepted", l)
		}
	}
}

func TestPercentileIsNearestRank(t *testing.T) {
	samples := make([]time.Duration, 100)
	for i := range samples {
		samples[i] = time.Duration(i+1) * time.Millisecond
	}
	cases := []struct {
		name string
		in   []time.Duration
		q    float64
		want time.Duration
	}{
		{"no samples give zero", nil, 0.5, 0},
		{"the median of 1..100 ms is 50 ms", samples, 0.5, 50 * time.Millisecond},
		{"p99 of 1..100 ms is 99 ms", samples, 0.99, 99 * time.Millisecond},
		{"p100 is the maximum", samples, 1, 100 * time.Millisecond},
		{"p0 is the minimum", samples, 0, time.Millisecond},
		{"one sample is every percentile", []time.Duration{7}, 0.99, 7},
		{"q above 1 is clamped", samples, 2, 100 * time.Millisecond},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := percentile(tc.in, tc.q); got != tc.want {
				t.Fatalf("got %s, want %s", got, tc.want)
			}
		})
	}
}

func TestOpenIdleHoldsLongPollsUntilClosed(t *testing.T) {
	up := &Upstream{Token: "t", UserID: "@u:x"}
	srv := httptest.NewServer(up)
	defer srv.Close()
	req := Request{Target: "/_matrix/client/v3/sync?timeout=30000"}
	conns, err := OpenIdle(context.Background(), addrOf(t, srv), req, 50, 8)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return up.Held() == 50 }, "50 held long-polls")
	CloseAll(conns)
	waitFor(t, func() bool { return up.Held() == 0 }, "released long-polls")
}

func TestOpenIdleReportsARefusedPort(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	addr := addrOf(t, srv)
	srv.Close()
	if _, err := OpenIdle(context.Background(), addr, Request{Target: "/"}, 5, 2); err == nil {
		t.Fatal("no error for a closed port")
	}
}

func waitFor(t *testing.T, ok func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
