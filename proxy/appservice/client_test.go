package appservice

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestClientRequestsAreMasqueradedAndEscaped(t *testing.T) {
	t.Parallel()
	const alice = "@alice:" + testServer
	const room = "!OGEhHVWSdvArJzumhm:" + testServer
	aliceQ := "user_id=%40alice%3Atim.example.org"
	roomP := "%21OGEhHVWSdvArJzumhm:tim.example.org"
	asAuth := "Bearer " + testASToken

	tests := []struct {
		name     string
		route    string // what the fake answers on
		answer   string
		call     func(context.Context, *Client) error
		wantURI  string
		wantAuth string
		wantBody string // JSON, compared semantically; "" = no body
	}{
		{
			name: "account data is read as the user with user_id", route: "GET /_matrix/client/v3/user/@alice:tim.example.org/account_data/" + TypePermissionConfigPro,
			answer: `{"defaultSetting":"allow all"}`,
			call: func(ctx context.Context, c *Client) error {
				_, _, err := c.AccountData(ctx, alice, TypePermissionConfigPro)
				return err
			},
			wantURI: "/_matrix/client/v3/user/@alice:tim.example.org/account_data/" + TypePermissionConfigPro + "?" + aliceQ, wantAuth: asAuth,
		},
		{
			name: "room state escapes the room ID's exclamation mark", route: "GET /_matrix/client/v3/rooms/" + roomP + "/state", answer: `[]`,
			call: func(ctx context.Context, c *Client) error {
				_, err := c.RoomState(ctx, alice, room)
				return err
			},
			wantURI: "/_matrix/client/v3/rooms/" + roomP + "/state?" + aliceQ, wantAuth: asAuth,
		},
		{
			name: "a state event with an empty state key keeps the trailing slash", route: "GET /_matrix/client/v3/rooms/" + roomP + "/state/m.room.join_rules/",
			answer: `{"join_rule":"invite"}`,
			call: func(ctx context.Context, c *Client) error {
				_, _, err := c.StateEvent(ctx, alice, room, "m.room.join_rules", "")
				return err
			},
			wantURI: "/_matrix/client/v3/rooms/" + roomP + "/state/m.room.join_rules/?" + aliceQ, wantAuth: asAuth,
		},
		{
			name: "a member state key is escaped as one path segment", route: "GET /_matrix/client/v3/rooms/" + roomP + "/state/m.room.member/@bob:other.example",
			answer: `{"membership":"join"}`,
			call: func(ctx context.Context, c *Client) error {
				_, _, err := c.StateEvent(ctx, alice, room, "m.room.member", "@bob:other.example")
				return err
			},
			wantURI: "/_matrix/client/v3/rooms/" + roomP + "/state/m.room.member/@bob:other.example?" + aliceQ, wantAuth: asAuth,
		},
		{
			name: "an event ID with a slash is escaped", route: "GET /_matrix/client/v3/rooms/" + roomP + "/event/$Abc%2Fd+e",
			answer: `{"type":"m.room.message","sender":"@bob:other.example","origin_server_ts":1,"content":{}}`,
			call: func(ctx context.Context, c *Client) error {
				_, err := c.Event(ctx, alice, room, "$Abc/d+e")
				return err
			},
			wantURI: "/_matrix/client/v3/rooms/" + roomP + "/event/$Abc%2Fd+e?" + aliceQ, wantAuth: asAuth,
		},
		{
			name: "joined members are read as the user", route: "GET /_matrix/client/v3/rooms/" + roomP + "/joined_members", answer: `{"joined":{}}`,
			call: func(ctx context.Context, c *Client) error {
				_, err := c.JoinedMembers(ctx, alice, room)
				return err
			},
			wantURI: "/_matrix/client/v3/rooms/" + roomP + "/joined_members?" + aliceQ, wantAuth: asAuth,
		},
		{
			name: "messages page backwards with dir=b", route: "GET /_matrix/client/v3/rooms/" + roomP + "/messages", answer: `{"chunk":[],"start":"s1"}`,
			call: func(ctx context.Context, c *Client) error {
				_, err := c.Messages(ctx, alice, room, "t1-2", 50)
				return err
			},
			wantURI: "/_matrix/client/v3/rooms/" + roomP + "/messages?dir=b&from=t1-2&limit=50&" + aliceQ, wantAuth: asAuth,
		},
		{
			name: "whoami uses the user's own token and no masquerade", route: "GET /_matrix/client/v3/account/whoami", answer: `{"user_id":"@alice:tim.example.org","device_id":"DEV"}`,
			call: func(ctx context.Context, c *Client) error {
				_, err := c.Whoami(ctx, "syt_user_token")
				return err
			},
			wantURI: "/_matrix/client/v3/account/whoami", wantAuth: "Bearer syt_user_token",
		},
		{
			name: "ensure user registers through the appservice login type", route: "POST /_matrix/client/v3/register", answer: `{"user_id":"@alice:tim.example.org"}`,
			call: func(ctx context.Context, c *Client) error {
				_, err := c.EnsureUser(ctx, "alice")
				return err
			},
			wantURI: "/_matrix/client/v3/register", wantAuth: asAuth,
			wantBody: `{"type":"m.login.application_service","username":"alice","inhibit_login":true}`,
		},
		{
			name: "login as a user uses m.login.application_service with an m.id.user identifier", route: "POST /_matrix/client/v3/login",
			answer: `{"user_id":"@alice:tim.example.org","device_id":"PROXY","access_token":"syt_new"}`,
			call: func(ctx context.Context, c *Client) error {
				_, err := c.LoginAs(ctx, alice, "PROXY")
				return err
			},
			wantURI: "/_matrix/client/v3/login", wantAuth: asAuth,
			wantBody: `{"type":"m.login.application_service","identifier":{"type":"m.id.user","user":"@alice:tim.example.org"},"device_id":"PROXY"}`,
		},
		{
			name: "leave is sent as the user", route: "POST /_matrix/client/v3/rooms/" + roomP + "/leave", answer: `{}`,
			call:    func(ctx context.Context, c *Client) error { return c.Leave(ctx, alice, room, "bye") },
			wantURI: "/_matrix/client/v3/rooms/" + roomP + "/leave?" + aliceQ, wantAuth: asAuth, wantBody: `{"reason":"bye"}`,
		},
		{
			name: "kick names the target in the body", route: "POST /_matrix/client/v3/rooms/" + roomP + "/kick", answer: `{}`,
			call:    func(ctx context.Context, c *Client) error { return c.Kick(ctx, alice, room, "@bob:other.example", "") },
			wantURI: "/_matrix/client/v3/rooms/" + roomP + "/kick?" + aliceQ, wantAuth: asAuth, wantBody: `{"user_id":"@bob:other.example"}`,
		},
		{
			name: "forget is sent as the user", route: "POST /_matrix/client/v3/rooms/" + roomP + "/forget", answer: `{}`,
			call:    func(ctx context.Context, c *Client) error { return c.Forget(ctx, alice, room) },
			wantURI: "/_matrix/client/v3/rooms/" + roomP + "/forget?" + aliceQ, wantAuth: asAuth, wantBody: `{}`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			hs := newFakeHS(t)
			hs.reply(tc.route, 200, tc.answer)
			if err := tc.call(context.Background(), newTestClient(t, hs, time.Second)); err != nil {
				t.Fatalf("call: %v", err)
			}
			reqs := hs.requests()
			if len(reqs) != 1 {
				t.Fatalf("got %d requests, want 1", len(reqs))
			}
			if reqs[0].URI != tc.wantURI {
				t.Errorf("URI\n got %q\nwant %q", reqs[0].URI, tc.wantURI)
			}
			if reqs[0].Auth != tc.wantAuth {
				t.Errorf("Authorization got %q, want %q", reqs[0].Auth, tc.wantAuth)
			}
			if tc.wantBody != "" {
				var got, want any
				if err := json.Unmarshal([]byte(reqs[0].Body), &got); err != nil {
					t.Fatalf("body %q: %v", reqs[0].Body, err)
				}
				_ = json.Unmarshal([]byte(tc.wantBody), &want)
				if d := cmp.Diff(want, got); d != "" {
					t.Errorf("body (-want +got):\n%s", d)
				}
			}
		})
	}
}

func TestClientAnswers(t *testing.T) {
	t.Parallel()
	const alice = "@alice:" + testServer
	route := "GET /_matrix/client/v3/user/@alice:tim.example.org/account_data/x.y"
	tests := []struct {
		name      string
		status    int
		body      string
		wantFound bool
		wantCode  string // errcode of the *MatrixError; "" = no error expected
		wantErr   bool
	}{
		{name: "present account data is returned", status: 200, body: `{"a":1}`, wantFound: true},
		{name: "404 M_NOT_FOUND means absent, not an error", status: 404, body: `{"errcode":"M_NOT_FOUND","error":"Account data not found"}`},
		{name: "404 without M_NOT_FOUND is an error (unknown endpoint)", status: 404, body: `{"errcode":"M_UNRECOGNIZED"}`, wantErr: true, wantCode: "M_UNRECOGNIZED"},
		{name: "403 carries the errcode", status: 403, body: `{"errcode":"M_FORBIDDEN","error":"Cannot masquerade"}`, wantErr: true, wantCode: "M_FORBIDDEN"},
		{name: "502 with an HTML body is an error without errcode", status: 502, body: `<html>bad gateway</html>`, wantErr: true},
		{name: "200 with a body that is not JSON is an error", status: 200, body: `{"a":`, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			hs := newFakeHS(t)
			hs.reply(route, tc.status, tc.body)
			raw, found, err := newTestClient(t, hs, time.Second).AccountData(context.Background(), alice, "x.y")
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if found != tc.wantFound {
				t.Errorf("found = %v, want %v", found, tc.wantFound)
			}
			if found && string(raw) != tc.body {
				t.Errorf("raw = %s", raw)
			}
			var me *MatrixError
			if tc.wantCode != "" && (!errors.As(err, &me) || me.ErrCode != tc.wantCode || me.Status != tc.status) {
				t.Errorf("error %v: want MatrixError %d %s", err, tc.status, tc.wantCode)
			}
		})
	}
}

func TestClientRefusesWithoutCalling(t *testing.T) {
	t.Parallel()
	hs := newFakeHS(t)
	c := newTestClient(t, hs, time.Second)
	ctx := context.Background()
	if _, _, err := c.AccountData(ctx, "@mallory:other.example", TypePermissionConfigPro); err == nil {
		t.Error("account data of a remote user was attempted")
	}
	if _, err := c.RoomState(ctx, "@alice:"+testServer, "#alias:"+testServer); err == nil {
		t.Error("an alias was accepted as room ID")
	}
	if err := c.Leave(ctx, "alice", "!r:"+testServer, ""); err == nil {
		t.Error("a bare localpart was accepted as user ID")
	}
	if _, err := c.EnsureUser(ctx, "Alice Smith"); err == nil {
		t.Error("an invalid localpart was accepted")
	}
	if n := len(hs.requests()); n != 0 {
		t.Errorf("%d requests reached the homeserver", n)
	}
}

func TestClientCallsHaveADeadline(t *testing.T) {
	t.Parallel()
	hs := newFakeHS(t)
	hs.handle("GET /_matrix/client/v3/account/whoami", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	})
	c := newTestClient(t, hs, 50*time.Millisecond)
	start := time.Now()
	_, err := c.Whoami(context.Background(), "tok")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want deadline exceeded", err)
	}
	if time.Since(start) > 2*time.Second {
		t.Error("the per-call timeout did not bound the call")
	}
}

func TestClientSpecialAnswers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	hs := newFakeHS(t)
	c := newTestClient(t, hs, time.Second)

	hs.reply("POST /_matrix/client/v3/register", 400, `{"errcode":"M_USER_IN_USE","error":"User ID already taken."}`)
	created, err := c.EnsureUser(ctx, "alice")
	if err != nil || created {
		t.Errorf("existing user: created=%v err=%v, want false nil", created, err)
	}

	hs.reply("GET /_matrix/client/v3/account/whoami", 401, `{"errcode":"M_UNKNOWN_TOKEN","error":"Invalid access token passed."}`)
	if _, err := c.Whoami(ctx, "expired"); !IsErrCode(err, "M_UNKNOWN_TOKEN") {
		t.Errorf("whoami with an unknown token: %v", err)
	}

	hs.reply("POST /_matrix/client/v3/login", 200, `{"user_id":"@eve:tim.example.org","access_token":"x","device_id":"D"}`)
	if _, err := c.LoginAs(ctx, "@alice:"+testServer, ""); err == nil {
		t.Error("a login answer for another user was accepted")
	}

	hs.reply("POST /_matrix/client/v1/appservice/timstack-proxy/ping", 200, `{"duration_ms":12}`)
	d, err := c.Ping(ctx)
	if err != nil || d != 12*time.Millisecond {
		t.Errorf("ping: %v %v", d, err)
	}
	last := hs.requests()[len(hs.requests())-1]
	if !strings.Contains(last.Body, `"transaction_id":"ping-`) {
		t.Errorf("ping body %s has no transaction_id", last.Body)
	}

	hs.reply("GET /_matrix/client/v3/rooms/%21r:tim.example.org/joined_members", 200,
		`{"joined":{"@zed:tim.example.org":{"display_name":"Z"},"@amy:other.example":{}}}`)
	got, err := c.JoinedMembers(ctx, "@alice:"+testServer, "!r:"+testServer)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]string{"@amy:other.example", "@zed:tim.example.org"}, got); d != "" {
		t.Errorf("joined members (-want +got):\n%s", d)
	}

	big := `{"a":"` + strings.Repeat("x", maxSmallResponse) + `"}`
	hs.reply("GET /_matrix/client/v3/user/@alice:tim.example.org/account_data/big", 200, big)
	if _, _, err := c.AccountData(ctx, "@alice:"+testServer, "big"); err == nil {
		t.Error("an oversized answer was accepted")
	}
}

func TestStateEventAbsentIsNotAnError(t *testing.T) {
	t.Parallel()
	hs := newFakeHS(t)
	hs.reply("GET /_matrix/client/v3/rooms/%21r:tim.example.org/state/m.room.encryption/", 404,
		`{"errcode":"M_NOT_FOUND","error":"Event not found."}`)
	hs.reply("GET /_matrix/client/v3/rooms/%21r:tim.example.org/state/m.room.name/", 403,
		`{"errcode":"M_FORBIDDEN","error":"User not in room"}`)
	c := newTestClient(t, hs, time.Second)
	raw, found, err := c.StateEvent(context.Background(), "@alice:"+testServer, "!r:"+testServer, "m.room.encryption", "")
	if err != nil || found || raw != nil {
		t.Errorf("absent state: %s %v %v", raw, found, err)
	}
	if _, _, err := c.StateEvent(context.Background(), "@alice:"+testServer, "!r:"+testServer, "m.room.name", ""); !IsErrCode(err, "M_FORBIDDEN") {
		t.Errorf("forbidden state read: %v", err)
	}
}
