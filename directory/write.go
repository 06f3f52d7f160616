package directory

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"

	"github.com/timstack/timstack/directory/fhir"
	"github.com/timstack/timstack/directory/index"
)

// ValidationError carries the FHIR issues of a refused write; the HTTP edge renders them as an
// OperationOutcome.
type ValidationError struct {
	Issues []fhir.Issue
}

func (e *ValidationError) Error() string {
	if len(e.Issues) == 0 {
		return "validation failed"
	}
	return fmt.Sprintf("validation failed: %s: %s", e.Issues[0].Expression, e.Issues[0].Diagnostics)
}

// Writer is the one write path of the directory (import, owner API): parse, normalise, validate, extract
// index rows — including the denormalised _text rows, which depend on linked resources — and store.
type Writer struct {
	Store Store
	// Legacy accepts stored/imported data without an Origin tag (gematik's recorded TU data has none); the
	// owner API always writes with Legacy false.
	Legacy bool
}

// textRoots are the resource types whose _text rows are built from linked resources, and the reference
// parameters that link to the resources feeding them.
var textRoots = map[string][]string{
	index.HealthcareService: {"organization", "location"},
	index.PractitionerRole:  {"practitioner", "location"},
}

// Prepare parses and validates one resource and extracts its own index rows (no _text rows yet).
func (w *Writer) Prepare(data []byte) (*fhir.Resource, index.Resource, error) {
	r, err := fhir.Parse(data)
	if err != nil {
		var pe *fhir.ParseError
		if errors.As(err, &pe) {
			return nil, index.Resource{}, &ValidationError{Issues: []fhir.Issue{pe.Issue}}
		}
		return nil, index.Resource{}, err
	}
	if _, err := fhir.Normalize(r); err != nil {
		return nil, index.Resource{}, &ValidationError{Issues: []fhir.Issue{fhir.NewIssue(fhir.CodeValue, r.ResourceType+".address", "address is not a valid Matrix user ID")}}
	}
	if issues := fhir.Validate(r, fhir.ValidateOptions{Legacy: w.Legacy}); fhir.HasErrors(issues) {
		return nil, index.Resource{}, &ValidationError{Issues: issues}
	}
	return r, index.Resource{Type: r.ResourceType, ID: r.ID, JSON: r.JSON, Rows: fhir.Extract(r)}, nil
}

// Put stores a batch of resources. Resources of the batch may reference each other; _text rows of
// services and roles are computed from the batch and the store, and services and roles already stored that
// reference a changed Organization, Practitioner or Location get their _text rows recomputed.
func (w *Writer) Put(ctx context.Context, datas [][]byte) ([]index.Resource, error) {
	b, err := w.PrepareBatch(datas)
	if err != nil {
		return nil, err
	}
	return w.PutPrepared(ctx, b)
}

// Batch is a batch of documents parsed, validated and indexed (their own rows) by PrepareBatch.
type Batch struct {
	items []prepared
	// linked are stored resources the batch's services and roles link to, read and parsed by Prefetch;
	// PutPrepared uses one only if the store still holds the same bytes when it stores the batch.
	linked map[index.Ref]*fhir.Resource
	// settled are the refs Prefetch read and found parsed (in linked) or not stored, and current tells
	// that nothing written since has changed them (a Pipeline knows: no batch storing at the time of the
	// read holds one of them). Then PutPrepared takes them as read instead of reading them again: the
	// second read was a third of the database time of an import's roles and services.
	settled map[index.Ref]bool
	current bool
}

// Len is the number of resources in the batch.
func (b *Batch) Len() int { return len(b.items) }

// PrepareBatch is the first half of Put: Prepare on every document, in parallel for large batches. It
// reads nothing from the store, so an importer may prepare the next batch while the previous one is being
// stored (PutPrepared); the error names the first refused document ("resource N: …").
func (w *Writer) PrepareBatch(datas [][]byte) (*Batch, error) {
	items, err := w.prepareAll(datas)
	if err != nil {
		return nil, err
	}
	return &Batch{items: items}, nil
}

// Prefetch reads and parses the stored resources that the batch's services and roles link to (their _text
// rows hold words of them) and that the batch does not hold itself, on every core. An importer calls it
// for the batch it prepares while the previous one is being stored: parsing those resources was a fifth of
// an import's CPU, spent on the one goroutine that stores. It changes no result: PutPrepared reads the
// linked resources again when it stores the batch and parses those whose bytes differ from what Prefetch
// saw (or that it did not see, such as those of the batch stored meanwhile).
func (w *Writer) Prefetch(ctx context.Context, b *Batch) error {
	if b == nil {
		return nil
	}
	inBatch := make(map[index.Ref]bool, len(b.items))
	for _, p := range b.items {
		inBatch[index.Ref{Type: p.ir.Type, ID: p.ir.ID}] = true
	}
	var need []index.Ref
	for _, p := range b.items {
		if _, ok := textRoots[p.ir.Type]; !ok {
			continue
		}
		for _, ref := range fhir.Linked(p.r) {
			if !inBatch[ref] {
				inBatch[ref] = true // asked once
				need = append(need, ref)
			}
		}
	}
	if len(need) == 0 {
		return nil
	}
	stored, err := w.Store.GetMany(ctx, need)
	if err != nil {
		return fmt.Errorf("directory write: prefetch linked resources: %w", err)
	}
	parsed := make([]*fhir.Resource, len(stored))
	parallel(len(stored), func(i int) {
		// A stored resource that no longer parses is left to PutPrepared, which reports it.
		parsed[i], _ = fhir.ParseLinked(stored[i].Type, stored[i].JSON)
	})
	b.linked = make(map[index.Ref]*fhir.Resource, len(stored))
	b.settled = make(map[index.Ref]bool, len(need))
	for _, ref := range need {
		b.settled[ref] = true // not stored, unless found below
	}
	for i, s := range stored {
		ref := index.Ref{Type: s.Type, ID: s.ID}
		if parsed[i] != nil {
			b.linked[ref] = parsed[i]
		} else {
			delete(b.settled, ref)
		}
	}
	return nil
}

// PutPrepared is the second half of Put: it adds the _text rows (from the batch and the store as it is
// now), re-indexes stored services and roles that link to changed resources, and stores the batch. A
// Batch is stored at most once.
func (w *Writer) PutPrepared(ctx context.Context, b *Batch) ([]index.Resource, error) {
	if b == nil || len(b.items) == 0 {
		return w.Store.Put(ctx)
	}
	prepared, prefetched, settled := b.items, b.linked, b.settled
	if !b.current {
		settled = nil
	}
	b.items, b.linked, b.settled = nil, nil, nil
	parsed := make(map[index.Ref]*fhir.Resource, len(prepared))
	batch := make([]index.Resource, 0, len(prepared))
	for _, p := range prepared {
		parsed[index.Ref{Type: p.ir.Type, ID: p.ir.ID}] = p.r
		batch = append(batch, p.ir)
	}
	// Stored roots that link to a changed resource must be re-indexed too.
	var targets []index.Ref
	for ref := range parsed {
		switch ref.Type {
		case index.Organization, index.Practitioner, index.Location:
			targets = append(targets, ref)
		}
	}
	if len(targets) > 0 {
		for root, params := range textRoots {
			for _, p := range params {
				// Only targets this parameter can point at (a batch of Locations never asks
				// HealthcareService.organization): one store round trip less per batch and parameter.
				ts := targetsFor(root, p, targets)
				if len(ts) == 0 {
					continue
				}
				refs, err := w.Store.ReferencedBy(ctx, root, p, ts)
				if err != nil {
					return nil, fmt.Errorf("directory write: %w", err)
				}
				var missing []index.Ref
				for _, ref := range refs {
					if _, ok := parsed[ref]; !ok {
						missing = append(missing, ref)
					}
				}
				stored, err := w.Store.GetMany(ctx, missing)
				if err != nil {
					return nil, fmt.Errorf("directory write: %w", err)
				}
				for _, s := range stored {
					r, ir, err := w.reparse(s)
					if err != nil {
						return nil, err
					}
					parsed[index.Ref{Type: ir.Type, ID: ir.ID}] = r
					batch = append(batch, ir)
				}
			}
		}
	}
	if err := w.addTextRows(ctx, batch, parsed, prefetched, settled); err != nil {
		return nil, err
	}
	return w.Store.Put(ctx, batch...)
}

type prepared struct {
	r  *fhir.Resource
	ir index.Resource
}

// parallelPrepareMin is the batch size from which Prepare runs on several goroutines: parsing, validating
// and extracting is most of an import's client-side CPU, and the store is idle meanwhile.
const parallelPrepareMin = 64

// prepareAll runs Prepare on every document, spread over GOMAXPROCS goroutines for large batches. The
// result is in input order, and the error is the one of the first failing document, as if run in order.
func (w *Writer) prepareAll(datas [][]byte) ([]prepared, error) {
	out := make([]prepared, len(datas))
	errs := make([]error, len(datas))
	parallel(len(datas), func(i int) {
		out[i].r, out[i].ir, errs[i] = w.Prepare(datas[i])
	})
	for i, err := range errs {
		if err != nil {
			return nil, fmt.Errorf("resource %d: %w", i, err)
		}
	}
	return out, nil
}

// parallel calls fn(i) for every i in [0, n), on GOMAXPROCS goroutines (each a contiguous range) when n
// is at least parallelPrepareMin per goroutine, else on the caller's.
func parallel(n int, fn func(i int)) {
	work := func(lo, hi int) {
		for i := lo; i < hi; i++ {
			fn(i)
		}
	}
	g := min(runtime.GOMAXPROCS(0), n/parallelPrepareMin)
	if g <= 1 {
		work(0, n)
		return
	}
	var wg sync.WaitGroup
	for k := 0; k < g; k++ {
		wg.Add(1)
		go func(lo, hi int) {
			defer wg.Done()
			work(lo, hi)
		}(k*n/g, (k+1)*n/g)
	}
	wg.Wait()
}

// targetsFor keeps the refs whose type the reference parameter param of root may point at.
func targetsFor(root, param string, refs []index.Ref) []index.Ref {
	p, _ := index.Lookup(root, param)
	var out []index.Ref
	for _, r := range refs {
		for _, t := range p.Targets {
			if r.Type == t {
				out = append(out, r)
				break
			}
		}
	}
	return out
}

// reparse re-extracts a stored resource (already validated when written).
func (w *Writer) reparse(s index.Resource) (*fhir.Resource, index.Resource, error) {
	r, err := fhir.Parse(s.JSON)
	if err != nil {
		return nil, index.Resource{}, fmt.Errorf("stored %s/%s: %w", s.Type, s.ID, err)
	}
	return r, index.Resource{Type: r.ResourceType, ID: r.ID, JSON: r.JSON, Rows: fhir.Extract(r)}, nil
}

// addTextRows appends the _text rows of every service and role in the batch, reading linked resources
// from the batch first and the store second; a stored resource whose bytes prefetched holds already
// parsed is not parsed again, and one settled holds is not read again (prefetched has it, or it is not
// stored).
func (w *Writer) addTextRows(ctx context.Context, batch []index.Resource, parsed, prefetched map[index.Ref]*fhir.Resource, settled map[index.Ref]bool) error {
	var need []index.Ref
	fromStore := map[index.Ref]*fhir.Resource{}
	for _, ir := range batch {
		if _, ok := textRoots[ir.Type]; !ok {
			continue
		}
		for _, ref := range fhir.Linked(parsed[index.Ref{Type: ir.Type, ID: ir.ID}]) {
			if _, ok := parsed[ref]; ok {
				continue
			}
			if settled[ref] {
				if r, ok := prefetched[ref]; ok {
					fromStore[ref] = r
				}
				continue
			}
			need = append(need, ref)
		}
	}
	if len(need) > 0 {
		stored, err := w.Store.GetMany(ctx, need)
		if err != nil {
			return fmt.Errorf("directory write: linked resources: %w", err)
		}
		for _, s := range stored {
			ref := index.Ref{Type: s.Type, ID: s.ID}
			if r, ok := prefetched[ref]; ok && bytes.Equal(r.JSON, s.JSON) {
				fromStore[ref] = r
				continue
			}
			r, err := fhir.ParseLinked(s.Type, s.JSON)
			if err != nil {
				return fmt.Errorf("stored %s/%s: %w", s.Type, s.ID, err)
			}
			fromStore[ref] = r
		}
	}
	for i := range batch {
		ir := &batch[i]
		if _, ok := textRoots[ir.Type]; !ok {
			continue
		}
		r := parsed[index.Ref{Type: ir.Type, ID: ir.ID}]
		var linked []*fhir.Resource
		for _, ref := range fhir.Linked(r) {
			if l, ok := parsed[ref]; ok {
				linked = append(linked, l)
			} else if l, ok := fromStore[ref]; ok {
				linked = append(linked, l)
			}
		}
		ir.Rows = append(ir.Rows, fhir.TextRows(r, linked)...)
	}
	return nil
}
