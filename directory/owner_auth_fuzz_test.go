package directory

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/timstack/timstack/certs"
)

var fuzzNow = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

const fuzzAud = "https://vzd.test/owner-authenticate"

// FuzzRegServiceClaims: any claims either are refused or carry every required claim within its limits.
func FuzzRegServiceClaims(f *testing.F) {
	iat, exp := fuzzNow.Add(-time.Minute).Unix(), fuzzNow.Add(4*time.Minute).Unix()
	good, _ := json.Marshal(map[string]any{"iss": "https://rs.test", "sub": "@a:hs.test", "aud": fuzzAud,
		"idNummer": "5-2-X", "professionOID": "1.2.276.0.76.4.54", "iat": iat, "exp": exp})
	f.Add(good)
	for _, s := range []string{
		`{}`, `null`, `[]`, `{"exp":"1"}`, `{"exp":1.5}`, `{"exp":-1}`, `{"aud":["x","` + fuzzAud + `"]}`,
		`{"iss":"i","aud":"` + fuzzAud + `","idNummer":"1","professionOID":"1.2.276.0.76.4.49","iat":1795000000,"exp":1795000100}`,
		`{"exp":99999999999999999999999}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		c, err := checkRegServiceClaims(payload, fuzzNow, fuzzAud)
		if err != nil {
			if c != nil {
				t.Fatal("claims returned with an error")
			}
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("error text spans lines: %q", err)
			}
			return
		}
		if strings.TrimSpace(c.Issuer) == "" || strings.TrimSpace(c.IDNummer) == "" || strings.TrimSpace(c.ProfessionOID) == "" {
			t.Fatalf("accepted claims without a required member: %+v", c)
		}
		if !audienceContains(c.Audience, fuzzAud) {
			t.Fatalf("accepted claims for another audience: %s", c.Audience)
		}
	})
}

// FuzzRegServiceToken: whatever a caller sends as bearer, the verifier answers without panicking, and only
// a token signed by the trusted oid_tim signer passes.
func FuzzRegServiceToken(f *testing.F) {
	root, err := certs.NewTestCA("fuzz root", certs.KeyBrainpoolP256r1, fuzzNow.Add(-time.Hour), fuzzNow.Add(48*time.Hour))
	if err != nil {
		f.Fatal(err)
	}
	cert, key, err := root.Issue(certs.IssueRequest{Profile: certs.IssueProfileFDSigTIM})
	if err != nil {
		f.Fatal(err)
	}
	payload, _ := json.Marshal(map[string]any{"iss": "https://rs.test", "aud": fuzzAud, "idNummer": "5-2-X",
		"professionOID": "1.2.276.0.76.4.54", "iat": fuzzNow.Add(-time.Minute).Unix(), "exp": fuzzNow.Add(time.Minute).Unix()})
	tok, err := certs.SignCompactJWS(key, certs.AlgBP256R1, map[string]any{"typ": "JWT", "x5c": certs.X5CHeader(cert)}, payload)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(string(tok))
	f.Add(strings.Replace(string(tok), ".", "..", 1))
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	f.Add("")
	a := &ownerAuthAPI{base: "https://vzd.test", trust: certs.NewTrustStore(root.Cert), now: func() time.Time { return fuzzNow }}
	f.Fuzz(func(t *testing.T, raw string) {
		c, err := a.verifyRegServiceToken(context.Background(), raw)
		if err == nil && (c == nil || c.IDNummer != "5-2-X") {
			t.Fatalf("accepted %q as %+v", raw, c)
		}
	})
}
