package matrix

import (
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// testKey derives a deterministic key from a one-byte seed.
func testKey(b byte) ed25519.PrivateKey {
	seed := make([]byte, ed25519.SeedSize)
	seed[0] = b
	return ed25519.NewKeyFromSeed(seed)
}

func pubB64(k ed25519.PrivateKey) string { return EncodeBase64(k.Public().(ed25519.PublicKey)) }

// signAll signs raw as server with each (keyID, key) pair in order.
func signAll(t *testing.T, raw string, server string, keys ...any) []byte {
	t.Helper()
	out := []byte(raw)
	for i := 0; i < len(keys); i += 2 {
		var err error
		out, err = SignJSON(out, server, keys[i].(string), keys[i+1].(ed25519.PrivateKey))
		if err != nil {
			t.Fatalf("SignJSON: %v", err)
		}
	}
	return out
}

func TestParseServerKeys(t *testing.T) {
	now := time.UnixMilli(1_700_000_000_000)
	until := now.Add(time.Hour).UnixMilli()
	k1, k2, old := testKey(1), testKey(2), testKey(3)
	body := func(server string, validUntil any, extra string) string {
		vu := ""
		if validUntil != nil {
			vu = fmt.Sprintf(`,"valid_until_ts":%v`, validUntil)
		}
		return fmt.Sprintf(`{"server_name":%q%s,"verify_keys":{"ed25519:k1":{"key":%q},"ed25519:k2":{"key":%q}},"old_verify_keys":{"ed25519:old":{"key":%q,"expired_ts":%d}}%s}`,
			server, vu, pubB64(k1), pubB64(k2), pubB64(old), now.Add(-time.Hour).UnixMilli(), extra)
	}
	good := body("hs.example", until, "")

	t.Run("a response self-signed by both of its keys is accepted with all keys", func(t *testing.T) {
		sk, err := ParseServerKeys(signAll(t, good, "hs.example", "ed25519:k1", k1, "ed25519:k2", k2), "hs.example", now)
		if err != nil {
			t.Fatalf("ParseServerKeys: %v", err)
		}
		if sk.ServerName != "hs.example" || !sk.ValidUntil.Equal(time.UnixMilli(until)) || len(sk.VerifyKeys) != 2 ||
			!sk.VerifyKeys["ed25519:k1"].Equal(k1.Public()) || !sk.VerifyKeys["ed25519:k2"].Equal(k2.Public()) {
			t.Errorf("got %+v", sk)
		}
		o, ok := sk.OldVerifyKeys["ed25519:old"]
		if !ok || !o.Key.Equal(old.Public()) || !o.ExpiredAt.Equal(time.UnixMilli(now.Add(-time.Hour).UnixMilli())) {
			t.Errorf("old keys %+v", sk.OldVerifyKeys)
		}
	})

	tests := []struct {
		name   string
		raw    []byte
		expect string
	}{
		{"a response signed by one of its keys is accepted", signAll(t, good, "hs.example", "ed25519:k2", k2), ""},
		{"signatures by other servers do not count but do not hurt",
			signAll(t, string(signAll(t, good, "hs.example", "ed25519:k1", k1)), "notary.example", "ed25519:n", testKey(9)), ""},
		{"self-signatures with keys the response does not list are ignored",
			signAll(t, good, "hs.example", "ed25519:k1", k1, "ed25519:n", testKey(9)), ""},
		{"keys of unknown algorithms are ignored",
			signAll(t, body("hs.example", until, `,"x":{"curve25519:z":{"key":"!"}}`), "hs.example", "ed25519:k1", k1), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := ParseServerKeys(tt.raw, "hs.example", now); err != nil {
				t.Errorf("ParseServerKeys: %v", err)
			}
		})
	}

	bad1 := signAll(t, good, "hs.example", "ed25519:k1", k1)
	var goodAndBad map[string]any
	if err := json.Unmarshal(signAll(t, good, "hs.example", "ed25519:k1", k1, "ed25519:k2", k2), &goodAndBad); err != nil {
		t.Fatal(err)
	}
	goodAndBad["signatures"].(map[string]any)["hs.example"].(map[string]any)["ed25519:k2"] = EncodeBase64(make([]byte, 64))
	goodAndBadRaw, _ := json.Marshal(goodAndBad)

	refusals := []struct {
		name string
		raw  []byte
	}{
		{"a response for another server is refused", signAll(t, body("other.example", until, ""), "other.example", "ed25519:k1", k1)},
		{"a response whose server_name differs in case is refused", signAll(t, body("HS.example", until, ""), "HS.example", "ed25519:k1", k1)},
		{"an unsigned response is refused", []byte(good)},
		{"a response signed only by another server is refused", signAll(t, good, "other.example", "ed25519:k1", k1)},
		{"a response signed only by an old key is refused", signAll(t, good, "hs.example", "ed25519:old", old)},
		{"a response signed by a key it does not list is refused", signAll(t, good, "hs.example", "ed25519:k9", testKey(9))},
		{"a response with one good and one bad self-signature is refused", goodAndBadRaw},
		{"a response changed after signing is refused", []byte(strings.Replace(string(bad1), fmt.Sprint(until), fmt.Sprint(until+1), 1))},
		{"an expired response is refused", signAll(t, body("hs.example", now.UnixMilli(), ""), "hs.example", "ed25519:k1", k1)},
		{"a response without valid_until_ts is refused", signAll(t, body("hs.example", nil, ""), "hs.example", "ed25519:k1", k1)},
		{"a response with a string valid_until_ts is refused", signAll(t, body("hs.example", `"1"`, ""), "hs.example", "ed25519:k1", k1)},
		{"a verify key of the wrong length is refused",
			signAll(t, strings.Replace(good, pubB64(k2), "AAAA", 1), "hs.example", "ed25519:k1", k1)},
		{"an old key without expired_ts is refused",
			signAll(t, strings.Replace(good, fmt.Sprintf(`,"expired_ts":%d`, now.Add(-time.Hour).UnixMilli()), "", 1), "hs.example", "ed25519:k1", k1)},
		{"a response that is not canonical-JSON-valid is refused", []byte(strings.Replace(string(bad1), `"server_name"`, `"x":1.5,"server_name"`, 1))},
		{"a response with duplicate keys is refused", []byte(strings.Replace(string(bad1), `"server_name":"hs.example"`, `"server_name":"hs.example","server_name":"evil.example"`, 1))},
		{"a response that is not an object is refused", []byte(`[]`)},
		{"a response without verify_keys is refused", signAll(t, fmt.Sprintf(`{"server_name":"hs.example","valid_until_ts":%d}`, until), "hs.example", "ed25519:k1", k1)},
	}
	for _, tt := range refusals {
		t.Run(tt.name, func(t *testing.T) {
			sk, err := ParseServerKeys(tt.raw, "hs.example", now)
			if !errors.Is(err, ErrInvalidServerKeys) {
				t.Errorf("ParseServerKeys = %+v, %v; want ErrInvalidServerKeys", sk, err)
			}
		})
	}

	t.Run("a response with too many keys is refused", func(t *testing.T) {
		var b strings.Builder
		fmt.Fprintf(&b, `{"server_name":"hs.example","valid_until_ts":%d,"verify_keys":{"ed25519:k1":{"key":%q}`, until, pubB64(k1))
		for i := range maxServerKeys {
			fmt.Fprintf(&b, `,"ed25519:x%d":{"key":%q}`, i, pubB64(k2))
		}
		b.WriteString("}}")
		if _, err := ParseServerKeys(signAll(t, b.String(), "hs.example", "ed25519:k1", k1), "hs.example", now); !errors.Is(err, ErrInvalidServerKeys) {
			t.Errorf("got %v", err)
		}
	})
}

func TestBuildServerKeysRoundTrips(t *testing.T) {
	now := time.UnixMilli(1_700_000_000_000)
	keys := map[string]ed25519.PrivateKey{"ed25519:a": testKey(1), "ed25519:b": testKey(2)}
	raw, err := BuildServerKeys("hs.example:8448", keys, now.Add(time.Hour))
	if err != nil {
		t.Fatalf("BuildServerKeys: %v", err)
	}
	sk, err := ParseServerKeys(raw, "hs.example:8448", now)
	if err != nil {
		t.Fatalf("ParseServerKeys: %v", err)
	}
	for id, k := range keys {
		if !sk.VerifyKeys[id].Equal(k.Public()) {
			t.Errorf("key %s not round-tripped", id)
		}
		if err := VerifyJSON(raw, "hs.example:8448", id, k.Public().(ed25519.PublicKey)); err != nil {
			t.Errorf("signature by %s: %v", id, err)
		}
	}
	if _, err := BuildServerKeys("hs.example", nil, now); err == nil {
		t.Error("BuildServerKeys without keys succeeded")
	}
	if _, err := BuildServerKeys("hs.example", map[string]ed25519.PrivateKey{"rsa:a": testKey(1)}, now); !errors.Is(err, ErrBadKey) {
		t.Errorf("BuildServerKeys with a non-ed25519 key ID: %v", err)
	}
}

func FuzzParseServerKeys(f *testing.F) {
	now := time.UnixMilli(1_700_000_000_000)
	seed, _ := BuildServerKeys("hs.example", map[string]ed25519.PrivateKey{"ed25519:a": testKey(1)}, now.Add(time.Hour))
	f.Add(seed)
	f.Add([]byte(`{"server_name":"hs.example","valid_until_ts":1,"verify_keys":{}}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		sk, err := ParseServerKeys(raw, "hs.example", now)
		if err != nil {
			return
		}
		if sk.ServerName != "hs.example" || !sk.ValidUntil.After(now) || len(sk.VerifyKeys) == 0 {
			t.Fatalf("accepted %+v", sk)
		}
		for id, k := range sk.VerifyKeys {
			if !ValidKeyID(id) || len(k) != ed25519.PublicKeySize {
				t.Fatalf("accepted key %q", id)
			}
		}
	})
}
