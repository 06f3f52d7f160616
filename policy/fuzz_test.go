package policy

import (
	"context"
	"encoding/json"
	"slices"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/open-policy-agent/opa/v1/ast"
)

// FuzzEval feeds arbitrary strings through every field the proxy fills from requests. The hand-built AST and
// the hand-written JSON must keep matching the JSON form, evaluation must always reach a decision (an error
// would turn into a policy_error denial for a request that deserves a precise answer), and the wasm and
// topdown evaluators must reach the same one.
func FuzzEval(f *testing.F) {
	f.Add("federation_inbound", "other.example", "@bob:other.example", "public", "👍", int64(5), true)
	f.Add("invite", "EVIL.example", "@x:y", "knock", "", int64(0), false)
	f.Add("room_create", "", "", "", "\x00\xff", int64(-1), true)
	f.Add("redact", "kasse.example", "@k:kasse.example", "world_readable", "a\"b", int64(1<<62), false)
	e := newTestEngine(f, testConfig("epa"))
	topdownCfg := testConfig("epa")
	topdownCfg.Evaluator = EvaluatorTopdown
	td := newTestEngine(f, topdownCfg)
	if e.Evaluator() != EvaluatorWasm || td.Evaluator() != EvaluatorTopdown {
		f.Fatalf("evaluators %q and %q", e.Evaluator(), td.Evaluator())
	}
	f.Fuzz(func(t *testing.T, action, domain, user, rule, key string, n int64, flag bool) {
		in := &Input{
			Action: Action(action), Origin: domain, Destination: domain,
			Actor:            &User{UserID: user, Domain: domain, Local: flag, Admin: !flag},
			Target:           &User{UserID: user, Domain: domain, Local: !flag},
			PermissionConfig: &PermissionConfig{DefaultSetting: rule, UserExceptions: map[string]struct{}{user: {}}, GroupExceptions: []string{key}},
			Room: &Room{Version: key, Type: key, Preset: rule, Visibility: rule, JoinRule: rule, HistoryVisibility: rule,
				Encrypted: flag, InviteCount: int(n % 1000), StateEventType: key, CreatorDomain: domain, Invited: flag},
			Event:   &Event{Type: key, RelType: key, Key: key, KeyIsSingleEmoji: flag, AgeMillis: n},
			Request: &Request{Surface: rule, MediaServer: domain, StatusMsgLength: int(n % 100000), RegisterKind: rule, Authenticated: flag},
			Peer:    &Peer{Domain: domain, OrganizationTypes: []string{key}},
		}
		want, err := ast.InterfaceToValue(in)
		if err != nil {
			t.Skip("not representable as JSON")
		}
		if got := inputValue(in); got.Compare(want) != 0 {
			t.Fatalf("inputValue differs from the JSON form\n got: %v\nwant: %v", got, want)
		}
		if got, want := appendInputJSON(nil, in), mustMarshal(t, in); string(got) != string(want) {
			t.Fatalf("appendInputJSON differs from json.Marshal\n got: %s\nwant: %s", got, want)
		}
		d, err := e.Eval(context.Background(), in)
		if err != nil {
			t.Fatalf("Eval: %v", err)
		}
		if d.Allow != (len(d.Reasons) == 0) {
			t.Fatalf("allow %v with reasons %q", d.Allow, d.Reasons)
		}
		dt, err := td.Eval(context.Background(), in)
		if err != nil {
			t.Fatalf("Eval (topdown): %v", err)
		}
		d.Revision, dt.Revision = "", ""
		if diff := cmp.Diff(dt, d); diff != "" {
			t.Fatalf("wasm and topdown disagree (-topdown +wasm):\n%s", diff)
		}
	})
}

func mustMarshal(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestConcurrentEvalDuringSwaps runs evaluations while the list and the operator modules change (run with
// -race): every decision must come from one consistent state.
func TestConcurrentEvalDuringSwaps(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig("pro")
	cfg.OperatorDir = dir
	e := newTestEngine(t, cfg)
	// Replaced wasm policies close at once, under running evaluations: those fall back to topdown and must
	// still decide.
	e.retireAfter = 0
	ctx := context.Background()
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				d, err := e.Eval(ctx, &Input{Action: ActionFederationInbound, Origin: "other.example"})
				if err != nil {
					t.Error(err)
					return
				}
				// other.example is on every list used below; only the operator module may deny.
				if !d.Allow && !slices.Equal(d.Reasons, []Reason{"extra_reason"}) {
					t.Errorf("unexpected decision %+v", d)
					return
				}
			}
		})
	}
	// Ten rounds: four operator reloads, each compiling the module set to wasm anew (about a second under
	// the race detector), and ten list swaps.
	for i := range 10 {
		f := testFederation()
		f.Version = int64(100 + i)
		e.SetFederation(f)
		if i%5 == 0 {
			writeModule(t, dir, "extra.rego", extraModule)
		} else if i%5 == 2 {
			writeModule(t, dir, "extra.rego", "package tim.operator.extra\n")
		}
		e.reloadOperators(ctx)
	}
	close(stop)
	wg.Wait()
}

// TestClosedWasmPolicyFallsBackToTopdown: an evaluation that meets a wasm policy closed under it (a reload
// retired it) still decides, with the prepared topdown queries of the same state.
func TestClosedWasmPolicyFallsBackToTopdown(t *testing.T) {
	cfg := testConfig("pro")
	cfg.DecisionCacheSize = -1
	e := newTestEngine(t, cfg)
	st := e.state.Load()
	if st.wasm == nil {
		t.Fatal("no wasm policy in force")
	}
	st.wasm.Close(context.Background())
	for _, tc := range []struct {
		in   *Input
		want []Reason
	}{
		{&Input{Action: ActionFederationInbound, Origin: "other.example"}, nil},
		{&Input{Action: ActionFederationInbound, Origin: "evil.example"}, []Reason{ReasonOriginNotFederated}},
		{&Input{Action: ActionSendEvent, Actor: alice, Event: &Event{RelType: "m.thread"}}, []Reason{ReasonThreadRelation}},
	} {
		d, err := e.Eval(context.Background(), tc.in)
		if err != nil {
			t.Fatalf("%s: %v", tc.in.Action, err)
		}
		if !slices.Equal(d.Reasons, tc.want) || d.Allow != (len(tc.want) == 0) {
			t.Errorf("%s: got %+v, want reasons %q", tc.in.Action, d, tc.want)
		}
	}
}
