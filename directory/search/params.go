package search

import (
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/timstack/timstack/directory/fhir"
	"github.com/timstack/timstack/directory/index"
)

// compileParam compiles one filtering parameter: plain (`name:modifier`), chained one level
// (`ref[:Type].param[:modifier]`) or reverse-chained (`_has:Type:ref:param[:modifier]`).
func compileParam(rt, key, value string) (index.Cond, error) {
	if strings.HasPrefix(key, "_has:") {
		return compileHas(rt, key, value)
	}
	head, rest, chained := strings.Cut(key, ".")
	if !chained {
		return compileSimple(rt, key, value, key)
	}
	refName, typeMod, hasType := strings.Cut(head, ":")
	p, ok := index.Lookup(rt, refName)
	if !ok {
		return nil, notSupported(key, "unknown search parameter")
	}
	if p.Type != index.TypeReference {
		return nil, invalid(key, "chain on a parameter that is not a reference")
	}
	var target string
	switch {
	case hasType:
		if !containsString(p.Targets, typeMod) {
			return nil, invalid(key, "chain target type does not match the parameter")
		}
		target = typeMod
	case len(p.Targets) == 1:
		target = p.Targets[0]
	default:
		return nil, invalid(key, "ambiguous chain: name the target type (ref:Type.param)")
	}
	if strings.Contains(rest, ".") {
		return nil, notSupported(key, "chains deeper than one level are not supported")
	}
	if strings.HasPrefix(rest, "_has:") {
		return nil, notSupported(key, "_has inside a chain is not supported")
	}
	inner, err := compileSimple(target, rest, value, key)
	if err != nil {
		return nil, err
	}
	return index.Chain{Param: p.Code, TargetType: target, Where: inner}, nil
}

// compileHas compiles `_has:SourceType:sourceParam:param[:modifier]`: roots referenced by a SourceType
// resource (through sourceParam) that matches param.
func compileHas(rt, key, value string) (index.Cond, error) {
	parts := strings.SplitN(key, ":", 4)
	if len(parts) != 4 || parts[3] == "" {
		return nil, invalid(key, "must be _has:Type:reference:param")
	}
	src, srcParam, rest := parts[1], parts[2], parts[3]
	if !knownType(src) {
		return nil, notSupported(key, "unknown resource type in _has")
	}
	sp, ok := index.Lookup(src, srcParam)
	if !ok {
		return nil, notSupported(key, "unknown search parameter in _has")
	}
	if sp.Type != index.TypeReference || !containsString(sp.Targets, rt) {
		return nil, invalid(key, "_has parameter does not reference the searched type")
	}
	if strings.HasPrefix(rest, "_has:") || strings.Contains(rest, ".") {
		return nil, notSupported(key, "nested _has or chains inside _has are not supported")
	}
	inner, err := compileSimple(src, rest, value, key)
	if err != nil {
		return nil, err
	}
	return index.Has{SourceType: src, SourceParam: sp.Code, Where: inner}, nil
}

// compileSimple compiles `name[:modifier]=value` against resource type rt. errParam is the key as the
// client wrote it, for errors.
func compileSimple(rt, key, value, errParam string) (index.Cond, error) {
	name, mod, hasMod := strings.Cut(key, ":")
	p, ok := index.Lookup(rt, name)
	if !ok {
		return nil, notSupported(errParam, "unknown search parameter")
	}
	if hasMod && !modifierAllowed(p, mod) {
		return nil, notSupported(errParam, "modifier not supported")
	}
	if value == "" {
		// FHIR lets servers ignore empty parameters; we refuse them, since dropping the filter would turn
		// the search into "everything".
		return nil, invalid(errParam, "empty value")
	}
	if p.Type == index.TypeText {
		return compileText(value, errParam)
	}
	values := splitEscaped(value, ',')
	if len(values) > maxOrValues {
		return nil, tooCostly(errParam, "too many alternatives")
	}
	if p.Code == "_id" {
		ids := make([]string, 0, len(values))
		for _, v := range values {
			v = unescape(v)
			if !fhir.ValidID(v) {
				return nil, invalid(errParam, "malformed id")
			}
			ids = append(ids, v)
		}
		return index.IDs{IDs: ids}, nil
	}
	conds := make([]index.Cond, 0, len(values))
	for _, v := range values {
		c, err := compileValue(rt, p, mod, v, errParam)
		if err != nil {
			return nil, err
		}
		conds = append(conds, c)
	}
	if len(conds) == 1 {
		return conds[0], nil
	}
	return index.Or(conds), nil
}

// modifierAllowed: :exact/:contains on strings, :text on tokens, a target type on references,
// :contains on _text (the VZD's documented form; our word-prefix index answers it like simple mode).
func modifierAllowed(p index.Param, mod string) bool {
	switch p.Type {
	case index.TypeString:
		return mod == "exact" || mod == "contains"
	case index.TypeToken:
		return mod == "text" && p.Code != "_id" && p.Code != "active"
	case index.TypeReference:
		return containsString(p.Targets, mod)
	case index.TypeText:
		return mod == "contains"
	}
	return false
}

// compileValue compiles one comma-separated alternative (still escaped).
func compileValue(rt string, p index.Param, mod, v, errParam string) (index.Cond, error) {
	switch p.Type {
	case index.TypeToken:
		if mod == "text" {
			t := normalize(unescape(v))
			if t == "" {
				return nil, invalid(errParam, "empty value")
			}
			return index.Token{Param: p.Code, Text: t}, nil
		}
		if p.Code == "active" {
			if v != "true" && v != "false" {
				return nil, invalid(errParam, "must be true or false")
			}
			return index.Token{Param: p.Code, Code: v, AnySystem: true}, nil
		}
		sys, code, hasBar := cutEscaped(v, '|')
		sys, code = unescape(sys), unescape(code)
		switch {
		case !hasBar:
			if sys == "" {
				return nil, invalid(errParam, "empty value")
			}
			return index.Token{Param: p.Code, Code: sys, AnySystem: true}, nil
		case sys == "" && code == "":
			return nil, invalid(errParam, "token needs a system or a code")
		default:
			return index.Token{Param: p.Code, System: sys, Code: code}, nil
		}
	case index.TypeString:
		s := unescape(v)
		if rt == index.Endpoint && p.Code == "address" {
			// The index keeps MXIDs as lower-cased matrix:u/… URIs (legacy @local:server normalised);
			// other addresses (KIM mail, URLs) like any string.
			s = fhir.NormalizeAddress(s)
		} else {
			s = normalize(s)
		}
		if s == "" {
			return nil, invalid(errParam, "empty value")
		}
		mode := index.StringPrefix
		switch mod {
		case "exact":
			mode = index.StringExact
		case "contains":
			mode = index.StringContains
		case "":
			// A complete MXID names one address: prefix matching would let matrix:u/alice:tim.example.de
			// also find …:tim.example.dev, and clients label chat partners by this lookup (spec §3.5 #11).
			if rt == index.Endpoint && p.Code == "address" && strings.HasPrefix(s, "matrix:u/") {
				mode = index.StringExact
			}
		}
		return index.String{Param: p.Code, Value: s, Mode: mode}, nil
	case index.TypeReference:
		return compileReference(p, mod, unescape(v), errParam)
	case index.TypeDate:
		return compileDate(p.Code, unescape(v), errParam)
	case index.TypeGeo:
		return compileNear(p.Code, unescape(v), errParam)
	}
	return nil, notSupported(errParam, "parameter type not supported")
}

// compileReference reads `id`, `Type/id` or an absolute URL ending in `Type/id`.
func compileReference(p index.Param, typeMod, v, errParam string) (index.Cond, error) {
	typ, id := typeMod, v
	if i := strings.LastIndexByte(v, '/'); i >= 0 {
		id = v[i+1:]
		head := v[:i]
		typ = head[strings.LastIndexByte(head, '/')+1:]
		if !containsString(p.Targets, typ) || (typeMod != "" && typeMod != typ) {
			return nil, invalid(errParam, "reference type does not match the parameter")
		}
	}
	if !fhir.ValidID(id) {
		return nil, invalid(errParam, "malformed reference")
	}
	return index.Reference{Param: p.Code, Type: typ, ID: id}, nil
}

// compileText is the VZD's simple _text mode (spec §3.2): '-', ',' and '/' split words like spaces (so a
// comma is not an OR here), quotes are dropped, a trailing '.' of a word is dropped as at index time, and
// every remaining word must prefix-match.
func compileText(v, errParam string) (index.Cond, error) {
	words := textWords(v)
	if len(words) == 0 {
		return nil, invalid(errParam, "no searchable words")
	}
	if len(words) > maxWords {
		return nil, tooCostly(errParam, "too many words")
	}
	return index.Text{Words: words}, nil
}

// textWords splits and normalises a _text value into distinct words, in order, with the index's own
// splitter (fhir.SplitWords); quotes (gematik's examples quote Telematik-IDs) are dropped first.
func textWords(v string) []string {
	var words []string
	for _, w := range fhir.SplitWords(strings.ReplaceAll(v, `"`, " ")) {
		if !containsString(words, w) {
			words = append(words, w)
		}
	}
	return words
}

// compileNear reads `lat|lon|distance|km`. All four parts are mandatory as on the VZD (spec §3.3), the
// unit must be km and the radius at most MaxNearKm.
func compileNear(param, v, errParam string) (index.Cond, error) {
	parts := strings.Split(v, "|")
	if len(parts) != 4 {
		return nil, invalid(errParam, "must be latitude|longitude|distance|km")
	}
	lat, err1 := strconv.ParseFloat(parts[0], 64)
	lon, err2 := strconv.ParseFloat(parts[1], 64)
	km, err3 := strconv.ParseFloat(parts[2], 64)
	if err1 != nil || err2 != nil || err3 != nil || math.IsNaN(lat) || math.IsNaN(lon) || math.IsNaN(km) {
		return nil, invalid(errParam, "latitude, longitude and distance must be numbers")
	}
	if lat < -90 || lat > 90 || lon < -180 || lon > 180 {
		return nil, invalid(errParam, "latitude or longitude out of range")
	}
	if parts[3] != "km" {
		return nil, notSupported(errParam, "only the unit km is supported")
	}
	if !(km > 0) {
		return nil, invalid(errParam, "distance must be positive")
	}
	if km > MaxNearKm {
		return nil, tooCostly(errParam, "distance above 100 km")
	}
	return index.Near{Param: param, Lat: lat, Lon: lon, Km: km}, nil
}

// compileDate reads `[prefix]date` with FHIR's precision: 2024 means the whole year. Low and High are the
// first and last instant (inclusive, nanosecond) of that range, in UTC; a time without a zone is UTC.
func compileDate(param, v, errParam string) (index.Cond, error) {
	cmp := index.DateEq
	if len(v) >= 2 && v[0] >= 'a' && v[0] <= 'z' {
		switch pfx := index.DateCmp(v[:2]); pfx {
		case index.DateEq, index.DateLt, index.DateLe, index.DateGt, index.DateGe:
			cmp, v = pfx, v[2:]
		case "ne", "sa", "eb", "ap":
			return nil, notSupported(errParam, "date prefix not supported")
		default:
			return nil, invalid(errParam, "malformed date")
		}
	}
	low, high, ok := dateRange(v)
	if !ok {
		return nil, invalid(errParam, "malformed date")
	}
	return index.Date{Param: param, Cmp: cmp, Low: low, High: high}, nil
}

func dateRange(v string) (low, high time.Time, ok bool) {
	type layout struct {
		layout string
		next   func(time.Time) time.Time
	}
	var layouts []layout
	switch {
	case len(v) == 4:
		layouts = []layout{{"2006", func(t time.Time) time.Time { return t.AddDate(1, 0, 0) }}}
	case len(v) == 7:
		layouts = []layout{{"2006-01", func(t time.Time) time.Time { return t.AddDate(0, 1, 0) }}}
	case len(v) == 10:
		layouts = []layout{{"2006-01-02", func(t time.Time) time.Time { return t.AddDate(0, 0, 1) }}}
	case len(v) > 10 && v[10] == 'T':
		minute := func(t time.Time) time.Time { return t.Add(time.Minute) }
		second := func(t time.Time) time.Time { return t.Add(time.Second) }
		exact := func(t time.Time) time.Time { return t.Add(time.Nanosecond) }
		if strings.Contains(v, ".") {
			layouts = []layout{{"2006-01-02T15:04:05.999999999Z07:00", exact}, {"2006-01-02T15:04:05.999999999", exact}}
		} else {
			layouts = []layout{
				{"2006-01-02T15:04:05Z07:00", second}, {"2006-01-02T15:04:05", second},
				{"2006-01-02T15:04Z07:00", minute}, {"2006-01-02T15:04", minute},
			}
		}
	}
	for _, l := range layouts {
		t, err := time.Parse(l.layout, v)
		if err != nil {
			continue
		}
		t = t.UTC()
		return t, l.next(t).Add(-time.Nanosecond), true
	}
	return time.Time{}, time.Time{}, false
}

// splitEscaped splits s at sep, honouring FHIR's backslash escapes (`\,` `\|` `\$` `\\`); the parts stay
// escaped.
func splitEscaped(s string, sep byte) []string {
	var parts []string
	start := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case sep:
			parts = append(parts, s[start:i])
			start = i + 1
		}
	}
	return append(parts, s[start:])
}

// cutEscaped is strings.Cut at the first unescaped sep.
func cutEscaped(s string, sep byte) (before, after string, found bool) {
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case sep:
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}

// unescape removes FHIR's backslash escapes.
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
