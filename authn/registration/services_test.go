package registration

import (
	"bytes"
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/timstack/timstack/certs"
	"github.com/timstack/timstack/directory"
)

const tidA = "1-SMC-B-Testkarte-883110000129077"

func TestRegisteringAMessengerServiceGrowsTheSignedListServedToProxies(t *testing.T) {
	e := newEnv(t, "pro")
	e.seedOrganization("org-a", tidA, true)
	e.seedOrganization("org-gone", "1-SMC-B-Inactive", true)
	a := e.enrol(praxis(tidA, "Praxis A"))
	ctx := context.Background()

	// Before any list was fetched the proxies get 503 (no list), never an empty "current".
	if r := e.do("GET", "/backend/federation", "", ""); r.status != 503 || r.json(t)["error"] != "no_list" {
		t.Fatalf("before the first refresh: %d %s", r.status, r.body)
	}
	if err := e.svc.Keeper().Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	r := e.do("GET", "/backend/federation", "", "")
	v0, _ := strconv.ParseInt(strings.Trim(r.header.Get("ETag"), `"`), 10, 64)
	if r.status != 200 || r.header.Get("Content-Type") != "application/jose" {
		t.Fatalf("initial list: %d %s", r.status, r.header.Get("Content-Type"))
	}

	cases := []struct {
		name   string
		body   string
		status int
		msg    string
	}{
		{"a domain of the admin's active organisation is registered", `{"domain":"HS1.tim.test","isInsurance":false}`, 201, ""},
		{"the same domain again is the directory's conflict", `{"domain":"hs1.tim.test","isInsurance":false}`, 409, "already registered"},
		{"an insurance domain is refused by a Pro service", `{"domain":"k.tim.test","isInsurance":true,"ik":["109500969"]}`, 400, "isInsurance"},
		{"an invalid domain name is refused", `{"domain":"bad_domain!","isInsurance":false}`, 400, "domain"},
		{"an unknown field is refused", `{"domain":"x.tim.test","extra":1}`, 400, "unknown field"},
		{"a Telematik-ID of another organisation is refused", `{"domain":"y.tim.test","telematikID":"1-SMC-B-Inactive"}`, 403, "not linked"},
	}
	for _, tc := range cases {
		r := e.do("POST", "/registration/v1/messenger-services", a.session, tc.body)
		if r.status != tc.status || (tc.msg != "" && !strings.Contains(string(r.body), tc.msg)) {
			t.Errorf("%s: %d %s, want %d %q", tc.name, r.status, r.body, tc.status, tc.msg)
		}
	}

	// The directory's list grew and the registration service already holds it, byte for byte.
	want := e.directoryList()
	r = e.do("GET", "/backend/federation?version="+strconv.FormatInt(v0, 10), "", "")
	if r.status != 200 || !bytes.Equal(r.body, want) {
		t.Fatalf("list after registration: %d, same bytes as the directory: %v", r.status, bytes.Equal(r.body, want))
	}
	l, err := certs.VerifyFederationList(ctx, r.body, certs.FederationListOptions{Trust: certs.NewTrustStore(e.root.Cert), At: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	if d, ok := l.Lookup("hs1.tim.test"); !ok || d.TelematikID != tidA || l.Version <= v0 {
		t.Fatalf("list: version %d, hs1 %+v %v", l.Version, d, ok)
	}
	if r := e.do("GET", "/backend/federation?version="+strconv.FormatInt(l.Version, 10), "", ""); r.status != 204 {
		t.Fatalf("current version: %d", r.status)
	}
	if r := e.do("GET", "/backend/federation?version=-1", "", ""); r.status != 400 {
		t.Fatalf("negative version: %d", r.status)
	}

	r = e.do("GET", "/registration/v1/messenger-services", a.session, "")
	var list []serviceAnswer
	if r.status != 200 || json.Unmarshal(r.body, &list) != nil || len(list) != 1 || list[0].Domain != "hs1.tim.test" || list[0].State != StateActive {
		t.Fatalf("services: %d %s", r.status, r.body)
	}

	// Another organisation's admin neither sees nor deletes the domain.
	e.seedOrganization("org-b", "1-SMC-B-B", true)
	b := e.enrol(praxis("1-SMC-B-B", "Praxis B"))
	if r := e.do("GET", "/registration/v1/messenger-services", b.session, ""); string(bytes.TrimSpace(r.body)) != "[]" {
		t.Fatalf("foreign services visible: %s", r.body)
	}
	if r := e.do("DELETE", "/registration/v1/messenger-services/hs1.tim.test", b.session, ""); r.status != 404 {
		t.Fatalf("foreign delete: %d", r.status)
	}

	// Delete: gone from the directory and from the served list.
	if r := e.do("DELETE", "/registration/v1/messenger-services/hs1.tim.test", a.session, ""); r.status != 204 {
		t.Fatalf("delete: %d %s", r.status, r.body)
	}
	r = e.do("GET", "/backend/federation", "", "")
	l, err = certs.VerifyFederationList(ctx, r.body, certs.FederationListOptions{Trust: certs.NewTrustStore(e.root.Cert), At: time.Now()})
	if err != nil || l.Len() != 0 {
		t.Fatalf("list after delete: %v %d", err, l.Len())
	}
	if d := e.dir.Federation().Domains("", ""); len(d) != 0 {
		t.Fatalf("directory still has %v", d)
	}
}

func TestRegistrationOfAnInactiveOrganisationPassesTheDirectoryRefusalOn(t *testing.T) {
	e := newEnv(t, "pro")
	e.seedOrganization("org-a", tidA, false)
	a := e.enrol(praxis(tidA, "Praxis A"))
	r := e.do("POST", "/registration/v1/messenger-services", a.session, `{"domain":"hs1.tim.test"}`)
	if r.status != 400 || !strings.Contains(r.json(t)["message"].(string), "VZD: no active Organization") {
		t.Fatalf("inactive organisation: %d %s", r.status, r.body)
	}
	if l, _ := e.st.Services(context.Background(), 0); len(l) != 0 {
		t.Fatalf("refused service stored: %v", l)
	}
}

func TestTheListIsOutdatedAfter72HoursWithoutVerifiedContact(t *testing.T) {
	e := newEnv(t, "pro")
	ctx := context.Background()
	if err := e.svc.Keeper().Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	e.clock.Add(71 * time.Hour)
	if r := e.do("GET", "/backend/federation", "", ""); r.status != 200 {
		t.Fatalf("after 71 h: %d", r.status)
	}
	e.clock.Add(2 * time.Hour)
	r := e.do("GET", "/backend/federation?version=1", "", "")
	if r.status != 503 || r.json(t)["error"] != "outdated" || !strings.Contains(r.json(t)["message"].(string), "veraltet") {
		t.Fatalf("after 73 h: %d %s", r.status, r.body)
	}
	// A "current" answer from the directory (204) is verified contact again.
	if err := e.svc.Keeper().Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if r := e.do("GET", "/backend/federation?version=1", "", ""); r.status != 204 {
		t.Fatalf("after contact: %d %s", r.status, r.body)
	}
}

func TestAListSignedByAnUntrustedSignerIsNotTaken(t *testing.T) {
	e := newEnv(t, "pro")
	other, err := certs.NewTestCA("other root", certs.KeyBrainpoolP256r1, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	k := &ListKeeper{Source: e.svc.keeper.Source, Store: e.st, Trust: certs.NewTrustStore(other.Cert), Now: e.clock.Now}
	if err := k.Refresh(context.Background()); err == nil {
		t.Fatal("a list of an untrusted signer was accepted")
	}
	if _, err := e.st.FederationList(context.Background()); err == nil {
		t.Fatal("an unverified list was stored")
	}
}

type staticSource struct {
	jws     []byte
	current bool
}

func (s staticSource) FederationList(context.Context, int64) ([]byte, bool, error) {
	return s.jws, s.current, nil
}

func TestAnOlderListIsRefused(t *testing.T) {
	e := newEnv(t, "pro")
	ctx := context.Background()
	old := e.directoryList()
	e.seedOrganization("org-a", tidA, true)
	if _, err := e.dir.Federation().Add(ctx, "p", directory.Domain{Domain: "hs1.tim.test", TelematikID: tidA}); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.Keeper().Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	k := &ListKeeper{Source: staticSource{jws: old}, Store: e.st, Trust: certs.NewTrustStore(e.root.Cert), Now: e.clock.Now}
	if err := k.Refresh(ctx); err == nil || !strings.Contains(err.Error(), "older") {
		t.Fatalf("rollback: %v", err)
	}
	st, _ := e.st.FederationList(ctx)
	if bytes.Equal(st.JWS, old) {
		t.Fatal("the older list replaced the newer one")
	}
}

func TestListKeeperRetriesThenWaitsForTheNextInterval(t *testing.T) {
	e := newEnv(t, "pro")
	fails := &failingSource{}
	k := &ListKeeper{Source: fails, Store: e.st, Trust: certs.NewTrustStore(e.root.Cert), Now: e.clock.Now}
	var sleeps []time.Duration
	ctx, cancel := context.WithCancel(context.Background())
	sleep := func(_ context.Context, d time.Duration) bool {
		sleeps = append(sleeps, d)
		if len(sleeps) == 4 {
			cancel()
			return false
		}
		return true
	}
	k.Run(ctx, RefreshSchedule{Interval: time.Hour, RetryInterval: 5 * time.Minute, Retries: 3}, sleep)
	want := []time.Duration{5 * time.Minute, 5 * time.Minute, 5 * time.Minute, time.Hour}
	if fails.n != 4 || len(sleeps) != 4 {
		t.Fatalf("attempts %d, sleeps %v", fails.n, sleeps)
	}
	for i := range want {
		if sleeps[i] != want[i] {
			t.Fatalf("sleeps %v, want %v", sleeps, want)
		}
	}
}

type failingSource struct{ n int }

func (f *failingSource) FederationList(context.Context, int64) ([]byte, bool, error) {
	f.n++
	return nil, false, &DirectoryError{Op: "federation list", Status: 503}
}

func TestProxyTokenGuardsTheBackend(t *testing.T) {
	e := newEnv(t, "pro")
	e.svc.deps.ProxyTokens = []string{"proxy-secret"}
	if err := e.svc.Keeper().Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		token  string
		status int
	}{
		{"no token is refused", "", 401},
		{"a wrong token is refused", "proxy-secreT", 401},
		{"the configured token is accepted", "proxy-secret", 200},
	} {
		if r := e.do("GET", "/backend/federation", tc.token, ""); r.status != tc.status {
			t.Errorf("%s: %d, want %d", tc.name, r.status, tc.status)
		}
	}
}

func TestFederationCheckDeactivatesReactivatesAndRemoves(t *testing.T) {
	e := newEnv(t, "pro")
	ctx := context.Background()
	e.seedOrganization("org-a", tidA, true)
	a := e.enrol(praxis(tidA, "Praxis A"))
	if r := e.do("POST", "/registration/v1/messenger-services", a.session, `{"domain":"hs1.tim.test"}`); r.status != 201 {
		t.Fatalf("register: %d %s", r.status, r.body)
	}
	state := func() ServiceState {
		m, err := e.st.Service(ctx, "hs1.tim.test")
		if err != nil {
			return ""
		}
		return m.State
	}
	steps := []struct {
		name   string
		active bool
		after  time.Duration
		want   ServiceState
	}{
		{"an active organisation keeps its service active", true, 0, StateActive},
		{"an inactive organisation's service is deactivated", false, 24 * time.Hour, StateDeactivated},
		{"it is reactivated when the organisation is active again", true, 24 * time.Hour, StateActive},
		{"inactive again: deactivated", false, 24 * time.Hour, StateDeactivated},
		{"29 days later it is still only deactivated", false, 29 * 24 * time.Hour, StateDeactivated},
		{"after 30 days it is removed", false, 24*time.Hour + time.Second, ""},
	}
	for _, s := range steps {
		e.seedOrganization("org-a", tidA, s.active)
		e.clock.Add(s.after)
		if err := e.svc.FederationCheck(ctx); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if got := state(); got != s.want {
			t.Fatalf("%s: state %q, want %q", s.name, got, s.want)
		}
	}
	if d := e.dir.Federation().Domains("", ""); len(d) != 0 {
		t.Fatalf("the directory still lists %v", d)
	}
}
