package dirfacts

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/timstack/timstack/certs"
	"github.com/timstack/timstack/directory"
	"github.com/timstack/timstack/directory/store"
)

// Telematik-IDs and organisation types of the seeded directory, after gematik's VZD examples.
const (
	practiceTID = "1-2arvtst-ap000052"       // Betriebsstätte Arzt
	pharmacyTID = "3-07.2.1444560000.16.108" // Öffentliche Apotheke
	gematikTID  = "9-2.58.00000040"          // Betriebsstätte gematik + TI-M provider
	unknownTID  = "1-20.59.99999999"         // in no Organization

	codeArzt     = "1.2.276.0.76.4.50"
	codeApotheke = "1.2.276.0.76.4.54"
	codeGematik  = "1.2.276.0.76.4.58"
)

func orgJSON(id, tid string, types ...[2]string) string {
	codings := ""
	for i, t := range types {
		if i > 0 {
			codings += ","
		}
		codings += `{"coding":[{"system":"` + t[0] + `","code":"` + t[1] + `"}]}`
	}
	return `{"resourceType":"Organization","id":"` + id + `",` +
		`"meta":{"tag":[{"system":"https://gematik.de/fhir/directory/CodeSystem/Origin","code":"ldap"}]},` +
		`"identifier":[{"system":"https://gematik.de/fhir/sid/telematik-id","value":"` + tid + `"}],` +
		`"active":true,"type":[` + codings + `],"name":"Org ` + id + `"}`
}

// testDirectory is a real directory (SQLite store) behind httptest; every request to it is counted.
type testDirectory struct {
	t        *testing.T
	srv      *directory.Server
	http     *httptest.Server
	writer   *directory.Writer
	requests atomic.Int64
	// gate, when set, is waited on by every request before the directory answers it.
	gate atomic.Pointer[chan struct{}]
	// fail, when non-zero, is the status answered instead of asking the directory.
	fail atomic.Int64
}

func newTestDirectory(t *testing.T) *testDirectory {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "vzd.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	now := time.Now()
	ca, err := certs.NewTestCA("dirfacts test root", certs.KeyP256, now.Add(-time.Hour), now.Add(48*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	cert, key, err := ca.Issue(certs.IssueRequest{Profile: certs.IssueProfileFListSigner, KeyAlgorithm: certs.KeyP256,
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	d := &testDirectory{t: t, writer: &directory.Writer{Store: st}}
	d.http = httptest.NewUnstartedServer(nil)
	d.srv, err = directory.New(ctx, directory.Config{BaseURL: "http://" + d.http.Listener.Addr().String()}, directory.Deps{
		Store: st, NotFound: func(err error) bool { return errors.Is(err, store.ErrNotFound) },
		ListSigners: []directory.ListSigner{{Alg: certs.AlgES256, Signer: key, Chain: []*certs.Certificate{cert}}},
		Log:         slog.New(slog.DiscardHandler), Version: "test",
	})
	if err != nil {
		t.Fatal(err)
	}
	h := d.srv.Handler()
	d.http.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d.requests.Add(1)
		if g := d.gate.Load(); g != nil {
			<-*g
		}
		if s := d.fail.Load(); s != 0 {
			http.Error(w, "induced failure", int(s))
			return
		}
		h.ServeHTTP(w, r)
	})
	d.http.Start()
	t.Cleanup(d.http.Close)
	d.put(orgJSON("practice", practiceTID, [2]string{ProfessionOIDSystem, codeArzt}))
	d.put(orgJSON("pharmacy", pharmacyTID, [2]string{ProfessionOIDSystem, codeApotheke}))
	d.put(orgJSON("gematik", gematikTID, [2]string{ProfessionOIDSystem, codeGematik}, [2]string{ProviderTypeSystem, "tim-provider"}))
	return d
}

func (d *testDirectory) put(docs ...string) {
	d.t.Helper()
	var b [][]byte
	for _, s := range docs {
		b = append(b, []byte(s))
	}
	if _, err := d.writer.Put(context.Background(), b); err != nil {
		d.t.Fatal(err)
	}
}

func (d *testDirectory) token(kind directory.TokenKind) string {
	d.t.Helper()
	tok, _, err := d.srv.Tokens().Issue(kind, "@proxy:hs1.tim.test", directory.Claims{})
	if err != nil {
		d.t.Fatal(err)
	}
	return tok
}

// clock is a settable test clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// newResolver builds a resolver for url with a token file holding token; mutate adjusts the config.
func newResolver(t *testing.T, url, token string, clk *clock, mutate func(*Config)) (*Resolver, string) {
	t.Helper()
	tokenFile := filepath.Join(t.TempDir(), "search.token")
	writeFile(t, tokenFile, token+"\n")
	cfg := Config{URL: url, TokenFile: tokenFile}
	if mutate != nil {
		mutate(&cfg)
	}
	r, err := New(cfg, &http.Client{}, slog.New(slog.DiscardHandler), clk.Now)
	if err != nil {
		t.Fatal(err)
	}
	return r, tokenFile
}
