package appservice

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func newTestIndex(t testing.TB, cfg IndexConfig, c *Client) *RoomIndex {
	t.Helper()
	if cfg.HSToken == "" {
		cfg.HSToken = testHSToken
	}
	ix, err := NewRoomIndex(cfg, c, nil)
	if err != nil {
		t.Fatal(err)
	}
	return ix
}

// send performs one appservice request against h and returns status and body.
func send(h http.Handler, method, target, auth, body string) (int, string) {
	req := httptest.NewRequest(method, target, strings.NewReader(body))
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Code, rec.Body.String()
}

func errcodeOf(body string) string {
	var e struct {
		ErrCode string `json:"errcode"`
	}
	_ = json.Unmarshal([]byte(body), &e)
	return e.ErrCode
}

func TestAppserviceEndpointsRequireTheHSToken(t *testing.T) {
	t.Parallel()
	ix := newTestIndex(t, IndexConfig{}, nil)
	h := ix.Handler()
	good := "Bearer " + testHSToken
	tests := []struct {
		name, method, target, auth, body string
		wantStatus                       int
		wantErrcode                      string
	}{
		{"a transaction without a token gets 401 M_UNAUTHORIZED", "PUT", "/_matrix/app/v1/transactions/1", "", `{"events":[]}`, 401, "M_UNAUTHORIZED"},
		{"a transaction with a wrong token gets 403 M_FORBIDDEN", "PUT", "/_matrix/app/v1/transactions/1", "Bearer " + testASToken, `{"events":[]}`, 403, "M_FORBIDDEN"},
		{"a transaction with a token prefix gets 403", "PUT", "/_matrix/app/v1/transactions/1", "Bearer " + testHSToken[:10], `{"events":[]}`, 403, "M_FORBIDDEN"},
		{"a Basic authorization header gets 403", "PUT", "/_matrix/app/v1/transactions/1", "Basic " + testHSToken, `{"events":[]}`, 403, "M_FORBIDDEN"},
		{"a transaction with the hs_token is acknowledged", "PUT", "/_matrix/app/v1/transactions/1", good, `{"events":[]}`, 200, ""},
		{"the legacy access_token query parameter is accepted", "PUT", "/_matrix/app/v1/transactions/2?access_token=" + testHSToken, "", `{"events":[]}`, 200, ""},
		{"a wrong access_token query parameter gets 403", "PUT", "/_matrix/app/v1/transactions/3?access_token=nope", "", `{"events":[]}`, 403, "M_FORBIDDEN"},
		{"the legacy transaction path works", "PUT", "/transactions/4", good, `{"events":[]}`, 200, ""},
		{"a user query is answered 404: the proxy creates no users", "GET", "/_matrix/app/v1/users/@alice:tim.example.org", good, "", 404, "M_NOT_FOUND"},
		{"a user query without a token gets 401", "GET", "/_matrix/app/v1/users/@alice:tim.example.org", "", "", 401, "M_UNAUTHORIZED"},
		{"the legacy user query path works", "GET", "/users/@alice:tim.example.org", good, "", 404, "M_NOT_FOUND"},
		{"an alias query is answered 404", "GET", "/_matrix/app/v1/rooms/%23room:tim.example.org", good, "", 404, "M_NOT_FOUND"},
		{"an alias query with a wrong token gets 403", "GET", "/_matrix/app/v1/rooms/%23room:tim.example.org", "Bearer x", "", 403, "M_FORBIDDEN"},
		{"a ping is answered 200", "POST", "/_matrix/app/v1/ping", good, `{"transaction_id":"abc"}`, 200, ""},
		{"a ping without a token gets 401", "POST", "/_matrix/app/v1/ping", "", `{}`, 401, "M_UNAUTHORIZED"},
		{"an unknown appservice path gets 404 M_UNRECOGNIZED", "GET", "/_matrix/app/v1/thirdparty/protocol/irc", good, "", 404, "M_UNRECOGNIZED"},
		{"an unknown path without a token is refused first", "GET", "/_matrix/app/v1/thirdparty/protocol/irc", "", "", 401, "M_UNAUTHORIZED"},
		{"a transaction that is not JSON gets 400 M_NOT_JSON", "PUT", "/_matrix/app/v1/transactions/5", good, `{"events":[`, 400, "M_NOT_JSON"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, body := send(h, tc.method, tc.target, tc.auth, tc.body)
			if status != tc.wantStatus {
				t.Errorf("status %d, want %d (%s)", status, tc.wantStatus, body)
			}
			if tc.wantErrcode == "" {
				if body != "{}" {
					t.Errorf("body %q, want {}", body)
				}
			} else if got := errcodeOf(body); got != tc.wantErrcode {
				t.Errorf("errcode %q, want %q", got, tc.wantErrcode)
			}
		})
	}
}

func TestTransactionBuildsRoomFacts(t *testing.T) {
	t.Parallel()
	ix := newTestIndex(t, IndexConfig{}, nil)
	h := ix.Handler()
	const room = "!kAbCdEfGhIjKlMnO:tim.example.org"
	alice, bob, carol := "@alice:tim.example.org", "@bob:praxis.example", "@carol:tim.example.org"
	evs := roomSetup(t, room, alice, 1_700_000_000_000)
	evs = append(evs,
		evJSON(t, "m.room.member", room, alice, 1_700_000_000_100, sk(bob), `{"membership":"invite","displayname":"Bob","is_direct":true}`),
		evJSON(t, "m.room.member", room, bob, 1_700_000_000_200, sk(bob), `{"membership":"join","displayname":"Bob"}`),
		evJSON(t, "m.room.member", room, alice, 1_700_000_000_300, sk(carol), `{"membership":"invite"}`),
		evJSON(t, "m.room.encrypted", room, bob, 1_700_000_000_400, nil, `{"algorithm":"m.megolm.v1.aes-sha2","ciphertext":"AwgAEn…","device_id":"BOBDEV","sender_key":"k","session_id":"s"}`),
		evJSON(t, "m.room.name", room, alice, 1_700_000_000_500, sk(""), `{"name":"Befund"}`),
	)
	if status, body := send(h, "PUT", "/_matrix/app/v1/transactions/42", "Bearer "+testHSToken, txnBody(t, evs...)); status != 200 {
		t.Fatalf("status %d %s", status, body)
	}
	got, ok := ix.Room(room)
	if !ok {
		t.Fatal("room not indexed")
	}
	want := RoomFacts{
		RoomID: room, Creator: alice, CreatorDomain: "tim.example.org", Version: "10",
		Type: "de.gematik.tim.roomtype.default.v1", JoinRule: "invite", HistoryVisibility: "invited", Encrypted: true,
		Members: map[string]Member{
			alice: {MembershipJoin, 1_700_000_000_001},
			bob:   {MembershipJoin, 1_700_000_000_200},
			carol: {MembershipInvite, 1_700_000_000_300},
		},
		CreatedTS: 1_700_000_000_000, LastStateTS: 1_700_000_000_500, LastTimelineTS: 1_700_000_000_400, FromCreate: true,
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("facts (-want +got):\n%s", d)
	}
	if !ix.SharesRoom(alice, bob) || !ix.SharesRoom(bob, alice) {
		t.Error("alice and bob are both joined but SharesRoom says no")
	}
	if ix.SharesRoom(alice, carol) {
		t.Error("an invited user counts as sharing a room")
	}
	if ix.SharesRoom(alice, "@nobody:x.example") {
		t.Error("an unknown user shares a room")
	}
	m, _ := ix.Members(room)
	if d := cmp.Diff(map[string]string{alice: "join", bob: "join", carol: "invite"}, m); d != "" {
		t.Errorf("members (-want +got):\n%s", d)
	}

	// Bob leaves: they share no room any more.
	send(h, "PUT", "/_matrix/app/v1/transactions/43", "Bearer "+testHSToken,
		txnBody(t, evJSON(t, "m.room.member", room, bob, 1_700_000_001_000, sk(bob), `{"membership":"leave"}`)))
	if ix.SharesRoom(alice, bob) {
		t.Error("SharesRoom still true after bob left")
	}
}

func TestTransactionFacts(t *testing.T) {
	t.Parallel()
	const room = "!r:tim.example.org"
	alice := "@alice:tim.example.org"
	tests := []struct {
		name  string
		evs   func(t *testing.T) []json.RawMessage
		check func(t *testing.T, f RoomFacts)
	}{
		{
			name: "a room version 11 create event without creator takes the sender",
			evs: func(t *testing.T) []json.RawMessage {
				return []json.RawMessage{evJSON(t, "m.room.create", room, alice, 5, sk(""), `{"room_version":"11"}`)}
			},
			check: func(t *testing.T, f RoomFacts) {
				if f.Creator != alice || f.Version != "11" || f.Federate != nil {
					t.Errorf("%+v", f)
				}
			},
		},
		{
			name: "a create event without room_version means version 1, and m.federate false is kept",
			evs: func(t *testing.T) []json.RawMessage {
				return []json.RawMessage{evJSON(t, "m.room.create", room, alice, 5, sk(""), `{"creator":"@alice:tim.example.org","m.federate":false}`)}
			},
			check: func(t *testing.T, f RoomFacts) {
				if f.Version != "1" || f.Federate == nil || *f.Federate {
					t.Errorf("version %q federate %v", f.Version, f.Federate)
				}
			},
		},
		{
			name: "a public room's join rule is recorded",
			evs: func(t *testing.T) []json.RawMessage {
				return []json.RawMessage{evJSON(t, "m.room.join_rules", room, alice, 5, sk(""), `{"join_rule":"public"}`)}
			},
			check: func(t *testing.T, f RoomFacts) {
				if f.JoinRule != "public" || f.FromCreate {
					t.Errorf("join rule %q fromCreate %v", f.JoinRule, f.FromCreate)
				}
			},
		},
		{
			name: "an encryption event without algorithm does not undo encryption",
			evs: func(t *testing.T) []json.RawMessage {
				return []json.RawMessage{
					evJSON(t, "m.room.encryption", room, alice, 5, sk(""), `{"algorithm":"m.megolm.v1.aes-sha2"}`),
					evJSON(t, "m.room.encryption", room, alice, 6, sk(""), `{}`),
				}
			},
			check: func(t *testing.T, f RoomFacts) {
				if !f.Encrypted {
					t.Error("encryption was undone")
				}
			},
		},
		{
			name: "unusable events are skipped and the rest applied",
			evs: func(t *testing.T) []json.RawMessage {
				return []json.RawMessage{
					json.RawMessage(`"not an event"`),
					evJSON(t, "m.room.member", room, alice, 5, sk("not-a-user"), `{"membership":"join"}`),
					evJSON(t, "m.room.member", room, alice, 6, sk(alice), `{"membership":"dance"}`),
					evJSON(t, "m.room.member", "#alias:tim.example.org", alice, 7, sk(alice), `{"membership":"join"}`),
					evJSON(t, "m.room.member", room, alice, 8, sk(alice), `{"membership":"join"}`),
				}
			},
			check: func(t *testing.T, f RoomFacts) {
				if d := cmp.Diff(map[string]Member{alice: {"join", 8}}, f.Members); d != "" {
					t.Errorf("members (-want +got):\n%s", d)
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ix := newTestIndex(t, IndexConfig{}, nil)
			if status, body := send(ix.Handler(), "PUT", "/_matrix/app/v1/transactions/1", "Bearer "+testHSToken, txnBody(t, tc.evs(t)...)); status != 200 {
				t.Fatalf("status %d %s", status, body)
			}
			f, ok := ix.Room(room)
			if !ok {
				t.Fatal("room not indexed")
			}
			tc.check(t, f)
		})
	}
}

func TestTransactionsAreIdempotent(t *testing.T) {
	t.Parallel()
	ix := newTestIndex(t, IndexConfig{MaxTxnIDs: 2}, nil)
	h := ix.Handler()
	const room = "!r:tim.example.org"
	alice := "@alice:tim.example.org"
	join := txnBody(t, evJSON(t, "m.room.member", room, alice, 10, sk(alice), `{"membership":"join"}`))
	leave := txnBody(t, evJSON(t, "m.room.member", room, alice, 20, sk(alice), `{"membership":"leave"}`))
	auth := "Bearer " + testHSToken

	send(h, "PUT", "/_matrix/app/v1/transactions/t1", auth, join)
	// A retried ID is acknowledged and not applied again, even if (wrongly) its body differs.
	if status, body := send(h, "PUT", "/_matrix/app/v1/transactions/t1", auth, leave); status != 200 || body != "{}" {
		t.Fatalf("retry: %d %s", status, body)
	}
	if m, _ := ix.Members(room); m[alice] != "join" {
		t.Fatalf("the repeated transaction was applied: %v", m)
	}
	// The legacy path shares the memory of IDs.
	send(h, "PUT", "/transactions/t1", auth, leave)
	if m, _ := ix.Members(room); m[alice] != "join" {
		t.Fatalf("the repeated transaction on the legacy path was applied: %v", m)
	}
	// Memory is bounded: after two newer IDs, t1 is forgotten and would be applied again.
	send(h, "PUT", "/_matrix/app/v1/transactions/t2", auth, `{"events":[]}`)
	send(h, "PUT", "/_matrix/app/v1/transactions/t3", auth, `{"events":[]}`)
	send(h, "PUT", "/_matrix/app/v1/transactions/t1", auth, leave)
	if m, _ := ix.Members(room); m[alice] != "leave" {
		t.Fatalf("want t1 forgotten after %d newer transactions: %v", 2, m)
	}
	if len(ix.txnSeen) > 2 {
		t.Errorf("%d transaction IDs remembered, limit 2", len(ix.txnSeen))
	}
	// A failed (non-JSON) transaction is not remembered, so the homeserver's retry is processed.
	send(h, "PUT", "/_matrix/app/v1/transactions/t9", auth, `nope`)
	send(h, "PUT", "/_matrix/app/v1/transactions/t9", auth, join)
	if m, _ := ix.Members(room); m[alice] != "join" {
		t.Error("the retry of a refused transaction was not applied")
	}
}

func TestIndexLimits(t *testing.T) {
	t.Parallel()
	auth := "Bearer " + testHSToken
	t.Run("a body over the limit gets 413", func(t *testing.T) {
		ix := newTestIndex(t, IndexConfig{MaxBodyBytes: 100}, nil)
		status, body := send(ix.Handler(), "PUT", "/_matrix/app/v1/transactions/1", auth, `{"events":[],"pad":"`+strings.Repeat("x", 200)+`"}`)
		if status != 413 || errcodeOf(body) != "M_TOO_LARGE" {
			t.Errorf("%d %s", status, body)
		}
	})
	t.Run("the least recently updated room is dropped at MaxRooms", func(t *testing.T) {
		ix := newTestIndex(t, IndexConfig{MaxRooms: 2}, nil)
		h := ix.Handler()
		alice := "@alice:tim.example.org"
		for i, r := range []string{"!a:x.example", "!b:x.example", "!a:x.example", "!c:x.example"} {
			send(h, "PUT", "/_matrix/app/v1/transactions/"+string(rune('a'+i)), auth,
				txnBody(t, evJSON(t, "m.room.member", r, alice, int64(i), sk(alice), `{"membership":"join"}`)))
		}
		if ix.Len() != 2 {
			t.Errorf("%d rooms, want 2", ix.Len())
		}
		if _, ok := ix.Room("!b:x.example"); ok {
			t.Error("room b should have been dropped")
		}
		ix.mu.Lock()
		defer ix.mu.Unlock()
		if _, ok := ix.userRooms[alice]["!b:x.example"]; ok {
			t.Error("the dropped room is still in the user's room set")
		}
	})
}

func TestBackfillRebuildsFromState(t *testing.T) {
	t.Parallel()
	hs := newFakeHS(t)
	const room = "!old:tim.example.org"
	alice, bob := "@alice:tim.example.org", "@bob:kasse.example"
	hs.reply("GET /_matrix/client/v3/rooms/%21old:tim.example.org/state", 200, `[
 {"type":"m.room.create","state_key":"","sender":"@alice:tim.example.org","event_id":"$c","origin_server_ts":1000,"content":{"room_version":"10","creator":"@alice:tim.example.org"}},
 {"type":"m.room.member","state_key":"@alice:tim.example.org","sender":"@alice:tim.example.org","event_id":"$m1","origin_server_ts":1001,"content":{"membership":"join"}},
 {"type":"m.room.member","state_key":"@bob:kasse.example","sender":"@bob:kasse.example","event_id":"$m2","origin_server_ts":1500,"content":{"membership":"join"}},
 {"type":"m.room.join_rules","state_key":"","sender":"@alice:tim.example.org","event_id":"$j","origin_server_ts":1002,"content":{"join_rule":"invite"}},
 {"type":"m.room.history_visibility","state_key":"","sender":"@alice:tim.example.org","event_id":"$h","origin_server_ts":1003,"content":{"history_visibility":"shared"}}
]`)
	ix := newTestIndex(t, IndexConfig{}, newTestClient(t, hs, time.Second))
	// A stale membership from a live transaction is replaced by the resolved state; the timeline time stays.
	send(ix.Handler(), "PUT", "/_matrix/app/v1/transactions/1", "Bearer "+testHSToken, txnBody(t,
		evJSON(t, "m.room.member", room, bob, 900, sk(bob), `{"membership":"invite"}`),
		evJSON(t, "m.room.message", room, alice, 2000, nil, `{"msgtype":"m.text","body":"x"}`)))
	f, err := ix.Backfill(context.Background(), room, alice)
	if err != nil {
		t.Fatal(err)
	}
	want := RoomFacts{
		RoomID: room, Creator: alice, CreatorDomain: "tim.example.org", Version: "10", JoinRule: "invite", HistoryVisibility: "shared",
		Members:   map[string]Member{alice: {"join", 1001}, bob: {"join", 1500}},
		CreatedTS: 1000, LastStateTS: 1500, LastTimelineTS: 2000,
	}
	if d := cmp.Diff(want, f); d != "" {
		t.Errorf("facts (-want +got):\n%s", d)
	}
	if !ix.SharesRoom(alice, bob) {
		t.Error("backfilled members are not in the shared-room index")
	}
	reqs := hs.requests()
	if len(reqs) != 1 || !strings.HasSuffix(reqs[0].URI, "?user_id=%40alice%3Atim.example.org") {
		t.Errorf("requests %+v", reqs)
	}

	hs.reply("GET /_matrix/client/v3/rooms/%21gone:tim.example.org/state", 403, `{"errcode":"M_FORBIDDEN","error":"User not in room"}`)
	if _, err := ix.Backfill(context.Background(), "!gone:tim.example.org", alice); !IsErrCode(err, "M_FORBIDDEN") {
		t.Errorf("backfill of an unreadable room: %v", err)
	}
	if _, ok := ix.Room("!gone:tim.example.org"); ok {
		t.Error("a failed backfill left a room behind")
	}
}

func FuzzHandleTransaction(f *testing.F) {
	f.Add("t1", txnBody(f, roomSetup(f, "!r:tim.example.org", "@a:tim.example.org", 1)...))
	f.Add("t2", `{"events":[{"type":"m.room.member","room_id":"!r:x","state_key":"@b:x","content":{"membership":"join"}}]}`)
	f.Add("t3", `{"events":[{"type":"m.room.create","room_id":"!r:x","state_key":"","sender":"","content":{"creator":5,"m.federate":"no"}}],"ephemeral":[{}]}`)
	f.Add("", `{"events":null}`)
	f.Add("x/y", `[]`)
	f.Fuzz(func(t *testing.T, txnID, body string) {
		ix := newTestIndex(t, IndexConfig{MaxRooms: 8, MaxTxnIDs: 4, MaxBodyBytes: 1 << 16}, nil)
		h := ix.Handler()
		target := "/_matrix/app/v1/transactions/" + strings.NewReplacer("/", "%2F", "?", "%3F", "#", "%23", "%", "%25").Replace(txnID)
		req := httptest.NewRequest("PUT", "/", strings.NewReader(body))
		req.URL.Path, req.URL.RawPath = "", ""
		if u, err := req.URL.Parse(target); err == nil {
			req.URL = u
		} else {
			return
		}
		req.Header.Set("Authorization", "Bearer "+testHSToken)
		for range 2 {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != 200 && rec.Code != 400 && rec.Code != 404 && rec.Code != 413 && rec.Code != 301 && rec.Code != 307 {
				t.Fatalf("status %d", rec.Code)
			}
			req.Body = http.NoBody
		}
		if ix.Len() > 8 || len(ix.txnSeen) > 4 {
			t.Fatalf("bounds exceeded: %d rooms, %d txn IDs", ix.Len(), len(ix.txnSeen))
		}
		for _, r := range ix.Rooms() {
			if r.RoomID == "" || r.RoomID[0] != '!' {
				t.Fatalf("indexed room ID %q", r.RoomID)
			}
		}
	})
}

func TestBackfillRereadsWhenLiveEventsArrive(t *testing.T) {
	t.Parallel()
	hs := newFakeHS(t)
	const room = "!busy:tim.example.org"
	alice, bob := "@alice:tim.example.org", "@bob:praxis.example"
	var ix *RoomIndex
	calls := 0
	hs.handle("GET /_matrix/client/v3/rooms/%21busy:tim.example.org/state", func(w http.ResponseWriter, _ *http.Request) {
		calls++
		bobMembership := "join"
		if calls == 1 {
			// The answer is being produced while bob's join arrives as a transaction.
			bobMembership = "invite"
			send(ix.Handler(), "PUT", "/_matrix/app/v1/transactions/live", "Bearer "+testHSToken,
				txnBody(t, member(t, room, bob, bob, "join", 3000)))
		}
		jsonReply(w, 200, `[
 {"type":"m.room.create","state_key":"","sender":"`+alice+`","origin_server_ts":1000,"content":{"room_version":"10"}},
 {"type":"m.room.member","state_key":"`+alice+`","sender":"`+alice+`","origin_server_ts":1001,"content":{"membership":"join"}},
 {"type":"m.room.member","state_key":"`+bob+`","sender":"`+bob+`","origin_server_ts":3000,"content":{"membership":"`+bobMembership+`"}}]`)
	})
	ix = newTestIndex(t, IndexConfig{}, newTestClient(t, hs, time.Second))
	f, err := ix.Backfill(context.Background(), room, alice)
	if err != nil {
		t.Fatal(err)
	}
	if calls != 2 || f.Members[bob].Membership != "join" {
		t.Errorf("%d state reads, bob %q: want a second read that sees the join", calls, f.Members[bob].Membership)
	}
}
