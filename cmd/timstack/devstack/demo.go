package devstack

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/timstack/timstack/authn/devidp"
	"github.com/timstack/timstack/proxy/e2e/mxclient"
	"github.com/timstack/timstack/proxy/sso"
)

// The demo's cast: two organisations with gematik test cards (../shared/gematik/pki/cards).
const (
	PracticeDomain = "praxis-agostino.tim.test"
	PharmacyDomain = "apotheke-sportzentrum.tim.test"
	UnknownDomain  = "praxis-unbekannt.tim.test" // never registered: not on the federation list

	CardPracticeSMCB  = "80276883110000129077-2-C_SMCB_HCI_AUT_E256" // Praxis Rainer Graf d' Agóstino, 1.2.276.0.76.4.50
	CardDoctorHBA     = "80276883110000129084-2-C_HP_AUT_E256"       // Günther Otís, Arzt 1.2.276.0.76.4.30
	CardPharmacySMCB  = "80276883110000129068-2-C_SMCB_HCI_AUT_E256" // Apotheke am Sportzentrum, 1.2.276.0.76.4.54
	CardPharmacistHBA = "80276001011699802002-2-C_HP_AUT_E256"       // Bea Biene, Apothekerin 1.2.276.0.76.4.32
)

// DemoNodes are the two homeservers of the demo with their card mappings; hsURL gives each homeserver's URL.
func DemoNodes(hsURL func(serverName string) string) []NodeConfig {
	return []NodeConfig{
		{ServerName: PracticeDomain, HomeserverURL: hsURL(PracticeDomain), Users: []sso.MappedUser{
			{TelematikID: "1-HBA-Testkarte-883110000129084", ProfessionOID: "1.2.276.0.76.4.30", Localpart: "dr.otis"},
		}},
		{ServerName: PharmacyDomain, HomeserverURL: hsURL(PharmacyDomain), Users: []sso.MappedUser{
			{TelematikID: "3-1-APO-BeaBiene02", ProfessionOID: "1.2.276.0.76.4.32", Localpart: "bea.biene"},
		}},
	}
}

// DemoOrganizations are the directory entries the demo seeds (gematik's LDAP sync would provide them).
func DemoOrganizations() []Organization {
	return []Organization{
		{TelematikID: "1-SMC-B-Testkarte-883110000129077", Name: "Praxis Rainer Graf d' Agóstino", City: "Erfurt",
			Practitioners: []Practitioner{{TelematikID: "1-HBA-Testkarte-883110000129084", Given: "Günther Graf", Family: "Otís",
				MXID: "matrix:u/dr.otis:" + PracticeDomain}}},
		{TelematikID: "3-SMC-B-Testkarte-883110000129068", Name: "Apotheke am Sportzentrum", City: "Mühlhausen",
			Practitioners: []Practitioner{{TelematikID: "3-1-APO-BeaBiene02", Given: "Bea", Family: "Biene",
				MXID: "matrix:u/bea.biene:" + PharmacyDomain}}},
	}
}

// DemoResult is what the walkthrough established, for the acceptance test's further checks.
type DemoResult struct {
	Doctor, Pharmacist *mxclient.Client
	// Onboardings are the Org-Admin sessions by domain.
	Onboardings   map[string]*Onboarding
	RoomID        string
	DenialReasons []string
}

// RunDemo is the narrated walkthrough: two practices onboard with their SMC-B, a doctor logs in with an
// eHBA, finds a colleague of the other practice in the directory, invites, the message arrives; an invite to
// a non-federated server is refused with the reason from the decision log. Every step checks its outcome
// and returns an error when the stack misbehaves.
func (s *Stack) RunDemo(ctx context.Context, out io.Writer, cardsDir string) (*DemoResult, error) {
	step := func(f string, a ...any) { fmt.Fprintf(out, "\n\033[1m== "+f+"\033[0m\n", a...) }
	say := func(f string, a ...any) { fmt.Fprintf(out, "   "+f+"\n", a...) }
	card := func(name string) (*devidp.Card, error) { return devidp.LoadCard(filepath.Join(cardsDir, name)) }
	res := &DemoResult{Onboardings: map[string]*Onboarding{}}
	practice, pharmacy := s.Node(PracticeDomain), s.Node(PharmacyDomain)
	if practice == nil || pharmacy == nil {
		return nil, fmt.Errorf("demo: the stack lacks %s or %s", PracticeDomain, PharmacyDomain)
	}

	step("1. Two organisations onboard at the registration service with their SMC-B")
	for _, o := range []struct{ card, domain string }{{CardPracticeSMCB, PracticeDomain}, {CardPharmacySMCB, PharmacyDomain}} {
		c, err := card(o.card)
		if err != nil {
			return nil, err
		}
		ob, err := s.Onboard(ctx, c, o.domain)
		if err != nil {
			return nil, fmt.Errorf("onboard %s: %w", o.domain, err)
		}
		res.Onboardings[o.domain] = ob
		say("%s signed in through the IDP (SMC-B %s), set up TOTP, registered %s", c.Cert.Subject.CommonName, ob.TelematikID, o.domain)
	}
	if err := s.PropagateList(ctx); err != nil {
		return nil, err
	}
	_, list, err := s.central.Registry.Keeper().Current(ctx)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, d := range list.Domains() {
		names = append(names, d.Domain)
	}
	say("the directory signed federation list version %d (BP256R1, x5c); the registration service and both", list.Version)
	say("proxies verified it themselves; it now holds: %s", strings.Join(names, ", "))

	step("2. The pharmacist and the doctor log in with their eHBA (SSO through the proxy, stock Synapse)")
	hba, err := card(CardPharmacistHBA)
	if err != nil {
		return nil, err
	}
	if res.Pharmacist, err = SmartcardLogin(ctx, pharmacy, hba, sso.IDPPractitioner); err != nil {
		return nil, fmt.Errorf("pharmacist login: %w", err)
	}
	say("%s → %s", hba.Cert.Subject.CommonName, res.Pharmacist.UserID)
	if hba, err = card(CardDoctorHBA); err != nil {
		return nil, err
	}
	if res.Doctor, err = SmartcardLogin(ctx, practice, hba, sso.IDPPractitioner); err != nil {
		return nil, fmt.Errorf("doctor login: %w", err)
	}
	prof, err := res.Doctor.Profile(ctx, res.Doctor.UserID)
	if err != nil {
		return nil, err
	}
	say("%s → %s, display name %q (from the card)", hba.Cert.Subject.CommonName, res.Doctor.UserID, prof.DisplayName)

	step("3. The doctor finds a colleague of the other organisation in the directory")
	tok, err := s.SearchToken(ctx, res.Doctor)
	if err != nil {
		return nil, err
	}
	say("Matrix OpenID token → /tim-authenticate: the directory asked %s's userinfo, issued a search token", PracticeDomain)
	mxid, err := s.FindPractitionerMXID(ctx, tok, "Biene")
	if err != nil {
		return nil, err
	}
	say("GET /search/PractitionerRole?practitioner.family=Biene&_include=PractitionerRole:endpoint → %s", mxid)
	if mxid != res.Pharmacist.UserID {
		return nil, fmt.Errorf("directory answered %s, want %s", mxid, res.Pharmacist.UserID)
	}

	step("4. Invite, join, message — across both proxies")
	if res.RoomID, err = res.Doctor.CreateRoom(ctx, privateRoom(mxid)); err != nil {
		return nil, fmt.Errorf("create room with invite: %w", err)
	}
	if _, err := res.Pharmacist.SyncUntil(ctx, "", 90*time.Second, mxclient.HasInvite(res.RoomID)); err != nil {
		return nil, fmt.Errorf("the invite did not arrive: %w", err)
	}
	if _, err := res.Pharmacist.Join(ctx, res.RoomID); err != nil {
		return nil, fmt.Errorf("join: %w", err)
	}
	const text = "Guten Tag Frau Biene, ist das Rezept für Herrn Müller schon da?"
	if _, err := res.Doctor.SendText(ctx, res.RoomID, text); err != nil {
		return nil, fmt.Errorf("send: %w", err)
	}
	if _, err := res.Pharmacist.SyncUntil(ctx, "", 90*time.Second, mxclient.HasTimelineEvent(res.RoomID, func(e mxclient.Event) bool {
		return e.Body() == text
	})); err != nil {
		return nil, fmt.Errorf("the message did not arrive: %w", err)
	}
	say("%s invited %s; the invite passed both proxies (federation list, permission config); joined", res.Doctor.UserID, mxid)
	say("message delivered: %q", text)

	step("5. An invite to a server that is not on the federation list is refused")
	stranger := "@dr.unbekannt:" + UnknownDomain
	err = res.Doctor.Invite(ctx, res.RoomID, stranger)
	if !mxclient.IsErr(err, 403, "M_FORBIDDEN") {
		return nil, fmt.Errorf("invite of %s: got %v, want 403 M_FORBIDDEN", stranger, err)
	}
	say("invite %s → %v", stranger, err)
	if res.DenialReasons, err = practice.LastDenial("invite"); err != nil {
		return nil, err
	}
	say("decision log of %s's proxy: reasons %v", PracticeDomain, res.DenialReasons)
	fmt.Fprintf(out, "\n\033[1mWalkthrough complete.\033[0m\n")
	return res, nil
}

// privateRoom is what a TI-M client creates: private and encrypted (A_25323-01).
func privateRoom(invite ...string) map[string]any {
	req := map[string]any{
		"preset": "private_chat",
		"initial_state": []any{map[string]any{"type": "m.room.encryption", "state_key": "",
			"content": map[string]any{"algorithm": "m.megolm.v1.aes-sha2"}}},
	}
	if len(invite) > 0 {
		req["invite"] = invite
	}
	return req
}

// Relaxations says which trust settings the dev stack relaxes, and why.
func Relaxations() []string {
	return []string{
		"TEST-ONLY trust anchors: gematik's test cards, IDP keys and CAs are published test identities.",
		"IDP signer OCSP off at the proxies and the registration service: the gematik test certificates name " +
			"gematik's OCSP responders, which are not reachable here; cards are checked against a local test OCSP responder.",
		"The test TSL is stale; the dev IDP trusts the gematik test CAs directly instead of a fresh TSL.",
		"The federation-list signer and the RegService token signer come from a local dev component CA, not GEM.KOMP-CA.",
		"Everything binds to loopback and speaks plain HTTP except federation (TLS from a local dev CA).",
	}
}
