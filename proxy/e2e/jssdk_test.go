package e2e

// A real client across the two proxies: matrix-js-sdk 37.5.0 (the last release whose engines allow Node 20)
// with its Rust-crypto WASM logs in, syncs, and exchanges megolm-encrypted messages between a user of hs1 and
// a user of hs2 (jssdk/e2ee.mjs). Device keys, one-time keys and room keys travel as keys/query, keys/claim and
// to-device federation through both proxies; the Go clients then prove the homeservers only ever held
// ciphertext.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/timstack/timstack/proxy/e2e/mxclient"
)

// jssdkResult is the JSON line e2ee.mjs prints on success.
type jssdkResult struct {
	OK     bool   `json:"ok"`
	Crypto string `json:"crypto"`
	RoomID string `json:"roomId"`
	Alice  struct {
		UserID   string `json:"userId"`
		DeviceID string `json:"deviceId"`
	} `json:"alice"`
	Bob struct {
		UserID   string `json:"userId"`
		DeviceID string `json:"deviceId"`
	} `json:"bob"`
	AtBob   jssdkEvent       `json:"atBob"`
	AtAlice jssdkEvent       `json:"atAlice"`
	MS      map[string]int64 `json:"ms"`
}

// jssdkEvent is the SDK's view of one received event.
type jssdkEvent struct {
	EventID   string `json:"eventId"`
	Sender    string `json:"sender"`
	WireType  string `json:"wireType"`
	Type      string `json:"type"`
	Encrypted bool   `json:"encrypted"`
	Body      string `json:"body"`
	Algorithm string `json:"algorithm"`
}

// jssdkModules installs (or finds) the script's pinned npm packages via scripts/node.sh and returns the
// node_modules path. Without node/npm the test skips, unless TIMSTACK_TEST_REQUIRE_HS=1 (CI), where it fails.
func jssdkModules(t *testing.T) string {
	t.Helper()
	unavailable := func(format string, args ...any) {
		t.Helper()
		if os.Getenv("TIMSTACK_TEST_REQUIRE_HS") == "1" {
			t.Fatalf("matrix-js-sdk client unavailable and TIMSTACK_TEST_REQUIRE_HS=1: "+format, args...)
		}
		t.Skipf("matrix-js-sdk client unavailable: "+format, args...)
	}
	for _, bin := range []string{"node", "npm"} {
		if _, err := exec.LookPath(bin); err != nil {
			unavailable("%s not found: %v", bin, err)
		}
	}
	// go test runs in the package directory: the module root is two levels up.
	script, err := filepath.Abs(filepath.Join("..", "..", "scripts", "node.sh"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", script, "jssdk")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		unavailable("%s: %v\n%s", script, err, strings.TrimSpace(stderr.String()))
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	modules := strings.TrimSpace(lines[len(lines)-1])
	if _, err := os.Stat(filepath.Join(modules, "matrix-js-sdk", "package.json")); err != nil {
		t.Fatalf("%s reported node_modules %q without matrix-js-sdk: %v", script, modules, err)
	}
	return modules
}

func TestJSSDKExchangesEncryptedMessagesAcrossProxies(t *testing.T) {
	n1, n2 := node1(t), node2(t)
	modules := jssdkModules(t)
	alice, bob := newUser(t, n1, "alice"), newUser(t, n2, "bob")
	aliceText := "jssdk secret from alice " + rand.Text()[:10]
	bobText := "jssdk secret from bob " + rand.Text()[:10]

	cfg := map[string]any{
		"alice":     map[string]any{"baseUrl": n1.ClientURL, "userId": alice.ID, "password": stackPassword(t, alice.ID)},
		"bob":       map[string]any{"baseUrl": n2.ClientURL, "userId": bob.ID, "password": stackPassword(t, bob.ID)},
		"aliceText": aliceText,
		"bobText":   bobText,
		"timeoutMs": 120000,
	}
	cfgFile := filepath.Join(t.TempDir(), "e2ee.json")
	data, err := json.Marshal(cfg)
	must(t, err)
	must(t, os.WriteFile(cfgFile, data, 0o600))

	// The script has its own 120 s limit and exits with a reason; this one only catches a wedged process.
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", filepath.Join("jssdk", "e2ee.mjs"), cfgFile)
	cmd.Env = append(os.Environ(), "TIMSTACK_NODE_MODULES="+modules)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	begin := time.Now()
	runErr := cmd.Run()
	// The whole client log (the Rust crypto traces at debug level) goes next to the stack's logs, which
	// TIMSTACK_E2E_KEEP=1 keeps; the failure message carries its end, where e2ee.mjs states the reason.
	logFile := filepath.Join(theStack.Dir, "jssdk-e2ee.log")
	if err := os.WriteFile(logFile, stderr.Bytes(), 0o644); err != nil {
		t.Logf("writing %s: %v", logFile, err)
	}
	if runErr != nil {
		t.Fatalf("e2ee.mjs: %v (full log: %s)\nstderr (end):\n%s\nstdout:\n%s", runErr, logFile, tail(stderr.String(), 40), stdout.String())
	}
	t.Logf("e2ee.mjs ran %s", time.Since(begin).Round(time.Millisecond))

	var res jssdkResult
	out := strings.TrimSpace(stdout.String())
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("e2ee.mjs printed no result line (%v): %q\nstderr:\n%s", err, out, tail(stderr.String(), 30))
	}
	t.Logf("crypto %s; room %s; phases (ms since start) %v", res.Crypto, res.RoomID, res.MS)

	// The client's own view: both messages were megolm-encrypted on the wire and decrypted to the sent text.
	for _, c := range []struct {
		name         string
		got          jssdkEvent
		sender, body string
	}{
		{"bob decrypted alice's message", res.AtBob, alice.ID, aliceText},
		{"alice decrypted bob's reply", res.AtAlice, bob.ID, bobText},
	} {
		want := jssdkEvent{EventID: c.got.EventID, Sender: c.sender, WireType: "m.room.encrypted", Type: "m.room.message",
			Encrypted: true, Body: c.body, Algorithm: "m.megolm.v1.aes-sha2"}
		if c.got != want || c.got.EventID == "" {
			t.Errorf("%s: got %+v, want %+v", c.name, c.got, want)
		}
	}
	if !res.OK || res.Alice.UserID != alice.ID || res.Bob.UserID != bob.ID || res.Alice.DeviceID == "" || res.Bob.DeviceID == "" {
		t.Fatalf("result identities: %+v", res)
	}

	// The homeservers' view, through the proxies: each side's timeline holds both events as m.room.encrypted
	// ciphertext, and neither plaintext appears anywhere in the sync answer.
	for _, u := range []*user{alice, bob} {
		resp := syncRoom(t, u.Client, res.RoomID)
		room, ok := resp.Rooms.Join[res.RoomID]
		if !ok {
			t.Fatalf("%s's sync has no joined room %s", u.ID, res.RoomID)
		}
		for _, id := range []string{res.AtBob.EventID, res.AtAlice.EventID} {
			ev, found := findEvent(room.Timeline.Events, id)
			if !found {
				t.Fatalf("%s's timeline lacks event %s", u.ID, id)
			}
			var c struct {
				Algorithm  string `json:"algorithm"`
				Ciphertext string `json:"ciphertext"`
				SessionID  string `json:"session_id"`
			}
			decode(t, ev.Content, &c)
			if ev.Type != "m.room.encrypted" || c.Algorithm != "m.megolm.v1.aes-sha2" || c.Ciphertext == "" || c.SessionID == "" {
				t.Errorf("%s sees event %s as type %s content %s, want megolm ciphertext", u.ID, id, ev.Type, ev.Content)
			}
		}
		for _, plain := range []string{aliceText, bobText} {
			if bytes.Contains(resp.Raw, []byte(plain)) {
				t.Errorf("%s's sync answer contains the plaintext %q", u.ID, plain)
			}
		}
	}

	// Federated device-key lookup through both proxies: alice's homeserver fetches bob's JS device from hs2.
	status, body, err := alice.Raw(ctxT(t), "POST", "/_matrix/client/v3/keys/query",
		map[string]any{"device_keys": map[string]any{bob.ID: []string{}}})
	must(t, err)
	if status != 200 {
		t.Fatalf("keys/query: HTTP %d %s", status, body)
	}
	var kq struct {
		DeviceKeys map[string]map[string]struct {
			Algorithms []string          `json:"algorithms"`
			Keys       map[string]string `json:"keys"`
		} `json:"device_keys"`
		Failures map[string]json.RawMessage `json:"failures"`
	}
	decode(t, body, &kq)
	dev, ok := kq.DeviceKeys[bob.ID][res.Bob.DeviceID]
	if !ok || dev.Keys["curve25519:"+res.Bob.DeviceID] == "" || dev.Keys["ed25519:"+res.Bob.DeviceID] == "" {
		t.Fatalf("alice's keys/query for bob lacks the JS device %s with identity keys: %s", res.Bob.DeviceID, body)
	}
	if len(kq.Failures) != 0 {
		t.Errorf("keys/query reported failures: %s", body)
	}
}

// stackPassword is the password stack.NewUser registered: "pw-" + the localpart.
func stackPassword(t *testing.T, userID string) string {
	t.Helper()
	local, _, ok := strings.Cut(strings.TrimPrefix(userID, "@"), ":")
	if !ok || local == "" {
		t.Fatalf("not a user ID: %q", userID)
	}
	return "pw-" + local
}

// syncRoom does one full sync of u, filtered to roomID with a timeline long enough for the whole test room.
func syncRoom(t *testing.T, c *mxclient.Client, roomID string) *mxclient.SyncResponse {
	t.Helper()
	filter, err := json.Marshal(map[string]any{"room": map[string]any{"rooms": []string{roomID}, "timeline": map[string]any{"limit": 100}}})
	must(t, err)
	resp, err := c.Sync(ctxT(t), "", 0, string(filter))
	must(t, err)
	return resp
}

func findEvent(evs []mxclient.Event, id string) (mxclient.Event, bool) {
	for _, ev := range evs {
		if ev.EventID == id {
			return ev, true
		}
	}
	return mxclient.Event{}, false
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
