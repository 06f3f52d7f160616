package forward

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// BenchmarkTunnelRequest measures requests through one established, kept-alive tunnel. "proxy-only" answers
// in the handler (TLS termination and request rewriting); "egress" forwards through Egress to a TLS remote,
// i.e. the whole outbound path minus policy. Client, proxy and remote share the same cores.
func BenchmarkTunnelRequest(b *testing.B) {
	run := func(b *testing.B, e *env) {
		c := e.client()
		defer c.CloseIdleConnections()
		do := func() {
			resp, err := c.Post("https://hs2.tim.test:8448/_matrix/federation/v1/send/1", "application/json", strings.NewReader(federationBody))
			if err != nil {
				b.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Fatalf("status %d", resp.StatusCode)
			}
		}
		do() // open the tunnel outside the timed loop
		b.ReportAllocs()
		for b.Loop() {
			do()
		}
		// net/http's client abandons a connection whose request write it has not seen finish within 50 ms
		// of the response, which happens on a loaded machine; a handful of spare tunnels is that, not the proxy.
		if n := e.connects.Load(); n > 5 {
			b.Fatalf("%d tunnels, want about 1", n)
		}
		b.ReportMetric(float64(e.connects.Load()), "tunnels")
	}
	b.Run("proxy-only", func(b *testing.B) {
		e := startProxy(b, Config{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			_, _ = io.WriteString(w, `{}`)
		}))
		run(b, e)
	})
	b.Run("egress", func(b *testing.B) {
		r := newRemote(b, "hs2.tim.test")
		eg := egressTo(b, r, "hs2.tim.test")
		run(b, startProxy(b, Config{}, eg.ReverseProxy(badGateway)))
	})
}
