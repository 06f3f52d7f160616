package fhir

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// ErrInvalidMXID is returned by NormalizeMXID for anything that is not a Matrix user ID.
var ErrInvalidMXID = errors.New("invalid Matrix user ID")

// NormalizeMXID returns the Matrix URI form "matrix:u/<localpart>:<server name>" of a Matrix user ID given as
// that URI, as the pre-v1.3.9 provider-API prefix "matrix:user/", or as a legacy "@localpart:server" (old TU
// data, spec §2.4). The localpart must be non-empty and free of ":" and URI delimiters; the server name
// must be a hostname (DNS name or IPv4) or a bracketed IPv6 literal, optionally with a port (Matrix
// server-name grammar). The server name is lower-cased (DNS names are case-insensitive); the localpart is
// kept as given, because historical Matrix localparts may contain upper case. URIs with a query or
// fragment are refused: a directory address is a bare user ID.
func NormalizeMXID(s string) (string, error) {
	var rest string
	switch {
	case strings.HasPrefix(s, "matrix:u/"):
		rest = s[len("matrix:u/"):]
	case strings.HasPrefix(s, "matrix:user/"):
		rest = s[len("matrix:user/"):]
	case strings.HasPrefix(s, "@"):
		rest = s[1:]
	default:
		return "", fmt.Errorf("%w: neither matrix:u/ URI nor @localpart:server", ErrInvalidMXID)
	}
	local, server, ok := strings.Cut(rest, ":")
	if !ok {
		return "", fmt.Errorf("%w: no server name", ErrInvalidMXID)
	}
	if local == "" {
		return "", fmt.Errorf("%w: empty localpart", ErrInvalidMXID)
	}
	for i := 0; i < len(local); i++ {
		if !localpartChar(local[i]) {
			return "", fmt.Errorf("%w: character %q not allowed in localpart", ErrInvalidMXID, local[i])
		}
	}
	server, err := normalizeServerName(server)
	if err != nil {
		return "", err
	}
	return "matrix:u/" + local + ":" + server, nil
}

// localpartChar admits the historical Matrix user-ID characters (printable ASCII) minus those that would
// make the URI ambiguous or are delimiters in it.
func localpartChar(c byte) bool {
	if c <= 0x20 || c >= 0x7f {
		return false
	}
	return !strings.ContainsRune(`:/?#[]@%"<>\^`+"`{|}", rune(c))
}

// normalizeServerName checks the Matrix server-name grammar (hostname [":" port]) and lower-cases it.
func normalizeServerName(s string) (string, error) {
	if s == "" {
		return "", fmt.Errorf("%w: empty server name", ErrInvalidMXID)
	}
	host, port := s, ""
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return "", fmt.Errorf("%w: unterminated IPv6 literal", ErrInvalidMXID)
		}
		host, port = s[:end+1], s[end+1:]
		addr, err := netip.ParseAddr(host[1:end])
		if err != nil || !addr.Is6() || addr.Zone() != "" {
			return "", fmt.Errorf("%w: bad IPv6 literal", ErrInvalidMXID)
		}
		if port != "" && !strings.HasPrefix(port, ":") {
			return "", fmt.Errorf("%w: junk after IPv6 literal", ErrInvalidMXID)
		}
		port = strings.TrimPrefix(port, ":")
		if port == "" && strings.HasSuffix(s, ":") {
			return "", fmt.Errorf("%w: empty port", ErrInvalidMXID)
		}
	} else if i := strings.IndexByte(s, ':'); i >= 0 {
		host, port = s[:i], s[i+1:]
		if port == "" {
			return "", fmt.Errorf("%w: empty port", ErrInvalidMXID)
		}
	}
	if port != "" {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 || len(port) > 5 || port[0] == '+' {
			return "", fmt.Errorf("%w: bad port", ErrInvalidMXID)
		}
	}
	if !strings.HasPrefix(host, "[") && !validHostname(host) {
		return "", fmt.Errorf("%w: bad server name", ErrInvalidMXID)
	}
	return strings.ToLower(s), nil
}

// validHostname accepts a DNS name of non-empty labels of letters, digits and inner hyphens (at most 255
// characters), or a dotted-quad IPv4 address when the last label is numeric (no TLD is numeric).
func validHostname(h string) bool {
	if h == "" || len(h) > 255 {
		return false
	}
	labels := strings.Split(h, ".")
	last := labels[len(labels)-1]
	if last != "" && strings.Trim(last, "0123456789") == "" {
		addr, err := netip.ParseAddr(h)
		return err == nil && addr.Is4()
	}
	for _, l := range labels {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

// NormalizeAddress is the index and query form of an Endpoint address: a Matrix user ID in any accepted
// form becomes its lower-cased Matrix URI (so "@Alice:Tim.Example.de" and "matrix:u/alice:tim.example.de"
// find each other), anything else (KIM mail address, URL) goes through NormalizeString. Package search
// applies it to `address` / `endpoint.address` query values.
func NormalizeAddress(addr string) string {
	if m, err := NormalizeMXID(strings.TrimSpace(addr)); err == nil {
		return strings.ToLower(m)
	}
	return NormalizeString(addr)
}

// isTIM reports whether an Endpoint is a TI-Messenger endpoint (connection type tim, tim-fa or tim-bot of
// gematik's code system, or without a system).
func (e *Endpoint) isTIM() bool {
	if e.ConnectionType == nil {
		return false
	}
	if s := e.ConnectionType.System; s != "" && s != SystemConnectionType {
		return false
	}
	switch e.ConnectionType.Code {
	case "tim", "tim-fa", "tim-bot":
		return true
	}
	return false
}

// Normalize rewrites what the directory stores in canonical form. Today that is the address of a
// TI-Messenger Endpoint: a legacy "@localpart:server" or "matrix:user/" address becomes
// "matrix:u/localpart:server[:port]" with the server name lower-cased. The JSON is rewritten by splicing the
// new string value in place of the old one, so member order, formatting and every other byte stay as they
// were. It reports whether anything changed; an address that is no valid MXID is left alone (Validate
// reports it).
func Normalize(r *Resource) (bool, error) {
	e, ok := r.View.(*Endpoint)
	if !ok || !e.isTIM() || e.Address == "" {
		return false, nil
	}
	norm, err := NormalizeMXID(e.Address)
	if err != nil || norm == e.Address {
		return false, nil
	}
	top, err := scan(r.JSON)
	if err != nil {
		return false, fmt.Errorf("normalize %s/%s: %w", r.ResourceType, r.ID, err)
	}
	sp, ok := top["address"]
	if !ok {
		return false, fmt.Errorf("normalize %s/%s: address member not found", r.ResourceType, r.ID)
	}
	val, err := json.Marshal(norm)
	if err != nil {
		return false, fmt.Errorf("normalize %s/%s: %w", r.ResourceType, r.ID, err)
	}
	out := make([]byte, 0, len(r.JSON)+len(val))
	out = append(out, r.JSON[:sp.start]...)
	out = append(out, val...)
	out = append(out, r.JSON[sp.end:]...)
	if !bytes.Equal(out, r.JSON) {
		r.JSON = out
		e.Address = norm
		return true, nil
	}
	return false, nil
}
