package postgres_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"github.com/timstack/timstack/directory/index"
	"github.com/timstack/timstack/directory/store/internal/core"
	"github.com/timstack/timstack/directory/store/storetest"
)

// tableDump lists every row of every index table of the database dsn names, as text, in order.
func tableDump(t *testing.T, dsn string) map[string][]string {
	t.Helper()
	ctx := context.Background()
	conn := connect(t, dsn)
	out := map[string][]string{}
	for _, tab := range core.Tables() {
		rows, err := conn.Query(ctx, `SELECT t::text FROM `+tab.Name+` t ORDER BY 1`)
		if err != nil {
			t.Fatal(err)
		}
		if out[tab.Name], err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// A large write goes through the binary COPY the store encodes itself, a small one through INSERT
// statements: both must leave the same index rows, for every column type.
func TestCopiedRowsEqualInsertedRows(t *testing.T) {
	ctx := context.Background()
	low := time.Date(2024, 2, 29, 12, 0, 0, 123000, time.UTC)
	odd := index.Resource{Type: index.HealthcareService, ID: "hs-odd", JSON: []byte(`{}`), Rows: []index.Row{
		{Param: "name", Type: index.TypeString, Value: "zahnärztliche praxis \"süd\"\t\\ ende"},
		{Param: "name", Type: index.TypeString, Value: "zahnärztliche praxis \"süd\"\t\\ ende"}, // written once
		{Param: "period", Type: index.TypeDate, Low: low, High: low.Add(time.Hour)},
		{Param: "open", Type: index.TypeDate, Low: low},
		{Param: "count", Type: index.TypeNumber, Number: -12.5e-3},
		{Param: "near", Type: index.TypeGeo, Lat: -33.86, Lon: 151.2},
		{Param: "identifier", Type: index.TypeToken, System: "", Code: "", Display: "nur anzeige"},
		{Param: "_text", Type: index.TypeText, Value: ""}, // no word: no row
		{Param: "_text", Type: index.TypeText, Value: "süd"},
	}}
	data := append(storetest.Synthetic(100, 1), odd)
	copied, inserted := pg.DSN(t), pg.DSN(t)
	if _, err := openPG(t, copied).Put(ctx, data...); err != nil {
		t.Fatal(err)
	}
	small := openPG(t, inserted)
	for _, r := range data {
		if _, err := small.Put(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	// _lastUpdated differs between the two writes; everything else must not.
	strip := func(d map[string][]string) map[string][]string {
		var dates []string
		for _, row := range d["idx_date"] {
			if !strings.Contains(row, ","+core.LastUpdatedParam+",") {
				dates = append(dates, row)
			}
		}
		d["idx_date"] = dates
		return d
	}
	want := strip(tableDump(t, inserted))
	if len(want["idx_token"]) < 300 || len(want["idx_date"]) != 2 || len(want["idx_number"]) != 1 {
		t.Fatalf("the inserted rows miss column types: %d token, %d date, %d number rows", len(want["idx_token"]), len(want["idx_date"]), len(want["idx_number"]))
	}
	if diff := cmp.Diff(want, strip(tableDump(t, copied))); diff != "" {
		t.Errorf("index rows (-inserted +copied):\n%s", diff)
	}
}
