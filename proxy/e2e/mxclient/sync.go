package mxclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// SyncResponse is the part of a /sync answer tests look at; Raw keeps the whole body for anything else.
type SyncResponse struct {
	NextBatch   string `json:"next_batch"`
	AccountData Events `json:"account_data"`
	ToDevice    Events `json:"to_device"`
	Rooms       struct {
		Join   map[string]JoinedRoom  `json:"join"`
		Invite map[string]InvitedRoom `json:"invite"`
		Leave  map[string]LeftRoom    `json:"leave"`
	} `json:"rooms"`
	Raw json.RawMessage `json:"-"`
}

// Events is a {"events": [...]} container.
type Events struct {
	Events []Event `json:"events"`
}

// Timeline is a room timeline slice.
type Timeline struct {
	Events    []Event `json:"events"`
	Limited   bool    `json:"limited"`
	PrevBatch string  `json:"prev_batch"`
}

// JoinedRoom is one entry of rooms.join.
type JoinedRoom struct {
	State       Events   `json:"state"`
	Timeline    Timeline `json:"timeline"`
	Ephemeral   Events   `json:"ephemeral"`
	AccountData Events   `json:"account_data"`
}

// InvitedRoom is one entry of rooms.invite (stripped state).
type InvitedRoom struct {
	InviteState Events `json:"invite_state"`
}

// LeftRoom is one entry of rooms.leave.
type LeftRoom struct {
	State    Events   `json:"state"`
	Timeline Timeline `json:"timeline"`
}

// Event is a client-format event; Content stays raw for the test to decode.
type Event struct {
	Type           string          `json:"type"`
	EventID        string          `json:"event_id,omitempty"`
	Sender         string          `json:"sender,omitempty"`
	StateKey       *string         `json:"state_key,omitempty"`
	OriginServerTS int64           `json:"origin_server_ts,omitempty"`
	Content        json.RawMessage `json:"content"`
	Unsigned       json.RawMessage `json:"unsigned,omitempty"`
}

// Body returns content.body of an m.room.message ("" otherwise).
func (e Event) Body() string {
	var c struct {
		Body string `json:"body"`
	}
	_ = json.Unmarshal(e.Content, &c)
	return c.Body
}

// Membership returns content.membership of an m.room.member event ("" otherwise).
func (e Event) Membership() string {
	var c struct {
		Membership string `json:"membership"`
	}
	_ = json.Unmarshal(e.Content, &c)
	return c.Membership
}

// Sync calls /sync once. since may be empty (initial sync), timeout is the long-poll time, filter is a filter
// ID or inline JSON filter ("" for none).
func (c *Client) Sync(ctx context.Context, since string, timeout time.Duration, filter string) (*SyncResponse, error) {
	q := url.Values{}
	if since != "" {
		q.Set("since", since)
	}
	q.Set("timeout", strconv.FormatInt(timeout.Milliseconds(), 10))
	if filter != "" {
		q.Set("filter", filter)
	}
	status, data, err := c.raw(ctx, http.MethodGet, "/_matrix/client/v3/sync?"+q.Encode(), nil, true)
	if err != nil {
		return nil, err
	}
	if status != http.StatusOK {
		return nil, parseError(status, data)
	}
	var resp SyncResponse
	if err := json.Unmarshal(data, &resp); err != nil {
		return nil, fmt.Errorf("mxclient: sync: decode: %w", err)
	}
	resp.Raw = data
	return &resp, nil
}

// ErrSyncDeadline is returned by SyncUntil when the predicate never held before the deadline.
var ErrSyncDeadline = errors.New("mxclient: sync condition not met before the deadline")

// SyncUntil syncs from since ("" for an initial sync) until predicate returns true for one response, and
// returns that response's next_batch for the caller's next SyncUntil. It gives up with ErrSyncDeadline after
// deadline (or with ctx's error).
func (c *Client) SyncUntil(ctx context.Context, since string, deadline time.Duration, predicate func(*SyncResponse) bool) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, deadline)
	defer cancel()
	for {
		poll := time.Second
		if d, ok := ctx.Deadline(); ok {
			if rest := time.Until(d); rest < poll {
				poll = max(rest, 0)
			}
		}
		resp, err := c.Sync(ctx, since, poll, "")
		if err != nil {
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return since, fmt.Errorf("%w (after %v): %w", ErrSyncDeadline, deadline, err)
			}
			return since, err
		}
		since = resp.NextBatch
		if predicate(resp) {
			return since, nil
		}
	}
}

// HasInvite is a SyncUntil predicate: the response lists an invite to roomID.
func HasInvite(roomID string) func(*SyncResponse) bool {
	return func(r *SyncResponse) bool {
		_, ok := r.Rooms.Invite[roomID]
		return ok
	}
}

// HasTimelineEvent is a SyncUntil predicate: roomID's joined timeline holds an event match accepts.
func HasTimelineEvent(roomID string, match func(Event) bool) func(*SyncResponse) bool {
	return func(r *SyncResponse) bool {
		room, ok := r.Rooms.Join[roomID]
		if !ok {
			return false
		}
		for _, ev := range room.Timeline.Events {
			if match(ev) {
				return true
			}
		}
		return false
	}
}

// HasJoined is a SyncUntil predicate: userID's membership in roomID is "join" in the timeline or state.
func HasJoined(roomID, userID string) func(*SyncResponse) bool {
	return func(r *SyncResponse) bool {
		room, ok := r.Rooms.Join[roomID]
		if !ok {
			return false
		}
		for _, evs := range [][]Event{room.State.Events, room.Timeline.Events} {
			for _, ev := range evs {
				if ev.Type == "m.room.member" && ev.StateKey != nil && *ev.StateKey == userID && ev.Membership() == "join" {
					return true
				}
			}
		}
		return false
	}
}
