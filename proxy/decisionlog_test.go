package proxy

import (
	"encoding/json"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/timstack/timstack/policy"
)

// The hand-written decision-log encoder must write exactly what encoding/json writes for the struct, so
// operators' log pipelines see one format.
func TestDecisionLogLineEqualsEncodingJSON(t *testing.T) {
	for _, ev := range []decisionEvent{
		{Time: time.Date(2026, 11, 23, 15, 4, 5, 123456789, time.UTC), DecisionID: "abc", Surface: "client", Action: policy.ActionInvite,
			Route: "client.rooms.invite", Actor: "@a:hs1.tim.test", Target: "@b:hs2.tim.test", Origin: "hs1.tim.test",
			Destination: "hs2.tim.test", RoomID: "!r:hs1.tim.test", Allow: false,
			Reasons: []policy.Reason{policy.ReasonInviteeNotFederated, "x"}, Status: 403, Revision: "rev", Cached: true},
		{Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("CET", 3600)), DecisionID: "d", Surface: "federation", Action: policy.ActionFederationInbound, Allow: true},
		{DecisionID: "q\"\\\n\r\t\b\f\x00\x1f<>&\u2028\u2029é\xff\xfe😀", Surface: "s", Action: "a", Actor: "\x7f"},
	} {
		want, err := json.Marshal(&ev)
		if err != nil {
			t.Fatal(err)
		}
		if got := ev.appendJSON(nil); string(got) != string(want) {
			t.Errorf("appendJSON:\n got %s\nwant %s", got, want)
		}
	}
}

func FuzzDecisionLogLine(f *testing.F) {
	f.Add("id", "@a:b", "reason", 403, true)
	f.Add("\xff\x00<\u2028", "\"\\", "", 0, false)
	f.Fuzz(func(t *testing.T, id, actor, reason string, status int, allow bool) {
		ev := decisionEvent{Time: time.Unix(1700000000, 5).UTC(), DecisionID: id, Surface: "client", Action: "invite",
			Actor: actor, Allow: allow, Status: status}
		if reason != "" {
			ev.Reasons = []policy.Reason{policy.Reason(reason)}
		}
		want, _ := json.Marshal(&ev)
		if got := ev.appendJSON(nil); string(got) != string(want) {
			t.Fatalf("appendJSON:\n got %s\nwant %s", got, want)
		}
	})
}

// Batched decision lines: held back at most the delay, sooner when the buffer fills, never lost or torn,
// and written out by close.
func TestDecisionLogBatching(t *testing.T) {
	ev := func(i int) *decisionEvent {
		return &decisionEvent{Time: time.Unix(1700000000, 0).UTC(), DecisionID: strconv.Itoa(i), Surface: "client",
			Action: policy.ActionPresence, Allow: true}
	}
	t.Run("a line goes out within the delay, not at once", func(t *testing.T) {
		var out syncBuffer
		d := &decisionLog{w: &out, delay: 50 * time.Millisecond}
		d.write(ev(1))
		if out.String() != "" {
			t.Fatal("the line was written at once")
		}
		waitFor(t, "the batched line", func() bool { return strings.Count(out.String(), "\n") == 1 })
	})
	t.Run("a full buffer goes out without waiting for the delay", func(t *testing.T) {
		var out syncBuffer
		d := &decisionLog{w: &out, delay: time.Hour}
		for i := 0; len(out.String()) == 0; i++ {
			if i > decisionLogBuffer {
				t.Fatal("nothing written after more than a buffer's worth of lines")
			}
			d.write(ev(i))
		}
	})
	t.Run("lines from many goroutines arrive whole, each once, and close writes the rest", func(t *testing.T) {
		var out syncBuffer
		d := &decisionLog{w: &out, delay: time.Hour}
		var wg sync.WaitGroup
		for g := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range 500 {
					d.write(ev(g*1000 + i))
				}
			}()
		}
		wg.Wait()
		d.close(nil)
		seen := map[string]bool{}
		for _, line := range strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n") {
			var got decisionEvent
			if err := json.Unmarshal([]byte(line), &got); err != nil {
				t.Fatalf("torn line %q: %v", line, err)
			}
			if seen[got.DecisionID] {
				t.Fatalf("line %s written twice", got.DecisionID)
			}
			seen[got.DecisionID] = true
		}
		if len(seen) != 4000 {
			t.Fatalf("%d lines, want 4000", len(seen))
		}
		d.write(ev(9999))
		if !strings.Contains(out.String(), `"decision_id":"9999"`) {
			t.Fatal("a line after close was not written at once")
		}
	})
}
