package stack

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/timstack/timstack/proxy/e2e/mxclient"
)

// Assertions shared by the e2e packages.

// Must fails the test on err.
func Must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// WantErr asserts err is a Matrix error with the status and errcode.
func WantErr(t testing.TB, err error, status int, errcode string) {
	t.Helper()
	var e *mxclient.Error
	if !errors.As(err, &e) {
		t.Fatalf("want HTTP %d %s, got %v", status, errcode, err)
	}
	if e.Status != status || e.ErrCode != errcode {
		t.Fatalf("want HTTP %d %s, got HTTP %d %s (%s)", status, errcode, e.Status, e.ErrCode, e.Message)
	}
}

// WaitInvite waits until u's sync shows an invite to roomID. The minute is generous on purpose: a first
// contact between two servers (key fetches through both proxies) on a loaded 2-core CI box can take tens of
// seconds, and only a failing test ever waits that long.
func WaitInvite(t testing.TB, u *User, roomID string) {
	t.Helper()
	_, err := u.SyncUntil(context.Background(), "", 60*time.Second, func(r *mxclient.SyncResponse) bool {
		_, ok := r.Rooms.Invite[roomID]
		return ok
	})
	if err != nil {
		t.Fatalf("%s never saw the invite to %s: %v", u.ID, roomID, err)
	}
}

// NoInvite proves a refused invite reached nobody: u's sync shows no invite to roomID (to any room when
// roomID is empty — refused createRoom invites have no room) within wait. wait must be long enough for
// federation to deliver an invite that had passed; the allowed twins of the tests see theirs well within it.
func NoInvite(t testing.TB, u *User, roomID string, wait time.Duration) {
	t.Helper()
	_, err := u.SyncUntil(context.Background(), "", wait, func(r *mxclient.SyncResponse) bool {
		if roomID == "" {
			return len(r.Rooms.Invite) > 0
		}
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

// WaitMessage waits until u's sync shows a message with body in roomID; ErrSyncDeadline otherwise.
func WaitMessage(u *User, roomID, body string, wait time.Duration) error {
	_, err := u.SyncUntil(context.Background(), "", wait, func(r *mxclient.SyncResponse) bool {
		for _, ev := range r.Rooms.Join[roomID].Timeline.Events {
			if ev.Body() == body {
				return true
			}
		}
		return false
	})
	return err
}

// PrivateRoom is what a TI-M client creates: private and encrypted (A_25323-01); the proxy adds history
// visibility "invited" and room version 10.
func PrivateRoom(invite ...string) map[string]any {
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
