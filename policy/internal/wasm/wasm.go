// Package wasm evaluates Rego that OPA's own compiler has translated to WebAssembly (the target of
// `opa build -t wasm`), on the pure-Go wazero runtime.
//
// Why: OPA's tree-walking evaluator (topdown) spends most of a decision on generic machinery — bindings,
// unification, per-evaluation caches — whatever the rules do; an invite took about 200 µs there. The planner
// behind the wasm target compiles the same modules into straight-line code over OPA's own value library
// (opa.wasm, shipped inside the OPA module), which decides the same invite in a fraction of that. The Rego
// stays the single source of the rules; policy.Engine keeps topdown for module sets the wasm target cannot
// express and checks that the two agree (policy's differential tests).
//
// The ABI is OPA's documented policy ABI (version 1.2+): the module imports env.memory and the host
// functions opa_abort, opa_println and opa_builtin0…4, and exports opa_eval, opa_malloc, opa_json_parse,
// opa_json_dump and the heap pointer accessors. Builtins that opa.wasm does not implement natively are called
// back into Go and served by OPA's topdown implementation of the same builtin, so both evaluators share one
// definition of every builtin.
package wasm

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/bundle"
	"github.com/open-policy-agent/opa/v1/compile"
	"github.com/open-policy-agent/opa/v1/topdown"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

// maxMemoryPages bounds every instance's linear memory (64 KiB pages): 256 MiB, far above what a decision
// over a federation list of tens of thousands of domains needs, and a hard stop for a runaway rule.
const maxMemoryPages = 4096

// ErrClosed is returned by Eval on a closed Policy.
var ErrClosed = errors.New("wasm: policy closed")

// Module is one Rego source file.
type Module struct {
	Name   string
	Parsed *ast.Module
	Source string
}

// Policy is a module set compiled to WebAssembly and to machine code. It is immutable and safe for
// concurrent use; evaluations run on instances it pools (one instance serves one evaluation at a time).
type Policy struct {
	wasm        []byte
	cache       wazero.CompilationCache
	entrypoints map[string]int32

	// free holds idle instances. Instances are created on demand, at most cap(free) of them; a caller
	// finding none idle and the limit reached waits for one.
	free    chan *instance
	created atomic.Int32
	closed  atomic.Bool
	// dataVersions numbers the data documents of this policy; instances compare versions to know whether
	// theirs is current.
	dataVersions atomic.Uint64
	mu           sync.Mutex
	all          []*instance
}

// Compile translates modules to WebAssembly with OPA's compiler (planner and wasm back end) for the given
// entrypoints ("tim/decision", …), then to machine code with wazero. It fails when a module uses something
// the wasm target does not support; the caller then keeps evaluating with topdown.
func Compile(ctx context.Context, modules []Module, entrypoints []string) (*Policy, error) {
	b := &bundle.Bundle{Data: map[string]any{}}
	for _, m := range modules {
		b.Modules = append(b.Modules, bundle.ModuleFile{Path: m.Name, URL: m.Name, Raw: []byte(m.Source), Parsed: m.Parsed})
	}
	c := compile.New().WithTarget(compile.TargetWasm).WithEntrypoints(entrypoints...).WithBundle(b).
		WithRegoVersion(ast.RegoV1)
	if err := c.Build(ctx); err != nil {
		return nil, fmt.Errorf("wasm: compile: %w", err)
	}
	out := c.Bundle()
	if len(out.WasmModules) != 1 {
		return nil, fmt.Errorf("wasm: compile produced %d modules, want 1", len(out.WasmModules))
	}
	p := &Policy{wasm: out.WasmModules[0].Raw, cache: wazero.NewCompilationCache()}
	// One instance per core, created now: creating one takes about 10 ms, which a request should not wait
	// for. The first also proves the module runs and lists its entrypoints.
	n := max(runtime.GOMAXPROCS(0), 1)
	p.free = make(chan *instance, n)
	for i := range n {
		inst, err := p.newInstance(ctx)
		if err != nil {
			p.Close(ctx)
			return nil, err
		}
		p.created.Add(1)
		if i == 0 {
			if p.entrypoints, err = inst.entrypoints(ctx); err != nil {
				p.Close(ctx)
				return nil, err
			}
		}
		p.put(inst)
	}
	return p, nil
}

// Entrypoint returns the id of a compiled entrypoint, e.g. "tim/decision/reasons".
func (p *Policy) Entrypoint(name string) (int32, bool) {
	id, ok := p.entrypoints[name]
	return id, ok
}

// Close releases every instance and the machine code. Evaluations still running on it fail.
func (p *Policy) Close(ctx context.Context) {
	if p.closed.Swap(true) {
		return
	}
	p.mu.Lock()
	all := p.all
	p.all = nil
	p.mu.Unlock()
	for _, inst := range all {
		inst.close(ctx)
	}
	p.cache.Close(ctx)
}

func (p *Policy) newRuntime(ctx context.Context) wazero.Runtime {
	cfg := wazero.NewRuntimeConfig().WithCompilationCache(p.cache).WithMemoryLimitPages(maxMemoryPages).
		WithCloseOnContextDone(false)
	return wazero.NewRuntimeWithConfig(ctx, cfg)
}

// Data is a data document (the whole of Rego's `data`) prepared for evaluation. Instances load it the
// first time they evaluate with it; it is immutable.
type Data struct {
	json    []byte
	version uint64
}

// NewData wraps the JSON encoding of a data document and loads it into the idle instances, so that the
// first evaluations with it do not parse it (about 15 ns per byte). Each call yields a distinct version. An
// instance that fails to load it here tries again when it evaluates with it, and reports the error then.
func (p *Policy) NewData(ctx context.Context, doc []byte) *Data {
	d := &Data{json: bytes.Clone(doc), version: p.dataVersions.Add(1)}
	for range cap(p.free) {
		var inst *instance
		select {
		case inst = <-p.free:
		default:
			return d
		}
		if err := inst.loadData(ctx, d); err != nil {
			inst.close(ctx)
			p.forget(inst)
			continue
		}
		p.put(inst)
	}
	return d
}

// Eval evaluates entrypoint with input (valid JSON) against data and returns OPA's result set as JSON:
// `[{"result": …}]`, or `[]` when the entrypoint is undefined. The returned slice belongs to the caller.
func (p *Policy) Eval(ctx context.Context, entrypoint int32, data *Data, input []byte) ([]byte, error) {
	// opa_eval takes input it cannot parse for an undefined input and evaluates regardless; a caller's
	// encoding bug must not turn into a decision on nothing.
	if !json.Valid(input) {
		return nil, errors.New("wasm: input is not valid JSON")
	}
	return p.EvalValidJSON(ctx, entrypoint, data, input)
}

// EvalValidJSON is Eval for a caller whose input is valid JSON by construction (policy's appendInputJSON,
// which its tests hold to json.Marshal's output): checking it again costs about 7 ns per byte, 3 µs of an
// invite decision. Input that is not valid JSON evaluates as an undefined input.
func (p *Policy) EvalValidJSON(ctx context.Context, entrypoint int32, data *Data, input []byte) ([]byte, error) {
	inst, err := p.get(ctx)
	if err != nil {
		return nil, err
	}
	out, err := inst.eval(ctx, entrypoint, data, input)
	if err != nil && p.closed.Load() {
		// Closed under this evaluation: the caller can decide elsewhere, as with any closed policy.
		return nil, fmt.Errorf("%w: %w", ErrClosed, err)
	}
	if err != nil {
		// An aborted evaluation can leave the instance's heap or globals in any state; never reuse it.
		inst.close(ctx)
		p.forget(inst)
		return nil, err
	}
	p.put(inst)
	return out, nil
}

func (p *Policy) get(ctx context.Context) (*instance, error) {
	if p.closed.Load() {
		return nil, ErrClosed
	}
	select {
	case inst := <-p.free:
		return inst, nil
	default:
	}
	if p.created.Add(1) <= int32(cap(p.free)) {
		// The instance outlives this request: its set-up must not be cut short by the request's context.
		inst, err := p.newInstance(context.WithoutCancel(ctx))
		if err != nil {
			p.created.Add(-1)
			return nil, err
		}
		return inst, nil
	}
	p.created.Add(-1)
	select {
	case inst := <-p.free:
		return inst, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("wasm: waiting for an instance: %w", ctx.Err())
	}
}

func (p *Policy) put(inst *instance) {
	select {
	case p.free <- inst:
	default:
		// Cannot happen: at most cap(free) instances exist. Dropping one is safe either way.
		inst.close(context.Background())
		p.forget(inst)
	}
}

func (p *Policy) forget(inst *instance) {
	p.created.Add(-1)
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, x := range p.all {
		if x == inst {
			p.all = append(p.all[:i], p.all[i+1:]...)
			return
		}
	}
}

// instance is one runtime holding the memory module ("env", see shim), the host functions and one
// instance of the policy. A runtime of its own per instance is what lets each have its own env.memory:
// the policy imports it by module name, and names are unique within a runtime. The machine code is shared
// through the compilation cache.
type instance struct {
	rt     wazero.Runtime
	mod    api.Module
	mem    api.Memory
	fns    exports
	stack  []uint64
	heap   uint32 // first free byte above the module's static data (and the loaded data document)
	base   uint32 // heap pointer right after instantiation
	dataAt uint32 // address of the loaded data document's value
	dataV  uint64 // version of the loaded data document, 0 = none

	// builtinErr records the first failure of the host side of a builtin call during the current
	// evaluation; the evaluation then fails as a whole.
	builtinErr error
	builtins   map[int32]string
}

type exports struct {
	eval, malloc, jsonParse, jsonDump, valueParse, valueDump, heapGet, heapSet, entrypoints, builtins api.Function
}

func (p *Policy) newInstance(ctx context.Context) (*instance, error) {
	inst := &instance{rt: p.newRuntime(ctx), stack: make([]uint64, 8)}
	fail := func(err error) (*instance, error) {
		inst.rt.Close(ctx)
		return nil, fmt.Errorf("wasm: instantiate: %w", err)
	}
	host := inst.rt.NewHostModuleBuilder("host")
	host.NewFunctionBuilder().WithFunc(inst.abort).Export("opa_abort")
	host.NewFunctionBuilder().WithFunc(func(context.Context, uint32) {}).Export("opa_println")
	host.NewFunctionBuilder().WithFunc(func(ctx context.Context, id, _ uint32) uint32 {
		return inst.builtin(ctx, id)
	}).Export("opa_builtin0")
	host.NewFunctionBuilder().WithFunc(func(ctx context.Context, id, _, a uint32) uint32 {
		return inst.builtin(ctx, id, a)
	}).Export("opa_builtin1")
	host.NewFunctionBuilder().WithFunc(func(ctx context.Context, id, _, a, b uint32) uint32 {
		return inst.builtin(ctx, id, a, b)
	}).Export("opa_builtin2")
	host.NewFunctionBuilder().WithFunc(func(ctx context.Context, id, _, a, b, c uint32) uint32 {
		return inst.builtin(ctx, id, a, b, c)
	}).Export("opa_builtin3")
	host.NewFunctionBuilder().WithFunc(func(ctx context.Context, id, _, a, b, c, d uint32) uint32 {
		return inst.builtin(ctx, id, a, b, c, d)
	}).Export("opa_builtin4")
	if _, err := host.Instantiate(ctx); err != nil {
		return fail(err)
	}
	// A compiled module can be instantiated only in the runtime that compiled it; the compilation cache
	// makes compiling it again in each instance's runtime a lookup of the machine code.
	compiled, err := inst.rt.CompileModule(ctx, p.wasm)
	if err != nil {
		return fail(err)
	}
	var minPages uint32
	for _, mem := range compiled.ImportedMemories() {
		minPages = mem.Min()
	}
	env, err := inst.rt.InstantiateWithConfig(ctx, shim(minPages), wazero.NewModuleConfig().WithName("env"))
	if err != nil {
		return fail(err)
	}
	inst.mem = env.ExportedMemory("memory")
	inst.mod, err = inst.rt.InstantiateModule(ctx, compiled, wazero.NewModuleConfig().WithName("policy").
		WithStartFunctions("_initialize"))
	if err != nil {
		return fail(err)
	}
	for name, fn := range map[string]*api.Function{
		"opa_eval": &inst.fns.eval, "opa_malloc": &inst.fns.malloc, "opa_json_parse": &inst.fns.jsonParse,
		"opa_json_dump": &inst.fns.jsonDump, "opa_heap_ptr_get": &inst.fns.heapGet,
		"opa_heap_ptr_set": &inst.fns.heapSet, "opa_value_parse": &inst.fns.valueParse, "opa_value_dump": &inst.fns.valueDump, "entrypoints": &inst.fns.entrypoints, "builtins": &inst.fns.builtins,
	} {
		if *fn = inst.mod.ExportedFunction(name); *fn == nil {
			return fail(fmt.Errorf("module does not export %s (OPA wasm ABI 1.2 or later needed)", name))
		}
	}
	if inst.base, err = inst.call32(ctx, inst.fns.heapGet); err != nil {
		return fail(err)
	}
	inst.heap = inst.base
	if inst.builtins, err = inst.builtinIDs(ctx); err != nil {
		return fail(err)
	}
	p.mu.Lock()
	p.all = append(p.all, inst)
	p.mu.Unlock()
	return inst, nil
}

func (inst *instance) close(ctx context.Context) { inst.rt.Close(ctx) }

// call32 calls fn with 32-bit arguments and returns its 32-bit result, without allocating.
func (inst *instance) call32(ctx context.Context, fn api.Function, args ...uint32) (uint32, error) {
	for i, a := range args {
		inst.stack[i] = uint64(a)
	}
	if err := fn.CallWithStack(ctx, inst.stack); err != nil {
		return 0, err
	}
	return uint32(inst.stack[0]), nil
}

// eval runs one evaluation. The data document is parsed into the instance's memory once per version; the
// input is written above it and everything the evaluation allocates is dropped by starting the next one at
// the same heap pointer.
func (inst *instance) eval(ctx context.Context, entrypoint int32, data *Data, input []byte) ([]byte, error) {
	if inst.dataV != data.version {
		if err := inst.loadData(ctx, data); err != nil {
			return nil, err
		}
	}
	inputAt := inst.heap
	if err := inst.ensure(inputAt + uint32(len(input))); err != nil {
		return nil, err
	}
	inst.mem.Write(inputAt, input)
	inst.builtinErr = nil
	res, err := inst.call32(ctx, inst.fns.eval, 0, uint32(entrypoint), inst.dataAt, inputAt, uint32(len(input)),
		inputAt+uint32(len(input)), 0)
	if err != nil {
		return nil, fmt.Errorf("wasm: eval: %w", err)
	}
	if inst.builtinErr != nil {
		return nil, inst.builtinErr
	}
	out, err := inst.cstring(res)
	if err != nil {
		return nil, err
	}
	return bytes.Clone(out), nil
}

func (inst *instance) loadData(ctx context.Context, data *Data) error {
	inst.dataV = 0
	if _, err := inst.call32(ctx, inst.fns.heapSet, inst.base); err != nil {
		return fmt.Errorf("wasm: data: %w", err)
	}
	at, err := inst.writeJSON(ctx, data.json)
	if err != nil {
		return fmt.Errorf("wasm: data: %w", err)
	}
	heap, err := inst.call32(ctx, inst.fns.heapGet)
	if err != nil {
		return fmt.Errorf("wasm: data: %w", err)
	}
	inst.dataAt, inst.heap, inst.dataV = at, heap, data.version
	return nil
}

// writeJSON copies doc into the module's heap and parses it into a value; it returns the value's address.
func (inst *instance) writeJSON(ctx context.Context, doc []byte) (uint32, error) {
	at, err := inst.call32(ctx, inst.fns.malloc, uint32(len(doc)))
	if err != nil {
		return 0, err
	}
	if !inst.mem.Write(at, doc) {
		return 0, errors.New("malloc returned memory out of range")
	}
	v, err := inst.call32(ctx, inst.fns.jsonParse, at, uint32(len(doc)))
	if err != nil {
		return 0, err
	}
	if v == 0 {
		return 0, errors.New("not valid JSON")
	}
	return v, nil
}

// ensure grows the memory so that addresses below end are valid.
func (inst *instance) ensure(end uint32) error {
	if size := inst.mem.Size(); end > size {
		pages := (end - size + 65535) / 65536
		if _, ok := inst.mem.Grow(pages); !ok {
			return fmt.Errorf("wasm: memory limit of %d MiB reached", maxMemoryPages/16)
		}
	}
	return nil
}

func (inst *instance) cstring(at uint32) ([]byte, error) {
	size := inst.mem.Size()
	if at == 0 || at >= size {
		return nil, fmt.Errorf("wasm: result address %d out of range", at)
	}
	b, _ := inst.mem.Read(at, size-at)
	n := bytes.IndexByte(b, 0)
	if n < 0 {
		return nil, errors.New("wasm: result string not terminated")
	}
	return b[:n], nil
}

// dumpJSON serialises the value at addr with the module's own encoder.
func (inst *instance) dumpJSON(ctx context.Context, addr uint32) ([]byte, error) {
	s, err := inst.call32(ctx, inst.fns.jsonDump, addr)
	if err != nil {
		return nil, err
	}
	return inst.cstring(s)
}

func (inst *instance) entrypoints(ctx context.Context) (map[string]int32, error) {
	ids, err := inst.idMap(ctx, inst.fns.entrypoints)
	if err != nil {
		return nil, fmt.Errorf("wasm: entrypoints: %w", err)
	}
	return ids, nil
}

func (inst *instance) builtinIDs(ctx context.Context) (map[int32]string, error) {
	ids, err := inst.idMap(ctx, inst.fns.builtins)
	if err != nil {
		return nil, fmt.Errorf("wasm: builtins: %w", err)
	}
	out := make(map[int32]string, len(ids))
	for name, id := range ids {
		if topdown.GetBuiltin(name) == nil {
			return nil, fmt.Errorf("wasm: builtin %s has no implementation", name)
		}
		out[id] = name
	}
	return out, nil
}

func (inst *instance) idMap(ctx context.Context, fn api.Function) (map[string]int32, error) {
	v, err := inst.call32(ctx, fn)
	if err != nil {
		return nil, err
	}
	raw, err := inst.dumpJSON(ctx, v)
	if err != nil {
		return nil, err
	}
	var ids map[string]int32
	if err := json.Unmarshal(raw, &ids); err != nil {
		return nil, err
	}
	return ids, nil
}

// abort is opa_abort: the module hit an internal error (out of memory, a type mismatch in its runtime).
// Panicking unwinds the module; wazero turns the panic into the error that Eval returns.
func (inst *instance) abort(_ context.Context, addr uint32) {
	msg, err := inst.cstring(addr)
	if err != nil {
		panic("opa_abort")
	}
	panic("opa_abort: " + string(msg))
}

// builtin serves opa_builtinN with OPA's topdown implementation of the builtin. Arguments and the result
// travel in Rego's value syntax (opa_value_dump / opa_value_parse), not JSON, so that sets stay sets. An
// undefined result or an error of the builtin makes the call undefined (address 0), as topdown does without
// strict builtin errors and as opa.wasm's own builtins do; a failure of the host side itself (cancelled
// context, values it cannot carry across) fails the whole evaluation.
func (inst *instance) builtin(ctx context.Context, id uint32, args ...uint32) uint32 {
	name := inst.builtins[int32(id)]
	fail := func(err error) uint32 {
		if inst.builtinErr == nil {
			inst.builtinErr = fmt.Errorf("wasm: builtin %s: %w", name, err)
		}
		return 0
	}
	fn := topdown.GetBuiltin(name)
	if fn == nil {
		return fail(errors.New("unknown builtin"))
	}
	terms := make([]*ast.Term, len(args))
	for i, a := range args {
		s, err := inst.call32(ctx, inst.fns.valueDump, a)
		if err != nil {
			return fail(err)
		}
		raw, err := inst.cstring(s)
		if err != nil {
			return fail(err)
		}
		t, err := ast.ParseTerm(string(raw))
		if err != nil {
			return fail(err)
		}
		terms[i] = t
	}
	bctx := topdown.BuiltinContext{
		// ctx is the evaluation's: wazero hands host functions the context of the call into the module.
		Context: ctx, Seed: rand.Reader, Time: ast.NumberTerm(json.Number(fmt.Sprint(time.Now().UnixNano()))),
		Location: &ast.Location{},
	}
	if err := ctx.Err(); err != nil {
		return fail(err)
	}
	var result *ast.Term
	if err := fn(bctx, terms, func(t *ast.Term) error { result = t; return nil }); err != nil {
		return 0
	}
	if result == nil {
		return 0
	}
	raw := result.String()
	at, err := inst.call32(ctx, inst.fns.malloc, uint32(len(raw)))
	if err != nil {
		return fail(err)
	}
	if !inst.mem.WriteString(at, raw) {
		return fail(errors.New("malloc returned memory out of range"))
	}
	v, err := inst.call32(ctx, inst.fns.valueParse, at, uint32(len(raw)))
	if err != nil || v == 0 {
		return fail(fmt.Errorf("result %.80s not accepted: %v", raw, err))
	}
	return v
}
