package appservice

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"
)

// Job defaults (tim-proxy-spec §3.10).
const (
	// DefaultJobsInterval matches Famedly's room_scan_run_interval.
	DefaultJobsInterval = time.Hour
	// DefaultOrphanedAfter is Famedly's TIM 1.2 state-only purge age (A_28564-01 leaves it to the
	// operator; tim-ref uses 14 days).
	DefaultOrphanedAfter = 6 * 7 * 24 * time.Hour
	// DefaultInsuredOnlyAfter is Famedly's insured-only grace period.
	DefaultInsuredOnlyAfter = 7 * 24 * time.Hour
)

// Rules named in reports.
const (
	RuleOrphaned    = "orphaned_room"
	RuleInsuredOnly = "insured_only_room"
)

// maxTimelineScan bounds how many events a room may have for the orphan check to read them all; a
// state-only room has a dozen or so, and a room with more is left alone.
const maxTimelineScan = 500

// JobsConfig configures the periodic room jobs.
type JobsConfig struct {
	// Interval between runs.
	Interval time.Duration `yaml:"interval"`
	// OrphanedAfter: a room holding only state events, all older than this, with only its (local)
	// creator still joined is cleaned up (A_28564-01).
	OrphanedAfter time.Duration `yaml:"orphaned_after"`
	// InsuredOnlyAfter: on ePA, local users leave a room whose joined members have all been insured for
	// at least this long.
	InsuredOnlyAfter time.Duration `yaml:"insured_only_after"`
	// Variant is "pro" or "epa"; the insured-only rule runs on ePA only.
	Variant string `yaml:"variant"`
	// ShortThresholds lifts the minimums below (1m interval, 1h thresholds) for end-to-end tests that must
	// see a job act within seconds. Not settable from a configuration file: an operator typo must never
	// make fresh rooms "orphaned".
	ShortThresholds bool `yaml:"-"`
}

// Defaults fills zero durations.
func (c *JobsConfig) Defaults() {
	if c.Interval == 0 {
		c.Interval = DefaultJobsInterval
	}
	if c.OrphanedAfter == 0 {
		c.OrphanedAfter = DefaultOrphanedAfter
	}
	if c.InsuredOnlyAfter == 0 {
		c.InsuredOnlyAfter = DefaultInsuredOnlyAfter
	}
}

// Validate reports every problem of the configuration.
func (c JobsConfig) Validate() error {
	var errs []error
	minInterval, minThreshold := time.Minute, time.Hour
	if c.ShortThresholds {
		minInterval, minThreshold = 100*time.Millisecond, time.Second
	}
	if c.Interval < minInterval {
		errs = append(errs, fmt.Errorf("interval: must be at least %s", minInterval))
	}
	if c.OrphanedAfter < minThreshold {
		errs = append(errs, fmt.Errorf("orphaned_after: must be at least %s", minThreshold))
	}
	if c.InsuredOnlyAfter < minThreshold {
		errs = append(errs, fmt.Errorf("insured_only_after: must be at least %s", minThreshold))
	}
	if _, err := PermissionConfigTypes(c.Variant); err != nil {
		errs = append(errs, fmt.Errorf("variant: %w", err))
	}
	return errors.Join(errs...)
}

// RoomAction is what a job did to one room.
type RoomAction struct {
	RoomID string
	Rule   string
	// Left lists local users who left the room (or rejected their invite), in order.
	Left []string
	// Forgotten lists local users who forgot the room.
	Forgotten []string
	// Err is the first failure; the room stays in the index and is retried on the next run.
	Err error
}

// RoomSkip names a candidate room the homeserver's answer ruled out.
type RoomSkip struct {
	RoomID string
	Rule   string
	Why    string
}

// Report lists what one run did.
type Report struct {
	Checked int
	Actions []RoomAction
	Skipped []RoomSkip
}

// Jobs runs the periodic room clean-ups with nothing but the room index and the standard client API
// (masquerading as local users): local users leave and forget the room. The proxy never calls an admin
// API; a stock homeserver purges a room once every local user has forgotten it (Synapse:
// forgotten_room_retention_period, which the operator must set).
//
// Each candidate from the index is confirmed against the homeserver before anything is done: its joined
// members, and for orphaned rooms every event of the timeline, read back to the room's creation. Doubt
// (an error, too many events, a newer event) means the room is left alone.
//
// Limits: only rooms in the index are considered, i.e. rooms that saw an event since the proxy started
// or were backfilled; and only rooms with local members can be acted on.
type Jobs struct {
	cfg     JobsConfig
	index   *RoomIndex
	client  *Client
	insured func(domain string) bool
	log     *slog.Logger
}

// NewJobs checks cfg (after Defaults) and returns the jobs. insured answers whether a server name is an
// insurance (ePA) domain on the federation list; it must answer false when it does not know, so that
// doubt never removes anyone. log may be nil.
func NewJobs(cfg JobsConfig, index *RoomIndex, client *Client, insured func(domain string) bool, log *slog.Logger) (*Jobs, error) {
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("room jobs: %w", err)
	}
	if index == nil || client == nil {
		return nil, errors.New("room jobs: index and client are required")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Jobs{cfg: cfg, index: index, client: client, insured: insured, log: log}, nil
}

// Run calls RunOnce every Interval until ctx ends, logging each report.
func (j *Jobs) Run(ctx context.Context) error {
	t := time.NewTicker(j.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		rep, err := j.RunOnce(ctx, time.Now(), j.insured)
		for _, a := range rep.Actions {
			if a.Err != nil {
				j.log.Warn("room job failed", "rule", a.Rule, "room_id", a.RoomID, "error", a.Err.Error())
				continue
			}
			j.log.Info("room job cleaned up room", "rule", a.Rule, "room_id", a.RoomID, "left", len(a.Left), "forgotten", len(a.Forgotten))
		}
		if err != nil {
			j.log.Warn("room jobs run had failures", "error", err.Error())
		}
	}
}

// RunOnce checks every indexed room once at time now. The error joins the per-room failures; the report
// is complete either way.
func (j *Jobs) RunOnce(ctx context.Context, now time.Time, insured func(domain string) bool) (Report, error) {
	var rep Report
	var errs []error
	for _, f := range j.index.Rooms() {
		if ctx.Err() != nil {
			errs = append(errs, ctx.Err())
			break
		}
		rep.Checked++
		var act *RoomAction
		var skip *RoomSkip
		switch {
		case j.orphanCandidate(f, now):
			act, skip = j.cleanOrphaned(ctx, f, now)
		case j.cfg.Variant == VariantEPA && insured != nil && j.insuredOnlyCandidate(f, now, insured):
			act, skip = j.cleanInsuredOnly(ctx, f, insured)
		}
		if skip != nil {
			rep.Skipped = append(rep.Skipped, *skip)
		}
		if act != nil {
			rep.Actions = append(rep.Actions, *act)
			if act.Err != nil {
				errs = append(errs, fmt.Errorf("%s %s: %w", act.Rule, act.RoomID, act.Err))
			} else {
				j.index.Drop(f.RoomID)
			}
		}
	}
	return rep, errors.Join(errs...)
}

func ms(t time.Time) int64 { return t.UnixMilli() }

// orphanCandidate: the index saw no timeline event, every state event is older than OrphanedAfter, and
// only the local creator is joined.
func (j *Jobs) orphanCandidate(f RoomFacts, now time.Time) bool {
	if f.Creator == "" || f.CreatedTS == 0 || !j.client.IsLocalUser(f.Creator) || f.LastTimelineTS != 0 {
		return false
	}
	if ms(now)-max(f.CreatedTS, f.LastStateTS) < j.cfg.OrphanedAfter.Milliseconds() {
		return false
	}
	joined := f.JoinedMembers()
	return len(joined) == 1 && joined[0] == f.Creator
}

func (j *Jobs) cleanOrphaned(ctx context.Context, f RoomFacts, now time.Time) (*RoomAction, *RoomSkip) {
	skip := func(why string) (*RoomAction, *RoomSkip) {
		return nil, &RoomSkip{RoomID: f.RoomID, Rule: RuleOrphaned, Why: why}
	}
	act := &RoomAction{RoomID: f.RoomID, Rule: RuleOrphaned}
	joined, err := j.client.JoinedMembers(ctx, f.Creator, f.RoomID)
	if err != nil {
		act.Err = err
		return act, nil
	}
	if !slices.Equal(joined, []string{f.Creator}) {
		return skip("homeserver reports other joined members")
	}
	cutoff := ms(now) - j.cfg.OrphanedAfter.Milliseconds()
	from, seen := "", 0
	for {
		page, err := j.client.Messages(ctx, f.Creator, f.RoomID, from, 100)
		if err != nil {
			act.Err = err
			return act, nil
		}
		for _, ev := range page.Chunk {
			if ev.StateKey == nil {
				return skip("room has timeline events")
			}
			if ev.OriginServerTS > cutoff {
				return skip("room has recent state events")
			}
		}
		seen += len(page.Chunk)
		if len(page.Chunk) == 0 || page.End == "" || page.End == from {
			break
		}
		if seen >= maxTimelineScan {
			return skip("room has too many events to confirm")
		}
		from = page.End
	}
	// Everyone else first (reject invites, forget), the creator last: once the creator has left, the
	// homeserver stops telling the proxy about the room.
	for _, u := range sortedLocalMembers(j.client, f) {
		if u == f.Creator {
			continue
		}
		j.leaveAndForget(ctx, act, f.RoomID, u, f.Members[u].Membership, "orphaned room cleaned up")
	}
	j.leaveAndForget(ctx, act, f.RoomID, f.Creator, MembershipJoin, "orphaned room cleaned up")
	return act, nil
}

// leaveAndForget makes user leave (when joined, invited or knocking) and forget roomID, recording the
// steps and the first error in act.
func (j *Jobs) leaveAndForget(ctx context.Context, act *RoomAction, roomID, user, membership, reason string) {
	switch membership {
	case MembershipJoin, MembershipInvite, MembershipKnock:
		if err := j.client.Leave(ctx, user, roomID, reason); err != nil {
			if act.Err == nil {
				act.Err = err
			}
			return
		}
		act.Left = append(act.Left, user)
	case MembershipLeave, MembershipBan:
	default:
		return
	}
	if err := j.client.Forget(ctx, user, roomID); err != nil {
		if act.Err == nil {
			act.Err = err
		}
		return
	}
	act.Forgotten = append(act.Forgotten, user)
}

func sortedLocalMembers(c *Client, f RoomFacts) []string {
	var out []string
	for u := range f.Members {
		if c.IsLocalUser(u) {
			out = append(out, u)
		}
	}
	slices.Sort(out)
	return out
}

// insuredOnlyCandidate: every joined member is insured, at least one is local, and no non-insured user
// has had a membership change (left, was invited, …) within the grace period. A pending invite of a
// practitioner thus holds the room for one grace period, not forever.
func (j *Jobs) insuredOnlyCandidate(f RoomFacts, now time.Time, insured func(string) bool) bool {
	joined := f.JoinedMembers()
	if len(joined) == 0 {
		return false
	}
	local := false
	for _, u := range joined {
		if !insured(domainOf(u)) {
			return false
		}
		local = local || j.client.IsLocalUser(u)
	}
	if !local {
		return false
	}
	since := f.CreatedTS
	if since == 0 {
		// Met mid-life: the newest state event is the latest moment the room can have changed.
		since = f.LastStateTS
	}
	for u, m := range f.Members {
		if !insured(domainOf(u)) {
			since = max(since, m.Since)
		}
	}
	return since > 0 && ms(now)-since >= j.cfg.InsuredOnlyAfter.Milliseconds()
}

func (j *Jobs) cleanInsuredOnly(ctx context.Context, f RoomFacts, insured func(string) bool) (*RoomAction, *RoomSkip) {
	act := &RoomAction{RoomID: f.RoomID, Rule: RuleInsuredOnly}
	locals := sortedLocalMembers(j.client, f)
	var actor string
	for _, u := range locals {
		if f.Members[u].Membership == MembershipJoin {
			actor = u
			break
		}
	}
	joined, err := j.client.JoinedMembers(ctx, actor, f.RoomID)
	if err != nil {
		act.Err = err
		return act, nil
	}
	if len(joined) == 0 {
		return nil, &RoomSkip{RoomID: f.RoomID, Rule: RuleInsuredOnly, Why: "homeserver reports no joined members"}
	}
	for _, u := range joined {
		if !insured(domainOf(u)) {
			return nil, &RoomSkip{RoomID: f.RoomID, Rule: RuleInsuredOnly, Why: "homeserver reports a non-insured member"}
		}
	}
	for _, u := range locals {
		j.leaveAndForget(ctx, act, f.RoomID, u, f.Members[u].Membership, "room has only insured members")
	}
	return act, nil
}
