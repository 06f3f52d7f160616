package core

import (
	"slices"
	"sort"
	"strconv"

	"github.com/timstack/timstack/directory/index"
)

// ChainRows is a single-valued reference whose ACTIVE target's values the store copies onto the resource
// that references it ("chain rows"), so that the mandatory filter of /search (the role's Practitioner, the
// service's Organization is active) merged with a chained name search is one index range on the root
// instead of two index probes per name match (8.8k matches for a common family name at full scale):
//
//   - a token row Param+".active" = true on every root whose target is active;
//   - a string row Param+"."+p for each value of the target's string parameters p in Strings, only while
//     the target is active.
//
// The store keeps them itself: every Put or Delete recomputes the chain rows of the roots it writes and of
// the roots that reference a target it writes or deletes (RefreshChainRows), inside the same transaction,
// so a deactivated, renamed or deleted target changes the answers at once. Callers never give such rows.
type ChainRows struct {
	Root, Param, Target string
	Strings             []string
}

// ActiveParam is the parameter of the marker token row.
func (c ChainRows) ActiveParam() string { return c.Param + ".active" }

// prefix is the start of every chain-row parameter of c ("practitioner.").
func (c ChainRows) prefix() string { return c.Param + "." }

// AllChainRows lists the chains the store keeps chain rows for: the two mandatory /search filters
// (spec §3.4) and the string parameters the spec's uplifted chains search (practitioner.name / family /
// given, organization.name / alias).
func AllChainRows() []ChainRows {
	return []ChainRows{
		{Root: index.PractitionerRole, Param: "practitioner", Target: index.Practitioner, Strings: []string{"family", "given", "name"}},
		{Root: index.HealthcareService, Param: "organization", Target: index.Organization, Strings: []string{"alias", "name"}},
	}
}

// chainRowsFor returns the chain rows kept for the chain typ.param → target.
func chainRowsFor(typ, param, target string) (ChainRows, bool) {
	for _, c := range AllChainRows() {
		if c.Root == typ && c.Param == param && c.Target == target {
			return c, true
		}
	}
	return ChainRows{}, false
}

// isChainRowParam reports whether param of typ is a chain-row parameter (kept by the store).
func isChainRowParam(typ, param string) bool {
	for _, c := range AllChainRows() {
		if c.Root == typ && len(param) > len(c.prefix()) && param[:len(c.prefix())] == c.prefix() {
			return true
		}
	}
	return false
}

// isActiveTrue reports whether t is the condition the mandatory filters put on the chain's target
// (active=true in any system).
func isActiveTrue(t index.Token) bool {
	return t == index.Token{Param: "active", Code: "true", AnySystem: true}
}

// useChainRows rewrites, in a conjunction on typ, every chain that has chain rows and whose condition
// includes active=true: its string conditions on copied parameters become conditions on the root's chain
// rows (which exist only while the target is active, so they carry the active filter with them); without
// such a string, active=true becomes the marker token. What is left of the chain's condition stays a
// chain. The reference is single-valued, so every part still speaks of the same target.
func useChainRows(typ string, c index.And) index.And {
	var out index.And
	for i, sub := range c {
		ch, ok := sub.(index.Chain)
		if !ok {
			if out != nil {
				out = append(out, sub)
			}
			continue
		}
		cr, kept := chainRowsFor(typ, ch.Param, ch.TargetType)
		if !kept {
			if out != nil {
				out = append(out, sub)
			}
			continue
		}
		var active bool
		var strs, rest index.And
		for _, x := range flatten(ch.Where) {
			if t, ok := x.(index.Token); ok && isActiveTrue(t) {
				active = true
				continue
			}
			if s, ok := copiedString(cr, x); ok {
				strs = append(strs, s)
				continue
			}
			rest = append(rest, x)
		}
		if !active {
			if out != nil {
				out = append(out, sub)
			}
			continue
		}
		if out == nil {
			out = append(make(index.And, 0, len(c)+1), c[:i]...)
		}
		if len(strs) > 0 {
			out = append(out, strs...)
		} else {
			out = append(out, index.Token{Param: cr.ActiveParam(), Code: "true", AnySystem: true})
		}
		if len(rest) > 0 {
			out = append(out, index.Chain{Param: ch.Param, TargetType: ch.TargetType, Where: rest})
		}
	}
	if out == nil {
		return c
	}
	return out
}

// flatten returns the conjuncts of c (nested Ands unpacked; nil is no condition).
func flatten(c index.Cond) []index.Cond {
	switch c := c.(type) {
	case nil:
		return nil
	case index.And:
		var out []index.Cond
		for _, x := range c {
			out = append(out, flatten(x)...)
		}
		return out
	default:
		return []index.Cond{c}
	}
}

// copiedString turns a string condition (or an Or of them) on parameters cr copies into the same
// condition on the chain rows.
func copiedString(cr ChainRows, c index.Cond) (index.Cond, bool) {
	switch c := c.(type) {
	case index.String:
		for _, p := range cr.Strings {
			if c.Param == p {
				c.Param = cr.prefix() + p
				return c, true
			}
		}
		return nil, false
	case index.Or:
		if len(c) == 0 {
			return nil, false
		}
		out := make(index.Or, len(c))
		for i, x := range c {
			y, ok := copiedString(cr, x)
			if !ok {
				return nil, false
			}
			out[i] = y
		}
		return out, true
	}
	return nil, false
}

// TouchesChainRows reports whether writing or deleting resources of these types may change chain rows.
// Such writes must not run concurrently with each other: a writer of a Practitioner and a writer of a
// role that references it would each compute the role's rows without seeing the other's uncommitted
// change, leaving rows of a deactivated practitioner behind. The engines serialise them (PostgreSQL: a
// transaction-scoped advisory lock taken before anything else, so it cannot be part of a deadlock;
// SQLite has one writer anyway). Directory writes are one importer or the owner API's single resources,
// so the cost is small.
func TouchesChainRows(refs []index.Ref) bool {
	for _, cr := range AllChainRows() {
		for _, r := range refs {
			if r.Type == cr.Root || r.Type == cr.Target {
				return true
			}
		}
	}
	return false
}

// RefreshChainRows recomputes, inside a write transaction, the chain rows of the roots among written and
// of the roots that reference a target among written (written or deleted resources). query returns the
// single text column of a query's rows; exec runs a statement.
func RefreshChainRows(d Dialect, written []index.Ref, query func(sql string, args ...any) ([]string, error), exec func(sql string, args ...any) error) error {
	for _, cr := range AllChainRows() {
		roots := map[string]bool{}
		var targets []string
		for _, r := range written {
			switch r.Type {
			case cr.Root:
				roots[r.ID] = true
			case cr.Target:
				targets = append(targets, r.ID)
			}
		}
		for _, chunk := range chunks(d, targets) {
			b := &Builder{D: d}
			b.W("SELECT DISTINCT id FROM idx_reference WHERE ")
			b.In("ref_id", chunk)
			b.W(" AND ref_type = ")
			b.Arg(cr.Target)
			b.W(" AND param = ")
			b.Arg(cr.Param)
			b.W(" AND type = ")
			b.Arg(cr.Root)
			ids, err := query(b.SQL(), b.Args...)
			if err != nil {
				return err
			}
			for _, id := range ids {
				roots[id] = true
			}
		}
		if len(roots) == 0 {
			continue
		}
		ids := make([]string, 0, len(roots))
		for id := range roots {
			ids = append(ids, id)
		}
		sort.Strings(ids) // a fixed order for the row locks of concurrent writers
		for _, chunk := range chunks(d, ids) {
			for _, stmt := range cr.statements(d, chunk) {
				if err := exec(stmt.SQL(), stmt.Args...); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// RebuildChainRows returns the statements that recompute every chain row of the store (after a bulk load
// or when the migration that introduced them runs on filled data).
func RebuildChainRows(d Dialect) []*Builder {
	var out []*Builder
	for _, cr := range AllChainRows() {
		out = append(out, cr.statements(d, nil)...)
	}
	return out
}

// chunks splits ids for IN lists: SQLite binds every id as its own parameter; PostgreSQL takes one array.
func chunks(d Dialect, ids []string) [][]string {
	size := 500
	if d == Postgres {
		size = 10000
	}
	var out [][]string
	for len(ids) > 0 {
		n := min(size, len(ids))
		out = append(out, ids[:n])
		ids = ids[n:]
	}
	return out
}

// statements deletes and recomputes the chain rows of the roots ids (nil: of every root).
func (cr ChainRows) statements(d Dialect, ids []string) []*Builder {
	rootIDs := func(b *Builder, col string) {
		if ids != nil {
			b.W(" AND ")
			b.In(col, ids)
		}
	}
	lo, hi := cr.prefix(), cr.Param+"/" // '/' follows '.': [lo, hi) are the parameters starting with lo
	delStr := &Builder{D: d}
	delStr.W("DELETE FROM idx_string WHERE type = ")
	delStr.Arg(cr.Root)
	delStr.W(" AND param >= ")
	delStr.Arg(lo)
	delStr.W(" AND param < ")
	delStr.Arg(hi)
	rootIDs(delStr, "id")

	delTok := &Builder{D: d}
	delTok.W("DELETE FROM idx_token WHERE type = ")
	delTok.Arg(cr.Root)
	delTok.W(" AND param >= ")
	delTok.Arg(lo)
	delTok.W(" AND param < ")
	delTok.Arg(hi)
	rootIDs(delTok, "id")

	// the root's reference rows to an active target
	from := func(b *Builder) {
		b.W(" FROM idx_reference r")
	}
	where := func(b *Builder) {
		b.W(" WHERE r.type = ")
		b.Arg(cr.Root)
		b.W(" AND r.param = ")
		b.Arg(cr.Param)
		b.W(" AND r.ref_type = ")
		b.Arg(cr.Target)
		rootIDs(b, "r.id")
		b.W(" AND EXISTS (SELECT 1 FROM idx_token a WHERE a.type = r.ref_type AND a.id = r.ref_id AND a.param = 'active' AND a.code = 'true')")
	}
	insTok := &Builder{D: d}
	insTok.W("INSERT INTO idx_token (type, id, param, system, code, display) SELECT DISTINCT r.type, r.id, CAST(")
	insTok.Arg(cr.ActiveParam())
	insTok.W(" AS TEXT), '', 'true', ''")
	from(insTok)
	where(insTok)

	// PostgreSQL's string rows also carry the key of their (param, type) (ParamKey), computed from the
	// same prefix argument.
	insStr := &Builder{D: d}
	keyCol := ""
	if d == Postgres {
		keyCol = ", param_key"
	}
	insStr.W("INSERT INTO idx_string (type, id, param, value", keyCol, ") SELECT DISTINCT r.type, r.id, CAST(")
	insStr.Arg(cr.prefix())
	insStr.W(" AS TEXT) || s.param, s.value")
	if d == Postgres {
		insStr.W(", ", ParamKeySQL("r.type", "CAST($"+strconv.Itoa(len(insStr.Args))+" AS TEXT) || s.param"))
	}
	from(insStr)
	insStr.W(" JOIN idx_string s ON s.type = r.ref_type AND s.id = r.ref_id AND ")
	insStr.In("s.param", cr.Strings)
	where(insStr)
	return []*Builder{delStr, delTok, insTok, insStr}
}

// ChainTarget is what the chain rows take from a target: whether it is active (active=true in any
// system) and its string rows of the chain's parameters.
type ChainTarget struct {
	Active  bool
	Strings []index.Row
}

// ChainLookup reads the stored targets of type target among ids (ids not stored are left out), with the
// string rows of the parameters params.
type ChainLookup func(target string, ids []string, params []string) (map[string]ChainTarget, error)

// WithChainRows returns rs with the chain rows of its roots computed in Go, for a bulk load that writes
// them with the roots instead of joining the index tables afterwards: the roots' own rows with chain-row
// parameters are left out (the store keeps those), and every root gets the rows of the active targets
// its reference rows point at, read from rs (the last occurrence of a target in rs) or else through
// lookup. unseen reports a target found neither in rs nor by lookup, which a later write may add (its
// roots' rows then need recomputing). The caller's resources and rows are not modified.
func WithChainRows(rs []index.Resource, lookup ChainLookup) (out []index.Resource, unseen bool, err error) {
	out = rs
	copied := false
	for _, cr := range AllChainRows() {
		hasRoots := false
		for _, r := range rs {
			if r.Type == cr.Root {
				hasRoots = true
				break
			}
		}
		if !hasRoots {
			continue // most batches of a load: only targets or other types
		}
		known := map[string]*ChainTarget{}
		for _, r := range rs {
			if r.Type != cr.Target {
				continue
			}
			t := ChainTargetOf(r.Rows, cr.Strings)
			known[r.ID] = &t // the last occurrence wins, as it does in the store
		}
		var need []string
		asked := map[string]bool{}
		for _, r := range rs {
			if r.Type != cr.Root {
				continue
			}
			for _, row := range r.Rows {
				if row.Type == index.TypeReference && row.Param == cr.Param && row.RefType == cr.Target {
					if _, ok := known[row.RefID]; !ok && !asked[row.RefID] {
						asked[row.RefID] = true
						need = append(need, row.RefID)
					}
				}
			}
		}
		if len(need) > 0 {
			sort.Strings(need)
			stored, err := lookup(cr.Target, need, cr.Strings)
			if err != nil {
				return nil, false, err
			}
			for _, id := range need {
				t, ok := stored[id]
				if !ok {
					unseen = true
					continue
				}
				known[id] = &t
			}
		}
		for i, r := range rs {
			if r.Type != cr.Root {
				continue
			}
			var rows []index.Row
			for _, row := range r.Rows {
				if (row.Type == index.TypeString || row.Type == index.TypeToken) && isChainRowParam(r.Type, row.Param) {
					continue
				}
				rows = append(rows, row)
			}
			for _, row := range r.Rows {
				if row.Type != index.TypeReference || row.Param != cr.Param || row.RefType != cr.Target {
					continue
				}
				t := known[row.RefID]
				if t == nil || !t.Active {
					continue
				}
				rows = append(rows, index.Row{Param: cr.ActiveParam(), Type: index.TypeToken, Code: "true"})
				for _, s := range t.Strings {
					rows = append(rows, index.Row{Param: cr.prefix() + s.Param, Type: index.TypeString, Value: s.Value})
				}
			}
			if !copied {
				out = append([]index.Resource(nil), rs...)
				copied = true
			}
			out[i].Rows = rows
		}
	}
	return out, unseen, nil
}

// ChainTargetOf returns what the chain rows take from a target with the index rows rows: active=true in
// any system, and its string rows of the parameters params.
func ChainTargetOf(rows []index.Row, params []string) ChainTarget {
	var t ChainTarget
	for _, row := range rows {
		switch {
		case row.Type == index.TypeToken && row.Param == "active" && row.Code == "true":
			t.Active = true
		case row.Type == index.TypeString && slices.Contains(params, row.Param):
			t.Strings = append(t.Strings, row)
		}
	}
	return t
}
