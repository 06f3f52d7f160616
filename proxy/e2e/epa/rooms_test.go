package epa

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/timstack/timstack/policy"
)

// encrypted is the m.room.encryption initial state of a TI-M room.
var encrypted = map[string]any{"type": "m.room.encryption", "state_key": "", "content": map[string]any{"algorithm": "m.megolm.v1.aes-sha2"}}

// UCs_ePA 13X_5 (A_26015-02, A_25324-01): an insured user cannot create a public room, a room anyone may
// join or knock on, a world-readable room, or a private room without encryption — 403 M_FORBIDDEN, and no
// room comes to be. The allowed twin of each is the same request made TI-M-conformant.
func TestA26015EPARoomCreation(t *testing.T) {
	t.Parallel()
	state := func(typ string, content map[string]any) map[string]any {
		return map[string]any{"type": typ, "state_key": "", "content": content}
	}
	cases := []struct {
		name   string
		req    map[string]any
		reason policy.Reason
	}{
		{"public_chat preset", map[string]any{"preset": "public_chat", "initial_state": []any{encrypted}}, policy.ReasonEPAPublicRoom},
		{"public visibility", map[string]any{"visibility": "public", "initial_state": []any{encrypted}}, policy.ReasonEPAPublicRoom},
		{"public join rule in initial_state", map[string]any{"preset": "private_chat",
			"initial_state": []any{encrypted, state("m.room.join_rules", map[string]any{"join_rule": "public"})}}, policy.ReasonEPAPublicRoom},
		{"knock join rule in initial_state", map[string]any{"preset": "private_chat",
			"initial_state": []any{encrypted, state("m.room.join_rules", map[string]any{"join_rule": "knock"})}}, policy.ReasonEPAJoinRulePublicOrKnock},
		{"world_readable history in initial_state", map[string]any{"preset": "private_chat",
			"initial_state": []any{encrypted, state("m.room.history_visibility", map[string]any{"history_visibility": "world_readable"})}}, policy.ReasonEPAWorldReadable},
		{"private unencrypted room", map[string]any{"preset": "private_chat"}, policy.ReasonPrivateRoomUnencrypted},
	}
	for _, tc := range cases {
		t.Run("an insured user's room with "+tc.name+" is refused", func(t *testing.T) {
			t.Parallel()
			ctx := ctxT(t)
			insured := newUser(t, kk1, "insured")
			_, err := insured.CreateRoom(ctx, tc.req)
			wantErr(t, err, http.StatusForbidden, "M_FORBIDDEN")
			wantDenied(t, node(t, kk1), "client", policy.ActionRoomCreate, insured.ID, "", tc.reason)
			if n := joinedRooms(t, insured); n != 0 {
				t.Fatalf("the refused room exists: %s is in %d rooms", insured.ID, n)
			}
		})
	}
	t.Run("the twin: an insured user's private encrypted room with history shared is created", func(t *testing.T) {
		t.Parallel()
		ctx := ctxT(t)
		insured := newUser(t, kk1, "insured")
		roomID, err := insured.CreateRoom(ctx, map[string]any{"preset": "private_chat", "initial_state": []any{encrypted,
			state("m.room.join_rules", map[string]any{"join_rule": "invite"}),
			state("m.room.history_visibility", map[string]any{"history_visibility": "shared"})}})
		must(t, err)
		if got := stateField(t, insured, roomID, "m.room.join_rules", "join_rule"); got != "invite" {
			t.Fatalf("join_rule = %q, want invite", got)
		}
	})
}

// UCs_ePA 13X_5 (ePA text): in an existing room an insured user cannot switch the join rule to public or
// knock nor make history world-readable — 403 M_FORBIDDEN and the room state stays as it was. Conformant
// values pass.
func TestEPARoomStateRules(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name          string
		evType, field string
		value         string
		allowed       bool
		reason        policy.Reason
	}{
		{"join rule public is refused", "m.room.join_rules", "join_rule", "public", false, policy.ReasonEPAJoinRulePublicOrKnock},
		{"join rule knock is refused", "m.room.join_rules", "join_rule", "knock", false, policy.ReasonEPAJoinRulePublicOrKnock},
		{"join rule invite is allowed", "m.room.join_rules", "join_rule", "invite", true, ""},
		{"history world_readable is refused", "m.room.history_visibility", "history_visibility", "world_readable", false, policy.ReasonEPAWorldReadable},
		{"history shared is allowed", "m.room.history_visibility", "history_visibility", "shared", true, ""},
		{"history joined is allowed", "m.room.history_visibility", "history_visibility", "joined", true, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := ctxT(t)
			insured := newUser(t, kk1, "insured")
			roomID, err := insured.CreateRoom(ctx, privateRoom())
			must(t, err)
			before := stateField(t, insured, roomID, tc.evType, tc.field)

			_, err = insured.SendState(ctx, roomID, tc.evType, "", map[string]any{tc.field: tc.value})
			after := stateField(t, insured, roomID, tc.evType, tc.field)
			if tc.allowed {
				must(t, err)
				if after != tc.value {
					t.Fatalf("%s = %q after an allowed change to %q", tc.field, after, tc.value)
				}
				return
			}
			wantErr(t, err, http.StatusForbidden, "M_FORBIDDEN")
			wantDenied(t, node(t, kk1), "client", policy.ActionStateEvent, insured.ID, "", tc.reason)
			if after != before {
				t.Fatalf("%s changed from %q to %q although refused", tc.field, before, after)
			}
		})
	}
}

// A_28587: the room directory is closed to ePA users, GET and POST (403 M_FORBIDDEN, homeserver not asked);
// the practice's Pro users may read theirs.
func TestA28587PublicRoomsForbidden(t *testing.T) {
	t.Parallel()
	for _, method := range []string{http.MethodGet, http.MethodPost} {
		t.Run(method+" /publicRooms by an insured user is refused, a Pro user's is answered", func(t *testing.T) {
			t.Parallel()
			ctx := ctxT(t)
			var body any
			if method == http.MethodPost {
				body = map[string]any{"limit": 10}
			}
			for _, server := range []string{kk1, kk2} {
				insured := newUser(t, server, "insured")
				status, raw, err := insured.Raw(ctx, method, "/_matrix/client/v3/publicRooms", body)
				must(t, err)
				wantStatus(t, status, raw, http.StatusForbidden, "M_FORBIDDEN")
				if homeserverSaw(t, insured, "/publicRooms") {
					t.Fatalf("%s's homeserver was asked for the room directory", server)
				}
			}
			pro := newUser(t, prax, "doc")
			status, raw, err := pro.Raw(ctx, method, "/_matrix/client/v3/publicRooms", body)
			must(t, err)
			if status != http.StatusOK {
				t.Fatalf("Pro user's %s /publicRooms: HTTP %d %s", method, status, raw)
			}
		})
	}
}

// joinedRooms counts u's joined rooms (asked of the homeserver through the proxy).
func joinedRooms(t *testing.T, u *user) int {
	t.Helper()
	status, raw, err := u.Raw(ctxT(t), http.MethodGet, "/_matrix/client/v3/joined_rooms", nil)
	must(t, err)
	if status != http.StatusOK {
		t.Fatalf("joined_rooms: HTTP %d %s", status, raw)
	}
	var resp struct {
		JoinedRooms []string `json:"joined_rooms"`
	}
	decodeJSON(t, raw, &resp)
	return len(resp.JoinedRooms)
}

// stateField reads one string field of a state event ("" if the event is absent).
func stateField(t *testing.T, u *user, roomID, evType, field string) string {
	t.Helper()
	raw, err := u.GetState(ctxT(t), roomID, evType, "")
	if err != nil {
		return ""
	}
	var m map[string]json.RawMessage
	decodeJSON(t, raw, &m)
	var s string
	_ = json.Unmarshal(m[field], &s)
	return s
}

// wantStatus asserts a raw answer's status and errcode.
func wantStatus(t *testing.T, status int, raw []byte, wantStatus int, wantCode string) {
	t.Helper()
	var e struct {
		ErrCode string `json:"errcode"`
	}
	_ = json.Unmarshal(raw, &e)
	if status != wantStatus || e.ErrCode != wantCode {
		t.Fatalf("want HTTP %d %s, got HTTP %d %s", wantStatus, wantCode, status, raw)
	}
}
