package sso

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/timstack/timstack/authn/idp"
	"github.com/timstack/timstack/proxy/appservice"
	"github.com/timstack/timstack/proxy/mxerr"
)

// fakeRP stands in for the IDP-Dienst relying party in these unit tests (the e2e suite runs the real dev
// IDP): Begin hands out states, Complete answers from a table by code.
type fakeRP struct {
	mu      sync.Mutex
	begun   []idp.BeginOptions
	byCode  map[string]*idp.Identity
	byToken map[string]*idp.Identity
}

func (f *fakeRP) Begin(_ context.Context, o idp.BeginOptions) (string, string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.begun = append(f.begun, o)
	state := "state-" + strconv.Itoa(len(f.begun))
	return "https://idp.test/auth?state=" + state, state, nil
}

func (f *fakeRP) Complete(_ context.Context, _, code string) (*idp.Identity, error) {
	if id := f.byCode[code]; id != nil {
		return id, nil
	}
	return nil, errors.New("token refused: signature")
}

func (f *fakeRP) VerifyIDToken(_ context.Context, tok []byte, _ string) (*idp.Identity, error) {
	if id := f.byToken[string(tok)]; id != nil {
		return id, nil
	}
	return nil, errors.New("token refused: aud")
}

type fakeHS struct {
	mu       sync.Mutex
	users    map[string]bool
	names    map[string]string
	loggedIn []string
}

func (h *fakeHS) EnsureUser(_ context.Context, lp string) (bool, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.users[lp] {
		return false, nil
	}
	h.users[lp] = true
	return true, nil
}

func (h *fakeHS) SetDisplayName(_ context.Context, userID, name string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.names[userID] = name
	return nil
}

func (h *fakeHS) LoginAs(_ context.Context, userID, deviceID string) (*appservice.Login, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.loggedIn = append(h.loggedIn, userID)
	if deviceID == "" {
		deviceID = "DEV"
	}
	return &appservice.Login{UserID: userID, DeviceID: deviceID, AccessToken: "syt_" + userID}, nil
}

var (
	doctor = &idp.Identity{TelematikID: "1-HBA-Testkarte-883110000129084", ProfessionOID: "1.2.276.0.76.4.30",
		GivenName: "Günther Graf", FamilyName: "Otís"}
	pharmacy = &idp.Identity{TelematikID: "3-SMC-B-Testkarte-883110000129068", ProfessionOID: "1.2.276.0.76.4.54",
		OrganizationName: "Apotheke am SportzentrumTEST-ONLY"}
	insured  = &idp.Identity{TelematikID: "X110506918", ProfessionOID: "1.2.276.0.76.4.49"}
	unmapped = &idp.Identity{TelematikID: "1-HBA-unknown", ProfessionOID: "1.2.276.0.76.4.30"}
)

type env struct {
	b   *Bridge
	rp  *fakeRP
	hs  *fakeHS
	now time.Time
}

func newEnv(t testing.TB, mod func(*Config)) *env {
	t.Helper()
	cfg := Config{
		Enabled: true, PublicURL: "https://matrix.praxis.test", AllowedRedirects: []string{"https://app.test/"},
		Mapping: MappingConfig{Users: []MappedUser{
			{TelematikID: doctor.TelematikID, ProfessionOID: doctor.ProfessionOID, Localpart: "dr.otis"},
			{TelematikID: pharmacy.TelematikID, Localpart: "apotheke"},
			{TelematikID: insured.TelematikID, Localpart: "insured"},
		}},
		IDP: IDPConfig{Issuer: "https://idp.test", ClientID: "timstack", TrustDir: "/trust"},
	}
	if mod != nil {
		mod(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	e := &env{
		rp: &fakeRP{byCode: map[string]*idp.Identity{"code-doctor": doctor, "code-pharmacy": pharmacy,
			"code-insured": insured, "code-unmapped": unmapped}, byToken: map[string]*idp.Identity{"jws-doctor": doctor}},
		hs:  &fakeHS{users: map[string]bool{}, names: map[string]string{}},
		now: time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC),
	}
	e.b = New(cfg, e.rp, e.hs, "praxis.test", slog.New(slog.DiscardHandler), func() time.Time { return e.now })
	return e
}

// start runs the redirect step and returns the IDP state and the browser-binding cookie.
func (e *env) start(t *testing.T, idpID, redirect string) (string, *http.Cookie) {
	t.Helper()
	w := httptest.NewRecorder()
	r := httptest.NewRequest("GET", "/_matrix/client/v3/login/sso/redirect/"+idpID+"?redirectUrl="+url.QueryEscape(redirect), nil)
	if err := e.b.Redirect(w, r, idpID); err != nil {
		t.Fatalf("Redirect: %v", err)
	}
	if w.Code != http.StatusFound {
		t.Fatalf("Redirect status %d", w.Code)
	}
	loc, _ := url.Parse(w.Header().Get("Location"))
	cookies := w.Result().Cookies()
	if len(cookies) != 1 || !cookies[0].HttpOnly || cookies[0].Path != CallbackPath {
		t.Fatalf("want one HttpOnly cookie scoped to the callback, got %+v", cookies)
	}
	return loc.Query().Get("state"), cookies[0]
}

func (e *env) callback(state, code string, c *http.Cookie, extra string) (*httptest.ResponseRecorder, error) {
	w := httptest.NewRecorder()
	r := httptest.NewRequest("GET", CallbackPath+"?state="+url.QueryEscape(state)+"&code="+url.QueryEscape(code)+extra, nil)
	if c != nil {
		r.AddCookie(c)
	}
	return w, e.b.Callback(w, r)
}

// loginToken runs redirect and callback for code and returns the loginToken handed to the client.
func (e *env) loginToken(t *testing.T, code string) string {
	t.Helper()
	state, c := e.start(t, IDPPractitioner, "https://app.test/done?x=1")
	w, err := e.callback(state, code, c, "")
	if err != nil {
		t.Fatalf("Callback: %v", err)
	}
	loc, err := url.Parse(w.Header().Get("Location"))
	if err != nil || !strings.HasPrefix(loc.String(), "https://app.test/done?") || loc.Query().Get("x") != "1" {
		t.Fatalf("callback redirected to %q", w.Header().Get("Location"))
	}
	return loc.Query().Get("loginToken")
}

func wantMatrixError(t *testing.T, err error, status int, msg string) {
	t.Helper()
	e := mxerr.As(err)
	if e == nil || e.Status != status || !strings.Contains(e.Message, msg) {
		t.Fatalf("got %v (%+v), want %d with %q", err, e, status, msg)
	}
}

func TestFlowsAdvertiseSmartcardLogin(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.DirectLogin = true })
	flows := e.b.Flows()["flows"].([]map[string]any)
	var types []string
	for _, f := range flows {
		types = append(types, f["type"].(string))
	}
	if got := strings.Join(types, ","); got != "m.login.sso,m.login.token,"+TypeIDPToken {
		t.Fatalf("flows %s", got)
	}
	idps := flows[0]["identity_providers"].([]map[string]string)
	if idps[0]["name"] != "gematik IDP" || idps[0]["id"] != IDPPractitioner {
		t.Fatalf("identity providers %v", idps)
	}
}

func TestRedirectRefusals(t *testing.T) {
	e := newEnv(t, nil)
	tests := []struct {
		name, idp, redirect string
		status              int
	}{
		{"a redirectUrl outside the allowed prefixes is refused", IDPPractitioner, "https://evil.test/", 400},
		{"a missing redirectUrl is refused", IDPPractitioner, "", 400},
		{"a redirectUrl with userinfo is refused", IDPPractitioner, "https://app.test@evil.test/", 400},
		{"an unknown identity provider is 404", "keycloak", "https://app.test/", 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			r := httptest.NewRequest("GET", "/x?redirectUrl="+url.QueryEscape(tt.redirect), nil)
			err := e.b.Redirect(w, r, tt.idp)
			if me := mxerr.As(err); me == nil || me.Status != tt.status {
				t.Fatalf("got %v, want %d", err, tt.status)
			}
		})
	}
}

func TestRedirectAsksForTheCardTypeOfTheIdentityProvider(t *testing.T) {
	e := newEnv(t, nil)
	e.start(t, IDPPractitioner, "https://app.test/")
	e.start(t, IDPInstitution, "https://app.test/")
	if e.rp.begun[0].CardType != "HBA" || e.rp.begun[1].CardType != "SMC-B" {
		t.Fatalf("card types %+v", e.rp.begun)
	}
}

func TestSmartcardLoginCreatesTheAccountAndRedeemsOnce(t *testing.T) {
	e := newEnv(t, nil)
	tok := e.loginToken(t, "code-doctor")
	if !e.hs.users["dr.otis"] || e.hs.names["@dr.otis:praxis.test"] != "Otís, Günther Graf" {
		t.Fatalf("account not created with display name: %v %v", e.hs.users, e.hs.names)
	}
	resp, handled, err := e.b.Login(context.Background(), []byte(`{"type":"m.login.token","token":"`+tok+`","device_id":"PHONE"}`))
	if err != nil || !handled || resp.UserID != "@dr.otis:praxis.test" || resp.AccessToken == "" || resp.DeviceID != "PHONE" {
		t.Fatalf("Login = %+v, %v, %v", resp, handled, err)
	}
	_, _, err = e.b.Login(context.Background(), []byte(`{"type":"m.login.token","token":"`+tok+`"}`))
	wantMatrixError(t, err, 403, "already used")

	// A second login of the same card reuses the account and leaves its display name alone.
	e.hs.names = map[string]string{}
	e.loginToken(t, "code-doctor")
	if len(e.hs.names) != 0 {
		t.Fatalf("display name overwritten on a later login: %v", e.hs.names)
	}
}

func TestInstitutionDisplayNameIsTheOrganisation(t *testing.T) {
	e := newEnv(t, nil)
	e.loginToken(t, "code-pharmacy")
	if got := e.hs.names["@apotheke:praxis.test"]; got != "Apotheke am SportzentrumTEST-ONLY" {
		t.Fatalf("display name %q", got)
	}
}

func TestLoginTokenExpiresAfterTwoMinutes(t *testing.T) {
	e := newEnv(t, nil)
	tok := e.loginToken(t, "code-doctor")
	e.now = e.now.Add(MaxLoginTokenTTL + time.Second)
	_, _, err := e.b.Login(context.Background(), []byte(`{"type":"m.login.token","token":"`+tok+`"}`))
	wantMatrixError(t, err, 403, "expired")
	if len(e.hs.loggedIn) != 0 {
		t.Fatal("an expired token opened a session")
	}
}

func TestCallbackRefusals(t *testing.T) {
	tests := []struct {
		name   string
		code   string
		cookie func(c *http.Cookie) *http.Cookie
		state  func(s string) string
		extra  string
		msg    string
	}{
		{"an unknown state is refused", "code-doctor", nil, func(string) string { return "forged" }, "", "Unknown or expired"},
		{"a callback in a browser that did not start the login is refused", "code-doctor", func(*http.Cookie) *http.Cookie { return nil }, nil, "", "another browser"},
		{"a callback with a wrong binding cookie is refused", "code-doctor", func(c *http.Cookie) *http.Cookie { c.Value = "x"; return c }, nil, "", "another browser"},
		{"an IDP refusal is passed on with its reason", "", nil, nil, "&error=access_denied&error_description=card+revoked", "card revoked"},
		{"a token the relying party refuses is refused", "code-forged", nil, nil, "", "could not be verified"},
		{"an eGK may not log in to a practitioners' server", "code-insured", nil, nil, "", "profession"},
		{"a card without a mapped account is refused", "code-unmapped", nil, nil, "", "No Matrix account"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, nil)
			state, c := e.start(t, IDPPractitioner, "https://app.test/")
			if tt.cookie != nil {
				c = tt.cookie(c)
			}
			if tt.state != nil {
				state = tt.state(state)
			}
			_, err := e.callback(state, tt.code, c, tt.extra)
			wantMatrixError(t, err, 403, tt.msg)
			if len(e.hs.users) != 0 {
				t.Fatal("a refused login created an account")
			}
		})
	}
}

func TestPendingLoginsAreBoundedOldestFirst(t *testing.T) {
	e := newEnv(t, nil)
	first, c := e.start(t, IDPPractitioner, "https://app.test/")
	for range maxPending {
		w := httptest.NewRecorder()
		if err := e.b.Redirect(w, httptest.NewRequest("GET", "/x?redirectUrl=https://app.test/", nil), IDPPractitioner); err != nil {
			t.Fatalf("a new login was refused while the table was full: %v", err)
		}
	}
	if len(e.b.pending) > maxPending {
		t.Fatalf("%d pending logins, bound %d", len(e.b.pending), maxPending)
	}
	_, err := e.callback(first, "code-doctor", c, "")
	wantMatrixError(t, err, 403, "Unknown or expired")
}

func TestCallbackStateIsSingleUse(t *testing.T) {
	e := newEnv(t, nil)
	state, c := e.start(t, IDPPractitioner, "https://app.test/")
	if _, err := e.callback(state, "code-doctor", c, ""); err != nil {
		t.Fatal(err)
	}
	_, err := e.callback(state, "code-doctor", c, "")
	wantMatrixError(t, err, 403, "Unknown or expired")
}

func TestLoginTypes(t *testing.T) {
	tests := []struct {
		name        string
		mod         func(*Config)
		body        string
		wantHandled bool
		status      int // 0: success
		msg         string
	}{
		{"an unknown login token is refused", nil, `{"type":"m.login.token","token":"nope"}`, true, 403, "Invalid login token"},
		{"a login token is required", nil, `{"type":"m.login.token"}`, true, 400, "required"},
		{"password login is refused unless enabled", nil, `{"type":"m.login.password","password":"x"}`, true, 403, "smartcard"},
		{"password login passes to the homeserver when enabled", func(c *Config) { c.PasswordLogin = true }, `{"type":"m.login.password"}`, false, 0, ""},
		{"clients may never use the application-service login", func(c *Config) { c.PasswordLogin = true }, `{"type":"m.login.application_service"}`, true, 403, "not available"},
		{"the direct IDP login is off by default", nil, `{"type":"` + TypeIDPToken + `","token":"jws-doctor"}`, true, 400, "Unknown login type"},
		{"the direct IDP login opens a session for a verified token", func(c *Config) { c.DirectLogin = true }, `{"type":"` + TypeIDPToken + `","token":"jws-doctor"}`, true, 0, ""},
		{"the direct IDP login refuses a token the relying party refuses", func(c *Config) { c.DirectLogin = true }, `{"type":"` + TypeIDPToken + `","token":"jws-other"}`, true, 403, "could not be verified"},
		{"a body that is not JSON is 400", nil, `{`, true, 400, "not valid JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, tt.mod)
			resp, handled, err := e.b.Login(context.Background(), []byte(tt.body))
			if handled != tt.wantHandled {
				t.Fatalf("handled = %v", handled)
			}
			if tt.status == 0 {
				if err != nil {
					t.Fatal(err)
				}
				if handled && (resp == nil || resp.UserID != "@dr.otis:praxis.test") {
					t.Fatalf("resp %+v", resp)
				}
				return
			}
			wantMatrixError(t, err, tt.status, tt.msg)
		})
	}
}

func TestConfigValidate(t *testing.T) {
	base := func() Config {
		return Config{Enabled: true, PublicURL: "https://m.test", Mapping: MappingConfig{Mode: MappingTelematikID},
			IDP: IDPConfig{Issuer: "https://idp.test", ClientID: "c", TrustDir: "/t"}}
	}
	tests := []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"a relative public URL is refused", func(c *Config) { c.PublicURL = "/x" }, "sso.public_url"},
		{"a login token living longer than two minutes is refused", func(c *Config) { c.LoginTokenTTL = 3 * time.Minute }, "sso.login_token_ttl"},
		{"the issuer is required", func(c *Config) { c.IDP.Issuer = "" }, "sso.idp.issuer"},
		{"OCSP off is refused in production", func(c *Config) { c.IDP.OCSP = "off"; c.IDP.Production = true }, "sso.idp.ocsp"},
		{"a relative redirect prefix is refused", func(c *Config) { c.AllowedRedirects = []string{"/app"} }, "sso.allowed_redirects[0]"},
		{"a bad mapping is named", func(c *Config) { c.Mapping.Mode = "sub" }, "sso.mapping.mode"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := base()
			tt.mod(&c)
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate = %v, want an error naming %s", err, tt.want)
			}
		})
	}
	c := base()
	if err := c.Validate(); err != nil || c.LoginTokenTTL != MaxLoginTokenTTL || c.IDP.OCSP != "require" {
		t.Fatalf("defaults: %v %+v", err, c)
	}
}

// BenchmarkBridgeLogin: the bridge's own work for one smartcard login — redirect, callback, loginToken
// redemption — with the relying party and the homeserver stubbed. The relying party's CPU per login (token
// exchange, decryption, BP256R1 verification) is authn/idp's BenchmarkCompleteCPU; both add up to the
// proxy's cold-login CPU.
func BenchmarkBridgeLogin(b *testing.B) {
	e := newEnv(b, nil)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		e.now = e.now.Add(10 * time.Millisecond) // 100 logins a second: entries expire as in production
		w := httptest.NewRecorder()
		r := httptest.NewRequest("GET", "/x?redirectUrl="+url.QueryEscape("https://app.test/done"), nil)
		if err := e.b.Redirect(w, r, IDPPractitioner); err != nil {
			b.Fatal(err)
		}
		loc, err := url.Parse(w.Header().Get("Location"))
		if err != nil || loc == nil {
			b.Fatalf("redirect: %q %v", w.Header().Get("Location"), err)
		}
		c := w.Result().Cookies()[0]
		w2, err := e.callback(loc.Query().Get("state"), "code-doctor", c, "")
		if err != nil {
			b.Fatal(err)
		}
		done, err := url.Parse(w2.Header().Get("Location"))
		if err != nil || w2.Code != http.StatusFound {
			b.Fatalf("callback: %d %q %v", w2.Code, w2.Header().Get("Location"), err)
		}
		if _, _, err := e.b.Login(ctx, []byte(`{"type":"m.login.token","token":"`+done.Query().Get("loginToken")+`"}`)); err != nil {
			b.Fatal(err)
		}
	}
}
