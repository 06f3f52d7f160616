package directory

import (
	"context"
	"fmt"
	"runtime"
	"sync"

	"github.com/timstack/timstack/directory/fhir"
	"github.com/timstack/timstack/directory/index"
)

// Pipeline stores batches of documents while the caller prepares the next one: Add parses, validates and
// indexes a batch and reads the stored resources it links to (PrepareBatch and Prefetch, on the caller's
// goroutine) and hands it to a storing goroutine (PutPrepared), so the client-side CPU of batch k+1
// overlaps the database's work on batch k. Up to pipelineStorers batches are stored at once (one storing
// goroutine and one database backend in step left a core idle during an import): a batch starts only
// beside batches it cannot affect (see batchDeps.conflicts), so the stored result is the one of storing
// the batches one after another in order.
type Pipeline struct {
	w       *Writer
	ctx     context.Context
	storers int
	stored  func(n int)

	mu       sync.Mutex
	changed  *sync.Cond // broadcast when a batch finishes or fails
	inflight map[uint64]*batchDeps
	next     uint64         // sequence number of the next batch
	finished map[uint64]int // sizes of finished batches after the committed prefix
	prefix   uint64         // batches [0, prefix) are committed
	done     int            // resources in those batches
	err      error          // first storing error
	failed   chan struct{}  // closed after err is set
	// roots tells whether the store may hold services or roles: then a batch with Organizations,
	// Practitioners or Locations re-indexes stored ones (PutPrepared) and is stored alone. Unknown
	// (rootsKnown false) until the first such batch asks the store.
	roots, rootsKnown bool

	wg sync.WaitGroup
}

// pipelineStorers is the most batches a Pipeline stores at once: two database backends and the
// preparing goroutine keep two cores busy; more only queue behind each other.
func pipelineStorers() int { return min(max(runtime.GOMAXPROCS(0), 2), 4) }

// NewPipeline starts a pipeline on w. stored, when not nil, is called after batches have been committed,
// with the number of resources of the longest run of committed batches from the first (for resumable
// imports: resuming after that many resources stores nothing twice and loses nothing). Calls do not
// overlap and their numbers grow.
func (w *Writer) NewPipeline(ctx context.Context, stored func(n int)) *Pipeline {
	p := &Pipeline{w: w, ctx: ctx, storers: pipelineStorers(), stored: stored, inflight: map[uint64]*batchDeps{}, finished: map[uint64]int{}, failed: make(chan struct{})}
	p.changed = sync.NewCond(&p.mu)
	return p
}

// batchDeps is what decides whether two batches may be stored at the same time.
type batchDeps struct {
	ids   map[index.Ref]bool // the batch's resources
	links map[index.Ref]bool // what its services and roles link to (their _text rows read them)
	// targets: the batch holds Organizations, Practitioners or Locations, so storing it re-indexes the
	// stored services and roles that link to them.
	targets, roots bool
	// alone: stored with no other batch in flight (set when the store may hold roots the batch's targets
	// make PutPrepared re-index).
	alone bool
}

func depsOf(b *Batch) *batchDeps {
	d := &batchDeps{ids: make(map[index.Ref]bool, len(b.items)), links: map[index.Ref]bool{}}
	for _, p := range b.items {
		d.ids[index.Ref{Type: p.ir.Type, ID: p.ir.ID}] = true
		switch p.ir.Type {
		case index.Organization, index.Practitioner, index.Location:
			d.targets = true
		}
		if _, ok := textRoots[p.ir.Type]; ok {
			d.roots = true
			for _, ref := range fhir.Linked(p.r) {
				d.links[ref] = true
			}
		}
	}
	return d
}

// conflicts reports whether stored at the same time, a and b could give another result than one after
// the other: the same resource in both, or a service or role in one that links to a resource of the
// other (its _text rows would miss the uncommitted one). Re-indexing stored roots is the other hazard
// (two batches with targets of one stored root would each miss the other's); batches for which it can
// happen are stored alone.
func (a *batchDeps) conflicts(b *batchDeps) bool {
	if a.alone || b.alone {
		return true
	}
	small, large := a.ids, b.ids
	if len(small) > len(large) {
		small, large = large, small
	}
	for ref := range small {
		if large[ref] {
			return true
		}
	}
	for ref := range a.links {
		if b.ids[ref] {
			return true
		}
	}
	for ref := range b.links {
		if a.ids[ref] {
			return true
		}
	}
	return false
}

// mayHoldRoots asks the store whether it holds any service or role.
func (p *Pipeline) mayHoldRoots() (bool, error) {
	for root := range textRoots {
		res, err := p.w.Store.Search(p.ctx, index.Query{Type: root, Limit: 1})
		if err != nil {
			return false, fmt.Errorf("directory import: %w", err)
		}
		if len(res.IDs) > 0 {
			return true, nil
		}
	}
	return false, nil
}

// Add prepares docs and queues them for storing; it waits while the batch must not be stored yet. It
// returns a preparation error at once; a storing error is returned by Close (and stops the storing of
// later batches).
func (p *Pipeline) Add(docs [][]byte) error {
	if len(docs) == 0 {
		return nil
	}
	select {
	case <-p.failed:
		return p.err
	default:
	}
	b, err := p.w.PrepareBatch(docs)
	if err != nil {
		return err
	}
	// Batches dispatched later than this one's read cannot precede it; only those storing now may
	// commit after the read and change what it saw.
	p.mu.Lock()
	storing := make([]*batchDeps, 0, len(p.inflight))
	for _, d := range p.inflight {
		storing = append(storing, d)
	}
	p.mu.Unlock()
	if err := p.w.Prefetch(p.ctx, b); err != nil {
		return err
	}
	b.current = true
	for _, d := range storing {
		for ref := range b.settled {
			if d.ids[ref] {
				b.current = false
			}
		}
	}
	d := depsOf(b)
	p.mu.Lock()
	defer p.mu.Unlock()
	if d.targets && !p.roots && !p.rootsKnown {
		// Only the first batch with targets asks; later ones know from the roots stored since.
		p.mu.Unlock()
		roots, err := p.mayHoldRoots()
		p.mu.Lock()
		if err != nil {
			// The pipeline cannot tell what may run beside what: it fails like a storing error.
			if p.err == nil {
				p.err = err
				close(p.failed)
			}
			return err
		}
		p.roots, p.rootsKnown = p.roots || roots, true
	}
	d.alone = d.targets && p.roots
	for !p.mayStart(d) {
		p.changed.Wait()
	}
	if p.err != nil {
		return p.err
	}
	if d.roots {
		p.roots = true
	}
	seq := p.next
	p.next++
	p.inflight[seq] = d
	p.wg.Add(1)
	go p.store(seq, b)
	return nil
}

// mayStart reports whether d may start now (or a failure ends the wait). Called with p.mu held.
func (p *Pipeline) mayStart(d *batchDeps) bool {
	if p.err != nil {
		return true
	}
	if len(p.inflight) >= p.storers || (d.alone && len(p.inflight) > 0) {
		return false
	}
	for _, o := range p.inflight {
		if d.conflicts(o) {
			return false
		}
	}
	return true
}

// store stores batch seq and advances the committed prefix.
func (p *Pipeline) store(seq uint64, b *Batch) {
	defer p.wg.Done()
	size := b.Len()
	_, err := p.w.PutPrepared(p.ctx, b)
	p.mu.Lock()
	defer p.mu.Unlock()
	defer p.changed.Broadcast()
	delete(p.inflight, seq)
	if p.err != nil {
		return
	}
	if err != nil {
		p.err = fmt.Errorf("after %d resources: %w", p.done, err)
		close(p.failed)
		return
	}
	p.finished[seq] = size
	advanced := false
	for {
		n, ok := p.finished[p.prefix]
		if !ok {
			break
		}
		delete(p.finished, p.prefix)
		p.prefix++
		p.done += n
		advanced = true
	}
	if advanced && p.stored != nil {
		p.stored(p.done)
	}
}

// Close waits until every queued batch is stored and returns the first storing error. Later calls return
// the same error, so a deferred Close may follow an explicit one.
func (p *Pipeline) Close() error {
	p.wg.Wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}
