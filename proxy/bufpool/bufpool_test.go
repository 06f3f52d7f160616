package bufpool

import (
	"net/http/httputil"
	"testing"
)

var _ httputil.BufferPool = (*Pool)(nil)

func TestPool(t *testing.T) {
	var p Pool
	t.Run("a buffer has ReverseProxy's default length", func(t *testing.T) {
		if got := len(p.Get()); got != Size {
			t.Fatalf("len = %d, want %d", got, Size)
		}
	})
	t.Run("a returned buffer is handed out again instead of a new one", func(t *testing.T) {
		// sync.Pool may drop any entry (a GC, another P, and a quarter of all Puts under the race detector);
		// one reuse in a hundred fresh tries shows the pool keeps buffers at all.
		for range 100 {
			b := p.Get()
			b[0] = 42
			p.Put(b)
			if got := p.Get(); got[0] == 42 {
				return
			}
		}
		t.Fatal("a returned buffer was never reused")
	})
	t.Run("a foreign buffer of another length is not pooled", func(t *testing.T) {
		p.Put(make([]byte, 10))
		for range 10 {
			if got := p.Get(); len(got) != Size {
				t.Fatalf("len = %d, want %d", len(got), Size)
			}
		}
	})
	t.Run("Get allocates nothing once the pool holds a buffer", func(t *testing.T) {
		p.Put(p.Get())
		allocs := testing.AllocsPerRun(100, func() { p.Put(p.Get()) })
		if allocs > 1 { // Put boxes the slice header; the 32 KiB buffer itself is reused
			t.Fatalf("%.1f allocations per Get/Put", allocs)
		}
	})
}
