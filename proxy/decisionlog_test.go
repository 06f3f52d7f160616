package proxy

import (
	"encoding/json"
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
