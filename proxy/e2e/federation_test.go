package e2e

import (
	"net/http"
	"testing"
	"time"
)

// Messages and edits both ways, through both proxies; every federated transaction leaves an egress
// decision-log line at the sending proxy and an inbound one at the receiving proxy.
func TestFederatedMessagesBothWays(t *testing.T) {
	alice, bob := newUser(t, node1(t), "alice"), newUser(t, node2(t), "bob")
	ctx := ctxT(t)
	roomID := connectedPair(t, alice, bob)

	_, err := alice.SendText(ctx, roomID, "hello from hs1")
	must(t, err)
	if err := waitMessage(t, bob, roomID, "hello from hs1", 30*time.Second); err != nil {
		t.Fatalf("bob never got alice's message: %v", err)
	}
	evID, err := bob.SendText(ctx, roomID, "hello from hs2")
	must(t, err)
	if err := waitMessage(t, alice, roomID, "hello from hs2", 30*time.Second); err != nil {
		t.Fatalf("alice never got bob's message: %v", err)
	}
	// An edit (m.replace) federates too.
	_, err = bob.SendMessage(ctx, roomID, "m.room.message", map[string]any{
		"msgtype": "m.text", "body": "* edited", "m.new_content": map[string]any{"msgtype": "m.text", "body": "edited"},
		"m.relates_to": map[string]any{"rel_type": "m.replace", "event_id": evID},
	})
	must(t, err)
	if err := waitMessage(t, alice, roomID, "* edited", 30*time.Second); err != nil {
		t.Fatalf("alice never got bob's edit: %v", err)
	}

	if !node1(t).HasDecision("egress", "federation_outbound", "hs2.tim.test", true) {
		t.Error("hs1's proxy logged no allowed egress decision towards hs2.tim.test")
	}
	if !node2(t).HasDecision("federation", "federation_inbound", "hs1.tim.test", true) {
		t.Error("hs2's proxy logged no allowed inbound decision from hs1.tim.test")
	}
}

// AF_10064-02: inviting a user of a domain outside the federation is refused at the client API, 403.
func TestAF10064InviteOutsideFederationIsRefused(t *testing.T) {
	alice := newUser(t, node1(t), "alice")
	ctx := ctxT(t)
	roomID, err := alice.CreateRoom(ctx, privateRoom())
	must(t, err)
	wantErr(t, alice.Invite(ctx, roomID, "@tim-gematik:matrix.org"), http.StatusForbidden, "M_FORBIDDEN")
	_, err = alice.CreateRoom(ctx, privateRoom("@tim-gematik:matrix.org"))
	wantErr(t, err, http.StatusForbidden, "M_FORBIDDEN")

	// The allowed twin: a federated invitee passes.
	bob := newUser(t, node2(t), "bob")
	must(t, alice.Invite(ctx, roomID, bob.ID))
	waitInvite(t, bob, roomID)
}
