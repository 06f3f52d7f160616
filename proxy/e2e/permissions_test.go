package e2e

import (
	"net/http"
	"testing"
	"time"
)

// The permission matrix of the V3 set (UC05 05_1_OrgOrg, A_26021-01): the receiving side enforces the
// invitee's configuration, for federated invites (at the invitee's proxy, inbound) and for same-server
// invites (at the proxy's client API). Every denial is 403 M_FORBIDDEN and the invitee sees nothing; every
// denial has an allowed twin.
func TestA26021PermissionMatrix(t *testing.T) {
	const deny = 8 * time.Second
	type setup func(inviter *user) map[string]any
	cases := []struct {
		name      string
		sameHost  bool
		config    setup
		wantAllow bool
	}{
		{"allow all without exceptions admits a federated inviter", false,
			func(*user) map[string]any { return map[string]any{"defaultSetting": "allow all"} }, true},
		{"allow all blocking the inviter's MXID refuses a federated invite", false,
			func(i *user) map[string]any {
				return map[string]any{"defaultSetting": "allow all", "userExceptions": map[string]any{i.ID: map[string]any{}}}
			}, false},
		{"allow all blocking the inviter's server refuses a federated invite", false,
			func(*user) map[string]any {
				return map[string]any{"defaultSetting": "allow all", "serverExceptions": map[string]any{"hs1.tim.test": map[string]any{}}}
			}, false},
		{"block all refuses a federated invite", false,
			func(*user) map[string]any { return map[string]any{"defaultSetting": "block all"} }, false},
		{"block all allowing the inviter's MXID admits a federated invite", false,
			func(i *user) map[string]any {
				return map[string]any{"defaultSetting": "block all", "userExceptions": map[string]any{i.ID: map[string]any{}}}
			}, true},
		{"block all allowing the inviter's server admits a federated invite", false,
			func(*user) map[string]any {
				return map[string]any{"defaultSetting": "block all", "serverExceptions": map[string]any{"hs1.tim.test": map[string]any{}}}
			}, true},
		{"same-server: block all refuses a local invite", true,
			func(*user) map[string]any { return map[string]any{"defaultSetting": "block all"} }, false},
		{"same-server: allow all blocking the inviter refuses a local invite", true,
			func(i *user) map[string]any {
				return map[string]any{"defaultSetting": "allow all", "userExceptions": map[string]any{i.ID: map[string]any{}}}
			}, false},
		{"same-server: block all allowing the inviter admits a local invite", true,
			func(i *user) map[string]any {
				return map[string]any{"defaultSetting": "block all", "userExceptions": map[string]any{i.ID: map[string]any{}}}
			}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := ctxT(t)
			inviter := newUser(t, node1(t), "inviter")
			inviteeNode := node2(t)
			if tc.sameHost {
				inviteeNode = node1(t)
			}
			invitee := newUser(t, inviteeNode, "invitee")
			setPermissions(t, invitee, tc.config(inviter))

			roomID, err := inviter.CreateRoom(ctx, privateRoom())
			must(t, err)
			err = inviter.Invite(ctx, roomID, invitee.ID)
			if tc.wantAllow {
				must(t, err)
				waitInvite(t, invitee, roomID)
				return
			}
			wantErr(t, err, http.StatusForbidden, "M_FORBIDDEN")
			noInvite(t, invitee, roomID, deny)

			// createRoom with the invitee in `invite` is the same invite by another route.
			_, err = inviter.CreateRoom(ctx, privateRoom(invitee.ID))
			wantErr(t, err, http.StatusForbidden, "M_FORBIDDEN")
		})
	}
}

// A mode switch takes effect at once: the proxy drops its cached configuration when the user's own PUT
// passes, so the next invite sees the new mode.
func TestA26021ModeSwitchTakesEffectImmediately(t *testing.T) {
	ctx := ctxT(t)
	inviter, invitee := newUser(t, node1(t), "inviter"), newUser(t, node1(t), "invitee")
	setPermissions(t, invitee, map[string]any{"defaultSetting": "block all"})
	room1, err := inviter.CreateRoom(ctx, privateRoom())
	must(t, err)
	wantErr(t, inviter.Invite(ctx, room1, invitee.ID), http.StatusForbidden, "M_FORBIDDEN")

	setPermissions(t, invitee, map[string]any{"defaultSetting": "allow all"})
	must(t, inviter.Invite(ctx, room1, invitee.ID))
	waitInvite(t, invitee, room1)
}

// An absent configuration reads as the server default (200), not 404.
func TestA25043AbsentConfigReadsAsServerDefault(t *testing.T) {
	u := newUser(t, node1(t), "fresh")
	raw, err := u.GetAccountData(ctxT(t), "de.gematik.tim.account.permissionconfig.pro.v1")
	must(t, err)
	var cfg struct {
		DefaultSetting string `json:"defaultSetting"`
	}
	decode(t, raw, &cfg)
	if cfg.DefaultSetting != "allow all" {
		t.Fatalf("default config = %s, want allow all", raw)
	}
}

// A malformed configuration is refused with 400 M_BAD_JSON instead of silently becoming the default.
func TestMalformedPermissionConfigIsRefused(t *testing.T) {
	u := newUser(t, node1(t), "sloppy")
	err := u.SetAccountData(ctxT(t), "de.gematik.tim.account.permissionconfig.pro.v1", map[string]any{"defaultSetting": "allow some"})
	wantErr(t, err, http.StatusBadRequest, "M_BAD_JSON")
}
