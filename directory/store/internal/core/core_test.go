package core

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/timstack/timstack/directory/index"
)

func TestEncode(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC)
	tok := func(code string) index.Row {
		return index.Row{Param: "identifier", Type: index.TypeToken, System: "s", Code: code}
	}
	many := func(n int) []index.Row {
		var rows []index.Row
		for i := 0; i < n; i++ {
			rows = append(rows, tok(fmt.Sprint(i)))
		}
		return rows
	}
	lastUpdated := []any{"Practitioner", "p", LastUpdatedParam, now.UnixMicro(), now.UnixMicro()}
	cases := []struct {
		name       string
		rows       []index.Row
		wantTokens int
	}{
		{"identical rows are written once", []index.Row{tok("a"), tok("b"), tok("a"), tok("b"), tok("c")}, 3},
		{"rows that differ only in their display are both written", []index.Row{tok("a"), {Param: "identifier", Type: index.TypeToken, System: "s", Code: "a", Display: "A"}}, 2},
		{"duplicates among more rows than are compared one by one are written once", append(many(encodeScanMax+10), many(encodeScanMax+10)...), encodeScanMax + 10},
		{"a caller's _lastUpdated row is replaced by the store's", []index.Row{tok("a"), {Param: LastUpdatedParam, Type: index.TypeDate, Low: now.Add(-time.Hour)}}, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var tabs [NumTables][][]any
			Encode(&tabs, index.Resource{Type: "Practitioner", ID: "p", LastUpdated: now, Rows: tc.rows})
			if got := len(tabs[TabToken]); got != tc.wantTokens {
				t.Errorf("%d token rows, want %d", got, tc.wantTokens)
			}
			seen := map[string]bool{}
			for _, row := range tabs[TabToken] {
				k := fmt.Sprint(row)
				if seen[k] {
					t.Errorf("token row %v written twice", row)
				}
				seen[k] = true
			}
			if diff := cmp.Diff([][]any{lastUpdated}, tabs[TabDate]); diff != "" {
				t.Errorf("date rows (-want +got):\n%s", diff)
			}
		})
	}
}
