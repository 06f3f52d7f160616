package synapse

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/timstack/timstack/proxy/e2e/mxclient"
)

// requireSynapse installs (or finds) Synapse. Without it the test skips, unless TIMSTACK_TEST_REQUIRE_HS=1
// makes a missing homeserver a failure (CI with PyPI access).
func requireSynapse(t *testing.T) (venv, template string) {
	t.Helper()
	if testing.Short() && os.Getenv("TIMSTACK_TEST_REQUIRE_HS") != "1" {
		t.Skip("real Synapse tests are skipped in -short mode")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	started := time.Now()
	venv, template, err := InstallOrFind(ctx)
	if err != nil {
		if os.Getenv("TIMSTACK_TEST_REQUIRE_HS") == "1" {
			t.Fatalf("Synapse is required (TIMSTACK_TEST_REQUIRE_HS=1) but could not be installed: %v", err)
		}
		t.Skipf("no Synapse (set TIMSTACK_TEST_REQUIRE_HS=1 to make this a failure): %v", err)
	}
	t.Logf("InstallOrFind: %v", time.Since(started).Round(time.Millisecond))
	return venv, template
}

// startServer starts a Synapse from the template in a temporary directory and stops it at cleanup, logging
// the log tail if the test failed.
func startServer(t *testing.T, cfg Config) *Server {
	t.Helper()
	if cfg.DataDir == "" {
		cfg.DataDir = t.TempDir()
	}
	started := time.Now()
	s, err := Start(t.Context(), cfg)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Logf("Synapse %s healthy after %v", s.ServerName(), time.Since(started).Round(time.Millisecond))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("Synapse log tail:\n%s", s.LogTail(30))
		}
		if err := s.Stop(); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	return s
}

func TestSynapseMessagingBetweenTwoUsers(t *testing.T) {
	venv, template := requireSynapse(t)
	s := startServer(t, Config{ServerName: "hs1.test", Venv: venv, Template: template})
	ctx := t.Context()

	t.Run("the served signing key is the one the harness generated", func(t *testing.T) {
		status, body := get(t, s.URL()+"/_matrix/key/v2/server")
		if status != http.StatusOK {
			t.Fatalf("key/v2/server: %d %s", status, body)
		}
		var keys struct {
			ServerName string `json:"server_name"`
			VerifyKeys map[string]struct {
				Key string `json:"key"`
			} `json:"verify_keys"`
		}
		if err := json.Unmarshal(body, &keys); err != nil {
			t.Fatal(err)
		}
		if keys.ServerName != "hs1.test" {
			t.Errorf("server_name = %q", keys.ServerName)
		}
		want := base64.RawStdEncoding.EncodeToString(s.SigningPublicKey())
		if got := keys.VerifyKeys[s.SigningKeyID()].Key; got != want {
			t.Errorf("key %s = %q, want %q (all: %v)", s.SigningKeyID(), got, want, keys.VerifyKeys)
		}
	})

	aliceID, aliceTok, err := s.RegisterUser(ctx, "alice", "alicepw", false)
	if err != nil {
		t.Fatal(err)
	}
	if aliceID != "@alice:hs1.test" {
		t.Fatalf("alice = %q", aliceID)
	}
	if _, _, err := s.RegisterUser(ctx, "admin", "adminpw", true); err != nil {
		t.Fatal(err)
	}
	alice := &mxclient.Client{BaseURL: s.URL(), UserID: aliceID, AccessToken: aliceTok}
	bob := &mxclient.Client{BaseURL: s.URL()}
	if _, _, err := s.RegisterUser(ctx, "bob", "bobpw", false); err != nil {
		t.Fatal(err)
	}

	t.Run("password login and whoami agree", func(t *testing.T) {
		if _, err := bob.Login(ctx, "bob", "bobpw", "BOBDEVICE"); err != nil {
			t.Fatal(err)
		}
		who, err := bob.Whoami(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if who.UserID != "@bob:hs1.test" || who.DeviceID != "BOBDEVICE" {
			t.Errorf("whoami = %+v", who)
		}
	})
	t.Run("a wrong password is M_FORBIDDEN", func(t *testing.T) {
		c := &mxclient.Client{BaseURL: s.URL()}
		_, err := c.Login(ctx, "bob", "nope", "")
		if !mxclient.IsErr(err, http.StatusForbidden, "M_FORBIDDEN") {
			t.Errorf("login error = %v, want 403 M_FORBIDDEN", err)
		}
	})

	bobSince, err := bob.SyncUntil(ctx, "", 30*time.Second, func(*mxclient.SyncResponse) bool { return true })
	if err != nil {
		t.Fatal(err)
	}
	var roomID string
	t.Run("alice creates a private encrypted room and invites bob, who sees the invite", func(t *testing.T) {
		roomID, err = alice.CreateRoom(ctx, map[string]any{
			"preset":       "private_chat",
			"room_version": "10",
			"initial_state": []any{map[string]any{
				"type": "m.room.encryption", "state_key": "",
				"content": map[string]any{"algorithm": "m.megolm.v1.aes-sha2"},
			}},
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := alice.Invite(ctx, roomID, bob.UserID); err != nil {
			t.Fatal(err)
		}
		bobSince, err = bob.SyncUntil(ctx, bobSince, 30*time.Second, mxclient.HasInvite(roomID))
		if err != nil {
			t.Fatal(err)
		}
	})
	if roomID == "" {
		t.FailNow()
	}
	t.Run("bob joins and receives alice's message", func(t *testing.T) {
		if got, err := bob.Join(ctx, roomID); err != nil || got != roomID {
			t.Fatalf("join = %q, %v", got, err)
		}
		eventID, err := alice.SendText(ctx, roomID, "Hallo Bob")
		if err != nil {
			t.Fatal(err)
		}
		bobSince, err = bob.SyncUntil(ctx, bobSince, 30*time.Second, mxclient.HasTimelineEvent(roomID, func(e mxclient.Event) bool {
			return e.EventID == eventID && e.Sender == aliceID && e.Body() == "Hallo Bob"
		}))
		if err != nil {
			t.Fatal(err)
		}
	})
	t.Run("the room is encrypted and version 10", func(t *testing.T) {
		enc, err := bob.GetState(ctx, roomID, "m.room.encryption", "")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(enc), "m.megolm.v1.aes-sha2") {
			t.Errorf("m.room.encryption = %s", enc)
		}
		create, err := bob.GetState(ctx, roomID, "m.room.create", "")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(create), `"room_version":"10"`) {
			t.Errorf("m.room.create = %s", create)
		}
	})
	t.Run("a redaction by the sender is accepted", func(t *testing.T) {
		eventID, err := alice.SendText(ctx, roomID, "oops")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := alice.Redact(ctx, roomID, eventID, "typo"); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("account data round-trips", func(t *testing.T) {
		if err := alice.SetAccountData(ctx, "de.gematik.tim.test", map[string]any{"k": "v"}); err != nil {
			t.Fatal(err)
		}
		got, err := alice.GetAccountData(ctx, "de.gematik.tim.test")
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != `{"k":"v"}` {
			t.Errorf("account data = %s", got)
		}
		if _, err := alice.GetAccountData(ctx, "de.gematik.tim.absent"); !mxclient.IsErr(err, http.StatusNotFound, "M_NOT_FOUND") {
			t.Errorf("absent account data error = %v, want 404 M_NOT_FOUND", err)
		}
	})
	t.Run("profiles need authentication", func(t *testing.T) {
		if _, err := bob.ProfileUnauthenticated(ctx, aliceID); !mxclient.IsErr(err, http.StatusUnauthorized, "M_MISSING_TOKEN") {
			t.Errorf("unauthenticated profile error = %v, want 401 M_MISSING_TOKEN", err)
		}
		if _, err := bob.Profile(ctx, aliceID); err != nil {
			t.Errorf("authenticated profile: %v", err)
		}
	})
	t.Run("media uploaded now still downloads through the deprecated unauthenticated endpoint", func(t *testing.T) {
		status, body, err := alice.Raw(ctx, http.MethodPost, "/_matrix/media/v3/upload?filename=a.txt", []byte("hello media"))
		if err != nil || status != http.StatusOK {
			t.Fatalf("upload: %d %s %v", status, body, err)
		}
		var up struct {
			ContentURI string `json:"content_uri"`
		}
		if err := json.Unmarshal(body, &up); err != nil {
			t.Fatal(err)
		}
		serverAndID, ok := strings.CutPrefix(up.ContentURI, "mxc://")
		if !ok {
			t.Fatalf("content_uri = %q", up.ContentURI)
		}
		status, got := get(t, s.URL()+"/_matrix/media/v3/download/"+serverAndID)
		if status != http.StatusOK || string(got) != "hello media" {
			t.Errorf("legacy download: %d %q, want 200 with the upload", status, got)
		}
	})
	t.Run("leave and forget end bob's membership", func(t *testing.T) {
		if err := bob.Leave(ctx, roomID); err != nil {
			t.Fatal(err)
		}
		if err := bob.Forget(ctx, roomID); err != nil {
			t.Fatal(err)
		}
		if _, err := bob.SendText(ctx, roomID, "still here?"); !mxclient.IsErr(err, http.StatusForbidden, "M_FORBIDDEN") {
			t.Errorf("send after leave error = %v, want 403 M_FORBIDDEN", err)
		}
	})
}

func TestSynapseRestartKeepsDataAndKey(t *testing.T) {
	venv, template := requireSynapse(t)
	s := startServer(t, Config{ServerName: "hs2.test", Venv: venv, Template: template})
	ctx := t.Context()
	userID, tok, err := s.RegisterUser(ctx, "carol", "carolpw", false)
	if err != nil {
		t.Fatal(err)
	}
	keyID, url := s.SigningKeyID(), s.URL()
	started := time.Now()
	if err := s.Reconfigure(ctx, func(c *Config) { c.Extra = map[string]any{"require_auth_for_profile_requests": false} }); err != nil {
		t.Fatal(err)
	}
	t.Logf("restart took %v", time.Since(started).Round(time.Millisecond))
	if s.SigningKeyID() != keyID || s.URL() != url {
		t.Errorf("restart changed key or URL: %s %s -> %s %s", keyID, url, s.SigningKeyID(), s.URL())
	}
	c := &mxclient.Client{BaseURL: s.URL(), UserID: userID, AccessToken: tok}
	if who, err := c.Whoami(ctx); err != nil || who.UserID != userID {
		t.Fatalf("token after restart: %+v %v", who, err)
	}
	if _, err := c.ProfileUnauthenticated(ctx, userID); err != nil {
		t.Errorf("unauthenticated profile after switching require_auth_for_profile_requests off: %v", err)
	}
}

func TestSynapseStartFailureReportsTheLog(t *testing.T) {
	venv, template := requireSynapse(t)
	dir := t.TempDir()
	_, err := Start(t.Context(), Config{
		Venv: venv, Template: template, DataDir: dir,
		Extra: map[string]any{"database": map[string]any{"name": "nosuchdb"}},
	})
	if err == nil {
		t.Fatal("Start with a broken database config succeeded")
	}
	if !strings.Contains(err.Error(), "stdout.log") {
		t.Errorf("error does not carry the log tail: %v", err)
	}
	if _, statErr := os.Stat(filepath.Join(dir, "homeserver.yaml")); statErr != nil {
		t.Errorf("config not written: %v", statErr)
	}
}

// TestSynapseStartupTimes measures a start without the template (full migration), with it, and a restart.
// It is slow, so it only runs with TIMSTACK_SYNAPSE_MEASURE=1.
func TestSynapseStartupTimes(t *testing.T) {
	if os.Getenv("TIMSTACK_SYNAPSE_MEASURE") != "1" {
		t.Skip("set TIMSTACK_SYNAPSE_MEASURE=1 to measure Synapse start-up times")
	}
	venv, template := requireSynapse(t)
	for _, tc := range []struct {
		name     string
		template string
	}{{"cold start without template", ""}, {"cold start from template", template}} {
		started := time.Now()
		s, err := Start(t.Context(), Config{Venv: venv, Template: tc.template, DataDir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: %v", tc.name, time.Since(started).Round(time.Millisecond))
		started = time.Now()
		if err := s.Restart(t.Context()); err != nil {
			t.Fatal(err)
		}
		t.Logf("%s, then restart: %v", tc.name, time.Since(started).Round(time.Millisecond))
		started = time.Now()
		if err := s.Stop(); err != nil {
			t.Fatal(err)
		}
		t.Logf("%s, then stop: %v", tc.name, time.Since(started).Round(time.Millisecond))
	}
}

func get(t *testing.T, url string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, body
}
