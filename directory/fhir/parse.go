package fhir

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/timstack/timstack/directory/index"
)

// Resource is a parsed resource: the bytes exactly as received plus what the directory reads from them.
type Resource struct {
	ResourceType string
	ID           string
	// JSON is the resource as received (or as rewritten by Normalize). It is what the store keeps and the
	// API serves, so elements the views do not model survive a round trip.
	JSON []byte
	// View is the typed view (*Practitioner, *PractitionerRole, *Organization, *HealthcareService,
	// *Location or *Endpoint), nil when ResourceType is not one of the six.
	View View

	// decodeIssues are elements of the right name but the wrong JSON type, found while filling View.
	// Validate reports them; Extract works on whatever part of the view did decode.
	decodeIssues []Issue
}

// ParseError is why bytes could not be parsed as a resource at all. Issue is safe to show to the client
// (it names the offending element or byte offset of the client's own input); Err is the cause for logs.
type ParseError struct {
	Issue Issue
	Err   error
}

func (e *ParseError) Error() string {
	msg := "fhir: parse: " + e.Issue.Diagnostics
	if e.Issue.Expression != "" {
		msg += " (" + e.Issue.Expression + ")"
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

func (e *ParseError) Unwrap() error { return e.Err }

// Parse reads one resource. It refuses, with a *ParseError, input that is not a single JSON object in valid
// UTF-8, objects with duplicate member names (at any depth: two readers of the same bytes must never see
// different values, and FHIR JSON forbids them), member names that differ only in case from an element the
// views know (encoding/json matches names case-insensitively, which would let "Address" shadow "address"),
// and a missing or non-string resourceType. A known element of the wrong JSON type is not a parse failure:
// it becomes an issue that Validate reports with the element's path (e.g. Endpoint.address).
func Parse(data []byte) (*Resource, error) {
	if !utf8.Valid(data) {
		return nil, &ParseError{Issue: NewIssue(CodeStructure, "", "resource is not valid UTF-8")}
	}
	top, err := scan(data)
	if err != nil {
		var pe *ParseError
		if errors.As(err, &pe) && pe.Issue.Expression != "" {
			pe.Issue.Expression = qualify(probeType(data), pe.Issue.Expression)
		}
		return nil, err
	}
	r := &Resource{JSON: data}
	rt, ok := top["resourceType"]
	if !ok {
		return nil, &ParseError{Issue: NewIssue(CodeRequired, "resourceType", "resourceType is missing")}
	}
	if err := json.Unmarshal(data[rt.start:rt.end], &r.ResourceType); err != nil || r.ResourceType == "" {
		return nil, &ParseError{Issue: NewIssue(CodeStructure, "resourceType", "resourceType must be a non-empty string"), Err: err}
	}
	r.View = newView(r.ResourceType)
	if r.View == nil {
		return r, nil // Validate refuses unknown types; the store never sees them.
	}
	if err := json.Unmarshal(data, r.View); err != nil {
		r.decodeIssues = append(r.decodeIssues, decodeIssue(r.ResourceType, err))
	}
	r.ID = r.View.Base().ID
	return r, nil
}

func newView(resourceType string) View {
	switch resourceType {
	case index.Practitioner:
		return &Practitioner{}
	case index.PractitionerRole:
		return &PractitionerRole{}
	case index.Organization:
		return &Organization{}
	case index.HealthcareService:
		return &HealthcareService{}
	case index.Location:
		return &Location{}
	case index.Endpoint:
		return &Endpoint{}
	}
	return nil
}

// decodeIssue turns an encoding/json error into an issue naming the element; the Go error text itself
// never reaches the client.
func decodeIssue(resourceType string, err error) Issue {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		field := te.Field
		// Fields promoted from the embedded DomainResource may carry its name; FHIR does not know it.
		field = strings.TrimPrefix(field, "DomainResource.")
		return NewIssue(CodeStructure, qualify(resourceType, field),
			fmt.Sprintf("element has the wrong JSON type (found %s, expected %s)", te.Value, jsonKind(te.Type)))
	}
	return NewIssue(CodeStructure, resourceType, "resource could not be read into its profile's structure")
}

// jsonKind names the JSON type a Go type is read from, in the words of a FHIR client.
func jsonKind(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Int, reflect.Int64, reflect.Int32, reflect.Float64, reflect.Float32:
		return "number"
	case reflect.Slice:
		return "array"
	case reflect.Struct:
		return "object"
	}
	return "another type"
}

func qualify(resourceType, path string) string {
	switch {
	case resourceType == "":
		return path
	case path == "":
		return resourceType
	}
	return resourceType + "." + path
}

// probeType best-effort reads resourceType for error paths.
func probeType(data []byte) string {
	var probe struct {
		ResourceType any `json:"resourceType"`
	}
	_ = json.Unmarshal(data, &probe)
	s, _ := probe.ResourceType.(string)
	return s
}

// span is the byte range of a top-level member's value.
type span struct{ start, end int }

// maxDepth bounds nesting. VZD resources nest about eight levels (extensions in extensions in codings);
// the bound keeps hostile input from exhausting the stack of the recursive scanner.
const maxDepth = 64

// scan checks data in one pass: exactly one JSON object (RFC 8259 grammar; UTF-8 is checked by the caller),
// unique member names in every object, no two names differing only in case and no case-variant of an element
// the views know. It returns the value spans of the top-level members (Normalize splices new values into
// them, leaving every other byte untouched). It is hand-written because walking encoding/json's Token API
// cost twice as much as decoding the view.
func scan(data []byte) (map[string]span, error) {
	s := &scanner{data: data, known: knownNames()}
	s.ws()
	if s.i >= len(data) {
		return nil, &ParseError{Issue: NewIssue(CodeStructure, "", "resource is empty")}
	}
	if data[s.i] != '{' {
		return nil, &ParseError{Issue: NewIssue(CodeStructure, "", "resource must be a JSON object")}
	}
	s.top = map[string]span{}
	if err := s.value(0); err != nil {
		return nil, err
	}
	s.ws()
	if s.i != len(data) {
		return nil, &ParseError{Issue: NewIssue(CodeStructure, "", "data follows the resource's JSON object")}
	}
	return s.top, nil
}

type scanner struct {
	data  []byte
	i     int
	known names
	top   map[string]span
	path  []pathSeg // for error expressions only
}

type pathSeg struct {
	key string
	idx int // -1 for object members
}

func (s *scanner) pathString() string {
	var b strings.Builder
	for _, p := range s.path {
		if p.idx >= 0 {
			b.WriteString("[" + strconv.Itoa(p.idx) + "]")
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(p.key)
	}
	return b.String()
}

func (s *scanner) syntax() error {
	return &ParseError{Issue: NewIssue(CodeStructure, "", fmt.Sprintf("resource is not valid JSON (at byte offset %d)", s.i))}
}

func (s *scanner) ws() {
	for s.i < len(s.data) {
		switch s.data[s.i] {
		case ' ', '\t', '\r', '\n':
			s.i++
		default:
			return
		}
	}
}

func (s *scanner) value(depth int) error {
	if depth > maxDepth {
		return &ParseError{Issue: NewIssue(CodeStructure, s.pathString(), "JSON nesting is too deep")}
	}
	s.ws()
	if s.i >= len(s.data) {
		return s.syntax()
	}
	switch c := s.data[s.i]; {
	case c == '{':
		return s.object(depth)
	case c == '[':
		return s.array(depth)
	case c == '"':
		_, _, err := s.str()
		return err
	case c == 't':
		return s.lit("true")
	case c == 'f':
		return s.lit("false")
	case c == 'n':
		return s.lit("null")
	case c == '-' || c >= '0' && c <= '9':
		return s.number()
	}
	return s.syntax()
}

func (s *scanner) lit(word string) error {
	if !bytes.HasPrefix(s.data[s.i:], []byte(word)) {
		return s.syntax()
	}
	s.i += len(word)
	return nil
}

func (s *scanner) number() error {
	digits := func() int {
		n := 0
		for s.i < len(s.data) && s.data[s.i] >= '0' && s.data[s.i] <= '9' {
			s.i++
			n++
		}
		return n
	}
	if s.data[s.i] == '-' {
		s.i++
	}
	if s.i < len(s.data) && s.data[s.i] == '0' {
		s.i++
	} else if digits() == 0 {
		return s.syntax()
	}
	if s.i < len(s.data) && s.data[s.i] == '.' {
		s.i++
		if digits() == 0 {
			return s.syntax()
		}
	}
	if s.i < len(s.data) && (s.data[s.i] == 'e' || s.data[s.i] == 'E') {
		s.i++
		if s.i < len(s.data) && (s.data[s.i] == '+' || s.data[s.i] == '-') {
			s.i++
		}
		if digits() == 0 {
			return s.syntax()
		}
	}
	return nil
}

// str scans a string starting at the opening quote and returns its raw content and whether it has escapes.
func (s *scanner) str() (raw []byte, escaped bool, err error) {
	s.i++ // opening quote
	start := s.i
	for s.i < len(s.data) {
		c := s.data[s.i]
		switch {
		case c == '"':
			raw = s.data[start:s.i]
			s.i++
			return raw, escaped, nil
		case c < 0x20:
			return nil, false, s.syntax()
		case c == '\\':
			escaped = true
			s.i++
			if s.i >= len(s.data) {
				return nil, false, s.syntax()
			}
			switch s.data[s.i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.i++
			case 'u':
				if s.i+5 > len(s.data) {
					return nil, false, s.syntax()
				}
				for _, h := range s.data[s.i+1 : s.i+5] {
					if !(h >= '0' && h <= '9' || h >= 'a' && h <= 'f' || h >= 'A' && h <= 'F') {
						return nil, false, s.syntax()
					}
				}
				s.i += 5
			default:
				return nil, false, s.syntax()
			}
		default:
			s.i++
		}
	}
	return nil, false, s.syntax()
}

// smallObject is the size up to which sibling names are compared pairwise; larger objects use a map.
const smallObject = 16

func (s *scanner) object(depth int) error {
	s.i++ // {
	var names []string
	var folded map[string]string
	s.path = append(s.path, pathSeg{idx: -1})
	defer func() { s.path = s.path[:len(s.path)-1] }()
	s.ws()
	if s.i < len(s.data) && s.data[s.i] == '}' {
		s.i++
		return nil
	}
	for {
		s.ws()
		if s.i >= len(s.data) || s.data[s.i] != '"' {
			return s.syntax()
		}
		raw, escaped, err := s.str()
		if err != nil {
			return err
		}
		key := string(raw)
		if escaped {
			if err := json.Unmarshal(s.data[s.i-len(raw)-2:s.i], &key); err != nil {
				return s.syntax()
			}
		}
		s.path[len(s.path)-1].key = key
		if err := s.checkName(key, names, folded); err != nil {
			return err
		}
		names = append(names, key)
		if len(names) > smallObject {
			if folded == nil {
				folded = make(map[string]string, 2*smallObject)
				for _, n := range names[:len(names)-1] {
					folded[strings.ToLower(n)] = n
				}
			}
			folded[strings.ToLower(key)] = key
		}
		s.ws()
		if s.i >= len(s.data) || s.data[s.i] != ':' {
			return s.syntax()
		}
		s.i++
		s.ws()
		start := s.i
		if err := s.value(depth + 1); err != nil {
			return err
		}
		if depth == 0 {
			s.top[key] = span{start, s.i}
		}
		s.ws()
		if s.i >= len(s.data) {
			return s.syntax()
		}
		switch s.data[s.i] {
		case ',':
			s.i++
		case '}':
			s.i++
			return nil
		default:
			return s.syntax()
		}
	}
}

// checkName refuses a member name that repeats or case-folds to a sibling, or is a case variant of a known
// element name (encoding/json would read it into that element).
func (s *scanner) checkName(key string, names []string, folded map[string]string) error {
	clash := func(other string) error {
		if other == key {
			return &ParseError{Issue: NewIssue(CodeStructure, s.pathString(), "duplicate JSON member")}
		}
		return &ParseError{Issue: NewIssue(CodeStructure, s.pathString(), fmt.Sprintf("member names %q and %q differ only in case", other, key))}
	}
	if folded != nil {
		if other, ok := folded[strings.ToLower(key)]; ok {
			return clash(other)
		}
	} else {
		for _, n := range names {
			if strings.EqualFold(n, key) {
				return clash(n)
			}
		}
	}
	if _, exact := s.known.exact[key]; !exact {
		if _, variant := s.known.folded[strings.ToLower(key)]; variant {
			return &ParseError{Issue: NewIssue(CodeStructure, s.pathString(), "member name differs only in case from a FHIR element")}
		}
	}
	return nil
}

func (s *scanner) array(depth int) error {
	s.i++ // [
	s.path = append(s.path, pathSeg{idx: 0})
	defer func() { s.path = s.path[:len(s.path)-1] }()
	s.ws()
	if s.i < len(s.data) && s.data[s.i] == ']' {
		s.i++
		return nil
	}
	for n := 0; ; n++ {
		s.path[len(s.path)-1].idx = n
		if err := s.value(depth + 1); err != nil {
			return err
		}
		s.ws()
		if s.i >= len(s.data) {
			return s.syntax()
		}
		switch s.data[s.i] {
		case ',':
			s.i++
		case ']':
			s.i++
			return nil
		default:
			return s.syntax()
		}
	}
}

// names is the set of JSON member names the views decode, exact and lower-cased.
type names struct {
	exact  map[string]struct{}
	folded map[string]struct{}
}

// knownNames is computed once from the view structs' json tags; it is never modified afterwards.
var knownNames = sync.OnceValue(func() names {
	n := names{exact: map[string]struct{}{}, folded: map[string]struct{}{}}
	seen := map[reflect.Type]bool{}
	var walk func(t reflect.Type)
	walk = func(t reflect.Type) {
		for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct || seen[t] {
			return
		}
		seen[t] = true
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if f.Anonymous {
				walk(f.Type)
				continue
			}
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name != "" && name != "-" {
				n.exact[name] = struct{}{}
				n.folded[strings.ToLower(name)] = struct{}{}
			}
			walk(f.Type)
		}
	}
	for _, v := range []View{&Practitioner{}, &PractitionerRole{}, &Organization{}, &HealthcareService{}, &Location{}, &Endpoint{}} {
		walk(reflect.TypeOf(v))
	}
	n.exact["resourceType"] = struct{}{}
	n.folded["resourcetype"] = struct{}{}
	return n
})
