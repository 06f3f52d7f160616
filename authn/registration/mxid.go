package registration

import (
	"errors"
	"fmt"
	"strings"
)

// ParseMXID splits a Matrix user ID "@localpart:server" and checks both parts (user-ID grammar of the
// Matrix spec, appendix "User Identifiers": historical localparts allowed, 255 bytes at most).
func ParseMXID(s string) (localpart, server string, err error) {
	if len(s) > 255 {
		return "", "", errors.New("user ID longer than 255 bytes")
	}
	if !strings.HasPrefix(s, "@") {
		return "", "", errors.New("user ID must start with @")
	}
	local, server, ok := strings.Cut(s[1:], ":")
	if !ok || local == "" {
		return "", "", errors.New("user ID must be @localpart:server")
	}
	for _, c := range local {
		if c < 0x21 || c > 0x7e || c == ':' {
			return "", "", fmt.Errorf("invalid character %q in localpart", c)
		}
	}
	if err := validServerName(server); err != nil {
		return "", "", fmt.Errorf("server name: %w", err)
	}
	return local, server, nil
}
