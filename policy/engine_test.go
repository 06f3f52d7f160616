package policy

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// testFederation mirrors rego/fixtures_test.rego: two Pro servers, two insurances.
func testFederation() Federation {
	return Federation{Version: 7, Status: StatusFresh, Domains: map[string]Domain{
		"pro.example":    {TelematikID: "1-pro"},
		"other.example":  {TelematikID: "1-other"},
		"kasse.example":  {TelematikID: "8-kasse", IsInsurance: true, IK: []string{"109500969"}},
		"Kasse2.Example": {TelematikID: "8-kasse2", IsInsurance: true, IK: []string{"101575519"}},
	}}
}

func testConfig(variant string) Config {
	cfg := Config{Variant: variant, ServerName: "pro.example"}
	if variant == "epa" {
		cfg.ServerName = "kasse.example"
	}
	cfg.Defaults()
	return cfg
}

func newTestEngine(t testing.TB, cfg Config) *Engine {
	t.Helper()
	e, err := New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	e.SetFederation(testFederation())
	return e
}

var (
	alice = &User{UserID: "@alice:pro.example", Domain: "pro.example", Local: true}
	bob   = &User{UserID: "@bob:other.example", Domain: "other.example"}
	eve   = &User{UserID: "@eve:evil.example", Domain: "evil.example"}
	karl  = &User{UserID: "@karl:kasse.example", Domain: "kasse.example", Local: true}
	kim   = &User{UserID: "@kim:kasse2.example", Domain: "kasse2.example"}
	no    = false
)

type decisionCase struct {
	name    string // sentence
	file    string // golden file stem in testdata/input and testdata/decisions
	variant string
	status  string // federation list status, default fresh
	in      Input
}

var decisionCases = []decisionCase{
	{name: "inbound federation from a listed origin is allowed", file: "federation_inbound_allowed", variant: "pro",
		in: Input{Action: ActionFederationInbound, Origin: "other.example", Destination: "pro.example"}},
	{name: "inbound federation from an unlisted origin is denied", file: "federation_inbound_denied", variant: "pro",
		in: Input{Action: ActionFederationInbound, Origin: "evil.example", Destination: "pro.example"}},
	{name: "outbound federation with a stale list is denied", file: "federation_outbound_stale", variant: "pro", status: StatusStale,
		in: Input{Action: ActionFederationOutbound, Origin: "pro.example", Destination: "other.example"}},
	{name: "inbound federation before any list is denied", file: "federation_inbound_unavailable", variant: "pro", status: StatusUnavailable,
		in: Input{Action: ActionFederationInbound, Origin: "other.example", Destination: "pro.example"}},
	{name: "A_26021-01 invite blocked by the invitee's user exception", file: "invite_user_exception", variant: "pro",
		in: Input{Action: ActionInvite, Origin: "pro.example", Actor: bob, Target: alice, PermissionConfig: &PermissionConfig{
			DefaultSetting: PermissionAllowAll, UserExceptions: map[string]struct{}{"@bob:other.example": {}}}}},
	{name: "invite admitted by block all with the inviter's server excepted", file: "invite_block_all_server_exception", variant: "pro",
		in: Input{Action: ActionFederationInvite, Origin: "other.example", Destination: "pro.example", Actor: bob, Target: alice,
			PermissionConfig: &PermissionConfig{DefaultSetting: PermissionBlockAll, ServerExceptions: map[string]struct{}{"other.example": {}},
				GroupExceptions: []string{}}}},
	{name: "invite group exception isInsuredPerson blocks an insured inviter", file: "invite_group_insured", variant: "pro",
		in: Input{Action: ActionFederationInvite, Origin: "kasse2.example", Actor: kim, Target: alice,
			PermissionConfig: &PermissionConfig{DefaultSetting: PermissionAllowAll, GroupExceptions: []string{"isInsuredPerson"}}}},
	{name: "invite from an unlisted server is denied", file: "invite_inviter_not_federated", variant: "pro",
		in: Input{Action: ActionFederationInvite, Origin: "evil.example", Actor: eve, Target: alice,
			PermissionConfig: &PermissionConfig{DefaultSetting: PermissionAllowAll}}},
	{name: "A_25705 ePA insured-to-insured invite is denied", file: "epa_insured_to_insured", variant: "epa",
		in: Input{Action: ActionInvite, Origin: "kasse.example", Actor: karl, Target: kim}},
	{name: "createRoom as TI-M clients send it gets the default version and history visibility", file: "room_create_private", variant: "pro",
		in: Input{Action: ActionRoomCreate, Origin: "pro.example", Actor: alice,
			Room: &Room{Preset: "private_chat", Encrypted: true}}},
	{name: "A_26515-01 Pro public room is forced local", file: "room_create_pro_public", variant: "pro",
		in: Input{Action: ActionRoomCreate, Origin: "pro.example", Actor: alice,
			Room: &Room{Version: "10", Visibility: "public", Preset: "public_chat", HistoryVisibility: "shared"}}},
	{name: "createRoom breaking several rules names every rule", file: "room_create_many_reasons", variant: "pro",
		in: Input{Action: ActionRoomCreate, Origin: "pro.example", Actor: alice, Target: bob,
			PermissionConfig: nil,
			Room:             &Room{Version: "11", Type: "de.gematik.tim.roomtype.default.v2", InviteCount: 2, Federate: &no}}},
	{name: "ePA public room is denied", file: "epa_room_create_public", variant: "epa",
		in: Input{Action: ActionRoomCreate, Origin: "kasse.example", Actor: karl,
			Room: &Room{Version: "10", Visibility: "public", JoinRule: "public", HistoryVisibility: "world_readable", Encrypted: true}}},
	{name: "A_28271 Pro join rule public is denied", file: "state_join_rule_public", variant: "pro",
		in: Input{Action: ActionStateEvent, Actor: alice, Room: &Room{RoomID: "!r:pro.example", StateEventType: "m.room.join_rules", JoinRule: "public"}}},
	{name: "A_26228-01 reaction with one emoji is allowed", file: "send_reaction", variant: "pro",
		in: Input{Action: ActionSendEvent, Actor: alice, Event: &Event{Type: "m.reaction", RelType: "m.annotation", Key: "👍", KeyIsSingleEmoji: true}}},
	{name: "A_25395-02 thread reply is denied", file: "send_thread", variant: "pro",
		in: Input{Action: ActionSendEvent, Actor: alice, Event: &Event{Type: "m.room.message", RelType: "m.thread"}}},
	{name: "A_28358 admin may redact an old event", file: "redact_admin", variant: "pro",
		in: Input{Action: ActionRedact, Actor: &User{UserID: "@admin:pro.example", Domain: "pro.example", Local: true, Admin: true},
			Event: &Event{AgeMillis: 2 * 86400000}}},
	{name: "A_26328 media of an unlisted server is denied", file: "media_remote_denied", variant: "pro",
		in: Input{Action: ActionMediaRemote, Actor: alice, Request: &Request{Method: "GET", Surface: "client", MediaServer: "evil.example", Authenticated: true}}},
	{name: "ePA profile without a shared room is denied", file: "epa_profile", variant: "epa",
		in: Input{Action: ActionProfile, Actor: karl, Target: bob, Request: &Request{Surface: "client", Authenticated: true}}},
	{name: "A_26375 ePA user directory answers empty", file: "epa_user_directory", variant: "epa",
		in: Input{Action: ActionUserDirectory, Actor: karl, Request: &Request{Method: "POST", Surface: "client", Authenticated: true}}},
	{name: "status message over 250 characters is denied", file: "presence_too_long", variant: "pro",
		in: Input{Action: ActionPresence, Actor: alice, Request: &Request{StatusMsgLength: 251, Authenticated: true}}},
	{name: "guest registration is denied", file: "register_guest", variant: "pro",
		in: Input{Action: ActionRegister, Request: &Request{Method: "POST", RegisterKind: "guest"}}},
	{name: "join of a remote public room without invite is denied", file: "join_remote_public", variant: "pro",
		in: Input{Action: ActionJoin, Actor: alice, Room: &Room{RoomID: "!r:other.example", JoinRule: "public", CreatorDomain: "other.example"}}},
	{name: "operator peer facts reach the input", file: "federation_inbound_peer", variant: "pro",
		in: Input{Action: ActionFederationInbound, Origin: "other.example", Destination: "pro.example",
			Peer: &Peer{Domain: "other.example", OrganizationTypes: []string{"1.2.276.0.76.4.50"}}}},
}

// TestDecisionGolden runs every case through both evaluators: each must give the golden decision.
func TestDecisionGolden(t *testing.T) {
	for _, evaluator := range []string{EvaluatorWasm, EvaluatorTopdown} {
		t.Run(evaluator, func(t *testing.T) {
			cfg := func(variant string) Config {
				c := testConfig(variant)
				c.Evaluator = evaluator
				return c
			}
			engines := map[string]*Engine{"pro": newTestEngine(t, cfg("pro")), "epa": newTestEngine(t, cfg("epa"))}
			for _, e := range engines {
				if got := e.Evaluator(); got != evaluator {
					t.Fatalf("evaluator in force is %q, want %q", got, evaluator)
				}
			}
			for _, tc := range decisionCases {
				t.Run(tc.name, func(t *testing.T) {
					e := engines[tc.variant]
					if tc.status != "" {
						e = newTestEngine(t, cfg(tc.variant))
						f := testFederation()
						f.Status = tc.status
						e.SetFederation(f)
					}
					dec, err := e.Eval(context.Background(), &tc.in)
					if err != nil {
						t.Fatalf("Eval: %v", err)
					}
					if dec.Revision != e.Revision() || dec.Revision == "" {
						t.Errorf("revision %q, engine says %q", dec.Revision, e.Revision())
					}
					dec.Revision = "" // changes with every module edit; pinned elsewhere
					got, err := json.MarshalIndent(struct {
						Note     string   `json:"note"`
						Variant  string   `json:"variant"`
						Decision Decision `json:"decision"`
					}{tc.name, tc.variant, dec}, "", "  ")
					if err != nil {
						t.Fatal(err)
					}
					golden(t, filepath.Join("testdata", "decisions", tc.file+".json"), got)
				})
			}
		})
	}
}

// TestInputGolden pins the JSON shape of Input: it is the contract with the Rego modules.
func TestInputGolden(t *testing.T) {
	full := Input{
		Action: ActionFederationInvite, Origin: "other.example", Destination: "pro.example",
		Actor: bob, Target: &User{UserID: "@alice:pro.example", Domain: "pro.example", Local: true, Admin: true},
		PermissionConfig: &PermissionConfig{DefaultSetting: PermissionBlockAll,
			UserExceptions: map[string]struct{}{"@bob:other.example": {}}, ServerExceptions: map[string]struct{}{"other.example": {}},
			GroupExceptions: []string{"isInsuredPerson"}},
		Room: &Room{RoomID: "!r:pro.example", Version: "10", Type: "de.gematik.tim.roomtype.default.v1", Preset: "private_chat",
			Visibility: "private", JoinRule: "invite", HistoryVisibility: "invited", Encrypted: true, Federate: &no, InviteCount: 1,
			StateEventType: "m.room.join_rules", CreatorDomain: "pro.example", Invited: true},
		Event:   &Event{Type: "m.reaction", RelType: "m.annotation", Key: "👍", KeyIsSingleEmoji: true, AgeMillis: 1000},
		Request: &Request{Method: "PUT", Surface: "federation", MediaServer: "other.example", StatusMsgLength: 12, RegisterKind: "user", SharesRoom: true, Authenticated: true},
		Peer:    &Peer{Domain: "other.example", OrganizationTypes: []string{"1.2.276.0.76.4.50"}},
	}
	cases := append([]decisionCase{{name: "every field set", file: "all_fields", in: full}}, decisionCases...)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := json.MarshalIndent(tc.in, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			golden(t, filepath.Join("testdata", "input", tc.file+".json"), got)
		})
	}
}

// TestInputValueMatchesJSON proves the hand-built AST input is exactly what rego.EvalInput would have made
// from the struct's JSON form.
func TestInputValueMatchesJSON(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "input", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no input goldens: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			var in Input
			if err := json.Unmarshal(b, &in); err != nil {
				t.Fatal(err)
			}
			want, err := ast.InterfaceToValue(in)
			if err != nil {
				t.Fatal(err)
			}
			if got := inputValue(&in); got.Compare(want) != 0 {
				t.Errorf("inputValue differs from the JSON form\n got: %v\nwant: %v", got, want)
			}
		})
	}
	// Nil maps and slices are null in JSON, empty ones are {} and [].
	for _, pc := range []*PermissionConfig{{DefaultSetting: PermissionAllowAll}, {UserExceptions: map[string]struct{}{}, GroupExceptions: []string{}}} {
		in := &Input{Action: ActionInvite, PermissionConfig: pc, Peer: &Peer{Domain: "x", OrganizationTypes: []string{}}}
		want, err := ast.InterfaceToValue(in)
		if err != nil {
			t.Fatal(err)
		}
		if got := inputValue(in); got.Compare(want) != 0 {
			t.Errorf("inputValue differs from the JSON form\n got: %v\nwant: %v", got, want)
		}
	}
}

// TestInputJSONMatchesMarshal proves the wasm evaluator's hand-written input is json.Marshal's, byte for byte.
func TestInputJSONMatchesMarshal(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "input", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no input goldens: %v", err)
	}
	var inputs []*Input
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		in := new(Input)
		if err := json.Unmarshal(b, in); err != nil {
			t.Fatal(err)
		}
		inputs = append(inputs, in)
	}
	yes := true
	inputs = append(inputs,
		&Input{Action: ActionInvite, PermissionConfig: &PermissionConfig{DefaultSetting: PermissionAllowAll}},
		&Input{Action: ActionInvite, PermissionConfig: &PermissionConfig{UserExceptions: map[string]struct{}{}, GroupExceptions: []string{}},
			Peer: &Peer{Domain: "x", OrganizationTypes: []string{}}},
		&Input{Action: "a<b>&\"\\\u2028\x00\xff", Origin: "ünïcödé.example", Room: &Room{Federate: &yes, InviteCount: -3},
			Event: &Event{AgeMillis: -1 << 62}, Request: &Request{}},
	)
	for _, in := range inputs {
		want, err := json.Marshal(in)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendInputJSON(nil, in); string(got) != string(want) {
			t.Errorf("appendInputJSON differs from json.Marshal\n got: %s\nwant: %s", got, want)
		}
	}
}

func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	got = append(got, '\n')
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./policy -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s mismatch (-want +got):\n%s", path, diff)
	}
}

// TestRegoReasonsAreConstants keeps Rego and Go in step: every reason string a module can produce is a Reason
// constant listed in AllReasons, so proxy/reasons.go can map it.
func TestRegoReasonsAreConstants(t *testing.T) {
	known := map[Reason]bool{}
	for _, r := range AllReasons {
		if known[r] {
			t.Errorf("AllReasons lists %q twice", r)
		}
		known[r] = true
	}
	files, _ := filepath.Glob("rego/*.rego")
	more, _ := filepath.Glob("examples/operator/*.rego")
	re := regexp.MustCompile(`deny contains "([a-z_]+)"`)
	found := 0
	for _, f := range append(files, more...) {
		if strings.HasSuffix(f, "_test.rego") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range re.FindAllStringSubmatch(string(b), -1) {
			found++
			if !known[Reason(m[1])] {
				t.Errorf("%s produces %q, which is no Reason constant in AllReasons", f, m[1])
			}
		}
	}
	if found < 25 {
		t.Errorf("found only %d deny rules; did the Rego layout change?", found)
	}
}

func TestEvalCachesAndSwapsFederation(t *testing.T) {
	e := newTestEngine(t, testConfig("pro"))
	ctx := context.Background()
	in := &Input{Action: ActionFederationInbound, Origin: "other.example", Destination: "pro.example"}
	first, err := e.Eval(ctx, in)
	if err != nil || !first.Allow || first.Cached {
		t.Fatalf("first eval: %+v, %v", first, err)
	}
	second, err := e.Eval(ctx, in)
	if err != nil || !second.Allow || !second.Cached {
		t.Fatalf("second eval should be a cache hit: %+v, %v", second, err)
	}
	rev := e.Revision()

	f := testFederation()
	f.Version = 8
	delete(f.Domains, "other.example")
	e.SetFederation(f)
	if e.Revision() == rev {
		t.Errorf("revision %q did not change with the federation list version", rev)
	}
	third, err := e.Eval(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if third.Allow || third.Cached || !slices.Equal(third.Reasons, []Reason{ReasonOriginNotFederated}) {
		t.Errorf("after removing the origin from the list: %+v", third)
	}

	// A status change without a new version still replaces the cache.
	f.Status = StatusStale
	e.SetFederation(f)
	fourth, _ := e.Eval(ctx, in)
	if fourth.Cached || !slices.Contains(fourth.Reasons, ReasonFederationListStale) {
		t.Errorf("after the list went stale: %+v", fourth)
	}

	// Callers own the returned reasons; changing them must not poison the cache.
	fourth.Reasons[0] = "tampered"
	fifth, _ := e.Eval(ctx, in)
	if !fifth.Cached || slices.Contains(fifth.Reasons, "tampered") {
		t.Errorf("cached decision was modified through a returned slice: %+v", fifth)
	}
}

func TestEvalCachesOtherActionsByContent(t *testing.T) {
	e := newTestEngine(t, testConfig("pro"))
	ctx := context.Background()
	pc := &PermissionConfig{DefaultSetting: PermissionAllowAll, UserExceptions: map[string]struct{}{}}
	in := &Input{Action: ActionInvite, Actor: bob, Target: alice, PermissionConfig: pc}
	if d, _ := e.Eval(ctx, in); !d.Allow {
		t.Fatalf("invite should be allowed: %+v", d)
	}
	if d, _ := e.Eval(ctx, in); !d.Cached {
		t.Errorf("same invite should hit the cache")
	}
	pc.UserExceptions["@bob:other.example"] = struct{}{}
	d, _ := e.Eval(ctx, in)
	if d.Cached || d.Allow {
		t.Errorf("a changed permission config must not reuse the old decision: %+v", d)
	}
}

func TestDecisionCacheIsBounded(t *testing.T) {
	c := newDecisionCache(10)
	for i := range 100 {
		c.put(cacheKey{origin: fmt.Sprint(i)}, Decision{Allow: true})
	}
	if n := c.len(); n > 10 {
		t.Errorf("cache holds %d entries, bound is 10", n)
	}
	if _, ok := c.get(cacheKey{origin: "99"}); !ok {
		t.Errorf("most recent entry was evicted")
	}
	if newDecisionCache(-1) != nil {
		t.Errorf("a negative size must disable the cache")
	}
}

func TestCacheDisabled(t *testing.T) {
	cfg := testConfig("pro")
	cfg.DecisionCacheSize = -1
	e := newTestEngine(t, cfg)
	in := &Input{Action: ActionFederationInbound, Origin: "other.example"}
	for range 2 {
		if d, err := e.Eval(context.Background(), in); err != nil || d.Cached || !d.Allow {
			t.Fatalf("%+v, %v", d, err)
		}
	}
}

func TestReady(t *testing.T) {
	e, err := New(testConfig("pro"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if e.Ready() == nil {
		t.Errorf("ready without a federation list")
	}
	d, _ := e.Eval(context.Background(), &Input{Action: ActionFederationInbound, Origin: "other.example"})
	if d.Allow || !slices.Contains(d.Reasons, ReasonFederationListUnavailable) {
		t.Errorf("before the first list every federation must be denied: %+v", d)
	}
	e.SetFederation(testFederation())
	if err := e.Ready(); err != nil {
		t.Errorf("not ready with modules and a fresh list: %v", err)
	}
	f := testFederation()
	f.Status = "weird"
	e.SetFederation(f)
	if e.Ready() == nil {
		t.Errorf("an unknown status must not count as fresh")
	}
	d, _ = e.Eval(context.Background(), &Input{Action: ActionFederationInbound, Origin: "other.example"})
	if d.Allow || !slices.Equal(d.Reasons, []Reason{ReasonFederationListUnavailable}) {
		t.Errorf("an unknown status must count as unavailable: %+v", d)
	}
}

func TestEvalNilInputIsPolicyError(t *testing.T) {
	e := newTestEngine(t, testConfig("pro"))
	d, err := e.Eval(context.Background(), nil)
	if err == nil || d.Allow || !slices.Equal(d.Reasons, []Reason{ReasonPolicyError}) {
		t.Errorf("nil input: %+v, %v", d, err)
	}
}

func TestEvalCancelledContextIsPolicyError(t *testing.T) {
	e := newTestEngine(t, testConfig("pro"))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	d, err := e.Eval(ctx, &Input{Action: ActionInvite, Actor: bob, Target: bob})
	if err == nil || d.Allow || !slices.Equal(d.Reasons, []Reason{ReasonPolicyError}) {
		t.Errorf("cancelled context: %+v, %v", d, err)
	}
}

func TestConfigValidate(t *testing.T) {
	good := testConfig("pro")
	if err := good.Validate(); err != nil {
		t.Fatalf("defaults do not validate: %v", err)
	}
	bad := Config{Variant: "both", ServerName: "Pro.Example", DefaultPermission: "some", AllowedRoomVersions: []string{"9", ""},
		DefaultRoomVersion: "11", MaxCreateRoomInvites: -1, RedactionMaxAge: -time.Second, StatusMsgMax: -1, OperatorReload: time.Millisecond}
	err := bad.Validate()
	if err == nil {
		t.Fatal("bad config validated")
	}
	for _, key := range []string{"policy.variant: must be pro or epa", "policy.server_name", "policy.default_permission",
		"policy.allowed_room_versions", "policy.default_room_version", "policy.max_createroom_invites",
		"policy.redaction_max_age", "policy.status_msg_max", "policy.operator_reload"} {
		if !strings.Contains(err.Error(), key) {
			t.Errorf("error does not mention %q:\n%v", key, err)
		}
	}
	if _, err := New(bad, nil); err == nil {
		t.Errorf("New accepted an invalid config")
	}
	var empty Config
	empty.Defaults()
	if err := empty.Validate(); err == nil || !strings.Contains(err.Error(), "policy.variant") || !strings.Contains(err.Error(), "policy.server_name: must be set") {
		t.Errorf("variant and server name must be required: %v", err)
	}
	if pc := good.DefaultPermissionConfig(); pc.DefaultSetting != PermissionAllowAll || pc.UserExceptions == nil {
		t.Errorf("default permission config: %+v", pc)
	}
}

// logBuffer captures an engine's log for assertions.
func logBuffer() (*slog.Logger, *bytes.Buffer) {
	var buf bytes.Buffer
	return slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo})), &buf
}

const extraModule = `package tim.operator.extra

deny contains "extra_reason" if input.action == "federation_inbound"
`

func writeModule(t *testing.T, dir, name, src string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestOperatorReload(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig("pro")
	cfg.OperatorDir = dir
	log, buf := logBuffer()
	e, err := New(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	e.SetFederation(testFederation())
	ctx := context.Background()
	in := &Input{Action: ActionFederationInbound, Origin: "other.example"}
	eval := func() Decision {
		t.Helper()
		d, err := e.Eval(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	if d := eval(); !d.Allow {
		t.Fatalf("empty operator folder: %+v", d)
	}
	rev := e.Revision()

	t.Run("an added module's reason appears", func(t *testing.T) {
		writeModule(t, dir, "extra.rego", extraModule)
		writeModule(t, dir, "extra_test.rego", "this is not rego, and test files are never loaded")
		e.reloadOperators(ctx)
		if d := eval(); d.Allow || !slices.Equal(d.Reasons, []Reason{"extra_reason"}) {
			t.Errorf("after adding extra.rego: %+v", d)
		}
		if e.Revision() == rev {
			t.Errorf("revision unchanged after a module change")
		}
		loaded, err := e.OperatorStatus()
		if err != nil || !slices.Equal(loaded, []string{"extra.rego"}) {
			t.Errorf("OperatorStatus = %q, %v", loaded, err)
		}
	})

	t.Run("a broken module keeps the last good set and reports the error", func(t *testing.T) {
		buf.Reset()
		writeModule(t, dir, "broken.rego", "package tim.operator.broken\n\ndeny contains x if {")
		e.reloadOperators(ctx)
		if d := eval(); !slices.Equal(d.Reasons, []Reason{"extra_reason"}) {
			t.Errorf("last good set not kept: %+v", d)
		}
		loaded, err := e.OperatorStatus()
		if err == nil || !strings.Contains(err.Error(), "broken.rego") || !slices.Equal(loaded, []string{"extra.rego"}) {
			t.Errorf("OperatorStatus = %q, %v", loaded, err)
		}
		if !strings.Contains(buf.String(), "level=ERROR") {
			t.Errorf("failed reload not logged at Error:\n%s", buf.String())
		}
		// The same broken folder is not retried (and logged) on every tick.
		buf.Reset()
		e.reloadOperators(ctx)
		if buf.Len() != 0 {
			t.Errorf("unchanged broken folder logged again:\n%s", buf.String())
		}
	})

	t.Run("a module outside tim.operator is refused", func(t *testing.T) {
		writeModule(t, dir, "broken.rego", "package tim.decision\n\nallow := true\n")
		e.reloadOperators(ctx)
		if _, err := e.OperatorStatus(); err == nil || !strings.Contains(err.Error(), "tim.operator.<name>") {
			t.Errorf("shadowing module accepted: %v", err)
		}
		if d := eval(); d.Allow {
			t.Errorf("shadowing module took effect: %+v", d)
		}
	})

	t.Run("fixing the module loads it", func(t *testing.T) {
		writeModule(t, dir, "broken.rego", "package tim.operator.broken\n\ndeny contains \"fixed\" if input.action == \"federation_inbound\"\n")
		e.reloadOperators(ctx)
		if d := eval(); !slices.Equal(d.Reasons, []Reason{"extra_reason", "fixed"}) {
			t.Errorf("after the fix: %+v", d)
		}
		if _, err := e.OperatorStatus(); err != nil {
			t.Errorf("error not cleared: %v", err)
		}
	})

	t.Run("removing the modules switches them off", func(t *testing.T) {
		for _, n := range []string{"extra.rego", "broken.rego", "extra_test.rego"} {
			if err := os.Remove(filepath.Join(dir, n)); err != nil {
				t.Fatal(err)
			}
		}
		e.reloadOperators(ctx)
		if d := eval(); !d.Allow {
			t.Errorf("after removing the modules: %+v", d)
		}
	})
}

func TestOperatorInitialFailureDeniesEverything(t *testing.T) {
	dir := t.TempDir()
	writeModule(t, dir, "bad.rego", "package tim.operator.bad\n\ndeny contains if")
	cfg := testConfig("pro")
	cfg.OperatorDir = dir
	log, buf := logBuffer()
	e, err := New(cfg, log)
	if err != nil {
		t.Fatalf("New must succeed with broken operator modules: %v", err)
	}
	e.SetFederation(testFederation())
	ctx := context.Background()
	d, err := e.Eval(ctx, &Input{Action: ActionFederationInbound, Origin: "other.example"})
	if err != nil || d.Allow || !slices.Equal(d.Reasons, []Reason{ReasonPolicyError}) {
		t.Errorf("no valid set must deny with policy_error: %+v, %v", d, err)
	}
	if e.Ready() == nil {
		t.Errorf("ready without a valid module set")
	}
	if _, err := e.OperatorStatus(); err == nil {
		t.Errorf("OperatorStatus reports no error")
	}
	if !strings.Contains(buf.String(), "level=ERROR") {
		t.Errorf("initial failure not logged at Error:\n%s", buf.String())
	}
	writeModule(t, dir, "bad.rego", extraModule)
	e.reloadOperators(ctx)
	if err := e.Ready(); err != nil {
		t.Errorf("not ready after the fix: %v", err)
	}
	d, _ = e.Eval(ctx, &Input{Action: ActionFederationInbound, Origin: "other.example"})
	if !slices.Equal(d.Reasons, []Reason{"extra_reason"}) {
		t.Errorf("after the fix: %+v", d)
	}
}

func TestOperatorMissingFolderDeniesEverything(t *testing.T) {
	cfg := testConfig("pro")
	cfg.OperatorDir = filepath.Join(t.TempDir(), "missing")
	e, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	e.SetFederation(testFederation())
	if d, _ := e.Eval(context.Background(), &Input{Action: ActionPresence}); d.Allow {
		t.Errorf("a missing operator folder must fail closed: %+v", d)
	}
}

func TestRunReloadsOperatorModules(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig("pro")
	cfg.OperatorDir = dir
	cfg.OperatorReload = 100 * time.Millisecond
	e := newTestEngine(t, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { e.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	writeModule(t, dir, "extra.rego", extraModule)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		d, _ := e.Eval(context.Background(), &Input{Action: ActionFederationInbound, Origin: "other.example"})
		if slices.Contains(d.Reasons, "extra_reason") {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("Run did not pick up the new module within 10s")
}

func TestOrganizationTypeExampleThroughTheEngine(t *testing.T) {
	dir := t.TempDir()
	src, err := os.ReadFile(filepath.Join("examples", "operator", "organization_type.rego"))
	if err != nil {
		t.Fatal(err)
	}
	writeModule(t, dir, "organization_type.rego", string(src))
	cases := []struct {
		name     string
		settings map[string]any
		types    []string
		want     []Reason
	}{
		{name: "a practice is admitted by the default list", types: []string{"1.2.276.0.76.4.50"}},
		{name: "an unknown organisation type is refused", types: []string{"9.9.9"}, want: []Reason{ReasonOrganizationTypeNotAllowed}},
		{name: "a peer without directory facts is not judged", types: nil},
		{name: "operator_settings replace the default list", types: []string{"1.2.276.0.76.4.50"},
			settings: map[string]any{"allowed_organization_types": []any{"9.9.9"}}, want: []Reason{ReasonOrganizationTypeNotAllowed}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig("pro")
			cfg.OperatorDir = dir
			cfg.OperatorSettings = tc.settings
			e := newTestEngine(t, cfg)
			d, err := e.Eval(context.Background(), &Input{Action: ActionFederationInbound, Origin: "other.example",
				Peer: &Peer{Domain: "other.example", OrganizationTypes: tc.types}})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(d.Reasons, tc.want) || d.Allow != (len(tc.want) == 0) {
				t.Errorf("got %+v, want reasons %q", d, tc.want)
			}
		})
	}
}

func TestCheckOperatorPackage(t *testing.T) {
	for pkg, ok := range map[string]bool{
		"tim.operator.x": true, "tim.operator": false, "tim.operator.x.y": false, "tim.decision": false,
		"operator.x": false, "tim.federation": false,
	} {
		mod, err := ast.ParseModuleWithOpts("m.rego", "package "+pkg+"\n", ast.ParserOptions{RegoVersion: ast.RegoV1})
		if err != nil {
			t.Fatal(err)
		}
		if err := checkOperatorPackage(mod); (err == nil) != ok {
			t.Errorf("package %s: err=%v, want ok=%v", pkg, err, ok)
		}
	}
}

// TestReasonsQueryAgrees holds the reasons-only reading (reasonsQuery, the wasm reasons entrypoint) to the full
// decision query: for transport checks with allowed and denied inputs, every list status and an operator
// module, and for every golden decision case and every action, on both evaluators.
func TestReasonsQueryAgrees(t *testing.T) {
	dir := t.TempDir()
	src, err := os.ReadFile(filepath.Join("examples", "operator", "organization_type.rego"))
	if err != nil {
		t.Fatal(err)
	}
	writeModule(t, dir, "organization_type.rego", string(src))
	ctx := context.Background()
	var inputs []*Input
	for _, action := range []Action{ActionFederationInbound, ActionFederationOutbound} {
		for _, domain := range []string{"other.example", "evil.example", "", "pro.example"} {
			for _, peer := range []*Peer{nil, {Domain: domain, OrganizationTypes: []string{"9.9.9"}}} {
				inputs = append(inputs, &Input{Action: action, Origin: domain, Destination: domain, Peer: peer})
			}
		}
	}
	for _, tc := range decisionCases {
		inputs = append(inputs, &tc.in)
	}
	for _, a := range AllActions {
		inputs = append(inputs, &Input{Action: a, Origin: "other.example", Actor: bob, Target: alice,
			Room: &Room{JoinRule: "public"}, Request: &Request{Authenticated: true}})
	}
	for _, evaluator := range []string{EvaluatorWasm, EvaluatorTopdown} {
		// Without operator modules the transport query also runs without OPA's virtual cache.
		for _, opDir := range []string{"", dir} {
			cfg := testConfig("pro")
			cfg.OperatorDir = opDir
			cfg.DecisionCacheSize = -1
			cfg.Evaluator = evaluator
			e := newTestEngine(t, cfg)
			if st := e.state.Load(); st.operators != (opDir != "") || e.Evaluator() != evaluator {
				t.Fatalf("operators=%v evaluator %q with operator dir %q", st.operators, e.Evaluator(), opDir)
			}
			for _, status := range []string{StatusFresh, StatusStale, StatusUnavailable} {
				f := testFederation()
				f.Status = status
				e.SetFederation(f)
				st := e.state.Load()
				for _, in := range inputs {
					full, err := st.query.Eval(ctx, rego.EvalParsedInput(inputValue(in)))
					if err != nil {
						t.Fatal(err)
					}
					want, err := decisionFromResult(full, false)
					if err != nil {
						t.Fatal(err)
					}
					got, err := e.Eval(ctx, in)
					if err != nil {
						t.Fatal(err)
					}
					got.Revision = ""
					if diff := cmp.Diff(want, got); diff != "" {
						t.Errorf("%s operators=%q %s %s %q: differs from the full query (-full +engine):\n%s",
							evaluator, opDir, status, in.Action, in.Origin, diff)
					}
				}
			}
		}
	}
}

// TestObligationsOnlyWhereExpected: reasonsOnly reads every other action from reasons alone, which would drop
// an obligation decision.rego gained for it. Every golden case and every action, in both variants.
func TestObligationsOnlyWhereExpected(t *testing.T) {
	ctx := context.Background()
	var inputs []*Input
	for _, tc := range decisionCases {
		inputs = append(inputs, &tc.in)
	}
	for _, a := range AllActions {
		for _, pub := range []bool{false, true} {
			room := &Room{Preset: "private_chat"}
			if pub {
				room = &Room{Preset: "public_chat", Visibility: "public", JoinRule: "public"}
			}
			inputs = append(inputs, &Input{Action: a, Origin: "pro.example", Actor: alice, Target: bob, Room: room,
				Request: &Request{Authenticated: true}})
		}
	}
	seen := map[Action]bool{}
	for _, variant := range []string{"pro", "epa"} {
		st := newTestEngine(t, testConfig(variant)).state.Load()
		for _, in := range inputs {
			rs, err := st.query.Eval(ctx, rego.EvalParsedInput(inputValue(in)))
			if err != nil {
				t.Fatal(err)
			}
			d, err := decisionFromResult(rs, false)
			if err != nil {
				t.Fatal(err)
			}
			if d.Obligations != (Obligations{}) {
				seen[in.Action] = true
				if reasonsOnly(in.Action) {
					t.Errorf("%s %s has obligations %+v, but reasonsOnly reads it without them", variant, in.Action, d.Obligations)
				}
			}
		}
	}
	// The test must see the obligations it guards against losing.
	if !seen[ActionRoomCreate] || !seen[ActionUserDirectory] {
		t.Errorf("obligations seen for %v; want room_create and user_directory", seen)
	}
}

// TestEveryActionIsKnownToTheRego keeps AllActions and decision.rego's known_action in step: a known action
// never yields policy_error, an unknown one always does.
func TestEveryActionIsKnownToTheRego(t *testing.T) {
	e := newTestEngine(t, testConfig("pro"))
	for _, a := range AllActions {
		d, err := e.Eval(context.Background(), &Input{Action: a, Origin: "pro.example", Actor: alice})
		if err != nil {
			t.Fatal(err)
		}
		if slices.Contains(d.Reasons, ReasonPolicyError) {
			t.Errorf("action %q is unknown to decision.rego: %+v", a, d)
		}
	}
	for _, a := range []Action{"", "federation_inbund", "Invite"} {
		d, _ := e.Eval(context.Background(), &Input{Action: a, Origin: "other.example"})
		if d.Allow || !slices.Contains(d.Reasons, ReasonPolicyError) {
			t.Errorf("unknown action %q was not denied with policy_error: %+v", a, d)
		}
	}
}

// TestDecisionFromResultFailsClosed: anything but a well-formed {allow, reasons, obligations} is an error, and
// a reason always denies.
func TestDecisionFromResultFailsClosed(t *testing.T) {
	rs := func(b rego.Vars) rego.ResultSet { return rego.ResultSet{{Bindings: b}} }
	good := func() rego.Vars {
		return rego.Vars{"allow": true, "reasons": []any{}, "obligations": map[string]any{}}
	}
	with := func(k string, v any) rego.ResultSet { b := good(); b[k] = v; return rs(b) }
	errCases := map[string]rego.ResultSet{
		"an undefined decision":           nil,
		"allow that is no boolean":        with("allow", "yes"),
		"reasons that are no set":         with("reasons", "x"),
		"a reason that is no string":      with("reasons", []any{1}),
		"obligations that are no object":  with("obligations", []any{}),
		"an unknown obligation":           with("obligations", map[string]any{"rewrite_everything": true}),
		"an obligation of the wrong type": with("obligations", map[string]any{"room_version": 10}),
	}
	for name, r := range errCases {
		t.Run(name+" is an error", func(t *testing.T) {
			if d, err := decisionFromResult(r, false); err == nil {
				t.Errorf("no error, decision %+v", d)
			}
		})
	}
	t.Run("allow with a reason is a deny", func(t *testing.T) {
		d, err := decisionFromResult(with("reasons", []any{"b_reason", "a_reason"}), false)
		if err != nil || d.Allow || !slices.Equal(d.Reasons, []Reason{"a_reason", "b_reason"}) {
			t.Errorf("%+v, %v", d, err)
		}
	})
	t.Run("every obligation is read", func(t *testing.T) {
		d, err := decisionFromResult(with("obligations", map[string]any{"room_version": "10", "history_visibility": "invited",
			"force_federate_false": true, "empty_result": true}), false)
		want := Obligations{RoomVersion: "10", HistoryVisibility: "invited", ForceFederateFalse: true, EmptyResult: true}
		if err != nil || !d.Allow || d.Obligations != want {
			t.Errorf("%+v, %v", d, err)
		}
	})
}
