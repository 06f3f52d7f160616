package matrix

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// ErrUnknownKey means the server does not publish the key ID (or it was not valid at the requested
// time), possibly as remembered from a recent fetch.
var ErrUnknownKey = errors.New("matrix: unknown server key")

// ErrKeyFetch means the server's keys could not be fetched or were refused, possibly as remembered from
// a recent failure.
var ErrKeyFetch = errors.New("matrix: server keys unavailable")

// Limits of the key ring.
const (
	// maxKeyCacheTTL caps how long a fetched key is trusted without asking again, whatever the server
	// published.
	maxKeyCacheTTL = 24 * time.Hour
	// maxKeyValidity is the specification's cap on valid_until_ts: the lesser of it and 7 days ahead.
	maxKeyValidity = 7 * 24 * time.Hour
	// negativeTTL is how long a failed fetch or an unknown key ID is remembered, so that a flood of
	// requests with made-up origins or key IDs cannot become a flood of outbound fetches.
	negativeTTL = 30 * time.Second
	// fetchTimeout bounds one fetch; it runs detached from the first caller's context because other
	// callers may be waiting on it.
	fetchTimeout = 20 * time.Second
	// defaultMaxEntries bounds the positive and the negative cache each.
	defaultMaxEntries = 10000
)

type keyRef struct{ server, keyID string }

// recentFetch is the negative-cache marker of a server fetched successfully within negativeTTL; it is
// no valid key ID, so it cannot collide with one.
const recentFetch = "#recent"

// cachedKey is one known key of a server.
type cachedKey struct {
	pub ed25519.PublicKey
	// validUntil is when the key stops being valid: min(valid_until_ts, fetch time + 7 days) for a
	// current key, expired_ts for an old one.
	validUntil time.Time
	old        bool
	// cacheUntil is when the entry must be fetched again.
	cacheUntil time.Time
}

// flight is one fetch in progress; waiters block on done.
type flight struct {
	done chan struct{}
	keys *ServerKeys
	err  error
}

// KeyRing finds servers' public signing keys: from its cache, else by fetching the server's
// /_matrix/key/v2/server. It is safe for concurrent use. Concurrent lookups for one server share one
// fetch; failures and unknown key IDs are remembered briefly; both caches are bounded.
type KeyRing struct {
	fetch func(ctx context.Context, serverName string) ([]byte, error)
	now   func() time.Time
	log   *slog.Logger

	maxEntries int

	mu   sync.Mutex
	keys map[keyRef]cachedKey
	// negative holds, per server, until when a failed fetch (key ID "") or a successful one
	// (recentFetch) stops further fetches.
	negative map[keyRef]time.Time
	inflight map[string]*flight
}

// NewKeyRing returns a key ring that gets a server's raw /_matrix/key/v2/server response from fetch.
// fetch is the proxy's egress path (it must apply the proxy's own outbound rules and a response size
// limit); now is the clock (time.Now in production); log receives fetch failures.
func NewKeyRing(fetch func(ctx context.Context, serverName string) ([]byte, error), now func() time.Time, log *slog.Logger) *KeyRing {
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &KeyRing{
		fetch:      fetch,
		now:        now,
		log:        log,
		maxEntries: defaultMaxEntries,
		keys:       map[keyRef]cachedKey{},
		negative:   map[keyRef]time.Time{},
		inflight:   map[string]*flight{},
	}
}

// PublicKey returns serverName's key keyID if it was valid at time at: a current key (verify_keys)
// until the lesser of its valid_until_ts and 7 days after it was fetched, an old key (old_verify_keys)
// only before its expired_ts. It fetches the server's keys when the cache holds none that are fresh, or
// when an unknown key ID is asked for; never more than once per 30 seconds per server, whether the
// fetch failed or succeeded.
//
// valid_until_ts is always honoured (the rule of room versions 5 and later and of request
// authentication); the leniency the specification grants room versions 1 to 4 is not offered.
//
// The proxy should call it only for servers on the federation list: every unknown server name costs one
// outbound fetch.
func (k *KeyRing) PublicKey(ctx context.Context, serverName, keyID string, at time.Time) (ed25519.PublicKey, error) {
	return k.lookup(ctx, serverName, keyID, at, true)
}

// Verify checks an X-Matrix request signature: the key must be one of x.Origin's current verify_keys
// (old_verify_keys only ever sign events, not requests), valid now. x must carry the destination, see
// XMatrix.WithDestination; method, uri (r.RequestURI) and body are the request as received.
func (k *KeyRing) Verify(ctx context.Context, x XMatrix, method, uri string, body []byte) error {
	if x.Destination == "" {
		return fmt.Errorf("%w: destination unknown; call WithDestination first", ErrXMatrixMalformed)
	}
	pub, err := k.lookup(ctx, x.Origin, x.KeyID, k.now(), false)
	if err != nil {
		return err
	}
	return VerifyRequest(x, method, uri, body, pub)
}

func (k *KeyRing) lookup(ctx context.Context, serverName, keyID string, at time.Time, allowOld bool) (ed25519.PublicKey, error) {
	if !ValidServerName(serverName) {
		return nil, fmt.Errorf("key %s of %q: invalid server name: %w", keyID, serverName, ErrUnknownKey)
	}
	if !ValidKeyID(keyID) {
		return nil, fmt.Errorf("key of %s: unsupported key ID: %w", serverName, ErrUnknownKey)
	}
	ref := keyRef{serverName, keyID}
	for attempt := 0; ; attempt++ {
		k.mu.Lock()
		now := k.now()
		if c, ok := k.keys[ref]; ok && now.Before(c.cacheUntil) {
			k.mu.Unlock()
			return c.usable(serverName, keyID, at, allowOld)
		}
		if until, ok := k.negative[keyRef{server: serverName}]; ok && now.Before(until) {
			k.mu.Unlock()
			return nil, fmt.Errorf("keys of %s: recent fetch failed: %w", serverName, ErrKeyFetch)
		}
		if until, ok := k.negative[keyRef{serverName, recentFetch}]; ok && now.Before(until) {
			// Fetched moments ago and the key was not among the results (or the fetch we waited for
			// just finished without it): asking again now would only let made-up key IDs drive
			// outbound traffic.
			k.mu.Unlock()
			return nil, fmt.Errorf("key %s of %s: not among the keys fetched moments ago: %w", keyID, serverName, ErrUnknownKey)
		}
		if attempt > 0 {
			k.mu.Unlock()
			return nil, fmt.Errorf("key %s of %s: %w", keyID, serverName, ErrUnknownKey)
		}
		f, running := k.inflight[serverName]
		if !running {
			f = &flight{done: make(chan struct{})}
			k.inflight[serverName] = f
			go k.run(context.WithoutCancel(ctx), serverName, f)
		}
		k.mu.Unlock()

		select {
		case <-f.done:
		case <-ctx.Done():
			return nil, fmt.Errorf("keys of %s: %w", serverName, ctx.Err())
		}
		if f.err != nil {
			return nil, fmt.Errorf("keys of %s: %w", serverName, f.err)
		}
	}
}

// usable applies the validity rules to a cached key.
func (c cachedKey) usable(serverName, keyID string, at time.Time, allowOld bool) (ed25519.PublicKey, error) {
	switch {
	case c.old && !allowOld:
		return nil, fmt.Errorf("key %s of %s is an old key, not valid for requests: %w", keyID, serverName, ErrUnknownKey)
	case c.old && !at.Before(c.validUntil):
		return nil, fmt.Errorf("key %s of %s expired before the requested time: %w", keyID, serverName, ErrUnknownKey)
	case !c.old && at.After(c.validUntil):
		return nil, fmt.Errorf("key %s of %s is not valid at the requested time: %w", keyID, serverName, ErrUnknownKey)
	}
	return c.pub, nil
}

// run performs one fetch for serverName and publishes its result to the cache and to waiters.
func (k *KeyRing) run(ctx context.Context, serverName string, f *flight) {
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	keys, err := k.fetchKeys(ctx, serverName)

	k.mu.Lock()
	defer k.mu.Unlock()
	now := k.now()
	if err != nil {
		k.log.Warn("fetching server keys failed", "server", serverName, "error", err)
		f.err = fmt.Errorf("%w: %w", ErrKeyFetch, err)
		k.rememberNegative(keyRef{server: serverName}, now)
	} else {
		f.keys = keys
		k.store(keys, now)
	}
	delete(k.inflight, serverName)
	close(f.done)
}

func (k *KeyRing) fetchKeys(ctx context.Context, serverName string) (keys *ServerKeys, err error) {
	defer func() {
		// fetch is code from outside this package; a panic in it must not take the process down or
		// leave waiters blocked forever.
		if r := recover(); r != nil {
			keys, err = nil, fmt.Errorf("fetch panicked: %v", r)
		}
	}()
	raw, err := k.fetch(ctx, serverName)
	if err != nil {
		return nil, err
	}
	return ParseServerKeys(raw, serverName, k.now())
}

// store caches a verified response. Called with k.mu held.
func (k *KeyRing) store(keys *ServerKeys, now time.Time) {
	validUntil := keys.ValidUntil
	if limit := now.Add(maxKeyValidity); validUntil.After(limit) {
		validUntil = limit
	}
	cacheUntil := validUntil
	if limit := now.Add(maxKeyCacheTTL); cacheUntil.After(limit) {
		cacheUntil = limit
	}
	for id, pub := range keys.VerifyKeys {
		k.put(keyRef{keys.ServerName, id}, cachedKey{pub: pub, validUntil: validUntil, cacheUntil: cacheUntil}, now)
	}
	for id, old := range keys.OldVerifyKeys {
		if _, current := keys.VerifyKeys[id]; current {
			continue
		}
		k.put(keyRef{keys.ServerName, id}, cachedKey{pub: old.Key, validUntil: old.ExpiredAt, old: true, cacheUntil: cacheUntil}, now)
	}
	delete(k.negative, keyRef{server: keys.ServerName})
	k.rememberNegative(keyRef{keys.ServerName, recentFetch}, now)
}

// put adds one key, making room first when the cache is full: expired entries go, then the entry that
// would expire soonest. Called with k.mu held.
func (k *KeyRing) put(ref keyRef, c cachedKey, now time.Time) {
	if _, ok := k.keys[ref]; !ok && len(k.keys) >= k.maxEntries {
		evict(k.keys, now, func(c cachedKey) time.Time { return c.cacheUntil })
	}
	k.keys[ref] = c
}

// rememberNegative records a failure for ref. Called with k.mu held.
func (k *KeyRing) rememberNegative(ref keyRef, now time.Time) {
	if _, ok := k.negative[ref]; !ok && len(k.negative) >= k.maxEntries {
		evict(k.negative, now, func(t time.Time) time.Time { return t })
	}
	k.negative[ref] = now.Add(negativeTTL)
}

// evict removes every entry expired at now, or when none is, the one expiring soonest.
func evict[V any](m map[keyRef]V, now time.Time, expiry func(V) time.Time) {
	var soonest keyRef
	var soonestAt time.Time
	removed := false
	for ref, v := range m {
		at := expiry(v)
		if !at.After(now) {
			delete(m, ref)
			removed = true
			continue
		}
		if soonestAt.IsZero() || at.Before(soonestAt) {
			soonest, soonestAt = ref, at
		}
	}
	if !removed && !soonestAt.IsZero() {
		delete(m, soonest)
	}
}
