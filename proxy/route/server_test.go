package route

import (
	"bufio"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestGoServerPassesTargetsThroughUntouched sends raw HTTP/1.1 request lines to a net/http server, as a
// hostile client would, and checks the assumption CheckTarget rests on: the server either refuses the
// request itself or hands the request-target to the handler byte for byte (no cleaning of dot segments,
// slashes or escapes), so CheckTarget sees what the homeserver would see.
func TestGoServerPassesTargetsThroughUntouched(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	seen := map[string]bool{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen[r.RequestURI] = true
		mu.Unlock()
		if _, err := CheckTarget(r.Method, r.RequestURI); err != nil {
			var ae *AmbiguousError
			if !errors.As(err, &ae) {
				t.Errorf("CheckTarget error %T", err)
			}
			w.Header().Set("X-Refused-By", "CheckTarget")
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)

	send := func(t *testing.T, method, target string) (int, bool) {
		t.Helper()
		conn, err := net.Dial("tcp", srv.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		req := method + " " + target + " HTTP/1.1\r\nHost: hs1.tim.test\r\nConnection: close\r\n\r\n"
		if _, err := conn.Write([]byte(req)); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatalf("reading the response: %v", err)
		}
		resp.Body.Close()
		return resp.StatusCode, resp.Header.Get("X-Refused-By") != ""
	}

	for _, tc := range acceptedTargets {
		t.Run("accepted: "+tc.name, func(t *testing.T) {
			if got, _ := send(t, "GET", tc.target); got != http.StatusNoContent {
				t.Fatalf("status %d; want 204", got)
			}
			mu.Lock()
			defer mu.Unlock()
			if !seen[tc.target] {
				t.Errorf("handler never saw %q verbatim", tc.target)
			}
		})
	}
	for _, tc := range refusedTargets {
		if strings.ContainsAny(tc.target, "\r\n") {
			continue // would end the request line early; covered by the header parser, not by us
		}
		t.Run("refused: "+tc.name, func(t *testing.T) {
			got, byUs := send(t, tc.method, tc.target)
			if got != http.StatusBadRequest {
				t.Fatalf("status %d; want 400 from the server or from CheckTarget", got)
			}
			if !byUs {
				return // net/http refused it before any handler
			}
			mu.Lock()
			defer mu.Unlock()
			if !seen[tc.target] {
				t.Errorf("handler refused a target it did not see verbatim")
			}
		})
	}
}
