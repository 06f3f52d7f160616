package appservice

import (
	"bytes"
	"container/list"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/timstack/timstack/policy"
)

// Account-data event types of the TI-M permission configuration (tim-proxy-spec §3.5).
const (
	// TypePermissionConfigPro is the TI-M Pro type (A_26389).
	TypePermissionConfigPro = "de.gematik.tim.account.permissionconfig.pro.v1"
	// TypePermissionConfigEPA is the TI-M ePA type.
	TypePermissionConfigEPA = "de.gematik.tim.account.permissionconfig.epa.v1"
	// TypePermissionConfigLegacy is the Basis 1.0 type (A_25044), with domainExceptions instead of
	// serverExceptions.
	TypePermissionConfigLegacy = "de.gematik.tim.account.permissionconfig.v1"
)

// Deployment variants.
const (
	// VariantPro is a TI-M Pro Fachdienst (practitioners and organisations).
	VariantPro = "pro"
	// VariantEPA is a TI-M ePA Fachdienst (insured persons).
	VariantEPA = "epa"
)

// Permission-config constants.
const (
	// MaxPermissionConfigSize bounds a config's JSON; Matrix caps events at 64 KiB as well.
	MaxPermissionConfigSize = 64 << 10
	// DefaultAllowAll and DefaultBlockAll are the two defaultSetting values.
	DefaultAllowAll = "allow all"
	DefaultBlockAll = "block all"
	// GroupInsuredPerson is the only group defined so far.
	GroupInsuredPerson = "isInsuredPerson"
	// LocalServerTemplate in a server default's serverExceptions stands for the local server name (the
	// same template Famedly's invite checker supports).
	LocalServerTemplate = "@LOCAL_SERVER@"
)

// PermissionConfigTypes returns the account-data types a variant reads, preferred first.
func PermissionConfigTypes(variant string) ([]string, error) {
	switch variant {
	case VariantPro:
		return []string{TypePermissionConfigPro, TypePermissionConfigLegacy}, nil
	case VariantEPA:
		return []string{TypePermissionConfigEPA, TypePermissionConfigLegacy}, nil
	}
	return nil, fmt.Errorf("variant %q: must be %q or %q", variant, VariantPro, VariantEPA)
}

// ParsePermissionConfig validates and decodes a permission configuration of the given account-data type.
//
// Rules, beyond the JSON schema where the schema is silent or lax:
//   - defaultSetting is required and must be "allow all" or "block all";
//   - userExceptions keys must start with '@'; every exception value must be a JSON object (its content
//     is reserved and ignored);
//   - groupExceptions (Pro only) items must be objects whose groupName is "isInsuredPerson": the Pro
//     schema puts groupName directly under items, so a schema validator would accept anything there;
//     duplicate items are folded rather than rejected;
//   - the legacy type's domainExceptions become ServerExceptions; groupExceptions is not read for the
//     legacy and ePA types (neither defines it; ePA users are insured themselves);
//   - an exception field that is JSON null counts as absent, so a client's sloppy null does not throw the
//     user back to the server default;
//   - unknown fields are tolerated (forward compatibility); the whole document is at most 64 KiB.
func ParsePermissionConfig(eventType string, raw []byte) (policy.PermissionConfig, error) {
	var zero policy.PermissionConfig
	if len(raw) > MaxPermissionConfigSize {
		return zero, fmt.Errorf("permission config: larger than %d bytes", MaxPermissionConfigSize)
	}
	serverKey := "serverExceptions"
	groups := false
	switch eventType {
	case TypePermissionConfigPro:
		groups = true
	case TypePermissionConfigEPA:
	case TypePermissionConfigLegacy:
		serverKey = "domainExceptions"
	default:
		return zero, fmt.Errorf("permission config: unknown type %q", eventType)
	}
	var top map[string]json.RawMessage
	if err := strictUnmarshal(raw, &top); err != nil || top == nil {
		return zero, errors.New("permission config: not a JSON object")
	}
	out := policy.PermissionConfig{
		UserExceptions:   map[string]struct{}{},
		ServerExceptions: map[string]struct{}{},
		GroupExceptions:  []string{},
	}
	ds, ok := top["defaultSetting"]
	if !ok {
		return zero, errors.New("permission config: defaultSetting missing")
	}
	if err := json.Unmarshal(ds, &out.DefaultSetting); err != nil ||
		(out.DefaultSetting != DefaultAllowAll && out.DefaultSetting != DefaultBlockAll) {
		return zero, errors.New(`permission config: defaultSetting must be "allow all" or "block all"`)
	}
	if err := exceptionMap(top[serverKey], serverKey, nil, out.ServerExceptions); err != nil {
		return zero, err
	}
	atPrefix := func(k string) bool { return strings.HasPrefix(k, "@") }
	if err := exceptionMap(top["userExceptions"], "userExceptions", atPrefix, out.UserExceptions); err != nil {
		return zero, err
	}
	if groups {
		g, err := groupExceptions(top["groupExceptions"])
		if err != nil {
			return zero, err
		}
		out.GroupExceptions = g
	}
	return out, nil
}

func strictUnmarshal(raw []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("trailing data")
	}
	return nil
}

func isNull(raw json.RawMessage) bool {
	return len(raw) == 0 || string(bytes.TrimSpace(raw)) == "null"
}

func isObject(raw json.RawMessage) bool {
	b := bytes.TrimSpace(raw)
	return len(b) > 0 && b[0] == '{'
}

func exceptionMap(raw json.RawMessage, field string, keyOK func(string) bool, into map[string]struct{}) error {
	if isNull(raw) {
		return nil
	}
	var m map[string]json.RawMessage
	if !isObject(raw) || json.Unmarshal(raw, &m) != nil {
		return fmt.Errorf("permission config: %s must be an object", field)
	}
	for k, v := range m {
		if keyOK != nil && !keyOK(k) {
			return fmt.Errorf("permission config: %s key must be a Matrix user ID", field)
		}
		if !isObject(v) {
			return fmt.Errorf("permission config: %s values must be objects", field)
		}
		into[k] = struct{}{}
	}
	return nil
}

func groupExceptions(raw json.RawMessage) ([]string, error) {
	out := []string{}
	if isNull(raw) {
		return out, nil
	}
	var items []json.RawMessage
	if b := bytes.TrimSpace(raw); len(b) == 0 || b[0] != '[' || json.Unmarshal(raw, &items) != nil {
		return nil, errors.New("permission config: groupExceptions must be an array")
	}
	for _, it := range items {
		var g struct {
			GroupName *string `json:"groupName"`
		}
		if !isObject(it) || json.Unmarshal(it, &g) != nil || g.GroupName == nil {
			return nil, errors.New("permission config: groupExceptions items must be objects with groupName")
		}
		if *g.GroupName != GroupInsuredPerson {
			return nil, fmt.Errorf("permission config: unknown group (only %q is defined)", GroupInsuredPerson)
		}
		if !slices.Contains(out, *g.GroupName) {
			out = append(out, *g.GroupName)
		}
	}
	return out, nil
}

// EncodePermissionConfig renders c in the wire format of eventType (legacy: domainExceptions; Pro:
// groupExceptions as {"groupName": …} items). The proxy uses it to answer a user's GET of an absent
// config with the server default.
func EncodePermissionConfig(eventType string, c policy.PermissionConfig) ([]byte, error) {
	obj := func(m map[string]struct{}) map[string]struct{} {
		if m == nil {
			return map[string]struct{}{}
		}
		return m
	}
	out := map[string]any{"defaultSetting": c.DefaultSetting, "userExceptions": obj(c.UserExceptions)}
	switch eventType {
	case TypePermissionConfigPro:
		out["serverExceptions"] = obj(c.ServerExceptions)
		items := make([]map[string]string, 0, len(c.GroupExceptions))
		for _, g := range c.GroupExceptions {
			items = append(items, map[string]string{"groupName": g})
		}
		out["groupExceptions"] = items
	case TypePermissionConfigEPA:
		out["serverExceptions"] = obj(c.ServerExceptions)
	case TypePermissionConfigLegacy:
		out["domainExceptions"] = obj(c.ServerExceptions)
	default:
		return nil, fmt.Errorf("permission config: unknown type %q", eventType)
	}
	b, err := json.Marshal(out)
	if err != nil {
		return nil, fmt.Errorf("permission config: %w", err)
	}
	// Round-trip through the parser so the proxy never hands out what it would itself reject.
	if _, err := ParsePermissionConfig(eventType, b); err != nil {
		return nil, err
	}
	return b, nil
}

func clonePermissionConfig(c policy.PermissionConfig) policy.PermissionConfig {
	return policy.PermissionConfig{
		DefaultSetting:   c.DefaultSetting,
		UserExceptions:   maps.Clone(c.UserExceptions),
		ServerExceptions: maps.Clone(c.ServerExceptions),
		GroupExceptions:  slices.Clone(c.GroupExceptions),
	}
}

// PermissionStore answers "what is this local user's permission config?" for the invite checks. It reads
// account data through the appservice (no admin API), caches answers for a bounded time and count, and
// collapses concurrent reads of one user into one homeserver call.
//
// Policy on what it returns:
//   - no config of any of the variant's types → the server default;
//   - a malformed config → the server default, logged at Warn (without the body). This is what Famedly's
//     invite checker effectively does by resetting broken configs; the proxy cannot write the reset itself
//     without becoming the user, and refusing every invite instead would let one bad client write lock a
//     user out without telling them why;
//   - the homeserver cannot be asked (timeout, 5xx, 403) → the error. Callers must deny: an error never
//     means "allow".
type PermissionStore struct {
	client     *Client
	types      []string
	def        policy.PermissionConfig
	ttl        time.Duration
	maxEntries int
	now        func() time.Time
	log        *slog.Logger

	mu       sync.Mutex
	entries  map[string]*list.Element // userID → element holding *cacheEntry
	lru      *list.List               // front = most recently used
	inflight map[string]*flight
}

type cacheEntry struct {
	user    string
	cfg     policy.PermissionConfig
	expires time.Time
}

type flight struct {
	done chan struct{}
	cfg  policy.PermissionConfig
	err  error
	// stale is set (under the store's lock) by Invalidate: the answer may predate the user's PUT, so it
	// is handed to the callers already waiting but not cached.
	stale bool
}

// NewPermissionStore returns a store for variant ("pro" or "epa"). serverDefault is the operator's
// default; LocalServerTemplate among its serverExceptions is replaced by the client's server name.
// ttl and maxEntries bound the cache (ttl ≤ 0 disables caching); now is the clock (nil: time.Now);
// log receives malformed-config warnings (nil: discarded).
func NewPermissionStore(client *Client, variant string, serverDefault policy.PermissionConfig, ttl time.Duration,
	maxEntries int, now func() time.Time, log *slog.Logger) (*PermissionStore, error) {
	if client == nil {
		return nil, errors.New("permission store: nil client")
	}
	types, err := PermissionConfigTypes(variant)
	if err != nil {
		return nil, fmt.Errorf("permission store: %w", err)
	}
	if serverDefault.DefaultSetting != DefaultAllowAll && serverDefault.DefaultSetting != DefaultBlockAll {
		return nil, errors.New(`permission store: server default's defaultSetting must be "allow all" or "block all"`)
	}
	for _, g := range serverDefault.GroupExceptions {
		if g != GroupInsuredPerson {
			return nil, fmt.Errorf("permission store: server default names unknown group %q", g)
		}
	}
	for u := range serverDefault.UserExceptions {
		if !strings.HasPrefix(u, "@") {
			return nil, fmt.Errorf("permission store: server default user exception %q is not a user ID", u)
		}
	}
	def := clonePermissionConfig(serverDefault)
	if def.UserExceptions == nil {
		def.UserExceptions = map[string]struct{}{}
	}
	def.ServerExceptions = map[string]struct{}{}
	for s := range serverDefault.ServerExceptions {
		def.ServerExceptions[strings.ReplaceAll(s, LocalServerTemplate, client.ServerName())] = struct{}{}
	}
	if def.GroupExceptions == nil {
		def.GroupExceptions = []string{}
	}
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if maxEntries <= 0 {
		maxEntries = 10000
	}
	return &PermissionStore{
		client: client, types: types, def: def, ttl: ttl, maxEntries: maxEntries, now: now, log: log,
		entries: map[string]*list.Element{}, lru: list.New(), inflight: map[string]*flight{},
	}, nil
}

// DefaultFor returns the server default as it applies to userID (template resolved). The proxy answers
// a user's GET of an absent config with it.
func (s *PermissionStore) DefaultFor(userID string) policy.PermissionConfig {
	return clonePermissionConfig(s.def)
}

// Get returns userID's effective permission config. See the type's doc for absent, malformed and
// unreachable cases; on error the caller must deny. A local user the homeserver does not know is an
// error too (Synapse refuses the masquerade with 403 M_FORBIDDEN), which is the right answer for an
// invite to a user who does not exist.
func (s *PermissionStore) Get(ctx context.Context, userID string) (policy.PermissionConfig, error) {
	if !s.client.IsLocalUser(userID) {
		return policy.PermissionConfig{}, fmt.Errorf("permission store: %s is not a local user", userID)
	}
	s.mu.Lock()
	if el, ok := s.entries[userID]; ok {
		e := el.Value.(*cacheEntry)
		if s.now().Before(e.expires) {
			s.lru.MoveToFront(el)
			cfg := clonePermissionConfig(e.cfg)
			s.mu.Unlock()
			return cfg, nil
		}
		s.removeLocked(el)
	}
	if f, ok := s.inflight[userID]; ok {
		s.mu.Unlock()
		return s.wait(ctx, f)
	}
	f := &flight{done: make(chan struct{})}
	s.inflight[userID] = f
	s.mu.Unlock()

	// The fetch runs detached from the first caller's cancellation so that waiters sharing it are not
	// failed by someone else's cancelled request; the client still bounds it with its own timeout.
	go func() {
		cfg, err := s.fetch(context.WithoutCancel(ctx), userID)
		s.mu.Lock()
		f.cfg, f.err = cfg, err
		if s.inflight[userID] == f {
			delete(s.inflight, userID)
		}
		if err == nil && s.ttl > 0 && !f.stale {
			s.storeLocked(userID, cfg)
		}
		s.mu.Unlock()
		close(f.done)
	}()
	return s.wait(ctx, f)
}

func (s *PermissionStore) wait(ctx context.Context, f *flight) (policy.PermissionConfig, error) {
	select {
	case <-f.done:
		if f.err != nil {
			return policy.PermissionConfig{}, f.err
		}
		return clonePermissionConfig(f.cfg), nil
	case <-ctx.Done():
		return policy.PermissionConfig{}, fmt.Errorf("permission store: %w", ctx.Err())
	}
}

func (s *PermissionStore) fetch(ctx context.Context, userID string) (policy.PermissionConfig, error) {
	for _, t := range s.types {
		raw, found, err := s.client.AccountData(ctx, userID, t)
		if err != nil {
			return policy.PermissionConfig{}, fmt.Errorf("permission store: %w", err)
		}
		if !found {
			continue
		}
		cfg, err := ParsePermissionConfig(t, raw)
		if err != nil {
			s.log.Warn("malformed permission config, using the server default",
				"user_id", userID, "type", t, "error", err.Error())
			return clonePermissionConfig(s.def), nil
		}
		return cfg, nil
	}
	return clonePermissionConfig(s.def), nil
}

// Invalidate drops userID's cached config; the proxy calls it when the user's own PUT of a permission
// config passes through, so the next invite check reads the new one. A read already in flight is not
// cached afterwards.
func (s *PermissionStore) Invalidate(userID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if el, ok := s.entries[userID]; ok {
		s.removeLocked(el)
	}
	if f, ok := s.inflight[userID]; ok {
		f.stale = true
		delete(s.inflight, userID)
	}
}

func (s *PermissionStore) storeLocked(userID string, cfg policy.PermissionConfig) {
	if el, ok := s.entries[userID]; ok {
		s.removeLocked(el)
	}
	for s.lru.Len() >= s.maxEntries {
		s.removeLocked(s.lru.Back())
	}
	s.entries[userID] = s.lru.PushFront(&cacheEntry{user: userID, cfg: cfg, expires: s.now().Add(s.ttl)})
}

func (s *PermissionStore) removeLocked(el *list.Element) {
	delete(s.entries, el.Value.(*cacheEntry).user)
	s.lru.Remove(el)
}
