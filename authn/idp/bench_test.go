package idp

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// detReader is a deterministic byte stream (SHA-256 in counter mode). With it, Begin and Complete draw the
// same state, nonce, verifier and token_key on every iteration, so the IDP's answer can be computed once.
type detReader struct {
	ctr uint64
	buf []byte
}

func (r *detReader) Read(p []byte) (int, error) {
	for n := 0; n < len(p); {
		if len(r.buf) == 0 {
			var c [8]byte
			binary.BigEndian.PutUint64(c[:], r.ctr)
			r.ctr++
			sum := sha256.Sum256(c[:])
			r.buf = sum[:]
		}
		k := copy(p[n:], r.buf)
		r.buf, n = r.buf[k:], n+k
	}
	return len(p), nil
}

// BenchmarkCompleteCPU measures the RP's own work per login: Begin (randomness, PKCE), Complete (key_verifier
// ECDH-ES on BP-256, dir JWE decryption of both tokens, BP256R1 verification, claims). The IDP's answers come
// from memory: discovery and keys through its handler in-process, the token response precomputed.
func BenchmarkCompleteCPU(b *testing.B) {
	f := newFakeIDP(b, newTestClock(time.Now()))
	var tokenBody []byte
	hc := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if r.Method == http.MethodPost {
			return respond(200, "application/json", tokenBody), nil
		}
		rec := httptest.NewRecorder()
		f.handler.ServeHTTP(rec, r)
		return rec.Result(), nil
	})}
	rp := newTestRP(b, f, func(c *Config) { c.HTTPClient = hc })
	ctx := context.Background()

	rp.rand = &detReader{}
	_, state, err := rp.Begin(ctx, BeginOptions{})
	if err != nil {
		b.Fatal(err)
	}
	p, _ := rp.pending.take(state)
	tokenKey := make([]byte, 32)
	rp.rand.Read(tokenKey)
	if tokenBody, err = f.tokenResponse(testClientID, p.nonce, tokenKey); err != nil {
		b.Fatal(err)
	}

	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		rp.rand = &detReader{}
		if _, _, err := rp.Begin(ctx, BeginOptions{}); err != nil {
			b.Fatal(err)
		}
		if _, err := rp.Complete(ctx, state, fmt.Sprintf("code-%d", i)); err != nil {
			b.Fatal(err)
		}
		rp.jtis.reset() // one precomputed token: forget its jti
		rp.usedCodes.reset()
	}
}

// BenchmarkVerifyIDToken is the headless path: BP256R1 verification and claims, no cache.
func BenchmarkVerifyIDToken(b *testing.B) {
	rp := newOfflineRP(b)
	tok := offlineIDToken(b, nil)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := rp.VerifyIDToken(ctx, bytes.Clone(tok), ""); err != nil {
			b.Fatal(err)
		}
		rp.jtis.reset()
	}
}
