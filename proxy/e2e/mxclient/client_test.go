package mxclient

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// recorded is one request the fake homeserver saw.
type recorded struct {
	method, path, query, auth string
	body                      map[string]any
}

// fakeHS answers every request with the status and body answer returns and records it.
func fakeHS(t *testing.T, answer func(r *http.Request) (int, string)) (*httptest.Server, func() []recorded) {
	t.Helper()
	var mu sync.Mutex
	var seen []recorded
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		data, _ := io.ReadAll(r.Body)
		var body map[string]any
		_ = json.Unmarshal(data, &body)
		mu.Lock()
		seen = append(seen, recorded{r.Method, r.URL.EscapedPath(), r.URL.RawQuery, r.Header.Get("Authorization"), body})
		mu.Unlock()
		status, resp := answer(r)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, resp)
	}))
	t.Cleanup(srv.Close)
	return srv, func() []recorded {
		mu.Lock()
		defer mu.Unlock()
		return append([]recorded(nil), seen...)
	}
}

func TestRequestsHaveTheSpecifiedShape(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name       string
		call       func(c *Client) error
		answer     string
		wantMethod string
		wantPath   string // prefix for paths ending in a transaction ID
		wantAuth   bool
		check      func(t *testing.T, r recorded)
	}{
		{
			name: "login sends the password flow without a token and stores the identity",
			call: func(c *Client) error {
				_, err := c.Login(ctx, "alice", "pw", "DEV")
				if err == nil && (c.UserID != "@alice:hs" || c.AccessToken != "tok" || c.DeviceID != "DEV") {
					return errors.New("identity not stored")
				}
				return err
			},
			answer:     `{"user_id":"@alice:hs","access_token":"tok","device_id":"DEV"}`,
			wantMethod: "POST", wantPath: "/_matrix/client/v3/login",
			check: func(t *testing.T, r recorded) {
				if r.body["type"] != "m.login.password" || r.body["password"] != "pw" || r.body["device_id"] != "DEV" {
					t.Errorf("login body = %v", r.body)
				}
			},
		},
		{
			name:       "invite escapes the room ID and names the user",
			call:       func(c *Client) error { return c.Invite(ctx, "!r:hs", "@bob:hs") },
			answer:     `{}`,
			wantMethod: "POST", wantPath: "/_matrix/client/v3/rooms/%21r:hs/invite", wantAuth: true,
			check: func(t *testing.T, r recorded) {
				if r.body["user_id"] != "@bob:hs" {
					t.Errorf("invite body = %v", r.body)
				}
			},
		},
		{
			name: "join by alias escapes the hash and passes server_name hints",
			call: func(c *Client) error {
				id, err := c.Join(ctx, "#room:hs", "hs2")
				if err == nil && id != "!r:hs" {
					return errors.New("room ID not returned")
				}
				return err
			},
			answer:     `{"room_id":"!r:hs"}`,
			wantMethod: "POST", wantPath: "/_matrix/client/v3/join/%23room:hs", wantAuth: true,
			check: func(t *testing.T, r recorded) {
				if r.query != "server_name=hs2" {
					t.Errorf("query = %q", r.query)
				}
			},
		},
		{
			name: "messages are PUT with a transaction ID",
			call: func(c *Client) error {
				id, err := c.SendText(ctx, "!r:hs", "hi")
				if err == nil && id != "$e" {
					return errors.New("event ID not returned")
				}
				return err
			},
			answer:     `{"event_id":"$e"}`,
			wantMethod: "PUT", wantPath: "/_matrix/client/v3/rooms/%21r:hs/send/m.room.message/mx", wantAuth: true,
			check: func(t *testing.T, r recorded) {
				if r.body["msgtype"] != "m.text" || r.body["body"] != "hi" {
					t.Errorf("message body = %v", r.body)
				}
			},
		},
		{
			name: "state with an empty state key keeps the trailing slash",
			call: func(c *Client) error {
				_, err := c.SendState(ctx, "!r:hs", "m.room.name", "", map[string]any{"name": "n"})
				return err
			},
			answer:     `{"event_id":"$s"}`,
			wantMethod: "PUT", wantPath: "/_matrix/client/v3/rooms/%21r:hs/state/m.room.name/", wantAuth: true,
		},
		{
			name:       "redaction is PUT with a transaction ID and the reason",
			call:       func(c *Client) error { _, err := c.Redact(ctx, "!r:hs", "$e", "why"); return err },
			answer:     `{"event_id":"$red"}`,
			wantMethod: "PUT", wantPath: "/_matrix/client/v3/rooms/%21r:hs/redact/$e/mx", wantAuth: true,
			check: func(t *testing.T, r recorded) {
				if r.body["reason"] != "why" {
					t.Errorf("redact body = %v", r.body)
				}
			},
		},
		{
			name:       "account data goes to the client's own user",
			call:       func(c *Client) error { return c.SetAccountData(ctx, "m.direct", map[string]any{}) },
			answer:     `{}`,
			wantMethod: "PUT", wantPath: "/_matrix/client/v3/user/@me:hs/account_data/m.direct", wantAuth: true,
		},
		{
			name:       "the unauthenticated profile lookup sends no token",
			call:       func(c *Client) error { _, err := c.ProfileUnauthenticated(ctx, "@x:hs"); return err },
			answer:     `{"displayname":"X"}`,
			wantMethod: "GET", wantPath: "/_matrix/client/v3/profile/@x:hs",
		},
		{
			name:       "the authenticated profile lookup sends the token",
			call:       func(c *Client) error { _, err := c.Profile(ctx, "@x:hs"); return err },
			answer:     `{"displayname":"X"}`,
			wantMethod: "GET", wantPath: "/_matrix/client/v3/profile/@x:hs", wantAuth: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, seen := fakeHS(t, func(*http.Request) (int, string) { return 200, tt.answer })
			c := &Client{BaseURL: srv.URL + "/", UserID: "@me:hs", AccessToken: "secret"}
			if err := tt.call(c); err != nil {
				t.Fatal(err)
			}
			reqs := seen()
			if len(reqs) != 1 {
				t.Fatalf("%d requests, want 1", len(reqs))
			}
			r := reqs[0]
			if r.method != tt.wantMethod || !strings.HasPrefix(r.path, tt.wantPath) {
				t.Errorf("request = %s %s, want %s %s", r.method, r.path, tt.wantMethod, tt.wantPath)
			}
			if strings.HasSuffix(tt.wantPath, "/mx") && len(r.path) <= len(tt.wantPath) {
				t.Errorf("path %s lacks a transaction ID", r.path)
			}
			wantAuth := ""
			if tt.wantAuth {
				wantAuth = "Bearer secret"
			}
			if r.auth != wantAuth {
				t.Errorf("Authorization = %q, want %q", r.auth, wantAuth)
			}
			if tt.check != nil {
				tt.check(t, r)
			}
		})
	}
}

func TestTransactionIDsAreUnique(t *testing.T) {
	c := &Client{}
	seen := map[string]bool{}
	for range 1000 {
		id := c.txnID()
		if seen[id] {
			t.Fatalf("transaction ID %s repeated", id)
		}
		seen[id] = true
	}
}

func TestNon2xxAnswersBecomeErrors(t *testing.T) {
	tests := []struct {
		name   string
		status int
		body   string
		want   Error
	}{
		{"a Matrix error keeps status, errcode and message", 403, `{"errcode":"M_FORBIDDEN","error":"no"}`, Error{403, "M_FORBIDDEN", "no"}},
		{"a non-JSON body keeps the status", 502, `<html>bad gateway</html>`, Error{Status: 502}},
		{"a redirect is an error too", 302, ``, Error{Status: 302}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, _ := fakeHS(t, func(*http.Request) (int, string) { return tt.status, tt.body })
			c := &Client{BaseURL: srv.URL, AccessToken: "t", HTTP: &http.Client{
				CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
			}}
			_, err := c.Whoami(context.Background())
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error = %v, want *Error", err)
			}
			if *e != tt.want {
				t.Errorf("error = %+v, want %+v", *e, tt.want)
			}
			if !IsErr(err, tt.want.Status, tt.want.ErrCode) || IsErr(err, tt.want.Status, "M_OTHER") {
				t.Errorf("IsErr disagrees with %+v", *e)
			}
		})
	}
}

func FuzzParseError(f *testing.F) {
	f.Add(400, []byte(`{"errcode":"M_BAD_JSON","error":"x"}`))
	f.Add(500, []byte(`not json`))
	f.Add(401, []byte(`{"errcode":5}`))
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		e := parseError(status, body)
		if e == nil || e.Status != status {
			t.Fatalf("parseError(%d, %q) = %+v", status, body, e)
		}
		_ = e.Error()
	})
}

func TestSyncUntil(t *testing.T) {
	// the fake server reveals the awaited invite on the third sync, and checks since is threaded through
	srv, seen := fakeHS(t, func(r *http.Request) (int, string) {
		switch r.URL.Query().Get("since") {
		case "":
			return 200, `{"next_batch":"s1"}`
		case "s1":
			return 200, `{"next_batch":"s2","rooms":{"join":{"!other:hs":{"timeline":{"events":[]}}}}}`
		case "s2":
			return 200, `{"next_batch":"s3","rooms":{"invite":{"!r:hs":{"invite_state":{"events":[{"type":"m.room.member","state_key":"@me:hs","content":{"membership":"invite"}}]}}}}}`
		default:
			return 200, `{"next_batch":"` + r.URL.Query().Get("since") + `"}`
		}
	})
	c := &Client{BaseURL: srv.URL, AccessToken: "t"}
	t.Run("the predicate is polled until it holds and next_batch is returned", func(t *testing.T) {
		next, err := c.SyncUntil(context.Background(), "", 5*time.Second, HasInvite("!r:hs"))
		if err != nil {
			t.Fatal(err)
		}
		if next != "s3" {
			t.Errorf("next = %q, want s3", next)
		}
		var sinces []string
		for _, r := range seen() {
			sinces = append(sinces, r.query)
		}
		if len(sinces) != 3 || !strings.Contains(sinces[1], "since=s1") || !strings.Contains(sinces[2], "since=s2") {
			t.Errorf("sync queries = %v", sinces)
		}
	})
	t.Run("a predicate that never holds ends with ErrSyncDeadline", func(t *testing.T) {
		// the fake answers at once, so a short deadline is reached through many quick polls
		_, err := c.SyncUntil(context.Background(), "s3", 300*time.Millisecond, func(*SyncResponse) bool { return false })
		if !errors.Is(err, ErrSyncDeadline) {
			t.Errorf("error = %v, want ErrSyncDeadline", err)
		}
	})
}

func TestSyncPredicates(t *testing.T) {
	var r SyncResponse
	if err := json.Unmarshal([]byte(`{"rooms":{"join":{"!r:hs":{
		"state":{"events":[{"type":"m.room.member","state_key":"@a:hs","content":{"membership":"join"}}]},
		"timeline":{"events":[{"type":"m.room.message","event_id":"$1","sender":"@a:hs","content":{"msgtype":"m.text","body":"hi"}},
		                      {"type":"m.room.member","state_key":"@b:hs","content":{"membership":"leave"}}]}}}}}`), &r); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		pred func(*SyncResponse) bool
		want bool
	}{
		{"a joined member in state counts as joined", HasJoined("!r:hs", "@a:hs"), true},
		{"a left member does not count as joined", HasJoined("!r:hs", "@b:hs"), false},
		{"a member of another room does not count", HasJoined("!x:hs", "@a:hs"), false},
		{"a timeline message is found by body", HasTimelineEvent("!r:hs", func(e Event) bool { return e.Body() == "hi" }), true},
		{"a missing message is not found", HasTimelineEvent("!r:hs", func(e Event) bool { return e.Body() == "bye" }), false},
		{"no invite is seen where there is none", HasInvite("!r:hs"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.pred(&r); got != tt.want {
				t.Errorf("predicate = %v, want %v", got, tt.want)
			}
		})
	}
}
