package appservice

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestNewRegistration(t *testing.T) {
	t.Parallel()
	r, err := NewRegistration("tim.example.org", "http://proxy:8009")
	if err != nil {
		t.Fatal(err)
	}
	r2, err := NewRegistration("tim.example.org", "http://proxy:8009")
	if err != nil {
		t.Fatal(err)
	}
	hex64 := regexp.MustCompile(`^[0-9a-f]{64}$`)
	for _, tok := range []string{r.ASToken, r.HSToken} {
		if !hex64.MatchString(tok) {
			t.Errorf("token %q is not 256 bits of hex", tok)
		}
	}
	if r.ASToken == r.HSToken || r.ASToken == r2.ASToken || r.HSToken == r2.HSToken {
		t.Error("tokens repeat")
	}
	if len(r.Namespaces.Users) != 1 || r.Namespaces.Users[0].Exclusive {
		t.Fatalf("users namespace = %+v, want one non-exclusive entry", r.Namespaces.Users)
	}
	re := regexp.MustCompile(r.Namespaces.Users[0].Regex)
	for id, want := range map[string]bool{
		"@alice:tim.example.org":          true,
		"@timstack-proxy:tim.example.org": true,
		"@alice:tim.example.org.evil":     false,
		"@alice:timXexample.org":          false,
		"x@alice:tim.example.org":         false,
		"@alice:other.example":            false,
	} {
		if re.MatchString(id) != want {
			t.Errorf("namespace match %s = %v, want %v", id, !want, want)
		}
	}
	if _, err := NewRegistration("bad/name", "http://proxy:8009"); err == nil {
		t.Error("a server name with a slash was accepted")
	}
	if _, err := NewRegistration("tim.example.org", "proxy:8009"); err == nil {
		t.Error("a URL without scheme was accepted")
	}
}

func TestRegistrationYAMLRoundTrip(t *testing.T) {
	t.Parallel()
	r, err := NewRegistration("tim.example.org", "http://proxy:8009")
	if err != nil {
		t.Fatal(err)
	}
	y, err := r.YAML()
	if err != nil {
		t.Fatal(err)
	}
	want := "id: timstack-proxy\n" +
		"url: http://proxy:8009\n" +
		"as_token: " + r.ASToken + "\n" +
		"hs_token: " + r.HSToken + "\n" +
		"sender_localpart: timstack-proxy\n" +
		"namespaces:\n" +
		"  users:\n" +
		"    - exclusive: false\n" +
		"      regex: ^@.*:tim\\.example\\.org$\n" +
		"  aliases: []\n" +
		"  rooms: []\n" +
		"rate_limited: false\n" +
		"receive_ephemeral: false\n"
	if d := cmp.Diff(want, string(y)); d != "" {
		t.Errorf("YAML (-want +got):\n%s", d)
	}
	path := filepath.Join(t.TempDir(), "proxy.yaml")
	if err := os.WriteFile(path, y, 0o600); err != nil {
		t.Fatal(err)
	}
	back, err := LoadRegistration(path)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(r, back); d != "" {
		t.Errorf("round trip (-want +got):\n%s", d)
	}
}

func TestParseRegistrationIsStrict(t *testing.T) {
	t.Parallel()
	good := `id: timstack-proxy
url: http://proxy:8009
as_token: 0123456789abcdef0123456789abcdef0123456789abcdef
hs_token: fedcba9876543210fedcba9876543210fedcba9876543210
sender_localpart: timstack-proxy
namespaces:
  users:
    - exclusive: false
      regex: '@.*:tim\.example\.org'
  aliases: []
  rooms: []
rate_limited: false
`
	if _, err := ParseRegistration([]byte(good)); err != nil {
		t.Fatalf("a hand-written registration in Synapse's format was refused: %v", err)
	}
	tests := []struct{ name, yaml, wantInErr string }{
		{"an unknown key is refused", good + "group_id: '+x:tim.example.org'\n", "group_id"},
		{"a missing url is refused", strings.Replace(good, "url: http://proxy:8009\n", "", 1), "url"},
		{"a short token is refused", strings.Replace(good, "as_token: 0123456789abcdef0123456789abcdef0123456789abcdef", "as_token: short", 1), "as_token"},
		{"equal tokens are refused", strings.Replace(good, "fedcba9876543210fedcba9876543210fedcba9876543210", "0123456789abcdef0123456789abcdef0123456789abcdef", 1), "must differ"},
		{"a broken namespace regex is refused", strings.Replace(good, `'@.*:tim\.example\.org'`, `'@(.*'`, 1), "namespaces.users[0].regex"},
		{"a second document is refused", good + "---\nid: other\n", "more than one"},
		{"an invalid sender localpart is refused", strings.Replace(good, "sender_localpart: timstack-proxy", "sender_localpart: 'Proxy Bot'", 1), "sender_localpart"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := ParseRegistration([]byte(tc.yaml))
			if err == nil || !strings.Contains(err.Error(), tc.wantInErr) {
				t.Errorf("err = %v, want one mentioning %q", err, tc.wantInErr)
			}
		})
	}
}
