package registration

import (
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzParseMXID: user IDs come from URL paths and JSON bodies of untrusted callers.
func FuzzParseMXID(f *testing.F) {
	for _, s := range []string{"@admin:hs1.tim.test", "@a:[::1]:8448", "@:x", "admin", "@a:b:c", "@ä:x.test", "@a:EXAMPLE.test", "@a:x.test:99999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		local, server, err := ParseMXID(s)
		if err != nil {
			return
		}
		if "@"+local+":"+server != s {
			t.Fatalf("%q parsed to %q %q", s, local, server)
		}
		if validServerName(server) != nil || local == "" || strings.Contains(local, ":") {
			t.Fatalf("%q accepted with invalid parts", s)
		}
	})
}

// FuzzParseServiceRequest: the messenger-service body is the Org-Admin's untrusted input.
func FuzzParseServiceRequest(f *testing.F) {
	for _, s := range []string{`{"domain":"hs1.tim.test"}`, `{"domain":"k.test","isInsurance":true,"ik":["109500969"]}`,
		`{"domain":"a.test","redirectDomains":["B.test"," c.test "]}`, `{"domain":1}`, `{}`, `{"domain":"a.test"} x`} {
		f.Add(s, "pro")
		f.Add(s, "epa")
	}
	f.Fuzz(func(t *testing.T, body, variant string) {
		r := httptest.NewRequest("POST", "/", strings.NewReader(body))
		req, err := parseServiceRequest(r, variant)
		if err != nil {
			return
		}
		if validServerName(req.Domain) != nil {
			t.Fatalf("accepted domain %q", req.Domain)
		}
		for _, d := range req.RedirectDomains {
			if validServerName(d) != nil {
				t.Fatalf("accepted redirect domain %q", d)
			}
		}
		if variant == "pro" && req.IsInsurance || variant == "epa" && !req.IsInsurance {
			t.Fatalf("variant %s accepted isInsurance=%v", variant, req.IsInsurance)
		}
	})
}

// FuzzParseConfig: strict decoding must never panic and must not accept an invalid variant.
func FuzzParseConfig(f *testing.F) {
	f.Add("variant: pro\n")
	f.Add("listen: ':1'\nvariant: epa\nfederation_list: {retries: -1}\n")
	f.Add("unknown: 1\n")
	f.Fuzz(func(t *testing.T, raw string) {
		c, err := ParseConfig([]byte(raw))
		if err == nil && c.Variant != "pro" && c.Variant != "epa" {
			t.Fatalf("accepted variant %q", c.Variant)
		}
	})
}
