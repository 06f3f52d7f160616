package matrixopenid

import (
	"context"
	"testing"
)

// BenchmarkValidateCached measures a validation answered from the cache (target ≤ 50 µs).
func BenchmarkValidateCached(b *testing.B) {
	token := "syt_YWxpY2U_aBcDeFgHiJkLmNoPqRsT_0a1b2c"
	hs := newHomeserver(b, false, map[string]string{token: "@alice:hs1.test"})
	v, err := NewValidator(Config{
		Federated: federatedSet("hs1.test"),
		Resolve:   func(context.Context, string) (string, error) { return hs.srv.URL, nil },
	})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if _, err := v.Validate(ctx, token, "hs1.test", "@alice:hs1.test"); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := v.Validate(ctx, token, "hs1.test", "@alice:hs1.test"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.StopTimer()
	if n := hs.calls.Load(); n != 1 {
		b.Fatalf("userinfo calls = %d, want 1", n)
	}
}
