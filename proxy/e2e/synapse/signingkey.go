package synapse

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// keyIDAlphabet is what Synapse's own generator draws key versions from.
const keyIDAlphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

// ensureSigningKey reads the Synapse signing key file at path, creating it with a fresh key when missing, and
// returns the key version ("a_XXXX") and public key. The file format is Synapse's: one line
// "ed25519 <version> <unpadded base64 of the 32-byte seed>".
func ensureSigningKey(path string) (string, ed25519.PublicKey, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		data = []byte(newSigningKeyLine())
		if err := os.WriteFile(path, data, 0o600); err != nil {
			return "", nil, fmt.Errorf("synapse: write signing key: %w", err)
		}
	} else if err != nil {
		return "", nil, fmt.Errorf("synapse: read signing key: %w", err)
	}
	version, priv, err := parseSigningKey(string(data))
	if err != nil {
		return "", nil, err
	}
	return version, priv.Public().(ed25519.PublicKey), nil
}

// newSigningKeyLine returns the key file line for a new ed25519 key with a random version "a_XXXX".
func newSigningKeyLine() string {
	seed := make([]byte, ed25519.SeedSize)
	_, _ = rand.Read(seed) // crypto/rand.Read never fails
	suffix := make([]byte, 4)
	idx := make([]byte, len(suffix))
	_, _ = rand.Read(idx)
	for i := range suffix {
		suffix[i] = keyIDAlphabet[int(idx[i])%len(keyIDAlphabet)]
	}
	return "ed25519 a_" + string(suffix) + " " + base64.RawStdEncoding.EncodeToString(seed) + "\n"
}

// parseSigningKey parses the first key of a Synapse signing key file.
func parseSigningKey(content string) (string, ed25519.PrivateKey, error) {
	line, _, _ := strings.Cut(strings.TrimSpace(content), "\n")
	fields := strings.Fields(line)
	if len(fields) != 3 || fields[0] != "ed25519" || fields[1] == "" {
		return "", nil, errors.New("synapse: signing key: want \"ed25519 <version> <base64 seed>\"")
	}
	// Synapse writes unpadded base64 but tolerates padding on read
	seed, err := base64.RawStdEncoding.DecodeString(strings.TrimRight(fields[2], "="))
	if err != nil {
		return "", nil, fmt.Errorf("synapse: signing key seed: %w", err)
	}
	if len(seed) != ed25519.SeedSize {
		return "", nil, fmt.Errorf("synapse: signing key seed has %d bytes, want %d", len(seed), ed25519.SeedSize)
	}
	return fields[1], ed25519.NewKeyFromSeed(seed), nil
}

// SigningPrivateKey reads the server's signing key, for tests that must sign federation requests exactly as
// this homeserver would (e.g. to prove an altered body is refused while the unaltered one passes).
func (s *Server) SigningPrivateKey() (ed25519.PrivateKey, error) {
	data, err := os.ReadFile(filepath.Join(s.Config().DataDir, "signing.key"))
	if err != nil {
		return nil, fmt.Errorf("synapse: read signing key: %w", err)
	}
	_, priv, err := parseSigningKey(string(data))
	return priv, err
}
