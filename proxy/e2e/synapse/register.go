package synapse

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"
)

// RegisterUser creates a user through the shared-secret admin API (/_synapse/admin/v1/register: fetch a
// nonce, then POST with an HMAC-SHA1 over nonce, user, password and admin flag) and returns the user ID and
// an access token of a fresh device.
func (s *Server) RegisterUser(ctx context.Context, localpart, password string, admin bool) (userID, accessToken string, err error) {
	cfg := s.Config()
	base := "http://" + cfg.Addr + "/_synapse/admin/v1/register"
	client := &http.Client{Timeout: 30 * time.Second}

	var nonceResp struct {
		Nonce string `json:"nonce"`
	}
	if err := doJSON(ctx, client, http.MethodGet, base, nil, &nonceResp); err != nil {
		return "", "", fmt.Errorf("synapse: register %s: nonce: %w", localpart, err)
	}
	if nonceResp.Nonce == "" {
		return "", "", fmt.Errorf("synapse: register %s: empty nonce", localpart)
	}
	body := map[string]any{
		"nonce":    nonceResp.Nonce,
		"username": localpart,
		"password": password,
		"admin":    admin,
		"mac":      registrationMAC(cfg.RegistrationSharedSecret, nonceResp.Nonce, localpart, password, admin),
	}
	var reg struct {
		UserID      string `json:"user_id"`
		AccessToken string `json:"access_token"`
	}
	if err := doJSON(ctx, client, http.MethodPost, base, body, &reg); err != nil {
		return "", "", fmt.Errorf("synapse: register %s: %w", localpart, err)
	}
	if reg.UserID == "" || reg.AccessToken == "" {
		return "", "", fmt.Errorf("synapse: register %s: response lacks user_id or access_token", localpart)
	}
	return reg.UserID, reg.AccessToken, nil
}

// registrationMAC is Synapse's shared-secret registration MAC: hex HMAC-SHA1 keyed with the shared secret over
// nonce, user, password and "admin"/"notadmin", NUL-separated.
func registrationMAC(secret, nonce, user, password string, admin bool) string {
	m := hmac.New(sha1.New, []byte(secret))
	flag := "notadmin"
	if admin {
		flag = "admin"
	}
	for i, part := range []string{nonce, user, password, flag} {
		if i > 0 {
			m.Write([]byte{0})
		}
		m.Write([]byte(part))
	}
	return hex.EncodeToString(m.Sum(nil))
}

// doJSON sends body (if non-nil) as JSON and decodes a 200 answer into out; other statuses become errors
// carrying the Matrix errcode and error.
func doJSON(ctx context.Context, client *http.Client, method, url string, body, out any) error {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("encode request: %w", err)
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, r)
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("read response: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		var mErr struct {
			ErrCode string `json:"errcode"`
			Error   string `json:"error"`
		}
		_ = json.Unmarshal(data, &mErr)
		return fmt.Errorf("HTTP %d %s: %s", resp.StatusCode, mErr.ErrCode, mErr.Error)
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("decode response: %w", err)
	}
	return nil
}
