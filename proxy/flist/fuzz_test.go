package flist

import (
	"strings"
	"testing"
)

func FuzzParseMeta(f *testing.F) {
	f.Add([]byte(`{"version":3,"last_verified_contact":"2026-03-01T12:00:00Z","fetched_at":"2026-03-01T11:00:00Z"}`))
	f.Add([]byte(`{"version":-1,"last_verified_contact":"2026-03-01T12:00:00Z"}`))
	f.Add([]byte(`{"version":3,"extra":true}`))
	f.Add([]byte(`{"version":3,"last_verified_contact":"2026-03-01T12:00:00Z"} {}`))
	f.Add([]byte(``))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := parseMeta(data)
		if err != nil {
			if m != (meta{}) {
				t.Fatal("an error came with a non-zero meta")
			}
			return
		}
		if m.Version < 0 || m.LastVerifiedContact.IsZero() {
			t.Fatalf("accepted %+v", m)
		}
	})
}

func FuzzParseTokenResponse(f *testing.F) {
	f.Add([]byte(`{"access_token":"pt-1","client_id":"x","token_type":"Bearer","expires_in":86400}`))
	f.Add([]byte(`{"access_token":"a b","token_type":"bearer"}`))
	f.Add([]byte(`{"access_token":"t","token_type":"mac","expires_in":-5}`))
	f.Add([]byte(`{"access_token":"t","expires_in":99999999999}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		tok, err := parseTokenResponse(data)
		if err != nil {
			return
		}
		if tok.AccessToken == "" || strings.ContainsAny(tok.AccessToken, " \t\r\n") {
			t.Fatalf("accepted token %q", tok.AccessToken)
		}
		if tok.ExpiresIn < 0 || tok.ExpiresIn > 7*24*3600 {
			t.Fatalf("accepted lifetime %d", tok.ExpiresIn)
		}
	})
}
