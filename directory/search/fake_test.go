package search

import (
	"context"
	"math"
	"sort"
	"strings"

	"github.com/timstack/timstack/directory/index"
)

// fakeStore is a test double for Execute: it evaluates index.Cond trees over hand-built resources with
// hand-written rows, in memory. The real engines are checked by the store's conformance suite.
type fakeStore struct {
	res   map[index.Ref]index.Resource
	calls []string // Search types asked, to see what Execute does
}

func newFake(rs ...index.Resource) *fakeStore {
	f := &fakeStore{res: map[index.Ref]index.Resource{}}
	for _, r := range rs {
		if r.JSON == nil {
			r.JSON = []byte(`{"resourceType":"` + r.Type + `","id":"` + r.ID + `"}`)
		}
		f.res[index.Ref{Type: r.Type, ID: r.ID}] = r
	}
	return f
}

func (f *fakeStore) Search(_ context.Context, q index.Query) (index.Result, error) {
	f.calls = append(f.calls, q.Type)
	var ids []string
	for ref, r := range f.res {
		if ref.Type == q.Type && (q.Where == nil || f.eval(r, q.Where)) {
			ids = append(ids, ref.ID)
		}
	}
	sort.Strings(ids)
	out := index.Result{Total: -1}
	if q.Total {
		out.Total = len(ids)
	}
	lo, hi := min(q.Offset, len(ids)), min(q.Offset+q.Limit, len(ids))
	out.IDs = ids[lo:hi]
	return out, nil
}

func (f *fakeStore) GetMany(_ context.Context, refs []index.Ref) ([]index.Resource, error) {
	var out []index.Resource
	for i := len(refs) - 1; i >= 0; i-- { // reversed on purpose: Execute must not rely on the order
		if r, ok := f.res[refs[i]]; ok {
			out = append(out, r)
		}
	}
	return out, nil
}

func (f *fakeStore) References(_ context.Context, typ string, ids []string, param string) ([]index.Ref, error) {
	var out []index.Ref
	for _, id := range ids {
		for _, row := range f.res[index.Ref{Type: typ, ID: id}].Rows {
			if row.Param == param && row.Type == index.TypeReference {
				out = append(out, index.Ref{Type: row.RefType, ID: row.RefID})
			}
		}
	}
	return out, nil
}

func (f *fakeStore) ReferencedBy(_ context.Context, sourceType, sourceParam string, targets []index.Ref) ([]index.Ref, error) {
	var out []index.Ref
	for ref, r := range f.res {
		if ref.Type != sourceType {
			continue
		}
		for _, row := range r.Rows {
			if row.Param == sourceParam && row.Type == index.TypeReference && containsRef(targets, row.RefType, row.RefID) {
				out = append(out, ref)
				break
			}
		}
	}
	return out, nil
}

func containsRef(refs []index.Ref, typ, id string) bool {
	for _, r := range refs {
		if r.Type == typ && r.ID == id {
			return true
		}
	}
	return false
}

func (f *fakeStore) eval(r index.Resource, c index.Cond) bool {
	rows := func(param string) []index.Row {
		var out []index.Row
		for _, row := range r.Rows {
			if row.Param == param {
				out = append(out, row)
			}
		}
		return out
	}
	switch c := c.(type) {
	case index.And:
		for _, x := range c {
			if !f.eval(r, x) {
				return false
			}
		}
		return true
	case index.Or:
		for _, x := range c {
			if f.eval(r, x) {
				return true
			}
		}
		return false
	case index.Not:
		return !f.eval(r, c.Cond)
	case index.IDs:
		return containsString(c.IDs, r.ID)
	case index.Token:
		for _, row := range rows(c.Param) {
			switch {
			case c.Text != "":
				if strings.HasPrefix(row.Display, c.Text) {
					return true
				}
			case (c.Code == "" || row.Code == c.Code) && (c.AnySystem || row.System == c.System):
				return true
			}
		}
	case index.String:
		for _, row := range rows(c.Param) {
			if c.Mode == index.StringExact && row.Value == c.Value ||
				c.Mode == index.StringPrefix && strings.HasPrefix(row.Value, c.Value) ||
				c.Mode == index.StringContains && strings.Contains(row.Value, c.Value) {
				return true
			}
		}
	case index.Reference:
		for _, row := range rows(c.Param) {
			if row.RefID == c.ID && (c.Type == "" || row.RefType == c.Type) {
				return true
			}
		}
	case index.Near:
		for _, row := range rows(c.Param) {
			dLat, dLon := (row.Lat-c.Lat)*math.Pi/180, (row.Lon-c.Lon)*math.Pi/180
			a := math.Pow(math.Sin(dLat/2), 2) + math.Cos(c.Lat*math.Pi/180)*math.Cos(row.Lat*math.Pi/180)*math.Pow(math.Sin(dLon/2), 2)
			if 2*6371*math.Asin(math.Sqrt(a)) <= c.Km {
				return true
			}
		}
	case index.Text:
		for _, w := range c.Words {
			found := false
			for _, row := range rows("_text") {
				found = found || strings.HasPrefix(row.Value, w)
			}
			if !found {
				return false
			}
		}
		return true
	case index.Chain:
		for _, row := range rows(c.Param) {
			t, ok := f.res[index.Ref{Type: row.RefType, ID: row.RefID}]
			if ok && row.RefType == c.TargetType && f.eval(t, c.Where) {
				return true
			}
		}
	case index.Has:
		for ref, s := range f.res {
			if ref.Type != c.SourceType || !f.eval(s, c.Where) {
				continue
			}
			for _, row := range s.Rows {
				if row.Param == c.SourceParam && row.RefType == r.Type && row.RefID == r.ID {
					return true
				}
			}
		}
	}
	return false // Date is not used by the executor tests
}
