package proxy

import (
	"bytes"
	"context"
	"crypto"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/timstack/timstack/certs"
	"github.com/timstack/timstack/policy"
	"github.com/timstack/timstack/proxy/appservice"
	"github.com/timstack/timstack/proxy/forward"
	"github.com/timstack/timstack/proxy/proxytest"
)

// testEnv is one proxy in front of a recording upstream, with a signed federation list of hs1.tim.test
// (us), hs2.tim.test and kk.tim.test (an insurance domain).
type testEnv struct {
	p         *Proxy
	up        *proxytest.Upstream
	client    *httptest.Server
	decisions *syncBuffer
	cfg       *Config
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// testPKI is shared by the fast tests: creating brainpool keys is cheap, but not free.
var testPKI = sync.OnceValues(func() (*fixturePKI, error) {
	now := time.Now()
	komp, err := certs.NewTestCA("proxy test KOMP-CA", certs.KeyBrainpoolP256r1, now.Add(-time.Hour), now.Add(48*time.Hour))
	if err != nil {
		return nil, err
	}
	signer, key, err := komp.Issue(certs.IssueRequest{Profile: certs.IssueProfileFListSigner, CommonName: "VZD-FHIR-FList-Signer"})
	if err != nil {
		return nil, err
	}
	tlsCA, err := certs.NewTestCA("proxy test TLS CA", certs.KeyP256, now.Add(-time.Hour), now.Add(48*time.Hour))
	if err != nil {
		return nil, err
	}
	tlsCert, tlsKey, err := tlsCA.Issue(certs.IssueRequest{Profile: certs.IssueProfileTLSServer, CommonName: "hs1.tim.test", DNSNames: []string{"hs1.tim.test"}})
	if err != nil {
		return nil, err
	}
	caPEM, caKey, err := forward.GenerateCA("proxy test forward CA", 48*time.Hour)
	if err != nil {
		return nil, err
	}
	return &fixturePKI{komp: komp, signer: signer, signerKey: key, tlsCert: tlsCert, tlsKey: tlsKey, fwdCA: caPEM, fwdKey: caKey}, nil
})

type fixturePKI struct {
	komp      *certs.TestCA
	signer    *certs.Certificate
	signerKey crypto.Signer
	tlsCert   *certs.Certificate
	tlsKey    crypto.Signer
	fwdCA     []byte
	fwdKey    []byte
}

var testDomains = []certs.FederationDomain{
	{Domain: "hs1.tim.test", TelematikID: "1-hs1"},
	{Domain: "hs2.tim.test", TelematikID: "1-hs2"},
	{Domain: "kk.tim.test", TelematikID: "8-kk", IsInsurance: true, IK: []string{"109500969"}},
}

func newTestEnv(t *testing.T, variant string) *testEnv {
	t.Helper()
	return newTestEnvWith(t, variant, nil)
}

// envOptions adjust a test environment before the proxy is built.
type envOptions struct {
	// list replaces the signed federation list file's bytes (nil: a valid list; empty: no file at all).
	list    []byte
	noList  bool
	now     func() time.Time
	config  func(*Config)
	noFetch bool
}

func newTestEnvWith(t *testing.T, variant string, opt *envOptions) *testEnv {
	t.Helper()
	if opt == nil {
		opt = &envOptions{}
	}
	pki, err := testPKI()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	serverName := "hs1.tim.test"
	if variant == "epa" {
		serverName = "kk.tim.test"
	}
	reg, err := appservice.NewRegistration(serverName, "http://127.0.0.1:1")
	if err != nil {
		t.Fatal(err)
	}
	regYAML, _ := reg.YAML()
	jws, err := certs.SignFederationList(pki.signerKey, certs.AlgBP256R1, []*certs.Certificate{pki.signer}, 1, testDomains)
	if err != nil {
		t.Fatal(err)
	}
	if opt.list != nil {
		jws = opt.list
	}
	tlsKeyPEM, _ := certs.MarshalPrivateKeyPEM(pki.tlsKey)
	up := proxytest.NewUpstream(t, reg.ASToken)
	cfg := &Config{
		ServerName: serverName, Variant: variant, ServerAdmins: []string{"@admin:" + serverName},
		Listen: ListenConfig{Client: "127.0.0.1:0", Federation: "127.0.0.1:0", Forward: "127.0.0.1:0", Internal: "127.0.0.1:0",
			FederationTLS: TLSConfig{CertFile: write("tls/cert.pem", pki.tlsCert.EncodePEM()), KeyFile: write("tls/key.pem", tlsKeyPEM)}},
		Homeserver:     HomeserverConfig{URL: up.URL, AppServiceRegistration: write("as.yaml", regYAML)},
		Forward:        ForwardConfig{CACertFile: write("fwd/ca.pem", pki.fwdCA), CAKeyFile: write("fwd/ca.key", pki.fwdKey)},
		FederationList: FederationListConfig{Source: "file", File: write("list.jws", jws), TrustDir: filepath.Dir(write("trust/komp.pem", pki.komp.Cert.EncodePEM())), OCSP: "off", AllowTestTrust: true},
	}
	cfg.FederationList.Keeper.CacheDir = filepath.Join(dir, "cache")
	if opt.noList {
		cfg.FederationList.File = filepath.Join(dir, "absent.jws")
	}
	if opt.config != nil {
		opt.config(cfg)
	}
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	dl := &syncBuffer{}
	p, err := New(context.Background(), cfg, Deps{Log: slog.New(slog.DiscardHandler), DecisionLog: dl, Now: opt.now})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.flist.Refresh(context.Background()); err != nil && !opt.noFetch {
		t.Fatal(err)
	}
	srv := httptest.NewServer(p.ClientHandler())
	t.Cleanup(srv.Close)
	return &testEnv{p: p, up: up, client: srv, decisions: dl, cfg: cfg}
}

// do sends a client request with an optional token and JSON body.
func (e *testEnv) do(t *testing.T, method, path, token string, body any) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, e.client.URL+path, rd)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var m map[string]any
	_ = json.Unmarshal(raw, &m)
	return resp.StatusCode, m
}

func TestEveryReasonHasARow(t *testing.T) {
	for _, r := range policy.AllReasons {
		if _, ok := reasonIndex[r]; !ok {
			t.Errorf("reason %q has no row in reasonTable", r)
		}
	}
	seen := map[policy.Reason]bool{}
	for _, row := range reasonTable {
		if seen[row.reason] {
			t.Errorf("reason %q has two rows", row.reason)
		}
		seen[row.reason] = true
	}
}

func TestRefusalTakesTheFirstRowAndMapsUnknownReasonsTo403(t *testing.T) {
	e, mapped := refusal([]policy.Reason{policy.ReasonInviteNotPermitted, policy.ReasonInviteeNotFederated})
	if !mapped || e.Reason != string(policy.ReasonInviteeNotFederated) {
		t.Errorf("got %q mapped=%v, want invitee_not_federated first", e.Reason, mapped)
	}
	e, mapped = refusal([]policy.Reason{"organization_type_not_allowed_custom"})
	if mapped || e.Status != 403 || e.ErrCode != "M_FORBIDDEN" {
		t.Errorf("unmapped reason: got %d %s mapped=%v", e.Status, e.ErrCode, mapped)
	}
}

// Client-API decisions against a recording upstream: every refusal asserts status, errcode and that nothing
// reached the homeserver; every rule has an allowed twin.
func TestClientDecisions(t *testing.T) {
	env := newTestEnv(t, "pro")
	env.up.AddUser("tok-alice", "@alice:hs1.tim.test")
	env.up.AddUser("tok-admin", "@admin:hs1.tim.test")
	env.up.SetAccountData("@blocker:hs1.tim.test", appservice.TypePermissionConfigPro, map[string]any{"defaultSetting": "block all"})
	env.up.SetEvent("$old", map[string]any{"event_id": "$old", "type": "m.room.message", "sender": "@alice:hs1.tim.test",
		"origin_server_ts": time.Now().Add(-25 * time.Hour).UnixMilli(), "content": map[string]any{"body": "x"}})
	env.up.SetEvent("$fresh", map[string]any{"event_id": "$fresh", "type": "m.room.message", "sender": "@alice:hs1.tim.test",
		"origin_server_ts": time.Now().Add(-23 * time.Hour).UnixMilli(), "content": map[string]any{"body": "x"}})
	encrypted := []any{map[string]any{"type": "m.room.encryption", "state_key": "", "content": map[string]any{"algorithm": "m.megolm.v1.aes-sha2"}}}
	cases := []struct {
		name        string
		method      string
		path        string
		token       string
		body        any
		wantStatus  int
		wantErrcode string
	}{
		{"no token is 401 M_MISSING_TOKEN", "POST", "/_matrix/client/v3/createRoom", "", map[string]any{}, 401, "M_MISSING_TOKEN"},
		{"an unknown token is 401 M_UNKNOWN_TOKEN", "POST", "/_matrix/client/v3/createRoom", "nope", map[string]any{}, 401, "M_UNKNOWN_TOKEN"},
		{"createRoom with two invitees is 403", "POST", "/_matrix/client/v3/createRoom", "tok-alice",
			map[string]any{"invite": []string{"@a:hs2.tim.test", "@b:hs2.tim.test"}, "initial_state": encrypted}, 403, "M_FORBIDDEN"},
		{"createRoom inviting outside the federation is 403", "POST", "/_matrix/client/v3/createRoom", "tok-alice",
			map[string]any{"invite": []string{"@x:matrix.org"}, "initial_state": encrypted}, 403, "M_FORBIDDEN"},
		{"createRoom inviting a user who blocks all is 403", "POST", "/_matrix/client/v3/createRoom", "tok-alice",
			map[string]any{"invite": []string{"@blocker:hs1.tim.test"}, "initial_state": encrypted}, 403, "M_FORBIDDEN"},
		{"createRoom with invite null is 400 (Synapse would answer 500)", "POST", "/_matrix/client/v3/createRoom", "tok-alice",
			map[string]any{"invite": nil, "initial_state": encrypted}, 400, "M_BAD_JSON"},
		{"createRoom with room version 11 is 400", "POST", "/_matrix/client/v3/createRoom", "tok-alice",
			map[string]any{"room_version": "11", "initial_state": encrypted}, 400, "M_UNSUPPORTED_ROOM_VERSION"},
		{"a private unencrypted room is 403", "POST", "/_matrix/client/v3/createRoom", "tok-alice",
			map[string]any{"preset": "private_chat"}, 403, "M_FORBIDDEN"},
		{"room type v2 is 400", "POST", "/_matrix/client/v3/createRoom", "tok-alice",
			map[string]any{"creation_content": map[string]any{"type": "de.gematik.tim.roomtype.default.v2"}, "initial_state": encrypted}, 400, "M_FORBIDDEN"},
		{"an encrypted private room with a federated invitee passes", "POST", "/_matrix/client/v3/createRoom", "tok-alice",
			map[string]any{"invite": []string{"@b:hs2.tim.test"}, "initial_state": encrypted}, 200, ""},
		{"an invite of a blocking local user is 403", "POST", "/_matrix/client/v3/rooms/!r:hs1.tim.test/invite", "tok-alice",
			map[string]any{"user_id": "@blocker:hs1.tim.test"}, 403, "M_FORBIDDEN"},
		{"an invite by membership state event gets the same check", "PUT", "/_matrix/client/v3/rooms/!r:hs1.tim.test/state/m.room.member/@blocker:hs1.tim.test", "tok-alice",
			map[string]any{"membership": "invite"}, 403, "M_FORBIDDEN"},
		{"an r0 invite gets the same check", "POST", "/_matrix/client/r0/rooms/!r:hs1.tim.test/invite", "tok-alice",
			map[string]any{"user_id": "@blocker:hs1.tim.test"}, 403, "M_FORBIDDEN"},
		{"an invite of a default (allow all) local user passes", "POST", "/_matrix/client/v3/rooms/!r:hs1.tim.test/invite", "tok-alice",
			map[string]any{"user_id": "@open:hs1.tim.test"}, 200, ""},
		{"join rule public on Pro is 400 M_INVALID_ROOM_STATE", "PUT", "/_matrix/client/v3/rooms/!r:hs1.tim.test/state/m.room.join_rules/", "tok-alice",
			map[string]any{"join_rule": "public"}, 400, "M_INVALID_ROOM_STATE"},
		{"join rule invite passes", "PUT", "/_matrix/client/v3/rooms/!r:hs1.tim.test/state/m.room.join_rules", "tok-alice",
			map[string]any{"join_rule": "invite"}, 200, ""},
		{"a thread relation is 400", "PUT", "/_matrix/client/v3/rooms/!r:hs1.tim.test/send/m.room.message/t1", "tok-alice",
			map[string]any{"body": "x", "m.relates_to": map[string]any{"rel_type": "m.thread", "event_id": "$e"}}, 400, "M_FORBIDDEN"},
		{"a two-emoji reaction is 400 M_BAD_JSON", "PUT", "/_matrix/client/v3/rooms/!r:hs1.tim.test/send/m.reaction/t2", "tok-alice",
			map[string]any{"m.relates_to": map[string]any{"rel_type": "m.annotation", "event_id": "$e", "key": "👍👍"}}, 400, "M_BAD_JSON"},
		{"a one-emoji reaction passes", "PUT", "/_matrix/client/v3/rooms/!r:hs1.tim.test/send/m.reaction/t3", "tok-alice",
			map[string]any{"m.relates_to": map[string]any{"rel_type": "m.annotation", "event_id": "$e", "key": "👍"}}, 200, ""},
		{"status_msg of 251 characters is 403 M_TOO_LARGE", "PUT", "/_matrix/client/v3/presence/@alice:hs1.tim.test/status", "tok-alice",
			map[string]any{"presence": "online", "status_msg": strings.Repeat("ä", 251)}, 403, "M_TOO_LARGE"},
		{"status_msg of 250 characters passes", "PUT", "/_matrix/client/v3/presence/@alice:hs1.tim.test/status", "tok-alice",
			map[string]any{"presence": "online", "status_msg": strings.Repeat("ä", 250)}, 200, ""},
		{"media of a non-federated server is 403", "GET", "/_matrix/client/v1/media/download/matrix.org/abc", "tok-alice", nil, 403, "M_FORBIDDEN"},
		{"media of a federated server passes", "GET", "/_matrix/client/v1/media/download/hs2.tim.test/abc", "tok-alice", nil, 200, ""},
		{"A_28358 redacting an event older than 24 h is 403", "PUT", "/_matrix/client/v3/rooms/!r:hs1.tim.test/redact/$old/t9", "tok-alice",
			map[string]any{}, 403, "M_FORBIDDEN"},
		{"redacting an event younger than 24 h passes", "PUT", "/_matrix/client/v3/rooms/!r:hs1.tim.test/redact/$fresh/t10", "tok-alice",
			map[string]any{}, 200, ""},
		{"a server admin may redact an event older than 24 h (A_28358 exemption)", "PUT", "/_matrix/client/v3/rooms/!r:hs1.tim.test/redact/$old/t11", "tok-admin",
			map[string]any{}, 200, ""},
		{"the POST twin of redact gets the same check", "POST", "/_matrix/client/v3/rooms/!r:hs1.tim.test/redact/$old", "tok-alice",
			map[string]any{}, 403, "M_FORBIDDEN"},
		{"the PUT twin of createRoom gets the same checks", "PUT", "/_matrix/client/v3/createRoom/txn1", "tok-alice",
			map[string]any{"invite": []string{"@a:hs2.tim.test", "@b:hs2.tim.test"}, "initial_state": encrypted}, 403, "M_FORBIDDEN"},
		{"the PUT twin of invite gets the same checks", "PUT", "/_matrix/client/v3/rooms/!r:hs1.tim.test/invite/txn2", "tok-alice",
			map[string]any{"user_id": "@blocker:hs1.tim.test"}, 403, "M_FORBIDDEN"},
		{"the POST twin of send gets the same checks", "POST", "/_matrix/client/v3/rooms/!r:hs1.tim.test/send/m.room.message", "tok-alice",
			map[string]any{"body": "x", "m.relates_to": map[string]any{"rel_type": "m.thread", "event_id": "$e"}}, 400, "M_FORBIDDEN"},
		{"guest registration is 403", "POST", "/_matrix/client/v3/register?kind=guest", "", map[string]any{}, 403, "M_FORBIDDEN"},
		{"URL previews are 404", "GET", "/_matrix/media/v3/preview_url?url=x", "tok-alice", nil, 404, "M_UNRECOGNIZED"},
		{"an unknown endpoint is 404", "GET", "/_matrix/client/v3/nope", "tok-alice", nil, 404, "M_UNRECOGNIZED"},
		{"a wrong method is 405", "DELETE", "/_matrix/client/v3/createRoom", "tok-alice", nil, 405, "M_UNRECOGNIZED"},
		{"another admin path is 404", "GET", "/_synapse/admin/v1/users/@alice:hs1.tim.test", "tok-alice", nil, 404, "M_UNRECOGNIZED"},
		{"the server version passes", "GET", "/_synapse/admin/v1/server_version", "", nil, 200, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env.up.Reset()
			status, body := env.do(t, tc.method, tc.path, tc.token, tc.body)
			if status != tc.wantStatus {
				t.Fatalf("status %d, want %d (%v)", status, tc.wantStatus, body)
			}
			if tc.wantErrcode != "" && body["errcode"] != tc.wantErrcode {
				t.Fatalf("errcode %v, want %s", body["errcode"], tc.wantErrcode)
			}
			reached := 0
			for _, r := range env.up.Requests() {
				if !strings.HasSuffix(r.RequestURI, "/account/whoami") {
					reached++
				}
			}
			if tc.wantStatus >= 400 && reached != 0 {
				t.Fatalf("refused request reached the homeserver: %+v", env.up.Requests())
			}
			if tc.wantStatus < 400 && reached != 1 {
				t.Fatalf("allowed request reached the homeserver %d times", reached)
			}
		})
	}
}

// Obligations rewrite the body: default room version 10 (A_26248), m.federate=false for Pro public rooms
// (A_26515-01), history visibility invited (A_25481).
func TestCreateRoomObligations(t *testing.T) {
	env := newTestEnv(t, "pro")
	env.up.AddUser("tok-alice", "@alice:hs1.tim.test")
	status, body := env.do(t, "POST", "/_matrix/client/v3/createRoom", "tok-alice", map[string]any{"preset": "public_chat"})
	if status != 200 {
		t.Fatalf("status %d %v", status, body)
	}
	var fwd []proxytest.Request
	for _, r := range env.up.Requests() {
		if strings.HasSuffix(r.RequestURI, "/createRoom") {
			fwd = append(fwd, r)
		}
	}
	if len(fwd) != 1 {
		t.Fatalf("createRoom forwarded %d times", len(fwd))
	}
	var got struct {
		RoomVersion     string         `json:"room_version"`
		CreationContent map[string]any `json:"creation_content"`
		InitialState    []struct {
			Type    string         `json:"type"`
			Content map[string]any `json:"content"`
		} `json:"initial_state"`
	}
	if err := json.Unmarshal(fwd[0].Body, &got); err != nil {
		t.Fatal(err)
	}
	if got.RoomVersion != "10" {
		t.Errorf("room_version %q, want 10", got.RoomVersion)
	}
	if got.CreationContent["m.federate"] != false {
		t.Errorf("creation_content %v, want m.federate false", got.CreationContent)
	}
	hv := ""
	for _, ev := range got.InitialState {
		if ev.Type == "m.room.history_visibility" {
			hv, _ = ev.Content["history_visibility"].(string)
		}
	}
	if hv != "invited" {
		t.Errorf("history visibility %q, want invited", hv)
	}
}

// The access-token cache: one whoami per token, dropped on /logout.
func TestTokenCacheDroppedOnLogout(t *testing.T) {
	env := newTestEnv(t, "pro")
	env.up.AddUser("tok-alice", "@alice:hs1.tim.test")
	whoamis := func() int {
		n := 0
		for _, r := range env.up.Requests() {
			if strings.HasSuffix(r.RequestURI, "/account/whoami") {
				n++
			}
		}
		return n
	}
	for range 3 {
		env.do(t, "PUT", "/_matrix/client/v3/presence/@alice:hs1.tim.test/status", "tok-alice", map[string]any{"presence": "online"})
	}
	if n := whoamis(); n != 1 {
		t.Fatalf("%d whoami calls for three requests with one token, want 1", n)
	}
	env.do(t, "POST", "/_matrix/client/v3/logout", "tok-alice", map[string]any{})
	env.do(t, "PUT", "/_matrix/client/v3/presence/@alice:hs1.tim.test/status", "tok-alice", map[string]any{"presence": "online"})
	if n := whoamis(); n != 2 {
		t.Fatalf("%d whoami calls after logout, want 2 (cache dropped)", n)
	}
}

// GET of an absent permission configuration answers the server default; /versions is capped at v1.11.
func TestClientAnswersTheProxyRewrites(t *testing.T) {
	env := newTestEnv(t, "pro")
	env.up.AddUser("tok-alice", "@alice:hs1.tim.test")
	status, body := env.do(t, "GET", "/_matrix/client/v3/user/@alice:hs1.tim.test/account_data/de.gematik.tim.account.permissionconfig.pro.v1", "tok-alice", nil)
	if status != 200 || body["defaultSetting"] != "allow all" {
		t.Errorf("absent config: %d %v, want 200 with the allow-all default", status, body)
	}
	env.up.SetAccountData("@alice:hs1.tim.test", appservice.TypePermissionConfigPro, map[string]any{"defaultSetting": "block all"})
	if status, body = env.do(t, "GET", "/_matrix/client/v3/user/@alice:hs1.tim.test/account_data/de.gematik.tim.account.permissionconfig.pro.v1", "tok-alice", nil); body["defaultSetting"] != "block all" {
		t.Errorf("stored config: %d %v, want the stored block all", status, body)
	}
	status, body = env.do(t, "GET", "/_matrix/client/versions", "", nil)
	if status != 200 {
		t.Fatalf("versions: %d", status)
	}
	vs, _ := body["versions"].([]any)
	has111 := false
	for _, v := range vs {
		if v == "v1.12" || v == "v1.13" {
			t.Errorf("versions advertises %v", v)
		}
		has111 = has111 || v == "v1.11"
	}
	if !has111 {
		t.Errorf("versions %v lacks v1.11", vs)
	}
}

// ePA: insured users cannot invite insured users (A_25705); the user directory answers nobody (A_26375);
// the room directory is 403 (A_28587); public rooms are 403.
func TestEPADecisions(t *testing.T) {
	env := newTestEnv(t, "epa")
	env.up.AddUser("tok-ins", "@ins:kk.tim.test")
	encrypted := []any{map[string]any{"type": "m.room.encryption", "state_key": "", "content": map[string]any{"algorithm": "m.megolm.v1.aes-sha2"}}}
	cases := []struct {
		name, method, path string
		body               any
		wantStatus         int
	}{
		{"insured inviting insured is 403", "POST", "/_matrix/client/v3/rooms/!r:kk.tim.test/invite", map[string]any{"user_id": "@other:kk.tim.test"}, 403},
		{"insured inviting a practitioner passes", "POST", "/_matrix/client/v3/rooms/!r:kk.tim.test/invite", map[string]any{"user_id": "@doc:hs1.tim.test"}, 200},
		{"a public room is 403", "POST", "/_matrix/client/v3/createRoom", map[string]any{"preset": "public_chat", "initial_state": encrypted}, 403},
		{"join rule knock is 403", "PUT", "/_matrix/client/v3/rooms/!r:kk.tim.test/state/m.room.join_rules/", map[string]any{"join_rule": "knock"}, 403},
		{"world readable history is 403", "PUT", "/_matrix/client/v3/rooms/!r:kk.tim.test/state/m.room.history_visibility/", map[string]any{"history_visibility": "world_readable"}, 403},
		{"the room directory is 403", "GET", "/_matrix/client/v3/publicRooms", nil, 403},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env.up.Reset()
			status, body := env.do(t, tc.method, tc.path, "tok-ins", tc.body)
			if status != tc.wantStatus {
				t.Fatalf("status %d, want %d (%v)", status, tc.wantStatus, body)
			}
		})
	}
	env.up.Reset()
	status, body := env.do(t, "POST", "/_matrix/client/v3/user_directory/search", "tok-ins", map[string]any{"search_term": "a"})
	if status != 200 || len(body["results"].([]any)) != 0 {
		t.Fatalf("user directory: %d %v, want 200 with no results", status, body)
	}
	if env.up.Saw("user_directory") {
		t.Fatal("the user directory search reached the homeserver")
	}
}

// Run serves all four listeners and returns promptly when its context ends.
func TestRunStopsWithItsContext(t *testing.T) {
	env := newTestEnv(t, "pro")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- env.p.Run(ctx) }()
	time.Sleep(200 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(15 * time.Second):
		buf := make([]byte, 1<<20)
		n := runtime.Stack(buf, true)
		t.Fatalf("Run did not return after cancel:\n%s", buf[:n])
	}
}

// Fail closed: without a fresh, verified federation list or without a valid policy set, every decision that
// involves another domain is a denial with a reason that names the cause class.
func TestFailClosed(t *testing.T) {
	pki, err := testPKI()
	if err != nil {
		t.Fatal(err)
	}
	good, err := certs.SignFederationList(pki.signerKey, certs.AlgBP256R1, []*certs.Certificate{pki.signer}, 1, testDomains)
	if err != nil {
		t.Fatal(err)
	}
	tampered := bytes.Clone(good)
	tampered[len(tampered)-5] ^= 1
	var clock atomic.Int64
	clock.Store(time.Now().UnixNano())
	now := func() time.Time { return time.Unix(0, clock.Load()) }
	cases := []struct {
		name    string
		opt     *envOptions
		advance time.Duration
		wantMsg string
		// readyOK: the proxy is ready (list and policy fine) although this decision fails closed.
		readyOK bool
	}{
		{"no federation list at all denies with federation list unavailable", &envOptions{noList: true, noFetch: true}, 0, "Federation list unavailable", false},
		{"a badly signed list denies with federation list unavailable", &envOptions{list: tampered, noFetch: true}, 0, "Federation list unavailable", false},
		{"no verified contact for more than 72 h denies with federation list outdated", &envOptions{now: now}, 73 * time.Hour, "Federation list outdated", false},
		{"a broken operator policy set denies with policy unavailable", &envOptions{config: func(c *Config) {
			dir := t.TempDir()
			_ = os.WriteFile(filepath.Join(dir, "broken.rego"), []byte("package tim.operator.broken\ndeny contains x if {"), 0o600)
			c.Policy.OperatorDir = dir
		}}, 0, "Policy unavailable", false},
		{"required directory facts with the directory down deny with directory unavailable", &envOptions{config: func(c *Config) {
			tok := filepath.Join(t.TempDir(), "token")
			_ = os.WriteFile(tok, []byte("search-token"), 0o600)
			c.DirectoryFacts.URL, c.DirectoryFacts.TokenFile, c.DirectoryFacts.Required = "http://127.0.0.1:1", tok, true
		}}, 0, "Directory unavailable", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env := newTestEnvWith(t, "pro", tc.opt)
			env.up.AddUser("tok-alice", "@alice:hs1.tim.test")
			clock.Add(int64(tc.advance))
			status, body := env.do(t, "POST", "/_matrix/client/v3/rooms/!r:hs1.tim.test/invite", "tok-alice", map[string]any{"user_id": "@bob:hs2.tim.test"})
			if status != 403 || body["errcode"] != "M_FORBIDDEN" || body["error"] != tc.wantMsg {
				t.Fatalf("got %d %v, want 403 M_FORBIDDEN %q", status, body, tc.wantMsg)
			}
			if err := env.p.Ready(); err == nil && !tc.readyOK {
				t.Error("Ready() is nil although the proxy cannot decide")
			}
		})
	}
	// The allowed twin: a fresh list and a valid policy admit the same invite.
	env := newTestEnv(t, "pro")
	env.up.AddUser("tok-alice", "@alice:hs1.tim.test")
	if status, body := env.do(t, "POST", "/_matrix/client/v3/rooms/!r:hs1.tim.test/invite", "tok-alice", map[string]any{"user_id": "@bob:hs2.tim.test"}); status != 200 {
		t.Fatalf("fresh list: %d %v", status, body)
	}
	if err := env.p.Ready(); err != nil {
		t.Errorf("Ready: %v", err)
	}
}

// /logout/all drops every cached token of the user, resolved before the homeserver invalidates them.
func TestTokenCacheDroppedOnLogoutAll(t *testing.T) {
	env := newTestEnv(t, "pro")
	env.up.AddUser("tok-a1", "@alice:hs1.tim.test")
	env.up.AddUser("tok-a2", "@alice:hs1.tim.test")
	for _, tok := range []string{"tok-a1", "tok-a2"} {
		env.do(t, "PUT", "/_matrix/client/v3/presence/@alice:hs1.tim.test/status", tok, map[string]any{"presence": "online"})
	}
	if n := env.p.tokens.len(); n != 2 {
		t.Fatalf("%d cached tokens, want 2", n)
	}
	if status, body := env.do(t, "POST", "/_matrix/client/v3/logout/all", "tok-a1", map[string]any{}); status != 200 {
		t.Fatalf("/logout/all: %d %v", status, body)
	}
	if n := env.p.tokens.len(); n != 0 {
		t.Fatalf("%d cached tokens after /logout/all, want 0", n)
	}
}

// The internal listener: /healthz always, /readyz only with a fresh list, /metrics with the decision and
// list series.
func TestInternalEndpoints(t *testing.T) {
	env := newTestEnv(t, "pro")
	env.up.AddUser("tok-alice", "@alice:hs1.tim.test")
	env.do(t, "POST", "/_matrix/client/v3/rooms/!r:hs1.tim.test/invite", "tok-alice", map[string]any{"user_id": "@x:matrix.org"})
	internal := httptest.NewServer(env.p.InternalHandler())
	defer internal.Close()
	get := func(path string) (int, string) {
		resp, err := http.Get(internal.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if status, _ := get("/healthz"); status != 200 {
		t.Errorf("healthz %d", status)
	}
	if status, body := get("/readyz"); status != 200 {
		t.Errorf("readyz %d %s with a fresh list", status, body)
	}
	status, body := get("/metrics")
	for _, want := range []string{
		`timstack_policy_decisions_total{reason="invitee_not_federated",result="deny"} 1`,
		"timstack_federation_list_version 1",
		"timstack_federation_list_age_seconds",
		`timstack_http_requests_total{code="403",method="POST",route="client.rooms.invite",surface="client"} 1`,
	} {
		if status != 200 || !strings.Contains(body, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	stale := newTestEnvWith(t, "pro", &envOptions{noList: true, noFetch: true})
	internal2 := httptest.NewServer(stale.p.InternalHandler())
	defer internal2.Close()
	resp, err := http.Get(internal2.URL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("readyz without a list: %d, want 503", resp.StatusCode)
	}
}

// A_25537: a domain missing from the cached list triggers one refetch of the list before the decision, so a
// domain added at the source since the last poll is admitted at once.
func TestA25537UnknownDomainRefetchesTheList(t *testing.T) {
	env := newTestEnv(t, "pro")
	env.up.AddUser("tok-alice", "@alice:hs1.tim.test")
	pki, _ := testPKI()
	// The source now has version 2 with a new domain; the proxy still holds version 1.
	jws, err := certs.SignFederationList(pki.signerKey, certs.AlgBP256R1, []*certs.Certificate{pki.signer}, 2,
		append(append([]certs.FederationDomain(nil), testDomains...), certs.FederationDomain{Domain: "new.tim.test", TelematikID: "1-new"}))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(env.cfg.FederationList.File, jws, 0o600); err != nil {
		t.Fatal(err)
	}
	status, body := env.do(t, "POST", "/_matrix/client/v3/rooms/!r:hs1.tim.test/invite", "tok-alice", map[string]any{"user_id": "@bob:new.tim.test"})
	if status != 200 {
		t.Fatalf("invite to a domain added at the source: %d %v, want 200 after the refetch", status, body)
	}
	if v := env.p.flist.Version(); v != 2 {
		t.Errorf("list version %d after the miss, want 2", v)
	}
	// A domain the source does not know either is still refused; the refetch is rate-limited, not repeated.
	status, _ = env.do(t, "POST", "/_matrix/client/v3/rooms/!r:hs1.tim.test/invite", "tok-alice", map[string]any{"user_id": "@eve:evil.test"})
	if status != 403 {
		t.Fatalf("unknown domain: %d, want 403", status)
	}
}

// Long-polls with a real timeout go through the hijacked path: the answer arrives intact, the connection
// closes after it, and client-supplied X-Forwarded-For is replaced, as on the ordinary path.
func TestLongPollPath(t *testing.T) {
	env := newTestEnv(t, "pro")
	env.up.AddUser("tok-alice", "@alice:hs1.tim.test")
	for _, tc := range []struct {
		name      string
		timeout   string
		wantClose bool
	}{
		{"a 30 s long-poll takes the hijacked path and closes the connection after the answer", "30000", true},
		{"a sync without waiting keeps the connection alive (ordinary path)", "0", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env.up.Reset()
			req, _ := http.NewRequest("GET", env.client.URL+"/_matrix/client/v3/sync?timeout="+tc.timeout, nil)
			req.Header.Set("Authorization", "Bearer tok-alice")
			req.Header.Set("X-Forwarded-For", "203.0.113.9")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || string(body) != "{}" {
				t.Fatalf("%d %q, want the upstream's 200 {}", resp.StatusCode, body)
			}
			if resp.Close != tc.wantClose {
				t.Errorf("connection close %v, want %v", resp.Close, tc.wantClose)
			}
			var got []string
			for _, r := range env.up.Requests() {
				if strings.Contains(r.RequestURI, "/sync") {
					got = append(got, r.Header.Get("X-Forwarded-For"))
				}
			}
			if len(got) != 1 || got[0] != "127.0.0.1" {
				t.Errorf("upstream saw X-Forwarded-For %q, want exactly [127.0.0.1]", got)
			}
		})
	}
	// The hijacked request is counted as such, and its answer by the homeserver's status.
	if n := counterValue(t, env.p, "timstack_long_poll_responses_total", map[string]string{"code": "200"}); n != 1 {
		t.Errorf("long-poll responses with 200: %v, want 1", n)
	}
	if n := counterValue(t, env.p, "timstack_http_requests_total", map[string]string{"route": "client.sync", "code": "hijacked"}); n != 1 {
		t.Errorf("requests counted as hijacked: %v, want 1", n)
	}
}

// A client that drops its long-poll (an app sent to the background, a network switch) ends the homeserver's
// request too, instead of leaving it open until the timeout while the client's next long-poll stacks up.
func TestLongPollOfAClientThatWentAwayEndsAtTheHomeserver(t *testing.T) {
	env := newTestEnv(t, "pro")
	env.up.AddUser("tok-alice", "@alice:hs1.tim.test")
	env.up.HoldLongPolls()
	conn, err := net.Dial("tcp", strings.TrimPrefix(env.client.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "GET /_matrix/client/v3/sync?timeout=30000 HTTP/1.1\r\nHost: hs1.tim.test\r\n"+
		"Authorization: Bearer tok-alice\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the long-poll to reach the homeserver", func() bool { return env.up.Saw("/sync") })
	if n := env.up.HeldLongPollsEnded(); n != 0 {
		t.Fatalf("%d long-polls ended before the client went away", n)
	}
	conn.Close()
	waitFor(t, "the homeserver's long-poll to end", func() bool { return env.up.HeldLongPollsEnded() == 1 })
	waitFor(t, "the long-poll to be counted as 499", func() bool {
		return counterValue(t, env.p, "timstack_long_poll_responses_total", map[string]string{"code": "499"}) == 1
	})
	if n := counterValue(t, env.p, "timstack_upstream_errors_total", nil); n != 0 {
		t.Errorf("a client going away counted %v upstream errors, want 0", n)
	}
}

// A client that gives up a request on the ordinary path (a short sync) is not a homeserver failure: nothing
// counts as an upstream error and the request is counted as 499.
func TestClientGivingUpIsNotAnUpstreamError(t *testing.T) {
	env := newTestEnv(t, "pro")
	env.up.AddUser("tok-alice", "@alice:hs1.tim.test")
	env.up.HoldLongPolls()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", env.client.URL+"/_matrix/client/v3/sync?timeout=500", nil)
	req.Header.Set("Authorization", "Bearer tok-alice")
	errc := make(chan error, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	waitFor(t, "the sync to reach the homeserver", func() bool { return env.up.Saw("/sync") })
	cancel()
	if err := <-errc; err == nil {
		t.Fatal("the cancelled request got an answer")
	}
	waitFor(t, "the request to be counted as 499", func() bool {
		return counterValue(t, env.p, "timstack_http_requests_total", map[string]string{"route": "client.sync", "code": "499"}) == 1
	})
	if n := counterValue(t, env.p, "timstack_upstream_errors_total", nil); n != 0 {
		t.Errorf("a client giving up counted %v upstream errors, want 0", n)
	}
}

// waitFor polls cond for up to 5 s (the long-poll itself would last 30 s).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// counterValue sums the counters of a metric family whose labels include want.
func counterValue(t *testing.T, p *Proxy, name string, want map[string]string) float64 {
	t.Helper()
	families, err := p.metrics.registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	metric:
		for _, m := range f.GetMetric() {
			have := map[string]string{}
			for _, l := range m.GetLabel() {
				have[l.GetName()] = l.GetValue()
			}
			for k, v := range want {
				if have[k] != v {
					continue metric
				}
			}
			sum += m.GetCounter().GetValue()
		}
	}
	return sum
}

// A join names its room only in the homeserver's answer when it goes by alias; the proxy still reads the
// joined room's state into its room index (for the ePA shared-room rules), for both join routes.
func TestJoinByAliasIndexesTheRoom(t *testing.T) {
	for _, path := range []string{"/_matrix/client/v3/join/%23praxis%3Ahs2.tim.test", "/_matrix/client/v3/join/!direct%3Ahs2.tim.test"} {
		t.Run(path, func(t *testing.T) {
			e := newTestEnv(t, "pro")
			e.up.AddUser("tok-alice", "@alice:hs1.tim.test")
			roomID := "!direct:hs2.tim.test"
			if strings.Contains(path, "%23") {
				roomID = "!aliased:hs2.tim.test"
				e.up.SetAlias("#praxis:hs2.tim.test", roomID)
			}
			e.up.SetRoomState(roomID, []any{
				map[string]any{"type": "m.room.create", "state_key": "", "sender": "@bob:hs2.tim.test", "event_id": "$c",
					"content": map[string]any{"room_version": "10", "creator": "@bob:hs2.tim.test"}},
				map[string]any{"type": "m.room.join_rules", "state_key": "", "sender": "@bob:hs2.tim.test", "event_id": "$j",
					"content": map[string]any{"join_rule": "invite"}},
				map[string]any{"type": "m.room.member", "state_key": "@alice:hs1.tim.test", "sender": "@alice:hs1.tim.test", "event_id": "$m",
					"content": map[string]any{"membership": "join"}},
			})
			if _, ok := e.p.rooms.Room(roomID); ok {
				t.Fatal("room known before the join")
			}
			status, body := e.do(t, "POST", path, "tok-alice", map[string]any{})
			if status != 200 || body["room_id"] != roomID {
				t.Fatalf("join: %d %v", status, body)
			}
			f, ok := e.p.rooms.Room(roomID)
			if !ok || f.CreatorDomain != "hs2.tim.test" || f.JoinRule != "invite" {
				t.Fatalf("room index after the join: %+v %v", f, ok)
			}
		})
	}
}

// The proxy forwards the client's own Accept-Encoding and nothing else: Go's transport would otherwise ask
// the homeserver for gzip on every request and unpack it again, so Synapse would spend its single core
// compressing answers nobody asked to be compressed.
func TestUpstreamSeesTheClientsAcceptEncoding(t *testing.T) {
	env := newTestEnv(t, "pro")
	env.up.AddUser("tok-alice", "@alice:hs1.tim.test")
	for _, ae := range []string{"", "gzip, deflate"} {
		env.up.Reset()
		req, _ := http.NewRequest("GET", env.client.URL+"/_matrix/client/v3/sync?timeout=0", nil)
		req.Header.Set("Authorization", "Bearer tok-alice")
		if ae != "" {
			req.Header.Set("Accept-Encoding", ae)
		}
		tr := &http.Transport{DisableCompression: true}
		resp, err := (&http.Client{Transport: tr}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		got := env.up.Requests()
		if len(got) != 1 || got[0].Header.Get("Accept-Encoding") != ae {
			t.Fatalf("client sent Accept-Encoding %q, homeserver saw %q", ae, got[0].Header.Get("Accept-Encoding"))
		}
	}
	// Answers the proxy reads or rewrites before the client sees them are asked for uncompressed.
	for _, path := range []string{"/_matrix/client/versions", "/_matrix/client/v3/user/@alice:hs1.tim.test/account_data/de.gematik.tim.account.permissionconfig.pro.v1"} {
		env.up.Reset()
		req, _ := http.NewRequest("GET", env.client.URL+path, nil)
		req.Header.Set("Authorization", "Bearer tok-alice")
		req.Header.Set("Accept-Encoding", "gzip")
		resp, err := (&http.Client{Transport: &http.Transport{DisableCompression: true}}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		got := env.up.Requests()
		if resp.StatusCode != 200 || len(got) == 0 {
			t.Fatalf("%s: %d, %d requests", path, resp.StatusCode, len(got))
		}
		// The proxy's own calls with the user's token (whoami) ask for no compression either.
		for _, g := range got {
			if g.Header.Get("Accept-Encoding") != "" {
				t.Errorf("%s: homeserver saw Accept-Encoding %q on %s, want none", path, g.Header.Get("Accept-Encoding"), g.RequestURI)
			}
		}
	}
}
