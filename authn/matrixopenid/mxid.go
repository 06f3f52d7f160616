package matrixopenid

import (
	"errors"
	"net"
	"strconv"
	"strings"
)

// maxMXIDLength is the Matrix limit on a user ID, sigil and domain included (255 bytes).
const maxMXIDLength = 255

// ParseMXID splits a Matrix user ID "@localpart:server.name[:port]" and checks its grammar. The localpart
// follows the historical grammar (any printable ASCII except ':'), because homeservers still carry such
// accounts and a validator that refused them would lock out real users; the server name follows the
// Matrix server-name grammar (ParseServerName).
func ParseMXID(s string) (localpart, serverName string, err error) {
	if len(s) > maxMXIDLength {
		return "", "", errors.New("user ID longer than 255 bytes")
	}
	if !strings.HasPrefix(s, "@") {
		return "", "", errors.New("user ID does not start with @")
	}
	local, server, ok := strings.Cut(s[1:], ":")
	if !ok {
		return "", "", errors.New("user ID has no server name")
	}
	if local == "" {
		return "", "", errors.New("user ID has an empty localpart")
	}
	for i := 0; i < len(local); i++ {
		if c := local[i]; c < 0x21 || c > 0x7e {
			return "", "", errors.New("user ID localpart has a character outside printable ASCII")
		}
	}
	if _, _, err := ParseServerName(server); err != nil {
		return "", "", err
	}
	return local, server, nil
}

// ParseServerName checks a Matrix server name: hostname [":" port], where hostname is an IPv4 literal, a
// bracketed IPv6 literal or a DNS name of letters, digits, '-' and '.'. It returns the host (brackets
// removed) and the port (0 when absent).
func ParseServerName(s string) (host string, port int, err error) {
	if s == "" || len(s) > 255 {
		return "", 0, errors.New("server name empty or too long")
	}
	rest := s
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return "", 0, errors.New("server name has an unterminated IPv6 literal")
		}
		host, rest = s[1:end], s[end+1:]
		if ip := net.ParseIP(host); ip == nil || ip.To4() != nil || strings.Contains(host, "%") {
			return "", 0, errors.New("server name has an invalid IPv6 literal")
		}
	} else {
		i := strings.IndexByte(s, ':')
		if i < 0 {
			host, rest = s, ""
		} else {
			host, rest = s[:i], s[i:]
		}
		if host == "" {
			return "", 0, errors.New("server name has an empty host")
		}
		for j := 0; j < len(host); j++ {
			c := host[j]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
				return "", 0, errors.New("server name host has an invalid character")
			}
		}
	}
	if rest == "" {
		return host, 0, nil
	}
	if rest[0] != ':' || len(rest) < 2 || len(rest) > 6 {
		return "", 0, errors.New("server name has an invalid port")
	}
	for j := 1; j < len(rest); j++ {
		if rest[j] < '0' || rest[j] > '9' {
			return "", 0, errors.New("server name has an invalid port")
		}
	}
	p, err := strconv.Atoi(rest[1:])
	if err != nil || p < 1 || p > 65535 {
		return "", 0, errors.New("server name port out of range")
	}
	return host, p, nil
}

// sameServer compares server names as DNS does: case-insensitively.
func sameServer(a, b string) bool { return strings.EqualFold(a, b) }
