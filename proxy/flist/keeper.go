// Package flist holds the proxy's verified federation list (tim-proxy-spec §3.4): it fetches the signed list
// from a Source, verifies it completely before use, swaps it atomically, persists it, tracks the last
// verified contact with the source against TTL_Föderationsliste, and refetches once (rate-limited) when a
// domain is not on the list (A_25537).
//
// Fail closed: a list is used only after full verification (signature, chain, role, OCSP, as the caller's
// Verifier decides); nothing read from disk is trusted without re-verification; a list without a verified
// contact for longer than MaxAge is stale, and a keeper without any verified list is unavailable. What the
// proxy does with a stale or unavailable list is the policy's business; the keeper reports it.
package flist

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/timstack/timstack/certs"
)

// Status values of a Snapshot.
const (
	// StatusFresh: a verified list and a verified contact with the source within MaxAge.
	StatusFresh = "fresh"
	// StatusStale: a verified list, but no verified contact within MaxAge (or its time is unknown).
	StatusStale = "stale"
	// StatusUnavailable: no verified list at all.
	StatusUnavailable = "unavailable"
)

// ErrRollback is returned when the source offers a correctly signed list older than the one held. That is
// what a replayed old list looks like, so it is refused and does not count as contact.
var ErrRollback = errors.New("federation list older than the one held (possible rollback)")

// Verifier verifies a compact JWS federation list completely at time at, or refuses it. The caller builds
// it around certs.VerifyFederationList with its trust store and OCSP policy.
type Verifier func(ctx context.Context, jws []byte, at time.Time) (*certs.FederationList, error)

// Snapshot is the keeper's state at one moment. Status and Reason are computed against the clock when the
// snapshot is taken.
type Snapshot struct {
	// List is the verified list in use; nil when Status is unavailable. A stale snapshot still carries the
	// last verified list so that callers can tell "unknown domain" from "no data", but it must not be used
	// to allow federation.
	List *certs.FederationList
	// Version is List's version, 0 without a list.
	Version int64
	// LastContact is the time of the last verified contact with the source (zero if unknown).
	LastContact time.Time
	// Status is StatusFresh, StatusStale or StatusUnavailable.
	Status string
	// Reason explains Status for operators, e.g. "no verified contact with the source for 73h12m (max 72h)".
	Reason string
}

// state is immutable once stored; every change stores a new one.
type state struct {
	list      *certs.FederationList
	contact   time.Time // last verified contact; zero = unknown
	fetchedAt time.Time // when list was first received
	lastErr   string    // last refresh failure, "" after a success
}

// Keeper holds the verified federation list. All methods are safe for concurrent use.
type Keeper struct {
	cfg     Config
	src     Source
	verify  Verifier
	log     *slog.Logger
	now     func() time.Time
	started time.Time

	st        atomic.Pointer[state]
	refreshMu sync.Mutex // one fetch at a time; st is only written under it (and in New)

	missMu   sync.Mutex
	missAt   time.Time // start of the last forced refetch
	missCall *missCall // forced refetch in flight, shared by concurrent misses

	subMu  sync.Mutex
	subs   map[int]func(Snapshot)
	nextID int

	notifyMu   sync.Mutex
	lastList   *certs.FederationList
	lastStatus string
}

type missCall struct{ done chan struct{} }

// New builds a keeper. It loads the cached list from cfg.CacheDir (creating the directory), verifies it
// again at now() and restores its last verified contact time from the meta file; a cached list that fails
// verification is ignored. New does not contact the source: Run or Refresh does. A nil log discards, a nil
// now is time.Now.
func New(cfg Config, src Source, verify Verifier, log *slog.Logger, now func() time.Time) (*Keeper, error) {
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if src == nil || verify == nil {
		return nil, errors.New("federation list: a source and a verifier are required")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if now == nil {
		now = time.Now
	}
	k := &Keeper{cfg: cfg, src: src, verify: verify, log: log, now: now, started: now(), subs: map[int]func(Snapshot){}}
	st := &state{}
	if cfg.CacheDir != "" {
		if err := os.MkdirAll(cfg.CacheDir, 0o700); err != nil {
			return nil, fmt.Errorf("federation_list.cache_dir: %w", err)
		}
		st = k.loadCached()
	}
	k.st.Store(st)
	s := k.Snapshot()
	k.lastList, k.lastStatus = s.List, s.Status
	return k, nil
}

// loadCached re-verifies the cached list. Any problem leaves the keeper without a list (or without a known
// contact time), never with an unverified one.
func (k *Keeper) loadCached() *state {
	jws, m, metaErr, err := loadCache(k.cfg.CacheDir)
	if err != nil {
		k.log.Error("federation list cache unreadable; starting without a list", "err", err)
		return &state{lastErr: "cached list unreadable: " + err.Error()}
	}
	if jws == nil {
		return &state{}
	}
	ctx, cancel := context.WithTimeout(context.Background(), k.cfg.FetchTimeout)
	defer cancel()
	l, err := k.verify(ctx, jws, k.now())
	if err == nil && l == nil {
		err = errors.New("verifier returned no list")
	}
	if err != nil {
		k.log.Error("cached federation list refused; starting without a list", "err", err)
		return &state{lastErr: "cached list refused: " + err.Error()}
	}
	st := &state{list: l, fetchedAt: m.FetchedAt}
	switch {
	case metaErr != nil:
		k.log.Warn("federation list meta unusable; the list counts as stale until the source is reached", "err", metaErr)
	case m.Version != l.Version:
		k.log.Warn("federation list meta belongs to another version; the list counts as stale until the source is reached",
			"meta_version", m.Version, "list_version", l.Version)
	case m.LastVerifiedContact.After(k.now()):
		k.log.Warn("federation list meta has a contact time in the future; ignored", "last_verified_contact", m.LastVerifiedContact)
	default:
		st.contact = m.LastVerifiedContact
	}
	k.log.Info("federation list loaded from cache", "version", l.Version, "domains", l.Len(), "last_verified_contact", st.contact)
	return st
}

// Snapshot returns the current list and its status against now().
func (k *Keeper) Snapshot() Snapshot {
	s := k.st.Load()
	snap := Snapshot{List: s.list, LastContact: s.contact}
	if s.list == nil {
		snap.Status = StatusUnavailable
		snap.Reason = "no federation list yet"
		if s.lastErr != "" {
			snap.Reason += ": " + s.lastErr
		}
		return snap
	}
	snap.Version = s.list.Version
	now := k.now()
	switch age := now.Sub(s.contact); {
	case s.contact.IsZero():
		snap.Status = StatusStale
		snap.Reason = fmt.Sprintf("no verified contact with the source since the cached list (version %d) was loaded; its last contact time is unknown", s.list.Version)
	case age > k.cfg.MaxAge:
		snap.Status = StatusStale
		snap.Reason = fmt.Sprintf("no verified contact with the source for %s (max %s)", formatAge(age), formatAge(k.cfg.MaxAge))
	default:
		snap.Status = StatusFresh
		snap.Reason = fmt.Sprintf("verified contact with the source %s ago", formatAge(age))
	}
	if snap.Status != StatusFresh && s.lastErr != "" {
		snap.Reason += "; last error: " + s.lastErr
	}
	return snap
}

// Age is the time since the last verified contact with the source, or since the keeper started when
// there never was one; the proxy exports it as timstack_federation_list_age_seconds.
func (k *Keeper) Age() time.Duration {
	s := k.st.Load()
	if s.contact.IsZero() {
		return k.now().Sub(k.started)
	}
	return k.now().Sub(s.contact)
}

// Version is the version of the list in use, 0 without one.
func (k *Keeper) Version() int64 {
	if l := k.st.Load().list; l != nil {
		return l.Version
	}
	return 0
}

// Subscribe registers fn to be called after every change of the list or of the status, in order, from
// the goroutine that caused the change. fn must not call Refresh. It is not called for the current state;
// take a Snapshot for that. The returned function unsubscribes.
func (k *Keeper) Subscribe(fn func(Snapshot)) (unsubscribe func()) {
	k.subMu.Lock()
	defer k.subMu.Unlock()
	id := k.nextID
	k.nextID++
	k.subs[id] = fn
	return func() {
		k.subMu.Lock()
		defer k.subMu.Unlock()
		delete(k.subs, id)
	}
}

// notifyIfChanged calls the subscribers when the list or the status differs from what they last saw.
func (k *Keeper) notifyIfChanged() {
	k.notifyMu.Lock()
	defer k.notifyMu.Unlock()
	s := k.Snapshot()
	if s.List == k.lastList && s.Status == k.lastStatus {
		return
	}
	k.lastList, k.lastStatus = s.List, s.Status
	k.log.Info("federation list state changed", "status", s.Status, "version", s.Version, "reason", s.Reason)
	k.subMu.Lock()
	subs := make([]func(Snapshot), 0, len(k.subs))
	for id := 0; id < k.nextID; id++ {
		if fn, ok := k.subs[id]; ok {
			subs = append(subs, fn)
		}
	}
	k.subMu.Unlock()
	for _, fn := range subs {
		k.call(fn, s)
	}
}

func (k *Keeper) call(fn func(Snapshot), s Snapshot) {
	defer func() {
		if r := recover(); r != nil {
			k.log.Error("federation list subscriber panicked", "panic", fmt.Sprint(r))
		}
	}()
	fn(s)
}

// Run refreshes now and then every RefreshInterval (jittered) until ctx ends. It also wakes when the
// list turns stale so that subscribers learn of it without waiting for the next poll.
func (k *Keeper) Run(ctx context.Context) {
	_ = k.Refresh(ctx)
	for {
		k.notifyIfChanged()
		refresh := time.NewTimer(k.jitter(k.cfg.RefreshInterval))
		var staleC <-chan time.Time
		var stale *time.Timer
		if d, ok := k.untilStale(); ok {
			stale = time.NewTimer(d + time.Millisecond)
			staleC = stale.C
		}
		select {
		case <-ctx.Done():
		case <-refresh.C:
			_ = k.Refresh(ctx)
		case <-staleC:
		}
		refresh.Stop()
		if stale != nil {
			stale.Stop()
		}
		if ctx.Err() != nil {
			return
		}
	}
}

func (k *Keeper) jitter(d time.Duration) time.Duration {
	spread := int64(d / 5) // ±10%
	if spread <= 0 {
		return d
	}
	return d - time.Duration(spread/2) + time.Duration(rand.Int64N(spread))
}

// untilStale is how long a fresh list stays fresh; false when it is not fresh now.
func (k *Keeper) untilStale() (time.Duration, bool) {
	s := k.st.Load()
	if s.list == nil || s.contact.IsZero() {
		return 0, false
	}
	d := s.contact.Add(k.cfg.MaxAge).Sub(k.now())
	return d, d >= 0
}

// Refresh fetches once and applies the answer: a newer verified list replaces the old one; a verified
// list of the same version, or a "current" answer while the held list still verifies, counts as contact;
// anything else keeps the old list, does not count as contact, and is returned as an error (and logged).
func (k *Keeper) Refresh(ctx context.Context) error {
	k.refreshMu.Lock()
	err := k.refresh(ctx)
	k.refreshMu.Unlock()
	k.notifyIfChanged()
	return err
}

func (k *Keeper) refresh(ctx context.Context) error {
	cur := k.st.Load()
	have := int64(-1)
	if cur.list != nil {
		have = cur.list.Version
	}
	fctx, cancel := context.WithTimeout(ctx, k.cfg.FetchTimeout)
	jws, current, err := k.src.Fetch(fctx, have)
	cancel()
	if err != nil {
		return k.fail(ctx, cur, slog.LevelWarn, "federation list source failed; keeping the current list", fmt.Errorf("fetch: %w", err))
	}
	if current {
		if cur.list == nil {
			return k.fail(ctx, cur, slog.LevelError, "federation list source claims we are current, but we hold no list",
				errors.New("source answered 'current' but no verified list is held"))
		}
		// The held list was verified when it arrived; its signer may have expired or been revoked since.
		// A contact only counts while the list we vouch for still verifies (OCSP answers are cached, so this
		// costs one signature check per poll).
		vctx, cancel := context.WithTimeout(ctx, k.cfg.FetchTimeout)
		_, err := k.verify(vctx, cur.list.JWS, k.now())
		cancel()
		if err != nil {
			return k.fail(ctx, cur, slog.LevelError, "held federation list no longer verifies; not counted as contact",
				fmt.Errorf("re-verify held list: %w", err))
		}
		k.contact(cur, cur.list, false)
		return nil
	}
	vctx, cancel := context.WithTimeout(ctx, k.cfg.FetchTimeout)
	l, err := k.verify(vctx, jws, k.now())
	cancel()
	if err == nil && l == nil {
		err = errors.New("verifier returned no list")
	}
	if err != nil {
		return k.fail(ctx, cur, slog.LevelError, "federation list refused; keeping the current list", fmt.Errorf("verify: %w", err))
	}
	switch {
	case cur.list != nil && l.Version < cur.list.Version:
		return k.fail(ctx, cur, slog.LevelError, "federation list refused; keeping the current list",
			fmt.Errorf("%w: offered version %d, holding %d", ErrRollback, l.Version, cur.list.Version))
	case cur.list != nil && l.Version == cur.list.Version:
		// Re-signed or re-sent, but no news: keep the list in use, count the contact.
		k.contact(cur, cur.list, false)
	default:
		k.log.Info("federation list updated", "version", l.Version, "previous_version", have, "domains", l.Len(),
			"signer", l.Signer.Subject.CommonName)
		k.contact(cur, l, true)
	}
	return nil
}

// contact records a verified contact (with list, which may be a new one) and persists it.
func (k *Keeper) contact(cur *state, list *certs.FederationList, isNew bool) {
	now := k.now()
	ns := &state{list: list, contact: now, fetchedAt: cur.fetchedAt}
	if isNew || ns.fetchedAt.IsZero() {
		ns.fetchedAt = now
	}
	k.st.Store(ns)
	if k.cfg.CacheDir == "" {
		return
	}
	var jws []byte
	if isNew {
		jws = list.JWS
	}
	if err := saveCache(k.cfg.CacheDir, jws, meta{Version: list.Version, LastVerifiedContact: now, FetchedAt: ns.fetchedAt}); err != nil {
		// The list in memory is good; only a restart would lose the contact time, and that fails closed.
		k.log.Error("federation list cache not written", "err", err)
	}
}

// fail keeps the current list, records why, and returns the error.
func (k *Keeper) fail(ctx context.Context, cur *state, level slog.Level, msg string, err error) error {
	ns := *cur
	ns.lastErr = err.Error()
	k.st.Store(&ns)
	if ctx.Err() != nil {
		level = slog.LevelDebug // shutting down; not worth an operator's attention
	}
	k.log.Log(ctx, level, msg, "err", err, "have_version", versionOf(cur.list))
	return fmt.Errorf("federation list: %w", err)
}

func versionOf(l *certs.FederationList) int64 {
	if l == nil {
		return -1
	}
	return l.Version
}

// Lookup finds domain on the list. On a miss it forces one refetch and looks again (A_25537: refresh the
// list before refusing an unknown domain). Forced refetches start at most once per MissRefreshMinInterval;
// concurrent misses share one and wait at most FetchTimeout for it. The returned Snapshot says whether
// the list may be used: callers must deny unless its Status is StatusFresh.
func (k *Keeper) Lookup(ctx context.Context, domain string) (certs.FederationDomain, bool, Snapshot) {
	s := k.Snapshot()
	if d, ok := s.List.Lookup(domain); ok {
		return d, true, s
	}
	k.forceRefresh(ctx, domain)
	s = k.Snapshot()
	d, ok := s.List.Lookup(domain)
	return d, ok, s
}

func (k *Keeper) forceRefresh(ctx context.Context, domain string) {
	k.missMu.Lock()
	c := k.missCall
	if c == nil {
		now := k.now()
		if !k.missAt.IsZero() && now.Sub(k.missAt) < k.cfg.MissRefreshMinInterval {
			k.missMu.Unlock()
			return
		}
		k.missAt = now
		c = &missCall{done: make(chan struct{})}
		k.missCall = c
		k.log.Debug("domain not on the federation list; refetching", "domain", strings.ToLower(domain))
		// Detached from the caller: one impatient request must not cancel the refetch others wait for.
		go func() {
			_ = k.Refresh(context.Background())
			k.missMu.Lock()
			k.missCall = nil
			k.missMu.Unlock()
			close(c.done)
		}()
	}
	k.missMu.Unlock()
	t := time.NewTimer(k.cfg.FetchTimeout)
	defer t.Stop()
	select {
	case <-c.done:
	case <-ctx.Done():
	case <-t.C:
	}
}

// formatAge prints a duration the way operators read list ages: "73h12m", "72h", "5m", "40s".
func formatAge(d time.Duration) string {
	if d < time.Minute {
		return d.Truncate(time.Second).String()
	}
	d = d.Truncate(time.Minute)
	h, m := int64(d/time.Hour), int64(d%time.Hour/time.Minute)
	switch {
	case h == 0:
		return fmt.Sprintf("%dm", m)
	case m == 0:
		return fmt.Sprintf("%dh", h)
	}
	return fmt.Sprintf("%dh%dm", h, m)
}
