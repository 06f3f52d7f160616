package directory

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
)

// KVClients keeps the registration services allowed to use the client-credentials step (gematik runs a
// Keycloak realm for this; we keep the client ids and SHA-256 hashes of their secrets with the data).
type KVClients struct {
	KV KV
}

const clientKeyPrefix = "directory/client/"

var clientIDPattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,128}$`)

type clientRecord struct {
	SecretSHA256 string `json:"secretSha256"`
}

// ClientSecretHash implements ClientStore.
func (c KVClients) ClientSecretHash(ctx context.Context, clientID string) (string, error) {
	if !clientIDPattern.MatchString(clientID) {
		return "", fmt.Errorf("client %q: invalid id", clientID)
	}
	data, err := c.KV.GetKV(ctx, clientKeyPrefix+clientID)
	if err != nil {
		return "", fmt.Errorf("client %q: %w", clientID, err)
	}
	var rec clientRecord
	if err := json.Unmarshal(data, &rec); err != nil {
		return "", fmt.Errorf("client %q: %w", clientID, err)
	}
	return rec.SecretSHA256, nil
}

// Register creates or rotates a client and returns its new secret (shown once; only the hash is kept).
func (c KVClients) Register(ctx context.Context, clientID string) (string, error) {
	if !clientIDPattern.MatchString(clientID) {
		return "", fmt.Errorf("client id %q: use letters, digits, '.', '_' and '-' only", clientID)
	}
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", err
	}
	secret := base64.RawURLEncoding.EncodeToString(raw[:])
	sum := sha256.Sum256([]byte(secret))
	data, _ := json.Marshal(clientRecord{SecretSHA256: hex.EncodeToString(sum[:])})
	if err := c.KV.PutKV(ctx, clientKeyPrefix+clientID, data); err != nil {
		return "", fmt.Errorf("client %q: %w", clientID, err)
	}
	return secret, nil
}
