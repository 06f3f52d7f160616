// Package core holds what the store engines share: the error values, the encoding of resources into index
// table rows, and the compiler from index.Cond trees to SQL. The engines differ only in driver plumbing and
// a small Dialect.
package core

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/timstack/timstack/directory/index"
)

// ErrNotFound is returned (wrapped) when a resource or key does not exist. package store re-exports it.
var ErrNotFound = errors.New("not found")

// Index tables, in a fixed order shared by both engines.
const (
	TabToken = iota
	TabString
	TabReference
	TabDate
	TabNumber
	TabGeo
	TabText
	NumTables
)

// Table is an index table and its columns in insert order.
type Table struct {
	Name    string
	Columns []string
}

// Tables returns the index tables, indexed by the Tab constants.
func Tables() [NumTables]Table {
	return [NumTables]Table{
		TabToken:     {"idx_token", []string{"type", "id", "param", "system", "code", "display"}},
		TabString:    {"idx_string", []string{"type", "id", "param", "value"}},
		TabReference: {"idx_reference", []string{"type", "id", "param", "ref_type", "ref_id"}},
		TabDate:      {"idx_date", []string{"type", "id", "param", "low", "high"}},
		TabNumber:    {"idx_number", []string{"type", "id", "param", "value"}},
		TabGeo:       {"idx_geo", []string{"type", "id", "param", "lat", "lon"}},
		TabText:      {"idx_text", []string{"type", "id", "word"}},
	}
}

// LastUpdatedParam is the date parameter the store maintains itself from Resource.LastUpdated.
const LastUpdatedParam = "_lastUpdated"

// Now is the store clock: UTC, truncated to microseconds so that it survives both engines unchanged.
func Now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }

// Micros encodes a time for the date index: microseconds since the Unix epoch; the zero time is def
// (math.MinInt64 for an open low end, math.MaxInt64 for an open high end).
func Micros(t time.Time, def int64) int64 {
	if t.IsZero() {
		return def
	}
	return t.UnixMicro()
}

// DateRange encodes [low, high]: a zero high with a non-zero low is the instant low.
func DateRange(low, high time.Time) (int64, int64) {
	if high.IsZero() && !low.IsZero() {
		high = low
	}
	return Micros(low, math.MinInt64), Micros(high, math.MaxInt64)
}

// Validate checks what the store needs of a resource before writing it.
func Validate(r index.Resource) error {
	if r.Type == "" || r.ID == "" {
		return fmt.Errorf("resource needs a type and an id (got %q/%q)", r.Type, r.ID)
	}
	for _, row := range r.Rows {
		if row.Param == "" && row.Type != index.TypeText {
			return fmt.Errorf("%s/%s: index row without a parameter", r.Type, r.ID)
		}
		switch row.Type {
		case index.TypeToken, index.TypeString, index.TypeReference, index.TypeDate, index.TypeNumber, index.TypeGeo, index.TypeText:
		default:
			return fmt.Errorf("%s/%s: index row %q has unknown type %q", r.Type, r.ID, row.Param, row.Type)
		}
		if row.Type == index.TypeReference && (row.RefType == "" || row.RefID == "") {
			return fmt.Errorf("%s/%s: reference row %q needs a target type and id", r.Type, r.ID, row.Param)
		}
	}
	return nil
}

// Encode appends the index-table rows of r (with the store's _lastUpdated row, replacing any the caller
// gave) to tabs, one []any per row in Tables() column order. Identical rows are written once.
func Encode(tabs *[NumTables][][]any, r index.Resource) {
	EachRow(r, func(tab int, row *index.Row) {
		tabs[tab] = append(tabs[tab], Values(r, tab, row))
	})
}

// Values returns the column values (Tables() order) of row, a row of r in table tab (as EachRow gives it):
// strings, int64 (date ranges, see DateRange) and float64.
func Values(r index.Resource, tab int, row *index.Row) []any {
	switch tab {
	case TabToken:
		return []any{r.Type, r.ID, row.Param, row.System, row.Code, row.Display}
	case TabString:
		return []any{r.Type, r.ID, row.Param, row.Value}
	case TabReference:
		return []any{r.Type, r.ID, row.Param, row.RefType, row.RefID}
	case TabDate:
		lo, hi := DateRange(row.Low, row.High)
		return []any{r.Type, r.ID, row.Param, lo, hi}
	case TabNumber:
		return []any{r.Type, r.ID, row.Param, row.Number}
	case TabGeo:
		return []any{r.Type, r.ID, row.Param, row.Lat, row.Lon}
	case TabText:
		return []any{r.Type, r.ID, row.Value}
	}
	return nil
}

// EachRow calls fn with the table and row of every index-table row of r, as Encode writes them: the
// store's _lastUpdated row instead of any the caller gave, no _text row without a word, and identical
// rows once.
func EachRow(r index.Resource, fn func(tab int, row *index.Row)) {
	// A resource has a few dozen rows: comparing each with those before it is cheaper than hashing every
	// row (a dozen strings and two times) into a map, which was a tenth of an import's encoding CPU.
	var seen map[index.Row]struct{}
	if len(r.Rows) > encodeScanMax {
		seen = make(map[index.Row]struct{}, len(r.Rows))
	}
	var kept []int // indexes into r.Rows of the rows given to fn so far (without the map)
	dup := func(i int, row *index.Row) bool {
		if seen != nil {
			if _, ok := seen[*row]; ok {
				return true
			}
			seen[*row] = struct{}{}
			return false
		}
		for _, k := range kept {
			if r.Rows[k] == *row {
				return true
			}
		}
		kept = append(kept, i)
		return false
	}
	for i := range r.Rows {
		row := &r.Rows[i]
		if row.Param == LastUpdatedParam && row.Type == index.TypeDate {
			continue
		}
		tab, ok := tableOf(row)
		if !ok || dup(i, row) {
			continue
		}
		fn(tab, row)
	}
	// the store's own row; every row of the caller's with this parameter was skipped above
	fn(TabDate, &index.Row{Param: LastUpdatedParam, Type: index.TypeDate, Low: r.LastUpdated, High: r.LastUpdated})
}

// tableOf returns the table of row; false for a row that is not written (a _text row without a word, an
// unknown type, which Validate refuses).
func tableOf(row *index.Row) (int, bool) {
	switch row.Type {
	case index.TypeToken:
		return TabToken, true
	case index.TypeString:
		return TabString, true
	case index.TypeReference:
		return TabReference, true
	case index.TypeDate:
		return TabDate, true
	case index.TypeNumber:
		return TabNumber, true
	case index.TypeGeo:
		return TabGeo, true
	case index.TypeText:
		return TabText, row.Value != ""
	}
	return 0, false
}

// encodeScanMax is the number of rows up to which EachRow finds duplicates by comparing rows.
const encodeScanMax = 64
