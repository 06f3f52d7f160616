package matrix

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// testSig is a syntactically valid signature (base64 of 64 bytes, no '/' so it is also a token).
var testSig = EncodeBase64([]byte(strings.Repeat("\xfb\xef\xbe", 21) + "\x00"))

func TestParseXMatrixAccepts(t *testing.T) {
	full := XMatrix{Origin: "origin.hs.example.com", Destination: "destination.hs.example.com", KeyID: "ed25519:key1", Signature: testSig}
	noDest := full
	noDest.Destination = ""
	tests := []struct {
		name, header string
		want         XMatrix
	}{
		{"the specification's example parses",
			`X-Matrix origin="origin.hs.example.com",destination="destination.hs.example.com",key="ed25519:key1",sig="` + testSig + `"`, full},
		{"the scheme is case-insensitive",
			`x-MATRIX origin="origin.hs.example.com",destination="destination.hs.example.com",key="ed25519:key1",sig="` + testSig + `"`, full},
		{"several spaces may follow the scheme",
			`X-Matrix   origin="origin.hs.example.com",destination="destination.hs.example.com",key="ed25519:key1",sig="` + testSig + `"`, full},
		{"spaces and tabs around commas and equals signs are allowed",
			"X-Matrix origin = \"origin.hs.example.com\" ,\tdestination=\"destination.hs.example.com\"\t, key=\"ed25519:key1\" , sig=\"" + testSig + "\" ", full},
		{"parameter names are case-insensitive and order does not matter",
			`X-Matrix SIG="` + testSig + `",Key="ed25519:key1",Destination="destination.hs.example.com",ORIGIN="origin.hs.example.com"`, full},
		{"token values need no quotes, and colons are tolerated in them",
			`X-Matrix origin=origin.hs.example.com,destination=destination.hs.example.com,key=ed25519:key1,sig=` + testSig, full},
		{"backslash escapes in quoted values are undone",
			`X-Matrix origin="origin.hs.ex\ample.com",destination="destination.hs.example.com",key="ed25519:\key1",sig="` + testSig + `"`, full},
		{"a missing destination is allowed and reported as absent",
			`X-Matrix origin="origin.hs.example.com",key="ed25519:key1",sig="` + testSig + `"`, noDest},
		{"unknown parameters are ignored",
			`X-Matrix origin="origin.hs.example.com",foo="b,a=r",destination="destination.hs.example.com",key="ed25519:key1",sig="` + testSig + `"`, full},
		{"a padded signature is accepted",
			`X-Matrix origin="origin.hs.example.com",destination="destination.hs.example.com",key="ed25519:key1",sig="` + testSig + `=="`,
			XMatrix{Origin: "origin.hs.example.com", Destination: "destination.hs.example.com", KeyID: "ed25519:key1", Signature: testSig + "=="}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseXMatrix(tt.header)
			if err != nil {
				t.Fatalf("ParseXMatrix: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			if got.HasDestination() != (tt.want.Destination != "") {
				t.Errorf("HasDestination = %v", got.HasDestination())
			}
		})
	}
}

func TestParseXMatrixRefuses(t *testing.T) {
	const o, d, k = `origin="o.example"`, `destination="d.example"`, `key="ed25519:a"`
	s := `sig="` + testSig + `"`
	tests := []struct {
		name, header string
		want         error
	}{
		{"an absent header is missing credentials", "", ErrXMatrixMissing},
		{"another scheme is missing credentials", "Bearer abc", ErrXMatrixMissing},
		{"a scheme glued to its parameters is another scheme", "X-Matrix" + o, ErrXMatrixMissing},
		{"the scheme alone is malformed", "X-Matrix", ErrXMatrixMalformed},
		{"the scheme with only spaces is malformed", "X-Matrix   ", ErrXMatrixMalformed},
		{"a token68 credential is malformed", "X-Matrix abc==", ErrXMatrixMalformed},
		{"a repeated parameter is refused", "X-Matrix " + o + "," + o + "," + k + "," + s, ErrXMatrixMalformed},
		{"a parameter repeated in another case is refused", "X-Matrix " + o + ",ORIGIN=\"x.example\"," + k + "," + s, ErrXMatrixMalformed},
		{"a repeated unknown parameter is refused", "X-Matrix " + o + ",a=1,a=1," + k + "," + s, ErrXMatrixMalformed},
		{"an empty quoted value is refused", `X-Matrix origin="",` + k + "," + s, ErrXMatrixMalformed},
		{"an empty token value is refused", `X-Matrix origin=,` + k + "," + s, ErrXMatrixMalformed},
		{"a trailing comma is refused", "X-Matrix " + o + "," + k + "," + s + ",", ErrXMatrixMalformed},
		{"an empty list element is refused", "X-Matrix " + o + ",," + k + "," + s, ErrXMatrixMalformed},
		{"garbage after a quoted value is refused", "X-Matrix " + o + "x," + k + "," + s, ErrXMatrixMalformed},
		{"a space inside a token value is refused", "X-Matrix origin=o.example x," + k + "," + s, ErrXMatrixMalformed},
		{"a parameter without '=' is refused", "X-Matrix origin," + k + "," + s, ErrXMatrixMalformed},
		{"a semicolon separator is refused", "X-Matrix " + o + ";" + k + "," + s, ErrXMatrixMalformed},
		{"a control character in a quoted value is refused", "X-Matrix origin=\"o.exa\x01mple\"," + k + "," + s, ErrXMatrixMalformed},
		{"a newline in a quoted value is refused", "X-Matrix origin=\"o.example\n\"," + k + "," + s, ErrXMatrixMalformed},
		{"non-ASCII in a quoted value is refused", "X-Matrix origin=\"ö.example\"," + k + "," + s, ErrXMatrixMalformed},
		{"an unterminated quoted value is refused", `X-Matrix ` + k + "," + s + `,origin="o.example`, ErrXMatrixMalformed},
		{"a backslash at the end is refused", `X-Matrix ` + k + "," + s + `,origin="o.example\`, ErrXMatrixMalformed},
		{"a missing origin is refused", "X-Matrix " + d + "," + k + "," + s, ErrXMatrixMalformed},
		{"a missing key is refused", "X-Matrix " + o + "," + s, ErrXMatrixMalformed},
		{"a missing sig is refused", "X-Matrix " + o + "," + k, ErrXMatrixMalformed},
		{"a 'signature' parameter does not stand in for sig", "X-Matrix " + o + "," + k + ",signature=\"" + testSig + "\"", ErrXMatrixMalformed},
		{"a non-ed25519 key is refused", "X-Matrix " + o + `,key="curve25519:a",` + s, ErrXMatrixMalformed},
		{"a key without version is refused", "X-Matrix " + o + `,key="ed25519:",` + s, ErrXMatrixMalformed},
		{"a key version with a dash is refused", "X-Matrix " + o + `,key="ed25519:a-b",` + s, ErrXMatrixMalformed},
		{"an invalid origin is refused", `X-Matrix origin="o_x.example",` + k + "," + s, ErrXMatrixMalformed},
		{"an origin with a bad port is refused", `X-Matrix origin="o.example:65536",` + k + "," + s, ErrXMatrixMalformed},
		{"an invalid destination is refused", "X-Matrix " + o + `,destination="-d.example",` + k + "," + s, ErrXMatrixMalformed},
		{"a sig that is not base64 is refused", "X-Matrix " + o + "," + k + `,sig="***"`, ErrXMatrixMalformed},
		{"a sig of the wrong length is refused", "X-Matrix " + o + "," + k + `,sig="` + testSig[:40] + `"`, ErrXMatrixMalformed},
		{"too many parameters are refused", "X-Matrix " + o + "," + k + "," + s + extraParams(maxXMatrixParams-2), ErrXMatrixMalformed},
		{"the largest allowed count of parameters still parses", "X-Matrix " + o + "," + k + "," + s + extraParams(maxXMatrixParams-3), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseXMatrix(tt.header)
			if !errors.Is(err, tt.want) {
				t.Errorf("ParseXMatrix = %+v, %v; want %v", got, err, tt.want)
			}
			if err != nil && strings.Contains(err.Error(), "o.example") {
				t.Errorf("error %q repeats header content", err)
			}
		})
	}
}

// extraParams returns n unknown parameters with distinct names.
func extraParams(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, ",p%d=1", i)
	}
	return b.String()
}

func TestWithDestination(t *testing.T) {
	tests := []struct {
		name, dest, local, want string
		err                     error
	}{
		{"a matching destination is kept", "hs.example", "hs.example", "hs.example", nil},
		{"an absent destination becomes the local name", "", "hs.example", "hs.example", nil},
		{"another destination is a mismatch", "other.example", "hs.example", "", ErrDestinationMismatch},
		{"destinations compare case-sensitively", "HS.example", "hs.example", "", ErrDestinationMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := XMatrix{Destination: tt.dest}.WithDestination(tt.local)
			if !errors.Is(err, tt.err) || (err == nil && got.Destination != tt.want) {
				t.Errorf("got %q, %v; want %q, %v", got.Destination, err, tt.want, tt.err)
			}
		})
	}
}

func TestSignAndVerifyRequest(t *testing.T) {
	key := specKey(t)
	pub := key.Public().(ed25519.PublicKey)
	const uri = "/_matrix/federation/v1/send/123?x=%C3%A9"
	body := []byte(`{"origin":"a.example","pdus":[],"edus":[{"edu_type":"m.typing","content":{"typing":true}}]}`)
	header, err := SignRequest("PUT", uri, "a.example", "b.example:8448", body, "ed25519:1", key)
	if err != nil {
		t.Fatalf("SignRequest: %v", err)
	}
	x, err := ParseXMatrix(header)
	if err != nil {
		t.Fatalf("ParseXMatrix(own header): %v", err)
	}
	if x.Origin != "a.example" || x.Destination != "b.example:8448" || x.KeyID != "ed25519:1" {
		t.Fatalf("parsed %+v", x)
	}
	otherPub := ed25519.NewKeyFromSeed(make([]byte, 32)).Public().(ed25519.PublicKey)
	tests := []struct {
		name, method, uri string
		x                 XMatrix
		body              []byte
		pub               ed25519.PublicKey
		want              error
	}{
		{"the signed request verifies", "PUT", uri, x, body, pub, nil},
		{"the same body with other whitespace and order verifies", "PUT", uri, x,
			[]byte(` { "edus" : [{"content":{"typing":true},"edu_type":"m.typing"}], "pdus": [], "origin": "a.example" } `), pub, nil},
		{"another method fails", "POST", uri, x, body, pub, ErrBadSignature},
		{"another uri fails", "PUT", "/_matrix/federation/v1/send/124?x=%C3%A9", x, body, pub, ErrBadSignature},
		{"a changed body fails", "PUT", uri, x, []byte(`{"origin":"a.example","pdus":[],"edus":[]}`), pub, ErrBadSignature},
		{"a dropped body fails", "PUT", uri, x, nil, pub, ErrBadSignature},
		{"another destination fails", "PUT", uri, XMatrix{Origin: x.Origin, Destination: "b.example", KeyID: x.KeyID, Signature: x.Signature}, body, pub, ErrBadSignature},
		{"another origin fails", "PUT", uri, XMatrix{Origin: "c.example", Destination: x.Destination, KeyID: x.KeyID, Signature: x.Signature}, body, pub, ErrBadSignature},
		{"another key fails", "PUT", uri, x, body, otherPub, ErrBadSignature},
		{"a body that is not JSON is refused", "PUT", uri, x, []byte("not json"), pub, ErrInvalidJSON},
		{"a body with a float is refused", "PUT", uri, x, []byte(`{"a":1.5}`), pub, ErrInvalidJSON},
		{"an unknown destination is refused", "PUT", uri, XMatrix{Origin: x.Origin, KeyID: x.KeyID, Signature: x.Signature}, body, pub, ErrXMatrixMalformed},
		{"a short public key is refused", "PUT", uri, x, body, pub[:31], ErrBadKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := VerifyRequest(tt.x, tt.method, tt.uri, tt.body, tt.pub)
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("got %v; want %v", err, tt.want)
			}
		})
	}
}

func TestSignRequestRefuses(t *testing.T) {
	key := specKey(t)
	tests := []struct {
		name, method, uri, origin, dest, keyID string
		body                                   string
	}{
		{"an invalid origin is refused", "GET", "/x", "a b", "b.example", "ed25519:1", ""},
		{"an invalid destination is refused", "GET", "/x", "a.example", "", "ed25519:1", ""},
		{"a relative uri is refused", "GET", "x", "a.example", "b.example", "ed25519:1", ""},
		{"an empty method is refused", "", "/x", "a.example", "b.example", "ed25519:1", ""},
		{"a method with a space is refused", "G T", "/x", "a.example", "b.example", "ed25519:1", ""},
		{"a non-JSON body is refused", "PUT", "/x", "a.example", "b.example", "ed25519:1", "{"},
		{"a uri with invalid UTF-8 is refused", "GET", "/x\xff", "a.example", "b.example", "ed25519:1", ""},
		{"a non-ed25519 key ID is refused", "GET", "/x", "a.example", "b.example", "rsa:1", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if h, err := SignRequest(tt.method, tt.uri, tt.origin, tt.dest, []byte(tt.body), tt.keyID, key); err == nil {
				t.Errorf("SignRequest = %q; want an error", h)
			}
		})
	}
}

// TestSignRequestMatchesSynapse compares our request signatures with those signedjson computes for the
// same request object; ed25519 is deterministic, so equal signatures mean equal canonical bytes.
func TestSignRequestMatchesSynapse(t *testing.T) {
	cases := []map[string]string{
		{"method": "GET", "uri": "/_matrix/federation/v1/version", "origin": "a.example", "destination": "b.example", "body": ""},
		{"method": "PUT", "uri": "/_matrix/federation/v2/invite/!r:a.example/$e?x=1&y=%20", "origin": "a.example:8448", "destination": "[::1]:8448",
			"body": `{"event":{"content":{"membership":"invite","displayname":"Jürgen \"J\" \u2028"},"state_key":"@u:b.example"},"room_version":"10","invite_room_state":[]}`},
	}
	py := pythonSignRequest(t, cases)
	key := specKey(t)
	for i, c := range cases {
		header, err := SignRequest(c["method"], c["uri"], c["origin"], c["destination"], []byte(c["body"]), "ed25519:1", key)
		if err != nil {
			t.Fatalf("SignRequest: %v", err)
		}
		x, err := ParseXMatrix(header)
		if err != nil {
			t.Fatalf("ParseXMatrix: %v", err)
		}
		if py[i].Err != "" {
			t.Fatalf("python: %s", py[i].Err)
		}
		if x.Signature != string(py[i].Out) {
			t.Errorf("case %d: go sig %s, python sig %s", i, x.Signature, py[i].Out)
		}
	}
}

func FuzzParseXMatrix(f *testing.F) {
	for _, s := range []string{
		`X-Matrix origin="origin.hs.example.com",destination="destination.hs.example.com",key="ed25519:key1",sig="` + testSig + `"`,
		`x-matrix origin=a.example , key=ed25519:a,sig=` + testSig,
		`X-Matrix origin="a\.example",key="ed25519:a",sig="` + testSig + `==",foo="\"x\""`,
		`X-Matrix origin="a.example",origin="b.example"`,
		`X-Matrix origin="a.example",,key="ed25519:a"`,
		"X-Matrix origin=\"a\x00\",key=\"ed25519:a\"",
		`X-Matrix origin="[::1]:8448",key="ed25519:a",sig="` + testSig + `"`,
		`Bearer x`, `X-Matrix`, `X-Matrix =`, `X-Matrix a="`, `X-Matrix a="\`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, header string) {
		x, err := ParseXMatrix(header)
		if err != nil {
			if !errors.Is(err, ErrXMatrixMissing) && !errors.Is(err, ErrXMatrixMalformed) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			return
		}
		if !ValidServerName(x.Origin) || (x.HasDestination() && !ValidServerName(x.Destination)) || !ValidKeyID(x.KeyID) {
			t.Fatalf("accepted invalid fields: %+v", x)
		}
		if raw, err := DecodeBase64(x.Signature); err != nil || len(raw) != ed25519.SignatureSize {
			t.Fatalf("accepted bad signature %q", x.Signature)
		}
		// What we accept must survive the form we send.
		again := `X-Matrix origin="` + x.Origin + `",key="` + x.KeyID + `",sig="` + x.Signature + `"`
		if x.HasDestination() {
			again += `,destination="` + x.Destination + `"`
		}
		y, err := ParseXMatrix(again)
		if err != nil || y != x {
			t.Fatalf("re-parse of %q: %+v, %v; want %+v", again, y, err, x)
		}
	})
}
