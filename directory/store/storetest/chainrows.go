package storetest

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/timstack/timstack/directory/index"
	"github.com/timstack/timstack/directory/store"
)

// Chain rows: the store copies an active Practitioner's names onto its PractitionerRoles (and an active
// Organization's onto its HealthcareServices) and answers the mandatory filter merged with a chained name
// from them. These cases change the target, the root and the link in every order and compare the answers
// with what the chain means.

// activeAny is the mandatory filter's condition on the target (active=true in any system).
var activeAny = index.Token{Param: "active", Code: "true", AnySystem: true}

// byName is PractitionerRole?practitioner.active=true&practitioner.<param>=<value> as the search package
// compiles it (the mandatory filter first, then the client's chain).
func byName(param, value string) index.Cond {
	return index.And{
		index.Chain{Param: "practitioner", TargetType: index.Practitioner, Where: activeAny},
		index.Chain{Param: "practitioner", TargetType: index.Practitioner, Where: index.String{Param: param, Value: value}},
	}
}

// activeRoles is PractitionerRole?practitioner.active=true.
var activeRoles = index.Chain{Param: "practitioner", TargetType: index.Practitioner, Where: activeAny}

// servicesByOrgName is HealthcareService?organization.active=true&organization.name=<value>.
func servicesByOrgName(value string) index.Cond {
	return index.And{
		index.Chain{Param: "organization", TargetType: index.Organization, Where: activeAny},
		index.Chain{Param: "organization", TargetType: index.Organization, Where: index.String{Param: "name", Value: value}},
	}
}

// expect checks the ids and the exact total of a search.
func expect(t *testing.T, s store.Store, what, typ string, where index.Cond, want ...string) {
	t.Helper()
	if want == nil {
		want = []string{}
	}
	eq(t, what, want, ids(t, s, typ, where))
	r := search(t, s, index.Query{Type: typ, Where: where, Limit: 1, Total: true})
	if r.Total != len(want) {
		t.Errorf("%s: Total = %d, want %d", what, r.Total, len(want))
	}
	r = search(t, s, index.Query{Type: typ, Where: where, Total: true}) // count only (_summary=count)
	if r.Total != len(want) {
		t.Errorf("%s: count-only Total = %d, want %d", what, r.Total, len(want))
	}
}

func practitioner(id, family string, active bool, more ...index.Row) index.Resource {
	rows := append([]index.Row{str("name", family), str("family", family), tok("active", "", fmt.Sprint(active))}, more...)
	return res(index.Practitioner, id, rows...)
}

func role(id, practitionerID string, more ...index.Row) index.Resource {
	return res(index.PractitionerRole, id, append([]index.Row{ref("practitioner", index.Practitioner, practitionerID)}, more...)...)
}

var chainRowCases = []struct {
	name string
	run  func(t *testing.T, s store.Store)
}{
	{"chain rows follow the practitioner's renames, deactivation, deletion and return", func(t *testing.T, s store.Store) {
		ctx := context.Background()
		mustPut(t, s, practitioner("p", "anna", true), role("r", "p"), role("r2", "p"))
		expect(t, s, "active practitioner's name", index.PractitionerRole, byName("name", "ann"), "r", "r2")
		expect(t, s, "active roles", index.PractitionerRole, activeRoles, "r", "r2")
		mustPut(t, s, practitioner("p", "berta", true))
		expect(t, s, "old name after the rename", index.PractitionerRole, byName("name", "ann"))
		expect(t, s, "new name after the rename", index.PractitionerRole, byName("family", "berta"), "r", "r2")
		mustPut(t, s, practitioner("p", "berta", false))
		expect(t, s, "name of a deactivated practitioner", index.PractitionerRole, byName("name", "berta"))
		expect(t, s, "active roles after the deactivation", index.PractitionerRole, activeRoles)
		mustPut(t, s, practitioner("p", "berta", true))
		expect(t, s, "name after reactivation", index.PractitionerRole, byName("name", "berta"), "r", "r2")
		if err := s.Delete(ctx, index.Practitioner, "p"); err != nil {
			t.Fatal(err)
		}
		expect(t, s, "name of a deleted practitioner", index.PractitionerRole, byName("name", "berta"))
		expect(t, s, "active roles after the deletion", index.PractitionerRole, activeRoles)
		mustPut(t, s, practitioner("p", "clara", true))
		expect(t, s, "name of the practitioner created again", index.PractitionerRole, byName("name", "clara"), "r", "r2")
		if err := s.Delete(ctx, index.PractitionerRole, "r2"); err != nil {
			t.Fatal(err)
		}
		expect(t, s, "name after a role's deletion", index.PractitionerRole, byName("name", "clara"), "r")
		expect(t, s, "active roles after a role's deletion", index.PractitionerRole, activeRoles, "r")
	}},
	{"chain rows follow the role to another practitioner", func(t *testing.T, s store.Store) {
		mustPut(t, s, practitioner("p1", "anna", true), practitioner("p2", "berta", true), role("r", "p1"))
		expect(t, s, "first practitioner", index.PractitionerRole, byName("name", "anna"), "r")
		mustPut(t, s, role("r", "p2"))
		expect(t, s, "first practitioner after the switch", index.PractitionerRole, byName("name", "anna"))
		expect(t, s, "second practitioner after the switch", index.PractitionerRole, byName("name", "berta"), "r")
		mustPut(t, s, res(index.PractitionerRole, "r"))
		expect(t, s, "a role without a practitioner", index.PractitionerRole, byName("name", "berta"))
		expect(t, s, "active roles without a practitioner", index.PractitionerRole, activeRoles)
	}},
	{"a role written before its practitioner gets chain rows when the practitioner arrives", func(t *testing.T, s store.Store) {
		mustPut(t, s, role("r", "p"))
		expect(t, s, "dangling reference", index.PractitionerRole, activeRoles)
		mustPut(t, s, practitioner("p", "anna", true))
		expect(t, s, "after the practitioner arrives", index.PractitionerRole, byName("name", "anna"), "r")
	}},
	{"one Put with role and practitioner, the practitioner twice, keeps the last version", func(t *testing.T, s store.Store) {
		mustPut(t, s, role("r", "p"), practitioner("p", "anna", true), practitioner("p", "berta", false), role("r2", "p"), practitioner("p", "clara", true))
		expect(t, s, "first version's name", index.PractitionerRole, byName("name", "anna"))
		expect(t, s, "last version's name", index.PractitionerRole, byName("name", "clara"), "r", "r2")
		mustPut(t, s, practitioner("p", "dora", true), practitioner("p", "dora", false))
		expect(t, s, "deactivated by the last version", index.PractitionerRole, activeRoles)
	}},
	{"chain rows given by a caller are not kept", func(t *testing.T, s store.Store) {
		mustPut(t, s, practitioner("p", "anna", false),
			role("r", "p", str("practitioner.name", "fake"), tok("practitioner.active", "", "true")))
		expect(t, s, "a forged name", index.PractitionerRole, byName("name", "fake"))
		expect(t, s, "a forged marker", index.PractitionerRole, activeRoles)
	}},
	{"several conditions on the practitioner speak of the same one", func(t *testing.T, s store.Store) {
		qual := tok("qualification", "urn:oid:1.2.276.0.76.5.514", "1.2.276.0.76.4.241")
		mustPut(t, s,
			practitioner("p1", "anna", true, str("given", "maria"), qual), role("r1", "p1"),
			practitioner("p2", "anna", true, str("given", "berta")), role("r2", "p2"),
			practitioner("p3", "maria", false, str("given", "anna"), qual), role("r3", "p3"))
		chain := func(c index.Cond) index.Chain {
			return index.Chain{Param: "practitioner", TargetType: index.Practitioner, Where: c}
		}
		expect(t, s, "family and given", index.PractitionerRole, index.And{chain(activeAny),
			chain(index.String{Param: "family", Value: "anna"}), chain(index.String{Param: "given", Value: "mar"})}, "r1")
		expect(t, s, "name and qualification", index.PractitionerRole, index.And{chain(activeAny),
			chain(index.String{Param: "name", Value: "anna"}), chain(index.Token{Param: "qualification", Code: "1.2.276.0.76.4.241", AnySystem: true})}, "r1")
		expect(t, s, "active and qualification", index.PractitionerRole, index.And{chain(activeAny),
			chain(index.Token{Param: "qualification", Code: "1.2.276.0.76.4.241", AnySystem: true})}, "r1")
		expect(t, s, "one of two names", index.PractitionerRole, index.And{chain(activeAny),
			chain(index.Or{index.String{Param: "given", Value: "berta"}, index.String{Param: "given", Value: "maria"}})}, "r1", "r2")
		expect(t, s, "exact name", index.PractitionerRole, index.And{chain(activeAny),
			chain(index.String{Param: "family", Value: "ann", Mode: index.StringExact})})
		expect(t, s, "name containing", index.PractitionerRole, index.And{chain(activeAny),
			chain(index.String{Param: "given", Value: "ert", Mode: index.StringContains})}, "r2")
		expect(t, s, "negated name", index.PractitionerRole, index.And{chain(activeAny),
			index.Not{Cond: chain(index.String{Param: "given", Value: "maria"})}}, "r2")
		expect(t, s, "name and _id", index.PractitionerRole, index.And{chain(activeAny),
			chain(index.String{Param: "name", Value: "anna"}), index.IDs{IDs: []string{"r2", "r3"}}}, "r2")
		expect(t, s, "an inactive practitioner's given name", index.PractitionerRole, byName("given", "anna"))
	}},
	{"chain rows follow an organization's name and active flag to its services", func(t *testing.T, s store.Store) {
		org := func(name string, active bool) index.Resource {
			return res(index.Organization, "o", str("name", name), str("alias", name+" alias"), tok("active", "", fmt.Sprint(active)))
		}
		svc := res(index.HealthcareService, "h", ref("organization", index.Organization, "o"))
		mustPut(t, s, org("praxis muster", true), svc)
		expect(t, s, "the organization's name", index.HealthcareService, servicesByOrgName("praxis"), "h")
		mustPut(t, s, org("zahnarzt", true))
		expect(t, s, "the organization's old name", index.HealthcareService, servicesByOrgName("praxis"))
		expect(t, s, "the organization's new name", index.HealthcareService, servicesByOrgName("zahn"), "h")
		mustPut(t, s, org("zahnarzt", false))
		expect(t, s, "an inactive organization's name", index.HealthcareService, servicesByOrgName("zahn"))
		expect(t, s, "services of active organizations", index.HealthcareService,
			index.Chain{Param: "organization", TargetType: index.Organization, Where: activeAny})
	}},
	{"concurrent writers of practitioners and roles leave chain rows that agree with the chain", func(t *testing.T, s store.Store) {
		ctx := context.Background()
		prs := []string{"p1", "p2"}
		names := []string{"anna", "berta"}
		roles := []string{"r1", "r2", "r3"}
		mustPut(t, s, practitioner("p1", "anna", true), practitioner("p2", "berta", true))
		for _, r := range roles {
			mustPut(t, s, role(r, "p1"))
		}
		const rounds = 15
		var wg sync.WaitGroup
		errs := make(chan error, 3*rounds)
		for w, p := range prs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < rounds; i++ {
					_, err := s.Put(ctx, practitioner(p, names[(i+w)%2], i%3 != 0))
					errs <- err
				}
			}()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < rounds; i++ {
				_, err := s.Put(ctx, role(roles[i%len(roles)], prs[(i/len(roles))%2]))
				errs <- err
			}
		}()
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatalf("concurrent Put: %v", err)
			}
		}
		plain := index.Token{Param: "active", Code: "true"}
		for _, n := range names {
			want := ids(t, s, index.PractitionerRole, index.Chain{Param: "practitioner", TargetType: index.Practitioner,
				Where: index.And{plain, index.String{Param: "name", Value: n}}})
			expect(t, s, "name "+n, index.PractitionerRole, byName("name", n), want...)
		}
		want := ids(t, s, index.PractitionerRole, index.Chain{Param: "practitioner", TargetType: index.Practitioner, Where: plain})
		expect(t, s, "active roles", index.PractitionerRole, activeRoles, want...)
	}},
	{"chain rows over a synthetic set agree with the chain", func(t *testing.T, s store.Store) {
		rs := Synthetic(500, 7)
		for i := range rs {
			// every fourth practitioner inactive
			if rs[i].Type == index.Practitioner && (i/5)%4 == 1 {
				for j := range rs[i].Rows {
					if rs[i].Rows[j].Param == "active" {
						rs[i].Rows[j].Code = "false"
					}
				}
			}
		}
		mustPut(t, s, rs...)
		// the chain rows are used only for active=true in any system; "|true" (no system) is the same
		// meaning here and is answered by the chain itself
		plain := index.Token{Param: "active", Code: "true"}
		for _, q := range [][2]string{{"name", "muller"}, {"name", "weber"}, {"name", "m"}, {"family", "hoffmann-"}, {"given", "mar"}} {
			want := ids(t, s, index.PractitionerRole, index.Chain{Param: "practitioner", TargetType: index.Practitioner,
				Where: index.And{plain, index.String{Param: q[0], Value: q[1]}}})
			if len(want) == 0 {
				t.Fatalf("no role for %s=%s: the case tests nothing", q[0], q[1])
			}
			expect(t, s, q[0]+"="+q[1], index.PractitionerRole, byName(q[0], q[1]), want...)
		}
		want := ids(t, s, index.PractitionerRole, index.Chain{Param: "practitioner", TargetType: index.Practitioner, Where: plain})
		expect(t, s, "active roles", index.PractitionerRole, activeRoles, want...)
	}},
}

// ChainRowsQuery lists every chain row (type, id, param, value), ordered, for tests that compare the rows
// a migration fills with the rows the store keeps on writes.
const ChainRowsQuery = `SELECT type, id, param, value FROM idx_string WHERE param LIKE '%.%'
UNION ALL SELECT type, id, param, code FROM idx_token WHERE param LIKE '%.%' ORDER BY 1, 2, 3, 4`

// ChainRowsData is a small directory for the migration tests: roles and services whose targets are
// active, inactive, renamed and missing.
func ChainRowsData() []index.Resource {
	rs := Synthetic(100, 3)
	rs = append(rs, practitioner("p-off", "anna", false), role("r-off", "p-off"), role("r-dangling", "nobody"),
		res(index.HealthcareService, "h", ref("organization", index.Organization, "org-3-1")))
	return rs
}

// MigrationRefillsChainRows is the engines' shared check of their chain-rows migration: the rows the store
// kept while writing ChainRowsData (read by rows, with ChainRowsQuery) are deleted together with the
// migration's record (version), the store is reopened (which migrates again), and the migration must have
// filled exactly the rows that were kept. exec runs a statement on the engine's own connection.
func MigrationRefillsChainRows(t *testing.T, version int, rows func() [][]string, exec func(query string) error, reopen func() error) {
	t.Helper()
	kept := rows()
	if len(kept) < 100 {
		t.Fatalf("only %d chain rows after the writes", len(kept))
	}
	for _, q := range []string{
		`DELETE FROM idx_string WHERE param LIKE '%.%'`,
		`DELETE FROM idx_token WHERE param LIKE '%.%'`,
		`DELETE FROM schema_migrations WHERE version = ` + strconv.Itoa(version),
	} {
		if err := exec(q); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(rows()); n != 0 {
		t.Fatalf("%d chain rows left", n)
	}
	if err := reopen(); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(kept, rows()); diff != "" {
		t.Errorf("chain rows filled by the migration differ from the kept ones (-kept +migrated):\n%s", diff)
	}
}
