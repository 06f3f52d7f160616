// Package search compiles FHIR search URLs of the VZD-FHIR-Directory search API (gematik's
// FHIRDirectorySearchAPI, vzd-directory-spec §1.2 and §3) into index query trees, and executes them against
// a store into a page of matches and includes.
//
// Parsing is strict on purpose: an unknown parameter, modifier or feature is refused with a typed *Error
// (house style §4: never silently ignored), because a directory search that quietly drops a filter returns
// the wrong people and organisations, which a messenger client then offers as chat partners.
package search

import (
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/timstack/timstack/directory/index"
)

// Limits. The VZD serves at most 100 hits per search (spec §1.2, §3.4); clients page above 50 and ask the
// user to refine above 100, so the default page holds 50 and no offset reaches past the 100th match.
const (
	// DefaultCount is the page size when the client sends no _count.
	DefaultCount = 50
	// MaxCount is the largest page; a larger _count is clamped to it (FHIR lets servers return fewer).
	MaxCount = 100
	// MaxResults is the result window: only the first MaxResults matches (ordered by id) are ever served.
	// Bundle.total still counts every match.
	MaxResults = 100
	// MaxNearKm is the largest radius of location.near / near (spec §3.3).
	MaxNearKm = 100

	// Input bounds that keep a single request cheap to compile and to evaluate.
	maxRawQuery = 16 << 10 // bytes of the raw query string
	maxParams   = 64       // parameters per request
	maxValueLen = 2048     // bytes per parameter value
	maxOrValues = 100      // comma-separated alternatives per parameter
	maxWords    = 16       // _text words per parameter
)

// Issue codes of an *Error, from FHIR's IssueType value set; the HTTP layer puts them into an
// OperationOutcome with status 400.
const (
	CodeNotSupported = "not-supported" // unknown parameter, modifier or feature
	CodeInvalid      = "invalid"       // a known parameter used wrongly or with a malformed value
	CodeTooCostly    = "too-costly"    // the request is well-formed but exceeds a limit (radius, window, size)
)

// Error is a refused search. Param names the offending parameter as the client wrote it (its own input, so
// it may go into the OperationOutcome diagnostics); Message is a fixed description without values.
type Error struct {
	Code    string
	Param   string
	Message string
}

func (e *Error) Error() string {
	if e.Param == "" {
		return "search: " + e.Message
	}
	return "search: " + e.Param + ": " + e.Message
}

func notSupported(param, msg string) *Error {
	return &Error{Code: CodeNotSupported, Param: param, Message: msg}
}

func invalid(param, msg string) *Error {
	return &Error{Code: CodeInvalid, Param: param, Message: msg}
}

func tooCostly(param, msg string) *Error {
	return &Error{Code: CodeTooCostly, Param: param, Message: msg}
}

// Options are the caller's context, not the client's: which server-side filters apply.
type Options struct {
	// Mandatory adds the filters the VZD's /search and /fdv/search always apply (spec §3.4), whether or
	// not the client sent them: organization.active=true on HealthcareService, practitioner.active=true on
	// PractitionerRole, status=active on Endpoint.
	Mandatory bool
	// Insured removes entries marked hide-versicherte (OrganizationVisibility / EndpointVisibility) for
	// insured users (/fdv/search), from the matches and from the includes.
	Insured bool
}

// Include is one _include or _revinclude. For _include, SourceType is the searched type and Param one of
// its reference parameters; TargetType, when set, keeps only references to that type. For _revinclude,
// SourceType/Param name the referencing resources (HealthcareService:endpoint). Wildcard is _include=*:
// every reference parameter of the searched type.
type Include struct {
	SourceType string
	Param      string
	TargetType string
	Wildcard   bool
}

// Request is a compiled search.
type Request struct {
	Type  string
	Where index.Cond // always an index.And (empty: everything)
	// Count is the page size (0: only the total); Offset skips matches. Count+Offset never pass MaxResults
	// in what Execute serves.
	Count, Offset int
	SummaryCount  bool
	Includes      []Include
	RevIncludes   []Include
	// Insured is Options.Insured, kept for the executor (it filters included resources too).
	Insured bool
	// Hidden, on insured searches of a type with a visibility rule, selects the matches that rule removes:
	// Where with the rule's Not turned into its positive condition. Execute counts them for Bundle.total's
	// results-filtered-ex. Nil otherwise.
	Hidden index.Cond
	// Self holds the client's parameters except _count and _offset, as sent; links are built from it.
	Self url.Values
}

type pair struct{ key, value string }

// ParseQuery compiles a raw query string (without the leading '?'). It keeps the parameters in the order
// the client wrote them, so the tree is ordered like the URL.
func ParseQuery(resourceType, rawQuery string, opts Options) (*Request, error) {
	if len(rawQuery) > maxRawQuery {
		return nil, tooCostly("", "query string too long")
	}
	var pairs []pair
	for seg := range strings.SplitSeq(rawQuery, "&") {
		if seg == "" {
			continue
		}
		k, v, _ := strings.Cut(seg, "=")
		key, err := url.QueryUnescape(k)
		if err != nil {
			return nil, invalid("", "malformed percent-encoding in a parameter name")
		}
		val, err := url.QueryUnescape(v)
		if err != nil {
			return nil, invalid(key, "malformed percent-encoding")
		}
		pairs = append(pairs, pair{key, val})
		if len(pairs) > maxParams {
			return nil, tooCostly("", "too many parameters")
		}
	}
	return parse(resourceType, pairs, opts)
}

func knownType(t string) bool {
	for _, rt := range index.ResourceTypes {
		if rt == t {
			return true
		}
	}
	return false
}

// isControl says whether name changes the result's shape rather than which resources match; such a
// parameter may appear once (except the include kinds) and takes no modifier.
func isControl(name string) bool {
	switch name {
	case "_count", "_offset", "_summary", "_include", "_revinclude", "_complexSearch", "_format", "_pretty":
		return true
	}
	return false
}

func parse(rt string, pairs []pair, opts Options) (*Request, error) {
	if !knownType(rt) {
		return nil, notSupported("", "resource type is not searchable")
	}
	req := &Request{Type: rt, Count: DefaultCount, Insured: opts.Insured, Self: url.Values{}}
	var conds []index.Cond
	if opts.Mandatory {
		if c := mandatoryFilter(rt); c != nil {
			conds = append(conds, c)
		}
	}
	insuredAt := -1
	if opts.Insured {
		if c := insuredFilter(rt); c != nil {
			insuredAt = len(conds)
			conds = append(conds, c)
		}
	}
	seen := map[string]bool{}
	for _, p := range pairs {
		if !utf8.ValidString(p.key) {
			return nil, invalid("", "parameter name is not UTF-8")
		}
		if !utf8.ValidString(p.value) {
			return nil, invalid(p.key, "value is not UTF-8")
		}
		if len(p.value) > maxValueLen {
			return nil, tooCostly(p.key, "value too long")
		}
		base, _, hasMod := strings.Cut(p.key, ":")
		if isControl(base) {
			if hasMod {
				return nil, notSupported(p.key, "modifier not supported")
			}
			if base != "_include" && base != "_revinclude" {
				if seen[base] {
					return nil, invalid(p.key, "parameter may appear only once")
				}
				seen[base] = true
			}
			if err := req.control(base, p.value); err != nil {
				return nil, err
			}
			if base != "_count" && base != "_offset" {
				req.Self.Add(p.key, p.value)
			}
			continue
		}
		c, err := compileParam(rt, p.key, p.value)
		if err != nil {
			return nil, err
		}
		req.Self.Add(p.key, p.value)
		if !containsCond(conds, c) { // a repeated identical filter (often the mandatory one) is an AND no-op
			conds = append(conds, c)
		}
	}
	req.Where = index.And(conds)
	if insuredAt >= 0 {
		hidden := append(index.And(nil), conds...)
		hidden[insuredAt] = conds[insuredAt].(index.Not).Cond
		req.Hidden = hidden
	}
	return req, nil
}

func containsCond(conds []index.Cond, c index.Cond) bool {
	for _, x := range conds {
		if reflect.DeepEqual(x, c) {
			return true
		}
	}
	return false
}

// active is the boolean token the mandatory filters compare with.
func active(param string) index.Token {
	return index.Token{Param: param, Code: "true", AnySystem: true}
}

// mandatoryFilter is spec §3.4: results only use resources whose Organization/Practitioner is active.
func mandatoryFilter(rt string) index.Cond {
	switch rt {
	case index.HealthcareService:
		return index.Chain{Param: "organization", TargetType: index.Organization, Where: active("active")}
	case index.PractitionerRole:
		return index.Chain{Param: "practitioner", TargetType: index.Practitioner, Where: active("active")}
	case index.Endpoint:
		return index.Token{Param: "status", Code: "active", AnySystem: true}
	}
	return nil
}

// hideInsured is the visibility code that hides an entry from insured users; other codes are accepted and
// ignored (spec §10).
const hideInsured = "hide-versicherte"

func insuredFilter(rt string) index.Cond {
	switch rt {
	case index.HealthcareService:
		return index.Not{Cond: index.Chain{Param: "organization", TargetType: index.Organization,
			Where: index.Token{Param: "organizationVisibility", Code: hideInsured, AnySystem: true}}}
	case index.Organization:
		return index.Not{Cond: index.Token{Param: "organizationVisibility", Code: hideInsured, AnySystem: true}}
	case index.Endpoint:
		return index.Not{Cond: index.Token{Param: "endpointVisibility", Code: hideInsured, AnySystem: true}}
	}
	return nil
}

// control applies one result-shaping parameter.
func (req *Request) control(name, v string) error {
	switch name {
	case "_count":
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return invalid(name, "must be a non-negative integer")
		}
		req.Count = min(n, MaxCount)
	case "_offset":
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return invalid(name, "must be a non-negative integer")
		}
		if n >= MaxResults {
			return tooCostly(name, "only the first 100 matches are served; refine the search")
		}
		req.Offset = n
	case "_summary":
		switch v {
		case "count":
			req.SummaryCount = true
		case "false":
		default:
			return notSupported(name, "only _summary=count is supported")
		}
	case "_complexSearch":
		switch v {
		case "false":
		case "true":
			return notSupported(name, "complex full-text search is not supported; use the simple _text mode")
		default:
			return invalid(name, "must be true or false")
		}
	case "_format":
		switch v {
		case "json", "application/json", "application/fhir+json":
		default:
			return notSupported(name, "only JSON is served")
		}
	case "_pretty":
		if v != "true" && v != "false" {
			return invalid(name, "must be true or false")
		}
	case "_include":
		for one := range strings.SplitSeq(v, ",") {
			inc, err := parseInclude(req.Type, one)
			if err != nil {
				return err
			}
			req.Includes = appendInclude(req.Includes, inc)
		}
	case "_revinclude":
		for one := range strings.SplitSeq(v, ",") {
			inc, err := parseRevInclude(req.Type, one)
			if err != nil {
				return err
			}
			req.RevIncludes = appendInclude(req.RevIncludes, inc)
		}
	}
	return nil
}

func appendInclude(list []Include, inc Include) []Include {
	for _, x := range list {
		if x == inc {
			return list
		}
	}
	return append(list, inc)
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// parseInclude reads `Type:param[:TargetType]` or `*`. Type must be the searched type: _include:iterate is
// not supported, so no other type can be a source.
func parseInclude(rt, v string) (Include, error) {
	const name = "_include"
	if v == "*" {
		return Include{SourceType: rt, Wildcard: true}, nil
	}
	parts := strings.Split(v, ":")
	if len(parts) < 2 || len(parts) > 3 {
		return Include{}, invalid(name, "must be Type:param[:TargetType] or *")
	}
	if parts[0] != rt {
		return Include{}, invalid(name, "source type must be the searched type")
	}
	p, ok := index.Lookup(rt, parts[1])
	if !ok {
		return Include{}, notSupported(name, "unknown search parameter "+parts[1])
	}
	if p.Type != index.TypeReference {
		return Include{}, invalid(name, "parameter "+parts[1]+" is not a reference")
	}
	inc := Include{SourceType: rt, Param: p.Code}
	if len(parts) == 3 {
		if !containsString(p.Targets, parts[2]) {
			return Include{}, invalid(name, "target type does not match the parameter")
		}
		inc.TargetType = parts[2]
	}
	return inc, nil
}

// parseRevInclude reads `Type:param[:TargetType]` where Type:param references the searched type.
func parseRevInclude(rt, v string) (Include, error) {
	const name = "_revinclude"
	if v == "*" {
		return Include{}, notSupported(name, "_revinclude=* is not supported")
	}
	parts := strings.Split(v, ":")
	if len(parts) < 2 || len(parts) > 3 {
		return Include{}, invalid(name, "must be Type:param[:TargetType]")
	}
	if !knownType(parts[0]) {
		return Include{}, notSupported(name, "unknown resource type "+parts[0])
	}
	p, ok := index.Lookup(parts[0], parts[1])
	if !ok {
		return Include{}, notSupported(name, "unknown search parameter "+parts[1])
	}
	if p.Type != index.TypeReference || !containsString(p.Targets, rt) {
		return Include{}, invalid(name, "parameter "+parts[1]+" does not reference the searched type")
	}
	if len(parts) == 3 && parts[2] != rt {
		return Include{}, invalid(name, "target type must be the searched type")
	}
	return Include{SourceType: parts[0], Param: p.Code}, nil
}
