package idp

import (
	"fmt"
	"testing"
	"time"
)

func TestBoundedStores(t *testing.T) {
	now := time.Unix(1795000000, 0)
	t.Run("a full login store refuses new logins instead of evicting live ones", func(t *testing.T) {
		s := newPendingStore(2)
		for i := range 2 {
			if !s.put(fmt.Sprint(i), pending{expires: now.Add(time.Minute)}, now) {
				t.Fatalf("put %d refused", i)
			}
		}
		if s.put("x", pending{expires: now.Add(time.Minute)}, now) {
			t.Error("third login accepted by a store of two")
		}
		if _, ok := s.take("0"); !ok {
			t.Error("a live login was evicted")
		}
	})
	t.Run("a full login store makes room from expired logins", func(t *testing.T) {
		s := newPendingStore(1)
		s.put("old", pending{expires: now.Add(-time.Second)}, now)
		if !s.put("new", pending{expires: now.Add(time.Minute)}, now) {
			t.Error("expired login not pruned")
		}
	})
	t.Run("a state is taken once", func(t *testing.T) {
		s := newPendingStore(1)
		s.put("s", pending{expires: now.Add(time.Minute)}, now)
		s.take("s")
		if _, ok := s.take("s"); ok {
			t.Error("state taken twice")
		}
	})
	t.Run("the replay set reports a key seen before until its deadline", func(t *testing.T) {
		s := newTTLSet(4)
		steps := []struct {
			key  string
			at   time.Time
			want addResult
		}{
			{"a", now, added},
			{"a", now.Add(time.Second), seenBefore},
			{"a", now.Add(time.Minute), added}, // deadline passed
		}
		for _, st := range steps {
			if got := s.add(st.key, st.at.Add(30*time.Second), st.at); got != st.want {
				t.Errorf("add(%q) at +%s = %d, want %d", st.key, st.at.Sub(now), got, st.want)
			}
		}
	})
	t.Run("a full replay set refuses rather than forgets", func(t *testing.T) {
		s := newTTLSet(1)
		s.add("a", now.Add(time.Minute), now)
		if got := s.add("b", now.Add(time.Minute), now); got != setFull {
			t.Errorf("got %d, want setFull", got)
		}
		if !s.contains("a", now) {
			t.Error("live key forgotten")
		}
	})
}
