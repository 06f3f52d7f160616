package forward

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// Target is the authority a tunnel or an absolute-form request names: where the homeserver wants to go.
// Host is normalised: lower case, no trailing dot, IPv6 literals without brackets.
type Target struct {
	Host string
	Port int
}

// String renders the target as a dialable authority ("host:port", IPv6 in brackets).
func (t Target) String() string { return net.JoinHostPort(t.Host, strconv.Itoa(t.Port)) }

// errBadAuthority is wrapped by every authority parsing failure so callers can answer 400 uniformly.
var errBadAuthority = errors.New("invalid authority")

// parseAuthority parses an authority: the request target of a CONNECT request (RFC 9110 §9.3.6, port
// mandatory: defaultPort 0) or a Host header / absolute URL authority (port optional, defaultPort used). Userinfo, paths, zones and anything that is neither a DNS name nor an IP
// literal are refused: the proxy only ever tunnels to names it can mint a certificate for and check.
func parseAuthority(s string, defaultPort int) (Target, error) {
	if s == "" || len(s) > 300 {
		return Target{}, fmt.Errorf("%w: empty or too long", errBadAuthority)
	}
	if strings.ContainsAny(s, "@/?#\\ \t%") {
		return Target{}, fmt.Errorf("%w: unexpected character", errBadAuthority)
	}
	var host, portStr string
	hasPort := true
	switch {
	case strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]"):
		host, hasPort = s[1:len(s)-1], false
	case strings.HasPrefix(s, "["), strings.Count(s, ":") == 1:
		h, p, err := net.SplitHostPort(s)
		if err != nil {
			return Target{}, fmt.Errorf("%w: %v", errBadAuthority, err)
		}
		host, portStr = h, p
	case strings.Contains(s, ":"):
		return Target{}, fmt.Errorf("%w: IPv6 literal without brackets", errBadAuthority)
	default:
		host, hasPort = s, false
	}
	port := defaultPort
	if hasPort {
		p, err := parsePort(portStr)
		if err != nil {
			return Target{}, err
		}
		port = p
	} else if defaultPort == 0 {
		return Target{}, fmt.Errorf("%w: port missing", errBadAuthority)
	}
	if strings.HasPrefix(s, "[") && !strings.Contains(host, ":") {
		return Target{}, fmt.Errorf("%w: brackets around a non-IPv6 host", errBadAuthority)
	}
	h, err := normaliseHost(host)
	if err != nil {
		return Target{}, err
	}
	return Target{Host: h, Port: port}, nil
}

// parsePort accepts 1-65535 in plain decimal digits; strconv alone would also take a sign ("+443").
func parsePort(s string) (int, error) {
	if s == "" || len(s) > 5 {
		return 0, fmt.Errorf("%w: bad port", errBadAuthority)
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("%w: bad port", errBadAuthority)
		}
	}
	p, err := strconv.Atoi(s)
	if err != nil || p < 1 || p > 65535 {
		return 0, fmt.Errorf("%w: port out of range", errBadAuthority)
	}
	return p, nil
}

// normaliseHost returns the canonical form of a DNS name or IP literal (without brackets), or an error.
// DNS names follow the Matrix server-name grammar (letters, digits, hyphens, dots), at most 253 characters,
// labels of 1-63 characters. A name whose last label is numeric but which is no valid IP literal
// ("1.2.3", "256.0.0.1") is refused, since resolvers disagree on what it means.
func normaliseHost(host string) (string, error) {
	if host == "" {
		return "", fmt.Errorf("%w: empty host", errBadAuthority)
	}
	if strings.Contains(host, ":") {
		a, err := netip.ParseAddr(host)
		if err != nil || !a.Is6() || a.Zone() != "" {
			return "", fmt.Errorf("%w: bad IPv6 literal", errBadAuthority)
		}
		return a.String(), nil
	}
	if a, err := netip.ParseAddr(host); err == nil {
		return a.String(), nil
	}
	h := strings.ToLower(strings.TrimSuffix(host, "."))
	if h == "" || len(h) > 253 {
		return "", fmt.Errorf("%w: bad host name length", errBadAuthority)
	}
	labels := strings.Split(h, ".")
	for _, l := range labels {
		if l == "" || len(l) > 63 {
			return "", fmt.Errorf("%w: bad label length", errBadAuthority)
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
				return "", fmt.Errorf("%w: bad character in host name", errBadAuthority)
			}
		}
		if l[0] == '-' || l[len(l)-1] == '-' {
			return "", fmt.Errorf("%w: label starts or ends with a hyphen", errBadAuthority)
		}
	}
	last := labels[len(labels)-1]
	if strings.Trim(last, "0123456789") == "" {
		return "", fmt.Errorf("%w: numeric host that is not an IP literal", errBadAuthority)
	}
	return h, nil
}
