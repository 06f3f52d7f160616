package matrix

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// ErrBadSignature means a signature is present but does not verify, is not valid base64, or has the
// wrong length.
var ErrBadSignature = errors.New("matrix: bad signature")

// ErrSignatureMissing means the object carries no signature by the expected entity and key.
var ErrSignatureMissing = errors.New("matrix: signature missing")

// ErrBadKey means a key ID or key is unusable: an algorithm other than ed25519, a malformed version, or
// a key of the wrong size.
var ErrBadKey = errors.New("matrix: bad key")

// algEd25519 is the only signing algorithm the specification defines.
const algEd25519 = "ed25519:"

// ValidKeyID reports whether id is an ed25519 key ID, "ed25519:" followed by a version of
// [a-zA-Z0-9_] characters as server key responses require. Other algorithms are not understood, so
// callers treat them as absent.
func ValidKeyID(id string) bool {
	version, ok := strings.CutPrefix(id, algEd25519)
	if !ok || version == "" || len(version) > 128 {
		return false
	}
	for i := 0; i < len(version); i++ {
		c := version[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// EncodeBase64 encodes b as unpadded standard base64, the encoding Matrix uses for keys and signatures.
func EncodeBase64(b []byte) string { return base64.RawStdEncoding.EncodeToString(b) }

// DecodeBase64 decodes standard base64 with or without padding, as the specification asks receivers to
// accept. Stray bits in the last character are ignored, as Python's decoder does: the specification's
// own test key seed has them. This gives a signature several spellings, which is harmless because each
// still verifies only the same message. The URL-safe alphabet and wrong padding are refused.
func DecodeBase64(s string) ([]byte, error) {
	if strings.HasSuffix(s, "=") {
		return base64.StdEncoding.DecodeString(s)
	}
	return base64.RawStdEncoding.DecodeString(s)
}

// SignJSON signs the JSON object obj as entity serverName with the ed25519 key keyID and returns the
// object in canonical form with signatures[serverName][keyID] added. Members "signatures" and "unsigned"
// are not covered by the signature; existing signatures by other keys or entities are kept.
func SignJSON(obj []byte, serverName, keyID string, key ed25519.PrivateKey) ([]byte, error) {
	if !ValidServerName(serverName) {
		return nil, fmt.Errorf("sign json: invalid server name %q", serverName)
	}
	if !ValidKeyID(keyID) || len(key) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("sign json: key %q: %w", keyID, ErrBadKey)
	}
	v, err := parseJSON(obj)
	if err != nil {
		return nil, fmt.Errorf("sign json: %w", err)
	}
	if v.kind != kindObject {
		return nil, fmt.Errorf("sign json: %w: not an object", ErrInvalidJSON)
	}
	sig := ed25519.Sign(key, v.without("signatures", "unsigned").appendTo(nil))

	sigs := value{kind: kindObject}
	if old, ok := v.get("signatures"); ok {
		if old.kind != kindObject {
			return nil, fmt.Errorf("sign json: %w: signatures is not an object", ErrInvalidJSON)
		}
		sigs = *old
	}
	entity := value{kind: kindObject}
	if old, ok := sigs.get(serverName); ok {
		if old.kind != kindObject {
			return nil, fmt.Errorf("sign json: %w: signatures.%s is not an object", ErrInvalidJSON, serverName)
		}
		entity = *old
	}
	entity.set(keyID, stringValue(EncodeBase64(sig)))
	sigs.set(serverName, entity)
	v.set("signatures", sigs)
	return v.appendTo(nil), nil
}

// VerifyJSON checks the signature signatures[serverName][keyID] on the JSON object obj against pub.
// It returns ErrSignatureMissing when that signature is absent and ErrBadSignature when it does not
// verify.
func VerifyJSON(obj []byte, serverName, keyID string, pub ed25519.PublicKey) error {
	v, err := parseJSON(obj)
	if err != nil {
		return fmt.Errorf("verify json: %w", err)
	}
	if v.kind != kindObject {
		return fmt.Errorf("verify json: %w: not an object", ErrInvalidJSON)
	}
	return verifyValue(v, serverName, keyID, pub)
}

func verifyValue(v value, serverName, keyID string, pub ed25519.PublicKey) error {
	if !ValidKeyID(keyID) || len(pub) != ed25519.PublicKeySize {
		return fmt.Errorf("verify json: key %q: %w", keyID, ErrBadKey)
	}
	sigs, ok := v.get("signatures")
	if !ok || sigs.kind != kindObject {
		return fmt.Errorf("verify json: %w: no signatures object", ErrSignatureMissing)
	}
	entity, ok := sigs.get(serverName)
	if !ok || entity.kind != kindObject {
		return fmt.Errorf("verify json: %w: nothing signed by %q", ErrSignatureMissing, serverName)
	}
	sig, ok := entity.get(keyID)
	if !ok || sig.kind != kindString {
		return fmt.Errorf("verify json: %w: no signature by %q with %q", ErrSignatureMissing, serverName, keyID)
	}
	return verifyBytes(v.without("signatures", "unsigned").appendTo(nil), sig.text, pub)
}

// verifyBytes checks a base64 ed25519 signature over msg.
func verifyBytes(msg []byte, sigB64 string, pub ed25519.PublicKey) error {
	raw, err := DecodeBase64(sigB64)
	if err != nil || len(raw) != ed25519.SignatureSize {
		return fmt.Errorf("%w: signature is not base64 of %d bytes", ErrBadSignature, ed25519.SignatureSize)
	}
	if !ed25519.Verify(pub, msg, raw) {
		return ErrBadSignature
	}
	return nil
}
