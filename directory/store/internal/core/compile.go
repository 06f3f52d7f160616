package core

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/timstack/timstack/directory/index"
)

// Dialect names the SQL engine a query is compiled for.
type Dialect int

// Supported dialects.
const (
	SQLite Dialect = iota
	Postgres
)

// Builder accumulates SQL text and its arguments; placeholders are numbered in order of appearance.
type Builder struct {
	D Dialect
	// NoChainRows compiles chains as chains even where the store keeps chain rows (a PostgreSQL store in
	// a bulk load computes them only at its end).
	NoChainRows bool
	sb          strings.Builder
	Args        []any
}

// W writes SQL text.
func (b *Builder) W(s ...string) {
	for _, x := range s {
		b.sb.WriteString(x)
	}
}

// Arg adds an argument and writes its placeholder.
func (b *Builder) Arg(v any) {
	b.Args = append(b.Args, v)
	if b.D == Postgres {
		b.sb.WriteString("$" + strconv.Itoa(len(b.Args)))
	} else {
		b.sb.WriteString("?")
	}
}

// In writes "col IN (…)" for a list of strings (PostgreSQL: col = ANY($n)). An empty list matches nothing.
func (b *Builder) In(col string, vals []string) {
	if len(vals) == 0 {
		b.W("1 = 0")
		return
	}
	if b.D == Postgres {
		b.W(col, " = ANY(")
		b.Arg(vals)
		b.W("::text[])")
		return
	}
	b.W(col, " IN (")
	for i, v := range vals {
		if i > 0 {
			b.W(", ")
		}
		b.Arg(v)
	}
	b.W(")")
}

// mergeSingleChains combines chains over the same single-valued reference (PractitionerRole.practitioner,
// HealthcareService.organization, …) into one chain with an And: with one target the meaning is the same,
// and the database then intersects the conditions on the target (a selective name with active=true) before
// walking back over the references, instead of materialising every role of every active practitioner.
func mergeSingleChains(typ string, c index.And) index.And {
	out := make(index.And, 0, len(c))
	at := map[[2]string]int{}
	for _, sub := range c {
		ch, ok := sub.(index.Chain)
		if !ok || !index.SingleValued(typ, ch.Param) {
			out = append(out, sub)
			continue
		}
		key := [2]string{ch.Param, ch.TargetType}
		i, seen := at[key]
		if !seen {
			at[key] = len(out)
			out = append(out, ch)
			continue
		}
		prev := out[i].(index.Chain)
		inner, isAnd := prev.Where.(index.And)
		if !isAnd {
			inner = index.And{prev.Where}
		}
		prev.Where = append(append(index.And(nil), inner...), ch.Where)
		out[i] = prev
	}
	return out
}

// plan prepares a conjunction on typ for compiling: single-valued chains merged, then chains with chain
// rows rewritten to use them.
func (b *Builder) plan(typ string, c index.And) index.And {
	c = mergeSingleChains(typ, c)
	if b.NoChainRows {
		return c
	}
	return useChainRows(typ, c)
}

// textFirst moves _text conditions to the front of a conjunction (the order of the others kept). SQLite
// drives the search from the first IN subquery it can use on the id and materialises the others: behind
// a _text that is a few hundred word matches, in front of it the mandatory filter's every active
// practitioner's roles (129 -> 53 ms for one two-word query at a tenth of full scale).
func textFirst(typ string, c index.And) index.And {
	first := func(sub index.Cond) bool {
		switch sub := sub.(type) {
		case index.Text:
			return true
		case index.String:
			return isChainRowParam(typ, sub.Param) // a name's chain rows: as selective as _text
		}
		return false
	}
	out := make(index.And, 0, len(c))
	for _, sub := range c {
		if first(sub) {
			out = append(out, sub)
		}
	}
	if len(out) == 0 || len(out) == len(c) {
		return c
	}
	for _, sub := range c {
		if !first(sub) {
			out = append(out, sub)
		}
	}
	return out
}

// SQL returns the text written so far.
func (b *Builder) SQL() string { return b.sb.String() }

// Where compiles c into a boolean SQL expression over the id column col of resources of type typ. A nil
// condition matches everything. Every lookup is an "col IN (SELECT id FROM idx_… WHERE type = … AND param =
// …)" subquery that an index on the table answers; no JSON is ever scanned.
func (b *Builder) Where(typ, col string, c index.Cond) error {
	switch c := c.(type) {
	case nil:
		b.W("1 = 1")
	case index.And:
		if len(c) == 0 {
			b.W("1 = 1")
			return nil
		}
		c = b.plan(typ, c)
		if b.D == SQLite {
			c = textFirst(typ, c)
		}
		b.W("(")
		for i, sub := range c {
			if i > 0 {
				b.W(" AND ")
			}
			if err := b.Where(typ, col, sub); err != nil {
				return err
			}
		}
		b.W(")")
	case index.Or:
		if len(c) == 0 {
			b.W("1 = 0")
			return nil
		}
		b.W("(")
		for i, sub := range c {
			if i > 0 {
				b.W(" OR ")
			}
			if err := b.Where(typ, col, sub); err != nil {
				return err
			}
		}
		b.W(")")
	case index.Not:
		b.W("NOT (")
		if err := b.Where(typ, col, c.Cond); err != nil {
			return err
		}
		b.W(")")
	case index.IDs:
		b.In(col, c.IDs)
	case index.Token:
		if b.D == Postgres && isChainRowParam(typ, c.Param) && c.AnySystem && c.Text == "" {
			// The chain-row marker beside a driving condition (_text words): one probe per candidate.
			// As a plain IN the planner merged the candidates with the whole marker range (480k rows at
			// full scale, 200 ms) where 1.4k probes take 20 ms; a correlated subquery is not turned into
			// a join.
			b.W(col, " IN (SELECT m.id FROM idx_token m WHERE m.type = ")
			b.Arg(typ)
			b.W(" AND m.param = ")
			b.Arg(c.Param)
			b.W(" AND m.code = ")
			b.Arg(c.Code)
			b.W(" AND m.id = ", col, ")")
			return nil
		}
		b.sub(col, "idx_token", typ, c.Param)
		switch {
		case c.Text != "":
			b.prefix("display", c.Text)
		case c.AnySystem:
			if c.Code != "" {
				b.W(" AND code = ")
				b.Arg(c.Code)
			}
		case c.System != "" && c.Code == "":
			b.W(" AND system = ")
			b.Arg(c.System)
		default:
			b.W(" AND system = ")
			b.Arg(c.System)
			b.W(" AND code = ")
			b.Arg(c.Code)
		}
		b.W(")")
	case index.String:
		b.W(col, " IN (SELECT id FROM idx_string WHERE ")
		b.stringParam(typ, c.Param)
		if err := b.stringMatch(c); err != nil {
			return err
		}
		b.W(")")
	case index.Reference:
		b.sub(col, "idx_reference", typ, c.Param)
		b.W(" AND ref_id = ")
		b.Arg(c.ID)
		if c.Type != "" {
			b.W(" AND ref_type = ")
			b.Arg(c.Type)
		}
		b.W(")")
	case index.Date:
		return b.date(typ, col, c)
	case index.Near:
		return b.near(typ, col, c)
	case index.Text:
		words := textWords(c)
		if len(words) == 0 {
			b.W("1 = 1")
			return nil
		}
		if b.D == Postgres && len(words) > 1 {
			b.W(col, " IN (")
			b.textSet(typ, words)
			b.W(")")
			return nil
		}
		b.W("(")
		for i, w := range words {
			if i > 0 {
				b.W(" AND ")
			}
			b.W(col, " IN (SELECT id FROM idx_text WHERE type = ")
			b.Arg(typ)
			b.prefix("word", w)
			b.W(")")
		}
		b.W(")")
	case index.Chain:
		b.W(col, " IN (")
		if err := b.chainSet(typ, c, false); err != nil {
			return err
		}
		b.W(")")
	case index.Has:
		if c.SourceType == "" || c.SourceParam == "" {
			return fmt.Errorf("_has needs a source type and parameter")
		}
		// The source row exists by construction (its reference row does), so Where applies to its id.
		b.W(col, " IN (SELECT ref_id FROM idx_reference WHERE type = ")
		b.Arg(c.SourceType)
		b.W(" AND param = ")
		b.Arg(c.SourceParam)
		b.W(" AND ref_type = ")
		b.Arg(typ)
		b.W(" AND ")
		if err := b.Where(c.SourceType, "id", c.Where); err != nil {
			return err
		}
		b.W(")")
	default:
		return fmt.Errorf("unsupported condition %T", c)
	}
	return nil
}

// stringMatch writes the value test of a string condition (" AND value …").
func (b *Builder) stringMatch(c index.String) error {
	switch c.Mode {
	case index.StringPrefix:
		b.prefix("value", c.Value)
	case index.StringExact:
		b.W(" AND value = ")
		b.Arg(c.Value)
	case index.StringContains:
		// A substring test, not LIKE: user input needs no wildcard escaping and both engines compare
		// bytes case-sensitively (values are normalised by the caller).
		if b.D == Postgres {
			b.W(" AND strpos(value, ")
			b.Arg(c.Value)
			b.W(") > 0")
		} else {
			b.W(" AND instr(value, ")
			b.Arg(c.Value)
			b.W(") > 0")
		}
	default:
		return fmt.Errorf("string condition on %q: unknown mode %d", c.Param, c.Mode)
	}
	return nil
}

// textWords returns the non-empty words of c.
func textWords(c index.Text) []string {
	words := make([]string, 0, len(c.Words))
	for _, w := range c.Words {
		if w != "" {
			words = append(words, w)
		}
	}
	return words
}

// textSet writes a query for the distinct ids of typ resources having a word with each of the prefixes
// (at least one). PostgreSQL: one INTERSECT of the word ranges, so each range is read once from the index
// and the sets are hashed; the cost is the sum of the range sizes. Separate IN subqueries let the planner
// probe a second prefix range per candidate of the first, and its estimate of a prefix range is far too
// low (1 row for 4,587): a city next to a common name took 25 s at full scale, 9 ms so.
func (b *Builder) textSet(typ string, words []string) {
	if len(words) == 1 {
		b.W("SELECT DISTINCT id FROM idx_text WHERE type = ")
		b.Arg(typ)
		b.prefix("word", words[0])
		return
	}
	for i, w := range words {
		if i > 0 {
			b.W(" INTERSECT ")
		}
		b.W("SELECT id FROM idx_text WHERE type = ")
		b.Arg(typ)
		b.prefix("word", w)
	}
}

// chainSet writes a query for the ids of typ resources whose reference c.Param points at a c.TargetType
// resource matching c.Where (an id once per matching reference row, or once when distinct is set).
func (b *Builder) chainSet(typ string, c index.Chain, distinct bool) error {
	if c.TargetType == "" {
		return fmt.Errorf("chain on %q: no target type", c.Param)
	}
	if distinct {
		b.W("SELECT DISTINCT id")
	} else {
		b.W("SELECT id")
	}
	b.W(" FROM idx_reference WHERE type = ")
	b.Arg(typ)
	b.W(" AND param = ")
	b.Arg(c.Param)
	b.W(" AND ref_type = ")
	b.Arg(c.TargetType)
	b.W(" AND ")
	if positive(c.Where) {
		// Every match of Where has index rows, so the target exists: no join with resources needed.
		return b.Where(c.TargetType, "ref_id", c.Where)
	}
	// Not/IDs/match-all can be true of a dangling reference: require the target to exist.
	b.W("ref_id IN (SELECT t.id FROM resources t WHERE t.type = ")
	b.Arg(c.TargetType)
	b.W(" AND ")
	if err := b.Where(c.TargetType, "t.id", c.Where); err != nil {
		return err
	}
	b.W(")")
	return nil
}

// driver picks, on PostgreSQL, a condition of where whose ids can be the row source of the search instead
// of the resources table: the words of a _text (usually the most selective part, and an INTERSECT the
// planner cannot mis-estimate into a merge over every resource of the type), a string condition on chain
// rows (a chained name with the mandatory active filter, see ChainRows), or, as the whole condition, a
// chain or the chain-row marker of the active filter. Its index rows exist
// only while the resource does, so the join with resources that checked existence is not needed. It
// returns the index of the condition in conds (the top-level conjuncts) or -1.
func (b *Builder) driver(typ string, where index.Cond) (conds index.And, at int) {
	if b.D != Postgres {
		return nil, -1
	}
	switch w := where.(type) {
	case index.And:
		conds = b.plan(typ, w)
	case nil:
		return nil, -1
	default:
		conds = b.plan(typ, index.And{w})
	}
	for i, c := range conds {
		if t, ok := c.(index.Text); ok && len(textWords(t)) > 0 {
			return conds, i
		}
	}
	// A name's chain rows (practitioner.name=Müller with the mandatory active filter): one index range.
	for i, c := range conds {
		if s, ok := c.(index.String); ok && isChainRowParam(typ, s.Param) {
			return conds, i
		}
	}
	if len(conds) == 1 {
		switch c := conds[0].(type) {
		case index.Chain:
			if c.TargetType != "" && positive(c.Where) {
				return conds, 0
			}
		case index.Token:
			// the mandatory filter alone (_summary=count): the marker rows, read in id order
			if isChainRowParam(typ, c.Param) && c.AnySystem && c.Text == "" {
				return conds, 0
			}
		}
	}
	return nil, -1
}

// sub opens "col IN (SELECT id FROM table WHERE type = ? AND param = ?"; the caller closes it.
func (b *Builder) sub(col, table, typ, param string) {
	b.W(col, " IN (SELECT id FROM ", table, " WHERE type = ")
	b.Arg(typ)
	b.W(" AND param = ")
	b.Arg(param)
}

// stringParam writes the test for the string rows of param of typ: on PostgreSQL the key its string
// index leads with (ParamKey), elsewhere the two columns.
func (b *Builder) stringParam(typ, param string) {
	if b.D == Postgres {
		b.W("param_key = ")
		b.Arg(ParamKey(typ, param))
		return
	}
	b.W("type = ")
	b.Arg(typ)
	b.W(" AND param = ")
	b.Arg(param)
}

// prefix writes " AND col >= p AND col < succ(p)": a range both engines answer from a B-tree index (the
// PostgreSQL columns use the "C" collation, SQLite compares bytes), with no LIKE wildcards to escape.
func (b *Builder) prefix(col, p string) {
	if p == "" {
		return
	}
	b.W(" AND ", col, " >= ")
	b.Arg(p)
	if hi, ok := Successor(p); ok {
		b.W(" AND ", col, " < ")
		b.Arg(hi)
	}
}

// Successor returns the smallest string greater than every string with prefix p (in code point order, which
// is byte order for UTF-8), or false when there is none.
func Successor(p string) (string, bool) {
	for p != "" {
		r, size := utf8.DecodeLastRuneInString(p)
		p = p[:len(p)-size]
		if r == utf8.RuneError && size <= 1 {
			return "", false // invalid UTF-8: no safe upper bound, the lower bound alone still filters
		}
		next := r + 1
		if next >= 0xD800 && next <= 0xDFFF {
			next = 0xE000
		}
		if next <= utf8.MaxRune {
			return p + string(next), true
		}
	}
	return "", false
}

// date compiles FHIR R4 date-range semantics: the search range [pl, ph] against a row's [low, high].
func (b *Builder) date(typ, col string, c index.Date) error {
	pl, ph := DateRange(c.Low, c.High)
	b.sub(col, "idx_date", typ, c.Param)
	eq := func() {
		b.W("(low >= ")
		b.Arg(pl)
		b.W(" AND high <= ")
		b.Arg(ph)
		b.W(")")
	}
	switch c.Cmp {
	case index.DateEq, "":
		b.W(" AND ")
		eq()
	case index.DateGt:
		b.W(" AND high > ")
		b.Arg(ph)
	case index.DateLt:
		b.W(" AND low < ")
		b.Arg(pl)
	case index.DateGe:
		b.W(" AND (high > ")
		b.Arg(ph)
		b.W(" OR ")
		eq()
		b.W(")")
	case index.DateLe:
		b.W(" AND (low < ")
		b.Arg(pl)
		b.W(" OR ")
		eq()
		b.W(")")
	default:
		return fmt.Errorf("date condition on %q: unknown comparator %q", c.Param, c.Cmp)
	}
	b.W(")")
	return nil
}

// EarthRadiusKm is the mean Earth radius used for great-circle distances.
const EarthRadiusKm = 6371.0088

// near compiles a radius search: a bounding box on (lat, lon) the index narrows, then the exact haversine
// test in SQL (both engines have sin/cos/radians). The haversine term hav = sin²(Δφ/2) + cosφ1·cosφ2·sin²(Δλ/2)
// is compared with sin²(d/2R), which avoids asin and its domain errors.
func (b *Builder) near(typ, col string, c index.Near) error {
	if c.Km < 0 || math.IsNaN(c.Km) || math.IsNaN(c.Lat) || math.IsNaN(c.Lon) || c.Lat < -90 || c.Lat > 90 || c.Lon < -180 || c.Lon > 180 {
		return fmt.Errorf("near condition on %q: invalid position or distance", c.Param)
	}
	b.sub(col, "idx_geo", typ, c.Param)
	half := c.Km / (2 * EarthRadiusKm)
	if half >= math.Pi/2 {
		b.W(")") // the whole globe
		return nil
	}
	dLat := c.Km / EarthRadiusKm * 180 / math.Pi
	b.W(" AND lat BETWEEN ")
	b.Arg(c.Lat - dLat)
	b.W(" AND ")
	b.Arg(c.Lat + dLat)
	if maxLat := math.Abs(c.Lat) + dLat; maxLat < 89 {
		dLon := dLat / math.Cos(maxLat*math.Pi/180)
		if c.Lon-dLon >= -180 && c.Lon+dLon <= 180 {
			b.W(" AND lon BETWEEN ")
			b.Arg(c.Lon - dLon)
			b.W(" AND ")
			b.Arg(c.Lon + dLon)
		}
	}
	lat0 := c.Lat * math.Pi / 180
	lon0 := c.Lon * math.Pi / 180
	b.W(" AND power(sin((radians(lat) - ")
	b.Arg(lat0)
	b.W(") / 2), 2) + ")
	b.Arg(math.Cos(lat0))
	b.W(" * cos(radians(lat)) * power(sin((radians(lon) - ")
	b.Arg(lon0)
	b.W(") / 2), 2) <= ")
	s := math.Sin(half)
	b.Arg(s*s + 1e-15) // tolerance for rounding at the exact radius
	b.W(")")
	return nil
}

// positive reports whether every resource matching c has index rows (so it exists): false for conditions
// that can hold of an id with no resource behind it.
func positive(c index.Cond) bool {
	switch c := c.(type) {
	case nil:
		return false
	case index.And:
		for _, sub := range c {
			if positive(sub) {
				return true
			}
		}
		return false
	case index.Or:
		for _, sub := range c {
			if !positive(sub) {
				return false
			}
		}
		return true
	case index.Not, index.IDs:
		return false
	case index.Has:
		return false // the referenced id may be dangling
	case index.Text:
		for _, w := range c.Words {
			if w != "" {
				return true
			}
		}
		return false
	default:
		return true
	}
}

// SearchSQL returns the page query (ids ordered by id, with LIMIT/OFFSET) and the count query for q.
// The page query takes all of args; the count query takes args[:len(args)-2] (the last two are limit, offset).
func SearchSQL(d Dialect, q index.Query) (page, count string, args []any, err error) {
	page, count, _, args, err = searchSQL(&Builder{D: d}, q)
	return page, count, args, err
}

// SearchWithTotalSQL is SearchSQL's page query that also returns the number of all matches in every row
// (count(*) OVER ()), so one statement answers a page with its total. A page beyond the last match has no
// rows and therefore no total: callers then run the count query.
func SearchWithTotalSQL(d Dialect, q index.Query) (pageWithTotal, count string, args []any, err error) {
	_, count, pageWithTotal, args, err = searchSQL(&Builder{D: d}, q)
	return pageWithTotal, count, args, err
}

// SearchSQLWithoutChainRows is SearchSQL (withTotal false) or SearchWithTotalSQL (true) for a store whose
// chain rows are not there yet (a PostgreSQL bulk load): chains are compiled as chains.
func SearchSQLWithoutChainRows(d Dialect, q index.Query, withTotal bool) (page, count string, args []any, err error) {
	p, count, pwt, args, err := searchSQL(&Builder{D: d, NoChainRows: true}, q)
	if withTotal {
		return pwt, count, args, err
	}
	return p, count, args, err
}

func searchSQL(b *Builder, q index.Query) (page, count, pageWithTotal string, args []any, err error) {
	if q.Type == "" {
		return "", "", "", nil, fmt.Errorf("search without a resource type")
	}
	if q.Limit < 0 || q.Offset < 0 {
		return "", "", "", nil, fmt.Errorf("search: negative limit or offset")
	}
	if conds, at := b.driver(q.Type, q.Where); at >= 0 {
		b.W("FROM (")
		switch c := conds[at].(type) {
		case index.Text:
			b.textSet(q.Type, textWords(c))
		case index.Chain:
			if err := b.chainSet(q.Type, c, true); err != nil {
				return "", "", "", nil, err
			}
		case index.String:
			b.W("SELECT DISTINCT id FROM idx_string WHERE ")
			b.stringParam(q.Type, c.Param)
			if err := b.stringMatch(c); err != nil {
				return "", "", "", nil, err
			}
		case index.Token:
			b.W("SELECT DISTINCT id FROM idx_token WHERE type = ")
			b.Arg(q.Type)
			b.W(" AND param = ")
			b.Arg(c.Param)
			b.W(" AND code = ")
			b.Arg(c.Code)
		}
		b.W(") r WHERE ")
		rest := append(append(index.And(nil), conds[:at]...), conds[at+1:]...)
		if err := b.Where(q.Type, "r.id", rest); err != nil {
			return "", "", "", nil, err
		}
	} else {
		b.W("FROM resources r WHERE r.type = ")
		b.Arg(q.Type)
		b.W(" AND ")
		if err := b.Where(q.Type, "r.id", q.Where); err != nil {
			return "", "", "", nil, err
		}
	}
	from := b.SQL()
	count = "SELECT count(*) " + from
	b.W(" ORDER BY r.id LIMIT ")
	b.Arg(int64(q.Limit))
	b.W(" OFFSET ")
	b.Arg(int64(q.Offset))
	return "SELECT r.id " + b.SQL(), count, "SELECT r.id, count(*) OVER () " + b.SQL(), b.Args, nil
}
