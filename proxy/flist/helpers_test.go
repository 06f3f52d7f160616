package flist

import (
	"bytes"
	"context"
	"crypto"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/timstack/timstack/certs"
)

// testStart is the fake clock's start; the test PKI is valid a year either side.
var testStart = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// fakeClock is a settable clock shared by keeper, OCSP responder and verifier.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock(t time.Time) *fakeClock { return &fakeClock{t: t} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// testPKI is a root → component CA (like GEM.KOMP-CA) with list signers (brainpool and P-256) and a
// delegated OCSP responder served over HTTP.
type testPKI struct {
	clock     *fakeClock
	ca        *certs.TestCA
	bpCert    *certs.Certificate
	bpKey     crypto.Signer
	esCert    *certs.Certificate
	esKey     crypto.Signer
	trust     *certs.TrustStore
	responder *certs.OCSPResponder
	ocspURL   string
}

func newTestPKI(t *testing.T, clock *fakeClock) *testPKI {
	t.Helper()
	root, err := certs.NewTestCA("flist Root-CA", certs.KeyBrainpoolP256r1, testStart.AddDate(-1, 0, 0), testStart.AddDate(1, 0, 0))
	if err != nil {
		t.Fatal(err)
	}
	ca, err := root.IssueSubCA(certs.IssueRequest{CommonName: "flist KOMP-CA", KeyAlgorithm: certs.KeyBrainpoolP256r1})
	if err != nil {
		t.Fatal(err)
	}
	p := &testPKI{clock: clock, ca: ca, trust: certs.NewTrustStore(ca.Cert)}
	if p.bpCert, p.bpKey, err = ca.Issue(certs.IssueRequest{Profile: certs.IssueProfileFListSigner, SubjectSerialNumber: "00001-A", OCSPURL: "http://ocsp.invalid/ec"}); err != nil {
		t.Fatal(err)
	}
	if p.esCert, p.esKey, err = ca.Issue(certs.IssueRequest{Profile: certs.IssueProfileFListSigner, KeyAlgorithm: certs.KeyP256, OCSPURL: "http://ocsp.invalid/ec"}); err != nil {
		t.Fatal(err)
	}
	ocspCert, ocspKey, err := ca.Issue(certs.IssueRequest{Profile: certs.IssueProfileOCSPSigner})
	if err != nil {
		t.Fatal(err)
	}
	p.responder = &certs.OCSPResponder{Signer: ocspKey, SignerCert: ocspCert, Issuers: []*certs.Certificate{ca.Cert}, DefaultGood: true, Now: clock.Now}
	srv := httptest.NewServer(p.responder)
	t.Cleanup(srv.Close)
	p.ocspURL = srv.URL
	return p
}

// verifier is what the proxy builds: full verification with OCSP required, against the fake clock's time.
func (p *testPKI) verifier() Verifier {
	rc := &certs.OCSPChecker{Trust: p.trust, Policy: certs.OCSPRequire, URLOverride: func(*certs.Certificate, *certs.Certificate) string { return p.ocspURL }}
	return func(ctx context.Context, jws []byte, at time.Time) (*certs.FederationList, error) {
		return certs.VerifyFederationList(ctx, jws, certs.FederationListOptions{Trust: p.trust, At: at, Revocation: rc})
	}
}

// sign returns a list of version v with the given domains (telematikID derived from the name).
func (p *testPKI) sign(t *testing.T, alg certs.JWSAlgorithm, v int64, domains ...string) []byte {
	t.Helper()
	var ds []certs.FederationDomain
	for _, d := range domains {
		ds = append(ds, certs.FederationDomain{Domain: d, TelematikID: "1-" + d, IsInsurance: strings.HasPrefix(d, "kk.")})
	}
	key, cert := p.bpKey, p.bpCert
	if alg == certs.AlgES256 {
		key, cert = p.esKey, p.esCert
	}
	jws, err := certs.SignFederationList(key, alg, []*certs.Certificate{cert}, v, ds)
	if err != nil {
		t.Fatal(err)
	}
	return jws
}

// tamper changes one base64url character in the payload of a compact JWS.
func tamper(jws []byte) []byte {
	parts := bytes.Split(bytes.TrimSpace(jws), []byte("."))
	p := append([]byte(nil), parts[1]...)
	i := len(p) / 2
	if p[i] == 'A' {
		p[i] = 'B'
	} else {
		p[i] = 'A'
	}
	parts[1] = p
	return bytes.Join(parts, []byte("."))
}

// providerServer is a directory speaking the provider API: client credentials → /ti-provider-authenticate
// → /tim-provider-services/FederationList/federationList.jws with 200/204 by version.
type providerServer struct {
	*httptest.Server
	mu          sync.Mutex
	lists       map[string][]byte // sigAlg → JWS
	version     int64
	down        bool
	expiresIn   int64
	ccTokens    map[string]bool
	ptTokens    map[string]bool
	rejectAll   bool // answer 401 to every provider token
	tokenCalls  int
	authCalls   int
	listCalls   int
	lastQuery   string
	issuedCount int
}

const (
	testClientID     = "regservice-1"
	testClientSecret = "s3cret"
)

func newProviderServer(t *testing.T) *providerServer {
	t.Helper()
	s := &providerServer{lists: map[string][]byte{}, expiresIn: 86400, ccTokens: map[string]bool{}, ptTokens: map[string]bool{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+providerTokenPath, s.token)
	mux.HandleFunc("GET "+providerAuthenticatePath, s.authenticate)
	mux.HandleFunc("GET "+providerListPath, s.list)
	s.Server = httptest.NewServer(mux)
	t.Cleanup(s.Close)
	return s
}

func (s *providerServer) set(version int64, lists map[string][]byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.version, s.lists = version, lists
}

func (s *providerServer) setDown(down bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down = down
}

// revokeProviderTokens forgets every issued provider token, as a restarted directory would.
func (s *providerServer) revokeProviderTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ptTokens = map[string]bool{}
}

func (s *providerServer) counts() (token, auth, list int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tokenCalls, s.authCalls, s.listCalls
}

func (s *providerServer) issue(prefix string) string {
	s.issuedCount++
	return prefix + strconv.Itoa(s.issuedCount)
}

func bearerOf(r *http.Request) string {
	return strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
}

func (s *providerServer) token(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokenCalls++
	if s.down {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	id, secret, ok := r.BasicAuth()
	if err := r.ParseForm(); err != nil || r.PostForm.Get("grant_type") != "client_credentials" || !ok || id != testClientID || secret != testClientSecret {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	tok := s.issue("cc-")
	s.ccTokens[tok] = true
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"access_token":%q,"token_type":"Bearer","expires_in":300}`, tok)
}

func (s *providerServer) authenticate(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.authCalls++
	if !s.ccTokens[bearerOf(r)] {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	tok := s.issue("pt-")
	s.ptTokens[tok] = true
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"access_token":%q,"client_id":%q,"token_type":"Bearer","expires_in":%d}`, tok, testClientID, s.expiresIn)
}

func (s *providerServer) list(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.listCalls++
	s.lastQuery = r.URL.RawQuery
	if s.down {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	if s.rejectAll || !s.ptTokens[bearerOf(r)] {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	alg := r.URL.Query().Get("sigAlg")
	jws, ok := s.lists[alg]
	if !ok {
		w.WriteHeader(http.StatusNotFound)
		return
	}
	if v := r.URL.Query().Get("version"); v != "" {
		have, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		if have >= s.version {
			w.WriteHeader(http.StatusNoContent)
			return
		}
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	_, _ = w.Write(jws)
}

func (s *providerServer) source() *ProviderAPISource {
	return &ProviderAPISource{BaseURL: s.URL, ClientID: testClientID, ClientSecret: testClientSecret, HTTP: s.Client()}
}

// regServer is our registration service's I_internVerification: GET ?version=N → 200 JWS or 304.
type regServer struct {
	*httptest.Server
	mu      sync.Mutex
	jws     []byte
	version int64
	status  int // forced status when non-zero
	calls   int
	queries []string
	auth    []string
}

func newRegServer(t *testing.T) *regServer {
	t.Helper()
	s := &regServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.calls++
		s.queries = append(s.queries, r.URL.RawQuery)
		s.auth = append(s.auth, r.Header.Get("Authorization"))
		if s.status != 0 {
			w.WriteHeader(s.status)
			return
		}
		if v := r.URL.Query().Get("version"); v != "" {
			if have, _ := strconv.ParseInt(v, 10, 64); have >= s.version {
				w.WriteHeader(http.StatusNotModified)
				return
			}
		}
		w.Header().Set("Content-Type", "application/jose")
		_, _ = w.Write(s.jws)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *regServer) set(version int64, jws []byte, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.version, s.jws, s.status = version, jws, status
}

// logBuffer collects log output for assertions.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func testLogger(buf *logBuffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// testConfig is the default configuration with a temporary cache directory.
func testConfig(t *testing.T) Config {
	t.Helper()
	c := Config{CacheDir: t.TempDir()}
	c.Defaults()
	return c
}

func mustNew(t *testing.T, cfg Config, src Source, verify Verifier, clock *fakeClock, logs *logBuffer) *Keeper {
	t.Helper()
	if logs == nil {
		logs = &logBuffer{}
	}
	k, err := New(cfg, src, verify, testLogger(logs), clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// recorder collects subscriber calls.
type recorder struct {
	mu    sync.Mutex
	snaps []Snapshot
}

func (r *recorder) record(s Snapshot) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.snaps = append(r.snaps, s)
}

func (r *recorder) all() []Snapshot {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Snapshot(nil), r.snaps...)
}
