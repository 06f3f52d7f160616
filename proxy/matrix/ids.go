package matrix

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// ErrInvalidUserID is returned (wrapped) by ParseUserID.
var ErrInvalidUserID = errors.New("matrix: invalid user ID")

// maxUserIDLen is the specification's limit on a whole user ID, sigil and domain included, in bytes.
const maxUserIDLen = 255

// ParseUserID splits a Matrix user ID "@localpart:server" into its parts. Localparts are accepted from
// the historical character set (printable ASCII except ':'), which the specification requires servers to
// read; use IsStrictLocalpart to check the set new IDs must use. The server part must satisfy
// ValidServerName and the whole ID must not exceed 255 bytes.
func ParseUserID(s string) (localpart, server string, err error) {
	if len(s) > maxUserIDLen {
		return "", "", fmt.Errorf("%w: longer than %d bytes", ErrInvalidUserID, maxUserIDLen)
	}
	rest, ok := strings.CutPrefix(s, "@")
	if !ok {
		return "", "", fmt.Errorf("%w: missing '@' sigil", ErrInvalidUserID)
	}
	localpart, server, ok = strings.Cut(rest, ":")
	if !ok {
		return "", "", fmt.Errorf("%w: missing ':' before the server name", ErrInvalidUserID)
	}
	if localpart == "" {
		return "", "", fmt.Errorf("%w: empty localpart", ErrInvalidUserID)
	}
	for i := 0; i < len(localpart); i++ {
		if c := localpart[i]; c < 0x21 || c > 0x7e {
			return "", "", fmt.Errorf("%w: character %q not allowed in a localpart", ErrInvalidUserID, c)
		}
	}
	if !ValidServerName(server) {
		return "", "", fmt.Errorf("%w: invalid server name", ErrInvalidUserID)
	}
	return localpart, server, nil
}

// IsStrictLocalpart reports whether localpart uses only the characters the specification (since v1.8)
// allows in new user IDs: a-z, 0-9, and . _ = - / +.
func IsStrictLocalpart(localpart string) bool {
	if localpart == "" {
		return false
	}
	for i := 0; i < len(localpart); i++ {
		c := localpart[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || strings.IndexByte("._=-/+", c) >= 0) {
			return false
		}
	}
	return true
}

// ValidServerName reports whether s is a Matrix server name: a DNS name, a dotted-quad IPv4 literal or a
// bracketed IPv6 literal, optionally followed by ":port" with port 1-65535.
//
// DNS names follow the "conventional restrictions" the specification points to (RFC 1123): labels of
// 1-63 letters, digits and hyphens, not starting or ending with a hyphen, no empty label, at most 255
// characters. A name whose last label is all digits must be a valid IPv4 literal (no leading zeros),
// so "1.2.3", "256.0.0.1" and "01.2.3.4", which resolvers may read as addresses, are refused.
func ValidServerName(s string) bool {
	host, port, ok := splitServerName(s)
	if !ok {
		return false
	}
	if port != "" && !validPort(port) {
		return false
	}
	if strings.HasPrefix(host, "[") {
		return validIPv6Literal(host)
	}
	return validDNSOrIPv4(host)
}

// ServerNameHost returns the host of server name s without its port, lower-cased, for comparisons with
// lists of domains (DNS is case-insensitive even though Matrix server names are compared exactly). An
// IPv6 literal keeps its brackets. It returns "" when s is not a valid server name.
func ServerNameHost(s string) string {
	if !ValidServerName(s) {
		return ""
	}
	host, _, _ := splitServerName(s)
	return strings.ToLower(host)
}

// splitServerName separates host and port; port is "" when absent. ok is false when a ':' is present
// but the port is empty.
func splitServerName(s string) (host, port string, ok bool) {
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return "", "", false
		}
		host, rest := s[:end+1], s[end+1:]
		if rest == "" {
			return host, "", true
		}
		port, ok := strings.CutPrefix(rest, ":")
		return host, port, ok && port != ""
	}
	host, port, found := strings.Cut(s, ":")
	if found && port == "" {
		return "", "", false
	}
	return host, port, true
}

func validPort(p string) bool {
	if len(p) > 5 {
		return false
	}
	for i := 0; i < len(p); i++ {
		if !isDigit(p[i]) {
			return false
		}
	}
	n, err := strconv.Atoi(p)
	return err == nil && n >= 1 && n <= 65535
}

func validIPv6Literal(h string) bool {
	inner := h[1 : len(h)-1]
	if len(inner) < 2 || len(inner) > 45 {
		return false
	}
	for i := 0; i < len(inner); i++ {
		c := inner[i]
		if !(isDigit(c) || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' || c == ':' || c == '.') {
			return false
		}
	}
	a, err := netip.ParseAddr(inner)
	return err == nil && a.Is6()
}

func validDNSOrIPv4(h string) bool {
	if h == "" || len(h) > 255 {
		return false
	}
	labels := strings.Split(h, ".")
	for _, l := range labels {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !(isDigit(c) || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '-') {
				return false
			}
		}
	}
	if !allDigits(labels[len(labels)-1]) {
		return true
	}
	if len(labels) != 4 {
		return false
	}
	for _, l := range labels {
		if !allDigits(l) || len(l) > 3 || (len(l) > 1 && l[0] == '0') {
			return false
		}
		if n, _ := strconv.Atoi(l); n > 255 {
			return false
		}
	}
	return true
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return s != ""
}
