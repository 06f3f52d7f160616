package policy

import (
	"context"
	"fmt"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
)

// benchFederation is a list of the size TI-M runs with: n Pro domains, every tenth an insurance, plus ours.
func benchFederation(n int) Federation {
	f := Federation{Version: 1, Status: StatusFresh, Domains: make(map[string]Domain, n+1)}
	for i := range n {
		f.Domains[fmt.Sprintf("d%04d.example", i)] = Domain{TelematikID: fmt.Sprintf("1-%d", i), IsInsurance: i%10 == 0,
			IK: []string{fmt.Sprintf("10%07d", i)}}
	}
	f.Domains["pro.example"] = Domain{TelematikID: "1-pro"}
	return f
}

func benchEngine(b *testing.B, cacheSize int) *Engine {
	return benchEngineWith(b, cacheSize, EvaluatorWasm)
}

func benchEngineWith(b *testing.B, cacheSize int, evaluator string) *Engine {
	b.Helper()
	cfg := testConfig("pro")
	cfg.DecisionCacheSize = cacheSize
	cfg.Evaluator = evaluator
	e, err := New(cfg, nil)
	if err != nil {
		b.Fatal(err)
	}
	e.SetFederation(benchFederation(2000))
	return e
}

func federationInputs(n int) []*Input {
	ins := make([]*Input, n)
	for i := range ins {
		ins[i] = &Input{Action: ActionFederationInbound, Origin: fmt.Sprintf("d%04d.example", i), Destination: "pro.example"}
	}
	return ins
}

func benchEval(b *testing.B, e *Engine, ins []*Input, wantAllow bool) {
	b.Helper()
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	start := cpuTime()
	n := 0
	for i := 0; b.Loop(); i++ {
		d, err := e.Eval(ctx, ins[i%len(ins)])
		if err != nil || d.Allow != wantAllow {
			b.Fatalf("%+v, %v", d, err)
		}
		n++
	}
	reportCPU(b, start, n)
}

// cpuTime is the process's user+system CPU time. On a shared machine wall time per operation includes time
// spent waiting for a core; CPU time per operation (reported as cpu-ns/op, GC included) does not.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func reportCPU(b *testing.B, start time.Duration, n int) {
	if n > 0 {
		b.ReportMetric(float64(cpuTime()-start)/float64(n), "cpu-ns/op")
	}
}

// BenchmarkEvalFederationUncached: the transport check with a 2,000-domain list, a different origin every
// time and no cache, on the wasm build (the default evaluator). Target: ≤ 30 µs.
func BenchmarkEvalFederationUncached(b *testing.B) {
	benchEval(b, benchEngine(b, -1), federationInputs(2000), true)
}

// BenchmarkEvalFederationUncachedParallel: the same on every core at once, as the proxy's listeners
// evaluate; shared state on Eval's path shows here and not above.
func BenchmarkEvalFederationUncachedParallel(b *testing.B) {
	e := benchEngine(b, -1)
	ins := federationInputs(2000)
	ctx := context.Background()
	var next atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	start := cpuTime()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			d, err := e.Eval(ctx, ins[next.Add(1)%int64(len(ins))])
			if err != nil || !d.Allow {
				b.Errorf("%+v, %v", d, err)
				return
			}
		}
	})
	reportCPU(b, start, b.N)
}

// BenchmarkEvalFederationCached: the same check answered from the decision cache. Target: ≤ 1 µs.
func BenchmarkEvalFederationCached(b *testing.B) {
	e := benchEngine(b, 4096)
	ins := federationInputs(1000)
	for _, in := range ins {
		if _, err := e.Eval(context.Background(), in); err != nil {
			b.Fatal(err)
		}
	}
	benchEval(b, e, ins, true)
}

func inviteInput() *Input {
	return &Input{Action: ActionFederationInvite, Origin: "d0001.example", Destination: "pro.example",
		Actor:  &User{UserID: "@bob:d0001.example", Domain: "d0001.example"},
		Target: &User{UserID: "@alice:pro.example", Domain: "pro.example", Local: true},
		PermissionConfig: &PermissionConfig{DefaultSetting: PermissionAllowAll,
			UserExceptions:   map[string]struct{}{"@x:d0002.example": {}, "@y:d0003.example": {}},
			ServerExceptions: map[string]struct{}{"d0004.example": {}}, GroupExceptions: []string{"isInsuredPerson"}}}
}

func createRoomInput() *Input {
	return &Input{Action: ActionRoomCreate, Origin: "pro.example", Actor: &User{UserID: "@alice:pro.example", Domain: "pro.example", Local: true},
		Target: &User{UserID: "@bob:d0001.example", Domain: "d0001.example"},
		Room:   &Room{Preset: "private_chat", Encrypted: true, InviteCount: 1}}
}

// BenchmarkEvalInvite: a federation invite with the invitee's permission config, uncached and cached.
func BenchmarkEvalInvite(b *testing.B) {
	b.Run("uncached", func(b *testing.B) { benchEval(b, benchEngine(b, -1), []*Input{inviteInput()}, true) })
	b.Run("cached", func(b *testing.B) { benchEval(b, benchEngine(b, 4096), []*Input{inviteInput()}, true) })
}

// BenchmarkEvalCreateRoom: createRoom with one remote invitee and two obligations, uncached.
func BenchmarkEvalCreateRoom(b *testing.B) {
	benchEval(b, benchEngine(b, -1), []*Input{createRoomInput()}, true)
}

// BenchmarkEvalTopdown: the uncached decisions above on OPA's interpreter instead of the wasm build (the
// fallback for a module set the wasm target cannot compile, and what every decision cost before).
func BenchmarkEvalTopdown(b *testing.B) {
	b.Run("federation", func(b *testing.B) {
		benchEval(b, benchEngineWith(b, -1, EvaluatorTopdown), federationInputs(2000), true)
	})
	b.Run("invite", func(b *testing.B) {
		benchEval(b, benchEngineWith(b, -1, EvaluatorTopdown), []*Input{inviteInput()}, true)
	})
	b.Run("createRoom", func(b *testing.B) {
		benchEval(b, benchEngineWith(b, -1, EvaluatorTopdown), []*Input{createRoomInput()}, true)
	})
}

// BenchmarkInputConversion compares the ways of handing Input to OPA: the hand-built AST object (what topdown
// gets with rego.EvalParsedInput), the JSON the wasm build parses itself, and ast.InterfaceToValue, which
// rego.EvalInput applies to a struct (a JSON round trip).
func BenchmarkInputConversion(b *testing.B) {
	for _, in := range []*Input{federationInputs(1)[0], inviteInput()} {
		b.Run(string(in.Action)+"/inputValue", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = inputValue(in)
			}
		})
		b.Run(string(in.Action)+"/appendInputJSON", func(b *testing.B) {
			b.ReportAllocs()
			var buf []byte
			for b.Loop() {
				buf = appendInputJSON(buf[:0], in)
			}
		})
		b.Run(string(in.Action)+"/InterfaceToValue", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := ast.InterfaceToValue(in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkSetFederation compares the two ways of replacing a 2,000-domain list: a new store and a newly
// prepared query swapped in atomically (what SetFederation does; Eval never waits), and writing into the
// live store in a transaction (Eval's read transactions would contend with the writer).
func BenchmarkSetFederation(b *testing.B) {
	f := benchFederation(2000)
	b.Run("prepare-and-swap", func(b *testing.B) {
		e := benchEngine(b, 4096)
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			f.Version = int64(i)
			e.SetFederation(f)
		}
	})
	b.Run("store-write", func(b *testing.B) {
		store := inmem.NewWithOpts(inmem.OptReturnASTValuesOnRead(true))
		ctx := context.Background()
		path := storage.MustParsePath("/tim")
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			f.Version = int64(i)
			v := federationValue(f)
			err := storage.Txn(ctx, store, storage.WriteParams, func(txn storage.Transaction) error {
				return store.Write(ctx, txn, storage.AddOp, path, map[string]any{"federation": v})
			})
			if err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkQueryShape compares evaluating data.tim.decision as one document with reading its three rules
// (decisionQuery) and with reading reasons alone (reasonsQuery), for an inbound federation check.
func BenchmarkQueryShape(b *testing.B) {
	e := benchEngine(b, -1)
	e.mu.Lock()
	compiler := e.compiler
	e.mu.Unlock()
	in := inputValue(federationInputs(1)[0])
	for _, q := range []string{"data.tim.decision", decisionQuery, reasonsQuery} {
		root := ast.NewObject(ast.Item(ast.StringTerm("tim"), ast.ObjectTerm(
			ast.Item(ast.StringTerm("settings"), ast.NewTerm(e.settings)),
			ast.Item(ast.StringTerm("federation"), ast.NewTerm(e.fedValue)),
		)))
		pq, err := rego.New(rego.Query(q), rego.Compiler(compiler), rego.Store(inmem.NewFromASTObject(root))).
			PrepareForEval(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		name := map[string]string{"data.tim.decision": "document", decisionQuery: "rules", reasonsQuery: "reasons-only"}[q]
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			start, n := cpuTime(), 0
			for b.Loop() {
				if _, err := pq.Eval(context.Background(), rego.EvalParsedInput(in)); err != nil {
					b.Fatal(err)
				}
				n++
			}
			reportCPU(b, start, n)
		})
	}
}
