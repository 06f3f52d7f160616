// Package storetest is the behaviour suite every registration.Store implementation runs.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/timstack/timstack/authn/registration"
)

// Run checks the behaviour every registration.Store must have; each engine's tests call it with a
// function opening a fresh, empty store.
func Run(t *testing.T, open func(t *testing.T) registration.Store) {
	ctx := context.Background()
	now := time.Unix(1_800_000_000, 0).UTC()

	t.Run("an organisation is created with its admin and found by Telematik-ID and name", func(t *testing.T) {
		st := open(t)
		org, admin, err := st.CreateOrganisation(ctx, "Praxis Dr. Test", registration.TelematikID{ID: "1-SMC-B-A", ProfessionOID: "1.2.276.0.76.4.50"}, []byte("secret"), now)
		if err != nil {
			t.Fatal(err)
		}
		got, err := st.OrganisationByTelematikID(ctx, "1-SMC-B-A")
		if err != nil || got.ID != org.ID || got.Name != "Praxis Dr. Test" || len(got.TelematikIDs) != 1 || got.TelematikIDs[0].ProfessionOID != "1.2.276.0.76.4.50" {
			t.Fatalf("by telematik-id: %+v %v", got, err)
		}
		if got, err := st.OrganisationByName(ctx, "  praxis dr. TEST "); err != nil || got.ID != org.ID {
			t.Fatalf("by name: %+v %v", got, err)
		}
		a, err := st.AdminByOrg(ctx, org.ID)
		if err != nil || a.ID != admin.ID || !bytes.Equal(a.TOTPSecret, []byte("secret")) || a.TOTPConfirmed {
			t.Fatalf("admin: %+v %v", a, err)
		}
		if _, _, err := st.CreateOrganisation(ctx, "Other", registration.TelematikID{ID: "1-SMC-B-A", ProfessionOID: "x"}, []byte("s"), now); !errors.Is(err, registration.ErrConflict) {
			t.Fatalf("second organisation with the same Telematik-ID: %v", err)
		}
		if _, err := st.OrganisationByName(ctx, "Other"); !errors.Is(err, registration.ErrNotFound) {
			t.Fatalf("the refused organisation was kept: %v", err)
		}
	})

	t.Run("Telematik-IDs are linked in order and the first cannot be unlinked", func(t *testing.T) {
		st := open(t)
		org, _, _ := st.CreateOrganisation(ctx, "A", registration.TelematikID{ID: "t1", ProfessionOID: "p"}, []byte("s"), now)
		org2, _, _ := st.CreateOrganisation(ctx, "B", registration.TelematikID{ID: "u1", ProfessionOID: "p"}, []byte("s"), now)
		if err := st.LinkTelematikID(ctx, org.ID, registration.TelematikID{ID: "t2", ProfessionOID: "p", LinkedAt: now}); err != nil {
			t.Fatal(err)
		}
		if err := st.LinkTelematikID(ctx, org2.ID, registration.TelematikID{ID: "t2", ProfessionOID: "p", LinkedAt: now}); !errors.Is(err, registration.ErrConflict) {
			t.Fatalf("linking a taken Telematik-ID: %v", err)
		}
		got, _ := st.Organisation(ctx, org.ID)
		if len(got.TelematikIDs) != 2 || got.TelematikIDs[0].ID != "t1" || got.TelematikIDs[1].ID != "t2" {
			t.Fatalf("linked: %+v", got.TelematikIDs)
		}
		if err := st.UnlinkTelematikID(ctx, org.ID, "t1"); !errors.Is(err, registration.ErrConflict) {
			t.Fatalf("unlinking the first: %v", err)
		}
		if err := st.UnlinkTelematikID(ctx, org.ID, "nope"); !errors.Is(err, registration.ErrNotFound) {
			t.Fatalf("unlinking an unknown one: %v", err)
		}
		if err := st.UnlinkTelematikID(ctx, org.ID, "t2"); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("a TOTP step is used once and only newer steps after it", func(t *testing.T) {
		st := open(t)
		_, admin, _ := st.CreateOrganisation(ctx, "A", registration.TelematikID{ID: "t1", ProfessionOID: "p"}, []byte("s"), now)
		if err := st.ResetTOTP(ctx, admin.ID, []byte("new")); err != nil {
			t.Fatalf("reset before confirmation: %v", err)
		}
		if err := st.UseTOTPStep(ctx, admin.ID, 100); err != nil {
			t.Fatal(err)
		}
		if err := st.UseTOTPStep(ctx, admin.ID, 100); !errors.Is(err, registration.ErrStale) {
			t.Fatalf("same step again: %v", err)
		}
		if err := st.UseTOTPStep(ctx, admin.ID, 99); !errors.Is(err, registration.ErrStale) {
			t.Fatalf("older step: %v", err)
		}
		a, _ := st.Admin(ctx, admin.ID)
		if !a.TOTPConfirmed || a.TOTPLastStep != 100 || string(a.TOTPSecret) != "new" {
			t.Fatalf("admin after use: %+v", a)
		}
		if err := st.ResetTOTP(ctx, admin.ID, []byte("again")); !errors.Is(err, registration.ErrStale) {
			t.Fatalf("a confirmed enrolment was reset: %v", err)
		}
	})

	t.Run("a Matrix ID binds to one admin only", func(t *testing.T) {
		st := open(t)
		_, a1, _ := st.CreateOrganisation(ctx, "A", registration.TelematikID{ID: "t1", ProfessionOID: "p"}, []byte("s"), now)
		_, a2, _ := st.CreateOrganisation(ctx, "B", registration.TelematikID{ID: "t2", ProfessionOID: "p"}, []byte("s"), now)
		if err := st.SetMXID(ctx, a1.ID, "@admin:hs1.test"); err != nil {
			t.Fatal(err)
		}
		if err := st.SetMXID(ctx, a2.ID, "@admin:hs1.test"); !errors.Is(err, registration.ErrConflict) {
			t.Fatalf("second binding: %v", err)
		}
		if got, err := st.AdminByMXID(ctx, "@admin:hs1.test"); err != nil || got.ID != a1.ID {
			t.Fatalf("by mxid: %+v %v", got, err)
		}
		if err := st.SetMXID(ctx, a1.ID, ""); err != nil {
			t.Fatal(err)
		}
		if _, err := st.AdminByMXID(ctx, "@admin:hs1.test"); !errors.Is(err, registration.ErrNotFound) {
			t.Fatalf("after unbinding: %v", err)
		}
	})

	t.Run("messenger services keep their fields and state", func(t *testing.T) {
		st := open(t)
		org, _, _ := st.CreateOrganisation(ctx, "A", registration.TelematikID{ID: "t1", ProfessionOID: "p"}, []byte("s"), now)
		m := registration.MessengerService{Domain: "kasse.tim.test", OrgID: org.ID, TelematikID: "t1", IsInsurance: true, IK: []string{"109500969"},
			RedirectDomains: []string{"a.test"}, State: registration.StateActive, StateSince: now, CreatedAt: now}
		if err := st.AddService(ctx, m); err != nil {
			t.Fatal(err)
		}
		if err := st.AddService(ctx, m); !errors.Is(err, registration.ErrConflict) {
			t.Fatalf("duplicate: %v", err)
		}
		if err := st.SetServiceState(ctx, m.Domain, registration.StateDeactivated, now.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		got, err := st.Service(ctx, m.Domain)
		if err != nil || !got.IsInsurance || got.IK[0] != "109500969" || got.RedirectDomains[0] != "a.test" || got.State != registration.StateDeactivated || !got.StateSince.Equal(now.Add(time.Hour)) {
			t.Fatalf("service: %+v %v", got, err)
		}
		if l, _ := st.Services(ctx, org.ID); len(l) != 1 {
			t.Fatalf("services of org: %d", len(l))
		}
		if l, _ := st.Services(ctx, org.ID+1); len(l) != 0 {
			t.Fatalf("services of another org: %d", len(l))
		}
		if err := st.DeleteService(ctx, m.Domain); err != nil {
			t.Fatal(err)
		}
		if _, err := st.Service(ctx, m.Domain); !errors.Is(err, registration.ErrNotFound) {
			t.Fatalf("after delete: %v", err)
		}
	})

	t.Run("the federation list keeps its bytes and contact time", func(t *testing.T) {
		st := open(t)
		if _, err := st.FederationList(ctx); !errors.Is(err, registration.ErrNotFound) {
			t.Fatalf("empty: %v", err)
		}
		if err := st.SaveFederationList(ctx, registration.StoredList{JWS: []byte("a.b.c"), Version: 3, VerifiedContact: now}); err != nil {
			t.Fatal(err)
		}
		if err := st.TouchFederationList(ctx, 2, now.Add(time.Hour)); !errors.Is(err, registration.ErrStale) {
			t.Fatalf("touch of another version: %v", err)
		}
		if err := st.TouchFederationList(ctx, 3, now.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		l, err := st.FederationList(ctx)
		if err != nil || string(l.JWS) != "a.b.c" || l.Version != 3 || !l.VerifiedContact.Equal(now.Add(time.Hour)) {
			t.Fatalf("list: %+v %v", l, err)
		}
	})

	t.Run("sessions expire", func(t *testing.T) {
		st := open(t)
		_, a, _ := st.CreateOrganisation(ctx, "A", registration.TelematikID{ID: "t1", ProfessionOID: "p"}, []byte("s"), now)
		if err := st.CreateSession(ctx, registration.Session{TokenHash: []byte("h"), AdminID: a.ID, ExpiresAt: now.Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
		if s, err := st.SessionByHash(ctx, []byte("h"), now); err != nil || s.AdminID != a.ID {
			t.Fatalf("session: %+v %v", s, err)
		}
		if _, err := st.SessionByHash(ctx, []byte("h"), now.Add(2*time.Hour)); !errors.Is(err, registration.ErrNotFound) {
			t.Fatalf("expired session: %v", err)
		}
		_ = st.DeleteExpiredSessions(ctx, now.Add(2*time.Hour))
		if _, err := st.SessionByHash(ctx, []byte("h"), now); !errors.Is(err, registration.ErrNotFound) {
			t.Fatalf("deleted session: %v", err)
		}
	})
}
