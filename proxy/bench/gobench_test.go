package bench

import (
	"strings"
	"testing"
)

func TestParseGoBench(t *testing.T) {
	out := `goos: linux
pkg: github.com/timstack/timstack/policy
BenchmarkEvalFederationCached-2   	 1000000	       512.3 ns/op	       498.0 cpu-ns/op	     120 B/op	       3 allocs/op
BenchmarkEvalInvite/uncached-2    	   40000	     25000 ns/op
BenchmarkBroken-2 	 abc 	 1 ns/op
--- FAIL: BenchmarkX
PASS
`
	got, err := ParseGoBench(strings.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("%d results, want 2: %+v", len(got), got)
	}
	if got[0].Name != "BenchmarkEvalFederationCached" || got[0].Iterations != 1000000 ||
		got[0].Metrics["ns/op"] != 512.3 || got[0].Metrics["cpu-ns/op"] != 498 || got[0].Metrics["allocs/op"] != 3 {
		t.Fatalf("%+v", got[0])
	}
	if got[1].Name != "BenchmarkEvalInvite/uncached" || got[1].Metrics["ns/op"] != 25000 {
		t.Fatalf("%+v", got[1])
	}
}
