package appservice

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var jobsNow = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

func daysAgo(d float64) int64 {
	return jobsNow.Add(-time.Duration(d * float64(24*time.Hour))).UnixMilli()
}

// feed applies events to the index through its transaction endpoint.
func feed(t *testing.T, ix *RoomIndex, evs ...json.RawMessage) {
	t.Helper()
	id := "txn" + string(rune('A'+ix.Len())) + time.Now().Format("150405.000000000")
	if status, body := send(ix.Handler(), "PUT", "/_matrix/app/v1/transactions/"+url.PathEscape(id), "Bearer "+testHSToken, txnBody(t, evs...)); status != 200 {
		t.Fatalf("feed: %d %s", status, body)
	}
}

func member(t *testing.T, room, sender, target, membership string, ts int64) json.RawMessage {
	return evJSON(t, "m.room.member", room, sender, ts, sk(target), `{"membership":"`+membership+`"}`)
}

func message(t *testing.T, room, sender string, ts int64) json.RawMessage {
	return evJSON(t, "m.room.encrypted", room, sender, ts, nil, `{"algorithm":"m.megolm.v1.aes-sha2","ciphertext":"x"}`)
}

func roomPath(room string) string { return "/_matrix/client/v3/rooms/" + url.PathEscape(room) }

// answerJoined makes the fake report room's joined members.
func answerJoined(hs *fakeHS, room string, users ...string) {
	m := map[string]any{}
	for _, u := range users {
		m[u] = map[string]any{"display_name": u}
	}
	b, _ := json.Marshal(map[string]any{"joined": m})
	hs.reply("GET "+roomPath(room)+"/joined_members", 200, string(b))
}

// answerMessages makes /messages return evs in one page (newest first), then nothing.
func answerMessages(t *testing.T, hs *fakeHS, room string, evs ...json.RawMessage) {
	hs.handle("GET "+roomPath(room)+"/messages", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("from") == "" {
			b, _ := json.Marshal(map[string]any{"chunk": evs, "start": "s0", "end": "e1"})
			jsonReply(w, 200, string(b))
			return
		}
		jsonReply(w, 200, `{"chunk":[],"start":"e1"}`)
	})
}

func answerLeaveForget(hs *fakeHS, room string) {
	hs.reply("POST "+roomPath(room)+"/leave", 200, `{}`)
	hs.reply("POST "+roomPath(room)+"/forget", 200, `{}`)
}

// mutations lists the POSTs that reached the homeserver as "leave|forget room user".
func mutations(hs *fakeHS) []string {
	var out []string
	for _, r := range hs.requests() {
		if r.Method != "POST" {
			continue
		}
		p, q, _ := strings.Cut(r.URI, "?")
		vals, _ := url.ParseQuery(q)
		room, _ := url.PathUnescape(strings.TrimPrefix(p, "/_matrix/client/v3/rooms/"))
		room, verb, _ := strings.Cut(room, "/")
		out = append(out, verb+" "+room+" "+vals.Get("user_id"))
	}
	return out
}

func newTestJobs(t *testing.T, variant string) (*Jobs, *RoomIndex, *fakeHS) {
	t.Helper()
	hs := newFakeHS(t)
	c := newTestClient(t, hs, time.Second)
	ix := newTestIndex(t, IndexConfig{}, c)
	j, err := NewJobs(JobsConfig{Variant: variant}, ix, c, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return j, ix, hs
}

func TestOrphanedRoomsA28564(t *testing.T) {
	t.Parallel()
	j, ix, hs := newTestJobs(t, VariantPro)
	alice, bob := "@alice:"+testServer, "@bob:"+testServer
	carol, dave := "@carol:"+testServer, "@dave:"+testServer
	erin, remote := "@erin:praxis.example", "@rita:praxis.example"

	// The orphan: state only, seven weeks old, only its creator joined; a local invitee, a local user who
	// left, a remote invitee.
	orphan := "!orphan:" + testServer
	orphanEvs := append(roomSetup(t, orphan, alice, daysAgo(50)),
		member(t, orphan, alice, carol, "invite", daysAgo(49)),
		member(t, orphan, alice, dave, "invite", daysAgo(49)),
		member(t, orphan, dave, dave, "leave", daysAgo(48)),
		member(t, orphan, alice, erin, "invite", daysAgo(48)),
	)
	feed(t, ix, orphanEvs...)
	answerJoined(hs, orphan, alice)
	answerMessages(t, hs, orphan, orphanEvs...)
	answerLeaveForget(hs, orphan)

	// Not orphans, each for one reason.
	chat := "!chat:" + testServer
	feed(t, ix, append(roomSetup(t, chat, alice, daysAgo(60)), message(t, chat, alice, daysAgo(59)))...)
	recent := "!recent:" + testServer
	feed(t, ix, roomSetup(t, recent, alice, daysAgo(10))...)
	almost := "!almost:" + testServer
	feed(t, ix, append(roomSetup(t, almost, alice, daysAgo(50)), member(t, almost, alice, carol, "invite", daysAgo(41)))...)
	two := "!two:" + testServer
	feed(t, ix, append(roomSetup(t, two, alice, daysAgo(60)), member(t, two, bob, bob, "join", daysAgo(59)))...)
	remoteRoom := "!remote:praxis.example"
	feed(t, ix, append(roomSetup(t, remoteRoom, remote, daysAgo(60)), member(t, remoteRoom, remote, alice, "invite", daysAgo(59)))...)

	// Candidates the homeserver rules out: the index missed a message (e.g. after a restart), or a join.
	missed := "!missed:" + testServer
	missedEvs := roomSetup(t, missed, alice, daysAgo(60))
	feed(t, ix, missedEvs...)
	answerJoined(hs, missed, alice)
	answerMessages(t, hs, missed, append([]json.RawMessage{message(t, missed, alice, daysAgo(55))}, missedEvs...)...)
	joinedLate := "!joinedlate:" + testServer
	feed(t, ix, roomSetup(t, joinedLate, alice, daysAgo(60))...)
	answerJoined(hs, joinedLate, alice, bob)

	rep, err := j.RunOnce(context.Background(), jobsNow, nil)
	if err != nil {
		t.Fatal(err)
	}
	wantMut := []string{
		"leave " + orphan + " " + carol, "forget " + orphan + " " + carol,
		"forget " + orphan + " " + dave,
		"leave " + orphan + " " + alice, "forget " + orphan + " " + alice,
	}
	if d := cmp.Diff(wantMut, mutations(hs)); d != "" {
		t.Errorf("homeserver mutations (-want +got):\n%s", d)
	}
	wantActions := []RoomAction{{RoomID: orphan, Rule: RuleOrphaned, Left: []string{carol, alice}, Forgotten: []string{carol, dave, alice}}}
	if d := cmp.Diff(wantActions, rep.Actions); d != "" {
		t.Errorf("actions (-want +got):\n%s", d)
	}
	var skipped []string
	for _, s := range rep.Skipped {
		skipped = append(skipped, s.RoomID+": "+s.Why)
	}
	slices.Sort(skipped)
	wantSkipped := []string{joinedLate + ": homeserver reports other joined members", missed + ": room has timeline events"}
	if d := cmp.Diff(wantSkipped, skipped); d != "" {
		t.Errorf("skipped (-want +got):\n%s", d)
	}
	if _, ok := ix.Room(orphan); ok {
		t.Error("the cleaned room is still indexed")
	}
	if rep.Checked != 8 {
		t.Errorf("checked %d rooms, want 8", rep.Checked)
	}
	for _, r := range hs.requests() {
		if r.Auth != "Bearer "+testASToken || (r.Method == "GET" && !strings.Contains(r.URI, "user_id=%40alice%3A")) {
			t.Errorf("request %s %s not made as alice through the appservice", r.Method, r.URI)
		}
	}
}

func TestOrphanCleanupFailureKeepsTheRoom(t *testing.T) {
	t.Parallel()
	j, ix, hs := newTestJobs(t, VariantPro)
	alice := "@alice:" + testServer
	room := "!orphan:" + testServer
	evs := roomSetup(t, room, alice, daysAgo(50))
	feed(t, ix, evs...)
	answerJoined(hs, room, alice)
	answerMessages(t, hs, room, evs...)
	hs.reply("POST "+roomPath(room)+"/leave", 500, `{"errcode":"M_UNKNOWN"}`)
	rep, err := j.RunOnce(context.Background(), jobsNow, nil)
	if err == nil || len(rep.Actions) != 1 || rep.Actions[0].Err == nil {
		t.Fatalf("err %v, report %+v: want the failure reported", err, rep)
	}
	if slices.Contains(mutations(hs), "forget "+room+" "+alice) {
		t.Error("forgot a room the user could not leave")
	}
	if _, ok := ix.Room(room); !ok {
		t.Error("a room whose cleanup failed was dropped from the index; it would not be retried")
	}
}

func TestOrphanCheckGivesUpOnLongHistories(t *testing.T) {
	t.Parallel()
	j, ix, hs := newTestJobs(t, VariantPro)
	alice := "@alice:" + testServer
	room := "!long:" + testServer
	evs := roomSetup(t, room, alice, daysAgo(50))
	feed(t, ix, evs...)
	answerJoined(hs, room, alice)
	// A homeserver that always has another page of old state events.
	page := 0
	hs.handle("GET "+roomPath(room)+"/messages", func(w http.ResponseWriter, _ *http.Request) {
		page++
		b, _ := json.Marshal(map[string]any{"chunk": evs, "start": "s", "end": "e" + strings.Repeat("x", page)})
		jsonReply(w, 200, string(b))
	})
	rep, err := j.RunOnce(context.Background(), jobsNow, nil)
	if err != nil || len(rep.Actions) != 0 || len(rep.Skipped) != 1 || rep.Skipped[0].Why != "room has too many events to confirm" {
		t.Fatalf("err %v report %+v", err, rep)
	}
	if m := mutations(hs); len(m) != 0 {
		t.Errorf("mutations %v", m)
	}
}

func TestInsuredOnlyRoomsEPA(t *testing.T) {
	t.Parallel()
	// On an ePA Fachdienst the local server is itself an insurance domain.
	insured := func(d string) bool { return d == testServer || d == "kk2.example" }
	v1, v2, v3 := "@v1:"+testServer, "@v2:kk2.example", "@v3:"+testServer
	doc := "@doc:praxis.example"

	build := func(t *testing.T, j *Jobs, ix *RoomIndex, hs *fakeHS) (target string) {
		// Only insured members left, the practitioner left ten days ago: local users leave.
		target = "!insured:" + testServer
		feed(t, ix, append(roomSetup(t, target, v1, daysAgo(30)),
			member(t, target, v1, doc, "invite", daysAgo(29)), member(t, target, doc, doc, "join", daysAgo(29)),
			member(t, target, doc, v2, "invite", daysAgo(28)), member(t, target, v2, v2, "join", daysAgo(28)),
			member(t, target, v1, v3, "invite", daysAgo(27)),
			message(t, target, doc, daysAgo(20)),
			member(t, target, doc, doc, "leave", daysAgo(10)))...)
		answerJoined(hs, target, v1, v2)
		answerLeaveForget(hs, target)

		mixed := "!mixed:" + testServer
		feed(t, ix, append(roomSetup(t, mixed, v1, daysAgo(30)),
			member(t, mixed, doc, doc, "join", daysAgo(29)), message(t, mixed, doc, daysAgo(20)))...)
		fresh := "!fresh:" + testServer
		feed(t, ix, append(roomSetup(t, fresh, v1, daysAgo(30)),
			member(t, fresh, doc, doc, "join", daysAgo(29)), message(t, fresh, doc, daysAgo(20)),
			member(t, fresh, doc, doc, "leave", daysAgo(2)))...)
		pending := "!pending:" + testServer
		feed(t, ix, append(roomSetup(t, pending, v1, daysAgo(30)),
			message(t, pending, v1, daysAgo(20)), member(t, pending, v1, doc, "invite", daysAgo(3)))...)
		remoteOnly := "!remoteonly:kk2.example"
		feed(t, ix, append(roomSetup(t, remoteOnly, v2, daysAgo(30)),
			message(t, remoteOnly, v2, daysAgo(20)), member(t, remoteOnly, v2, v1, "invite", daysAgo(20)))...)
		stale := "!stale:" + testServer
		feed(t, ix, append(roomSetup(t, stale, v1, daysAgo(30)), message(t, stale, v1, daysAgo(20)))...)
		answerJoined(hs, stale, v1, doc)
		return target
	}

	t.Run("on ePA, local users leave and forget rooms whose joined members are all insured after the grace period", func(t *testing.T) {
		t.Parallel()
		j, ix, hs := newTestJobs(t, VariantEPA)
		target := build(t, j, ix, hs)
		rep, err := j.RunOnce(context.Background(), jobsNow, insured)
		if err != nil {
			t.Fatal(err)
		}
		want := []string{
			"leave " + target + " " + v1, "forget " + target + " " + v1,
			"leave " + target + " " + v3, "forget " + target + " " + v3,
		}
		if d := cmp.Diff(want, mutations(hs)); d != "" {
			t.Errorf("mutations (-want +got):\n%s", d)
		}
		if len(rep.Actions) != 1 || rep.Actions[0].Rule != RuleInsuredOnly {
			t.Errorf("actions %+v", rep.Actions)
		}
		if len(rep.Skipped) != 1 || rep.Skipped[0].RoomID != "!stale:"+testServer {
			t.Errorf("skipped %+v, want the room where the homeserver reports a practitioner", rep.Skipped)
		}
	})

	t.Run("on Pro, the insured-only rule does not run", func(t *testing.T) {
		t.Parallel()
		j, ix, hs := newTestJobs(t, VariantPro)
		build(t, j, ix, hs)
		rep, err := j.RunOnce(context.Background(), jobsNow, insured)
		if err != nil || len(rep.Actions) != 0 || len(mutations(hs)) != 0 {
			t.Errorf("err %v actions %+v mutations %v", err, rep.Actions, mutations(hs))
		}
	})

	t.Run("without a federation-list answer nobody is removed", func(t *testing.T) {
		t.Parallel()
		j, ix, hs := newTestJobs(t, VariantEPA)
		build(t, j, ix, hs)
		rep, err := j.RunOnce(context.Background(), jobsNow, nil)
		if err != nil || len(rep.Actions) != 0 || len(mutations(hs)) != 0 {
			t.Errorf("err %v actions %+v mutations %v", err, rep.Actions, mutations(hs))
		}
	})
}

func TestJobsConfig(t *testing.T) {
	t.Parallel()
	var c JobsConfig
	c.Defaults()
	if c.OrphanedAfter != 6*7*24*time.Hour || c.InsuredOnlyAfter != 7*24*time.Hour || c.Interval != time.Hour {
		t.Errorf("defaults %+v", c)
	}
	err := JobsConfig{Interval: time.Second, OrphanedAfter: time.Minute, InsuredOnlyAfter: time.Minute, Variant: "x"}.Validate()
	for _, key := range []string{"interval", "orphaned_after", "insured_only_after", "variant"} {
		if err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("validation error %v does not name %s", err, key)
		}
	}
}

func TestRunStopsWithItsContext(t *testing.T) {
	t.Parallel()
	j, _, _ := newTestJobs(t, VariantPro)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- j.Run(ctx) }()
	cancel()
	select {
	case err := <-done:
		if err != context.Canceled {
			t.Errorf("Run returned %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not stop")
	}
}
