package certs

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"html"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
	"github.com/lestrrat-go/jwx/v2/jwt"
)

// joseRecordedFlow is what the tests need from the recorded gematik HBA login (ref-IDP 25.0.4,
// 2023-11-30; testdata/gematik/pki/recorded/tokenFlowPs.html).
type joseRecordedFlow struct {
	Discovery   []byte // compact JWS, kid puk_disc_sig
	IDPSigJWK   []byte // puk_idp_sig JWK with x5c
	TokenKey    []byte // 32 bytes from the decrypted key_verifier
	IDToken     []byte // dir/A256GCM JWE
	AccessToken []byte // dir/A256GCM JWE
}

var (
	joseHTMLTag    = regexp.MustCompile(`<[^>]*>`)
	joseCompactJWS = regexp.MustCompile(`^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$`)
)

// joseLoadRecordedFlow turns the RbelLogger HTML into text lines (tags dropped, entities decoded) and picks
// out the raw message bodies by their shape.
func joseLoadRecordedFlow(t testing.TB) *joseRecordedFlow {
	t.Helper()
	page := string(mustReadFile(t, gematikPath("pki", "recorded", "tokenFlowPs.html")))
	text := html.UnescapeString(joseHTMLTag.ReplaceAllString(page, "\n"))
	f := &joseRecordedFlow{}
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case f.Discovery == nil && joseCompactJWS.MatchString(line):
			if j, err := ParseCompactJWS([]byte(line)); err == nil && j.Header.Kid == "puk_disc_sig" {
				f.Discovery = []byte(line)
			}
		case strings.HasPrefix(line, "{"):
			var m map[string]json.RawMessage
			if json.Unmarshal([]byte(line), &m) != nil {
				continue
			}
			var kid, tokenKey, idToken, accessToken string
			json.Unmarshal(m["kid"], &kid)
			json.Unmarshal(m["token_key"], &tokenKey)
			json.Unmarshal(m["id_token"], &idToken)
			json.Unmarshal(m["access_token"], &accessToken)
			switch {
			case f.IDPSigJWK == nil && kid == "puk_idp_sig" && m["x5c"] != nil:
				f.IDPSigJWK = []byte(line)
			case f.TokenKey == nil && tokenKey != "":
				k, err := base64.RawURLEncoding.DecodeString(tokenKey)
				if err != nil {
					t.Fatalf("token_key: %v", err)
				}
				f.TokenKey = k
			case f.IDToken == nil && idToken != "" && accessToken != "":
				f.IDToken, f.AccessToken = []byte(idToken), []byte(accessToken)
			}
		}
	}
	if f.Discovery == nil || f.IDPSigJWK == nil || len(f.TokenKey) != 32 || f.IDToken == nil || f.AccessToken == nil {
		t.Fatalf("recorded flow incomplete: discovery %t, jwk %t, token_key %d bytes, id_token %t, access_token %t",
			f.Discovery != nil, f.IDPSigJWK != nil, len(f.TokenKey), f.IDToken != nil, f.AccessToken != nil)
	}
	return f
}

// joseRecordedToken decrypts one recorded token JWE with token_key and returns the inner JWS.
func joseRecordedToken(t testing.TB, f *joseRecordedFlow, jweTok []byte) (inner []byte, header map[string]any) {
	t.Helper()
	plain, header, err := DecryptDir(f.TokenKey, jweTok)
	if err != nil {
		t.Fatalf("DecryptDir: %v", err)
	}
	inner, err = UnwrapNJWT(plain)
	if err != nil {
		t.Fatal(err)
	}
	return inner, header
}

func TestRecordedIDPFlowDiscoveryDocument(t *testing.T) {
	f := joseLoadRecordedFlow(t)
	j := mustParseJWS(t, f.Discovery)
	if diff := cmp.Diff([]string{"BP256R1", "JWT", "puk_disc_sig"}, []string{string(j.Header.Alg), j.Header.Typ, j.Header.Kid}); diff != "" {
		t.Errorf("header (-want +got):\n%s", diff)
	}
	signer, err := j.VerifyX5C(AlgBP256R1)
	if err != nil {
		t.Fatalf("VerifyX5C: %v", err)
	}
	var body struct {
		Issuer string   `json:"issuer"`
		IAT    int64    `json:"iat"`
		Algs   []string `json:"id_token_signing_alg_values_supported"`
	}
	if err := json.Unmarshal(j.Payload, &body); err != nil {
		t.Fatal(err)
	}
	want := struct {
		Issuer string
		Algs   []string
		CN     string
	}{"https://idp.zentral.idp.splitdns.ti-dienste.de", []string{"BP256R1"}, "IDP Sig 3"}
	got := want
	got.Issuer, got.Algs, got.CN = body.Issuer, body.Algs, signer.Subject.CommonName
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("discovery (-want +got):\n%s", diff)
	}

	at := time.Unix(body.IAT, 0)
	chain, err := gematikCAStore(t).Verify(context.Background(), signer, VerifyOptions{
		At:               at,
		Intermediates:    j.Header.X5C[1:],
		KeyUsage:         KeyUsageDigitalSignature,
		CertificateTypes: []CertificateType{CertFDSIG},
		Role:             RoleIDPDienst,
	})
	if err != nil {
		t.Fatalf("discovery signer does not chain at %s: %v", at.UTC(), err)
	}
	if got := chain[len(chain)-1].Subject.CommonName; got != "GEM.KOMP-CA10 TEST-ONLY" {
		t.Errorf("anchor %q, want GEM.KOMP-CA10 TEST-ONLY", got)
	}
	if !signer.HasRole(RoleIDPDienst) {
		t.Error("discovery signer lacks role IDP-Dienst")
	}

	t.Run("a discovery document with one payload byte changed does not verify", func(t *testing.T) {
		tampered := joseTamper(f.Discovery, bytes.IndexByte(f.Discovery, '.')+40)
		j, err := ParseCompactJWS(tampered)
		if err != nil {
			t.Fatalf("a changed payload character must still parse: %v", err)
		}
		if _, err := j.VerifyX5C(AlgBP256R1); !errors.Is(err, ErrBadSignature) {
			t.Errorf("got %v, want ErrBadSignature", err)
		}
	})
	t.Run("the discovery document is refused when ES256 is expected", func(t *testing.T) {
		if _, err := j.VerifyX5C(AlgES256); !errors.Is(err, ErrAlgorithmMismatch) {
			t.Errorf("got %v, want ErrAlgorithmMismatch", err)
		}
	})
}

// joseTamper replaces the base64url character at i with another one of the alphabet.
func joseTamper(tok []byte, i int) []byte {
	out := bytes.Clone(tok)
	if out[i] == 'A' {
		out[i] = 'B'
	} else {
		out[i] = 'A'
	}
	return out
}

func TestRecordedIDPFlowTokens(t *testing.T) {
	f := joseLoadRecordedFlow(t)
	pub, kid, use, x5c, err := ParseBP256JWK(f.IDPSigJWK)
	if err != nil {
		t.Fatalf("ParseBP256JWK: %v", err)
	}
	if kid != "puk_idp_sig" || use != "sig" || len(x5c) != 1 {
		t.Fatalf("JWK kid %q use %q x5c %d", kid, use, len(x5c))
	}

	idInner, idHeader := joseRecordedToken(t, f, f.IDToken)
	atInner, atHeader := joseRecordedToken(t, f, f.AccessToken)
	for name, h := range map[string]map[string]any{"id_token": idHeader, "access_token": atHeader} {
		want := map[string]any{"alg": "dir", "enc": "A256GCM", "cty": "NJWT", "exp": json.Number("1701342160")}
		if diff := cmp.Diff(want, h); diff != "" {
			t.Errorf("%s JWE header (-want +got):\n%s", name, diff)
		}
	}

	type claims struct {
		IDNummer      string `json:"idNummer"`
		ProfessionOID string `json:"professionOID"`
		ATHash        string `json:"at_hash"`
		IAT           int64  `json:"iat"`
		Issuer        string `json:"iss"`
		DisplayName   string `json:"display_name"`
	}
	var idClaims claims
	for _, tc := range []struct {
		name  string
		inner []byte
		typ   string
	}{
		{"the ID token", idInner, "JWT"},
		{"the access token", atInner, "at+JWT"},
	} {
		t.Run(tc.name+" verifies with the recorded puk_idp_sig and carries the card claims", func(t *testing.T) {
			j := mustParseJWS(t, tc.inner)
			if err := j.Verify(AlgBP256R1, pub); err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if j.Header.Typ != tc.typ || j.Header.Kid != "puk_idp_sig" {
				t.Errorf("typ %q kid %q", j.Header.Typ, j.Header.Kid)
			}
			var c claims
			if err := json.Unmarshal(j.Payload, &c); err != nil {
				t.Fatal(err)
			}
			want := claims{IDNummer: "1-HBA-Testkarte-883110000129084", ProfessionOID: "1.2.276.0.76.4.30",
				IAT: 1701341860, Issuer: "https://idp.zentral.idp.splitdns.ti-dienste.de", DisplayName: "Günther Graf Otís", ATHash: c.ATHash}
			if diff := cmp.Diff(want, c); diff != "" {
				t.Errorf("claims (-want +got):\n%s", diff)
			}
			if tc.typ == "JWT" {
				idClaims = c
			}
		})
	}

	t.Run("at_hash of the ID token is the left half of SHA-256 over the inner access-token JWS", func(t *testing.T) {
		sum := sha256.Sum256(atInner)
		if diff := cmp.Diff(base64.RawURLEncoding.EncodeToString(sum[:16]), idClaims.ATHash); diff != "" {
			t.Error(diff)
		}
	})

	t.Run("the puk_idp_sig certificate chains to GEM.KOMP-CA10 with role IDP-Dienst at the recording time", func(t *testing.T) {
		at := time.Unix(1701341860, 0) // iat of the tokens
		chain, err := gematikCAStore(t).Verify(context.Background(), x5c[0], VerifyOptions{
			At: at, KeyUsage: KeyUsageDigitalSignature, CertificateTypes: []CertificateType{CertFDSIG}, Role: RoleIDPDienst,
		})
		if err != nil {
			t.Fatal(err)
		}
		if got := chain[len(chain)-1].Subject.CommonName; got != "GEM.KOMP-CA10 TEST-ONLY" {
			t.Errorf("anchor %q", got)
		}
		if _, err := gematikCAStore(t).Verify(context.Background(), x5c[0], VerifyOptions{At: time.Now()}); !errors.Is(err, ErrExpired) {
			t.Errorf("today: got %v, want ErrExpired (IDP Sig 1 ended 2025-08-04)", err)
		}
	})

	t.Run("the ID token verifies through jwt.Parse with a fixed clock", func(t *testing.T) {
		clock := jwt.ClockFunc(func() time.Time { return time.Unix(1701341870, 0) })
		tok, err := VerifyJWT(idInner, AlgBP256R1, pub, jwt.WithClock(clock),
			jwt.WithIssuer("https://idp.zentral.idp.splitdns.ti-dienste.de"), jwt.WithAudience("gematikTestPs"),
			jwt.WithRequiredClaim("idNummer"), jwt.WithRequiredClaim("professionOID"))
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]any{}
		for _, name := range []string{"idNummer", "professionOID", "acr"} {
			v, _ := tok.Get(name)
			got[name] = v
		}
		want := map[string]any{"idNummer": "1-HBA-Testkarte-883110000129084", "professionOID": "1.2.276.0.76.4.30", "acr": "gematik-ehealth-loa-high"}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("claims (-want +got):\n%s", diff)
		}
		if _, err := VerifyJWT(idInner, AlgBP256R1, pub); err == nil {
			t.Error("with today's clock the 2023 ID token was accepted")
		}
		if _, err := VerifyJWT(idInner, AlgES256, pub, jwt.WithClock(clock)); !errors.Is(err, ErrAlgorithmMismatch) {
			t.Errorf("ES256 expected: got %v, want ErrAlgorithmMismatch", err)
		}
	})

	t.Run("the access token verifies through jws.Verify with the JWK parsed by jwx", func(t *testing.T) {
		RegisterJWXAlgorithms()
		key, err := jwk.ParseKey(f.IDPSigJWK)
		if err != nil {
			t.Fatalf("jwk.ParseKey: %v", err)
		}
		if _, err := jws.Verify(atInner, JWXVerifyOption(AlgBP256R1, key)); err != nil {
			t.Error(err)
		}
	})

	t.Run("one tampered byte makes verification or decryption fail", func(t *testing.T) {
		dot := bytes.IndexByte(idInner, '.')
		j, err := ParseCompactJWS(joseTamper(idInner, dot+30))
		if err != nil {
			t.Fatalf("a changed payload character must still parse: %v", err)
		}
		if err := j.Verify(AlgBP256R1, pub); !errors.Is(err, ErrBadSignature) {
			t.Errorf("tampered payload: got %v, want ErrBadSignature", err)
		}
		if _, err := VerifyJWT(joseTamper(idInner, len(idInner)-20), AlgBP256R1, pub,
			jwt.WithClock(jwt.ClockFunc(func() time.Time { return time.Unix(1701341870, 0) }))); err == nil {
			t.Error("tampered signature accepted by VerifyJWT")
		}
		if _, _, err := DecryptDir(f.TokenKey, joseTamper(f.AccessToken, len(f.AccessToken)-30)); err == nil {
			t.Error("tampered access-token JWE decrypted")
		}
	})
}
