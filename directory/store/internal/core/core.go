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
	// A resource has a few dozen rows: comparing each with those before it is cheaper than hashing every
	// row (a dozen strings and two times) into a map, which was a tenth of an import's encoding CPU.
	var seen map[index.Row]struct{}
	if len(r.Rows) > encodeScanMax {
		seen = make(map[index.Row]struct{}, len(r.Rows))
	}
	kept := make([]int, 0, len(r.Rows)) // indexes into r.Rows of the rows added so far (without the map)
	dup := func(i int, row index.Row) bool {
		if seen != nil {
			if _, ok := seen[row]; ok {
				return true
			}
			seen[row] = struct{}{}
			return false
		}
		for _, k := range kept {
			if r.Rows[k] == row {
				return true
			}
		}
		if i >= 0 {
			kept = append(kept, i)
		}
		return false
	}
	add := func(i int, row index.Row) {
		if dup(i, row) {
			return
		}
		switch row.Type {
		case index.TypeToken:
			tabs[TabToken] = append(tabs[TabToken], []any{r.Type, r.ID, row.Param, row.System, row.Code, row.Display})
		case index.TypeString:
			tabs[TabString] = append(tabs[TabString], []any{r.Type, r.ID, row.Param, row.Value})
		case index.TypeReference:
			tabs[TabReference] = append(tabs[TabReference], []any{r.Type, r.ID, row.Param, row.RefType, row.RefID})
		case index.TypeDate:
			lo, hi := DateRange(row.Low, row.High)
			tabs[TabDate] = append(tabs[TabDate], []any{r.Type, r.ID, row.Param, lo, hi})
		case index.TypeNumber:
			tabs[TabNumber] = append(tabs[TabNumber], []any{r.Type, r.ID, row.Param, row.Number})
		case index.TypeGeo:
			tabs[TabGeo] = append(tabs[TabGeo], []any{r.Type, r.ID, row.Param, row.Lat, row.Lon})
		case index.TypeText:
			if row.Value != "" {
				tabs[TabText] = append(tabs[TabText], []any{r.Type, r.ID, row.Value})
			}
		}
	}
	for i, row := range r.Rows {
		if row.Param == LastUpdatedParam && row.Type == index.TypeDate {
			continue
		}
		add(i, row)
	}
	// the store's own row; every row of the caller's with this parameter was skipped above
	add(-1, index.Row{Param: LastUpdatedParam, Type: index.TypeDate, Low: r.LastUpdated, High: r.LastUpdated})
}

// encodeScanMax is the number of rows up to which Encode finds duplicates by comparing rows.
const encodeScanMax = 64
