package synapse

import (
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestRegistrationMAC(t *testing.T) {
	// expected values computed with Python's hmac/hashlib, the way Synapse verifies them
	tests := []struct {
		name  string
		admin bool
		user  string
		want  string
	}{
		{"an admin registration MACs the flag admin", true, "alice", "1b33c47ca2aa23285bc306d9c6fd1694f93d429c"},
		{"a normal registration MACs the flag notadmin", false, "bob", "1176abe0280484b06457ccfab5940ad5a7df6852"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := registrationMAC("sekrit", "abcnonce", tt.user, "pw", tt.admin); got != tt.want {
				t.Errorf("MAC = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestParseSigningKey(t *testing.T) {
	// public key of the seed 00 01 .. 1f, computed with PyNaCl (what Synapse uses)
	const seedB64 = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"
	const wantPub = "03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8"
	tests := []struct {
		name    string
		content string
		wantID  string
		wantErr bool
	}{
		{"a Synapse key line parses", "ed25519 a_AbC1 " + seedB64 + "\n", "a_AbC1", false},
		{"padded base64 is tolerated", "ed25519 a_AbC1 " + seedB64 + "=\n", "a_AbC1", false},
		{"only the first of several keys counts", "ed25519 a_one " + seedB64 + "\ned25519 a_two " + seedB64 + "\n", "a_one", false},
		{"another algorithm is rejected", "curve25519 a_AbC1 " + seedB64, "", true},
		{"a missing version is rejected", "ed25519 " + seedB64, "", true},
		{"a short seed is rejected", "ed25519 a_AbC1 AAECAwQF", "", true},
		{"garbage base64 is rejected", "ed25519 a_AbC1 !!!!", "", true},
		{"an empty file is rejected", "", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, priv, err := parseSigningKey(tt.content)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("parseSigningKey(%q) succeeded, want error", tt.content)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if id != tt.wantID {
				t.Errorf("version = %q, want %q", id, tt.wantID)
			}
			if got := hex.EncodeToString(priv.Public().(ed25519.PublicKey)); got != wantPub {
				t.Errorf("public key = %s, want %s", got, wantPub)
			}
		})
	}
}

func FuzzParseSigningKey(f *testing.F) {
	f.Add("ed25519 a_AbC1 AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8\n")
	f.Add("ed25519 a_x ====")
	f.Add("")
	f.Fuzz(func(t *testing.T, content string) {
		id, priv, err := parseSigningKey(content)
		if err == nil && (id == "" || len(priv) != 64) {
			t.Fatalf("accepted %q with version %q and %d-byte key", content, id, len(priv))
		}
	})
}

func TestEnsureSigningKeyCreatesOnceAndKeepsIt(t *testing.T) {
	path := filepath.Join(t.TempDir(), "signing.key")
	id1, pub1, err := ensureSigningKey(path)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	fields := strings.Fields(string(data))
	if len(fields) != 3 || fields[0] != "ed25519" || fields[1] != id1 || !strings.HasPrefix(id1, "a_") || len(id1) != 6 {
		t.Fatalf("key file %q does not have Synapse's format", data)
	}
	if strings.HasSuffix(fields[2], "=") {
		t.Errorf("seed %q is padded; Synapse writes unpadded base64", fields[2])
	}
	id2, pub2, err := ensureSigningKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if id1 != id2 || !pub1.Equal(pub2) {
		t.Errorf("second call changed the key: %s/%x vs %s/%x", id1, pub1, id2, pub2)
	}
}

func TestMergeInto(t *testing.T) {
	tests := []struct {
		name     string
		dst, src map[string]any
		want     map[string]any
	}{
		{
			"nested maps merge key by key",
			map[string]any{"rc_joins": map[string]any{"local": 1, "remote": 2}},
			map[string]any{"rc_joins": map[string]any{"remote": 3}},
			map[string]any{"rc_joins": map[string]any{"local": 1, "remote": 3}},
		},
		{
			"a nil value removes the key",
			map[string]any{"ip_range_whitelist": []any{"127.0.0.0/8"}, "x": 1},
			map[string]any{"ip_range_whitelist": nil},
			map[string]any{"x": 1},
		},
		{
			"a scalar replaces a map",
			map[string]any{"a": map[string]any{"b": 1}},
			map[string]any{"a": "flat"},
			map[string]any{"a": "flat"},
		},
		{
			"new keys are added",
			map[string]any{},
			map[string]any{"modules": []any{"m"}},
			map[string]any{"modules": []any{"m"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mergeInto(tt.dst, tt.src)
			if diff := cmp.Diff(tt.want, tt.dst); diff != "" {
				t.Errorf("merge result (-want +got):\n%s", diff)
			}
		})
	}
}

func TestHomeserverConfigCarriesTheTIMSettings(t *testing.T) {
	cfg := Config{
		ServerName: "hs1.test", Addr: "127.0.0.1:8008", DataDir: "/d", Venv: "/v",
		RegistrationSharedSecret: "s", PublicBaseURL: "https://hs1.test/",
		FederationCAFile: "/ca.pem", AppServiceFiles: []string{"/as.yaml"},
		Extra: map[string]any{"url_preview_enabled": nil, "rc_message": map[string]any{"per_second": 1}},
	}
	out, err := homeserverConfig(cfg, 8008)
	if err != nil {
		t.Fatal(err)
	}
	var hs map[string]any
	if err := json.Unmarshal(out, &hs); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"server_name":                                 "hs1.test",
		"public_baseurl":                              "https://hs1.test/",
		"report_stats":                                false,
		"enable_registration":                         false,
		"allow_guest_access":                          false,
		"require_auth_for_profile_requests":           true,
		"allow_public_rooms_over_federation":          false,
		"encryption_enabled_by_default_for_room_type": "all",
		"enable_authenticated_media":                  false,
		"federation_verify_certificates":              true,
		"registration_shared_secret":                  "s",
		"bcrypt_rounds":                               float64(4),
	}
	for k, v := range want {
		if !cmp.Equal(hs[k], v) {
			t.Errorf("%s = %#v, want %#v", k, hs[k], v)
		}
	}
	if _, ok := hs["url_preview_enabled"]; ok {
		t.Error("Extra with nil did not remove url_preview_enabled")
	}
	rc := hs["rc_message"].(map[string]any)
	if rc["per_second"] != float64(1) || rc["burst_count"] != float64(9999) {
		t.Errorf("rc_message = %v, want per_second from Extra and burst_count kept", rc)
	}
	if got := hs["federation_custom_ca_list"]; !cmp.Equal(got, []any{"/ca.pem"}) {
		t.Errorf("federation_custom_ca_list = %v", got)
	}
	if got := hs["app_service_config_files"]; !cmp.Equal(got, []any{"/as.yaml"}) {
		t.Errorf("app_service_config_files = %v", got)
	}
	l := hs["listeners"].([]any)[0].(map[string]any)
	if !cmp.Equal(l["bind_addresses"], []any{"127.0.0.1"}) || l["x_forwarded"] != true || l["port"] != float64(8008) {
		t.Errorf("listener = %v", l)
	}
	if tk := hs["trusted_key_servers"].([]any); len(tk) != 0 {
		t.Errorf("trusted_key_servers = %v, want empty (no matrix.org calls)", tk)
	}
}

// Synapse runs in DataDir and reads the paths in homeserver.yaml from there: every path must be absolute
// by then, and the caller's configuration stays untouched.
func TestAbsolutePaths(t *testing.T) {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	as := []string{"stack/as.yaml", "/etc/as.yaml"}
	cfg := Config{DataDir: "data/demo/hs1", Venv: "/opt/venv", Template: "t.db", FederationCAFile: "ca.pem", AppServiceFiles: as}
	if err := absolutePaths(&cfg); err != nil {
		t.Fatal(err)
	}
	want := Config{DataDir: filepath.Join(wd, "data/demo/hs1"), Venv: "/opt/venv", Template: filepath.Join(wd, "t.db"),
		FederationCAFile: filepath.Join(wd, "ca.pem"), AppServiceFiles: []string{filepath.Join(wd, "stack/as.yaml"), "/etc/as.yaml"}}
	if diff := cmp.Diff(want, cfg); diff != "" {
		t.Errorf("(-want +got)\n%s", diff)
	}
	if as[0] != "stack/as.yaml" {
		t.Errorf("the caller's AppServiceFiles changed: %q", as)
	}
	empty := Config{DataDir: "d", Venv: "v"}
	if err := absolutePaths(&empty); err != nil || empty.Template != "" || empty.FederationCAFile != "" {
		t.Errorf("empty paths must stay empty: %+v, %v", empty, err)
	}
}

func TestLoopbackAddr(t *testing.T) {
	tests := []struct {
		name    string
		addr    string
		port    int
		wantErr bool
	}{
		{"IPv4 loopback with a port is accepted", "127.0.0.1:8008", 8008, false},
		{"port zero means pick one", "127.0.0.1:0", 0, false},
		{"another loopback address is accepted", "127.0.0.2:1", 1, false},
		{"a wildcard address is refused", "0.0.0.0:8008", 0, true},
		{"a routable address is refused", "192.168.1.1:8008", 0, true},
		{"a host name is refused", "localhost:8008", 0, true},
		{"IPv6 loopback is refused", "[::1]:8008", 0, true},
		{"a missing port is refused", "127.0.0.1", 0, true},
		{"a port out of range is refused", "127.0.0.1:70000", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, port, err := loopbackAddr(tt.addr)
			if (err != nil) != tt.wantErr {
				t.Fatalf("loopbackAddr(%q) error = %v, wantErr %v", tt.addr, err, tt.wantErr)
			}
			if port != tt.port {
				t.Errorf("port = %d, want %d", port, tt.port)
			}
		})
	}
}

func TestProcessEnv(t *testing.T) {
	parent := []string{"PATH=/bin", "http_proxy=http://corp:3128", "HTTPS_PROXY=http://corp:3128", "No_Proxy=x"}
	tests := []struct {
		name  string
		proxy string
		want  []string
	}{
		{"inherited proxies are dropped when none is configured", "", []string{"PATH=/bin"}},
		{
			"a configured proxy is set in both spellings with loopback exempt",
			"http://127.0.0.1:3129",
			[]string{
				"PATH=/bin", "https_proxy=http://127.0.0.1:3129", "HTTPS_PROXY=http://127.0.0.1:3129",
				"no_proxy=127.0.0.1,localhost,::1", "NO_PROXY=127.0.0.1,localhost,::1",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := processEnv(slices.Clone(parent), tt.proxy); !cmp.Equal(got, tt.want) {
				t.Errorf("env = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestModuleRootFindsTheNearestGoMod(t *testing.T) {
	root := t.TempDir()
	deep := filepath.Join(root, "a", "b")
	if err := os.MkdirAll(deep, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "go.mod"), []byte("module x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := moduleRoot(deep)
	if err != nil || got != root {
		t.Fatalf("moduleRoot = %q, %v; want %q", got, err, root)
	}
}
