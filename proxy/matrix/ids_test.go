package matrix

import (
	"errors"
	"strings"
	"testing"
)

func TestValidServerName(t *testing.T) {
	tests := []struct {
		name, in string
		want     bool
	}{
		// The specification's examples.
		{"a DNS name is valid", "matrix.org", true},
		{"a DNS name with a port is valid", "matrix.org:8888", true},
		{"an IPv4 literal is valid", "1.2.3.4", true},
		{"an IPv4 literal with a port is valid", "1.2.3.4:1234", true},
		{"an IPv6 literal is valid", "[1234:5678::abcd]", true},
		{"an IPv6 literal with a port is valid", "[1234:5678::abcd]:5678", true},
		// Our reading of the grammar and its "conventional restrictions".
		{"a single label is valid", "localhost", true},
		{"upper case is valid (names are case-sensitive)", "Matrix.ORG", true},
		{"a hyphen inside a label is valid", "tim-hs.example.de", true},
		{"an all-digit label that is not last is valid", "123.example", true},
		{"port 65535 is valid", "a.example:65535", true},
		{"port 1 is valid", "a.example:1", true},
		{"an IPv6 literal with an embedded IPv4 is valid", "[::ffff:1.2.3.4]", true},
		{"the empty string is invalid", "", false},
		{"a port alone is invalid", ":8448", false},
		{"an empty port is invalid", "a.example:", false},
		{"port 0 is invalid", "a.example:0", false},
		{"port 65536 is invalid", "a.example:65536", false},
		{"a six-digit port is invalid", "a.example:008448", false},
		{"a signed port is invalid", "a.example:+80", false},
		{"two ports are invalid", "a.example:80:80", false},
		{"an underscore is invalid", "a_b.example", false},
		{"a space is invalid", "a b.example", false},
		{"non-ASCII is invalid", "bücher.example", false},
		{"an empty label is invalid", "a..example", false},
		{"a trailing dot is invalid", "a.example.", false},
		{"a leading dot is invalid", ".a.example", false},
		{"a label starting with a hyphen is invalid", "-a.example", false},
		{"a label ending with a hyphen is invalid", "a-.example", false},
		{"a label longer than 63 characters is invalid", strings.Repeat("a", 64) + ".example", false},
		{"a name longer than 255 characters is invalid", strings.Repeat("abcdefg.", 32) + "de", false},
		{"an IPv4 octet above 255 is invalid", "256.1.1.1", false},
		{"an IPv4 octet with a leading zero is invalid", "01.2.3.4", false},
		{"three numeric labels are invalid", "1.2.3", false},
		{"five numeric labels are invalid", "1.2.3.4.5", false},
		{"an all-numeric last label is invalid", "example.123", false},
		{"an IPv6 literal without brackets is invalid", "::1", false},
		{"an unterminated IPv6 literal is invalid", "[::1", false},
		{"an IPv6 literal with a zone is invalid", "[fe80::1%eth0]", false},
		{"a bracketed IPv4 literal is invalid", "[1.2.3.4]", false},
		{"a bracketed DNS name is invalid", "[example.org]", false},
		{"garbage after an IPv6 literal is invalid", "[::1]x", false},
		{"a path is invalid", "a.example/x", false},
		{"a user-info part is invalid", "u@a.example", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ValidServerName(tt.in); got != tt.want {
				t.Errorf("ValidServerName(%q) = %v; want %v", tt.in, got, tt.want)
			}
		})
	}
}

func TestServerNameHost(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"the port is stripped", "matrix.org:8448", "matrix.org"},
		{"the host is lower-cased", "Matrix.ORG", "matrix.org"},
		{"an IPv6 literal keeps its brackets", "[::1]:8448", "[::1]"},
		{"an IPv4 literal loses its port", "1.2.3.4:80", "1.2.3.4"},
		{"an invalid name gives the empty string", "a_b:80", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ServerNameHost(tt.in); got != tt.want {
				t.Errorf("ServerNameHost(%q) = %q; want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestParseUserID(t *testing.T) {
	tests := []struct {
		name, in, local, server string
		ok                      bool
	}{
		{"a plain user ID parses", "@alice:example.org", "alice", "example.org", true},
		{"a server with a port parses", "@alice:example.org:8448", "alice", "example.org:8448", true},
		{"an IPv6 server parses", "@alice:[::1]:8448", "alice", "[::1]:8448", true},
		{"all strict punctuation parses", "@a.b_c=d-e/f+g:example.org", "a.b_c=d-e/f+g", "example.org", true},
		{"a historical localpart with upper case and symbols is readable", "@Alice!#~:example.org", "Alice!#~", "example.org", true},
		{"exactly 255 bytes is allowed", "@" + strings.Repeat("a", 255-len("@:example.org")) + ":example.org", strings.Repeat("a", 255-len("@:example.org")), "example.org", true},
		{"256 bytes is too long", "@" + strings.Repeat("a", 256-len("@:example.org")) + ":example.org", "", "", false},
		{"a missing sigil is refused", "alice:example.org", "", "", false},
		{"another sigil is refused", "!alice:example.org", "", "", false},
		{"a missing server is refused", "@alice", "", "", false},
		{"an empty server is refused", "@alice:", "", "", false},
		{"an empty localpart is refused", "@:example.org", "", "", false},
		{"a space in the localpart is refused", "@al ice:example.org", "", "", false},
		{"a control character in the localpart is refused", "@al\x7fice:example.org", "", "", false},
		{"non-ASCII in the localpart is refused", "@jürgen:example.org", "", "", false},
		{"an invalid server is refused", "@alice:exa_mple.org", "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			local, server, err := ParseUserID(tt.in)
			if tt.ok != (err == nil) || local != tt.local || server != tt.server {
				t.Errorf("ParseUserID(%q) = %q, %q, %v", tt.in, local, server, err)
			}
			if err != nil && !errors.Is(err, ErrInvalidUserID) {
				t.Errorf("error %v does not wrap ErrInvalidUserID", err)
			}
		})
	}
}

func TestIsStrictLocalpart(t *testing.T) {
	tests := []struct {
		name, in string
		want     bool
	}{
		{"lower case, digits and the allowed punctuation are strict", "a.b_c=d-e/f+g0", true},
		{"upper case is only historical", "Alice", false},
		{"other punctuation is only historical", "a!b", false},
		{"empty is not a localpart", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := IsStrictLocalpart(tt.in); got != tt.want {
				t.Errorf("IsStrictLocalpart(%q) = %v; want %v", tt.in, got, tt.want)
			}
		})
	}
}

func FuzzParseUserID(f *testing.F) {
	for _, s := range []string{"@alice:example.org", "@a:[::1]:80", "@:x", "@a:b:c:d", "@a:1.2.3.4:0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		local, server, err := ParseUserID(s)
		if err != nil {
			return
		}
		if "@"+local+":"+server != s || len(s) > 255 || !ValidServerName(server) || strings.Contains(local, ":") {
			t.Fatalf("ParseUserID(%q) = %q, %q", s, local, server)
		}
	})
}
