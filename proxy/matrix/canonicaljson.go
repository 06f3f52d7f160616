package matrix

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// ErrInvalidJSON is returned (wrapped, with the position and cause) for input that is not JSON or that
// canonical JSON cannot represent: fractions, exponents, integers outside [-(2^53)+1, 2^53-1], duplicate
// object keys, invalid UTF-8, lone UTF-16 surrogates, or nesting deeper than MaxJSONDepth.
var ErrInvalidJSON = errors.New("matrix: invalid canonical JSON input")

// MaxJSONDepth is the deepest nesting of arrays and objects CanonicalJSON accepts. Matrix events are
// shallow; the limit keeps hostile input from exhausting the stack.
const MaxJSONDepth = 128

// maxSafeInt is 2^53-1, the largest integer canonical JSON allows (IEEE doubles represent it exactly).
const maxSafeInt = 1<<53 - 1

// CanonicalJSON re-encodes raw as Matrix canonical JSON: object keys sorted by code point, no
// insignificant whitespace, only the escapes the grammar requires, non-ASCII as raw UTF-8, integers in
// the safe range, "-0" written as "0".
//
// The specification's own example turns the float 1e10 into 10000000000, while Synapse's canonicaljson
// library writes 10000000000.0; since the two disagree, any fraction or exponent is refused so that we
// never sign or verify bytes another server would encode differently. Duplicate keys are refused
// (Python's json keeps the last one silently).
func CanonicalJSON(raw []byte) ([]byte, error) {
	v, err := parseJSON(raw)
	if err != nil {
		return nil, err
	}
	return v.appendTo(make([]byte, 0, len(raw))), nil
}

type kind uint8

const (
	kindNull kind = iota
	kindBool
	kindNumber
	kindString
	kindArray
	kindObject
)

// value is a decoded JSON value. Strings hold decoded text; numbers hold their canonical digits;
// object members are kept sorted by key with no duplicates.
type value struct {
	kind    kind
	boolean bool
	text    string // string contents or canonical number
	array   []value
	members []member
}

type member struct {
	key string
	val value
}

// get returns the member named key of an object.
func (v *value) get(key string) (*value, bool) {
	i, ok := slices.BinarySearchFunc(v.members, key, func(m member, k string) int { return strings.Compare(m.key, k) })
	if !ok {
		return nil, false
	}
	return &v.members[i].val, true
}

// set inserts or replaces the member named key, keeping the order.
func (v *value) set(key string, val value) {
	i, ok := slices.BinarySearchFunc(v.members, key, func(m member, k string) int { return strings.Compare(m.key, k) })
	if ok {
		v.members[i].val = val
		return
	}
	v.members = slices.Insert(v.members, i, member{key: key, val: val})
}

// without returns a copy of the object v lacking the named members; the original is untouched.
func (v value) without(keys ...string) value {
	out := v
	out.members = make([]member, 0, len(v.members))
	for _, m := range v.members {
		if !slices.Contains(keys, m.key) {
			out.members = append(out.members, m)
		}
	}
	return out
}

func stringValue(s string) value { return value{kind: kindString, text: s} }

func (v value) appendTo(b []byte) []byte {
	switch v.kind {
	case kindNull:
		return append(b, "null"...)
	case kindBool:
		if v.boolean {
			return append(b, "true"...)
		}
		return append(b, "false"...)
	case kindNumber:
		return append(b, v.text...)
	case kindString:
		return appendString(b, v.text)
	case kindArray:
		b = append(b, '[')
		for i, e := range v.array {
			if i > 0 {
				b = append(b, ',')
			}
			b = e.appendTo(b)
		}
		return append(b, ']')
	default:
		b = append(b, '{')
		for i, m := range v.members {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, m.key)
			b = append(b, ':')
			b = m.val.appendTo(b)
		}
		return append(b, '}')
	}
}

// appendString writes s (valid UTF-8) as a canonical JSON string: `"` and `\` escaped, control
// characters as their short escape or \u00xx with lower-case hex (the grammar's only form), everything
// else raw, including U+007F, U+2028 and U+2029, which Go's encoding/json would escape.
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c >= 0x20:
			b = append(b, c)
		case c == '\b':
			b = append(b, '\\', 'b')
		case c == '\f':
			b = append(b, '\\', 'f')
		case c == '\n':
			b = append(b, '\\', 'n')
		case c == '\r':
			b = append(b, '\\', 'r')
		case c == '\t':
			b = append(b, '\\', 't')
		default:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		}
	}
	return append(b, '"')
}

// parseJSON decodes one JSON value that may be surrounded by whitespace and nothing else.
func parseJSON(raw []byte) (value, error) {
	p := parser{data: raw}
	p.skipSpace()
	v, err := p.value(0)
	if err != nil {
		return value{}, err
	}
	p.skipSpace()
	if p.pos != len(p.data) {
		return value{}, p.fail("trailing data after the value")
	}
	return v, nil
}

type parser struct {
	data []byte
	pos  int
}

func (p *parser) fail(msg string) error {
	return fmt.Errorf("%w: %s at offset %d", ErrInvalidJSON, msg, p.pos)
}

func (p *parser) skipSpace() {
	for p.pos < len(p.data) {
		switch p.data[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

func (p *parser) literal(word string) bool {
	if bytes.HasPrefix(p.data[p.pos:], []byte(word)) {
		p.pos += len(word)
		return true
	}
	return false
}

func (p *parser) value(depth int) (value, error) {
	if p.pos >= len(p.data) {
		return value{}, p.fail("unexpected end of input")
	}
	switch c := p.data[p.pos]; {
	case c == '{':
		return p.object(depth + 1)
	case c == '[':
		return p.array(depth + 1)
	case c == '"':
		s, err := p.str()
		return stringValue(s), err
	case c == '-' || (c >= '0' && c <= '9'):
		return p.number()
	case p.literal("true"):
		return value{kind: kindBool, boolean: true}, nil
	case p.literal("false"):
		return value{kind: kindBool}, nil
	case p.literal("null"):
		return value{kind: kindNull}, nil
	default:
		return value{}, p.fail("unexpected character")
	}
}

func (p *parser) object(depth int) (value, error) {
	if depth > MaxJSONDepth {
		return value{}, p.fail("nesting too deep")
	}
	p.pos++ // '{'
	v := value{kind: kindObject}
	p.skipSpace()
	if p.pos < len(p.data) && p.data[p.pos] == '}' {
		p.pos++
		return v, nil
	}
	for {
		p.skipSpace()
		if p.pos >= len(p.data) || p.data[p.pos] != '"' {
			return value{}, p.fail("expected an object key")
		}
		key, err := p.str()
		if err != nil {
			return value{}, err
		}
		p.skipSpace()
		if p.pos >= len(p.data) || p.data[p.pos] != ':' {
			return value{}, p.fail("expected ':'")
		}
		p.pos++
		p.skipSpace()
		val, err := p.value(depth)
		if err != nil {
			return value{}, err
		}
		v.members = append(v.members, member{key: key, val: val})
		p.skipSpace()
		if p.pos >= len(p.data) {
			return value{}, p.fail("unterminated object")
		}
		if p.data[p.pos] == '}' {
			p.pos++
			break
		}
		if p.data[p.pos] != ',' {
			return value{}, p.fail("expected ',' or '}'")
		}
		p.pos++
	}
	// Go strings compare bytewise, and UTF-8 byte order is code point order: exactly the order the
	// specification asks for.
	slices.SortStableFunc(v.members, func(a, b member) int { return strings.Compare(a.key, b.key) })
	for i := 1; i < len(v.members); i++ {
		if v.members[i].key == v.members[i-1].key {
			return value{}, fmt.Errorf("%w: duplicate object key %q", ErrInvalidJSON, v.members[i].key)
		}
	}
	return v, nil
}

func (p *parser) array(depth int) (value, error) {
	if depth > MaxJSONDepth {
		return value{}, p.fail("nesting too deep")
	}
	p.pos++ // '['
	v := value{kind: kindArray, array: []value{}}
	p.skipSpace()
	if p.pos < len(p.data) && p.data[p.pos] == ']' {
		p.pos++
		return v, nil
	}
	for {
		p.skipSpace()
		e, err := p.value(depth)
		if err != nil {
			return value{}, err
		}
		v.array = append(v.array, e)
		p.skipSpace()
		if p.pos >= len(p.data) {
			return value{}, p.fail("unterminated array")
		}
		if p.data[p.pos] == ']' {
			p.pos++
			return v, nil
		}
		if p.data[p.pos] != ',' {
			return value{}, p.fail("expected ',' or ']'")
		}
		p.pos++
	}
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func (p *parser) number() (value, error) {
	start := p.pos
	neg := false
	if p.data[p.pos] == '-' {
		neg = true
		p.pos++
	}
	digitsStart := p.pos
	switch {
	case p.pos < len(p.data) && p.data[p.pos] == '0':
		p.pos++
	case p.pos < len(p.data) && p.data[p.pos] >= '1' && p.data[p.pos] <= '9':
		for p.pos < len(p.data) && isDigit(p.data[p.pos]) {
			p.pos++
		}
	default:
		return value{}, p.fail("malformed number")
	}
	digits := string(p.data[digitsStart:p.pos])
	if p.pos < len(p.data) {
		switch p.data[p.pos] {
		case '.', 'e', 'E':
			p.pos = start
			return value{}, p.fail("number is not an integer (fractions and exponents are not canonical)")
		}
	}
	if len(digits) > 16 {
		p.pos = start
		return value{}, p.fail("integer out of range")
	}
	n, err := strconv.ParseInt(digits, 10, 64)
	if err != nil || n > maxSafeInt {
		p.pos = start
		return value{}, p.fail("integer out of range")
	}
	if neg && n != 0 {
		n = -n
	}
	return value{kind: kindNumber, text: strconv.FormatInt(n, 10)}, nil
}

// str decodes a string starting at the opening quote.
func (p *parser) str() (string, error) {
	p.pos++ // opening quote
	var sb []byte
	for {
		if p.pos >= len(p.data) {
			return "", p.fail("unterminated string")
		}
		c := p.data[p.pos]
		switch {
		case c == '"':
			p.pos++
			return string(sb), nil
		case c == '\\':
			r, err := p.escape()
			if err != nil {
				return "", err
			}
			sb = utf8.AppendRune(sb, r)
		case c < 0x20:
			return "", p.fail("control character in string")
		case c < utf8.RuneSelf:
			sb = append(sb, c)
			p.pos++
		default:
			r, size := utf8.DecodeRune(p.data[p.pos:])
			if r == utf8.RuneError && size <= 1 {
				return "", p.fail("invalid UTF-8")
			}
			sb = append(sb, p.data[p.pos:p.pos+size]...)
			p.pos += size
		}
	}
}

// escape decodes one backslash escape, joining UTF-16 surrogate pairs and refusing lone surrogates
// (they have no UTF-8 encoding).
func (p *parser) escape() (rune, error) {
	if p.pos+1 >= len(p.data) {
		return 0, p.fail("unterminated escape")
	}
	c := p.data[p.pos+1]
	p.pos += 2
	switch c {
	case '"', '\\', '/':
		return rune(c), nil
	case 'b':
		return '\b', nil
	case 'f':
		return '\f', nil
	case 'n':
		return '\n', nil
	case 'r':
		return '\r', nil
	case 't':
		return '\t', nil
	case 'u':
		r, ok := p.hex4()
		if !ok {
			return 0, p.fail("malformed \\u escape")
		}
		if !utf16.IsSurrogate(r) {
			return r, nil
		}
		if r >= 0xDC00 {
			return 0, p.fail("lone low surrogate")
		}
		if p.pos+1 < len(p.data) && p.data[p.pos] == '\\' && p.data[p.pos+1] == 'u' {
			p.pos += 2
			lo, ok := p.hex4()
			if ok && lo >= 0xDC00 && lo <= 0xDFFF {
				return utf16.DecodeRune(r, lo), nil
			}
		}
		return 0, p.fail("lone high surrogate")
	default:
		p.pos -= 2
		return 0, p.fail("unknown escape")
	}
}

func (p *parser) hex4() (rune, bool) {
	if p.pos+4 > len(p.data) {
		return 0, false
	}
	var r rune
	for _, c := range p.data[p.pos : p.pos+4] {
		r <<= 4
		switch {
		case c >= '0' && c <= '9':
			r |= rune(c - '0')
		case c >= 'a' && c <= 'f':
			r |= rune(c - 'a' + 10)
		case c >= 'A' && c <= 'F':
			r |= rune(c - 'A' + 10)
		default:
			return 0, false
		}
	}
	p.pos += 4
	return r, true
}
