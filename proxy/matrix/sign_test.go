package matrix

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"testing"
)

// specSeed is the signing key seed of the "Cryptographic Test Vectors" appendix (Matrix v1.11); the
// server name there is "domain" and the key ID "ed25519:1".
const specSeed = "YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA1"

func specKey(t testing.TB) ed25519.PrivateKey {
	t.Helper()
	seed, err := DecodeBase64(specSeed)
	if err != nil || len(seed) != ed25519.SeedSize {
		t.Fatalf("seed: %v (%d bytes)", err, len(seed))
	}
	return ed25519.NewKeyFromSeed(seed)
}

func TestSignJSONSpecVectors(t *testing.T) {
	// "JSON Signing" test vectors of the specification appendix, written in canonical form.
	tests := []struct {
		name, in, want string
	}{
		{"an empty object gets the spec's signature", `{}`,
			`{"signatures":{"domain":{"ed25519:1":"K8280/U9SSy9IVtjBuVeLr+HpOB4BQFWbg+UZaADMtTdGYI7Geitb76LTrr5QV/7Xg4ahLwYGYZzuHGZKM5ZAQ"}}}`},
		{"an object with data gets the spec's signature", `{"one": 1, "two": "Two"}`,
			`{"one":1,"signatures":{"domain":{"ed25519:1":"KqmLSbO39/Bzb0QIYE82zqLwsA+PDzYIpIRA2sRQ4sL53+sN6/fpNSoqE7BP7vBZhG6kYdD13EIMJpvhJI+6Bw"}},"two":"Two"}`},
		{"unsigned and existing signatures are not covered and are kept",
			`{"one":1,"two":"Two","unsigned":{"age_ts":5},"signatures":{"other.example":{"ed25519:x":"abc"}}}`,
			`{"one":1,"signatures":{"domain":{"ed25519:1":"KqmLSbO39/Bzb0QIYE82zqLwsA+PDzYIpIRA2sRQ4sL53+sN6/fpNSoqE7BP7vBZhG6kYdD13EIMJpvhJI+6Bw"},"other.example":{"ed25519:x":"abc"}},"two":"Two","unsigned":{"age_ts":5}}`},
	}
	key := specKey(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := SignJSON([]byte(tt.in), "domain", "ed25519:1", key)
			if err != nil {
				t.Fatalf("SignJSON: %v", err)
			}
			if string(got) != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
			if err := VerifyJSON(got, "domain", "ed25519:1", key.Public().(ed25519.PublicKey)); err != nil {
				t.Errorf("VerifyJSON of own output: %v", err)
			}
		})
	}
}

func TestVerifyJSON(t *testing.T) {
	key := specKey(t)
	pub := key.Public().(ed25519.PublicKey)
	otherPub := ed25519.NewKeyFromSeed(make([]byte, 32)).Public().(ed25519.PublicKey)
	const signed = `{"one":1,"signatures":{"domain":{"ed25519:1":"KqmLSbO39/Bzb0QIYE82zqLwsA+PDzYIpIRA2sRQ4sL53+sN6/fpNSoqE7BP7vBZhG6kYdD13EIMJpvhJI+6Bw"}},"two":"Two"}`
	tests := []struct {
		name, obj, server, keyID string
		pub                      ed25519.PublicKey
		want                     error
	}{
		{"the spec vector verifies", signed, "domain", "ed25519:1", pub, nil},
		{"whitespace and key order do not matter",
			"{ \"two\" : \"Two\", \"one\":1, \"unsigned\": {\"x\": 1}, \"signatures\":{\"domain\":{\"ed25519:1\":\"KqmLSbO39/Bzb0QIYE82zqLwsA+PDzYIpIRA2sRQ4sL53+sN6/fpNSoqE7BP7vBZhG6kYdD13EIMJpvhJI+6Bw==\"}}}",
			"domain", "ed25519:1", pub, nil},
		{"a changed value fails", `{"one":2,"signatures":{"domain":{"ed25519:1":"KqmLSbO39/Bzb0QIYE82zqLwsA+PDzYIpIRA2sRQ4sL53+sN6/fpNSoqE7BP7vBZhG6kYdD13EIMJpvhJI+6Bw"}},"two":"Two"}`,
			"domain", "ed25519:1", pub, ErrBadSignature},
		{"another public key fails", signed, "domain", "ed25519:1", otherPub, ErrBadSignature},
		{"a signature by another entity is missing", signed, "other", "ed25519:1", pub, ErrSignatureMissing},
		{"a signature with another key ID is missing", signed, "domain", "ed25519:2", pub, ErrSignatureMissing},
		{"an object without signatures is missing its signature", `{"one":1}`, "domain", "ed25519:1", pub, ErrSignatureMissing},
		{"a truncated signature fails", `{"signatures":{"domain":{"ed25519:1":"K8280"}}}`, "domain", "ed25519:1", pub, ErrBadSignature},
		{"a URL-safe signature fails", `{"signatures":{"domain":{"ed25519:1":"K8280_U9SSy9IVtjBuVeLr-HpOB4BQFWbg-UZaADMtTdGYI7Geitb76LTrr5QV_7Xg4ahLwYGYZzuHGZKM5ZAQ"}}}`, "domain", "ed25519:1", pub, ErrBadSignature},
		{"a non-ed25519 key ID is refused", signed, "domain", "curve25519:1", pub, ErrBadKey},
		{"a short public key is refused", signed, "domain", "ed25519:1", pub[:16], ErrBadKey},
		{"an array is not a signable object", `[]`, "domain", "ed25519:1", pub, ErrInvalidJSON},
		{"invalid JSON is refused", `{"a":1.5}`, "domain", "ed25519:1", pub, ErrInvalidJSON},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := VerifyJSON([]byte(tt.obj), tt.server, tt.keyID, tt.pub)
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("got %v; want %v", err, tt.want)
			}
		})
	}
}

func TestSignJSONRefuses(t *testing.T) {
	key := specKey(t)
	tests := []struct {
		name, obj, server, keyID string
		key                      ed25519.PrivateKey
	}{
		{"a non-object is refused", `"x"`, "domain", "ed25519:1", key},
		{"a signatures member that is not an object is refused", `{"signatures":[]}`, "domain", "ed25519:1", key},
		{"an entity entry that is not an object is refused", `{"signatures":{"domain":1}}`, "domain", "ed25519:1", key},
		{"an invalid server name is refused", `{}`, "bad name", "ed25519:1", key},
		{"a key ID with a bad version is refused", `{}`, "domain", "ed25519:a-b", key},
		{"a truncated private key is refused", `{}`, "domain", "ed25519:1", key[:32]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, err := SignJSON([]byte(tt.obj), tt.server, tt.keyID, tt.key); err == nil {
				t.Errorf("SignJSON = %s; want an error", got)
			}
		})
	}
}

// TestSignJSONMatchesSignedjson signs the same objects with Synapse's signedjson library.
func TestSignJSONMatchesSignedjson(t *testing.T) {
	inputs := []string{
		`{}`, `{"one":1,"two":"Two"}`, `{"a":"日本語","unsigned":{"age":1},"z":[1,{"y":null}]}`,
		`{"signatures":{"other.example":{"ed25519:x":"abc"}},"b":"\u2028\u0007"}`,
	}
	py := pythonSign(t, inputs)
	key := specKey(t)
	for i, in := range inputs {
		got, err := SignJSON([]byte(in), "domain", "ed25519:1", key)
		if err != nil {
			t.Fatalf("SignJSON(%s): %v", in, err)
		}
		if py[i].Err != "" {
			t.Fatalf("python refused %s: %s", in, py[i].Err)
		}
		if !bytes.Equal(got, py[i].Out) {
			t.Errorf("input %s:\n go     %s\n python %s", in, got, py[i].Out)
		}
	}
}

func TestDecodeBase64AcceptsPaddedAndUnpadded(t *testing.T) {
	tests := []struct {
		name, in, want string
		ok             bool
	}{
		{"unpadded is accepted", "Zm9vYg", "foob", true},
		{"padded is accepted", "Zm9vYg==", "foob", true},
		{"wrong padding is refused", "Zm9vYg=", "", false},
		{"stray low bits are ignored, as the spec's test seed needs", "Zm9vYh", "foob", true},
		{"the URL-safe alphabet is refused", "-_8", "", false},
		{"the empty string decodes to nothing", "", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeBase64(tt.in)
			if (err == nil) != tt.ok || (tt.ok && string(got) != tt.want) {
				t.Errorf("DecodeBase64(%q) = %q, %v", tt.in, got, err)
			}
		})
	}
}
