package search

import (
	"context"
	"fmt"
	"net/url"
	"sort"
	"strconv"

	"github.com/timstack/timstack/directory/index"
)

// Searcher is what Execute needs from a store; store.Store satisfies it.
type Searcher interface {
	// Search returns a page of ids of q.Type matching q.Where, ordered by id, and the total when asked.
	Search(ctx context.Context, q index.Query) (index.Result, error)
	// GetMany loads resources; missing ones are left out, order is not guaranteed.
	GetMany(ctx context.Context, refs []index.Ref) ([]index.Resource, error)
	// References returns what the reference parameter param of the typ resources ids points at.
	References(ctx context.Context, typ string, ids []string, param string) ([]index.Ref, error)
	// ReferencedBy returns the sourceType resources whose sourceParam points at one of targets.
	ReferencedBy(ctx context.Context, sourceType, sourceParam string, targets []index.Ref) ([]index.Ref, error)
}

// Page is one executed search: a neutral result the HTTP layer turns into a searchset Bundle.
type Page struct {
	Type  string
	Total int // every match, even beyond the MaxResults window
	// Filtered counts the matches a visibility rule removed (hide-versicherte for insured users); it goes
	// into Bundle.total's results-filtered-ex extension when positive.
	Filtered int
	Matches  []index.Resource // mode match, ordered by id
	// Included holds _include and _revinclude results (mode include): each resource once, never one that
	// is already a match.
	Included     []index.Resource
	SummaryCount bool   // _summary=count: no entries, Bundle.meta.tag SUBSETTED
	Self         string // absolute URL of this page
	Next         string // absolute URL of the next page; empty on the last page of the window
}

// Execute runs req and assembles the page. base is the search API's base URL (https://host/search);
// links are base/Type?params. Paging is by offset over the id order, so a next link replays the same
// parameters with a larger _offset and sees the same total while the data does not change. Matches
// beyond MaxResults are never served: the last page of the window has no next link.
func Execute(ctx context.Context, st Searcher, req *Request, base string) (*Page, error) {
	page := &Page{Type: req.Type, SummaryCount: req.SummaryCount}
	limit := 0
	if !req.SummaryCount {
		limit = max(0, min(req.Count, MaxResults-req.Offset))
	}
	res, err := st.Search(ctx, index.Query{Type: req.Type, Where: req.Where, Limit: limit, Offset: req.Offset, Total: true})
	if err != nil {
		return nil, fmt.Errorf("search %s: %w", req.Type, err)
	}
	page.Total = res.Total
	if req.Hidden != nil {
		hidden, err := st.Search(ctx, index.Query{Type: req.Type, Where: req.Hidden, Total: true})
		if err != nil {
			return nil, fmt.Errorf("search %s: count hidden matches: %w", req.Type, err)
		}
		page.Filtered = hidden.Total
	}
	page.Self = link(base, req, req.Offset)
	if limit == 0 {
		return page, nil
	}
	ids := res.IDs
	if len(ids) > limit { // a store returning more than asked must not break the cap
		ids = ids[:limit]
	}
	if next := req.Offset + req.Count; len(ids) == limit && next < min(res.Total, MaxResults) {
		page.Next = link(base, req, next)
	}
	matchRefs := make([]index.Ref, len(ids))
	for i, id := range ids {
		matchRefs[i] = index.Ref{Type: req.Type, ID: id}
	}
	if page.Matches, err = load(ctx, st, matchRefs); err != nil {
		return nil, err
	}
	incRefs, err := includeRefs(ctx, st, req, ids, matchRefs)
	if err != nil {
		return nil, err
	}
	if req.Insured {
		if incRefs, err = visible(ctx, st, incRefs); err != nil {
			return nil, err
		}
	}
	if page.Included, err = load(ctx, st, incRefs); err != nil {
		return nil, err
	}
	return page, nil
}

// includeRefs resolves _include and _revinclude into distinct refs that are not matches, in the order the
// includes were asked for, each include's refs sorted.
func includeRefs(ctx context.Context, st Searcher, req *Request, ids []string, matchRefs []index.Ref) ([]index.Ref, error) {
	seen := make(map[index.Ref]bool, len(matchRefs))
	for _, r := range matchRefs {
		seen[r] = true
	}
	var out []index.Ref
	add := func(refs []index.Ref, target string) {
		sortRefs(refs)
		for _, r := range refs {
			if (target == "" || r.Type == target) && !seen[r] {
				seen[r] = true
				out = append(out, r)
			}
		}
	}
	for _, inc := range req.Includes {
		params := []string{inc.Param}
		if inc.Wildcard {
			params = params[:0]
			for _, p := range index.Params(req.Type) {
				if p.Type == index.TypeReference {
					params = append(params, p.Code)
				}
			}
		}
		for _, p := range params {
			refs, err := st.References(ctx, req.Type, ids, p)
			if err != nil {
				return nil, fmt.Errorf("_include %s:%s: %w", req.Type, p, err)
			}
			add(refs, inc.TargetType)
		}
	}
	for _, inc := range req.RevIncludes {
		refs, err := st.ReferencedBy(ctx, inc.SourceType, inc.Param, matchRefs)
		if err != nil {
			return nil, fmt.Errorf("_revinclude %s:%s: %w", inc.SourceType, inc.Param, err)
		}
		add(refs, "")
	}
	return out, nil
}

// visible drops included resources an insured user must not see (hide-versicherte), asking the store per
// type with the same filter the matches got.
func visible(ctx context.Context, st Searcher, refs []index.Ref) ([]index.Ref, error) {
	byType := map[string][]string{}
	for _, r := range refs {
		if insuredFilter(r.Type) != nil {
			byType[r.Type] = append(byType[r.Type], r.ID)
		}
	}
	hidden := map[index.Ref]bool{}
	for typ, ids := range byType {
		res, err := st.Search(ctx, index.Query{Type: typ, Where: index.And{index.IDs{IDs: ids}, insuredFilter(typ)}, Limit: len(ids)})
		if err != nil {
			return nil, fmt.Errorf("include visibility %s: %w", typ, err)
		}
		shown := map[string]bool{}
		for _, id := range res.IDs {
			shown[id] = true
		}
		for _, id := range ids {
			if !shown[id] {
				hidden[index.Ref{Type: typ, ID: id}] = true
			}
		}
	}
	out := refs[:0:0]
	for _, r := range refs {
		if !hidden[r] {
			out = append(out, r)
		}
	}
	return out, nil
}

// load fetches refs and returns them in the order of refs (GetMany's order is not guaranteed); refs the
// store no longer has (deleted meanwhile) are left out.
func load(ctx context.Context, st Searcher, refs []index.Ref) ([]index.Resource, error) {
	if len(refs) == 0 {
		return nil, nil
	}
	got, err := st.GetMany(ctx, refs)
	if err != nil {
		return nil, fmt.Errorf("load resources: %w", err)
	}
	byRef := make(map[index.Ref]index.Resource, len(got))
	for _, r := range got {
		byRef[index.Ref{Type: r.Type, ID: r.ID}] = r
	}
	out := make([]index.Resource, 0, len(refs))
	for _, r := range refs {
		if res, ok := byRef[r]; ok {
			out = append(out, res)
		}
	}
	return out, nil
}

func sortRefs(refs []index.Ref) {
	sort.Slice(refs, func(i, j int) bool {
		if refs[i].Type != refs[j].Type {
			return refs[i].Type < refs[j].Type
		}
		return refs[i].ID < refs[j].ID
	})
}

// link is the URL of the page at offset: the client's parameters plus the effective _count and _offset.
func link(base string, req *Request, offset int) string {
	v := url.Values{}
	for k, vs := range req.Self {
		v[k] = append([]string(nil), vs...)
	}
	if !req.SummaryCount {
		v.Set("_count", strconv.Itoa(req.Count))
		if offset > 0 {
			v.Set("_offset", strconv.Itoa(offset))
		}
	}
	return base + "/" + req.Type + "?" + v.Encode()
}
