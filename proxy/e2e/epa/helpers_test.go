package epa

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/timstack/timstack/policy"
	"github.com/timstack/timstack/proxy/e2e/mxclient"
	"github.com/timstack/timstack/proxy/e2e/stack"
)

// Account-data types of the permission configuration (tim-proxy-spec.md §3.5).
const (
	typePro = "de.gematik.tim.account.permissionconfig.pro.v1"
	typeEPA = "de.gematik.tim.account.permissionconfig.epa.v1"
)

// denyWait bounds how long a refused invite is watched for: far longer than the allowed twins of these tests
// need to see theirs (federated invites arrive within a second or two on this stack).
const denyWait = 6 * time.Second

// setPermissions stores a permission configuration of the given type for u, through u's proxy.
func setPermissions(t *testing.T, u *user, typ string, cfg map[string]any) {
	t.Helper()
	must(t, u.SetAccountData(ctxT(t), typ, cfg))
}

// exceptions builds an exception object {"a": {}, "b": {}}.
func exceptions(keys ...string) map[string]any {
	m := map[string]any{}
	for _, k := range keys {
		m[k] = map[string]any{}
	}
	return m
}

// invitedAndJoined has inviter invite u into roomID and u join it.
func invitedAndJoined(t *testing.T, inviter, u *user, roomID string) {
	t.Helper()
	ctx := ctxT(t)
	must(t, inviter.Invite(ctx, roomID, u.ID))
	waitInvite(t, u, roomID)
	_, err := u.Join(ctx, roomID)
	must(t, err)
}

// waitJoinedAt waits until observer's homeserver has member's join in the room's state.
func waitJoinedAt(t *testing.T, observer *user, roomID, member string) {
	t.Helper()
	ctx := ctxT(t)
	deadline := time.Now().Add(60 * time.Second)
	for {
		raw, err := observer.GetState(ctx, roomID, "m.room.member", member)
		var m struct {
			Membership string `json:"membership"`
		}
		if err == nil && json.Unmarshal(raw, &m) == nil && m.Membership == "join" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s's homeserver never saw %s join %s (last: %s, %v)", observer.ID, member, roomID, raw, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// direct is u's client talking to its homeserver without the proxy in between: what a Fachdienst whose
// proxy does not enforce a rule would let through. Only tests proving the other side's checks use it.
func direct(u *user) *mxclient.Client {
	return &mxclient.Client{BaseURL: u.Node.HS.URL(), UserID: u.ID, AccessToken: u.AccessToken, DeviceID: u.DeviceID}
}

// decision is one line of a proxy's decision log.
type decision struct {
	Surface string          `json:"surface"`
	Action  policy.Action   `json:"action"`
	Actor   string          `json:"actor"`
	Target  string          `json:"target"`
	Origin  string          `json:"origin"`
	RoomID  string          `json:"room_id"`
	Allow   bool            `json:"allow"`
	Reasons []policy.Reason `json:"reasons"`
	Status  int             `json:"status"`
}

// decisions returns the node's decision-log lines that match.
func decisions(t *testing.T, nd *stack.Node, match func(d decision) bool) []decision {
	t.Helper()
	var out []decision
	for _, ev := range nd.Decisions.Events() {
		raw, err := json.Marshal(ev)
		must(t, err)
		var d decision
		must(t, json.Unmarshal(raw, &d))
		if match(d) {
			out = append(out, d)
		}
	}
	return out
}

// by matches decisions of action taken for actor (and target, if not empty).
func by(action policy.Action, actor, target string) func(d decision) bool {
	return func(d decision) bool {
		return d.Action == action && d.Actor == actor && (target == "" || d.Target == target)
	}
}

// wantDenied asserts the node's proxy logged exactly the refusal of action by actor against target for
// reason, and never allowed it.
func wantDenied(t *testing.T, nd *stack.Node, surface string, action policy.Action, actor, target string, reason policy.Reason) {
	t.Helper()
	ds := decisions(t, nd, by(action, actor, target))
	denied := false
	for _, d := range ds {
		if d.Allow {
			t.Fatalf("%s proxy allowed %s by %s → %s: %+v", nd.Name, action, actor, target, d)
		}
		if d.Surface == surface && slices.Contains(d.Reasons, reason) {
			denied = true
		}
	}
	if !denied {
		t.Fatalf("%s proxy has no %s refusal of %s by %s → %s for %s; decisions: %+v", nd.Name, surface, action, actor, target, reason, ds)
	}
}

// wantAllowed asserts the node's proxy logged an allow of action by actor against target on surface.
func wantAllowed(t *testing.T, nd *stack.Node, surface string, action policy.Action, actor, target string) {
	t.Helper()
	for _, d := range decisions(t, nd, by(action, actor, target)) {
		if d.Surface == surface && d.Allow {
			return
		}
	}
	t.Fatalf("%s proxy never allowed %s %s by %s → %s", nd.Name, surface, action, actor, target)
}

// homeserverSaw reports whether nd's Synapse access log has a request of userID whose request line contains
// needle. Before looking it sends a marker request as userID directly to the homeserver and waits until the
// marker is logged: every request userID finished earlier is then in the log too, so "not there" means the
// homeserver was never asked.
func homeserverSaw(t *testing.T, u *user, needle string) bool {
	t.Helper()
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	marker := "e2e_marker=" + hex.EncodeToString(rnd[:])
	status, _, err := direct(u).Raw(ctxT(t), "GET", "/_matrix/client/v3/account/whoami?"+marker, nil)
	if err != nil || status != 200 {
		t.Fatalf("marker request: status %d, %v", status, err)
	}
	who := "{" + u.ID + "}"
	deadline := time.Now().Add(15 * time.Second)
	for {
		seen, markerSeen := false, false
		f, err := os.Open(u.Node.HS.LogPath())
		must(t, err)
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			if !strings.Contains(line, who) || !strings.Contains(line, "Processed request") {
				continue
			}
			if strings.Contains(line, marker) {
				markerSeen = true
			}
			if strings.Contains(line, needle) {
				seen = true
			}
		}
		f.Close()
		if markerSeen {
			return seen
		}
		if time.Now().After(deadline) {
			t.Fatalf("marker request never appeared in %s", u.Node.HS.LogPath())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func decodeJSON(t *testing.T, raw []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(raw, v); err != nil {
		t.Fatalf("decode %s: %v", raw, err)
	}
}

var (
	must        = stack.Must
	wantErr     = stack.WantErr
	waitInvite  = stack.WaitInvite
	noInvite    = stack.NoInvite
	privateRoom = stack.PrivateRoom
)

// waitMessage waits until u's sync shows a message with body in roomID.
func waitMessage(t *testing.T, u *user, roomID, body string) {
	t.Helper()
	if err := stack.WaitMessage(u, roomID, body, 60*time.Second); err != nil {
		t.Fatalf("%s never saw %q in %s: %v", u.ID, body, roomID, err)
	}
}
