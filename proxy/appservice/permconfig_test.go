package appservice

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/timstack/timstack/policy"
)

func set(keys ...string) map[string]struct{} {
	m := map[string]struct{}{}
	for _, k := range keys {
		m[k] = struct{}{}
	}
	return m
}

func TestParsePermissionConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		typ     string
		raw     string
		want    policy.PermissionConfig
		wantErr string
	}{
		{
			name: "a full Pro config with all three exception kinds is read",
			typ:  TypePermissionConfigPro,
			raw: `{"defaultSetting":"allow all","serverExceptions":{"bad.example":{}},"userExceptions":{"@mallory:evil.example":{}},
				"groupExceptions":[{"groupName":"isInsuredPerson"}]}`,
			want: policy.PermissionConfig{DefaultSetting: "allow all", ServerExceptions: set("bad.example"),
				UserExceptions: set("@mallory:evil.example"), GroupExceptions: []string{"isInsuredPerson"}},
		},
		{
			name: "a minimal block-all config has empty exceptions",
			typ:  TypePermissionConfigPro, raw: `{"defaultSetting":"block all"}`,
			want: policy.PermissionConfig{DefaultSetting: "block all", ServerExceptions: set(), UserExceptions: set(), GroupExceptions: []string{}},
		},
		{
			name: "an ePA config ignores groupExceptions, which its schema does not define",
			typ:  TypePermissionConfigEPA, raw: `{"defaultSetting":"block all","serverExceptions":{"kh.example":{}},"groupExceptions":[{"groupName":"isInsuredPerson"}]}`,
			want: policy.PermissionConfig{DefaultSetting: "block all", ServerExceptions: set("kh.example"), UserExceptions: set(), GroupExceptions: []string{}},
		},
		{
			name: "the legacy type's domainExceptions become server exceptions",
			typ:  TypePermissionConfigLegacy, raw: `{"defaultSetting":"allow all","domainExceptions":{"bad.example":{}},"userExceptions":{"@x:y.example":{}}}`,
			want: policy.PermissionConfig{DefaultSetting: "allow all", ServerExceptions: set("bad.example"), UserExceptions: set("@x:y.example"), GroupExceptions: []string{}},
		},
		{
			name: "the legacy type does not read serverExceptions",
			typ:  TypePermissionConfigLegacy, raw: `{"defaultSetting":"allow all","serverExceptions":{"bad.example":{}}}`,
			want: policy.PermissionConfig{DefaultSetting: "allow all", ServerExceptions: set(), UserExceptions: set(), GroupExceptions: []string{}},
		},
		{
			name: "unknown fields and content inside exception objects are tolerated",
			typ:  TypePermissionConfigPro, raw: `{"defaultSetting":"allow all","futureField":[1,2],"userExceptions":{"@a:b.example":{"note":"x"}}}`,
			want: policy.PermissionConfig{DefaultSetting: "allow all", ServerExceptions: set(), UserExceptions: set("@a:b.example"), GroupExceptions: []string{}},
		},
		{
			name: "duplicate group items are folded",
			typ:  TypePermissionConfigPro, raw: `{"defaultSetting":"block all","groupExceptions":[{"groupName":"isInsuredPerson"},{"groupName":"isInsuredPerson"}]}`,
			want: policy.PermissionConfig{DefaultSetting: "block all", ServerExceptions: set(), UserExceptions: set(), GroupExceptions: []string{"isInsuredPerson"}},
		},
		{
			name: "null exception fields count as absent",
			typ:  TypePermissionConfigPro, raw: `{"defaultSetting":"block all","serverExceptions":null,"userExceptions":null,"groupExceptions":null}`,
			want: policy.PermissionConfig{DefaultSetting: "block all", ServerExceptions: set(), UserExceptions: set(), GroupExceptions: []string{}},
		},
		{name: "a missing defaultSetting is malformed", typ: TypePermissionConfigPro, raw: `{"userExceptions":{}}`, wantErr: "defaultSetting missing"},
		{name: "an unknown defaultSetting is malformed", typ: TypePermissionConfigPro, raw: `{"defaultSetting":"allow some"}`, wantErr: "defaultSetting must be"},
		{name: "a non-string defaultSetting is malformed", typ: TypePermissionConfigEPA, raw: `{"defaultSetting":true}`, wantErr: "defaultSetting must be"},
		{name: "a defaultSetting differing in case is malformed", typ: TypePermissionConfigPro, raw: `{"defaultSetting":"Allow All"}`, wantErr: "defaultSetting must be"},
		{name: "a user exception that is not an MXID is malformed", typ: TypePermissionConfigPro, raw: `{"defaultSetting":"allow all","userExceptions":{"mallory":{}}}`, wantErr: "Matrix user ID"},
		{name: "an exception value that is not an object is malformed", typ: TypePermissionConfigPro, raw: `{"defaultSetting":"allow all","serverExceptions":{"a.example":true}}`, wantErr: "values must be objects"},
		{name: "exceptions given as an array are malformed", typ: TypePermissionConfigPro, raw: `{"defaultSetting":"allow all","serverExceptions":["a.example"]}`, wantErr: "must be an object"},
		{name: "a group item given as a bare string is malformed (the schema does not catch it)", typ: TypePermissionConfigPro, raw: `{"defaultSetting":"allow all","groupExceptions":["isInsuredPerson"]}`, wantErr: "items must be objects"},
		{name: "an unknown group is malformed", typ: TypePermissionConfigPro, raw: `{"defaultSetting":"allow all","groupExceptions":[{"groupName":"isDoctor"}]}`, wantErr: "unknown group"},
		{name: "a group item without groupName is malformed", typ: TypePermissionConfigPro, raw: `{"defaultSetting":"allow all","groupExceptions":[{}]}`, wantErr: "with groupName"},
		{name: "groupExceptions given as an object is malformed", typ: TypePermissionConfigPro, raw: `{"defaultSetting":"allow all","groupExceptions":{"groupName":"isInsuredPerson"}}`, wantErr: "must be an array"},
		{name: "a JSON array is malformed", typ: TypePermissionConfigPro, raw: `[]`, wantErr: "not a JSON object"},
		{name: "null is malformed", typ: TypePermissionConfigPro, raw: `null`, wantErr: "not a JSON object"},
		{name: "trailing data is malformed", typ: TypePermissionConfigPro, raw: `{"defaultSetting":"allow all"} {}`, wantErr: "not a JSON object"},
		{name: "an unknown event type is refused", typ: "de.gematik.tim.account.permissionconfig.pro.v2", raw: `{"defaultSetting":"allow all"}`, wantErr: "unknown type"},
		{name: "a config over 64 KiB is refused", typ: TypePermissionConfigPro, raw: `{"defaultSetting":"allow all","pad":"` + strings.Repeat("x", MaxPermissionConfigSize) + `"}`, wantErr: "larger than"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParsePermissionConfig(tc.typ, []byte(tc.raw))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
}

func TestEncodePermissionConfigRoundTrips(t *testing.T) {
	t.Parallel()
	c := policy.PermissionConfig{DefaultSetting: "block all", ServerExceptions: set("tim.example.org"),
		UserExceptions: set("@a:b.example"), GroupExceptions: []string{"isInsuredPerson"}}
	for _, typ := range []string{TypePermissionConfigPro, TypePermissionConfigEPA, TypePermissionConfigLegacy} {
		b, err := EncodePermissionConfig(typ, c)
		if err != nil {
			t.Fatalf("%s: %v", typ, err)
		}
		got, err := ParsePermissionConfig(typ, b)
		if err != nil {
			t.Fatalf("%s: %v", typ, err)
		}
		want := c
		if typ != TypePermissionConfigPro {
			want.GroupExceptions = []string{}
		}
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("%s (-want +got):\n%s", typ, d)
		}
	}
	if b, _ := EncodePermissionConfig(TypePermissionConfigLegacy, c); !bytes.Contains(b, []byte(`"domainExceptions"`)) {
		t.Errorf("legacy encoding %s lacks domainExceptions", b)
	}
	if _, err := EncodePermissionConfig(TypePermissionConfigPro, policy.PermissionConfig{DefaultSetting: "maybe"}); err == nil {
		t.Error("an invalid config was encoded")
	}
}

func FuzzParsePermissionConfig(f *testing.F) {
	for _, s := range []string{
		`{"defaultSetting":"allow all","serverExceptions":{"a.example":{}},"userExceptions":{"@u:a.example":{}},"groupExceptions":[{"groupName":"isInsuredPerson"}]}`,
		`{"defaultSetting":"block all","domainExceptions":{"x":{}}}`,
		`{"defaultSetting":"block all","groupExceptions":["isInsuredPerson"]}`,
		`{"defaultSetting":null}`, `[]`, `{"defaultSetting":"allow all","userExceptions":{"":{}}}`,
	} {
		for _, typ := range []uint8{0, 1, 2} {
			f.Add(typ, []byte(s))
		}
	}
	types := []string{TypePermissionConfigPro, TypePermissionConfigEPA, TypePermissionConfigLegacy}
	f.Fuzz(func(t *testing.T, typ uint8, raw []byte) {
		et := types[int(typ)%len(types)]
		c, err := ParsePermissionConfig(et, raw)
		if err != nil {
			return
		}
		// Anything accepted is a valid config: one of two defaults, MXID user exceptions, known groups,
		// and it survives its own encoding.
		if c.DefaultSetting != DefaultAllowAll && c.DefaultSetting != DefaultBlockAll {
			t.Fatalf("accepted defaultSetting %q", c.DefaultSetting)
		}
		for u := range c.UserExceptions {
			if !strings.HasPrefix(u, "@") {
				t.Fatalf("accepted user exception %q", u)
			}
		}
		for _, g := range c.GroupExceptions {
			if g != GroupInsuredPerson {
				t.Fatalf("accepted group %q", g)
			}
		}
		b, err := EncodePermissionConfig(et, c)
		if err != nil {
			t.Fatalf("re-encoding an accepted config failed: %v", err)
		}
		back, err := ParsePermissionConfig(et, b)
		if err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff(c, back); d != "" {
			t.Fatalf("round trip (-first +second):\n%s", d)
		}
	})
}

// storeFixture is a fake homeserver with per-user account data and a clock.
type storeFixture struct {
	hs    *fakeHS
	store *PermissionStore
	now   atomic.Int64 // unix nanos
	logs  *bytes.Buffer
}

func newStoreFixture(t *testing.T, variant string, def policy.PermissionConfig, ttl time.Duration, maxEntries int) *storeFixture {
	t.Helper()
	fx := &storeFixture{hs: newFakeHS(t), logs: &bytes.Buffer{}}
	fx.now.Store(time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC).UnixNano())
	var mu sync.Mutex
	log := slog.New(slog.NewJSONHandler(lockedWriter{&mu, fx.logs}, nil))
	s, err := NewPermissionStore(newTestClient(t, fx.hs, time.Second), variant, def, ttl, maxEntries,
		func() time.Time { return time.Unix(0, fx.now.Load()) }, log)
	if err != nil {
		t.Fatal(err)
	}
	fx.store = s
	return fx
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func adRoute(localpart, typ string) string {
	return "GET /_matrix/client/v3/user/@" + localpart + ":" + testServer + "/account_data/" + typ
}

const notFound = `{"errcode":"M_NOT_FOUND","error":"Account data not found"}`

var allowAllDefault = policy.PermissionConfig{DefaultSetting: "allow all", ServerExceptions: set("@LOCAL_SERVER@", "blocked.example")}

func TestPermissionStoreGet(t *testing.T) {
	t.Parallel()
	resolvedDefault := policy.PermissionConfig{DefaultSetting: "allow all", ServerExceptions: set(testServer, "blocked.example"),
		UserExceptions: set(), GroupExceptions: []string{}}
	blockAll := policy.PermissionConfig{DefaultSetting: "block all", ServerExceptions: set(), UserExceptions: set("@doc:" + testServer), GroupExceptions: []string{}}
	tests := []struct {
		name      string
		variant   string
		answers   map[string][2]any // type → {status, body}
		want      policy.PermissionConfig
		wantErr   bool
		wantPaths []string // account-data types read, in order
		wantWarn  bool
	}{
		{
			name: "Pro reads the .pro.v1 config first and stops there", variant: VariantPro,
			answers:   map[string][2]any{TypePermissionConfigPro: {200, `{"defaultSetting":"block all","userExceptions":{"@doc:tim.example.org":{}}}`}},
			want:      blockAll,
			wantPaths: []string{TypePermissionConfigPro},
		},
		{
			name: "Pro falls back to the legacy type when .pro.v1 is absent", variant: VariantPro,
			answers: map[string][2]any{
				TypePermissionConfigPro:    {404, notFound},
				TypePermissionConfigLegacy: {200, `{"defaultSetting":"block all","userExceptions":{"@doc:tim.example.org":{}},"domainExceptions":{}}`},
			},
			want:      blockAll,
			wantPaths: []string{TypePermissionConfigPro, TypePermissionConfigLegacy},
		},
		{
			name: "ePA reads .epa.v1 then legacy", variant: VariantEPA,
			answers: map[string][2]any{
				TypePermissionConfigEPA: {404, notFound}, TypePermissionConfigLegacy: {404, notFound},
			},
			want:      resolvedDefault,
			wantPaths: []string{TypePermissionConfigEPA, TypePermissionConfigLegacy},
		},
		{
			name: "an absent config yields the server default with @LOCAL_SERVER@ resolved", variant: VariantPro,
			answers: map[string][2]any{
				TypePermissionConfigPro: {404, notFound}, TypePermissionConfigLegacy: {404, notFound},
			},
			want:      resolvedDefault,
			wantPaths: []string{TypePermissionConfigPro, TypePermissionConfigLegacy},
		},
		{
			name: "a malformed config yields the server default and a warning, without reading legacy", variant: VariantPro,
			answers:   map[string][2]any{TypePermissionConfigPro: {200, `{"defaultSetting":"allow some","secret":"do-not-log"}`}},
			want:      resolvedDefault,
			wantPaths: []string{TypePermissionConfigPro},
			wantWarn:  true,
		},
		{
			name: "a homeserver failure is an error, never the default", variant: VariantPro,
			answers:   map[string][2]any{TypePermissionConfigPro: {500, `{"errcode":"M_UNKNOWN"}`}},
			wantErr:   true,
			wantPaths: []string{TypePermissionConfigPro},
		},
		{
			name: "a refused masquerade is an error", variant: VariantPro,
			answers:   map[string][2]any{TypePermissionConfigPro: {403, `{"errcode":"M_FORBIDDEN","error":"Application service cannot masquerade as this user"}`}},
			wantErr:   true,
			wantPaths: []string{TypePermissionConfigPro},
		},
		{
			name: "a failure on the legacy read is an error too", variant: VariantEPA,
			answers: map[string][2]any{
				TypePermissionConfigEPA: {404, notFound}, TypePermissionConfigLegacy: {502, `bad gateway`},
			},
			wantErr:   true,
			wantPaths: []string{TypePermissionConfigEPA, TypePermissionConfigLegacy},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fx := newStoreFixture(t, tc.variant, allowAllDefault, time.Minute, 10)
			for typ, a := range tc.answers {
				fx.hs.reply(adRoute("alice", typ), a[0].(int), a[1].(string))
			}
			got, err := fx.store.Get(context.Background(), "@alice:"+testServer)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if err == nil {
				if d := cmp.Diff(tc.want, got); d != "" {
					t.Errorf("config (-want +got):\n%s", d)
				}
			} else if got.DefaultSetting != "" {
				t.Errorf("an error came with a config %+v", got)
			}
			var paths []string
			for _, r := range fx.hs.requests() {
				p := r.Path()
				paths = append(paths, p[strings.LastIndexByte(p, '/')+1:])
			}
			if d := cmp.Diff(tc.wantPaths, paths); d != "" {
				t.Errorf("types read (-want +got):\n%s", d)
			}
			logs := fx.logs.String()
			if tc.wantWarn != strings.Contains(logs, `"level":"WARN"`) {
				t.Errorf("warn logged = %v, want %v: %s", !tc.wantWarn, tc.wantWarn, logs)
			}
			if strings.Contains(logs, "do-not-log") {
				t.Error("the config body reached the log")
			}
		})
	}
}

func TestPermissionStoreCaching(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	alice := "@alice:" + testServer

	t.Run("a second read within the TTL is served from the cache", func(t *testing.T) {
		t.Parallel()
		fx := newStoreFixture(t, VariantPro, allowAllDefault, time.Minute, 10)
		fx.hs.reply(adRoute("alice", TypePermissionConfigPro), 200, `{"defaultSetting":"block all"}`)
		for range 3 {
			if _, err := fx.store.Get(ctx, alice); err != nil {
				t.Fatal(err)
			}
		}
		if n := len(fx.hs.requests()); n != 1 {
			t.Errorf("%d homeserver reads, want 1", n)
		}
		fx.now.Add(int64(time.Minute))
		if _, err := fx.store.Get(ctx, alice); err != nil {
			t.Fatal(err)
		}
		if n := len(fx.hs.requests()); n != 2 {
			t.Errorf("after the TTL: %d homeserver reads, want 2", n)
		}
	})

	t.Run("invalidation makes the next read see the user's new config", func(t *testing.T) {
		t.Parallel()
		fx := newStoreFixture(t, VariantPro, allowAllDefault, time.Hour, 10)
		fx.hs.reply(adRoute("alice", TypePermissionConfigPro), 200, `{"defaultSetting":"allow all"}`)
		if c, _ := fx.store.Get(ctx, alice); c.DefaultSetting != "allow all" {
			t.Fatalf("first read %q", c.DefaultSetting)
		}
		fx.hs.reply(adRoute("alice", TypePermissionConfigPro), 200, `{"defaultSetting":"block all"}`)
		if c, _ := fx.store.Get(ctx, alice); c.DefaultSetting != "allow all" {
			t.Fatalf("cached read %q", c.DefaultSetting)
		}
		fx.store.Invalidate(alice)
		if c, _ := fx.store.Get(ctx, alice); c.DefaultSetting != "block all" {
			t.Errorf("after Invalidate: %q, want block all", c.DefaultSetting)
		}
	})

	t.Run("errors are not cached", func(t *testing.T) {
		t.Parallel()
		fx := newStoreFixture(t, VariantPro, allowAllDefault, time.Hour, 10)
		fx.hs.reply(adRoute("alice", TypePermissionConfigPro), 503, `{"errcode":"M_UNKNOWN"}`)
		if _, err := fx.store.Get(ctx, alice); err == nil {
			t.Fatal("no error")
		}
		fx.hs.reply(adRoute("alice", TypePermissionConfigPro), 200, `{"defaultSetting":"block all"}`)
		c, err := fx.store.Get(ctx, alice)
		if err != nil || c.DefaultSetting != "block all" {
			t.Errorf("after recovery: %+v %v", c, err)
		}
	})

	t.Run("the cache holds at most maxEntries users", func(t *testing.T) {
		t.Parallel()
		fx := newStoreFixture(t, VariantPro, allowAllDefault, time.Hour, 2)
		for _, u := range []string{"a", "b", "c"} {
			fx.hs.reply(adRoute(u, TypePermissionConfigPro), 200, `{"defaultSetting":"block all"}`)
			if _, err := fx.store.Get(ctx, "@"+u+":"+testServer); err != nil {
				t.Fatal(err)
			}
		}
		fx.hs.reset()
		_, _ = fx.store.Get(ctx, "@c:"+testServer)
		_, _ = fx.store.Get(ctx, "@a:"+testServer) // evicted as least recently used
		if n := len(fx.hs.requests()); n != 1 {
			t.Errorf("%d reads, want 1 (only the evicted user)", n)
		}
	})

	t.Run("callers mutating a returned config do not change the cache", func(t *testing.T) {
		t.Parallel()
		fx := newStoreFixture(t, VariantPro, allowAllDefault, time.Hour, 10)
		fx.hs.reply(adRoute("alice", TypePermissionConfigPro), 200, `{"defaultSetting":"block all","userExceptions":{"@x:y.example":{}}}`)
		c, _ := fx.store.Get(ctx, alice)
		delete(c.UserExceptions, "@x:y.example")
		c2, _ := fx.store.Get(ctx, alice)
		if _, ok := c2.UserExceptions["@x:y.example"]; !ok {
			t.Error("the cached config was changed through a returned map")
		}
		d := fx.store.DefaultFor(alice)
		d.ServerExceptions["evil.example"] = struct{}{}
		if _, ok := fx.store.DefaultFor(alice).ServerExceptions["evil.example"]; ok {
			t.Error("the server default was changed through a returned map")
		}
	})

	t.Run("a remote user's config is never looked up", func(t *testing.T) {
		t.Parallel()
		fx := newStoreFixture(t, VariantPro, allowAllDefault, time.Hour, 10)
		if _, err := fx.store.Get(ctx, "@bob:other.example"); err == nil {
			t.Error("no error for a remote user")
		}
		if n := len(fx.hs.requests()); n != 0 {
			t.Errorf("%d reads", n)
		}
	})
}

func TestPermissionStoreCollapsesConcurrentReads(t *testing.T) {
	t.Parallel()
	fx := newStoreFixture(t, VariantPro, allowAllDefault, time.Hour, 10)
	release := make(chan struct{})
	fx.hs.handle(adRoute("alice", TypePermissionConfigPro), func(w http.ResponseWriter, _ *http.Request) {
		<-release
		jsonReply(w, 200, `{"defaultSetting":"block all"}`)
	})
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for range 20 {
		wg.Go(func() {
			c, err := fx.store.Get(context.Background(), "@alice:"+testServer)
			if err == nil && c.DefaultSetting != "block all" {
				err = context.Canceled
			}
			errs <- err
		})
	}
	time.Sleep(100 * time.Millisecond)
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := len(fx.hs.requests()); n != 1 {
		t.Errorf("%d homeserver reads for 20 concurrent callers, want 1", n)
	}
}

func TestPermissionStoreInvalidateDuringRead(t *testing.T) {
	t.Parallel()
	fx := newStoreFixture(t, VariantPro, allowAllDefault, time.Hour, 10)
	alice := "@alice:" + testServer
	started, release := make(chan struct{}), make(chan struct{})
	fx.hs.handle(adRoute("alice", TypePermissionConfigPro), func(w http.ResponseWriter, _ *http.Request) {
		started <- struct{}{}
		<-release
		jsonReply(w, 200, `{"defaultSetting":"allow all"}`)
	})
	done := make(chan struct{})
	go func() { _, _ = fx.store.Get(context.Background(), alice); close(done) }()
	<-started
	fx.store.Invalidate(alice) // the user's PUT passed while the old value was being read
	close(release)
	<-done
	fx.hs.reply(adRoute("alice", TypePermissionConfigPro), 200, `{"defaultSetting":"block all"}`)
	c, err := fx.store.Get(context.Background(), alice)
	if err != nil || c.DefaultSetting != "block all" {
		t.Errorf("got %q %v: the read that raced with Invalidate was cached", c.DefaultSetting, err)
	}
}

func TestNewPermissionStoreRefusesBadDefaults(t *testing.T) {
	t.Parallel()
	c, err := NewClient(ClientConfig{HomeserverURL: "http://hs:8008", ASToken: testASToken, ServerName: testServer})
	if err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		variant string
		def     policy.PermissionConfig
	}{
		"an unknown variant":      {"basis", allowAllDefault},
		"an empty defaultSetting": {VariantPro, policy.PermissionConfig{}},
		"an unknown group":        {VariantPro, policy.PermissionConfig{DefaultSetting: "allow all", GroupExceptions: []string{"x"}}},
		"a non-MXID user":         {VariantPro, policy.PermissionConfig{DefaultSetting: "allow all", UserExceptions: set("bob")}},
	} {
		if _, err := NewPermissionStore(c, tc.variant, tc.def, time.Minute, 10, nil, nil); err == nil {
			t.Errorf("%s was accepted", name)
		}
	}
}
