package wasm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/open-policy-agent/opa/v1/ast"
)

// compileSrc compiles Rego sources (name → source) for the given entrypoints.
func compileSrc(t testing.TB, entrypoints []string, srcs map[string]string) *Policy {
	t.Helper()
	var mods []Module
	for name, src := range srcs {
		parsed, err := ast.ParseModuleWithOpts(name, src, ast.ParserOptions{RegoVersion: ast.RegoV1})
		if err != nil {
			t.Fatal(err)
		}
		mods = append(mods, Module{Name: name, Parsed: parsed, Source: src})
	}
	p, err := Compile(context.Background(), mods, entrypoints)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close(context.Background()) })
	return p
}

const testPolicy = `package t

import rego.v1

default allow := false

allow if data.domains[lower(input.domain)]

reasons contains "not_federated" if not allow

reasons contains "insured" if data.domains[lower(input.domain)].insured

# A builtin opa.wasm does not implement natively: served by the host from topdown's implementation.
digest := crypto.sha256(input.domain)

# A builtin returning a set: it must come back as a set, not an array.
common := intersection({{"a", "b", input.domain}, {"b", input.domain}})
`

func entry(t testing.TB, p *Policy, name string) int32 {
	t.Helper()
	id, ok := p.Entrypoint(name)
	if !ok {
		t.Fatalf("entrypoint %s missing", name)
	}
	return id
}

func evalJSON(t testing.TB, p *Policy, ep int32, data *Data, input string) any {
	t.Helper()
	out, err := p.Eval(context.Background(), ep, data, []byte(input))
	if err != nil {
		t.Fatal(err)
	}
	var rs []struct {
		Result any `json:"result"`
	}
	if err := json.Unmarshal(out, &rs); err != nil {
		t.Fatalf("%s: %v", out, err)
	}
	if len(rs) == 0 {
		return nil
	}
	return rs[0].Result
}

func TestEvalAgainstData(t *testing.T) {
	p := compileSrc(t, []string{"t/allow", "t/reasons", "t/digest", "t/common"}, map[string]string{"t.rego": testPolicy})
	data := p.NewData(context.Background(), []byte(`{"domains": {"a.example": {}, "k.example": {"insured": true}}}`))
	cases := []struct {
		name, entrypoint, input string
		want                    any
	}{
		{"a listed domain is allowed", "t/allow", `{"domain": "A.Example"}`, true},
		{"an unlisted domain is not", "t/allow", `{"domain": "b.example"}`, false},
		{"a missing domain is not", "t/allow", `{}`, false},
		{"reasons of an unlisted domain", "t/reasons", `{"domain": "b.example"}`, []any{"not_federated"}},
		{"reasons of an insured domain", "t/reasons", `{"domain": "k.example"}`, []any{"insured"}},
		{"a host builtin", "t/digest", `{"domain": "a"}`, "ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb"},
		{"a host builtin's set result stays a set", "t/common", `{"domain": "z"}`, []any{"b", "z"}},
		{"a host builtin with an undefined argument is undefined", "t/digest", `{}`, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := evalJSON(t, p, entry(t, p, tc.entrypoint), data, tc.input)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got)\n%s", diff)
			}
		})
	}
}

func TestNewDataReplacesTheOldInEveryInstance(t *testing.T) {
	p := compileSrc(t, []string{"t/allow"}, map[string]string{"t.rego": testPolicy})
	ep := entry(t, p, "t/allow")
	before := p.NewData(context.Background(), []byte(`{"domains": {"a.example": {}}}`))
	after := p.NewData(context.Background(), []byte(`{"domains": {"b.example": {}}}`))
	for range 3 {
		if got := evalJSON(t, p, ep, before, `{"domain": "a.example"}`); got != true {
			t.Fatalf("before: %v", got)
		}
		if got := evalJSON(t, p, ep, after, `{"domain": "a.example"}`); got != false {
			t.Fatalf("after: %v", got)
		}
	}
}

func TestBadInputIsAnError(t *testing.T) {
	p := compileSrc(t, []string{"t/allow"}, map[string]string{"t.rego": testPolicy})
	ep := entry(t, p, "t/allow")
	data := p.NewData(context.Background(), []byte(`{"domains": {}}`))
	if _, err := p.Eval(context.Background(), ep, data, []byte(`{"domain": `)); err == nil {
		t.Fatal("truncated input evaluated")
	}
	if got := evalJSON(t, p, ep, data, `{"domain": "a"}`); got != false {
		t.Fatalf("after a failure: %v", got)
	}
}

// A builtin served by the host that fails is undefined, as in topdown without strict builtin errors; the
// rule using it does not hold, and the rest of the evaluation goes on.
func TestHostBuiltinErrorIsUndefined(t *testing.T) {
	src := "package t\n\nx := time.parse_rfc3339_ns(input.s)\n\ny := \"rest\"\n"
	p := compileSrc(t, []string{"t/x", "t/y"}, map[string]string{"t.rego": src})
	data := p.NewData(context.Background(), []byte(`{}`))
	if got := evalJSON(t, p, entry(t, p, "t/x"), data, `{"s": "1985-04-12T23:20:50.52Z"}`); got != 482196050520000000.0 {
		t.Fatalf("valid time: %v", got)
	}
	if got := evalJSON(t, p, entry(t, p, "t/x"), data, `{"s": "yesterday"}`); got != nil {
		t.Fatalf("invalid time: got %v, want undefined", got)
	}
	if got := evalJSON(t, p, entry(t, p, "t/y"), data, `{"s": "yesterday"}`); got != "rest" {
		t.Fatalf("y: %v", got)
	}
}

func TestClosedPolicy(t *testing.T) {
	p := compileSrc(t, []string{"t/allow"}, map[string]string{"t.rego": testPolicy})
	data := p.NewData(context.Background(), []byte(`{}`))
	p.Close(context.Background())
	if _, err := p.Eval(context.Background(), entry(t, p, "t/allow"), data, []byte(`{}`)); !errors.Is(err, ErrClosed) {
		t.Fatalf("got %v, want ErrClosed", err)
	}
}

func TestMemoryIsBounded(t *testing.T) {
	// Doubling a string 30 times wants gigabytes; the instance hits its limit and the evaluation fails.
	src := "package t\n\nx := s if {\n\ts := concat(\"\", [input.s | some i in numbers.range(1, 200000000)])\n}\n"
	p := compileSrc(t, []string{"t/x"}, map[string]string{"t.rego": src})
	_, err := p.Eval(context.Background(), entry(t, p, "t/x"), p.NewData(context.Background(), []byte(`{}`)), []byte(`{"s": "xxxxxxxxxxxxxxxx"}`))
	if err == nil {
		t.Fatal("unbounded evaluation succeeded")
	}
}

func TestConcurrentEvaluations(t *testing.T) {
	p := compileSrc(t, []string{"t/allow"}, map[string]string{"t.rego": testPolicy})
	ep := entry(t, p, "t/allow")
	data := p.NewData(context.Background(), []byte(`{"domains": {"a.example": {}}}`))
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				domain, want := "a.example", "true"
				if (g+i)%2 == 1 {
					domain, want = fmt.Sprintf("x%d.example", i), "false"
				}
				out, err := p.Eval(context.Background(), ep, data, []byte(`{"domain":"`+domain+`"}`))
				if err != nil || string(out) != `[{"result":`+want+`}]` {
					errs <- fmt.Errorf("%s: %s, %v", domain, out, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestCompileRejectsWhatWasmCannotDo(t *testing.T) {
	src := "package t\n\nx := y if {\n\ty := 1 with input as {}\n}\n"
	parsed, err := ast.ParseModuleWithOpts("t.rego", src, ast.ParserOptions{RegoVersion: ast.RegoV1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Compile(context.Background(), []Module{{Name: "t.rego", Parsed: parsed, Source: src}}, []string{"t/nope"}); err == nil {
		t.Fatal("an entrypoint that does not exist compiled")
	}
}

func TestShimIsValid(t *testing.T) {
	for _, pages := range []uint32{0, 2, 200, 70000} {
		b := shim(pages)
		if string(b[:4]) != "\x00asm" {
			t.Fatalf("magic: %x", b[:4])
		}
	}
	// leb128 round trip of the values the shim encodes.
	for _, v := range []uint32{0, 1, 127, 128, 300, 65535, 1 << 20} {
		b := leb128(v)
		var got uint32
		for i, c := range b {
			got |= uint32(c&0x7f) << (7 * i)
		}
		if got != v {
			t.Errorf("leb128(%d) = %x", v, b)
		}
	}
}

func BenchmarkEval(b *testing.B) {
	p := compileSrc(b, []string{"t/reasons"}, map[string]string{"t.rego": testPolicy})
	ep := entry(b, p, "t/reasons")
	data := p.NewData(context.Background(), []byte(`{"domains": {"a.example": {}, "k.example": {"insured": true}}}`))
	in := []byte(`{"domain": "a.example"}`)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.Eval(ctx, ep, data, in); err != nil {
			b.Fatal(err)
		}
	}
}
