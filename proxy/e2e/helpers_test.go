package e2e

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/timstack/timstack/proxy/e2e/mxclient"
	"github.com/timstack/timstack/proxy/e2e/stack"
)

// setPermissions stores a Pro permission configuration for u.
func setPermissions(t *testing.T, u *user, cfg map[string]any) {
	t.Helper()
	must(t, u.SetAccountData(ctxT(t), "de.gematik.tim.account.permissionconfig.pro.v1", cfg))
}

// connectedPair creates a room of a (hs1) with b (hs2) joined, through both proxies.
func connectedPair(t *testing.T, a, b *user) string {
	t.Helper()
	ctx := ctxT(t)
	roomID, err := a.CreateRoom(ctx, privateRoom())
	must(t, err)
	must(t, a.Invite(ctx, roomID, b.ID))
	waitInvite(t, b, roomID)
	_, err = b.Join(ctx, roomID)
	must(t, err)
	return roomID
}

func decode(t *testing.T, raw json.RawMessage, v any) {
	t.Helper()
	if err := json.Unmarshal(raw, v); err != nil {
		t.Fatalf("decode %s: %v", raw, err)
	}
}

// anonymous is a client of u's homeserver without an access token.
func anonymous(u *user) *mxclient.Client { return &mxclient.Client{BaseURL: u.BaseURL} }

var (
	must        = stack.Must
	wantErr     = stack.WantErr
	waitInvite  = stack.WaitInvite
	noInvite    = stack.NoInvite
	privateRoom = stack.PrivateRoom
)

// waitMessage waits until u's sync shows a message with body in roomID.
func waitMessage(t *testing.T, u *user, roomID, body string, wait time.Duration) error {
	t.Helper()
	return stack.WaitMessage(u, roomID, body, wait)
}
