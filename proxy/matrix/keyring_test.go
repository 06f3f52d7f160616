package matrix

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeClock is a settable clock shared by the key ring and the fake key servers.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// keyServer is a homeserver answering /_matrix/key/v2/server with its keys, signed for its own server
// name (the listener's host:port).
type keyServer struct {
	t     *testing.T
	srv   *httptest.Server
	name  string
	clock *fakeClock
	hits  atomic.Int32

	mu         sync.Mutex
	keys       map[string]ed25519.PrivateKey
	old        map[string]OldKey
	validFor   time.Duration
	status     int
	gate       chan struct{} // when set, requests wait for it to close
	reportBody func() []byte // overrides the answer when set
}

func newKeyServer(t *testing.T, clock *fakeClock) *keyServer {
	ks := &keyServer{t: t, clock: clock, keys: map[string]ed25519.PrivateKey{"ed25519:a": testKey(1)}, validFor: time.Hour, status: http.StatusOK}
	ks.srv = httptest.NewServer(http.HandlerFunc(ks.serve))
	t.Cleanup(ks.srv.Close)
	ks.name = strings.TrimPrefix(ks.srv.URL, "http://")
	return ks
}

func (ks *keyServer) serve(w http.ResponseWriter, r *http.Request) {
	ks.hits.Add(1)
	ks.mu.Lock()
	gate, status, override := ks.gate, ks.status, ks.reportBody
	ks.mu.Unlock()
	if gate != nil {
		<-gate
	}
	if r.URL.Path != "/_matrix/key/v2/server" {
		http.NotFound(w, r)
		return
	}
	if status != http.StatusOK {
		w.WriteHeader(status)
		return
	}
	if override != nil {
		_, _ = w.Write(override())
		return
	}
	_, _ = w.Write(ks.body())
}

// body builds the signed response, with old keys added before signing.
func (ks *keyServer) body() []byte {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	raw, err := BuildServerKeys(ks.name, ks.keys, ks.clock.now().Add(ks.validFor))
	if err != nil {
		ks.t.Errorf("BuildServerKeys: %v", err)
		return nil
	}
	if len(ks.old) == 0 {
		return raw
	}
	v, _ := parseJSON(raw)
	olds := value{kind: kindObject}
	for id, o := range ks.old {
		ov := value{kind: kindObject}
		ov.set("key", stringValue(EncodeBase64(o.Key)))
		ov.set("expired_ts", value{kind: kindNumber, text: fmt.Sprint(o.ExpiredAt.UnixMilli())})
		olds.set(id, ov)
	}
	v.set("old_verify_keys", olds)
	unsigned := v.without("signatures").appendTo(nil)
	for id, k := range ks.keys {
		if unsigned, err = SignJSON(unsigned, ks.name, id, k); err != nil {
			ks.t.Errorf("SignJSON: %v", err)
		}
	}
	return unsigned
}

// httpFetch is a fetch function like the proxy's: plain GET with a size limit.
func httpFetch(ctx context.Context, serverName string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+serverName+"/_matrix/key/v2/server", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("status %d", resp.StatusCode)
	}
	return io.ReadAll(io.LimitReader(resp.Body, 64<<10))
}

func newTestRing(clock *fakeClock) *KeyRing { return NewKeyRing(httpFetch, clock.now, nil) }

func TestKeyRingCachesKeys(t *testing.T) {
	clock := &fakeClock{t: time.UnixMilli(1_700_000_000_000)}
	ks := newKeyServer(t, clock)
	ring := newTestRing(clock)
	ctx := t.Context()

	for i := range 3 {
		pub, err := ring.PublicKey(ctx, ks.name, "ed25519:a", clock.now())
		if err != nil {
			t.Fatalf("lookup %d: %v", i, err)
		}
		if !pub.Equal(testKey(1).Public()) {
			t.Fatalf("lookup %d returned another key", i)
		}
	}
	if got := ks.hits.Load(); got != 1 {
		t.Errorf("%d fetches for three lookups; want 1", got)
	}
	clock.advance(time.Hour + time.Second)
	if _, err := ring.PublicKey(ctx, ks.name, "ed25519:a", clock.now()); err != nil {
		t.Fatalf("lookup after expiry: %v", err)
	}
	if got := ks.hits.Load(); got != 2 {
		t.Errorf("%d fetches after valid_until_ts passed; want 2", got)
	}
}

func TestKeyRingCapsValidity(t *testing.T) {
	clock := &fakeClock{t: time.UnixMilli(1_700_000_000_000)}
	ks := newKeyServer(t, clock)
	ks.validFor = 30 * 24 * time.Hour
	ring := newTestRing(clock)
	ctx := t.Context()
	start := clock.now()

	if _, err := ring.PublicKey(ctx, ks.name, "ed25519:a", start.Add(6*24*time.Hour)); err != nil {
		t.Errorf("key refused within 7 days: %v", err)
	}
	if _, err := ring.PublicKey(ctx, ks.name, "ed25519:a", start.Add(8*24*time.Hour)); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("valid_until_ts 30 days ahead honoured beyond 7 days: %v", err)
	}
	clock.advance(23 * time.Hour)
	_, _ = ring.PublicKey(ctx, ks.name, "ed25519:a", clock.now())
	if got := ks.hits.Load(); got != 1 {
		t.Errorf("%d fetches within 24 h; want 1", got)
	}
	clock.advance(2 * time.Hour)
	_, _ = ring.PublicKey(ctx, ks.name, "ed25519:a", clock.now())
	if got := ks.hits.Load(); got != 2 {
		t.Errorf("%d fetches after 25 h; want 2 (cache capped at 24 h)", got)
	}
}

func TestKeyRingSharesOneFetch(t *testing.T) {
	clock := &fakeClock{t: time.UnixMilli(1_700_000_000_000)}
	ks := newKeyServer(t, clock)
	gate := make(chan struct{})
	openGate := sync.OnceFunc(func() { close(gate) })
	t.Cleanup(openGate) // runs before the server closes, so a failed test does not hang on held requests
	ks.gate = gate
	ring := newTestRing(clock)

	const callers = 20
	var wg sync.WaitGroup
	errs := make(chan error, callers)
	for range callers {
		wg.Go(func() {
			_, err := ring.PublicKey(t.Context(), ks.name, "ed25519:a", clock.now())
			errs <- err
		})
	}
	// Let every caller reach the wait; the fetch cannot finish before the gate opens.
	waitFor(t, func() bool { return ks.hits.Load() >= 1 })
	time.Sleep(50 * time.Millisecond)
	openGate()
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("caller: %v", err)
		}
	}
	if got := ks.hits.Load(); got != 1 {
		t.Errorf("%d fetches for %d concurrent callers; want 1", got, callers)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestKeyRingLimitsFetchesForUnknownKeys(t *testing.T) {
	clock := &fakeClock{t: time.UnixMilli(1_700_000_000_000)}
	ks := newKeyServer(t, clock)
	ring := newTestRing(clock)
	ctx := t.Context()

	if _, err := ring.PublicKey(ctx, ks.name, "ed25519:nope", clock.now()); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("unknown key: %v", err)
	}
	for i := range 100 {
		if _, err := ring.PublicKey(ctx, ks.name, fmt.Sprintf("ed25519:made_up%d", i), clock.now()); !errors.Is(err, ErrUnknownKey) {
			t.Fatalf("made-up key %d: %v", i, err)
		}
	}
	if got := ks.hits.Load(); got != 1 {
		t.Errorf("%d fetches for 101 unknown key IDs within 30 s; want 1", got)
	}
	if _, err := ring.PublicKey(ctx, ks.name, "ed25519:a", clock.now()); err != nil {
		t.Errorf("known key after the flood: %v", err)
	}

	// The server rotates to a new key: once the negative period is over, one fetch finds it.
	ks.mu.Lock()
	ks.keys = map[string]ed25519.PrivateKey{"ed25519:b": testKey(2)}
	ks.mu.Unlock()
	clock.advance(negativeTTL + time.Second)
	if pub, err := ring.PublicKey(ctx, ks.name, "ed25519:b", clock.now()); err != nil || !pub.Equal(testKey(2).Public()) {
		t.Errorf("rotated key: %v", err)
	}
	if got := ks.hits.Load(); got != 2 {
		t.Errorf("%d fetches after rotation; want 2", got)
	}
}

func TestKeyRingRemembersFailures(t *testing.T) {
	tests := []struct {
		name  string
		setup func(ks *keyServer)
	}{
		{"a server error is remembered", func(ks *keyServer) { ks.status = http.StatusInternalServerError }},
		{"a response for another server name is remembered", func(ks *keyServer) {
			ks.reportBody = func() []byte {
				raw, _ := BuildServerKeys("evil.example", ks.keys, ks.clock.now().Add(time.Hour))
				return raw
			}
		}},
		{"an unsigned response is remembered", func(ks *keyServer) {
			ks.reportBody = func() []byte {
				v, _ := parseJSON(ks.body())
				return v.without("signatures").appendTo(nil)
			}
		}},
		{"an expired response is remembered", func(ks *keyServer) { ks.validFor = -time.Minute }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := &fakeClock{t: time.UnixMilli(1_700_000_000_000)}
			ks := newKeyServer(t, clock)
			tt.setup(ks)
			ring := newTestRing(clock)
			for range 5 {
				if _, err := ring.PublicKey(t.Context(), ks.name, "ed25519:a", clock.now()); !errors.Is(err, ErrKeyFetch) {
					t.Fatalf("got %v; want ErrKeyFetch", err)
				}
			}
			if got := ks.hits.Load(); got != 1 {
				t.Errorf("%d fetches for five lookups after a failure; want 1", got)
			}
			ks.mu.Lock()
			ks.status, ks.reportBody, ks.validFor = http.StatusOK, nil, time.Hour
			ks.mu.Unlock()
			clock.advance(negativeTTL + time.Second)
			if _, err := ring.PublicKey(t.Context(), ks.name, "ed25519:a", clock.now()); err != nil {
				t.Errorf("after the negative period: %v", err)
			}
		})
	}
}

func TestKeyRingOldKeys(t *testing.T) {
	clock := &fakeClock{t: time.UnixMilli(1_700_000_000_000)}
	ks := newKeyServer(t, clock)
	expired := clock.now().Add(-time.Hour)
	oldKey := testKey(7)
	ks.old = map[string]OldKey{"ed25519:old": {Key: oldKey.Public().(ed25519.PublicKey), ExpiredAt: expired}}
	ring := newTestRing(clock)
	ctx := t.Context()

	if pub, err := ring.PublicKey(ctx, ks.name, "ed25519:old", expired.Add(-time.Minute)); err != nil || !pub.Equal(oldKey.Public()) {
		t.Errorf("old key before expired_ts: %v", err)
	}
	if _, err := ring.PublicKey(ctx, ks.name, "ed25519:old", expired); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("old key at expired_ts: %v", err)
	}
	if _, err := ring.PublicKey(ctx, ks.name, "ed25519:old", clock.now()); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("old key now: %v", err)
	}

	// Old keys never authenticate requests, even for a request signed before they expired.
	header, err := SignRequest("GET", "/_matrix/federation/v1/version", ks.name, "local.example", nil, "ed25519:old", oldKey)
	if err != nil {
		t.Fatal(err)
	}
	x, err := ParseXMatrix(header)
	if err != nil {
		t.Fatal(err)
	}
	if err := ring.Verify(ctx, x, "GET", "/_matrix/federation/v1/version", nil); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("request signed with an old key: %v", err)
	}
}

func TestKeyRingVerify(t *testing.T) {
	clock := &fakeClock{t: time.UnixMilli(1_700_000_000_000)}
	ks := newKeyServer(t, clock)
	ring := newTestRing(clock)
	const uri = "/_matrix/federation/v1/send/1"
	body := []byte(`{"pdus":[],"edus":[]}`)
	sign := func(key ed25519.PrivateKey, keyID string) XMatrix {
		header, err := SignRequest("PUT", uri, ks.name, "local.example", body, keyID, key)
		if err != nil {
			t.Fatal(err)
		}
		x, err := ParseXMatrix(header)
		if err != nil {
			t.Fatal(err)
		}
		return x
	}
	good := sign(testKey(1), "ed25519:a")
	noDest := good
	noDest.Destination = ""
	unreachable := good
	unreachable.Origin = "127.0.0.1:1"
	tests := []struct {
		name string
		x    XMatrix
		body []byte
		want error
	}{
		{"a request signed with the origin's key verifies", good, body, nil},
		{"a request with another body fails", good, []byte(`{"pdus":[1],"edus":[]}`), ErrBadSignature},
		{"a request signed with a key the origin does not publish is an unknown key", sign(testKey(2), "ed25519:other"), body, ErrUnknownKey},
		{"a request signed with another key under the origin's key ID fails", sign(testKey(2), "ed25519:a"), body, ErrBadSignature},
		{"a request whose origin serves no keys fails the fetch", unreachable, body, ErrKeyFetch},
		{"a request without destination must be completed first", noDest, body, ErrXMatrixMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ring.Verify(t.Context(), tt.x, "PUT", uri, tt.body)
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("got %v; want %v", err, tt.want)
			}
		})
	}
}

func TestKeyRingRefusesBadInputWithoutFetching(t *testing.T) {
	var fetches atomic.Int32
	ring := NewKeyRing(func(context.Context, string) ([]byte, error) {
		fetches.Add(1)
		return nil, errors.New("unreachable")
	}, nil, nil)
	tests := []struct{ name, server, keyID string }{
		{"an invalid server name is refused", "bad_name", "ed25519:a"},
		{"a non-ed25519 key ID is refused", "hs.example", "curve25519:a"},
		{"the negative-cache marker is not a key ID", "hs.example", recentFetch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := ring.PublicKey(t.Context(), tt.server, tt.keyID, time.Now()); !errors.Is(err, ErrUnknownKey) {
				t.Errorf("got %v; want ErrUnknownKey", err)
			}
		})
	}
	if n := fetches.Load(); n != 0 {
		t.Errorf("%d fetches for invalid input", n)
	}
}

func TestKeyRingWaiterHonoursItsContext(t *testing.T) {
	clock := &fakeClock{t: time.UnixMilli(1_700_000_000_000)}
	ks := newKeyServer(t, clock)
	gate := make(chan struct{})
	openGate := sync.OnceFunc(func() { close(gate) })
	t.Cleanup(openGate)
	ks.gate = gate
	ring := newTestRing(clock)

	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		_, err := ring.PublicKey(ctx, ks.name, "ed25519:a", clock.now())
		done <- err
	}()
	waitFor(t, func() bool { return ks.hits.Load() >= 1 })
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled waiter: %v", err)
	}
	// The fetch itself went on and its result serves the next caller without a second fetch.
	openGate()
	waitFor(t, func() bool {
		ring.mu.Lock()
		defer ring.mu.Unlock()
		return len(ring.inflight) == 0
	})
	if _, err := ring.PublicKey(t.Context(), ks.name, "ed25519:a", clock.now()); err != nil {
		t.Errorf("after the fetch finished: %v", err)
	}
	if got := ks.hits.Load(); got != 1 {
		t.Errorf("%d fetches; want 1", got)
	}
}

func TestKeyRingSurvivesPanickingFetch(t *testing.T) {
	ring := NewKeyRing(func(context.Context, string) ([]byte, error) { panic("boom") }, nil, nil)
	if _, err := ring.PublicKey(t.Context(), "hs.example", "ed25519:a", time.Now()); !errors.Is(err, ErrKeyFetch) {
		t.Errorf("got %v; want ErrKeyFetch", err)
	}
}

func TestKeyRingIsBounded(t *testing.T) {
	clock := &fakeClock{t: time.UnixMilli(1_700_000_000_000)}
	ring := newTestRing(clock)
	ring.maxEntries = 3
	var servers []*keyServer
	for range 5 {
		servers = append(servers, newKeyServer(t, clock))
	}
	for _, ks := range servers {
		if _, err := ring.PublicKey(t.Context(), ks.name, "ed25519:a", clock.now()); err != nil {
			t.Fatalf("lookup: %v", err)
		}
		if _, err := ring.PublicKey(t.Context(), "127.0.0.1:1", "ed25519:a", clock.now()); !errors.Is(err, ErrKeyFetch) {
			t.Fatalf("unreachable: %v", err)
		}
		clock.advance(negativeTTL + time.Second)
	}
	ring.mu.Lock()
	defer ring.mu.Unlock()
	if len(ring.keys) > 3 || len(ring.negative) > 3 {
		t.Errorf("cache holds %d keys and %d negative entries; limit 3", len(ring.keys), len(ring.negative))
	}
	// The newest server's key must have survived eviction.
	if _, ok := ring.keys[keyRef{servers[4].name, "ed25519:a"}]; !ok {
		t.Error("the most recently fetched key was evicted")
	}
}
