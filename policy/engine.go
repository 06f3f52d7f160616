package policy

import (
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/metrics"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage/inmem"

	"github.com/timstack/timstack/policy/internal/wasm"
)

//go:embed rego/*.rego
var regoFS embed.FS

// decisionQuery reads the one entry point, data.tim.decision (house style §6), rule by rule: evaluating the
// package as a whole document costs about a third more (BenchmarkQueryShape) for the same three values.
const decisionQuery = "allow := data.tim.decision.allow; reasons := data.tim.decision.reasons; " +
	"obligations := data.tim.decision.obligations"

// reasonsQuery is decisionQuery for every action without obligations (reasonsOnly), the federation transport
// checks first of all: decision.rego's allow is "no reasons", so reading reasons alone gives the same decision
// for less (BenchmarkQueryShape). TestReasonsQueryAgrees holds the two to the same answer.
const reasonsQuery = "reasons := data.tim.decision.reasons"

// The wasm entrypoints matching decisionQuery and reasonsQuery: the decision as one value, and its reasons.
const (
	wasmDecisionEntrypoint = "tim/decision/result"
	wasmReasonsEntrypoint  = "tim/decision/reasons"
)

// Federation list statuses. Anything but StatusFresh blocks every action that involves another domain.
const (
	StatusFresh       = "fresh"
	StatusStale       = "stale"
	StatusUnavailable = "unavailable"
)

// Federation is the verified federation list as the policy sees it.
type Federation struct {
	// Version is the list's version; it is part of the policy revision.
	Version int64
	// Status is StatusFresh, StatusStale or StatusUnavailable.
	Status string
	// Domains maps a domain to its entry. Keys are lower-cased by SetFederation.
	Domains map[string]Domain
}

// Domain is one federation list entry.
type Domain struct {
	TelematikID string   `json:"telematikID"`
	IsInsurance bool     `json:"isInsurance"`
	IK          []string `json:"ik"`
}

// Engine evaluates the embedded Rego modules plus the operator's modules against an Input. Eval never waits
// for a reload: everything it needs sits in an immutable state behind an atomic pointer, and SetFederation and
// operator reloads build a new state beside the old one (BenchmarkSetFederation: a new store and prepared
// query cost about as much as writing into the live store, which would block readers) and swap it in. The only
// lock on Eval's path is the decision cache's, held for a map access. An Engine is safe for concurrent use.
type Engine struct {
	cfg      Config
	log      *slog.Logger
	settings ast.Value
	embedded []moduleSource

	state atomic.Pointer[state]
	// inputBuffers lends *[]byte buffers for the wasm evaluator's JSON input.
	inputBuffers sync.Pool
	// retireAfter is defaultRetireAfter; tests shorten it to close replaced policies under running
	// evaluations.
	retireAfter time.Duration

	// mu serialises the builders (SetFederation, operator reloads) and guards the fields below.
	mu          sync.Mutex
	compiler    *ast.Compiler // last good compiled set, nil when there is none
	wasm        *wasm.Policy  // the same set compiled to wasm; nil when Config.Evaluator is topdown or it failed
	modulesHash string
	fed         Federation
	fedValue    ast.Value
	opLoaded    []string
	opErr       error
	opAttempt   string // fingerprint of the operator folder last tried, good or bad
}

// state is everything one evaluation needs. It is never modified after it is published.
type state struct {
	query rego.PreparedEvalQuery
	// reasons evaluates reasonsQuery; it serves every action without obligations (reasonsOnly).
	reasons rego.PreparedEvalQuery
	ok      bool // false: no valid module set, every decision is a deny with policy_error
	// wasm, when set, evaluates instead of query and transport (same modules, same data); the prepared
	// queries stay as the fallback for a wasm policy closed under a long-running evaluation.
	wasm                      *wasm.Policy
	wasmData                  *wasm.Data
	wasmDecision, wasmReasons int32
	// operators is true when operator modules are part of the set.
	operators bool
	revision  string
	status    string
	cache     *decisionCache
}

type moduleSource struct {
	name string
	src  string
}

// New prepares the decision query over the embedded modules and the operator modules in cfg.OperatorDir.
// cfg must have passed Validate (after Defaults). The federation list starts out unavailable until
// SetFederation is called. If the operator modules cannot be loaded, New still succeeds: the error is
// logged and reported by OperatorStatus, and every Eval denies with policy_error until a reload succeeds.
func New(cfg Config, log *slog.Logger) (*Engine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	embedded, err := embeddedModules()
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	settings, err := ast.InterfaceToValue(map[string]any{
		"variant":               cfg.Variant,
		"server_name":           cfg.ServerName,
		"default_permission":    cfg.DefaultPermission,
		"allowed_room_versions": cfg.AllowedRoomVersions,
		"default_room_version":  cfg.DefaultRoomVersion,
		"max_invites":           cfg.MaxCreateRoomInvites,
		"redaction_max_age_ms":  cfg.RedactionMaxAge.Milliseconds(),
		"status_msg_max":        cfg.StatusMsgMax,
	})
	if err != nil {
		return nil, fmt.Errorf("policy: settings: %w", err)
	}
	e := &Engine{cfg: cfg, log: log, settings: settings, embedded: embedded, retireAfter: defaultRetireAfter}
	e.fed = Federation{Status: StatusUnavailable}
	e.fedValue = federationValue(e.fed)

	// The embedded set must compile on its own: a failure here is a bug in this package, not the operator's.
	if _, _, err := compileModules(embedded, nil); err != nil {
		return nil, fmt.Errorf("policy: embedded modules: %w", err)
	}

	e.mu.Lock()
	defer e.mu.Unlock()
	if err := e.loadOperatorsLocked(context.Background(), true); err != nil {
		if cfg.OperatorDir == "" {
			return nil, fmt.Errorf("policy: %w", err)
		}
		log.Error("policy: no valid module set, denying every request until the operator modules load",
			"error", err, "dir", cfg.OperatorDir)
	}
	if e.state.Load() == nil {
		// Publish the "no valid set" state so that Eval denies instead of dereferencing nothing.
		if err := e.publishLocked(context.Background()); err != nil {
			return nil, fmt.Errorf("policy: %w", err)
		}
	}
	return e, nil
}

// embeddedModules returns the shipped modules, without their tests.
func embeddedModules() ([]moduleSource, error) {
	names, err := fs.Glob(regoFS, "rego/*.rego")
	if err != nil {
		return nil, fmt.Errorf("embedded modules: %w", err)
	}
	var out []moduleSource
	for _, name := range names {
		if strings.HasSuffix(name, "_test.rego") {
			continue
		}
		b, err := regoFS.ReadFile(name)
		if err != nil {
			return nil, fmt.Errorf("embedded modules: %w", err)
		}
		out = append(out, moduleSource{name: name, src: string(b)})
	}
	if len(out) == 0 {
		return nil, errors.New("embedded modules: none found")
	}
	return out, nil
}

// compileModules parses and compiles the embedded and operator modules together. It also returns the parsed
// modules for the wasm build (ast.Compiler works on copies, so they are still as parsed).
func compileModules(embedded, operator []moduleSource) (*ast.Compiler, []wasm.Module, error) {
	modules := make(map[string]*ast.Module, len(embedded)+len(operator))
	parsed := make([]wasm.Module, 0, len(embedded)+len(operator))
	popts := ast.ParserOptions{RegoVersion: ast.RegoV1}
	for i, m := range slices.Concat(embedded, operator) {
		mod, err := ast.ParseModuleWithOpts(m.name, m.src, popts)
		if err != nil {
			return nil, nil, fmt.Errorf("parse %s: %w", m.name, err)
		}
		if i >= len(embedded) {
			if err := checkOperatorPackage(mod); err != nil {
				return nil, nil, fmt.Errorf("%s: %w", m.name, err)
			}
		}
		modules[m.name] = mod
		parsed = append(parsed, wasm.Module{Name: m.name, Parsed: mod, Source: m.src})
	}
	c := ast.NewCompiler().WithStrict(true)
	c.Compile(modules)
	if c.Failed() {
		return nil, nil, fmt.Errorf("compile: %w", c.Errors)
	}
	return c, parsed, nil
}

// checkOperatorPackage admits only package tim.operator.<name>: an operator module must not redefine or
// shadow the shipped rules, and data.tim.decision collects exactly one level below tim.operator.
func checkOperatorPackage(mod *ast.Module) error {
	p := mod.Package.Path
	if len(p) == 4 && p[0].Equal(ast.DefaultRootDocument) && p[1].Equal(ast.StringTerm("tim")) &&
		p[2].Equal(ast.StringTerm("operator")) {
		if _, ok := p[3].Value.(ast.String); ok {
			return nil
		}
	}
	return fmt.Errorf("package %s: operator modules must be in package tim.operator.<name>", p)
}

// modulesHash identifies a module set: the revision's first part.
func modulesHash(sets ...[]moduleSource) string {
	h := sha256.New()
	for _, set := range sets {
		for _, m := range set {
			fmt.Fprintf(h, "%s\x00%d\x00%s\x00", m.name, len(m.src), m.src)
		}
	}
	return hex.EncodeToString(h.Sum(nil))[:12]
}

// publishLocked builds the state for the current compiler and federation data and swaps it in.
func (e *Engine) publishLocked(ctx context.Context) error {
	st := &state{
		revision: e.modulesHash + "-" + strconv.FormatInt(e.fed.Version, 10),
		status:   e.fed.Status,
		cache:    newDecisionCache(e.cfg.DecisionCacheSize),
	}
	if e.compiler != nil {
		root := ast.NewObject(
			ast.Item(ast.StringTerm("tim"), ast.NewTerm(ast.NewObject(
				ast.Item(ast.StringTerm("settings"), ast.NewTerm(e.settings)),
				ast.Item(ast.StringTerm("federation"), ast.NewTerm(e.fedValue)),
				ast.Item(ast.StringTerm("operator_settings"), ast.NewTerm(e.operatorSettings())),
			))),
		)
		store := inmem.NewFromASTObject(root)
		q, err := rego.New(rego.Query(decisionQuery), rego.Compiler(e.compiler), rego.Store(store)).PrepareForEval(ctx)
		if err != nil {
			return fmt.Errorf("prepare %s: %w", decisionQuery, err)
		}
		tq, err := rego.New(rego.Query(reasonsQuery), rego.Compiler(e.compiler), rego.Store(store)).PrepareForEval(ctx)
		if err != nil {
			return fmt.Errorf("prepare %s: %w", reasonsQuery, err)
		}
		st.query, st.reasons, st.ok = q, tq, true
		st.operators = len(e.opLoaded) > 0
		if e.wasm != nil {
			native, err := ast.JSON(root)
			if err != nil {
				return fmt.Errorf("data for wasm: %w", err)
			}
			doc, err := json.Marshal(native)
			if err != nil {
				return fmt.Errorf("data for wasm: %w", err)
			}
			st.wasm, st.wasmData = e.wasm, e.wasm.NewData(ctx, doc)
			st.wasmDecision, _ = e.wasm.Entrypoint(wasmDecisionEntrypoint)
			st.wasmReasons, _ = e.wasm.Entrypoint(wasmReasonsEntrypoint)
		}
	} else {
		st.revision = "none-" + strconv.FormatInt(e.fed.Version, 10)
	}
	e.state.Store(st)
	return nil
}

func (e *Engine) operatorSettings() ast.Value {
	if len(e.cfg.OperatorSettings) == 0 {
		return ast.NewObject()
	}
	v, err := ast.InterfaceToValue(e.cfg.OperatorSettings)
	if err != nil {
		// YAML can produce maps with non-string keys; an operator module then sees no settings and its own
		// defaults apply, which the log makes visible.
		e.log.Error("policy: operator_settings cannot be represented as JSON", "error", err)
		return ast.NewObject()
	}
	return v
}

// federationValue renders the list as data.tim.federation: domains keyed by lower-case domain.
func federationValue(f Federation) ast.Value {
	items := make([][2]*ast.Term, 0, len(f.Domains))
	for name, d := range f.Domains {
		ik := make([]*ast.Term, len(d.IK))
		for i, v := range d.IK {
			ik[i] = ast.StringTerm(v)
		}
		items = append(items, ast.Item(ast.StringTerm(strings.ToLower(name)), ast.ObjectTerm(
			ast.Item(ast.StringTerm("telematikID"), ast.StringTerm(d.TelematikID)),
			ast.Item(ast.StringTerm("isInsurance"), ast.BooleanTerm(d.IsInsurance)),
			ast.Item(ast.StringTerm("ik"), ast.ArrayTerm(ik...)),
		)))
	}
	return ast.NewObject(
		ast.Item(ast.StringTerm("version"), ast.IntNumberTerm(int(f.Version))),
		ast.Item(ast.StringTerm("status"), ast.StringTerm(f.Status)),
		ast.Item(ast.StringTerm("domains"), ast.NewTerm(ast.NewObject(items...))),
	)
}

// SetFederation replaces the federation list. An unknown status is treated as unavailable. The new list is
// in force for every Eval that starts after SetFederation returns; cached decisions of the old list are
// dropped with the old state.
func (e *Engine) SetFederation(f Federation) {
	switch f.Status {
	case StatusFresh, StatusStale, StatusUnavailable:
	default:
		e.log.Warn("policy: unknown federation list status, treating it as unavailable", "status", f.Status)
		f.Status = StatusUnavailable
	}
	value := federationValue(f)
	e.mu.Lock()
	defer e.mu.Unlock()
	e.fed, e.fedValue = f, value
	if err := e.publishLocked(context.Background()); err != nil {
		// Preparing a query that prepared before with other data cannot fail short of a bug; keep serving
		// the old state, but never silently.
		e.log.Error("policy: federation list not applied", "error", err, "version", f.Version)
	}
}

// Evaluator names the evaluator in force: EvaluatorWasm, or EvaluatorTopdown when configured so or when the
// wasm target could not compile the module set (logged at the time). Empty while no valid set is loaded.
func (e *Engine) Evaluator() string {
	st := e.state.Load()
	switch {
	case !st.ok:
		return ""
	case st.wasm != nil:
		return EvaluatorWasm
	default:
		return EvaluatorTopdown
	}
}

// Revision identifies the module set and federation list version decisions are made with.
func (e *Engine) Revision() string { return e.state.Load().revision }

// Ready returns nil when a valid module set is loaded and the federation list is fresh.
func (e *Engine) Ready() error {
	st := e.state.Load()
	var errs []error
	if !st.ok {
		errs = append(errs, errors.New("policy: no valid module set loaded"))
	}
	if st.status != StatusFresh {
		errs = append(errs, fmt.Errorf("policy: federation list is %s", st.status))
	}
	return errors.Join(errs...)
}

// Eval decides on in. A non-nil error means no decision was reached; the returned Decision is then a deny
// with policy_error, as it is whenever no valid module set is loaded. The returned Reasons slice belongs to
// the caller.
func (e *Engine) Eval(ctx context.Context, in *Input) (dec Decision, err error) {
	st := e.state.Load()
	if !st.ok {
		return policyError(st.revision), nil
	}
	if in == nil {
		return policyError(st.revision), errors.New("policy: nil input")
	}
	// OPA notices cancellation asynchronously and a short evaluation may finish regardless; a caller that
	// has given up gets the same answer every time.
	if err := ctx.Err(); err != nil {
		return policyError(st.revision), fmt.Errorf("policy: %w", err)
	}
	var key cacheKey
	cacheable := false
	if st.cache != nil {
		key, cacheable = cacheKeyWithin(in, maxExactKey, &st.cache.keyBuffers)
	}
	if cacheable {
		if d, ok := st.cache.get(key); ok {
			d.Reasons = slices.Clone(d.Reasons)
			d.Cached = true
			return d, nil
		}
	}
	defer func() {
		// A panic inside OPA must not take the proxy down; it is a failed decision like any other.
		if r := recover(); r != nil {
			dec, err = policyError(st.revision), fmt.Errorf("policy: evaluation panicked: %v", r)
		}
	}()
	if st.wasm != nil {
		dec, err = e.decideWasm(ctx, st, in)
		if errors.Is(err, wasm.ErrClosed) {
			// The module set was replaced while this evaluation waited; the prepared queries decide the same.
			dec, err = decideTopdown(ctx, st, in)
		}
	} else {
		dec, err = decideTopdown(ctx, st, in)
	}
	if err != nil {
		return policyError(st.revision), err
	}
	dec.Revision = st.revision
	if cacheable {
		st.cache.put(key, dec)
		dec.Reasons = slices.Clone(dec.Reasons)
	}
	return dec, nil
}

// decideTopdown evaluates with OPA's rego package.
func decideTopdown(ctx context.Context, st *state, in *Input) (Decision, error) {
	// No metrics: nobody reads them, and their timers are a measurable share of a federation check.
	q, short := st.query, reasonsOnly(in.Action)
	if short {
		q = st.reasons
	}
	transport := in.Action == ActionFederationInbound || in.Action == ActionFederationOutbound
	opts := []rego.EvalOption{rego.EvalParsedInput(inputValue(in)), rego.EvalMetrics(metrics.NoOp())}
	if transport {
		opts = append(opts, rego.EvalBaseCache(noBaseCache{}))
		if !st.operators {
			opts = append(opts, rego.EvalVirtualCache(noVirtualCache{}))
		}
	}
	rs, err := q.Eval(ctx, opts...)
	if err != nil {
		return Decision{}, fmt.Errorf("policy: eval %s: %w", in.Action, err)
	}
	dec, err := decisionFromResult(rs, short)
	if err != nil {
		return Decision{}, fmt.Errorf("policy: %s: %w", in.Action, err)
	}
	return dec, nil
}

// decideWasm evaluates the same modules compiled to wasm. The input travels as the JSON encoding of Input
// (appendInputJSON; inputValue builds the same shape for topdown); the result comes back as OPA's result set
// in JSON and goes through the same checks as topdown's.
func (e *Engine) decideWasm(ctx context.Context, st *state, in *Input) (Decision, error) {
	short := reasonsOnly(in.Action)
	buf, _ := e.inputBuffers.Get().(*[]byte)
	if buf == nil {
		buf = new([]byte)
	}
	*buf = appendInputJSON((*buf)[:0], in)
	entrypoint := st.wasmDecision
	if short {
		entrypoint = st.wasmReasons
	}
	out, err := st.wasm.EvalValidJSON(ctx, entrypoint, st.wasmData, *buf)
	e.inputBuffers.Put(buf)
	if err != nil {
		return Decision{}, fmt.Errorf("policy: eval %s: %w", in.Action, err)
	}
	// A value of the wrong type is a decoding error; a missing one stays missing and decisionFromRaw refuses
	// it, as it does topdown's.
	r, err := decodeWasmResult(out, short)
	if err != nil {
		return Decision{}, fmt.Errorf("policy: %s: %w", in.Action, err)
	}
	dec, err := decisionFromRaw(r, short)
	if err != nil {
		return Decision{}, fmt.Errorf("policy: %s: %w", in.Action, err)
	}
	return dec, nil
}

// reasonsOnly reports whether the decision on action can be read from reasons alone: decision.rego has
// obligations for createRoom and the user directory only, and its allow is "no reasons". Operator modules add
// reasons, never obligations. TestReasonsQueryAgrees holds both readings to the same answer for every action,
// and TestObligationsOnlyWhereExpected fails when decision.rego grows an obligation elsewhere.
func reasonsOnly(action Action) bool {
	return action != ActionRoomCreate && action != ActionUserDirectory
}

func policyError(revision string) Decision {
	return Decision{Allow: false, Reasons: []Reason{ReasonPolicyError}, Revision: revision}
}

// decisionFromResult reads topdown's {allow, reasons, obligations} (short: reasons only) for decisionFromRaw.
func decisionFromResult(rs rego.ResultSet, short bool) (Decision, error) {
	if len(rs) != 1 {
		return decisionFromRaw(rawDecision{}, short)
	}
	doc := rs[0].Bindings
	r := rawDecision{defined: true}
	if v, ok := doc["allow"]; ok {
		allow, ok := v.(bool)
		if !ok {
			return Decision{}, fmt.Errorf("%s.allow is %T, not a boolean", "data.tim.decision", v)
		}
		r.allow = &allow
	}
	if v, ok := doc["reasons"]; ok {
		raw, ok := v.([]any)
		if !ok {
			return Decision{}, fmt.Errorf("%s.reasons is %T, not a set", "data.tim.decision", v)
		}
		r.reasons, r.hasReasons = make([]string, 0, len(raw)), true
		for _, x := range raw {
			s, ok := x.(string)
			if !ok {
				return Decision{}, fmt.Errorf("%s.reasons holds %T, not a string", "data.tim.decision", x)
			}
			r.reasons = append(r.reasons, s)
		}
	}
	if v, ok := doc["obligations"]; ok {
		obl, ok := v.(map[string]any)
		if !ok {
			return Decision{}, fmt.Errorf("%s.obligations is %T, not an object", "data.tim.decision", v)
		}
		r.obligations = obl
	}
	return decisionFromRaw(r, short)
}

// decisionFromRaw checks a decision document, from either evaluator, and turns it into a Decision. Anything
// missing or unknown is an error: the caller denies.
func decisionFromRaw(r rawDecision, short bool) (Decision, error) {
	if !r.defined {
		return Decision{}, errors.New("data.tim.decision is undefined")
	}
	if short {
		// reasonsQuery: allow is "no reasons" and there are no obligations (see reasonsOnly).
		allow := true
		r.allow, r.obligations = &allow, map[string]any{}
	}
	if r.allow == nil {
		return Decision{}, fmt.Errorf("%s.allow is missing", "data.tim.decision")
	}
	if !r.hasReasons {
		return Decision{}, fmt.Errorf("%s.reasons is missing", "data.tim.decision")
	}
	if r.obligations == nil {
		return Decision{}, fmt.Errorf("%s.obligations is missing", "data.tim.decision")
	}
	var dec Decision
	for _, s := range r.reasons {
		dec.Reasons = append(dec.Reasons, Reason(s))
	}
	sort.Slice(dec.Reasons, func(i, j int) bool { return dec.Reasons[i] < dec.Reasons[j] })
	// Fail closed on a contradiction: a reason always denies, whatever allow says.
	dec.Allow = *r.allow && len(dec.Reasons) == 0
	for k, v := range r.obligations {
		var typeOK bool
		switch k {
		case "force_federate_false":
			dec.Obligations.ForceFederateFalse, typeOK = v.(bool)
		case "empty_result":
			dec.Obligations.EmptyResult, typeOK = v.(bool)
		case "room_version":
			dec.Obligations.RoomVersion, typeOK = v.(string)
		case "history_visibility":
			dec.Obligations.HistoryVisibility, typeOK = v.(string)
		default:
			// Go cannot enforce what it does not know; forwarding without it would be failing open.
			return Decision{}, fmt.Errorf("unknown obligation %q", k)
		}
		if !typeOK {
			return Decision{}, fmt.Errorf("obligation %q has type %T", k, v)
		}
	}
	return dec, nil
}

// cacheKey identifies an input in the decision cache. Federation transport checks, by far the most frequent
// decisions, are keyed by their few strings; every other input by its byte encoding, or that encoding's
// SHA-256 when it is long (cacheKeyFor). The policy revision is implicit: each state has its own cache.
type cacheKey struct {
	action      Action
	origin      string
	destination string
	peerDomain  string
	peerTypes   string
	exact       string // the encoding of a short input (cachekey.go)
	sum         [sha256.Size]byte
}

// decisionCache is a bounded two-generation cache: when the current generation is full it becomes the old
// one and the previous old one is dropped, so recently used entries survive and memory stays at most max.
type decisionCache struct {
	mu       sync.RWMutex
	half     int
	cur, old map[cacheKey]Decision
	// keyBuffers lends *[]byte buffers to cacheKeyWithin.
	keyBuffers sync.Pool
}

func newDecisionCache(size int) *decisionCache {
	if size <= 0 {
		return nil
	}
	half := max(size/2, 1)
	return &decisionCache{half: half, cur: make(map[cacheKey]Decision, half)}
}

func (c *decisionCache) get(k cacheKey) (Decision, bool) {
	c.mu.RLock()
	d, ok := c.cur[k]
	if ok {
		c.mu.RUnlock()
		return d, true
	}
	d, ok = c.old[k]
	c.mu.RUnlock()
	if ok {
		c.put(k, d) // promote: still in use
	}
	return d, ok
}

func (c *decisionCache) put(k cacheKey, d Decision) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.cur) >= c.half {
		c.old, c.cur = c.cur, make(map[cacheKey]Decision, c.half)
	}
	c.cur[k] = d
}

func (c *decisionCache) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.cur) + len(c.old)
}

// noVirtualCache and noBaseCache switch off OPA's per-evaluation memoisation for reasonsQuery: the shipped
// rules it reaches read each rule and each list entry once, so the caches cost their set-up (a quarter of the
// evaluation) and never pay it back. Operator modules are arbitrary code that may lean on memoisation, so with
// any loaded the virtual cache stays on. Memoisation does not change results; TestReasonsQueryAgrees
// compares with the full, cached query.
type noVirtualCache struct{}

func (noVirtualCache) Push()                         {}
func (noVirtualCache) Pop()                          {}
func (noVirtualCache) Get(ast.Ref) (*ast.Term, bool) { return nil, false }
func (noVirtualCache) Put(ast.Ref, *ast.Term)        {}
func (noVirtualCache) Keys() []ast.Ref               { return nil }

type noBaseCache struct{}

func (noBaseCache) Get(ast.Ref) ast.Value  { return nil }
func (noBaseCache) Put(ast.Ref, ast.Value) {}
