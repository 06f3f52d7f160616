package registration

import (
	"context"
	"crypto"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/timstack/timstack/certs"
)

// orgAdminWithMXID enrols an organisation with a messenger service and binds @admin:hs1.tim.test.
func orgAdminWithMXID(t *testing.T, e *env) admin {
	t.Helper()
	e.seedOrganization("org-a", tidA, true)
	a := e.enrol(praxis(tidA, "Praxis A"))
	if r := e.do("POST", "/registration/v1/messenger-services", a.session, `{"domain":"hs1.tim.test"}`); r.status != 201 {
		t.Fatalf("register: %d %s", r.status, r.body)
	}
	if r := e.do("PUT", "/registration/v1/org-admin/mxid", a.session, `{"user_id":"@admin:hs1.tim.test"}`); r.status != 200 {
		t.Fatalf("bind: %d %s", r.status, r.body)
	}
	return a
}

func TestRequestTokenIssuesAVerifiableRegServiceToken(t *testing.T) {
	e := newEnv(t, "pro")
	orgAdminWithMXID(t, e)
	e.openid.users["tok-admin"] = "@admin:hs1.tim.test"

	r := e.do("POST", "/regservice/openid/user/"+url.PathEscape("@admin:hs1.tim.test")+"/requesttoken?request_token=tok-admin", "", "")
	m := r.json(t)
	if r.status != 200 || m["token_type"] != "Bearer" || m["expires_in"] != float64(300) {
		t.Fatalf("requesttoken: %d %s", r.status, r.body)
	}
	jws, err := certs.ParseCompactJWS([]byte(m["access_token"].(string)))
	if err != nil {
		t.Fatal(err)
	}
	if jws.Header.Alg != certs.AlgBP256R1 || jws.Header.Typ != "JWT" || len(jws.Header.X5C) != 2 {
		t.Fatalf("header: %+v", jws.Header)
	}
	leaf, err := jws.VerifyX5C(certs.AlgBP256R1)
	if err != nil {
		t.Fatalf("signature: %v", err)
	}
	// What the VZD checks: C.FD.SIG, role oid_tim, chain to the CA.
	if _, err := certs.NewTrustStore(e.root.Cert).Verify(context.Background(), leaf, certs.VerifyOptions{
		At: time.Now(), CertificateTypes: []certs.CertificateType{certs.CertFDSIG}, Role: certs.RoleTIM,
	}); err != nil {
		t.Fatalf("signer certificate: %v", err)
	}
	var c RegServiceClaims
	if err := json.Unmarshal(jws.Payload, &c); err != nil {
		t.Fatal(err)
	}
	now := e.clock.Now().Unix()
	if c.Subject != "@admin:hs1.tim.test" || c.Issuer != "https://reg.tim.test" || c.Audience != e.dirHTTP.URL+"/owner-authenticate" ||
		c.IDNummer != tidA || c.ProfessionOID != oidPraxisArzt || c.IssuedAt != now || c.ExpiresAt != now+300 || c.JTI == "" {
		t.Fatalf("claims: %+v", c)
	}

	// The directory's /owner-authenticate accepts it and issues an owner token.
	req, _ := http.NewRequest("GET", e.dirHTTP.URL+"/owner-authenticate", nil)
	req.Header.Set("Authorization", "Bearer "+m["access_token"].(string))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var owner map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&owner); err != nil || resp.StatusCode != 200 || owner["access_token"] == nil {
		t.Fatalf("owner-authenticate: %d %v %v", resp.StatusCode, owner, err)
	}
}

func TestRequestTokenRefusals(t *testing.T) {
	e := newEnv(t, "pro")
	orgAdminWithMXID(t, e)
	e.openid.users["tok-admin"] = "@admin:hs1.tim.test"
	e.openid.users["tok-other"] = "@other:hs1.tim.test"
	e.openid.users["tok-stranger"] = "@stranger:hs9.tim.test"
	cases := []struct {
		name   string
		userID string
		token  string
		lax    bool
	}{
		{"a token of another user on the same server (sub mismatch)", "@admin:hs1.tim.test", "tok-other", false},
		{"a lax validator's other user is still refused by the service", "@admin:hs1.tim.test", "tok-other", true},
		{"an unknown token", "@admin:hs1.tim.test", "nope", false},
		{"no token", "@admin:hs1.tim.test", "", false},
		{"a user who is no Org-Admin", "@other:hs1.tim.test", "tok-other", false},
		{"a user of a foreign server who is no Org-Admin", "@stranger:hs9.tim.test", "tok-stranger", false},
		{"a malformed user id", "admin", "tok-admin", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e.openid.lax = tc.lax
			e.openid.calls = nil
			q := ""
			if tc.token != "" {
				q = "?request_token=" + tc.token
			}
			r := e.do("POST", "/regservice/openid/user/"+url.PathEscape(tc.userID)+"/requesttoken"+q, "", "")
			if r.status != 400 || strings.TrimSpace(string(r.body)) != `{"error":"unauthorized"}` {
				t.Fatalf("%d %s", r.status, r.body)
			}
			for _, c := range e.openid.calls {
				if c != "hs1.tim.test" {
					t.Fatalf("asked homeserver %s: only Org-Admin servers may be asked", c)
				}
			}
		})
	}
}

func TestBindingTheMatrixUser(t *testing.T) {
	e := newEnv(t, "pro")
	a := orgAdminWithMXID(t, e)
	e.seedOrganization("org-b", "1-SMC-B-B", true)
	b := e.enrol(praxis("1-SMC-B-B", "Praxis B"))
	cases := []struct {
		name    string
		session string
		body    string
		status  int
	}{
		{"a user on a domain of another organisation is refused", b.session, `{"user_id":"@x:hs1.tim.test"}`, 403},
		{"a user on an unregistered domain is refused", a.session, `{"user_id":"@x:elsewhere.test"}`, 403},
		{"a malformed user id is refused", a.session, `{"user_id":"x:hs1.tim.test"}`, 400},
		{"rebinding to another user of the own domain works", a.session, `{"user_id":"@boss:hs1.tim.test"}`, 200},
		{"unbinding works", a.session, `{"user_id":""}`, 200},
	}
	for _, tc := range cases {
		if r := e.do("PUT", "/registration/v1/org-admin/mxid", tc.session, tc.body); r.status != tc.status {
			t.Errorf("%s: %d %s, want %d", tc.name, r.status, r.body, tc.status)
		}
	}
}

func TestSignerMustBeAnOidTimFDSigCertificate(t *testing.T) {
	now := time.Now()
	ca, err := certs.NewTestCA("signer check", certs.KeyBrainpoolP256r1, now.Add(-time.Hour), now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	good, goodKey, _ := ca.Issue(certs.IssueRequest{Profile: certs.IssueProfileFDSigTIM})
	vzd, vzdKey, _ := ca.Issue(certs.IssueRequest{Profile: certs.IssueProfileFListSigner})
	_, otherKey, _ := ca.Issue(certs.IssueRequest{Profile: certs.IssueProfileFDSigTIM})
	cases := []struct {
		name  string
		cert  *certs.Certificate
		key   crypto.Signer
		valid bool
	}{
		{"C.FD.SIG with oid_tim and its key", good, goodKey, true},
		{"the federation-list signer (oid_vzd_ti) is not a RegService signer", vzd, vzdKey, false},
		{"a key that is not the certificate's", good, otherKey, false},
	}
	for _, tc := range cases {
		err := checkSigner(tc.key, []*certs.Certificate{tc.cert})
		if (err == nil) != tc.valid {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
}
