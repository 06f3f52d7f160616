package storetest

import (
	"context"
	"testing"

	"github.com/timstack/timstack/directory/index"
	"github.com/timstack/timstack/directory/store"
)

// BenchPutBulk measures Put of batches of 1,000 new resources (about 15 index rows each) and reports
// resources/s.
func BenchPutBulk(b *testing.B, open func(testing.TB) store.Store) {
	s := open(b)
	defer s.Close()
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		rs := Synthetic(1000, i+1)
		b.StartTimer()
		if _, err := s.Put(ctx, rs...); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*1000)/b.Elapsed().Seconds(), "resources/s")
}

// chainedName is the benchmarked query: PractitionerRole?practitioner.active=true&practitioner.name=timjamin mul
// with a page of 20 and the total.
var chainedName = index.Query{Type: index.PractitionerRole, Limit: 20, Total: true, Where: index.And{
	index.Chain{Param: "practitioner", TargetType: index.Practitioner, Where: index.Token{Param: "active", Code: "true"}},
	index.Chain{Param: "practitioner", TargetType: index.Practitioner, Where: index.String{Param: "name", Value: "timjamin mul"}},
}}

// BenchSearchChainedName loads 20,000 synthetic resources (then runs the engine's Analyze, if it has one)
// and measures a chained name search with a page of 20 and the total.
func BenchSearchChainedName(b *testing.B, open func(testing.TB) store.Store) {
	s := open(b)
	defer s.Close()
	ctx := context.Background()
	rs := Synthetic(20000, 0)
	for len(rs) > 0 {
		n := min(len(rs), 1000)
		if _, err := s.Put(ctx, rs[:n]...); err != nil {
			b.Fatal(err)
		}
		rs = rs[n:]
	}
	if a, ok := s.(interface{ Analyze(context.Context) error }); ok {
		if err := a.Analyze(ctx); err != nil {
			b.Fatal(err)
		}
	}
	r, err := s.Search(ctx, chainedName)
	if err != nil {
		b.Fatal(err)
	}
	if r.Total == 0 {
		b.Fatal("the benchmark query matches nothing")
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := s.Search(ctx, chainedName); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(r.Total), "matches")
}
