package core

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
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
				// PostgreSQL asks for the string rows of a parameter by its param_key
				keys := map[int32]string{}
				for _, p := range []string{"practitioner.name", "practitioner.family", "practitioner.given"} {
					keys[ParamKey(index.PractitionerRole, p)] = p
				}
				var params []string
				for _, a := range args {
					if s, ok := a.(string); ok && strings.HasPrefix(s, "practitioner.") {
						params = append(params, s)
					}
					if k, ok := a.(int32); ok && keys[k] != "" {
						params = append(params, keys[k])
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

func TestWithChainRows(t *testing.T) {
	prac := func(id string, active bool, name string) index.Resource {
		return index.Resource{Type: index.Practitioner, ID: id, Rows: []index.Row{
			{Param: "active", Type: index.TypeToken, Code: fmt.Sprint(active)}, {Param: "name", Type: index.TypeString, Value: name}}}
	}
	role := func(id, pract string, more ...index.Row) index.Resource {
		return index.Resource{Type: index.PractitionerRole, ID: id, Rows: append([]index.Row{
			{Param: "practitioner", Type: index.TypeReference, RefType: index.Practitioner, RefID: pract}}, more...)}
	}
	chain := func(rs []index.Resource) []index.Row {
		var out []index.Row
		for _, r := range rs {
			for _, row := range r.Rows {
				if r.Type == index.PractitionerRole && row.Type != index.TypeReference {
					out = append(out, row)
				}
			}
		}
		return out
	}
	stored := map[string]ChainTarget{"p-stored": {Active: true, Strings: []index.Row{{Param: "name", Type: index.TypeString, Value: "berta"}}}, "p-off": {}}
	lookup := func(target string, ids, params []string) (map[string]ChainTarget, error) {
		out := map[string]ChainTarget{}
		for _, id := range ids {
			if t, ok := stored[id]; ok {
				out[id] = t
			}
		}
		return out, nil
	}
	marker := index.Row{Param: "practitioner.active", Type: index.TypeToken, Code: "true"}
	for _, c := range []struct {
		name   string
		rs     []index.Resource
		want   []index.Row
		unseen bool
	}{
		{"a role gets the names of its active practitioner in the same write", []index.Resource{role("r", "p"), prac("p", true, "anna")},
			[]index.Row{marker, {Param: "practitioner.name", Type: index.TypeString, Value: "anna"}}, false},
		{"a role gets the names of its stored practitioner", []index.Resource{role("r", "p-stored")},
			[]index.Row{marker, {Param: "practitioner.name", Type: index.TypeString, Value: "berta"}}, false},
		{"an inactive practitioner gives no chain rows", []index.Resource{role("r", "p-off")}, nil, false},
		{"a practitioner not stored is reported", []index.Resource{role("r", "nobody")}, nil, true},
		{"chain rows the caller gives are left out", []index.Resource{role("r", "p-off", index.Row{Param: "practitioner.name", Type: index.TypeString, Value: "x"})}, nil, false},
		{"the last occurrence of a practitioner counts", []index.Resource{prac("p", true, "anna"), role("r", "p"), prac("p", false, "anna")}, nil, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := fmt.Sprint(c.rs)
			got, unseen, err := WithChainRows(c.rs, lookup)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(c.want, chain(got)); diff != "" || unseen != c.unseen {
				t.Errorf("chain rows (-want +got):\n%s\nunseen %v, want %v", diff, unseen, c.unseen)
			}
			if fmt.Sprint(c.rs) != before {
				t.Error("the caller's resources were changed")
			}
		})
	}
}
