package matrixopenid

import (
	"context"
	"strings"
	"testing"
)

// FuzzParseUserInfo: any answer body either yields a sub that is a valid MXID or an error, never a panic.
func FuzzParseUserInfo(f *testing.F) {
	for _, s := range []string{
		`{"sub":"@alice:hs1.test"}`,
		`{"sub":"@alice:[::1]:8448","extra":true}`,
		`{"sub":null}`, `{"sub":1}`, `null`, `[]`, `{}`, `{"sub":"@:x"}`, `{"sub":"@a:b:99999"}`,
		`{"sub":"@a\u0000b:hs.test"}`, "\xff\xfe",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		sub, err := parseUserInfo(body)
		if err != nil {
			if sub != "" {
				t.Fatalf("sub %q with error %v", sub, err)
			}
			return
		}
		local, server, err := ParseMXID(sub)
		if err != nil || local == "" || server == "" || !strings.HasPrefix(sub, "@") {
			t.Fatalf("accepted sub %q does not parse: %v", sub, err)
		}
	})
}

// FuzzParseWellKnown: a delegation is either refused or a host and port that rebuild a valid server name.
func FuzzParseWellKnown(f *testing.F) {
	for _, s := range []string{
		`{"m.server":"fed.example.de:443"}`, `{"m.server":"fed.example.de"}`, `{"m.server":"[2001:db8::1]:8448"}`,
		`{"m.server":"1.2.3.4"}`, `{"m.server":""}`, `{"m.server":"a:0"}`, `{"m.server":"a:65536"}`,
		`{"m.server":"a b"}`, `{"m.server":"[::1"}`, `{"m.server":"[1.2.3.4]"}`, `{}`, `nope`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		host, port, err := parseWellKnown(body)
		if err != nil {
			return
		}
		if host == "" || port < 0 || port > 65535 {
			t.Fatalf("accepted host %q port %d", host, port)
		}
		v := &Validator{defaultPort: MatrixFederationPort}
		u := v.hostURL(host, port)
		if !strings.HasPrefix(u, "https://") || strings.ContainsAny(u[len("https://"):], "/?#@ ") {
			t.Fatalf("base URL %q from host %q port %d", u, host, port)
		}
	})
}

// FuzzValidateServerName: whatever server name a caller passes, an unlisted one never reaches the network.
func FuzzValidateServerName(f *testing.F) {
	for _, s := range []string{"hs1.test", "evil.test", "HS1.TEST", "127.0.0.1", "[::1]:80", "a/b", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, server string) {
		v, err := NewValidator(Config{
			Federated: func(s string) bool { return s == "hs1.test" },
			Resolve: func(_ context.Context, s string) (string, error) {
				if s != "hs1.test" {
					t.Errorf("resolver reached for unlisted %q", s)
				}
				return "http://127.0.0.1:1", nil // nothing listens: the call fails fast
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		_, _ = v.Validate(context.Background(), "tok", server, "")
	})
}
