package forward

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseAuthority(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name        string
		in          string
		defaultPort int
		want        Target
		wantErr     bool
	}{
		{"federation authority parses", "hs2.tim.test:8448", 0, Target{"hs2.tim.test", 8448}, false},
		{"host is lower-cased and loses its trailing dot", "HS2.Tim.Test.:443", 0, Target{"hs2.tim.test", 443}, false},
		{"IPv4 literal parses", "192.0.2.1:8448", 0, Target{"192.0.2.1", 8448}, false},
		{"IPv6 literal is canonicalised", "[2001:DB8:0::1]:443", 0, Target{"2001:db8::1", 443}, false},
		{"missing port takes the default", "push.tim.test", 80, Target{"push.tim.test", 80}, false},
		{"bracketed IPv6 without port takes the default", "[::1]", 80, Target{"::1", 80}, false},
		{"missing port is refused for CONNECT", "hs2.tim.test", 0, Target{}, true},
		{"empty port is refused", "hs2.tim.test:", 0, Target{}, true},
		{"port with a sign is refused", "hs2.tim.test:+443", 0, Target{}, true},
		{"port zero is refused", "hs2.tim.test:0", 0, Target{}, true},
		{"port above 65535 is refused", "hs2.tim.test:65536", 0, Target{}, true},
		{"userinfo is refused", "a@hs2.tim.test:443", 0, Target{}, true},
		{"percent-encoding is refused", "hs2%2etim.test:443", 0, Target{}, true},
		{"underscore is refused", "a_b.test:443", 0, Target{}, true},
		{"empty label is refused", "a..test:443", 0, Target{}, true},
		{"label with a leading hyphen is refused", "-a.test:443", 0, Target{}, true},
		{"numeric name that is no IP is refused", "256.1.1.1:443", 0, Target{}, true},
		{"zoned IPv6 is refused", "[fe80::1%eth0]:443", 0, Target{}, true},
		{"unbracketed IPv6 is refused", "::1", 80, Target{}, true},
		{"IPv4 in brackets is refused", "[127.0.0.1]:443", 0, Target{}, true},
		{"64-character label is refused", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.test:443", 0, Target{}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := parseAuthority(tc.in, tc.defaultPort)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestOriginForm(t *testing.T) {
	t.Parallel()
	cases := map[string]string{
		"http://push.test/_matrix/push/v1/notify?a=%2f": "/_matrix/push/v1/notify?a=%2f",
		"http://push.test":     "/",
		"http://push.test?x=1": "/?x=1",
		"/already/origin":      "/already/origin",
	}
	for in, want := range cases {
		if got := originForm(in); got != want {
			t.Errorf("originForm(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzParseAuthority checks that accepted authorities are canonical: rendering and re-parsing is stable, and
// the CA can mint for every accepted host.
func FuzzParseAuthority(f *testing.F) {
	for _, s := range []string{"hs2.tim.test:8448", "[::1]:443", "192.0.2.1:1", "a@b:1", "x:+1", "[fe80::1%25x]:1", "A.B.:65535", "1.2.3:4"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := parseAuthority(s, 0)
		if err != nil {
			return
		}
		again, err := parseAuthority(got.String(), 0)
		if err != nil || again != got {
			t.Fatalf("%q → %v → %v (%v)", s, got, again, err)
		}
		if got.Port < 1 || got.Port > 65535 {
			t.Fatalf("port %d", got.Port)
		}
		if h, err := normaliseHost(got.Host); err != nil || h != got.Host {
			t.Fatalf("host %q not canonical: %q %v", got.Host, h, err)
		}
	})
}
