package postgres

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/timstack/timstack/directory/index"
	"github.com/timstack/timstack/directory/store/internal/core"
)

func TestChainTargetMemory(t *testing.T) {
	prac := func(id, active string, names ...string) index.Resource {
		r := index.Resource{Type: index.Practitioner, ID: id, Rows: []index.Row{
			{Param: "active", Type: index.TypeToken, Code: active},
			{Param: "address", Type: index.TypeString, Value: "not copied"}}}
		for _, n := range names {
			r.Rows = append(r.Rows, index.Row{Param: "family", Type: index.TypeString, Value: n}, index.Row{Param: "name", Type: index.TypeString, Value: n})
		}
		return r
	}
	var m chainTargetMemory
	m.remember([]index.Resource{prac("p1", "true", "adler"), prac("p2", "false"),
		{Type: index.Location, ID: "p3", Rows: []index.Row{{Param: "name", Type: index.TypeString, Value: "no target"}}}})

	found, missing := m.lookup(index.Practitioner, []string{"p1", "p2", "p3"}, []string{"family"})
	want := map[string]core.ChainTarget{
		"p1": {Active: true, Strings: []index.Row{{Param: "family", Type: index.TypeString, Value: "adler"}}},
		"p2": {},
	}
	if diff := cmp.Diff(want, found); diff != "" {
		t.Errorf("remembered targets (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"p3"}, missing); diff != "" {
		t.Errorf("a target never written must be asked for (-want +got):\n%s", diff)
	}

	t.Run("a later version replaces the earlier one", func(t *testing.T) {
		m.remember([]index.Resource{prac("p1", "false", "berg")})
		found, _ := m.lookup(index.Practitioner, []string{"p1"}, []string{"family", "name"})
		want := core.ChainTarget{Strings: []index.Row{{Param: "family", Type: index.TypeString, Value: "berg"}, {Param: "name", Type: index.TypeString, Value: "berg"}}}
		if diff := cmp.Diff(want, found["p1"]); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
	})
	t.Run("a deleted target is asked for", func(t *testing.T) {
		m.forget(index.Practitioner, "p2")
		if _, missing := m.lookup(index.Practitioner, []string{"p2"}, nil); len(missing) != 1 {
			t.Errorf("missing %v", missing)
		}
	})
	t.Run("targets that share a hash are asked for", func(t *testing.T) {
		m.at[m.hash(key(index.Practitioner, "p1"))] = ambiguous
		m.remember([]index.Resource{prac("p1", "true", "cohn")})
		if _, missing := m.lookup(index.Practitioner, []string{"p1"}, nil); len(missing) != 1 {
			t.Errorf("missing %v", missing)
		}
	})
	t.Run("the end of the load forgets everything", func(t *testing.T) {
		m.remember([]index.Resource{prac("p4", "true")})
		m.clear()
		if _, missing := m.lookup(index.Practitioner, []string{"p4"}, nil); len(missing) != 1 {
			t.Errorf("missing %v", missing)
		}
	})
}
