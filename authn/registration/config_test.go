package registration

import (
	"context"
	"strings"
	"testing"
	"time"
)

const baseConfig = `
public_url: https://reg.tim.test
database: reg.db
directory: {url: https://vzd.test, client_id: reg, client_secret_file: secret}
federation_list: {trust_dir: trust}
signer: {cert_file: c.pem, key_file: k.pem}
idp: {issuer: https://idp.test, client_id: reg, redirect_uri: https://reg.tim.test/registration/v1/callback, trust_dir: trust}
`

func TestParseConfig(t *testing.T) {
	c, err := ParseConfig([]byte(baseConfig))
	if err != nil {
		t.Fatal(err)
	}
	if c.Variant != "pro" || c.Listen != ":8090" || c.FederationList.Interval != time.Hour || c.FederationList.RetryInterval != 5*time.Minute ||
		*c.FederationList.Retries != 3 || c.FederationList.MaxAge != 72*time.Hour || c.FederationCheck.Interval != 24*time.Hour ||
		c.FederationCheck.DeleteAfter != 30*24*time.Hour || c.Signer.TokenLifetime != 5*time.Minute || c.SessionLifetime != 8*time.Hour ||
		c.Directory.TokenURL != "https://vzd.test/auth/realms/TI-Provider/protocol/openid-connect/token" ||
		c.Directory.OwnerAuthenticateURL != "https://vzd.test/owner-authenticate" {
		t.Fatalf("defaults: %+v", c)
	}
	cases := []struct {
		name  string
		extra string
		field string
	}{
		{"an unknown variant", "variant: both\n", "variant"},
		{"an unknown key", "colour: blue\n", "colour"},
		{"a bad listen address", "listen: nowhere\n", "listen"},
		{"a negative retry count", "federation_list: {trust_dir: t, retries: -1}\n", "federation_list.retries"},
		{"a homeserver that is no server name", "information: {homeservers: [\"Bad Name\"]}\n", "information.homeservers[0]"},
		{"a RegService token living a day", "signer: {cert_file: c, key_file: k, token_lifetime: 24h}\n", "signer.token_lifetime"},
		{"an unknown log level", "log_level: loud\n", "log_level"},
		{"plain HTTP in production", "idp: {issuer: http://idp.test, client_id: r, redirect_uri: https://r.test/cb, trust_dir: t, production: true}\n", "idp.issuer: must be https"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			raw := baseConfig
			// A section given again replaces the base one (yaml.v3 refuses duplicate keys).
			key := strings.SplitN(tc.extra, ":", 2)[0]
			lines := strings.Split(raw, "\n")
			kept := lines[:0]
			for _, l := range lines {
				if !strings.HasPrefix(l, key+":") {
					kept = append(kept, l)
				}
			}
			raw = strings.Join(kept, "\n") + tc.extra
			_, err := ParseConfig([]byte(raw))
			if err == nil || !strings.Contains(err.Error(), tc.field) {
				t.Fatalf("err %v, want it to name %s", err, tc.field)
			}
		})
	}
}

func TestFederatedFollowsTheVerifiedList(t *testing.T) {
	e := newEnv(t, "pro")
	orgAdminWithMXID(t, e) // registers hs1.tim.test and refreshes
	cases := []struct {
		name   string
		server string
		after  time.Duration
		want   bool
	}{
		{"a listed domain is federated", "hs1.tim.test", 0, true},
		{"case does not matter", "HS1.tim.test", 0, true},
		{"an unlisted domain is not", "evil.test", 0, false},
		{"nothing is federated once the list is outdated", "hs1.tim.test", 73 * time.Hour, false},
	}
	for _, tc := range cases {
		e.clock.Add(tc.after)
		if got := e.svc.Federated(tc.server); got != tc.want {
			t.Errorf("%s: %v", tc.name, got)
		}
	}
	if err := e.svc.Keeper().Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !e.svc.Federated("hs1.tim.test") {
		t.Error("federated again after contact")
	}
}

func TestExampleConfigIsValid(t *testing.T) {
	c, err := LoadConfig("config.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !c.IDP.Production || c.Variant != "pro" || len(c.Information.Homeservers) != 1 {
		t.Fatalf("example: %+v", c)
	}
}
