package generate

import "math/bits"

// rng is SplitMix64. Every generated entity gets its own stream keyed by (seed, stream, index), so any
// resource can be re-derived from its index alone: the generator makes one pass per resource type in
// dependency order without keeping earlier entities in memory, and the output does not depend on the
// order in which passes draw numbers.
type rng struct{ s uint64 }

// Stream identifiers: one per entity family.
const (
	streamPractitioner uint64 = iota + 1
	streamOrganization
	streamEndpoint
	streamSelect
)

func newRNG(seed int64, stream uint64, index int) rng {
	r := rng{s: uint64(seed)*0x9e3779b97f4a7c15 ^ stream<<56 ^ uint64(index)*0xd1b54a32d192ed03}
	r.next() // decorrelate neighbouring keys
	return r
}

func (r *rng) next() uint64 {
	r.s += 0x9e3779b97f4a7c15
	z := r.s
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

// intn returns a value in [0,n) (Lemire's multiply-high; the tiny bias is irrelevant here).
func (r *rng) intn(n int) int {
	hi, _ := bits.Mul64(r.next(), uint64(n))
	return int(hi)
}

// float returns a value in [0,1).
func (r *rng) float() float64 { return float64(r.next()>>11) / (1 << 53) }

// chance reports true with probability p.
func (r *rng) chance(p float64) bool { return r.float() < p }

func (r *rng) str(list []string) string { return list[r.intn(len(list))] }
