package proxy

import (
	"container/list"
	"context"
	"crypto/sha256"
	"sync"
	"time"
)

// tokenCache maps access tokens to the user they belong to, so the proxy asks the homeserver (whoami) once
// per token and TTL instead of per request. Unlike the reference proxy's cache it is bounded (LRU), entries
// expire, and /logout and /logout/all drop them at once. Tokens are kept only as SHA-256 digests.
type tokenCache struct {
	mu      sync.Mutex
	ttl     time.Duration
	max     int
	now     func() time.Time
	lru     *list.List // front = most recent; values *tokenEntry
	byToken map[[32]byte]*list.Element
	byUser  map[string]map[[32]byte]struct{}
	// inflight shares one whoami per token among concurrent requests.
	inflight map[[32]byte]*whoamiCall
}

type tokenEntry struct {
	key      [32]byte
	userID   string
	deviceID string
	expires  time.Time
}

type whoamiCall struct {
	done   chan struct{}
	userID string
	device string
	err    error
}

// whoamiFunc asks the homeserver who owns token (the user's own token, not the appservice's).
type whoamiFunc func(ctx context.Context, token string) (userID, deviceID string, err error)

func newTokenCache(max int, ttl time.Duration, now func() time.Time) *tokenCache {
	return &tokenCache{
		ttl: ttl, max: max, now: now,
		lru:      list.New(),
		byToken:  map[[32]byte]*list.Element{},
		byUser:   map[string]map[[32]byte]struct{}{},
		inflight: map[[32]byte]*whoamiCall{},
	}
}

// user returns the user for token, asking whoami on a miss. Errors from whoami are not cached: an unknown
// token costs one homeserver round trip per request, which the homeserver's own rate limits bound.
func (c *tokenCache) user(ctx context.Context, token string, whoami whoamiFunc) (userID, deviceID string, err error) {
	key := sha256.Sum256([]byte(token))
	c.mu.Lock()
	if el, ok := c.byToken[key]; ok {
		e := el.Value.(*tokenEntry)
		if c.now().Before(e.expires) {
			c.lru.MoveToFront(el)
			c.mu.Unlock()
			return e.userID, e.deviceID, nil
		}
		c.removeLocked(el)
	}
	if call, ok := c.inflight[key]; ok {
		c.mu.Unlock()
		select {
		case <-call.done:
			return call.userID, call.device, call.err
		case <-ctx.Done():
			return "", "", ctx.Err()
		}
	}
	call := &whoamiCall{done: make(chan struct{})}
	c.inflight[key] = call
	c.mu.Unlock()

	call.userID, call.device, call.err = whoami(ctx, token)

	c.mu.Lock()
	delete(c.inflight, key)
	if call.err == nil {
		c.addLocked(key, call.userID, call.device)
	}
	c.mu.Unlock()
	close(call.done)
	return call.userID, call.device, call.err
}

func (c *tokenCache) addLocked(key [32]byte, userID, deviceID string) {
	e := &tokenEntry{key: key, userID: userID, deviceID: deviceID, expires: c.now().Add(c.ttl)}
	c.byToken[key] = c.lru.PushFront(e)
	if c.byUser[userID] == nil {
		c.byUser[userID] = map[[32]byte]struct{}{}
	}
	c.byUser[userID][key] = struct{}{}
	for c.lru.Len() > c.max {
		c.removeLocked(c.lru.Back())
	}
}

func (c *tokenCache) removeLocked(el *list.Element) {
	e := el.Value.(*tokenEntry)
	c.lru.Remove(el)
	delete(c.byToken, e.key)
	if m := c.byUser[e.userID]; m != nil {
		delete(m, e.key)
		if len(m) == 0 {
			delete(c.byUser, e.userID)
		}
	}
}

// forgetToken drops one token (/logout).
func (c *tokenCache) forgetToken(token string) {
	key := sha256.Sum256([]byte(token))
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.byToken[key]; ok {
		c.removeLocked(el)
	}
}

// forgetUser drops every token of a user (/logout/all).
func (c *tokenCache) forgetUser(userID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for key := range c.byUser[userID] {
		if el, ok := c.byToken[key]; ok {
			c.removeLocked(el)
		}
	}
}

func (c *tokenCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len()
}
