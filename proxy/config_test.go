package proxy

import (
	"os"
	"strings"
	"testing"
)

// The committed example configuration must stay loadable: it documents every key.
func TestConfigExampleIsValid(t *testing.T) {
	raw, err := os.ReadFile("config.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := ParseConfig(raw)
	if err != nil {
		t.Fatalf("config.example.yaml: %v", err)
	}
	if cfg.ServerName != "hs1.tim.test" || cfg.FederationList.Keeper.MaxAge.Hours() != 72 {
		t.Errorf("example not read as written: %+v", cfg)
	}
}

func TestConfigErrorsNameTheKey(t *testing.T) {
	raw, err := os.ReadFile("config.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, from, to, wantKey string
	}{
		{"an unknown key is refused", "variant: pro", "variant: pro\nvariantt: pro", "variantt"},
		{"a bad variant names variant", "variant: pro ", "variant: pr0 ", "variant"},
		{"a bad server name names server_name", "server_name: hs1.tim.test", "server_name: \"hs1 tim\"", "server_name"},
		{"a bad list source names federation_list.source", "source: regservice", "source: ftp", "federation_list.source"},
		{"a bad default setting names permissions.default.default_setting", "default_setting: allow all", "default_setting: allow some", "permissions.default.default_setting"},
		{"a missing federation TLS key names listen.federation_tls", "    key_file: /etc/timstack/federation.key\n", "", "listen.federation_tls"},
		{"a server admin of another server names server_admins", `server_admins: ["@admin:hs1.tim.test"]`, `server_admins: ["@admin:hs2.tim.test"]`, "server_admins[0]"},
		{"bad OCSP policy names federation_list.ocsp", "ocsp: require", "ocsp: maybe", "federation_list.ocsp"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			changed := strings.Replace(string(raw), tc.from, tc.to, 1)
			if changed == string(raw) {
				t.Fatalf("test setup: %q not found in the example", tc.from)
			}
			_, err := ParseConfig([]byte(changed))
			if err == nil || !strings.Contains(err.Error(), tc.wantKey) {
				t.Fatalf("error %v does not name %q", err, tc.wantKey)
			}
		})
	}
}
