package certs

// Fast ECDSA verification on brainpoolP256r1.
//
// crypto/ecdsa handles brainpool curves through its legacy path: two separate scalar multiplications on
// ProtonMail's brainpool.P256r1(), which is crypto/elliptic's generic big.Int CurveParams code behind an
// r1↔t1 isomorphism wrapper (a modular reduction with division after every field operation). That costs about
// 3–4 ms per signature. This file verifies the same signatures in about 0.17–0.2 ms (≈20× faster, 18 instead
// of ~18 600 allocations; BenchmarkBP256Verify vs BenchmarkBP256VerifyGeneric):
//
//   - Field arithmetic: Montgomery multiplication (CIOS) on 4×64-bit limbs written with math/bits. The
//     brainpool prime has no special form, so generic Montgomery reduction is the natural choice; it needs no
//     dependency and every operation is tested against math/big.
//   - Curve: the computation runs on the isomorphic twist brainpoolP256t1 (a = -3), where Jacobian doubling
//     costs 3M+5S. Q and G are mapped once, (x, y) ↦ (x·z², y·z³), and only the final x coordinate is mapped
//     back (x·z⁻²). The isomorphism preserves the group law, so u1·G + u2·Q is the same point either way.
//   - Scalar multiplication: u1·G + u2·Q jointly (Straus/Shamir interleaving) with one chain of 256 doublings,
//     width-7 NAF over a lazily built (sync.Once) affine table of 32 odd multiples of G (mixed additions) and
//     width-5 NAF over a per-call Jacobian table of 8 odd multiples of Q.
//
// Everything here is VARIABLE TIME: branches and table indices depend on the scalars and on intermediate
// points. That is acceptable for verification, whose inputs (public key, message digest, signature) are all
// public. Never use this code with secret data — in particular never for signing or key agreement.

import (
	"crypto/ecdsa"
	"encoding/binary"
	"math/big"
	"math/bits"
	"sync"
)

// The brainpoolP256r1 (and P256t1) field prime p as little-endian 64-bit limbs, and -p⁻¹ mod 2⁶⁴ for
// Montgomery reduction. bp256Init cross-checks them against the curve parameters.
const (
	bp256P0   = 0x2013481D1F6E5377
	bp256P1   = 0x6E3BF623D5262028
	bp256P2   = 0x3E660A909D838D72
	bp256P3   = 0xA9FB57DBA1EEA9BC
	bp256PInv = 0xc6a75590cefd89b9
)

// Window widths of the NAF recodings: bp256WG for the fixed base point G (precomputed table of
// 2^(bp256WG-2) affine points), bp256WQ for the public key Q (table built per verification).
const (
	bp256WG = 7
	bp256WQ = 5
)

// bp256Elt is a field element mod p in Montgomery form (value·2²⁵⁶ mod p), little-endian limbs, always fully
// reduced to [0, p) so that equality is limb equality.
type bp256Elt [4]uint64

// bp256One is 1 in Montgomery form: 2²⁵⁶ mod p = 2²⁵⁶ - p (p > 2²⁵⁵).
var bp256One = bp256Elt{^uint64(bp256P0) + 1, ^uint64(bp256P1), ^uint64(bp256P2), ^uint64(bp256P3)}

// bp256Madd returns a·b + c + d as (hi, lo); it cannot overflow 128 bits.
func bp256Madd(a, b, c, d uint64) (hi, lo uint64) {
	hi, lo = bits.Mul64(a, b)
	var cc uint64
	lo, cc = bits.Add64(lo, c, 0)
	hi += cc
	lo, cc = bits.Add64(lo, d, 0)
	hi += cc
	return hi, lo
}

// bp256Reduce sets z to t mod p for a 257-bit t = t4:t3:t2:t1:t0 < 2p.
func bp256Reduce(z *bp256Elt, t0, t1, t2, t3, t4 uint64) {
	s0, b := bits.Sub64(t0, bp256P0, 0)
	s1, b := bits.Sub64(t1, bp256P1, b)
	s2, b := bits.Sub64(t2, bp256P2, b)
	s3, b := bits.Sub64(t3, bp256P3, b)
	_, b = bits.Sub64(t4, 0, b)
	if b == 0 { // t >= p
		z[0], z[1], z[2], z[3] = s0, s1, s2, s3
	} else {
		z[0], z[1], z[2], z[3] = t0, t1, t2, t3
	}
}

// bp256Mul sets z = x·y·2⁻²⁵⁶ mod p (Montgomery product, CIOS, unrolled). z may alias x or y.
func bp256Mul(z, x, y *bp256Elt) {
	x0, x1, x2, x3 := x[0], x[1], x[2], x[3]
	y0, y1, y2, y3 := y[0], y[1], y[2], y[3]
	var t0, t1, t2, t3, t4, t5, c, m uint64
	// word 0
	c, t0 = bp256Madd(x0, y0, 0, 0)
	c, t1 = bp256Madd(x1, y0, 0, c)
	c, t2 = bp256Madd(x2, y0, 0, c)
	t4, t3 = bp256Madd(x3, y0, 0, c)
	t5 = 0
	m = t0 * bp256PInv // t0 + m·p0 ≡ 0 mod 2⁶⁴
	c, _ = bp256Madd(m, bp256P0, t0, 0)
	c, t0 = bp256Madd(m, bp256P1, t1, c)
	c, t1 = bp256Madd(m, bp256P2, t2, c)
	c, t2 = bp256Madd(m, bp256P3, t3, c)
	t3, c = bits.Add64(t4, c, 0)
	t4 = t5 + c
	// word 1
	c, t0 = bp256Madd(x0, y1, t0, 0)
	c, t1 = bp256Madd(x1, y1, t1, c)
	c, t2 = bp256Madd(x2, y1, t2, c)
	c, t3 = bp256Madd(x3, y1, t3, c)
	t4, t5 = bits.Add64(t4, c, 0)
	m = t0 * bp256PInv // t0 + m·p0 ≡ 0 mod 2⁶⁴
	c, _ = bp256Madd(m, bp256P0, t0, 0)
	c, t0 = bp256Madd(m, bp256P1, t1, c)
	c, t1 = bp256Madd(m, bp256P2, t2, c)
	c, t2 = bp256Madd(m, bp256P3, t3, c)
	t3, c = bits.Add64(t4, c, 0)
	t4 = t5 + c
	// word 2
	c, t0 = bp256Madd(x0, y2, t0, 0)
	c, t1 = bp256Madd(x1, y2, t1, c)
	c, t2 = bp256Madd(x2, y2, t2, c)
	c, t3 = bp256Madd(x3, y2, t3, c)
	t4, t5 = bits.Add64(t4, c, 0)
	m = t0 * bp256PInv // t0 + m·p0 ≡ 0 mod 2⁶⁴
	c, _ = bp256Madd(m, bp256P0, t0, 0)
	c, t0 = bp256Madd(m, bp256P1, t1, c)
	c, t1 = bp256Madd(m, bp256P2, t2, c)
	c, t2 = bp256Madd(m, bp256P3, t3, c)
	t3, c = bits.Add64(t4, c, 0)
	t4 = t5 + c
	// word 3
	c, t0 = bp256Madd(x0, y3, t0, 0)
	c, t1 = bp256Madd(x1, y3, t1, c)
	c, t2 = bp256Madd(x2, y3, t2, c)
	c, t3 = bp256Madd(x3, y3, t3, c)
	t4, t5 = bits.Add64(t4, c, 0)
	m = t0 * bp256PInv // t0 + m·p0 ≡ 0 mod 2⁶⁴
	c, _ = bp256Madd(m, bp256P0, t0, 0)
	c, t0 = bp256Madd(m, bp256P1, t1, c)
	c, t1 = bp256Madd(m, bp256P2, t2, c)
	c, t2 = bp256Madd(m, bp256P3, t3, c)
	t3, c = bits.Add64(t4, c, 0)
	t4 = t5 + c
	bp256Reduce(z, t0, t1, t2, t3, t4) // t < 2p because x, y < p
}

func bp256Sqr(z, x *bp256Elt) { bp256Mul(z, x, x) }

// bp256Add sets z = x + y mod p.
func bp256Add(z, x, y *bp256Elt) {
	t0, c := bits.Add64(x[0], y[0], 0)
	t1, c := bits.Add64(x[1], y[1], c)
	t2, c := bits.Add64(x[2], y[2], c)
	t3, c := bits.Add64(x[3], y[3], c)
	bp256Reduce(z, t0, t1, t2, t3, c)
}

// bp256Sub sets z = x - y mod p.
func bp256Sub(z, x, y *bp256Elt) {
	t0, b := bits.Sub64(x[0], y[0], 0)
	t1, b := bits.Sub64(x[1], y[1], b)
	t2, b := bits.Sub64(x[2], y[2], b)
	t3, b := bits.Sub64(x[3], y[3], b)
	if b != 0 {
		var c uint64
		t0, c = bits.Add64(t0, bp256P0, 0)
		t1, c = bits.Add64(t1, bp256P1, c)
		t2, c = bits.Add64(t2, bp256P2, c)
		t3, _ = bits.Add64(t3, bp256P3, c)
	}
	z[0], z[1], z[2], z[3] = t0, t1, t2, t3
}

// bp256Neg sets z = -x mod p.
func bp256Neg(z, x *bp256Elt) { bp256Sub(z, &bp256Elt{}, x) }

func bp256IsZero(x *bp256Elt) bool { return x[0]|x[1]|x[2]|x[3] == 0 }

// bp256Inv sets z = x⁻¹ mod p (x^(p-2), Fermat); 0 maps to 0.
func bp256Inv(z, x *bp256Elt) {
	e := [4]uint64{bp256P0 - 2, bp256P1, bp256P2, bp256P3}
	r := *x // the top bit (255) of p-2 is set
	for i := 254; i >= 0; i-- {
		bp256Sqr(&r, &r)
		if e[i>>6]>>(uint(i)&63)&1 == 1 {
			bp256Mul(&r, &r, x)
		}
	}
	*z = r
}

// bp256FromBig sets z to v in Montgomery form; 0 <= v < p is the caller's job.
func bp256FromBig(z *bp256Elt, v *big.Int, rr *bp256Elt) {
	bp256Limbs(z, v)
	bp256Mul(z, z, rr) // v·R²·R⁻¹ = v·R
}

// bp256ToBig returns the integer value of the Montgomery-form element x.
func bp256ToBig(x *bp256Elt) *big.Int {
	var v bp256Elt
	bp256Mul(&v, x, &bp256Elt{1}) // x·R·R⁻¹
	var buf [32]byte
	binary.BigEndian.PutUint64(buf[0:], v[3])
	binary.BigEndian.PutUint64(buf[8:], v[2])
	binary.BigEndian.PutUint64(buf[16:], v[1])
	binary.BigEndian.PutUint64(buf[24:], v[0])
	return new(big.Int).SetBytes(buf[:])
}

// bp256Aff is an affine point on brainpoolP256t1, coordinates in Montgomery form.
type bp256Aff struct{ x, y bp256Elt }

// bp256Jac is a Jacobian point (X/Z², Y/Z³) on brainpoolP256t1; Z = 0 is the point at infinity.
type bp256Jac struct{ x, y, z bp256Elt }

func (p *bp256Jac) isInf() bool { return bp256IsZero(&p.z) }

func (p *bp256Jac) setAff(a *bp256Aff) { p.x, p.y, p.z = a.x, a.y, bp256One }

// double sets p = 2q (dbl-2001-b, a = -3: 3M+5S). p may alias q; infinity doubles to infinity.
func (p *bp256Jac) double(q *bp256Jac) {
	var delta, gamma, beta, alpha, t, u bp256Elt
	bp256Sqr(&delta, &q.z)
	bp256Sqr(&gamma, &q.y)
	bp256Mul(&beta, &q.x, &gamma)
	bp256Sub(&t, &q.x, &delta)
	bp256Add(&u, &q.x, &delta)
	bp256Mul(&alpha, &t, &u)
	bp256Add(&t, &alpha, &alpha)
	bp256Add(&alpha, &t, &alpha) // alpha = 3(X-Z²)(X+Z²)
	// Z3 = (Y+Z)² - Y² - Z²
	bp256Add(&t, &q.y, &q.z)
	bp256Sqr(&t, &t)
	bp256Sub(&t, &t, &gamma)
	bp256Sub(&p.z, &t, &delta)
	// X3 = alpha² - 8·beta
	bp256Add(&beta, &beta, &beta)
	bp256Add(&beta, &beta, &beta) // 4·beta
	bp256Add(&u, &beta, &beta)    // 8·beta
	bp256Sqr(&t, &alpha)
	bp256Sub(&p.x, &t, &u)
	// Y3 = alpha·(4·beta - X3) - 8·gamma²
	bp256Sub(&t, &beta, &p.x)
	bp256Mul(&t, &alpha, &t)
	bp256Sqr(&gamma, &gamma)
	bp256Add(&gamma, &gamma, &gamma)
	bp256Add(&gamma, &gamma, &gamma)
	bp256Add(&gamma, &gamma, &gamma)
	bp256Sub(&p.y, &t, &gamma)
}

// addAffine sets p = q + a for an affine a (mixed addition, 8M+3S). It handles q = ∞, q = a (doubling) and
// q = -a (infinity). p may alias q.
func (p *bp256Jac) addAffine(q *bp256Jac, a *bp256Aff) {
	if q.isInf() {
		p.setAff(a)
		return
	}
	var z1z1, u2, s2, h, r, hh, hhh, v, t, x3, y3 bp256Elt
	bp256Sqr(&z1z1, &q.z)
	bp256Mul(&u2, &a.x, &z1z1)
	bp256Mul(&s2, &a.y, &q.z)
	bp256Mul(&s2, &s2, &z1z1)
	bp256Sub(&h, &u2, &q.x)
	bp256Sub(&r, &s2, &q.y)
	if bp256IsZero(&h) {
		if bp256IsZero(&r) {
			p.double(q)
		} else {
			*p = bp256Jac{}
		}
		return
	}
	bp256Sqr(&hh, &h)
	bp256Mul(&hhh, &hh, &h)
	bp256Mul(&v, &q.x, &hh)
	// X3 = r² - H³ - 2·X1·H²
	bp256Sqr(&t, &r)
	bp256Sub(&t, &t, &hhh)
	bp256Sub(&t, &t, &v)
	bp256Sub(&x3, &t, &v)
	// Y3 = r·(X1·H² - X3) - Y1·H³
	bp256Sub(&v, &v, &x3)
	bp256Mul(&v, &v, &r)
	bp256Mul(&t, &q.y, &hhh)
	bp256Sub(&y3, &v, &t)
	// Z3 = Z1·H
	bp256Mul(&p.z, &q.z, &h)
	p.x, p.y = x3, y3
}

// add sets p = q + a for Jacobian points (12M+4S). It handles either operand at infinity, q = a (doubling)
// and q = -a (infinity). p may alias q or a.
func (p *bp256Jac) add(q, a *bp256Jac) {
	if q.isInf() {
		*p = *a
		return
	}
	if a.isInf() {
		*p = *q
		return
	}
	var z1z1, z2z2, u1, u2, s1, s2, h, r, hh, hhh, v, t, x3, y3, z3 bp256Elt
	bp256Sqr(&z1z1, &q.z)
	bp256Sqr(&z2z2, &a.z)
	bp256Mul(&u1, &q.x, &z2z2)
	bp256Mul(&u2, &a.x, &z1z1)
	bp256Mul(&s1, &q.y, &a.z)
	bp256Mul(&s1, &s1, &z2z2)
	bp256Mul(&s2, &a.y, &q.z)
	bp256Mul(&s2, &s2, &z1z1)
	bp256Sub(&h, &u2, &u1)
	bp256Sub(&r, &s2, &s1)
	if bp256IsZero(&h) {
		if bp256IsZero(&r) {
			p.double(q)
		} else {
			*p = bp256Jac{}
		}
		return
	}
	bp256Sqr(&hh, &h)
	bp256Mul(&hhh, &hh, &h)
	bp256Mul(&v, &u1, &hh)
	// X3 = r² - H³ - 2·U1·H²
	bp256Sqr(&t, &r)
	bp256Sub(&t, &t, &hhh)
	bp256Sub(&t, &t, &v)
	bp256Sub(&x3, &t, &v)
	// Y3 = r·(U1·H² - X3) - S1·H³
	bp256Sub(&v, &v, &x3)
	bp256Mul(&v, &v, &r)
	bp256Mul(&t, &s1, &hhh)
	bp256Sub(&y3, &v, &t)
	// Z3 = Z1·Z2·H
	bp256Mul(&z3, &q.z, &a.z)
	bp256Mul(&z3, &z3, &h)
	p.x, p.y, p.z = x3, y3, z3
}

// bp256NAFLen bounds the length of a NAF of a scalar below 2²⁵⁶ (at most 257 digits).
const bp256NAFLen = 258

// bp256WNAF writes the width-w non-adjacent form of k (0 <= k < 2²⁵⁶) to naf, least significant digit first,
// and returns the number of digits. Every non-zero digit is odd with |d| < 2^(w-1), so k = Σ naf[i]·2ⁱ.
func bp256WNAF(naf *[bp256NAFLen]int8, k *big.Int, w uint) int {
	var k4 bp256Elt
	bp256Limbs(&k4, k)
	v := [5]uint64{k4[0], k4[1], k4[2], k4[3]} // one spare limb: k - d may exceed k by up to 2^(w-1)
	mask := uint64(1)<<w - 1
	half := int64(1) << (w - 1)
	n := 0
	for v[0]|v[1]|v[2]|v[3]|v[4] != 0 {
		var d int64
		if v[0]&1 == 1 {
			d = int64(v[0] & mask)
			if d >= half {
				d -= 1 << w
			}
			var c uint64
			if d > 0 { // v -= d
				v[0], c = bits.Sub64(v[0], uint64(d), 0)
				v[1], c = bits.Sub64(v[1], 0, c)
				v[2], c = bits.Sub64(v[2], 0, c)
				v[3], c = bits.Sub64(v[3], 0, c)
				v[4], _ = bits.Sub64(v[4], 0, c)
			} else { // v += -d
				v[0], c = bits.Add64(v[0], uint64(-d), 0)
				v[1], c = bits.Add64(v[1], 0, c)
				v[2], c = bits.Add64(v[2], 0, c)
				v[3], c = bits.Add64(v[3], 0, c)
				v[4], _ = bits.Add64(v[4], 0, c)
			}
		}
		naf[n] = int8(d)
		n++
		v[0] = v[0]>>1 | v[1]<<63
		v[1] = v[1]>>1 | v[2]<<63
		v[2] = v[2]>>1 | v[3]<<63
		v[3] = v[3]>>1 | v[4]<<63
		v[4] >>= 1
	}
	return n
}

// bp256Params holds the derived constants, built once on first use.
type bp256Params struct {
	p, n   *big.Int
	rr     bp256Elt // 2⁵¹² mod p (plain integer): Montgomery multiplier for conversion
	b      bp256Elt // b of brainpoolP256t1
	z2, z3 bp256Elt // z², z³ of the r1→t1 isomorphism
	zinv2  bp256Elt // z⁻²
	g      [1 << (bp256WG - 2)]bp256Aff
}

var (
	bp256Once sync.Once
	bp256Tab  *bp256Params
)

// bp256Z is the RFC 5639 isomorphism constant from brainpoolP256r1 to brainpoolP256t1:
// (x, y) ↦ (x·z², y·z³) maps y² = x³ + A·x + B onto y² = x³ - 3x + B·z⁶.
const bp256Z = "3E2D4BD9597B58639AE7AA669CAB9837CF5CF20A2C852D10F655668DFC150EF0"

// bp256BT is b of brainpoolP256t1 (RFC 5639 §3.4).
const bp256BT = "662C61C430D84EA4FE66A7733D0B76B7BF93EBC4AF2F49256AE58101FEE92B04"

func bp256Consts() *bp256Params {
	bp256Once.Do(bp256Init)
	return bp256Tab
}

func bp256Init() {
	params := BrainpoolP256r1().Params()
	c := &bp256Params{p: params.P, n: params.N}
	var plimbs bp256Elt
	bp256Limbs(&plimbs, c.p)
	if plimbs != (bp256Elt{bp256P0, bp256P1, bp256P2, bp256P3}) {
		panic("certs: brainpoolP256r1 prime does not match the bp256 constants")
	}
	rr := new(big.Int).Lsh(big.NewInt(1), 512)
	bp256Limbs(&c.rr, rr.Mod(rr, c.p))

	z, _ := new(big.Int).SetString(bp256Z, 16)
	bt, _ := new(big.Int).SetString(bp256BT, 16)
	bp256FromBig(&c.b, bt, &c.rr)
	z2 := new(big.Int).Exp(z, big.NewInt(2), c.p)
	z3 := new(big.Int).Exp(z, big.NewInt(3), c.p)
	zinv := new(big.Int).ModInverse(z, c.p)
	zinv2 := zinv.Exp(zinv, big.NewInt(2), c.p)
	bp256FromBig(&c.z2, z2, &c.rr)
	bp256FromBig(&c.z3, z3, &c.rr)
	bp256FromBig(&c.zinv2, zinv2, &c.rr)

	// Odd multiples G, 3G, …, (2^(WG-1)-1)G on t1, normalised to affine.
	var g bp256Aff
	if !c.fromR1(&g, params.Gx, params.Gy) {
		panic("certs: brainpoolP256r1 base point not on curve")
	}
	var acc, g2 bp256Jac
	acc.setAff(&g)
	g2.double(&acc)
	for i := range c.g {
		if i > 0 {
			acc.add(&acc, &g2)
		}
		var zi, zi2 bp256Elt
		bp256Inv(&zi, &acc.z)
		bp256Sqr(&zi2, &zi)
		bp256Mul(&c.g[i].x, &acc.x, &zi2)
		bp256Mul(&zi2, &zi2, &zi)
		bp256Mul(&c.g[i].y, &acc.y, &zi2)
	}
	bp256Tab = c
}

// bp256Limbs sets z to the plain (non-Montgomery) limbs of 0 <= v < 2²⁵⁶.
func bp256Limbs(z *bp256Elt, v *big.Int) {
	var buf [32]byte
	v.FillBytes(buf[:])
	z[3] = binary.BigEndian.Uint64(buf[0:])
	z[2] = binary.BigEndian.Uint64(buf[8:])
	z[1] = binary.BigEndian.Uint64(buf[16:])
	z[0] = binary.BigEndian.Uint64(buf[24:])
}

// fromR1 maps the brainpoolP256r1 affine point (x, y) to brainpoolP256t1 and reports whether it is a valid
// curve point (coordinates in [0, p) and on the curve; the curve has cofactor 1, so that is the whole check).
func (c *bp256Params) fromR1(a *bp256Aff, x, y *big.Int) bool {
	if x.Sign() < 0 || y.Sign() < 0 || x.Cmp(c.p) >= 0 || y.Cmp(c.p) >= 0 {
		return false
	}
	bp256FromBig(&a.x, x, &c.rr)
	bp256Mul(&a.x, &a.x, &c.z2)
	bp256FromBig(&a.y, y, &c.rr)
	bp256Mul(&a.y, &a.y, &c.z3)
	// y² = x³ - 3x + b on t1 (equivalent to the r1 equation under the isomorphism)
	var lhs, rhs, t bp256Elt
	bp256Sqr(&lhs, &a.y)
	bp256Sqr(&rhs, &a.x)
	bp256Mul(&rhs, &rhs, &a.x)
	bp256Add(&t, &a.x, &a.x)
	bp256Add(&t, &t, &a.x)
	bp256Sub(&rhs, &rhs, &t)
	bp256Add(&rhs, &rhs, &c.b)
	return lhs == rhs
}

// jointMult returns u1·G + u2·Q (Jacobian, on t1) for 0 <= u1, u2 < 2²⁵⁶ by interleaved wNAF. Variable time.
func (c *bp256Params) jointMult(u1, u2 *big.Int, q *bp256Aff) bp256Jac {
	var n1, n2 [bp256NAFLen]int8
	l1 := bp256WNAF(&n1, u1, bp256WG)
	l2 := bp256WNAF(&n2, u2, bp256WQ)

	var tq [1 << (bp256WQ - 2)]bp256Jac // Q, 3Q, 5Q, …
	var q2 bp256Jac
	tq[0].setAff(q)
	q2.double(&tq[0])
	for i := 1; i < len(tq); i++ {
		tq[i].add(&tq[i-1], &q2)
	}

	var acc bp256Jac // infinity
	for i := max(l1, l2) - 1; i >= 0; i-- {
		if !acc.isInf() {
			acc.double(&acc)
		}
		if d := n1[i]; d > 0 {
			acc.addAffine(&acc, &c.g[d>>1])
		} else if d < 0 {
			neg := c.g[(-d)>>1]
			bp256Neg(&neg.y, &neg.y)
			acc.addAffine(&acc, &neg)
		}
		if d := n2[i]; d > 0 {
			acc.add(&acc, &tq[d>>1])
		} else if d < 0 {
			neg := tq[(-d)>>1]
			bp256Neg(&neg.y, &neg.y)
			acc.add(&acc, &neg)
		}
	}
	return acc
}

// toR1X returns the affine brainpoolP256r1 x coordinate of the finite t1 point p.
func (c *bp256Params) toR1X(p *bp256Jac) *big.Int {
	var zi, x bp256Elt
	bp256Inv(&zi, &p.z)
	bp256Sqr(&zi, &zi)
	bp256Mul(&x, &p.x, &zi)    // affine x on t1
	bp256Mul(&x, &x, &c.zinv2) // back to r1
	return bp256ToBig(&x)
}

// bp256Verify reports whether (r, s) is a valid ECDSA signature of digest under the brainpoolP256r1 key pub.
// It accepts exactly what crypto/ecdsa.VerifyASN1 accepts on BrainpoolP256r1() for on-curve keys: r and s
// in [1, n-1], the digest truncated to the bit length of n (hashToInt), R = u1·G + u2·Q ≠ ∞ and
// x(R) mod n = r. It additionally rejects keys that are not on the curve (coordinates outside [0, p) or
// failing the curve equation) — the generic path would compute garbage for those (and treats (0, 0) as the
// point at infinity); every key timstack parses is already validated, so this only matters for hand-made
// keys.
//
// Variable time: only for public inputs. Must never be used for signing.
func bp256Verify(pub *ecdsa.PublicKey, digest []byte, r, s *big.Int) bool {
	if pub == nil || pub.X == nil || pub.Y == nil || r == nil || s == nil {
		return false
	}
	c := bp256Consts()
	n := c.n
	if r.Sign() <= 0 || s.Sign() <= 0 || r.Cmp(n) >= 0 || s.Cmp(n) >= 0 {
		return false
	}
	var q bp256Aff
	if !c.fromR1(&q, pub.X, pub.Y) {
		return false
	}

	// e = hashToInt(digest) as in crypto/ecdsa: leftmost bits of the digest, as many as n has.
	orderBits := n.BitLen()
	if orderBytes := (orderBits + 7) / 8; len(digest) > orderBytes {
		digest = digest[:orderBytes]
	}
	e := new(big.Int).SetBytes(digest)
	if excess := len(digest)*8 - orderBits; excess > 0 {
		e.Rsh(e, uint(excess))
	}

	w := new(big.Int).ModInverse(s, n) // n is prime and 0 < s < n
	u1 := e.Mul(e, w)
	u1.Mod(u1, n)
	u2 := w.Mul(r, w)
	u2.Mod(u2, n)

	R := c.jointMult(u1, u2, &q)
	if R.isInf() {
		return false
	}
	x := c.toR1X(&R)
	if x.Cmp(n) >= 0 { // x < p < 2n
		x.Sub(x, n)
	}
	return x.Cmp(r) == 0
}
