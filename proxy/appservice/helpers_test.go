package appservice

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	testServer  = "tim.example.org"
	testASToken = "as_0123456789abcdef0123456789abcdef0123456789abcdef"
	testHSToken = "hs_fedcba9876543210fedcba9876543210fedcba9876543210"
)

// recorded is one request that reached the fake homeserver.
type recorded struct {
	Method string
	// URI is the request URI exactly as sent (escaped path and query).
	URI  string
	Auth string
	Body string
}

// Path returns the escaped path part of the URI.
func (r recorded) Path() string { p, _, _ := strings.Cut(r.URI, "?"); return p }

// fakeHS is a recording homeserver: each route answers with a fixed handler; unknown routes answer 404
// M_UNRECOGNIZED like a real homeserver.
type fakeHS struct {
	mu     sync.Mutex
	reqs   []recorded
	routes map[string]http.HandlerFunc // "METHOD escaped-path"
	srv    *httptest.Server
}

func newFakeHS(t *testing.T) *fakeHS {
	t.Helper()
	f := &fakeHS{routes: map[string]http.HandlerFunc{}}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		rec := recorded{Method: r.Method, URI: r.RequestURI, Auth: r.Header.Get("Authorization"), Body: string(b)}
		f.mu.Lock()
		f.reqs = append(f.reqs, rec)
		h := f.routes[r.Method+" "+rec.Path()]
		f.mu.Unlock()
		if h == nil {
			jsonReply(w, http.StatusNotFound, `{"errcode":"M_UNRECOGNIZED","error":"Unrecognized request"}`)
			return
		}
		h(w, r)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeHS) handle(methodPath string, h http.HandlerFunc) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.routes[methodPath] = h
}

func (f *fakeHS) reply(methodPath string, status int, body string) {
	f.handle(methodPath, func(w http.ResponseWriter, _ *http.Request) { jsonReply(w, status, body) })
}

func (f *fakeHS) requests() []recorded {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]recorded(nil), f.reqs...)
}

func (f *fakeHS) reset() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reqs = nil
}

func jsonReply(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

func newTestClient(t *testing.T, hs *fakeHS, timeout time.Duration) *Client {
	t.Helper()
	c, err := NewClient(ClientConfig{HomeserverURL: hs.srv.URL, ASToken: testASToken, ServerName: testServer, Timeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Realistic events as Synapse delivers them in appservice transactions (room version 10).
func evJSON(t testing.TB, typ, roomID, sender string, ts int64, stateKey *string, content string) json.RawMessage {
	t.Helper()
	m := map[string]any{
		"type":             typ,
		"room_id":          roomID,
		"sender":           sender,
		"origin_server_ts": ts,
		"event_id":         "$" + strings.ReplaceAll(typ, ".", "") + "_" + sender[1:3] + "_" + strings.Repeat("x", 8),
		"content":          json.RawMessage(content),
		"unsigned":         map[string]any{"age": 12},
	}
	if stateKey != nil {
		m["state_key"] = *stateKey
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func sk(s string) *string { return &s }

// roomSetup returns the events Synapse sends for a private, encrypted TI-M room created by creator.
func roomSetup(t testing.TB, roomID, creator string, ts int64) []json.RawMessage {
	return []json.RawMessage{
		evJSON(t, "m.room.create", roomID, creator, ts, sk(""), `{"room_version":"10","creator":"`+creator+`","type":"de.gematik.tim.roomtype.default.v1"}`),
		evJSON(t, "m.room.member", roomID, creator, ts+1, sk(creator), `{"membership":"join","displayname":"Doe, Jane"}`),
		evJSON(t, "m.room.power_levels", roomID, creator, ts+2, sk(""), `{"users":{"`+creator+`":100},"users_default":0,"events_default":0,"state_default":50,"ban":50,"kick":50,"redact":50,"invite":0}`),
		evJSON(t, "m.room.join_rules", roomID, creator, ts+3, sk(""), `{"join_rule":"invite"}`),
		evJSON(t, "m.room.history_visibility", roomID, creator, ts+4, sk(""), `{"history_visibility":"invited"}`),
		evJSON(t, "m.room.guest_access", roomID, creator, ts+5, sk(""), `{"guest_access":"forbidden"}`),
		evJSON(t, "m.room.encryption", roomID, creator, ts+6, sk(""), `{"algorithm":"m.megolm.v1.aes-sha2","rotation_period_ms":604800000,"rotation_period_msgs":100}`),
	}
}

func txnBody(t testing.TB, events ...json.RawMessage) string {
	t.Helper()
	b, err := json.Marshal(map[string]any{"events": events})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
