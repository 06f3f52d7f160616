package matrix

import (
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"
)

// ErrInvalidServerKeys means a /_matrix/key/v2/server response was refused: malformed, for another
// server, not self-signed, or already expired.
var ErrInvalidServerKeys = errors.New("matrix: invalid server keys")

// maxServerKeys bounds the keys taken from one response; real servers publish one current key and a
// handful of old ones.
const maxServerKeys = 64

// OldKey is a key the server used to sign with until ExpiredAt. It is valid only for events signed
// before then, never for request authentication.
type OldKey struct {
	Key       ed25519.PublicKey
	ExpiredAt time.Time
}

// ServerKeys is a verified /_matrix/key/v2/server response.
type ServerKeys struct {
	ServerName string
	// ValidUntil is valid_until_ts as published, not yet capped; the KeyRing applies the caps.
	ValidUntil    time.Time
	VerifyKeys    map[string]ed25519.PublicKey
	OldVerifyKeys map[string]OldKey
}

// ParseServerKeys verifies a /_matrix/key/v2/server response fetched from expectServer. The response
// must be canonical-JSON-valid, name expectServer exactly, carry valid_until_ts later than now, and be
// signed by expectServer with at least one of its own verify_keys; every signature by expectServer made
// with a key listed in verify_keys must verify (a response with one good and one bad self-signature is
// refused). Keys with algorithms other than ed25519 are ignored, as the signing rules say.
func ParseServerKeys(raw []byte, expectServer string, now time.Time) (*ServerKeys, error) {
	v, err := parseJSON(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidServerKeys, err)
	}
	if v.kind != kindObject {
		return nil, fmt.Errorf("%w: not an object", ErrInvalidServerKeys)
	}
	name, ok := v.get("server_name")
	if !ok || name.kind != kindString || name.text != expectServer || !ValidServerName(expectServer) {
		return nil, fmt.Errorf("%w: server_name does not match %q", ErrInvalidServerKeys, expectServer)
	}
	validUntil, err := intMember(&v, "valid_until_ts")
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidServerKeys, err)
	}
	sk := &ServerKeys{
		ServerName:    expectServer,
		ValidUntil:    time.UnixMilli(validUntil),
		VerifyKeys:    map[string]ed25519.PublicKey{},
		OldVerifyKeys: map[string]OldKey{},
	}
	if !sk.ValidUntil.After(now) {
		return nil, fmt.Errorf("%w: valid_until_ts is in the past", ErrInvalidServerKeys)
	}
	verifyKeys, err := objectMember(&v, "verify_keys", true)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidServerKeys, err)
	}
	oldKeys, err := objectMember(&v, "old_verify_keys", false)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidServerKeys, err)
	}
	if len(verifyKeys)+len(oldKeys) > maxServerKeys {
		return nil, fmt.Errorf("%w: more than %d keys", ErrInvalidServerKeys, maxServerKeys)
	}
	for _, m := range verifyKeys {
		if !ValidKeyID(m.key) {
			continue
		}
		pub, err := decodePublicKey(&m.val)
		if err != nil {
			return nil, fmt.Errorf("%w: verify_keys[%q]: %w", ErrInvalidServerKeys, m.key, err)
		}
		sk.VerifyKeys[m.key] = pub
	}
	for _, m := range oldKeys {
		if !ValidKeyID(m.key) {
			continue
		}
		pub, err := decodePublicKey(&m.val)
		if err != nil {
			return nil, fmt.Errorf("%w: old_verify_keys[%q]: %w", ErrInvalidServerKeys, m.key, err)
		}
		expired, err := intMember(&m.val, "expired_ts")
		if err != nil {
			return nil, fmt.Errorf("%w: old_verify_keys[%q]: %w", ErrInvalidServerKeys, m.key, err)
		}
		sk.OldVerifyKeys[m.key] = OldKey{Key: pub, ExpiredAt: time.UnixMilli(expired)}
	}

	verified := 0
	sigs, _ := v.get("signatures")
	var own *value
	if sigs != nil && sigs.kind == kindObject {
		own, _ = sigs.get(expectServer)
	}
	if own != nil && own.kind == kindObject {
		for _, m := range own.members {
			pub, listed := sk.VerifyKeys[m.key]
			if !listed {
				continue
			}
			if err := verifyValue(v, expectServer, m.key, pub); err != nil {
				return nil, fmt.Errorf("%w: self-signature with %q: %w", ErrInvalidServerKeys, m.key, err)
			}
			verified++
		}
	}
	if verified == 0 {
		return nil, fmt.Errorf("%w: not signed by any of its own verify_keys", ErrInvalidServerKeys)
	}
	return sk, nil
}

// intMember reads an integer member of object v.
func intMember(v *value, name string) (int64, error) {
	m, ok := v.get(name)
	if !ok || m.kind != kindNumber {
		return 0, fmt.Errorf("%s missing or not an integer", name)
	}
	return strconv.ParseInt(m.text, 10, 64)
}

// objectMember returns the members of the object-valued member name of v.
func objectMember(v *value, name string, required bool) ([]member, error) {
	m, ok := v.get(name)
	if !ok && !required {
		return nil, nil
	}
	if !ok || m.kind != kindObject {
		return nil, fmt.Errorf("%s missing or not an object", name)
	}
	return m.members, nil
}

// decodePublicKey reads the "key" member of a verify key object.
func decodePublicKey(k *value) (ed25519.PublicKey, error) {
	if k.kind != kindObject {
		return nil, errors.New("not an object")
	}
	b64, ok := k.get("key")
	if !ok || b64.kind != kindString {
		return nil, errors.New("key missing")
	}
	raw, err := DecodeBase64(b64.text)
	if err != nil || len(raw) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("key is not base64 of %d bytes", ed25519.PublicKeySize)
	}
	return ed25519.PublicKey(raw), nil
}

// BuildServerKeys produces a signed /_matrix/key/v2/server response for serverName publishing the public
// halves of keys (key ID → private key) and signed by each of them. It serves test fakes and tools.
func BuildServerKeys(serverName string, keys map[string]ed25519.PrivateKey, validUntil time.Time) ([]byte, error) {
	if len(keys) == 0 {
		return nil, fmt.Errorf("build server keys: no keys")
	}
	verify := map[string]map[string]string{}
	for id, k := range keys {
		if !ValidKeyID(id) || len(k) != ed25519.PrivateKeySize {
			return nil, fmt.Errorf("build server keys: key %q: %w", id, ErrBadKey)
		}
		verify[id] = map[string]string{"key": EncodeBase64(k.Public().(ed25519.PublicKey))}
	}
	raw, err := json.Marshal(map[string]any{
		"server_name":     serverName,
		"valid_until_ts":  validUntil.UnixMilli(),
		"verify_keys":     verify,
		"old_verify_keys": map[string]any{},
	})
	if err != nil {
		return nil, fmt.Errorf("build server keys: %w", err)
	}
	for _, id := range slices.Sorted(maps.Keys(keys)) {
		if raw, err = SignJSON(raw, serverName, id, keys[id]); err != nil {
			return nil, fmt.Errorf("build server keys: %w", err)
		}
	}
	return raw, nil
}
