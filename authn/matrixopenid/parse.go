package matrixopenid

import (
	"encoding/json"
	"errors"
	"fmt"
)

// Response size limits: a userinfo answer is one short JSON object, a .well-known/matrix/server file a few
// dozen bytes. Anything larger is not a homeserver speaking the protocol.
const (
	maxUserInfoBytes  = 16 << 10
	maxWellKnownBytes = 16 << 10
)

// parseUserInfo reads the body of a 200 answer of GET /_matrix/federation/v1/openid/userinfo and returns
// its sub after checking the MXID grammar. The answer must be a JSON object; members other than sub are
// ignored, as the Matrix specification allows servers to add them.
func parseUserInfo(body []byte) (string, error) {
	var info struct {
		Sub *string `json:"sub"`
	}
	if err := json.Unmarshal(body, &info); err != nil {
		return "", fmt.Errorf("userinfo is not a JSON object: %w", err)
	}
	if info.Sub == nil {
		return "", errors.New("userinfo has no sub")
	}
	if _, _, err := ParseMXID(*info.Sub); err != nil {
		return "", fmt.Errorf("userinfo sub: %w", err)
	}
	return *info.Sub, nil
}

// parseWellKnown reads a /.well-known/matrix/server document and returns the delegated host and port
// (0 when m.server names none).
func parseWellKnown(body []byte) (host string, port int, err error) {
	var wk struct {
		Server *string `json:"m.server"`
	}
	if err := json.Unmarshal(body, &wk); err != nil {
		return "", 0, fmt.Errorf("well-known is not a JSON object: %w", err)
	}
	if wk.Server == nil {
		return "", 0, errors.New("well-known has no m.server")
	}
	host, port, err = ParseServerName(*wk.Server)
	if err != nil {
		return "", 0, fmt.Errorf("well-known m.server: %w", err)
	}
	return host, port, nil
}
