package directory

import (
	"context"
	"fmt"
	"sync"
)

// Pipeline stores batches of documents in order while the caller prepares the next one: Add parses,
// validates and indexes a batch and reads the stored resources it links to (PrepareBatch and Prefetch, on
// the caller's goroutine) and hands it to one storing
// goroutine (PutPrepared), so the client-side CPU of batch k+1 overlaps the database's work on batch k.
// Batches that reference each other stay correct: batch k is committed before batch k+1 is stored, and
// PutPrepared reads linked resources from the store only when it stores.
type Pipeline struct {
	w       *Writer
	ctx     context.Context
	batches chan *Batch
	done    chan struct{}
	failed  chan struct{} // closed after err is set
	err     error         // of the storing goroutine; read only after failed or done is closed
	stored  func(n int)
	closing sync.Once
}

// NewPipeline starts a pipeline on w. stored, when not nil, is called on the storing goroutine after
// each batch has been committed, with the number of resources committed so far (for resumable imports).
func (w *Writer) NewPipeline(ctx context.Context, stored func(n int)) *Pipeline {
	p := &Pipeline{w: w, ctx: ctx, batches: make(chan *Batch, 1), done: make(chan struct{}), failed: make(chan struct{}), stored: stored}
	go p.store()
	return p
}

func (p *Pipeline) store() {
	defer close(p.done)
	n := 0
	for b := range p.batches {
		if p.err != nil {
			continue // drain: Add must not block after a failure
		}
		size := b.Len()
		if _, err := p.w.PutPrepared(p.ctx, b); err != nil {
			p.err = fmt.Errorf("after %d resources: %w", n, err)
			close(p.failed)
			continue
		}
		n += size
		if p.stored != nil {
			p.stored(n)
		}
	}
}

// Add prepares docs and queues them for storing. It returns a preparation error at once; a storing
// error is returned by Close (and stops the storing of later batches).
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
	if err := p.w.Prefetch(p.ctx, b); err != nil {
		return err
	}
	select {
	case p.batches <- b:
		return nil
	case <-p.failed:
		return p.err
	}
}

// Close waits until every queued batch is stored and returns the first storing error. Later calls return
// the same error, so a deferred Close may follow an explicit one.
func (p *Pipeline) Close() error {
	p.closing.Do(func() { close(p.batches) })
	<-p.done
	return p.err
}
