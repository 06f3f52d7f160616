package proxy

import (
	"encoding/json"
	"io"
	"sync"
	"time"

	"github.com/timstack/timstack/policy"
)

// decisionEvent is one line of the decision log: who tried what, and what the policy said. It never holds
// message content, tokens or bodies — only identifiers a TI-M operator must be able to audit.
type decisionEvent struct {
	Time        time.Time       `json:"time"`
	DecisionID  string          `json:"decision_id"`
	RequestID   string          `json:"request_id,omitempty"`
	Surface     string          `json:"surface"`
	Action      policy.Action   `json:"action"`
	Route       string          `json:"route,omitempty"`
	Actor       string          `json:"actor,omitempty"`
	Target      string          `json:"target,omitempty"`
	Origin      string          `json:"origin,omitempty"`
	Destination string          `json:"destination,omitempty"`
	RoomID      string          `json:"room_id,omitempty"`
	Allow       bool            `json:"allow"`
	Reasons     []policy.Reason `json:"reasons,omitempty"`
	Status      int             `json:"status,omitempty"`
	Revision    string          `json:"policy_revision,omitempty"`
	Cached      bool            `json:"cached,omitempty"`
}

// decisionLog writes decision events as JSON lines. A nil *decisionLog discards.
type decisionLog struct {
	mu sync.Mutex
	w  io.Writer
}

func (d *decisionLog) write(ev *decisionEvent) {
	if d == nil || d.w == nil {
		return
	}
	b, err := json.Marshal(ev)
	if err != nil {
		return
	}
	b = append(b, '\n')
	d.mu.Lock()
	_, _ = d.w.Write(b)
	d.mu.Unlock()
}
