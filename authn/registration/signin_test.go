package registration

import (
	"fmt"
	"github.com/timstack/timstack/authn/idp"
	"net/url"
	"strings"
	"testing"
	"time"
)

func praxis(tid, name string) *idp.Identity {
	return &idp.Identity{TelematikID: tid, ProfessionOID: oidPraxisArzt, OrganizationName: name}
}

func TestFirstSignInCreatesTheOrgAdminAndTOTPGuardsTheSession(t *testing.T) {
	e := newEnv(t, "pro")
	a := e.enrol(praxis("1-SMC-B-A", "Praxis A"))
	r := e.do("GET", "/registration/v1/org-admin", a.session, "")
	if r.status != 200 || !strings.Contains(string(r.body), `"telematikID":"1-SMC-B-A"`) || !strings.Contains(string(r.body), `"organizationName":"Praxis A"`) {
		t.Fatalf("org-admin: %d %s", r.status, r.body)
	}

	// A later sign-in needs the TOTP code and shows no secret again.
	r = e.signIn(praxis("1-SMC-B-A", "Praxis A"))
	m := r.json(t)
	if r.status != 200 || m["totpEnrolment"] != nil || m["created"] != false {
		t.Fatalf("second sign-in: %d %s", r.status, r.body)
	}
	pending := m["pending"].(string)
	// The code of the step used at enrolment is refused: each step works once.
	if r := e.totp(pending, TOTPAt(a.secret, e.clock.Now())); r.status != 401 {
		t.Fatalf("replayed TOTP step: %d %s", r.status, r.body)
	}
	if r := e.totp(pending, "000000"); r.status != 401 {
		t.Fatalf("wrong code: %d", r.status)
	}
	e.clock.Add(30 * time.Second)
	r = e.totp(pending, TOTPAt(a.secret, e.clock.Now()))
	if r.status != 200 || r.json(t)["token_type"] != "Bearer" || r.json(t)["expires_in"] != float64(8*3600) {
		t.Fatalf("next step's code: %d %s", r.status, r.body)
	}
	if r := e.totp(pending, TOTPAt(a.secret, e.clock.Now().Add(30*time.Second))); r.status != 401 {
		t.Fatalf("a pending sign-in was usable twice: %d", r.status)
	}

	// Sessions end at logout and after 8 h.
	s2 := r.json(t)["session"].(string)
	if r := e.do("POST", "/registration/v1/logout", s2, ""); r.status != 204 {
		t.Fatalf("logout: %d", r.status)
	}
	if r := e.do("GET", "/registration/v1/org-admin", s2, ""); r.status != 401 {
		t.Fatalf("session after logout: %d", r.status)
	}
	e.clock.Add(8*time.Hour + time.Second)
	if r := e.do("GET", "/registration/v1/org-admin", a.session, ""); r.status != 401 {
		t.Fatalf("session after 8 h: %d", r.status)
	}
}

func TestSignInRefusals(t *testing.T) {
	cases := []struct {
		name    string
		variant string
		before  []*idp.Identity // enrolled first
		id      *idp.Identity
		status  int
		code    string
	}{
		{"a practitioner's HBA OID cannot register an organisation", "pro", nil,
			&idp.Identity{TelematikID: "1-HBA-X", ProfessionOID: oidArzt, OrganizationName: "Dr. X"}, 403, "profession_refused"},
		{"an unknown profession OID is refused", "pro", nil,
			&idp.Identity{TelematikID: "1-X", ProfessionOID: "1.2.3.4", OrganizationName: "X"}, 403, "profession_refused"},
		{"an insured person's OID is refused", "pro", nil,
			&idp.Identity{TelematikID: "X110000000", ProfessionOID: "1.2.276.0.76.4.49", OrganizationName: "X"}, 403, "profession_refused"},
		{"ePA admits no practice SMC-B", "epa", nil, praxis("1-SMC-B-P", "Praxis P"), 403, "profession_refused"},
		{"an ID token without idNummer is refused", "pro", nil, &idp.Identity{ProfessionOID: oidPraxisArzt, OrganizationName: "X"}, 403, "no_telematik_id"},
		{"a second SMC-B of an organisation with an admin is Account existiert bereits", "pro",
			[]*idp.Identity{praxis("1-SMC-B-First", "Praxis Doppelt")}, praxis("1-SMC-B-Second", "praxis doppelt"), 409, "account_exists"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, tc.variant)
			for _, b := range tc.before {
				e.enrol(b)
			}
			r := e.signIn(tc.id)
			if r.status != tc.status || r.json(t)["error"] != tc.code {
				t.Fatalf("status %d %s, want %d %s", r.status, r.body, tc.status, tc.code)
			}
		})
	}

	t.Run("ePA admits a Kostenträger SMC-B", func(t *testing.T) {
		e := newEnv(t, "epa")
		e.enrol(&idp.Identity{TelematikID: "5-SMC-B-Kasse", ProfessionOID: oidKasse, OrganizationName: "Kasse"})
	})
	t.Run("an unknown state is refused before the IDP is asked", func(t *testing.T) {
		e := newEnv(t, "pro")
		if r := e.do("GET", "/registration/v1/callback?code=x&state=forged", "", ""); r.status != 400 {
			t.Fatalf("forged state: %d", r.status)
		}
	})
	t.Run("an IDP error redirect is a refusal", func(t *testing.T) {
		e := newEnv(t, "pro")
		r := e.do("GET", "/registration/v1/login", "", "")
		loc, _ := url.Parse(r.header.Get("Location"))
		if r.status != 302 || loc.Host != "idp.test" {
			t.Fatalf("login redirect: %d %s", r.status, r.header.Get("Location"))
		}
		r = e.do("GET", "/registration/v1/callback?error=access_denied&state="+loc.Query().Get("state"), "", "")
		if r.status != 401 {
			t.Fatalf("IDP error: %d %s", r.status, r.body)
		}
	})
	t.Run("an unreachable IDP is a 502", func(t *testing.T) {
		e := newEnv(t, "pro")
		e.idp.fail = true
		if r := e.do("GET", "/registration/v1/login", "", ""); r.status != 502 {
			t.Fatalf("IDP down: %d", r.status)
		}
	})
	t.Run("an expired pending sign-in is refused", func(t *testing.T) {
		e := newEnv(t, "pro")
		r := e.signIn(praxis("1-SMC-B-E", "E"))
		m := r.json(t)
		secret, _ := b32.DecodeString(m["totpEnrolment"].(map[string]any)["secret"].(string))
		e.clock.Add(6 * time.Minute)
		if r := e.totp(m["pending"].(string), TOTPAt(secret, e.clock.Now())); r.status != 401 {
			t.Fatalf("expired pending: %d", r.status)
		}
	})
	t.Run("guessing is stopped after five wrong codes", func(t *testing.T) {
		e := newEnv(t, "pro")
		r := e.signIn(praxis("1-SMC-B-G", "G"))
		m := r.json(t)
		secret, _ := b32.DecodeString(m["totpEnrolment"].(map[string]any)["secret"].(string))
		for i := range 5 {
			_ = e.totp(m["pending"].(string), fmt.Sprintf("%06d", i))
		}
		if r := e.totp(m["pending"].(string), TOTPAt(secret, e.clock.Now())); r.status != 401 {
			t.Fatalf("sixth attempt with the right code: %d", r.status)
		}
	})
	t.Run("an unfinished enrolment is offered again with a new secret", func(t *testing.T) {
		e := newEnv(t, "pro")
		first := e.signIn(praxis("1-SMC-B-U", "U")).json(t)["totpEnrolment"].(map[string]any)["secret"]
		r := e.signIn(praxis("1-SMC-B-U", "U"))
		enr, ok := r.json(t)["totpEnrolment"].(map[string]any)
		if r.status != 200 || !ok || enr["secret"] == first {
			t.Fatalf("second sign-in before enrolment: %d %s", r.status, r.body)
		}
	})
	t.Run("session endpoints need a session", func(t *testing.T) {
		e := newEnv(t, "pro")
		for _, p := range []string{"/registration/v1/org-admin", "/registration/v1/messenger-services"} {
			if r := e.do("GET", p, "", ""); r.status != 401 {
				t.Errorf("%s without session: %d", p, r.status)
			}
			if r := e.do("GET", p, "forged", ""); r.status != 401 {
				t.Errorf("%s with a forged session: %d", p, r.status)
			}
		}
	})
}

func TestAdminLinksAFurtherTelematikID(t *testing.T) {
	e := newEnv(t, "pro")
	a := e.enrol(praxis("1-SMC-B-Main", "MVZ Link"))
	e.enrol(praxis("1-SMC-B-Other", "Other Org"))

	link := func(id *idp.Identity) response {
		r := e.do("POST", "/registration/v1/telematik-ids", a.session, "")
		if r.status != 200 {
			t.Fatalf("start link: %d %s", r.status, r.body)
		}
		u, _ := url.Parse(r.json(t)["authURL"].(string))
		code := "link-" + id.TelematikID
		e.idp.codes[code] = id
		return e.do("GET", "/registration/v1/callback?code="+code+"&state="+u.Query().Get("state"), "", "")
	}
	if r := link(praxis("1-SMC-B-Second", "MVZ Link")); r.status != 201 {
		t.Fatalf("link: %d %s", r.status, r.body)
	}
	if r := link(praxis("1-SMC-B-Other", "Other Org")); r.status != 409 {
		t.Fatalf("linking another organisation's Telematik-ID: %d %s", r.status, r.body)
	}
	if r := link(&idp.Identity{TelematikID: "1-HBA", ProfessionOID: oidArzt}); r.status != 403 {
		t.Fatalf("linking an HBA: %d %s", r.status, r.body)
	}
	r := e.do("GET", "/registration/v1/org-admin", a.session, "")
	if !strings.Contains(string(r.body), "1-SMC-B-Second") {
		t.Fatalf("linked id missing: %s", r.body)
	}
	// The linked card now signs in to the same account.
	if r := e.signIn(praxis("1-SMC-B-Second", "MVZ Link")); r.status != 200 || r.json(t)["organizationName"] != "MVZ Link" {
		t.Fatalf("sign-in with the linked card: %d %s", r.status, r.body)
	}
	if r := e.do("DELETE", "/registration/v1/telematik-ids/1-SMC-B-Main", a.session, ""); r.status != 409 {
		t.Fatalf("unlink the first: %d", r.status)
	}
	if r := e.do("DELETE", "/registration/v1/telematik-ids/1-SMC-B-Second", a.session, ""); r.status != 204 {
		t.Fatalf("unlink: %d", r.status)
	}
}
