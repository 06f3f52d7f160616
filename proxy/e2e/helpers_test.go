package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/timstack/timstack/proxy/e2e/mxclient"
)

// wantErr asserts err is a Matrix error with the status and errcode.
func wantErr(t *testing.T, err error, status int, errcode string) {
	t.Helper()
	var e *mxclient.Error
	if !errors.As(err, &e) {
		t.Fatalf("want HTTP %d %s, got %v", status, errcode, err)
	}
	if e.Status != status || e.ErrCode != errcode {
		t.Fatalf("want HTTP %d %s, got HTTP %d %s (%s)", status, errcode, e.Status, e.ErrCode, e.Message)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// waitInvite waits until u's sync shows an invite to roomID.
func waitInvite(t *testing.T, u *user, roomID string) {
	t.Helper()
	_, err := u.SyncUntil(ctxT(t), "", 30*time.Second, func(r *mxclient.SyncResponse) bool {
		_, ok := r.Rooms.Invite[roomID]
		return ok
	})
	if err != nil {
		t.Fatalf("%s never saw the invite to %s: %v", u.ID, roomID, err)
	}
}

// noInvite proves a denied invite reached nobody: u's sync shows no invite to roomID within wait. The wait
// is long enough for federation to have delivered an invite that had passed (the allowed twins of these
// tests see theirs well within it).
func noInvite(t *testing.T, u *user, roomID string, wait time.Duration) {
	t.Helper()
	_, err := u.SyncUntil(ctxT(t), "", wait, func(r *mxclient.SyncResponse) bool {
		_, ok := r.Rooms.Invite[roomID]
		return ok
	})
	if err == nil {
		t.Fatalf("%s received an invite to %s that was refused", u.ID, roomID)
	}
	if !errors.Is(err, mxclient.ErrSyncDeadline) {
		t.Fatalf("sync: %v", err)
	}
}

// waitMessage waits until u's sync shows a message with body in roomID and returns the next batch.
func waitMessage(t *testing.T, u *user, roomID, body string, wait time.Duration) error {
	t.Helper()
	_, err := u.SyncUntil(ctxT(t), "", wait, func(r *mxclient.SyncResponse) bool {
		jr, ok := r.Rooms.Join[roomID]
		if !ok {
			return false
		}
		for _, ev := range jr.Timeline.Events {
			if ev.Body() == body {
				return true
			}
		}
		return false
	})
	return err
}

// privateRoom is what a TI-M client creates: private, encrypted, history invited (A_25323-01).
func privateRoom(invite ...string) map[string]any {
	req := map[string]any{
		"preset": "private_chat",
		"initial_state": []any{
			map[string]any{"type": "m.room.encryption", "state_key": "", "content": map[string]any{"algorithm": "m.megolm.v1.aes-sha2"}},
		},
	}
	if len(invite) > 0 {
		req["invite"] = invite
	}
	return req
}

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

var _ = context.Background

// anonymous is a client of u's homeserver without an access token.
func anonymous(u *user) *mxclient.Client { return &mxclient.Client{BaseURL: u.BaseURL} }
