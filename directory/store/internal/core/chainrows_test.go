package core

import (
	"slices"
	"strings"
	"testing"

	"github.com/timstack/timstack/directory/index"
)

func TestChainRowsAreUsed(t *testing.T) {
	active := index.Token{Param: "active", Code: "true", AnySystem: true}
	chain := func(c index.Cond) index.Chain {
		return index.Chain{Param: "practitioner", TargetType: index.Practitioner, Where: c}
	}
	name := index.String{Param: "name", Value: "muller"}
	cases := []struct {
		name      string
		where     index.Cond
		wantParam string // a chain-row parameter the statement must use ("" = none)
		wantChain bool   // the statement still walks the practitioner reference
	}{
		{"the mandatory filter with a name is one range on the name's chain rows", index.And{chain(active), chain(name)}, "practitioner.name", false},
		{"the mandatory filter alone is the marker", index.And{chain(active)}, "practitioner.active", false},
		{"a name with a qualification keeps the chain for the qualification", index.And{chain(active), chain(name), chain(index.Token{Param: "qualification", Code: "x", AnySystem: true})}, "practitioner.name", true},
		{"a name without the active filter is the chain", index.And{chain(name)}, "", true},
		{"active=true of one system is not the marker", index.And{chain(index.Token{Param: "active", Code: "true"}), chain(name)}, "", true},
		{"a negated name is not copied", index.And{chain(active), index.Not{Cond: chain(name)}}, "practitioner.active", true},
		{"a parameter that is not copied stays in the chain", index.And{chain(active), chain(index.String{Param: "address", Value: "x"})}, "practitioner.active", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for _, d := range []Dialect{Postgres, SQLite} {
				page, _, args, err := SearchSQL(d, index.Query{Type: index.PractitionerRole, Where: c.where, Limit: 20})
				if err != nil {
					t.Fatal(err)
				}
				var params []string
				for _, a := range args {
					if s, ok := a.(string); ok && strings.HasPrefix(s, "practitioner.") {
						params = append(params, s)
					}
				}
				if c.wantParam == "" && len(params) > 0 || c.wantParam != "" && !slices.Contains(params, c.wantParam) {
					t.Errorf("dialect %d: chain-row parameters %v, want %q\n%s", d, params, c.wantParam, page)
				}
				if got := strings.Contains(page, "idx_reference"); got != c.wantChain {
					t.Errorf("dialect %d: walks the reference = %v, want %v\n%s", d, got, c.wantChain, page)
				}
			}
		})
	}
}
