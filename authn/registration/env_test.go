package registration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/timstack/timstack/authn/idp"
	"github.com/timstack/timstack/certs"
	"github.com/timstack/timstack/directory"
	"github.com/timstack/timstack/directory/store"
	"github.com/timstack/timstack/directory/store/sqlite"
)

// Profession OIDs used in the tests.
const (
	oidPraxisArzt = "1.2.276.0.76.4.50" // Betriebsstätte Arzt (institution)
	oidArzt       = "1.2.276.0.76.4.30" // Ärztin/Arzt (person)
	oidKasse      = "1.2.276.0.76.4.59" // Betriebsstätte Kostenträger
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// fakeIDP stands in for the IDP relying party in these unit tests: a code maps to the identity the
// (real) IDP would have verified.
type fakeIDP struct {
	mu     sync.Mutex
	n      int
	states map[string]bool
	codes  map[string]*idp.Identity
	fail   bool
}

func (f *fakeIDP) Begin(_ context.Context, opts idp.BeginOptions) (string, string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail {
		return "", "", errors.New("idp down")
	}
	if opts.CardType != "SMC-B" {
		return "", "", fmt.Errorf("card type %q", opts.CardType)
	}
	f.n++
	st := fmt.Sprintf("state-%d", f.n)
	f.states[st] = true
	return "https://idp.test/auth?state=" + st + "&cardType=SMC-B", st, nil
}

func (f *fakeIDP) Complete(_ context.Context, state, code string) (*idp.Identity, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.states[state] {
		return nil, errors.New("unknown state")
	}
	delete(f.states, state)
	id, ok := f.codes[code]
	if !ok {
		return nil, errors.New("unknown code")
	}
	c := *id
	return &c, nil
}

// fakeOpenID answers as a homeserver's openid/userinfo would: token → user, user must be on serverName.
type fakeOpenID struct {
	mu    sync.Mutex
	users map[string]string
	// lax skips the wantMXID comparison, to prove the service checks the answer itself.
	lax   bool
	calls []string
}

func (f *fakeOpenID) Validate(_ context.Context, token, serverName, want string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, serverName)
	u, ok := f.users[token]
	if !ok {
		return "", errors.New("refused: unknown token")
	}
	if _, srv, _ := ParseMXID(u); srv != serverName {
		return "", errors.New("refused: token of another server")
	}
	if want != "" && u != want && !f.lax {
		return "", errors.New("refused: sub mismatch")
	}
	return u, nil
}

// env is a real directory (SQLite) plus the registration service under test, both over HTTP.
type env struct {
	t       *testing.T
	clock   *fakeClock
	dirSt   store.Store
	dir     *directory.Server
	dirHTTP *httptest.Server
	root    *certs.TestCA
	idp     *fakeIDP
	openid  *fakeOpenID
	st      Store
	svc     *Service
	http    *httptest.Server
	cfg     Config
}

func newEnv(t *testing.T, variant string) *env {
	t.Helper()
	ctx := context.Background()
	real := time.Now()
	e := &env{t: t, clock: &fakeClock{t: real.Truncate(time.Second)}}
	root, err := certs.NewTestCA("registration test root", certs.KeyBrainpoolP256r1, real.Add(-time.Hour), real.Add(90*24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	e.root = root
	listCert, listKey, err := root.Issue(certs.IssueRequest{Profile: certs.IssueProfileFListSigner, NotBefore: real.Add(-time.Hour), NotAfter: real.Add(60 * 24 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	e.dirSt, err = sqlite.Open(ctx, filepath.Join(t.TempDir(), "dir.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.dirSt.Close() })
	e.dirHTTP = httptest.NewUnstartedServer(nil)
	base := "http://" + e.dirHTTP.Listener.Addr().String()
	e.dir, err = directory.New(ctx, directory.Config{BaseURL: base}, directory.Deps{
		Store: e.dirSt, NotFound: func(err error) bool { return errors.Is(err, store.ErrNotFound) },
		ListSigners:     []directory.ListSigner{{Alg: certs.AlgBP256R1, Signer: listKey, Chain: []*certs.Certificate{listCert}}},
		RegServiceTrust: certs.NewTrustStore(root.Cert),
		Version:         "test",
	})
	if err != nil {
		t.Fatal(err)
	}
	e.dirHTTP.Config.Handler = e.dir.Handler()
	e.dirHTTP.Start()
	t.Cleanup(e.dirHTTP.Close)
	secret, err := directory.KVClients{KV: e.dirSt}.Register(ctx, "regservice-test")
	if err != nil {
		t.Fatal(err)
	}

	sigCert, sigKey, err := root.Issue(certs.IssueRequest{Profile: certs.IssueProfileFDSigTIM, NotBefore: real.Add(-time.Hour), NotAfter: real.Add(60 * 24 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	e.st = openTestStore(t)
	e.idp = &fakeIDP{states: map[string]bool{}, codes: map[string]*idp.Identity{}}
	e.openid = &fakeOpenID{users: map[string]string{}}
	raw := fmt.Sprintf(`
public_url: https://reg.tim.test
variant: %s
database: unused.db
directory: {url: %s, client_id: regservice-test, client_secret_file: unused}
federation_list: {trust_dir: unused}
signer: {cert_file: unused, key_file: unused}
idp: {issuer: https://idp.test, client_id: reg, redirect_uri: https://reg.tim.test/registration/v1/callback, trust_dir: unused}
`, variant, base)
	cfg, err := ParseConfig([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	e.cfg = *cfg
	client := &DirectoryClient{BaseURL: base, ClientID: "regservice-test", ClientSecret: secret}
	e.svc, err = New(e.cfg, Deps{
		Store: e.st, IDP: e.idp, Directory: client, Lists: client, OpenID: e.openid,
		ListTrust: certs.NewTrustStore(root.Cert), Signer: sigKey, SignerChain: []*certs.Certificate{sigCert, root.Cert},
		Now: e.clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	e.http = httptest.NewServer(e.svc.Handler())
	t.Cleanup(e.http.Close)
	return e
}

// seedOrganization stores an active (or inactive) Organization with the Telematik-ID in the directory.
func (e *env) seedOrganization(id, telematikID string, active bool) {
	e.t.Helper()
	doc := fmt.Sprintf(`{"resourceType":"Organization","id":%q,"meta":{"tag":[{"system":"https://gematik.de/fhir/directory/CodeSystem/Origin","code":"ldap"}]},`+
		`"active":%t,"identifier":[{"system":"https://gematik.de/fhir/sid/telematik-id","value":%q}],"name":"Praxis %s"}`, id, active, telematikID, id)
	if _, err := (&directory.Writer{Store: e.dirSt}).Put(context.Background(), [][]byte{[]byte(doc)}); err != nil {
		e.t.Fatal(err)
	}
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("body %q: %v", r.body, err)
	}
	return m
}

// do calls the registration service. hdr: alternating header names and values.
func (e *env) do(method, path, token, body string, hdr ...string) response {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.http.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

// signIn runs login → callback with the card's identity and returns the callback's answer.
func (e *env) signIn(id *idp.Identity) response {
	e.t.Helper()
	r := e.do("GET", "/registration/v1/login", "", "", "Accept", "application/json")
	if r.status != 200 {
		e.t.Fatalf("login: %d %s", r.status, r.body)
	}
	u, _ := url.Parse(r.json(e.t)["authURL"].(string))
	code := fmt.Sprintf("code-%s-%d", id.TelematikID, time.Now().UnixNano())
	e.idp.mu.Lock()
	e.idp.codes[code] = id
	e.idp.mu.Unlock()
	return e.do("GET", "/registration/v1/callback?code="+url.QueryEscape(code)+"&state="+url.QueryEscape(u.Query().Get("state")), "", "")
}

// admin is a signed-in Org-Admin.
type admin struct {
	secret  []byte
	session string
}

// enrol signs a new organisation up and finishes the TOTP enrolment.
func (e *env) enrol(id *idp.Identity) admin {
	e.t.Helper()
	r := e.signIn(id)
	if r.status != 201 {
		e.t.Fatalf("sign-up: %d %s", r.status, r.body)
	}
	m := r.json(e.t)
	enr := m["totpEnrolment"].(map[string]any)
	secret, err := b32.DecodeString(enr["secret"].(string))
	if err != nil {
		e.t.Fatal(err)
	}
	tr := e.totp(m["pending"].(string), TOTPAt(secret, e.clock.Now()))
	if tr.status != 200 {
		e.t.Fatalf("totp: %d %s", tr.status, tr.body)
	}
	return admin{secret: secret, session: tr.json(e.t)["session"].(string)}
}

func (e *env) totp(pending, code string) response {
	return e.do("POST", "/registration/v1/totp", "", fmt.Sprintf(`{"pending":%q,"code":%q}`, pending, code))
}

// directoryList fetches the directory's current signed list directly.
func (e *env) directoryList() []byte {
	e.t.Helper()
	jws, _, err := e.dir.Federation().List(certs.AlgBP256R1, -1)
	if err != nil {
		e.t.Fatal(err)
	}
	return jws
}
