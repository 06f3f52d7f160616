package registration

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/timstack/timstack/certs"
)

// ListSource is where the federation list comes from (the directory client satisfies it).
type ListSource interface {
	FederationList(ctx context.Context, have int64) (jws []byte, current bool, err error)
}

// ListKeeper keeps the last verified federation list: it refreshes from the directory, verifies every new
// list before it replaces the stored one, and knows when its contact with the directory is too old.
type ListKeeper struct {
	Source ListSource
	Store  Store
	// Trust holds the component CAs the list signer must chain to; Revocation checks it (nil: no OCSP).
	Trust      *certs.TrustStore
	Revocation certs.RevocationChecker
	// MaxAge is TTL_Föderationsliste: past it without verified contact the list is outdated (default 72 h).
	MaxAge time.Duration
	Now    func() time.Time
	Log    *slog.Logger

	refreshMu sync.Mutex // one refresh at a time
	mu        sync.Mutex // guards cached
	cached    *cachedList
}

type cachedList struct {
	stored StoredList
	list   *certs.FederationList
}

// DefaultListMaxAge is TTL_Föderationsliste.
const DefaultListMaxAge = 72 * time.Hour

// ErrNoList: no federation list has been verified yet.
var ErrNoList = errors.New("no verified federation list yet")

func (k *ListKeeper) now() time.Time {
	if k.Now != nil {
		return k.Now()
	}
	return time.Now()
}

func (k *ListKeeper) maxAge() time.Duration {
	if k.MaxAge > 0 {
		return k.MaxAge
	}
	return DefaultListMaxAge
}

// load reads the stored list once and re-verifies it (signature and chain at its own verification time
// are not re-checked against "now": the certificate may have expired since, but the list stays the last
// good one until the directory hands out a newer one; the age rule limits how long it is served).
func (k *ListKeeper) load(ctx context.Context) (*cachedList, error) {
	if k.cached != nil {
		return k.cached, nil
	}
	st, err := k.Store.FederationList(ctx)
	if errors.Is(err, ErrNotFound) {
		return nil, ErrNoList
	}
	if err != nil {
		return nil, err
	}
	// Parse (not trust) the stored bytes again: they were verified before they were stored, and this
	// process needs the domain index for /tim-information.
	l, err := certs.VerifyFederationList(ctx, st.JWS, certs.FederationListOptions{Trust: k.Trust, At: st.VerifiedContact})
	if err != nil {
		return nil, fmt.Errorf("stored federation list no longer verifies: %w", err)
	}
	k.cached = &cachedList{stored: *st, list: l}
	return k.cached, nil
}

// Current returns the stored list and its parsed form.
func (k *ListKeeper) Current(ctx context.Context) (*StoredList, *certs.FederationList, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	c, err := k.load(ctx)
	if err != nil {
		return nil, nil, err
	}
	s := c.stored
	return &s, c.list, nil
}

// Outdated says whether the list must not be handed to proxies as current: none verified yet, or no
// verified contact with the directory for longer than MaxAge. The reason is for logs and the 503 body.
func (k *ListKeeper) Outdated(ctx context.Context) (bool, string) {
	st, _, err := k.Current(ctx)
	if err != nil {
		return true, err.Error()
	}
	age := k.now().Sub(st.VerifiedContact)
	if age > k.maxAge() {
		return true, fmt.Sprintf("no verified contact with the directory for %s (limit %s)", age.Truncate(time.Minute), k.maxAge())
	}
	return false, ""
}

// Refresh asks the directory for a newer list. A new list is verified before it replaces the stored one;
// "current" (204) and a verified list of the same version count as verified contact. A list older than
// the stored one is refused (rollback) and not counted as contact. Refreshes are serialised; readers are
// not blocked while the directory is asked.
func (k *ListKeeper) Refresh(ctx context.Context) error {
	k.refreshMu.Lock()
	defer k.refreshMu.Unlock()
	k.mu.Lock()
	cur, err := k.load(ctx)
	k.mu.Unlock()
	have := int64(-1)
	switch {
	case err == nil:
		have = cur.stored.Version
	case errors.Is(err, ErrNoList):
	default:
		// A stored list that no longer verifies is ignored: fetch a fresh one.
		k.log().Warn("federation list: ignoring stored list", "err", err)
	}
	jws, current, err := k.Source.FederationList(ctx, have)
	if err != nil {
		return fmt.Errorf("federation list refresh: %w", err)
	}
	now := k.now()
	if current {
		if cur == nil {
			return errors.New("federation list refresh: the directory says current, but no list is held")
		}
		if err := k.Store.TouchFederationList(ctx, cur.stored.Version, now); err != nil {
			return fmt.Errorf("federation list refresh: %w", err)
		}
		k.mu.Lock()
		k.cached = &cachedList{stored: StoredList{JWS: cur.stored.JWS, Version: cur.stored.Version, VerifiedContact: fromUnix(unix(now))}, list: cur.list}
		k.mu.Unlock()
		return nil
	}
	l, err := certs.VerifyFederationList(ctx, jws, certs.FederationListOptions{Trust: k.Trust, At: now, Revocation: k.Revocation,
		Algorithms: []certs.JWSAlgorithm{certs.AlgBP256R1}})
	if err != nil {
		return fmt.Errorf("federation list refresh: %w", err)
	}
	if cur != nil && l.Version < cur.stored.Version {
		return fmt.Errorf("federation list refresh: directory sent version %d, older than the held %d", l.Version, cur.stored.Version)
	}
	st := StoredList{JWS: l.JWS, Version: l.Version, VerifiedContact: fromUnix(unix(now))}
	if err := k.Store.SaveFederationList(ctx, st); err != nil {
		return fmt.Errorf("federation list refresh: %w", err)
	}
	if cur == nil || l.Version != cur.stored.Version {
		k.log().Info("federation list updated", "version", l.Version, "domains", l.Len())
	}
	k.mu.Lock()
	k.cached = &cachedList{stored: st, list: l}
	k.mu.Unlock()
	return nil
}

func (k *ListKeeper) log() *slog.Logger {
	if k.Log != nil {
		return k.Log
	}
	return slog.New(slog.DiscardHandler)
}

// RefreshSchedule is the polling rhythm: every Interval; after a failure up to Retries more attempts,
// RetryInterval apart, before an incident is logged and the next regular attempt waits for Interval.
type RefreshSchedule struct {
	Interval      time.Duration
	RetryInterval time.Duration
	Retries       int
}

// Run refreshes on schedule until ctx ends. The first refresh happens at once.
func (k *ListKeeper) Run(ctx context.Context, s RefreshSchedule, sleep func(context.Context, time.Duration) bool) {
	if sleep == nil {
		sleep = sleepCtx
	}
	for {
		err := k.Refresh(ctx)
		for i := 0; err != nil && i < s.Retries; i++ {
			k.log().Warn("federation list refresh failed, retrying", "err", err, "retry_in", s.RetryInterval.String(), "attempt", i+1)
			if !sleep(ctx, s.RetryInterval) {
				return
			}
			err = k.Refresh(ctx)
		}
		if err != nil {
			// The incident: the last good list is still served until it is outdated.
			k.log().Error("federation list refresh failed after retries; serving the last verified list", "err", err, "retries", s.Retries)
		}
		if out, reason := k.Outdated(ctx); out {
			k.log().Error("federation list outdated: proxies are answered 503", "reason", reason)
		}
		if !sleep(ctx, s.Interval) {
			return
		}
	}
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
