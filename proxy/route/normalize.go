// Package route owns the Messenger-Proxy's endpoint allow-list: it refuses ambiguous request targets before
// routing (normalize.go) and matches what remains against explicit Matrix v1.11 route tables (table.go,
// routes_client.go, routes_federation.go).
//
// The two halves belong together. The proxy decides on the path it sees, while Synapse (Twisted) routes on the
// raw request path with regular expressions and decodes each captured segment with Python's
// urllib.parse.unquote. Every target CheckTarget accepts has exactly one reading: the raw segments split on
// '/' are the segments Synapse splits on, and decoding a segment once gives the value Synapse sees. Lookup
// then compares literal segments raw, as Synapse's regular expressions do, so "createRo%6Fm" is not
// createRoom for the proxy either.
//
// Decisions a reviewer should know:
//   - "%25" followed by two hex digits is refused (double encoding): one more decoding anywhere downstream
//     would turn "%252F" into a slash. "%25" followed by anything else is a literal percent sign.
//   - Raw characters outside RFC 3986 pchar are refused in the path; the query is opaque apart from control
//     bytes, malformed escapes, encoded NUL/CR/LF and raw ';'.
//   - A decoded segment must be valid UTF-8: Python's unquote would substitute U+FFFD where Go keeps bytes.
//   - HEAD is looked up as GET, as Synapse does; OPTIONS is on no route (CORS preflights are answered before
//     routing).
//   - Trailing slashes exist only where the spec has them (the empty state key, GET /pushrules/).
//   - Synapse's extra doors are closed: transaction variants of createRoom, join, membership, send and
//     redact, the unstable and api/v1 prefixes for stable endpoints, and federation trailing slashes.
package route

import (
	"strings"
	"unicode/utf8"
)

// MaxTargetLen is the longest request target CheckTarget accepts, in bytes. Matrix paths and queries are far
// shorter; longer targets are probes or smuggling attempts.
const MaxTargetLen = 8 << 10

// Reasons an ambiguous target is refused. They are the values of AmbiguousError.Why: fixed strings that never
// contain input, so they can be logged and counted as they are.
const (
	WhyEmpty           = "empty request target"
	WhyTooLong         = "request target too long"
	WhyAbsoluteForm    = "absolute-form request target"
	WhyAuthorityForm   = "authority-form request target"
	WhyAsteriskForm    = "asterisk-form request target without OPTIONS"
	WhyFragment        = "fragment in request target"
	WhyBackslash       = "backslash in request target"
	WhyRawByte         = "control, space or non-ASCII byte in request target"
	WhyPathChar        = "character not allowed in a path segment"
	WhyBadEscape       = "malformed percent escape"
	WhyEncodedSlash    = "encoded slash or backslash in path"
	WhyEncodedControl  = "encoded control character"
	WhyDoubleEncoding  = "double percent-encoding"
	WhyInvalidUTF8     = "path segment is not valid UTF-8 after decoding"
	WhyDotSegment      = "dot segment in path"
	WhyEmptySegment    = "empty path segment (double slash)"
	WhyPathParameter   = "path parameter (;) in path"
	WhyPrefixSpelling  = "top-level path prefix in the wrong case or percent-encoded"
	WhyEncodedQueryCtl = "encoded NUL, CR or LF in query"
	WhyQuerySemicolon  = "semicolon in query"
)

// AmbiguousError says why a request target was refused before routing. Why is one of the Why… constants.
type AmbiguousError struct {
	Why string
}

// Error implements error.
func (e *AmbiguousError) Error() string { return "ambiguous request target: " + e.Why }

func ambiguous(why string) error { return &AmbiguousError{Why: why} }

// Target is a request target that has exactly one reading.
type Target struct {
	// Path is the path exactly as received, still percent-encoded; this is what is forwarded.
	Path string
	// Segments are the path segments after the leading '/', each percent-decoded once. A trailing slash gives
	// a final empty segment; no other segment is empty. None contains '/' or '\' or is "." or "..".
	Segments []string
	// RawQuery is the query without the '?', as received.
	RawQuery string

	// raw holds the undecoded segments, for literal matching in Lookup.
	raw []string
}

// topLevel are the first path segments the homeserver serves. A spelling that differs only in case or in
// percent-encoding is refused: Twisted walks its resource tree on decoded segments, so "/%5Fmatrix/…" can
// reach a resource the proxy would not recognise as such.
var topLevel = [...]string{"_matrix", "_synapse", ".well-known"}

// CheckTarget refuses request targets that a proxy and a homeserver could read differently, and splits the
// rest into a Target. It expects the request-target of the request line (http.Request.RequestURI) on a
// reverse-proxy listener, where only origin-form is meaningful ("OPTIONS *" is let through with Path "*",
// which matches no route).
func CheckTarget(method, requestURI string) (Target, error) {
	switch {
	case requestURI == "":
		return Target{}, ambiguous(WhyEmpty)
	case len(requestURI) > MaxTargetLen:
		return Target{}, ambiguous(WhyTooLong)
	case requestURI == "*":
		if method == "OPTIONS" {
			return Target{Path: "*"}, nil
		}
		return Target{}, ambiguous(WhyAsteriskForm)
	case requestURI[0] != '/':
		if strings.Contains(requestURI, "://") {
			return Target{}, ambiguous(WhyAbsoluteForm)
		}
		return Target{}, ambiguous(WhyAuthorityForm)
	}
	for i := 0; i < len(requestURI); i++ {
		switch c := requestURI[i]; {
		case c <= ' ' || c >= 0x7f:
			return Target{}, ambiguous(WhyRawByte)
		case c == '#':
			return Target{}, ambiguous(WhyFragment)
		case c == '\\':
			return Target{}, ambiguous(WhyBackslash)
		}
	}

	path, query, _ := strings.Cut(requestURI, "?")
	if err := checkQuery(query); err != nil {
		return Target{}, err
	}

	// One allocation for both slices; segments without escapes share the target's memory.
	n := strings.Count(path, "/")
	buf := make([]string, 2*n)
	raw, decoded := buf[:n:n], buf[n:]
	rest := path[1:]
	for i := range n - 1 {
		raw[i], rest, _ = strings.Cut(rest, "/")
	}
	raw[n-1] = rest
	for i, seg := range raw {
		if seg == "" && i != len(raw)-1 {
			return Target{}, ambiguous(WhyEmptySegment)
		}
		d, err := decodeSegment(seg)
		if err != nil {
			return Target{}, err
		}
		decoded[i] = d
	}
	for _, p := range topLevel {
		if strings.EqualFold(decoded[0], p) && raw[0] != p {
			return Target{}, ambiguous(WhyPrefixSpelling)
		}
	}
	return Target{Path: path, Segments: decoded, RawQuery: query, raw: raw}, nil
}

// decodeSegment checks one raw path segment and percent-decodes it once, the way Python's
// urllib.parse.unquote does for the escapes it accepts.
func decodeSegment(seg string) (string, error) {
	if seg == "." || seg == ".." {
		return "", ambiguous(WhyDotSegment)
	}
	escapes := false
	for i := 0; i < len(seg); i++ {
		c := seg[i]
		switch {
		case c == '%':
			if i+2 >= len(seg) || !isHex(seg[i+1]) || !isHex(seg[i+2]) {
				return "", ambiguous(WhyBadEscape)
			}
			escapes = true
			i += 2
		case c == ';':
			return "", ambiguous(WhyPathParameter)
		case !isPathChar(c):
			return "", ambiguous(WhyPathChar)
		}
	}
	if !escapes {
		return seg, nil
	}
	var b strings.Builder
	b.Grow(len(seg))
	for i := 0; i < len(seg); i++ {
		c := seg[i]
		if c != '%' {
			b.WriteByte(c)
			continue
		}
		d := unhex(seg[i+1])<<4 | unhex(seg[i+2])
		i += 2
		switch {
		case d == '/' || d == '\\':
			return "", ambiguous(WhyEncodedSlash)
		case d < ' ' || d == 0x7f:
			return "", ambiguous(WhyEncodedControl)
		}
		b.WriteByte(d)
	}
	out := b.String()
	if out == "." || out == ".." {
		return "", ambiguous(WhyDotSegment)
	}
	if hasEscape(out) {
		// "%252F" decodes to "%2F": one more decoding anywhere downstream would produce a slash.
		return "", ambiguous(WhyDoubleEncoding)
	}
	if !utf8.ValidString(out) {
		// Python's unquote would substitute U+FFFD where Go keeps the bytes: two different values.
		return "", ambiguous(WhyInvalidUTF8)
	}
	return out, nil
}

// checkQuery refuses malformed escapes, encoded NUL, CR and LF, and raw semicolons in the query. Raw control
// bytes were refused for the whole target already. The query is otherwise opaque to routing. Semicolons are
// refused because parsers disagree on them: Go's url.ParseQuery drops a pair that holds one, Python's parse_qs
// (Twisted) keeps it as part of the value, so "kind=user;kind=guest" would read differently on each side.
func checkQuery(q string) error {
	for i := 0; i < len(q); i++ {
		if q[i] == ';' {
			return ambiguous(WhyQuerySemicolon)
		}
		if q[i] != '%' {
			continue
		}
		if i+2 >= len(q) || !isHex(q[i+1]) || !isHex(q[i+2]) {
			return ambiguous(WhyBadEscape)
		}
		switch unhex(q[i+1])<<4 | unhex(q[i+2]) {
		case 0, '\r', '\n':
			return ambiguous(WhyEncodedQueryCtl)
		}
		i += 2
	}
	return nil
}

// isPathChar reports whether c may appear unencoded in a path segment: RFC 3986 pchar without '%' (handled
// by the caller) and without ';' (refused as a path parameter).
func isPathChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	switch c {
	case '-', '.', '_', '~', // unreserved
		'!', '$', '&', '\'', '(', ')', '*', '+', ',', '=', // sub-delims without ';'
		':', '@':
		return true
	}
	return false
}

// hasEscape reports whether s contains a percent sign followed by two hex digits.
func hasEscape(s string) bool {
	for i := strings.IndexByte(s, '%'); i >= 0 && i+2 < len(s); {
		if isHex(s[i+1]) && isHex(s[i+2]) {
			return true
		}
		j := strings.IndexByte(s[i+1:], '%')
		if j < 0 {
			return false
		}
		i += 1 + j
	}
	return false
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}
