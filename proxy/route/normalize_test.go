package route

import (
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// acceptedTargets are request targets with exactly one reading, with the segments both Go and Synapse see.
var acceptedTargets = []struct {
	name     string
	target   string
	segments []string
	query    string
}{
	{"a plain sync path is split into its segments", "/_matrix/client/v3/sync?since=s72594_4483_1934&timeout=30000",
		[]string{"_matrix", "client", "v3", "sync"}, "since=s72594_4483_1934&timeout=30000"},
	{"an encoded room ID is decoded once", "/_matrix/client/v3/rooms/%21abc%3Ahs1.tim.test/invite",
		[]string{"_matrix", "client", "v3", "rooms", "!abc:hs1.tim.test", "invite"}, ""},
	{"a raw room ID with ! and : is kept", "/_matrix/client/v3/rooms/!abc:hs1.tim.test/invite",
		[]string{"_matrix", "client", "v3", "rooms", "!abc:hs1.tim.test", "invite"}, ""},
	{"a user ID with encoded @ and : is decoded", "/_matrix/client/v3/profile/%40alice%3Ahs1.tim.test",
		[]string{"_matrix", "client", "v3", "profile", "@alice:hs1.tim.test"}, ""},
	{"an event ID with $ is kept", "/_matrix/client/v3/rooms/!r:hs1/event/$xyz-AB_c",
		[]string{"_matrix", "client", "v3", "rooms", "!r:hs1", "event", "$xyz-AB_c"}, ""},
	{"an encoded $ in an event ID is decoded", "/_matrix/client/v3/rooms/!r:hs1/event/%24xyz",
		[]string{"_matrix", "client", "v3", "rooms", "!r:hs1", "event", "$xyz"}, ""},
	{"a room alias with encoded # is decoded", "/_matrix/client/v3/directory/room/%23team%3Ahs1.tim.test",
		[]string{"_matrix", "client", "v3", "directory", "room", "#team:hs1.tim.test"}, ""},
	{"a trailing slash gives an empty last segment", "/_matrix/client/v3/rooms/!r:hs1/state/m.room.join_rules/",
		[]string{"_matrix", "client", "v3", "rooms", "!r:hs1", "state", "m.room.join_rules", ""}, ""},
	{"a push rule ID starting with a dot is not a dot segment", "/_matrix/client/v3/pushrules/global/override/.m.rule.master",
		[]string{"_matrix", "client", "v3", "pushrules", "global", "override", ".m.rule.master"}, ""},
	{"three dots are not a dot segment", "/_matrix/client/v3/rooms/!r:hs1/state/x/...",
		[]string{"_matrix", "client", "v3", "rooms", "!r:hs1", "state", "x", "..."}, ""},
	{"encoded UTF-8 in a tag is decoded", "/_matrix/client/v3/user/@a:hs1/rooms/!r:hs1/tags/u.%C3%A4rzte",
		[]string{"_matrix", "client", "v3", "user", "@a:hs1", "rooms", "!r:hs1", "tags", "u.ärzte"}, ""},
	{"an encoded space in a state key is decoded", "/_matrix/client/v3/rooms/!r:hs1/state/x/a%20b",
		[]string{"_matrix", "client", "v3", "rooms", "!r:hs1", "state", "x", "a b"}, ""},
	{"a plus sign stays a plus sign", "/_matrix/client/v3/rooms/!r:hs1/send/m.room.message/a+b",
		[]string{"_matrix", "client", "v3", "rooms", "!r:hs1", "send", "m.room.message", "a+b"}, ""},
	{"an encoded percent sign not followed by hex is a literal percent", "/_matrix/client/v3/rooms/!r:hs1/send/m.room.message/50%25off",
		[]string{"_matrix", "client", "v3", "rooms", "!r:hs1", "send", "m.room.message", "50%off"}, ""},
	{"an encoded semicolon is data, not a path parameter", "/_matrix/client/v3/rooms/!r:hs1/state/x/a%3Bb",
		[]string{"_matrix", "client", "v3", "rooms", "!r:hs1", "state", "x", "a;b"}, ""},
	{"lower-case hex escapes are accepted", "/_matrix/client/v3/profile/%40alice%3ahs1",
		[]string{"_matrix", "client", "v3", "profile", "@alice:hs1"}, ""},
	{"the root path has one empty segment", "/", []string{""}, ""},
	{"an empty query is kept empty", "/_matrix/client/versions?", []string{"_matrix", "client", "versions"}, ""},
	{"a query may contain slashes, question marks and JSON", `/_matrix/client/v3/sync?filter={"room":{}}&x=/a?b`,
		[]string{"_matrix", "client", "v3", "sync"}, `filter={"room":{}}&x=/a?b`},
	{"an encoded slash in the query is data", "/_matrix/client/v3/rooms/!r:hs1/messages?from=t%2F1",
		[]string{"_matrix", "client", "v3", "rooms", "!r:hs1", "messages"}, "from=t%2F1"},
	{"a federation key path is split", "/_matrix/key/v2/query/hs2.tim.test/ed25519:abc",
		[]string{"_matrix", "key", "v2", "query", "hs2.tim.test", "ed25519:abc"}, ""},
	{"well-known is accepted in its own spelling", "/.well-known/matrix/server",
		[]string{".well-known", "matrix", "server"}, ""},
	{"a media file name with parentheses and quote is kept", "/_matrix/media/v3/download/hs1/abc/Befund%20(1)'s.pdf",
		[]string{"_matrix", "media", "v3", "download", "hs1", "abc", "Befund (1)'s.pdf"}, ""},
	{"a repeated query parameter is kept for the handler", "/_matrix/client/v3/register?kind=user&kind=guest",
		[]string{"_matrix", "client", "v3", "register"}, "kind=user&kind=guest"},
	{"plus signs, blank values and encoded JSON in the query", "/_matrix/client/v3/sync?a=1+2&b=%2B&c&d=&filter=%7B%22a%22%3A1%7D",
		[]string{"_matrix", "client", "v3", "sync"}, "a=1+2&b=%2B&c&d=&filter=%7B%22a%22%3A1%7D"},
	{"an encoded semicolon in the query is data", "/_matrix/client/v3/register?kind=user%3Bkind%3Dguest",
		[]string{"_matrix", "client", "v3", "register"}, "kind=user%3Bkind%3Dguest"},
	{"an encoded tilde is decoded", "/_matrix/client/v3/rooms/!r:hs1/state/x/%7Ea",
		[]string{"_matrix", "client", "v3", "rooms", "!r:hs1", "state", "x", "~a"}, ""},
}

func TestCheckTargetAccepts(t *testing.T) {
	t.Parallel()
	for _, tc := range acceptedTargets {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := CheckTarget("GET", tc.target)
			if err != nil {
				t.Fatalf("CheckTarget(%q): %v", tc.target, err)
			}
			wantPath, _, _ := strings.Cut(tc.target, "?")
			if got.Path != wantPath {
				t.Errorf("Path = %q; want %q", got.Path, wantPath)
			}
			if diff := cmp.Diff(tc.segments, got.Segments); diff != "" {
				t.Errorf("Segments (-want +got):\n%s", diff)
			}
			if got.RawQuery != tc.query {
				t.Errorf("RawQuery = %q; want %q", got.RawQuery, tc.query)
			}
		})
	}
}

func TestCheckTargetOptionsAsterisk(t *testing.T) {
	t.Parallel()
	got, err := CheckTarget("OPTIONS", "*")
	if err != nil || got.Path != "*" || len(got.Segments) != 0 {
		t.Fatalf("OPTIONS * = %+v, %v; want Path \"*\" without segments", got, err)
	}
	if _, err := ClientTable().Lookup("OPTIONS", got); !errors.Is(err, ErrUnknownEndpoint) {
		t.Errorf("Lookup(OPTIONS *) = %v; want ErrUnknownEndpoint", err)
	}
}

// refusedTargets is the ambiguity corpus: each target must be refused for the stated reason.
var refusedTargets = []struct {
	name   string
	method string
	target string
	why    string
}{
	{"an empty target is refused", "GET", "", WhyEmpty},
	{"a target over 8 KiB is refused", "GET", "/_matrix/client/v3/sync?x=" + strings.Repeat("a", MaxTargetLen), WhyTooLong},
	{"an absolute-form target is refused", "GET", "http://hs1.tim.test/_matrix/client/v3/sync", WhyAbsoluteForm},
	{"an absolute-form https target is refused", "GET", "https://evil.example/_matrix/client/versions", WhyAbsoluteForm},
	{"an authority-form CONNECT target is refused", "CONNECT", "hs1.tim.test:443", WhyAuthorityForm},
	{"a relative target is refused", "GET", "_matrix/client/versions", WhyAuthorityForm},
	{"an asterisk with GET is refused", "GET", "*", WhyAsteriskForm},
	{"a fragment is refused", "GET", "/_matrix/client/versions#x", WhyFragment},
	{"a fragment after the query is refused", "GET", "/_matrix/client/v3/sync?a=b#c", WhyFragment},
	{"a backslash separator is refused", "GET", "/_matrix/client/v3\\createRoom", WhyBackslash},
	{"a backslash dot segment is refused", "GET", "/_matrix/client/v3/rooms/..\\..\\admin", WhyBackslash},
	{"a backslash in the query is refused", "GET", "/_matrix/client/v3/sync?a=\\", WhyBackslash},
	{"a raw space is refused", "GET", "/_matrix/client/v3/rooms/a b/invite", WhyRawByte},
	{"a raw tab is refused", "GET", "/_matrix/client/v3/sync\t", WhyRawByte},
	{"a raw NUL is refused", "GET", "/_matrix/client/v3/sync\x00", WhyRawByte},
	{"a raw CR LF is refused", "GET", "/_matrix/client/v3/sync\r\nX-Injected: 1", WhyRawByte},
	{"a raw DEL is refused", "GET", "/_matrix/client/v3/sync\x7f", WhyRawByte},
	{"a raw non-ASCII byte is refused", "GET", "/_matrix/client/v3/rooms/\xc3\xa4/invite", WhyRawByte},
	{"a raw control byte in the query is refused", "GET", "/_matrix/client/v3/sync?a=\x01", WhyRawByte},
	{"a dot segment is refused", "GET", "/_matrix/client/v3/./createRoom", WhyDotSegment},
	{"a dot-dot segment is refused", "GET", "/_matrix/client/v3/rooms/../createRoom", WhyDotSegment},
	{"a trailing dot-dot segment is refused", "GET", "/_matrix/client/v3/rooms/..", WhyDotSegment},
	{"an encoded dot segment is refused", "GET", "/_matrix/client/v3/%2e/createRoom", WhyDotSegment},
	{"an upper-case encoded dot segment is refused", "GET", "/_matrix/client/v3/%2E/createRoom", WhyDotSegment},
	{"an encoded dot-dot segment is refused", "GET", "/_matrix/client/v3/rooms/%2e%2e/createRoom", WhyDotSegment},
	{"a mixed-case encoded dot-dot segment is refused", "GET", "/_matrix/client/v3/rooms/%2E%2e/createRoom", WhyDotSegment},
	{"a half-encoded dot-dot segment is refused", "GET", "/_matrix/client/v3/rooms/.%2e/createRoom", WhyDotSegment},
	{"a dot-dot in the room ID position is refused", "POST", "/_matrix/client/v3/rooms/../../_synapse/admin/v1/users/invite", WhyDotSegment},
	{"a double slash is refused", "GET", "/_matrix/client/v3//createRoom", WhyEmptySegment},
	{"a leading double slash is refused", "GET", "//_matrix/client/v3/createRoom", WhyEmptySegment},
	{"an empty room ID is refused", "POST", "/_matrix/client/v3/rooms//invite", WhyEmptySegment},
	{"a double trailing slash is refused", "GET", "/_matrix/client/v3/pushrules//", WhyEmptySegment},
	{"an encoded slash is refused", "GET", "/_matrix/client/v3/rooms/a%2Fb/invite", WhyEncodedSlash},
	{"a lower-case encoded slash is refused", "GET", "/_matrix/client/v3/rooms/a%2fb/invite", WhyEncodedSlash},
	{"an encoded slash in a state key is refused", "PUT", "/_matrix/client/v3/rooms/!r:hs1/state/m.room.member/%2F", WhyEncodedSlash},
	{"an encoded backslash is refused", "GET", "/_matrix/client/v3/rooms/a%5Cb/invite", WhyEncodedSlash},
	{"a lower-case encoded backslash is refused", "GET", "/_matrix/client/v3/rooms/a%5cb/invite", WhyEncodedSlash},
	{"an encoded slash in the prefix is refused", "GET", "/_matrix%2Fclient/v3/sync", WhyEncodedSlash},
	{"a path parameter is refused", "GET", "/_matrix/client/v3/createRoom;x=1", WhyPathParameter},
	{"a path parameter on a prefix segment is refused", "GET", "/_matrix;/client/v3/sync", WhyPathParameter},
	{"a bare semicolon segment is refused", "GET", "/_matrix/client/v3/rooms/;/invite", WhyPathParameter},
	{"an encoded NUL is refused", "GET", "/_matrix/client/v3/rooms/a%00/invite", WhyEncodedControl},
	{"an encoded CR is refused", "GET", "/_matrix/client/v3/rooms/a%0D/invite", WhyEncodedControl},
	{"an encoded LF is refused", "GET", "/_matrix/client/v3/rooms/a%0a/invite", WhyEncodedControl},
	{"an encoded tab is refused", "GET", "/_matrix/client/v3/rooms/a%09/invite", WhyEncodedControl},
	{"an encoded DEL is refused", "GET", "/_matrix/client/v3/rooms/a%7F/invite", WhyEncodedControl},
	{"an encoded NUL in the query is refused", "GET", "/_matrix/client/v3/sync?since=a%00", WhyEncodedQueryCtl},
	{"an encoded CR LF in the query is refused", "GET", "/_matrix/client/v3/sync?a=%0d%0aX:1", WhyEncodedQueryCtl},
	{"a semicolon separator in the query is refused", "POST", "/_matrix/client/v3/register?kind=user;kind=guest", WhyQuerySemicolon},
	{"a semicolon in a query value is refused", "GET", "/_matrix/client/v3/sync?since=a;b", WhyQuerySemicolon},
	{"a truncated escape is refused", "GET", "/_matrix/client/v3/rooms/a%2", WhyBadEscape},
	{"a lone percent is refused", "GET", "/_matrix/client/v3/rooms/a%/invite", WhyBadEscape},
	{"a non-hex escape is refused", "GET", "/_matrix/client/v3/rooms/a%zz/invite", WhyBadEscape},
	{"a half-hex escape is refused", "GET", "/_matrix/client/v3/rooms/a%4g/invite", WhyBadEscape},
	{"a malformed escape in the query is refused", "GET", "/_matrix/client/v3/sync?a=%", WhyBadEscape},
	{"a malformed escape at the end of the query is refused", "GET", "/_matrix/client/v3/sync?a=%4", WhyBadEscape},
	{"a double-encoded slash is refused", "GET", "/_matrix/client/v3/rooms/a%252Fb/invite", WhyDoubleEncoding},
	{"a double-encoded dot is refused", "GET", "/_matrix/client/v3/rooms/%252e%252e/invite", WhyDoubleEncoding},
	{"a double-encoded colon is refused", "GET", "/_matrix/client/v3/profile/%40a%253Ahs1", WhyDoubleEncoding},
	{"a percent sign encoded piecewise is refused", "GET", "/_matrix/client/v3/rooms/%25%32%46/invite", WhyDoubleEncoding},
	{"an encoded invalid UTF-8 byte is refused", "GET", "/_matrix/client/v3/rooms/%FF/invite", WhyInvalidUTF8},
	{"an encoded overlong UTF-8 slash is refused", "GET", "/_matrix/client/v3/rooms/%C0%AF/invite", WhyInvalidUTF8},
	{"an encoded UTF-16 surrogate is refused", "GET", "/_matrix/client/v3/rooms/%ED%A0%80/invite", WhyInvalidUTF8},
	{"an upper-case _MATRIX prefix is refused", "GET", "/_MATRIX/client/v3/sync", WhyPrefixSpelling},
	{"a mixed-case _Matrix prefix is refused", "GET", "/_Matrix/client/v3/sync", WhyPrefixSpelling},
	{"an upper-case _SYNAPSE prefix is refused", "GET", "/_SYNAPSE/admin/v1/server_version", WhyPrefixSpelling},
	{"an upper-case .WELL-KNOWN prefix is refused", "GET", "/.WELL-KNOWN/matrix/server", WhyPrefixSpelling},
	{"a percent-encoded _matrix prefix is refused", "GET", "/%5Fmatrix/client/v3/sync", WhyPrefixSpelling},
	{"a percent-encoded .well-known prefix is refused", "GET", "/%2Ewell-known/matrix/client", WhyPrefixSpelling},
	{"an encoded and upper-case prefix is refused", "GET", "/%5FMatrix/client/v3/sync", WhyPrefixSpelling},
	{"a quote in the path is refused", "GET", `/_matrix/client/v3/rooms/"a"/invite`, WhyPathChar},
	{"angle brackets in the path are refused", "GET", "/_matrix/client/v3/rooms/<a>/invite", WhyPathChar},
	{"square brackets in the path are refused", "GET", "/_matrix/client/v3/rooms/[::1]/invite", WhyPathChar},
	{"a pipe in the path is refused", "GET", "/_matrix/client/v3/rooms/a|b/invite", WhyPathChar},
	{"a caret in the path is refused", "GET", "/_matrix/client/v3/rooms/a^b/invite", WhyPathChar},
	{"a backtick in the path is refused", "GET", "/_matrix/client/v3/rooms/a`b/invite", WhyPathChar},
	{"braces in the path are refused", "GET", "/_matrix/client/v3/rooms/{roomId}/invite", WhyPathChar},
}

func TestCheckTargetRefusesAmbiguousTargets(t *testing.T) {
	t.Parallel()
	if len(refusedTargets) < 60 {
		t.Fatalf("ambiguity corpus has %d entries; keep at least 60", len(refusedTargets))
	}
	for _, tc := range refusedTargets {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := CheckTarget(tc.method, tc.target)
			var ae *AmbiguousError
			if !errors.As(err, &ae) {
				t.Fatalf("CheckTarget(%q) = %+v, %v; want *AmbiguousError %q", tc.target, got, err, tc.why)
			}
			if ae.Why != tc.why {
				t.Errorf("Why = %q; want %q", ae.Why, tc.why)
			}
			if strings.Contains(err.Error(), tc.target) && tc.target != "" {
				t.Errorf("error %q echoes the target", err)
			}
		})
	}
}

// FuzzCheckTarget checks that CheckTarget never panics and that an accepted target has one reading: the raw
// path re-serialises to itself through net/url (what httputil.ReverseProxy forwards), the decoded segments hold
// no separators or dot segments, and decoding agrees with net/url's per-segment unescaping.
func FuzzCheckTarget(f *testing.F) {
	for _, tc := range acceptedTargets {
		f.Add("GET", tc.target)
	}
	for _, tc := range refusedTargets {
		f.Add(tc.method, tc.target)
	}
	f.Fuzz(func(t *testing.T, method, target string) {
		tgt, err := CheckTarget(method, target)
		if err != nil {
			var ae *AmbiguousError
			if !errors.As(err, &ae) || ae.Why == "" {
				t.Fatalf("error %v is not an *AmbiguousError with a reason", err)
			}
			return
		}
		if tgt.Path == "*" {
			if method != "OPTIONS" || target != "*" {
				t.Fatalf("asterisk target accepted for %q %q", method, target)
			}
			return
		}
		u, err := url.ParseRequestURI(target)
		if err != nil {
			t.Fatalf("accepted %q but net/url refuses it: %v", target, err)
		}
		if got := u.EscapedPath(); got != tgt.Path {
			t.Fatalf("net/url re-serialises %q as %q", tgt.Path, got)
		}
		if u.RawQuery != tgt.RawQuery {
			t.Fatalf("RawQuery %q; net/url has %q", tgt.RawQuery, u.RawQuery)
		}
		if "/"+strings.Join(tgt.raw, "/") != tgt.Path || len(tgt.raw) != len(tgt.Segments) {
			t.Fatalf("raw segments %q do not rebuild %q", tgt.raw, tgt.Path)
		}
		for i, s := range tgt.Segments {
			if strings.ContainsAny(s, "/\\") || s == "." || s == ".." {
				t.Fatalf("segment %d %q is a separator or dot segment", i, s)
			}
			if s == "" && i != len(tgt.Segments)-1 {
				t.Fatalf("empty segment %d in %q", i, tgt.Path)
			}
			want, err := url.PathUnescape(tgt.raw[i])
			if err != nil || want != s {
				t.Fatalf("segment %q decodes to %q; net/url says %q (%v)", tgt.raw[i], s, want, err)
			}
		}
	})
}
