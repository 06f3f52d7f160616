package directory_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/timstack/timstack/certs"
	"github.com/timstack/timstack/directory"
	"github.com/timstack/timstack/directory/index"
	"github.com/timstack/timstack/directory/store"
	"github.com/timstack/timstack/directory/store/pgtest"
	"github.com/timstack/timstack/directory/store/postgres"
	"github.com/timstack/timstack/directory/store/sqlite"
)

var pg = pgtest.New()

func TestMain(m *testing.M) {
	code := m.Run()
	pg.Close()
	os.Exit(code)
}

// engines runs fn once per storage engine: the whole directory suite runs on PostgreSQL and SQLite.
func engines(t *testing.T, fn func(t *testing.T, st store.Store)) {
	t.Run("sqlite", func(t *testing.T) {
		st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "dir.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		fn(t, st)
	})
	t.Run("postgres", func(t *testing.T) {
		st, err := postgres.Open(context.Background(), pg.DSN(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		fn(t, st)
	})
}

func gematik(parts ...string) string {
	return filepath.Join(append([]string{"..", "testdata", "gematik"}, parts...)...)
}

// env is a running directory over one engine, with a test CA's federation-list signers (brainpool and
// P-256) and a homeserver double answering openid/userinfo as Synapse does.
type env struct {
	t      *testing.T
	st     store.Store
	srv    *directory.Server
	http   *httptest.Server
	root   *certs.TestCA
	writer *directory.Writer
	// userinfo maps an OpenID token to the sub the homeserver answers (recorded Synapse response shape).
	userinfo map[string]string
}

func newEnv(t *testing.T, st store.Store) *env {
	t.Helper()
	e := &env{t: t, st: st, userinfo: map[string]string{}}
	now := time.Now()
	root, err := certs.NewTestCA("directory test root", certs.KeyBrainpoolP256r1, now.Add(-time.Hour), now.Add(48*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	e.root = root
	var signers []directory.ListSigner
	for _, tc := range []struct {
		key certs.KeyAlgorithm
		alg certs.JWSAlgorithm
	}{{certs.KeyBrainpoolP256r1, certs.AlgBP256R1}, {certs.KeyP256, certs.AlgES256}} {
		cert, key, err := root.Issue(certs.IssueRequest{Profile: certs.IssueProfileFListSigner, KeyAlgorithm: tc.key, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		signers = append(signers, directory.ListSigner{Alg: tc.alg, Signer: key, Chain: []*certs.Certificate{cert}})
	}
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/_matrix/federation/v1/openid/userinfo" {
			http.NotFound(w, r)
			return
		}
		sub, ok := e.userinfo[r.URL.Query().Get("access_token")]
		if !ok {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = io.WriteString(w, `{"errcode":"M_UNKNOWN_TOKEN","error":"Access Token unknown or expired"}`)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]string{"sub": sub})
	}))
	t.Cleanup(hs.Close)
	resolve := func(_ context.Context, serverName string) (string, error) { return hs.URL, nil }
	e.http = httptest.NewUnstartedServer(nil)
	base := "http://" + e.http.Listener.Addr().String()
	e.srv, err = directory.New(context.Background(), directory.Config{BaseURL: base}, directory.Deps{
		Store: st, NotFound: func(err error) bool { return errors.Is(err, store.ErrNotFound) },
		ListSigners: signers, OpenID: &directory.MatrixOpenID{Resolve: resolve}, Version: "test",
	})
	if err != nil {
		t.Fatal(err)
	}
	e.http.Config.Handler = e.srv.Handler()
	e.http.Start()
	t.Cleanup(e.http.Close)
	e.writer = &directory.Writer{Store: st}
	return e
}

func (e *env) importFiles(legacy bool, files ...string) {
	e.t.Helper()
	var docs [][]byte
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			e.t.Fatal(err)
		}
		docs = append(docs, data)
	}
	w := &directory.Writer{Store: e.st, Legacy: legacy}
	if _, err := w.Put(context.Background(), docs); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) token(kind directory.TokenKind, sub string, c directory.Claims) string {
	e.t.Helper()
	tok, _, err := e.srv.Tokens().Issue(kind, sub, c)
	if err != nil {
		e.t.Fatal(err)
	}
	return tok
}

// do sends a request and returns status and body.
func (e *env) do(method, path, token string, body io.Reader, hdr ...string) (int, []byte, http.Header) {
	e.t.Helper()
	req, err := http.NewRequest(method, e.http.URL+path, body)
	if err != nil {
		e.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b, resp.Header
}

type bundle struct {
	ResourceType string `json:"resourceType"`
	Total        int    `json:"total"`
	Link         []struct {
		Relation, URL string
	} `json:"link"`
	Entry []struct {
		FullURL  string          `json:"fullUrl"`
		Resource json.RawMessage `json:"resource"`
		Search   struct {
			Mode string `json:"mode"`
		} `json:"search"`
	} `json:"entry"`
}

// entries returns "mode Type/id" for each entry, sorted.
func (b bundle) entries(t *testing.T) []string {
	var out []string
	for _, e := range b.Entry {
		var r struct{ ResourceType, ID string }
		if err := json.Unmarshal(e.Resource, &r); err != nil {
			t.Fatal(err)
		}
		out = append(out, e.Search.Mode+" "+r.ResourceType+"/"+r.ID)
	}
	sort.Strings(out)
	return out
}

func TestRecordedGematikSearchesReplay(t *testing.T) {
	engines(t, func(t *testing.T, st store.Store) {
		e := newEnv(t, st)
		for _, name := range []string{"Search_PractitionerRole_name.json", "Search_PractitionerRole_complex.json", "Search_HealthcareService_telematikID.json"} {
			t.Run(name, func(t *testing.T) {
				var sample struct {
					Request  []string `json:"request"`
					Response bundle   `json:"response"`
				}
				data, err := os.ReadFile(gematik("vzd", "samples", name))
				if err != nil {
					t.Fatal(err)
				}
				if err := json.Unmarshal(data, &sample); err != nil {
					t.Fatal(err)
				}
				var docs [][]byte
				for _, en := range sample.Response.Entry {
					docs = append(docs, en.Resource)
				}
				docs = append(docs, impliedPractitioners(t, sample.Request[0], sample.Response)...)
				w := &directory.Writer{Store: st, Legacy: true} // recorded TU data carries no Origin tags
				if _, err := w.Put(context.Background(), docs); err != nil {
					t.Fatal(err)
				}
				u, err := url.Parse(sample.Request[0])
				if err != nil {
					t.Fatal(err)
				}
				q := u.Query()
				q.Set("_count", "100")
				status, body, _ := e.do("GET", u.Path+"?"+q.Encode(), e.token(directory.TokenSearch, "@alice:hs1.tim.test", directory.Claims{}), nil)
				if status != 200 {
					t.Fatalf("status %d: %s", status, body)
				}
				var got bundle
				if err := json.Unmarshal(body, &got); err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(sample.Response.entries(t), got.entries(t)); diff != "" {
					t.Errorf("entries (-recorded +ours):\n%s", diff)
				}
				if got.Total != sample.Response.Total {
					t.Errorf("total %d, recorded %d", got.Total, sample.Response.Total)
				}
			})
		}
	})
}

// impliedPractitioners supplies what a recorded response without includes leaves out: the name sample
// (practitioner.active=true&practitioner.name=Timjamin, 83 roles, no _include) proves that each matched
// role's Practitioner is active and named "Timjamin …"; we add exactly that, nothing more, so the replay
// has the data the real server searched.
func impliedPractitioners(t *testing.T, request string, b bundle) [][]byte {
	if !strings.Contains(request, "practitioner.name=Timjamin") || strings.Contains(request, "_include") {
		return nil
	}
	var out [][]byte
	for i, en := range b.Entry {
		var role struct {
			Practitioner struct{ Reference string } `json:"practitioner"`
		}
		if err := json.Unmarshal(en.Resource, &role); err != nil {
			t.Fatal(err)
		}
		id := role.Practitioner.Reference[strings.LastIndexByte(role.Practitioner.Reference, '/')+1:]
		out = append(out, []byte(`{"resourceType":"Practitioner","id":"`+id+`","active":true,`+
			`"identifier":[{"system":"https://gematik.de/fhir/sid/telematik-id","value":"1-1-implied-`+id+`"}],`+
			`"name":[{"text":"Timjamin Implied`+strings.Repeat("x", i%3)+`","family":"Implied","given":["Timjamin"]}]}`))
	}
	return out
}

// providerToken runs the provider authentication chain as a registration service does: client
// credentials (our Keycloak stand-in) → /ti-provider-authenticate → provider token.
func (e *env) providerToken(clientID string) string {
	e.t.Helper()
	secret, err := directory.KVClients{KV: e.st}.Register(context.Background(), clientID)
	if err != nil {
		e.t.Fatal(err)
	}
	form := url.Values{"grant_type": {"client_credentials"}}
	req, _ := http.NewRequest("POST", e.http.URL+"/auth/realms/TI-Provider/protocol/openid-connect/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(clientID, secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var cc struct {
		AccessToken string `json:"access_token"`
	}
	if resp.StatusCode != 200 || json.NewDecoder(resp.Body).Decode(&cc) != nil {
		e.t.Fatalf("client credentials: status %d", resp.StatusCode)
	}
	status, body, _ := e.do("GET", "/ti-provider-authenticate", cc.AccessToken, nil)
	var pt struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
		ExpiresIn   int    `json:"expires_in"`
	}
	if status != 200 || json.Unmarshal(body, &pt) != nil || pt.TokenType != "Bearer" || pt.ExpiresIn != 86400 {
		e.t.Fatalf("ti-provider-authenticate: %d %s", status, body)
	}
	return pt.AccessToken
}

func (e *env) federationList(token, query string) (int, []byte) {
	e.t.Helper()
	status, body, _ := e.do("GET", "/tim-provider-services/FederationList/federationList.jws"+query, token, nil)
	return status, body
}

// seedOrganization stores an active (or inactive) Organization with the Telematik-ID.
func (e *env) seedOrganization(id, telematikID string, active bool) {
	e.t.Helper()
	act := "true"
	if !active {
		act = "false"
	}
	doc := `{"resourceType":"Organization","id":"` + id + `","meta":{"tag":[{"system":"https://gematik.de/fhir/directory/CodeSystem/Origin","code":"ldap"}]},` +
		`"active":` + act + `,"identifier":[{"system":"https://gematik.de/fhir/sid/telematik-id","value":"` + telematikID + `"}],"name":"Praxis ` + id + `"}`
	if _, err := e.writer.Put(context.Background(), [][]byte{[]byte(doc)}); err != nil {
		e.t.Fatal(err)
	}
}

func TestProviderAPIManagesDomainsAndSignsTheList(t *testing.T) {
	engines(t, func(t *testing.T, st store.Store) {
		e := newEnv(t, st)
		p1 := e.providerToken("regservice-a")
		p2 := e.providerToken("regservice-b")
		e.seedOrganization("org-1", "1-SMC-B-Testkarte-883110000129077", true)
		e.seedOrganization("kk-1", "5-SMC-B-Kasse-1", true)
		e.seedOrganization("old-1", "1-SMC-B-Inactive", false)
		trust := certs.NewTrustStore(e.root.Cert)

		status, v1 := e.federationList(p1, "")
		if status != 200 {
			t.Fatalf("initial list: %d", status)
		}
		l, err := certs.VerifyFederationList(context.Background(), v1, certs.FederationListOptions{Trust: trust, At: time.Now()})
		if err != nil || l.Len() != 0 {
			t.Fatalf("initial list: %v (%d domains)", err, l.Len())
		}

		post := func(token, body string) (int, string) {
			status, b, _ := e.do("POST", "/tim-provider-services/federation", token, strings.NewReader(body), "Content-Type", "application/json")
			return status, string(b)
		}
		cases := []struct {
			name   string
			token  string
			body   string
			status int
		}{
			{"a practice domain of an active organisation is added", p1, `{"domain":"HS1.tim.test","telematikID":"1-SMC-B-Testkarte-883110000129077","isInsurance":false}`, 200},
			{"an insurance domain with a valid IK is added", p1, `{"domain":"kasse.tim.test","telematikID":"5-SMC-B-Kasse-1","isInsurance":true,"ik":["109500969"]}`, 200},
			{"the same domain again is a conflict", p2, `{"domain":"hs1.tim.test","telematikID":"1-SMC-B-Testkarte-883110000129077","isInsurance":false}`, 409},
			{"an IK already used by another domain is a conflict", p2, `{"domain":"kasse2.tim.test","telematikID":"5-SMC-B-Kasse-1","isInsurance":true,"ik":["109500969"]}`, 409},
			{"an insurance domain without IK is refused", p1, `{"domain":"kasse3.tim.test","telematikID":"5-SMC-B-Kasse-1","isInsurance":true}`, 400},
			{"an IK on a non-insurance domain is refused", p1, `{"domain":"x.tim.test","telematikID":"1-SMC-B-Testkarte-883110000129077","isInsurance":false,"ik":["109500969"]}`, 400},
			{"an IK with a wrong check digit is refused", p1, `{"domain":"kasse4.tim.test","telematikID":"5-SMC-B-Kasse-1","isInsurance":true,"ik":["101575518"]}`, 400},
			{"a Telematik-ID without an active Organization is refused", p1, `{"domain":"y.tim.test","telematikID":"1-SMC-B-Inactive","isInsurance":false}`, 400},
			{"an unknown Telematik-ID is refused", p1, `{"domain":"z.tim.test","telematikID":"nobody","isInsurance":false}`, 400},
			{"an invalid domain name is refused", p1, `{"domain":"bad_domain!","telematikID":"1-SMC-B-Testkarte-883110000129077","isInsurance":false}`, 400},
			{"an unknown field is refused", p1, `{"domain":"w.tim.test","telematikID":"1-SMC-B-Testkarte-883110000129077","isInsurance":false,"extra":1}`, 400},
			{"no token is 401", "", `{"domain":"v.tim.test","telematikID":"1-SMC-B-Testkarte-883110000129077","isInsurance":false}`, 401},
			{"a search token is not a provider token", e.token(directory.TokenSearch, "@a:b", directory.Claims{}), `{"domain":"v.tim.test","telematikID":"1-SMC-B-Testkarte-883110000129077","isInsurance":false}`, 401},
		}
		for _, tc := range cases {
			if status, body := post(tc.token, tc.body); status != tc.status {
				t.Errorf("%s: status %d, want %d (%s)", tc.name, status, tc.status, body)
			}
		}

		// The list grew by exactly the two accepted domains, signed with both algorithms.
		for _, alg := range []string{"BP256R1", "ES256"} {
			status, jws := e.federationList(p2, "?sigAlg="+alg)
			if status != 200 {
				t.Fatalf("%s list: %d", alg, status)
			}
			l, err := certs.VerifyFederationList(context.Background(), jws, certs.FederationListOptions{Trust: trust, At: time.Now()})
			if err != nil {
				t.Fatalf("%s list: %v", alg, err)
			}
			if string(l.Algorithm) != alg || l.Len() != 2 {
				t.Errorf("%s list: alg %s, %d domains", alg, l.Algorithm, l.Len())
			}
			kasse, ok := l.Lookup("kasse.tim.test")
			if !ok || !kasse.IsInsurance || len(kasse.IK) != 1 || kasse.IK[0] != "109500969" {
				t.Errorf("%s list: kasse.tim.test = %+v", alg, kasse)
			}
			if status, body := e.federationList(p2, "?sigAlg="+alg+"&version="+itoa(l.Version)); status != 204 || len(body) != 0 {
				t.Errorf("current version: status %d, want 204", status)
			}
		}
		if status, _ := e.federationList(p1, "?sigAlg=RS256"); status != 400 {
			t.Errorf("unknown sigAlg: %d, want 400", status)
		}

		// Another provider may neither change nor delete p1's domain.
		status, body, _ := e.do("PUT", "/tim-provider-services/federation/hs1.tim.test", p2, strings.NewReader(`{"domain":"hs1.tim.test","telematikID":"1-SMC-B-Testkarte-883110000129077","isInsurance":false}`))
		if status != 403 {
			t.Errorf("PUT by another provider: %d %s", status, body)
		}
		if status, _, _ := e.do("DELETE", "/tim-provider-services/federation/hs1.tim.test", p2, nil); status != 403 {
			t.Errorf("DELETE by another provider: %d", status)
		}
		status, body, _ = e.do("GET", "/tim-provider-services/federation", p1, nil)
		var mine []directory.Domain
		if status != 200 || json.Unmarshal(body, &mine) != nil || len(mine) != 2 {
			t.Errorf("GET own domains: %d %s", status, body)
		}
		status, body, _ = e.do("GET", "/tim-provider-services/federation", p2, nil)
		if status != 200 || strings.TrimSpace(string(body)) != "[]" {
			t.Errorf("GET domains of a provider with none: %d %s", status, body)
		}

		// federationCheck: all fine → 204; the practice's organisation becomes inactive → listed.
		if status, _, _ := e.do("GET", "/tim-provider-services/federationCheck", p1, nil); status != 204 {
			t.Errorf("federationCheck with active organisations: %d", status)
		}
		e.seedOrganization("org-1", "1-SMC-B-Testkarte-883110000129077", false)
		status, body, _ = e.do("GET", "/tim-provider-services/federationCheck", p1, nil)
		if status != 200 || !strings.Contains(string(body), `"inactiveOrganizationDomains":[{"domain":"hs1.tim.test"`) {
			t.Errorf("federationCheck after deactivation: %d %s", status, body)
		}

		if status, _, _ := e.do("DELETE", "/tim-provider-services/federation/hs1.tim.test", p1, nil); status != 204 {
			t.Errorf("DELETE own domain: %d", status)
		}
		status, jws := e.federationList(p1, "")
		if l, err := certs.VerifyFederationList(context.Background(), jws, certs.FederationListOptions{Trust: trust, At: time.Now()}); status != 200 || err != nil || l.Len() != 1 {
			t.Errorf("list after delete: %d %v", status, err)
		}
	})
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func TestTimAuthenticateIssuesSearchTokensForFederatedServers(t *testing.T) {
	engines(t, func(t *testing.T, st store.Store) {
		e := newEnv(t, st)
		p := e.providerToken("regservice-a")
		e.seedOrganization("org-1", "1-SMC-B-Practice", true)
		e.seedOrganization("kk-1", "5-SMC-B-Kasse", true)
		for _, body := range []string{
			`{"domain":"hs1.tim.test","telematikID":"1-SMC-B-Practice","isInsurance":false,"redirectDomains":["matrix.hs1.tim.test"]}`,
			`{"domain":"kasse.tim.test","telematikID":"5-SMC-B-Kasse","isInsurance":true,"ik":["101575519"]}`,
		} {
			if status, b, _ := e.do("POST", "/tim-provider-services/federation", p, strings.NewReader(body)); status != 200 {
				t.Fatalf("add domain: %d %s", status, b)
			}
		}
		for name, want := range map[string]bool{"hs1.tim.test": true, "HS1.tim.test": true, "kasse.tim.test": true, "evil.example": false, "": false} {
			if got := e.srv.Federation().Federated(name); got != want {
				t.Errorf("Federated(%q) = %v, want %v", name, got, want)
			}
		}
		for _, c := range []struct {
			server, host string
			want         bool
		}{
			{"hs1.tim.test", "hs1.tim.test", true}, {"hs1.tim.test", "MATRIX.hs1.tim.test", true},
			{"hs1.tim.test", "kasse.tim.test", false}, {"kasse.tim.test", "matrix.hs1.tim.test", false},
			{"evil.example", "evil.example", false},
		} {
			if got := e.srv.Federation().AllowsHost(c.server, c.host); got != c.want {
				t.Errorf("AllowsHost(%q, %q) = %v, want %v", c.server, c.host, got, c.want)
			}
		}
		// The homeserver double answers userinfo like Synapse: {"sub": "@user:server"}.
		e.userinfo["tok-alice"] = "@alice:hs1.tim.test"
		e.userinfo["tok-versicherter"] = "@v123:kasse.tim.test"
		e.userinfo["tok-foreign"] = "@mallory:evil.example"

		auth := func(mxID, tok string) (int, map[string]any) {
			status, body, _ := e.do("GET", "/tim-authenticate?mxId="+mxID, "", nil, "X-Matrix-OpenID-Token", tok)
			var m map[string]any
			_ = json.Unmarshal(body, &m)
			return status, m
		}
		status, m := auth("hs1.tim.test", "tok-alice")
		if status != 200 || m["token_type"] != "Bearer" || m["expires_in"] != float64(86400) {
			t.Fatalf("practice user: %d %v", status, m)
		}
		searchTok := m["access_token"].(string)
		if status, _, _ := e.do("GET", "/search/PractitionerRole", searchTok, nil); status != 200 {
			t.Errorf("the search token does not open /search: %d", status)
		}
		if status, _, _ := e.do("GET", "/fdv/search/HealthcareService", searchTok, nil); status != 401 {
			t.Errorf("a /search token opened /fdv/search: %d", status)
		}
		status, m = auth("kasse.tim.test", "tok-versicherter")
		if status != 200 {
			t.Fatalf("insured user: %d %v", status, m)
		}
		fdvTok := m["access_token"].(string)
		if status, _, _ := e.do("GET", "/fdv/search/HealthcareService", fdvTok, nil); status != 200 {
			t.Errorf("the fdv token does not open /fdv/search: %d", status)
		}
		if status, _, _ := e.do("GET", "/search/PractitionerRole", fdvTok, nil); status != 401 {
			t.Errorf("an insurance domain's token opened /search: %d", status)
		}
		refusals := []struct {
			name, mxID, tok string
			status          int
		}{
			{"a server not on the federation list is refused", "evil.example", "tok-foreign", 401},
			{"a token whose sub belongs to another server is refused", "hs1.tim.test", "tok-foreign", 401},
			{"a token the homeserver does not know is refused", "hs1.tim.test", "tok-unknown", 401},
			{"a request without token is refused", "hs1.tim.test", "", 401},
		}
		for _, tc := range refusals {
			if status, m := auth(tc.mxID, tc.tok); status != tc.status || m["access_token"] != nil {
				t.Errorf("%s: %d %v, want %d", tc.name, status, m, tc.status)
			}
		}
	})
}

func TestGematikExamplesLoadAndSearchErrorsAreOperationOutcomes(t *testing.T) {
	engines(t, func(t *testing.T, st store.Store) {
		e := newEnv(t, st)
		examples, _ := filepath.Glob(gematik("vzd", "fhir", "*-*.json"))
		var files []string
		for _, f := range examples {
			base := filepath.Base(f)
			for _, typ := range []string{"Practitioner-", "PractitionerRole-", "Organization-", "HealthcareService-", "Location-", "Endpoint-"} {
				if strings.HasPrefix(base, typ) {
					files = append(files, f)
				}
			}
		}
		if len(files) < 18 {
			t.Fatalf("found only %d gematik examples", len(files))
		}
		e.importFiles(false, files...)
		tok := e.token(directory.TokenSearch, "@alice:hs1.tim.test", directory.Claims{})
		status, body, hdr := e.do("GET", "/search/Endpoint/PharmacyEndpointTIMExample", tok, nil)
		if status != 200 || hdr.Get("Content-Type") != "application/fhir+json" || !strings.Contains(string(body), "matrix:u/") {
			t.Errorf("read by id: %d %s", status, body)
		}
		for _, tc := range []struct {
			name, path string
			status     int
			code       string
		}{
			{"an unknown parameter is not silently ignored", "/search/PractitionerRole?colour=blue", 400, "not-supported"},
			{"an unknown resource type is refused", "/search/Patient", 400, "not-supported"},
			{"a malformed near is invalid", "/search/HealthcareService?location.near=1|2|3", 400, ""},
			{"an unknown id is not found", "/search/Endpoint/nope", 404, "not-found"},
		} {
			status, body, _ := e.do("GET", tc.path, tok, nil)
			var oo struct {
				ResourceType string                  `json:"resourceType"`
				Issue        []struct{ Code string } `json:"issue"`
			}
			if status != tc.status || json.Unmarshal(body, &oo) != nil || oo.ResourceType != "OperationOutcome" || (tc.code != "" && (len(oo.Issue) == 0 || oo.Issue[0].Code != tc.code)) {
				t.Errorf("%s: %d %s", tc.name, status, body)
			}
		}
		if status, body, _ := e.do("GET", "/search/HealthcareService", "", nil); status != 401 || !strings.Contains(string(body), "OperationOutcome") {
			t.Errorf("search without token: %d %s", status, body)
		}
		if status, body, _ := e.do("GET", "/metadata", "", nil); status != 200 || !strings.Contains(string(body), "CapabilityStatement") {
			t.Errorf("metadata: %d", status)
		}
	})
}

// A panic in a handler is answered with a 500 OperationOutcome, not a dropped connection.
func TestPanickingRequestGetsAnOperationOutcome(t *testing.T) {
	e := newEnv(t, panicStore{Store: mustSQLite(t)})
	status, body, _ := e.do("GET", "/search/Endpoint/x", e.token(directory.TokenSearch, "@a:hs1.tim.test", directory.Claims{}), nil)
	if status != http.StatusInternalServerError || !strings.Contains(string(body), `"OperationOutcome"`) || strings.Contains(string(body), "boom") {
		t.Fatalf("status %d, body %s", status, body)
	}
}

// panicStore panics on reads, standing in for any handler bug.
type panicStore struct{ store.Store }

func (panicStore) Get(context.Context, string, string) (index.Resource, error) { panic("boom") }

func mustSQLite(t *testing.T) store.Store {
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "p.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}
