package idp

import (
	"crypto/sha256"
	"sync"
	"time"
)

// pending is what Begin keeps server-side for one login; nothing of it leaves the RP except the state, the
// nonce and the PKCE challenge.
type pending struct {
	nonce    string
	verifier string
	expires  time.Time
}

// pendingStore is bounded: when full and nothing has expired, Begin fails rather than evicting a live login,
// so a flood of Begin calls cannot silently break logins in progress.
type pendingStore struct {
	mu  sync.Mutex
	max int
	m   map[string]pending
}

func newPendingStore(maxEntries int) *pendingStore {
	return &pendingStore{max: maxEntries, m: make(map[string]pending)}
}

func (s *pendingStore) put(state string, p pending, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.m) >= s.max {
		for k, v := range s.m {
			if !now.Before(v.expires) {
				delete(s.m, k)
			}
		}
		if len(s.m) >= s.max {
			return false
		}
	}
	s.m[state] = p
	return true
}

// take removes the entry whatever its age: a state is single use even when it arrives too late.
func (s *pendingStore) take(state string) (pending, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.m[state]
	delete(s.m, state)
	return p, ok
}

// ttlSet remembers keys until their deadline (replay caches for jti, used codes and used states). Keys are
// hashed so the set never holds a token fragment in clear. When full after pruning it refuses new keys: a
// replay cache that forgets early would let a replay through.
type ttlSet struct {
	mu  sync.Mutex
	max int
	m   map[[32]byte]time.Time
}

func newTTLSet(maxEntries int) *ttlSet {
	return &ttlSet{max: maxEntries, m: make(map[[32]byte]time.Time)}
}

// addResult tells why add did not record a key.
type addResult int

const (
	added addResult = iota
	seenBefore
	setFull
)

func (s *ttlSet) add(key string, until, now time.Time) addResult {
	h := sha256.Sum256([]byte(key))
	s.mu.Lock()
	defer s.mu.Unlock()
	if t, ok := s.m[h]; ok && now.Before(t) {
		return seenBefore
	}
	if len(s.m) >= s.max {
		for k, t := range s.m {
			if !now.Before(t) {
				delete(s.m, k)
			}
		}
		if len(s.m) >= s.max {
			return setFull
		}
	}
	s.m[h] = until
	return added
}

func (s *ttlSet) contains(key string, now time.Time) bool {
	h := sha256.Sum256([]byte(key))
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.m[h]
	return ok && now.Before(t)
}

// reset forgets everything (benchmarks reuse one precomputed token).
func (s *ttlSet) reset() {
	s.mu.Lock()
	clear(s.m)
	s.mu.Unlock()
}
