// Package bufpool holds the copy buffers of the proxies' httputil.ReverseProxy hops. Without a pool,
// ReverseProxy allocates a fresh 32 KiB buffer for every response it copies: for the small JSON answers
// that make up most Matrix traffic that buffer was two thirds of all bytes a proxied request allocated, and
// the garbage collector's work grew with it.
package bufpool

import "sync"

// Size is the buffer length, the same as ReverseProxy's own default.
const Size = 32 << 10

// Pool implements httputil.BufferPool. The zero value is ready to use and safe for concurrent use.
type Pool struct {
	p sync.Pool
}

// Get returns a buffer of length Size.
func (p *Pool) Get() []byte {
	if b, ok := p.p.Get().(*[]byte); ok {
		return *b
	}
	return make([]byte, Size)
}

// Put returns b to the pool. Buffers of another length (not from Get) are dropped.
func (p *Pool) Put(b []byte) {
	if len(b) != Size {
		return
	}
	p.p.Put(&b)
}
