package certs

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"math/big"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"

	"github.com/ProtonMail/go-crypto/brainpool"
)

// bp256GenericVerify is the pre-bp256 path of verifyECDSA: range check, DER, crypto/ecdsa's legacy generic
// verification on ProtonMail's brainpoolP256r1. It is the oracle for the differential tests. crypto/elliptic
// panics on keys that are not on the curve (other than (0, 0)); that counts as a rejection here.
func bp256GenericVerify(pub *ecdsa.PublicKey, digest []byte, r, s *big.Int) (ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	n := pub.Curve.Params().N
	if r.Sign() <= 0 || s.Sign() <= 0 || r.Cmp(n) >= 0 || s.Cmp(n) >= 0 {
		return false
	}
	der, err := encodeECDSADER(r, s)
	if err != nil {
		return false
	}
	return ecdsa.VerifyASN1(pub, digest, der)
}

func bp256N() *big.Int { return BrainpoolP256r1().Params().N }

// bp256TestKey returns the key with private scalar d (1 <= d < n), computed on the generic curve.
func bp256TestKey(d *big.Int) *ecdsa.PrivateKey {
	c := BrainpoolP256r1()
	x, y := c.ScalarBaseMult(d.Bytes())
	return &ecdsa.PrivateKey{PublicKey: ecdsa.PublicKey{Curve: c, X: x, Y: y}, D: new(big.Int).Set(d)}
}

// bp256HashToInt mirrors crypto/ecdsa's hashToInt for brainpoolP256r1.
func bp256HashToInt(digest []byte) *big.Int {
	if len(digest) > 32 {
		digest = digest[:32]
	}
	return new(big.Int).SetBytes(digest)
}

// bp256TestSign signs the integer e with private key d and nonce k on the generic curve (textbook ECDSA); ok
// is false for the (negligible) degenerate cases r = 0 or s = 0.
func bp256TestSign(d, k, e *big.Int) (r, s *big.Int, ok bool) {
	n := bp256N()
	k = new(big.Int).Mod(k, n)
	if k.Sign() == 0 {
		return nil, nil, false
	}
	x, _ := BrainpoolP256r1().ScalarBaseMult(k.Bytes())
	r = new(big.Int).Mod(x, n)
	if r.Sign() == 0 {
		return nil, nil, false
	}
	s = new(big.Int).Mul(r, d)
	s.Add(s, e)
	s.Mul(s, new(big.Int).ModInverse(k, n))
	s.Mod(s, n)
	return r, s, s.Sign() != 0
}

func bp256RandScalar(t testing.TB) *big.Int {
	t.Helper()
	for {
		k, err := rand.Int(rand.Reader, bp256N())
		if err != nil {
			t.Fatal(err)
		}
		if k.Sign() != 0 {
			return k
		}
	}
}

func flipBit(b []byte, i int) []byte {
	out := bytes.Clone(b)
	out[(i/8)%len(out)] ^= 1 << (i % 8)
	return out
}

func flipBigBit(v *big.Int, i int) *big.Int {
	return new(big.Int).Xor(v, new(big.Int).Lsh(big.NewInt(1), uint(i%256)))
}

func TestBP256Constants(t *testing.T) {
	c := bp256Consts()
	p := BrainpoolP256r1().Params().P
	var pl bp256Elt
	bp256Limbs(&pl, p)
	if pl != (bp256Elt{bp256P0, bp256P1, bp256P2, bp256P3}) {
		t.Fatal("prime limbs")
	}
	m := new(big.Int).Lsh(big.NewInt(1), 64)
	pinv := new(big.Int).ModInverse(p, m)
	pinv.Sub(m, pinv)
	if pinv.Uint64() != bp256PInv {
		t.Fatalf("PInv %x, want %x", uint64(bp256PInv), pinv)
	}
	R := new(big.Int).Lsh(big.NewInt(1), 256)
	var one bp256Elt
	bp256Limbs(&one, new(big.Int).Mod(R, p))
	if one != bp256One {
		t.Fatal("bp256One is not 2^256 mod p")
	}
	if bp256ToBig(&bp256One).Cmp(big.NewInt(1)) != 0 {
		t.Fatal("bp256One does not decode to 1")
	}
	// RFC 5639: A·z⁴ ≡ -3 and B·z⁶ ≡ B_t1; G maps to the t1 generator of ProtonMail's P256t1.
	A, _ := new(big.Int).SetString("7D5A0975FC2C3057EEF67530417AFFE7FB8055C126DC5C6CE94A4B44F330B5D9", 16)
	B, _ := new(big.Int).SetString("26DC5C6CE94A4B44F330B5D9BBD77CBF958416295CF7E1CE6BCCDC18FF8C07B6", 16)
	z, _ := new(big.Int).SetString(bp256Z, 16)
	z4 := new(big.Int).Exp(z, big.NewInt(4), p)
	z6 := new(big.Int).Exp(z, big.NewInt(6), p)
	if v := new(big.Int).Mul(A, z4); v.Add(v.Mod(v, p), big.NewInt(3)).Cmp(p) != 0 {
		t.Fatal("A·z⁴ != -3")
	}
	t1 := brainpool.P256t1().Params()
	if v := new(big.Int).Mul(B, z6); v.Mod(v, p).Cmp(t1.B) != 0 || bp256ToBig(&c.b).Cmp(t1.B) != 0 {
		t.Fatal("B_t1 mismatch")
	}
	if bp256ToBig(&c.g[0].x).Cmp(t1.Gx) != 0 || bp256ToBig(&c.g[0].y).Cmp(t1.Gy) != 0 {
		t.Fatal("G on t1 mismatch")
	}
	// Table entries are the odd multiples of G.
	for i := range c.g {
		k := big.NewInt(int64(2*i + 1))
		x, y := brainpool.P256t1().ScalarBaseMult(k.Bytes())
		if bp256ToBig(&c.g[i].x).Cmp(x) != 0 || bp256ToBig(&c.g[i].y).Cmp(y) != 0 {
			t.Fatalf("table entry %d is not %dG", i, 2*i+1)
		}
	}
}

func TestBP256FieldArithmetic(t *testing.T) {
	c := bp256Consts()
	p := c.p
	rng := mrand.New(mrand.NewChaCha8([32]byte{1}))
	special := []*big.Int{
		big.NewInt(0), big.NewInt(1), big.NewInt(2), new(big.Int).Sub(p, big.NewInt(1)),
		new(big.Int).Sub(p, big.NewInt(2)), new(big.Int).Rsh(p, 1), new(big.Int).Lsh(big.NewInt(1), 255),
		new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 192), big.NewInt(1)),
	}
	randElt := func() *big.Int {
		var b [32]byte
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return new(big.Int).Mod(new(big.Int).SetBytes(b[:]), p)
	}
	var vals []*big.Int
	vals = append(vals, special...)
	for range 200 {
		vals = append(vals, randElt())
	}
	mod := func(v *big.Int) *big.Int { return v.Mod(v, p) }
	for i, a := range vals {
		var ea bp256Elt
		bp256FromBig(&ea, a, &c.rr)
		if bp256ToBig(&ea).Cmp(a) != 0 {
			t.Fatalf("round trip %x", a)
		}
		var inv bp256Elt
		bp256Inv(&inv, &ea)
		wantInv := new(big.Int).ModInverse(a, p)
		if wantInv == nil {
			wantInv = new(big.Int)
		}
		if got := bp256ToBig(&inv); got.Cmp(wantInv) != 0 {
			t.Fatalf("inv(%x) = %x, want %x", a, got, wantInv)
		}
		var neg bp256Elt
		bp256Neg(&neg, &ea)
		if got := bp256ToBig(&neg); got.Cmp(mod(new(big.Int).Neg(a))) != 0 {
			t.Fatalf("neg(%x)", a)
		}
		for j := i; j < len(vals); j += 1 + j%7 {
			b := vals[j]
			var eb, z bp256Elt
			bp256FromBig(&eb, b, &c.rr)
			bp256Mul(&z, &ea, &eb)
			if got := bp256ToBig(&z); got.Cmp(mod(new(big.Int).Mul(a, b))) != 0 {
				t.Fatalf("%x·%x = %x", a, b, got)
			}
			bp256Add(&z, &ea, &eb)
			if got := bp256ToBig(&z); got.Cmp(mod(new(big.Int).Add(a, b))) != 0 {
				t.Fatalf("%x+%x = %x", a, b, got)
			}
			bp256Sub(&z, &ea, &eb)
			if got := bp256ToBig(&z); got.Cmp(mod(new(big.Int).Sub(a, b))) != 0 {
				t.Fatalf("%x-%x = %x", a, b, got)
			}
			// aliasing
			z = ea
			bp256Mul(&z, &z, &eb)
			if got := bp256ToBig(&z); got.Cmp(mod(new(big.Int).Mul(a, b))) != 0 {
				t.Fatal("aliased mul")
			}
		}
	}
}

func TestBP256WNAF(t *testing.T) {
	n := bp256N()
	rng := mrand.New(mrand.NewChaCha8([32]byte{2}))
	ks := []*big.Int{
		big.NewInt(0), big.NewInt(1), big.NewInt(63), big.NewInt(64), big.NewInt(127),
		new(big.Int).Sub(n, big.NewInt(1)), new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 256), big.NewInt(1)),
	}
	for range 500 {
		var b [32]byte
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		ks = append(ks, new(big.Int).SetBytes(b[:]))
	}
	for _, w := range []uint{bp256WG, bp256WQ} {
		for _, k := range ks {
			var naf [bp256NAFLen]int8
			l := bp256WNAF(&naf, k, w)
			sum := new(big.Int)
			last := -1000
			for i := l - 1; i >= 0; i-- {
				d := int64(naf[i])
				sum.Lsh(sum, 1)
				sum.Add(sum, big.NewInt(d))
				if d != 0 {
					if d%2 == 0 || d >= 1<<(w-1) || d <= -(1<<(w-1)) {
						t.Fatalf("w=%d: bad digit %d", w, d)
					}
					if last-i < int(w) && last != -1000 {
						t.Fatalf("w=%d: non-zero digits %d and %d too close", w, last, i)
					}
					last = i
				}
			}
			if sum.Cmp(k) != 0 {
				t.Fatalf("w=%d: NAF of %x sums to %x", w, k, sum)
			}
			if l > 0 && naf[l-1] == 0 {
				t.Fatal("leading zero digit")
			}
		}
	}
}

// bp256R1Affine returns the brainpoolP256r1 affine coordinates of a finite t1 Jacobian point.
func bp256R1Affine(c *bp256Params, p *bp256Jac) (x, y *big.Int) {
	var zi, zi2, zi3, ax, ay bp256Elt
	bp256Inv(&zi, &p.z)
	bp256Sqr(&zi2, &zi)
	bp256Mul(&zi3, &zi2, &zi)
	bp256Mul(&ax, &p.x, &zi2)
	bp256Mul(&ay, &p.y, &zi3)
	z, _ := new(big.Int).SetString(bp256Z, 16)
	z2inv := new(big.Int).ModInverse(new(big.Int).Exp(z, big.NewInt(2), c.p), c.p)
	z3inv := new(big.Int).ModInverse(new(big.Int).Exp(z, big.NewInt(3), c.p), c.p)
	x = new(big.Int).Mul(bp256ToBig(&ax), z2inv)
	y = new(big.Int).Mul(bp256ToBig(&ay), z3inv)
	return x.Mod(x, c.p), y.Mod(y, c.p)
}

// TestBP256JointMult compares u1·G + u2·Q as a point with the generic curve's ScalarBaseMult, ScalarMult and
// Add, including zero scalars, Q = ±G and sums that hit the point at infinity or a doubling.
func TestBP256JointMult(t *testing.T) {
	c := bp256Consts()
	curve := BrainpoolP256r1()
	n := c.n
	nm1 := new(big.Int).Sub(n, big.NewInt(1))
	type tc struct{ u1, u2, d *big.Int }
	var cases []tc
	one, two := big.NewInt(1), big.NewInt(2)
	k := bp256RandScalar(t)
	cases = append(cases,
		tc{big.NewInt(0), big.NewInt(0), k},
		tc{big.NewInt(0), one, k},
		tc{one, big.NewInt(0), k},
		tc{one, one, one},                  // G + G: doubling inside an addition
		tc{one, nm1, one},                  // G - G = ∞
		tc{one, one, nm1},                  // Q = -G: G + (-G) = ∞
		tc{two, one, two},                  // 2G + 2G
		tc{k, k, one},                      // same digits for G and Q = G
		tc{k, new(big.Int).Sub(n, k), one}, // ∞ via Q = G
		tc{nm1, nm1, k},
	)
	iters := 40
	if testing.Short() {
		iters = 10
	}
	for range iters {
		cases = append(cases, tc{bp256RandScalar(t), bp256RandScalar(t), bp256RandScalar(t)})
	}
	for i, cs := range cases {
		key := bp256TestKey(cs.d)
		var q bp256Aff
		if !c.fromR1(&q, key.X, key.Y) {
			t.Fatalf("case %d: key not on curve", i)
		}
		got := c.jointMult(cs.u1, cs.u2, &q)
		x1, y1 := curve.ScalarBaseMult(cs.u1.Bytes())
		x2, y2 := curve.ScalarMult(key.X, key.Y, cs.u2.Bytes())
		wx, wy := curve.Add(x1, y1, x2, y2)
		if wx.Sign() == 0 && wy.Sign() == 0 {
			if !got.isInf() {
				t.Fatalf("case %d: want ∞", i)
			}
			continue
		}
		if got.isInf() {
			t.Fatalf("case %d: got ∞", i)
		}
		gx, gy := bp256R1Affine(c, &got)
		if gx.Cmp(wx) != 0 || gy.Cmp(wy) != 0 {
			t.Fatalf("case %d: point mismatch", i)
		}
	}
}

func bp256DiffIters() int {
	if v, err := strconv.Atoi(os.Getenv("TIMSTACK_BP256_ITERS")); err == nil && v > 0 {
		return v
	}
	if testing.Short() {
		return 30
	}
	return 150
}

// TestBP256VerifyDifferential signs random digests with crypto/ecdsa on the generic curve and checks that
// the fast and the generic verifier agree on the valid signature, on mutations of r, s, digest and Q, and
// on random (r, s). Set TIMSTACK_BP256_ITERS for a longer run.
func TestBP256VerifyDifferential(t *testing.T) {
	iters := bp256DiffIters()
	rng := mrand.New(mrand.NewChaCha8([32]byte{3}))
	keys := make([]*ecdsa.PrivateKey, 8)
	for i := range keys {
		k, err := ecdsa.GenerateKey(BrainpoolP256r1(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		keys[i] = k
	}
	n := bp256N()
	var agreeTrue, agreeFalse int
	check := func(what string, pub *ecdsa.PublicKey, digest []byte, r, s *big.Int, want bool) {
		t.Helper()
		fast := bp256Verify(pub, digest, r, s)
		gen := bp256GenericVerify(pub, digest, r, s)
		if fast != gen || fast != want {
			t.Fatalf("%s: fast=%v generic=%v want=%v (digest %x r %x s %x Q (%x, %x))", what, fast, gen, want, digest, r, s, pub.X, pub.Y)
		}
		// Through the production entry point as well.
		if v := verifyECDSA(pub, digest, r, s); v != want {
			t.Fatalf("%s: verifyECDSA=%v want=%v", what, v, want)
		}
		if want {
			agreeTrue++
		} else {
			agreeFalse++
		}
	}
	for i := range iters {
		key := keys[i%len(keys)]
		digestLen := []int{32, 32, 32, 20, 48, 64}[i%6]
		digest := make([]byte, digestLen)
		for j := range digest {
			digest[j] = byte(rng.Uint32())
		}
		der, err := ecdsa.SignASN1(rand.Reader, key, digest)
		if err != nil {
			t.Fatal(err)
		}
		r, s, err := decodeECDSADER(der)
		if err != nil {
			t.Fatal(err)
		}
		pub := &key.PublicKey
		check("valid", pub, digest, r, s, true)

		switch i % 4 {
		case 0:
			check("flip r", pub, digest, flipBigBit(r, rng.IntN(256)), s, false)
		case 1:
			check("flip s", pub, digest, r, flipBigBit(s, rng.IntN(256)), false)
		case 2:
			// A flip beyond the first 32 bytes is truncated away and must still verify.
			bit := rng.IntN(8 * len(digest))
			check("flip digest", pub, flipBit(digest, bit), r, s, bit >= 256)
		case 3:
			other := keys[(i+1)%len(keys)].PublicKey
			check("other key", &other, digest, r, s, false)
			// A flipped Q coordinate is (almost surely) off the curve: the fast path rejects it outright,
			// the generic one computes nonsense that does not match r.
			bad := ecdsa.PublicKey{Curve: pub.Curve, X: flipBigBit(pub.X, rng.IntN(255)), Y: pub.Y}
			check("flip Qx", &bad, digest, r, s, false)
		}
		rr, _ := rand.Int(rand.Reader, n)
		ss, _ := rand.Int(rand.Reader, n)
		if i%8 == 0 {
			check("random r,s", pub, digest, rr, ss, false)
		}
	}
	t.Logf("%d agreeing accepts, %d agreeing rejects", agreeTrue, agreeFalse)
}

// TestBP256VerifyEdgeCases covers range checks, zero u1, Q = ±G and signatures whose u1·G + u2·Q is the point
// at infinity or needs a doubling, against the generic path.
func TestBP256VerifyEdgeCases(t *testing.T) {
	n := bp256N()
	p := BrainpoolP256r1().Params().P
	nm1 := new(big.Int).Sub(n, big.NewInt(1))
	key := bp256TestKey(bp256RandScalar(t))
	pub := &key.PublicKey
	digest := sha256.Sum256([]byte("edge"))
	e := bp256HashToInt(digest[:])
	r, s, ok := bp256TestSign(key.D, bp256RandScalar(t), e)
	if !ok {
		t.Fatal("sign")
	}
	both := func(name string, pub *ecdsa.PublicKey, digest []byte, r, s *big.Int, want bool) {
		t.Helper()
		fast := bp256Verify(pub, digest, r, s)
		gen := bp256GenericVerify(pub, digest, r, s)
		if fast != want || gen != want {
			t.Errorf("%s: fast=%v generic=%v, want %v", name, fast, gen, want)
		}
	}
	fastOnly := func(name string, pub *ecdsa.PublicKey, digest []byte, r, s *big.Int, want bool) {
		t.Helper()
		if got := bp256Verify(pub, digest, r, s); got != want {
			t.Errorf("%s: fast=%v, want %v", name, got, want)
		}
	}
	d32 := func(v *big.Int) []byte {
		return new(big.Int).Mod(v, new(big.Int).Lsh(big.NewInt(1), 256)).FillBytes(make([]byte, 32))
	}

	both("valid", pub, digest[:], r, s, true)
	for _, bad := range []struct {
		name string
		v    *big.Int
	}{
		{"0", big.NewInt(0)}, {"n", n}, {"n+1", new(big.Int).Add(n, big.NewInt(1))},
		{"n+r", new(big.Int).Add(n, r)}, {"2^256-1", new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 256), big.NewInt(1))},
		{"-1", big.NewInt(-1)},
	} {
		fastOnly("r="+bad.name, pub, digest[:], bad.v, s, false)
		fastOnly("s="+bad.name, pub, digest[:], r, bad.v, false)
	}
	both("r=n-1", pub, digest[:], nm1, s, false)
	both("s=n-1", pub, digest[:], r, nm1, false)
	both("r=1,s=1", pub, digest[:], big.NewInt(1), big.NewInt(1), false)
	// s + n is the same residue but out of range: rejected although s·… would verify mod n.
	fastOnly("s+n", pub, digest[:], r, new(big.Int).Add(s, n), false)

	// u1 = 0: digest 0, and digest n (e = n ≡ 0, not reduced by hashToInt).
	r0, s0, ok := bp256TestSign(key.D, bp256RandScalar(t), big.NewInt(0))
	if !ok {
		t.Fatal("sign")
	}
	both("e=0", pub, make([]byte, 32), r0, s0, true)
	both("e=n", pub, n.FillBytes(make([]byte, 32)), r0, s0, true)
	both("e=0 empty digest", pub, nil, r0, s0, true)
	both("e=0 wrong key", &bp256TestKey(big.NewInt(7)).PublicKey, make([]byte, 32), r0, s0, false)

	// Q = G and Q = -G with e ≡ r, so u1 = u2: the interleaved loop adds identical (resp. opposite) table
	// entries of G and Q, hitting the doubling (resp. infinity) branch of the addition.
	gKey, negGKey := bp256TestKey(big.NewInt(1)), bp256TestKey(nm1)
	for range 3 {
		kk := bp256RandScalar(t)
		x, _ := BrainpoolP256r1().ScalarBaseMult(kk.Bytes())
		rr := new(big.Int).Mod(x, n)
		_, ss, ok := bp256TestSign(big.NewInt(1), kk, rr) // e = r: s = 2r/k, u1 = u2 = k/2
		if !ok {
			t.Fatal("sign")
		}
		both("Q=G e=r", &gKey.PublicKey, d32(rr), rr, ss, true)
		// Q = -G, e = r: u1·G + u2·Q = (e - r)/s·G = ∞ for any s → reject.
		both("Q=-G e=r", &negGKey.PublicKey, d32(rr), rr, bp256RandScalar(t), false)
	}

	// e ≡ -r·d: u1·G + u2·Q = s⁻¹(e + r·d)·G = ∞ for every s → must be rejected.
	for range 5 {
		rr, ss := bp256RandScalar(t), bp256RandScalar(t)
		ee := new(big.Int).Mul(rr, key.D)
		ee.Neg(ee).Mod(ee, n)
		both("infinity", pub, d32(ee), rr, ss, false)
		e2 := new(big.Int).Add(ee, n) // same residue, e ≥ n
		if e2.BitLen() <= 256 {
			both("infinity e+n", pub, d32(e2), rr, ss, false)
		}
	}

	// u1·G = u2·Q (valid): e = r·d, s = 2rd/k, so u1 = k/2 and u2·d = k/2.
	for range 3 {
		kk := bp256RandScalar(t)
		x, _ := BrainpoolP256r1().ScalarBaseMult(kk.Bytes())
		rr := new(big.Int).Mod(x, n)
		ee := new(big.Int).Mul(rr, key.D)
		ee.Mod(ee, n)
		_, ss, ok := bp256TestSign(key.D, kk, ee)
		if !ok {
			t.Fatal("sign")
		}
		both("u1G=u2Q", pub, d32(ee), rr, ss, true)
	}

	// Keys the fast path refuses outright.
	offCurve := &ecdsa.PublicKey{Curve: pub.Curve, X: pub.X, Y: new(big.Int).Add(pub.Y, big.NewInt(1))}
	fastOnly("Q off curve", offCurve, digest[:], r, s, false)
	fastOnly("Q.x+p", &ecdsa.PublicKey{Curve: pub.Curve, X: new(big.Int).Add(pub.X, p), Y: pub.Y}, digest[:], r, s, false)
	fastOnly("Q.y-p", &ecdsa.PublicKey{Curve: pub.Curve, X: pub.X, Y: new(big.Int).Sub(pub.Y, p)}, digest[:], r, s, false)
	fastOnly("nil Q.X", &ecdsa.PublicKey{Curve: pub.Curve, Y: pub.Y}, digest[:], r, s, false)
	fastOnly("nil pub", nil, digest[:], r, s, false)
	fastOnly("nil r", pub, digest[:], nil, s, false)
	// Q = (0, 0): the generic code treats it as ∞ and then accepts any (r, s) with x(u1·G) ≡ r — a forgery
	// for that (invalid) key. The fast path rejects the key.
	zero := &ecdsa.PublicKey{Curve: pub.Curve, X: big.NewInt(0), Y: big.NewInt(0)}
	kk := bp256RandScalar(t)
	x, _ := BrainpoolP256r1().ScalarBaseMult(kk.Bytes())
	rz := new(big.Int).Mod(x, n)
	sz := new(big.Int).Mul(e, new(big.Int).ModInverse(kk, n)) // u1 = e/s = k
	sz.Mod(sz, n)
	t.Logf("Q=(0,0) forged signature: generic path says %v", bp256GenericVerify(zero, digest[:], rz, sz))
	fastOnly("Q=(0,0)", zero, digest[:], rz, sz, false)
}

// TestBP256RealSignatures checks gematik's federation list JWS and the card certificates signed by
// brainpoolP256r1 CAs, both through the production entry points and the generic path.
func TestBP256RealSignatures(t *testing.T) {
	jws, err := ParseCompactJWS(mustReadFile(t, gematikPath("vzd", "samples", "federationList-TU-v1650.jws")))
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := jws.VerifyX5C(AlgBP256R1)
	if err != nil {
		t.Fatalf("federation list: %v", err)
	}
	if leaf.Curve() != "brainpoolP256r1" {
		t.Fatalf("federation list signer curve %q", leaf.Curve())
	}
	pub := leaf.PublicKey.(*ecdsa.PublicKey)
	digest := sha256.Sum256(jws.SigningInput)
	r, s := new(big.Int).SetBytes(jws.Signature[:32]), new(big.Int).SetBytes(jws.Signature[32:])
	if !bp256Verify(pub, digest[:], r, s) || !bp256GenericVerify(pub, digest[:], r, s) {
		t.Fatal("federation list: fast/generic disagree")
	}
	for _, bit := range []int{0, 100, 300, 511} {
		bad := *jws
		bad.Signature = flipBit(jws.Signature, bit)
		if _, err := bad.VerifyX5C(AlgBP256R1); err == nil {
			t.Fatalf("federation list with signature bit %d flipped verifies", bit)
		}
	}

	var cas []*Certificate
	caFiles, _ := filepath.Glob(gematikPath("pki", "ca", "*.pem"))
	for _, f := range caFiles {
		cas = append(cas, mustCert(t, f))
	}
	cardFiles, _ := filepath.Glob(gematikPath("pki", "cards", "*", "cert.pem"))
	checked := 0
	for _, f := range cardFiles {
		cert := mustCert(t, f)
		var issuer *Certificate
		for _, ca := range cas {
			if bytes.Equal(ca.RawSubject, cert.RawIssuer) {
				issuer = ca
			}
		}
		if issuer == nil || issuer.Curve() != "brainpoolP256r1" {
			continue
		}
		if err := cert.CheckSignatureFrom(issuer); err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		h := cert.SignatureAlgorithm.hash()
		hh := h.New()
		hh.Write(cert.RawTBSCertificate)
		r, s, err := decodeECDSADER(cert.Signature)
		if err != nil {
			t.Fatal(err)
		}
		if !bp256GenericVerify(issuer.PublicKey.(*ecdsa.PublicKey), hh.Sum(nil), r, s) {
			t.Errorf("%s: generic path rejects", f)
		}
		bad := *cert
		bad.RawTBSCertificate = flipBit(cert.RawTBSCertificate, 8*len(cert.RawTBSCertificate)/2)
		if bad.CheckSignatureFrom(issuer) == nil {
			t.Errorf("%s: tampered TBS verifies", f)
		}
		checked++
	}
	if checked < 10 {
		t.Fatalf("only %d card certificates signed by brainpoolP256r1 CAs found", checked)
	}
	t.Logf("%d card certificates verified", checked)
}

// bp256FuzzKeys are derived deterministically: d = 1 (Q = G), d = n-1 (Q = -G) and six hashed scalars.
var bp256FuzzKeys = sync.OnceValue(func() []*ecdsa.PrivateKey {
	n := bp256N()
	ds := []*big.Int{big.NewInt(1), new(big.Int).Sub(n, big.NewInt(1))}
	for i := range 6 {
		h := sha512.Sum512([]byte("bp256 fuzz key " + strconv.Itoa(i)))
		d := new(big.Int).SetBytes(h[:])
		d.Mod(d, new(big.Int).Sub(n, big.NewInt(1)))
		ds = append(ds, d.Add(d, big.NewInt(1)))
	}
	var keys []*ecdsa.PrivateKey
	for _, d := range ds {
		keys = append(keys, bp256TestKey(d))
	}
	return keys
})

// FuzzBP256Verify compares the fast and the generic verifier. mode%3 selects the input: 0 = r, s taken from
// the fuzz bytes as they are; 1 = a valid signature of digest made with nonce rb (must verify); 2 = that
// signature with one bit (chosen by sb) of r, s or the digest flipped.
func FuzzBP256Verify(f *testing.F) {
	f.Add(uint8(2), uint8(1), []byte("digest of the first seed........"), []byte{1, 2, 3}, []byte{0})
	f.Add(uint8(0), uint8(1), make([]byte, 32), []byte{5}, []byte{0})
	f.Add(uint8(1), uint8(1), []byte{7}, []byte{9, 9}, []byte{0})
	f.Add(uint8(3), uint8(2), bytes.Repeat([]byte{0xff}, 48), []byte{0xaa, 0xbb}, []byte{7, 1})
	f.Add(uint8(4), uint8(0), bytes.Repeat([]byte{0xff}, 32), bytes.Repeat([]byte{0xa9}, 32), bytes.Repeat([]byte{0x11}, 33))
	f.Fuzz(func(t *testing.T, keyIdx, mode uint8, digest, rb, sb []byte) {
		keys := bp256FuzzKeys()
		key := keys[int(keyIdx)%len(keys)]
		pub := &key.PublicKey
		var r, s *big.Int
		want := -1 // unknown
		switch mode % 3 {
		case 0:
			if len(rb) > 40 || len(sb) > 40 {
				return
			}
			r, s = new(big.Int).SetBytes(rb), new(big.Int).SetBytes(sb)
		default:
			var ok bool
			r, s, ok = bp256TestSign(key.D, new(big.Int).SetBytes(rb), bp256HashToInt(digest))
			if !ok {
				return
			}
			want = 1
			if mode%3 == 2 {
				bit := 0
				for _, b := range sb {
					bit = bit*256 + int(b)
					if bit > 1<<20 {
						break
					}
				}
				switch bit % 3 {
				case 0:
					r = flipBigBit(r, bit/3)
					want = 0
				case 1:
					s = flipBigBit(s, bit/3)
					want = 0
				case 2:
					if len(digest) == 0 {
						digest = []byte{0}
					}
					b := (bit / 3) % (8 * len(digest))
					digest = flipBit(digest, b)
					if b < 256 {
						want = 0
					}
				}
			}
		}
		fast := bp256Verify(pub, digest, r, s)
		gen := bp256GenericVerify(pub, digest, r, s)
		if fast != gen {
			t.Fatalf("fast=%v generic=%v key=%d digest=%x r=%x s=%x", fast, gen, keyIdx, digest, r, s)
		}
		if want >= 0 && fast != (want == 1) {
			t.Fatalf("verify=%v, want %v (mode %d)", fast, want == 1, mode)
		}
	})
}

func bp256BenchSig(b *testing.B) (*ecdsa.PublicKey, []byte, *big.Int, *big.Int) {
	key, err := ecdsa.GenerateKey(BrainpoolP256r1(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	digest := sha256.Sum256([]byte("benchmark"))
	der, err := ecdsa.SignASN1(rand.Reader, key, digest[:])
	if err != nil {
		b.Fatal(err)
	}
	r, s, err := decodeECDSADER(der)
	if err != nil {
		b.Fatal(err)
	}
	bp256Consts()
	return &key.PublicKey, digest[:], r, s
}

func BenchmarkBP256Verify(b *testing.B) {
	pub, digest, r, s := bp256BenchSig(b)
	b.ReportAllocs()
	for b.Loop() {
		if !bp256Verify(pub, digest, r, s) {
			b.Fatal("verify failed")
		}
	}
}

func BenchmarkBP256VerifyGeneric(b *testing.B) {
	pub, digest, r, s := bp256BenchSig(b)
	b.ReportAllocs()
	for b.Loop() {
		if !bp256GenericVerify(pub, digest, r, s) {
			b.Fatal("verify failed")
		}
	}
}
