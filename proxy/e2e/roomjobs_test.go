package e2e

import (
	"testing"
	"time"

	"github.com/timstack/timstack/proxy/e2e/mxclient"
)

// A_28564-01: a room that holds only state events, older than the threshold, with only its creator left is
// cleaned up by the proxy's room job — through the application service (the creator leaves and forgets),
// never through an admin API. A room with a message is left alone (the allowed twin). hs3's proxy runs its
// jobs every second with a 3 s threshold.
func TestA28564OrphanedRoomsAreCleanedUp(t *testing.T) {
	carol := newUser(t, mustNode(t, "hs3.tim.test"), "carol")
	ctx := ctxT(t)
	created := time.Now()
	orphan, err := carol.CreateRoom(ctx, privateRoom())
	must(t, err)
	active, err := carol.CreateRoom(ctx, privateRoom())
	must(t, err)
	_, err = carol.SendText(ctx, active, "a message makes a room more than state")
	must(t, err)

	_, err = carol.SyncUntil(ctx, "", 30*time.Second, func(r *mxclient.SyncResponse) bool {
		_, left := r.Rooms.Leave[orphan]
		return left
	})
	if err != nil {
		t.Fatalf("the orphaned state-only room %s was not cleaned up: %v", orphan, err)
	}
	if waited := time.Since(created); waited < 3*time.Second {
		t.Errorf("cleaned up %s after creation, before the 3 s threshold had passed", waited)
	}
	resp, err := carol.Sync(ctx, "", 0, "")
	must(t, err)
	if _, ok := resp.Rooms.Join[active]; !ok {
		t.Fatalf("the room with a message (%s) was cleaned up too", active)
	}
	if _, ok := resp.Rooms.Join[orphan]; ok {
		t.Fatalf("the orphaned room %s is still joined", orphan)
	}
}
