package dirfacts

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/timstack/timstack/directory"
)

func TestOrganizationTypesFromTheDirectory(t *testing.T) {
	d := newTestDirectory(t)
	r, _ := newResolver(t, d.http.URL, d.token(directory.TokenSearch), newClock(), nil)
	cases := []struct {
		name string
		tid  string
		want []string
	}{
		{name: "a practice has the Betriebsstätte Arzt type", tid: practiceTID, want: []string{codeArzt}},
		{name: "a pharmacy has the Öffentliche Apotheke type", tid: pharmacyTID, want: []string{codeApotheke}},
		{name: "profession OID and provider type are both returned, sorted", tid: gematikTID, want: []string{codeGematik, "tim-provider"}},
		{name: "a Telematik-ID in no organisation has no types and is no error", tid: unknownTID, want: []string{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := r.OrganizationTypes(context.Background(), tc.tid)
			if err != nil {
				t.Fatal(err)
			}
			if got == nil || !slices.Equal(got, tc.want) {
				t.Errorf("types %#v, want %#v", got, tc.want)
			}
		})
	}
	// Every answer, the empty one included, is cached: asking again costs no request.
	before := d.requests.Load()
	for _, tc := range cases {
		if _, err := r.OrganizationTypes(context.Background(), tc.tid); err != nil {
			t.Fatal(err)
		}
	}
	if n := d.requests.Load() - before; n != 0 {
		t.Errorf("%d requests for cached answers, want 0", n)
	}
}

func TestCacheExpiry(t *testing.T) {
	d := newTestDirectory(t)
	clk := newClock()
	r, _ := newResolver(t, d.http.URL, d.token(directory.TokenSearch), clk, func(c *Config) {
		c.CacheTTL, c.NegativeTTL = time.Hour, time.Minute
	})
	mustTypes(t, r, practiceTID, codeArzt)
	mustTypes(t, r, unknownTID)

	// The directory changes: the practice becomes a hospital and the unknown ID appears as a pharmacy.
	d.put(orgJSON("practice", practiceTID, [2]string{ProfessionOIDSystem, "1.2.276.0.76.4.53"}))
	d.put(orgJSON("new", unknownTID, [2]string{ProfessionOIDSystem, codeApotheke}))

	clk.Advance(time.Minute + time.Second)
	mustTypes(t, r, practiceTID, codeArzt)    // found types live for CacheTTL
	mustTypes(t, r, unknownTID, codeApotheke) // "not found" only for NegativeTTL
	clk.Advance(time.Hour)
	mustTypes(t, r, practiceTID, "1.2.276.0.76.4.53")
}

func mustTypes(t *testing.T, r *Resolver, tid string, want ...string) {
	t.Helper()
	got, err := r.OrganizationTypes(context.Background(), tid)
	if err != nil {
		t.Fatalf("%s: %v", tid, err)
	}
	if want == nil {
		want = []string{}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("%s: types %q, want %q", tid, got, want)
	}
}

func TestDirectoryDown(t *testing.T) {
	t.Run("a closed directory is an error, cached for negative_ttl", func(t *testing.T) {
		d := newTestDirectory(t)
		clk := newClock()
		counter := &countingTransport{next: http.DefaultTransport}
		tokenFile := t.TempDir() + "/tok"
		writeFile(t, tokenFile, d.token(directory.TokenSearch))
		r, err := New(Config{URL: d.http.URL, TokenFile: tokenFile, NegativeTTL: time.Minute}, &http.Client{Transport: counter}, nil, clk.Now)
		if err != nil {
			t.Fatal(err)
		}
		mustTypes(t, r, practiceTID, codeArzt)
		d.http.Close()
		clk.Advance(2 * time.Hour)
		for i := range 3 {
			if _, err := r.OrganizationTypes(context.Background(), practiceTID); !errors.Is(err, ErrUnavailable) {
				t.Fatalf("lookup %d with the directory down: err=%v, want ErrUnavailable", i, err)
			}
		}
		if n := counter.n(); n != 2 {
			t.Errorf("%d requests, want 2 (one success, one failure; the retries answered from the cache)", n)
		}
		clk.Advance(time.Minute + time.Second)
		if _, err := r.OrganizationTypes(context.Background(), practiceTID); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("after negative_ttl: err=%v, want ErrUnavailable", err)
		}
		if n := counter.n(); n != 3 {
			t.Errorf("%d requests, want 3: after negative_ttl the directory is asked again", n)
		}
	})

	t.Run("a failing directory recovers after negative_ttl", func(t *testing.T) {
		d := newTestDirectory(t)
		clk := newClock()
		r, _ := newResolver(t, d.http.URL, d.token(directory.TokenSearch), clk, nil)
		d.fail.Store(http.StatusServiceUnavailable)
		if _, err := r.OrganizationTypes(context.Background(), practiceTID); !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "503") {
			t.Fatalf("503: err=%v, want ErrUnavailable naming the status", err)
		}
		d.fail.Store(0)
		if _, err := r.OrganizationTypes(context.Background(), practiceTID); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("within negative_ttl: err=%v, want the cached failure", err)
		}
		if n := d.requests.Load(); n != 1 {
			t.Errorf("%d requests within negative_ttl, want 1", n)
		}
		clk.Advance(time.Minute + time.Second)
		mustTypes(t, r, practiceTID, codeArzt)
	})
}

func TestFailedLookups(t *testing.T) {
	d := newTestDirectory(t)
	search := d.token(directory.TokenSearch)
	cases := []struct {
		name  string
		url   string
		token string
	}{
		{name: "a token of another kind is refused by the directory", url: d.http.URL, token: d.token(directory.TokenFdV)},
		{name: "a forged token is refused by the directory", url: d.http.URL, token: search[:len(search)-4] + "AAAA"},
		// A FHIR search answers "no match" with an empty bundle; a 404 means the URL does not lead to a
		// search API, and reading it as "no organisation" would switch the operator rule off unnoticed.
		{name: "a URL that is not the directory's base is an error, not an empty answer", url: d.http.URL + "/wrong", token: search},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, _ := newResolver(t, tc.url, tc.token, newClock(), nil)
			got, err := r.OrganizationTypes(context.Background(), practiceTID)
			if !errors.Is(err, ErrUnavailable) || got != nil {
				t.Errorf("types %q, err %v; want nil and ErrUnavailable", got, err)
			}
			if err != nil && strings.Contains(err.Error(), tc.token) {
				t.Error("the error quotes the token")
			}
		})
	}
}

func TestTokenFileRotation(t *testing.T) {
	d := newTestDirectory(t)
	clk := newClock()
	good := d.token(directory.TokenSearch)

	t.Run("a rewritten token file is read again", func(t *testing.T) {
		r, file := newResolver(t, d.http.URL, d.token(directory.TokenFdV), clk, nil)
		if _, err := r.OrganizationTypes(context.Background(), practiceTID); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("wrong token: err=%v", err)
		}
		// The /tim-authenticate answer, as a client would store it.
		writeFile(t, file, `{"access_token":"`+good+`","token_type":"Bearer","expires_in":86400}`)
		mustTypes(t, r, pharmacyTID, codeApotheke)
	})

	t.Run("a refused token is read again even when the file looks unchanged", func(t *testing.T) {
		bad := strings.Repeat("x", len(good))
		r, file := newResolver(t, d.http.URL, bad, clk, nil)
		fi, err := os.Stat(file)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r.OrganizationTypes(context.Background(), practiceTID); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("bad token: err=%v", err)
		}
		writeFile(t, file, good+"\n")
		if err := os.Chtimes(file, fi.ModTime(), fi.ModTime()); err != nil {
			t.Fatal(err)
		}
		mustTypes(t, r, pharmacyTID, codeApotheke)
	})

	t.Run("an empty token file is a failed lookup", func(t *testing.T) {
		r, file := newResolver(t, d.http.URL, good, clk, nil)
		writeFile(t, file, "\n")
		before := d.requests.Load()
		if _, err := r.OrganizationTypes(context.Background(), gematikTID); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("empty token file: err=%v", err)
		}
		if d.requests.Load() != before {
			t.Error("the directory was asked without a token")
		}
	})
}

func TestConcurrentLookupsShareOneRequest(t *testing.T) {
	d := newTestDirectory(t)
	r, _ := newResolver(t, d.http.URL, d.token(directory.TokenSearch), newClock(), nil)
	gate := make(chan struct{})
	d.gate.Store(&gate)
	const n = 50
	var started, done sync.WaitGroup
	results := make([][]string, n)
	errs := make([]error, n)
	for i := range n {
		started.Add(1)
		done.Add(1)
		go func() {
			defer done.Done()
			started.Done()
			results[i], errs[i] = r.OrganizationTypes(context.Background(), practiceTID)
		}()
	}
	started.Wait()
	// Every goroutine is at or in OrganizationTypes; the first request is held at the gate until the others
	// had time to join it.
	waitFor(t, func() bool { return d.requests.Load() >= 1 })
	time.Sleep(50 * time.Millisecond)
	close(gate)
	done.Wait()
	for i := range n {
		if errs[i] != nil || !slices.Equal(results[i], []string{codeArzt}) {
			t.Fatalf("lookup %d: %q, %v", i, results[i], errs[i])
		}
	}
	if got := d.requests.Load(); got != 1 {
		t.Errorf("%d requests for %d concurrent lookups, want 1", got, n)
	}
	// Callers own their slices.
	results[0][0] = "changed"
	mustTypes(t, r, practiceTID, codeArzt)
}

func TestCallerCancellationDoesNotFailTheSharedLookup(t *testing.T) {
	d := newTestDirectory(t)
	r, _ := newResolver(t, d.http.URL, d.token(directory.TokenSearch), newClock(), nil)
	gate := make(chan struct{})
	d.gate.Store(&gate)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := r.OrganizationTypes(ctx, practiceTID)
		errc <- err
	}()
	waitFor(t, func() bool { return d.requests.Load() == 1 })
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled caller: err=%v, want context.Canceled", err)
	}
	close(gate)
	// The request went on and its answer was cached for the next caller.
	mustTypes(t, r, practiceTID, codeArzt)
	if n := d.requests.Load(); n != 1 {
		t.Errorf("%d requests, want 1", n)
	}
}

func TestCacheIsBounded(t *testing.T) {
	d := newTestDirectory(t)
	r, _ := newResolver(t, d.http.URL, d.token(directory.TokenSearch), newClock(), func(c *Config) { c.CacheSize = 2 })
	mustTypes(t, r, practiceTID, codeArzt)
	mustTypes(t, r, pharmacyTID, codeApotheke)
	mustTypes(t, r, practiceTID, codeArzt) // practice is now the most recently used
	mustTypes(t, r, gematikTID, codeGematik, "tim-provider")
	if n := d.requests.Load(); n != 3 {
		t.Fatalf("%d requests, want 3", n)
	}
	mustTypes(t, r, practiceTID, codeArzt)
	if n := d.requests.Load(); n != 3 {
		t.Errorf("the most recently used entry was evicted (%d requests)", n)
	}
	mustTypes(t, r, pharmacyTID, codeApotheke)
	if n := d.requests.Load(); n != 4 {
		t.Errorf("the least recently used entry was kept (%d requests, want 4)", n)
	}
	r.mu.Lock()
	size := len(r.entries)
	r.mu.Unlock()
	if size != 2 {
		t.Errorf("cache holds %d entries, want 2", size)
	}
}

// Answers a real directory does not give, from a stand-in server.
func TestUnusableAnswers(t *testing.T) {
	const bundleHead = `{"resourceType":"Bundle","type":"searchset","entry":[`
	cases := []struct {
		name   string
		status int
		body   string
	}{
		{name: "an answer larger than the limit", status: 200, body: bundleHead + strings.Repeat(" ", 2048) + `]}`},
		{name: "an answer that is not JSON", status: 200, body: `<html>proxy error</html>`},
		{name: "a resource that is not a bundle", status: 200, body: `{"resourceType":"OperationOutcome"}`},
		{name: "a bundle with trailing data", status: 200, body: `{"resourceType":"Bundle","type":"searchset"} {}`},
		{name: "a type that is not a list of CodeableConcepts", status: 200,
			body: bundleHead + `{"resource":{"resourceType":"Organization","identifier":[{"system":"` + TelematikIDSystem + `","value":"` + practiceTID + `"}],"type":{"coding":[]}}}]}`},
		{name: "a redirect", status: http.StatusFound, body: ""},
		{name: "a server error", status: http.StatusInternalServerError, body: `{}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tc.status == http.StatusFound {
					http.Redirect(w, r, "http://elsewhere.invalid/", http.StatusFound)
					return
				}
				w.WriteHeader(tc.status)
				_, _ = w.Write([]byte(tc.body))
			}))
			defer srv.Close()
			r, _ := newResolver(t, srv.URL, "token", newClock(), func(c *Config) { c.MaxResponseBytes = 1024 })
			if got, err := r.OrganizationTypes(context.Background(), practiceTID); !errors.Is(err, ErrUnavailable) {
				t.Errorf("types %q, err %v; want ErrUnavailable", got, err)
			}
		})
	}
}

func TestUnusableTelematikIDs(t *testing.T) {
	d := newTestDirectory(t)
	r, _ := newResolver(t, d.http.URL, d.token(directory.TokenSearch), newClock(), nil)
	for _, tid := range []string{"", "a b", "x|y", "a\nb", strings.Repeat("1", 257), "\xff"} {
		if _, err := r.OrganizationTypes(context.Background(), tid); err == nil {
			t.Errorf("Telematik-ID %q was looked up", tid)
		}
	}
	if n := d.requests.Load(); n != 0 {
		t.Errorf("%d requests for unusable IDs, want 0", n)
	}
}

type countingTransport struct {
	next http.RoundTripper
	mu   sync.Mutex
	cnt  int
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.mu.Lock()
	c.cnt++
	c.mu.Unlock()
	return c.next.RoundTrip(r)
}

func (c *countingTransport) n() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cnt
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached within 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
