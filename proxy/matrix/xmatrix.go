package matrix

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// ErrXMatrixMissing means the Authorization header is absent or uses another scheme: the request is not
// federation-authenticated at all (the proxy answers 401 M_UNAUTHORIZED).
var ErrXMatrixMissing = errors.New("matrix: no X-Matrix authorization")

// ErrXMatrixMalformed means the header claims the X-Matrix scheme but does not parse, or a parameter is
// missing or invalid.
var ErrXMatrixMalformed = errors.New("matrix: malformed X-Matrix authorization")

// ErrDestinationMismatch means the header names a destination other than the receiving server; the
// specification requires a 401 answer.
var ErrDestinationMismatch = errors.New("matrix: X-Matrix destination is not this server")

// XMatrix holds the parameters of an `Authorization: X-Matrix ...` header. ParseXMatrix guarantees that
// Origin (and Destination, when present) are valid server names, KeyID is an ed25519 key ID, and
// Signature is base64 of 64 bytes. None of it is authenticated until VerifyRequest succeeds.
type XMatrix struct {
	Origin string
	// Destination is "" when the sender omitted it, as servers before Matrix v1.3 did.
	Destination string
	KeyID       string
	Signature   string
}

// HasDestination reports whether the header carried a destination parameter.
func (x XMatrix) HasDestination() bool { return x.Destination != "" }

// WithDestination checks the header's destination against local, the receiving server's name, and fills
// it in when the sender omitted it (older servers still signed their request for that destination). It
// returns ErrDestinationMismatch when the header names another server. Server names compare exactly, as
// the specification treats them case-sensitively.
func (x XMatrix) WithDestination(local string) (XMatrix, error) {
	if x.Destination == "" {
		x.Destination = local
		return x, nil
	}
	if x.Destination != local {
		return x, ErrDestinationMismatch
	}
	return x, nil
}

// maxXMatrixParams bounds the work spent on one header; real senders use four.
const maxXMatrixParams = 16

// ParseXMatrix parses the value of an Authorization header carrying X-Matrix credentials, following
// Matrix v1.11 and RFC 9110 section 11.4: a case-insensitive scheme, one or more spaces, then
// comma-separated name=value parameters with optional spaces and tabs around commas and '='. Names are
// case-insensitive; values are tokens (plus ':' for older senders) or quoted strings with backslash
// escapes. Unknown parameters are ignored, as the specification says.
//
// Fail-closed choices: a repeated parameter name, an empty value, an empty list element, a trailing
// comma, control or non-ASCII characters, and anything after a value other than a comma are refused.
// The signature parameter is "sig", as every implementation and the specification's example use it.
//
// Error messages never repeat header content, so they are safe to log.
func ParseXMatrix(authorization string) (XMatrix, error) {
	h := strings.Trim(authorization, " \t")
	if h == "" {
		return XMatrix{}, ErrXMatrixMissing
	}
	scheme, rest, _ := strings.Cut(h, " ")
	if !strings.EqualFold(scheme, "X-Matrix") {
		return XMatrix{}, ErrXMatrixMissing
	}
	p := headerParser{s: strings.TrimLeft(rest, " ")}
	if p.s == "" {
		return XMatrix{}, fmt.Errorf("%w: no parameters", ErrXMatrixMalformed)
	}
	params := map[string]string{}
	for {
		name, val, err := p.param()
		if err != nil {
			return XMatrix{}, err
		}
		if _, dup := params[name]; dup {
			return XMatrix{}, fmt.Errorf("%w: repeated parameter", ErrXMatrixMalformed)
		}
		if len(params) == maxXMatrixParams {
			return XMatrix{}, fmt.Errorf("%w: too many parameters", ErrXMatrixMalformed)
		}
		params[name] = val
		p.ows()
		if p.done() {
			break
		}
		if !p.eat(',') {
			return XMatrix{}, fmt.Errorf("%w: expected ',' after a parameter", ErrXMatrixMalformed)
		}
		p.ows()
	}

	x := XMatrix{Origin: params["origin"], Destination: params["destination"], KeyID: params["key"], Signature: params["sig"]}
	switch {
	case x.Origin == "":
		return XMatrix{}, fmt.Errorf("%w: origin missing", ErrXMatrixMalformed)
	case !ValidServerName(x.Origin):
		return XMatrix{}, fmt.Errorf("%w: origin is not a valid server name", ErrXMatrixMalformed)
	case x.Destination != "" && !ValidServerName(x.Destination):
		return XMatrix{}, fmt.Errorf("%w: destination is not a valid server name", ErrXMatrixMalformed)
	case x.KeyID == "":
		return XMatrix{}, fmt.Errorf("%w: key missing", ErrXMatrixMalformed)
	case !ValidKeyID(x.KeyID):
		return XMatrix{}, fmt.Errorf("%w: key is not an ed25519 key ID", ErrXMatrixMalformed)
	case x.Signature == "":
		return XMatrix{}, fmt.Errorf("%w: sig missing", ErrXMatrixMalformed)
	}
	if raw, err := DecodeBase64(x.Signature); err != nil || len(raw) != ed25519.SignatureSize {
		return XMatrix{}, fmt.Errorf("%w: sig is not base64 of an ed25519 signature", ErrXMatrixMalformed)
	}
	return x, nil
}

type headerParser struct {
	s   string
	pos int
}

func (p *headerParser) done() bool { return p.pos >= len(p.s) }

func (p *headerParser) eat(c byte) bool {
	if p.pos < len(p.s) && p.s[p.pos] == c {
		p.pos++
		return true
	}
	return false
}

// ows skips optional whitespace (SP / HTAB).
func (p *headerParser) ows() {
	for p.pos < len(p.s) && (p.s[p.pos] == ' ' || p.s[p.pos] == '\t') {
		p.pos++
	}
}

// isTchar reports whether c is an RFC 9110 token character.
func isTchar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// param reads name BWS "=" BWS value; the name comes back lower-cased.
func (p *headerParser) param() (name, val string, err error) {
	start := p.pos
	for p.pos < len(p.s) && isTchar(p.s[p.pos]) {
		p.pos++
	}
	if p.pos == start {
		return "", "", fmt.Errorf("%w: expected a parameter name", ErrXMatrixMalformed)
	}
	name = strings.ToLower(p.s[start:p.pos])
	p.ows()
	if !p.eat('=') {
		return "", "", fmt.Errorf("%w: expected '=' after a parameter name", ErrXMatrixMalformed)
	}
	p.ows()
	if p.eat('"') {
		val, err = p.quoted()
	} else {
		start = p.pos
		// ':' is not a tchar, but the specification asks receivers to accept it unquoted.
		for p.pos < len(p.s) && (isTchar(p.s[p.pos]) || p.s[p.pos] == ':') {
			p.pos++
		}
		val = p.s[start:p.pos]
	}
	if err != nil {
		return "", "", err
	}
	if val == "" {
		return "", "", fmt.Errorf("%w: empty parameter value", ErrXMatrixMalformed)
	}
	return name, val, nil
}

// quoted reads the rest of a quoted-string after its opening quote and returns it unescaped.
func (p *headerParser) quoted() (string, error) {
	var b strings.Builder
	for p.pos < len(p.s) {
		c := p.s[p.pos]
		p.pos++
		switch {
		case c == '"':
			return b.String(), nil
		case c == '\\':
			if p.pos >= len(p.s) || !quotable(p.s[p.pos]) {
				return "", fmt.Errorf("%w: bad escape in quoted value", ErrXMatrixMalformed)
			}
			b.WriteByte(p.s[p.pos])
			p.pos++
		case quotable(c):
			b.WriteByte(c)
		default:
			return "", fmt.Errorf("%w: forbidden character in quoted value", ErrXMatrixMalformed)
		}
	}
	return "", fmt.Errorf("%w: unterminated quoted value", ErrXMatrixMalformed)
}

// quotable reports whether c may appear in a quoted-string (HTAB, SP, VCHAR); obs-text is refused.
func quotable(c byte) bool { return c == '\t' || (c >= 0x20 && c <= 0x7e) }

// requestJSON builds the canonical JSON object a federation request signature covers.
func requestJSON(method, uri, origin, destination string, body []byte) ([]byte, error) {
	if method == "" || strings.IndexFunc(method, func(r rune) bool { return r > 0x7e || !isTchar(byte(r)) }) >= 0 {
		return nil, fmt.Errorf("request json: invalid method")
	}
	if !strings.HasPrefix(uri, "/") {
		return nil, fmt.Errorf("request json: uri must start with '/'")
	}
	obj := value{kind: kindObject}
	obj.set("method", stringValue(method))
	obj.set("uri", stringValue(uri))
	obj.set("origin", stringValue(origin))
	obj.set("destination", stringValue(destination))
	if len(bytes.Trim(body, " \t\r\n")) > 0 {
		content, err := parseJSON(body)
		if err != nil {
			return nil, fmt.Errorf("request json: body: %w", err)
		}
		obj.set("content", content)
	}
	// A URI is bytes on the wire; only valid UTF-8 can be put in JSON identically by both sides.
	out := obj.appendTo(nil)
	if _, err := parseJSON(out); err != nil {
		return nil, fmt.Errorf("request json: %w", err)
	}
	return out, nil
}

// SignRequest signs a federation request as origin for destination and returns the Authorization header
// value. requestURI is the path with query string exactly as sent ("/_matrix/federation/v1/..."); content
// is the JSON body, or empty for none.
func SignRequest(method, requestURI, origin, destination string, content json.RawMessage, keyID string, key ed25519.PrivateKey) (string, error) {
	if !ValidServerName(origin) || !ValidServerName(destination) {
		return "", fmt.Errorf("sign request: invalid origin or destination server name")
	}
	if !ValidKeyID(keyID) || len(key) != ed25519.PrivateKeySize {
		return "", fmt.Errorf("sign request: key %q: %w", keyID, ErrBadKey)
	}
	msg, err := requestJSON(method, requestURI, origin, destination, content)
	if err != nil {
		return "", fmt.Errorf("sign request: %w", err)
	}
	sig := EncodeBase64(ed25519.Sign(key, msg))
	// Server names, ed25519 key IDs and base64 hold no quote or backslash, so no escaping is needed.
	return `X-Matrix origin="` + origin + `",destination="` + destination + `",key="` + keyID + `",sig="` + sig + `"`, nil
}

// VerifyRequest checks that x's signature, made with pub, covers this request: method, requestURI (path
// and query as received, r.RequestURI), x.Origin, x.Destination and the JSON body (when non-empty; it must
// then be JSON). Call x.WithDestination first so that the destination is this server's name.
//
// A non-empty body is always included, whatever the method. Synapse only includes the body of PUT and
// POST requests; a sender that signs a GET or DELETE body still verifies here, and one that sends an
// unsigned body with GET is refused (fail closed).
//
// Only those fields are signed. Other headers (Host, Content-Type, X-Forwarded-*) are not, and must not be
// trusted because the signature verified.
func VerifyRequest(x XMatrix, method, requestURI string, content []byte, pub ed25519.PublicKey) error {
	if x.Destination == "" {
		return fmt.Errorf("%w: destination unknown; call WithDestination first", ErrXMatrixMalformed)
	}
	if len(pub) != ed25519.PublicKeySize {
		return fmt.Errorf("verify request: %w", ErrBadKey)
	}
	msg, err := requestJSON(method, requestURI, x.Origin, x.Destination, content)
	if err != nil {
		return fmt.Errorf("verify request: %w", err)
	}
	if err := verifyBytes(msg, x.Signature, pub); err != nil {
		return fmt.Errorf("verify request from %s: %w", x.Origin, err)
	}
	return nil
}
