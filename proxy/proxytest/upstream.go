// Package proxytest holds the proxy's fast test layer: a recording upstream that stands in for the
// homeserver where a test asks "did anything reach the homeserver?" and "were the bytes identical?". The
// acceptance layer (proxy/e2e) runs the same questions against real Synapse.
package proxytest

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// Request is what reached the upstream.
type Request struct {
	Method     string
	RequestURI string
	Header     http.Header
	Body       []byte
}

// Upstream records every request and answers the few homeserver calls the proxy itself makes (whoami,
// account data, events) from programmable tables; everything else gets 200 {}.
type Upstream struct {
	*httptest.Server
	mu          sync.Mutex
	requests    []Request
	tokens      map[string]string          // access token → user ID
	accountData map[string]json.RawMessage // userID + "\x00" + type → content
	events      map[string]json.RawMessage // eventID → event JSON
	roomState   map[string]json.RawMessage // roomID → state events (GET /rooms/{roomId}/state)
	aliases     map[string]string          // alias → roomID (POST /join/{alias} answers {"room_id"})
	// holdLongPolls makes a /sync with a non-zero timeout wait until its connection closes; heldEnded
	// counts those that ended that way.
	holdLongPolls bool
	heldEnded     int
	// ASToken is the application service token the proxy uses for its own reads; requests carrying it are
	// not recorded as forwarded traffic.
	ASToken string
}

// NewUpstream starts a recording upstream; it is closed with the test.
func NewUpstream(t testing.TB, asToken string) *Upstream {
	u := &Upstream{tokens: map[string]string{}, accountData: map[string]json.RawMessage{},
		events: map[string]json.RawMessage{}, roomState: map[string]json.RawMessage{}, aliases: map[string]string{},
		ASToken: asToken}
	u.Server = httptest.NewServer(http.HandlerFunc(u.serve))
	t.Cleanup(u.Close)
	return u
}

// AddUser makes token belong to userID.
func (u *Upstream) AddUser(token, userID string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.tokens[token] = userID
}

// Saw reports whether a forwarded request whose RequestURI contains part reached the upstream.
func (u *Upstream) Saw(part string) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	for _, r := range u.requests {
		if strings.Contains(r.RequestURI, part) {
			return true
		}
	}
	return false
}

// HoldLongPolls makes every /sync with a non-zero timeout wait until the proxy closes its connection, as
// a homeserver with nothing new to say would until the timeout.
func (u *Upstream) HoldLongPolls() {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.holdLongPolls = true
}

// HeldLongPollsEnded is how many held long-polls ended because their connection closed.
func (u *Upstream) HeldLongPollsEnded() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.heldEnded
}

// SetAccountData stores global account data the proxy may read through the application service.
func (u *Upstream) SetAccountData(userID, typ string, content any) {
	b, _ := json.Marshal(content)
	u.mu.Lock()
	defer u.mu.Unlock()
	u.accountData[userID+"\x00"+typ] = b
}

// SetEvent stores an event the proxy may read (redaction age).
func (u *Upstream) SetEvent(eventID string, event any) {
	b, _ := json.Marshal(event)
	u.mu.Lock()
	defer u.mu.Unlock()
	u.events[eventID] = b
}

// SetRoomState stores a room's current state, answered to the proxy's own GET /rooms/{roomId}/state.
func (u *Upstream) SetRoomState(roomID string, events []any) {
	b, _ := json.Marshal(events)
	u.mu.Lock()
	defer u.mu.Unlock()
	u.roomState[roomID] = b
}

// SetAlias makes a join by alias answer {"room_id": roomID}, as a homeserver does.
func (u *Upstream) SetAlias(alias, roomID string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.aliases[alias] = roomID
}

// Requests returns the forwarded requests (not the proxy's own application-service reads).
func (u *Upstream) Requests() []Request {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]Request(nil), u.requests...)
}

// Reset forgets recorded requests.
func (u *Upstream) Reset() {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.requests = nil
}

func (u *Upstream) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	auth := r.Header.Get("Authorization")
	token := strings.TrimPrefix(auth, "Bearer ")
	u.mu.Lock()
	own := u.ASToken != "" && token == u.ASToken
	if !own {
		u.requests = append(u.requests, Request{Method: r.Method, RequestURI: r.RequestURI, Header: r.Header.Clone(), Body: body})
	}
	userID, known := u.tokens[token]
	hold := u.holdLongPolls
	u.mu.Unlock()

	path := r.URL.Path
	if timeout := r.URL.Query().Get("timeout"); hold && strings.HasSuffix(path, "/sync") && timeout != "" && timeout != "0" {
		<-r.Context().Done()
		u.mu.Lock()
		u.heldEnded++
		u.mu.Unlock()
		return
	}
	switch {
	case strings.HasSuffix(path, "/account/whoami"):
		if !known {
			writeJSON(w, http.StatusUnauthorized, map[string]string{"errcode": "M_UNKNOWN_TOKEN", "error": "unknown token"})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"user_id": userID, "device_id": "DEV"})
	case strings.Contains(path, "/account_data/") && r.Method == http.MethodGet:
		// /_matrix/client/v3/user/{userId}/account_data/{type}
		parts := strings.Split(r.URL.EscapedPath(), "/")
		if len(parts) < 8 {
			http.NotFound(w, r)
			return
		}
		uid, typ := unescape(parts[5]), unescape(parts[7])
		u.mu.Lock()
		c, ok := u.accountData[uid+"\x00"+typ]
		u.mu.Unlock()
		if !ok {
			writeJSON(w, http.StatusNotFound, map[string]string{"errcode": "M_NOT_FOUND", "error": "not found"})
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(c)
	case own && strings.Contains(path, "/event/"):
		i := strings.LastIndex(r.URL.EscapedPath(), "/")
		id := unescape(r.URL.EscapedPath()[i+1:])
		u.mu.Lock()
		ev, ok := u.events[id]
		u.mu.Unlock()
		if !ok {
			writeJSON(w, http.StatusNotFound, map[string]string{"errcode": "M_NOT_FOUND", "error": "not found"})
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(ev)
	case own && strings.HasSuffix(path, "/state") && strings.Contains(path, "/rooms/") && r.Method == http.MethodGet:
		parts := strings.Split(r.URL.EscapedPath(), "/")
		u.mu.Lock()
		st, ok := u.roomState[unescape(parts[len(parts)-2])]
		u.mu.Unlock()
		if !ok {
			writeJSON(w, http.StatusForbidden, map[string]string{"errcode": "M_FORBIDDEN", "error": "not in room"})
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(st)
	case strings.Contains(path, "/join/") && r.Method == http.MethodPost:
		i := strings.LastIndex(r.URL.EscapedPath(), "/")
		target := unescape(r.URL.EscapedPath()[i+1:])
		u.mu.Lock()
		roomID, ok := u.aliases[target]
		u.mu.Unlock()
		if !ok {
			roomID = target
		}
		writeJSON(w, http.StatusOK, map[string]string{"room_id": roomID})
	case strings.HasSuffix(path, "/_matrix/client/versions"):
		writeJSON(w, http.StatusOK, map[string]any{"versions": []string{"r0.6.1", "v1.1", "v1.10", "v1.11", "v1.12", "v1.13"},
			"unstable_features": map[string]bool{"org.matrix.msc3814": true}})
	default:
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Upstream-Body-Length", strconv.Itoa(len(body)))
		_, _ = w.Write([]byte("{}"))
	}
}

func unescape(s string) string {
	out, err := url.PathUnescape(s)
	if err != nil {
		return s
	}
	return out
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
