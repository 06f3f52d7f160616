package proxy

import (
	"io"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

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
//
// With a delay, lines are collected and written together at most delay after the first of them (or when
// decisionLogBuffer bytes are pending), as access logs usually are: one write system call per decided
// request was the largest cost of a decided request the proxy itself adds (a sixth of it under load). A
// crash loses at most delay of lines; close writes what is pending.
type decisionLog struct {
	mu      sync.Mutex
	w       io.Writer
	delay   time.Duration // 0: every line is written at once (also after close)
	pending []byte
	armed   bool // a flush is scheduled
}

// decisionLogDelay is how long a decision line may wait for others; decisionLogBuffer is what makes it go
// out sooner.
const (
	decisionLogDelay  = 100 * time.Millisecond
	decisionLogBuffer = 64 << 10
)

func (d *decisionLog) write(ev *decisionEvent) {
	if d == nil || d.w == nil {
		return
	}
	var buf [512]byte
	b := ev.appendJSON(buf[:0])
	b = append(b, '\n')
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.delay <= 0 {
		_, _ = d.w.Write(b)
		return
	}
	d.pending = append(d.pending, b...)
	if len(d.pending) >= decisionLogBuffer {
		d.flushLocked()
		return
	}
	if !d.armed {
		d.armed = true
		time.AfterFunc(d.delay, d.flush)
	}
}

func (d *decisionLog) flush() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.flushLocked()
}

func (d *decisionLog) flushLocked() {
	// A timer armed before a size-triggered flush still fires and finds little or nothing; harmless.
	d.armed = false
	if len(d.pending) > 0 {
		_, _ = d.w.Write(d.pending)
		d.pending = d.pending[:0]
	}
}

// close writes what is pending; later lines are written at once. It closes the writer if it is a file the
// proxy opened (owned).
func (d *decisionLog) close(owned io.Closer) {
	if d == nil {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.flushLocked()
	d.delay = 0
	if owned != nil {
		_ = owned.Close()
	}
}

// appendJSON writes the event as encoding/json would (same keys, order and omitempty rules; the test
// compares both), without reflection: every decided request writes one line.
func (ev *decisionEvent) appendJSON(b []byte) []byte {
	b = append(b, `{"time":"`...)
	b = ev.Time.AppendFormat(b, time.RFC3339Nano)
	b = append(b, '"')
	field := func(name, v string, omitEmpty bool) {
		if omitEmpty && v == "" {
			return
		}
		b = append(b, ',', '"')
		b = append(b, name...)
		b = append(b, '"', ':')
		b = appendJSONString(b, v)
	}
	field("decision_id", ev.DecisionID, false)
	field("request_id", ev.RequestID, true)
	field("surface", ev.Surface, false)
	field("action", string(ev.Action), false)
	field("route", ev.Route, true)
	field("actor", ev.Actor, true)
	field("target", ev.Target, true)
	field("origin", ev.Origin, true)
	field("destination", ev.Destination, true)
	field("room_id", ev.RoomID, true)
	b = append(b, `,"allow":`...)
	b = strconv.AppendBool(b, ev.Allow)
	if len(ev.Reasons) > 0 {
		b = append(b, `,"reasons":[`...)
		for i, r := range ev.Reasons {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, string(r))
		}
		b = append(b, ']')
	}
	if ev.Status != 0 {
		b = append(b, `,"status":`...)
		b = strconv.AppendInt(b, int64(ev.Status), 10)
	}
	field("policy_revision", ev.Revision, true)
	if ev.Cached {
		b = append(b, `,"cached":true`...)
	}
	return append(b, '}')
}

// appendJSONString quotes s as encoding/json does: ", \\ and control characters escaped, <, >, & and
// U+2028/U+2029 as \u escapes, invalid UTF-8 replaced by U+FFFD.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			case c == '\b':
				b = append(b, '\\', 'b')
			case c == '\f':
				b = append(b, '\\', 'f')
			case c < 0x20 || c == '<' || c == '>' || c == '&':
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
		default:
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}
