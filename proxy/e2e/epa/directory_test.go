package epa

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/timstack/timstack/policy"
)

// searchResults runs a user-directory search as u and returns the user IDs found.
func searchResults(t *testing.T, u *user, term string) []string {
	t.Helper()
	status, raw, err := u.Raw(ctxT(t), http.MethodPost, "/_matrix/client/v3/user_directory/search",
		map[string]any{"search_term": term, "limit": 10})
	must(t, err)
	if status != http.StatusOK {
		t.Fatalf("user_directory/search as %s: HTTP %d %s", u.ID, status, raw)
	}
	var resp struct {
		Limited bool `json:"limited"`
		Results []struct {
			UserID string `json:"user_id"`
		} `json:"results"`
	}
	decodeJSON(t, raw, &resp)
	ids := make([]string, 0, len(resp.Results))
	for _, r := range resp.Results {
		ids = append(ids, r.UserID)
	}
	return ids
}

func localpart(userID string) string {
	lp, _, _ := strings.Cut(strings.TrimPrefix(userID, "@"), ":")
	return lp
}

// A_26375 (UCs_ePA 06X_9): insured users cannot find each other in the user directory — not even users
// they share a room with. The proxy answers the search itself with an empty result; kk1's homeserver is
// never asked (its access log has no search by the user), although asked directly it would have found the
// other insured user. The twin: on the practice's server the same search passes the proxy and finds the
// colleague sharing the room.
func TestA26375UserDirectoryFindsNobody(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	pro, colleague := newUser(t, prax, "doc"), newUser(t, prax, "colleague")
	a, b := newUser(t, kk1, "anna"), newUser(t, kk1, "bert")
	roomID, err := pro.CreateRoom(ctx, privateRoom())
	must(t, err)
	invitedAndJoined(t, pro, colleague, roomID)
	invitedAndJoined(t, pro, a, roomID)
	invitedAndJoined(t, pro, b, roomID)

	finds := func(searcher func() []string, want string) bool {
		deadline := time.Now().Add(30 * time.Second)
		for {
			if slices.Contains(searcher(), want) {
				return true
			}
			if time.Now().After(deadline) {
				return false
			}
			time.Sleep(500 * time.Millisecond)
		}
	}
	if !finds(func() []string { return searchResults(t, pro, localpart(colleague.ID)) }, colleague.ID) {
		t.Fatalf("the Pro user never found %s in the user directory", colleague.ID)
	}
	if !homeserverSaw(t, pro, "/user_directory/search") {
		t.Fatal("the Pro user's search never reached the practice's homeserver")
	}

	for _, term := range []string{localpart(a.ID), a.ID, "anna"} {
		if got := searchResults(t, b, term); len(got) != 0 {
			t.Fatalf("insured %s searching %q found %v", b.ID, term, got)
		}
	}
	if homeserverSaw(t, b, "/user_directory/search") {
		t.Fatal("the insured user's search reached kk1's homeserver")
	}
	// Asked directly, kk1's homeserver would have answered: the empty result is the proxy's.
	bypass := &user{Client: direct(b), ID: b.ID, Node: b.Node}
	if !finds(func() []string { return searchResults(t, bypass, localpart(a.ID)) }, a.ID) {
		t.Fatalf("kk1's homeserver itself never found %s for %s", a.ID, b.ID)
	}
}

// ePA text (tim-proxy-spec.md §3.2, §3.11): an insured user may look up only the profiles of users they
// share a room with — 403 M_FORBIDDEN otherwise, decided by kk1's proxy (Synapse itself would answer). Once
// the Pro user's room is shared, the same lookup is answered: the proxy's room index fills from the
// homeserver's application-service transactions, so the test allows it a few seconds.
func TestEPAProfileNeedsSharedRoom(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	pro, insured, neighbour := newUser(t, prax, "doc"), newUser(t, kk1, "insured"), newUser(t, kk1, "neighbour")

	for _, target := range []*user{pro, neighbour} {
		_, err := insured.Profile(ctx, target.ID)
		wantErr(t, err, http.StatusForbidden, "M_FORBIDDEN")
		wantDenied(t, node(t, kk1), "client", policy.ActionProfile, insured.ID, target.ID, policy.ReasonEPAProfileNoSharedRoom)
	}
	if homeserverSaw(t, insured, "/profile/") {
		t.Fatal("a refused profile lookup reached kk1's homeserver")
	}
	for _, target := range []*user{pro, neighbour} {
		// Asked directly, the homeserver would have answered: the refusal is the proxy's.
		if _, err := direct(insured).Profile(ctx, target.ID); err != nil {
			t.Fatalf("direct profile lookup of %s: %v", target.ID, err)
		}
	}
	if _, err := insured.Profile(ctx, insured.ID); err != nil {
		t.Fatalf("own profile: %v", err)
	}

	roomID, err := pro.CreateRoom(ctx, privateRoom())
	must(t, err)
	invitedAndJoined(t, pro, insured, roomID)
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, err := insured.Profile(ctx, pro.ID)
		if err == nil {
			break
		}
		wantErr(t, err, http.StatusForbidden, "M_FORBIDDEN")
		if time.Now().After(deadline) {
			t.Fatalf("profile of %s still refused %s after sharing %s", pro.ID, err, roomID)
		}
		time.Sleep(250 * time.Millisecond)
	}
	// Sharing a room with the practice does not open the neighbour's profile.
	_, err = insured.Profile(ctx, neighbour.ID)
	wantErr(t, err, http.StatusForbidden, "M_FORBIDDEN")
}

// After a restart of the insured user's proxy its room index is empty; a shared room must still open the
// profile (the proxy asks the homeserver before refusing), and an unshared one must still be refused. Not
// parallel: restarting kk1's proxy would disturb the parallel tests, which run after this one.
func TestEPAProfileSharedRoomSurvivesProxyRestart(t *testing.T) {
	ctx := ctxT(t)
	pro, insured, neighbour := newUser(t, prax, "doc"), newUser(t, kk1, "insured"), newUser(t, kk1, "neighbour")
	roomID, err := pro.CreateRoom(ctx, privateRoom())
	must(t, err)
	invitedAndJoined(t, pro, insured, roomID)
	must(t, node(t, kk1).RestartProxy())
	if _, err := insured.Profile(ctx, pro.ID); err != nil {
		t.Fatalf("profile of a room-mate after a proxy restart: %v", err)
	}
	_, err = insured.Profile(ctx, neighbour.ID)
	wantErr(t, err, http.StatusForbidden, "M_FORBIDDEN")
}
