package epa

import (
	"context"
	"net/http"
	"testing"

	"github.com/timstack/timstack/policy"
)

// inviteRoute is one of the client routes by which a stock homeserver sends an invite. It returns the room
// the invite was for ("" when the room never came to be).
type inviteRoute struct {
	name string
	do   func(ctx context.Context, t *testing.T, inviter *user, inviteeID string) (string, error)
}

var inviteRoutes = []inviteRoute{
	{"/invite", func(ctx context.Context, t *testing.T, inviter *user, inviteeID string) (string, error) {
		roomID, err := inviter.CreateRoom(ctx, privateRoom())
		must(t, err)
		return roomID, inviter.Invite(ctx, roomID, inviteeID)
	}},
	{"createRoom invite", func(ctx context.Context, t *testing.T, inviter *user, inviteeID string) (string, error) {
		return inviter.CreateRoom(ctx, privateRoom(inviteeID))
	}},
	{"m.room.member state invite", func(ctx context.Context, t *testing.T, inviter *user, inviteeID string) (string, error) {
		roomID, err := inviter.CreateRoom(ctx, privateRoom())
		must(t, err)
		_, err = inviter.SendState(ctx, roomID, "m.room.member", inviteeID, map[string]any{"membership": "invite"})
		return roomID, err
	}},
}

// A_25705, AF_10233 (UCs_ePA 03_9): an insured user cannot invite another insured user, on the same server or
// across servers, by any invite route — 403 M_FORBIDDEN at the inviter's proxy, and the invitee receives
// nothing. The allowed twin: a Pro user invites the same invitee by the same route and it arrives.
func TestA25705InsuredCannotInviteInsured(t *testing.T) {
	t.Parallel()
	for _, inviteeServer := range []string{kk1, kk2} {
		for _, rt := range inviteRoutes {
			t.Run("kk1 → "+inviteeServer+" by "+rt.name+" is refused, a Pro inviter's is not", func(t *testing.T) {
				t.Parallel()
				ctx := ctxT(t)
				insured, invitee := newUser(t, kk1, "insured"), newUser(t, inviteeServer, "invitee")
				pro := newUser(t, prax, "doc")

				roomID, err := rt.do(ctx, t, insured, invitee.ID)
				wantErr(t, err, http.StatusForbidden, "M_FORBIDDEN")
				wantDenied(t, node(t, kk1), "client", actionOf(rt.name), insured.ID, invitee.ID, policy.ReasonEPAInsuredToInsured)
				noInvite(t, invitee, roomID, denyWait)
				if inviteeServer != kk1 {
					// Refused before it left: the invitee's proxy never saw an invite from the insured user.
					if ds := decisions(t, node(t, kk2), by(policy.ActionFederationInvite, insured.ID, "")); len(ds) != 0 {
						t.Fatalf("kk2's proxy saw the refused invite: %+v", ds)
					}
				}

				roomID, err = rt.do(ctx, t, pro, invitee.ID)
				must(t, err)
				waitInvite(t, invitee, roomID)
			})
		}
	}
}

// UCs_ePA 03_9 second scenario: an insured invitee's allow-list entry ("block all" with the inviter as user
// exception) does not admit an insured inviter; the same entry does admit the Pro user it names.
func TestA25705AllowListDoesNotAdmitInsuredInviter(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	insured, invitee, pro := newUser(t, kk1, "insured"), newUser(t, kk1, "invitee"), newUser(t, prax, "doc")
	setPermissions(t, invitee, typeEPA, map[string]any{"defaultSetting": "block all", "userExceptions": exceptions(insured.ID, pro.ID)})

	roomID, err := insured.CreateRoom(ctx, privateRoom())
	must(t, err)
	wantErr(t, insured.Invite(ctx, roomID, invitee.ID), http.StatusForbidden, "M_FORBIDDEN")
	wantDenied(t, node(t, kk1), "client", policy.ActionInvite, insured.ID, invitee.ID, policy.ReasonEPAInsuredToInsured)
	noInvite(t, invitee, roomID, denyWait)

	proRoom, err := pro.CreateRoom(ctx, privateRoom())
	must(t, err)
	must(t, pro.Invite(ctx, proRoom, invitee.ID))
	waitInvite(t, invitee, proRoom)
}

// A_25705 at S-S (AF_10233, tim-proxy-spec.md §3.3): the invitee's proxy refuses an inbound federation
// invite between insured users on its own, whatever the inviter's side did.
//
// How this is shown honestly: the insured inviter's client talks to kk1's homeserver directly, bypassing
// kk1's client-server proxy — exactly what a Fachdienst whose proxy failed to enforce A_25705 would let
// through. kk1's real Synapse then builds, signs and sends a genuine v2 federation invite, which leaves
// through kk1's egress (which checks only the destination) and arrives at kk2's federation listener. No
// invite is forged, no key is borrowed: the only difference from production is the missing C-S check.
// kk2's proxy must refuse it (decision log: federation surface, epa_insured_to_insured), Synapse relays the
// 403 to the inviter, and kk2's user sees nothing. The twin: the Pro user does the same, also bypassing
// prax's C-S proxy, and the same invitee gets the invite through kk2's inbound check.
func TestA25705FederationInviteRefusedAtInviteesProxy(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	insured, invitee, pro := newUser(t, kk1, "insured"), newUser(t, kk2, "invitee"), newUser(t, prax, "doc")

	bypass := direct(insured)
	roomID, err := bypass.CreateRoom(ctx, privateRoom())
	must(t, err)
	err = bypass.Invite(ctx, roomID, invitee.ID)
	wantErr(t, err, http.StatusForbidden, "M_FORBIDDEN")
	wantDenied(t, node(t, kk2), "federation", policy.ActionFederationInvite, insured.ID, invitee.ID, policy.ReasonEPAInsuredToInsured)
	if ds := decisions(t, node(t, kk1), by(policy.ActionInvite, insured.ID, invitee.ID)); len(ds) != 0 {
		t.Fatalf("the invite went through kk1's C-S proxy after all: %+v", ds)
	}
	noInvite(t, invitee, roomID, denyWait)

	proBypass := direct(pro)
	proRoom, err := proBypass.CreateRoom(ctx, privateRoom())
	must(t, err)
	must(t, proBypass.Invite(ctx, proRoom, invitee.ID))
	wantAllowed(t, node(t, kk2), "federation", policy.ActionFederationInvite, pro.ID, invitee.ID)
	waitInvite(t, invitee, proRoom)
}

// UCs_Basis 04_9 (test 04.09.01): two insured users share a room only through a Pro user's invites. The
// practice invites one insured user of each insurance into one room; both get the invite, join and talk.
// Inside that room the insured users still cannot invite further insured users.
func TestUC0409ProInvitesTwoInsuredIntoOneRoom(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	pro, a, b := newUser(t, prax, "doc"), newUser(t, kk1, "anna"), newUser(t, kk2, "bert")
	roomID, err := pro.CreateRoom(ctx, privateRoom())
	must(t, err)
	invitedAndJoined(t, pro, a, roomID)
	invitedAndJoined(t, pro, b, roomID)
	// kk1 sends its events to the servers it knows to be in the room; it learns of bert's join from prax.
	// A message sent before that never reaches kk2 (Matrix does not relay), so wait as a client would
	// before talking to someone (under load this took longer than the message's 60 s).
	waitJoinedAt(t, a, roomID, b.ID)

	_, err = a.SendText(ctx, roomID, "hallo von kk1")
	must(t, err)
	waitMessage(t, b, roomID, "hallo von kk1")
	_, err = b.SendText(ctx, roomID, "hallo von kk2")
	must(t, err)
	waitMessage(t, a, roomID, "hallo von kk2")
	waitMessage(t, pro, roomID, "hallo von kk2")

	c := newUser(t, kk1, "carl")
	wantErr(t, a.Invite(ctx, roomID, c.ID), http.StatusForbidden, "M_FORBIDDEN")
	noInvite(t, c, roomID, denyWait)
	must(t, pro.Invite(ctx, roomID, c.ID))
	waitInvite(t, c, roomID)
}

// A_26390 (UCs_Pro 06X_1, UCs_ePA 05X_5): a Pro user's group exception isInsuredPerson. Under "allow all" it
// blocks insured inviters (the practice's proxy refuses kk1's federation invite; the kk1 user gets 403 and
// the Pro user sees nothing) but not Pro inviters; under "block all" it admits insured inviters and nobody
// else.
func TestA26390GroupInsuredPerson(t *testing.T) {
	t.Parallel()
	group := []any{map[string]any{"groupName": "isInsuredPerson"}}
	cases := []struct {
		name                       string
		config                     map[string]any
		insuredAllowed, proAllowed bool
	}{
		{"allow all blocking the group refuses an insured inviter and admits a Pro inviter",
			map[string]any{"defaultSetting": "allow all", "groupExceptions": group}, false, true},
		{"block all allowing the group admits an insured inviter and refuses a Pro inviter",
			map[string]any{"defaultSetting": "block all", "groupExceptions": group}, true, false},
		{"allow all without the group admits both",
			map[string]any{"defaultSetting": "allow all"}, true, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := ctxT(t)
			doc, insured, colleague := newUser(t, prax, "doc"), newUser(t, kk1, "insured"), newUser(t, prax, "colleague")
			setPermissions(t, doc, typePro, tc.config)

			for _, inv := range []struct {
				who     *user
				allowed bool
				surface string
				action  policy.Action
			}{
				{insured, tc.insuredAllowed, "federation", policy.ActionFederationInvite},
				{colleague, tc.proAllowed, "client", policy.ActionInvite},
			} {
				roomID, err := inv.who.CreateRoom(ctx, privateRoom())
				must(t, err)
				err = inv.who.Invite(ctx, roomID, doc.ID)
				if inv.allowed {
					must(t, err)
					waitInvite(t, doc, roomID)
					continue
				}
				wantErr(t, err, http.StatusForbidden, "M_FORBIDDEN")
				wantDenied(t, node(t, prax), inv.surface, inv.action, inv.who.ID, doc.ID, policy.ReasonInviteNotPermitted)
				noInvite(t, doc, roomID, denyWait)
			}
		})
	}
}

// The ePA permission configuration is account data of type de.gematik.tim.account.permissionconfig.epa.v1
// (UCs 05_6 OrgePA): an insured user's "block all" refuses a Pro inviter at the insurance's proxy (inbound
// federation invite); an allow-list entry or a different mode admits it. An absent configuration reads as
// the server default.
func TestEPAPermissionConfig(t *testing.T) {
	t.Parallel()
	t.Run("an absent ePA configuration reads as the server default", func(t *testing.T) {
		t.Parallel()
		u := newUser(t, kk1, "fresh")
		raw, err := u.GetAccountData(ctxT(t), typeEPA)
		must(t, err)
		var cfg struct {
			DefaultSetting string `json:"defaultSetting"`
		}
		decodeJSON(t, raw, &cfg)
		if cfg.DefaultSetting != "allow all" {
			t.Fatalf("default ePA config = %s, want allow all", raw)
		}
	})
	cases := []struct {
		name    string
		config  func(pro *user) map[string]any
		allowed bool
	}{
		{"block all refuses a Pro inviter",
			func(*user) map[string]any { return map[string]any{"defaultSetting": "block all"} }, false},
		{"allow all blocking the practice's server refuses a Pro inviter",
			func(*user) map[string]any {
				return map[string]any{"defaultSetting": "allow all", "serverExceptions": exceptions(prax)}
			}, false},
		{"allow all blocking the Pro inviter's MXID refuses it",
			func(p *user) map[string]any {
				return map[string]any{"defaultSetting": "allow all", "userExceptions": exceptions(p.ID)}
			}, false},
		{"block all allowing the Pro inviter's MXID admits it",
			func(p *user) map[string]any {
				return map[string]any{"defaultSetting": "block all", "userExceptions": exceptions(p.ID)}
			}, true},
		{"block all allowing the practice's server admits a Pro inviter",
			func(*user) map[string]any {
				return map[string]any{"defaultSetting": "block all", "serverExceptions": exceptions(prax)}
			}, true},
		{"allow all admits a Pro inviter",
			func(*user) map[string]any { return map[string]any{"defaultSetting": "allow all"} }, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := ctxT(t)
			pro, insured := newUser(t, prax, "doc"), newUser(t, kk1, "insured")
			setPermissions(t, insured, typeEPA, tc.config(pro))

			roomID, err := pro.CreateRoom(ctx, privateRoom())
			must(t, err)
			err = pro.Invite(ctx, roomID, insured.ID)
			if tc.allowed {
				must(t, err)
				waitInvite(t, insured, roomID)
				return
			}
			wantErr(t, err, http.StatusForbidden, "M_FORBIDDEN")
			wantDenied(t, node(t, kk1), "federation", policy.ActionFederationInvite, pro.ID, insured.ID, policy.ReasonInviteNotPermitted)
			noInvite(t, insured, roomID, denyWait)
		})
	}
}

// actionOf is the policy action an invite route is decided as.
func actionOf(route string) policy.Action {
	if route == "createRoom invite" {
		return policy.ActionRoomCreate
	}
	return policy.ActionInvite
}
