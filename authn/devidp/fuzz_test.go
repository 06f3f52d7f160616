package devidp

import (
	"crypto/ecdsa"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

// fuzzIDP is an IDP without a server: the fuzz targets call the handler directly.
func fuzzIDP(f *testing.F) *IDP {
	f.Helper()
	keys, err := EmbeddedTestKeys()
	if err != nil {
		f.Fatal(err)
	}
	trust, err := EmbeddedTestTrust()
	if err != nil {
		f.Fatal(err)
	}
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	i, err := New(Config{Issuer: "http://127.0.0.1:8580", Keys: keys, CardTrust: trust, Now: func() time.Time { return now },
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		f.Fatal(err)
	}
	return i
}

// FuzzSignedChallenge feeds arbitrary signed_challenge values to POST /auth: it must never panic and
// never hand out a code for something that is not a card-signed challenge of ours.
func FuzzSignedChallenge(f *testing.F) {
	i := fuzzIDP(f)
	h := i.Handler()
	enc := i.keys.IDPEnc.Cert.PublicKey
	seed, err := EncryptSignedChallenge(enc.(*ecdsa.PublicKey), []byte("a.b.c"), 1)
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{"", string(seed), "a.b.c.d.e", "eyJhbGciOiJFQ0RILUVTIn0....", strings.Repeat("A", 100)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, signed string) {
		req := httptest.NewRequest(http.MethodPost, PathAuth, strings.NewReader(url.Values{"signed_challenge": {signed}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if loc := rec.Header().Get("Location"); strings.Contains(loc, "code=") {
			t.Fatalf("code issued for %q", signed)
		}
	})
}

// FuzzTokenRequest feeds arbitrary codes and key_verifiers to POST /token: never a panic, never tokens.
func FuzzTokenRequest(f *testing.F) {
	i := fuzzIDP(f)
	h := i.Handler()
	code, err := encryptNJWT(i.codeKey, []byte("a.b.c"), 1)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(string(code), "x")
	f.Add("", "")
	f.Add("a.b.c.d.e", "a.b.c.d.e")
	f.Fuzz(func(t *testing.T, code, kv string) {
		form := url.Values{"grant_type": {"authorization_code"}, "client_id": {"c"}, "code": {code}, "redirect_uri": {"http://127.0.0.1/cb"}, "key_verifier": {kv}}
		req := httptest.NewRequest(http.MethodPost, PathToken, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code == http.StatusOK {
			t.Fatalf("tokens issued for code %q", code)
		}
	})
}

// FuzzParseKeyVerifier checks the key_verifier plaintext parser on arbitrary JSON.
func FuzzParseKeyVerifier(f *testing.F) {
	f.Add([]byte(`{"token_key":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","code_verifier":"` + strings.Repeat("a", 43) + `"}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"token_key":1}`))
	f.Fuzz(func(t *testing.T, plain []byte) {
		key, verifier, err := parseKeyVerifier(plain)
		if err == nil && (len(key) != 32 || !isCodeVerifier(verifier)) {
			t.Fatalf("accepted key of %d bytes, verifier %q", len(key), verifier)
		}
	})
}
